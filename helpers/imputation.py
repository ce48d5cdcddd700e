"""Population-calibrated ("weighted") multiple imputation of ethnicity, and Rubin's rules.

The method is Pham et al. (Statistics in Medicine 2019;38:792-808), as implemented in Stata's
``mi impute wmlogit`` (T. M. Pham, SSC, v1.1 2016); no Python library provides it. Every step follows
``docs/study/weighted_mi.md``:

1. Weights, computed once: *conditional* (Stata's default) or *marginal*. ``weights=None`` gives standard
   missing-at-random MI by the same code path, with every weight 1.
2. A multinomial logit of X (ethnic group, base = first category) on the fully observed Z (the analysis
   outcomes and covariates) is fitted to the complete cases, each row weighted by the weight of its observed
   category; its variance is the robust (sandwich) variance for a weighted fit (model-based for MAR MI).
3. For m = 1..M: draw beta* ~ N(beta_hat, V); compute pi = softmax(Z beta*) for every missing row; draw a
   category per missing row (vectorised inverse CDF).
4. Analyse each completed data set and pool with Rubin's rules (:func:`rubin`, :func:`mi_estimates`).

All randomness comes from the one ``numpy.random.Generator`` passed in; nothing touches global state.

Efficiency: with categorical Z the rows are aggregated into covariate patterns (a few thousand for this
study) and the model is fitted on pattern x category counts via ``helpers.models.fit_mnlogit_counts``.
With a continuous Z column (the Stata help's worked example) each distinct row is its own pattern and the
same code runs at row level.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from helpers import study
from helpers.codes import ETHNIC_CODE_TO_GROUP

#: Fully observed variables of the study's imputation model (main effects). ``pathway_stage`` combines
#: ``assessed`` and ``treated`` into one 3-level variable (treated is NA when not assessed); it is derived
#: by :func:`add_pathway_stage` when the frame does not carry it.
DEFAULT_Z: tuple[str, ...] = ("referral_source", "pathway_stage", "age_band", "gender", "year", "borough")
PATHWAY_STAGES: list[str] = ["not assessed", "assessed not treated", "treated"]

#: A weight <= 0 is replaced by this (as in Stata's wmlogit).
WEIGHT_FLOOR = 1e-5
SHARE_TOL = 1e-6


class MarginWarning(UserWarning):
    """The population margin cannot be met: a category's population share is below its observed share."""


class CensusWarning(UserWarning):
    """How a census margin was built (percentages used, boroughs left out) when the file is incomplete."""


class ImputationModelWarning(UserWarning):
    """A term of the imputation model could not be estimated (empty cell or separation) and was dropped."""


# --------------------------------------------------------------------------------------------------
# Rubin's rules
# --------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------
# Margins and weights
# --------------------------------------------------------------------------------------------------
def _check_shares(pop_shares, k: int | None = None, name: str = "margin") -> np.ndarray:
    p = np.asarray(pop_shares, dtype=float).ravel()
    if k is not None and p.size != k:
        raise ValueError(f"{name}: has {p.size} categories but the data have {k}; categories must match.")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: population shares must be finite numbers, got {p.tolist()}.")
    if np.any(p < 0):
        raise ValueError(f"{name}: population shares must be non-negative, got {p.tolist()}.")
    if abs(p.sum() - 1.0) > SHARE_TOL:
        raise ValueError(f"{name}: population shares must sum to 1 (within {SHARE_TOL:g}), they sum to {p.sum():.8f}.")
    return p


def _floor_weights(w: np.ndarray, categories: Sequence[str] | None, pop: np.ndarray, obs_share: np.ndarray,
                   kind: str) -> tuple[np.ndarray, list[str]]:
    w = np.array(w, dtype=float)
    messages = []
    for j in np.flatnonzero(~(w > 0)):
        name = categories[j] if categories is not None else f"category {j}"
        msg = (
            f"{kind} weight for {name!r} is {w[j]:.4g} <= 0: its population share ({pop[j]:.4%}) is below what "
            f"is already observed ({obs_share[j]:.4%} of all rows). The margin cannot be met; the weight is set "
            f"to {WEIGHT_FLOOR:g} so that (almost) no missing row is imputed into {name!r}."
        )
        warnings.warn(msg, MarginWarning, stacklevel=3)
        messages.append(msg)
        w[j] = WEIGHT_FLOOR
    return w, messages


