"""Every notebook has a text twin that agrees with it cell for cell (helpers.twins)."""

import os
import shutil

import nbformat

from helpers import twins


def test_every_notebook_agrees_with_its_twin():
    assert twins.notebook_paths(), "no notebooks found"
    assert twins.differences() == []


def test_an_edited_twin_is_caught_then_synced_into_the_notebook_keeping_outputs(tmp_path):
    source = twins.notebook_paths()[0]
    shutil.copy(twins.NOTEBOOK_DIR / "jupytext.toml", tmp_path)
    notebook = tmp_path / source.name
    shutil.copy(source, notebook)
    shutil.copy(twins.twin_path(source), tmp_path)
    twin = twins.twin_path(notebook)
    cells_before = nbformat.read(notebook, as_version=4).cells
    outputs_before = [c.get("outputs") for c in cells_before]

    twin.write_text(twin.read_text().replace("# %% [markdown]", "# %% [markdown]\n# A new first line.", 1))
    st = notebook.stat()
    os.utime(twin, (st.st_atime + 10, st.st_mtime + 10))  # the twin was saved last
    assert twins.differences(tmp_path) == [
        f"{notebook.name} and {twin.name} differ at cell 0 ({len(cells_before)} and {len(cells_before)} cells; run `make twins`)"]

    twins.sync(tmp_path)
    assert twins.differences(tmp_path) == []
    nb = nbformat.read(notebook, as_version=4)
    assert nb.cells[0].source.startswith("A new first line.")
    assert [c.get("outputs") for c in nb.cells] == outputs_before
    assert "jupytext" not in nb.metadata, "the pairing lives in notebooks/jupytext.toml, not in each notebook"


def test_a_twin_without_notebook_is_reported(tmp_path):
    (tmp_path / "99_orphan.py").write_text("# %%\nx = 1\n")
    assert twins.differences(tmp_path) == ["99_orphan.py: no notebook 99_orphan.ipynb (create it with `make twins`)"]
