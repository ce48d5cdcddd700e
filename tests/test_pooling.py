"""Tests of helpers.pooling: Rubin's rules by hand, and fitting and pooling completed data sets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from synthetic_frames import synthetic_frame

from helpers import fitting, models, pooling, study
from helpers import simulation as S
from helpers.imputation import (
    impute_ethnicity,
    margin_from_truth,
)
from helpers.pooling import mi_estimates_from_rows, rubin


def test_rubin_by_hand_m3():
    q = [1.0, 1.2, 0.8]
    u = [0.04, 0.05, 0.03]
    m = 3
    qbar = (1.0 + 1.2 + 0.8) / 3  # 1.0
    ubar = (0.04 + 0.05 + 0.03) / 3  # 0.04
    b = ((1.0 - 1.0) ** 2 + (1.2 - 1.0) ** 2 + (0.8 - 1.0) ** 2) / (m - 1)  # (0 + 0.04 + 0.04) / 2 = 0.04
    t = ubar + (1 + 1 / m) * b  # 0.04 + 4/3 * 0.04 = 0.09333...
    lam = (1 + 1 / m) * b / t  # 0.05333 / 0.09333 = 4/7
    r = (1 + 1 / m) * b / ubar  # 4/3
    nu_old = (m - 1) / lam**2  # 2 / (16/49) = 6.125
    assert math.isclose(lam, 4 / 7) and math.isclose(nu_old, 6.125) and math.isclose(r, 4 / 3)

    res = rubin(q, u)  # df_com infinite: Rubin's df
    assert res.m == 3
    assert math.isclose(res.estimate, qbar)
    assert math.isclose(res.within, ubar)
    assert math.isclose(res.between, b)
    assert math.isclose(res.total, t)
    assert math.isclose(res.se, math.sqrt(t))  # 0.305505
    assert math.isclose(res.lambda_, lam)
    assert math.isclose(res.riv, r)
    assert math.isclose(res.df, nu_old)
    half = stats.t.ppf(0.975, 6.125) * math.sqrt(t)
    assert math.isclose(res.ci_low, 1.0 - half) and math.isclose(res.ci_high, 1.0 + half)

    # Barnard-Rubin with df_com = 10
    nu_obs = (10 + 1) / (10 + 3) * 10 * (1 - 4 / 7)  # 11/13 * 10 * 3/7 = 330/91 = 3.6264
    nu = nu_old * nu_obs / (nu_old + nu_obs)  # 6.125 * 3.6264 / 9.7514 = 2.2778
    assert math.isclose(nu_obs, 330 / 91)
    res10 = rubin(q, u, df_com=10)
    assert math.isclose(res10.df, nu, rel_tol=1e-12)
    assert math.isclose(res10.df, 2.27777, rel_tol=1e-4)
    half10 = stats.t.ppf(0.975, nu) * math.sqrt(t)
    assert math.isclose(res10.ci_high - res10.estimate, half10)
    # the FMI as Stata reports it: (r + 2/(df + 3)) / (r + 1)
    assert math.isclose(res10.fmi, (r + 2 / (nu + 3)) / (r + 1))


def test_rubin_vectorised_matches_columns():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(7, 4))
    u = rng.uniform(0.01, 0.1, size=(7, 4))
    both = rubin(q, u, df_com=50)
    for j in range(4):
        one = rubin(q[:, j], u[:, j], df_com=50)
        for name in ("estimate", "se", "within", "between", "total", "df", "ci_low", "ci_high", "lambda_", "riv", "fmi"):
            assert math.isclose(getattr(both, name)[j], getattr(one, name)), name


def test_rubin_no_between_variance():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero RuntimeWarning
        res = rubin([0.5, 0.5, 0.5, 0.5], [0.01, 0.02, 0.01, 0.02])
        res_com = rubin(np.full((4, 2), 0.5), np.full((4, 2), 0.01), df_com=20)
    assert res.between == 0 and res.lambda_ == 0 and res.riv == 0
    assert math.isinf(res.df)
    assert math.isclose(res.se, math.sqrt(0.015))
    assert math.isclose(res.ci_high - 0.5, stats.norm.ppf(0.975) * math.sqrt(0.015))
    # finite df_com: the Barnard-Rubin limit as lambda -> 0 (observed-data df), no NaN
    assert np.allclose(res_com.df, 20 * 21 / 23)
    assert np.all(np.isfinite(res_com.ci_low))


def test_rubin_input_checks():
    with pytest.raises(ValueError, match="at least 2"):
        rubin([1.0], [0.1])
    with pytest.raises(ValueError, match="shape"):
        rubin([1.0, 2.0], [0.1, 0.1, 0.1])


def test_mi_estimates_table(iapt):
    wmi, mar, truth = iapt["wmi"], iapt["mar"], iapt["truth"]
    assert set(models.TIDY_COLUMNS) <= set(wmi.columns)
    assert {"df", "fmi", "riv", "m"} <= set(wmi.columns)
    assert (wmi["analysis"] == "weighted_mi").all() and (mar["analysis"] == "mar_mi").all()
    ref = wmi["ethnicity"] == study.REFERENCE_GROUP
    assert (wmi.loc[ref, "estimate"] == 1.0).all() and wmi.loc[ref, "ci_low"].isna().all()
    other = wmi.loc[~ref]
    assert (other["ci_low"] < other["estimate"]).all() and (other["estimate"] < other["ci_high"]).all()
    assert ((other["fmi"] > 0) & (other["fmi"] < 1)).all()
    # n: average completed-data n per group; over groups it adds up to the stage population
    per_model = wmi[wmi["outcome_level"].isin(["", "Self"])].groupby(["stage", "model"])["n"].sum()
    assert np.allclose(per_model.loc["assessment"], len(iapt["inc"]))
    assert np.allclose(per_model.loc["treatment"], iapt["inc"]["assessed"].sum())
    assert wmi[KEYS := ["stage", "outcome_level", "model", "ethnicity"]].equals(truth[KEYS])


def test_mi_estimates_custom_fit_matches_plan():
    rng = np.random.default_rng(5)
    full, inc = synthetic_frame(5_000, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fitting.ModelFitWarning)
        res = impute_ethnicity(inc, margin_from_truth(full["ethnicity"]), 3, rng)
        a = mi_estimates_from_rows(inc, res, progress=False)
        b = mi_estimates_from_rows(inc, res, fit=models.fit_all, progress=False)
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def one_cohort():
    w = S.make_world("mnar", n_referrals=6000)
    counts = np.random.default_rng(3).multinomial(6000, w.probabilities)
    return S.frame_from_counts(w.cells, counts)


def test_per_imputation_estimates_feed_rubin(one_cohort) -> None:
    from helpers import imputation, models

    frame, _ = one_cohort
    res = imputation.impute_ethnicity(frame, None, 3, np.random.default_rng(0), weights=None)
    per = pooling.per_imputation_estimates(frame, res.completed, "treatment", "unadjusted", "Asian")
    assert list(per["imputation"]) == [1, 2, 3]
    direct = models.fit_stage(frame.assign(ethnicity=res.completed[1]), "treatment", "unadjusted")
    direct = direct.set_index("ethnicity")
    assert per.loc[1, "log_estimate"] == pytest.approx(direct.loc["Asian", "log_estimate"])
    assert per.loc[1, "se"] == pytest.approx(direct.loc["Asian", "se"])
    pooled = pooling.mi_estimates_from_rows(frame, res, progress=False)
    row = pooled[(pooled.stage == "treatment") & (pooled.model == "unadjusted") & (pooled.ethnicity == "Asian")].iloc[0]
    r = pooling.rubin(per["log_estimate"], per["variance"])
    assert r.estimate == pytest.approx(row["log_estimate"]) and r.df == pytest.approx(row["df"])
