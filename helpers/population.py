"""Referrals relative to the resident population: census denominators and referral rates by ethnic group.

The paper compares groups *within* the pathway (among those referred, among those assessed). Whether a group
reaches the pathway at all needs a denominator outside the service: the people living in the area. This
module builds that denominator from the 2011 Census file in ``data/published/`` and divides referrals by it.

What the census file can and cannot give (``data/published/census2011_ethnicity_boroughs.csv``):

* QS201EW counts **all usual residents of every age** on census day (27 March 2011). Adult (18+) counts by
  ethnic group for these boroughs are **not available** in the project's files, so the denominators include
  children, although IAPT served adults only; and they describe 2011, not the 2013-2016 study years.
* Full counts exist for all four boroughs (Lambeth, Southwark, Lewisham, Croydon; via Nomis). A borough a
  file prints as percentages only, or only in part, raises ``ValueError`` here rather than being filled in
  with made-up numbers.
* The referral ``borough`` field is the borough of the IAPT *service*, not of residence (an *assumed*
  equivalence for a rate: a service mostly takes people registered with a GP in its borough).

Rates are referrals over the whole period covered by the frame (four years, 2013-2016, in the study) per
``per`` residents; ``period_years`` divides by a number of years to give an annual rate. Rate ratios compare
each group with White British in the same borough, with an approximate 95% CI on the log scale assuming
Poisson referral counts and fixed (known) census denominators: SE(log RR) = sqrt(1/a + 1/b).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from helpers import disclosure, study
from helpers.census import CENSUS_NOTE, DEFAULT_BOROUGHS
from helpers.pooling import rubin

Z975 = float(stats.norm.ppf(0.975))
POOLED_LABEL = "All four boroughs"

RATE_COLUMNS = [
    "borough", "ethnicity", "referrals", "residents", "rate", "rate_ci_low", "rate_ci_high",
    "rate_ratio", "rr_ci_low", "rr_ci_high",
]


def referral_counts(frame: pd.DataFrame, boroughs: Sequence[str], ethnicity: pd.Series | None = None,
                    count: str | None = None) -> pd.DataFrame:
    """Referrals by ethnic group (rows) and borough (columns) for ``boroughs``.

    ``ethnicity``: a completed ethnicity column (same index as ``frame``) to count instead of the recorded one;
    by default the recorded ``frame["ethnicity"]``, so referrals with missing ethnicity are not counted.
    ``count``: a 0/1 column of the frame (``"assessed"``, ``"treated"``): count only referrals where it is 1.
    """
    for col in ("borough", "ethnicity") + ((count,) if count else ()):
        if col not in frame.columns:
            raise ValueError(f"referral_counts: the frame lacks column {col!r}")
    eth = frame["ethnicity"] if ethnicity is None else ethnicity
    if len(eth) != len(frame):
        raise ValueError("referral_counts: ethnicity must have one value per row of the frame")
    eth = pd.Categorical(np.asarray(eth, dtype=object), categories=study.GROUPS)
    bor = frame["borough"].astype(object).to_numpy()
    if count:
        keep = pd.to_numeric(frame[count], errors="coerce").to_numpy() == 1
        eth, bor = eth[keep], bor[keep]
    tab = pd.crosstab(eth, bor, dropna=False) if len(frame) else pd.DataFrame()
    tab = tab.reindex(index=study.GROUPS, columns=list(boroughs), fill_value=0).fillna(0).astype(np.int64)
    tab.index.name, tab.columns.name = "ethnicity", "borough"
    return tab


def _rates_from_counts(counts: pd.DataFrame, population: pd.DataFrame, per: float, scale_years: float,
                       reference: str) -> pd.DataFrame:
    rows = []
    for b in counts.columns:
        a_ref = float(counts.loc[reference, b])
        n_ref = float(population.loc[reference, b])
        for g in study.GROUPS:
            a, n = float(counts.loc[g, b]), float(population.loc[g, b])
            rate = a / n * per / scale_years if n > 0 else np.nan
            if a > 0 and n > 0:
                half = Z975 / np.sqrt(a)
                r_lo, r_hi = rate * np.exp(-half), rate * np.exp(half)
            else:
                r_lo = r_hi = np.nan
            if g == reference:
                rr, lo, hi = 1.0, np.nan, np.nan
            elif a > 0 and a_ref > 0 and n > 0 and n_ref > 0:
                rr = (a / n) / (a_ref / n_ref)
                se = np.sqrt(1 / a + 1 / a_ref)
                lo, hi = rr * np.exp(-Z975 * se), rr * np.exp(Z975 * se)
            else:
                rr = (a / n) / (a_ref / n_ref) if n > 0 and n_ref > 0 and a_ref > 0 else np.nan
                lo = hi = np.nan
            rows.append(dict(borough=b, ethnicity=g, referrals=counts.loc[g, b], residents=int(n), rate=rate,
                             rate_ci_low=r_lo, rate_ci_high=r_hi, rate_ratio=rr, rr_ci_low=lo, rr_ci_high=hi))
    return pd.DataFrame(rows, columns=RATE_COLUMNS)


def _with_pooled(counts: pd.DataFrame, population: pd.DataFrame, label: str):
    counts = counts.copy()
    population = population.copy()
    counts[label] = counts.sum(axis=1, skipna=False)
    population[label] = population.sum(axis=1)
    return counts, population


def referral_rates(
    frame: pd.DataFrame,
    population: pd.DataFrame,
    per: float = 1000,
    ethnicity: pd.Series | Sequence[pd.Series] | None = None,
    pooled: bool = True,
    period_years: float | None = None,
    disclose: bool = False,
    threshold: int = 7,
    base: int = 5,
    reference: str = study.REFERENCE_GROUP,
    count: str | None = None,
) -> pd.DataFrame:
    """Referrals per ``per`` residents by ethnic group and borough, and the rate ratio vs White British.

    ``population``: ``census_population(...)`` (groups x boroughs). Numerator: the frame's referrals in each
    of those boroughs **with recorded ethnicity** (default). ``ethnicity`` may instead be one completed
    ethnicity column, or a list of them (multiple imputation): then every imputation gives counts, the rate is
    their mean and the log rate ratio is pooled with Rubin's rules (within variance 1/a + 1/b), so the CI
    carries the uncertainty of the imputed groups.

    ``pooled``: add rows for all the boroughs together (``"Southwark + Lewisham"`` for the default pair;
    otherwise the names joined by " + "), a crude rate over the summed counts and residents.
    ``period_years``: divide rates by this many years (annual rates); the default is a rate over the whole
    period the frame covers. ``disclose``: pass the referral counts through ``helpers.disclosure.disclose``
    (suppress 1..threshold, round to ``base``) and compute every rate and ratio from the disclosed counts;
    a suppressed count gives NaN.

    Columns: ``borough, ethnicity, referrals, residents, rate, rate_ci_low, rate_ci_high, rate_ratio,
    rr_ci_low, rr_ci_high`` (+ ``m`` with imputations). CIs are approximate (Poisson counts, log scale).
    ``count="treated"`` (or ``"assessed"``) counts only those referrals: people treated per ``per`` residents,
    the whole route from population to treatment in one number (``referrals`` then holds that count).
    """
    if not isinstance(population, pd.DataFrame) or population.empty:
        raise ValueError("referral_rates: population must be census_population(...) output (groups x boroughs)")
    missing_groups = [g for g in study.GROUPS if g not in population.index]
    if missing_groups:
        raise ValueError(f"referral_rates: population lacks groups {missing_groups}")
    if not per > 0:
        raise ValueError(f"referral_rates: per must be positive, got {per!r}")
    if period_years is not None and not period_years > 0:
        raise ValueError(f"referral_rates: period_years must be positive, got {period_years!r}")
    if reference not in study.GROUPS:
        raise ValueError(f"referral_rates: unknown reference group {reference!r}")
    boroughs = list(population.columns)
    if "borough" in frame.columns:
        in_frame = set(frame["borough"].dropna().astype(str))
        absent = [b for b in boroughs if b not in in_frame]
        if absent:
            raise ValueError(f"referral_rates: no referrals from {absent} in the frame (it has {sorted(in_frame)})")
    population = population[boroughs].reindex(study.GROUPS)
    scale = 1.0 if period_years is None else float(period_years)
    label = POOLED_LABEL if tuple(boroughs) == DEFAULT_BOROUGHS else " + ".join(boroughs)

    def counts_for(eth) -> pd.DataFrame:
        c = referral_counts(frame, boroughs, eth, count=count)
        if disclose:
            c = disclosure.disclose(c, count_columns=boroughs, threshold=threshold, base=base)
            c = c.astype(float)  # NA (suppressed) -> NaN
        return c.astype(float)

    completed = None
    if ethnicity is not None and not isinstance(ethnicity, pd.Series):
        completed = list(ethnicity)
        if len(completed) == 1:
            ethnicity, completed = completed[0], None
    if completed is None:
        counts = counts_for(ethnicity)
        pop = population
        if pooled and len(boroughs) > 1:
            counts, pop = _with_pooled(counts, population, label)
        out = _rates_from_counts(counts, pop, per, scale, reference)
        out["referrals"] = pd.array(out["referrals"].to_numpy(dtype=float), dtype="Float64").round().astype("Int64")
    else:
        per_imp = []
        for eth in completed:
            counts = counts_for(eth)
            pop = population
            if pooled and len(boroughs) > 1:
                counts, pop = _with_pooled(counts, population, label)
            per_imp.append(_rates_from_counts(counts, pop, per, scale, reference))
        out = _pool_imputed(per_imp)
    out.attrs["note"] = (
        f"{count + ' ' if count else ''}referrals "
        f"({'recorded ethnicity' if ethnicity is None and completed is None else 'imputed ethnicity'}) "
        f"per {per:g} residents{' per year' if period_years else ' over the period'}; denominators: "
        + population.attrs.get("note", CENSUS_NOTE)
    )
    return out


def _pool_imputed(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean counts and rates over imputations; log rate ratios pooled by Rubin's rules."""
    first = tables[0]
    m = len(tables)
    a = np.stack([t["referrals"].to_numpy(dtype=float) for t in tables])
    rates = np.stack([t["rate"].to_numpy(dtype=float) for t in tables])
    out = first[["borough", "ethnicity", "residents"]].copy()
    out["referrals"] = a.mean(axis=0)
    out["rate"] = rates.mean(axis=0)
    # rate CI: Rubin on log rate with within variance 1/a
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rate = np.log(rates)
        u_rate = 1.0 / a
    out["rate_ci_low"] = np.nan
    out["rate_ci_high"] = np.nan
    out["rate_ratio"] = np.nan
    out["rr_ci_low"] = np.nan
    out["rr_ci_high"] = np.nan
    rr = np.stack([t["rate_ratio"].to_numpy(dtype=float) for t in tables])
    for i in range(len(out)):
        if np.all(np.isfinite(log_rate[:, i])) and np.all(np.isfinite(u_rate[:, i])):
            r = rubin(log_rate[:, i], u_rate[:, i])
            out.iloc[i, out.columns.get_loc("rate_ci_low")] = np.exp(r.ci_low)
            out.iloc[i, out.columns.get_loc("rate_ci_high")] = np.exp(r.ci_high)
    for idx in out.groupby("borough", sort=False).groups.values():
        idx = list(idx)
        ref_pos = [out.index.get_loc(i) for i in idx if out.loc[i, "ethnicity"] == study.REFERENCE_GROUP][0]
        for i in idx:
            pos = out.index.get_loc(i)
            if pos == ref_pos:
                out.iloc[pos, out.columns.get_loc("rate_ratio")] = 1.0
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.log(rr[:, pos])
                u = 1.0 / a[:, pos] + 1.0 / a[:, ref_pos]
            if np.all(np.isfinite(q)) and np.all(np.isfinite(u)):
                r = rubin(q, u)
                out.iloc[pos, out.columns.get_loc("rate_ratio")] = np.exp(r.estimate)
                out.iloc[pos, out.columns.get_loc("rr_ci_low")] = np.exp(r.ci_low)
                out.iloc[pos, out.columns.get_loc("rr_ci_high")] = np.exp(r.ci_high)
    out["m"] = m
    return out[RATE_COLUMNS + ["m"]]
