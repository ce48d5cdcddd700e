"""Tests for helpers.prepare: validation report, exclusions, flow accounting, code mapping, data dictionary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from extract_rows import GOOD

from helpers import codes, cohort, extract, fromcounts, study
from helpers import prepare as P
from helpers.prepare import ExtractError


def row(pid, **changes):
    r = dict(GOOD, PathwayID=pid)
    r.update(changes)
    return r


def frame(rows):
    return pd.DataFrame(rows, columns=P.REQUIRED_COLUMNS)


# Six valid rows, then one row per problem. Line number in the CSV = position + 2.
VALID = [
    row("v1"),
    row("v2", Validated_EthnicCategory="B", SourceOfReferralIAPT="B1", Gender="1", Borough="Southwark"),
    row("v3", Validated_EthnicCategory="R", SourceOfReferralIAPT="E3", Assessment_FirstDate="",
        TherapySession_FirstDate=""),
    row("v4", Validated_EthnicCategory="Z", SourceOfReferralIAPT="G4", TherapySession_FirstDate=""),
    row("v5", Validated_EthnicCategory="99", SourceOfReferralIAPT="N4", Age_ReferralRequest_ReceivedDate="65"),
    row("v6", Validated_EthnicCategory="", ReferralRequestReceivedDate="2016-12-31", Assessment_FirstDate="2017-01-05",
        TherapySession_FirstDate="2017-02-01", Age_ReferralRequest_ReceivedDate="18"),
]
PROBLEMS = {  # check -> (row, offending value as reported)
    "pathway_id_blank": (row(""), ""),
    "pathway_id_duplicate": (row("v1"), "v1 (first on line 2)"),
    "referral_date_invalid": (row("p3", ReferralRequestReceivedDate="2015-02-30"), "2015-02-30"),
    "referral_date_out_of_period": (row("p4", ReferralRequestReceivedDate="2012-12-31"), "2012-12-31"),
    "age_not_integer": (row("p5", Age_ReferralRequest_ReceivedDate="30.5"), "30.5"),
    "age_out_of_range": (row("p6", Age_ReferralRequest_ReceivedDate="111"), "111"),
    "gender_unknown_code": (row("p7", Gender="Q"), "Q"),  # F is now read as female (other NHS datasets)
    "ethnic_unknown_code": (row("p8", Validated_EthnicCategory="NA"), "NA"),
    "source_unknown_code": (row("p9", SourceOfReferralIAPT="Z9"), "Z9"),
    "borough_unknown": (row("p10", Borough="Leeds"), "Leeds"),
    "assessment_date_invalid": (row("p11", Assessment_FirstDate="10 March 2014"), "10 March 2014"),  # dd/mm/yyyy is read
    "assessment_before_referral": (row("p12", Assessment_FirstDate="2014-02-28"),
                                   "Assessment_FirstDate='2014-02-28'; ReferralRequestReceivedDate='2014-03-01'"),
    "treatment_date_invalid": (row("p13", TherapySession_FirstDate="2014-4-1"), "2014-4-1"),
    "treatment_without_assessment": (row("p14", Assessment_FirstDate=""),
                                     "TherapySession_FirstDate='2014-04-01'; Assessment_FirstDate=''"),
    "treatment_before_assessment": (row("p15", TherapySession_FirstDate="2014-03-09"),
                                    "TherapySession_FirstDate='2014-03-09'; Assessment_FirstDate='2014-03-10'"),
    "age_under_18": (row("p16", Age_ReferralRequest_ReceivedDate="17"), "17"),
    "gender_not_known": (row("p17", Gender="X"), "X"),
}


@pytest.fixture
def raw():
    return frame(VALID + [r for r, _ in PROBLEMS.values()])


def line_of(check):
    return len(VALID) + list(PROBLEMS).index(check) + P.FIRST_DATA_LINE


# --- validation -----------------------------------------------------------------------------------------
def test_every_check_listed_once_and_in_problems():
    assert [c.code for c in P.EXCLUSION_CHECKS] == list(PROBLEMS)
    assert list(P.validate_extract(frame(VALID)).table["check"]) == [c.code for c in P.CHECKS]


def test_each_problem_reported_with_count_line_and_value(raw):
    rep = P.validate_extract(raw)
    t = rep.table.set_index("check")
    for check, (_, value) in PROBLEMS.items():
        assert t.loc[check, "n_rows"] == 1, check
        assert t.loc[check, "example_lines"] == (line_of(check),), check
        assert t.loc[check, "example_values"] == (value,), check
        assert t.loc[check, "action"] == "excluded"
    # missing ethnicity: Z, 99 and blank on lines 5, 6, 7; kept
    assert t.loc["ethnicity_missing", "n_rows"] == 3
    assert t.loc["ethnicity_missing", "example_lines"] == (5, 6, 7)
    assert t.loc["ethnicity_missing", "example_values"] == ("Z", "99", "")
    assert t.loc["ethnicity_missing", "action"] == "kept as missing"
    assert not rep.ok
    assert rep.n_excluded == len(PROBLEMS)
    assert rep.n_invalid == len(PROBLEMS) - 2  # age under 18 and gender not known are not data errors
    text = str(rep)
    assert "unknown ethnic category code" in text and "'NA'" in text and f"lines {line_of('ethnic_unknown_code')}" in text


def test_examples_capped_at_five_and_counts_full():
    rows = VALID + [row(f"b{i}", Borough="Leeds") for i in range(8)]
    t = P.validate_extract(frame(rows)).table.set_index("check")
    assert t.loc["borough_unknown", "n_rows"] == 8
    assert t.loc["borough_unknown", "example_lines"] == tuple(range(8, 13))


def test_clean_extract_is_ok():
    rep = P.validate_extract(frame(VALID))
    assert rep.ok and rep.n_excluded == 0
    assert "checks passed" not in str(rep)  # missing ethnicity is still shown
    rep2 = P.validate_extract(frame([row("a"), row("b")]))
    assert f"All {len(P.CHECKS)} checks passed" in str(rep2)


def test_row_with_several_problems_counted_once_under_first_reason():
    bad = row("m1", Validated_EthnicCategory="NA", Borough="Leeds", Gender="9")
    pr = P.prepare(frame(VALID + [bad]))
    t = pr.report.table.set_index("check")
    assert t.loc["ethnic_unknown_code", "n_rows"] == 1 and t.loc["borough_unknown", "n_rows"] == 1
    assert t.loc["gender_not_known", "n_rows"] == 1
    excl = pr.flow[pr.flow["step"] == "excluded"].set_index("check")["n_rows"]
    assert excl.sum() == 1 and excl["ethnic_unknown_code"] == 1
    assert pr.report.row_reason.iloc[-1] == "unknown ethnic category code"


def test_missing_required_column_lists_names():
    raw = frame(VALID).drop(columns=["Gender", "Borough"])
    with pytest.raises(ExtractError) as e:
        P.validate_extract(raw)
    msg = str(e.value)
    assert "Gender, Borough" in msg
    for col in P.REQUIRED_COLUMNS:
        assert col in msg
    with pytest.raises(ExtractError):
        P.prepare(raw)


def test_nan_values_rejected_not_silently_missing():
    raw = frame(VALID)
    raw.loc[0, "Validated_EthnicCategory"] = np.nan
    with pytest.raises(ExtractError, match="read_extract"):
        P.validate_extract(raw)


# --- prepare --------------------------------------------------------------------------------------------
def test_flow_accounts_for_every_row(raw):
    pr = P.prepare(raw)
    f = pr.flow
    assert list(f.columns) == P.FLOW_COLUMNS
    n_in = f.loc[f["step"] == "extract", "n_rows"].item()
    n_an = f.loc[f["step"] == "analysed", "n_rows"].item()
    excl = f[f["step"] == "excluded"]
    assert n_in == len(raw)
    assert n_in == n_an + excl["n_rows"].sum()
    assert n_an == len(pr.frame) == len(VALID)
    assert (excl.set_index("check")["n_rows"] == 1).all()
    assert list(excl["n_remaining"]) == list(range(n_in - 1, n_an - 1, -1))
    within = f[f["step"] == "within analysed"].set_index("check")["n_rows"]
    assert within["ethnicity_recorded"] == 3 and within["ethnicity_missing"] == 3
    assert within["assessed"] == 5 and within["treated"] == 4
    text = P.flow_text(f)
    assert "Referrals in extract" in text and "gender not known" in text
    assert "PathwayID blank" not in P.flow_text(P.prepare(frame(VALID)).flow)


def test_frame_columns_types_and_levels(raw):
    fr = P.prepare(raw).frame
    assert list(fr.columns) == P.ANALYSIS_COLUMNS
    assert list(fr["referral_id"]) == [f"v{i}" for i in range(1, 7)]
    for col, levels in [("ethnicity", study.GROUPS), ("age_band", study.AGE_BANDS), ("gender", study.GENDERS),
                        ("year", study.YEARS), ("borough", study.BOROUGHS), ("referral_source", study.SOURCES)]:
        assert isinstance(fr[col].dtype, pd.CategoricalDtype), col
        assert list(fr[col].cat.categories) == levels, col
    assert fr["assessed"].dtype == np.int64 and fr["treated"].dtype == np.float64
    assert fr["age"].dtype == np.int64
    assert list(fr["age"]) == [30, 30, 30, 30, 65, 18]
    assert list(fr["age_band"]) == ["25-34"] * 4 + ["65+", "18-24"]
    assert list(fr["year"]) == [2014] * 5 + [2016]
    assert list(fr["gender"]) == ["Female", "Male", "Female", "Female", "Female", "Female"]
    assert list(fr["borough"])[:2] == ["Lambeth", "Southwark"]
    assert fr["referral_date"].iloc[5] == pd.Timestamp("2016-12-31")


def test_ethnicity_mapping():
    fr = P.prepare(frame(VALID)).frame.set_index("referral_id")
    assert fr.loc["v1", "ethnicity"] == "White British"
    assert fr.loc["v2", "ethnicity"] == "White Other"
    assert fr.loc["v3", "ethnicity"] == codes.CHINESE_GROUP == "Other"
    assert fr.loc[["v4", "v5", "v6"], "ethnicity"].isna().all()
    assert list(fr.loc[["v4", "v5", "v6"], "ethnic_code"]) == ["Z", "99", ""]


def test_every_ethnic_code_maps_like_codes_table():
    rows = [row(f"e{i}", Validated_EthnicCategory=c) for i, c in enumerate(codes.ETHNIC_CODE_TO_GROUP)]
    fr = P.prepare(frame(rows)).frame
    expected = [g if g is not None else np.nan for g in codes.ETHNIC_CODE_TO_GROUP.values()]
    pd.testing.assert_series_equal(fr["ethnicity"].astype(object), pd.Series(expected, dtype=object),
                                   check_names=False)


def test_source_mapping():
    fr = P.prepare(frame(VALID)).frame.set_index("referral_id")
    assert list(fr["referral_source"]) == ["GP", "Self", "Community", "Community", "Other", "GP"]
    rows = [row(f"s{i}", SourceOfReferralIAPT=c) for i, c in enumerate(codes.SOURCE_CODE_TO_CATEGORY)]
    got = P.prepare(frame(rows)).frame["referral_source"].astype(str).tolist()
    assert got == list(codes.SOURCE_CODE_TO_CATEGORY.values())


def test_assessed_and_treated():
    fr = P.prepare(frame(VALID)).frame.set_index("referral_id")
    assert fr.loc["v3", "assessed"] == 0 and np.isnan(fr.loc["v3", "treated"])
    assert fr.loc["v4", "assessed"] == 1 and fr.loc["v4", "treated"] == 0.0
    assert fr.loc["v1", "assessed"] == 1 and fr.loc["v1", "treated"] == 1.0
    assert fr["treated"].isna().sum() == (fr["assessed"] == 0).sum()


def test_na_string_is_unknown_code_not_missing():
    pr = P.prepare(frame(VALID + [row("na", Validated_EthnicCategory="NA")]))
    t = pr.report.table.set_index("check")
    assert t.loc["ethnic_unknown_code", "n_rows"] == 1
    assert t.loc["ethnic_unknown_code", "example_values"] == ("NA",)
    assert t.loc["ethnicity_missing", "n_rows"] == 3
    assert "na" not in set(pr.frame["referral_id"])


def test_strict_mode(raw):
    with pytest.raises(ExtractError) as e:
        P.prepare(raw, strict=True)
    assert e.value.report is not None and not e.value.report.ok
    assert "unknown ethnic category code" in str(e.value)
    # out-of-scope rows are not data errors: strict passes and still excludes them
    pr = P.prepare(frame(VALID + [PROBLEMS["age_under_18"][0], PROBLEMS["gender_not_known"][0]]), strict=True)
    assert len(pr.frame) == len(VALID)


def test_empty_extract():
    pr = P.prepare(frame([]))
    assert len(pr.frame) == 0 and list(pr.frame.columns) == P.ANALYSIS_COLUMNS
    assert pr.flow.loc[pr.flow["step"] == "extract", "n_rows"].item() == 0


def test_non_default_index_uses_positions():
    raw = frame(VALID + [row("p", Borough="Leeds")])
    raw.index = raw.index * 10 + 7
    t = P.validate_extract(raw).table.set_index("check")
    assert t.loc["borough_unknown", "example_lines"] == (len(VALID) + 2,)


# --- reading --------------------------------------------------------------------------------------------
def test_csv_round_trip_keeps_99_blank_and_na(tmp_path, raw):
    path = tmp_path / "extract.csv"
    raw.to_csv(path, index=False)
    back = P.read_extract(path)
    pd.testing.assert_frame_equal(back, raw)
    assert "99" in set(back["Validated_EthnicCategory"]) and "" in set(back["Validated_EthnicCategory"])
    assert "NA" in set(back["Validated_EthnicCategory"])
    # line numbers refer to the file
    lines = path.read_text().splitlines()
    t = P.validate_extract(back).table.set_index("check")
    ln = t.loc["borough_unknown", "example_lines"][0]
    assert "Leeds" in lines[ln - 1]
    assert P.validate_extract(back).source == path.name  # name only: no machine path in reports


def test_read_extract_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No extract file"):
        P.read_extract(tmp_path / "nope.csv")
    xlsx = tmp_path / "x.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(ExtractError, match="CSV"):
        P.read_extract(xlsx)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x9a" * 50)
    with pytest.raises(ExtractError):
        P.read_extract(binary)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ExtractError, match="empty"):
        P.read_extract(empty)
    semi = tmp_path / "semi.csv"
    semi.write_text(";".join(P.REQUIRED_COLUMNS) + "\n" + ";".join(GOOD.values()) + "\n")
    with pytest.raises(ExtractError, match="comma-separated"):
        P.read_extract(semi)
    short = tmp_path / "short.csv"
    short.write_text(",".join(P.REQUIRED_COLUMNS) + "\n" + ",".join(GOOD.values()) + "\nr9,2014-01-01\n")
    with pytest.raises(ExtractError, match="fewer fields than the header \\(lines 3\\)"):
        P.read_extract(short)
    crlf = tmp_path / "crlf.csv"
    crlf.write_text(",".join(P.REQUIRED_COLUMNS) + "\r\n" + ",".join(GOOD.values()) + "\r\nr9,2014-01-01\r\n")
    with pytest.raises(ExtractError, match="fewer fields than the header \\(lines 3\\)"):
        P.read_extract(crlf)
    quoted = tmp_path / "quoted.csv"  # csv-module path: quoted field with a comma, then a short line
    quoted.write_text(",".join(P.REQUIRED_COLUMNS) + "\n" + ",".join(GOOD.values()).replace("Lambeth", '"Lam,beth"')
                      + "\n" + ",".join(GOOD.values()) + "\r\nr9,2014-01-01\r\n")
    with pytest.raises(ExtractError, match="fewer fields than the header \\(lines 4\\)"):
        P.read_extract(quoted)


def test_blank_line_counted_not_dropped(tmp_path):
    path = tmp_path / "e.csv"
    text = frame(VALID).to_csv(index=False)
    head, first, rest = text.split("\n", 2)
    path.write_text(head + "\n" + first + "\n\n" + rest)
    back = P.read_extract(path)
    assert len(back) == len(VALID) + 1
    t = P.validate_extract(back).table.set_index("check")
    assert t.loc["pathway_id_blank", "example_lines"] == (3,)


# --- data dictionary ------------------------------------------------------------------------------------




# --- the analysis frame rebuilt from pattern counts ---------------------------------------------------------
def test_frame_from_counts_holds_the_rows_of_the_frame_less_the_row_level_columns():
    raw = P.read_extract(cohort.DEFAULT_COHORT).head(4000)
    frame = P.prepare(raw).frame
    rebuilt = P.frame_from_counts(extract.run(raw).pattern_counts)
    assert list(rebuilt.columns) == P.COUNTS_COLUMNS
    assert [c for c in P.ANALYSIS_COLUMNS if c not in rebuilt.columns] == ["referral_id", "referral_date", "age",
                                                                          "ethnic_code"]
    for c in P.COUNTS_COLUMNS:
        assert rebuilt[c].dtype == frame[c].dtype, c
    key = P.COUNTS_COLUMNS
    a = rebuilt.astype(str).sort_values(key).reset_index(drop=True)
    b = frame[key].astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # the same referrals, pattern by pattern
    pc = fromcounts.pattern_counts_from_frame(frame)
    with pytest.raises(P.ExtractError, match="column 'borough' has value\\(s\\) \\['Leeds'\\] outside"):
        P.frame_from_counts(pc.assign(borough=pc["borough"].astype(object).where(pc.index > 0, "Leeds")))
    with pytest.raises(P.ExtractError, match="pattern counts lack n"):
        P.frame_from_counts(pc.drop(columns="n"))
