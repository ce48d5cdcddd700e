"""Every figure of the notebooks, under one name: ``plots.forest_plot(...)``, ``plots.savefig(fig, path)``.

The figures live in modules by job: ``helpers.report_plots`` (the study's results), ``helpers.teaching_plots``
(figures that exist for a lesson) and ``helpers.figstyle`` (the palette, fonts, the ratio axis, ``savefig``).
This face keeps the one name every notebook calls them by (``from helpers import plots``), as
``pydesrap_mms``'s ``simulation/__init__.py`` does for its package.
"""

from __future__ import annotations

from helpers.figstyle import savefig
from helpers.report_plots import (
    compare_methods_plot,
    forest_plot,
    pathway_funnel,
    pathway_gap_plot,
    referral_rate_plot,
    simulation_plot,
)
from helpers.teaching_plots import estimand_plot, pathway_diagram, tilt_plot

__all__ = [
    "compare_methods_plot",
    "estimand_plot",
    "forest_plot",
    "pathway_diagram",
    "pathway_funnel",
    "pathway_gap_plot",
    "referral_rate_plot",
    "savefig",
    "simulation_plot",
    "tilt_plot",
]
