"""Population-calibrated ("weighted") multiple imputation of ethnicity.

The method is Pham et al. (Statistics in Medicine 2019;38:792-808), as implemented in Stata's
``mi impute wmlogit`` (T. M. Pham, SSC, v1.1 2016); no Python library provides it. Every step follows
``docs/study/weighted_mi.md``:

1. Weights, computed once: *conditional* (Stata's default) or *marginal*. ``weights=None`` gives standard
   missing-at-random MI by the same code path, with every weight 1.
2. A multinomial logit of X (ethnic group, base = first category) on the fully observed Z (the analysis
   outcomes and covariates) is fitted to the complete cases, each row weighted by the weight of its observed
   category; its variance is the robust (sandwich) variance for a weighted fit (model-based for MAR MI).
3. For m = 1..M: draw beta* ~ N(beta_hat, V); compute pi = softmax(Z beta*) for every covariate pattern with
   missing rows and split that pattern's missing rows across the categories by one multinomial draw (the same
   distribution as one categorical draw per row). Rows (:func:`impute_codes`) and pattern counts
   (``helpers.fromcounts``) share this engine (:func:`impute_patterns`); the row route then gives each
   pattern's drawn categories to its missing rows in a random order from a separate stream.
4. Analyse each completed data set and pool with Rubin's rules (``helpers.pooling``).

All randomness comes from the one ``numpy.random.Generator`` passed in; nothing touches global state.

Efficiency: with categorical Z the rows are aggregated into covariate patterns (a few thousand for this
study) and the model is fitted on pattern x category counts via ``helpers.fitting.fit_mnlogit_counts``.
With a continuous Z column (the Stata help's worked example) each distinct row is its own pattern and the
same code runs at row level.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from helpers import study
from helpers.fitting import fit_mnlogit_counts, mnlogit_probabilities, mvn_factor
from helpers.pooling import rubin

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


class ImputationModelWarning(UserWarning):
    """A term of the imputation model could not be estimated (empty cell or separation) and was dropped."""


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


def _floor_weights(w: np.ndarray, categories: Sequence[str] | None, pop: np.ndarray,
                   floor: Callable[[int], str], kind: str) -> tuple[np.ndarray, list[str]]:
    """Weights <= 0 set to WEIGHT_FLOOR, each with a warning; ``floor(j)`` says what share category j needed
    (each formula has its own: the two differ, so one wording for both would mislead)."""
    w = np.array(w, dtype=float)
    messages = []
    for j in np.flatnonzero(~(w > 0)):
        name = categories[j] if categories is not None else f"category {j}"
        msg = (
            f"{kind} weight for {name!r} is {w[j]:.4g} <= 0: its population share ({pop[j]:.4%}) is at or below "
            f"{floor(j)}. The margin cannot be met; the weight is set "
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
    w, msgs = _floor_weights(w, categories, p, lambda j: f"what is already observed ({n_obs_j[j] / n:.4%} of all rows)",
                             "Marginal")
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
    if np.any(n_obs_j <= 0):
        bad = [categories[j] if categories is not None else j for j in np.flatnonzero(n_obs_j <= 0)]
        raise ValueError(f"conditional_weights: no observed rows in categories {bad}; the model cannot be fitted.")
    n_obs = n_obs_j.sum()
    n = n_obs + n_mis
    m_j = np.round(mult @ pi)
    c_j = n_obs_j + m_j
    p_j = c_j / n
    p_imp = (p * n - p_j * n_obs) / n_mis
    w = p_imp / p_j  # p_j > 0: every group has a recorded row (checked above)
    # p_imp,j > 0 needs p_pop,j > p_j n_obs / N = (n_obs,j + m_j) / N x n_obs / N: above the recorded share n_obs,j / N
    # where the MAR model gives j more of the missing than its recorded share (m_j / n_mis > n_obs,j / n_obs), below it
    # where less, so the message names both
    w, msgs = _floor_weights(
        w, categories, p,
        # shares only, never counts: the message reaches a real extract's published notebooks
        lambda j: (f"{p_j[j] * n_obs / n:.4%}, the least the conditional formula can meet: p_j x n_obs / N, with "
                   f"p_j = {p_j[j]:.4%} (its recorded rows and the missing rows the MAR model predicts for it, as a "
                   f"share of all rows) and n_obs / N = {n_obs / n:.4%} the recorded share; already recorded: "
                   f"{n_obs_j[j] / n:.4%} of all rows"),
        "Conditional")
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



# --------------------------------------------------------------------------------------------------
# The imputation model: multinomial logit on pattern counts
# --------------------------------------------------------------------------------------------------
def fit_imputation_model(X, counts, weights=None, robust=False, names=None, categories=None):
    """The imputation model: ``helpers.fitting.fit_mnlogit_counts`` (base outcome = first category).

    The robust variance carries Stata's ``mlogit [pw]`` small-sample factor N/(N-1), as ``uvis`` in
    ``mi impute wmlogit`` uses it.
    """
    return fit_mnlogit_counts(X, counts, weights=weights, robust=robust, small_sample=robust,
                              names=names, outcome_levels=categories)


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
class ImputationModel:
    """What every set of imputations carries: the imputation model behind the draws, for the notebooks to show."""

    weights: np.ndarray  # one per category: how the weighted model re-weights it (1 under MAR)
    observed_counts: np.ndarray  # recorded rows per category
    fit: object  # the imputation model drawn from
    mar_fit: object | None  # the unweighted model the conditional weights start from
    messages: list[str]  # what the weights could not do, said to the user
    method: str


@dataclass
class EngineResult(ImputationModel):
    """Imputations on integer codes: ``draws`` (M, n_missing) category codes for the missing rows."""

    draws: np.ndarray
    missing_rows: np.ndarray
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
            fit = fit_imputation_model(x[:, keep], counts, weights=None, robust=False, names=sub_names,
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


@dataclass
class PatternDraws(ImputationModel):
    """Imputations per covariate pattern: ``drawn`` (M, len(missing_patterns), K) counts of each pattern's
    missing rows placed in each category, and the imputation model behind them."""

    drawn: np.ndarray
    missing_patterns: np.ndarray  # positions (in the patterns given) of the patterns with missing rows
    keep: np.ndarray  # columns of the design kept in the imputation model

    def completed(self, counts: np.ndarray) -> list[np.ndarray]:
        """The M completed patterns x categories tables: the observed ``counts`` plus each imputation's split."""
        out = []
        for d in self.drawn:
            c = np.array(counts, dtype=float)
            c[self.missing_patterns] += d
            out.append(c)
        return out


