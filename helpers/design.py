"""Study design coding: from the analysis frame to covariate-pattern counts and design matrices.

Every model of the study is fitted on (ethnicity x covariate pattern x outcome) counts. This module builds
them once per stage x model (:func:`model_data`, :func:`counts_from`), codes categorical columns with the
study's level order, reference level first (:func:`column_codes`), and lays out the treatment (dummy) coded
design (:func:`design_spec`, :func:`design_from_spec`, :func:`design_matrix`). :func:`pattern_counts`,
:func:`design` and :func:`exclusions` are the entries to see what a model is fitted on and which rows leave
it: rows are never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from helpers import study

__all__ = [
    "ModelData",
    "PatternCounts",
    "DesignSpec",
    "require_column",
    "column_codes",
    "outcome_codes",
    "model_data",
    "counts_from",
    "pattern_counts",
    "design_spec",
    "design_from_spec",
    "design_matrix",
    "design",
    "exclusions",
]

# Known level orders, used when a column arrives as plain strings/ints instead of a Categorical.
_KNOWN_LEVELS: dict[str, list] = {
    "ethnicity": study.GROUPS,
    "referral_source": study.SOURCES,
    **study.COVARIATE_LEVELS,
}





def require_column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise ValueError(
            f"column {column!r} is not in the frame; valid columns: {', '.join(map(str, frame.columns))}"
        )
    return frame[column]


def column_codes(frame: pd.DataFrame, column: str, values: pd.Series | np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """Integer codes (-1 = missing) and levels of a categorical column, reference level first.

    Plain (non-categorical) columns are coded with the study's known levels, so a typo is an error, not a
    silently new category.
    """
    s = require_column(frame, column) if values is None else values
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


def outcome_codes(frame: pd.DataFrame, outcome: str, kind: str) -> tuple[np.ndarray, list]:
    """Outcome codes (0 = base / no event, -1 = missing) and outcome levels."""
    if kind == "mnlogit":
        return column_codes(frame, outcome)
    if kind != "logit":
        raise ValueError(f"kind must be 'logit' or 'mnlogit', got {kind!r}")
    v = pd.to_numeric(require_column(frame, outcome), errors="coerce").to_numpy(dtype=float)
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
class ModelData:
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


def model_data(
    frame: pd.DataFrame, stage: str, covariates: list[str], model: str = "", outcome: str | None = None,
    kind: str | None = None, among_assessed: bool | None = None, cache: dict | None = None,
) -> ModelData:
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
            cache["__assessed"] = pd.to_numeric(require_column(frame, "assessed"), errors="coerce").to_numpy() == 1
        pop_mask = cache["__assessed"]
    else:
        pop_mask = None
    y_all, out_levels = coded(outcome, outcome_codes, kind)

    def in_pop(bad: np.ndarray) -> np.ndarray:
        return bad if pop_mask is None else bad & pop_mask

    missing = {outcome: int(in_pop(y_all < 0).sum())}
    ok = y_all >= 0 if pop_mask is None else (y_all >= 0) & pop_mask
    cov_codes, cov_levels = [], []
    for c in covariates:
        codes, levels = coded(c, column_codes)
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
    return ModelData(
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


def counts_from(md: ModelData, eth_codes: np.ndarray, eth_levels: list, with_table: bool,
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
    md = model_data(frame, stage, list(covariates), outcome=outcome, kind=kind,
                     among_assessed=spec.among_assessed if spec is not None else False)
    eth, eth_levels = column_codes(frame, "ethnicity")
    return counts_from(md, eth, eth_levels, with_table=True)


@dataclass(frozen=True)
class DesignSpec:
    """Which (variable, level code) each non-intercept column of X indicates, to rebuild X for new patterns."""

    columns: list[tuple[int, int]]
    names: list[str]


def design_spec(codes: np.ndarray, variables: list[str], levels: list[list]) -> DesignSpec:
    """Treatment coding: the first level present is the reference; absent levels get no column."""
    columns: list[tuple[int, int]] = []
    names = ["Intercept"]
    for i, (var, lv) in enumerate(zip(variables, levels)):
        present = np.unique(codes[:, i])
        for c in present[1:]:
            columns.append((i, int(c)))
            names.append(f"{var}[{lv[c]}]")
    return DesignSpec(columns, names)


def design_from_spec(codes: np.ndarray, spec: DesignSpec) -> np.ndarray:
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
        c, lv = column_codes(patterns, v)
        if np.any(c < 0):
            raise ValueError(f"design_matrix: column {v!r} has missing values; drop or count them first")
        codes.append(c)
        levels.append(lv)
    C = np.column_stack(codes) if len(patterns) else np.zeros((0, len(variables)), dtype=np.int64)
    spec = design_spec(C, variables, levels)
    return design_from_spec(C, spec), spec.names


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
    eth, eth_levels = column_codes(frame, "ethnicity")
    rows = []
    for stage in study.STAGES:
        for model, covs in study.MODELS.items():
            md = model_data(frame, stage, covs, model)
            pc = counts_from(md, eth, eth_levels, with_table=False)
            rows.append(
                {"stage": stage, "model": model, "n_population": pc.n_population, "n_model": pc.n_rows,
                 "n_excluded": pc.n_excluded, **{f"missing_{k}": v for k, v in pc.missing.items()}}
            )
    return pd.DataFrame(rows)

