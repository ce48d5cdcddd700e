"""Figures that exist for a lesson, not for the paper: the pathway as boxes and arrows (01), how a calibration
tilt moves a group's covariate mix (02), and how each missingness world changes the estimand (12).

Like every figure here they take data and return a ``matplotlib.figure.Figure``; colours and fonts come from
``helpers.figstyle``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from helpers import study
from helpers.figstyle import FONT, OKABE_ITO, PALETTE, offsets_for


def pathway_diagram() -> Figure:
    """The IAPT pathway the paper studies, as boxes and arrows (no data).

    Referral sources (``study.SOURCES``) lead to referral; referral -> assessment -> treatment (stepped care:
    low- or high-intensity therapy). Under each step: the paper's question and its denominator, from
    ``study.STAGE_SPECS``. Exits (not assessed; assessed, not treated) are drawn in grey.
    """
    fig = Figure(figsize=(10, 5.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def box(x, y, w, h, text, colour, fontsize=FONT["label"], text_colour="black"):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    facecolor=colour, edgecolor="black", linewidth=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=text_colour)

    def arrow(x0, y0, x1, y1, colour="black"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14,
                                     color=colour, linewidth=1.2))

    main_y, step_x = 2.9, [1.6, 5.0, 8.4]
    # referral sources along the top, feeding the referral box
    source_x = np.linspace(0.45, 2.75, len(study.SOURCES))
    for x, s in zip(source_x, study.SOURCES):
        box(x, 4.7, 0.64, 0.34, s, "#f2f2f2", fontsize=FONT["legend"] - 1)
        arrow(x, 4.5, step_x[0], main_y + 0.45)
    ax.text(step_x[0], 5.12, "Source of referral", ha="center", va="center", fontsize=FONT["legend"])
    labels = ["Referred", "Assessed", "Treated\n(stepped care: low or\nhigh intensity)"]
    colours = [OKABE_ITO["sky_blue"], OKABE_ITO["bluish_green"], OKABE_ITO["blue"]]
    for x, label, colour in zip(step_x, labels, colours):
        box(x, main_y, 2.1, 0.8, label, colour, text_colour="black" if colour != OKABE_ITO["blue"] else "white")
    for x0, x1 in zip(step_x[:-1], step_x[1:]):
        arrow(x0 + 1.1, main_y, x1 - 1.1, main_y)
    # exits
    for x, label in [((step_x[0] + step_x[1]) / 2, "Not assessed"),
                     ((step_x[1] + step_x[2]) / 2, "Assessed,\nnot treated")]:
        box(x, 1.75, 1.5, 0.5, label, "#e6e6e6", fontsize=FONT["legend"])
        arrow(x, main_y, x, 2.02, colour=OKABE_ITO["grey"])
    # the paper's three questions, each with its denominator
    questions = [
        (step_x[0], "referral_source", "1. Which source?\nmultinomial model\namong all referrals"),
        (step_x[1], "assessment", "2. Assessed?\nlogistic model\namong all referrals"),
        (step_x[2], "treatment", "3. Treated?\nlogistic model\namong the assessed"),
    ]
    for x, stage, text in questions:
        assert stage in study.STAGE_SPECS
        ax.text(x, 0.65, text, ha="center", va="center", fontsize=FONT["legend"],
                bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor=OKABE_ITO["grey"]))
    ax.text(5.0, 0.05, f"Each ethnic group compared with {study.REFERENCE_GROUP} at every stage",
            ha="center", va="bottom", fontsize=FONT["legend"], style="italic")
    return fig


def tilt_plot(effect: pd.Series, base_mix: pd.Series, tilt: float, group: str, covariate: str = "borough") -> Figure:
    """How a calibration tilt shifts one group's covariate mix, in three panels a first-timer reads left to right.

    ``effect``: the treatment log-odds of each level of the covariate (reference 0); ``base_mix``: the base
    shares (White British's, tilt 0), same index; ``tilt``: the group's tilt. Panel 1 shows the effects, panel 2
    the weight each level gets, exp(tilt x effect), panel 3 the base mix beside the re-weighted, rescaled mix.
    Why: the group's referrals move towards (positive tilt) or away from (negative) the levels where treatment is
    more likely, so its crude treatment rate moves while its fully adjusted OR stays the planted one.
    """
    if not effect.index.equals(base_mix.index):
        raise ValueError("effect and base_mix need the same levels in the same order")
    levels = [str(v) for v in effect.index]
    x = np.arange(len(levels))
    weight = np.exp(tilt * effect.to_numpy(dtype=float))
    tilted = base_mix.to_numpy(dtype=float) * weight
    tilted = tilted / tilted.sum()
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.bar(x, effect.to_numpy(dtype=float), color=OKABE_ITO["grey"], gid="effect")
    ax.axhline(0, color="#444444", linewidth=1)
    ax.set_title(f"1. Treatment log-odds by {covariate}\n(assumed; {levels[0]} = 0)", fontsize=FONT["label"])
    ax.set_ylabel("log-odds of treatment", fontsize=FONT["label"])
    ax = axes[1]
    ax.bar(x, weight, color=OKABE_ITO["orange"], gid="weight")
    ax.axhline(1, color="#444444", linewidth=1, linestyle="--")
    for xi, w in zip(x, weight):
        ax.annotate(f"x{w:.2f}", (xi, w), ha="center", va="bottom", fontsize=FONT["legend"])
    ax.set_title(f"2. Weight exp(tilt x log-odds)\n{group}: tilt {tilt:+.2f}", fontsize=FONT["label"])
    ax.set_ylabel("weight on the base share", fontsize=FONT["label"])
    ax.set_ylim(0, max(1.0, float(weight.max())) * 1.18)
    ax = axes[2]
    ax.bar(x - 0.2, 100 * base_mix.to_numpy(dtype=float), width=0.4, color=PALETTE[study.REFERENCE_GROUP],
           label=f"{study.REFERENCE_GROUP} (base, tilt 0)", gid="base")
    ax.bar(x + 0.2, 100 * tilted, width=0.4, color=PALETTE.get(group, OKABE_ITO["sky_blue"]),
           label=f"{group} (weighted, rescaled)", gid="tilted")
    ax.set_title(f"3. Share of referrals in each {covariate}", fontsize=FONT["label"])
    ax.set_ylabel("% of the group's referrals", fontsize=FONT["label"])
    ax.set_ylim(0, 100 * max(float(base_mix.max()), float(tilted.max())) * 1.4)  # room for the legend
    ax.legend(fontsize=FONT["legend"], frameon=False, loc="upper left")
    for ax in axes:
        ax.set_xticks(x, labels=levels, rotation=30, ha="right")
        ax.tick_params(labelsize=FONT["tick"])
    fig.tight_layout()
    return fig


def estimand_plot(frame: pd.DataFrame) -> Figure:
    """Estimand versus missingness mechanism: each mechanism adds different missing records, so a different truth.

    ``frame``: ``helpers.simulation.estimand_by_mechanism`` output (columns mechanism, ethnicity,
    missing_per_100_recorded, truth_or, recorded_or). Left: how many records with missing ethnicity each world
    adds per 100 recorded ones, by group (the recorded part is the same in every world). Right: the true OR of
    each world beside the OR of the recorded part alone.
    """
    mechanisms = list(dict.fromkeys(frame["mechanism"]))
    groups = [g for g in study.GROUPS if g in set(frame["ethnicity"])]
    ypos = {g: i for i, g in enumerate(groups)}
    markers = ["o", "^", "s", "D"]
    colours = [OKABE_ITO[k] for k in ("sky_blue", "orange", "vermillion", "reddish_purple")]
    fig = Figure(figsize=(11, 6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    offsets = offsets_for(len(mechanisms), width=0.6)
    height = 0.8 / max(len(mechanisms), 1)
    for k, mech in enumerate(mechanisms):
        rows = frame[frame["mechanism"] == mech].set_index("ethnicity").reindex(groups)
        y = np.array([ypos[g] for g in groups], dtype=float) + offsets[k]
        left.barh(y, rows["missing_per_100_recorded"].to_numpy(dtype=float), height=height,
                  color=colours[k % len(colours)], label=mech, gid=f"added:{mech}")
        right.plot(rows["truth_or"].to_numpy(dtype=float), y, marker=markers[k % len(markers)], markersize=9,
                   linestyle="none", color=colours[k % len(colours)], markeredgecolor="black", zorder=3,
                   label=f"truth: {mech} world", gid=f"truth:{mech}")
    recorded = frame.drop_duplicates("ethnicity").set_index("ethnicity").reindex(groups)["recorded_or"]
    right.plot(recorded.to_numpy(dtype=float), list(range(len(groups))), marker="|", markersize=34,
               markeredgewidth=2, alpha=0.7, linestyle="none", color="black", zorder=1,
               label="recorded referrals only (the same in every world)", gid="recorded")
    left.set_yticks(range(len(groups)), labels=groups)
    left.set_ylim(len(groups) - 0.5, -0.5)
    left.set_xlabel("missing records added per 100 recorded\n(assessed referrals, expected counts)",
                    fontsize=FONT["label"])
    left.set_title("1. What each world adds to the same recorded referrals", fontsize=FONT["label"])
    left.legend(fontsize=FONT["legend"], frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    # A linear axis zoomed on the values: the differences between worlds are a few hundredths.
    values = np.array([*frame["truth_or"], *frame["recorded_or"]], dtype=float)
    pad = 0.08 * (values.max() - values.min()) + 0.005
    right.set_xlim(values.min() - pad, values.max() + pad)
    right.set_xlabel("Odds ratio of treatment among the assessed\n(fully adjusted, vs White British)",
                     fontsize=FONT["label"])
    right.set_yticks(range(len(groups)), labels=groups)
    right.set_ylim(len(groups) - 0.5, -0.5)
    right.set_title("2. So each world has its own true OR", fontsize=FONT["label"])
    right.grid(axis="x", color="#dddddd", linewidth=0.6)
    right.legend(fontsize=FONT["legend"], frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    for ax in (left, right):
        ax.tick_params(labelsize=FONT["tick"])
    fig.tight_layout()
    return fig
