"""Tests for helpers.tables: disclosure control, Table 1, pathway counts, comparison with the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import disclosure, study, tables
from helpers import simulation as S
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


# --------------------------------------------------------------------------------------------------
# disclose: primary suppression and rounding
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# disclose: totals and secondary suppression
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# check_disclosure, percentages, formatting
# --------------------------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def one_cohort():
    w = S.make_world("mnar", n_referrals=6000)
    counts = np.random.default_rng(3).multinomial(6000, w.probabilities)
    return S.frame_from_counts(w.cells, counts)


def test_missing_by(one_cohort) -> None:
    frame, true_group = one_cohort
    by_stage = tables.missing_by(frame, "pathway_stage")
    assert by_stage["n"].sum() == len(frame)
    assert by_stage["n_missing"].sum() == frame["ethnicity"].isna().sum()
    by_true = tables.missing_by(frame, true_group, name="true group")
    assert list(by_true.index) == study.GROUPS and by_true.index.name == "true group"
    wb = np.asarray(true_group) == "White British"
    assert by_true.loc["White British", "pct_missing"] == pytest.approx(100 * frame["ethnicity"].isna()[wb].mean())
    # ethnicity recorded -> never missing by its own recorded value
    assert (tables.missing_by(frame.dropna(subset=["ethnicity"]), "ethnicity")["n_missing"] == 0).all()
