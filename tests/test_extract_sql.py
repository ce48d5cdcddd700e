"""Tests for helpers.extract_sql: the normalisation of real-world variants (one test per variant), each
counted in the flow and giving the counts of the study's own form, and dates in other forms as named exclusions."""

from __future__ import annotations

import pandas as pd
from extract_rows import excluded, flow_n, rows

from helpers import extract as X


def _one_variant(changes: list[dict], reference: list[dict], code: str, n: int) -> X.ExtractResult:
    res = X.run(rows(*changes), rows=True)
    ref = X.run(rows(*reference))
    assert flow_n(res, "normalised", code) == n, res.flow
    pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
    assert excluded(res) == excluded(ref)
    return res


def test_iso_date_with_time_part():
    _one_variant([{"ReferralRequestReceivedDate": "2014-03-01 00:00:00.000"},
                  {"Assessment_FirstDate": "2014-03-10T09:30:00", "TherapySession_FirstDate": "2014-04-01 00:00"}],
                 [{}, {}], "date_time_part_dropped", 2)


def test_day_first_dates_unambiguous_and_ambiguous_are_counted_apart():
    res = _one_variant([{"ReferralRequestReceivedDate": "25/03/2014", "Assessment_FirstDate": "28/03/2014",
                         "TherapySession_FirstDate": "01/04/2014"},
                        {"ReferralRequestReceivedDate": "1/3/2014 00:00:00"}],
                       [{"ReferralRequestReceivedDate": "2014-03-25", "Assessment_FirstDate": "2014-03-28"},
                        {}], "date_day_first", 1)
    assert flow_n(res, "normalised", "date_day_first_ambiguous") == 2  # 01/04/2014 and 1/3/2014 read day-first
    assert res.rows["ref_ymd"].tolist() == [20140325, 20140301]


def test_dates_in_other_forms_are_named_exclusions():
    res = X.run(rows({"ReferralRequestReceivedDate": "2014/03/01"}, {"Assessment_FirstDate": "March 10 2014"},
                     {"ReferralRequestReceivedDate": "31/02/2014"}, {"TherapySession_FirstDate": "2014-13-01"}))
    t = res.report.table.set_index("check")
    assert t.loc["referral_date_invalid", "n_rows"] == 2
    assert t.loc["referral_date_invalid", "example_values"] == ("2014/03/01", "31/02/2014")
    assert t.loc["assessment_date_invalid", "example_lines"] == (3,)
    assert t.loc["treatment_date_invalid", "example_values"] == ("2014-13-01",)


def test_codes_padded_or_lower_case():
    res = _one_variant([{"SourceOfReferralIAPT": "b1", "Validated_EthnicCategory": "a "},
                        {"Borough": " southwark", "Gender": "x"}, {"PathwayID": " r2 "}],
                       [{"SourceOfReferralIAPT": "B1"}, {"Borough": "Southwark", "Gender": "X"}, {}],
                       "code_case_folded", 2)
    assert flow_n(res, "normalised", "whitespace_trimmed") == 3
    assert flow_n(res, "excluded", "gender_not_known") == 1


def test_two_character_ethnic_codes_read_by_first_character():
    res = _one_variant([{"Validated_EthnicCategory": "A1"}, {"Validated_EthnicCategory": "Nx"},
                        {"Validated_EthnicCategory": "99"}, {"Validated_EthnicCategory": "NA"}],
                       [{}, {"Validated_EthnicCategory": "N"}, {"Validated_EthnicCategory": "99"},
                        {"Validated_EthnicCategory": "NA"}], "ethnic_two_character", 2)
    assert flow_n(res, "excluded", "ethnic_unknown_code") == 1  # 'NA' stays an unknown code, never missing
    assert res.report["ethnic_unknown_code"]["example_values"] == ("NA",)


def test_negative_not_stated_codes_are_missing_ethnicity():
    res = _one_variant([{"Validated_EthnicCategory": "-1"}, {"Validated_EthnicCategory": "-3"}, {}],
                       [{"Validated_EthnicCategory": "99"}, {"Validated_EthnicCategory": "99"}, {}],
                       "ethnic_negative_code", 2)
    assert flow_n(res, "within analysed", "ethnicity_missing") == 2


def test_integral_age_written_as_decimal():
    res = _one_variant([{"Age_ReferralRequest_ReceivedDate": "34.0"}, {"Age_ReferralRequest_ReceivedDate": "30.50"}],
                       [{"Age_ReferralRequest_ReceivedDate": "34"}, {"Age_ReferralRequest_ReceivedDate": "30.50"}],
                       "age_decimal", 1)
    assert res.report["age_not_integer"]["example_values"] == ("30.50",)


def test_gender_as_in_other_nhs_datasets():
    _one_variant([{"Gender": "F"}, {"Gender": "Male"}, {"Gender": "0"}, {"Gender": "I"}],
                 [{"Gender": "2"}, {"Gender": "1"}, {"Gender": "X"}, {"Gender": "9"}], "gender_other_dataset_code", 4)
