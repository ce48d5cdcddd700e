"""The nine models and weighted MI from pattern counts alone equal the row-level route (ModelPlan, imputation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import extract, imputation, models, pipeline, pooling
from helpers import fromcounts as FC

NUM = ["estimate", "ci_low", "ci_high", "log_estimate", "se", "p_value"]


@pytest.fixture(scope="module")
def data():
    return pipeline.load_study_data()


@pytest.fixture(scope="module")
def counts(data):
    return FC.count_data(extract.run(pipeline.cohort.DEFAULT_COHORT).pattern_counts)


def _close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a[NUM].to_numpy(float), b[NUM].to_numpy(float), rtol=1e-8, atol=1e-10)
    rest = [c for c in a.columns if c not in NUM]
    pd.testing.assert_frame_equal(a[rest], b[rest])


def test_complete_case_from_counts_equals_rows(data, counts):
    assert counts.n == len(data.frame)
    _close(FC.complete_case(counts), models.fit_all(data.frame))


def test_imputation_model_from_counts_equals_rows(data, counts):
    margin = pipeline.population_margin(data)
    rows = imputation.impute_ethnicity(data.frame, margin, 2, np.random.default_rng(3))
    cnt = FC.impute(counts, margin, 2, np.random.default_rng(3))
    np.testing.assert_allclose(cnt.weights.to_numpy(), rows.weights.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(cnt.fit.params), np.asarray(rows.fit.params), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(cnt.fit.cov), np.asarray(rows.fit.cov), rtol=1e-8, atol=1e-12)
    assert cnt.n_missing == rows.n_missing
    for c in cnt.completed:  # every missing referral placed in exactly one group, observed ones untouched
        np.testing.assert_array_equal(c.sum(axis=1), counts.observed.sum(axis=1) + counts.missing)
        assert (c >= counts.observed).all()


def test_pooled_mi_from_counts_equals_rows_on_the_same_completions(data, counts):
    margin = pipeline.population_margin(data)
    rows = imputation.impute_ethnicity(data.frame, margin, 3, np.random.default_rng(11))
    completed = [FC.completed_counts(counts, data.frame, c) for c in rows.completed]
    _close(FC.mi_estimates(counts, completed), pooling.mi_estimates(data.frame, rows, progress=False))


def test_estimates_entry_point_and_reproducible(data, counts):
    margin = pipeline.population_margin(data)
    a = FC.estimates(counts, margin, 3, np.random.default_rng(1))
    b = FC.estimates(counts, margin, 3, np.random.default_rng(1))
    pd.testing.assert_frame_equal(a, b)
    assert set(a["analysis"]) == {"complete_case", "weighted_mi"}
    # per-pattern multinomial draws and per-row draws differ only by Monte Carlo error
    rows = pipeline.mi_estimates(data.__class__(**{**data.__dict__, "params": {**data.params, "n_imputations": 3}}))
    mi = a[a["analysis"] == "weighted_mi"].reset_index(drop=True)
    ok = mi["se"].notna()
    diff = (mi.loc[ok, "log_estimate"] - rows.loc[ok, "log_estimate"]).abs() / mi.loc[ok, "se"]
    assert diff.max() < 1.0


def test_bad_pattern_counts_named():
    pc = pd.DataFrame({c: ["White British"] if c == "ethnicity" else ["x"] for c in FC.PATTERN_COLUMNS})
    pc["n"] = [1]
    with pytest.raises(ValueError, match="column 'age_band' has values \\['x'\\]"):
        FC.count_data(pc)
    with pytest.raises(ValueError, match="lack columns \\['n'\\]"):
        FC.count_data(pc.drop(columns="n"))
