"""Text twins of the notebooks: each ``notebooks/NN_name.ipynb`` has ``notebooks/NN_name.py``.

Why: a committed notebook is JSON that carries its outputs (nbval compares some of them, the book shows
them), with figures as base64 lines of 100,000 characters; a change to one sentence is unreadable in a diff.
The twin, in jupytext's percent format, holds only the cells (markdown, code and their tags), so a review
reads text. The pairing is declared once, in ``notebooks/jupytext.toml``; JupyterLab with jupytext keeps the
pair in step as you save, and ``python -m helpers.twins`` (``make twins``) does it from the shell: the side
saved last is the source, outputs stay in the ``.ipynb``. ``tests/test_twins.py`` fails when a pair differs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.cli import jupytext as jupytext_cli

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``), in pathway order; generated student versions excluded."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def twin_path(notebook: Path) -> Path:
    return notebook.with_suffix(".py")


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What the twin must agree on: each cell's type, source and tags (outputs and run metadata ignored)."""
    return [(c.cell_type, c.source.strip("\n"), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def _tidy(notebook: Path) -> None:
    """Drop what would be noise in a diff: papermill's ``tags: []`` on every cell it ran, and the
    ``jupytext`` block a sync writes into the notebook (the pairing lives in notebooks/jupytext.toml)."""
    nb = nbformat.read(notebook, as_version=4)
    changed = nb.metadata.pop("jupytext", None) is not None
    for cell in nb.cells:
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
            changed = True
    if changed:
        mtime = notebook.stat().st_mtime
        nbformat.write(nb, notebook)
        os.utime(notebook, (mtime, mtime))  # tidying is not an edit: the side saved last stays the source


def differences(folder: Path = NOTEBOOK_DIR) -> list[str]:
    """One line per notebook whose twin is missing or disagrees with it; empty when all pairs agree."""
    problems = []
    notebooks = notebook_paths(folder)
    for notebook in notebooks:
        twin = twin_path(notebook)
        if not twin.exists():
            problems.append(f"{notebook.name}: no text twin {twin.name} (run `make twins`)")
            continue
        ours, theirs = _cells(nbformat.read(notebook, as_version=4)), _cells(jupytext.read(twin))
        if ours != theirs:
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            problems.append(f"{notebook.name} and {twin.name} differ at cell {first} "
                            f"({len(ours)} and {len(theirs)} cells; run `make twins`)")
    names = {n.stem for n in notebooks}
    for twin in sorted(folder.glob("[0-9][0-9]_*.py")):
        if twin.stem not in names:
            problems.append(f"{twin.name}: no notebook {twin.stem}.ipynb (create it with `make twins`)")
    return problems


def sync(folder: Path = NOTEBOOK_DIR) -> None:
    """Bring every pair into step; a twin with no notebook yet becomes one (without outputs)."""
    for twin in sorted(folder.glob("[0-9][0-9]_*.py")):
        if not twin.with_suffix(".ipynb").exists():
            jupytext_cli(["--quiet", "--to", "ipynb", str(twin)])
    for notebook in notebook_paths(folder):
        _tidy(notebook)
        jupytext_cli(["--quiet", "--sync", str(notebook)])
        _tidy(notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.twins", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report pairs that differ (exit 1 if any)")
    args = parser.parse_args(argv)
    if not args.check:
        sync()
    problems = differences()
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
