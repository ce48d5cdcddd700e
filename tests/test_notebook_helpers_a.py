"""Tests for the helpers added for notebooks 00-03: pathway diagram, calibration views, missingness views,
code tables and the in-memory cohort hash."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import calibrate, codes, cohort, datadict, params, plots, prepare, study, targets  # noqa: E402


@pytest.fixture(scope="module")
def t_and_solved():
    t = targets.load_targets(params.DEFAULT_TARGETS)
    return t, calibrate.load_solved(t)


def test_pathway_diagram_names_every_step_and_source() -> None:
    fig = plots.pathway_diagram()
    assert isinstance(fig, Figure)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for word in ["Referred", "Assessed", "Treated", "Not assessed", "among the assessed", study.REFERENCE_GROUP,
                 *study.SOURCES]:
        assert word in text, word


def test_tilts_table_reference_zero(t_and_solved) -> None:
    _, solved = t_and_solved
    tilts = calibrate.tilts_table(solved)
    assert list(tilts.index) == study.GROUPS
    assert tilts.loc[study.REFERENCE_GROUP].tolist() == [0.0, 0.0]
    assert np.allclose(tilts["borough_tilt"], solved.borough_tilt)


@pytest.mark.parametrize("covariate", list(study.COVARIATE_LEVELS))
def test_group_covariate_mix_rows_sum_to_one(t_and_solved, covariate) -> None:
    t, solved = t_and_solved
    mix = calibrate.group_covariate_mix(t, solved, covariate)
    assert list(mix.index) == study.GROUPS
    assert list(mix.columns) == list(study.COVARIATE_LEVELS[covariate])
    assert np.allclose(mix.sum(axis=1), 1.0)
    # with zero tilts every group has the assumed base margin
    zero = calibrate.Solved(0.0, 0.0, np.zeros(3), np.zeros(len(study.GROUPS)), np.zeros(len(study.GROUPS)), "")
    base = calibrate.group_covariate_mix(t, zero, covariate)
    assert np.allclose(base.to_numpy(), t.covariate_share[covariate].to_numpy()[None, :])


def test_group_covariate_mix_matches_the_committed_cohort(t_and_solved) -> None:
    t, solved = t_and_solved
    mix = calibrate.group_covariate_mix(t, solved, "borough")
    raw = prepare.read_extract(cohort.DEFAULT_COHORT)
    frame = prepare.prepare(raw).frame
    seen = pd.crosstab(frame["ethnicity"], frame["borough"], normalize="index")
    assert np.allclose(seen.loc[study.GROUPS, study.BOROUGHS].to_numpy(), mix.to_numpy(), atol=0.01)


def test_group_covariate_mix_rejects_unknown_covariate(t_and_solved) -> None:
    t, solved = t_and_solved
    with pytest.raises(ValueError, match="not one of"):
        calibrate.group_covariate_mix(t, solved, "ethnicity")


def test_csv_sha256_equals_written_file(tmp_path) -> None:
    frame = pd.DataFrame({"a": ["x", "y"], "b": ["1", ""]})
    path = tmp_path / "f.csv"
    cohort.write_csv(frame, path)
    assert cohort.csv_sha256(frame) == cohort.sha256(path)
    assert cohort.csv_sha256(frame) != cohort.csv_sha256(frame.iloc[::-1])


def test_expected_missing_share_by_mechanism() -> None:
    by_group = cohort.expected_missing_share("group")
    assert list(by_group.index) == study.GROUPS
    assert list(by_group.columns) == ["mcar", "mar", "mnar"]
    # MCAR: the same share everywhere, equal to the parameter
    assert np.allclose(by_group["mcar"], params.DEFAULTS["missing_share"])
    by_stage = cohort.expected_missing_share("stage")
    assert np.allclose(by_stage["mcar"], params.DEFAULTS["missing_share"])
    # MAR varies by stage; MNAR varies by group more than MAR does
    assert by_stage["mar"].std() > 1e-3
    assert by_group["mnar"].std() > by_group["mar"].std()
    with pytest.raises(ValueError, match="by must be"):
        cohort.expected_missing_share("borough")


def test_missing_share_table_on_small_cohort() -> None:
    gen = cohort.generate(n_referrals=3000, seed=5, missing_mechanism="mcar")
    prep = prepare.prepare(gen.raw)
    truth = prep.frame[["referral_id"]].merge(gen.truth.rename(columns={"PathwayID": "referral_id"}),
                                              on="referral_id", how="left")
    table = cohort.missing_share_table(prep.frame, truth)
    assert list(table.index) == study.GROUPS
    assert list(table.columns) == [*targets.STAGE_LEVELS, "All"]
    overall = prep.frame["ethnicity"].isna().mean()
    weights = truth["true_ethnic_group"].value_counts().reindex(study.GROUPS).to_numpy()
    assert np.isclose(np.average(table["All"].to_numpy(), weights=weights), overall)
    with pytest.raises(ValueError, match="same order"):
        cohort.missing_share_table(prep.frame, truth.iloc[::-1])


def test_code_tables_cover_every_code() -> None:
    eth = datadict.ethnic_code_table()
    assert len(eth) == len(codes.ETHNIC_CODE_TO_GROUP)
    assert eth.loc[eth.code == "R", "basis"].item().startswith("assumed")
    assert eth.loc[eth.code == "R", "group"].item() == codes.CHINESE_GROUP
    assert set(eth.loc[eth.group == "missing", "code"]) == {"Z", "99", "(blank)"}
    src = datadict.source_code_table()
    assert set(src.code) == set(codes.SOURCE_CODE_TO_CATEGORY)
    assert set(src.loc[src.basis == "NHS England", "code"]) == {"A1", "B1"}
    assert list(src.category.cat.categories) == study.SOURCES
