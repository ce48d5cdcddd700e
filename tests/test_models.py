"""Tests of helpers.models: count-based fits must equal row-level statsmodels fits, exactly enough to trust.

Every comparison is against an independent implementation (statsmodels on expanded rows, or a row-level
sandwich written out here), on seeded simulated data with categorical covariates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from helpers import design, fitting, models, study
from helpers.fitting import SparseCellWarning
from helpers.planted import planted_frame

# ------------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return planted_frame(6000, seed=11)


# ------------------------------------------------------------------------------------- low level: logit


# -------------------------------------------------------------------------- low level: weighted multinomial


# ---------------------------------------------------------------------------- planted effects are recovered


# ------------------------------------------------------------------- high level against formula statsmodels


def _formula_rhs(covariates: list[str]) -> str:
    terms = [f"C(ethnicity, Treatment(reference='{study.REFERENCE_GROUP}'))"]
    terms += [f"C({c}, Treatment(reference={study.COVARIATE_LEVELS[c][0]!r}))" for c in covariates]
    return " + ".join(terms)


@pytest.mark.parametrize("stage", study.STAGES)
@pytest.mark.parametrize("model", list(study.MODELS))
def test_fit_stage_equals_formula_statsmodels(frame, stage, model):
    covs = study.MODELS[model]
    spec = study.STAGE_SPECS[stage]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseCellWarning)
        tidy = models.fit_stage(frame, stage, model)
    data = frame[frame["ethnicity"].notna()].copy()
    if spec.among_assessed:
        data = data[data["assessed"] == 1]
    rhs = _formula_rhs(covs)
    if spec.kind == "logit":
        data["y"] = data[spec.outcome].astype(int)
        ref = smf.logit(f"y ~ {rhs}", data).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
        params = {"": ref.params}
        bse = {"": ref.bse}
    else:
        data["y"] = data[spec.outcome].cat.codes  # GP (base) = 0
        ref = smf.mnlogit(f"y ~ {rhs}", data).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
        params = {lv: ref.params.iloc[:, j] for j, lv in enumerate(study.SOURCES[1:])}
        bse = {lv: ref.bse.iloc[:, j] for j, lv in enumerate(study.SOURCES[1:])}
    assert set(tidy["outcome_level"]) == set(params)
    assert (tidy["n_model"] == int(ref.nobs)).all()
    pop = frame[frame["assessed"] == 1] if spec.among_assessed else frame
    assert (tidy["n_excluded"] == int(pop["ethnicity"].isna().sum())).all()
    for row in tidy.itertuples():
        sub = data[data["ethnicity"] == row.ethnicity]
        assert row.n == len(sub)
        if spec.kind == "logit":
            assert row.n_events == int(sub["y"].sum())
        else:
            assert row.n_events == int((sub[spec.outcome] == row.outcome_level).sum())
        if row.ethnicity == study.REFERENCE_GROUP:
            assert row.estimate == 1.0 and np.isnan(row.ci_low) and np.isnan(row.se)
            continue
        key = [k for k in params[row.outcome_level].index if k.endswith(f"[T.{row.ethnicity}]")]
        assert len(key) == 1
        b, s = params[row.outcome_level][key[0]], bse[row.outcome_level][key[0]]
        assert row.log_estimate == pytest.approx(b, rel=1e-6, abs=1e-8)
        assert row.se == pytest.approx(s, rel=1e-6)
        assert row.estimate == pytest.approx(np.exp(b), rel=1e-6)
        assert row.ci_low == pytest.approx(np.exp(b - 1.959963984540054 * s), rel=1e-6)
        assert row.ci_high == pytest.approx(np.exp(b + 1.959963984540054 * s), rel=1e-6)
        assert row.p_value == pytest.approx(ref.pvalues[key[0]] if spec.kind == "logit"
                                            else ref.pvalues.iloc[:, study.SOURCES.index(row.outcome_level) - 1][key[0]],
                                            rel=1e-5, abs=1e-12)


def test_fit_all_shape_and_order(frame):
    tidy = models.fit_all(frame)
    assert list(tidy.columns) == models.TIDY_COLUMNS
    G = len(study.GROUPS)
    # referral source: 3 outcome levels x 8 groups; logit stages: 8 groups; x 3 models
    assert len(tidy) == 3 * (3 * G + G + G)
    assert list(dict.fromkeys(tidy["stage"])) == study.STAGES
    assert list(dict.fromkeys(tidy["model"])) == list(study.MODELS)
    assert list(dict.fromkeys(tidy.loc[tidy.stage == "referral_source", "outcome_level"])) == ["Self", "Community", "Other"]
    assert (tidy.loc[tidy.stage != "referral_source", "outcome_level"] == "").all()
    assert (tidy["analysis"] == "complete_case").all()
    # the plan refit with the same ethnicity gives the identical table
    pd.testing.assert_frame_equal(models.ModelPlan(frame).fit_all(), tidy)


# ------------------------------------------------------------------------------ missing data and errors


def test_missing_ethnicity_is_counted_not_silently_dropped():
    f = planted_frame(3000, seed=21, missing_eth=0.0)
    f.loc[f.index[:37], "ethnicity"] = np.nan
    n_missing_assessed = int((f.loc[f.index[:37], "assessed"] == 1).sum())
    tidy = models.fit_all(f)
    ref = tidy[tidy.stage != "treatment"]
    assert (ref["n_excluded"] == 37).all()
    assert (ref["n_model"] == 3000 - 37).all()
    tr = tidy[tidy.stage == "treatment"]
    assert (tr["n_excluded"] == n_missing_assessed).all()
    assert (tr["n_model"] == int((f.assessed == 1).sum()) - n_missing_assessed).all()
    ex = design.exclusions(f)
    assert (ex.loc[ex.stage != "treatment", "missing_ethnicity"] == 37).all()
    assert (ex["n_population"] == ex["n_model"] + ex["n_excluded"]).all()
    # a missing covariate is counted too, in its own column
    f.loc[f.index[100:110], "borough"] = np.nan
    ex = design.exclusions(f).set_index(["stage", "model"])
    assert ex.loc[("assessment", "adjusted_full"), "missing_borough"] == 10
    assert ex.loc[("assessment", "adjusted_full"), "n_excluded"] == 47
    assert ex.loc[("assessment", "unadjusted"), "n_excluded"] == 37


def test_bad_column_name_raises_value_error_naming_it(frame):
    with pytest.raises(ValueError, match=r"'borough'.*valid columns"):
        models.fit_stage(frame.drop(columns="borough"), "assessment", "adjusted_full")
    with pytest.raises(ValueError, match="valid stages"):
        models.fit_stage(frame, "referal", "unadjusted")
    with pytest.raises(ValueError, match="valid models"):
        models.fit_stage(frame, "assessment", "adjusted")
    bad = frame.copy()
    bad["gender"] = bad["gender"].astype(str).replace({"Male": "M"})
    with pytest.raises(ValueError, match="gender"):
        models.fit_stage(bad, "assessment", "adjusted_age_gender_year")


def test_plain_string_columns_are_coded_with_study_levels(frame):
    plain = frame.copy()
    for c in ["ethnicity", "age_band", "gender", "borough", "referral_source"]:
        plain[c] = plain[c].astype(object)
    pd.testing.assert_frame_equal(models.fit_stage(plain, "referral_source", "adjusted_full"),
                                  models.fit_stage(frame, "referral_source", "adjusted_full"))


# ------------------------------------------------------------------------------------------ sparse cells


def _frame_with_sparse_black_other() -> pd.DataFrame:
    f = planted_frame(2000, seed=31, missing_eth=0.0)
    bo = f.index[f.ethnicity == "Black Other"]
    f = f.drop(bo[3:])  # 3 Black Other referrals left
    bo = f.index[f.ethnicity == "Black Other"]
    f.loc[bo, "assessed"] = 1
    f.loc[bo, "treated"] = 0.0
    f.loc[bo, "referral_source"] = "GP"
    return f.reset_index(drop=True)


def test_sparse_cell_warning_names_the_group_logit():
    f = _frame_with_sparse_black_other()
    with pytest.warns(SparseCellWarning, match="ethnicity=Black Other has 0 treated among 3 assessed"):
        tidy = models.fit_stage(f, "treatment", "unadjusted")
    row = tidy[tidy.ethnicity == "Black Other"].iloc[0]
    assert not row.estimable and np.isnan(row.estimate) and np.isnan(row.ci_high)
    assert row.n == 3 and row.n_events == 0
    others = tidy[(tidy.ethnicity != "Black Other")]
    assert others.estimable.all() and np.isfinite(others.estimate).all()
    with pytest.warns(SparseCellWarning, match="ethnicity=Black Other has 3 assessed among 3 referred"):
        models.fit_stage(f, "assessment", "unadjusted")


def test_sparse_cell_warning_names_the_group_mnlogit():
    f = _frame_with_sparse_black_other()
    with pytest.warns(SparseCellWarning) as record:
        tidy = models.fit_stage(f, "referral_source", "adjusted_full")
    messages = [str(w.message) for w in record]
    for level in ["Self", "Community", "Other"]:
        assert any(f"ethnicity=Black Other has 0 with outcome {level} among 3 referred" in m for m in messages)
    bo = tidy[tidy.ethnicity == "Black Other"]
    assert not bo.estimable.any() and bo.estimate.isna().all()


def test_sparse_cell_low_level_and_absent_group():
    X = np.array([[1, 0], [1, 1]], dtype=float)
    with pytest.warns(SparseCellWarning, match=r"ethnicity=Mixed has 0 successes among 4 trials"):
        res = fitting.fit_logit_counts(X, np.array([3, 0]), np.array([10, 4]),
                                      names=["Intercept", "ethnicity[Mixed]"])
    assert 1 in res.not_estimable
    f = planted_frame(1500, seed=41, missing_eth=0.0)
    f = f[f.ethnicity != "Other"].reset_index(drop=True)
    with pytest.warns(SparseCellWarning, match="ethnicity=Other has no rows"):
        tidy = models.fit_stage(f, "assessment", "unadjusted")
    row = tidy[tidy.ethnicity == "Other"].iloc[0]
    assert row.n == 0 and not row.estimable


def test_no_warning_on_healthy_data(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.fit_all(frame)


# ------------------------------------------------------------------------------- imputation entry, speed


def test_plan_refit_with_imputed_ethnicity_equals_fresh_fit(frame):
    rng = np.random.default_rng(51)
    imputed = frame["ethnicity"].copy()
    miss = imputed.isna().to_numpy()
    imputed[miss] = rng.choice(study.GROUPS, size=int(miss.sum()))
    plan = models.ModelPlan(frame)
    via_plan = plan.fit_all(imputed, analysis="weighted_mi")
    fresh = models.fit_all(frame.assign(ethnicity=imputed), analysis="weighted_mi")
    pd.testing.assert_frame_equal(via_plan, fresh)
    assert (via_plan["n_excluded"] == 0).all()
    sf = plan.fit("treatment", "adjusted_full", plan.ethnicity_codes(imputed))
    assert sf.result.converged
    with pytest.raises(ValueError, match="valid analyses"):
        models.fit_all(frame, analysis="mi")


def test_predicted_probabilities_unadjusted_equal_observed(frame):
    pp = models.predicted_probabilities(frame, "treatment", "unadjusted")
    np.testing.assert_allclose(pp["probability"], pp["observed"], rtol=1e-8)
    pp3 = models.predicted_probabilities(frame, "referral_source", "adjusted_full")
    sums = pp3.groupby("ethnicity", observed=True)["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-10)
    assert set(pp3.outcome_level) == set(study.SOURCES)


def test_select_filters_a_tidy_table_like_the_boolean_mask_it_replaces():
    est = pd.DataFrame({
        "stage": ["treatment", "treatment", "assessment", "treatment"],
        "model": ["adjusted_full", "unadjusted", "adjusted_full", "adjusted_full"],
        "ethnicity": pd.Categorical(["White British", "Asian", "Asian", "Mixed"], categories=study.GROUPS),
        "estimate": [1.0, 0.8, 0.9, 1.2],
    }, index=[10, 11, 12, 13])
    by_mask = est[(est["stage"] == "treatment") & (est["model"] == "adjusted_full")]
    pd.testing.assert_frame_equal(models.select(est, stage="treatment", model="adjusted_full"), by_mask)
    assert list(models.select(est, stage="treatment", model="adjusted_full", reference=False).index) == [13]
    assert list(models.select(est, ethnicity=["Asian", "Mixed"]).index) == [11, 12, 13]
    assert models.select(est, stage="referral_source").empty
    with pytest.raises(ValueError, match=r"select: no column \['analysis'\] in the table; its columns: stage"):
        models.select(est, analysis="complete_case")
