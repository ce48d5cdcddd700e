"""Tests for helpers.extract_read: CSV dialects read the same, and a bad file gets a clear message."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from extract_rows import GOOD, rows

from helpers import extract as X
from helpers.extract_checks import REQUIRED_COLUMNS, ExtractError


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
    short.write_text(",".join(REQUIRED_COLUMNS) + "\n" + ",".join(GOOD.values()) + "\nr9,2014-01-01\n")
    with pytest.raises(ExtractError, match="could not be read"):
        X.run(short)
    missing = tmp_path / "missing.csv"
    rows({}).drop(columns=["Gender"]).to_csv(missing, index=False)
    with pytest.raises(ExtractError, match="lacks 1 required column\\(s\\): Gender"):
        X.run(missing)


def test_pandas_nan_in_text_column_refused():
    raw = rows({})
    raw.loc[0, "Validated_EthnicCategory"] = np.nan
    with pytest.raises(ExtractError, match="read_extract"):
        X.run(raw)
