"""Maximum-likelihood logistic and multinomial logistic fits on covariate-pattern counts (the engine).

Why counts: every covariate in the study is categorical, so the likelihood of N rows depends on the data only
through the counts of (covariate pattern x outcome). Fitting on at most a few thousand patterns gives the same
maximum-likelihood estimates, the same log-likelihood and the same inverse-information standard errors as a
row-level fit (statsmodels ``Logit``/``MNLogit``), in milliseconds instead of minutes, which is what makes
multiple imputation (many completed data sets x nine models) cheap.

This module knows arrays only (no study, no frame): :func:`fit_logit_counts`, :func:`fit_mnlogit_counts`
(weighted, optionally robust), and two pieces the imputation draws share (:func:`mnlogit_probabilities`,
:func:`mvn_factor`). ``helpers.design`` codes a frame into patterns; ``helpers.models`` fits the study's
nine models with it.

Sparse cells: a level with no events (or no non-events), or an empty outcome category, makes its odds ratio
infinite. This is detected before fitting and reported with a :class:`SparseCellWarning` naming the cell; the
parameter is marked not estimable instead of reporting a meaningless OR of 1e-13.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import linalg as sla
from scipy import stats

__all__ = [
    "FitResult",
    "ModelFitWarning",
    "SparseCellWarning",
    "NonConvergenceWarning",
    "fit_logit_counts",
    "fit_mnlogit_counts",
    "softmax_with_base",
    "mnlogit_probabilities",
    "mvn_factor",
    "Z975",
]


Z975 = float(stats.norm.ppf(0.975))
# A coefficient this large with an SE this large is a separated (infinite) estimate, not a finding.
_HUGE_COEF = 12.0
_HUGE_SE = 50.0


class ModelFitWarning(UserWarning):
    """Base class of the warnings this module raises about a fit."""


class SparseCellWarning(ModelFitWarning):
    """An empty cell (or separation) makes an odds ratio / relative risk ratio infinite, i.e. not estimable."""


class NonConvergenceWarning(ModelFitWarning):
    """Newton-Raphson did not converge, or the information matrix was singular."""



@dataclass
class FitResult:
    """Result of a count-based fit; shapes follow statsmodels (``params`` (p,) or (p, K-1)).

    ``cov`` is the inverse observed information (or the sandwich when ``cov_type == "robust"``), ordered like
    statsmodels ``cov_params()``: for the multinomial model outcome-major, i.e. ``params.ravel(order="F")``.
    ``loglike`` equals the row-level log-likelihood (no binomial/multinomial coefficient), weighted if weights.
    ``not_estimable`` lists flat parameter indices flagged by the sparse-cell/separation checks.
    """

    params: np.ndarray
    cov: np.ndarray
    bse: np.ndarray
    loglike: float
    converged: bool
    n_iter: int
    names: list[str] | None = None
    outcome_levels: list | None = None
    cov_type: str = "nonrobust"
    not_estimable: list[int] = field(default_factory=list)

    @property
    def flat_params(self) -> np.ndarray:
        """Parameters in the order of ``cov`` (outcome-major for the multinomial model)."""
        return np.asarray(self.params).ravel(order="F")


# ----------------------------------------------------------------------------------------------------------
# Low level: Newton-Raphson on counts
# ----------------------------------------------------------------------------------------------------------


def _solve_psd(H: np.ndarray, g: np.ndarray, what: str, warned: list | None = None) -> np.ndarray:
    """Solve H x = g for a positive (semi)definite information matrix; pseudo-inverse only with a warning.

    ``warned`` (a list shared across the iterations of one fit) keeps it to one warning per fit.
    """
    if np.all(np.isfinite(H)) and np.all(np.isfinite(g)):
        try:
            c = sla.cho_factor(H, check_finite=False)
            x = sla.cho_solve(c, g, check_finite=False)
            if np.all(np.isfinite(x)):
                return x
        except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
            pass
    if warned is not None and warned:
        return np.linalg.pinv(H, hermitian=True) @ g
    if warned is not None:
        warned.append(True)
    warnings.warn(
        f"{what}: the information matrix is singular or not positive definite (collinear or empty "
        "design columns?); falling back to the pseudo-inverse, estimates of the affected parameters are "
        "not identified.",
        NonConvergenceWarning,
        stacklevel=4,
    )
    return np.linalg.pinv(H, hermitian=True) @ g


def _inverse_psd(H: np.ndarray, what: str, warned: list | None = None) -> np.ndarray:
    """Inverse of the information matrix (the covariance), pseudo-inverse only with a warning."""
    return _solve_psd(H, np.eye(H.shape[0]), what, warned)


def _newton(
    loglik,
    derivs,
    beta0: np.ndarray,
    max_iter: int,
    tol: float,
    what: str,
    warned: list | None = None,
) -> tuple[np.ndarray, float, np.ndarray, bool, int]:
    """Maximise a concave log-likelihood by Newton-Raphson with step-halving.

    ``loglik(beta) -> float``; ``derivs(beta) -> (score, information)``. Converged when the accepted step
    changes the log-likelihood by less than ``tol * (1 + |ll|)`` or the step is below ``tol`` (relative):
    Newton converges quadratically, so the estimate after that step is accurate far beyond ``tol``.
    """
    beta = beta0.astype(float).copy()
    ll = loglik(beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is the iteration count reported after the loop
        g, H = derivs(beta)
        step = _solve_psd(H, g, what, warned)
        t = 1.0
        for _ in range(50):
            cand = beta + t * step
            ll_new = loglik(cand)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * (1.0 + abs(ll)):
                break
            t *= 0.5
        else:  # no ascent direction found: we are at (numerical) optimum or stuck
            converged = bool(np.max(np.abs(g)) < 1e-6 * (1.0 + abs(ll)))
            break
        dll = ll_new - ll
        dmax = float(np.max(np.abs(t * step))) if step.size else 0.0
        beta, ll = cand, ll_new
        if abs(dll) < tol * (1.0 + abs(ll)) or dmax < tol * (1.0 + float(np.max(np.abs(beta)))):
            converged = True
            break
    _, H = derivs(beta)
    return beta, float(ll), H, converged, it


def _check_X(X: np.ndarray, n: int, what: str) -> np.ndarray:
    """X as a C-ordered float array, checked. C order always: BLAS sums in an order that follows the memory
    layout, so the same numbers in a column-ordered copy (``x[:, keep]`` makes one) would give estimates that
    differ in the last bits, and the same data must give the same bytes however it was sliced."""
    X = np.ascontiguousarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{what}: X must be 2-D (patterns x parameters), got shape {X.shape}")
    if X.shape[0] != n:
        raise ValueError(f"{what}: X has {X.shape[0]} rows but the counts have {n} patterns")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what}: X contains NaN or infinite values")
    return X


_NAME_RE = re.compile(r"^(?P<var>.+)\[(?P<level>.*)\]$")


def _factor_columns(names: Sequence[str] | None, X: np.ndarray) -> dict[str, list[int]]:
    """Group dummy columns by factor from names like ``ethnicity[Black African]`` (only 0/1 columns)."""
    out: dict[str, list[int]] = {}
    if names is None:
        return out
    for j, name in enumerate(names):
        m = _NAME_RE.match(str(name))
        if m is None:
            continue
        out.setdefault(m.group("var"), []).append(j)
    binary = np.all((X == 0) | (X == 1), axis=0)
    return {v: [j for j in cols if binary[j]] for v, cols in out.items() if any(binary[j] for j in cols)}


def _cell_label(name: str) -> str:
    m = _NAME_RE.match(str(name))
    return f"{m.group('var')}={m.group('level')}" if m else str(name)


def _sparse_cells(
    X: np.ndarray,
    a: np.ndarray,
    names: list[str],
    outcome_levels: list,
    reference_levels: dict[str, str] | None,
) -> list[tuple[str, np.ndarray, list[int], str]]:
    """Find levels (dummy = 1, or the reference level: all dummies of a factor = 0) with an empty outcome.

    Returns (cell label, counts by outcome in the cell, affected dummy columns, kind) where kind is
    "level" or "reference". ``a`` is patterns x K (effective) counts.
    """
    found = []
    factors = _factor_columns(names, X)
    if not factors:
        return found
    dummy_cols = [j for cols in factors.values() for j in cols]
    by_level = X[:, dummy_cols].T @ a  # (n dummies, K): counts where the dummy is 1
    empty_rows = np.flatnonzero((by_level.sum(axis=1) > 0) & np.any(by_level == 0, axis=1))
    for r in empty_rows:
        j = dummy_cols[r]
        found.append((_cell_label(names[j]), by_level[r], [j], "level"))
    for var, cols in factors.items():
        ref_mask = ~np.any(X[:, cols] == 1, axis=1)
        tot = a[ref_mask].sum(axis=0)
        if tot.sum() > 0 and np.any(tot == 0):
            ref = (reference_levels or {}).get(var, "the reference level")
            found.append((f"{var}={ref} (reference)", tot, list(cols), "reference"))
    return found


def fit_logit_counts(
    X: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    max_iter: int = 100,
    tol: float = 1e-10,
    names: Sequence[str] | None = None,
    event_words: tuple[str, str] = ("successes", "trials"),
    reference_levels: dict[str, str] | None = None,
) -> FitResult:
    """Binomial logistic regression on aggregated data (one row per covariate pattern).

    Same MLE, log-likelihood and inverse-information covariance as statsmodels ``Logit`` on the rows the
    counts summarise. ``event_words`` (e.g. ("treated", "assessed")) only phrase the sparse-cell warnings.
    """
    y = np.asarray(successes, dtype=float).ravel()
    m = np.asarray(trials, dtype=float).ravel()
    X = _check_X(X, y.shape[0], "fit_logit_counts")
    if np.any(m < 0) or np.any(y < 0) or np.any(y > m):
        raise ValueError("fit_logit_counts: need 0 <= successes <= trials for every pattern")
    p = X.shape[1]
    names_l = list(names) if names is not None else [f"x{j}" for j in range(p)]
    if len(names_l) != p:
        raise ValueError(f"fit_logit_counts: {len(names_l)} names for {p} columns of X")

    not_est: set[int] = set()
    counts2 = np.column_stack([m - y, y])
    ev, tr = event_words
    for label, tot, cols, kind in _sparse_cells(X, counts2, names_l, ["0", "1"], reference_levels):
        n_tot = int(round(tot.sum()))
        n_ev = int(round(tot[1]))
        what = "its odds ratio is" if kind == "level" else f"the odds ratios of {label.split('=')[0]} are"
        warnings.warn(
            f"{label} has {n_ev} {ev} among {n_tot} {tr}: {what} not estimable",
            SparseCellWarning,
            stacklevel=2,
        )
        not_est.update(cols)
        if kind == "reference":
            not_est.add(0)
    if y.sum() == 0 or y.sum() == m.sum():
        warnings.warn(
            f"all patterns have {'no' if y.sum() == 0 else 'only'} {ev}: the model is not estimable",
            SparseCellWarning,
            stacklevel=2,
        )
        not_est.update(range(p))

    def loglik(b: np.ndarray) -> float:
        eta = X @ b
        return float(y @ eta - m @ np.logaddexp(0.0, eta))

    def derivs(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pr = 0.5 * (1.0 + np.tanh(0.5 * (X @ b)))  # stable logistic
        g = X.T @ (y - m * pr)
        H = (X * (m * pr * (1.0 - pr))[:, None]).T @ X
        return g, H

    beta0 = np.zeros(p)
    if p and np.allclose(X[:, 0], 1.0) and m.sum() > 0:
        pbar = np.clip(y.sum() / m.sum(), 1e-6, 1 - 1e-6)
        beta0[0] = np.log(pbar / (1 - pbar))
    warned: list = []
    beta, ll, H, conv, it = _newton(loglik, derivs, beta0, max_iter, tol, "fit_logit_counts", warned)
    cov = _inverse_psd(H, "fit_logit_counts", warned)
    bse = np.sqrt(np.clip(np.diag(cov), 0, None))
    res = FitResult(beta, cov, bse, ll, conv, it, names_l, None, "nonrobust")
    _post_checks(res, not_est, "fit_logit_counts")
    return res


def _post_checks(res: FitResult, not_est: set[int], what: str) -> None:
    """Warn about non-convergence and about huge coefficients with huge SEs not already explained."""
    if not res.converged:
        warnings.warn(
            f"{what}: Newton-Raphson did not converge in {res.n_iter} iterations; estimates may be unreliable",
            NonConvergenceWarning,
            stacklevel=3,
        )
    flat = res.flat_params
    se = np.sqrt(np.clip(np.diag(res.cov), 0, None))
    p = len(res.names) if res.names else flat.size
    bad = np.flatnonzero(~np.isfinite(flat) | ((np.abs(flat) > _HUGE_COEF) & (se > _HUGE_SE)))
    new = [int(i) for i in bad if int(i) not in not_est]
    for i in new:
        name = res.names[i % p] if res.names else f"param {i}"
        if res.outcome_levels is not None:
            name = f"{name} (outcome {res.outcome_levels[1 + i // p]})"
        warnings.warn(
            f"{what}: {name} has coefficient {flat[i]:.1f} with SE {se[i]:.1f}: (quasi-)separation, its "
            "ratio is not estimable",
            SparseCellWarning,
            stacklevel=3,
        )
    res.not_estimable = sorted(not_est | set(new))


def _block_xtwx(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Sum_p W_p (J x J) kron z_p z_p^T, laid out outcome-major (block (j, l) = X' diag(W[:, j, l]) X)."""
    n, p = X.shape
    J = W.shape[1]
    out = np.empty((J * p, J * p))
    for j in range(J):
        for k in range(j, J):
            blk = (X * W[:, j, k][:, None]).T @ X
            out[j * p : (j + 1) * p, k * p : (k + 1) * p] = blk
            if k != j:
                out[k * p : (k + 1) * p, j * p : (j + 1) * p] = blk.T
    return out


