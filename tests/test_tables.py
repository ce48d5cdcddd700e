"""Tests for helpers.tables: disclosure control, Table 1, pathway counts, comparison with the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import disclosure, replication, study
from helpers import tables as T

# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------


def make_frame(rows: list[tuple]) -> pd.DataFrame:
    """Analysis frame from (ethnicity, age_band, gender, year, borough, source, assessed, treated) tuples."""
    cols = ["ethnicity", "age_band", "gender", "year", "borough", "referral_source", "assessed", "treated"]
    df = pd.DataFrame(rows, columns=cols)
    df.insert(0, "referral_id", [f"R{i:05d}" for i in range(len(df))])
    df["ethnicity"] = pd.Categorical(df["ethnicity"], categories=study.GROUPS)
    for col, levels in [
        ("age_band", study.AGE_BANDS),
        ("gender", study.GENDERS),
        ("year", study.YEARS),
        ("borough", study.BOROUGHS),
        ("referral_source", study.SOURCES),
    ]:
        df[col] = pd.Categorical(df[col], categories=levels)
    df["assessed"] = df["assessed"].astype(int)
    df["treated"] = df["treated"].astype(float)
    return df


@pytest.fixture
def small_frame() -> pd.DataFrame:
    """40 referrals, hand-countable: 20 White British, 12 Black African, 5 Asian, 3 missing ethnicity."""
    rows = []
    # White British: 20 referred, 15 assessed, 12 treated.
    for i in range(20):
        assessed = int(i < 15)
        treated = (1.0 if i < 12 else 0.0) if assessed else np.nan
        rows.append(("White British", "25-34" if i < 10 else "45-54", "Female" if i % 2 else "Male",
                     2013 + i % 4, "Lambeth", "GP" if i < 14 else "Self", assessed, treated))
    # Black African: 12 referred, 8 assessed, 4 treated.
    for i in range(12):
        assessed = int(i < 8)
        treated = (1.0 if i < 4 else 0.0) if assessed else np.nan
        rows.append(("Black African", "18-24", "Female", 2014, "Southwark", "Community", assessed, treated))
    # Asian: 5 referred, 2 assessed, 2 treated.
    for i in range(5):
        assessed = int(i < 2)
        rows.append(("Asian", "35-44", "Male", 2015, "Croydon", "GP", assessed, 1.0 if assessed else np.nan))
    # Missing ethnicity: 3 referred, 3 assessed, 1 treated.
    for i in range(3):
        rows.append((None, "65+", "Female", 2016, "Lewisham", "Other", 1, 1.0 if i == 0 else 0.0))
    return make_frame(rows)


@pytest.fixture
def published() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "analysis": ["complete_case"] * 4,
            "ethnicity": ["White British", "Black Caribbean", "Black African", "Asian"],
            "n": [19995, 3975, 1605, 2514],
            "pct_treated": [72.4, 66.8, 66.1, 66.6],
            "model": ["unadjusted"] * 4,
            "or": [1.00, 0.77, 0.74, 0.76],
            "ci_low": [1.00, 0.72, 0.68, 0.71],
            "ci_high": [1.00, 0.81, 0.81, 0.82],
            "source": ["Harwood et al. 2021, Table 4"] * 4,
        }
    )


def tidy(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"stage": "treatment", "outcome_level": "", "model": m, "analysis": a, "ethnicity": e,
             "estimate": est, "ci_low": lo, "ci_high": hi, "n": 100}
            for a, m, e, est, lo, hi in rows
        ]
    )


# --------------------------------------------------------------------------------------------------
# disclose: primary suppression and rounding
# --------------------------------------------------------------------------------------------------


def test_primary_suppression_and_rounding():
    t = pd.DataFrame({"n": [0, 1, 3, 7, 8, 12, 13, 15, 22, 1234]})
    out = disclosure.disclose(t)
    assert str(out["n"].dtype) == "Int64"
    shown = out["n"].tolist()
    assert shown[0] == 0  # a true zero is kept
    assert all(v is pd.NA for v in shown[1:4])  # 1, 3, 7 suppressed
    assert shown[4:] == [10, 10, 15, 15, 20, 1235]  # 8->10, 12->10, 13->15, 15 stays, 22->20, 1234->1235


def test_rounding_halves_go_up_with_base_10():
    t = pd.DataFrame({"n": [15, 25, 14, 11]})
    out = disclosure.disclose(t, threshold=10, base=10)
    assert out["n"].tolist() == [20, 30, 10, 10]


def test_parameters_respected():
    t = pd.DataFrame({"n": [0, 7, 8, 10, 11, 16, 24]})
    out = disclosure.disclose(t, threshold=10, base=10)
    values = out["n"].tolist()
    assert values[0] == 0
    assert all(v is pd.NA for v in values[1:4])  # 7, 8, 10 suppressed at threshold 10
    assert values[4:] == [10, 20, 20]
    # No suppression threshold, no rounding: counts unchanged.
    same = disclosure.disclose(t, threshold=0, base=1)
    assert same["n"].tolist() == t["n"].tolist()


def test_non_count_columns_carried_through():
    t = pd.DataFrame({"group": ["a", "b"], "n": [3, 40]})
    out = disclosure.disclose(t)
    assert out["group"].tolist() == ["a", "b"]
    assert out["n"].tolist()[1] == 40


# --------------------------------------------------------------------------------------------------
# disclose: totals and secondary suppression
# --------------------------------------------------------------------------------------------------


def test_totals_recomputed_from_rounded_values():
    t = pd.DataFrame({"a": [12, 13, 22], "b": [8, 18, 31]}, index=["x", "y", "z"])
    out = disclosure.disclose(t, total_row="Total", total_col="Total")
    # Rounded cells: a = 10, 15, 20; b = 10, 20, 30.
    assert out.loc["Total", "a"] == 45  # not round(47) = 45 by chance: check b too
    assert out.loc["Total", "b"] == 60  # true 57 -> round(57) would be 55; recomputed from rounded: 60
    assert out.loc["x", "Total"] == 20  # 10 + 10 (true 20)
    assert out.loc["y", "Total"] == 35  # 15 + 20 (true 31 -> would round to 30)
    assert out.loc["Total", "Total"] == 105
    # An existing total row/column is replaced, not counted as a cell.
    t2 = t.copy()
    t2["Total"] = t2.sum(axis=1)
    t2.loc["Total"] = t2.sum(axis=0)
    out2 = disclosure.disclose(t2, total_row="Total", total_col="Total")
    pd.testing.assert_frame_equal(out2, out, check_like=True)


def test_secondary_suppression_in_a_row():
    # Row totals only: row "x" has one small cell (3) -> the next-smallest cell in that row (20) goes too.
    t = pd.DataFrame({"a": [3, 40], "b": [20, 50], "c": [60, 70]}, index=["x", "y"])
    out = disclosure.disclose(t, total_col="Total")
    assert out.loc["x", "a"] is pd.NA
    assert out.loc["x", "b"] is pd.NA  # secondary: 3 could otherwise be recovered as Total - 20 - 60
    assert out.loc["x", "c"] == 60
    assert out.loc["x", "Total"] == 85  # 5 + 20 + 60 from rounded cells
    # Row y untouched; columns have no total, so no column-wise secondary suppression.
    assert out.loc["y"].tolist() == [40, 50, 70, 160]
    assert ("x", "b") in out.attrs["disclosure"]["secondary"]
    # Subtraction cannot recover the suppressed cell any more: two unknowns in the row.
    assert out.loc["x", ["a", "b", "c"]].isna().sum() == 2


def test_secondary_suppression_in_a_column():
    t = pd.DataFrame({"n": [5, 30, 12, 90], "m": [50, 50, 50, 50]}, index=list("abcd"))
    out = disclosure.disclose(t, total_row="Total")
    assert out.loc["a", "n"] is pd.NA
    assert out.loc["c", "n"] is pd.NA  # next smallest in the column (12)
    assert out.loc["b", "n"] == 30 and out.loc["d", "n"] == 90
    assert out["m"].tolist() == [50, 50, 50, 50, 200]
    assert out.loc["Total", "n"] == 5 + 30 + 10 + 90


def test_secondary_suppression_skips_zero_and_iterates_until_stable():
    # Column a: 4 suppressed -> 9 suppressed (smallest non-zero; the 0 is skipped). Rows w and z then each
    # hold one suppressed cell, so a second cell goes in each; column b then has two. Stable.
    t = pd.DataFrame({"a": [4, 0, 9, 100], "b": [40, 30, 60, 100]}, index=["w", "x", "z", "y"])
    out = disclosure.disclose(t, total_row="Total", total_col="Total")
    assert out.loc["x", "a"] == 0
    assert out.loc["x", "b"] == 30
    suppressed = {(r, c) for r, c in out.attrs["disclosure"]["suppressed"]}
    assert suppressed == {("w", "a"), ("z", "a"), ("w", "b"), ("z", "b")}
    full = out.isna().to_numpy()
    for line in list(full) + list(full.T):  # no row or column with exactly one suppressed cell
        assert line.sum() != 1, out


def test_secondary_suppression_random_tables_never_leave_a_lone_cell():
    rng = np.random.default_rng(20210802)
    for _ in range(200):
        shape = rng.integers(2, 6, size=2)
        values = rng.choice([0, 1, 2, 5, 7, 8, 12, 30, 100], size=shape)
        t = pd.DataFrame(values, columns=[f"c{j}" for j in range(shape[1])])
        out = disclosure.disclose(t, total_row="Total", total_col="Total")
        full = out.isna().to_numpy()
        for line in list(full) + list(full.T):
            assert line.sum() != 1, (t, out)
        assert disclosure.check_disclosure(out, threshold=7, base=5).empty


def test_small_total_is_suppressed():
    t = pd.DataFrame({"a": [3], "b": [0]}, index=["x"])
    out = disclosure.disclose(t, total_col="Total")
    assert out.loc["x", "Total"] is pd.NA
    assert out.loc["x", "a"] is pd.NA
    assert out.loc["x", "b"] == 0


@pytest.mark.parametrize("bad, message", [([1, -2, 3], "negative"), ([1, 2.5, 3], "non-integer"),
                                          ([1, None, 3], "missing"), (["1", "x", "3"], "non-numeric")])
def test_errors_name_the_column(bad, message):
    t = pd.DataFrame({"good": [10, 20, 30], "bad_column": bad})
    with pytest.raises(ValueError, match=rf"'bad_column'.*{message}|{message}.*'bad_column'"):
        disclosure.disclose(t, count_columns=["good", "bad_column"])


def test_default_count_columns_include_all_numeric():
    t = pd.DataFrame({"label": ["a", "b"], "x": [1, 20], "y": [2.0, 30.0]})
    out = disclosure.disclose(t)
    assert out["x"].isna().tolist() == [True, False]
    assert out["y"].isna().tolist() == [True, False]


# --------------------------------------------------------------------------------------------------
# check_disclosure, percentages, formatting
# --------------------------------------------------------------------------------------------------


def test_check_disclosure_finds_offending_cells():
    t = pd.DataFrame({"a": [0, 3, 50], "b": [7, 8, 12]}, index=["x", "y", "z"])
    found = disclosure.check_disclosure(t, threshold=7)
    assert set(zip(found["row"], found["column"])) == {("y", "a"), ("x", "b")}
    assert disclosure.check_disclosure(disclosure.disclose(t, total_row="Total", total_col="Total"), threshold=7).empty
    # With base: unrounded values are flagged too.
    found_base = disclosure.check_disclosure(t, threshold=7, base=5)
    assert ("y", "b") in set(zip(found_base["row"], found_base["column"]))  # 8 is not a multiple of 5


def test_check_disclosure_accepts_rounded_values_at_the_threshold():
    t = pd.DataFrame({"n": [11, 14, 30]})
    out = disclosure.disclose(t, threshold=10, base=10)  # 11, 14 -> 10
    assert disclosure.check_disclosure(out, threshold=10, base=10).empty
    # A 5 in a base-5 table would reveal a 3-7 count: flagged.
    assert len(disclosure.check_disclosure(pd.DataFrame({"n": [5, 10]}), threshold=7, base=5)) == 1


def test_disclosed_percent_uses_disclosed_counts():
    num = pd.Series([10, pd.NA, 15, 5], dtype="Int64")
    den = pd.Series([40, 30, pd.NA, 0], dtype="Int64")
    pct = disclosure.disclosed_percent(num, den)
    assert pct.iloc[0] == 25.0
    assert pct.iloc[1:].isna().all()
    assert disclosure.disclosed_percent(1, 3, digits=2) == 33.33


def test_format_disclosed():
    out = disclosure.disclose(pd.DataFrame({"n": [3, 1234]}))
    out["pct"] = [np.nan, 12.345]
    shown = disclosure.format_disclosed(out)
    assert shown["n"].tolist() == ["*", "1,235"]
    assert shown["pct"].tolist() == ["*", "12.3"]


# --------------------------------------------------------------------------------------------------
# Table 1 and pathway counts
# --------------------------------------------------------------------------------------------------


def test_table1_raw_counts_sum(small_frame):
    t = T.table1(small_frame, disclose=False)
    cols = [*study.GROUPS, study.MISSING_LABEL, "Total"]
    assert list(dict.fromkeys(t.columns.get_level_values(0))) == cols
    referred = t.loc[("Referred", "n")].xs("n", level="statistic")
    assert referred["White British"] == 20 and referred["Black African"] == 12
    assert referred["Asian"] == 5 and referred["Missing"] == 3 and referred["Total"] == 40
    for variable in ["Age band", "Gender", "Year of referral", "Borough", "Source of referral"]:
        block = t.loc[variable].xs("n", axis=1, level="statistic")
        pd.testing.assert_series_equal(block.sum(axis=0).astype(int), referred.astype(int), check_names=False)
        pct = t.loc[variable].xs("%", axis=1, level="statistic")
        assert np.allclose(pct[["White British", "Black African", "Total"]].sum(axis=0), 100, atol=0.3)
    assessed = t.loc[("Assessed", "n (% of referred)")]
    treated = t.loc[("Treated", "n (% of assessed)")]
    assert assessed[("White British", "n")] == 15 and assessed[("White British", "%")] == 75.0
    assert treated[("White British", "n")] == 12 and treated[("White British", "%")] == 80.0  # 12/15 assessed
    assert treated[("Black African", "%")] == 50.0  # 4 of 8 assessed, not 4 of 12 referred
    assert assessed[("Total", "n")] == 28 and treated[("Total", "n")] == 19


def test_table1_disclosed_passes_check(small_frame):
    t = T.table1(small_frame, disclose=True)
    counts = t.xs("n", axis=1, level="statistic")
    assert disclosure.check_disclosure(counts, threshold=7, base=5).empty
    assert counts.loc[("Referred", "n"), "Asian"] is pd.NA  # 5 referred
    assert counts.loc[("Referred", "n"), "White British"] == 20
    # % recomputed from disclosed counts: White British assessed 15 (shown 15) of 20.
    assert t.loc[("Assessed", "n (% of referred)"), ("White British", "%")] == 75.0
    shown = T.format_table1(t)
    assert shown.loc[("Referred", "n"), "Asian"] == "*"


def test_table1_tableone_runs(small_frame):
    t1 = T.table1_tableone(small_frame)
    text = t1.tableone.to_string()
    assert T.TABLEONE_MISSING_GROUP in text and "White British" in text
    # no empty tableone "Missing" column beside "Missing ethnicity": every variable shown is complete
    assert "Missing" not in set(t1.tableone.columns.get_level_values(-1))


def test_table1_tableone_treated_among_assessed(small_frame):
    """The treated row's % is treated / assessed (the paper's denominator), never treated / referred."""
    t1 = T.table1_tableone(small_frame)
    table = t1.tableone
    label = f"{T.TABLEONE_TREATED_LABEL}, n (%)"
    # White British: 20 referred, 15 assessed, 12 treated -> 80.0% of the assessed (not 60.0% of referred).
    assert table.loc[(label, "Yes"), ("Grouped by ethnicity", "White British")].strip() == "12 (80.0)"
    assert table.loc[(label, "No"), ("Grouped by ethnicity", "White British")].strip() == "3 (20.0)"
    # Black African: 12 referred, 8 assessed, 4 treated -> 50.0%.
    assert table.loc[(label, "Yes"), ("Grouped by ethnicity", "Black African")].strip() == "4 (50.0)"
    # Missing ethnicity: 3 assessed, 1 treated; Overall: 28 assessed, 19 treated.
    assert table.loc[(label, "Yes"), ("Grouped by ethnicity", T.TABLEONE_MISSING_GROUP)].strip() == "1 (33.3)"
    assert table.loc[(label, "Yes"), ("Grouped by ethnicity", "Overall")].strip() == "19 (67.9)"
    # No "None" level: the not-assessed are not in the treated row at all.
    treated_levels = [lvl for var, lvl in table.index if var == label]
    assert treated_levels == ["Yes", "No"]
    # The denominator is shown: the number assessed per group.
    n_row = table.loc[(T.TABLEONE_ASSESSED_N_LABEL, ""), ("Grouped by ethnicity", "White British")]
    assert str(n_row).strip() == "15"
    # Every group: % shown equals treated / assessed from the frame.
    eth = small_frame["ethnicity"]
    for group in ["White British", "Black African", "Asian"]:
        rows = small_frame[(eth == group) & (small_frame["assessed"] == 1)]
        expected = 100 * (rows["treated"] == 1).sum() / len(rows)
        cell = table.loc[(label, "Yes"), ("Grouped by ethnicity", group)]
        assert float(cell.split("(")[1].rstrip(") ")) == pytest.approx(expected, abs=0.05)
    # The referral rows keep all referrals as denominator: Assessed among referred, White British 15 of 20.
    assessed_label = [var for var, _ in table.index if var.startswith("Assessed")][0]
    assert table.loc[(assessed_label, "Yes"), ("Grouped by ethnicity", "White British")].strip() == "15 (75.0)"


def test_pathway_counts_denominators(small_frame):
    pc = T.pathway_counts(small_frame)
    assert list(pc.index) == [*study.GROUPS, study.MISSING_LABEL, "Total"]
    wb = pc.loc["White British"]
    assert (wb["referred"], wb["assessed"], wb["treated"]) == (20, 15, 12)
    assert wb["pct_assessed"] == pytest.approx(75.0)
    assert wb["pct_treated"] == pytest.approx(80.0)  # among the assessed
    assert wb["treated_per_1000_referred"] == pytest.approx(600.0)
    ba = pc.loc["Black African"]
    assert ba["pct_treated"] == pytest.approx(50.0) and ba["treated_per_1000_referred"] == pytest.approx(1000 * 4 / 12)
    assert pc.loc["Total", ["referred", "assessed", "treated"]].tolist() == [40, 28, 19]
    assert pc.loc["Missing", "referred"] == 3
    assert np.isnan(pc.loc["Black Caribbean", "pct_assessed"])  # 0 referred: no rate


def test_pathway_counts_disclosed(small_frame):
    pc = T.pathway_counts(small_frame, disclose=True)
    assert disclosure.check_disclosure(pc, threshold=7, count_columns=T.PATHWAY_COUNT_COLUMNS).empty
    assert pc.loc["White British", "referred"] == 20
    assert pc.loc["Asian", "referred"] is pd.NA
    # rate recomputed from disclosed counts (15 / 20), not from raw counts
    assert pc.loc["White British", "pct_assessed"] == pytest.approx(75.0)
    exact = T.pathway_counts(small_frame, disclose=True, exact_rates=True)
    # 20 referred, 15 assessed: 5 not assessed is a small count, so the exact rate is not shown
    assert np.isnan(exact.loc["White British", "pct_assessed"])
    assert np.isnan(exact.loc["Asian", "pct_assessed"])  # its counts are suppressed
    for col in T.PATHWAY_COUNT_COLUMNS:
        assert pc[col].isna().sum() != 1  # a column total is shown: never a lone suppressed cell


def test_pathway_counts_disclosed_rates_come_from_exact_counts():
    """Synthetic cohort: counts are rounded to 5, but % treated is the exact one (to 1 dp): 58 / 77, not 60 / 75."""
    n_ref, n_ass, n_tr = 103, 77, 58
    frame = pd.DataFrame({
        "ethnicity": pd.Categorical(["White British"] * n_ref + ["Black African"] * 40, categories=study.GROUPS),
        "assessed": [1] * n_ass + [0] * (n_ref - n_ass) + [1] * 30 + [0] * 10,
        "treated": [1.0] * n_tr + [0.0] * (n_ass - n_tr) + [np.nan] * (n_ref - n_ass) + [1.0] * 25 + [0.0] * 5
        + [np.nan] * 10,
    })
    assert T.pathway_counts(frame, disclose=True).loc["White British", "pct_treated"] == pytest.approx(80.0)
    pc = T.pathway_counts(frame, disclose=True, exact_rates=True)
    wb = pc.loc["White British"]
    assert (wb["referred"], wb["assessed"], wb["treated"]) == (105, 75, 60)
    assert wb["pct_treated"] == round(100 * 58 / 77, 1) == 75.3  # from disclosed counts it would be 80.0
    assert wb["pct_assessed"] == round(100 * 77 / 103, 1)
    assert wb["treated_per_1000_referred"] == round(1000 * 58 / 103)
    assert np.isnan(pc.loc["Black African", "pct_treated"])  # 30 assessed, 25 treated: 5 untreated is small
    assert "exact counts" in pc.attrs["rates"]


def test_pathway_counts_rejects_treated_without_assessment(small_frame):
    bad = small_frame.copy()
    bad.loc[bad.index[16], "treated"] = 1.0  # White British row 16 was not assessed
    with pytest.raises(ValueError, match="treated"):
        T.pathway_counts(bad)


# --------------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------------


def test_format_estimates():
    est = tidy([("complete_case", "unadjusted", "White British", 1.0, np.nan, np.nan),
                ("complete_case", "unadjusted", "Black Caribbean", 0.7712, 0.7231, 0.8149)])
    assert replication.format_estimates(est).tolist() == ["1.00 (reference)", "0.77 (0.72-0.81)"]
    assert replication.format_estimates(est, digits=3).tolist()[1] == "0.771 (0.723-0.815)"


def test_published_vs_ours_flags(published):
    ours = tidy([
        ("complete_case", "unadjusted", "White British", 1.0, np.nan, np.nan),
        ("complete_case", "unadjusted", "Black Caribbean", 0.7712, 0.73, 0.82),  # rounds to 0.77, inside
        ("complete_case", "unadjusted", "Black African", 0.70, 0.64, 0.77),  # 0.70: inside 0.68-0.81, not 0.74
        ("complete_case", "unadjusted", "Asian", 0.90, 0.84, 0.96),  # outside 0.71-0.82
        ("complete_case", "adjusted_full", "Asian", 0.80, 0.74, 0.86),  # no paper row in the fixture
    ])
    cmp = replication.published_vs_ours(ours, published).set_index("ethnicity")
    assert list(cmp.columns) == ["analysis", "model", "ours_or", "ours_ci", "paper_or", "paper_ci",
                                 "inside_paper_ci", "rounds_to_printed", "ours_pct", "paper_pct"]
    assert len(cmp) == 4  # one row per printed estimate
    assert cmp.loc["Black Caribbean", "rounds_to_printed"] and cmp.loc["Black Caribbean", "inside_paper_ci"]
    assert cmp.loc["Black Caribbean", "ours_ci"] == "0.73-0.82"
    assert cmp.loc["Black Caribbean", "paper_ci"] == "0.72-0.81"
    assert not cmp.loc["Black African", "rounds_to_printed"] and cmp.loc["Black African", "inside_paper_ci"]
    assert not cmp.loc["Asian", "rounds_to_printed"] and not cmp.loc["Asian", "inside_paper_ci"]
    assert cmp.loc["White British", "rounds_to_printed"] and cmp.loc["White British", "ours_ci"] == "reference"


def test_published_vs_ours_percent_treated_from_exact_counts(published):
    ours = tidy([("complete_case", "unadjusted", "White British", 1.0, np.nan, np.nan),
                 ("complete_case", "unadjusted", "Black Caribbean", 0.77, 0.72, 0.81)])
    ours["n"] = [27617.0, 5951.0]
    ours["n_events"] = [19995.0, 3975.0]
    cmp = replication.published_vs_ours(ours, published).set_index("ethnicity")
    assert cmp.loc["White British", "ours_pct"] == pytest.approx(100 * 19995 / 27617)  # 72.40..., unrounded
    assert round(cmp.loc["Black Caribbean", "ours_pct"], 1) == cmp.loc["Black Caribbean", "paper_pct"] == 66.8
    assert np.isnan(cmp.loc["Asian", "ours_pct"])  # no estimate, no counts
    ours.loc[1, ["n", "n_events"]] = [10.0, 5.0]  # a real extract's rare group: 5 treated of 10
    blanked = replication.published_vs_ours(ours, published, threshold=7).set_index("ethnicity")
    assert np.isnan(blanked.loc["Black Caribbean", "ours_pct"])
    assert blanked.loc["White British", "ours_pct"] == pytest.approx(100 * 19995 / 27617)


def test_published_vs_ours_missing_estimate_is_false(published):
    ours = tidy([("complete_case", "unadjusted", "Black Caribbean", 0.77, 0.72, 0.81)])
    cmp = replication.published_vs_ours(ours, published).set_index("ethnicity")
    assert not cmp.loc["Asian", "inside_paper_ci"] and not cmp.loc["Asian", "rounds_to_printed"]
    assert np.isnan(cmp.loc["Asian", "ours_or"])


def test_tidy_published(published):
    t = replication.tidy_published(published)
    assert {"stage", "outcome_level", "estimate"} <= set(t.columns)
    assert (t["stage"] == "treatment").all()
    assert t.loc[t["ethnicity"] == "Black Caribbean", "estimate"].item() == 0.77
