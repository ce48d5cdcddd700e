"""helpers.runcli: parameters from -p and a YAML file, paths made absolute, notebooks chosen by number or name,
the help text. The CLI as users call it (a subprocess) is tested in test_run.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, run_cli

from helpers import runcli as C


def test_yaml_must_be_a_mapping(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("- n_referrals\n", encoding="utf-8")
    with pytest.raises(C.UsageError, match="mapping"):
        C.collect_overrides([], params, None, tmp_path)


def test_relative_paths_are_made_absolute(tmp_path: Path) -> None:
    (tmp_path / "targets.csv").write_text("x\n", encoding="utf-8")
    overrides = C.collect_overrides(["targets_path=targets.csv", "margin=truth"], None, tmp_path / "o", tmp_path)
    assert overrides["targets_path"] == str(tmp_path / "targets.csv")
    assert overrides["margin"] == "truth"
    assert overrides["output_dir"] == str(tmp_path / "o")


def test_select_by_number_or_name() -> None:
    found = [Path(f"{n}.ipynb") for n in ("00_start_here", "01_study_design", "04_describing_the_cohort")]
    assert C.select(found, ["04", "00"]) == [found[0], found[2]]
    assert C.select(found, ["study_design"]) == [found[1]]
    assert C.select(found, ["01_study_design.ipynb", "1"]) == [found[1]]
    assert C.select(found, None) == found
    with pytest.raises(C.UsageError):
        C.select(found, ["05"])


def test_help_lists_parameters() -> None:
    result = run_cli(["--help"])
    assert result.returncode == 0
    for name in ("n_referrals", "seed", "missing_mechanism", "data_path"):
        assert name in result.stdout


def test_project_root() -> None:
    assert C.NOTEBOOKS_DIR == PROJECT_ROOT / "notebooks"
