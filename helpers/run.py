"""Run the whole notebook set with papermill: ``python -m helpers.run [-p name=value ...]``.

    python -m helpers.run                                  # defaults, into outputs/
    python -m helpers.run -p n_referrals=20000 -p seed=1   # other parameters
    python -m helpers.run --params my_run.yaml --out /tmp/my_run
    python -m helpers.run --only 00 04_describing_the_cohort --no-html

What a run leaves in OUT (default ``outputs/``):
    notebooks/NN_name.ipynb   the executed notebooks (a failed one too, with its error, for reading)
    html/index.html + pages   the book (helpers.book), written only after every notebook passed
    tables/                   result tables from helpers.pipeline (estimates.csv, table1.csv, pathway_counts.csv,
                              flow.csv, table4_comparison.csv), plus what notebooks save (``output_dir`` = OUT)
    run.json                  parameters, package versions, git revision, Python, seconds per notebook, status
    book_index.png            a screenshot of the index when headless Chromium is installed

Why this shape:
- Parameters are validated by ``helpers.params`` *before* the first notebook starts, so a typo costs a
  second, not a half-finished run. Errors name the parameter, the value and what is valid.
- Every notebook gets the full validated parameter set injected (papermill adds one cell of assignments
  after the ``parameters`` cell); names a notebook does not use are harmless.
- Path parameters given on the command line or in a YAML file are made absolute against the directory the
  command was run from, because the notebooks run with ``notebooks/`` as their working directory.
- A stale ``html/`` book is removed at the start, so a failed run never leaves an index that looks like
  success; ``run.json`` always says ``status``: ``running`` / ``ok`` / ``failed``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from helpers.study import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_OUT = PROJECT_ROOT / "outputs"
KERNEL_NAME = "python3"
NOTEBOOK_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
# Parameters that name files or folders: made absolute when given relative (see module docstring).
PATH_PARAMETERS = ("data_path", "targets_path", "output_dir", "margin")

EXIT_OK = 0
EXIT_NOTEBOOK_FAILED = 1
EXIT_BAD_USAGE = 2


class UsageError(ValueError):
    """Bad command line, parameter file or notebook selection (reported before any notebook runs)."""


@dataclass
class RunRecord:
    """What run.json records; written at the start (status running) and at the end."""

    parameters: dict[str, Any]
    out_dir: Path
    notebooks: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    error: dict[str, Any] | None = None
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished: str | None = None
    tables: list[str] = field(default_factory=list)

    def write(self) -> Path:
        path = self.out_dir / "run.json"
        payload = {
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "parameters": self.parameters,
            "notebooks": self.notebooks,
            "total_seconds": round(sum(n.get("seconds", 0.0) for n in self.notebooks), 2),
            "error": self.error,
            "tables": self.tables,
            "git_revision": git_revision(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
            "command": [Path(sys.executable).name, "-m", "helpers.run", *sys.argv[1:]],
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        return path


# --------------------------------------------------------------------------------------------------------
# Facts for run.json
# --------------------------------------------------------------------------------------------------------


def git_revision(root: Path = PROJECT_ROOT) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or "unknown"."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev or "unknown"


def _requirement_names(root: Path = PROJECT_ROOT) -> list[str]:
    req = root / "requirements.txt"
    names: list[str] = []
    if req.exists():
        for line in req.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
    return names


def package_versions() -> dict[str, str]:
    """Installed versions of the direct dependencies (requirements.txt) and of this project."""
    names = ["iapt-pathways", *_requirement_names()]
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# --------------------------------------------------------------------------------------------------------
# Parameters and selection
# --------------------------------------------------------------------------------------------------------


def _absolute(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if value in ("truth", "census2011"):  # margin keywords, not paths
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def collect_overrides(
    param_args: Sequence[str], params_file: Path | None, out_dir: Path | None, cwd: Path
) -> dict[str, Any]:
    """Overrides from a YAML file, then ``-p name=value`` (later wins), paths made absolute."""
    from helpers import params as P

    overrides: dict[str, Any] = {}
    if params_file is not None:
        import yaml

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
    from helpers import params as P

    validated = dict(P.validate(overrides))
    if "output_dir" in overrides and "output_dir" not in validated:  # schema without output_dir
        validated["output_dir"] = overrides["output_dir"]
    return validated


def discover(notebooks_dir: Path) -> list[Path]:
    """Numbered notebooks ``NN_name.ipynb`` in order (sub-folders such as exercises/ are not scanned)."""
    return sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """Keep notebooks named by ``--only`` tokens: a number prefix (``04``) or a name, with or without the
    number and extension (``04_describing_the_cohort``, ``describing_the_cohort``). Order stays the set's."""
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


