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


# What shows that a notebook uses a parameter group.
GROUP_USE = {
    "data": r"study_data|simulation_parameters",
    "imputation": r"mi_estimates|population_margin|n_imputations|\bmargin\b",
    "simulation": r"simulation_parameters|run_simulation",
    "disclosure": r"\bpublish\.|suppress_threshold|rounding_base",
    "output": r"output_path",
}
MAX_DECLARED = 4  # a few knobs a lesson invites a student to turn; helpers.notebook.setup fills in the rest


def parameters_cell_problems(source: str, code: str) -> list[str]:
    """What is wrong with a ``parameters`` cell (its source) for a notebook whose later code is ``code``: only
    literal assignments, of parameters some group of helpers.params.GROUPS has, at their defaults, a few of them,
    each of a group the code uses."""
    problems, declared = [], []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            problems.append(f"not a parameter assignment: {ast.unparse(node)}")
            continue
        name = node.targets[0].id
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            problems.append(f"{name}: not a literal value: {ast.unparse(node.value)}")
            continue
        group = next((g for g, names in params.GROUPS.items() if name in names), None)
        if name not in params.SCHEMA:
            problems.append(f"{name}: not a parameter (helpers.params.SCHEMA)")
        elif group is None:
            problems.append(f"{name}: a parameter no group of helpers.params.GROUPS has")
        elif value != params.DEFAULTS[name]:
            problems.append(f"{name} = {value!r}: not the default {params.DEFAULTS[name]!r}")
        elif not re.search(GROUP_USE[group], code):
            problems.append(f"{name}: its group {group!r} is not used by the notebook's code")
        declared.append(name)
    if not 1 <= len(declared) <= MAX_DECLARED:
        problems.append(f"declares {len(declared)} parameters: between 1 and {MAX_DECLARED}, the ones the lesson "
                        "invites a student to change")
    if len(set(declared)) != len(declared):
        problems.append(f"a parameter declared twice: {declared}")
    return problems


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_parameters_cell_declares_a_few_parameters_the_lesson_turns(path: Path) -> None:
    """Every other parameter keeps its default (helpers.notebook.setup) or takes the run's value (injected)."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in tags(c))
    code = "\n".join(c.source for c in cells[index + 1:])
    assert parameters_cell_problems(cells[index].source, code) == []


CODE = "p = helpers.notebook.setup(globals())\ndata = helpers.notebook.study_data(p)\nmi_estimates(data)"


@pytest.mark.parametrize(("source", "problem"), [
    ("n_referal = 85_800", "n_referal: not a parameter"),
    ('engine = "duckdb"', "engine: a parameter no group of helpers.params.GROUPS has"),
    ("seed = 1", "seed = 1: not the default 20210802"),
    ("seed = 20210802\nseed = 20210802", "declared twice"),
    ("n_simulations = 20", "n_simulations: its group 'simulation' is not used"),
    ("seed = int('20210802')", "seed: not a literal value"),
    ("import os", "not a parameter assignment: import os"),
    ("# nothing", "declares 0 parameters"),
    ("\n".join(f"{n} = {params.DEFAULTS[n]!r}" for n in params.GROUPS["data"][:5]), "declares 5 parameters"),
])
def test_a_bad_parameters_cell_is_named(source: str, problem: str) -> None:
    found = parameters_cell_problems(source, CODE)
    assert any(problem in f for f in found), found


def test_a_good_parameters_cell_passes() -> None:
    assert parameters_cell_problems("# change these\nn_imputations = 20\nseed = 20210802", CODE) == []
