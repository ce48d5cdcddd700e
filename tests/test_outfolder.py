"""helpers.outfolder: the run owns its output folder; every refusal is one line (directly and through the CLI)."""

from __future__ import annotations

import fcntl

import pytest
from conftest import run_cli

from helpers import outfolder as O
from helpers import runcli as C


def test_out_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x", encoding="utf-8")
    result = run_cli(["--out", str(target), "--only", "00"])
    assert result.returncode == C.EXIT_BAD_USAGE
    assert "is a file, not a folder" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_out_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(O.os, "access", lambda *a, **k: False)  # root can write anywhere: simulate read-only
    with pytest.raises(O.OutputFolderError, match="not writable"):
        O.claim_output_folder(tmp_path / "ro")


def test_a_folder_not_made_by_a_run_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("someone's work", encoding="utf-8")
    with pytest.raises(O.OutputFolderError, match="not empty and was not made by helpers.run"):
        O.claim_output_folder(tmp_path)
    assert (tmp_path / "mine.txt").exists()


def test_a_rerun_clears_what_an_earlier_run_left(tmp_path):
    out = tmp_path / "out"
    O.claim_output_folder(out).release()
    (out / "tables").mkdir()
    (out / "tables" / "05_table1_disclosed.csv").write_text("stale", encoding="utf-8")
    folder = O.claim_output_folder(out)
    folder.release()
    assert sorted(p.name for p in out.iterdir()) == sorted([O.OWNER_MARKER, O.LOCK_NAME])


def test_a_second_run_into_the_same_folder_is_locked_out(tmp_path):
    out = tmp_path / "out"
    O.claim_output_folder(out).release()
    with open(out / O.LOCK_NAME, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli(["--out", str(out), "--only", "00"])
    assert result.returncode == C.EXIT_BAD_USAGE
    assert "another run is writing into this folder" in result.stderr
