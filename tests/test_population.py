"""helpers.population: census denominators and referral rates, on hand-made frames with hand-computed rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import plots, population, study

Z = 1.959963984540054


def _population() -> pd.DataFrame:
    pop = pd.DataFrame({"Southwark": 500, "Lewisham": 500}, index=pd.Index(study.GROUPS, name="ethnicity"))
    pop.loc["White British"] = [1000, 2000]
    return pop


def _frame() -> pd.DataFrame:
    rows = (
        [("Southwark", "White British")] * 10 + [("Southwark", "Black Caribbean")] * 2
        + [("Lewisham", "White British")] * 30 + [("Lewisham", "Black Caribbean")] * 10
        + [("Southwark", None)] * 5  # missing ethnicity: not in the numerator
        + [("Lambeth", "Black Caribbean")] * 7  # a borough without denominators: ignored
    )
    for g in study.GROUPS[2:]:
        rows += [("Southwark", g), ("Lewisham", g)]
    return pd.DataFrame({
        "borough": pd.Categorical([b for b, _ in rows], categories=study.BOROUGHS),
        "ethnicity": pd.Categorical([e for _, e in rows], categories=study.GROUPS),
    })


def test_referral_rates_hand_computed() -> None:
    rates = population.referral_rates(_frame(), _population())
    r = rates.set_index(["borough", "ethnicity"])
    # Southwark: White British 10 / 1000 residents -> 10 per 1,000; Black Caribbean 2 / 500 -> 4 per 1,000
    assert r.loc[("Southwark", "White British"), "rate"] == pytest.approx(10.0)
    assert r.loc[("Southwark", "Black Caribbean"), "rate"] == pytest.approx(4.0)
    assert r.loc[("Southwark", "Black Caribbean"), "referrals"] == 2
    rr = r.loc[("Southwark", "Black Caribbean")]
    assert rr["rate_ratio"] == pytest.approx(0.4)
    se = np.sqrt(1 / 2 + 1 / 10)
    assert rr["rr_ci_low"] == pytest.approx(0.4 * np.exp(-Z * se))
    assert rr["rr_ci_high"] == pytest.approx(0.4 * np.exp(Z * se))
    assert rr["rate_ci_low"] == pytest.approx(4.0 * np.exp(-Z / np.sqrt(2)))
    # reference row: ratio 1, no CI
    ref = r.loc[("Southwark", "White British")]
    assert ref["rate_ratio"] == 1.0 and pd.isna(ref["rr_ci_low"])
    # Lewisham: 30/2000 = 15 per 1,000; 10/500 = 20 per 1,000; RR 4/3
    assert r.loc[("Lewisham", "Black Caribbean"), "rate_ratio"] == pytest.approx(20 / 15)
    # pooled: White British 40/3000, Black Caribbean 12/1000
    pooled = r.loc[("Southwark + Lewisham", "Black Caribbean")]
    assert pooled["rate"] == pytest.approx(12.0)
    assert pooled["rate_ratio"] == pytest.approx(12 / (40 / 3))
    assert pooled["rr_ci_high"] == pytest.approx(12 / (40 / 3) * np.exp(Z * np.sqrt(1 / 12 + 1 / 40)))
    assert list(rates.columns) == population.RATE_COLUMNS


def test_referral_rates_options() -> None:
    frame, pop = _frame(), _population()
    annual = population.referral_rates(frame, pop, period_years=4, pooled=False).set_index(["borough", "ethnicity"])
    assert annual.loc[("Southwark", "White British"), "rate"] == pytest.approx(2.5)
    assert set(annual.index.get_level_values(0)) == {"Southwark", "Lewisham"}
    per100 = population.referral_rates(frame, pop, per=100).set_index(["borough", "ethnicity"])
    assert per100.loc[("Southwark", "White British"), "rate"] == pytest.approx(1.0)


def test_referral_rates_count_column() -> None:
    frame = _frame()
    frame["treated"] = np.nan
    frame.loc[:2, "treated"] = 1.0  # three Southwark White British referrals treated
    frame.loc[10:10, "treated"] = 1.0  # one Southwark Black Caribbean referral treated
    rates = population.referral_rates(frame, _population(), count="treated").set_index(["borough", "ethnicity"])
    assert rates.loc[("Southwark", "White British"), "rate"] == pytest.approx(3.0)
    assert rates.loc[("Southwark", "Black Caribbean"), "rate"] == pytest.approx(2.0)
    assert rates.loc[("Southwark", "Black Caribbean"), "rate_ratio"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lacks column 'assessed'"):
        population.referral_rates(frame, _population(), count="assessed")


def test_referral_rates_disclosed_counts() -> None:
    rates = population.referral_rates(_frame(), _population(), disclose=True).set_index(["borough", "ethnicity"])
    # 10 -> 10 (rounded to 5); 2 -> suppressed, so no rate
    assert rates.loc[("Southwark", "White British"), "referrals"] == 10
    assert pd.isna(rates.loc[("Southwark", "Black Caribbean"), "referrals"])
    assert np.isnan(rates.loc[("Southwark", "Black Caribbean"), "rate"])
    # a pooled count including a suppressed cell is not shown either
    assert np.isnan(rates.loc[("Southwark + Lewisham", "Black Caribbean"), "rate"])


def test_referral_rates_with_imputations() -> None:
    frame, pop = _frame(), _population()
    completed = frame["ethnicity"].astype(object).fillna("Black Caribbean")
    completed = pd.Series(pd.Categorical(completed, categories=study.GROUPS), index=frame.index)
    single = population.referral_rates(frame, pop, ethnicity=completed).set_index(["borough", "ethnicity"])
    # the 5 missing Southwark referrals now count as Black Caribbean: 7 / 500 -> 14 per 1,000
    assert single.loc[("Southwark", "Black Caribbean"), "rate"] == pytest.approx(14.0)
    # identical imputations: no between-imputation variance, so Rubin's CI equals the single-data CI
    pooled = population.referral_rates(frame, pop, ethnicity=[completed, completed]).set_index(["borough", "ethnicity"])
    row, one = pooled.loc[("Southwark", "Black Caribbean")], single.loc[("Southwark", "Black Caribbean")]
    assert row["rate_ratio"] == pytest.approx(one["rate_ratio"])
    assert row["rr_ci_low"] == pytest.approx(one["rr_ci_low"])
    assert row["m"] == 2
    # different imputations: the CI widens
    other = completed.copy()
    other[frame["ethnicity"].isna().to_numpy()] = "White British"
    mixed = population.referral_rates(frame, pop, ethnicity=[completed, other]).set_index(["borough", "ethnicity"])
    low = mixed.loc[("Southwark", "Black Caribbean")]
    assert low["referrals"] == pytest.approx((7 + 2) / 2)
    assert (low["rr_ci_high"] / low["rr_ci_low"]) > (one["rr_ci_high"] / one["rr_ci_low"])


def test_referral_rates_errors() -> None:
    frame, pop = _frame(), _population()
    with pytest.raises(ValueError, match="no referrals from"):
        population.referral_rates(frame[frame["borough"] != "Lewisham"], pop)
    with pytest.raises(ValueError, match="per must be positive"):
        population.referral_rates(frame, pop, per=0)
    with pytest.raises(ValueError, match="census_population"):
        population.referral_rates(frame, pd.DataFrame())


def test_referral_rate_plot() -> None:
    fig = plots.referral_rate_plot(population.referral_rates(_frame(), _population()))
    ax_rate, ax_rr = fig.axes[:2]
    assert [c.get_label() for c in ax_rr.containers] == ["Southwark", "Lewisham", "Southwark + Lewisham"]
    assert {p.get_gid() for p in ax_rate.patches} == {"rate:Southwark", "rate:Lewisham", "rate:Southwark + Lewisham"}
    assert ax_rr.get_xscale() == "log"
    with pytest.raises(ValueError, match="referral_rates"):
        plots.referral_rate_plot(pd.DataFrame({"borough": []}))
