"""Tests for helpers.extract (the engine's face): the pattern counts against the row-level route on the
default cohort, and the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import cohort, fromcounts, study
from helpers import extract as X
from helpers import prepare as P


@pytest.fixture(scope="module")
def default_csv_result():
    return X.run(cohort.DEFAULT_COHORT)


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
