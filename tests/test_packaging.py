"""One source of truth for dependencies: requirements.txt, with the other files checked against it.

requirements.txt   direct dependencies, exact pins (read by pyproject.toml)
constraints.txt    the full resolved set (`make lock`), must contain every direct pin at the same version
environment.yml    conda/Binder: python 3.11 and the same pip pins
plus: the venv we run in has those versions, and kernel `python3` is this interpreter.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from conftest import PROJECT_ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

PROJECT_NAME = "iapt-pathways"


def pins(lines: list[str], where: str) -> dict[str, str]:
    """name -> version from `name==version` lines; anything else (but comments/blank) is an error."""
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{where}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in out, f"{where}: {name} pinned twice"
        out[name] = specs[0].version
    return out


def requirement_pins() -> dict[str, str]:
    return pins((PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines(), "requirements.txt")


def test_requirements_are_exact_pins() -> None:
    req = requirement_pins()
    for needed in ("papermill", "nbval", "nbconvert", "ipykernel", "pyyaml", "pytest", "numpy", "pandas"):
        assert needed in req, f"requirements.txt lacks {needed}"


def test_environment_yml_agrees_with_requirements() -> None:
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text(encoding="utf-8"))
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert any(re.fullmatch(r"python\s*=\s*3\.11(\.\*|\.\d+)?", d) for d in conda), f"no python=3.11 in {conda}"
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    pip_lines = [line for line in pip_sections[0] if not line.startswith("-")]  # `-e .` installs the project
    assert pins(pip_lines, "environment.yml") == requirement_pins()


def test_pyproject_reads_requirements_and_wants_python_311() -> None:
    data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert project["name"] == PROJECT_NAME
    assert "dependencies" in project["dynamic"] and "dependencies" not in project
    assert data["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    assert "helpers" in data["tool"]["setuptools"]["packages"]
    spec = SpecifierSet(project["requires-python"])
    assert "3.11.0" in spec and "3.11.9" in spec, f"requires-python {spec} excludes 3.11"


def test_constraints_cover_requirements() -> None:
    lines = (PROJECT_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    assert not any(line.strip().startswith("-e") for line in lines), "constraints.txt has an editable install"
    locked = pins(lines, "constraints.txt")
    assert canonicalize_name(PROJECT_NAME) not in locked, "constraints.txt must not pin the project itself"
    req = requirement_pins()
    mismatched = {n: (v, locked.get(n)) for n, v in req.items() if locked.get(n) != v}
    assert not mismatched, f"requirements vs constraints (run `make lock`): {mismatched}"
    assert len(locked) > 3 * len(req), "constraints.txt should pin the transitive dependencies too"


def test_installed_versions_match_pins() -> None:
    """The environment the tests run in is the pinned one (a stale venv fails here, not mysteriously)."""
    wrong = {}
    for name, version in requirement_pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong} (run `make venv`)"


def test_python_is_311() -> None:
    assert sys.version_info[:2] == (3, 11)


def test_kernel_python3_is_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.language == "python"
    cmd = KernelManager(kernel_name="python3").format_kernel_cmd()
    assert Path(cmd[0]).resolve() == Path(sys.executable).resolve(), (
        f"kernel python3 starts {cmd[0]}, not {sys.executable}: a user/system kernelspec shadows the venv's "
        "(set JUPYTER_PREFER_ENV_PATH=1, as the Makefile does)"
    )


def test_makefile_and_ci() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("venv", "run", "test", "data", "exercises", "bench", "lock", "clean", "browser"):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), f"Makefile has no `{target}` target"
    ci = PROJECT_ROOT / ".ci" / "run"
    text = ci.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text and re.search(r"^make test$", text, flags=re.MULTILINE)
    assert os.access(ci, os.X_OK), ".ci/run is not executable"


def test_gitignore() -> None:
    ignored = (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    for entry in (".venv/", "outputs/", "notebooks/exercises/", "__pycache__/"):
        assert entry in ignored, f".gitignore lacks {entry}"
