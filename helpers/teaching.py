"""Teaching variants: what notebooks 06-09 show beside the paper's models, in one place.

Why: notebooks 06-09 fit each model on the rows with statsmodels' formula API, so that a student leaves able
to fit it on their own data. The project's own fitter (``helpers.models``, Newton-Raphson on covariate-pattern
counts) is the fast route multiple imputation needs; the functions here show, number by number, that the two
routes give the same estimates, and tidy small display details (a CI wholly below 1, "-0.0"). They also fit
the variants a lesson needs and the paper does not: a stage with other covariates (:func:`fit_custom`),
treatment with all referrals as the denominator (:func:`treated_among_referred`), and the crude odds along
the pathway (:func:`pathway_odds`).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from helpers import study
from helpers.design import model_data, require_column
from helpers.models import ModelPlan, check_analysis, select

# "C(ethnicity, Treatment(reference='White British'))[T.Black Caribbean]", "C(ethnicity)[T.Asian]" or
# "ethnicity[T.Mixed]": the main-effect columns of the ethnicity factor in a patsy design.
_ETHNICITY_TERM = re.compile(r"^(?:C\(\s*)?ethnicity\b[^:]*\[T\.(?P<group>[^\]]+)\]$")

COMPARISON_COLUMNS = ["outcome_level", "ethnicity", "log_or_statsmodels", "log_or_helpers", "diff_log_or",
                      "se_statsmodels", "se_helpers", "diff_se"]


def ethnicity_terms(names: Sequence[str]) -> dict[str, str]:
    """Group -> parameter name for the ethnicity main effects in a statsmodels formula fit."""
    found: dict[str, str] = {}
    for name in names:
        match = _ETHNICITY_TERM.match(str(name))
        if match:
            found[match.group("group")] = str(name)
    return found


def _as_frame(values: Any) -> pd.DataFrame:
    """statsmodels params / bse: a Series (logit, GLM) or a DataFrame with one column per non-base outcome."""
    return values.to_frame() if isinstance(values, pd.Series) else pd.DataFrame(values)


def compare_with_statsmodels(
    result: Any, tidy: pd.DataFrame, outcome_levels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Log odds ratios (or log RRRs) and standard errors of ethnicity from a statsmodels fit beside
    ``helpers.models.fit_stage``'s, with their differences.

    ``result``: a fitted ``smf.logit`` / ``smf.glm`` (binomial) / ``smf.mnlogit`` result. ``tidy``: the tidy
    table of the same stage and model. For a multinomial fit, ``outcome_levels`` names the result's columns in
    order (the non-base outcomes, e.g. ``["Self", "Community", "Other"]``). A fit whose ethnicity reference is
    not White British, or whose groups differ from the tidy table's, is an error, not a silent mismatch.
    """
    params, bse = _as_frame(result.params), _as_frame(result.bse)
    if outcome_levels is None:
        if params.shape[1] != 1:
            raise ValueError(f"the fit has {params.shape[1]} outcome columns: pass outcome_levels naming them")
        outcome_levels = [""]
    outcome_levels = [str(level) for level in outcome_levels]
    if len(outcome_levels) != params.shape[1]:
        raise ValueError(f"outcome_levels has {len(outcome_levels)} names for {params.shape[1]} outcome columns")
    terms = ethnicity_terms(params.index)
    if not terms:
        raise ValueError("no ethnicity terms such as 'C(ethnicity, ...)[T.Asian]' among the fit's parameters")
    if study.REFERENCE_GROUP in terms:
        raise ValueError(f"the fit estimates a coefficient for {study.REFERENCE_GROUP!r}: its reference group is "
                         f"another one; write C(ethnicity, Treatment(reference={study.REFERENCE_GROUP!r}))")
    ours = tidy[(tidy["ethnicity"].astype(str) != study.REFERENCE_GROUP)].copy()
    ours["outcome_level"] = ours["outcome_level"].fillna("").astype(str)
    ours["ethnicity"] = ours["ethnicity"].astype(str)
    if set(ours["outcome_level"]) != set(outcome_levels):
        raise ValueError(f"outcome levels differ: the fit has {outcome_levels}, the tidy table "
                         f"{sorted(set(ours['outcome_level']))}")
    if set(ours["ethnicity"]) != set(terms):
        raise ValueError(f"ethnic groups differ: the fit has {sorted(terms)}, the tidy table "
                         f"{sorted(set(ours['ethnicity']))}")
    rows = []
    for j, level in enumerate(outcome_levels):
        for row in ours[ours["outcome_level"] == level].itertuples():
            b, s = float(params.iloc[:, j][terms[row.ethnicity]]), float(bse.iloc[:, j][terms[row.ethnicity]])
            rows.append({"outcome_level": level, "ethnicity": row.ethnicity,
                         "log_or_statsmodels": b, "log_or_helpers": float(row.log_estimate),
                         "diff_log_or": b - float(row.log_estimate),
                         "se_statsmodels": s, "se_helpers": float(row.se), "diff_se": s - float(row.se)})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def largest_difference(comparison: pd.DataFrame) -> float:
    """The largest absolute difference, log estimate or SE, in a :func:`compare_with_statsmodels` table."""
    return float(comparison[["diff_log_or", "diff_se"]].abs().to_numpy().max())


