"""Tests of helpers.replication: ours beside the paper's Table 4 and beside the planted / full-data truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import replication, study


def _estimates() -> pd.DataFrame:
    return pd.DataFrame({
        "stage": ["referral_source", "referral_source", "assessment", "assessment"],
        "outcome_level": ["Self", "Community", "", ""],
        "model": "adjusted_full",
        "analysis": "complete_case",
        "ethnicity": ["Asian", "Asian", "Asian", "Mixed"],
        "estimate": [0.74, 1.2, 0.8, 1.02],
        "ci_low": [0.70, 1.05, 0.75, 0.97],
        "ci_high": [0.79, 1.37, 0.86, 1.08],
    })


def test_planted_vs_estimated() -> None:
    targets = pd.DataFrame({
        "quantity": ["rrr_adjusted_full", "rrr_adjusted_full", "or_adjusted_full", "or_unadjusted"],
        "stage": ["referral_source", "referral_source", "assessment", "treatment"],
        "ethnicity": ["Asian", "Asian", "Asian", "Asian"],
        "level": ["Community", "Self", "", ""],
        "value": ["1.0", "0.75", "0.9", "0.76"],
        "source": ["assumed", "assumed", "assumed", "printed"],
    })
    rs = replication.planted_vs_estimated(_estimates(), targets, "referral_source")
    assert list(rs["outcome_level"]) == ["Self", "Community"]  # study.SOURCES order
    assert list(rs["planted_in_ci"]) == [True, False]
    ass = replication.planted_vs_estimated(_estimates(), targets, "assessment")
    assert len(ass) == 1 and not bool(ass["planted_in_ci"].iloc[0])
    with pytest.raises(ValueError, match="no rows"):
        replication.planted_vs_estimated(_estimates(), targets, "assessment", model="unadjusted")


def test_check_directions() -> None:
    out = replication.check_directions(_estimates(), "assessment", {"Asian": "lower", "Mixed": "lower"})
    assert list(out["direction_holds"]) == [True, False]
    assert list(out["ci_excludes_1"]) == [True, False]
    rs = replication.check_directions(_estimates(), "referral_source", {("Asian", "Community"): "higher"})
    assert bool(rs["direction_holds"].iloc[0]) and bool(rs["ci_excludes_1"].iloc[0])
    with pytest.raises(ValueError, match="lower"):
        replication.check_directions(_estimates(), "assessment", {"Asian": "down"})
    with pytest.raises(ValueError, match="no single estimate"):
        replication.check_directions(_estimates(), "assessment", {"Other": "lower"})


def test_planted_vs_estimated_on_the_real_targets_file() -> None:
    targets = pd.read_csv(study.PUBLISHED_DIR / "cohort_targets.csv", dtype=str, keep_default_na=False)
    est = _estimates()
    out = replication.planted_vs_estimated(est, targets, "referral_source")
    assert len(out) == 21 and set(out["source"]) == {"assumed"}


def tidy(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"stage": "treatment", "outcome_level": "", "model": m, "analysis": a, "ethnicity": e,
             "estimate": est, "ci_low": lo, "ci_high": hi, "n": 100}
            for a, m, e, est, lo, hi in rows
        ]
    )


def test_format_estimates():
    est = tidy([("complete_case", "unadjusted", "White British", 1.0, np.nan, np.nan),
                ("complete_case", "unadjusted", "Black Caribbean", 0.7712, 0.7231, 0.8149)])
    assert replication.format_estimates(est).tolist() == ["1.00 (reference)", "0.77 (0.72-0.81)"]
    assert replication.format_estimates(est, digits=3).tolist()[1] == "0.771 (0.723-0.815)"


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


def test_methods_vs_truth_and_accuracy() -> None:
    def tidy(analysis, values):
        return pd.DataFrame({"stage": "treatment", "outcome_level": "", "model": "adjusted_full",
                             "analysis": analysis, "ethnicity": ["White British", "Asian", "Mixed"],
                             "estimate": values, "ci_low": [np.nan, 0.7, 0.8], "ci_high": [np.nan, 0.9, 0.85]})
    truth = tidy("full_data_truth", [1.0, 0.8, 0.9])
    est = pd.concat([tidy("complete_case", [1.0, 0.8, 0.81]), tidy("weighted_mi", [1.0, 0.88, 0.9])])
    comp = replication.methods_vs_truth(est, truth)
    assert len(comp) == 4 and study.REFERENCE_GROUP not in set(comp["ethnicity"])
    row = comp[(comp.method == "complete_case") & (comp.ethnicity == "Mixed")].iloc[0]
    assert row["log_difference"] == pytest.approx(np.log(0.81 / 0.9))
    assert not row["covers_truth"]
    acc = replication.accuracy_vs_truth(comp)
    assert list(acc.index) == ["complete_case", "weighted_mi"]
    assert acc.loc["complete_case", "cis_covering_truth"] == 1 and acc.loc["complete_case", "groups"] == 2
    assert acc.loc["weighted_mi", "max_abs_log_difference"] == pytest.approx(abs(np.log(0.88 / 0.8)))
    with pytest.raises(ValueError, match="no estimates"):
        replication.methods_vs_truth(est, truth, stage="assessment")
