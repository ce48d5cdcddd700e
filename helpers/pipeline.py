"""From parameters to data and result tables: the one route every notebook and ``make run`` share.

The same functions run on the synthetic cohort and on a real extract (``data_path``): only where the raw rows
come from changes. Result tables are computed here, not in notebooks, so a number shown in a notebook and the
same number in ``outputs/tables/`` cannot disagree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import (
    cache,
    census,
    cohort,
    disclosure,
    extract,
    imputation,
    mnar_wmi,
    models,
    pooling,
    prepare,
    replication,
    study,
    tables,
)
from helpers import params as params_mod

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
    raw: pd.DataFrame | None  # None when the run reads pattern counts alone (no row-level file)
    prepared: prepare.Prepared
    truth: pd.DataFrame | None  # per analysed row: referral_id, true_ethnic_group (synthetic cohorts only)
    origin: str
    _digest: str | None = field(default=None, repr=False, compare=False)

    @property
    def frame(self) -> pd.DataFrame:
        return self.prepared.frame

    @property
    def from_counts(self) -> bool:
        """True when the data are pattern counts alone: the frame is rebuilt from them, there are no raw rows."""
        return self.raw is None

    @property
    def digest(self) -> str:
        """What every fit of these data is computed from: the parameters (less output_dir), frame and truth."""
        if self._digest is None:
            self._digest = cache.digest(_result_params(self.params), self.frame, self.truth)
        return self._digest


def _result_params(p: dict[str, Any]) -> dict[str, Any]:
    """The parameters a result depends on: all but ``output_dir`` (where files go changes no number)."""
    return {k: v for k, v in p.items() if k != "output_dir"}


def _input_files(p: dict[str, Any]) -> list[Path]:
    """The files the data are read or generated from (their bytes are part of the cache key)."""
    if p["data_path"] and extract.is_counts_folder(p["data_path"]):
        return [Path(p["data_path"]) / name for name in extract.COUNTS_FILES]
    if p["data_path"]:
        return [Path(p["data_path"])]
    files = [params_mod.targets_file(p)]
    if p["missing_mechanism"] == "mnar_wmi":
        files += [mnar_wmi.CELLS_FILE, mnar_wmi.GROUPS_FILE]
    if params_mod.is_default_cohort(p):
        files += [Path(cohort.DEFAULT_COHORT), Path(cohort.DEFAULT_TRUTH)]
    return files


def load_study_data(p: dict[str, Any] | None = None, **overrides: Any) -> StudyData:
    """Validate parameters, then load the committed cohort, generate another, or read a real extract.

    Within a ``helpers.run`` run the result is computed once and shared (``helpers.cache``)."""
    p = params_mod.validate({**(p or {}), **overrides})
    if p["engine"] == "spark":  # a Spark session is no thing to pickle; Spark runs compute for themselves
        return _load_study_data(p)
    key = cache.digest(_data_params(p), *_input_files(p))
    data = cache.memo("study_data", key, lambda: _load_study_data(p))
    return replace(data, params=p, _digest=None)  # the caller's own parameters; fits are keyed by them


def _data_params(p: dict[str, Any]) -> dict[str, Any]:
    """The parameters the data are read or generated from (``params.GROUPS["data"]`` and the engine): a notebook
    that asks for the same data with another margin or number of imputations shares them (its fits do not)."""
    return {k: p[k] for k in (*params_mod.GROUPS["data"], "engine")}


def _load_study_data(p: dict[str, Any]) -> StudyData:
    truth = None
    if p["data_path"] and extract.is_counts_folder(p["data_path"]):
        return load_counts(p)
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


COUNTS_ORIGIN = ("pattern counts {name}/pattern_counts.csv (no row-level file: the analysis frame is rebuilt from "
                 "the counts, without identifiers, dates, ages in years or the raw ethnic codes)")


def load_counts(p: dict[str, Any]) -> StudyData:
    """A run from the folder ``python -m helpers.extract --out`` wrote: the flow as written, the analysis frame
    rebuilt from the pattern counts (``prepare.frame_from_counts``), no raw rows, no truth."""
    pc, flow = extract.read_counts_folder(p["data_path"])
    prepared = prepare.Prepared(frame=prepare.frame_from_counts(pc), flow=flow, report=None)
    return StudyData(params=p, raw=None, prepared=prepared, truth=None,
                     origin=COUNTS_ORIGIN.format(name=Path(p["data_path"]).name))


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
    return margin_from_choice(choice)


def margin_from_choice(choice: str) -> pd.Series:
    """The margin ``census2011`` or a CSV of shares (columns ``ethnicity``, ``share``) names; needs no rows."""
    if choice == "mnar_wmi":
        return imputation.validate_margin(mnar_wmi.margin())
    if choice == "census2011":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", census.CensusWarning)  # notebooks 11 and 14 explain the choice
            return census.margin_from_census(study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv")
    table = pd.read_csv(choice)
    if not {"ethnicity", "share"} <= set(table.columns):
        raise ValueError(f"margin file {choice!r} needs columns 'ethnicity' and 'share'; it has {list(table.columns)}")
    return imputation.validate_margin(table.set_index("ethnicity")["share"])


def complete_case_estimates(data: StudyData) -> pd.DataFrame:
    """All 3 stages x 3 models on the rows with recorded ethnicity."""
    return cache.memo("complete_case", data.digest, lambda: models.fit_all(data.frame, analysis="complete_case"))


def nothing_to_impute(data: StudyData) -> bool:
    """True when no analysed referral has missing ethnicity (an extract can be complete, or ``missing_share=0``)."""
    return not bool(data.frame["ethnicity"].isna().any())


NOTHING_TO_IMPUTE = ("No analysed referral has missing ethnicity: there is nothing to impute, and multiple "
                     "imputation is the complete-case (here full-data) analysis, shown under the MI label.")


def mi_estimates_from_study_data(data: StudyData, weighted: bool = True, progress: bool = False) -> pd.DataFrame:
    """All 3 stages x 3 models after weighted (population-calibrated) or standard MAR multiple imputation.

    With nothing to impute, every completed data set is the data itself, so MI is exactly the complete-case
    analysis (no between-imputation variance): that table is returned under the MI label, with ``m`` = 0
    saying no imputation was drawn.
    """
    if nothing_to_impute(data):
        out = complete_case_estimates(data).assign(analysis="weighted_mi" if weighted else "mar_mi")
        return out.assign(df=np.inf, fmi=0.0, riv=0.0, m=0)
    if progress:  # a progress bar is output of the computation itself: nothing to share
        return _mi_estimates_from_study_data(data, weighted, progress)
    return cache.memo("weighted_mi" if weighted else "mar_mi", data.digest,
                      lambda: _mi_estimates_from_study_data(data, weighted, progress))


def _mi_estimates_from_study_data(data: StudyData, weighted: bool, progress: bool) -> pd.DataFrame:
    rng = rng_for(data.params, "imputation" if weighted else "mar_imputation")
    margin = population_margin(data) if weighted else None
    result = imputation.impute_ethnicity(data.frame, margin, data.params["n_imputations"], rng,
                                         weights="conditional" if weighted else None)
    return pooling.mi_estimates_from_rows(data.frame, result, progress=progress)


@dataclass(frozen=True)
class ThreeMethods:
    """Complete case, MAR MI and weighted MI on one data set, each compared with the full-data truth where known.

    Why: notebook 10 compares the three methods and 11 goes on from the same fits; one call keeps them the same
    (the same seeds give the same imputations, and a run's cache returns them without refitting).
    """

    margin_label: str  # the weighted-MI margin in words
    margin_used: pd.Series  # the ethnic mix weighted MI calibrates to in this run
    true_mix: pd.Series | None  # the true referred mix (synthetic cohorts only)
    truth: pd.DataFrame | None  # the full-data estimates, every referral's true group (synthetic only)
    estimates: pd.DataFrame  # the three methods, long and tidy
    weighted_mi: pd.DataFrame
    treatment: pd.DataFrame  # compare_methods, treatment stage, fully adjusted
    assessment: pd.DataFrame  # the same, assessment stage


MARGIN_LABELS = {"truth": "true referred mix", "census2011": "2011 Census, four boroughs",
                 "mnar_wmi": "the mnar_wmi cohort's assumed margin"}


def three_methods(data: StudyData) -> ThreeMethods:
    """:class:`ThreeMethods` for ``data``: on a real extract the truth and the true mix are ``None``."""
    has_truth = data.truth is not None
    choice = data.params["margin"]
    truth = truth_estimates(data) if has_truth else None
    wmi = mi_estimates_from_study_data(data, weighted=True)
    estimates = pd.concat([complete_case_estimates(data), mi_estimates_from_study_data(data, weighted=False), wmi],
                          ignore_index=True)
    return ThreeMethods(
        margin_label=MARGIN_LABELS.get(choice, f"file {choice}"),
        margin_used=population_margin(data),
        true_mix=imputation.margin_from_truth(true_frame(data)["ethnicity"]) if has_truth else None,
        truth=truth, estimates=estimates, weighted_mi=wmi,
        treatment=compare_methods(estimates, truth, stage="treatment"),
        assessment=compare_methods(estimates, truth, stage="assessment"))


def synthetic_params(p: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters for the synthetic world: for sections (02, 03, 12, 13, exercises) that need a cohort with
    a known truth even when ``data_path`` names a real extract."""
    if not p.get("data_path"):
        return dict(p)
    return params_mod.validate({**p, "data_path": "", "margin": "auto"})


def compare_methods(estimates: pd.DataFrame, truth: pd.DataFrame | None, stage: str,
                    model: str = "adjusted_full") -> pd.DataFrame:
    """``replication.methods_vs_truth`` when the truth is known; on a real extract the same table with
    ``truth``, ``log_difference`` and ``covers_truth`` empty, so the methods can still be set side by side."""
    if truth is not None:
        return replication.methods_vs_truth(estimates, truth, stage=stage, model=model)
    blank = estimates[estimates["analysis"] == estimates["analysis"].iloc[0]].assign(estimate=np.nan)
    out = replication.methods_vs_truth(estimates, blank, stage=stage, model=model)
    out["covers_truth"] = pd.NA
    return out


def truth_estimates(data: StudyData) -> pd.DataFrame:
    """The full-data estimates (every row's true group): the target each missing-data method aims at."""
    return cache.memo("full_data_truth", data.digest, lambda: models.fit_all(
        true_frame(data), analysis="complete_case").assign(analysis="full_data_truth"))


ESTIMATE_COLUMNS = ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high",
                    "n", "se", "p_value"]


