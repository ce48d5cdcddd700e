"""Tests for helpers.extract_engines (DuckDB; Spark in tests/test_spark.py): Parquet files and folders and
typed frames registered with file line numbers, and the message a bad engine gets."""

from __future__ import annotations

import pandas as pd
import pytest
from extract_rows import excluded, rows

from helpers import extract as X
from helpers import prepare as P
from helpers.extract_checks import ExtractError


def _expected(raw: pd.DataFrame) -> X.ExtractResult:
    return X.run(raw)


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


def test_bad_engine_named():
    with pytest.raises(ValueError, match="engine must be one of duckdb, spark, got 'polars'"):
        X.run(rows({}), engine="polars")
    with pytest.raises(ExtractError, match="needs a Spark session"):
        X.run(rows({}), engine="spark")
