"""Logistic and multinomial logistic models of the IAPT pathway, fitted on covariate-pattern counts.

Why counts: every covariate in the study is categorical, so the likelihood of N rows depends on the data only
through the counts of (covariate pattern x outcome). Fitting on at most a few thousand patterns gives the same
maximum-likelihood estimates, the same log-likelihood and the same inverse-information standard errors as a
row-level fit (statsmodels ``Logit``/``MNLogit``), in milliseconds instead of minutes, which is what makes
multiple imputation (many completed data sets x nine models) cheap.

Layers:

* low level, on arrays: :func:`fit_logit_counts`, :func:`fit_mnlogit_counts` (weighted, optionally robust);
* middle, on the analysis frame (see ``docs/contracts.md``): :func:`pattern_counts`, :func:`design_matrix`,
  :func:`design`, :func:`exclusions`, and :class:`ModelPlan` (built once, refitted for every imputed
  ethnicity column via :func:`fit_stage_counts`);
* high level, tidy tables: :func:`fit_stage`, :func:`fit_all`, :func:`predicted_probabilities`.

Reference rows: the tidy tables include the reference group (White British) with estimate 1.0,
log_estimate 0.0 and NaN for the CI, SE and p-value, like the paper prints "1.00" with no interval.

Sparse cells: a level with no events (or no non-events), or an empty outcome category, makes its odds ratio
infinite. This is detected before fitting and reported with a :class:`SparseCellWarning` naming the cell; the
parameter is marked not estimable (NaN estimate in tidy tables) instead of reporting a meaningless OR of 1e-13.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import linalg as sla
from scipy import special, stats

from helpers import study

__all__ = [
    "FitResult",
    "ModelFitWarning",
    "SparseCellWarning",
    "NonConvergenceWarning",
    "fit_logit_counts",
    "fit_mnlogit_counts",
    "PatternCounts",
    "pattern_counts",
    "design_matrix",
    "design",
    "exclusions",
    "StageFit",
    "ModelPlan",
    "fit_stage_counts",
    "fit_stage",
    "fit_all",
    "predicted_probabilities",
    "TIDY_COLUMNS",
]

Z975 = float(stats.norm.ppf(0.975))
# A coefficient this large with an SE this large is a separated (infinite) estimate, not a finding.
_HUGE_COEF = 12.0
_HUGE_SE = 50.0

TIDY_COLUMNS: list[str] = [
    "stage",
    "outcome_level",
    "model",
    "analysis",
    "ethnicity",
    "estimate",
    "ci_low",
    "ci_high",
    "log_estimate",
    "se",
    "p_value",
    "n",
    "n_events",
    "n_model",
    "n_excluded",
    "estimable",
]

# Known level orders, used when a column arrives as plain strings/ints instead of a Categorical.
_KNOWN_LEVELS: dict[str, list] = {
    "ethnicity": study.GROUPS,
    "referral_source": study.SOURCES,
    **study.COVARIATE_LEVELS,
}

# Words used in warnings, so that a student reads "0 treated among 3 assessed", not "0 successes".
_STAGE_WORDS: dict[str, tuple[str, str]] = {
    "assessment": ("assessed", "referred"),
    "treatment": ("treated", "assessed"),
    "referral_source": ("", "referred"),
}


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
    X = np.asarray(X, dtype=float)
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


def _softmax_with_base(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        _, logp = _softmax_with_base(X @ b.reshape(p, J, order="F"))
        return float(np.sum(a * logp))

    def derivs(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pr, _ = _softmax_with_base(X @ b.reshape(p, J, order="F"))
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
        pr, _ = _softmax_with_base(X @ beta.reshape(p, J, order="F"))
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


# ----------------------------------------------------------------------------------------------------------
# Middle: from the analysis frame to pattern counts and design matrices
# ----------------------------------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise ValueError(
            f"column {column!r} is not in the frame; valid columns: {', '.join(map(str, frame.columns))}"
        )
    return frame[column]


def _codes(frame: pd.DataFrame, column: str, values: pd.Series | np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """Integer codes (-1 = missing) and levels of a categorical column, reference level first.

    Plain (non-categorical) columns are coded with the study's known levels, so a typo is an error, not a
    silently new category.
    """
    s = _column(frame, column) if values is None else values
    if not isinstance(s, pd.Series):
        s = pd.Series(s)
    if isinstance(s.dtype, pd.CategoricalDtype):
        levels = list(s.cat.categories)
        codes = s.cat.codes.to_numpy().astype(np.int64)
    else:
        known = _KNOWN_LEVELS.get(column)
        if known is None:
            cat = pd.Categorical(s)
        else:
            cat = pd.Categorical(s, categories=known)
            bad = s[cat.codes == -1].dropna().unique()
            if len(bad):
                raise ValueError(
                    f"column {column!r} has values {list(bad)[:5]} outside the valid levels {known}"
                )
        levels = list(cat.categories)
        codes = cat.codes.astype(np.int64)
    base = {"ethnicity": study.REFERENCE_GROUP, "referral_source": study.SOURCE_BASE}.get(column)
    if base is not None and levels and levels[0] != base:
        if base not in levels:
            raise ValueError(f"column {column!r}: reference level {base!r} is not among its levels {levels}")
        order = [base] + [lv for lv in levels if lv != base]
        remap = np.array([order.index(lv) for lv in levels] + [-1])
        codes = remap[codes]  # code -1 indexes the trailing -1
        levels = order
    return codes, levels


def _outcome_codes(frame: pd.DataFrame, outcome: str, kind: str) -> tuple[np.ndarray, list]:
    """Outcome codes (0 = base / no event, -1 = missing) and outcome levels."""
    if kind == "mnlogit":
        return _codes(frame, outcome)
    if kind != "logit":
        raise ValueError(f"kind must be 'logit' or 'mnlogit', got {kind!r}")
    v = pd.to_numeric(_column(frame, outcome), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isnan(v) & (v != 0) & (v != 1)
    if bad.any():
        raise ValueError(f"column {outcome!r} must be 0/1 (or NaN), found {np.unique(v[bad])[:5]}")
    codes = np.where(np.isnan(v), -1, v).astype(np.int64)
    return codes, [0, 1]


def _stage_for_outcome(outcome: str) -> study.StageSpec | None:
    for spec in study.STAGE_SPECS.values():
        if spec.outcome == outcome:
            return spec
    return None


@dataclass(frozen=True)
class _ModelData:
    """Everything about one stage x model that does not depend on the ethnicity column (built once)."""

    stage: str
    model: str
    kind: str
    covariates: list[str]
    rows: np.ndarray | slice  # positions of population rows complete on covariates and outcome (or all)
    cov_key: np.ndarray  # combined covariate-pattern code of those rows
    cov_shape: tuple[int, ...]
    cov_levels: list[list]
    y: np.ndarray  # outcome code of those rows
    base_key: np.ndarray  # cov_key * K + y: the row's cell apart from ethnicity
    outcome_levels: list
    n_population: int
    population: np.ndarray | None  # boolean mask of the stage's population (None: every row)
    missing: dict[str, int]  # rows of the population missing each covariate/outcome column


def _model_data(
    frame: pd.DataFrame, stage: str, covariates: list[str], model: str = "", outcome: str | None = None,
    kind: str | None = None, among_assessed: bool | None = None, cache: dict | None = None,
) -> _ModelData:
    """Code one stage x model; ``cache`` (column -> codes) avoids recoding shared columns in a plan."""
    cache = {} if cache is None else cache

    def coded(column: str, fn, *a):
        if column not in cache:
            cache[column] = fn(frame, column, *a)
        return cache[column]

    spec = study.STAGE_SPECS.get(stage)
    if spec is None and (outcome is None or kind is None):
        raise ValueError(f"unknown stage {stage!r}; valid stages: {study.STAGES}")
    outcome = outcome or spec.outcome
    kind = kind or spec.kind
    if among_assessed is None:
        among_assessed = bool(spec.among_assessed) if spec is not None else False
    n_all = len(frame)
    # Boolean masks over the whole frame, and gathers only when rows are actually left out: at 10 million
    # rows an avoidable int64 gather costs more than the whole fit.
    if among_assessed:
        if "__assessed" not in cache:
            cache["__assessed"] = pd.to_numeric(_column(frame, "assessed"), errors="coerce").to_numpy() == 1
        pop_mask = cache["__assessed"]
    else:
        pop_mask = None
    y_all, out_levels = coded(outcome, _outcome_codes, kind)

    def in_pop(bad: np.ndarray) -> np.ndarray:
        return bad if pop_mask is None else bad & pop_mask

    missing = {outcome: int(in_pop(y_all < 0).sum())}
    ok = y_all >= 0 if pop_mask is None else (y_all >= 0) & pop_mask
    cov_codes, cov_levels = [], []
    for c in covariates:
        codes, levels = coded(c, _codes)
        cov_codes.append(codes)
        cov_levels.append(levels)
        miss = codes < 0
        missing[c] = int(in_pop(miss).sum())
        ok &= ~miss
    n_pop = n_all if pop_mask is None else int(pop_mask.sum())
    rows: np.ndarray | slice = slice(None) if ok.all() else np.flatnonzero(ok)
    shape = tuple(max(len(lv), 1) for lv in cov_levels)
    y = y_all[rows]
    if covariates:
        cov_key = np.ravel_multi_index([cc[rows] for cc in cov_codes], shape).astype(np.int64)
    else:
        cov_key = np.zeros(y.size, dtype=np.int64)
    return _ModelData(
        stage, model, kind, list(covariates), rows, cov_key, shape if covariates else (1,), cov_levels,
        y, cov_key * len(out_levels) + y, out_levels, n_pop, pop_mask, missing,
    )


@dataclass
class PatternCounts:
    """Covariate patterns present in the data (ethnicity first) and their outcome counts.

    ``codes``: patterns x (1 + n covariates) level codes; ``counts``: patterns x K, column 0 the base outcome
    (for a logit, column 0 = no event, column 1 = event). ``n_excluded`` / ``missing`` say how many rows of
    the stage's population were left out (complete case) and why - rows are never dropped silently.
    """

    patterns: pd.DataFrame
    codes: np.ndarray
    counts: np.ndarray
    outcome_levels: list
    variables: list[str]
    levels: list[list]
    n_population: int
    n_rows: int
    n_excluded: int
    missing: dict[str, int]


def _counts_from(md: _ModelData, eth_codes: np.ndarray, eth_levels: list, with_table: bool,
                 weights: np.ndarray | None = None) -> PatternCounts:
    """Pattern x outcome counts by bincount on integer keys (the fast path shared by all callers).

    ``weights``: rows that stand for several referrals (a covariate-pattern count per row), so that the models
    run from pattern counts alone; every count below is then a sum of weights.
    """
    G = len(eth_levels)
    ncov = int(np.prod(md.cov_shape))
    K = len(md.outcome_levels)
    e = eth_codes[md.rows]
    cell = e * (ncov * K) + md.base_key  # (ethnicity, covariate pattern, outcome) cell of every row
    w = None if weights is None else weights[md.rows]
    eth_missing = e.size and e.min() < 0
    if eth_missing:
        cell = cell[e >= 0]
        w = None if w is None else w[e >= 0]
    if weights is not None:
        if any(md.missing.values()):
            raise ValueError("weighted rows (pattern counts) must not miss a covariate or the outcome: "
                             f"{md.stage} / {md.model} misses {md.missing}")
        pop = np.ones(len(weights), dtype=bool) if md.population is None else md.population
        n_miss_eth = int(round(weights[pop & (eth_codes < 0)].sum()))
        n_population = int(round(weights[pop].sum()))
    elif eth_missing or e.size < md.n_population:  # missing ethnicity may hide among other exclusions
        miss = eth_codes < 0
        n_miss_eth = int((miss if md.population is None else miss & md.population).sum())
        n_population = md.n_population
    else:
        n_miss_eth = 0
        n_population = md.n_population
    full = np.bincount(cell, weights=w, minlength=G * ncov * K).reshape(G * ncov, K)
    present = np.flatnonzero(full.sum(axis=1) > 0)
    counts = full[present]
    eth = present // ncov
    cov_idx = present % ncov
    if md.covariates:
        cov_parts = np.unravel_index(cov_idx, md.cov_shape)
        codes = np.column_stack([eth, *cov_parts])
    else:
        codes = eth[:, None]
    variables = ["ethnicity", *md.covariates]
    levels = [eth_levels, *md.cov_levels]
    table = pd.DataFrame()
    if with_table:
        table = pd.DataFrame(
            {
                v: pd.Categorical.from_codes(codes[:, i], categories=lv)
                for i, (v, lv) in enumerate(zip(variables, levels))
            }
        )
    missing = {"ethnicity": n_miss_eth, **md.missing}
    n_rows = int(round(counts.sum()))
    return PatternCounts(
        table, codes, counts, list(md.outcome_levels), variables, levels, n_population, n_rows,
        n_population - n_rows, missing,
    )


def pattern_counts(
    frame: pd.DataFrame, covariates: Sequence[str], outcome: str, kind: str
) -> PatternCounts:
    """Group the frame by ethnicity + covariates (present patterns only) and count outcomes.

    The population follows ``study.STAGE_SPECS`` for the outcome: treatment is modelled among the assessed
    (``assessed == 1``), assessment and referral source among all referred. Rows missing ethnicity, a
    covariate or the outcome are excluded (complete case) and counted in ``n_excluded`` and ``missing``.
    """
    spec = _stage_for_outcome(outcome)
    stage = spec.name if spec is not None else outcome
    md = _model_data(frame, stage, list(covariates), outcome=outcome, kind=kind,
                     among_assessed=spec.among_assessed if spec is not None else False)
    eth, eth_levels = _codes(frame, "ethnicity")
    return _counts_from(md, eth, eth_levels, with_table=True)


@dataclass(frozen=True)
class _DesignSpec:
    """Which (variable, level code) each non-intercept column of X indicates, to rebuild X for new patterns."""

    columns: list[tuple[int, int]]
    names: list[str]


def _design_spec(codes: np.ndarray, variables: list[str], levels: list[list]) -> _DesignSpec:
    """Treatment coding: the first level present is the reference; absent levels get no column."""
    columns: list[tuple[int, int]] = []
    names = ["Intercept"]
    for i, (var, lv) in enumerate(zip(variables, levels)):
        present = np.unique(codes[:, i])
        for c in present[1:]:
            columns.append((i, int(c)))
            names.append(f"{var}[{lv[c]}]")
    return _DesignSpec(columns, names)


def _design_from_spec(codes: np.ndarray, spec: _DesignSpec) -> np.ndarray:
    X = np.zeros((codes.shape[0], 1 + len(spec.columns)))
    X[:, 0] = 1.0
    for j, (i, c) in enumerate(spec.columns, start=1):
        X[:, j] = codes[:, i] == c
    return X


def design_matrix(patterns: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept + treatment (dummy) coding of ethnicity and covariates, first level as reference.

    Ethnicity's reference is ``study.REFERENCE_GROUP`` whatever the category order. Levels absent from
    ``patterns`` get no column (they would make the information matrix singular). Names look like
    ``ethnicity[Black Caribbean]``, ``age_band[25-34]``, ``year[2014]``.
    """
    variables = ["ethnicity", *covariates]
    codes, levels = [], []
    for v in variables:
        c, lv = _codes(patterns, v)
        if np.any(c < 0):
            raise ValueError(f"design_matrix: column {v!r} has missing values; drop or count them first")
        codes.append(c)
        levels.append(lv)
    C = np.column_stack(codes) if len(patterns) else np.zeros((0, len(variables)), dtype=np.int64)
    spec = _design_spec(C, variables, levels)
    return _design_from_spec(C, spec), spec.names