def pattern_order(patterns: np.ndarray) -> np.ndarray:
    """The canonical order of distinct design rows (the order :func:`impute_codes` aggregates rows into), so
    that rows and pattern counts put the same patterns in the same order and hence take the same draws."""
    first, _ = _pattern_index(np.asarray(patterns, dtype=float))
    return first


def impute_patterns(patterns: np.ndarray, counts: np.ndarray, mis_counts: np.ndarray, m: int,
                    rng: np.random.Generator, pop_shares=None, weights: str | None = "conditional",
                    categories: Sequence[str] | None = None, names: Sequence[str] | None = None,
                    shared: dict | None = None, data_key: tuple | None = None) -> PatternDraws:
    """The one imputation engine, per covariate pattern (rows and pattern counts both come here).

    ``patterns``: (P, p) design rows of the imputation model (intercept included); ``counts``: (P, K) observed
    counts per category; ``mis_counts``: (P,) rows with X missing. Terms the complete cases cannot estimate are
    dropped, the weights computed, the weighted model fitted (robust variance); then per imputation beta* ~
    N(beta_hat, V) (p(K-1) normals) and, for the patterns with missing rows in the order given, one multinomial
    split of each pattern's missing rows across the categories. Randomness: ``rng`` only, in that order.
    ``shared`` / ``data_key``: the unweighted model fitted once for several calls on the same data.
    """
    if weights not in ("conditional", "marginal", None):
        raise ValueError(f"weights must be 'conditional', 'marginal' or None, got {weights!r}.")
    if m < 1:
        raise ValueError(f"m (number of imputations) must be >= 1, got {m}.")
    patterns = np.asarray(patterns, dtype=float)
    counts = np.asarray(counts, dtype=float)
    mis_counts = np.asarray(mis_counts, dtype=float)
    k = counts.shape[1]
    n_mis = mis_counts.sum()
    if n_mis == 0:
        raise ValueError("impute: nothing is missing, there is nothing to impute.")
    observed_counts = counts.sum(axis=0)
    if np.any(observed_counts == 0):
        empty = [categories[j] if categories is not None else j for j in np.flatnonzero(observed_counts == 0)]
        raise ValueError(f"impute: no observed rows in categories {empty}; the model cannot be fitted.")
    fit_rows = counts.sum(axis=1) > 0
    fit_x, fit_counts = patterns[fit_rows], counts[fit_rows]
    mis_pat = np.flatnonzero(mis_counts > 0)

    messages: list[str] = []
    mar_fit = None
    # Terms the complete cases cannot estimate (an empty cell, separation) are dropped from Z first, so that
    # no imputation draws beta* from a meaningless covariance (SE in the thousands).
    if shared is not None and data_key is not None and shared.get("data") == data_key:
        unweighted = shared["unweighted"]
        for msg in unweighted.drop_messages:  # told again, as the check would tell it on these data
            warnings.warn(msg, ImputationModelWarning, stacklevel=3)
            messages.append(msg)
    else:
        unweighted = _estimable_columns(fit_x, fit_counts, names, categories, messages)
        unweighted.drop_messages = list(messages)
        if shared is not None and data_key is not None:
            shared.update(data=data_key, unweighted=unweighted)
    keep = unweighted.keep
    patterns, fit_x = patterns[:, keep], fit_x[:, keep]
    names = None if names is None else [names[j] for j in keep]

    def unweighted_fit() -> object:  # the model _estimable_columns fitted last, else (rounds ran out) a new fit
        if unweighted.fit is not None:
            return unweighted.use()
        return fit_imputation_model(fit_x, fit_counts, weights=None, robust=False, names=names,
                                    categories=categories)

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
            pi_hat = mnlogit_probabilities(patterns[mis_pat], np.asarray(mar_fit.params))
            w, more = conditional_weights(pi_hat, observed_counts, p_pop, categories,
                                          multiplicity=mis_counts[mis_pat], return_messages=True)
        messages.extend(more)
        fit = fit_imputation_model(fit_x, fit_counts, weights=w, robust=True, names=names, categories=categories)
        method = "weighted_mi"
    if hasattr(fit, "converged") and not fit.converged:
        msg = "The imputation model did not converge; imputations may be unreliable."
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        messages.append(msg)

    beta_hat = np.asarray(fit.params, dtype=float)
    vec_hat = beta_hat.ravel(order="F")  # statsmodels MNLogit order: outcome-major
    chol = mvn_factor(np.asarray(fit.cov, dtype=float))
    x_mis = patterns[mis_pat]
    n_split = np.rint(mis_counts[mis_pat]).astype(np.int64)
    drawn = np.empty((m, mis_pat.size, k), dtype=np.int64)
    for i in range(m):
        beta_star = (vec_hat + chol @ rng.standard_normal(vec_hat.size)).reshape(beta_hat.shape, order="F")
        drawn[i] = rng.multinomial(n_split, mnlogit_probabilities(x_mis, beta_star))
    return PatternDraws(drawn=drawn, missing_patterns=mis_pat, weights=w, observed_counts=observed_counts,
                        fit=fit, mar_fit=mar_fit, messages=messages, method=method, keep=keep)


