"""Tests of helpers.census: the census file read once, as resident counts and as a margin."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from helpers import census, study
from helpers.census import CensusWarning, margin_from_census


@pytest.fixture(scope="module")
def census_path():
    path = study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv"
    assert path.exists(), "the committed census margins are missing from data/published/"
    return path


def test_census_margin_default_uses_all_four_boroughs(census_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CensusWarning)  # the committed file is complete: nothing left out
        margin = margin_from_census(census_path)
    raw = pd.read_csv(census_path, dtype={"nhs_code": str})
    assert margin.attrs["boroughs"] == ["Southwark", "Lewisham", "Lambeth", "Croydon"]
    assert list(margin.index) == study.GROUPS and math.isclose(margin.sum(), 1.0)
    wb = raw.loc[raw["nhs_code"] == "A", "count"].sum() / raw["count"].sum()
    assert math.isclose(margin["White British"], wb)
    chinese_other = raw.loc[raw["nhs_code"].isin(["R", "S"]), "count"].sum() / raw["count"].sum()
    assert math.isclose(margin["Other"], chinese_other)  # Chinese grouped with Other (helpers.codes)
    # each borough weighted by its residents: the same as summing the four boroughs' counts
    by_borough = [margin_from_census(census_path, boroughs=[b]) for b in margin.attrs["boroughs"]]
    sizes = [raw.loc[raw["borough"] == b, "count"].sum() for b in margin.attrs["boroughs"]]
    pooled = sum(m * n for m, n in zip(by_borough, sizes)) / sum(sizes)
    np.testing.assert_allclose(margin.to_numpy(), pooled.to_numpy())


def test_census_margin_percentages_with_population_and_incomplete_borough(census_path, tmp_path):
    """A less complete file (as the project once had): percentages only for one borough, gaps in another."""
    raw = pd.read_csv(census_path, dtype={"nhs_code": str})
    lam = raw["borough"] == "Lambeth"
    raw.loc[lam, "count"] = np.nan
    raw.loc[lam, "status"] = "printed_percent_only"
    cro = (raw["borough"] == "Croydon") & (raw["nhs_code"] == "P")
    raw.loc[cro, ["count", "percent"]] = np.nan
    raw.loc[cro, "status"] = "not_found"
    path = tmp_path / "census_incomplete.csv"
    raw.to_csv(path, index=False)
    lam_pct = raw.loc[lam, "percent"]
    lam_margin = margin_from_census(path, boroughs=["Lambeth"], populations={"Lambeth": 1_000})
    wb_pct = raw.loc[lam & (raw["nhs_code"] == "A"), "percent"].iloc[0]
    assert math.isclose(lam_margin["White British"], wb_pct / lam_pct.sum())  # renormalised percentages
    assert any("percentages" in line for line in lam_margin.attrs["method"])
    with pytest.warns(CensusWarning, match="Lambeth.*Croydon|Croydon.*Lambeth"):
        default = margin_from_census(path)
    assert default.attrs["boroughs"] == ["Southwark", "Lewisham"]
    with pytest.raises(ValueError, match="Lambeth.*population"):
        margin_from_census(path, boroughs=["Lambeth"])
    with pytest.raises(ValueError, match="Croydon.*incomplete"):
        margin_from_census(path, boroughs=["Croydon"])
    with pytest.raises(ValueError, match="Bromley"):
        margin_from_census(path, boroughs=["Bromley"])


def test_census_population_maps_codes_to_groups() -> None:
    pop = census.census_population()
    assert list(pop.index) == study.GROUPS
    assert list(pop.columns) == ["Lambeth", "Southwark", "Lewisham", "Croydon"]  # all four, full QS201EW counts
    # hand sums from the printed QS201EW counts
    assert pop.loc["White British", "Southwark"] == 114534
    assert pop.loc["White Other", "Southwark"] == 6222 + 263 + 35330  # Irish + Gypsy/Traveller + Other White
    assert pop.loc["Asian", "Southwark"] == 5819 + 1623 + 3912 + 7764  # Indian, Pakistani, Bangladeshi, Other
    assert pop.loc["Other", "Lewisham"] == 6164 + 1456 + 5795  # Chinese (assumed Other), Arab, any other
    assert pop.loc["Mixed", "Lewisham"] == 8539 + 3559 + 3045 + 5329
    assert pop.loc["Black African", "Lambeth"] == 35187
    assert pop.loc["Asian", "Croydon"] == 24660 + 10865 + 2570 + 17607
    assert pop["Southwark"].sum() == 288283
    assert "all usual residents" in pop.attrs["note"]


def test_census_population_one_borough_as_text() -> None:
    pop = census.census_population(boroughs="Lewisham")
    assert list(pop.columns) == ["Lewisham"]


def _incomplete_census(tmp_path):
    raw = pd.read_csv(census.DEFAULT_CENSUS, dtype={"nhs_code": str})
    lam = raw["borough"] == "Lambeth"
    raw.loc[lam, "count"] = np.nan
    raw.loc[lam, "status"] = "printed_percent_only"
    cro = (raw["borough"] == "Croydon") & (raw["nhs_code"] == "P")
    raw.loc[cro, "count"] = np.nan
    raw.loc[cro, "status"] = "not_found"
    path = tmp_path / "census_incomplete.csv"
    raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "borough, words",
    [("Lambeth", "percentages only"), ("Croydon", "incomplete"),
     ("Bromley", "available: Southwark, Lewisham, Lambeth, Croydon")],
)
def test_census_population_clear_errors(tmp_path, borough: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        census.census_population(_incomplete_census(tmp_path), boroughs=("Southwark", borough))


def test_census_population_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        census.census_population(tmp_path / "nope.csv")