def design(
    frame: pd.DataFrame, covariates: Sequence[str], stage: str = "assessment"
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Pattern table (with outcome counts as extra columns ``n_<level>``), X and parameter names.

    The contract's one-call entry to see what a model is fitted on.
    """
    spec = study.STAGE_SPECS.get(stage)
    if spec is None:
        raise ValueError(f"unknown stage {stage!r}; valid stages: {study.STAGES}")
    pc = pattern_counts(frame, covariates, spec.outcome, spec.kind)
    X, names = design_matrix(pc.patterns, covariates)
    table = pc.patterns.copy()
    for k, lv in enumerate(pc.outcome_levels):
        table[f"n_{lv}"] = pc.counts[:, k]
    return table, X, names


def exclusions(frame: pd.DataFrame) -> pd.DataFrame:
    """How many rows each stage x model leaves out, and why (missing ethnicity, covariate or outcome)."""
    eth, eth_levels = _codes(frame, "ethnicity")
    rows = []
    for stage in study.STAGES:
        for model, covs in study.MODELS.items():
            md = _model_data(frame, stage, covs, model)
            pc = _counts_from(md, eth, eth_levels, with_table=False)
            rows.append(
                {"stage": stage, "model": model, "n_population": pc.n_population, "n_model": pc.n_rows,
                 "n_excluded": pc.n_excluded, **{f"missing_{k}": v for k, v in pc.missing.items()}}
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Fitting a stage: the plan (built once) and the tidy tables
# ----------------------------------------------------------------------------------------------------------


@dataclass
class StageFit:
    """One fitted stage x model with the per-group counts a tidy table needs."""

    stage: str
    model: str
    kind: str
    result: FitResult
    counts: PatternCounts
    design: _DesignSpec
    eth_levels: list
    n_by_group: np.ndarray  # (G,) rows in the model per ethnic group
    events_by_group: np.ndarray  # (G, K) rows per group and outcome level

    def tidy(self, analysis: str = "complete_case") -> pd.DataFrame:
        return pd.DataFrame(self._tidy_rows(analysis), columns=TIDY_COLUMNS)

    def _tidy_rows(self, analysis: str) -> dict[str, list]:
        """Columns of the tidy table as lists (vectorised: this runs for every imputed data set)."""
        res = self.result
        names = res.names or []
        p = len(names)
        levels = self.counts.outcome_levels
        out_idx = [1] if self.kind == "logit" else list(range(1, len(levels)))
        G = len(self.eth_levels)
        flat = res.flat_params
        se_all = np.sqrt(np.clip(np.diag(res.cov), 0, None))
        pos = {nm: j for j, nm in enumerate(names)}
        col_of_group = np.array([pos.get(f"ethnicity[{g}]", -1) for g in self.eth_levels])
        col_of_group[0] = -1
        lg_parts, se_parts, ok_parts = [], [], []
        bad = np.zeros(flat.size, dtype=bool)
        bad[list(res.not_estimable)] = True
        for k in out_idx:
            idx = (k - 1) * p + col_of_group
            has = col_of_group >= 0
            lg = np.where(has, flat[np.where(has, idx, 0)], np.nan)
            se = np.where(has, se_all[np.where(has, idx, 0)], np.nan)
            ok = has & ~bad[np.where(has, idx, 0)] & np.isfinite(lg) & np.isfinite(se) & (se > 0)
            lg = np.where(ok, lg, np.nan)
            se = np.where(ok, se, np.nan)
            lg[0], ok[0] = 0.0, True  # reference row: OR 1, no interval
            lg_parts.append(lg)
            se_parts.append(se)
            ok_parts.append(ok)
        lg = np.concatenate(lg_parts)
        se = np.concatenate(se_parts)
        ok = np.concatenate(ok_parts)
        with np.errstate(invalid="ignore"):
            pv = 2.0 * special.ndtr(-np.abs(lg / se))
        nrow = len(out_idx) * G
        return {
            "stage": [self.stage] * nrow,
            "outcome_level": [str(levels[k]) if self.kind == "mnlogit" else "" for k in out_idx for _ in range(G)],
            "model": [self.model] * nrow,
            "analysis": [analysis] * nrow,
            "ethnicity": list(self.eth_levels) * len(out_idx),
            "estimate": list(np.exp(lg)),
            "ci_low": list(np.exp(lg - Z975 * se)),
            "ci_high": list(np.exp(lg + Z975 * se)),
            "log_estimate": list(lg),
            "se": list(se),
            "p_value": list(pv),
            "n": list(np.tile(np.rint(self.n_by_group).astype(np.int64), len(out_idx))),
            "n_events": list(np.rint(np.concatenate([self.events_by_group[:, k] for k in out_idx])).astype(np.int64)),
            "n_model": [self.counts.n_rows] * nrow,
            "n_excluded": [self.counts.n_excluded] * nrow,
            "estimable": list(ok),
        }


class ModelPlan:
    """The frame's covariates and outcomes coded once, so every stage x model refits in milliseconds.

    Completed data sets of a multiple imputation differ only in ethnicity: build the plan once from the
    frame, then call :meth:`fit_all` (or :func:`fit_stage_counts`) with each imputed ethnicity column.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        stages: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        stages = list(stages) if stages is not None else list(study.STAGES)
        models = list(models) if models is not None else list(study.MODELS)
        for s in stages:
            if s not in study.STAGE_SPECS:
                raise ValueError(f"unknown stage {s!r}; valid stages: {study.STAGES}")
        for m in models:
            if m not in study.MODELS:
                raise ValueError(f"unknown model {m!r}; valid models: {list(study.MODELS)}")
        self.n_rows = len(frame)
        self.weights = self._check_weights(weights)
        self.eth_codes, self.eth_levels = _codes(frame, "ethnicity")
        cache: dict = {}
        self.data: dict[tuple[str, str], _ModelData] = {
            (s, m): _model_data(frame, s, study.MODELS[m], m, cache=cache) for s in stages for m in models
        }

    def _check_weights(self, weights: np.ndarray | None) -> np.ndarray | None:
        """Row weights (``None``: one referral per row); each row of a pattern-count frame is a count."""
        if weights is None:
            return None
        w = np.asarray(weights, dtype=float)
        if w.shape != (self.n_rows,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be {self.n_rows} finite counts >= 0 (one per row of the frame)")
        return w

    def ethnicity_codes(self, ethnicity: pd.Series | np.ndarray | None) -> np.ndarray:
        """Codes (-1 missing) of a replacement ethnicity column (labels, Categorical or int codes)."""
        if ethnicity is None:
            return self.eth_codes
        if len(ethnicity) != self.n_rows:
            raise ValueError(f"ethnicity has {len(ethnicity)} values, the frame {self.n_rows} rows")
        if isinstance(ethnicity, np.ndarray) and np.issubdtype(ethnicity.dtype, np.integer):
            if ethnicity.max(initial=-1) >= len(self.eth_levels) or ethnicity.min(initial=0) < -1:
                raise ValueError(f"ethnicity codes must be -1..{len(self.eth_levels) - 1}")
            return ethnicity.astype(np.int64, copy=False)
        s = ethnicity if isinstance(ethnicity, pd.Series) else pd.Series(ethnicity)
        if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == self.eth_levels:
            return s.cat.codes.to_numpy().astype(np.int64)
        s = pd.Series(pd.Categorical(s.astype(object), categories=self.eth_levels))
        bad = pd.Series(ethnicity)[s.cat.codes.to_numpy() == -1].dropna()
        if len(bad):
            raise ValueError(f"ethnicity has values {list(bad.unique())[:5]} outside {self.eth_levels}")
        return s.cat.codes.to_numpy().astype(np.int64)

    def fit(
        self, stage: str, model: str, ethnicity: pd.Series | np.ndarray | None = None, **fit_kwargs
    ) -> StageFit:
        """Fit one stage x model, optionally with a replacement (e.g. imputed) ethnicity column."""
        if (stage, model) not in self.data:
            raise ValueError(f"stage x model {(stage, model)} not in this plan; valid: {list(self.data)}")
        eth = self.ethnicity_codes(ethnicity)
        return self._fit(self.data[(stage, model)], eth, **fit_kwargs)

    def _fit(self, md: _ModelData, eth: np.ndarray, weights: np.ndarray | None = None, **fit_kwargs) -> StageFit:
        pc = _counts_from(md, eth, self.eth_levels, with_table=False,
                          weights=self.weights if weights is None else weights)
        G = len(self.eth_levels)
        if pc.counts.shape[0] == 0:
            raise ValueError(f"{md.stage} / {md.model}: no complete rows to fit (exclusions: {pc.missing})")
        if not np.any(pc.codes[:, 0] == 0):
            raise ValueError(
                f"{md.stage} / {md.model}: the reference group {self.eth_levels[0]!r} has no rows; "
                "its odds ratios cannot be defined"
            )
        spec = _design_spec(pc.codes, pc.variables, pc.levels)
        X = _design_from_spec(pc.codes, spec)
        n_by_group = np.bincount(pc.codes[:, 0], weights=pc.counts.sum(axis=1), minlength=G)
        events = np.column_stack(
            [np.bincount(pc.codes[:, 0], weights=pc.counts[:, k], minlength=G) for k in range(pc.counts.shape[1])]
        )
        ev, unit = _STAGE_WORDS.get(md.stage, ("events", "rows"))
        for g in np.flatnonzero(n_by_group == 0):
            warnings.warn(
                f"ethnicity={self.eth_levels[g]} has no rows in {md.stage} / {md.model}: its "
                f"{'odds ratio' if md.kind == 'logit' else 'relative risk ratios'} is not estimable",
                SparseCellWarning,
                stacklevel=3,
            )
        refs = {v: lv[int(pc.codes[:, i].min())] for i, (v, lv) in enumerate(zip(pc.variables, pc.levels))}
        if md.kind == "logit":
            res = fit_logit_counts(
                X, pc.counts[:, 1], pc.counts.sum(axis=1), names=spec.names, event_words=(ev, unit),
                reference_levels=refs, **fit_kwargs,
            )
        else:
            res = fit_mnlogit_counts(
                X, pc.counts, names=spec.names, outcome_levels=pc.outcome_levels, unit_word=unit,
                reference_levels=refs, **fit_kwargs,
            )
        return StageFit(md.stage, md.model, md.kind, res, pc, spec, list(self.eth_levels), n_by_group, events)

    def fit_all(
        self, ethnicity: pd.Series | np.ndarray | None = None, analysis: str = "complete_case",
        weights: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Tidy table of every stage x model in the plan (stage order, then model order); ``weights`` replaces
        the plan's row weights (a completed data set of an imputation from pattern counts)."""
        eth = self.ethnicity_codes(ethnicity)
        w = self._check_weights(weights)
        cols: dict[str, list] = {c: [] for c in TIDY_COLUMNS}
        for md in self.data.values():
            part = self._fit(md, eth, weights=w)._tidy_rows(analysis)
            for c in TIDY_COLUMNS:
                cols[c].extend(part[c])
        return pd.DataFrame(cols, columns=TIDY_COLUMNS)


def fit_stage_counts(
    plan: ModelPlan, stage: str, model: str, ethnicity: pd.Series | np.ndarray | None = None
) -> StageFit:
    """Fast entry for the imputation module: refit one stage x model with an imputed ethnicity column."""
    return plan.fit(stage, model, ethnicity)


def _check_analysis(analysis: str) -> None:
    if analysis not in study.ANALYSES:
        raise ValueError(f"unknown analysis {analysis!r}; valid analyses: {study.ANALYSES}")


def fit_stage(
    frame: pd.DataFrame, stage: str, model: str, analysis: str = "complete_case"
) -> pd.DataFrame:
    """Tidy ORs (logit stages) or RRRs vs GP (referral source) by ethnicity for one stage and model.

    ``analysis`` labels the rows; the fit is always on the rows given (complete case on ethnicity and
    covariates; pass a completed data set for imputation). ``n_excluded`` reports the rows of the stage's
    population left out for missing values (see :func:`exclusions` for the breakdown).
    """
    _check_analysis(analysis)
    return ModelPlan(frame, [stage], [model]).fit_all(analysis=analysis)


def fit_all(frame: pd.DataFrame, analysis: str = "complete_case") -> pd.DataFrame:
    """All 3 stages x 3 models, ordered by ``study.STAGES``, then ``study.MODELS``, outcome level, group."""
    _check_analysis(analysis)
    return ModelPlan(frame).fit_all(analysis=analysis)


def predicted_probabilities(frame: pd.DataFrame, stage: str, model: str) -> pd.DataFrame:
    """Average predicted probability of each outcome per ethnic group, standardised to the whole model
    population's covariate mix (everyone's covariates kept, ethnicity set to the group).

    Why: ORs are hard to read as gap sizes; "61% vs 67% treated, other things equal" is not. ``observed`` is
    the crude proportion in the group, for comparison. Groups with non-estimable coefficients get NaN.
    """
    sf = ModelPlan(frame, [stage], [model]).fit(stage, model)
    pc, res = sf.counts, sf.result
    K = pc.counts.shape[1]
    p = len(res.names or [])
    beta = np.asarray(res.params).reshape(p, -1, order="F")
    # covariate-pattern weights, ethnicity ignored
    cov_codes = pc.codes[:, 1:]
    if cov_codes.shape[1]:
        uniq, inv = np.unique(cov_codes, axis=0, return_inverse=True)
    else:
        uniq, inv = np.zeros((1, 0), dtype=np.int64), np.zeros(len(pc.codes), dtype=np.int64)
    w = np.bincount(inv.ravel(), weights=pc.counts.sum(axis=1), minlength=len(uniq))
    w = w / w.sum()
    rows = []
    for g, group in enumerate(sf.eth_levels):
        name = f"ethnicity[{group}]"
        est_ok = g == 0 or (
            name in res.names
            and not any(((k - 1) * p + res.names.index(name)) in res.not_estimable for k in range(1, K))
        )
        codes = np.column_stack([np.full(len(uniq), g), uniq])
        if est_ok:
            eta = _design_from_spec(codes, sf.design) @ beta
            prob, _ = _softmax_with_base(eta)
            avg = w @ prob
        else:
            avg = np.full(K, np.nan)
        n_g = sf.n_by_group[g]
        ks = [1] if sf.kind == "logit" else range(K)
        for k in ks:
            rows.append(
                {
                    "stage": stage,
                    "model": model,
                    "ethnicity": group,
                    "outcome_level": str(pc.outcome_levels[k]) if sf.kind == "mnlogit" else "",
                    "probability": float(avg[k]),
                    "observed": float(sf.events_by_group[g, k] / n_g) if n_g else np.nan,
                    "n": int(n_g),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Teaching variants: a stage with other covariates, or treatment with the wrong denominator (notebooks 06-07)
# ----------------------------------------------------------------------------------------------------------


def fit_custom(
    frame: pd.DataFrame,
    stage: str,
    covariates: Sequence[str],
    model: str = "custom",
    among_assessed: bool | None = None,
    analysis: str = "complete_case",
) -> pd.DataFrame:
    """Tidy ORs / RRRs of one stage with a covariate set of your choice (not one of ``study.MODELS``).

    For exercises such as adding ``referral_source`` to the assessment model. ``model`` labels the rows;
    ``among_assessed`` overrides the stage's population (None: as in ``study.STAGE_SPECS``). Same fitting
    code and tidy columns as :func:`fit_stage`; ethnicity's reference is White British.
    """
    _check_analysis(analysis)
    if stage not in study.STAGE_SPECS:
        raise ValueError(f"unknown stage {stage!r}; valid stages: {study.STAGES}")
    covariates = list(covariates)
    outcome = study.STAGE_SPECS[stage].outcome
    if "ethnicity" in covariates or outcome in covariates:
        raise ValueError(f"covariates must not include ethnicity or the outcome {outcome!r}: {covariates}")
    if len(set(covariates)) != len(covariates):
        raise ValueError(f"covariates are repeated: {covariates}")
    plan = ModelPlan(frame, [stage], [])
    plan.data[(stage, model)] = _model_data(frame, stage, covariates, model, among_assessed=among_assessed)
    return plan.fit_all(analysis=analysis)


def treated_among_referred(frame: pd.DataFrame, model: str = "adjusted_full") -> pd.DataFrame:
    """ORs for "treated" with ALL referrals as the denominator (not assessed counts as not treated).

    This is deliberately not the paper's treatment model (which is among the assessed): it mixes the
    assessment gap and the treatment gap into one number, and notebook 07 uses it to show why the
    denominator matters. Rows are labelled ``stage="treated_among_referred"``.
    """
    if model not in study.MODELS:
        raise ValueError(f"unknown model {model!r}; valid models: {list(study.MODELS)}")
    assessed = pd.to_numeric(_column(frame, "assessed"), errors="coerce")
    treated = pd.to_numeric(_column(frame, "treated"), errors="coerce")
    whole = frame.assign(treated=treated.where(assessed == 1, 0.0))
    out = fit_custom(whole, "treatment", study.MODELS[model], model=model, among_assessed=False)
    out["stage"] = "treated_among_referred"
    return out


def pathway_odds(counts: pd.DataFrame, reference: str = study.REFERENCE_GROUP) -> pd.DataFrame:
    """Crude probabilities and odds ratios at each step of referral -> assessment -> treatment, per group.

    Why: notebook 07 shows that probabilities multiply along the pathway but odds do not, and where the
    "treated among referred" OR comes from. ``counts`` has one row per group (index) and the columns
    ``referred``, ``assessed``, ``treated`` (e.g. ``tables.pathway_counts(frame)``, or a toy table); extra
    rows such as Missing/Total should be dropped first. Returns, per group:

    - ``assessed_per_100_referred``, ``treated_per_100_assessed``, ``treated_per_100_referred`` (the last is
      the product of the first two probabilities, times 100);
    - ``or_assessed`` (assessed | referred), ``or_treated_given_assessed`` (the paper's denominator) and
      ``or_treated_given_referred`` (all referrals as the denominator), each vs ``reference``; these equal the
      unadjusted logistic-regression ORs;
    - an exact split ``or_treated_given_referred = or_part_assessment * or_part_treatment``: the change in
      the odds of "treated per referred" when the group's assessment probability replaces the reference's
      (treatment probability kept at the reference's), then when its treatment probability does too.
    """
    missing = [c for c in ("referred", "assessed", "treated") if c not in counts.columns]
    if missing:
        raise ValueError(f"counts needs the columns referred, assessed, treated; missing: {missing}")
    if reference not in counts.index:
        raise ValueError(f"reference group {reference!r} is not a row of counts")
    c = counts[["referred", "assessed", "treated"]].astype(float)
    if (c["assessed"] > c["referred"]).any() or (c["treated"] > c["assessed"]).any() or (c < 0).any().any():
        raise ValueError("counts must satisfy 0 <= treated <= assessed <= referred")
    pa = c["assessed"] / c["referred"]
    pt = c["treated"] / c["assessed"]
    q = pa * pt

    def odds(x: pd.Series | float) -> pd.Series | float:
        return x / (1 - x)

    pa0, pt0, q0 = pa[reference], pt[reference], q[reference]
    step = odds(pa * pt0)
    return pd.DataFrame(
        {
            "assessed_per_100_referred": pa * 100,
            "treated_per_100_assessed": pt * 100,
            "treated_per_100_referred": q * 100,
            "or_assessed": odds(pa) / odds(pa0),
            "or_treated_given_assessed": odds(pt) / odds(pt0),
            "or_treated_given_referred": odds(q) / odds(q0),
            "or_part_assessment": step / odds(q0),
            "or_part_treatment": odds(q) / step,
        },
        index=counts.index,
    )


def planted_coverage_random(p: dict, stage: str, seeds: Sequence[int], model: str = "adjusted_full") -> pd.DataFrame:
    """How many planted (targets-file) values fall inside our 95% CIs in cohorts drawn in *random* outcome mode.

    Why: a calibrated cohort constructs its counts, so its estimates equal the planted values up to rounding
    and "every planted value inside the CI" holds by construction. In random mode each outcome is one draw, so
    the usual "about 1 in 20 outside by chance" applies. One row per seed: ``seed, inside, planted``
    (complete-case estimates; ``p`` as from ``helpers.notebook.setup``, other parameters kept).
    """
    # imported here: helpers.pipeline imports helpers.models
    from helpers import params as params_mod
    from helpers import pipeline, tables

    targets = pd.read_csv(params_mod.targets_file(p), dtype=str, keep_default_na=False)
    rows = []
    for s in seeds:
        data = pipeline.load_study_data(p, outcome_mode="random", seed=int(s), data_path="")
        est = pipeline.complete_case_estimates(data)
        planted = tables.planted_vs_estimated(est, targets, stage, model=model)
        rows.append({"seed": int(s), "inside": int(planted["planted_in_ci"].sum()), "planted": len(planted)})
    return pd.DataFrame(rows, columns=["seed", "inside", "planted"])
