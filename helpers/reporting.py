"""Reporting: pathway gaps in people per 1,000 referred, the replication summary, the STROBE/RECORD map.

* :func:`pathway_gaps` turns the pathway into numbers a service can act on: per 1,000 referrals of each group,
  how many were assessed and treated, and how many fewer than at White British rates, split into those
  "lost" at assessment and those lost at treatment (the two parts add up to the whole shortfall).
* :func:`replication_summary` counts how many of our estimates fall inside the paper's printed CIs and round
  to the printed ORs (input: ``helpers.replication.published_vs_ours``).
* :func:`checklist` is the STROBE (von Elm et al. 2007) and RECORD (Benchimol et al. 2015) items mapped to
  where this project addresses each one; :func:`missing_references` lists referenced files that do not exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import models, study, tables

# --------------------------------------------------------------------------------------------------
# Pathway gaps
# --------------------------------------------------------------------------------------------------

GAP_COLUMNS = [
    "referred", "assessed_per_1000", "treated_per_1000", "treated_per_1000_assessed",
    "assessed_shortfall", "treated_shortfall", "lost_at_assessment", "lost_at_treatment",
    "excess_untreated",
]
DECOMPOSITION_ORDERS = ("assessment_first", "treatment_first")


def _decompose(a: pd.Series, t: pd.Series, ref: str, per: float, order: str = "assessment_first") -> pd.DataFrame:
    """Shortfall of treated per ``per`` referred vs the reference, split by stage (exact, additive).

    treated/referred = a * t (a: assessed among referred, t: treated among assessed). The split of
    a_ref t_ref - a t into two stages depends on the order in which the stages are switched to the group's rate:

    * ``order="assessment_first"`` (default): (a_ref - a) t_ref + a (t_ref - t). Lost at assessment is valued
      at the reference treatment rate, lost at treatment at the group's own assessment rate.
    * ``order="treatment_first"``: (a_ref - a) t + a_ref (t_ref - t). Lost at assessment is valued at the
      group's treatment rate, lost at treatment at the reference assessment rate.

    Both orders sum to the same shortfall; the parts differ unless one stage has no gap.
    """
    if order not in DECOMPOSITION_ORDERS:
        raise ValueError(f"pathway_gaps: order must be one of {DECOMPOSITION_ORDERS}, got {order!r}")
    a_ref, t_ref = a[ref], t[ref]
    out = pd.DataFrame(index=a.index)
    out["assessed_per_1000"] = per * a
    out["treated_per_1000"] = per * a * t
    out["treated_per_1000_assessed"] = per * t
    out["assessed_shortfall"] = per * (a_ref - a)
    out["treated_shortfall"] = per * (a_ref * t_ref - a * t)
    if order == "assessment_first":
        out["lost_at_assessment"] = per * (a_ref - a) * t_ref
        out["lost_at_treatment"] = per * a * (t_ref - t)
    else:
        out["lost_at_assessment"] = per * (a_ref - a) * t
        out["lost_at_treatment"] = per * a_ref * (t_ref - t)
    return out


def pathway_gaps(
    frame: pd.DataFrame,
    per: float = 1000,
    method: str = "observed",
    model: str = "adjusted_full",
    disclose: bool = False,
    threshold: int = 7,
    base: int = 5,
    reference: str = study.REFERENCE_GROUP,
    order: str = "assessment_first",
) -> pd.DataFrame:
    """Assessed and treated per ``per`` referred by ethnic group, and the shortfall vs White British rates.

    ``method="observed"``: crude proportions from the pathway counts (``tables.pathway_counts``; with
    ``disclose=True`` computed from disclosure-controlled counts). ``method="predicted"``: standardised
    probabilities from ``models.predicted_probabilities`` for ``model`` (assessment among the referred,
    treatment among the assessed, each standardised to its own population's covariate mix; their product is
    an approximation to standardised treated per referred).

    One row per group (``study.GROUPS``, recorded ethnicity). Columns:
    ``referred`` (n), ``assessed_per_1000``, ``treated_per_1000`` (per referred), ``treated_per_1000_assessed``,
    ``assessed_shortfall`` and ``treated_shortfall`` (reference rate minus the group's, per ``per`` referred;
    positive = fewer than at White British rates), ``lost_at_assessment`` + ``lost_at_treatment`` =
    ``treated_shortfall`` (see :func:`_decompose`; ``order`` chooses which stage is switched to the group's rate
    first, ``"assessment_first"`` or ``"treatment_first"``: the total is the same, the split is not), and
    ``excess_untreated``: the group's referrals times the treated shortfall / ``per`` (people in this data set
    who would have been treated at White British rates).
    """
    if method not in ("observed", "predicted"):
        raise ValueError(f"pathway_gaps: method must be 'observed' or 'predicted', got {method!r}")
    if reference not in study.GROUPS:
        raise ValueError(f"pathway_gaps: unknown reference group {reference!r}")
    if not per > 0:
        raise ValueError(f"pathway_gaps: per must be positive, got {per!r}")
    if order not in DECOMPOSITION_ORDERS:
        raise ValueError(f"pathway_gaps: order must be one of {DECOMPOSITION_ORDERS}, got {order!r}")
    counts = tables.pathway_counts(frame, disclose=disclose, threshold=threshold, base=base)
    counts = counts.loc[study.GROUPS]
    referred = pd.to_numeric(counts["referred"], errors="coerce").astype(float)
    if method == "observed":
        a = pd.to_numeric(counts["assessed"], errors="coerce").astype(float) / referred.where(referred > 0)
        t = (pd.to_numeric(counts["treated"], errors="coerce").astype(float)
             / pd.to_numeric(counts["assessed"], errors="coerce").astype(float).replace(0, np.nan))
    else:
        if model not in study.MODELS:
            raise ValueError(f"pathway_gaps: unknown model {model!r}; expected one of {list(study.MODELS)}")
        pa = models.predicted_probabilities(frame, "assessment", model).set_index("ethnicity")["probability"]
        pt = models.predicted_probabilities(frame, "treatment", model).set_index("ethnicity")["probability"]
        a, t = pa.reindex(study.GROUPS).astype(float), pt.reindex(study.GROUPS).astype(float)
    out = _decompose(a, t, reference, per, order=order)
    out.insert(0, "referred", counts["referred"].astype("Int64"))
    out["excess_untreated"] = referred * out["treated_shortfall"] / per
    out.index.name = "ethnicity"
    out.attrs["method"] = method if method == "observed" else f"predicted ({model})"
    out.attrs["disclosed"] = bool(disclose)
    out.attrs["order"] = order
    return out[GAP_COLUMNS]


# --------------------------------------------------------------------------------------------------
# Where the numbers come from: a label that travels with every saved table
# --------------------------------------------------------------------------------------------------

SYNTHETIC_LABEL = "synthetic cohort: illustrative, not findings about South London"
DATA_COLUMN = "data"


def data_label(data) -> str:
    """What a saved table's numbers describe: the synthetic caveat, or the real extract's file name.

    ``data``: a ``pipeline.StudyData``. A synthetic cohort (``data.truth`` is not None) gives
    :data:`SYNTHETIC_LABEL`; a real extract (``data_path``) gives its file name.
    """
    if data.truth is not None:
        return SYNTHETIC_LABEL
    path = str(data.params.get("data_path") or "")
    return Path(path).name if path else str(data.origin)


def label_table(table: pd.DataFrame, data) -> pd.DataFrame:
    """A copy of ``table`` with a ``data`` column (:func:`data_label`) first, so that numbers lifted from a
    saved CSV carry where they come from (and, for the synthetic cohort, that they are not findings)."""
    out = table.copy()
    if DATA_COLUMN in out.columns:
        out = out.drop(columns=DATA_COLUMN)
    out.insert(0, DATA_COLUMN, data_label(data))
    return out


# --------------------------------------------------------------------------------------------------
# Replication summary
# --------------------------------------------------------------------------------------------------


def replication_summary(comparison: pd.DataFrame, reference: str = study.REFERENCE_GROUP) -> pd.DataFrame:
    """Per analysis: how many printed ORs (reference group left out) we compared, how many of ours lie
    inside the printed CI and round to the printed OR, and which groups missed (``group (model)``).

    ``comparison``: ``helpers.replication.published_vs_ours`` output.
    """
    needed = {"analysis", "model", "ethnicity", "inside_paper_ci", "rounds_to_printed"}
    if not needed <= set(comparison.columns):
        raise ValueError(f"replication_summary: comparison lacks {sorted(needed - set(comparison.columns))}")
    rows = []
    for analysis, part in comparison[comparison["ethnicity"] != reference].groupby("analysis", sort=False):
        missed = part[~part["inside_paper_ci"].astype(bool)]
        rows.append({
            "analysis": analysis,
            "compared": len(part),
            "inside_paper_ci": int(part["inside_paper_ci"].sum()),
            "rounds_to_printed": int(part["rounds_to_printed"].sum()),
            "outside_paper_ci": "; ".join(f"{g} ({m})" for g, m in zip(missed["ethnicity"], missed["model"])),
        })
    return pd.DataFrame(rows, columns=["analysis", "compared", "inside_paper_ci", "rounds_to_printed",
                                       "outside_paper_ci"])


# --------------------------------------------------------------------------------------------------
# STROBE / RECORD checklist
# --------------------------------------------------------------------------------------------------

CHECKLIST_SOURCES = (
    "STROBE: von Elm E, Altman DG, Egger M, et al. The Strengthening the Reporting of Observational Studies in "
    "Epidemiology (STROBE) statement. 2007. RECORD: Benchimol EI, Smeeth L, Guttmann A, et al. The REporting "
    "of studies Conducted using Observational Routinely-collected health Data (RECORD) statement. PLoS Med 2015."
)

# (guideline, item, topic, where (";"-separated project paths), how this project addresses it)
_CHECKLIST: list[tuple[str, str, str, str, str]] = [
    ("STROBE", "1", "Title and abstract",
     "notebooks/00_start_here.ipynb; notebooks/01_study_design.ipynb",
     "States the design (replication of a cohort of routine referrals on synthetic data) and the paper replicated."),
    ("STROBE", "2", "Background/rationale",
     "notebooks/01_study_design.ipynb",
     "Why ethnic inequalities along the IAPT pathway matter; what the paper asked."),
    ("STROBE", "3", "Objectives",
     "notebooks/01_study_design.ipynb",
     "The three questions: referral source, assessment among referred, treatment among assessed."),
    ("STROBE", "4", "Study design",
     "notebooks/01_study_design.ipynb; notebooks/02_synthetic_cohort.ipynb",
     "Retrospective cohort of routine referrals (paper); synthetic cohort with known truth (here)."),
    ("STROBE", "5", "Setting",
     "notebooks/01_study_design.ipynb; helpers/study.py",
     "SLaM IAPT services, referrals 2013-2016; boroughs assumed (helpers.study.BOROUGHS)."),
    ("STROBE", "6", "Participants",
     "notebooks/04_data_preparation.ipynb; helpers/prepare.py",
     "Eligibility (adults 18+, study dates, valid codes) applied in helpers.prepare with a flow table."),
    ("STROBE", "7", "Variables",
     "notebooks/01_study_design.ipynb; docs/data_dictionary.md; helpers/study.py",
     "Exposure (ethnic group), outcomes (source, assessed, treated), covariates (age band, gender, year, borough)."),
    ("STROBE", "8", "Data sources/measurement",
     "docs/data_dictionary.md; helpers/codes.py; notebooks/02_synthetic_cohort.ipynb",
     "NHS-coded IAPT fields; synthetic generator calibrated to printed Table 4; assumed values labelled."),
    ("STROBE", "9", "Bias",
     "notebooks/10_missing_ethnicity.ipynb; notebooks/12_simulation_study.ipynb; notebooks/13_monte_carlo_error.ipynb; "
     "notebooks/15_interpretation.ipynb",
     "Missing ethnicity (complete case vs weighted MI), bias and coverage by simulation; routine-data biases."),
    ("STROBE", "10", "Study size",
     "notebooks/02_synthetic_cohort.ipynb; data/published/cohort_targets.csv",
     "85,800 referrals as printed; the cohort size is a parameter (n_referrals)."),
    ("STROBE", "11", "Quantitative variables",
     "helpers/study.py; notebooks/04_data_preparation.ipynb",
     "Age in bands (banding assumed); year as categorical."),
    ("STROBE", "12", "Statistical methods (incl. missing data)",
     "helpers/models.py; helpers/imputation.py; notebooks/06_referral_source.ipynb; notebooks/08_assessment.ipynb; "
     "notebooks/09_treatment.ipynb; notebooks/10_missing_ethnicity.ipynb; notebooks/11_weighted_imputation.ipynb",
     "Multinomial and logistic models, three adjustment sets; weighted MI pooled by Rubin's rules beside complete case."),
    ("STROBE", "13", "Participants (flow)",
     "notebooks/04_data_preparation.ipynb; notebooks/05_describing_the_cohort.ipynb",
     "Flow table accounting for every input row; pathway funnel referred -> assessed -> treated."),
    ("STROBE", "14", "Descriptive data",
     "notebooks/05_describing_the_cohort.ipynb; helpers/tables.py",
     "Table 1 by ethnic group with missing ethnicity as its own column, disclosure controlled."),
    ("STROBE", "15", "Outcome data",
     "notebooks/05_describing_the_cohort.ipynb",
     "Counts assessed and treated by group (disclosure controlled)."),
    ("STROBE", "16", "Main results",
     "notebooks/06_referral_source.ipynb; notebooks/08_assessment.ipynb; notebooks/09_treatment.ipynb; "
     "notebooks/16_replication_report.ipynb",
     "Unadjusted and adjusted RRRs/ORs with 95% CIs; ours beside the printed Table 4."),
    ("STROBE", "17", "Other analyses",
     "notebooks/10_missing_ethnicity.ipynb; notebooks/11_weighted_imputation.ipynb; "
     "notebooks/12_simulation_study.ipynb; notebooks/13_monte_carlo_error.ipynb; notebooks/14_access_and_population.ipynb",
     "MAR MI vs weighted MI; simulation under MCAR/MAR/MNAR; referral rates per resident (beyond the paper)."),
    ("STROBE", "18", "Key results",
     "notebooks/15_interpretation.ipynb; notebooks/16_replication_report.ipynb",
     "Where in the pathway gaps open, in people per 1,000 referred; what matched the paper."),
    ("STROBE", "19", "Limitations",
     "notebooks/15_interpretation.ipynb; notebooks/16_replication_report.ipynb",
     "Routine-data limits; synthetic data calibrated by construction; unknown Tables 1-3."),
    ("STROBE", "20", "Interpretation",
     "notebooks/15_interpretation.ipynb",
     "Proposed mechanisms described as such, not as findings of the synthetic replication."),
    ("STROBE", "21", "Generalisability",
     "notebooks/14_access_and_population.ipynb; notebooks/15_interpretation.ipynb",
     "One trust, four boroughs, 2013-2016; census denominators of 2011."),
    ("STROBE", "22", "Funding",
     "notebooks/16_replication_report.ipynb",
     "The paper's funding statement is printed in the paper (not copied here); the report points to it."),
    ("RECORD", "1.1-1.3", "Title/abstract: data type, region and time, linkage",
     "notebooks/00_start_here.ipynb",
     "Routinely collected IAPT referral data (synthetic stand-in), South London 2013-2016, no linkage."),
    ("RECORD", "6.1", "Population selection: codes and algorithms",
     "helpers/prepare.py; helpers/codes.py",
     "Selection rules in code, each exclusion counted in the flow table."),
    ("RECORD", "6.2", "Validation of codes used for selection",
     "notebooks/04_data_preparation.ipynb",
     "No validation study exists for these fields here; stated as a limitation."),
    ("RECORD", "6.3 / 12.3", "Data linkage",
     "notebooks/04_data_preparation.ipynb",
     "No linkage: one extract, one row per referral (the census margin is aggregate, not linked)."),
    ("RECORD", "7.1", "Codes/algorithms to classify exposures, outcomes, confounders",
     "helpers/codes.py; docs/data_dictionary.md",
     "NHS ethnic category, source-of-referral and gender code lists mapped to analysis groups (assumed where unknown)."),
    ("RECORD", "12.1", "Access to the database",
     "notebooks/00_start_here.ipynb; helpers/pipeline.py",
     "Synthetic cohort fully open; a real extract runs through the same code (data_path) by those with access."),
    ("RECORD", "12.2", "Data cleaning",
     "helpers/prepare.py; notebooks/04_data_preparation.ipynb",
     "Schema checks, code validation, date and age rules with reasons in the flow table."),
    ("RECORD", "13.1", "Selection of persons: flow diagram",
     "notebooks/04_data_preparation.ipynb",
     "Flow table from input rows to the analysis frame."),
    ("RECORD", "19.1", "Limitations of routine data",
     "notebooks/15_interpretation.ipynb",
     "Misclassification and missing ethnicity, data not collected for research, no measure of need."),
    ("RECORD", "22.1", "Access to protocol, data and programming code",
     "Makefile; helpers/run.py; data/synthetic/iapt_referrals.csv",
     "All code, the synthetic data and the parameters are in the repository; `make run` reproduces every output."),
]

CHECKLIST_COLUMNS = ["guideline", "item", "topic", "where", "how"]


def checklist() -> pd.DataFrame:
    """The STROBE and RECORD items mapped to where this project addresses them (``where``: project-relative
    paths separated by "; ")."""
    return pd.DataFrame(_CHECKLIST, columns=CHECKLIST_COLUMNS)


def referenced_paths(table: pd.DataFrame | None = None) -> list[str]:
    """Every project path named in the checklist's ``where`` column, once each, in order."""
    table = checklist() if table is None else table
    paths: list[str] = []
    for cell in table["where"]:
        for part in str(cell).split(";"):
            part = part.strip()
            if part and part not in paths:
                paths.append(part)
    return paths


def missing_references(table: pd.DataFrame | None = None, root: Path | str = study.PROJECT_ROOT) -> list[str]:
    """Referenced paths that do not exist under ``root`` (empty list: every reference resolves)."""
    root = Path(root)
    return [p for p in referenced_paths(table) if not (root / p).exists()]
