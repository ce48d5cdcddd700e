"""Run the whole notebook set with papermill: ``python -m helpers.run [-p name=value ...]``.

    python -m helpers.run                                  # defaults, into outputs/
    python -m helpers.run -p n_referrals=20000 -p seed=1   # other parameters
    python -m helpers.run --params my_run.yaml --out /tmp/my_run
    python -m helpers.run --only 00 04_describing_the_cohort --no-html
    python -m helpers.run --sequential --no-cache              # the route before 0.3: for debugging

What a run leaves in OUT (default ``outputs/``):
    notebooks/NN_name.ipynb   the executed notebooks (a failed one too, with its error, for reading)
    html/index.html + pages   the book (helpers.book), written only after every notebook passed
    tables/                   result tables from helpers.pipeline (estimates.csv, table1.csv, pathway_counts.csv,
                              flow.csv, table4_comparison.csv), plus what notebooks save (``output_dir`` = OUT)
    run.json                  parameters, package versions, git revision, Python, seconds per notebook, status
    book_index.png            a screenshot of the index when headless Chromium is installed
    secure/                   real extract only: the exact material (flow.csv, table1_exact.csv); never publish

Real extract (``data_path``): the extract is read and checked here, before any notebook starts
(``helpers.pipeline.check_extract``); a blocking problem stops the run with the report and no notebook run,
and ``secure/flow.csv`` is written whenever rows were read. Everything outside ``secure/`` is disclosure
controlled, and ``helpers.check_outputs`` checks it at the end (a finding fails the run).

The run owns OUT: a folder it made earlier (marked by ``.iapt-run``) is cleared first, a non-empty folder it
did not make is refused, a lock (``.iapt-run.lock``) stops a second run writing into it, and SIGTERM/SIGINT
leave ``run.json`` at ``interrupted`` with the notebook(s) that were running. No output names a machine path:
the extract by its file name, folders relative to OUT (``helpers.run.scrub``).

Speed: notebooks run ``--jobs`` at a time (default: the cores), each in a worker process
(``helpers.parallel``: none reads a file another writes, so none waits for another), and the shared results
(the analysis data, the complete-case, full-data and imputed fits) are computed once per run and reused by
the notebooks and the tables through a cache folder in OUT (``helpers.cache``; ``secure/cache`` for a real
extract), removed when the run ends. ``--sequential --no-cache`` is the route before: one notebook after
another in this process, each computing for itself; the tables are byte for byte the same either way.

Why this shape:
- Parameters are validated by ``helpers.params`` *before* the first notebook starts, so a typo costs a
  second, not a half-finished run. Errors name the parameter, the value and what is valid.
- Every notebook gets the full validated parameter set injected (papermill adds one cell of assignments
  after the ``parameters`` cell); names a notebook does not use are harmless.
- Path parameters given on the command line or in a YAML file are made absolute against the directory the
  command was run from, because the notebooks run with ``notebooks/`` as their working directory.
- Earlier output is removed at the start, so a failed run never leaves an index that looks like success;
  ``run.json`` always says ``status``: ``running`` / ``ok`` / ``failed`` / ``interrupted``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import nbformat
import papermill as pm
import yaml
from jupyter_client.manager import KernelManager

from helpers import book, cache, check_outputs, parallel, pipeline
from helpers import params as P
from helpers.params import ParameterError
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
EXIT_BAD_EXTRACT = 3
EXIT_DISCLOSURE = 4
EXIT_INTERRUPTED = 130
OWNER_MARKER = ".iapt-run"  # written into every output folder a run creates or clears
LOCK_NAME = ".iapt-run.lock"


class UsageError(ValueError):
    """Bad command line, parameter file or notebook selection (reported before any notebook runs)."""


class OutputFolderError(UsageError):
    """``--out`` cannot be used: a file, read-only, full, locked by another run, or someone else's folder."""


class Interrupted(BaseException):
    """SIGTERM arrived (SIGINT arrives as KeyboardInterrupt): stop, and record what was running."""


