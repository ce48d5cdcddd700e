"""Tests for helpers.extract_flow: the flow table lists every normalisation, also when none applies."""

from __future__ import annotations

import pytest

from helpers import cohort
from helpers import extract as X
from helpers.extract_checks import NORMALISATIONS


@pytest.fixture(scope="module")
def default_csv_result():
    return X.run(cohort.DEFAULT_COHORT)


def test_flow_counts_every_normalisation_even_when_none(default_csv_result):
    f = default_csv_result.flow
    assert list(f.loc[f["step"] == "normalised", "check"]) == [n.code for n in NORMALISATIONS]
    assert (f.loc[f["step"] == "normalised", "n_rows"] == 0).all()
    assert list(f["step"].unique()) == ["extract", "normalised", "excluded", "analysed", "within analysed"]
