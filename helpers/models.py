"""The study's nine models (3 stages x 3 adjustment sets) as tidy tables, fitted on covariate-pattern counts.

:class:`ModelPlan` codes the frame once (``helpers.design``) and refits every stage x model in milliseconds
with another ethnicity column, which is what multiple imputation needs; :func:`fit_stage`, :func:`fit_all`
and :func:`predicted_probabilities` give the tidy tables (``docs/contracts.md``). The maximum-likelihood
engine is ``helpers.fitting``.

Reference rows: the tidy tables include the reference group (White British) with estimate 1.0,
log_estimate 0.0 and NaN for the CI, SE and p-value, like the paper prints "1.00" with no interval.
A ratio that cannot be estimated (sparse cell, separation) is NaN with ``estimable=False`` and a
``fitting.SparseCellWarning`` naming the cell.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from helpers import study
from helpers.design import (
    DesignSpec,
    ModelData,
    PatternCounts,
    column_codes,
    counts_from,
    design_from_spec,
    design_spec,
    model_data,
)
from helpers.fitting import (
    Z975,
    FitResult,
    SparseCellWarning,
    fit_logit_counts,
    fit_mnlogit_counts,
    softmax_with_base,
)

__all__ = [
    "StageFit",
    "ModelPlan",
    "group_coefficients",
    "fit_stage",
    "fit_all",
    "predicted_probabilities",
    "select",
    "TIDY_COLUMNS",
]

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


# Words used in warnings, so that a student reads "0 treated among 3 assessed", not "0 successes".
_STAGE_WORDS: dict[str, tuple[str, str]] = {
    "assessment": ("assessed", "referred"),
    "treatment": ("treated", "assessed"),
    "referral_source": ("", "referred"),
}





@dataclass
class StageFit:
    """One fitted stage x model with the per-group counts a tidy table needs."""

    stage: str
    model: str
    kind: str
    result: FitResult
    counts: PatternCounts
    design: DesignSpec
    eth_levels: list
    n_by_group: np.ndarray  # (G,) rows in the model per ethnic group
    events_by_group: np.ndarray  # (G, K) rows per group and outcome level

    def tidy(self, analysis: str = "complete_case") -> pd.DataFrame:
        return pd.DataFrame(self._tidy_rows(analysis), columns=TIDY_COLUMNS)

    def outcome_indices(self) -> list[int]:
        """Outcome columns that have ratios: 1 for a logit, 1..K-1 (vs the base) for a multinomial model."""
        return [1] if self.kind == "logit" else list(range(1, len(self.counts.outcome_levels)))

    def group_log_ratios(self, groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(outcome levels x ``groups``) log ORs / RRRs, their SEs and whether each is estimable.

        A group absent from the design, or flagged not estimable by the fitter (sparse cell, separation), is NaN
        with ``False``; the reference group is absent from the design, so it comes out NaN too.
        """
        res = self.result
        names = res.names or []
        p = len(names)
        flat = res.flat_params
        se_all = np.sqrt(np.clip(np.diag(res.cov), 0, None))
        pos = {nm: j for j, nm in enumerate(names)}
        col_of_group = np.array([pos.get(f"ethnicity[{g}]", -1) for g in groups], dtype=np.int64)
        has = col_of_group >= 0
        bad = np.zeros(flat.size, dtype=bool)
        bad[list(res.not_estimable)] = True
        out_idx = self.outcome_indices()
        lg_all = np.empty((len(out_idx), len(groups)))
        se_all_k = np.empty_like(lg_all)
        ok_all = np.empty(lg_all.shape, dtype=bool)
        for i, k in enumerate(out_idx):
            idx = np.where(has, (k - 1) * p + col_of_group, 0)
            lg = np.where(has, flat[idx], np.nan)
            se = np.where(has, se_all[idx], np.nan)
            ok = has & ~bad[idx] & np.isfinite(lg) & np.isfinite(se) & (se > 0)
            lg_all[i] = np.where(ok, lg, np.nan)
            se_all_k[i] = np.where(ok, se, np.nan)
            ok_all[i] = ok
        return lg_all, se_all_k, ok_all

    def _tidy_rows(self, analysis: str) -> dict[str, list]:
        """Columns of the tidy table as lists (vectorised: this runs for every imputed data set)."""
        levels = self.counts.outcome_levels
        out_idx = self.outcome_indices()
        G = len(self.eth_levels)
        groups = [None, *self.eth_levels[1:]]  # the reference (first level) has no column of its own
        lg_k, se_k, ok_k = self.group_log_ratios(groups)
        lg_parts, se_parts, ok_parts = [], [], []
        for lg, se, ok in zip(lg_k, se_k, ok_k):
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
    frame, then call :meth:`fit_all` (or :meth:`fit`) with each imputed ethnicity column.
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
        self.eth_codes, self.eth_levels = column_codes(frame, "ethnicity")
        cache: dict = {}
        self.data: dict[tuple[str, str], ModelData] = {
            (s, m): model_data(frame, s, study.MODELS[m], m, cache=cache) for s in stages for m in models
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

    def _fit(self, md: ModelData, eth: np.ndarray, weights: np.ndarray | None = None, **fit_kwargs) -> StageFit:
        pc = counts_from(md, eth, self.eth_levels, with_table=False,
                          weights=self.weights if weights is None else weights)
        G = len(self.eth_levels)
        if pc.counts.shape[0] == 0:
            raise ValueError(f"{md.stage} / {md.model}: no complete rows to fit (exclusions: {pc.missing})")
        if not np.any(pc.codes[:, 0] == 0):
            raise ValueError(
                f"{md.stage} / {md.model}: the reference group {self.eth_levels[0]!r} has no rows; "
                "its odds ratios cannot be defined"
            )
        spec = design_spec(pc.codes, pc.variables, pc.levels)
        X = design_from_spec(pc.codes, spec)
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


def group_coefficients(sf: StageFit) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Outcome levels and the (levels x non-reference groups) log ratios and SEs of one fitted stage x model.

    The numbers of the tidy table (:meth:`StageFit.group_log_ratios`) without building a DataFrame per
    imputation (the simulation study's inner loop); NaN where not estimable.
    """
    est, se, _ = sf.group_log_ratios(study.GROUPS[1:])
    levels = sf.counts.outcome_levels
    return [str(levels[k]) if sf.kind == "mnlogit" else "" for k in sf.outcome_indices()], est, se

def select(table: pd.DataFrame, *, reference: bool = True, **where) -> pd.DataFrame:
    """Rows of a tidy table whose columns equal the values given, e.g. ``select(est, stage="treatment",
    model="adjusted_full")``; a list, tuple or set means any of its values; ``reference=False`` leaves the
    reference group (White British) out. The one spelling of the filter the notebooks and reports need.
    """
    missing = [c for c in [*where, *([] if reference else ["ethnicity"])] if c not in table.columns]
    if missing:
        raise ValueError(f"select: no column {missing} in the table; its columns: {', '.join(map(str, table.columns))}")
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        values = table[column]
        if isinstance(value, (list, tuple, set, frozenset)):
            mask &= values.isin(list(value)).to_numpy()
        else:
            mask &= (values == value).to_numpy()
    if not reference:
        mask &= (table["ethnicity"].astype(str) != study.REFERENCE_GROUP).to_numpy()
    return table[mask]


def check_analysis(analysis: str) -> None:
    if analysis not in study.ANALYSES:
        raise ValueError(f"unknown analysis {analysis!r}; valid analyses: {study.ANALYSES}")


def fit_stage(
    frame: pd.DataFrame, stage: str, model: str, analysis: str = "complete_case"
) -> pd.DataFrame:
    """Tidy ORs (logit stages) or RRRs vs GP (referral source) by ethnicity for one stage and model.

    ``stage``: ``"referral_source"``, ``"assessment"`` (among all referred) or ``"treatment"`` (among the
    assessed); ``model``: ``"unadjusted"``, ``"adjusted_age_gender_year"`` or ``"adjusted_full"`` (age, gender,
    year and borough). Returns one row per group (and outcome level) with ``estimate`` (the OR or RRR against
    White British), ``ci_low``/``ci_high``, ``se`` (of the log estimate), ``n`` and ``p_value``.

    ``analysis`` labels the rows; the fit is always on the rows given (complete case on ethnicity and
    covariates; pass a completed data set for imputation). ``n_excluded`` reports the rows of the stage's
    population left out for missing values (see :func:`exclusions` for the breakdown).
    """
    check_analysis(analysis)
    return ModelPlan(frame, [stage], [model]).fit_all(analysis=analysis)


def fit_all(frame: pd.DataFrame, analysis: str = "complete_case") -> pd.DataFrame:
    """All 3 stages x 3 models, ordered by ``study.STAGES``, then ``study.MODELS``, outcome level, group."""
    check_analysis(analysis)
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
            eta = design_from_spec(codes, sf.design) @ beta
            prob, _ = softmax_with_base(eta)
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
