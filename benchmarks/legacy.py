"""The old code that `make bench` measures today's against, run from the repository's own history.

A benchmark "new beside old" needs the old code. A copy kept in the tree drifts from what really ran and reads as
code written twice, so each baseline is a pinned commit instead: its files are written into a temporary folder
(``git archive`` / ``git show``) and the baseline's measurement runs in its own Python process with that folder
first on PYTHONPATH. Only the standard library here: a baseline child imports this module before any helpers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Baseline:
    """Files of one commit: ``tree`` paths extracted as they stood, ``modules`` written under another name."""

    commit: str
    what: str
    tree: tuple[str, ...] = ()
    modules: dict[str, str] = field(default_factory=dict)


BASELINES = {
    # The parent of 6384979 ("Generator at national scale"): the whole package as it was, so the old generator
    # runs with its own calibration and code tables (rows as pandas string frames, written by pandas).
    "generator": Baseline("054a02a6e1c67417edeb89843befcf7ace1e09fe",
                          "the row-by-row pandas generator (helpers/ before commit 6384979)",
                          tree=("helpers", "data/published")),
    # The parent of 40541c6 ("Extract engine"): prepare.py alone, as legacy_pandas_prepare, beside today's
    # package (it reads today's code tables, then today's row-level fits run on its frame).
    "pandas_prepare": Baseline("1b840bb4f803f1c6a503591fd13f23562cc9c3d0",
                               "the pandas read_extract + prepare (helpers/prepare.py before commit 40541c6)",
                               modules={"helpers/prepare.py": "legacy_pandas_prepare.py"}),
}


class MissingHistory(RuntimeError):
    """The clone lacks a baseline's commit (a shallow clone, or no git): the old route cannot be measured."""


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)


def _require(name: str) -> Baseline:
    base = BASELINES[name]
    try:
        found = _git("cat-file", "-e", f"{base.commit}^{{commit}}").returncode == 0
    except FileNotFoundError:  # no git on this machine
        found = False
    if not found:
        raise MissingHistory(
            f"the old route is {base.what}, commit {base.commit[:12]}, which this copy of the repository does not "
            "have (a shallow clone, or not a git checkout). Fetch the history (`git fetch --unshallow`) to "
            "measure it; today's figures are printed without it.")
    return base


@contextmanager
def checkout(name: str) -> Iterator[Path]:
    """A temporary folder holding baseline ``name``'s files (deleted afterwards); raises MissingHistory."""
    base = _require(name)
    folder = Path(tempfile.mkdtemp(prefix=f"iapt-legacy-{name}-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        if base.tree:
            archive = folder / "tree.tar"
            _git_ok("archive", "--output", str(archive), base.commit, *base.tree)
            with tarfile.open(archive) as tar:
                tar.extractall(folder, filter="data")
            archive.unlink()
        for path, module in base.modules.items():
            (folder / module).write_bytes(_git_ok("show", f"{base.commit}:{path}").stdout)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _git_ok(*args: str) -> subprocess.CompletedProcess:
    out = _git(*args)
    if out.returncode != 0:
        raise MissingHistory(f"git {' '.join(args[:2])} failed: {out.stderr.decode().strip()}")
    return out


def env(folder: Path, base: dict[str, str]) -> dict[str, str]:
    """``base`` with ``folder`` first on PYTHONPATH, so a child imports the baseline's code before today's."""
    return {**base, "PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [base.get("PYTHONPATH")])])}


@contextmanager
def environment(name: str, base: dict[str, str]) -> Iterator[dict[str, str] | None]:
    """``base`` with baseline ``name``'s folder first on PYTHONPATH, for the child that measures it; None, and a
    printed reason, when the clone lacks the history (today's figures are still measured)."""
    try:
        with checkout(name) as folder:
            yield env(folder, base)
    except MissingHistory as err:
        print(f"  old route not measured: {err}")
        yield None


def from_baseline(module: ModuleType) -> ModuleType:
    """``module``, after checking it was imported from the baseline folder on PYTHONPATH, not from today's tree."""
    first = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    if not first or Path(first).resolve() not in Path(module.__file__).resolve().parents:
        raise RuntimeError(f"{module.__name__} was imported from {module.__file__}, not from the baseline "
                           f"folder {first or '(no PYTHONPATH)'}")
    return module