def marginal_weights(observed_counts, n_missing: float, pop_shares, categories: Sequence[str] | None = None,
                     return_messages: bool = False):
    """Marginal weights w_j = p_imp,j / (n_obs,j / n_obs), p_imp,j = (p_pop,j N - n_obs,j) / n_mis.

    ``observed_counts``: length-K observed counts per category; ``n_missing``: number of rows with X missing;
    ``pop_shares``: length-K population shares (non-negative, summing to 1). A weight <= 0 is set to 1e-5
    with a :class:`MarginWarning` naming the category.
    """
    n_obs_j = np.asarray(observed_counts, dtype=float).ravel()
    p = _check_shares(pop_shares, n_obs_j.size)
    if n_missing <= 0:
        raise ValueError("marginal_weights: there are no missing rows to impute (n_missing <= 0).")
    if np.any(n_obs_j <= 0):
        bad = [categories[j] if categories is not None else j for j in np.flatnonzero(n_obs_j <= 0)]
        raise ValueError(f"marginal_weights: no observed rows in categories {bad}; the model cannot be fitted.")
    n_obs = n_obs_j.sum()
    n = n_obs + n_missing
    p_imp = (p * n - n_obs_j) / n_missing
    w = p_imp / (n_obs_j / n_obs)
    w, msgs = _floor_weights(w, categories, p, n_obs_j / n, "Marginal")
    return (w, msgs) if return_messages else w


def conditional_weights(pi_hat_missing, observed_counts, pop_shares, categories: Sequence[str] | None = None,
                        multiplicity=None, return_messages: bool = False):
    """Conditional weights (Stata's default): from the MAR model's predictions for the missing rows.

    ``pi_hat_missing``: (n_mis, K) predicted probabilities for the missing rows (or per pattern, with
    ``multiplicity`` giving the number of missing rows per pattern). m_j = round(sum pi_ij);
    c_j = n_obs,j + m_j; p_j = c_j / N; p_imp,j = (p_pop,j N - p_j n_obs) / n_mis; w_j = p_imp,j / p_j.
    """
    pi = np.atleast_2d(np.asarray(pi_hat_missing, dtype=float))
    n_obs_j = np.asarray(observed_counts, dtype=float).ravel()
    if pi.shape[1] != n_obs_j.size:
        raise ValueError(
            f"conditional_weights: predictions have {pi.shape[1]} categories, observed counts {n_obs_j.size}."
        )
    p = _check_shares(pop_shares, n_obs_j.size)
    mult = np.ones(pi.shape[0]) if multiplicity is None else np.asarray(multiplicity, dtype=float).ravel()
    n_mis = mult.sum()
    if n_mis <= 0:
        raise ValueError("conditional_weights: there are no missing rows to impute.")
    n_obs = n_obs_j.sum()
    n = n_obs + n_mis
    m_j = np.round(mult @ pi)
    c_j = n_obs_j + m_j
    p_j = c_j / n
    p_imp = (p * n - p_j * n_obs) / n_mis
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(p_j > 0, p_imp / p_j, 0.0)
    w, msgs = _floor_weights(w, categories, p, n_obs_j / n, "Conditional")
    return (w, msgs) if return_messages else w


def validate_margin(margin, groups: Sequence[str] = study.GROUPS) -> pd.Series:
    if not isinstance(margin, pd.Series):
        raise ValueError("margin must be a pandas Series indexed by the ethnic groups (study.GROUPS).")
    missing = [g for g in groups if g not in margin.index]
    extra = [g for g in margin.index if g not in groups]
    if missing or extra:
        raise ValueError(
            f"margin: groups missing from the margin: {missing}; unknown groups: {extra}. "
            f"The margin must give a share for every group in {list(groups)}."
        )
    out = margin.reindex(list(groups)).astype(float)
    _check_shares(out.to_numpy(), len(groups), name="margin")
    return out