def kernel_command() -> list[str]:
    """The command the ``python3`` kernel would be started with (to check it is this interpreter)."""
    from jupyter_client.manager import KernelManager

    return KernelManager(kernel_name=KERNEL_NAME).format_kernel_cmd()


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------


def _describe_failure(err: BaseException) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(err).__name__, "message": str(err).strip()[-4000:]}
    for attr in ("cell_index", "exec_count", "ename", "evalue", "source"):
        if hasattr(err, attr):
            info[attr] = getattr(err, attr)
    return info


def _print_failure(name: str, info: dict[str, Any]) -> None:
    print(f"\nFAILED: notebook {name}", file=sys.stderr)
    if "cell_index" in info:
        print(f"  cell {info['cell_index']} (execution count {info.get('exec_count')})", file=sys.stderr)
        source = str(info.get("source", "")).rstrip()
        if source:
            shown = source.splitlines()
            excerpt = "\n".join("    | " + line for line in shown[-12:])
            print(("    | ...\n" if len(shown) > 12 else "") + excerpt, file=sys.stderr)
        print(f"  {info.get('ename')}: {info.get('evalue')}", file=sys.stderr)
    else:
        print(f"  {info['type']}: {info['message']}", file=sys.stderr)


class _DropUnknownParameterWarnings(logging.Filter):
    """papermill warns once per injected name a notebook does not declare; every notebook gets the full
    set on purpose (names were validated already), so those warnings are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def execute(notebook: Path, output: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """One notebook through papermill, kernel ``python3``, working directory ``cwd``."""
    import papermill as pm

    log = logging.getLogger("papermill")
    quiet = _DropUnknownParameterWarnings()
    log.addFilter(quiet)
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            report_mode=False,
        )
    finally:
        log.removeFilter(quiet)


def _remove_stale_book(html_dir: Path) -> None:
    """Delete pages a previous run left, so nothing looks like this run's success."""
    if html_dir.is_dir():
        for page in html_dir.glob("*.html"):
            page.unlink()
    screenshot = html_dir.parent / "book_index.png"
    if screenshot.exists():
        screenshot.unlink()


def write_result_tables(parameters: dict[str, Any], tables_dir: Path) -> list[str]:
    """The run's result tables (estimates, Table 1, pathway counts, flow, Table 4 comparison).

    Computed by ``helpers.pipeline`` from the same parameters the notebooks had, not collected from the
    notebooks, so ``--only`` runs still produce complete, consistent tables.
    """
    from helpers import pipeline

    data = pipeline.load_study_data(parameters)
    paths = pipeline.write_outputs(data, tables_dir)
    return sorted(p.name for p in paths.values())


