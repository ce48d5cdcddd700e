"""House rules for the numbered notebooks (notebooks/NN_name.ipynb; exercises/ is generated, not checked).

Each rule is here because something downstream relies on it: the kernel name (papermill/nbval), one
``parameters`` cell (papermill injects after it), no machine paths (the notebooks are published), names and
order (helpers.run and the book), the opening/closing structure and exercises (teaching; helpers.exercises).
A missing notebook set is a failure, not a skip.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS_DIR

from helpers import params

NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
# Searched in JSON text, where a backslash is doubled: C:\Users -> "C:\\Users". "Total:\n" is not a drive.
MACHINE_PATH = re.compile(r"/work/|/tmp/|/root/|/home/|(?<![A-Za-z0-9_])[A-Za-z]:\\\\(?![nrt])")
ALL = sorted(p for p in NOTEBOOKS_DIR.glob("*.ipynb"))


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def test_there_are_numbered_notebooks() -> None:
    numbered = [p for p in ALL if re.match(r"^\d\d_", p.name)]
    assert numbered, f"no numbered notebooks (NN_name.ipynb) in {NOTEBOOKS_DIR}"


def test_names_and_order() -> None:
    assert ALL, f"no notebooks in {NOTEBOOKS_DIR}"
    bad = [p.name for p in ALL if not NAME.match(p.name)]
    assert not bad, f"notebook names must match NN_snake_case.ipynb: {bad}"
    numbers = [int(p.name[:2]) for p in ALL]
    assert len(set(numbers)) == len(numbers), f"duplicate notebook numbers: {[p.name for p in ALL]}"
    assert numbers == list(range(len(numbers))), f"notebook numbers must run 00, 01, ... without gaps: {numbers}"


def _text_without_images(nb: nbformat.NotebookNode) -> str:
    """Sources, outputs and metadata as JSON text, images left out (base64 can spell anything)."""
    data = json.loads(json.dumps(nb))
    for cell in data["cells"]:
        for output in cell.get("outputs", []):
            for mime in list(output.get("data", {})):
                if mime.startswith("image/"):
                    del output["data"][mime]
        cell.pop("attachments", None)
    return json.dumps(data, ensure_ascii=False)


@pytest.mark.parametrize("path", ALL or [None], ids=[p.stem for p in ALL] or ["no-notebooks"])
def test_notebook_hygiene(path: Path | None) -> None:
    if path is None:
        pytest.fail(f"no notebooks in {NOTEBOOKS_DIR}")
    nb = nbformat.read(path, as_version=4)
    problems: list[str] = []

    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec name is {kernel!r}, must be 'python3'")

    n_params = sum("parameters" in tags(c) for c in nb.cells)
    if n_params != 1:
        problems.append(f"{n_params} cells tagged 'parameters', need exactly one")

    found = sorted(set(MACHINE_PATH.findall(_text_without_images(nb))))
    if found:
        problems.append(f"absolute machine paths in sources, outputs or metadata: {found}")

    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown":
        problems.append("the first cell must be markdown")
    else:
        if not re.search(r"^#\s+\S", first.source, flags=re.MULTILINE):
            problems.append("the first cell needs a level-1 heading (# Title)")
        if "Learning objectives" not in first.source:
            problems.append("the first cell must contain 'Learning objectives'")

    n_exercises = sum("exercise" in tags(c) for c in nb.cells)
    if n_exercises < 2:
        problems.append(f"{n_exercises} cells tagged 'exercise', need at least two")

    if not any("Key points" in c.source for c in nb.cells):
        problems.append("no cell mentions 'Key points'")

    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# What shows that a notebook uses a parameter group (00_start_here teaches every parameter and declares all).
GROUP_USE = {
    "data": r"load_study_data|simulation_parameters",
    "imputation": r"mi_estimates|population_margin|n_imputations|\bmargin\b",
    "simulation": r"simulation_parameters|run_simulation",
    "disclosure": r"\bpublish\.|suppress_threshold|rounding_base",
    "output": r"output_path",
}


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_parameters_cell_declares_the_groups_the_notebook_uses(path: Path) -> None:
    """Whole groups of helpers.params.GROUPS at their defaults; every parameter the code reads is declared;
    no group is declared that the code does not use (the run injects every parameter regardless)."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in tags(c))
    declared = {}
    for node in ast.parse(cells[index].source).body:
        assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name), ast.unparse(node)
        declared[node.targets[0].id] = ast.literal_eval(node.value)
    assert set(declared) <= set(params.SCHEMA), set(declared) - set(params.SCHEMA)
    assert {n: v for n, v in declared.items() if v != params.DEFAULTS[n]} == {}, "not the defaults"
    groups = {g for g, names in params.GROUPS.items() if set(names) & set(declared)}
    assert set(declared) == {n for g in groups for n in params.GROUPS[g]}, "declare each group whole"
    code = "\n".join(c.source for c in cells[index + 1:])
    read = set(re.findall(r"""\bp\[["'](\w+)["']\]""", code)) & set(params.SCHEMA)
    assert read <= set(declared), f"reads parameters it does not declare: {sorted(read - set(declared))}"
    if not path.name.startswith("00_"):
        unused = sorted(g for g in groups if not re.search(GROUP_USE[g], code))
        assert unused == [], f"declares groups its code does not use: {unused}"
