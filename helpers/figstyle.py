"""The look every figure shares: one colour-blind-safe palette (Okabe & Ito, "Color Universal Design", 2008),
colours and markers per model and missing-data method, font sizes, the log-scaled ratio axis, and ``savefig``,
which writes a PNG whose bytes do not depend on the matplotlib version string.

Named once here, so a group, a model or a method has the same colour in every figure of every notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from helpers import study
from helpers.tables import TOTAL_LABEL

# Okabe-Ito colours (plus its grey), named once.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

PALETTE: dict[str, str] = {
    "White British": OKABE_ITO["black"],
    "Black Caribbean": OKABE_ITO["orange"],
    "Black African": OKABE_ITO["sky_blue"],
    "Black Other": OKABE_ITO["bluish_green"],
    "Asian": OKABE_ITO["yellow"],
    "Mixed": OKABE_ITO["blue"],
    "White Other": OKABE_ITO["vermillion"],
    "Other": OKABE_ITO["reddish_purple"],
    study.MISSING_LABEL: OKABE_ITO["grey"],
}
assert set(study.GROUPS) <= set(PALETTE), "every study group needs a colour"
TOTAL_COLOUR = "#555555"

MODEL_COLOURS: dict[str, str] = {
    "unadjusted": OKABE_ITO["orange"],
    "adjusted_age_gender_year": OKABE_ITO["sky_blue"],
    "adjusted_full": OKABE_ITO["blue"],
}
METHOD_COLOURS: dict[str, str] = {
    "complete_case": OKABE_ITO["vermillion"],
    "mar_mi": OKABE_ITO["bluish_green"],
    "weighted_mi": OKABE_ITO["blue"],
}
ANALYSIS_MARKERS: dict[str, str] = {"complete_case": "o", "mar_mi": "^", "weighted_mi": "s"}
# Markers for other methods (e.g. one method under two margins), in order of appearance: each its own shape.
FALLBACK_MARKERS: tuple[str, ...] = ("D", "v", "P", "X")
FALLBACK_COLOURS: tuple[str, ...] = ("reddish_purple", "orange", "black", "grey")  # no yellow: too pale for points
METHOD_LABELS: dict[str, str] = {
    "complete_case": "Complete case",
    "mar_mi": "MI assuming MAR",
    "weighted_mi": "Weighted (population-calibrated) MI",
}
PUBLISHED_LABEL = "Harwood et al. (2021), Table 4"

FIGSIZE = (8, 5)
RATIO_TICKS = [0.5, 0.7, 1, 1.4, 2]
FONT = {"title": 12, "label": 11, "tick": 10, "legend": 9}


def colour_for(name: str, mapping: Mapping[str, str], fallback_index: int = 0) -> str:
    """The colour ``mapping`` gives ``name``, else one of the palette's spare colours."""
    if name in mapping:
        return mapping[name]
    extras = [OKABE_ITO[k] for k in ("reddish_purple", "yellow", "grey", "black")]
    return extras[fallback_index % len(extras)]


def ratio_axis(ax, values: Sequence[float], label: str) -> None:
    """Log-scaled x axis with ticks at 0.5, 0.7, 1, 1.4, 2 (more if the data go beyond), a line at 1."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
    lo = min(0.5, finite.min() / 1.08) if finite.size else 0.5
    hi = max(2.0, finite.max() * 1.08) if finite.size else 2.0
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.05, hi * 1.05)
    ticks = list(RATIO_TICKS)
    extra = [0.25, 0.35, 2.8, 4.0]
    ticks = sorted(set(ticks + [t for t in extra if lo <= t <= hi]))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.axvline(1.0, color="#444444", linewidth=1, linestyle="--", zorder=0)
    ax.set_xlabel(label, fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])


def ratio_label(stage: str) -> str:
    """The ratio axis label of a stage: RRR for the referral source, OR for the binary stages."""
    return "Relative risk ratio (log scale)" if stage == "referral_source" else "Odds ratio (log scale)"


def offsets_for(k: int, width: float = 0.6) -> np.ndarray:
    """Vertical offsets that dodge ``k`` series within ``width`` (0 for one series)."""
    if k <= 1:
        return np.zeros(max(k, 1))
    return np.linspace(-width / 2, width / 2, k)


def group_colours(labels: Sequence[str]) -> list[str]:
    """One colour per group label (the total row in its own grey)."""
    return [TOTAL_COLOUR if g == TOTAL_LABEL else PALETTE.get(g, OKABE_ITO["grey"]) for g in labels]


def savefig(fig: Figure, path, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created). The PNG carries no "Software" (matplotlib
    version) metadata, so the same figure gives the same bytes across runs and matplotlib versions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})
    return path
