"""Figures of the study's results: forest plots, the pathway funnel, missing-data methods side by side, the
simulation study, referral rates per resident and where the treatment gap opens.

Every function takes data (never reads files) and returns a ``matplotlib.figure.Figure``. Figures are made
with ``matplotlib.figure.Figure`` directly, not through pyplot, so nothing is left open in pyplot's state
and a notebook shows a figure once, when it is displayed (``fig`` as the cell's last expression). Colours,
fonts and the ratio axis come from ``helpers.figstyle``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers import study
from helpers.figstyle import (
    ANALYSIS_MARKERS,
    FALLBACK_COLOURS,
    FALLBACK_MARKERS,
    FIGSIZE,
    FONT,
    METHOD_COLOURS,
    METHOD_LABELS,
    MODEL_COLOURS,
    OKABE_ITO,
    PUBLISHED_LABEL,
    colour_for,
    group_colours,
    offsets_for,
    ratio_axis,
    ratio_label,
)
from helpers.replication import tidy_published


def _filter(est: pd.DataFrame, stage: str, outcome_level, analysis: str | None) -> pd.DataFrame:
    out = est
    if "stage" in out.columns:
        out = out[out["stage"] == stage]
    if analysis is not None and "analysis" in out.columns:
        out = out[out["analysis"] == analysis]
    if "outcome_level" in out.columns:
        levels = out["outcome_level"].fillna("").astype(str)
        if outcome_level is None:
            present = sorted(set(levels) - {""})
            if len(present) > 1:
                raise ValueError(
                    f"stage {stage!r} has several outcome levels {present}: choose one with outcome_level="
                )
        else:
            out = out[levels == str(outcome_level)]
    return out


def forest_plot(
    estimates: pd.DataFrame,
    stage: str,
    outcome_level=None,
    models: Sequence[str] | None = None,
    analysis: str = "complete_case",
    published: pd.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """Forest plot of one stage's OR / RRR by ethnic group, one point and 95% CI per model.

    Groups run down the y axis in the paper's order; the reference group (White British) is a single marker
    at 1 labelled "reference". Models are dodged vertically and coloured by ``MODEL_COLOURS``; the x axis is
    log scaled with ticks at 0.5, 0.7, 1, 1.4 and 2 and a dashed line at 1. ``published`` (a tidy frame with
    the same columns, or the paper's Table 4 as printed) adds the paper's figures as hollow markers beside
    ours, with the legend entry "Harwood et al. (2021), Table 4". One ``errorbar`` container is drawn per
    model, and one more per model for the published figures.
    """
    if stage not in study.STAGE_SPECS:
        raise ValueError(f"unknown stage {stage!r}; expected one of {study.STAGES}")
    est = _filter(estimates, stage, outcome_level, analysis)
    if models is None:
        models = [m for m in study.MODELS if m in set(est["model"])] or list(study.MODELS)
    pub = None
    if published is not None:
        pub = _filter(tidy_published(published, stage="treatment"), stage, outcome_level, analysis)
    groups = list(study.GROUPS)
    ref = study.REFERENCE_GROUP
    ypos = {g: i for i, g in enumerate(groups)}

    fig = Figure(figsize=FIGSIZE)
    ax = fig.add_subplot()
    n_series = len(models) * (2 if pub is not None else 1)
    offsets = offsets_for(n_series, width=0.62 if n_series > 1 else 0)
    all_values: list[float] = []
    handles = []
    k = 0
    for model in models:
        colour = colour_for(model, MODEL_COLOURS, k)
        sources = [("ours", est)] + ([("paper", pub)] if pub is not None else [])
        for source, data in sources:
            rows = data[(data["model"] == model) & (data["ethnicity"] != ref)]
            rows = rows[rows["ethnicity"].isin(groups)]
            if rows.empty and source == "paper":
                k += 1
                continue
            y = np.array([ypos[g] for g in rows["ethnicity"]], dtype=float) + offsets[k]
            x = rows["estimate"].to_numpy(dtype=float)
            lo = rows["ci_low"].to_numpy(dtype=float)
            hi = rows["ci_high"].to_numpy(dtype=float)
            xerr = np.vstack([np.where(np.isnan(lo), 0, x - lo), np.where(np.isnan(hi), 0, hi - x)])
            hollow = source == "paper"
            container = ax.errorbar(
                x,
                y,
                xerr=xerr,
                fmt="o" if not hollow else "D",
                color=colour,
                markerfacecolor="white" if hollow else colour,
                markeredgecolor=colour,
                markersize=6 if not hollow else 5.5,
                elinewidth=1.4,
                capsize=2,
                linestyle="none",
                label=study.MODEL_LABELS.get(model, model) if not hollow else None,
                gid=f"{source}:{model}",
            )
            if not hollow:
                handles.append(container)
            all_values.extend([*x, *lo, *hi])
            k += 1
    # Reference group: one marker at 1 and the word "reference".
    ax.plot([1.0], [ypos[ref]], marker="o", color="black", linestyle="none", gid="reference")
    ax.annotate(
        "reference",
        xy=(1.0, ypos[ref]),
        xytext=(8, 0),
        textcoords="offset points",
        va="center",
        fontsize=FONT["tick"],
    )
    if pub is not None and not pub.empty:
        handles.append(
            Line2D([], [], marker="D", color="black", markerfacecolor="white", linestyle="none", label=PUBLISHED_LABEL)
        )
    ratio_axis(ax, all_values, ratio_label(stage))
    ax.set_yticks(range(len(groups)), labels=groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)  # paper's order from the top
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if title is None:
        spec = study.STAGE_SPECS[stage]
        level = f": {outcome_level} vs {study.SOURCE_BASE}" if outcome_level else ""
        title = f"{spec.label}{level} ({analysis.replace('_', ' ')})"
    ax.set_title(title, fontsize=FONT["title"])
    ax.legend(handles=handles, fontsize=FONT["legend"], loc="best", frameon=False)
    fig.tight_layout()
    return fig


def pathway_funnel(counts: pd.DataFrame, per_1000: bool = False) -> Figure:
    """The pathway by group from ``tables.pathway_counts``: one panel of horizontal bars per step.

    Left: assessed, % of referred. Right: treated, % of assessed (the paper's denominator). With
    ``per_1000=True`` a third panel shows treated per 1,000 referred (the whole pathway). Each panel's
    title names its denominator. Suppressed (missing) values are marked "suppressed". One bar per row of
    ``counts`` in each panel.
    """
    needed = ["pct_assessed", "pct_treated"] + (["treated_per_1000_referred"] if per_1000 else [])
    missing = [c for c in needed if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks columns {missing}: pass tables.pathway_counts(...) output")
    labels = [str(g) for g in counts.index]
    panels = [
        ("pct_assessed", "Assessed\n% of referred", "%"),
        ("pct_treated", "Treated\n% of assessed", "%"),
    ]
    if per_1000:
        panels.append(("treated_per_1000_referred", "Treated\nper 1,000 referred", "per 1,000"))
    fig = Figure(figsize=(8 if not per_1000 else 10, 5))
    axes = fig.subplots(1, len(panels), sharey=True)
    colours = group_colours(labels)
    y = np.arange(len(labels))
    for ax, (column, title, unit) in zip(np.atleast_1d(axes), panels):
        values = pd.to_numeric(counts[column], errors="coerce").astype(float).to_numpy()
        ax.barh(y, np.nan_to_num(values, nan=0.0), color=colours, edgecolor="black", linewidth=0.5)
        upper = 1000.0 if unit == "per 1,000" else 100.0
        ax.set_xlim(0, upper * 1.12)
        for yi, v in zip(y, values):
            text = "suppressed" if np.isnan(v) else f"{v:.0f}" if unit == "per 1,000" else f"{v:.1f}"
            ax.text(
                (0 if np.isnan(v) else v) + upper * 0.01, yi, text, va="center", fontsize=FONT["legend"]
            )
        ax.set_title(title, fontsize=FONT["label"])
        ax.set_xlabel(unit, fontsize=FONT["tick"])
        ax.tick_params(labelsize=FONT["tick"])
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(y, labels=labels)
    first.set_ylim(len(labels) - 0.5, -0.5)
    fig.suptitle("The IAPT pathway by ethnic group", fontsize=FONT["title"])
    fig.tight_layout()
    return fig


def _method_column(frame: pd.DataFrame) -> str:
    for c in ("method", "analysis"):
        if c in frame.columns:
            return c
    raise ValueError("estimates need a 'method' (or 'analysis') column")


def compare_methods_plot(
    frame_of_estimates_by_method: pd.DataFrame,
    truth=None,
    stage: str = "treatment",
    title: str | None = None,
) -> Figure:
    """Estimates (point and 95% CI) for each non-reference group by missing-data method, dodged.

    ``frame_of_estimates_by_method``: columns ``method`` (or ``analysis``; complete_case, mar_mi,
    weighted_mi ...), ``ethnicity``, ``estimate``, ``ci_low``, ``ci_high``; one row per method and group
    (filter to one stage, model and outcome level first). ``truth``: the true values, a mapping or Series
    ethnicity -> value, or a frame with ``ethnicity`` and ``estimate`` (or ``truth``); drawn as a vertical
    black tick per group, labelled "True value". One ``errorbar`` container per method.
    """
    est = frame_of_estimates_by_method
    mcol = _method_column(est)
    est = est[est["ethnicity"] != study.REFERENCE_GROUP]
    if est.duplicated([mcol, "ethnicity"]).any():
        raise ValueError("more than one estimate per method and group: filter to one stage, model and level")
    groups = [g for g in study.GROUPS if g != study.REFERENCE_GROUP]
    groups += [g for g in est["ethnicity"].unique() if g not in groups]
    ypos = {g: i for i, g in enumerate(groups)}
    methods = [m for m in ANALYSIS_MARKERS if m in set(est[mcol])]
    methods += [m for m in est[mcol].unique() if m not in methods]
    fig = Figure(figsize=(8, 6))
    ax = fig.add_subplot()
    offsets = offsets_for(len(methods), width=0.6)
    values: list[float] = []
    extras = iter(FALLBACK_MARKERS)
    markers = {m: ANALYSIS_MARKERS.get(m) or next(extras, "o") for m in methods}
    extra_colours = iter(OKABE_ITO[k] for k in FALLBACK_COLOURS)
    colours = {m: METHOD_COLOURS.get(m) or next(extra_colours, OKABE_ITO["grey"]) for m in methods}
    for k, method in enumerate(methods):
        rows = est[est[mcol] == method]
        x = rows["estimate"].to_numpy(dtype=float)
        lo = rows["ci_low"].to_numpy(dtype=float)
        hi = rows["ci_high"].to_numpy(dtype=float)
        y = np.array([ypos[g] for g in rows["ethnicity"]], dtype=float) + offsets[k]
        ax.errorbar(
            x,
            y,
            xerr=np.vstack([np.nan_to_num(x - lo), np.nan_to_num(hi - x)]),
            fmt=markers[method],
            color=colours[method],
            markersize=8,
            markeredgecolor="white",
            markeredgewidth=0.8,
            elinewidth=1.4,
            capsize=3,
            linestyle="none",
            label=METHOD_LABELS.get(method, method),
            gid=f"method:{method}",
            zorder=3,
        )
        values.extend([*x, *lo, *hi])
    if truth is not None:
        tv = _truth_series(truth)
        tv = tv[tv.index.isin(groups)]
        ax.plot(
            tv.to_numpy(dtype=float),
            [ypos[g] for g in tv.index],
            marker="|",
            markersize=30,
            markeredgewidth=2,
            color="black",
            alpha=0.7,
            linestyle="none",
            label="True value",
            gid="truth",
            zorder=2,  # behind the markers, so a point on the truth stays visible
        )
        values.extend(tv.to_numpy(dtype=float))
    ratio_axis(ax, values, ratio_label(stage))
    ax.set_yticks(range(len(groups)), labels=groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or f"Missing ethnicity: estimates by method (vs {study.REFERENCE_GROUP})", fontsize=FONT["title"])
    ax.legend(fontsize=FONT["legend"], frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.tight_layout()
    return fig


def _truth_series(truth) -> pd.Series:
    if isinstance(truth, pd.DataFrame):
        value = "truth" if "truth" in truth.columns else "estimate"
        return truth.set_index("ethnicity")[value].astype(float)
    if isinstance(truth, pd.Series):
        return truth.astype(float)
    if isinstance(truth, Mapping):
        return pd.Series(dict(truth), dtype=float)
    raise TypeError("truth must be a mapping, Series or DataFrame")


def simulation_plot(
    sim_summary: pd.DataFrame,
    bias_label: str = "Bias (log odds ratio)",
    nominal: float = 0.95,
    n_mcse: float = 2.0,
) -> Figure:
    """Bias and CI coverage by method (colour/marker) and missingness mechanism (columns of panels).

    ``sim_summary`` columns: ``method``, ``mechanism``, ``ethnicity``, ``bias``, ``coverage`` (a proportion,
    or a percentage if any value exceeds 1.5), optionally ``emp_se``. Top row: bias with a line at 0.
    Bottom row: coverage with a line at the nominal level. In every panel, one line of points (``Line2D``,
    markers only) per method, including the ``full_data`` benchmark when present (grey diamonds).

    Monte Carlo error bars (``n_mcse`` x MCSE either side, default +/- 2 MCSE) are drawn when the summary has
    the columns: ``bias_mcse`` for bias; for coverage ``coverage_mcse_nominal`` (the MCSE at the nominal
    level, which does not collapse to 0 when every CI covers) if present, else ``coverage_mcse``; MCSEs in
    the same units as the metric; coverage bars are clipped to the possible range. Each
    method's points and bars form one ``ErrorbarContainer`` labelled with the method.
    """
    needed = ["method", "mechanism", "ethnicity", "bias", "coverage"]
    missing = [c for c in needed if c not in sim_summary.columns]
    if missing:
        raise ValueError(f"sim_summary lacks columns {missing}")
    data = sim_summary[sim_summary["ethnicity"] != study.REFERENCE_GROUP]
    order = ["MCAR", "MAR", "MNAR"]
    mechanisms = [m for m in order if m in set(data["mechanism"])]
    mechanisms += [m for m in data["mechanism"].unique() if m not in mechanisms]
    # the full-data benchmark (not a real option) first, in grey, then the missing-data methods
    markers = {"full_data": "D", **ANALYSIS_MARKERS}
    colours = {"full_data": OKABE_ITO["grey"], **METHOD_COLOURS}
    labels = {"full_data": "Full data (benchmark)", **METHOD_LABELS}
    methods = [m for m in markers if m in set(data["method"])]
    methods += [m for m in data["method"].unique() if m not in methods]
    groups = [g for g in study.GROUPS if g in set(data["ethnicity"])]
    groups += [g for g in data["ethnicity"].unique() if g not in groups]
    ypos = {g: i for i, g in enumerate(groups)}
    percent = float(pd.to_numeric(data["coverage"], errors="coerce").max()) > 1.5
    nominal_line = nominal * 100 if percent else nominal
    cov_mcse_col = next((c for c in ("coverage_mcse_nominal", "coverage_mcse") if c in data.columns), None)
    mcse_cols = {"bias": "bias_mcse" if "bias_mcse" in data.columns else None, "coverage": cov_mcse_col}
    bars = any(mcse_cols.values())

    fig = Figure(figsize=(max(8, 3.2 * len(mechanisms)), 6.5))
    axes = np.array(fig.subplots(2, len(mechanisms), sharey=True, sharex="row", squeeze=False))
    offsets = offsets_for(len(methods), width=0.6 if len(methods) > 3 else 0.45)
    for j, mech in enumerate(mechanisms):
        for i, (metric, ref_line, xlabel) in enumerate(
            [("bias", 0.0, bias_label), ("coverage", nominal_line, "Coverage of 95% CI" + (" (%)" if percent else ""))]
        ):
            ax = axes[i, j]
            for k, method in enumerate(methods):
                rows = data[(data["mechanism"] == mech) & (data["method"] == method)]
                y = np.array([ypos[g] for g in rows["ethnicity"]], dtype=float) + offsets[k]
                x = rows[metric].to_numpy(dtype=float)
                col = mcse_cols[metric]
                xerr = None
                if col is not None:
                    xerr = n_mcse * rows[col].to_numpy(dtype=float)  # same units as the metric
                    if metric == "coverage":  # a coverage lies in [0, 1] (or [0, 100]): clip the bars there
                        top = 100.0 if percent else 1.0
                        xerr = np.vstack([np.clip(np.minimum(xerr, x), 0, None),
                                          np.clip(np.minimum(xerr, top - x), 0, None)])
                container = ax.errorbar(
                    x,
                    y,
                    xerr=xerr,
                    marker=markers.get(method, "o"),
                    color=colours.get(method, colour_for(method, METHOD_COLOURS, k)),
                    linestyle="none",
                    markersize=5,
                    elinewidth=0.9,
                    capsize=0,
                    label=labels.get(method, method),
                )
                container.lines[0].set_gid(f"{metric}:{mech}:{method}")
            ax.axvline(ref_line, color="#444444", linestyle="--", linewidth=1, zorder=0, gid=f"ref:{metric}")
            ax.set_xlabel(xlabel, fontsize=FONT["tick"])
            ax.tick_params(labelsize=FONT["tick"])
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            if i == 0:
                ax.set_title(mech, fontsize=FONT["label"])
        axes[0, j].set_yticks(range(len(groups)), labels=groups)
        axes[0, j].set_ylim(len(groups) - 0.5, -0.5)
    handles, legend_labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="lower center", ncol=len(methods), fontsize=FONT["legend"], frameon=False)
    title = "Simulation: bias and coverage by method and missingness mechanism"
    if bars:
        title += f" (bars: ±{n_mcse:g} Monte Carlo SE)"
    fig.suptitle(title, fontsize=FONT["title"])
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def referral_rate_plot(rates: pd.DataFrame, title: str | None = None) -> Figure:
    """Referral rates per resident by ethnic group (left) and rate ratios vs White British with 95% CIs
    (right, log scale), one colour per borough, from ``helpers.population.referral_rates``.

    One ``barh`` group per borough in the left panel and one ``errorbar`` container per borough in the right.
    """
    needed = ["borough", "ethnicity", "rate", "rate_ratio", "rr_ci_low", "rr_ci_high"]
    missing = [c for c in needed if c not in rates.columns]
    if missing:
        raise ValueError(f"rates lacks columns {missing}: pass helpers.population.referral_rates(...) output")
    boroughs = list(dict.fromkeys(rates["borough"]))
    colours = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "reddish_purple", "vermillion")]
    groups = list(study.GROUPS)
    ypos = {g: i for i, g in enumerate(groups)}
    fig = Figure(figsize=(10, 5))
    ax_rate, ax_rr = fig.subplots(1, 2, sharey=True)
    offsets = offsets_for(len(boroughs), width=0.6)
    height = 0.8 / max(len(boroughs), 1)
    values: list[float] = []
    for k, b in enumerate(boroughs):
        rows = rates[rates["borough"] == b].set_index("ethnicity").reindex(groups)
        y = np.arange(len(groups)) + offsets[k]
        colour = colours[k % len(colours)]
        ax_rate.barh(y, rows["rate"].astype(float).fillna(0).to_numpy(), height=height, color=colour,
                     edgecolor="black", linewidth=0.4, label=b, gid=f"rate:{b}")
        other = rows.drop(index=study.REFERENCE_GROUP)
        x = other["rate_ratio"].to_numpy(dtype=float)
        lo = other["rr_ci_low"].to_numpy(dtype=float)
        hi = other["rr_ci_high"].to_numpy(dtype=float)
        yy = np.array([ypos[g] for g in other.index], dtype=float) + offsets[k]
        ax_rr.errorbar(x, yy, xerr=np.vstack([np.nan_to_num(x - lo), np.nan_to_num(hi - x)]), fmt="o",
                       color=colour, capsize=2, linestyle="none", label=b, gid=f"rr:{b}")
        values.extend([*x, *lo, *hi])
    ax_rr.plot([1.0], [ypos[study.REFERENCE_GROUP]], marker="o", color="black", linestyle="none", gid="reference")
    ax_rr.annotate("reference", xy=(1.0, ypos[study.REFERENCE_GROUP]), xytext=(8, 0), textcoords="offset points",
                   va="center", fontsize=FONT["tick"])
    ratio_axis(ax_rr, values, "Rate ratio vs White British (log scale)")
    ax_rate.set_xlabel("Referrals per 1,000 residents", fontsize=FONT["label"])
    ax_rate.set_yticks(range(len(groups)), labels=groups)
    ax_rate.set_ylim(len(groups) - 0.5, -0.5)
    for ax in (ax_rate, ax_rr):
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=FONT["tick"])
    ax_rate.legend(fontsize=FONT["legend"], frameon=False, loc="best")
    fig.suptitle(title or "Referrals relative to 2011 census residents (illustration on synthetic data)",
                 fontsize=FONT["title"])
    fig.tight_layout()
    return fig


def pathway_gap_plot(gaps: pd.DataFrame, title: str | None = None) -> Figure:
    """Shortfall in people treated per 1,000 referred vs White British, split into those lost at assessment
    and those lost at treatment, from ``helpers.reporting.pathway_gaps``. Two ``barh`` containers (stacked
    by sign: negative values, more than at White British rates, extend left), one bar per non-reference group.
    """
    needed = ["lost_at_assessment", "lost_at_treatment", "treated_shortfall"]
    missing = [c for c in needed if c not in gaps.columns]
    if missing:
        raise ValueError(f"gaps lacks columns {missing}: pass helpers.reporting.pathway_gaps(...) output")
    rows = gaps.drop(index=study.REFERENCE_GROUP, errors="ignore")
    labels = [str(g) for g in rows.index]
    y = np.arange(len(labels))
    a = rows["lost_at_assessment"].to_numpy(dtype=float)
    t = rows["lost_at_treatment"].to_numpy(dtype=float)
    # stack segments of the same sign outward from 0
    left_t = np.where(np.sign(t) == np.sign(a), a, 0.0)
    fig = Figure(figsize=FIGSIZE)
    ax = fig.add_subplot()
    ax.barh(y, np.nan_to_num(a), color=OKABE_ITO["sky_blue"], edgecolor="black", linewidth=0.4,
            label="Not assessed (would have been treated at White British rates)", gid="lost_at_assessment")
    ax.barh(y, np.nan_to_num(t), left=np.nan_to_num(left_t), color=OKABE_ITO["vermillion"], edgecolor="black",
            linewidth=0.4, label="Assessed but not treated", gid="lost_at_treatment")
    total = rows["treated_shortfall"].to_numpy(dtype=float)
    for yi, v in zip(y, total):
        if np.isfinite(v):
            ax.text(v + (2 if v >= 0 else -2), yi, f"{v:.0f}", va="center", ha="left" if v >= 0 else "right",
                    fontsize=FONT["legend"])
    ax.axvline(0, color="#444444", linewidth=1)
    span = np.nanmax(np.abs(np.concatenate([total, a, t, a + t]))) if len(total) else 1.0
    ax.set_xlim(min(-span * 0.25, np.nanmin(np.concatenate([a, t, total, [0]])) * 1.3), span * 1.3)
    ax.set_yticks(y, labels=labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel("Fewer people treated per 1,000 referred than at White British rates", fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or "Where the treatment gap opens", fontsize=FONT["title"])
    handles, texts = ax.get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=2, fontsize=FONT["legend"], frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
