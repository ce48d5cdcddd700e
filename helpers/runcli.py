"""The command line of ``python -m helpers.run``: its options, the parameters from ``-p`` and a YAML file,
which notebooks run, and the exit codes.

Everything here is checked before any notebook starts, so a typo costs a second, not a half-finished run;
errors (``UsageError``, ``helpers.params.ParameterError``) name the option or parameter, the value and what
is valid. Path parameters are made absolute against the directory the command was run from, because the
notebooks run with ``notebooks/`` as their working directory.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from helpers import parallel
from helpers import params as P
from helpers.study import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_OUT = PROJECT_ROOT / "outputs"
NOTEBOOK_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
# Parameters that name files or folders: made absolute when given relative (see module docstring).
PATH_PARAMETERS = ("data_path", "targets_path", "output_dir", "margin")

EXIT_OK = 0
EXIT_NOTEBOOK_FAILED = 1
EXIT_BAD_USAGE = 2
EXIT_BAD_EXTRACT = 3
EXIT_DISCLOSURE = 4
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad command line, parameter file or notebook selection (reported before any notebook runs)."""


def _absolute(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if value in P.MARGIN_KEYWORDS:  # margin keywords, not paths
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def collect_overrides(
    param_args: Sequence[str], params_file: Path | None, out_dir: Path | None, cwd: Path
) -> dict[str, Any]:
    """Overrides from a YAML file, then ``-p name=value`` (later wins), paths made absolute."""
    overrides: dict[str, Any] = {}
    if params_file is not None:
        try:
            loaded = yaml.safe_load(params_file.read_text(encoding="utf-8"))
        except OSError as err:
            raise UsageError(f"--params {params_file}: cannot read ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise UsageError(f"--params {params_file}: not valid YAML ({err})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UsageError(f"--params {params_file}: expected a mapping of name: value, got {type(loaded).__name__}")
        overrides.update(loaded)
    problems: list[str] = []  # report every bad -p at once, like helpers.params.validate does
    for item in param_args:
        if "=" not in item:
            problems.append(f"-p {item!r}: expected name=value (e.g. -p n_referrals=20000)")
            continue
        name, text = item.split("=", 1)
        try:
            overrides[name.strip()] = P.parse_cli_value(name.strip(), text)
        except P.ParameterError as err:
            problems.append(str(err))
    if problems:
        raise UsageError("\n".join(problems))
    if out_dir is not None:
        if "output_dir" in overrides and _absolute(overrides["output_dir"], cwd) != str(out_dir):
            raise UsageError(
                f"output_dir = {overrides['output_dir']!r} disagrees with --out {out_dir}: give one of them"
            )
        overrides["output_dir"] = str(out_dir)
    for name in PATH_PARAMETERS:
        if name in overrides and not (name == "margin" and not str(overrides[name]).endswith(".csv")):
            overrides[name] = _absolute(overrides[name], cwd)
    return overrides


def validate_parameters(overrides: dict[str, Any]) -> dict[str, Any]:
    """The full validated parameter set (raises helpers.params.ParameterError, a ValueError)."""
    validated = dict(P.validate(overrides))
    if "output_dir" in overrides and "output_dir" not in validated:  # schema without output_dir
        validated["output_dir"] = overrides["output_dir"]
    return validated


def discover(notebooks_dir: Path) -> list[Path]:
    """Numbered notebooks ``NN_name.ipynb`` in order (sub-folders such as exercises/ are not scanned)."""
    return sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """Keep notebooks named by ``--only`` tokens: a number prefix (``05``) or a name, with or without the
    number and extension (``05_describing_the_cohort``, ``describing_the_cohort``). Order stays the set's."""
    if not only:
        return list(notebooks)
    chosen: set[Path] = set()
    for token in only:
        key = token.strip().removesuffix(".ipynb")
        hits = [
            p for p in notebooks
            if key in (p.stem, p.stem[:2], p.stem[3:]) or (key.isdigit() and p.stem.split("_", 1)[0] == key.zfill(2))
        ]
        if not hits:
            names = ", ".join(p.stem for p in notebooks) or "(none found)"
            raise UsageError(f"--only {token!r} matches no notebook. Notebooks: {names}")
        chosen.update(hits)
    return [p for p in notebooks if p in chosen]


def build_parser() -> argparse.ArgumentParser:
    epilog = ""
    try:
        epilog = "parameters:\n" + P.describe()
    except Exception:  # noqa: BLE001 - help must print even if the schema module is broken
        pass
    parser = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute the IAPT Pathways notebooks with papermill, build the HTML book, write run.json.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-p", "--param", dest="param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter (repeatable)")
    parser.add_argument("--params", type=Path, metavar="FILE.yaml", help="parameters from a YAML mapping")
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (number or name)")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML book")
    parser.add_argument("--no-screenshot", action="store_true", help="skip the Chromium screenshot of the book")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR, metavar="DIR",
                        help="folder of NN_name.ipynb notebooks (default: the project's notebooks/)")
    parser.add_argument("--jobs", type=int, default=parallel.default_jobs(), metavar="N",
                        help="notebooks run at a time, each in a worker process (default: the cores, "
                             f"here {parallel.default_jobs()})")
    parser.add_argument("--sequential", action="store_true",
                        help="one notebook after another in this process (same as --jobs 1; for debugging)")
    parser.add_argument("--no-cache", action="store_true",
                        help="every notebook and the tables compute their results for themselves (for debugging)")
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)  # a worker process of the parallel route
    return parser
