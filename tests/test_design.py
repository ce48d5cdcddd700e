"""Tests of helpers.design: pattern counts and design matrices equal what pandas and patsy give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import design, study


def _softmax(eta: np.ndarray) -> np.ndarray:
    full = np.column_stack([np.zeros(eta.shape[0]), eta])
    full -= full.max(axis=1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=1, keepdims=True)


def make_frame(n: int, seed: int = 0, missing_eth: float = 0.05) -> pd.DataFrame:
    """A synthetic analysis frame as in docs/contracts.md, with ethnic gaps planted at every stage."""
    rng = np.random.default_rng(seed)
    G = len(study.GROUPS)
    eth = rng.choice(G, size=n, p=[0.4, 0.12, 0.12, 0.05, 0.1, 0.07, 0.1, 0.04])
    age = rng.integers(0, len(study.AGE_BANDS), n)
    gen = rng.integers(0, 2, n)
    yr = rng.integers(0, 4, n)
    bor = rng.integers(0, 4, n)
    eff = np.array([0.0, 0.4, 0.3, 0.5, -0.2, 0.2, -0.1, 0.1])
    lin = np.column_stack(
        [(-0.6 + 0.3 * k) + eff[eth] * (k - 1) + 0.05 * age - 0.1 * gen * k + 0.1 * (bor == 1) for k in range(1, 4)]
    )
    pr = _softmax(lin)
    src = (pr.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
    la = 0.8 - 0.4 * eff[eth] + 0.05 * age - 0.1 * gen + 0.05 * yr + 0.2 * (bor == 2)
    assessed = (rng.random(n) < 1 / (1 + np.exp(-la))).astype(int)
    lt = 0.4 - 0.6 * eff[eth] - 0.05 * age + 0.1 * yr - 0.1 * (bor == 3)
    treated = np.where(assessed == 1, (rng.random(n) < 1 / (1 + np.exp(-lt))).astype(float), np.nan)
    eth_obs = np.where(rng.random(n) < missing_eth, -1, eth)

    def cat(codes, levels):
        return pd.Categorical.from_codes(codes, categories=levels)

    return pd.DataFrame(
        {
            "referral_id": [f"R{i:06d}" for i in range(n)],
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


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(6000, seed=11)


def test_pattern_counts_equal_pandas_groupby(frame):
    covs = ["age_band", "gender", "year"]
    pc = design.pattern_counts(frame, covs, "treated", "logit")
    data = frame[(frame.assessed == 1) & frame.ethnicity.notna()]
    g = data.groupby(["ethnicity", *covs], observed=True)["treated"].agg(["sum", "count"]).reset_index()
    got = pc.patterns.assign(succ=pc.counts[:, 1], trials=pc.counts.sum(axis=1))
    merged = got.merge(g, on=["ethnicity", *covs], how="outer", validate="one_to_one")
    assert len(merged) == len(g) == len(got)
    np.testing.assert_array_equal(merged["succ"], merged["sum"])
    np.testing.assert_array_equal(merged["trials"], merged["count"])
    assert pc.n_rows == len(data)
    assert pc.n_excluded == int(((frame.assessed == 1) & frame.ethnicity.isna()).sum())


def test_design_matrix_names_and_reference(frame):
    pc = design.pattern_counts(frame, ["age_band", "year"], "assessed", "logit")
    X, names = design.design_matrix(pc.patterns, ["age_band", "year"])
    assert names[0] == "Intercept"
    assert "ethnicity[Black Caribbean]" in names and "ethnicity[White British]" not in names
    assert "age_band[25-34]" in names and "age_band[18-24]" not in names
    assert "year[2014]" in names
    assert X.shape == (len(pc.patterns), len(names))
    # ethnicity reference is White British even if the categories come in another order
    shuffled = pc.patterns.copy()
    shuffled["ethnicity"] = shuffled["ethnicity"].cat.reorder_categories(list(reversed(study.GROUPS)))
    X2, names2 = design.design_matrix(shuffled, ["age_band", "year"])
    assert "ethnicity[White British]" not in names2
    table, X3, names3 = design.design(frame, ["age_band"], stage="treatment")
    assert X3.shape[0] == len(table) and "n_1" in table.columns
