"""Rubin's rules, and the analysis of completed data sets: fit the study's models on each, pool the results.

Rubin (1987): with M completed data sets giving estimates q_m and squared standard errors u_m, the pooled
estimate is their mean Q-bar, the total variance T = U-bar + (1 + 1/M) B (within plus between imputations),
and the CI uses Rubin's degrees of freedom (Barnard-Rubin when ``df_com`` is finite). :func:`rubin` does
this on the log scale; :func:`pool_tidy` pools whole tidy tables; :func:`mi_estimates_from_rows` fits the nine models
on every completed data set of an imputation (``helpers.imputation``) and pools them;
:func:`per_imputation_estimates` lays out one coefficient's inputs to Rubin's rules for working by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from helpers import models, study


class CompletedSets(Protocol):
    """What :func:`mi_estimates_from_rows` reads of an imputation (``imputation.ImputationResult``)."""

    analysis: str
    m: int
    completed: list[pd.Series]


@dataclass(frozen=True)
class RubinResult:
    """Pooled estimate(s); arrays of shape (k,) for k parameters, or floats for a single parameter."""

    estimate: np.ndarray | float  # Q-bar
    se: np.ndarray | float  # sqrt(T)
    within: np.ndarray | float  # U-bar
    between: np.ndarray | float  # B
    total: np.ndarray | float  # T
    df: np.ndarray | float  # Rubin (df_com infinite) or Barnard-Rubin degrees of freedom
    ci_low: np.ndarray | float
    ci_high: np.ndarray | float
    lambda_: np.ndarray | float  # (1 + 1/M) B / T
    riv: np.ndarray | float  # relative increase in variance r = (1 + 1/M) B / U-bar
    m: int
    fmi: np.ndarray | float = np.nan  # fraction of missing information (r + 2/(df + 3)) / (r + 1)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def rubin(q, u, df_com: float = np.inf, level: float = 0.95) -> RubinResult:
    """Pool M completed-data estimates ``q`` with squared standard errors ``u`` (Rubin 1987).

    ``q`` and ``u`` have shape (M,) for one parameter or (M, k) for k parameters (pool log-ORs, not ORs).
    With ``df_com`` finite the degrees of freedom are Barnard & Rubin's (1999); otherwise Rubin's
    nu_old = (M - 1) / lambda^2. The CI is Q-bar +/- t(df, 0.975) sqrt(T).

    No between-imputation variance (B = 0, e.g. a parameter the imputations do not touch): lambda = 0 and
    nu_old is infinite, so df is the formula's limit: infinite when ``df_com`` is infinite, otherwise
    nu_obs = df_com (df_com + 1) / (df_com + 3) (Barnard-Rubin's observed-data df, which differs from
    df_com only in the small-sample factor). No division by zero is performed.
    """
    q = np.asarray(q, dtype=float)
    u = np.asarray(u, dtype=float)
    if q.shape != u.shape:
        raise ValueError(f"rubin: q has shape {q.shape} but u has shape {u.shape}; they must match.")
    scalar = q.ndim == 1
    if scalar:
        q, u = q[:, None], u[:, None]
    if q.ndim != 2:
        raise ValueError("rubin: q and u must have shape (M,) or (M, k).")
    m = q.shape[0]
    if m < 2:
        raise ValueError(f"rubin: need at least 2 imputations to estimate between-imputation variance, got {m}.")
    if np.any(u < 0):
        raise ValueError("rubin: squared standard errors u must be non-negative.")
    if not (df_com > 0):
        raise ValueError(f"rubin: df_com must be positive (or inf), got {df_com}.")

    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    b = np.where(np.isclose(b, 0.0, rtol=0, atol=1e-300) | (b < 0), 0.0, b)
    inflate = (1.0 + 1.0 / m) * b
    t = ubar + inflate
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(t > 0, inflate / t, 0.0)
        riv = np.where(ubar > 0, inflate / ubar, np.where(inflate > 0, np.inf, 0.0))
        df_old = np.where(lam > 0, (m - 1) / np.square(lam), np.inf)
    if np.isinf(df_com):
        df = df_old
    else:
        df_obs = (df_com + 1.0) / (df_com + 3.0) * df_com * (1.0 - lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(np.isinf(df_old), df_obs, df_old * df_obs / (df_old + df_obs))
    se = np.sqrt(t)
    tcrit = np.where(np.isinf(df), stats.norm.ppf(0.5 + level / 2), stats.t.ppf(0.5 + level / 2, np.where(np.isinf(df), 1.0, df)))
    with np.errstate(divide="ignore", invalid="ignore"):
        fmi = np.where(np.isinf(riv), 1.0, (riv + 2.0 / (df + 3.0)) / (riv + 1.0))
    fmi = np.where(np.isinf(df), lam, fmi)
    out = dict(
        estimate=qbar, se=se, within=ubar, between=b, total=t, df=df,
        ci_low=qbar - tcrit * se, ci_high=qbar + tcrit * se, lambda_=lam, riv=riv, fmi=fmi,
    )
    if scalar:
        out = {k: float(v[0]) for k, v in out.items()}
    return RubinResult(m=m, **out)



KEY_COLUMNS = ["stage", "outcome_level", "model", "ethnicity"]


def pool_tidy(tables: Sequence[pd.DataFrame], analysis: str, df_com: float = np.inf) -> pd.DataFrame:
    """Pool M tidy tables (same rows, as ``models.fit_all`` returns) with Rubin's rules on the log scale.

    ``estimate`` = exp(pooled log estimate), CI = exp(Q-bar +/- t(df) sqrt(T)), p-value from t(df).
    ``n`` (and ``n_events``, ``n_model``, ``n_excluded`` when present) become the *average* completed-data
    counts over the imputations: the completed data sets differ in how many rows each group has.
    Reference rows (log estimate 0, no SE in every table) keep estimate 1 and a blank CI; a row that is not
    estimable in any imputation is NaN (``estimable`` False).
    """
    m = len(tables)
    if m < 2:
        raise ValueError(f"pool_tidy: need at least 2 completed-data tables, got {m}.")
    keys = []
    for t in tables:
        missing = [c for c in KEY_COLUMNS + ["log_estimate", "se", "n"] if c not in t.columns]
        if missing:
            raise ValueError(f"pool_tidy: a table lacks columns {missing}.")
        keys.append(pd.MultiIndex.from_frame(t[KEY_COLUMNS].fillna("").astype(str)))
    for k in keys[1:]:
        if not k.equals(keys[0]):
            raise ValueError("pool_tidy: the completed-data tables do not have the same rows in the same order.")
    q = np.stack([t["log_estimate"].to_numpy(dtype=float) for t in tables])
    se = np.stack([t["se"].to_numpy(dtype=float) for t in tables])
    poolable = (np.isfinite(se) & (se > 0) & np.isfinite(q)).all(axis=0)
    reference = (~np.isfinite(se) & (q == 0)).all(axis=0)
    k = q.shape[1]
    est = np.full(k, np.nan)
    out = {name: np.full(k, np.nan) for name in ("se", "ci_low", "ci_high", "df", "fmi", "riv")}
    if poolable.any():
        r = rubin(q[:, poolable], np.square(se[:, poolable]), df_com=df_com)
        est[poolable] = r.estimate
        for name in out:
            out[name][poolable] = np.asarray(getattr(r, name))
    est[reference] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(est / out["se"])
        df_safe = np.where(np.isfinite(out["df"]), out["df"], 1.0)
        pv = np.where(np.isfinite(out["df"]), 2 * stats.t.sf(z, df_safe), 2 * stats.norm.sf(z))
    result = tables[0][KEY_COLUMNS].reset_index(drop=True).copy()
    result["analysis"] = analysis
    result["estimate"] = np.exp(est)
    result["ci_low"] = np.exp(out["ci_low"])
    result["ci_high"] = np.exp(out["ci_high"])
    result["log_estimate"] = est
    result["se"] = out["se"]
    result["p_value"] = np.where(poolable, pv, np.nan)
    for c in ("n", "n_events", "n_model", "n_excluded"):
        if c in tables[0].columns:
            result[c] = np.stack([t[c].to_numpy(dtype=float) for t in tables]).mean(axis=0)
    if "estimable" in tables[0].columns:
        result["estimable"] = poolable | reference
    result["df"] = out["df"]
    result["fmi"] = out["fmi"]
    result["riv"] = out["riv"]
    result["m"] = m
    first = ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high",
             "log_estimate", "se", "p_value", "n"]
    return result[first + [c for c in result.columns if c not in first]]


def mi_estimates_from_rows(frame: pd.DataFrame, result: CompletedSets, fit: Callable | None = None,
                 df_com: float = np.inf, progress: bool = True) -> pd.DataFrame:
    """Fit the study's models on each completed data set and pool them with Rubin's rules.

    Default (``fit=None``): the 3 stages x 3 models of ``helpers.models``, with the frame's covariates and
    outcomes coded once (``models.ModelPlan``) and only ethnicity swapped in per imputation: the same
    numbers as ``models.fit_all`` on each completed frame. ``fit(frame, analysis=...)`` may be any function
    returning such a tidy table (e.g. ``models.fit_all``); it is called with the completed frame (``frame``
    with ``ethnicity`` replaced by the imputed column).

    Returns the tidy columns of ``models.fit_all`` with ``analysis`` = ``result.analysis`` ("weighted_mi"
    or "mar_mi"), plus ``df``, ``fmi``, ``riv`` and ``m`` (see :func:`pool_tidy`; ``n`` is the average
    completed-data n per group over imputations). ``df_com``: complete-data degrees of freedom (infinite by
    default: the models are large-sample logistic models, as in Stata's ``mi estimate: logit``).
    ``progress``: a tqdm bar (shown only if the fits take more than a second); ``False`` for tests/CI.
    """
    if fit is None:
        plan = models.ModelPlan(frame)

        def one(completed: pd.Series) -> pd.DataFrame:
            return plan.fit_all(ethnicity=completed, analysis=result.analysis)
    else:
        def one(completed: pd.Series) -> pd.DataFrame:
            f = frame.copy()
            f["ethnicity"] = completed
            return fit(f, analysis=result.analysis)

    tables = [one(c) for c in tqdm(result.completed, desc=f"Fitting models on {result.m} imputations",
                                   disable=not progress, delay=1.0, leave=False)]
    return pool_tidy(tables, result.analysis, df_com=df_com)


def per_imputation_estimates(frame: pd.DataFrame, completed: Sequence[pd.Series], stage: str, model: str,
                             ethnicity: str, outcome_level: str = "") -> pd.DataFrame:
    """One coefficient fitted on each completed data set: ``imputation`` (1..M), ``log_estimate``, ``se``,
    ``variance`` (se squared). The inputs of Rubin's rules, for working them through by hand."""
    plan = models.ModelPlan(frame, [stage], [model])
    rows = []
    for i, col in enumerate(completed, start=1):
        levels, est, se = models.group_coefficients(plan.fit(stage, model, col))
        k = levels.index(outcome_level)
        j = study.GROUPS[1:].index(ethnicity)
        rows.append({"imputation": i, "log_estimate": est[k, j], "se": se[k, j]})
    out = pd.DataFrame(rows)
    out["variance"] = out["se"] ** 2
    return out
