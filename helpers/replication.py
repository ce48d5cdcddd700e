"""Our estimates beside the paper's printed Table 4 and beside the planted (calibration target) values.

Why one module: a replication is judged by these comparisons (is our OR inside the paper's CI, does it round
to the printed value, does the planted value fall inside our CI, does each gap point the printed way), and
display strings ("0.77 (0.72-0.81)") are how both sides are shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import models, study
from helpers.disclosure import is_small
from helpers.tables import check_frame

# --------------------------------------------------------------------------------------------------
# Estimates: display and comparison with the paper
# --------------------------------------------------------------------------------------------------


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def format_ci(low, high, digits: int = 2) -> str:
    """"0.72-0.81"; "" if either bound is missing."""
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"{_fmt(low, digits)}-{_fmt(high, digits)}"


def format_estimates(estimates: pd.DataFrame, digits: int = 2) -> pd.Series:
    """Display strings "0.77 (0.72-0.81)", one per row of a tidy estimates table (same index).

    A row without a CI (the reference group) shows "1.00 (reference)"; a missing estimate shows "".
    """
    check_frame(estimates, ["estimate", "ci_low", "ci_high"])
    out = []
    for est, lo, hi in zip(estimates["estimate"], estimates["ci_low"], estimates["ci_high"]):
        if pd.isna(est):
            out.append("")
        elif pd.isna(lo) or pd.isna(hi):
            out.append(f"{_fmt(est, digits)} (reference)")
        else:
            out.append(f"{_fmt(est, digits)} ({format_ci(lo, hi, digits)})")
    return pd.Series(out, index=estimates.index, name="display", dtype=object)


def tidy_published(published: pd.DataFrame, stage: str = "treatment") -> pd.DataFrame:
    """The paper's Table 4 (``analysis, ethnicity, n, pct_treated, model, or, ci_low, ci_high``) as a tidy
    estimates frame (``stage, outcome_level, model, analysis, ethnicity, estimate, ci_low, ci_high, n``).
    A frame already tidy (with ``estimate``) is returned as a copy."""
    if "estimate" in published.columns:
        out = published.copy()
        if "stage" not in out.columns:
            out["stage"] = stage
        if "outcome_level" not in out.columns:
            out["outcome_level"] = ""
        return out
    check_frame(published, ["analysis", "ethnicity", "model", "or", "ci_low", "ci_high"])
    out = published.rename(columns={"or": "estimate"}).copy()
    out["stage"] = stage
    out["outcome_level"] = ""
    first = ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high"]
    return out[first + [c for c in out.columns if c not in first]]


def published_vs_ours(
    estimates: pd.DataFrame, published: pd.DataFrame, stage: str = "treatment", digits: int = 2,
    threshold: int | None = None,
) -> pd.DataFrame:
    """Our ORs beside the paper's printed Table 4, one row per printed (analysis, model, ethnicity).

    Columns: ``analysis, model, ethnicity, ours_or, ours_ci, paper_or, paper_ci, inside_paper_ci,
    rounds_to_printed, ours_pct, paper_pct``. ``inside_paper_ci``: our OR, rounded to the printed ``digits``,
    lies within the printed CI (bounds inclusive). ``rounds_to_printed``: our OR rounded to ``digits`` equals
    the printed OR. Both are False where we have no estimate. The reference group (printed 1.00 (1.00-1.00))
    is kept. ``ours_pct``: % treated among the assessed, 100 x ``n_events`` / ``n`` of our row, from exact
    counts (after MI: the average completed-data counts over the imputations), unrounded; NaN when the
    estimates carry no counts. ``paper_pct``: the printed % (``pct_treated``). Compare at the printed one
    decimal. ``threshold`` (publishable tables): ``ours_pct`` is blank where a count behind it (assessed,
    treated, assessed minus treated) is 1..``threshold``, the disclosure rule for counts.
    """
    keys = ["analysis", "model", "ethnicity"]
    check_frame(estimates, [*keys, "estimate", "ci_low", "ci_high"])
    paper = tidy_published(published, stage=stage)
    paper = paper[paper["stage"] == stage] if "stage" in paper.columns else paper
    ours = estimates
    if "stage" in ours.columns:
        ours = ours[ours["stage"] == stage]
    has_counts = {"n", "n_events"} <= set(ours.columns)
    ours = ours[[*keys, "estimate", "ci_low", "ci_high", *(["n", "n_events"] if has_counts else [])]].copy()
    for k in keys:
        ours[k] = ours[k].astype(str)
    if ours.duplicated(keys).any():
        raise ValueError("estimates have more than one row per (analysis, model, ethnicity) for this stage")
    paper = paper[[*keys, "estimate", "ci_low", "ci_high", *(["pct_treated"] if "pct_treated" in paper else [])]].copy()
    for k in keys:
        paper[k] = paper[k].astype(str)
    merged = paper.merge(ours, on=keys, how="left", suffixes=("_paper", "_ours"))
    ours_or = merged["estimate_ours"].astype(float)
    # Reference rows carry estimate 1 and a blank CI in our tables.
    ours_rounded = np.round(ours_or, digits)
    tol = 0.5 * 10 ** (-digits) * 1e-6
    p_or = merged["estimate_paper"].astype(float)
    p_lo = merged["ci_low_paper"].astype(float)
    p_hi = merged["ci_high_paper"].astype(float)
    inside = (ours_rounded >= p_lo - tol) & (ours_rounded <= p_hi + tol)
    rounds = (ours_rounded - p_or).abs() <= tol
    out = pd.DataFrame(
        {
            "analysis": merged["analysis"],
            "model": merged["model"],
            "ethnicity": merged["ethnicity"],
            "ours_or": ours_or,
            "ours_ci": [
                format_ci(lo, hi, digits) if not pd.isna(lo) else ("reference" if e == 1 else "")
                for e, lo, hi in zip(ours_or, merged["ci_low_ours"], merged["ci_high_ours"])
            ],
            "paper_or": p_or,
            "paper_ci": [format_ci(lo, hi, digits) for lo, hi in zip(p_lo, p_hi)],
            "inside_paper_ci": (inside & ours_or.notna()).astype(bool),
            "rounds_to_printed": (rounds & ours_or.notna()).astype(bool),
        }
    )
    if has_counts:
        n = merged["n"].astype(float)
        out["ours_pct"] = 100.0 * merged["n_events"].astype(float) / n.where(n > 0)
        if threshold is not None:
            ev = merged["n_events"].astype(float)
            small = [is_small(np.round(x.fillna(0).to_numpy()), threshold) for x in (n, ev, n - ev)]
            out["ours_pct"] = out["ours_pct"].where(~(small[0] | small[1] | small[2]))
    else:
        out["ours_pct"] = np.nan
    out["paper_pct"] = merged["pct_treated"].astype(float) if "pct_treated" in merged else np.nan
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Planted (calibration target) values beside estimates, and direction checks (notebooks 07-09)
# --------------------------------------------------------------------------------------------------


def _target_quantity(stage: str, model: str) -> str:
    return f"{'rrr' if stage == 'referral_source' else 'or'}_{model}"


def planted_vs_estimated(
    estimates: pd.DataFrame,
    targets: pd.DataFrame,
    stage: str,
    model: str = "adjusted_full",
    analysis: str = "complete_case",
) -> pd.DataFrame:
    """The effect sizes the synthetic cohort was built from (the targets file) beside our estimates.

    ``targets``: the targets table (``data/published/cohort_targets.csv``: ``quantity, stage, ethnicity,
    level, value, source``); the rows used are ``rrr_<model>`` (referral source, ``level`` = outcome level)
    or ``or_<model>``. Returns one row per planted value: ``outcome_level, ethnicity, planted, source``
    (``printed`` or ``assumed``), ``estimate, ci_low, ci_high`` and ``planted_in_ci`` (the planted value lies
    inside our 95% CI). Ordered by outcome level as in ``study.SOURCES`` and group as in ``study.GROUPS``.
    """
    check_frame(targets, ["quantity", "stage", "ethnicity", "level", "value", "source"])
    check_frame(estimates, ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low",
                             "ci_high"])
    quantity = _target_quantity(stage, model)
    planted = targets[(targets["quantity"] == quantity) & (targets["stage"] == stage)].copy()
    if planted.empty:
        raise ValueError(f"the targets table has no rows with quantity={quantity!r} and stage={stage!r}")
    planted = pd.DataFrame(
        {
            "outcome_level": planted["level"].fillna("").astype(str).to_numpy() if stage == "referral_source"
            else "",
            "ethnicity": planted["ethnicity"].astype(str).to_numpy(),
            "planted": pd.to_numeric(planted["value"]).astype(float).to_numpy(),
            "source": planted["source"].astype(str).to_numpy(),
        }
    )
    ours = models.select(estimates, stage=stage, model=model, analysis=analysis).copy()
    ours["outcome_level"] = ours["outcome_level"].fillna("").astype(str)
    ours["ethnicity"] = ours["ethnicity"].astype(str)
    ours = ours[["outcome_level", "ethnicity", "estimate", "ci_low", "ci_high"]]
    out = planted.merge(ours, on=["outcome_level", "ethnicity"], how="left", validate="one_to_one")
    out["planted_in_ci"] = ((out["planted"] >= out["ci_low"]) & (out["planted"] <= out["ci_high"])).astype(bool)
    level_order = {lv: i for i, lv in enumerate(["", *study.SOURCES])}
    group_order = {g: i for i, g in enumerate(study.GROUPS)}
    out = out.sort_values(
        ["outcome_level", "ethnicity"],
        key=lambda s: s.map(level_order if s.name == "outcome_level" else group_order).fillna(99),
    )
    return out.reset_index(drop=True)


def check_directions(
    estimates: pd.DataFrame,
    stage: str,
    expected: dict,
    model: str = "adjusted_full",
    analysis: str = "complete_case",
) -> pd.DataFrame:
    """Do our estimates point the way a published sentence says?

    ``expected`` maps ``ethnicity`` (logit stages) or ``(ethnicity, outcome_level)`` (referral source) to
    ``"lower"`` (ratio below 1) or ``"higher"``. Returns one row per expectation: ``ethnicity,
    outcome_level, expected, estimate, ci_low, ci_high, direction_holds`` (the point estimate is on the
    expected side of 1) and ``ci_excludes_1`` (the whole 95% CI is on that side).
    """
    check_frame(estimates, ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low",
                             "ci_high"])
    ours = models.select(estimates, stage=stage, model=model, analysis=analysis)
    rows = []
    for key, direction in expected.items():
        if direction not in ("lower", "higher"):
            raise ValueError(f"expected direction for {key!r} must be 'lower' or 'higher', got {direction!r}")
        ethnicity, level = (key if isinstance(key, tuple) else (key, ""))
        hit = ours[(ours["ethnicity"].astype(str) == ethnicity)
                   & (ours["outcome_level"].fillna("").astype(str) == str(level))]
        if len(hit) != 1:
            raise ValueError(f"no single estimate for {key!r} in stage {stage!r}, model {model!r} ({len(hit)} found)")
        est, lo, hi = (float(hit[c].iloc[0]) for c in ("estimate", "ci_low", "ci_high"))
        if direction == "lower":
            holds, excl = est < 1, hi < 1
        else:
            holds, excl = est > 1, lo > 1
        rows.append({"ethnicity": ethnicity, "outcome_level": str(level), "expected": direction, "estimate": est,
                     "ci_low": lo, "ci_high": hi, "direction_holds": bool(holds), "ci_excludes_1": bool(excl)})
    return pd.DataFrame(rows, columns=["ethnicity", "outcome_level", "expected", "estimate", "ci_low", "ci_high",
                                       "direction_holds", "ci_excludes_1"])


# --------------------------------------------------------------------------------------------------
# Missing-data methods beside the full-data truth (notebook 10)
# --------------------------------------------------------------------------------------------------
def methods_vs_truth(estimates: pd.DataFrame, truth: pd.DataFrame, stage: str = "treatment",
                     model: str = "adjusted_full", outcome_level: str = "") -> pd.DataFrame:
    """Each method's estimate beside the full-data truth for one stage x model (x outcome level).

    ``estimates``: tidy tables of several analyses stacked (column ``analysis``); ``truth``: the tidy
    table of ``pipeline.truth_estimates``. Returns ``method, ethnicity, estimate, ci_low, ci_high, truth,
    log_difference`` (log estimate - log truth) and ``covers_truth``; reference group left out.
    """
    def pick(d: pd.DataFrame) -> pd.DataFrame:
        lv = d["outcome_level"].fillna("").astype(str)
        return d[(d["stage"] == stage) & (d["model"] == model) & (lv == outcome_level)
                 & (d["ethnicity"] != study.REFERENCE_GROUP)]

    est = pick(estimates)
    if est.empty:
        raise ValueError(f"no estimates for stage={stage!r}, model={model!r}, outcome_level={outcome_level!r}")
    tv = pick(truth).set_index("ethnicity")["estimate"].rename("truth")
    out = est[["analysis", "ethnicity", "estimate", "ci_low", "ci_high"]].rename(columns={"analysis": "method"})
    out = out.join(tv, on="ethnicity")
    out["log_difference"] = np.log(out["estimate"]) - np.log(out["truth"])
    out["covers_truth"] = (out["ci_low"] <= out["truth"]) & (out["truth"] <= out["ci_high"])
    return out.reset_index(drop=True)


def accuracy_vs_truth(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per method (in the order given): mean and largest |log difference| from the truth, and how many of
    the groups' 95% CIs contain the truth (``methods_vs_truth`` output)."""
    c = comparison.assign(abs_diff=comparison["log_difference"].abs())
    return (c.groupby("method", sort=False)
            .agg(mean_abs_log_difference=("abs_diff", "mean"), max_abs_log_difference=("abs_diff", "max"),
                 cis_covering_truth=("covers_truth", "sum"), groups=("covers_truth", "size")))