def agreement_summary(comparison: pd.DataFrame, fitter: str = "smf.logit", tolerance: float = 1e-6) -> str:
    """Two lines for a :func:`compare_with_statsmodels` table: how many coefficients were compared, and whether
    they all agree within ``tolerance`` (a yes/no, so the line is the same on every machine; the size of the
    largest difference, which depends on floating point, is printed separately)."""
    shown = f"{tolerance:.0e}".replace("e-0", "e-")  # 1e-6, as the notebooks write it
    return (f"Ethnicity coefficients compared: {len(comparison)}\n"
            f"Largest difference, log OR or standard error, {fitter} vs models.fit_stage, below {shown}: "
            f"{largest_difference(comparison) < tolerance}")


def ci_position(tidy: pd.DataFrame) -> pd.Series:
    """How many ratios have their whole 95% CI below 1, above 1, or include 1 (reference rows left out).

    Why: "OR below 1" counted on point estimates says 4/7 when every OR is 1.00 (a cohort with no ethnic
    effect, point estimates a hair either side of 1); a CI wholly below 1 is the claim worth counting.
    """
    rows = tidy[tidy["ethnicity"].astype(str) != study.REFERENCE_GROUP]
    below, above = rows["ci_high"] < 1, rows["ci_low"] > 1
    return pd.Series({"whole CI below 1": int(below.sum()), "whole CI above 1": int(above.sum()),
                      "CI includes 1": int((~below & ~above).sum()), "total": len(rows)})


def rounded(values: pd.DataFrame | pd.Series, digits: int = 1) -> pd.DataFrame | pd.Series:
    """Round for display without "-0.0": a tiny negative gap rounds to -0.0, and adding 0.0 makes it 0.0."""
    return values.round(digits) + 0.0


def ci_agreement(estimates: pd.DataFrame, published: pd.DataFrame, analysis: str = "complete_case",
                 digits: int = 2) -> pd.DataFrame:
    """Our treatment 95% CI limits beside Table 4's printed ones, per model and minority group.

    Why: the cohort is solved so that its ORs reproduce the printed ORs, but nothing targets the printed
    intervals; their width follows from how many people each group has. So agreement of the CIs is a check
    the construction does not guarantee. ``same_rounded``: both limits round to the printed ones;
    ``largest_gap``: the larger absolute difference of the two rounded limits from the printed ones.
    """
    keys = ["model", "ethnicity"]
    ours = select(estimates, stage="treatment", analysis=analysis, reference=False)
    paper = select(published, analysis=analysis, reference=False)
    if paper.empty:
        raise ValueError(f"the published table has no rows for analysis {analysis!r}")
    ours = ours.assign(ethnicity=ours["ethnicity"].astype(str))[[*keys, "ci_low", "ci_high"]]
    merged = paper[[*keys, "ci_low", "ci_high"]].merge(ours, on=keys, how="left", suffixes=("_paper", "_ours"),
                                                       validate="one_to_one")
    low = (merged["ci_low_ours"].round(digits) - merged["ci_low_paper"]).abs()
    high = (merged["ci_high_ours"].round(digits) - merged["ci_high_paper"]).abs()
    tol = 0.5 * 10 ** (-digits) * 1e-6
    merged["largest_gap"] = np.maximum(low, high).round(digits + 2)
    merged["same_rounded"] = (low <= tol) & (high <= tol)
    return merged


# ----------------------------------------------------------------------------------------------------------
# Variants of the paper's models (notebooks 08-09)
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
    check_analysis(analysis)
    if stage not in study.STAGE_SPECS:
        raise ValueError(f"unknown stage {stage!r}; valid stages: {study.STAGES}")
    covariates = list(covariates)
    outcome = study.STAGE_SPECS[stage].outcome
    if "ethnicity" in covariates or outcome in covariates:
        raise ValueError(f"covariates must not include ethnicity or the outcome {outcome!r}: {covariates}")
    if len(set(covariates)) != len(covariates):
        raise ValueError(f"covariates are repeated: {covariates}")
    plan = ModelPlan(frame, [stage], [])
    plan.data[(stage, model)] = model_data(frame, stage, covariates, model, among_assessed=among_assessed)
    return plan.fit_all(analysis=analysis)


def treated_among_referred(frame: pd.DataFrame, model: str = "adjusted_full") -> pd.DataFrame:
    """ORs for "treated" with ALL referrals as the denominator (not assessed counts as not treated).

    This is deliberately not the paper's treatment model (which is among the assessed): it mixes the
    assessment gap and the treatment gap into one number, and notebook 09 uses it to show why the
    denominator matters. Rows are labelled ``stage="treated_among_referred"``.
    """
    if model not in study.MODELS:
        raise ValueError(f"unknown model {model!r}; valid models: {list(study.MODELS)}")
    assessed = pd.to_numeric(require_column(frame, "assessed"), errors="coerce")
    treated = pd.to_numeric(require_column(frame, "treated"), errors="coerce")
    whole = frame.assign(treated=treated.where(assessed == 1, 0.0))
    out = fit_custom(whole, "treatment", study.MODELS[model], model=model, among_assessed=False)
    out["stage"] = "treated_among_referred"
    return out


def pathway_odds(counts: pd.DataFrame, reference: str = study.REFERENCE_GROUP) -> pd.DataFrame:
    """Crude probabilities and odds ratios at each step of referral -> assessment -> treatment, per group.

    Why: notebook 09 shows that probabilities multiply along the pathway but odds do not, and where the
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
