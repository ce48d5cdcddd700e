"""Tests of the helpers added for notebooks 05-07: custom covariate sets, the wrong treatment denominator,
planted values beside estimates, and direction checks. Independent references: statsmodels on rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from helpers import models, replication, simulation, study, tables, teaching


def _frame(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    eth = rng.choice(study.GROUPS, size=n, p=[0.4, 0.12, 0.12, 0.05, 0.1, 0.07, 0.1, 0.04])
    src = rng.choice(study.SOURCES, size=n, p=[0.4, 0.42, 0.06, 0.12])
    gender = rng.choice(study.GENDERS, size=n)
    minority = eth != study.REFERENCE_GROUP
    p_ass = 1 / (1 + np.exp(-(0.9 - 0.3 * minority + 0.4 * (src == "Self"))))
    assessed = (rng.random(n) < p_ass).astype(int)
    p_trt = 1 / (1 + np.exp(-(0.8 - 0.3 * minority)))
    treated = np.where(assessed == 1, (rng.random(n) < p_trt).astype(float), np.nan)
    return pd.DataFrame({
        "ethnicity": pd.Categorical(eth, categories=study.GROUPS),
        "referral_source": pd.Categorical(src, categories=study.SOURCES),
        "gender": pd.Categorical(gender, categories=study.GENDERS),
        "assessed": assessed,
        "treated": treated,
    })


def _statsmodels_or(df: pd.DataFrame, formula: str, group: str) -> float:
    fit = smf.logit(formula, data=df).fit(disp=0)
    return float(np.exp(fit.params[f"C(ethnicity, Treatment('White British'))[T.{group}]"]))


def test_fit_custom_matches_statsmodels_with_referral_source() -> None:
    df = _frame()
    ours = teaching.fit_custom(df, "assessment", ["gender", "referral_source"], model="plus_source")
    rows = df.assign(ethnicity=df["ethnicity"].astype(str), referral_source=df["referral_source"].astype(str),
                     gender=df["gender"].astype(str))
    formula = ("assessed ~ C(ethnicity, Treatment('White British')) + C(gender) "
               "+ C(referral_source, Treatment('GP'))")
    for g in ["Black African", "Asian"]:
        got = float(ours.loc[ours["ethnicity"] == g, "estimate"].iloc[0])
        assert got == pytest.approx(_statsmodels_or(rows, formula, g), rel=1e-6)
    assert set(ours["model"]) == {"plus_source"}
    assert list(ours.columns) == models.TIDY_COLUMNS


def test_fit_custom_rejects_bad_covariates() -> None:
    df = _frame(800)
    with pytest.raises(ValueError, match="ethnicity"):
        teaching.fit_custom(df, "assessment", ["ethnicity"])
    with pytest.raises(ValueError, match="unknown stage"):
        teaching.fit_custom(df, "discharge", [])


def test_fit_custom_with_standard_covariates_equals_fit_stage() -> None:
    df = _frame(3000)
    a = teaching.fit_custom(df, "treatment", [], model="unadjusted")
    b = models.fit_stage(df, "treatment", "unadjusted")
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-10)


def test_treated_among_referred_uses_all_referrals() -> None:
    df = _frame()
    ours = teaching.treated_among_referred(df, model="unadjusted")
    assert set(ours["stage"]) == {"treated_among_referred"}
    wb = ours[ours["ethnicity"] == study.REFERENCE_GROUP]
    assert int(wb["n"].iloc[0]) == int((df["ethnicity"] == study.REFERENCE_GROUP).sum())
    rows = df.assign(ethnicity=df["ethnicity"].astype(str), y=df["treated"].fillna(0.0))
    expected = _statsmodels_or(rows, "y ~ C(ethnicity, Treatment('White British'))", "Mixed")
    got = float(ours.loc[ours["ethnicity"] == "Mixed", "estimate"].iloc[0])
    assert got == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="unknown model"):
        teaching.treated_among_referred(df, model="everything")


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


def test_pathway_odds_toy_table() -> None:
    toy = pd.DataFrame({"referred": [100, 100], "assessed": [80, 60], "treated": [60, 45]},
                       index=pd.Index(["A", "B"], name="group"))
    out = teaching.pathway_odds(toy, reference="A")
    b = out.loc["B"]
    assert b["treated_per_100_assessed"] == pytest.approx(75.0)
    assert b["treated_per_100_referred"] == pytest.approx(b["assessed_per_100_referred"] * b["treated_per_100_assessed"] / 100)
    assert b["or_treated_given_assessed"] == pytest.approx(1.0)
    assert b["or_assessed"] == pytest.approx((0.6 / 0.4) / (0.8 / 0.2))
    assert b["or_treated_given_referred"] == pytest.approx((0.45 / 0.55) / (0.6 / 0.4))
    # odds do not multiply along the pathway
    assert b["or_treated_given_referred"] != pytest.approx(b["or_assessed"] * b["or_treated_given_assessed"])
    # the split is exact; with no treatment gap the treatment part is 1
    assert b["or_part_assessment"] * b["or_part_treatment"] == pytest.approx(b["or_treated_given_referred"])
    assert b["or_part_treatment"] == pytest.approx(1.0)
    assert out.loc["A"].filter(like="or_").to_numpy() == pytest.approx(np.ones(5))
    with pytest.raises(ValueError, match="reference"):
        teaching.pathway_odds(toy, reference="C")
    with pytest.raises(ValueError, match="treated <= assessed"):
        teaching.pathway_odds(toy.assign(treated=[90, 45]), reference="A")


def test_pathway_odds_equals_unadjusted_models() -> None:
    df = _frame()
    counts = tables.pathway_counts(df).loc[study.GROUPS]
    out = teaching.pathway_odds(counts)
    wrong = teaching.treated_among_referred(df, "unadjusted").set_index("ethnicity")["estimate"]
    trt = models.fit_stage(df, "treatment", "unadjusted").set_index("ethnicity")["estimate"]
    for g in study.GROUPS[1:]:
        assert out.loc[g, "or_treated_given_referred"] == pytest.approx(wrong[g], rel=1e-6)
        assert out.loc[g, "or_treated_given_assessed"] == pytest.approx(trt[g], rel=1e-6)


def test_planted_coverage_random() -> None:
    from helpers import params

    p = params.validate({"n_referrals": 6000})
    out = simulation.planted_coverage_random(p, "assessment", seeds=[11, 12])
    assert list(out.columns) == ["seed", "inside", "planted"]
    assert out["seed"].tolist() == [11, 12]
    assert (out["planted"] == 7).all()
    assert ((out["inside"] >= 0) & (out["inside"] <= out["planted"])).all()
