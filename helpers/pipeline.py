"""From parameters to data and result tables: the one route every notebook and ``make run`` share.

The same functions run on the synthetic cohort and on a real extract (``data_path``): only where the raw rows
come from changes. Result tables are computed here, not in notebooks, so a number shown in a notebook and the
same number in ``outputs/tables/`` cannot disagree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import cohort, extract, imputation, models, params as params_mod, prepare, study, tables

# Independent random streams derived from the one seed, one per purpose, so that adding a step to one part
# of the analysis never changes the draws of another.
STREAMS = {"cohort": 0, "imputation": 1, "mar_imputation": 2, "simulation": 3}


def rng_for(params: dict[str, Any], purpose: str) -> np.random.Generator:
    """A generator for one purpose, derived from the run's single seed (SeedSequence spawn keys)."""
    if purpose not in STREAMS:
        raise ValueError(f"unknown random stream {purpose!r}; valid: {', '.join(STREAMS)}")
    return np.random.default_rng(np.random.SeedSequence(params["seed"], spawn_key=(STREAMS[purpose],)))


@dataclass
class StudyData:
    """Everything the analysis starts from: parameters, raw rows, the prepared frame and (synthetic) truth."""

    params: dict[str, Any]
    raw: pd.DataFrame
    prepared: prepare.Prepared
    truth: pd.DataFrame | None  # per analysed row: referral_id, true_ethnic_group (synthetic cohorts only)
    origin: str

    @property
    def frame(self) -> pd.DataFrame:
        return self.prepared.frame


def load_study_data(p: dict[str, Any] | None = None, **overrides: Any) -> StudyData:
    """Validate parameters, then load the committed cohort, generate another, or read a real extract."""
    p = params_mod.validate({**(p or {}), **overrides})
    truth = None
    if p["data_path"]:
        raw = extract.read_raw(p["data_path"])  # CSV (any dialect) or Parquet, v2.x names recognised
        origin = f"extract {Path(p['data_path']).name}"
    elif params_mod.is_default_cohort(p):
        raw = prepare.read_extract(cohort.DEFAULT_COHORT)
        truth = pd.read_csv(cohort.DEFAULT_TRUTH, dtype=str, keep_default_na=False)
        origin = "the committed default synthetic cohort (data/synthetic/)"
    else:
        generated = cohort.from_params(p)
        raw, truth = generated.raw, generated.truth
        origin = "a synthetic cohort generated with these parameters"
    spark = extract.spark_session() if p["engine"] == "spark" else None
    prepared = prepare.prepare(raw, engine=p["engine"], spark=spark)
    if truth is not None:
        truth = (prepared.frame[["referral_id"]]
                 .merge(truth.rename(columns={"PathwayID": "referral_id"}), on="referral_id", how="left"))
    return StudyData(params=p, raw=raw, prepared=prepared, truth=truth, origin=origin)


def true_frame(data: StudyData) -> pd.DataFrame:
    """The analysis frame with every row's true ethnic group: the full data a synthetic world lets us see."""
    if data.truth is None:
        raise ValueError("a real extract has no truth file: the full-data truth is only known for synthetic cohorts")
    out = data.frame.copy()
    out["ethnicity"] = pd.Categorical(data.truth["true_ethnic_group"].to_numpy(), categories=study.GROUPS)
    return out


