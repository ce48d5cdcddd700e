"""The synthetic cohort: reproducible to the byte, faithful to Table 4, internally consistent."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from helpers import codes, cohort, params, prepare, study, targets  # noqa: E402
from helpers.cohort import DEFAULT_COHORT, DEFAULT_TRUTH, RAW_COLUMNS, generate
from helpers.cohort import main as cohort_main
from helpers.params import ParameterError

PUBLISHED = pd.read_csv(study.PUBLISHED_DIR / "harwood2021_table4.csv")


@pytest.fixture(scope="module")
def default_cohort():
    return generate()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _simple_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """A minimal, independent mapping of raw rows (deliberately not helpers.prepare: a second route)."""
    return pd.DataFrame({
        "eth": raw.Validated_EthnicCategory.map(codes.ETHNIC_CODE_TO_GROUP),
        "age": pd.cut(raw.Age_ReferralRequest_ReceivedDate.astype(int), study.AGE_BREAKS + [200], right=False,
                      labels=study.AGE_BANDS).astype(str),
        "gender": raw.Gender,
        "year": raw.ReferralRequestReceivedDate.str[:4],
        "borough": raw.Borough,
        "assessed": (raw.Assessment_FirstDate != "").astype(int),
        "treated": (raw.TherapySession_FirstDate != "").astype(int),
    })


def test_cli_same_arguments_same_bytes_other_seed_other_bytes(tmp_path):
    args = ["--n", "6000", "--seed", "7"]
    cohort_main([*args, "--out", str(tmp_path / "a.csv")])
    cohort_main([*args, "--out", str(tmp_path / "b.csv")])
    cohort_main(["--n", "6000", "--seed", "8", "--out", str(tmp_path / "c.csv")])
    assert _sha(tmp_path / "a.csv") == _sha(tmp_path / "b.csv")
    assert _sha(tmp_path / "a_truth.csv") == _sha(tmp_path / "b_truth.csv")
    assert _sha(tmp_path / "a.csv") != _sha(tmp_path / "c.csv")


def test_random_mode_is_reproducible_and_seed_dependent():
    a = generate(n_referrals=5000, seed=1, outcome_mode="random")
    b = generate(n_referrals=5000, seed=1, outcome_mode="random")
    c = generate(n_referrals=5000, seed=2, outcome_mode="random")
    pd.testing.assert_frame_equal(a.raw, b.raw)
    assert not a.raw.equals(c.raw)


def test_committed_default_cohort_equals_a_rebuild(tmp_path):
    cohort_main(["--out", str(tmp_path / "cohort.csv"), "--truth-out", str(tmp_path / "truth.csv")])
    assert _sha(tmp_path / "cohort.csv") == _sha(DEFAULT_COHORT)
    assert _sha(tmp_path / "truth.csv") == _sha(DEFAULT_TRUTH)


def test_default_cohort_shape_and_missing_share(default_cohort):
    raw, truth = default_cohort.raw, default_cohort.truth
    assert list(raw.columns) == RAW_COLUMNS
    assert len(raw) == 85_800
    assert raw.PathwayID.is_unique
    assert (raw.PathwayID == truth.PathwayID).all()
    missing = raw.Validated_EthnicCategory.isin(codes.MISSING_ETHNIC_CODES)
    assert missing.sum() == round(85_800 * 0.185)
    assert (missing.to_numpy() == truth.ethnicity_missing.astype(bool).to_numpy()).all()
    # the truth is never in the extract
    assert "true_ethnic_group" not in raw.columns


def test_dates_and_codes_are_valid(default_cohort):
    raw = default_cohort.raw
    ref = pd.to_datetime(raw.ReferralRequestReceivedDate)
    assert ref.min() >= pd.Timestamp("2013-01-01") and ref.max() <= pd.Timestamp("2016-12-31")
    ass = pd.to_datetime(raw.Assessment_FirstDate.replace("", None))
    tre = pd.to_datetime(raw.TherapySession_FirstDate.replace("", None))
    assert (ass.dropna() > ref[ass.notna()]).all()
    assert tre.notna().sum() > 0 and (tre.notna() <= ass.notna()).all(), "treatment never without assessment"
    assert (tre.dropna() > ass[tre.notna()]).all()
    assert set(raw.SourceOfReferralIAPT) <= set(codes.SOURCE_CODE_TO_CATEGORY)
    assert set(raw.Validated_EthnicCategory) <= set(codes.ETHNIC_CODE_TO_GROUP)
    assert set(raw.Gender) <= {"1", "2"}
    assert set(raw.Borough) == set(study.BOROUGHS)
    ages = raw.Age_ReferralRequest_ReceivedDate.astype(int)
    assert ages.min() >= 18 and ages.max() <= 90


def test_truth_codes_agree_with_truth_groups(default_cohort):
    truth = default_cohort.truth
    assert (truth.true_EthnicCategory.map(codes.ETHNIC_CODE_TO_GROUP) == truth.true_ethnic_group).all()
    recorded = default_cohort.raw.Validated_EthnicCategory
    observed = truth.ethnicity_missing == 0
    assert (recorded[observed] == truth.true_EthnicCategory[observed]).all()


def test_percent_treated_and_n_reproduce_table4(default_cohort):
    f = _simple_frame(default_cohort.raw)
    cc = f[f.eth.notna() & (f.assessed == 1)]
    by = cc.groupby("eth").treated.agg(["sum", "mean"])
    printed = PUBLISHED[(PUBLISHED.analysis == "complete_case") & (PUBLISHED.model == "unadjusted")].set_index("ethnicity")
    for g in study.GROUPS:
        assert by.loc[g, "sum"] == printed.loc[g, "n"], g
        assert abs(100 * by.loc[g, "mean"] - printed.loc[g, "pct_treated"]) < 0.05 + 1e-9, g


@pytest.mark.parametrize("model,extra", [
    ("unadjusted", ""),
    ("adjusted_age_gender_year", " + age + gender + year"),
    ("adjusted_full", " + age + gender + year + borough"),
])
def test_row_level_treatment_ors_round_to_printed(default_cohort, model, extra):
    """Row-level statsmodels fits on the complete cases: every OR rounds to Table 4 and lies in its CI."""
    f = _simple_frame(default_cohort.raw)
    cc = f[f.eth.notna() & (f.assessed == 1)]
    fit = smf.logit(f"treated ~ C(eth, Treatment('White British')){extra}", cc).fit(disp=0)
    printed = PUBLISHED[(PUBLISHED.analysis == "complete_case") & (PUBLISHED.model == model)].set_index("ethnicity")
    for g in study.GROUPS[1:]:
        odds_ratio = float(np.exp(fit.params[f"C(eth, Treatment('White British'))[T.{g}]"]))
        assert printed.loc[g, "ci_low"] <= odds_ratio <= printed.loc[g, "ci_high"], (model, g, odds_ratio)
        assert round(odds_ratio, 2) == pytest.approx(printed.loc[g, "or"]), (model, g, odds_ratio)


def test_planted_assessment_and_referral_effects_recovered():
    """Random mode, large cohort: fully adjusted estimates recover the planted (assumed) values within 4 SE."""
    from helpers.targets import load_targets

    t = load_targets(study.PUBLISHED_DIR / "cohort_targets.csv")
    c = generate(n_referrals=400_000, seed=11, outcome_mode="random", missing_share=0.0)
    f = _simple_frame(c.raw)
    fit = smf.logit("assessed ~ C(eth, Treatment('White British')) + age + gender + year + borough", f).fit(disp=0)
    for g in study.GROUPS[1:]:
        name = f"C(eth, Treatment('White British'))[T.{g}]"
        z = (fit.params[name] - np.log(t.assessment_or[g])) / fit.bse[name]
        assert abs(z) < 4, (g, z)


def test_counts_preserve_the_expected_total():
    c = generate(n_referrals=12_345, seed=3)
    assert len(c.raw) == 12_345
    assert c.counts["count"].sum() == 12_345
    assert c.counts.expected.sum() == pytest.approx(12_345)


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_missing_mechanisms(mechanism):
    c = generate(n_referrals=50_000, seed=5, missing_mechanism=mechanism, outcome_mode="random")
    f = _simple_frame(c.raw).assign(missing=c.truth.ethnicity_missing.to_numpy(), group=c.truth.true_ethnic_group.to_numpy())
    assert f.missing.mean() == pytest.approx(0.185, abs=0.01)
    by_assessed = f.groupby("assessed").missing.mean()
    by_group = f.groupby("group").missing.mean()
    if mechanism == "mcar":
        assert abs(by_assessed[0] - by_assessed[1]) < 0.02
        assert by_group.max() - by_group.min() < 0.05
    else:  # more often missing among people never assessed
        assert by_assessed[0] - by_assessed[1] > 0.05
    if mechanism == "mnar":
        assert by_group["White Other"] > by_group["White British"] + 0.03


@pytest.mark.parametrize("kwargs,needle", [
    ({"n_referrals": -5}, "n_referrals"),
    ({"seed": "abc"}, "seed"),
    ({"missing_mechanism": "nope"}, "missing_mechanism"),
    ({"outcome_mode": "sampled"}, "outcome_mode"),
    ({"missing_share": 1.5}, "missing_share"),
])
def test_bad_arguments_fail_before_work(kwargs, needle):
    with pytest.raises(ParameterError, match=needle):
        generate(**kwargs)


def test_cli_rejects_bad_values(capsys):
    with pytest.raises(SystemExit) as info:
        cohort_main(["--n", "abc", "--out", "x.csv"])
    assert info.value.code == 2
    assert "n_referrals" in capsys.readouterr().err


@pytest.mark.parametrize("n,seed", [(5_000, 1), (12_000, 4)])
def test_calibrated_rounding_does_not_pile_up_in_small_cells(n, seed):
    """Regression: rounding each tiny cell on its own once sent every single-referral cell to 'Self'."""
    c = generate(n_referrals=n, seed=seed)
    by_source = c.counts.groupby(["group", "referral_source"]).agg(e=("expected", "sum"), r=("count", "sum"))
    assert (by_source.r - by_source.e).abs().max() < 4
    by_stage = c.counts[c.counts.missing == 0].groupby(["group", "stage"]).agg(e=("expected", "sum"),
                                                                             r=("count", "sum"))
    assert (by_stage.r - by_stage.e).abs().max() < 2


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


def test_both_writers_give_the_same_csv_bytes(tmp_path):
    """The DuckDB writer (the CLI's, for national sizes) and pandas' ``write_csv`` of the string frame agree to
    the byte, blanks included; the string frame is ``as_strings`` of the compact one."""
    from helpers.cohort import TRUTH_COLUMNS, as_strings, csv_sha256, write_cohort

    compact = generate(n_referrals=7_000, seed=9, outcome_mode="random", compact=True)
    strings = generate(n_referrals=7_000, seed=9, outcome_mode="random")
    assert "PathwayID" not in compact.raw.columns
    pd.testing.assert_frame_equal(as_strings(compact.raw, RAW_COLUMNS), strings.raw)
    assert (strings.raw.Validated_EthnicCategory == "").any() and (strings.raw.Assessment_FirstDate == "").any()
    write_cohort(compact.raw, RAW_COLUMNS, tmp_path / "raw.csv")
    write_cohort(compact.truth, TRUTH_COLUMNS, tmp_path / "truth.csv")
    assert _sha(tmp_path / "raw.csv") == csv_sha256(strings.raw)
    assert _sha(tmp_path / "truth.csv") == csv_sha256(strings.truth)


def test_cli_parquet_holds_the_csv_rows_and_extracts_to_the_same_counts(tmp_path):
    import duckdb

    from helpers import extract

    cohort_main(["--n", "6000", "--seed", "3", "--out", str(tmp_path / "c.csv"), "--out", str(tmp_path / "c.parquet")])
    assert (tmp_path / "c_truth.csv").exists() and not (tmp_path / "c_truth.parquet").exists()
    con = duckdb.connect()
    from_csv = con.execute(f"SELECT * FROM read_csv('{tmp_path / 'c.csv'}', all_varchar = true)").df()
    from_parquet = con.execute(f"SELECT * FROM '{tmp_path / 'c.parquet'}'").df()
    assert list(from_parquet.columns) == RAW_COLUMNS
    pd.testing.assert_frame_equal(from_csv.fillna(""), from_parquet.fillna(""))
    assert from_parquet.Assessment_FirstDate.isna().any()  # a blank field is a null in Parquet
    a, b = extract.run(tmp_path / "c.csv"), extract.run(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(a.pattern_counts, b.pattern_counts)
    assert int(a.pattern_counts["n"].sum()) == 6000


def test_cli_rejects_an_unknown_file_type(capsys):
    with pytest.raises(SystemExit) as info:
        cohort_main(["--n", "2000", "--out", "cohort.xlsx"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "cohort.xlsx" in err and ".csv or .parquet" in err
