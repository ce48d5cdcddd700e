"""Tests of helpers.teaching: the statsmodels fits notebooks 06-10 show give the project's estimates; teaching variants.

The formulas are the ones the notebooks write, fitted on rows of the default cohort with statsmodels' formula
API (an independent implementation) and compared with ``models.fit_stage`` to 1e-6 on log ORs / RRRs and SEs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from helpers import design, imputation, models, pipeline, pooling, study, tables, teaching

ETHNICITY = "C(ethnicity, Treatment(reference='White British'))"
FULL = f"{ETHNICITY} + C(age_band) + C(gender) + C(year) + C(borough)"
AGE_GENDER_YEAR = f"{ETHNICITY} + C(age_band) + C(gender) + C(year)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pipeline.load_study_data({}).frame


@pytest.fixture(scope="module")
def recorded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["ethnicity"].notna()].copy()


def test_logit_assessment_full_matches_fit_stage(frame, recorded):
    res = smf.logit(f"assessed ~ {FULL}", data=recorded, missing="raise").fit(disp=0)
    cmp = teaching.compare_with_statsmodels(res, models.fit_stage(frame, "assessment", "adjusted_full"))
    assert list(cmp["ethnicity"]) == study.GROUPS[1:]
    assert teaching.largest_difference(cmp) < 1e-6
    assert (cmp["se_helpers"] > 0).all()


@pytest.mark.parametrize("model, rhs", [("adjusted_full", FULL), ("adjusted_age_gender_year", AGE_GENDER_YEAR),
                                        ("unadjusted", ETHNICITY)])
def test_logit_treatment_among_assessed_matches_fit_stage(frame, recorded, model, rhs):
    assessed = recorded[recorded["assessed"] == 1]
    res = smf.logit(f"treated ~ {rhs}", data=assessed, missing="raise").fit(disp=0)
    cmp = teaching.compare_with_statsmodels(res, models.fit_stage(frame, "treatment", model))
    assert len(cmp) == len(study.GROUPS) - 1
    assert teaching.largest_difference(cmp) < 1e-6


def test_agreement_summary_says_whether_every_difference_is_below_the_tolerance():
    close = pd.DataFrame({"ethnicity": ["Asian", "Mixed"], "diff_log_or": [1e-9, -3e-7], "diff_se": [0.0, 2e-8]})
    assert teaching.agreement_summary(close).splitlines() == [
        "Ethnicity coefficients compared: 2",
        "Largest difference, log OR or standard error, smf.logit vs models.fit_stage, below 1e-6: True"]
    far = close.assign(diff_se=[0.0, -2e-6])  # one SE off by more than the tolerance
    assert teaching.agreement_summary(far).endswith("below 1e-6: False")


def test_binomial_glm_on_pattern_counts_matches(frame):
    """The same model on covariate-pattern counts (what makes the project's fitter fast), with a standard GLM."""
    table, _, _ = design.design(frame, study.MODELS["adjusted_full"], stage="assessment")
    res = smf.glm(f"n_1 + n_0 ~ {FULL}", data=table, family=sm.families.Binomial()).fit()
    cmp = teaching.compare_with_statsmodels(res, models.fit_stage(frame, "assessment", "adjusted_full"))
    assert teaching.largest_difference(cmp) < 1e-6
    assert int(table[["n_0", "n_1"]].to_numpy().sum()) == int(frame["ethnicity"].notna().sum())


def test_mnlogit_referral_source_with_gp_base_matches_fit_stage(frame, recorded):
    rows = recorded.copy()
    rows["source_code"] = pd.Categorical(rows["referral_source"], categories=study.SOURCES).codes
    assert study.SOURCES[0] == study.SOURCE_BASE == "GP" and (rows["source_code"] >= 0).all()
    res = smf.mnlogit(f"source_code ~ {FULL}", data=rows, missing="raise").fit(disp=0)
    cmp = teaching.compare_with_statsmodels(res, models.fit_stage(frame, "referral_source", "adjusted_full"),
                                           outcome_levels=study.SOURCES[1:])
    assert len(cmp) == 3 * (len(study.GROUPS) - 1)
    assert teaching.largest_difference(cmp) < 1e-6


def test_wrong_reference_group_is_an_error_not_a_mismatch(frame, recorded):
    res = smf.logit("assessed ~ C(ethnicity, Treatment(reference='Asian'))", data=recorded).fit(disp=0)
    with pytest.raises(ValueError, match="reference group is another one"):
        teaching.compare_with_statsmodels(res, models.fit_stage(frame, "assessment", "unadjusted"))


def test_multinomial_needs_outcome_levels_and_a_real_difference_shows(frame, recorded):
    rows = recorded.copy()
    rows["source_code"] = pd.Categorical(rows["referral_source"], categories=study.SOURCES).codes
    res = smf.mnlogit(f"source_code ~ {ETHNICITY}", data=rows).fit(disp=0)
    tidy = models.fit_stage(frame, "referral_source", "unadjusted")
    with pytest.raises(ValueError, match="pass outcome_levels"):
        teaching.compare_with_statsmodels(res, tidy)
    # columns named in the wrong order: the comparison runs and shows the difference
    swapped = teaching.compare_with_statsmodels(res, tidy, outcome_levels=["Community", "Self", "Other"])
    assert teaching.largest_difference(swapped) > 0.01


def test_ci_position_counts_whole_intervals():
    tidy = pd.DataFrame({
        "ethnicity": ["White British", "A", "B", "C", "D"],
        "ci_low": [np.nan, 0.7, 0.98, 1.01, 0.5],
        "ci_high": [np.nan, 0.9, 1.02, 1.2, 0.999],
    })
    got = teaching.ci_position(tidy)
    assert got.to_dict() == {"whole CI below 1": 2, "whole CI above 1": 1, "CI includes 1": 1, "total": 4}


def test_rounded_never_shows_negative_zero():
    out = teaching.rounded(pd.Series([-0.04, -0.0, 0.04, -0.06]), 1)
    assert [str(v) for v in out] == ["0.0", "0.0", "0.0", "-0.1"]
    frame_out = teaching.rounded(pd.DataFrame({"gap": [-1e-9, 2.26]}), 1)
    assert frame_out["gap"].map(str).tolist() == ["0.0", "2.3"]


def test_ci_agreement_compares_rounded_limits():
    published = pd.DataFrame({"analysis": ["complete_case"] * 3, "model": ["unadjusted"] * 3,
                              "ethnicity": ["White British", "A", "B"],
                              "ci_low": [1.0, 0.72, 0.62], "ci_high": [1.0, 0.81, 0.80]})
    estimates = pd.DataFrame({"stage": ["treatment"] * 3, "analysis": ["complete_case"] * 3,
                              "model": ["unadjusted"] * 3, "ethnicity": ["White British", "A", "B"],
                              "ci_low": [np.nan, 0.7249, 0.6151], "ci_high": [np.nan, 0.8151, 0.8049]})
    got = teaching.ci_agreement(estimates, published).set_index("ethnicity")
    assert list(got.index) == ["A", "B"]
    assert got.loc["A", "same_rounded"] is np.False_ and got.loc["A", "largest_gap"] == pytest.approx(0.01)
    assert got.loc["B", "same_rounded"] is np.True_ and got.loc["B", "largest_gap"] == 0
    with pytest.raises(ValueError, match="no rows for analysis 'weighted_mi'"):
        teaching.ci_agreement(estimates, published, analysis="weighted_mi")


def test_index_blurbs_of_the_stage_notebooks_are_their_opening_sentences():
    """The book's index shows each notebook's first sentence; a wrapped line starting with ** once hid 08's."""
    import nbformat

    from helpers import book

    openings = {"06_referral_source": "The first stage", "08_assessment": "The second stage",
                "09_treatment": "The third stage"}
    for name, start in openings.items():
        nb = nbformat.read(study.PROJECT_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert book.notebook_summary(nb).startswith(start), name


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


def test_pooled_estimate_from_smf_logit_on_each_completed_data_set_matches_mi_estimates(frame):
    """Notebook 11's route: smf.logit on each completed data set, Rubin's rules by hand = the helpers' pooled table."""
    data = pipeline.load_study_data({})
    result = imputation.impute_ethnicity(frame, pipeline.population_margin(data), 2, np.random.default_rng(7))
    pooled = pooling.mi_estimates_from_rows(frame, result, progress=False)
    pooled = pooled[(pooled["stage"] == "treatment") & (pooled["model"] == "adjusted_full")].set_index("ethnicity")
    q, u = [], []
    for completed in result.completed:
        rows = frame.assign(ethnicity=completed)
        rows = rows[rows["assessed"] == 1]
        res = smf.logit(f"treated ~ {FULL}", data=rows, missing="raise").fit(disp=0)
        terms = teaching.ethnicity_terms(res.params.index)
        q.append([res.params[terms[g]] for g in study.GROUPS[1:]])
        u.append([res.bse[terms[g]] ** 2 for g in study.GROUPS[1:]])
    q, u = np.array(q), np.array(u)
    m = len(result.completed)
    between = q.var(axis=0, ddof=1)
    assert (between > 0).all()  # the imputations differ: the between-imputation term is really tested
    total = u.mean(axis=0) + (1 + 1 / m) * between
    ours = pooled.loc[study.GROUPS[1:]]
    np.testing.assert_allclose(q.mean(axis=0), ours["log_estimate"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.sqrt(total), ours["se"], atol=1e-6, rtol=0)
