"""Tests of helpers.design: pattern counts and design matrices equal what pandas and patsy give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import design, study
from helpers.planted import planted_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return planted_frame(6000, seed=11)


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
