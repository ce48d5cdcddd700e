"""The nine models and weighted multiple imputation from covariate-pattern counts alone.

Why: every covariate is categorical, so the models need only the counts of (pattern x outcome), and a
researcher can carry those counts (``pattern_counts.csv`` from ``python -m helpers.extract``) out of a
secure environment after disclosure checks. Imputation works per pattern in both routes (one engine,
``helpers.imputation.impute_patterns``): the missing rows of a pattern are split across the groups by one
multinomial draw, so M = 20 at 10 million referrals takes seconds, and the same seed gives the same completed
tables (and pooled estimates) from counts as from rows.

Entry points: :func:`count_data` (pattern counts -> :class:`CountData`), :func:`complete_case` (the nine
models), :func:`impute` / :func:`mi_estimates_from_counts` (weighted or MAR MI), :func:`estimates` (complete case and
weighted MI, the paper's two analyses, long and tidy), :func:`paper_estimates` (the same in the columns
``helpers.pipeline`` writes, also when nothing is missing).
CLI, for the folder ``python -m helpers.extract`` wrote: ``python -m helpers.fromcounts DIR --out DIR
[--margin census2011|FILE] [--m 20] [--seed S] [--exact]`` writes ``estimates.csv`` and
``table4_comparison.csv`` (Table 4 beside ours), with no row-level file anywhere.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from helpers import extract, imputation, models, pipeline, pooling, replication, study
from helpers import params as params_mod

#: Columns of a pattern-count table (as ``helpers.extract`` writes them) and the count column ``n``.
PATTERN_COLUMNS = ["ethnicity", "age_band", "gender", "year", "borough", "referral_source", "assessed", "treated"]
_COVARIATES = PATTERN_COLUMNS[1:]
_LEVELS = {"ethnicity": study.GROUPS, "age_band": study.AGE_BANDS, "gender": study.GENDERS, "year": study.YEARS,
           "borough": study.BOROUGHS, "referral_source": study.SOURCES}


@dataclass
class CountData:
    """Pattern counts in the shape the fits need: one row per pattern of covariates and outcomes.

    ``patterns``: the covariates and outcomes (categoricals like the analysis frame); ``observed``: patterns x
    groups (``study.GROUPS``) counts with ethnicity recorded; ``missing``: per pattern, the count with
    ethnicity missing.
    """

    patterns: pd.DataFrame
    observed: np.ndarray
    missing: np.ndarray

    @property
    def n(self) -> int:
        return int(self.observed.sum() + self.missing.sum())

    def frame(self) -> pd.DataFrame:
        """Patterns x groups, then one row per pattern with ethnicity missing: the weighted rows of the plan."""
        P, G = self.observed.shape
        idx = np.concatenate([np.repeat(np.arange(P), G), np.arange(P)])
        eth = np.concatenate([np.tile(np.arange(G), P), np.full(P, -1)])
        out = self.patterns.iloc[idx].reset_index(drop=True)
        out.insert(0, "ethnicity", pd.Categorical.from_codes(eth, categories=study.GROUPS))
        return out

    def weights(self, completed: np.ndarray | None = None) -> np.ndarray:
        """Row weights of :meth:`frame`: observed counts (complete case), or a completed patterns x groups table
        (an imputation) with nothing left missing."""
        if completed is None:
            return np.concatenate([self.observed.ravel(), self.missing]).astype(float)
        return np.concatenate([np.asarray(completed, dtype=float).ravel(), np.zeros(len(self.missing))])


def _categorical(values: pd.Series, column: str) -> pd.Categorical:
    levels = _LEVELS[column]
    v = values.astype(int) if column == "year" else values.astype(str)
    cat = pd.Categorical(v, categories=levels)
    bad = pd.unique(values[(cat.codes < 0) & (values.astype(str) != "")])
    if len(bad):
        raise ValueError(f"pattern counts: column {column!r} has values {list(bad)[:5]} outside {levels}")
    return cat


def count_data(pc: pd.DataFrame) -> CountData:
    """Validate a pattern-count table (:data:`PATTERN_COLUMNS` + ``n``; ethnicity blank = missing, treated blank
    = not assessed) and arrange it by pattern. Fails naming the column and the value that is wrong."""
    missing = [c for c in PATTERN_COLUMNS + ["n"] if c not in pc.columns]
    if missing:
        raise ValueError(f"pattern counts lack columns {missing}; expected {PATTERN_COLUMNS + ['n']}")
    n = pd.to_numeric(pc["n"], errors="coerce")
    if n.isna().any() or (n < 0).any() or (n != np.floor(n)).any():
        raise ValueError("pattern counts: column 'n' must hold whole counts >= 0, found "
                         f"{list(pc.loc[n.isna() | (n < 0) | (n != np.floor(n)), 'n'].head(5))}")
    eth = pc["ethnicity"].fillna("").astype(str)
    eth_cat = _categorical(eth, "ethnicity")
    cols = {c: _categorical(pc[c], c) for c in ("age_band", "gender", "year", "borough", "referral_source")}
    assessed = pd.to_numeric(pc["assessed"], errors="coerce")
    treated = pd.to_numeric(pc["treated"].replace("", np.nan), errors="coerce")
    if not assessed.isin([0, 1]).all():
        raise ValueError("pattern counts: 'assessed' must be 0 or 1")
    if not treated[assessed == 1].isin([0, 1]).all() or treated[assessed == 0].notna().any():
        raise ValueError("pattern counts: 'treated' must be 0 or 1 when assessed and blank when not")
    key = pd.DataFrame({**{c: v.codes for c, v in cols.items()}, "assessed": assessed.astype(int),
                        "treated": treated.fillna(-1).astype(int)})
    grouped = key.groupby(list(key.columns), sort=True)
    pat_id = grouped.ngroup().to_numpy()
    u = grouped.size().index.to_frame(index=False)
    P, G = len(u), len(study.GROUPS)
    e = np.asarray(eth_cat.codes, dtype=np.int64)
    w = n.to_numpy(dtype=float)
    observed = np.zeros((P, G))
    np.add.at(observed, (pat_id[e >= 0], e[e >= 0]), w[e >= 0])
    miss = np.bincount(pat_id[e < 0], weights=w[e < 0], minlength=P)
    patterns = pd.DataFrame({c: pd.Categorical.from_codes(u[c].to_numpy(), categories=_LEVELS[c]) for c in cols})
    patterns["assessed"] = u["assessed"].to_numpy(dtype=np.int64)
    patterns["treated"] = np.where(u["treated"].to_numpy() < 0, np.nan, u["treated"].to_numpy(dtype=float))
    return CountData(patterns[_COVARIATES], observed, miss)


def pattern_counts_from_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The pattern-count table of an analysis frame (the row-level route), in the extract engine's layout."""
    key = pd.DataFrame({
        "ethnicity": frame["ethnicity"].astype(object).where(frame["ethnicity"].notna(), ""),
        **{c: frame[c].astype(object) for c in ("age_band", "gender", "year", "borough", "referral_source")},
        "assessed": frame["assessed"].astype(np.int64),
        "treated": np.where(frame["assessed"] == 1, frame["treated"].fillna(-1).astype(int).astype(str), ""),
    })
    return key.groupby(PATTERN_COLUMNS, sort=False).size().rename("n").reset_index()


