"""Tests for helpers.extract: inputs, the normalisation of real-world variants (one test per variant), the
pattern counts against the row-level route, the CLI and the error messages."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import cohort, fromcounts, study
from helpers import extract as X
from helpers import prepare as P
from helpers.extract import ExtractError

GOOD = {
    "PathwayID": "r0",
    "ReferralRequestReceivedDate": "2014-03-01",
    "Age_ReferralRequest_ReceivedDate": "30",
    "Gender": "2",
    "Validated_EthnicCategory": "A",
    "SourceOfReferralIAPT": "A1",
    "Borough": "Lambeth",
    "Assessment_FirstDate": "2014-03-10",
    "TherapySession_FirstDate": "2014-04-01",
}


def rows(*changes: dict) -> pd.DataFrame:
    out = []
    for i, ch in enumerate(changes):
        r = dict(GOOD, PathwayID=f"r{i}")
        r.update(ch)
        out.append(r)
    return pd.DataFrame(out, columns=X.REQUIRED_COLUMNS)


def flow_n(res: X.ExtractResult, step: str, check: str) -> int:
    f = res.flow
    return int(f.loc[(f["step"] == step) & (f["check"] == check), "n_rows"].sum())


def excluded(res: X.ExtractResult) -> int:
    return int(res.flow.loc[res.flow["step"] == "excluded", "n_rows"].sum())


@pytest.fixture(scope="module")
def default_csv_result():
    return X.run(cohort.DEFAULT_COHORT)


# --- the default cohort: engine vs row-level route ---------------------------------------------------------
def test_default_cohort_counts_equal_row_level_route(default_csv_result):
    raw = P.read_extract(cohort.DEFAULT_COHORT)
    prepared = P.prepare(raw)
    rows_pc = fromcounts.pattern_counts_from_frame(prepared.frame).astype({"year": np.int64})
    cols = fromcounts.PATTERN_COLUMNS
    a = default_csv_result.pattern_counts.sort_values(cols).reset_index(drop=True)
    b = rows_pc[a.columns].sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(default_csv_result.flow, prepared.flow)
    assert a["n"].sum() == len(prepared.frame) == len(raw) == 85_800
    assert list(default_csv_result.pattern_counts.columns) == X.PATTERN_COLUMNS + ["n"]


def test_flow_counts_every_normalisation_even_when_none(default_csv_result):
    f = default_csv_result.flow
    assert list(f.loc[f["step"] == "normalised", "check"]) == [n.code for n in X.NORMALISATIONS]
    assert (f.loc[f["step"] == "normalised", "n_rows"] == 0).all()
    assert list(f["step"].unique()) == ["extract", "normalised", "excluded", "analysed", "within analysed"]


# --- inputs: CSV dialects, gzip, Parquet, typed frames ------------------------------------------------------
def _expected(raw: pd.DataFrame) -> X.ExtractResult:
    return X.run(raw)


@pytest.mark.parametrize("dialect", ["semicolon", "tab", "pipe", "crlf_bom", "quoted", "gzip"])
def test_csv_dialects_read_the_same(tmp_path, dialect):
    raw = rows({}, {"Validated_EthnicCategory": "Z"}, {"Assessment_FirstDate": "", "TherapySession_FirstDate": ""},
               {"Borough": "Leeds"})
    sep = {"semicolon": ";", "tab": "\t", "pipe": "|"}.get(dialect, ",")
    text = raw.to_csv(index=False, sep=sep, lineterminator="\r\n" if dialect == "crlf_bom" else "\n",
                      quoting=1 if dialect == "quoted" else 0)
    path = tmp_path / ("e.csv.gz" if dialect == "gzip" else "e.csv")
    data = ("\ufeff" + text if dialect == "crlf_bom" else text).encode("utf-8")
    path.write_bytes(gzip.compress(data) if dialect == "gzip" else data)
    res, ref = X.run(path), _expected(raw)
    pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
    pd.testing.assert_frame_equal(res.flow, ref.flow)
    assert res.report["borough_unknown"]["example_lines"] == (5,)


def test_parquet_file_and_folder(tmp_path):
    raw = rows({}, {"Gender": "1"}, {"Validated_EthnicCategory": "99"}, {"Gender": "X"}, {"Borough": "Leeds"})
    import duckdb

    con = duckdb.connect()
    con.register("r", raw)
    con.execute(f"COPY (SELECT * FROM r) TO '{tmp_path / 'one.parquet'}' (FORMAT parquet)")
    folder = tmp_path / "parts"
    folder.mkdir()
    con.execute(f"COPY (SELECT * FROM r LIMIT 3) TO '{folder / 'part-0.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM r OFFSET 3) TO '{folder / 'part-1.parquet'}' (FORMAT parquet)")
    ref = _expected(raw)
    for src in (tmp_path / "one.parquet", folder):
        res = X.run(src)
        pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
        pd.testing.assert_frame_equal(res.flow, ref.flow)
        assert res.report["borough_unknown"]["example_lines"] == (6,)


def test_parquet_file_of_many_row_groups_keeps_file_line_numbers(tmp_path):
    """One Parquet file is numbered by its own row number (no window over every row): across row groups too."""
    import duckdb

    raw = rows(*([{}] * 2500 + [{"Borough": "Leeds"}] + [{}] * 10 + [{"Gender": "Q"}]))
    con = duckdb.connect()
    con.register("r", raw)
    path = tmp_path / "groups.parquet"
    con.execute(f"COPY (SELECT * FROM r) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1024)")
    assert con.execute(f"SELECT COUNT(*) FROM parquet_metadata('{path}') GROUP BY row_group_id").df().shape[0] >= 2
    res = X.run(path)
    ref = _expected(raw)
    pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
    assert res.report["borough_unknown"]["example_lines"] == (2502,)
    assert res.report["gender_unknown_code"]["example_lines"] == (2513,)


def test_typed_frame_as_from_spark_topandas():
    """Real dates, integers and None (what ``toPandas()`` gives) are read, not refused."""
    raw = rows({}, {"Assessment_FirstDate": "", "TherapySession_FirstDate": ""}, {"Validated_EthnicCategory": ""})
    typed = raw.copy()
    typed["Age_ReferralRequest_ReceivedDate"] = raw["Age_ReferralRequest_ReceivedDate"].astype(int)
    for c in ("ReferralRequestReceivedDate", "Assessment_FirstDate", "TherapySession_FirstDate"):
        typed[c] = pd.to_datetime(raw[c].replace("", None)).dt.date
    typed["Validated_EthnicCategory"] = raw["Validated_EthnicCategory"].replace("", None)
    res, ref = X.run(typed), _expected(raw)
    pd.testing.assert_frame_equal(res.pattern_counts, ref.pattern_counts)
    assert excluded(res) == 0
    assert len(P.prepare(typed).frame) == 3


# --- normalisation: one test per variant -------------------------------------------------------------------
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


# --- clear messages for bad files ----------------------------------------------------------------------------
def test_bad_inputs_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="No extract file"):
        X.run(tmp_path / "nope.csv")
    xlsx = tmp_path / "x.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(ExtractError, match="looks like a .xlsx file"):
        X.run(xlsx)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ExtractError, match="is empty"):
        X.run(empty)
    short = tmp_path / "short.csv"
    short.write_text(",".join(X.REQUIRED_COLUMNS) + "\n" + ",".join(GOOD.values()) + "\nr9,2014-01-01\n")
    with pytest.raises(ExtractError, match="could not be read"):
        X.run(short)
    missing = tmp_path / "missing.csv"
    rows({}).drop(columns=["Gender"]).to_csv(missing, index=False)
    with pytest.raises(ExtractError, match="lacks 1 required column\\(s\\): Gender"):
        X.run(missing)
    with pytest.raises(ValueError, match="engine must be one of duckdb, spark, got 'polars'"):
        X.run(rows({}), engine="polars")
    with pytest.raises(ExtractError, match="needs a Spark session"):
        X.run(rows({}), engine="spark")


def test_pandas_nan_in_text_column_refused():
    raw = rows({})
    raw.loc[0, "Validated_EthnicCategory"] = np.nan
    with pytest.raises(ExtractError, match="read_extract"):
        X.run(raw)


# --- CLI and the pattern-count file ------------------------------------------------------------------------
def test_cli_writes_only_aggregates(tmp_path, default_csv_result):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "helpers.extract", str(cohort.DEFAULT_COHORT), "--out", str(out)],
                          capture_output=True, text=True, cwd=study.PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["flow.csv", "pattern_counts.csv"]
    pc = X.read_pattern_counts(out / "pattern_counts.csv")
    pd.testing.assert_frame_equal(pc.astype({"assessed": np.int64}),
                                  default_csv_result.pattern_counts.astype(str).astype(
                                      {"year": np.int64, "assessed": np.int64, "n": np.int64}))
    assert "PathwayID" not in (out / "pattern_counts.csv").read_text()
    bad = subprocess.run([sys.executable, "-m", "helpers.extract", str(tmp_path / "none.csv"), "--out", str(out)],
                         capture_output=True, text=True, cwd=study.PROJECT_ROOT)
    assert bad.returncode == 2 and "No extract file" in bad.stderr
