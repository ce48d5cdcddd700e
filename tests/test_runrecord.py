"""Tests of helpers.runrecord: what run.json records, and that it carries no machine path."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from helpers import runrecord
from helpers.scrub import Scrubber


def test_run_json_records_parameters_notebooks_status_and_the_machine(tmp_path: Path) -> None:
    rec = runrecord.RunRecord(parameters={"seed": 7, "output_dir": str(tmp_path)}, out_dir=tmp_path,
                              scrubber=Scrubber.for_run({}, tmp_path))
    rec.notebooks = [{"name": "00_start_here", "status": "ok", "seconds": 1.25},
                     {"name": "01_study_design", "status": "ok", "seconds": 2.5}]
    rec.status = "ok"
    path = rec.write()
    assert path == tmp_path / "run.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["status"] == "ok"
    assert record["parameters"] == {"seed": 7, "output_dir": "."}  # scrubbed: no machine path
    assert record["total_seconds"] == 3.75  # notebook seconds added up
    assert record["python"] == platform.python_version()
    assert record["packages"]["pandas"] != "not installed"
    assert record["command"][1:3] == ["-m", "helpers.run"]
    assert str(tmp_path) not in path.read_text(encoding="utf-8")


def test_git_revision_is_a_commit_or_unknown(tmp_path: Path) -> None:
    assert runrecord.git_revision(tmp_path) == "unknown"  # not a checkout
    rev = runrecord.git_revision()
    assert rev == "unknown" or len(rev.removesuffix("-dirty")) == 40


def test_requirement_names_are_the_bare_package_names(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# comment\npandas>=2.1  # tables\nnumpy==2.1.0\n-c constraints.txt\npyspark[sql]; extra == 'spark'\n\n",
        encoding="utf-8")
    assert runrecord._requirement_names(tmp_path) == ["pandas", "numpy", "pyspark"]