def _plan(cd: CountData) -> models.ModelPlan:
    return models.ModelPlan(cd.frame(), weights=cd.weights())


def complete_case(cd: CountData, analysis: str = "complete_case") -> pd.DataFrame:
    """All 3 stages x 3 models on the recorded-ethnicity counts: the same tidy table as ``models.fit_all`` on
    the rows (same estimates, standard errors and counts)."""
    return _plan(cd).fit_all(analysis=analysis)


@dataclass
class CountImputation:
    """M completed patterns x groups tables and the imputation model behind them."""

    completed: list[np.ndarray]
    weights: pd.Series
    analysis: str  # "weighted_mi" or "mar_mi"
    m: int
    n_missing: int
    fit: object = None
    mar_fit: object = None
    messages: list[str] = field(default_factory=list)


def impute(cd: CountData, margin: pd.Series | None, m: int, rng: np.random.Generator,
           weights: str | None = "conditional",
           z_columns: Sequence[str] = imputation.DEFAULT_Z) -> CountImputation:
    """Weighted (population-calibrated) MI of ethnicity, per pattern, M times.

    One engine with the row-level route: ``imputation.impute_patterns`` on the patterns in the order
    ``imputation.impute_codes`` aggregates rows into, so the same ``rng`` gives the same completed tables as
    the completed rows of ``imputation.impute_ethnicity`` aggregated. Each imputation draws beta* ~
    N(beta_hat, V), then for every pattern with missing rows one multinomial split of them across the groups.
    Randomness: ``rng`` only.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)).")
    if weights not in ("conditional", "marginal", None):
        raise ValueError(f"weights must be 'conditional', 'marginal' or None, got {weights!r}.")
    if m < 1:
        raise ValueError(f"m (number of imputations) must be >= 1, got {m}.")
    groups = list(study.GROUPS)
    X, names = imputation.z_design(cd.patterns, z_columns)
    if cd.missing.sum() == 0:
        raise ValueError("impute: nothing is missing, there is nothing to impute.")
    if weights is not None:
        if margin is None:
            raise ValueError(f"weights={weights!r} needs a population margin.")
        p_pop = imputation.validate_margin(margin, groups).to_numpy()
    else:
        p_pop = None
    # the patterns in the order the row route aggregates its rows into, so both take the same draws
    order = imputation.pattern_order(X)
    if order.size != len(X):
        raise ValueError("impute: two patterns have the same imputation-model covariates; count_data merges them")
    res = imputation.impute_patterns(X[order], cd.observed[order], cd.missing[order], m, rng, pop_shares=p_pop,
                                     weights=weights, categories=groups, names=names)
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    completed = [c[back] for c in res.completed(cd.observed[order])]
    return CountImputation(completed, pd.Series(res.weights, index=pd.Index(groups, name="ethnicity"), name="weight"),
                           res.method, m, int(round(cd.missing.sum())), res.fit, res.mar_fit, res.messages)


def mi_estimates_from_counts(cd: CountData, completed: Sequence[np.ndarray], analysis: str = "weighted_mi") -> pd.DataFrame:
    """Fit the nine models on each completed patterns x groups table and pool with Rubin's rules
    (``pooling.pool_tidy``): the numbers ``pooling.mi_estimates_from_rows`` gives on the same completed rows."""
    plan = _plan(cd)
    tables = [plan.fit_all(analysis=analysis, weights=cd.weights(c)) for c in completed]
    return pooling.pool_tidy(tables, analysis)


def estimates(pc: pd.DataFrame | CountData, margin: pd.Series, m: int, rng: np.random.Generator,
              weights: str | None = "conditional") -> pd.DataFrame:
    """The paper's analyses from pattern counts alone: complete case and weighted MI, every stage and model,
    long and tidy (the columns of ``models.fit_all`` plus the pooling columns for the MI rows)."""
    cd = pc if isinstance(pc, CountData) else count_data(pc)
    cc = complete_case(cd)
    imp = impute(cd, margin, m, rng, weights=weights)
    return pd.concat([cc, mi_estimates_from_counts(cd, imp.completed, imp.analysis)], ignore_index=True)


def completed_counts(cd: CountData, frame: pd.DataFrame, completed: pd.Series) -> np.ndarray:
    """Patterns x groups counts of one completed row-level ethnicity column (to check the two routes agree)."""
    pc = pattern_counts_from_frame(frame.assign(ethnicity=completed))
    other = count_data(pc)
    lookup = {k: i for i, k in enumerate(_keys(cd.patterns))}
    out = np.zeros_like(cd.observed)
    for i, k in enumerate(_keys(other.patterns)):
        out[lookup[k]] += other.observed[i]
    return out


def _keys(patterns: pd.DataFrame) -> list[tuple]:
    cols = [patterns[c].cat.codes.to_numpy() for c in ("age_band", "gender", "year", "borough", "referral_source")]
    cols += [patterns["assessed"].to_numpy(), np.nan_to_num(patterns["treated"].to_numpy(dtype=float), nan=-1)]
    return list(zip(*[c.tolist() for c in cols]))


def paper_estimates(pc: pd.DataFrame | CountData, margin: pd.Series, m: int, rng: np.random.Generator) -> pd.DataFrame:
    """Complete case and weighted MI from counts, in ``pipeline.paper_estimates``' columns and order.

    With nothing missing, MI is the complete-case analysis under the MI label (``m`` = 0), as in
    ``pipeline.mi_estimates_from_study_data``.
    """
    cd = pc if isinstance(pc, CountData) else count_data(pc)
    cc = complete_case(cd)
    if cd.missing.sum() == 0:
        mi = cc.assign(analysis="weighted_mi", df=np.inf, fmi=0.0, riv=0.0, m=0)
    else:
        imp = impute(cd, margin, m, rng, weights="conditional")
        mi = mi_estimates_from_counts(cd, imp.completed, imp.analysis)
    both = pd.concat([cc, mi], ignore_index=True)
    extra = [c for c in both.columns if c not in pipeline.ESTIMATE_COLUMNS]
    return both[pipeline.ESTIMATE_COLUMNS + extra]


def main(argv: list[str] | None = None) -> int:
    ap = extract.folder_parser("python -m helpers.fromcounts", (
        "The paper's analyses (nine models, complete case and weighted MI) from pattern_counts.csv and flow.csv "
        "alone: writes estimates.csv and table4_comparison.csv."),
        "folder", "folder with pattern_counts.csv and flow.csv (from python -m helpers.extract)")
    ap.add_argument("--margin", default="census2011",
                    help="population margin for weighted MI: census2011 (default) or a CSV with ethnicity, share")
    ap.add_argument("--m", default=str(params_mod.DEFAULTS["n_imputations"]), help="number of imputations")
    ap.add_argument("--seed", default=str(params_mod.DEFAULTS["seed"]), help="seed of the imputation draws")
    ap.add_argument("--exact", action="store_true",
                    help="exact counts beside the estimates (a synthetic cohort); default: disclosure controlled")
    a = ap.parse_args(argv)
    try:
        p = params_mod.validate(n_imputations=params_mod.parse_cli_value("n_imputations", a.m),
                                seed=params_mod.parse_cli_value("seed", a.seed), margin=a.margin,
                                data_path=str(Path(a.folder)))  # counts carry no truth: 'truth' is refused
    except params_mod.ParameterError as err:
        ap.error(str(err))
    try:
        pc, flow = extract.read_counts_folder(a.folder)
        cd = count_data(pc)
        margin = pipeline.margin_from_choice(p["margin"])
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    est = paper_estimates(cd, margin, p["n_imputations"], pipeline.rng_for(p, "imputation"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = est if a.exact else pipeline.disclose_estimate_counts(est, p["suppress_threshold"], p["rounding_base"])
    shown.to_csv(out / "estimates.csv", index=False, lineterminator="\n")
    replication.published_vs_ours(shown, pipeline.published_table4(),
                             threshold=None if a.exact else p["suppress_threshold"]).to_csv(
        out / "table4_comparison.csv", index=False, lineterminator="\n")
    print(f"{cd.n:,} referrals analysed in {len(cd.patterns):,} patterns; "
          f"complete case and weighted MI (M = {p['n_imputations']}) -> {out / 'estimates.csv'}, "
          f"{out / 'table4_comparison.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