@dataclass
class RunRecord:
    """What run.json records; written at the start (status running) and at the end."""

    parameters: dict[str, Any]
    out_dir: Path
    scrubber: "Scrubber | None" = None
    notebooks: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    error: dict[str, Any] | None = None
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished: str | None = None
    tables: list[str] = field(default_factory=list)
    extract: dict[str, Any] | None = None
    disclosure_check: dict[str, Any] | None = None
    wall_seconds: float | None = None  # start to finish; notebooks side by side add up to more

    def write(self) -> Path:
        path = self.out_dir / "run.json"
        payload = {
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "parameters": self.parameters,
            "notebooks": self.notebooks,
            "total_seconds": round(sum(n.get("seconds", 0.0) for n in self.notebooks), 2),
            "wall_seconds": self.wall_seconds,
            "error": self.error,
            "tables": self.tables,
            "extract": self.extract,
            "disclosure_check": self.disclosure_check,
            "git_revision": git_revision(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
            "command": [Path(sys.executable).name, "-m", "helpers.run", *sys.argv[1:]],
        }
        if self.scrubber is not None:
            payload = self.scrubber(payload)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        return path


# --------------------------------------------------------------------------------------------------------
# No machine paths in any output
# --------------------------------------------------------------------------------------------------------


@dataclass
class Scrubber:
    """Replace machine paths by what a reader may see: the extract by its file name, OUT by ".", other
    folders relative to OUT where they lie inside it, the project folder by "<project>".

    Applied to everything a run writes (run.json, executed notebooks, the book's parameters), because
    papermill injects the absolute parameters and records its input and output paths, and messages quote
    them. Longest paths are replaced first, so a file inside OUT is not half-replaced by OUT itself.
    """

    replacements: list[tuple[str, str]]

    @classmethod
    def for_run(cls, parameters: dict[str, Any], out_dir: Path) -> "Scrubber":
        pairs: dict[str, str] = {}
        out = Path(out_dir).resolve()
        for name in ("data_path", "targets_path", "margin"):
            value = parameters.get(name)
            if isinstance(value, str) and value and value not in ("auto", "truth", "census2011"):
                path = Path(value)
                pairs[str(path)] = path.name
                pairs[str(path.resolve())] = path.name
                parent = str(path.parent.resolve())
                if len(Path(parent).parts) > 1:  # never "/" itself
                    pairs[parent] = "<folder of " + path.name + ">"
        pairs[str(out)] = "."
        pairs[str(Path(out_dir))] = "."
        pairs[str(PROJECT_ROOT)] = "<project>"
        pairs[str(PROJECT_ROOT.resolve())] = "<project>"
        home = str(Path.home())
        if home not in ("/", ""):
            pairs[home] = "~"
        ordered = sorted(((k, v) for k, v in pairs.items() if k and k != "."), key=lambda kv: -len(kv[0]))
        return cls(ordered)

    def text(self, value: str) -> str:
        for old, new in self.replacements:
            if old in value:
                value = value.replace(old + os.sep, "" if new == "." else new + "/")
                value = value.replace(old, new)
        return value

    def __call__(self, obj: Any) -> Any:
        """A scrubbed copy of a JSON-like value (str, dict, list, tuple, other values unchanged)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        return obj

    def notebook(self, path: Path) -> None:
        """Scrub an executed notebook file in place (sources, outputs, metadata)."""
        nb = nbformat.read(path, as_version=4)
        nbformat.write(_scrub_node(nb, self), path)


def _scrub_node(node: Any, scrub: Scrubber) -> Any:
    """Scrub an nbformat node (a dict subclass) in place, keeping its type."""
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _scrub_node(node[key], scrub)
        return node
    if isinstance(node, list):
        return [_scrub_node(v, scrub) for v in node]
    if isinstance(node, str):
        return scrub.text(node)
    return node


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
    if value in ("auto", "truth", "census2011"):  # margin keywords, not paths
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


# --------------------------------------------------------------------------------------------------------
# The parallel route: each notebook in a worker process (python -m helpers.run --work JOB.json)
# --------------------------------------------------------------------------------------------------------


def work(job_file: Path) -> int:
    """The worker: execute one notebook as ``job_file`` says and write how it ended beside it (JSON).

    A worker process (not a thread) per notebook, so an interrupt can stop a notebook and its kernel.
    """
    job = json.loads(job_file.read_text(encoding="utf-8"))
    result = Path(job["result"])
    signal.signal(signal.SIGTERM, _raise_interrupted)
    if job.get("kind") == "tables":
        return _work_tables(job, result)
    try:
        execute(Path(job["notebook"]), Path(job["output"]), job["parameters"], cwd=Path(job["cwd"]))
    except (Interrupted, KeyboardInterrupt):
        result.write_text(json.dumps({"status": "interrupted"}), encoding="utf-8")
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the parent reports any failure of the notebook
        result.write_text(json.dumps({"status": "failed", "failure": _describe_failure(err)}, default=str),
                          encoding="utf-8")
        return EXIT_NOTEBOOK_FAILED
    result.write_text(json.dumps({"status": "ok"}), encoding="utf-8")
    return EXIT_OK


def _work_tables(job: dict[str, Any], result: Path) -> int:
    secure = Path(job["secure_dir"]) if job["secure_dir"] else None
    try:
        written = write_result_tables(job["parameters"], Path(job["tables_dir"]), secure)
    except Exception as err:  # noqa: BLE001 - the parent reports any failure of the tables
        result.write_text(json.dumps({"status": "failed", "error": f"{type(err).__name__}: {err}"}), encoding="utf-8")
        return EXIT_NOTEBOOK_FAILED
    result.write_text(json.dumps({"status": "ok", "tables": written}), encoding="utf-8")
    return EXIT_OK


class TablesError(RuntimeError):
    """The result tables could not be written (the message names the error the worker met)."""


def write_result_tables_in_worker(parameters: dict[str, Any], tables_dir: Path, secure_dir: Path | None) -> list[str]:
    """``write_result_tables`` in a worker process with the notebooks' environment (one BLAS thread, the run's
    cache), so the tables are computed exactly as the notebooks compute, whichever route ran them."""
    with tempfile.TemporaryDirectory(prefix="iapt-run-") as scratch:
        job_file, result = Path(scratch) / "tables.job.json", Path(scratch) / "tables.result.json"
        job_file.write_text(json.dumps({"kind": "tables", "parameters": parameters, "tables_dir": str(tables_dir),
                                        "secure_dir": str(secure_dir) if secure_dir else "",
                                        "result": str(result)}), encoding="utf-8")
        process = subprocess.Popen([sys.executable, "-m", "helpers.run", "--work", str(job_file)],
                                   stdin=subprocess.DEVNULL, env=worker_environment())
        try:
            code = process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
        if not result.exists():
            raise TablesError(f"the tables worker exited with code {code} without a result")
        ended = json.loads(result.read_text(encoding="utf-8"))
    if ended["status"] != "ok":
        raise TablesError(ended["error"])
    return ended["tables"]


# BLAS on one thread in every kernel and worker of a run, in both routes, unless the user chose otherwise:
# - its threads on top of the workers would oversubscribe the cores (they spin while they wait: on a busy
#   2-core machine one small matrix product of the imputation model took 2.9 s instead of 0.01 s);
# - the number of BLAS threads changes the last digits of a fit (about 1e-9 in an SE), so a fixed number
#   keeps a run's tables byte for byte the same whichever route ran it and however many cores the machine has.
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_environment() -> dict[str, str]:
    """The environment of a worker and its kernel: this one, BLAS on one thread unless the user chose."""
    return {**SINGLE_THREAD, **os.environ}


@dataclass
class WorkerJob:
    """One notebook running in a worker process (``parallel.Job``)."""

    name: str
    process: subprocess.Popen
    result: Path
    log: Path
    started: float

    @classmethod
    def launch(cls, notebook: Path, target: Path, parameters: dict[str, Any], scratch: Path) -> "WorkerJob":
        job_file, result, log = (scratch / f"{notebook.stem}.{kind}" for kind in ("job.json", "result.json", "log"))
        job_file.write_text(json.dumps({"notebook": str(notebook), "output": str(target), "cwd": str(notebook.parent),
                                        "parameters": parameters, "result": str(result)}), encoding="utf-8")
        with open(log, "wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", "helpers.run", "--work", str(job_file)],
                                       stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                       env=worker_environment())
        return cls(notebook.stem, process, result, log, time.perf_counter())

    def poll(self) -> parallel.Outcome | None:
        code = self.process.poll()
        if code is None:
            return None
        seconds = round(time.perf_counter() - self.started, 2)
        if self.result.exists():
            ended = json.loads(self.result.read_text(encoding="utf-8"))
        else:  # the worker died before it could say why
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log.exists() else ""
            ended = {"status": "failed", "failure": {"type": "WorkerExited",
                                                     "message": f"worker exit code {code}\n{tail}".strip()}}
        return parallel.Outcome(self.name, ended["status"], seconds, ended.get("failure"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the worker raises Interrupted; papermill shuts the kernel down
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_notebooks_parallel(notebooks: Sequence[Path], notebooks_out: Path, parameters: dict[str, Any], jobs: int,
                           record: RunRecord, scrubber: Scrubber, current: dict[str, str]) -> list[Path] | int:
    """The notebooks on ``jobs`` worker processes (``helpers.parallel``): the executed copies in the set's
    order, or EXIT_NOTEBOOK_FAILED after reporting the first failure as the sequential route does."""
    by_name = {nb.stem: nb for nb in notebooks}
    number = {nb.stem: i for i, nb in enumerate(notebooks, 1)}
    finished: dict[str, dict[str, Any]] = {}
    running: list[str] = []
    width = len(str(len(notebooks)))

    def label(name: str) -> str:
        return f"[{number[name]:>{max(2, width)}}/{len(notebooks)}] {name}"

    def keep_record() -> None:
        record.notebooks = [finished[n] for n in by_name if n in finished]
        current["step"] = ", ".join(n for n in by_name if n in running) or current["step"]
        record.write()

    def on_start(name: str) -> None:
        running.append(name)
        print(f"{label(name)} ...", flush=True)
        keep_record()

    def on_finish(outcome: parallel.Outcome) -> None:
        target = notebooks_out / f"{outcome.name}.ipynb"
        if target.exists():
            scrubber.notebook(target)  # papermill saves as it goes: even a partial copy holds injected paths
        if outcome.status != "interrupted":
            running.remove(outcome.name)
            shown = "ok" if outcome.status == "ok" else "failed after"
            print(f"{label(outcome.name)} {shown} {outcome.seconds:.1f} s", flush=True)
        finished[outcome.name] = {"name": outcome.name, "seconds": outcome.seconds, "status": outcome.status}
        if outcome.status == "interrupted":  # run() writes the record once every running notebook is stopped
            record.notebooks = [finished[n] for n in by_name if n in finished]
        else:
            keep_record()

    def on_discard(name: str) -> None:
        if name in running:
            running.remove(name)
        finished.pop(name, None)
        (notebooks_out / f"{name}.ipynb").unlink(missing_ok=True)
        print(f"{label(name)} not kept: an earlier notebook failed", flush=True)

    with tempfile.TemporaryDirectory(prefix="iapt-run-") as scratch:
        def launch(name: str) -> WorkerJob:
            return WorkerJob.launch(by_name[name], notebooks_out / f"{name}.ipynb", parameters, Path(scratch))

        outcomes = parallel.schedule(list(by_name), launch, jobs, on_start=on_start, on_finish=on_finish,
                                     on_discard=on_discard)
    record.notebooks = [finished[o.name] for o in outcomes]
    failed = next((o for o in outcomes if o.status != "ok"), None)
    if failed is None:
        record.write()
        return [notebooks_out / f"{o.name}.ipynb" for o in outcomes]
    info = scrubber(failed.failure or {"type": "unknown", "message": "the worker gave no reason"})
    record.status = "failed"
    record.error = {"notebook": failed.name, **info}
    record.finished = _now()
    record.write()
    _print_failure(failed.name, info)
    print(f"Executed notebook with the error: {notebooks_out / (failed.name + '.ipynb')}\n"
          f"Run record: {record.out_dir / 'run.json'}", file=sys.stderr)
    return EXIT_NOTEBOOK_FAILED


# --------------------------------------------------------------------------------------------------------
# The output folder belongs to the run
# --------------------------------------------------------------------------------------------------------


@dataclass
class OutputFolder:
    """An output folder this run has locked and cleared; ``release()`` at the end."""

    path: Path
    lock_handle: Any

    def release(self) -> None:
        try:
            self.lock_handle.close()
        except OSError:
            pass


def _short_os_error(err: OSError) -> str:
    return err.strerror or type(err).__name__


def claim_output_folder(out_dir: Path, default: Path = DEFAULT_OUT) -> OutputFolder:
    """Create or take over ``out_dir``: lock it, then clear what an earlier run left.

    Refused (``OutputFolderError``, one line): a file; a folder that cannot be written (read-only, no space);
    a folder locked by a run still going; a non-empty folder with no ``.iapt-run`` marker (not made by a run,
    so its files may be someone's work), except the project's default ``outputs/``.
    """
    import fcntl  # POSIX only (Windows has none): imported where the lock is taken

    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(f"--out {out_dir.name}: is a file, not a folder; give a folder for the run's output")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputFolderError(f"--out {out_dir.name}: cannot create the folder ({_short_os_error(err)})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputFolderError(f"--out {out_dir.name}: the folder is not writable (read-only?)")
    entries = [e for e in out_dir.iterdir() if e.name != LOCK_NAME]
    owned = (out_dir / OWNER_MARKER).exists() or out_dir.resolve() == default.resolve()
    if entries and not owned:
        raise OutputFolderError(
            f"--out {out_dir.name}: the folder is not empty and was not made by helpers.run "
            f"({len(entries)} entries, no {OWNER_MARKER} marker); give an empty or new folder")
    try:
        handle = open(out_dir / LOCK_NAME, "a+", encoding="utf-8")
    except OSError as err:
        raise OutputFolderError(f"--out {out_dir.name}: cannot write the lock file ({_short_os_error(err)})") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise OutputFolderError(f"--out {out_dir.name}: another run is writing into this folder (locked); "
                                "wait for it or choose another --out") from None
    try:
        for entry in entries:  # what an earlier run left: nothing stale may sit beside this run's files
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        (out_dir / OWNER_MARKER).write_text("made by python -m helpers.run; cleared at the start of every run\n",
                                            encoding="utf-8")
    except OSError as err:
        handle.close()
        raise OutputFolderError(f"--out {out_dir.name}: cannot clear or write the folder ({_short_os_error(err)})") \
            from None
    return OutputFolder(out_dir, handle)


def write_result_tables(parameters: dict[str, Any], tables_dir: Path, secure_dir: Path | None = None) -> list[str]:
    """The run's result tables (estimates, Table 1, pathway counts, flow, Table 4 comparison).

    Computed by ``helpers.pipeline`` from the same parameters the notebooks had, not collected from the
    notebooks, so ``--only`` runs still produce complete, consistent tables. Exact tables of a real extract
    go to ``secure_dir``.
    """
    data = pipeline.load_study_data(parameters)
    paths = pipeline.write_outputs(data, tables_dir, secure_dir=secure_dir)
    base = tables_dir.parent
    return sorted(str(p.relative_to(base)) if p.is_relative_to(base) else p.name for p in paths.values())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def check_real_extract(parameters: dict[str, Any], out_dir: Path, record: RunRecord) -> int | None:
    """Check a real extract before any notebook starts; the exit code if the run must stop, else None."""
    check = pipeline.check_extract(parameters)
    print(check.text(), flush=True)
    written = pipeline.write_flow(check, parameters, out_dir / "tables", out_dir / pipeline.SECURE_DIRNAME)
    record.tables = [str(p.relative_to(out_dir)) for p in written]
    record.extract = {"file": check.source, "usable": check.ok}  # counts live in secure/flow.csv only
    if check.ok:
        return None
    secure = out_dir / pipeline.SECURE_DIRNAME
    secure.mkdir(parents=True, exist_ok=True)
    (secure / "extract_check.txt").write_text(check.text() + "\n", encoding="utf-8")  # exact counts: secure only
    record.status = "failed"
    record.error = {"step": "extract check",
                    "message": "the extract cannot be analysed; the report is in secure/extract_check.txt"}
    record.finished = _now()
    record.write()
    print(f"error: the extract cannot be analysed: {check.problem}", file=sys.stderr)
    if written:
        print(f"The exact flow table is in {out_dir / pipeline.SECURE_DIRNAME / 'flow.csv'}.", file=sys.stderr)
    print("No notebook was run.", file=sys.stderr)
    return EXIT_BAD_EXTRACT


def check_publish_folder(out_dir: Path, parameters: dict[str, Any], scrubber: Scrubber) -> list[str]:
    """helpers.check_outputs over everything outside secure/: the findings, one line each."""
    findings = check_outputs.check_folder(out_dir, threshold=parameters["suppress_threshold"],
                                          base=parameters["rounding_base"],
                                          forbidden=[old for old, _ in scrubber.replacements])
    return [str(f) for f in findings]


def run(
    parameters: dict[str, Any],
    out_dir: Path,
    notebooks: Sequence[Path],
    *,
    html: bool = True,
    screenshot: bool = True,
    jobs: int = 1,
    use_cache: bool = False,
) -> int:
    """Execute ``notebooks`` into ``out_dir``; return the exit code. Parameters already validated.

    ``out_dir`` must have been claimed (``claim_output_folder``). ``jobs`` > 1: that many notebooks at a time,
    each in a worker process (``helpers.parallel``); 1: one after another in this process (the route before
    0.3, kept for debugging). ``use_cache``: share results between notebooks and the tables through a cache
    folder inside ``out_dir`` (``helpers.cache``), removed when the run ends.
    """
    real = pipeline.is_real(parameters)
    cache_dir = run_cache_folder(out_dir, real) if use_cache else None
    with cache.enabled(cache_dir):
        try:
            return _run(parameters, out_dir, notebooks, html=html, screenshot=screenshot, jobs=jobs)
        finally:
            if cache_dir is not None:
                shutil.rmtree(cache_dir, ignore_errors=True)


def run_cache_folder(out_dir: Path, real: bool) -> Path:
    """Where a run keeps its cache: inside the secure folder for a real extract (the analysis frame holds
    exact rows), else a hidden folder of the output folder."""
    return out_dir / pipeline.SECURE_DIRNAME / "cache" if real else out_dir / ".cache"


def _run(parameters: dict[str, Any], out_dir: Path, notebooks: Sequence[Path], *, html: bool, screenshot: bool,
         jobs: int) -> int:
    run_started = time.perf_counter()
    real = pipeline.is_real(parameters)
    scrubber = Scrubber.for_run(parameters, out_dir)
    shown_parameters = scrubber(parameters)
    notebooks_out = out_dir / "notebooks"
    notebooks_out.mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    record = RunRecord(parameters=shown_parameters, out_dir=out_dir, scrubber=scrubber)
    record.write()
    current: dict[str, str] = {"step": "extract check" if real else "starting"}
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM,)}
    try:
        if real:
            stop = check_real_extract(parameters, out_dir, record)
            if stop is not None:
                return stop
        shown_jobs = min(jobs, len(notebooks))
        print(f"Running {len(notebooks)} notebook(s) into {out_dir}"
              + (f", {shown_jobs} at a time" if shown_jobs > 1 else ""), flush=True)
        executed: list[Path] = []
        sequential = shown_jobs <= 1
        if not sequential:
            done = run_notebooks_parallel(notebooks, notebooks_out, parameters, jobs, record, scrubber, current)
            if isinstance(done, int):
                return done
            executed = done
        for i, nb in enumerate(notebooks if sequential else [], 1):
            target = notebooks_out / nb.name
            current["step"] = nb.stem
            print(f"[{i:>2}/{len(notebooks)}] {nb.stem} ...", end=" ", flush=True)
            start = time.perf_counter()
            try:
                execute(nb, target, parameters, cwd=nb.parent)
            except (Interrupted, KeyboardInterrupt):
                if target.exists():  # papermill saves as it goes: the partial copy holds the injected paths
                    scrubber.notebook(target)
                record.notebooks.append({"name": nb.stem, "seconds": round(time.perf_counter() - start, 2),
                                         "status": "interrupted"})
                raise
            except Exception as err:  # noqa: BLE001 - record any failure of the notebook
                seconds = round(time.perf_counter() - start, 2)
                print(f"failed after {seconds:.1f} s", flush=True)
                if target.exists():
                    scrubber.notebook(target)
                info = scrubber(_describe_failure(err))
                record.notebooks.append({"name": nb.stem, "seconds": seconds, "status": "failed"})
                record.status = "failed"
                record.error = {"notebook": nb.stem, **info}
                record.finished = _now()
                record.write()
                _print_failure(nb.stem, info)
                print(f"Executed notebook with the error: {target}\nRun record: {out_dir / 'run.json'}",
                      file=sys.stderr)
                return EXIT_NOTEBOOK_FAILED
            scrubber.notebook(target)
            seconds = round(time.perf_counter() - start, 2)
            print(f"{seconds:.1f} s", flush=True)
            record.notebooks.append({"name": nb.stem, "seconds": seconds, "status": "ok"})
            executed.append(target)
            record.write()

        current["step"] = "result tables"
        start = time.perf_counter()
        try:
            secure = out_dir / pipeline.SECURE_DIRNAME if real else None
            record.tables = write_result_tables_in_worker(parameters, out_dir / "tables", secure)
        except Exception as err:  # noqa: BLE001 - a failed table is a failed run, reported like a notebook
            text = str(err) if isinstance(err, TablesError) else f"{type(err).__name__}: {err}"
            record.status = "failed"
            record.error = scrubber({"step": "result tables", "error": text})
            record.finished = _now()
            record.write()
            print(f"error: writing the result tables failed: {scrubber.text(text)}", file=sys.stderr)
            return EXIT_NOTEBOOK_FAILED
        print(f"Tables: {out_dir / 'tables'} ({time.perf_counter() - start:.1f} s)", flush=True)

        if html:
            current["step"] = "book"
            start = time.perf_counter()
            index = book.build_book(
                executed,
                out_dir / "html",
                shown_parameters,
                run_info={"git revision": git_revision(), "python": platform.python_version()},
                jobs=jobs,
            )
            print(f"Book: {index} ({time.perf_counter() - start:.1f} s)", flush=True)
            if screenshot and book.find_chromium():
                try:
                    png = book.screenshot(index, out_dir / "book_index.png")
                    print(f"Screenshot: {png}", flush=True)
                except (RuntimeError, OSError, subprocess.SubprocessError) as err:
                    print(f"warning: no screenshot of the book ({err})", file=sys.stderr)
        if real:
            current["step"] = "disclosure check"
            findings = check_publish_folder(out_dir, parameters, scrubber)
            record.disclosure_check = {"findings": len(findings), "first": findings[:20]}
            if findings:
                record.status = "failed"
                record.error = {"step": "disclosure check", "findings": findings[:50]}
                record.finished = _now()
                record.write()
                print(f"error: {len(findings)} disclosure finding(s) outside secure/; do not publish this folder:",
                      file=sys.stderr)
                for line in findings[:20]:
                    print("  " + line, file=sys.stderr)
                return EXIT_DISCLOSURE
            print("Disclosure check: no count 1-7, no unrounded count, no machine path outside secure/.", flush=True)
        record.status = "ok"
        record.finished = _now()
        record.wall_seconds = round(time.perf_counter() - run_started, 2)
        path = record.write()
        print(f"Done in {record.wall_seconds:.1f} s (notebooks {sum(n['seconds'] for n in record.notebooks):.1f} s"
              f" added up). Run record: {path}", flush=True)
        return EXIT_OK
    except (Interrupted, KeyboardInterrupt) as err:
        name = str(err) if isinstance(err, Interrupted) else "SIGINT"
        record.status = "interrupted"
        record.error = {"signal": name, "during": current["step"]}
        record.finished = _now()
        record.write()
        print(f"\ninterrupted ({name}) during {current['step']}; run record: {out_dir / 'run.json'}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.work is not None:
        return work(args.work)
    cwd = Path.cwd()

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
        if args.jobs < 1:
            raise UsageError(f"--jobs {args.jobs}: give a whole number >= 1 (1 runs the notebooks one after another)")
    except (ParameterError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        print("No notebook was run. See `python -m helpers.run --help` for the parameters.", file=sys.stderr)
        return EXIT_BAD_USAGE
    for name, value in SINGLE_THREAD.items():  # kernels started by this process inherit it (both routes)
        os.environ.setdefault(name, value)
    cmd = kernel_command()
    if cmd and Path(cmd[0]).resolve() != Path(sys.executable).resolve():
        print(f"warning: kernel {KERNEL_NAME!r} runs {cmd[0]}, not this interpreter {sys.executable}; "
              "set JUPYTER_PREFER_ENV_PATH=1 or run from the project venv", file=sys.stderr)
    try:
        folder = claim_output_folder(out_dir)
    except OutputFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        print("No notebook was run.", file=sys.stderr)
        return EXIT_BAD_USAGE
    try:
        return run(parameters, out_dir, chosen, html=not args.no_html, screenshot=not args.no_screenshot,
                   jobs=1 if args.sequential else args.jobs, use_cache=not args.no_cache)
    except OSError as err:  # e.g. the disk filled up while writing: one line, not a traceback
        print(f"error: writing into --out {out_dir.name} failed: {_short_os_error(err)}", file=sys.stderr)
        return EXIT_NOTEBOOK_FAILED
    finally:
        folder.release()


if __name__ == "__main__":
    sys.exit(main())
