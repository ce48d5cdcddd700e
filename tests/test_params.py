"""Parameters: one schema, validated before any work, errors that name the parameter, value and valid range."""

from __future__ import annotations

import pytest

from helpers import params as P


def test_defaults_validate_and_match_the_paper():
    p = P.validate()
    assert p["n_referrals"] == 85_800 and p["missing_share"] == 0.185
    assert set(p) == set(P.SCHEMA)


@pytest.mark.parametrize("name,value,fragment", [
    ("n_referrals", -5, "'n_referrals' = -5 is out of range: expected a whole number >= 2,000"),
    ("n_referrals", 2.5, "'n_referrals' = 2.5 is not valid"),
    ("seed", "abc", "'seed' = 'abc' is not valid: expected a whole number"),
    ("missing_mechanism", "nope", "expected one of 'mcar', 'mar', 'mnar'"),
    ("outcome_mode", "sampled", "expected one of 'calibrated', 'random'"),
    ("n_imputations", 1, "'n_imputations' = 1 is out of range"),
    ("margin", "everyone", "'margin' = 'everyone' is not valid"),
    ("n_referrals", True, "'n_referrals' = True is not valid"),
])
def test_bad_values_are_named(name, value, fragment):
    with pytest.raises(P.ParameterError) as info:
        P.validate({name: value})
    assert fragment in str(info.value)


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(P.ParameterError, match=r"Unknown parameter 'n_referral'\. Did you mean n_referrals"):
        P.validate({"n_referral": 100})


def test_all_problems_reported_together():
    with pytest.raises(P.ParameterError) as info:
        P.validate({"seed": -1, "missing_mechanism": "x"})
    assert "seed" in str(info.value) and "missing_mechanism" in str(info.value)


def test_missing_files_and_impossible_combinations(tmp_path):
    with pytest.raises(P.ParameterError, match="'data_path'.*no such file"):
        P.validate(data_path=str(tmp_path / "none.csv"))
    extract = tmp_path / "extract.csv"
    extract.write_text("PathwayID\n")
    with pytest.raises(P.ParameterError, match="'margin' = 'truth' needs the synthetic cohort's truth file"):
        P.validate(data_path=str(extract), margin="truth")
    assert P.validate(data_path=str(extract), margin="census2011")["data_path"] == str(extract)


def test_default_margin_follows_the_data(tmp_path):
    """'auto': the true referred mix for a synthetic cohort, the 2011 Census for a real extract."""
    assert P.DEFAULTS["margin"] == "auto"
    assert P.validate()["margin"] == "truth"
    extract = tmp_path / "extract.csv"
    extract.write_text("PathwayID\n")
    assert P.validate(data_path=str(extract))["margin"] == "census2011"
    assert P.validate(data_path=str(extract), margin="auto")["margin"] == "census2011"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinite_values_are_refused(value):
    with pytest.raises(P.ParameterError, match="'missing_share' = (nan|inf|-inf) is not valid: expected a number"):
        P.validate(missing_share=value)
    with pytest.raises(P.ParameterError, match="'n_referrals' = .* is not valid"):
        P.validate(n_referrals=value)
    with pytest.raises(P.ParameterError, match="'missing_share'"):
        P.validate({"missing_share": P.parse_cli_value("missing_share", str(value))})


@pytest.mark.parametrize("name,text,expected", [
    ("n_referrals", "20_000", 20_000), ("seed", " 7 ", 7), ("missing_share", "0.2", 0.2),
    ("missing_mechanism", "mar", "mar"),
])
def test_cli_text_is_parsed_to_the_right_type(name, text, expected):
    assert P.parse_cli_value(name, text) == expected


def test_cli_text_that_is_not_a_number_is_named():
    with pytest.raises(P.ParameterError, match="'seed' = 'abc'"):
        P.parse_cli_value("seed", "abc")


def test_default_cohort_detection():
    assert P.is_default_cohort(P.validate())
    assert not P.is_default_cohort(P.validate(seed=1))
    assert P.is_default_cohort(P.validate(n_imputations=5)), "analysis settings do not change the cohort"


def test_overrides_are_what_validation_would_not_give_by_itself(tmp_path):
    """What the run injects into a notebook: setup(overrides) must rebuild the run's full validated set."""
    assert P.overrides(P.validate()) == {}
    smaller = P.validate(n_referrals=20_000, margin="truth")  # 'truth' is what 'auto' gives a synthetic cohort
    assert P.overrides(smaller) == {"n_referrals": 20_000}
    census = P.validate(margin="census2011")
    assert P.overrides(census) == {"margin": "census2011"}
    extract = tmp_path / "extract.csv"
    extract.write_text("PathwayID\n")
    real = P.validate(data_path=str(extract), output_dir=str(tmp_path))  # margin: 'auto' -> 'census2011'
    assert P.overrides(real) == {"data_path": str(extract), "output_dir": str(tmp_path)}
    for p in (smaller, census, real):
        assert P.validate(P.overrides(p)) == p
