"""Shared fixtures: project paths, fixture notebooks, one small real run, Chromium; how tests share workers.

Kept small on purpose: module-specific helpers live in their test files.

`make pytest` runs the suite on two pytest-xdist workers (``--dist loadgroup``): most of its time is spent
waiting for notebook kernels and child runs, one at a time, so a second worker uses the second core.
:func:`pytest_collection_modifyitems` keeps a fixture built once: tests that share an expensive session
fixture go to one worker (a group per fixture), tests that use a module- or class-scoped fixture stay with
their module, and the rest (each notebook's student version, every plain unit test) go to whichever worker
is free. The whole-run tests come first, so the longest work starts first and the short tests fill in
around it. A serial run (``pytest tests``) runs the same tests in the same new order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import nbformat
import pytest
import synthetic_frames

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CHROMIUM = "/usr/bin/chromium"

# The real run the run/book tests share: the first notebooks of the pathway at a small cohort size.
# 00-01 are narrative, 05 draws figures (funnel); whichever of them exist are run.
SMALL_RUN_ONLY = ("00", "01", "05", "06")  # 06 has a formula: maths typeset offline
SMALL_RUN_PARAMS = {"n_referrals": "5000"}
# Small values for executing student versions of the real notebooks (tests/test_exercises.py).
SMALL_PARAMS = {
    "n_referrals": 5000,
    "n_imputations": 2,
    "n_simulations": 2,
    "simulation_n_referrals": 2000,
}


# Session fixtures that cost a real run or a large fit: every test that uses one runs on the same worker.
SHARED_SESSION_FIXTURES = ("small_run", "iapt")


def _worker_group(item: pytest.Item) -> str | None:
    """The xdist group of a test: the shared session fixture it uses, else its module when it uses a module-
    or class-scoped fixture, else None (any worker)."""
    used = set(item.fixturenames)
    for name in SHARED_SESSION_FIXTURES:
        if name in used:
            return name
    definitions = getattr(item, "_fixtureinfo", None)
    for name, defs in (definitions.name2fixturedefs.items() if definitions else ()):
        if name in used and defs and defs[-1].scope in ("module", "class", "package"):
            return item.nodeid.split("::", 1)[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Whole-run tests first, those sharing a fixture before the rest (stable order otherwise); a worker group
    on every test that shares a fixture."""
    groups = {item.nodeid: _worker_group(item) for item in items}
    items.sort(key=lambda item: (item.get_closest_marker("whole_run") is None, groups[item.nodeid] is None))
    for item in items:
        group = groups[item.nodeid]
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


def numbered_notebooks() -> list[Path]:
    """notebooks/NN_*.ipynb in order (exercises/ and other sub-folders excluded)."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: prefer the venv's `python3` kernelspec, quiet debugpy."""
    env = dict(os.environ)
    env["JUPYTER_PREFER_ENV_PATH"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def run_cli(args: Sequence[str], cwd: Path = PROJECT_ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m helpers.run ARGS`` with this interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "helpers.run", *args],
        cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


# A notebook that runs until it is stopped (for the interrupt tests).
SLOW_NOTEBOOK = [("markdown", "# Slow", []), ("code", "output_dir = '../outputs'", ["parameters"]),
                 ("code", "import time\ntime.sleep(120)", [])]


def sigterm_once_started(args: Sequence[str], started: str) -> tuple[int, str]:
    """Start ``python -m helpers.run ARGS``, wait until its output shows ``started``, send SIGTERM.

    Returns the run's exit code and its stderr. Waits on the run's own progress line, not on a clock.
    """
    proc = subprocess.Popen([sys.executable, "-m", "helpers.run", *args], cwd=PROJECT_ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while started not in seen:
        char = proc.stdout.read(1)
        assert char, f"the run ended early: {proc.stderr.read()}"
        seen += char
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture
def write_notebook() -> Callable[..., Path]:
    """Factory: write a notebook from (cell_type, source, tags) tuples; kernelspec python3."""

    def _write(path: Path, cells: Sequence[tuple[str, str, Sequence[str]]], **metadata) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata.update(metadata)
        for kind, source, tags in cells:
            cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
            if tags:
                cell.metadata["tags"] = list(tags)
            nb.cells.append(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    return _write


@dataclass(frozen=True)
class SmallRun:
    out: Path
    result: subprocess.CompletedProcess
    notebooks: tuple[str, ...]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    """One real `python -m helpers.run` over the first notebooks, small cohort, into a temporary folder."""
    available = {p.name[:2] for p in numbered_notebooks()}
    only = tuple(n for n in SMALL_RUN_ONLY if n in available)
    if not only:
        pytest.fail(f"none of the notebooks {SMALL_RUN_ONLY} exist in {NOTEBOOKS_DIR}: nothing to run")
    out = tmp_path_factory.mktemp("small_run")
    args = [arg for k, v in SMALL_RUN_PARAMS.items() for arg in ("-p", f"{k}={v}")]
    result = run_cli([*args, "--out", str(out), "--only", *only])
    return SmallRun(out=out, result=result, notebooks=only)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium; a missing browser is a failure (the browser test is part of `make test`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (as root; installs Debian's chromium package)")
    return CHROMIUM


@pytest.fixture(scope="session")
def iapt() -> dict:
    """The planted-truth frame and its fits and imputations, computed once for test_imputation and test_pooling."""
    return synthetic_frames.iapt_fits()
