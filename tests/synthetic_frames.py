"""A synthetic analysis frame with ethnicity missing not at random, and its fits and imputations, shared by the
test modules of imputation and pooling (one definition, so the modules test against the same planted truth).
The frame with gaps planted at every stage that design and models are tested on is ``helpers.planted``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from helpers import fitting, models, study
from helpers.imputation import impute_ethnicity, margin_from_truth
from helpers.pooling import mi_estimates_from_rows


def synthetic_frame(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(full frame, frame with ethnicity missing not at random): the contracts' analysis-frame columns."""
    g_n = len(study.GROUPS)
    borough = rng.choice(4, size=n, p=[0.3, 0.3, 0.2, 0.2])
    base = np.array([0.45, 0.10, 0.12, 0.05, 0.08, 0.06, 0.10, 0.04])
    tilt = np.array([[0, 0, 0, 0, 0, 0, 0, 0], [0, 0.4, 0.2, 0, 0, 0, 0, 0],
                     [0, 0.3, 0.3, 0.2, 0, 0, 0, 0], [0.3, -0.2, -0.3, 0, 0.6, 0, 0, 0]])
    pg = base * np.exp(tilt[borough])
    pg /= pg.sum(axis=1, keepdims=True)
    group = (rng.random(n)[:, None] > np.cumsum(pg, axis=1)).sum(axis=1).clip(max=g_n - 1)
    age = rng.integers(0, len(study.AGE_BANDS), n)
    sex = rng.integers(0, 2, n)
    year = rng.integers(0, 4, n)
    src_eff = np.zeros((g_n, 4))
    src_eff[:, 1] = [0, -0.1, -0.4, 0, -0.4, -0.3, 0, 0]  # self-referral
    src_eff[:, 2] = [0, 0.4, 0, 0.4, 0, 0, 0.4, 0.1]  # community
    eta = np.array([0, -0.3, -1.5, -1.0])[None, :] + src_eff[group]
    p_src = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    source = (rng.random(n)[:, None] > np.cumsum(p_src, axis=1)).sum(axis=1).clip(max=3)
    g_eff = np.array([0, -0.3, -0.35, -0.4, -0.25, -0.2, -0.15, -0.3])
    la = 0.9 + g_eff[group] - 0.6 * (borough == 3) + 0.1 * (age >= 2) - 0.2 * (source == 2)
    assessed = (rng.random(n) < 1 / (1 + np.exp(-la))).astype(int)
    lt = 1.0 + g_eff[group] + 0.1 * sex - 0.3 * (borough == 1)
    treated = np.where(assessed == 1, (rng.random(n) < 1 / (1 + np.exp(-lt))).astype(float), np.nan)
    full = pd.DataFrame({
        "referral_id": [f"R{i:06d}" for i in range(n)],
        "ethnicity": pd.Categorical.from_codes(group, study.GROUPS),
        "age_band": pd.Categorical.from_codes(age, study.AGE_BANDS),
        "gender": pd.Categorical.from_codes(sex, study.GENDERS),
        "year": pd.Categorical.from_codes(year, study.YEARS),
        "borough": pd.Categorical.from_codes(borough, study.BOROUGHS),
        "referral_source": pd.Categorical.from_codes(source, study.SOURCES),
        "assessed": assessed,
        "treated": treated,
    })
    # MNAR: missingness depends on the group itself, on the outcome (not assessed) and on borough
    m_eff = np.array([-0.4, 0.3, 0.6, 0.5, 0.2, 0.4, 0.9, 0.7])
    lm = -2.2 + m_eff[group] + 1.2 * (assessed == 0) + 0.8 * (borough == 3)
    missing = rng.random(n) < 1 / (1 + np.exp(-lm))
    incomplete = full.copy()
    incomplete.loc[missing, "ethnicity"] = np.nan
    return full, incomplete


def iapt_fits() -> dict:
    """A 40,000-referral MNAR frame, its full-data and complete-case fits, weighted and MAR MI (10 each)."""
    rng = np.random.default_rng(2021)
    full, inc = synthetic_frame(40_000, rng)
    margin = margin_from_truth(full["ethnicity"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fitting.ModelFitWarning)
        truth = models.fit_all(full)
        cc = models.fit_all(inc)
        res = impute_ethnicity(inc, margin, 10, rng)
        wmi = mi_estimates_from_rows(inc, res, progress=False)
        res_mar = impute_ethnicity(inc, None, 10, rng, weights=None)
        mar = mi_estimates_from_rows(inc, res_mar, progress=False)
    return dict(full=full, inc=inc, margin=margin, truth=truth, cc=cc, res=res, wmi=wmi, res_mar=res_mar, mar=mar)
