# FROZEN BASELINE for benchmarks only: the row-by-row half of helpers/cohort.py as it was before the generator
# went to national scale (rows as pandas string frames, written by pandas). Kept so that benchmarks/run_all.py
# can measure the generator against it in the same run. Not imported by the project; do not change it.
"""The old ``expand_rows`` + ``write_csv``: one pandas row per referral, NHS codes as Python strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import cohort, study
from helpers import params as params_mod
from helpers.calibrate import load_solved
from helpers.targets import load_targets


def _draw_codes(rng: np.random.Generator, keys: np.ndarray, shares: dict[str, dict[str, float]]) -> np.ndarray:
    out = np.empty(len(keys), dtype=object)
    for key, dist in shares.items():
        rows = np.flatnonzero(keys == key)
        if len(rows) == 0:
            continue
        labels = np.array(list(dist), dtype=object)
        probs = np.array(list(dist.values()), dtype=float)
        out[rows] = labels[rng.choice(len(labels), size=len(rows), p=probs / probs.sum())]
    return out


def _dates(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    starts = pd.to_datetime(pd.Series(years.astype(str)) + "-01-01").to_numpy()
    days_in_year = np.where(years % 4 == 0, 366, 365)
    return starts + (rng.random(len(years)) * days_in_year).astype("int64").astype("timedelta64[D]")


def expand_rows(cells: pd.DataFrame, counts: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = np.repeat(np.arange(len(cells)), counts)
    rows = cells.iloc[idx].reset_index(drop=True)
    n = len(rows)
    order = rng.permutation(n)
    rows = rows.iloc[order].reset_index(drop=True)
    band = rows.age_band.map({b: i for i, b in enumerate(study.AGE_BANDS)}).to_numpy()
    lower = np.array(study.AGE_BREAKS)[band]
    upper = np.array(study.AGE_BREAKS[1:] + [cohort.OLDEST_AGE + 1])[band]
    u = rng.random(n)
    u = np.where(band == len(study.AGE_BANDS) - 1, u ** 2, u)
    age = lower + np.floor(u * (upper - lower)).astype(int)
    referral = _dates(rng, rows.year.to_numpy().astype(int))
    stage = rows.stage.to_numpy()
    assessed = stage != "not_assessed"
    treated = stage == "treated"
    assess_date = referral + (1 + rng.geometric(1 / cohort.MEAN_DAYS_TO_ASSESSMENT, n)).astype("timedelta64[D]")
    treat_date = assess_date + (1 + rng.geometric(1 / cohort.MEAN_DAYS_TO_TREATMENT, n)).astype("timedelta64[D]")
    true_code = _draw_codes(rng, rows.group.to_numpy(), cohort.code_shares_within_group())
    missing = rows.missing.to_numpy() == 1
    missing_code = _draw_codes(rng, np.where(missing, "m", "o"), {"m": cohort.MISSING_CODE_SHARES})
    recorded = np.where(missing, missing_code, true_code)
    source_code = _draw_codes(rng, rows.referral_source.to_numpy(), cohort.SOURCE_CODE_SHARES)

    def fmt(d: np.ndarray, keep: np.ndarray) -> np.ndarray:
        text = np.datetime_as_string(d, unit="D").astype(object)
        return np.where(keep, text, "")

    raw = pd.DataFrame({
        "ReferralRequestReceivedDate": fmt(referral, np.ones(n, bool)),
        "Age_ReferralRequest_ReceivedDate": age.astype(str),
        "Gender": rows.gender.map(cohort.GENDER_CODES).to_numpy(),
        "Validated_EthnicCategory": recorded,
        "SourceOfReferralIAPT": source_code,
        "Borough": rows.borough.to_numpy(),
        "Assessment_FirstDate": fmt(assess_date, assessed),
        "TherapySession_FirstDate": fmt(treat_date, treated),
    })
    truth = pd.DataFrame({"true_ethnic_group": rows.group.to_numpy(), "true_EthnicCategory": true_code,
                          "ethnicity_missing": missing.astype(int)})
    by_date = np.argsort(raw.ReferralRequestReceivedDate.to_numpy(), kind="stable")
    raw, truth = raw.iloc[by_date].reset_index(drop=True), truth.iloc[by_date].reset_index(drop=True)
    width = max(7, len(str(n)))
    ids = [f"P{i:0{width}d}" for i in range(1, n + 1)]
    raw.insert(0, "PathwayID", ids)
    truth.insert(0, "PathwayID", ids)
    return raw[cohort.RAW_COLUMNS], truth[cohort.TRUTH_COLUMNS]


def write(n: int, out: Path) -> None:
    """Generate n referrals (default settings) the old way and write raw and truth CSV as the old CLI did."""
    p = params_mod.validate(n_referrals=n)
    t = load_targets(params_mod.targets_file(p))
    rng = np.random.default_rng(p["seed"])
    cells = cohort.expected_counts(t, load_solved(t), n, p["missing_share"], p["missing_mechanism"])
    counts = cohort.realise_counts(cells, t, n, p["missing_share"], p["outcome_mode"], rng)
    raw, truth = expand_rows(cells, counts, rng)
    cohort.write_csv(raw, out)
    cohort.write_csv(truth, out.with_name(out.stem + "_truth.csv"))