def paper_estimates(data: StudyData, progress: bool = False) -> pd.DataFrame:
    """The paper's analyses: complete case and weighted MI, every stage and model, long and tidy."""
    both = pd.concat([complete_case_estimates(data), mi_estimates_from_study_data(data, weighted=True, progress=progress)],
                     ignore_index=True)
    extra = [c for c in both.columns if c not in ESTIMATE_COLUMNS]
    return both[ESTIMATE_COLUMNS + extra]


def published_table4() -> pd.DataFrame:
    """The paper's Table 4 as printed (data/published/harwood2021_table4.csv)."""
    return pd.read_csv(study.PUBLISHED_DIR / "harwood2021_table4.csv")


# --------------------------------------------------------------------------------------------------------
# A real extract: checked before any notebook starts
# --------------------------------------------------------------------------------------------------------

SECURE_DIRNAME = "secure"  # the one folder of a real-extract run that holds exact counts (never published)
VALID_ROW = (
    "A usable row has a non-blank PathwayID seen once, ReferralRequestReceivedDate as YYYY-MM-DD in "
    f"{min(study.YEARS)}-{max(study.YEARS)}, Age_ReferralRequest_ReceivedDate a whole number 18-110, Gender "
    "1 or 2, a known Validated_EthnicCategory code (Z, 99 or blank count as missing ethnicity, kept), a known "
    "SourceOfReferralIAPT code, Borough one of " + ", ".join(study.BOROUGHS) + ", and Assessment_FirstDate / "
    "TherapySession_FirstDate blank or YYYY-MM-DD, in pathway order (see docs/data_dictionary.md)."
)


