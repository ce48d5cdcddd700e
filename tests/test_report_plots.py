"""Tests for helpers.report_plots: each figure of the results returns a Figure with the expected artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import figstyle as S  # noqa: E402
from helpers import report_plots as RP  # noqa: E402
from helpers import study  # noqa: E402
from helpers import tables as T  # noqa: E402

NON_REF = [g for g in study.GROUPS if g != study.REFERENCE_GROUP]


def tidy_estimates(stage="treatment", levels=("",), analysis="complete_case", shift=1.0) -> pd.DataFrame:
    rows = []
    for level in levels:
        for k, model in enumerate(study.MODELS):
            rows.append(dict(stage=stage, outcome_level=level, model=model, analysis=analysis,
                             ethnicity=study.REFERENCE_GROUP, estimate=1.0, ci_low=np.nan, ci_high=np.nan, n=100))
            for i, g in enumerate(NON_REF):
                est = (0.7 + 0.03 * i + 0.01 * k) * shift
                rows.append(dict(stage=stage, outcome_level=level, model=model, analysis=analysis, ethnicity=g,
                                 estimate=est, ci_low=est * 0.9, ci_high=est * 1.1, n=100))
    return pd.DataFrame(rows)


def vertical_lines_at(ax, x: float) -> list:
    out = []
    for line in ax.get_lines():
        xd = np.asarray(line.get_xdata(), dtype=float)
        if xd.size == 2 and np.allclose(xd, x):
            out.append(line)
    return out


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_forest_plot_basic():
    fig = RP.forest_plot(tidy_estimates(), "treatment")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(vertical_lines_at(ax, 1.0)) == 1
    assert len(errorbars(ax)) == len(study.MODELS)
    for c in errorbars(ax):
        assert len(c.lines[0].get_xdata()) == len(NON_REF)
    assert ax.get_xlabel() == "Odds ratio (log scale)"
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert {0.5, 0.7, 1, 1.4, 2} <= set(np.round(ticks, 2))
    assert [t.get_text() for t in ax.get_yticklabels()] == study.GROUPS
    assert any(t.get_text() == "reference" for t in ax.texts)
    assert fig.get_size_inches().tolist() == [8, 5]


def test_forest_plot_models_subset_and_published():
    pub = tidy_estimates(shift=1.02)
    fig = RP.forest_plot(tidy_estimates(), "treatment", models=["unadjusted", "adjusted_full"], published=pub)
    ax = fig.axes[0]
    bars = errorbars(ax)
    assert len(bars) == 4  # ours + paper for each of the two models
    hollow = [c for c in bars if c.lines[0].get_markerfacecolor() in ("white", (1, 1, 1, 1))]
    assert len(hollow) == 2
    legend_texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert S.PUBLISHED_LABEL in legend_texts
    assert "Harwood et al. (2021), Table 4" in legend_texts


def test_forest_plot_accepts_table4_as_printed():
    table4 = pd.DataFrame({"analysis": "complete_case", "ethnicity": study.GROUPS, "n": 100, "pct_treated": 70.0,
                           "model": "unadjusted", "or": [1.0] + [0.8] * 7, "ci_low": [1.0] + [0.7] * 7,
                           "ci_high": [1.0] + [0.9] * 7})
    fig = RP.forest_plot(tidy_estimates(), "treatment", models=["unadjusted"], published=table4)
    assert len(errorbars(fig.axes[0])) == 2


def test_forest_plot_referral_source_needs_level_and_says_rrr():
    est = tidy_estimates(stage="referral_source", levels=("Self", "Community", "Other"))
    with pytest.raises(ValueError, match="outcome_level"):
        RP.forest_plot(est, "referral_source")
    fig = RP.forest_plot(est, "referral_source", outcome_level="Self")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Relative risk ratio (log scale)"
    assert len(errorbars(ax)) == 3
    assert all(len(c.lines[0].get_xdata()) == len(NON_REF) for c in errorbars(ax))


def test_pathway_funnel():
    counts = pd.DataFrame(
        {"referred": [100] * 9 + [900], "assessed": [50] * 9 + [450], "treated": [25] * 9 + [225]},
        index=pd.Index([*study.GROUPS, study.MISSING_LABEL, "Total"], name="ethnicity"),
    )
    counts["pct_assessed"] = 50.0
    counts["pct_treated"] = 50.0
    counts["treated_per_1000_referred"] = 250.0
    counts.loc["Asian", "pct_treated"] = np.nan  # suppressed
    fig = RP.pathway_funnel(counts)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    titles = [ax.get_title() for ax in fig.axes]
    assert "% of referred" in titles[0] and "% of assessed" in titles[1]
    for ax in fig.axes:
        assert len(ax.patches) == len(counts)
    assert any(t.get_text() == "suppressed" for t in fig.axes[1].texts)
    fig3 = RP.pathway_funnel(counts, per_1000=True)
    assert len(fig3.axes) == 3 and "per 1,000 referred" in fig3.axes[2].get_title()


def test_pathway_funnel_from_pathway_counts():
    frame = pd.DataFrame({
        "ethnicity": pd.Categorical(["White British"] * 30 + ["Asian"] * 20 + [None] * 10, categories=study.GROUPS),
        "assessed": [1, 0] * 30,
    })
    frame["treated"] = np.where(frame["assessed"] == 1, 1.0, np.nan)
    fig = RP.pathway_funnel(T.pathway_counts(frame, disclose=True))
    assert len(fig.axes[0].patches) == len(study.GROUPS) + 2


def test_compare_methods_plot():
    base = tidy_estimates()
    base = base[base["model"] == "unadjusted"]
    frames = [base.assign(method=m, estimate=base["estimate"] * f) for m, f in
              [("complete_case", 1.0), ("mar_mi", 1.05), ("weighted_mi", 0.98)]]
    est = pd.concat(frames)
    truth = base.set_index("ethnicity")["estimate"]
    fig = RP.compare_methods_plot(est, truth=truth)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(vertical_lines_at(ax, 1.0)) == 1
    assert len(errorbars(ax)) == 3
    truth_lines = [line for line in ax.get_lines() if line.get_gid() == "truth"]
    assert len(truth_lines) == 1 and len(truth_lines[0].get_xdata()) == len(NON_REF)
    assert truth_lines[0].get_marker() == "|"
    assert "True value" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="more than one"):
        RP.compare_methods_plot(pd.concat([est, est]))


def test_simulation_plot():
    rows = [dict(method=m, mechanism=k, ethnicity=g, bias=0.01 * i, coverage=0.9, emp_se=0.1)
            for m in ["complete_case", "mar_mi", "weighted_mi"] for k in ["MCAR", "MAR", "MNAR"]
            for i, g in enumerate(NON_REF)]
    fig = RP.simulation_plot(pd.DataFrame(rows))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["MCAR", "MAR", "MNAR"]
    for i, ax in enumerate(fig.axes):
        method_lines = [line for line in ax.get_lines() if not str(line.get_gid()).startswith("ref:")]
        assert len(method_lines) == 3
        ref = 0.0 if i < 3 else 0.95
        assert len(vertical_lines_at(ax, ref)) == 1
        # no MCSE columns: no error bars drawn
        assert all(not c.has_xerr for c in ax.containers if isinstance(c, ErrorbarContainer))


def test_simulation_plot_mcse_bars_and_full_data():
    """With MCSE columns: +/- 2 MCSE bars for bias and for coverage (at the nominal level, which does not
    collapse to 0 when coverage is 1), and the full-data benchmark drawn as its own method."""
    methods = ["full_data", "complete_case", "mar_mi", "weighted_mi"]
    rows = [dict(method=m, mechanism=k, ethnicity=g, bias=0.01 * i, bias_mcse=0.005 * (j + 1), coverage=1.0,
                 coverage_mcse=0.0, coverage_mcse_nominal=0.05)
            for j, m in enumerate(methods) for k in ["MCAR", "MAR", "MNAR"] for i, g in enumerate(NON_REF)]
    fig = RP.simulation_plot(pd.DataFrame(rows))
    ax_bias, ax_cov = fig.axes[0], fig.axes[3]
    for ax, metric in ((ax_bias, "bias"), (ax_cov, "coverage")):
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [c.get_label() for c in bars] == [RP.METHOD_LABELS.get(m, "Full data (benchmark)") for m in methods]
        assert [c.lines[0].get_gid() for c in bars] == [f"{metric}:MCAR:{m}" for m in methods]
        for j, c in enumerate(bars):
            assert c.has_xerr
            segs = c.lines[2][0].get_segments()
            assert len(segs) == len(NON_REF)
            left = np.array([min(s[0][0], s[1][0]) for s in segs])
            right = np.array([max(s[0][0], s[1][0]) for s in segs])
            if metric == "bias":  # +/- 2 MCSE of bias around each bias
                np.testing.assert_allclose(right - left, 2 * 2 * 0.005 * (j + 1))
            else:  # coverage 1: down 2 nominal MCSEs, clipped at 1 above
                np.testing.assert_allclose(left, 1.0 - 2 * 0.05)
                np.testing.assert_allclose(right, 1.0)
    full = [c for c in ax_bias.containers if c.get_label() == "Full data (benchmark)"][0]
    assert full.lines[0].get_marker() == "D"
    assert "Monte Carlo SE" in fig._suptitle.get_text()
    # coverage_mcse alone is used when the nominal column is absent
    fig2 = RP.simulation_plot(pd.DataFrame(rows).drop(columns="coverage_mcse_nominal"))
    seg = [c for c in fig2.axes[3].containers if isinstance(c, ErrorbarContainer)][0].lines[2][0].get_segments()[0]
    assert seg[1][0] == pytest.approx(seg[0][0])


def test_compare_methods_plot_other_methods_get_their_own_markers_and_colours():
    """One method under two margins (notebook 11's census figure): two distinct, named markers, no yellow."""
    base = tidy_estimates()
    base = base[base["model"] == "unadjusted"]
    est = pd.concat([base.assign(analysis="weighted MI, referred margin"),
                     base.assign(analysis="weighted MI, census margin", estimate=base["estimate"] * 0.9)])
    fig = RP.compare_methods_plot(est, truth=base.set_index("ethnicity")["estimate"])
    ax = fig.axes[0]
    containers = errorbars(ax)
    markers = [c.lines[0].get_marker() for c in containers]
    colours = [to_rgb(c.lines[0].get_color()) for c in containers]
    assert markers == list(S.FALLBACK_MARKERS[:2])
    assert len(set(colours)) == 2 and to_rgb(S.OKABE_ITO["yellow"]) not in colours
    # the truth is drawn behind the points, so a point on the truth stays visible
    truth = next(line for line in ax.get_lines() if line.get_gid() == "truth")
    assert all(c.lines[0].get_zorder() > truth.get_zorder() for c in containers)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"weighted MI, referred margin", "weighted MI, census margin", "True value"} == set(labels)