def softmax_with_base(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and log-probabilities for linear predictors eta (n, K-1) with base outcome eta_0 = 0."""
    full = np.empty((eta.shape[0], eta.shape[1] + 1))
    full[:, 0] = 0.0
    full[:, 1:] = eta
    mx = full.max(axis=1, keepdims=True)
    logp = full - (mx + np.log(np.exp(full - mx).sum(axis=1, keepdims=True)))
    return np.exp(logp), logp


def fit_mnlogit_counts(
    X: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray | None = None,
    robust: bool = False,
    small_sample: bool = False,
    max_iter: int = 100,
    tol: float = 1e-10,
    names: Sequence[str] | None = None,
    outcome_levels: Sequence | None = None,
    unit_word: str = "observations",
    reference_levels: dict[str, str] | None = None,
) -> FitResult:
    """Multinomial logit on (pattern x outcome) counts; column 0 of ``counts`` is the base outcome.

    ``weights``: length K (one weight per outcome category, the calibration weights of Stata
    ``mi impute wmlogit``) or patterns x K; count n_pk then contributes w_pk * log(pi_pk) to the
    log-likelihood, i.e. exactly what n_pk rows with probability weight w_pk would. statsmodels ``MNLogit``
    takes no weights, hence this implementation.

    ``robust=True``: sandwich variance for probability weights, H^-1 M H^-1 with
    M = sum_p sum_k n_pk w_pk^2 s_pk s_pk' (s_pk the per-row score), i.e. HC0 on the rows. Stata's
    ``mlogit [pw]`` multiplies by N/(N-1) (N = number of rows); ``small_sample=True`` does the same.
    Without ``robust`` the covariance is the inverse (weighted) information, which is the correct one only
    for frequency (replication) weights.
    """
    C = np.asarray(counts, dtype=float)
    if C.ndim != 2 or C.shape[1] < 2:
        raise ValueError(f"fit_mnlogit_counts: counts must be patterns x K (K >= 2), got shape {C.shape}")
    if np.any(C < 0) or not np.all(np.isfinite(C)):
        raise ValueError("fit_mnlogit_counts: counts must be finite and non-negative")
    n_pat, K = C.shape
    J = K - 1
    X = _check_X(X, n_pat, "fit_mnlogit_counts")
    p = X.shape[1]
    if weights is None:
        Wt = np.ones_like(C)
    else:
        Wt = np.asarray(weights, dtype=float)
        if Wt.ndim == 1:
            if Wt.shape[0] != K:
                raise ValueError(f"fit_mnlogit_counts: weights of length {Wt.shape[0]} for K = {K} outcomes")
            Wt = np.broadcast_to(Wt, C.shape)
        elif Wt.shape != C.shape:
            raise ValueError(f"fit_mnlogit_counts: weights shape {Wt.shape} does not match counts {C.shape}")
        if np.any(Wt < 0) or not np.all(np.isfinite(Wt)):
            raise ValueError("fit_mnlogit_counts: weights must be finite and non-negative")
    a = C * Wt  # effective (weighted) counts
    A = a.sum(axis=1)
    names_l = list(names) if names is not None else [f"x{j}" for j in range(p)]
    if len(names_l) != p:
        raise ValueError(f"fit_mnlogit_counts: {len(names_l)} names for {p} columns of X")
    levels = list(outcome_levels) if outcome_levels is not None else list(range(K))
    if len(levels) != K:
        raise ValueError(f"fit_mnlogit_counts: {len(levels)} outcome_levels for K = {K}")

    not_est: set[int] = set()
    for label, tot, cols, kind in _sparse_cells(X, a, names_l, levels, reference_levels):
        empty = [k for k in range(K) if tot[k] == 0]
        raw = C[np.all(X[:, cols] == (1 if kind == "level" else 0), axis=1)].sum(axis=0)
        for k in empty:
            if k == 0:  # empty base outcome: every ratio of this cell is infinite
                affected = range(1, K)
                what = f"its relative risk ratios (vs {levels[0]}) are"
            else:
                affected = [k]
                what = f"its relative risk ratio ({levels[k]} vs {levels[0]}) is"
            if kind == "reference":
                what = f"the relative risk ratios of {label.split('=')[0]} are"
            warnings.warn(
                f"{label} has 0 with outcome {levels[k]} among {int(round(raw.sum()))} {unit_word}: "
                f"{what} not estimable",
                SparseCellWarning,
                stacklevel=2,
            )
            for kk in affected:
                not_est.update((kk - 1) * p + c for c in cols)
                if kind == "reference":
                    not_est.add((kk - 1) * p)
    empty_out = np.flatnonzero(a.sum(axis=0) == 0)
    for k in empty_out:
        warnings.warn(
            f"outcome {levels[k]} has no {unit_word} (zero weighted count): the model is not estimable",
            SparseCellWarning,
            stacklevel=2,
        )
        not_est.update(range(p * J))

    def loglik(b: np.ndarray) -> float:
        _, logp = softmax_with_base(X @ b.reshape(p, J, order="F"))
        return float(np.sum(a * logp))

    def derivs(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pr, _ = softmax_with_base(X @ b.reshape(p, J, order="F"))
        resid = a[:, 1:] - A[:, None] * pr[:, 1:]  # (n, J)
        g = (X.T @ resid).ravel(order="F")
        q = pr[:, 1:]
        W = -A[:, None, None] * q[:, :, None] * q[:, None, :]
        W[:, np.arange(J), np.arange(J)] += A[:, None] * q
        return g, _block_xtwx(X, W)

    beta0 = np.zeros((p, J))
    tot = a.sum(axis=0)
    if p and np.allclose(X[:, 0], 1.0) and tot[0] > 0:
        beta0[0] = np.log(np.clip(tot[1:], 1e-6 * tot.sum(), None) / tot[0])
    warned: list = []
    beta, ll, H, conv, it = _newton(
        loglik, derivs, beta0.ravel(order="F"), max_iter, tol, "fit_mnlogit_counts", warned
    )
    bread = _inverse_psd(H, "fit_mnlogit_counts", warned)
    cov_type = "nonrobust"
    cov = bread
    if robust:
        pr, _ = softmax_with_base(X @ beta.reshape(p, J, order="F"))
        bw = C * Wt**2  # n_pk w_pk^2
        B = bw.sum(axis=1)
        q, bq = pr[:, 1:], bw[:, 1:]
        # sum_k b_k (e_k - pi)(e_k - pi)' restricted to the non-base outcomes, without looping over k
        M = (
            B[:, None, None] * q[:, :, None] * q[:, None, :]
            - bq[:, :, None] * q[:, None, :]
            - q[:, :, None] * bq[:, None, :]
        )
        M[:, np.arange(J), np.arange(J)] += bq
        meat = _block_xtwx(X, M)
        cov = bread @ meat @ bread
        cov = 0.5 * (cov + cov.T)
        if small_sample:
            N = C.sum()
            cov = cov * (N / (N - 1.0))
        cov_type = "robust"
    params = beta.reshape(p, J, order="F")
    bse = np.sqrt(np.clip(np.diag(cov), 0, None)).reshape(p, J, order="F")
    res = FitResult(params, cov, bse, ll, conv, it, names_l, levels, cov_type)
    _post_checks(res, not_est, "fit_mnlogit_counts")
    return res



def mnlogit_probabilities(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    """pi (patterns x K), base category 0, from params (p, K-1): the imputation model's draw probabilities."""
    eta = np.column_stack([np.zeros(X.shape[0]), X @ params])
    eta -= eta.max(axis=1, keepdims=True)
    e = np.exp(eta)
    return e / e.sum(axis=1, keepdims=True)


def mvn_factor(cov: np.ndarray) -> np.ndarray:
    """L with L L^T = cov (Cholesky, falling back to a symmetric eigen square root if not positive definite)."""
    cov = (cov + cov.T) / 2
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))