@dataclass
class ExtractCheck:
    """What checking a real extract found: the rows read, the prepared data, and any blocking problem."""

    source: str  # the extract's file name (never its folder: outputs and consoles may be shared)
    raw: pd.DataFrame | None
    prepared: prepare.Prepared | None
    problem: str | None  # why no analysis can run; None when the run may go on

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def flow(self) -> pd.DataFrame | None:
        """The exact flow table, whenever rows were read (also when the run then stops)."""
        return None if self.prepared is None else self.prepared.flow

    def text(self) -> str:
        """The console report: rows read, rows excluded per reason with example lines, the verdict."""
        lines = [f"Extract check: {self.source}"]
        if self.prepared is not None:
            report = self.prepared.report
            lines.append(str(report) if report is not None else prepare.flow_text(self.prepared.flow))
        if self.problem:
            lines.append(f"BLOCKING: {self.problem}")
        elif self.prepared.report is None:
            lines.append(f"OK: pattern counts of {len(self.prepared.frame):,} referral(s), no row-level file; "
                         "the notebooks run from the counts.")
        else:
            n = len(self.prepared.frame)
            lines.append(f"OK: {n:,} usable row(s); excluded rows are counted in the flow table and the run goes on.")
        return "\n".join(lines)


def check_extract(params: dict[str, Any]) -> ExtractCheck:
    """Read and check the extract (or the pattern-count folder) named by ``data_path`` before any notebook starts.

    It reads and prepares the extract exactly as ``load_study_data`` will (``extract.read_raw``, then
    ``prepare.prepare`` on the ``engine`` parameter, with its ``ValidationReport``). Blocking: unreadable,
    required columns missing, no usable row. Everything else (rows excluded for a reason) is counted and the
    run goes on.
    """
    source = Path(params["data_path"]).name
    if extract.is_counts_folder(params["data_path"]):
        try:
            data = load_counts(params)
        except (extract.ExtractError, OSError) as err:
            return ExtractCheck(source, None, None, str(err))
        if len(data.frame) == 0:
            return ExtractCheck(source, None, data.prepared, f"the pattern counts hold no analysed referral. {VALID_ROW}")
        return ExtractCheck(source, None, data.prepared, None)
    try:
        raw = extract.read_raw(params["data_path"])
    except (extract.ExtractError, OSError) as err:
        message = str(err).replace(str(Path(params["data_path"]).resolve()), source)
        message = message.replace(str(params["data_path"]), source)
        return ExtractCheck(source, None, None, message)
    try:
        engine = params.get("engine", "duckdb")
        spark = extract.spark_session() if engine == "spark" else None
        prepared = prepare.prepare(raw, engine=engine, spark=spark)
    except extract.ExtractError as err:
        return ExtractCheck(source, raw, None, str(err))
    if len(raw) == 0:
        return ExtractCheck(source, raw, prepared, f"the extract has a header but no data rows. {VALID_ROW}")
    if len(prepared.frame) == 0:
        return ExtractCheck(source, raw, prepared,
                            f"no usable row: all {len(raw):,} rows were excluded (reasons above). {VALID_ROW}")
    return ExtractCheck(source, raw, prepared, None)