def population_margin(data: StudyData) -> pd.Series:
    """The ethnic mix weighted MI calibrates to, as the ``margin`` parameter says."""
    choice = data.params["margin"]
    if choice == "truth":
        return imputation.margin_from_truth(true_frame(data)["ethnicity"])
    if choice == "census2011":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", imputation.CensusWarning)  # notebooks 08 and 10 explain the choice
            return imputation.margin_from_census(study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv")
    table = pd.read_csv(choice)
    if not {"ethnicity", "share"} <= set(table.columns):
        raise ValueError(f"margin file {choice!r} needs columns 'ethnicity' and 'share'; it has {list(table.columns)}")
    return imputation.validate_margin(table.set_index("ethnicity")["share"])


def complete_case_estimates(data: StudyData) -> pd.DataFrame:
    """All 3 stages x 3 models on the rows with recorded ethnicity."""
    return models.fit_all(data.frame, analysis="complete_case")


def mi_estimates(data: StudyData, weighted: bool = True, progress: bool = False) -> pd.DataFrame:
    """All 3 stages x 3 models after weighted (population-calibrated) or standard MAR multiple imputation."""
    rng = rng_for(data.params, "imputation" if weighted else "mar_imputation")
    margin = population_margin(data) if weighted else None
    result = imputation.impute_ethnicity(data.frame, margin, data.params["n_imputations"], rng,
                                         weights="conditional" if weighted else None)
    return imputation.mi_estimates(data.frame, result, progress=progress)


def truth_estimates(data: StudyData) -> pd.DataFrame:
    """The full-data estimates (every row's true group): the target each missing-data method aims at."""
    return models.fit_all(true_frame(data), analysis="complete_case").assign(analysis="full_data_truth")


ESTIMATE_COLUMNS = ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high",
                    "n", "se", "p_value"]


def paper_estimates(data: StudyData, progress: bool = False) -> pd.DataFrame:
    """The paper's analyses: complete case and weighted MI, every stage and model, long and tidy."""
    both = pd.concat([complete_case_estimates(data), mi_estimates(data, weighted=True, progress=progress)],
                     ignore_index=True)
    extra = [c for c in both.columns if c not in ESTIMATE_COLUMNS]
    return both[ESTIMATE_COLUMNS + extra]


def published_table4() -> pd.DataFrame:
    """The paper's Table 4 as printed (data/published/harwood2021_table4.csv)."""
    return pd.read_csv(study.PUBLISHED_DIR / "harwood2021_table4.csv")


ESTIMATE_COUNT_COLUMNS = ["n", "n_events", "n_model", "n_excluded"]
PUBLISHABLE_TABLES = ["estimates", "table1", "pathway_counts", "table4_comparison"]


def disclose_estimate_counts(estimates: pd.DataFrame, threshold: int, base: int) -> pd.DataFrame:
    """Counts beside estimates are disclosure controlled like any count; estimates and CIs keep full precision.

    In a real extract a rare group can have a handful of people in a model: its ``n`` must not leave a
    secure environment unrounded even though its odds ratio may.
    """
    out = estimates.copy()
    cols = [c for c in ESTIMATE_COUNT_COLUMNS if c in out.columns]
    if cols:
        counts = out[cols].round().astype("Int64")
        out[cols] = tables.disclose(counts, count_columns=cols, threshold=threshold, base=base)[cols]
    return out


def write_outputs(data: StudyData, out_dir: str | Path, estimates: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the result tables; every count in them goes through disclosure control first.

    ``flow.csv`` is the exception, on purpose: it is the analyst's audit of every excluded row (exact counts
    are the point) and is not for publication.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thr, base = data.params["suppress_threshold"], data.params["rounding_base"]
    est = estimates if estimates is not None else paper_estimates(data)
    paths = {
        "estimates": out / "estimates.csv",
        "table1": out / "table1.csv",
        "pathway_counts": out / "pathway_counts.csv",
        "flow": out / "flow.csv",
        "table4_comparison": out / "table4_comparison.csv",
    }
    disclose_estimate_counts(est, thr, base).to_csv(paths["estimates"], index=False, lineterminator="\n")
    tables.table1(data.frame, disclose=True, threshold=thr, base=base).to_csv(paths["table1"], lineterminator="\n")
    tables.pathway_counts(data.frame, disclose=True, threshold=thr, base=base).to_csv(
        paths["pathway_counts"], lineterminator="\n")
    data.prepared.flow.to_csv(paths["flow"], index=False, lineterminator="\n")
    tables.published_vs_ours(est, published_table4()).to_csv(paths["table4_comparison"], index=False,
                                                             lineterminator="\n")
    return paths
