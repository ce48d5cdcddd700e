"""Tests of helpers.fitting: count-based logit / multinomial logit fits equal row-level statsmodels fits."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from helpers import fitting
from helpers.fitting import SparseCellWarning


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


def _softmax(eta: np.ndarray) -> np.ndarray:
    full = np.column_stack([np.zeros(eta.shape[0]), eta])
    full -= full.max(axis=1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=1, keepdims=True)


def _sample_mn(rng: np.random.Generator, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    pr = _softmax(X @ beta)
    return (pr.cumsum(axis=1) > rng.random(X.shape[0])[:, None]).argmax(axis=1)


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


def test_the_same_design_in_any_memory_order_gives_the_same_bytes():
    """A column-ordered copy of X (``x[:, keep]`` makes one) used to give estimates differing in the last bits,
    because BLAS sums in the order of the memory layout; the fitter now works on a C-ordered copy."""
    rng = np.random.default_rng(21)
    codes, X = _row_design(rng, 4000, (6, 3, 5))
    K = 5
    y = _sample_mn(rng, X, rng.normal(0, 0.5, (X.shape[1], K - 1)))
    Xu, counts = _aggregate(X, y, K)
    column_ordered = np.asfortranarray(Xu)
    assert not column_ordered.flags.c_contiguous
    c_fit = fitting.fit_mnlogit_counts(Xu, counts)
    f_fit = fitting.fit_mnlogit_counts(column_ordered, counts)
    np.testing.assert_array_equal(f_fit.params, c_fit.params)
    np.testing.assert_array_equal(f_fit.cov, c_fit.cov)
    w = rng.uniform(0.5, 2.0, K)
    np.testing.assert_array_equal(fitting.fit_mnlogit_counts(column_ordered, counts, weights=w, robust=True).cov,
                                  fitting.fit_mnlogit_counts(Xu, counts, weights=w, robust=True).cov)


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
