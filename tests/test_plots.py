"""Tests for helpers.plots, the one name notebooks call figures by: every ``plots.NAME`` a notebook calls is
there, and is the function of the module that does that job."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import figstyle, plots, report_plots, teaching_plots

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_every_figure_a_notebook_calls_is_on_the_face() -> None:
    called = {name for path in NOTEBOOKS.glob("[0-9][0-9]_*.py")
              for name in re.findall(r"\bplots\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8"))}
    assert {"forest_plot", "savefig", "tilt_plot", "pathway_diagram"} <= called  # the reader finds calls
    assert sorted(called - set(plots.__all__)) == []
    assert all(hasattr(plots, name) for name in plots.__all__)


def test_the_face_names_each_module_function() -> None:
    assert plots.forest_plot is report_plots.forest_plot
    assert plots.referral_rate_plot is report_plots.referral_rate_plot
    assert plots.tilt_plot is teaching_plots.tilt_plot
    assert plots.savefig is figstyle.savefig
