"""Student versions: no solution text survives, and the notebook still runs through every exercise.

Built from a small fixture notebook (always) and from every real numbered notebook. Real student versions
are executed where students open them (notebooks/exercises/, the working directory), with small
parameters injected by papermill so the check stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS_DIR, SMALL_PARAMS, numbered_notebooks

from helpers import exercises as E

SECRET_CODE = "hidden_answer_value = 6 * 7  # SOLUTION-CODE-SENTINEL"
SECRET_TEXT = "The gap narrows after adjustment because of SOLUTION-TEXT-SENTINEL."


def solution_only_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines of solution cells found nowhere in the other cells (the exercise may quote code): the text
    that must not leak."""
    other = "\n".join(cell.source for cell in nb.cells if E.SOLUTION_TAG not in E.tags(cell))
    return {
        line.strip()
        for cell in nb.cells
        if E.SOLUTION_TAG in E.tags(cell)
        for line in cell.source.splitlines()
        if len(line.strip()) >= 4 and line.strip() not in other
    }


def assert_no_solution_text(source_nb: nbformat.NotebookNode, student_file: Path) -> None:
    raw = student_file.read_text(encoding="utf-8")
    for line in solution_only_lines(source_nb):
        assert line not in raw and json.dumps(line)[1:-1] not in raw, f"solution text leaked: {line!r}"


def assert_student_shape(source_nb: nbformat.NotebookNode, student: nbformat.NotebookNode) -> None:
    n_solutions = sum(E.SOLUTION_TAG in E.tags(c) for c in source_nb.cells)
    answers = [c for c in student.cells if E.ANSWER_TAG in E.tags(c)]
    assert len(answers) == n_solutions
    assert all(c.source in (E.CODE_PLACEHOLDER, E.MARKDOWN_PLACEHOLDER) for c in answers)
    assert not any(E.SOLUTION_TAG in E.tags(c) for c in student.cells)
    assert sum("parameters" in E.tags(c) for c in student.cells) == sum(
        "parameters" in E.tags(c) for c in source_nb.cells
    )
    # teaching cells keep the worked run's outputs; answer cells are empty (one student note is inserted)
    teaching = [c for c in student.cells if E.ANSWER_TAG not in E.tags(c) and "student-note" not in E.tags(c)]
    source_teaching = [c for c in source_nb.cells if E.SOLUTION_TAG not in E.tags(c)]
    assert len(teaching) == len(source_teaching)
    for cell, src in zip(teaching, source_teaching):
        assert cell.cell_type == src.cell_type
        if "parameters" not in E.tags(src):  # the parameters cell's output_dir climbs one folder more
            assert cell.source == src.source
        if cell.cell_type == "code":
            assert cell.outputs == src.outputs
    for cell in answers:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "papermill" not in student.metadata


@pytest.fixture
def fixture_notebook(tmp_path: Path, write_notebook) -> Path:
    """A worked notebook with two exercises, executed so that solution outputs exist too."""
    from nbclient import NotebookClient

    path = write_notebook(
        tmp_path / "src" / "07_fixture.ipynb",
        [
            ("markdown", "# Fixture\n\n## Learning objectives\n- practise", []),
            ("code", "n_referrals = 85800", ["parameters"]),
            ("code", "import math\nbase = 10", []),
            ("markdown", "**Exercise 1.** Compute the answer.", ["exercise"]),
            ("code", SECRET_CODE + "\nprint(hidden_answer_value)", ["solution"]),
            ("markdown", SECRET_TEXT, ["solution"]),
            ("code", "after = base * 2\nprint(after)", []),
            ("markdown", "**Exercise 2.** Explain.", ["exercise"]),
            ("markdown", "Because SOLUTION-TWO-SENTINEL.", ["solution"]),
            ("markdown", "## Key points\n- done", []),
        ],
        papermill={"parameters": {"n_referrals": 5000}},
    )
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    assert "42" in path.read_text(encoding="utf-8")  # the solution's output is in the source file
    return path


def test_fixture_student_version(fixture_notebook: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    out_dir = tmp_path / "exercises"
    (student_file,) = E.build_exercises([fixture_notebook], out_dir)
    assert student_file == out_dir / fixture_notebook.name
    source_nb = nbformat.read(fixture_notebook, as_version=4)
    raw = student_file.read_text(encoding="utf-8")
    for sentinel in ("SOLUTION-CODE-SENTINEL", "SOLUTION-TEXT-SENTINEL", "SOLUTION-TWO-SENTINEL", "hidden_answer"):
        assert sentinel not in raw
    assert_no_solution_text(source_nb, student_file)
    student = nbformat.read(student_file, as_version=4)
    assert_student_shape(source_nb, student)
    assert [c.source for c in student.cells if E.ANSWER_TAG in E.tags(c)] == [
        E.CODE_PLACEHOLDER, E.MARKDOWN_PLACEHOLDER, E.MARKDOWN_PLACEHOLDER
    ]
    # runs through every exercise, the empty answers included
    NotebookClient(student, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(out_dir)}}).execute()
    outputs = "".join(o.get("text", "") for c in student.cells if c.cell_type == "code" for o in c.outputs)
    assert "20" in outputs  # the cell after exercise 1 ran