def write_flow(check: ExtractCheck, params: dict[str, Any], tables_dir: Path, secure_dir: Path) -> list[Path]:
    """Write the exact flow to ``secure_dir`` and its disclosed twin to ``tables_dir`` (when rows were read)."""
    if check.flow is None:
        return []
    secure_dir.mkdir(parents=True, exist_ok=True)
    tables_dir.mkdir(parents=True, exist_ok=True)
    exact = secure_dir / "flow.csv"
    check.flow.to_csv(exact, index=False, lineterminator="\n")
    shown = tables_dir / "flow_disclosed.csv"
    disclosure.disclosed_flow(check.flow, params["suppress_threshold"], params["rounding_base"]).to_csv(
        shown, index=False, lineterminator="\n")
    return [exact, shown]


def is_real(params: dict[str, Any]) -> bool:
    """Real-extract mode: counts must be disclosure controlled wherever a reader can see them."""
    return bool(params.get("data_path"))


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
        out[cols] = disclosure.disclose(counts, count_columns=cols, threshold=threshold, base=base)[cols]
        # say in the file itself how its counts were rounded (after MI they are averages over imputations)
        out["count_rounding"] = (f"{', '.join(cols)}: rounded to the nearest {base}, counts 1-{threshold} "
                                 "suppressed (blank); after MI the average completed-data count, then rounded")
    return out


