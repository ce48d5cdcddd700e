"""Tests for helpers.figstyle: one distinct colour per group, model and method; PNG bytes that do not drift."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import figstyle as S  # noqa: E402
from helpers import study  # noqa: E402


def test_palette_covers_groups_and_is_distinct():
    assert set(study.GROUPS) | {study.MISSING_LABEL} <= set(S.PALETTE)
    colours = [to_rgb(c) for c in S.PALETTE.values()]
    assert len(set(colours)) == len(colours)
    assert set(S.MODEL_COLOURS) == set(study.MODELS)
    assert {"complete_case", "weighted_mi", "mar_mi"} <= set(S.ANALYSIS_MARKERS)


def a_figure() -> Figure:
    """A small figure with text, a line and the ratio axis (what every saved figure has)."""
    fig = Figure(figsize=S.FIGSIZE)
    ax = fig.add_subplot()
    ax.plot([0.7, 1.0, 1.4], [0, 1, 2], marker="o", color=S.PALETTE[study.REFERENCE_GROUP])
    S.ratio_axis(ax, [0.7, 1.4], S.ratio_label("treatment"))
    ax.set_title("Treatment", fontsize=S.FONT["title"])
    return fig


def test_savefig_is_deterministic(tmp_path):
    fig = a_figure()
    a = S.savefig(fig, tmp_path / "sub" / "a.png")
    b = S.savefig(fig, tmp_path / "b.png")
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()
    assert b"matplotlib" not in a.read_bytes()
    c = S.savefig(a_figure(), tmp_path / "c.png")
    assert c.read_bytes() == a.read_bytes()


def test_ratio_axis_is_log_with_the_papers_ticks_and_a_line_at_one():
    ax = a_figure().axes[0]
    assert ax.get_xscale() == "log"
    assert [t for t in ax.get_xticks()] == [0.5, 0.7, 1, 1.4, 2]
    assert ax.get_xlabel() == "Odds ratio (log scale)" and S.ratio_label("referral_source").startswith("Relative")
    assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.get_lines())


def test_offsets_dodge_series_within_the_width():
    assert list(S.offsets_for(1)) == [0.0]
    assert list(S.offsets_for(3, width=0.6)) == [-0.3, 0.0, 0.3]
    assert S.colour_for("adjusted_full", S.MODEL_COLOURS) == S.OKABE_ITO["blue"]
    assert S.colour_for("other", S.MODEL_COLOURS, 1) == S.OKABE_ITO["yellow"]  # a spare colour, by position
