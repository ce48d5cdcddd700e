"""Tests for helpers.extract_columns: v2.x field names and a local YAML column mapping, counted in the flow,
and the message a wrong mapping gets."""

from __future__ import annotations

import pandas as pd
import pytest
from extract_rows import flow_n, rows

from helpers import extract as X
from helpers.extract_checks import ExtractError


def test_v2_field_names_recognised_and_counted():
    raw = rows({}, {"Validated_EthnicCategory": "Z"})
    v2 = raw.rename(columns={"SourceOfReferralIAPT": "SourceOfReferralMH",
                             "Validated_EthnicCategory": "EthnicCategory"})
    res, ref = X.run(v2), X.run(raw)
    pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
    renamed = res.flow[res.flow["check"] == "column_renamed"]
    assert list(renamed["reason"]) == ["column EthnicCategory -> Validated_EthnicCategory (later dataset version)",
                                       "column SourceOfReferralMH -> SourceOfReferralIAPT (later dataset version)"]
    assert (renamed["n_rows"] == 2).all()


def test_local_names_through_a_yaml_mapping(tmp_path):
    raw = rows({}, {"Borough": "Croydon"})
    local = raw.rename(columns={"PathwayID": "referral_key", "Borough": "service_area"})
    path = tmp_path / "extract.csv"
    local.to_csv(path, index=False)
    mapping = tmp_path / "columns.yaml"
    mapping.write_text("columns:\n  PathwayID: referral_key\n  Borough: service_area\n")
    res = X.run(path, columns=mapping)
    pd.testing.assert_frame_equal(res.pattern_counts, X.run(raw).pattern_counts)
    assert flow_n(res, "normalised", "column_renamed") == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("Borugh: service_area\n")
    with pytest.raises(ExtractError, match="'Borugh' is not a study field; valid keys: PathwayID"):
        X.run(path, columns=bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("PathwayID: no_such_column\n")
    with pytest.raises(ExtractError, match="'no_such_column', which the extract does not have"):
        X.run(path, columns=wrong)