def write_outputs(data: StudyData, out_dir: str | Path, estimates: pd.DataFrame | None = None,
                  secure_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the result tables; every count in them goes through disclosure control first.

    ``flow.csv`` is the exception, on purpose: it is the analyst's audit of every excluded row (exact counts
    are the point) and is not for publication. For a synthetic cohort it sits beside the other tables. For a
    real extract it goes to ``secure_dir`` with the unsuppressed Table 1 (``table1_exact.csv``), and
    ``out_dir`` gets the disclosed flow (``flow_disclosed.csv``) instead; without a ``secure_dir`` no exact
    table is written at all.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thr, base = data.params["suppress_threshold"], data.params["rounding_base"]
    est = estimates if estimates is not None else paper_estimates(data)
    real = is_real(data.params)
    paths = {
        "estimates": out / "estimates.csv",
        "table1": out / "table1.csv",
        "pathway_counts": out / "pathway_counts.csv",
        "table4_comparison": out / "table4_comparison.csv",
    }
    # A synthetic cohort describes no real person: its percentages come from exact counts (the paper's printed
    # precision). A real extract's percentages come from the disclosed counts, like every count it shows.
    disclosed_est = disclose_estimate_counts(est, thr, base)
    if real:
        paths["flow_disclosed"] = out / "flow_disclosed.csv"
        disclosure.disclosed_flow(data.prepared.flow, thr, base).to_csv(paths["flow_disclosed"], index=False,
                                                            lineterminator="\n")
        if secure_dir is not None:
            secure = Path(secure_dir)
            secure.mkdir(parents=True, exist_ok=True)
            paths["flow"] = secure / "flow.csv"
            paths["table1_exact"] = secure / "table1_exact.csv"
            tables.table1(data.frame, disclose=False).to_csv(paths["table1_exact"], lineterminator="\n")
            data.prepared.flow.to_csv(paths["flow"], index=False, lineterminator="\n")
    else:
        paths["flow"] = out / "flow.csv"
        data.prepared.flow.to_csv(paths["flow"], index=False, lineterminator="\n")
    disclosed_est.to_csv(paths["estimates"], index=False, lineterminator="\n")
    tables.table1(data.frame, disclose=True, threshold=thr, base=base).to_csv(paths["table1"], lineterminator="\n")
    tables.pathway_counts(data.frame, disclose=True, threshold=thr, base=base, exact_rates=not real).to_csv(
        paths["pathway_counts"], lineterminator="\n")
    replication.published_vs_ours(disclosed_est if real else est, published_table4(), threshold=thr).to_csv(
        paths["table4_comparison"], index=False, lineterminator="\n")
    return paths
