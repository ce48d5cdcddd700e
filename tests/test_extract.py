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


def test_counts_folder_read_back_as_written_and_mismatch_named(tmp_path, default_csv_result):
    folder = tmp_path / "agg"
    X.write(default_csv_result, folder)
    assert X.is_counts_folder(folder) and not X.is_counts_folder(tmp_path)
    pc, flow = X.read_counts_folder(folder)
    pd.testing.assert_frame_equal(flow, default_csv_result.flow)
    assert int(pc["n"].sum()) == 85_800
    text = (folder / "pattern_counts.csv").read_text().splitlines()
    (folder / "pattern_counts.csv").write_text("\n".join(text[:-1]) + "\n")  # one pattern lost on the way
    with pytest.raises(X.ExtractError, match="the two files are not from the same extract run"):
        X.read_counts_folder(folder)
    (folder / "flow.csv").unlink()
    with pytest.raises(FileNotFoundError, match="agg: no flow.csv here"):
        X.read_counts_folder(folder)