def margin_from_truth(truth_groups) -> pd.Series:
    """The referred population's true ethnic mix (synthetic world): shares of ``truth_groups`` over GROUPS."""
    s = pd.Series(truth_groups)
    if s.isna().any():
        raise ValueError(f"margin_from_truth: {int(s.isna().sum())} rows have no true group.")
    unknown = sorted(set(s.astype(str)) - set(study.GROUPS))
    if unknown:
        raise ValueError(f"margin_from_truth: unknown groups {unknown}.")
    shares = s.astype(str).value_counts(normalize=True).reindex(study.GROUPS, fill_value=0.0)
    shares.name = "margin"
    shares.attrs["source"] = f"true ethnic mix of the {len(s):,} referrals"
    return shares


def margin_from_census(census_csv_path, boroughs: Sequence[str] | None = None,
                       populations: Mapping[str, float] | None = None) -> pd.Series:
    """Ethnic mix of the boroughs' usual residents from the 2011 Census file, mapped to the study groups.

    The file has one row per census category and borough with ``count``, ``percent`` and ``status``. The
    committed file (2011 Census QS201EW via Nomis) prints full counts for all four boroughs, Southwark,
    Lewisham, Lambeth and Croydon, so by default all four are used, each weighted by its residents. The
    function also reads files that are less complete:

    - ``printed`` with counts for every category: counts are used.
    - ``printed_percent_only``: the file prints no population, so the borough's counts are its
      percentages (renormalised to sum to 100) times a population you supply in ``populations``
      (for example the number of referrals from the borough, which makes the margin describe the referred
      mix). Without one the borough cannot be weighted against the others and is left out.
    - ``not_found`` rows: the borough's mix is incomplete, so it is left out.

    With ``populations`` given for a borough, every borough named there is weighted by it (its shares times
    that population), whether or not the file prints counts. ``boroughs=None``: every borough the file can
    serve, with a :class:`CensusWarning` listing those left out and why; naming a borough that cannot be
    served raises ValueError. The returned Series carries ``attrs['method']`` (one line per borough: what was
    used) and ``attrs['source']``. No number is made up: what the file does not print is not used.
    """
    path = Path(census_csv_path)
    if not path.exists():
        raise FileNotFoundError(f"margin_from_census: no such file {path}")
    raw = pd.read_csv(path, dtype={"nhs_code": str, "borough": str, "status": str})
    needed = {"borough", "census_category", "nhs_code", "count", "percent", "status"}
    if not needed <= set(raw.columns):
        raise ValueError(f"margin_from_census: {path.name} lacks columns {sorted(needed - set(raw.columns))}.")
    populations = dict(populations or {})
    all_boroughs = list(dict.fromkeys(raw["borough"]))
    requested = list(all_boroughs if boroughs is None else boroughs)
    unknown = [b for b in requested if b not in all_boroughs]
    if unknown:
        raise ValueError(f"margin_from_census: boroughs {unknown} are not in {path.name} (it has {all_boroughs}).")
    unknown_pop = [b for b in populations if b not in requested]
    if unknown_pop:
        raise ValueError(f"margin_from_census: populations given for boroughs not used: {unknown_pop}.")

    counts_by_borough: dict[str, pd.Series] = {}
    method: list[str] = []
    left_out: list[str] = []
    for b in requested:
        rows = raw[raw["borough"] == b]
        single = rows[rows["nhs_code"].isin(ETHNIC_CODE_TO_GROUP)]
        problem = None
        if (single["status"] == "not_found").any():
            gaps = single.loc[single["status"] == "not_found", "census_category"].tolist()
            problem = f"{b}: incomplete in the census file ({len(gaps)} categories not found, e.g. {gaps[0]!r})"
        elif single["percent"].isna().any() and single["count"].isna().any():
            problem = f"{b}: some categories have neither count nor percent"
        if problem is None:
            groups = single["nhs_code"].map(ETHNIC_CODE_TO_GROUP)
            has_counts = single["count"].notna().all()
            if b in populations:
                pop = float(populations[b])
                if not pop > 0:
                    raise ValueError(f"margin_from_census: population for {b} must be positive, got {pop}.")
                if has_counts:
                    shares = single["count"].astype(float) / single["count"].sum()
                    basis = "printed counts as shares"
                else:
                    shares = single["percent"].astype(float) / single["percent"].sum()
                    basis = f"printed percentages (sum {single['percent'].sum():.1f}, renormalised)"
                counts_by_borough[b] = (shares * pop).groupby(groups.values).sum()
                method.append(f"{b}: {basis} x supplied population {pop:,.0f}")
            elif has_counts:
                counts_by_borough[b] = single["count"].astype(float).groupby(groups.values).sum()
                method.append(f"{b}: printed 2011 counts (total {single['count'].sum():,.0f})")
            else:
                problem = f"{b}: the file prints percentages only and no population was supplied (populations=...)"
        if problem is not None:
            if boroughs is not None:
                raise ValueError(f"margin_from_census: cannot use {problem}.")
            left_out.append(problem)
    if not counts_by_borough:
        raise ValueError(f"margin_from_census: no usable borough in {path.name}: {left_out}")
    if left_out:
        text = "margin_from_census left out " + "; ".join(left_out) + "."
        warnings.warn(text, CensusWarning, stacklevel=2)
        method.extend(f"left out: {p}" for p in left_out)
    total = pd.concat(counts_by_borough, axis=1).fillna(0.0).sum(axis=1)
    total = total.reindex(study.GROUPS, fill_value=0.0)
    margin = total / total.sum()
    margin.name = "margin"
    margin.attrs["method"] = method
    margin.attrs["boroughs"] = list(counts_by_borough)
    margin.attrs["source"] = f"2011 Census QS201EW via {path.name}: " + ", ".join(counts_by_borough)
    return margin


