"""Calibration targets and solver: what the generator is built from, and that re-solving reproduces it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from helpers import calibrate, codes, cohort, params, prepare, study, targets  # noqa: E402
from helpers.calibrate import SOLVED_PATH, Solved, solve
from helpers.cohort import generate
from helpers.targets import TargetsError, assessed_counts, load_targets

TARGETS = study.PUBLISHED_DIR / "cohort_targets.csv"


def test_every_target_has_a_source_and_printed_ones_match_table4():
    table = pd.read_csv(TARGETS, dtype=str, keep_default_na=False)
    assert set(table.source) <= {"printed", "assumed", "derived"}
    assert (table.reference.str.len() > 0).all()
    t4 = pd.read_csv(study.PUBLISHED_DIR / "harwood2021_table4.csv")
    t4 = t4[(t4.analysis == "complete_case") & (t4.ethnicity != study.REFERENCE_GROUP)]
    printed = table[table.quantity.str.startswith("or_") & (table.stage == "treatment")]
    assert (printed.source == "printed").all() and len(printed) == 21
    merged = printed.assign(model=printed.quantity.str[3:], value=printed.value.astype(float)).merge(
        t4, on=["model", "ethnicity"])
    assert len(merged) == 21 and np.allclose(merged.value, merged["or"])
    # nothing about assessment or referral source is printed in the paper: those must say assumed
    assert (table[table.stage.isin(["assessment", "referral_source"])].source == "assumed").all()


def test_committed_solution_equals_a_fresh_solve():
    t = load_targets(TARGETS)
    committed = Solved.from_frame(pd.read_csv(SOLVED_PATH, dtype=str, keep_default_na=False))
    assert committed.targets_sha256 == t.sha256, "targets changed: run python -m helpers.calibrate"
    fresh = solve(t)
    np.testing.assert_allclose(fresh.agy_tilt, committed.agy_tilt, atol=1e-8)
    np.testing.assert_allclose(fresh.borough_tilt, committed.borough_tilt, atol=1e-8)
    assert fresh.alpha_treatment == pytest.approx(committed.alpha_treatment, abs=1e-9)


def test_assessed_counts_are_consistent_with_printed_percentages():
    t = load_targets(TARGETS)
    a = assessed_counts(t)
    pct = 100 * t.treated_n / a
    assert (abs(pct - t.treated_pct) <= 0.05 + 1e-9).all()


def test_equal_access_targets_give_no_differences(tmp_path):
    """A lecturer's counterfactual: every ethnic effect 1, every group's % treated equal."""
    table = pd.read_csv(TARGETS, dtype=str, keep_default_na=False)
    is_ratio = table.quantity.str.startswith(("or_", "rrr_"))
    table.loc[is_ratio, "value"] = "1.0"
    table.loc[table.quantity == "treated_pct", "value"] = "70.0"
    table.loc[table.quantity == "missing_log_odds", "value"] = "0.0"
    path = tmp_path / "equal.csv"
    table.to_csv(path, index=False)
    solved = solve(load_targets(path))
    # only the integer rounding of the numbers assessed is left to absorb
    assert np.abs(solved.agy_tilt).max() < 0.05 and np.abs(solved.borough_tilt).max() < 0.05
    cohort = generate(targets_path=str(path))
    f = cohort.raw.assign(eth=cohort.raw.Validated_EthnicCategory.map(codes.ETHNIC_CODE_TO_GROUP),
                          treated=(cohort.raw.TherapySession_FirstDate != "").astype(int))
    f = f[f.eth.notna() & (f.Assessment_FirstDate != "")]
    fit = smf.logit("treated ~ C(eth, Treatment('White British')) + Borough", f).fit(disp=0)
    ors = np.exp(fit.params.filter(like="C(eth"))
    # integer counts in small groups leave at most a rounding error
    assert len(ors) == 7 and (abs(ors - 1) < 0.01).all(), ors


@pytest.mark.parametrize("edit,needle", [
    (lambda t: t.drop(index=t.index[t.quantity == "treated_n"][0]), "treated_n"),
    (lambda t: t.assign(source=t.source.where(t.index != 5, "guessed")), "line 7"),
    (lambda t: t.assign(value=t.value.where(t.index != 3, "n/a")), "line 5"),
    (lambda t: t.drop(columns="source"), "source"),
])
def test_bad_targets_are_named(tmp_path, edit, needle):
    table = pd.read_csv(TARGETS, dtype=str, keep_default_na=False)
    path = tmp_path / "bad.csv"
    edit(table).to_csv(path, index=False)
    with pytest.raises(TargetsError, match=needle):
        load_targets(path)


@pytest.fixture(scope="module")
def t_and_solved():
    t = targets.load_targets(params.DEFAULT_TARGETS)
    return t, calibrate.load_solved(t)


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
