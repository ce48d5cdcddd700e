"""Tests of helpers.scrub: what a reader of a run's outputs sees instead of machine paths."""

from __future__ import annotations

from pathlib import Path

import nbformat

from helpers.scrub import Scrubber
from helpers.study import PROJECT_ROOT


def test_extract_out_and_project_paths_become_what_a_reader_may_see(tmp_path: Path) -> None:
    extract = tmp_path / "secure area" / "iapt_2013_2016.csv"
    out = tmp_path / "run"
    scrub = Scrubber.for_run({"data_path": str(extract), "margin": "census2011", "seed": 1}, out)
    assert scrub.text(f"read {extract}") == "read iapt_2013_2016.csv"
    assert scrub.text(f"{out}/tables/estimates.csv") == "tables/estimates.csv"  # a file inside OUT: relative
    assert scrub.text(f"wrote {out}") == "wrote ."
    assert scrub.text(f"{extract.parent}/other.csv") == f"<folder of {extract.name}>/other.csv"
    assert scrub.text(f"{PROJECT_ROOT}/helpers/run.py") == "<project>/helpers/run.py"
    assert scrub.text("census2011") == "census2011"  # a margin keyword is not a path


def test_longest_path_first_so_a_file_inside_out_is_not_half_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    extract = out / "extract.parquet"  # the extract lives inside OUT
    scrub = Scrubber.for_run({"data_path": str(extract)}, out)
    assert scrub.text(str(extract)) == "extract.parquet"
    lengths = [len(old) for old, _ in scrub.replacements]
    assert lengths == sorted(lengths, reverse=True)


def test_json_like_values_are_scrubbed_everywhere_and_other_values_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    scrub = Scrubber.for_run({}, out)
    payload = {"output_dir": str(out), str(out / "a.csv"): [str(out / "b"), 3, None, (1.5, str(out))]}
    assert scrub(payload) == {"output_dir": ".", "a.csv": ["b", 3, None, [1.5, "."]]}


def test_an_executed_notebook_is_scrubbed_in_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f'output_dir = "{out}"')
    cell.outputs = [nbformat.v4.new_output("stream", text=f"saved {out}/figures/f.png\n")]
    nb.cells = [cell]
    nb.metadata["papermill"] = {"input_path": str(PROJECT_ROOT / "notebooks" / "00_start_here.ipynb")}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    Scrubber.for_run({}, out).notebook(path)
    text = path.read_text(encoding="utf-8")
    assert str(out) not in text and str(PROJECT_ROOT) not in text
    back = nbformat.read(path, as_version=4)
    assert back.cells[0].source == 'output_dir = "."'
    assert back.cells[0].outputs[0].text == "saved figures/f.png\n"
    assert back.metadata["papermill"]["input_path"] == "<project>/notebooks/00_start_here.ipynb"