def assign_rows(drawn: np.ndarray, row_pattern: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category codes for the missing rows from one imputation's per-pattern split (rows x categories
    counts ``drawn``): each pattern's drawn categories go to that pattern's missing rows (``row_pattern``:
    the position in ``drawn`` of each missing row's pattern) in a random order (one uniform per row from
    ``rng``), so the rows aggregate exactly to ``drawn``."""
    k = drawn.shape[1]
    labels = np.repeat(np.tile(np.arange(k), drawn.shape[0]), drawn.ravel())
    order = np.lexsort((rng.random(row_pattern.size), row_pattern))
    out = np.empty(row_pattern.size, dtype=np.int8 if k < 127 else np.int64)
    out[order] = labels
    return out


def impute_codes(z_design: np.ndarray, x_codes: np.ndarray, n_categories: int, m: int,
                 rng: np.random.Generator, pop_shares=None, weights: str | None = "conditional",
                 categories: Sequence[str] | None = None, aggregate: bool = True,
                 names: Sequence[str] | None = None, shared: dict | None = None) -> EngineResult:
    """The engine on rows: impute integer-coded X (-1 = missing) from a numeric design matrix.

    ``z_design``: (n, p) float design of the imputation model, *including* the intercept column; any mix
    of dummy and continuous columns. Rows are aggregated into distinct patterns (:func:`pattern_order`, the
    order pattern counts use too) and imputed by :func:`impute_patterns`; with continuous columns (or
    ``aggregate=False``) each row is its own pattern. Each pattern's drawn categories are then given to its
    missing rows by :func:`assign_rows`, in a random order from a stream spawned from ``rng``
    (``rng.spawn``, which leaves ``rng``'s own draws untouched), so the completed rows aggregate exactly to
    the completed pattern counts of ``helpers.fromcounts`` for the same ``rng``. ``weights``: "conditional",
    "marginal", or None (standard MAR MI, all weights 1, model-based variance). ``names``: column names of
    ``z_design`` (used in the fitter's warnings). ``shared``: one dict passed to several calls on the same
    data (MAR and weighted MI of one simulated cohort): the unweighted model is then fitted once.
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
    if np.any(counts.sum(axis=0) == 0):
        empty = [categories[j] if categories is not None else j for j in np.flatnonzero(counts.sum(axis=0) == 0)]
        raise ValueError(f"impute_codes: no observed rows in categories {empty}; the model cannot be fitted.")
    data_key = (z_design.shape, hash(z_design.tobytes()), hash(x_codes.tobytes()), aggregate,
                None if names is None else tuple(names), None if categories is None else tuple(categories))
    assign_rng = rng.spawn(1)[0]
    res = impute_patterns(patterns, counts, mis_counts, m, rng, pop_shares=pop_shares, weights=weights,
                          categories=categories, names=names, shared=shared, data_key=data_key)
    lookup = np.full(n_pat, -1)
    lookup[res.missing_patterns] = np.arange(res.missing_patterns.size)
    row_pat = lookup[inverse[missing_rows]]
    draws = np.stack([assign_rows(d, row_pat, assign_rng) for d in res.drawn])
    return EngineResult(draws=draws, missing_rows=missing_rows, weights=res.weights,
                        observed_counts=res.observed_counts, fit=res.fit, mar_fit=res.mar_fit,
                        messages=res.messages, method=res.method,
                        dropped_terms=[] if names_all is None else
                        [nm for j, nm in enumerate(names_all) if j not in res.keep],
                        n_dropped=p - len(res.keep))


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
