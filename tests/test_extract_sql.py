"""Tests for helpers.extract_sql: the normalisation of real-world variants (one test per variant), each
counted in the flow and giving the counts of the study's own form, and dates in other forms as named exclusions."""

from __future__ import annotations

import pandas as pd
import pytest
from extract_rows import excluded, flow_n, rows

from helpers import extract as X
from helpers.extract_engines import DuckDBEngine
from helpers.extract_sql import core_sql


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


def _both_routes(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The one aggregate by the route the engine picks, and by pass 2 (every row checked), on one extract."""
    out = []
    for force in (None, "rows"):
        eng = DuckDBEngine()
        try:
            eng.register(raw, "pandas", None)
            summary, route = X.aggregate(eng, core_sql(), "pandas", force=force)
        finally:
            eng.close()
        out.append((summary.sort_values(list(summary.columns)).reset_index(drop=True), route))
    return out[0][0], out[1][0], out[0][1]


def test_one_pass_route_gives_the_row_route_aggregate_exactly():
    # coded and age variants, unknown codes, out-of-period and out-of-order dates, blank identifiers: all read
    # from pass 1's groups (every date is YYYY-MM-DD or blank), and the same aggregate as checking every row
    raw = rows({}, {"Validated_EthnicCategory": "a "}, {"Validated_EthnicCategory": "B1"},
               {"Validated_EthnicCategory": "-1"}, {"Validated_EthnicCategory": "NA"},
               {"Validated_EthnicCategory": "Z"}, {"Age_ReferralRequest_ReceivedDate": "34.0"},
               {"Age_ReferralRequest_ReceivedDate": "34.5"}, {"Age_ReferralRequest_ReceivedDate": "17"},
               {"Age_ReferralRequest_ReceivedDate": "120"}, {"Gender": "female"}, {"Gender": "X"},
               {"Gender": "7"}, {"SourceOfReferralIAPT": " b1"}, {"SourceOfReferralIAPT": "Q9"},
               {"Borough": "LAMBETH"}, {"Borough": "Bromley"}, {"ReferralRequestReceivedDate": "2012-12-31"},
               {"ReferralRequestReceivedDate": "2017-01-01"}, {"Assessment_FirstDate": "2014-02-01"},
               {"TherapySession_FirstDate": "2014-03-05"}, {"Assessment_FirstDate": ""},
               {"Assessment_FirstDate": "", "TherapySession_FirstDate": ""}, {"PathwayID": ""}, {"PathwayID": ""})
    fast, rows_route, route = _both_routes(raw)
    assert route == "fast"
    pd.testing.assert_frame_equal(fast, rows_route, check_exact=True)
    assert len(fast) > 10 and int(fast["n"].sum()) == len(raw)


@pytest.mark.parametrize("change", [
    {"PathwayID": "r1"},  # repeats the next row's identifier
    {"PathwayID": "r0 "},  # padded
    {"ReferralRequestReceivedDate": "01/03/2014"},
    {"Assessment_FirstDate": "2014-03-10 00:00:00"},
    {"TherapySession_FirstDate": "2014-02-30"},
    {"ReferralRequestReceivedDate": ""},
])
def test_a_date_not_yyyy_mm_dd_or_an_identifier_padded_or_repeated_takes_pass_two(change):
    fast, rows_route, route = _both_routes(rows(change, {}, {}))
    assert route == "rows"
    pd.testing.assert_frame_equal(fast, rows_route, check_exact=True)