def run(
    parameters: dict[str, Any],
    out_dir: Path,
    notebooks: Sequence[Path],
    *,
    html: bool = True,
    screenshot: bool = True,
) -> int:
    """Execute ``notebooks`` in order into ``out_dir``; return the exit code. Parameters already validated."""
    notebooks_out = out_dir / "notebooks"
    notebooks_out.mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    _remove_stale_book(out_dir / "html")
    record = RunRecord(parameters=parameters, out_dir=out_dir)
    record.write()
    print(f"Running {len(notebooks)} notebook(s) into {out_dir}", flush=True)
    executed: list[Path] = []
    for i, nb in enumerate(notebooks, 1):
        target = notebooks_out / nb.name
        print(f"[{i:>2}/{len(notebooks)}] {nb.stem} ...", end=" ", flush=True)
        start = time.perf_counter()
        try:
            execute(nb, target, parameters, cwd=nb.parent)
        except BaseException as err:  # noqa: BLE001 - record any failure (incl. Ctrl-C), then re-raise Ctrl-C
            seconds = round(time.perf_counter() - start, 2)
            print(f"failed after {seconds:.1f} s", flush=True)
            info = _describe_failure(err)
            record.notebooks.append({"name": nb.stem, "seconds": seconds, "status": "failed"})
            record.status = "failed"
            record.error = {"notebook": nb.stem, **info}
            record.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
            record.write()
            _print_failure(nb.stem, info)
            print(f"Executed notebook with the error: {target}\nRun record: {out_dir / 'run.json'}", file=sys.stderr)
            if isinstance(err, KeyboardInterrupt):
                raise
            return EXIT_NOTEBOOK_FAILED
        seconds = round(time.perf_counter() - start, 2)
        print(f"{seconds:.1f} s", flush=True)
        record.notebooks.append({"name": nb.stem, "seconds": seconds, "status": "ok"})
        executed.append(target)
        record.write()

    start = time.perf_counter()
    try:
        record.tables = write_result_tables(parameters, out_dir / "tables")
    except Exception as err:  # noqa: BLE001 - a failed table is a failed run, reported like a notebook
        record.status = "failed"
        record.error = {"step": "result tables", "error": f"{type(err).__name__}: {err}"}
        record.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record.write()
        print(f"error: writing the result tables failed: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_NOTEBOOK_FAILED
    print(f"Tables: {out_dir / 'tables'} ({time.perf_counter() - start:.1f} s)", flush=True)

    if html:
        from helpers import book

        start = time.perf_counter()
        index = book.build_book(
            executed,
            out_dir / "html",
            parameters,
            run_info={"git revision": git_revision(), "python": platform.python_version()},
        )
        print(f"Book: {index} ({time.perf_counter() - start:.1f} s)", flush=True)
        if screenshot and book.find_chromium():
            try:
                png = book.screenshot(index, out_dir / "book_index.png")
                print(f"Screenshot: {png}", flush=True)
            except (RuntimeError, OSError, subprocess.SubprocessError) as err:
                print(f"warning: no screenshot of the book ({err})", file=sys.stderr)
    record.status = "ok"
    record.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path = record.write()
    print(f"Done in {sum(n['seconds'] for n in record.notebooks):.1f} s. Run record: {path}", flush=True)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    epilog = ""
    try:
        from helpers import params as P

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cwd = Path.cwd()
    from helpers.params import ParameterError

    try:
        out_dir = (cwd / args.out).resolve() if args.out else None
        overrides = collect_overrides(args.param, args.params, out_dir, cwd)
        if out_dir is None:
            out_dir = Path(overrides.get("output_dir") or DEFAULT_OUT)
            overrides["output_dir"] = str(out_dir)
        parameters = validate_parameters(overrides)
        notebooks_dir = args.notebooks.resolve()
        found = discover(notebooks_dir)
        if not found:
            raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {notebooks_dir}")
        chosen = select(found, args.only)
    except (ParameterError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        print("No notebook was run. See `python -m helpers.run --help` for the parameters.", file=sys.stderr)
        return EXIT_BAD_USAGE
    cmd = kernel_command()
    if cmd and Path(cmd[0]).resolve() != Path(sys.executable).resolve():
        print(f"warning: kernel {KERNEL_NAME!r} runs {cmd[0]}, not this interpreter {sys.executable}; "
              "set JUPYTER_PREFER_ENV_PATH=1 or run from the project venv", file=sys.stderr)
    return run(parameters, out_dir, chosen, html=not args.no_html, screenshot=not args.no_screenshot)


if __name__ == "__main__":
    sys.exit(main())
