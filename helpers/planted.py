"""An analysis frame with ethnic gaps planted at every stage, drawn directly: no cohort, no extract, no codes.

Why: the engines and the models are tested, and benchmarked at national scale, on a frame whose
data-generating model is written out here in three lines (referral source, assessment, treatment), so an
estimate can be held against the value planted. The frame has the analysis frame's columns and categories
(``docs/contracts.md``). Its draws are made in one fixed order from one seed, so a seed gives the same
frame at any size; arrays are filled in place so that ten million rows fit in a benchmark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import study

#: Group shares (the study's order) and each group's effect on the log-odds: referral source (times the
#: source's position), assessment (times -0.4) and treatment (times -0.6).
GROUP_SHARES = (0.4, 0.12, 0.12, 0.05, 0.1, 0.07, 0.1, 0.04)
GROUP_EFFECTS = (0.0, 0.4, 0.3, 0.5, -0.2, 0.2, -0.1, 0.1)


def planted_frame(n: int, seed: int = 0, missing_eth: float = 0.05, ids: bool = True) -> pd.DataFrame:
    """``n`` referrals with the planted gaps; ``missing_eth`` of them with ethnicity missing completely at random.

    ``ids=False`` leaves out ``referral_id`` (ten million Python strings take gigabytes; no fit needs them).
    """
    rng = np.random.default_rng(seed)
    eth = rng.choice(len(study.GROUPS), size=n, p=list(GROUP_SHARES))
    age = rng.integers(0, len(study.AGE_BANDS), n).astype(np.int8)
    gen = rng.integers(0, 2, n).astype(np.int8)
    yr = rng.integers(0, 4, n).astype(np.int8)
    bor = rng.integers(0, 4, n).astype(np.int8)
    eff = np.array(GROUP_EFFECTS)
    # referral source: a multinomial logit with GP as base (softmax over 4 columns, filled in place)
    pr = np.zeros((n, 4))
    for k in range(1, 4):
        pr[:, k] = (-0.6 + 0.3 * k) + eff[eth] * (k - 1) + 0.05 * age - 0.1 * gen * k + 0.1 * (bor == 1)
    pr -= pr.max(axis=1, keepdims=True)
    np.exp(pr, out=pr)
    pr /= pr.sum(axis=1, keepdims=True)
    np.cumsum(pr, axis=1, out=pr)
    src = (pr > rng.random(n)[:, None]).argmax(axis=1).astype(np.int8)
    del pr
    la = 0.8 - 0.4 * eff[eth] + 0.05 * age - 0.1 * gen + 0.05 * yr + 0.2 * (bor == 2)
    assessed = (rng.random(n) < 1 / (1 + np.exp(-la))).astype(int)
    lt = 0.4 - 0.6 * eff[eth] - 0.05 * age + 0.1 * yr - 0.1 * (bor == 3)
    treated = np.where(assessed == 1, (rng.random(n) < 1 / (1 + np.exp(-lt))).astype(float), np.nan)
    eth_obs = np.where(rng.random(n) < missing_eth, -1, eth).astype(np.int8)

    def cat(codes: np.ndarray, levels: list) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=levels)

    frame = pd.DataFrame(
        {
            "ethnicity": cat(eth_obs, study.GROUPS),
            "age_band": cat(age, study.AGE_BANDS),
            "gender": cat(gen, study.GENDERS),
            "year": cat(yr, study.YEARS),
            "borough": cat(bor, study.BOROUGHS),
            "referral_source": cat(src, study.SOURCES),
            "assessed": assessed,
            "treated": treated,
        }
    )
    if ids:
        frame.insert(0, "referral_id", [f"R{i:06d}" for i in range(n)])
    return frame
