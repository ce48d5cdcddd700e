"""Tests for helpers.teaching_plots: the lesson figures draw what their lessons say."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import study  # noqa: E402
from helpers import teaching_plots as TP  # noqa: E402

NON_REF = [g for g in study.GROUPS if g != study.REFERENCE_GROUP]


def test_pathway_diagram_names_every_step_and_source() -> None:
    fig = TP.pathway_diagram()
    assert isinstance(fig, Figure)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for word in ["Referred", "Assessed", "Treated", "Not assessed", "among the assessed", study.REFERENCE_GROUP,
                 *study.SOURCES]:
        assert word in text, word


def test_tilt_plot_reweights_and_rescales_the_base_mix():
    effect = pd.Series([0.0, 0.3, -0.25], index=["A", "B", "C"])
    base = pd.Series([0.5, 0.3, 0.2], index=effect.index)
    fig = TP.tilt_plot(effect, base, 2.0, "Black African")
    weights = [b.get_height() for b in fig.axes[1].patches]
    np.testing.assert_allclose(weights, np.exp(2.0 * effect.to_numpy()))
    shares = {b.get_gid(): [] for b in fig.axes[2].patches}
    for b in fig.axes[2].patches:
        shares[b.get_gid()].append(b.get_height())
    expected = base * np.exp(2.0 * effect)
    np.testing.assert_allclose(shares["tilted"], 100 * expected / expected.sum())
    np.testing.assert_allclose(shares["base"], 100 * base.to_numpy())
    assert sum(shares["tilted"]) == pytest.approx(100)
    assert "+2.00" in fig.axes[1].get_title()
    # tilt 0 leaves the mix as it is
    flat = TP.tilt_plot(effect, base, 0.0, "Asian")
    np.testing.assert_allclose([b.get_height() for b in flat.axes[1].patches], 1.0)
    with pytest.raises(ValueError, match="same levels"):
        TP.tilt_plot(effect, base.iloc[::-1], 1.0, "Asian")


def test_estimand_plot_draws_each_world_and_the_recorded_or():
    rows = []
    for k, mech in enumerate(["MCAR", "MAR", "MNAR"]):
        for i, g in enumerate(NON_REF):
            rows.append(dict(mechanism=mech, ethnicity=g, missing_per_100_recorded=10.0 + k + i,
                             truth_or=0.7 + 0.02 * i - 0.01 * k, recorded_or=0.7 + 0.02 * i))
    frame = pd.DataFrame(rows)
    fig = TP.estimand_plot(frame)
    left, right = fig.axes
    bars = {gid: [b.get_width() for b in left.patches if b.get_gid() == gid] for gid in
            {b.get_gid() for b in left.patches}}
    assert set(bars) == {"added:MCAR", "added:MAR", "added:MNAR"}
    np.testing.assert_allclose(bars["added:MNAR"], frame.loc[frame["mechanism"] == "MNAR", "missing_per_100_recorded"])
    lines = {line.get_gid(): line for line in right.get_lines()}
    np.testing.assert_allclose(lines["truth:MNAR"].get_xdata(), frame.loc[frame["mechanism"] == "MNAR", "truth_or"])
    np.testing.assert_allclose(lines["recorded"].get_xdata(), frame.loc[frame["mechanism"] == "MCAR", "recorded_or"])
    assert len({lines[f"truth:{m}"].get_marker() for m in ["MCAR", "MAR", "MNAR"]}) == 3
    lo, hi = right.get_xlim()
    assert lo < frame["truth_or"].min() and hi > frame["truth_or"].max() and hi - lo < 0.5  # zoomed on the values