def test_student_version_carries_teaching_outputs_not_solution_outputs(fixture_notebook: Path, tmp_path: Path) -> None:
    """Read before running: the teaching cells show the worked run's outputs; nothing a solution printed survives."""
    (student_file,) = E.build_exercises([fixture_notebook], tmp_path / "exercises")
    student = nbformat.read(student_file, as_version=4)
    after = next(c for c in student.cells if c.cell_type == "code" and c.source.startswith("after = "))
    assert [o.get("text") for o in after.outputs] == ["20\n"]  # shown without running anything
    printed = [o.get("text", "") for c in student.cells if c.cell_type == "code" for o in c.outputs]
    assert "42\n" not in printed  # the solution's printed output is gone with its cell
    assert any("outputs of the worked notebook" in c.source for c in student.cells if "student-note" in E.tags(c))


def test_solution_must_follow_an_exercise(tmp_path: Path, write_notebook) -> None:
    path = write_notebook(tmp_path / "00_bad.ipynb",
                          [("markdown", "# Bad", []), ("code", "x = 1", []), ("code", "y = 2", ["solution"])])
    with pytest.raises(E.ExerciseError, match="does not follow"):
        E.build_exercises([path], tmp_path / "out")


def test_later_cells_must_not_use_solution_names(tmp_path: Path, write_notebook) -> None:
    path = write_notebook(
        tmp_path / "00_dep.ipynb",
        [
            ("markdown", "# Dep", []),
            ("markdown", "Exercise", ["exercise"]),
            ("code", "fitted = 3\ndef helper():\n    return 1", ["solution"]),
            ("code", "print(fitted + helper())", []),
        ],
    )
    with pytest.raises(E.ExerciseError, match="'fitted'"):
        E.build_exercises([path], tmp_path / "out")
    # a later cell that defines the name itself is fine
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = "fitted = 4\nprint(fitted)"
    assert E.check_independence(nb) == []


def test_cli_writes_student_versions(fixture_notebook: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli_out"
    assert E.main([str(fixture_notebook), "--out", str(out)]) == 0
    assert (out / fixture_notebook.name).exists()


REAL = numbered_notebooks()


@pytest.mark.whole_run
@pytest.mark.parametrize("source", REAL or [None], ids=[p.stem for p in REAL] or ["no-notebooks"])
def test_real_student_versions(source: Path | None, tmp_path: Path) -> None:
    """Each real notebook's student version: no solution text; runs end to end with empty answers."""
    import papermill as pm

    if source is None:
        pytest.fail(f"no numbered notebooks in {NOTEBOOKS_DIR}")
    out_dir = tmp_path / "exercises"
    (student_file,) = E.build_exercises([source], out_dir)
    source_nb = nbformat.read(source, as_version=4)
    assert_no_solution_text(source_nb, student_file)
    assert_student_shape(source_nb, nbformat.read(student_file, as_version=4))
    # Execute as a student would: working directory notebooks/exercises/ (git-ignored, made if missing).
    cwd = NOTEBOOKS_DIR / "exercises"
    cwd.mkdir(exist_ok=True)
    from helpers.params import SCHEMA

    params = {k: v for k, v in SMALL_PARAMS.items() if k in SCHEMA}
    params["output_dir"] = str(tmp_path / "outputs")
    pm.execute_notebook(str(student_file), str(tmp_path / "executed.ipynb"), parameters=params,
                        kernel_name="python3", cwd=str(cwd), progress_bar=False)


def test_student_versions_write_to_the_project_outputs_folder():
    """Student notebooks sit in notebooks/exercises/, so their output_dir must climb one folder more."""
    import nbformat

    from helpers.exercises import make_student_version

    src = nbformat.read(NOTEBOOKS_DIR / "05_describing_the_cohort.ipynb", as_version=4)
    student = make_student_version(src)
    params = [c for c in student.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'output_dir = "../../outputs"' in params[0].source


def exercise_prompts_and_solution_code(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(exercise prompt, the code of the solution cells that follow it), per exercise."""
    pairs: list[tuple[str, str]] = []
    for cell in nb.cells:
        if E.EXERCISE_TAG in E.tags(cell):
            pairs.append((cell.source, ""))
        elif E.SOLUTION_TAG in E.tags(cell) and cell.cell_type == "code" and pairs:
            prompt, code = pairs[-1]
            pairs[-1] = (prompt, code + "\n" + cell.source)
    return pairs


@pytest.mark.parametrize("source", numbered_notebooks(), ids=lambda p: p.stem)
def test_exercise_prompts_do_not_hand_over_the_solution_code(source: Path) -> None:
    """A student writes the code: no line of a worked solution (beyond a short name) is printed in its prompt."""
    nb = nbformat.read(source, as_version=4)
    pairs = exercise_prompts_and_solution_code(nb)
    assert len(pairs) >= 2, f"{source.name}: fewer than two exercises"
    for prompt, code in pairs:
        title = prompt.splitlines()[0]
        assert "```" not in prompt, f"{source.name} {title}: a code block in the prompt"
        for line in code.splitlines():
            line = line.split("#")[0].strip()
            if len(line) >= 25:
                assert line not in prompt, f"{source.name} {title}: the prompt contains the solution line {line!r}"
