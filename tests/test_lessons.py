"""Tests of helpers.teaching: the statsmodels fits notebooks 05-08 show give the project's estimates.

The formulas are the ones the notebooks write, fitted on rows of the default cohort with statsmodels' formula
API (an independent implementation) and compared with ``models.fit_stage`` to 1e-6 on log ORs / RRRs and SEs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from helpers import design, imputation, models, pipeline, pooling, study, teaching

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
    """The book's index shows each notebook's first sentence; a wrapped line starting with ** once hid 06's."""
    import nbformat

    from helpers import book

    openings = {"05_referral_source": "The first stage", "06_assessment": "The second stage",
                "07_treatment": "The third stage"}
    for name, start in openings.items():
        nb = nbformat.read(study.PROJECT_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert book.notebook_summary(nb).startswith(start), name


def test_pooled_estimate_from_smf_logit_on_each_completed_data_set_matches_mi_estimates(frame):
    """Notebook 08's route: smf.logit on each completed data set, Rubin's rules by hand = the helpers' pooled table."""
    data = pipeline.load_study_data({})
    result = imputation.impute_ethnicity(frame, pipeline.population_margin(data), 2, np.random.default_rng(7))
    pooled = pooling.mi_estimates(frame, result, progress=False)
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
