"""helpers.check_outputs: flags counts 1-7 and unrounded counts (and machine paths), and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from helpers import check_outputs as C


@pytest.mark.parametrize("text", [
    "Black Other  3 (4.2)",          # tableone n (%) cell, small
    "1,234 (12.0%)",                 # unrounded, with a percent sign
    "85,801 (100.0)",                # unrounded large count
    "n=3", "n = 1,234", "N: 6",      # printed n=
    "5 rows excluded", "12 referrals with a blank PathwayID",
])
def test_flags_small_or_unrounded_counts(text):
    assert C.check_text(text), text


@pytest.mark.parametrize("text", [
    "85,800 (100.0)", "n = 85,800", "3,000 referrals (rows)",   # multiples of 5 pass
    "0 (0.0)", "* (*)",                                         # zero and suppressed pass
    "0.77 (0.72-0.81)", "OR 1.00 (reference)",                  # ratios and CIs are not counts
    "Psychological Medicine 53(3):1084-1095",                   # a citation
    "years 2013-2016; age band 18-24; code 99",                 # years, ages, codes
    "18.5% missing", "per 1,000 referrals", "treated per 1,000 referred 643",
    "lines 2, 3, 4",                                             # example line numbers
])
def test_passes_what_is_not_a_bad_count(text):
    assert C.check_text(text) == [], text


def test_count_columns_by_header_and_not_rates():
    header = [["ethnicity", "referred", "pct_assessed", "n_rows", "treated_per_1000_referred", "n_sim"]]
    rows = [["Asian", "3", "3", "85,800", "7", "2"], ["Mixed", "85801", "12.5", "*", "643", "2"]]
    found = C.check_grid(header, rows)
    assert [(w.split(",")[0], v) for w, v, _ in found] == [("row 1", "3"), ("row 2", "85801")]
    assert "small count" in found[0][2] and "not a multiple of 5" in found[1][2]


def _notebook(path: Path, outputs_by_cell: list[tuple[list, list[str]]]) -> Path:
    nb = nbformat.v4.new_notebook()
    for outputs, tags in outputs_by_cell:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = outputs
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_folder_check_names_file_and_cell_and_skips_secure(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "secure").mkdir()
    (tmp_path / "tables" / "ok.csv").write_text("ethnicity,n,pct\nAsian,85800,3.3\nMixed,*,\n", encoding="utf-8")
    (tmp_path / "tables" / "bad.csv").write_text("ethnicity,n\nAsian,3\n", encoding="utf-8")
    (tmp_path / "secure" / "flow.csv").write_text("step,n_rows\nextract,3\n", encoding="utf-8")
    stream = nbformat.v4.new_output("stream", text="Referrals analysed 2,009 rows\n")
    html = nbformat.v4.new_output("display_data", data={
        "text/html": "<table><thead><tr><th></th><th>assessed</th></tr></thead>"
                     "<tbody><tr><th>Asian</th><td>6</td></tr></tbody></table>",
        "text/plain": "ignored when html is there"})
    _notebook(tmp_path / "04.ipynb", [([stream], []), ([html], []), ([stream], [C.EXEMPT_TAG])])
    found = C.check_folder(tmp_path)
    where = sorted((f.file, f.where.split(",")[0], f.value) for f in found)
    assert where == [("04.ipynb", "cell 0", "2,009 rows"), ("04.ipynb", "cell 1", "6"),
                     ("tables/bad.csv", "row 1", "3")]


def test_book_pages_are_checked_in_output_areas_only(tmp_path):
    page = ('<div class="jp-InputArea"><pre>n = 3  # code is not data</pre></div>'
            '<div class="jp-OutputArea-output"><pre>n = 4</pre></div>'
            '<div class="jp-Cell celltag_not-extract-counts"><div class="jp-OutputArea-output">'
            '<pre>n = 5</pre></div></div>')
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    found = C.check_folder(tmp_path)
    assert [f.value for f in found] == ["n = 4"]


def test_machine_paths_are_found(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"data_path": "/secure/area/extract.csv",
                                                   "out": "/home/analyst/run"}), encoding="utf-8")
    found = C.check_folder(tmp_path, forbidden=["/secure/area"])
    assert {f.value for f in found} == {"/secure/area", "/home/"}
    assert all(f.problem == "machine path" for f in found)


def test_cli_exit_codes(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("n\n85800\n", encoding="utf-8")
    assert C.main([str(tmp_path)]) == 0
    (tmp_path / "t.csv").write_text("n\n85801\n", encoding="utf-8")
    assert C.main([str(tmp_path)]) == 1
    assert "t.csv: row 1, column 1 (n): '85801': unrounded count" in capsys.readouterr().out
