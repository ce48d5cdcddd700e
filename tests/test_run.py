"""helpers.run (the face of `python -m helpers.run`): parameters refused before any notebook runs; a real small run; a
failing run; an interrupted run.

The CLI is exercised as users call it (a subprocess), against the real helpers.params.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, run_cli

from helpers import outfolder
from helpers import runcli as C

# ---------------------------------------------------------------------------------------------------------
# Refused before any notebook runs
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg, name",
    [
        ("n_referrals=-5", "n_referrals"),
        ("seed=abc", "seed"),
        ("missing_mechanism=nope", "missing_mechanism"),
        ("nonsense=1", "nonsense"),
    ],
)
def test_bad_parameter_exits_before_running(tmp_path: Path, arg: str, name: str) -> None:
    out = tmp_path / "out"
    result = run_cli(["-p", arg, "--out", str(out)])
    assert result.returncode == C.EXIT_BAD_USAGE, result.stderr
    assert name in result.stderr
    assert "No notebook was run" in result.stderr
    assert not (out / "notebooks").exists(), "a notebook ran although the parameters were invalid"
    assert "[ 1/" not in result.stdout


def test_bad_parameter_in_yaml_file(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("n_referrals: 85800\nmissing_mechanism: sometimes\n", encoding="utf-8")
    result = run_cli(["--params", str(params), "--out", str(tmp_path / "out")])
    assert result.returncode == C.EXIT_BAD_USAGE
    assert "missing_mechanism" in result.stderr and "sometimes" in result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-p", "n_referrals"], "name=value"),
        (["--only", "99_nothing"], "99_nothing"),
    ],
)
def test_bad_usage_is_named(tmp_path: Path, write_notebook, args: list[str], expected: str) -> None:
    write_notebook(tmp_path / "nbs" / "00_only.ipynb", [("markdown", "# Only", [])])
    result = run_cli([*args, "--notebooks", str(tmp_path / "nbs"), "--out", str(tmp_path / "out")])
    assert result.returncode == C.EXIT_BAD_USAGE
    assert expected in result.stderr


# ---------------------------------------------------------------------------------------------------------
# A real small run of the project's notebooks (shared with the browser test)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.whole_run
def test_small_run_succeeds(small_run) -> None:
    result, out = small_run.result, small_run.out
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok"
    assert record["parameters"]["n_referrals"] == 5000
    assert record["parameters"]["output_dir"] == "."  # folders relative to the output folder, no machine path
    assert record["python"].startswith("3.11")
    assert record["git_revision"]
    assert record["packages"]["papermill"] not in ("", "not installed")
    names = [n["name"] for n in record["notebooks"]]
    assert [n[:2] for n in names] == list(small_run.notebooks)
    assert all(n["status"] == "ok" and n["seconds"] >= 0 for n in record["notebooks"])
    for name in names:
        assert (out / "notebooks" / f"{name}.ipynb").exists()
        assert (out / "html" / f"{name}.html").exists()
        assert name in result.stdout  # terminal progress names each notebook
    assert (out / "html" / "index.html").exists()
    assert (out / "tables").is_dir()


@pytest.mark.whole_run
def test_small_run_writes_complete_disclosure_controlled_tables(small_run) -> None:
    """estimates.csv holds 3 stages x 3 models x 2 analyses; no publishable table shows a count of 1-7."""
    import pandas as pd

    from helpers import disclosure, pipeline

    out = small_run.out
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert "tables/estimates.csv" in record["tables"]  # relative to the output folder
    est = pd.read_csv(out / "tables" / "estimates.csv")
    combos = est.groupby(["stage", "model", "analysis"]).size()
    assert len(combos) == 3 * 3 * 2, combos
    count_like = {"n", "n_events", "n_model", "n_excluded", "referred", "assessed", "treated"}
    for name in pipeline.PUBLISHABLE_TABLES:
        frame = pd.read_csv(out / "tables" / f"{name}.csv", header=[0, 1] if name == "table1" else 0)
        if name == "table1":
            counts = frame.loc[:, frame.columns.get_level_values(1) == "n"]
        else:
            counts = frame[[c for c in frame.columns if c in count_like]]
        if counts.shape[1]:
            assert disclosure.check_disclosure(counts.apply(pd.to_numeric, errors="coerce")).empty, name


# ---------------------------------------------------------------------------------------------------------
# A failing run: the error is reported, recorded, and no book pretends success
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [[], ["--sequential", "--no-cache"]], ids=["parallel", "sequential"])
def test_failing_notebook(tmp_path: Path, write_notebook, route: list[str]) -> None:
    nbdir = tmp_path / "nbs"
    params_cell = ("code", "n_referrals = 85800\noutput_dir = '../outputs'", ["parameters"])
    write_notebook(nbdir / "00_fine.ipynb", [("markdown", "# Fine", []), params_cell,
                                             ("code", "print('fine', n_referrals)", [])])
    write_notebook(nbdir / "01_broken.ipynb", [("markdown", "# Broken", []), params_cell,
                                               ("code", "answer = 1 / 0", [])])
    write_notebook(nbdir / "02_never.ipynb", [("markdown", "# Never", []), params_cell])
    out = tmp_path / "out"
    (out / "html").mkdir(parents=True)
    (out / "html" / "index.html").write_text("stale success", encoding="utf-8")
    (out / outfolder.OWNER_MARKER).write_text("an earlier run\n", encoding="utf-8")  # the folder an earlier run made

    result = run_cli(["--notebooks", str(nbdir), "--out", str(out), "-p", "n_referrals=5000", "--jobs", "2", *route])

    assert result.returncode == C.EXIT_NOTEBOOK_FAILED
    assert "01_broken" in result.stderr
    assert "ZeroDivisionError" in result.stderr and "answer = 1 / 0" in result.stderr
    assert not (out / "html" / "index.html").exists(), "a stale index survived a failed run"
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed"
    assert record["error"]["notebook"] == "01_broken"
    assert record["error"]["ename"] == "ZeroDivisionError"
    assert [n["status"] for n in record["notebooks"]] == ["ok", "failed"]
    assert (out / "notebooks" / "00_fine.ipynb").exists()
    assert not (out / "notebooks" / "02_never.ipynb").exists()


def test_parallel_run_interrupted_stops_every_running_notebook(tmp_path: Path, write_notebook) -> None:
    """SIGTERM while two notebooks run side by side: both stopped and recorded, the run says what ran."""
    import signal
    import subprocess

    from conftest import subprocess_env

    nbdir = tmp_path / "nbs"
    for name in ("00_slow", "01_slower"):
        write_notebook(nbdir / f"{name}.ipynb", [("markdown", "# Slow", []),
                                                 ("code", "output_dir = '../outputs'", ["parameters"]),
                                                 ("code", "import time\ntime.sleep(120)", [])])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "helpers.run", "--notebooks", str(nbdir), "--out", str(out),
                             "--no-html", "--jobs", "2"], cwd=PROJECT_ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "01_slower ..." not in seen:  # both have started
        char = proc.stdout.read(1)
        assert char, f"the run ended early: {proc.stderr.read()}"
        seen += char
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == C.EXIT_INTERRUPTED, err
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "interrupted"
    assert record["error"] == {"signal": "SIGTERM", "during": "00_slow, 01_slower"}
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [("00_slow", "interrupted"),
                                                                      ("01_slower", "interrupted")]


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    result = run_cli(["--jobs", "0", "--out", str(tmp_path / "out")])
    assert result.returncode == C.EXIT_BAD_USAGE
    assert "--jobs 0" in result.stderr and "No notebook was run" in result.stderr