# --------------------------------------------------------------------------------------------------
# The imputation model: multinomial logit on pattern counts
# --------------------------------------------------------------------------------------------------
def _fit_mnlogit(X, counts, weights=None, robust=False, names=None, categories=None):
    """The imputation model: ``helpers.models.fit_mnlogit_counts`` (base outcome = first category).

    The robust variance carries Stata's ``mlogit [pw]`` small-sample factor N/(N-1), as ``uvis`` in
    ``mi impute wmlogit`` uses it.
    """
    from helpers import models

    return models.fit_mnlogit_counts(X, counts, weights=weights, robust=robust, small_sample=robust,
                                     names=names, outcome_levels=categories)


def _softmax_probs(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    """pi (patterns x K), base category 0, from params (p, K-1)."""
    eta = np.column_stack([np.zeros(X.shape[0]), X @ params])
    eta -= eta.max(axis=1, keepdims=True)
    e = np.exp(eta)
    return e / e.sum(axis=1, keepdims=True)


def _draw_categories(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of ``probs`` by the inverse CDF of one uniform each (vectorised)."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(probs.shape[0])
    return (u[:, None] > cum).sum(axis=1)


def _mvn_factor(cov: np.ndarray) -> np.ndarray:
    """L with L L^T = cov (Cholesky, falling back to a symmetric eigen square root if not positive definite)."""
    cov = (cov + cov.T) / 2
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _pattern_index(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``z``: (index of each pattern's first row, pattern of every row).

    Each column is factorised on its own (1-D, fast) and the codes combined into one mixed-radix integer
    key, so 85,800 rows x 20 dummy columns take milliseconds (``np.unique(axis=0)`` takes most of a second).
    """
    n, p = z.shape
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for j in range(p):
        levels, codes = np.unique(z[:, j], return_inverse=True)
        if levels.size == 1:
            continue
        if radix * levels.size >= 2**62:  # too many combinations for one integer: compress what we have
            _, key = np.unique(key, return_inverse=True)
            radix = int(key.max()) + 1
        key = key * levels.size + codes.ravel()
        radix *= levels.size
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.ravel()


@dataclass
class EngineResult:
    """Imputations on integer codes: ``draws`` (M, n_missing) category codes for the missing rows."""

    draws: np.ndarray
    missing_rows: np.ndarray
    weights: np.ndarray
    observed_counts: np.ndarray
    fit: object
    mar_fit: object | None
    messages: list[str]
    method: str
    dropped_terms: list[str] = field(default_factory=list)  # Z columns dropped as not estimable
    n_dropped: int = 0


@dataclass
class _UnweightedFit:
    """The unweighted imputation model on the columns kept, and the warnings its fitter raised (held back)."""

    keep: np.ndarray
    fit: object | None
    caught: list = field(default_factory=list)
    drop_messages: list[str] = field(default_factory=list)

    def use(self) -> object:
        """The fit, raising the warnings the fitter raised (as fitting it again would)."""
        for w in self.caught:  # at the fitter's own line, shown as often as Python shows a warning from there
            module = next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == w.filename), None)
            registry = None if module is None else module.__dict__.setdefault("__warningregistry__", {})
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, registry=registry)
        return self.fit


def _estimable_columns(x: np.ndarray, counts: np.ndarray, names: Sequence[str] | None,
                       categories: Sequence[str] | None, messages: list[str], max_rounds: int = 5) -> _UnweightedFit:
    """Columns of the imputation model's Z that the complete cases can estimate (intercept always kept).

    Fit the unweighted model; every column with a coefficient flagged not estimable (``fit.not_estimable``:
    an empty level x category cell, or separation) is dropped, which merges that level with the reference
    level in the imputation model, and the model is refitted until nothing is flagged. Each drop is reported
    with an :class:`ImputationModelWarning` (the user sees it) and kept in ``messages``. The last fit is the
    unweighted model on the kept columns, returned so that it is not fitted twice (MAR MI uses it, weighted MI
    takes its conditional weights from it).
    """
    keep = np.arange(x.shape[1])
    for _ in range(max_rounds):
        sub_names = None if names is None else [names[j] for j in keep]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the fitter's own SparseCellWarnings are summarised below
            fit = _fit_mnlogit(x[:, keep], counts, weights=None, robust=False, names=sub_names,
                               categories=categories)
        p = keep.size
        bad = sorted({int(i) % p for i in getattr(fit, "not_estimable", [])} - {0})
        if not bad:
            return _UnweightedFit(keep, fit, list(caught))
        labels = [sub_names[j] if sub_names is not None else f"column {keep[j]}" for j in bad]
        cells = []
        for j in bad:
            cat = [categories[1 + int(i) // p] if categories is not None else str(1 + int(i) // p)
                   for i in fit.not_estimable if int(i) % p == j]
            cells.append(f"{labels[bad.index(j)]} (with {', '.join(cat)})")
        msg = (f"The imputation model cannot estimate {'; '.join(cells)}: an empty cell or separation in the "
               f"complete cases. {'This term is' if len(bad) == 1 else 'These terms are'} dropped from the "
               "imputation model (the level is merged with its reference level) and the model is refitted, so "
               "that no imputation draws from a meaningless covariance.")
        warnings.warn(msg, ImputationModelWarning, stacklevel=3)
        messages.append(msg)
        keep = np.delete(keep, bad)
    return _UnweightedFit(keep, None)


def impute_codes(z_design: np.ndarray, x_codes: np.ndarray, n_categories: int, m: int,
                 rng: np.random.Generator, pop_shares=None, weights: str | None = "conditional",
                 categories: Sequence[str] | None = None, aggregate: bool = True,
                 names: Sequence[str] | None = None, shared: dict | None = None) -> EngineResult:
    """The general engine: impute integer-coded X (-1 = missing) from a numeric design matrix.

    ``z_design``: (n, p) float design of the imputation model, *including* the intercept column; any mix
    of dummy and continuous columns. Rows are aggregated into distinct patterns (``np.unique``), which is
    what makes categorical Z fast; with continuous columns each row is its own pattern and the counts are
    one-hot rows, so the same fitter and draws apply. ``weights``: "conditional", "marginal", or None
    (standard MAR MI, all weights 1, model-based variance). Randomness: ``rng`` only, in a fixed order
    (per imputation: p(K-1) normals for beta*, then one uniform per missing row). ``names``: column names
    of ``z_design`` (used in the fitter's warnings). ``shared``: one dict passed to several calls on the same
    data (MAR and weighted MI of one simulated cohort): the unweighted model, which both methods start from,
    is then fitted once (a call on other data refits; the draws are the same either way).
    """
    z_design = np.asarray(z_design, dtype=float)
    x_codes = np.asarray(x_codes)
    n, p = z_design.shape
    names_all = None if names is None else list(names)
    k = int(n_categories)
    if x_codes.shape != (n,):
        raise ValueError("impute_codes: x_codes must be 1-D with one entry per row of z_design.")
    if not np.all(np.isfinite(z_design)):
        raise ValueError("impute_codes: the imputation model's Z must be fully observed (no NaN).")
    if weights not in ("conditional", "marginal", None):
        raise ValueError(f"weights must be 'conditional', 'marginal' or None, got {weights!r}.")
    if m < 1:
        raise ValueError(f"m (number of imputations) must be >= 1, got {m}.")
    missing = x_codes < 0
    if np.any(x_codes >= k):
        raise ValueError(f"impute_codes: codes must be -1 (missing) or 0..{k - 1}.")
    missing_rows = np.flatnonzero(missing)
    n_mis = missing_rows.size
    if n_mis == 0:
        raise ValueError("impute_codes: nothing is missing, there is nothing to impute.")

    if aggregate:
        first, inverse = _pattern_index(z_design)
        patterns = z_design[first]
    else:
        patterns, inverse = z_design, np.arange(n)
    n_pat = patterns.shape[0]
    obs = ~missing
    counts = np.zeros((n_pat, k))
    np.add.at(counts, (inverse[obs], x_codes[obs].astype(int)), 1.0)
    mis_counts = np.bincount(inverse[missing], minlength=n_pat).astype(float)
    observed_counts = counts.sum(axis=0)
    if np.any(observed_counts == 0):
        empty = [categories[j] if categories is not None else j for j in np.flatnonzero(observed_counts == 0)]
        raise ValueError(f"impute_codes: no observed rows in categories {empty}; the model cannot be fitted.")
    fit_rows = counts.sum(axis=1) > 0
    fit_x, fit_counts = patterns[fit_rows], counts[fit_rows]
    mis_pat = np.flatnonzero(mis_counts > 0)

    messages: list[str] = []
    mar_fit = None
    # Terms the complete cases cannot estimate (an empty cell, separation) are dropped from Z first, so that
    # no imputation draws beta* from a meaningless covariance (SE in the thousands).
    data_key = (z_design.shape, hash(z_design.tobytes()), hash(x_codes.tobytes()), aggregate,
                None if names is None else tuple(names), None if categories is None else tuple(categories))
    if shared is not None and shared.get("data") == data_key:
        unweighted = shared["unweighted"]
        for msg in unweighted.drop_messages:  # told again, as the check would tell it on these data
            warnings.warn(msg, ImputationModelWarning, stacklevel=2)
            messages.append(msg)
    else:
        unweighted = _estimable_columns(fit_x, fit_counts, names, categories, messages)
        unweighted.drop_messages = list(messages)
        if shared is not None:
            shared.update(data=data_key, unweighted=unweighted)
    keep = unweighted.keep
    patterns, fit_x = patterns[:, keep], fit_x[:, keep]
    names = None if names is None else [names[j] for j in keep]

    def unweighted_fit() -> object:  # the model _estimable_columns fitted last, else (rounds ran out) a new fit
        if unweighted.fit is not None:
            return unweighted.use()
        return _fit_mnlogit(fit_x, fit_counts, weights=None, robust=False, names=names, categories=categories)

    if weights is None:
        w = np.ones(k)
        fit = unweighted_fit()
        method = "mar_mi"
    else:
        p_pop = _check_shares(pop_shares, k)
        if weights == "marginal":
            w, more = marginal_weights(observed_counts, n_mis, p_pop, categories, return_messages=True)
        else:
            mar_fit = unweighted_fit()
            pi_hat = _softmax_probs(patterns[mis_pat], np.asarray(mar_fit.params))
            w, more = conditional_weights(pi_hat, observed_counts, p_pop, categories,
                                          multiplicity=mis_counts[mis_pat], return_messages=True)
        messages.extend(more)
        fit = _fit_mnlogit(fit_x, fit_counts, weights=w, robust=True, names=names, categories=categories)
        method = "weighted_mi"
    if hasattr(fit, "converged") and not fit.converged:
        msg = "The imputation model did not converge; imputations may be unreliable."
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        messages.append(msg)

    beta_hat = np.asarray(fit.params, dtype=float)
    vec_hat = beta_hat.ravel(order="F")  # statsmodels MNLogit order: outcome-major
    chol = _mvn_factor(np.asarray(fit.cov, dtype=float))
    x_mis = patterns[mis_pat]
    # position of each missing row's pattern within mis_pat
    lookup = np.full(n_pat, -1)
    lookup[mis_pat] = np.arange(mis_pat.size)
    row_pat = lookup[inverse[missing_rows]]
    draws = np.empty((m, n_mis), dtype=np.int8 if k < 127 else np.int64)
    for i in range(m):
        beta_star = (vec_hat + chol @ rng.standard_normal(vec_hat.size)).reshape(beta_hat.shape, order="F")
        probs = _softmax_probs(x_mis, beta_star)
        draws[i] = _draw_categories(probs[row_pat], rng)
    return EngineResult(draws=draws, missing_rows=missing_rows, weights=w, observed_counts=observed_counts,
                        fit=fit, mar_fit=mar_fit, messages=messages, method=method,
                        dropped_terms=[] if names_all is None else [n for j, n in enumerate(names_all) if j not in keep],
                        n_dropped=p - len(keep))


# --------------------------------------------------------------------------------------------------
# The study's ethnicity imputation
# --------------------------------------------------------------------------------------------------
def add_pathway_stage(frame: pd.DataFrame) -> pd.Series:
    """One 3-level categorical from ``assessed`` and ``treated``: not assessed / assessed not treated / treated."""
    assessed = frame["assessed"].astype(float).to_numpy()
    treated = frame["treated"].astype(float).to_numpy()
    if np.isnan(assessed).any():
        raise ValueError("pathway_stage: 'assessed' has missing values; Z must be fully observed.")
    if np.isnan(treated[assessed == 1]).any():
        raise ValueError("pathway_stage: 'treated' is missing for some assessed referrals.")
    code = np.where(assessed == 1, np.where(treated == 1, 2, 1), 0)
    return pd.Series(pd.Categorical.from_codes(code, PATHWAY_STAGES), index=frame.index, name="pathway_stage")


def z_design(frame: pd.DataFrame, z_columns: Sequence[str] = DEFAULT_Z) -> tuple[np.ndarray, list[str]]:
    """Design matrix of the imputation model: intercept + main effects (dummy coding, first level reference
    for categorical/string columns; numeric columns as they are)."""
    cols = [np.ones(len(frame))]
    names = ["const"]
    for c in z_columns:
        if c == "pathway_stage" and c not in frame:
            s = add_pathway_stage(frame)
        elif c not in frame:
            raise ValueError(f"Imputation model column {c!r} is not in the frame.")
        else:
            s = frame[c]
        if s.isna().any():
            raise ValueError(f"Imputation model column {c!r} has {int(s.isna().sum())} missing values; Z must be fully observed.")
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s) \
                or pd.api.types.is_bool_dtype(s):
            cat = s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")
            codes = cat.cat.codes.to_numpy()
            for j, level in enumerate(cat.cat.categories[1:], start=1):
                cols.append((codes == j).astype(float))
                names.append(f"{c}[{level}]")
        else:
            cols.append(s.to_numpy(dtype=float))
            names.append(c)
    return np.column_stack(cols), names


@dataclass
class ImputationResult:
    """M completed ethnicity columns and the checks that go with them."""

    completed: list[pd.Series]
    weights: pd.Series
    shares: pd.DataFrame
    calibration: pd.DataFrame
    warnings: list[str]
    analysis: str  # "weighted_mi" or "mar_mi"
    method: str  # "conditional", "marginal" or "none"
    m: int
    n_missing: int
    margin: pd.Series | None
    z_columns: list[str] = field(default_factory=list)
    fit: object = None
    dropped_terms: list[str] = field(default_factory=list)  # imputation-model terms dropped as not estimable


def _shares_tables(completed_codes: np.ndarray, observed_counts: np.ndarray, n: int, groups: list[str],
                   margin: pd.Series | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = completed_codes.shape[0]
    k = len(groups)
    per_imp = np.stack([(observed_counts + np.bincount(d, minlength=k)) / n for d in completed_codes], axis=1)
    shares = pd.DataFrame(per_imp, index=pd.Index(groups, name="ethnicity"),
                          columns=[f"imputation_{i + 1}" for i in range(m)])
    shares["observed"] = observed_counts / observed_counts.sum()
    shares["margin"] = np.nan if margin is None else margin.to_numpy()
    mean = per_imp.mean(axis=1)
    # Monte Carlo SE of the mean completed share, and Rubin's total SE (within: p(1-p)/N)
    mc_se = per_imp.std(axis=1, ddof=1) / np.sqrt(m) if m > 1 else np.full(k, np.nan)
    calib = pd.DataFrame({"margin": shares["margin"], "observed": shares["observed"], "mean_completed": mean},
                         index=shares.index)
    calib["difference"] = calib["mean_completed"] - calib["margin"]
    calib["mc_se"] = mc_se
    if m > 1:
        pooled = rubin(per_imp.T, (per_imp * (1 - per_imp) / n).T)
        calib["pooled_se"] = pooled.se
    else:
        calib["pooled_se"] = np.nan
    return shares, calib


def impute_ethnicity(frame: pd.DataFrame, margin: pd.Series | None, m: int, rng: np.random.Generator,
                     weights: str | None = "conditional", z_columns: Sequence[str] = DEFAULT_Z) -> ImputationResult:
    """Impute the missing ``ethnicity`` of ``frame`` M times (weighted MI by default).

    ``margin``: population shares indexed by ``study.GROUPS`` (all eight, summing to 1); required unless
    ``weights=None`` (MAR MI, where it is only used for the calibration table if given). ``rng``: the one
    ``numpy.random.Generator`` behind every draw. ``z_columns``: fully observed variables of the imputation
    model (main effects); ``pathway_stage`` is derived from ``assessed``/``treated`` when absent.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)).")
    groups = list(study.GROUPS)
    if weights is not None or margin is not None:
        if margin is None:
            raise ValueError(f"weights={weights!r} needs a population margin.")
        margin = validate_margin(margin, groups)
    eth = frame["ethnicity"]
    if isinstance(eth.dtype, pd.CategoricalDtype):
        bad = [c for c in eth.cat.categories if c not in groups]
    else:
        bad = sorted(set(eth.dropna().astype(str)) - set(groups))
    if bad:
        raise ValueError(f"ethnicity has values outside study.GROUPS: {bad}")
    codes = pd.Categorical(eth, categories=groups).codes.astype(int)
    design, znames = z_design(frame, z_columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = impute_codes(design, codes, len(groups), m, rng,
                           pop_shares=None if margin is None else margin.to_numpy(),
                           weights=weights, categories=groups, names=znames)
    for w in caught:  # re-issue to the caller, and keep them on the result
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    completed = []
    for i in range(m):
        c = codes.copy()
        c[res.missing_rows] = res.draws[i]
        completed.append(pd.Series(pd.Categorical.from_codes(c, categories=groups), index=frame.index,
                                   name="ethnicity"))
    shares, calib = _shares_tables(res.draws.astype(int), res.observed_counts, len(frame), groups, margin)
    return ImputationResult(
        completed=completed,
        weights=pd.Series(res.weights, index=pd.Index(groups, name="ethnicity"), name="weight"),
        shares=shares, calibration=calib,
        warnings=[str(w.message) for w in caught],
        analysis=res.method, method=weights or "none", m=m, n_missing=int(res.missing_rows.size),
        margin=margin, z_columns=list(z_columns), fit=res.fit, dropped_terms=list(res.dropped_terms),
    )


def weighted_mi(frame: pd.DataFrame, margin: pd.Series, m: int, rng: np.random.Generator,
                weights: str | None = "conditional") -> list[pd.Series]:
    """The contract's short form: the M completed ethnicity columns of :func:`impute_ethnicity`."""
    return impute_ethnicity(frame, margin, m, rng, weights=weights).completed


# --------------------------------------------------------------------------------------------------
# Analysis of the completed data sets
# --------------------------------------------------------------------------------------------------
KEY_COLUMNS = ["stage", "outcome_level", "model", "ethnicity"]
POOLED_EXTRA = ["df", "fmi", "riv", "m"]


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


def mi_estimates(frame: pd.DataFrame, result: ImputationResult, fit: Callable | None = None,
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
    from tqdm import tqdm  # the text bar: works in a terminal and a notebook without ipywidgets

    if fit is None:
        from helpers import models

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
