"""Tests of helpers.models: count-based fits must equal row-level statsmodels fits, exactly enough to trust.

Every comparison is against an independent implementation (statsmodels on expanded rows, or a row-level
sandwich written out here), on seeded simulated data with categorical covariates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from helpers import design, fitting, models, study
from helpers.fitting import SparseCellWarning

# ------------------------------------------------------------------------------------------------ helpers


def _dummies(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Treatment coding, level 0 as reference."""
    return (codes[:, None] == np.arange(1, n_levels)[None, :]).astype(float)


def _row_design(rng: np.random.Generator, n: int, levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Row-level categorical covariate codes and the intercept + dummies design."""
    codes = np.column_stack([rng.integers(0, L, n) for L in levels])
    X = np.column_stack([np.ones(n)] + [_dummies(codes[:, i], L) for i, L in enumerate(levels)])
    return codes, X


def _aggregate(X: np.ndarray, y: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of X and the outcome counts per unique row."""
    Xu, inv = np.unique(X, axis=0, return_inverse=True)
    inv = inv.ravel()
    counts = np.zeros((Xu.shape[0], K))
    np.add.at(counts, (inv, y), 1.0)
    return Xu, counts


def _softmax(eta: np.ndarray) -> np.ndarray:
    full = np.column_stack([np.zeros(eta.shape[0]), eta])
    full -= full.max(axis=1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=1, keepdims=True)


def _sample_mn(rng: np.random.Generator, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    pr = _softmax(X @ beta)
    return (pr.cumsum(axis=1) > rng.random(X.shape[0])[:, None]).argmax(axis=1)


def make_frame(n: int, seed: int = 0, missing_eth: float = 0.05) -> pd.DataFrame:
    """A synthetic analysis frame as in docs/contracts.md, with ethnic gaps planted at every stage."""
    rng = np.random.default_rng(seed)
    G = len(study.GROUPS)
    eth = rng.choice(G, size=n, p=[0.4, 0.12, 0.12, 0.05, 0.1, 0.07, 0.1, 0.04])
    age = rng.integers(0, len(study.AGE_BANDS), n)
    gen = rng.integers(0, 2, n)
    yr = rng.integers(0, 4, n)
    bor = rng.integers(0, 4, n)
    eff = np.array([0.0, 0.4, 0.3, 0.5, -0.2, 0.2, -0.1, 0.1])
    lin = np.column_stack(
        [(-0.6 + 0.3 * k) + eff[eth] * (k - 1) + 0.05 * age - 0.1 * gen * k + 0.1 * (bor == 1) for k in range(1, 4)]
    )
    pr = _softmax(lin)
    src = (pr.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
    la = 0.8 - 0.4 * eff[eth] + 0.05 * age - 0.1 * gen + 0.05 * yr + 0.2 * (bor == 2)
    assessed = (rng.random(n) < 1 / (1 + np.exp(-la))).astype(int)
    lt = 0.4 - 0.6 * eff[eth] - 0.05 * age + 0.1 * yr - 0.1 * (bor == 3)
    treated = np.where(assessed == 1, (rng.random(n) < 1 / (1 + np.exp(-lt))).astype(float), np.nan)
    eth_obs = np.where(rng.random(n) < missing_eth, -1, eth)

    def cat(codes, levels):
        return pd.Categorical.from_codes(codes, categories=levels)

    return pd.DataFrame(
        {
            "referral_id": [f"R{i:06d}" for i in range(n)],
            "ethnicity": cat(eth_obs, study.GROUPS),
            "age_band": cat(age, study.AGE_BANDS),
            "gender": cat(gen, study.GENDERS),
            "year": cat(yr, study.YEARS),
            "borough": cat(bor, study.BOROUGHS),
            "referral_source": cat(src, study.SOURCES),
            "assessed": assessed,
            "treated": treated,
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(6000, seed=11)


# ------------------------------------------------------------------------------------- low level: logit


def test_logit_counts_equals_row_level_statsmodels():
    rng = np.random.default_rng(1)
    codes, X = _row_design(rng, 3000, (5, 3, 4))
    beta = rng.normal(0, 0.5, X.shape[1])
    y = (rng.random(X.shape[0]) < 1 / (1 + np.exp(-X @ beta))).astype(int)
    ref = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    Xu, counts = _aggregate(X, y, 2)
    res = fitting.fit_logit_counts(Xu, counts[:, 1], counts.sum(axis=1))
    assert res.converged
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(res.cov, ref.cov_params(), rtol=1e-6, atol=1e-10)
    assert res.loglike == pytest.approx(ref.llf, rel=1e-10)


def test_mnlogit_counts_equals_row_level_statsmodels():
    rng = np.random.default_rng(2)
    codes, X = _row_design(rng, 4000, (4, 2, 3))
    K = 4
    beta = rng.normal(0, 0.5, (X.shape[1], K - 1))
    y = _sample_mn(rng, X, beta)
    ref = sm.MNLogit(y, X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    Xu, counts = _aggregate(X, y, K)
    res = fitting.fit_mnlogit_counts(Xu, counts)
    assert res.converged
    assert res.params.shape == ref.params.shape
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-6)
    # full covariance, which also checks the outcome-major ordering
    np.testing.assert_allclose(res.cov, np.asarray(ref.cov_params()), rtol=1e-6, atol=1e-10)
    assert res.loglike == pytest.approx(ref.llf, rel=1e-10)


# -------------------------------------------------------------------------- low level: weighted multinomial


def test_weighted_mnlogit_integer_weights_equal_row_replication():
    rng = np.random.default_rng(3)
    codes, X = _row_design(rng, 1500, (3, 4))
    K = 3
    y = _sample_mn(rng, X, rng.normal(0, 0.4, (X.shape[1], K - 1)))
    Xu, counts = _aggregate(X, y, K)
    w = np.array([1, 3, 2])
    res = fitting.fit_mnlogit_counts(Xu, counts, weights=w)
    # row replication: each row of outcome k appears w_k times
    rep = np.repeat(np.arange(X.shape[0]), w[y])
    ref = sm.MNLogit(y[rep], X[rep]).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.cov, np.asarray(ref.cov_params()), rtol=1e-8, atol=1e-12)
    assert res.loglike == pytest.approx(ref.llf, rel=1e-10)


def test_weighted_mnlogit_pattern_weights_equal_replicated_counts():
    rng = np.random.default_rng(4)
    codes, X = _row_design(rng, 1200, (3, 2))
    y = _sample_mn(rng, X, rng.normal(0, 0.4, (X.shape[1], 2)))
    Xu, counts = _aggregate(X, y, 3)
    W = rng.integers(1, 4, counts.shape)
    res = fitting.fit_mnlogit_counts(Xu, counts, weights=W)
    ref = fitting.fit_mnlogit_counts(Xu, counts * W)
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.cov, ref.cov, rtol=1e-8, atol=1e-12)


def _row_sandwich(X: np.ndarray, y: np.ndarray, w: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Sandwich H^-1 (sum w_i^2 s_i s_i') H^-1 from per-row scores, written out independently."""
    K = params.shape[1] + 1
    pr = _softmax(X @ params)
    d = np.eye(K)[y] - pr  # (n, K)
    scores = np.stack([np.kron(d[i, 1:], X[i]) for i in range(X.shape[0])])  # outcome-major
    meat = (scores * (w**2)[:, None]).T @ scores
    H = np.zeros_like(meat)
    for i in range(X.shape[0]):
        q = pr[i, 1:]
        H += w[i] * np.kron(np.diag(q) - np.outer(q, q), np.outer(X[i], X[i]))
    Hi = np.linalg.inv(H)
    return Hi @ meat @ Hi


def test_robust_sandwich_equals_row_level_sandwich():
    rng = np.random.default_rng(5)
    codes, X = _row_design(rng, 800, (3, 2))
    K = 3
    y = _sample_mn(rng, X, rng.normal(0, 0.4, (X.shape[1], K - 1)))
    w_out = np.array([1.0, 2.5, 0.7])
    w = w_out[y]
    Xu, counts = _aggregate(X, y, K)
    res = fitting.fit_mnlogit_counts(Xu, counts, weights=w_out, robust=True)
    assert res.cov_type == "robust"
    V = _row_sandwich(X, y, w, res.params)
    np.testing.assert_allclose(res.cov, V, rtol=1e-8, atol=1e-14)
    res_ss = fitting.fit_mnlogit_counts(Xu, counts, weights=w_out, robust=True, small_sample=True)
    np.testing.assert_allclose(res_ss.cov, V * len(y) / (len(y) - 1), rtol=1e-8, atol=1e-14)


def test_robust_pattern_weights_equal_row_level_sandwich():
    """Weights varying by pattern and outcome (patterns x K), as the calibrated imputation model uses."""
    rng = np.random.default_rng(6)
    codes, X = _row_design(rng, 600, (4,))
    y = _sample_mn(rng, X, rng.normal(0, 0.4, (X.shape[1], 2)))
    Xu, inv = np.unique(X, axis=0, return_inverse=True)
    inv = inv.ravel()
    counts = np.zeros((Xu.shape[0], 3))
    np.add.at(counts, (inv, y), 1.0)
    W = rng.uniform(0.5, 3.0, counts.shape)
    res = fitting.fit_mnlogit_counts(Xu, counts, weights=W, robust=True)
    V = _row_sandwich(X, y, W[inv, y], res.params)
    np.testing.assert_allclose(res.cov, V, rtol=1e-8, atol=1e-14)


def test_binary_robust_matches_statsmodels_hc0():
    rng = np.random.default_rng(7)
    codes, X = _row_design(rng, 2000, (4, 3))
    y = (rng.random(X.shape[0]) < 1 / (1 + np.exp(-(X @ rng.normal(0, 0.5, X.shape[1]))))).astype(int)
    Xu, counts = _aggregate(X, y, 2)
    res = fitting.fit_mnlogit_counts(Xu, counts, robust=True)
    ref = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-12, cov_type="HC0")
    np.testing.assert_allclose(res.params[:, 0], ref.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.bse[:, 0], ref.bse, rtol=1e-6)
    # probability weights: GLM var_weights with HC0 is the same weighted sandwich
    w_out = np.array([1.0, 1.8])
    res_w = fitting.fit_mnlogit_counts(Xu, counts, weights=w_out, robust=True)
    glm = sm.GLM(y, X, family=sm.families.Binomial(), var_weights=w_out[y]).fit(cov_type="HC0", tol=1e-12)
    np.testing.assert_allclose(res_w.params[:, 0], glm.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res_w.bse[:, 0], glm.bse, rtol=1e-6)


# ---------------------------------------------------------------------------- planted effects are recovered


def test_planted_odds_ratios_recovered_large_sample():
    rng = np.random.default_rng(8)
    n_pat_rows = 400_000
    codes, X = _row_design(rng, n_pat_rows, (8, 6, 2))
    beta = np.concatenate([[0.3], np.linspace(-0.6, 0.6, X.shape[1] - 1)])
    y = (rng.random(n_pat_rows) < 1 / (1 + np.exp(-X @ beta))).astype(int)
    Xu, counts = _aggregate(X, y, 2)
    res = fitting.fit_logit_counts(Xu, counts[:, 1], counts.sum(axis=1))
    assert np.all(np.abs(res.params - beta) < 4 * res.bse)

    B = np.column_stack([beta, -beta[::-1] * 0.5, np.full_like(beta, 0.2)])
    y3 = _sample_mn(rng, X, B)
    Xu, counts = _aggregate(X, y3, 4)
    res3 = fitting.fit_mnlogit_counts(Xu, counts)
    assert np.all(np.abs(res3.params - B) < 4 * res3.bse)


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


def test_pattern_counts_equal_pandas_groupby(frame):
    covs = ["age_band", "gender", "year"]
    pc = design.pattern_counts(frame, covs, "treated", "logit")
    data = frame[(frame.assessed == 1) & frame.ethnicity.notna()]
    g = data.groupby(["ethnicity", *covs], observed=True)["treated"].agg(["sum", "count"]).reset_index()
    got = pc.patterns.assign(succ=pc.counts[:, 1], trials=pc.counts.sum(axis=1))
    merged = got.merge(g, on=["ethnicity", *covs], how="outer", validate="one_to_one")
    assert len(merged) == len(g) == len(got)
    np.testing.assert_array_equal(merged["succ"], merged["sum"])
    np.testing.assert_array_equal(merged["trials"], merged["count"])
    assert pc.n_rows == len(data)
    assert pc.n_excluded == int(((frame.assessed == 1) & frame.ethnicity.isna()).sum())


def test_design_matrix_names_and_reference(frame):
    pc = design.pattern_counts(frame, ["age_band", "year"], "assessed", "logit")
    X, names = design.design_matrix(pc.patterns, ["age_band", "year"])
    assert names[0] == "Intercept"
    assert "ethnicity[Black Caribbean]" in names and "ethnicity[White British]" not in names
    assert "age_band[25-34]" in names and "age_band[18-24]" not in names
    assert "year[2014]" in names
    assert X.shape == (len(pc.patterns), len(names))
    # ethnicity reference is White British even if the categories come in another order
    shuffled = pc.patterns.copy()
    shuffled["ethnicity"] = shuffled["ethnicity"].cat.reorder_categories(list(reversed(study.GROUPS)))
    X2, names2 = design.design_matrix(shuffled, ["age_band", "year"])
    assert "ethnicity[White British]" not in names2
    table, X3, names3 = design.design(frame, ["age_band"], stage="treatment")
    assert X3.shape[0] == len(table) and "n_1" in table.columns


# ------------------------------------------------------------------------------ missing data and errors


def test_missing_ethnicity_is_counted_not_silently_dropped():
    f = make_frame(3000, seed=21, missing_eth=0.0)
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
    f = make_frame(2000, seed=31, missing_eth=0.0)
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
    f = make_frame(1500, seed=41, missing_eth=0.0)
    f = f[f.ethnicity != "Other"].reset_index(drop=True)
    with pytest.warns(SparseCellWarning, match="ethnicity=Other has no rows"):
        tidy = models.fit_stage(f, "assessment", "unadjusted")
    row = tidy[tidy.ethnicity == "Other"].iloc[0]
    assert row.n == 0 and not row.estimable


def test_separation_and_collinearity_are_reported_once():
    X = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=float)
    X = np.column_stack([X, X[:, 1] * X[:, 2]])
    with pytest.warns(SparseCellWarning, match=r"a:b has coefficient .*separation"):
        res = fitting.fit_logit_counts(X, np.array([5, 6, 7, 0]), np.full(4, 10),
                                      names=["Intercept", "a[x]", "b[y]", "a:b"])
    assert res.not_estimable == [3]
    Xc = np.column_stack([X[:, :2], X[:, 1]])  # duplicated column
    with pytest.warns(fitting.NonConvergenceWarning) as record:
        fitting.fit_logit_counts(Xc, np.array([5, 6, 7, 3]), np.full(4, 10))
    assert sum("pseudo-inverse" in str(w.message) for w in record) == 1


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


def test_large_pattern_fit_converges_to_the_planted_coefficients():
    # Its speed is measured in benchmarks/run_all.py (task "pattern_fit"), not here.
    rng = np.random.default_rng(61)
    n, p = 10_000, 30
    X = np.column_stack([np.ones(n), (rng.random((n, p - 1)) < 0.3).astype(float)])
    beta = rng.normal(0, 0.2, (p, 3))
    pr = _softmax(X @ beta)
    counts = np.stack([rng.multinomial(50, pr[i]) for i in range(n)]).astype(float)
    res = fitting.fit_mnlogit_counts(X, counts)
    assert res.converged
    # 500,000 draws over 30 parameters: each estimate lies within 5 of its own standard errors of the truth.
    assert np.all(np.abs(res.params - beta) < 5 * res.bse)


def test_predicted_probabilities_unadjusted_equal_observed(frame):
    pp = models.predicted_probabilities(frame, "treatment", "unadjusted")
    np.testing.assert_allclose(pp["probability"], pp["observed"], rtol=1e-8)
    pp3 = models.predicted_probabilities(frame, "referral_source", "adjusted_full")
    sums = pp3.groupby("ethnicity", observed=True)["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-10)
    assert set(pp3.outcome_level) == set(study.SOURCES)
