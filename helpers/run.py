"""Run the whole notebook set with papermill: ``python -m helpers.run [-p name=value ...]``.

    python -m helpers.run                                  # defaults, into outputs/
    python -m helpers.run -p n_referrals=20000 -p seed=1   # other parameters
    python -m helpers.run --params my_run.yaml --out /tmp/my_run
    python -m helpers.run --only 00 05_describing_the_cohort --no-html
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
the extract by its file name, folders relative to OUT (``helpers.scrub``).

Speed: notebooks run ``--jobs`` at a time (default: the cores), each in a worker process
(``helpers.parallel``: none reads a file another writes, so none waits for another), and the shared results
(the analysis data, the complete-case, full-data and imputed fits) are computed once per run and reused by
the notebooks and the tables through a cache folder in OUT (``helpers.cache``; ``secure/cache`` for a real
extract), removed when the run ends. The result tables are written by a worker started beside the first
notebooks (into a staging folder, moved into ``tables/`` once every notebook passed), and each book page is
rendered as soon as its notebook finished, so little is left to do after the last notebook.
``--sequential --no-cache`` is the route before: one notebook after another in this process, each computing
for itself, then the tables, then the book; the tables are byte for byte the same either way.

Why this shape:
- Parameters are validated by ``helpers.params`` *before* the first notebook starts, so a typo costs a
  second, not a half-finished run. Errors name the parameter, the value and what is valid.
- Every notebook is told what the run changed from the defaults (papermill adds one cell of assignments
  after the ``parameters`` cell; ``helpers.params.overrides``) and ``helpers.notebook.setup`` gives every
  other parameter its default, so each notebook has the run's full validated set; names it does not use are
  harmless.
- Path parameters given on the command line or in a YAML file are made absolute against the directory the
  command was run from, because the notebooks run with ``notebooks/`` as their working directory.
- Earlier output is removed at the start, so a failed run never leaves an index that looks like success;
  ``run.json`` always says ``status``: ``running`` / ``ok`` / ``failed`` / ``interrupted``.

The modules behind this face, one job each: ``helpers.runcli`` (options, parameters, notebook selection, exit
codes), ``helpers.outfolder`` (the run owns OUT), ``helpers.runrecord`` (run.json), ``helpers.scrub`` (no
machine path), ``helpers.execute`` (one notebook through papermill), ``helpers.worker`` (notebook worker
processes), ``helpers.tablesworker`` (the result tables' worker process),
``helpers.real_extract`` (a real extract's checks and secure folder); this module runs the notebooks in
order and then the tables, the book and the checks.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from helpers import book, cache, parallel, pipeline, tablesworker
from helpers.execute import KERNEL_NAME, Interrupted, describe_failure, execute, kernel_command, print_failure, raise_interrupted
from helpers.outfolder import OutputFolderError, claim_output_folder, short_os_error
from helpers.params import ParameterError
from helpers.real_extract import check_publish_folder, check_real_extract, run_cache_folder
from helpers.runcli import (
    DEFAULT_OUT,
    EXIT_BAD_USAGE,
    EXIT_DISCLOSURE,
    EXIT_INTERRUPTED,
    EXIT_NOTEBOOK_FAILED,
    EXIT_OK,
    UsageError,
    build_parser,
    collect_overrides,
    discover,
    select,
    validate_parameters,
)
from helpers.runrecord import RunRecord, git_revision, now
from helpers.scrub import Scrubber
from helpers.tablesworker import TablesError, TablesWorker, write_result_tables_in_worker
from helpers.worker import SINGLE_THREAD, WorkerJob, is_tables_job, work


def run_notebooks_parallel(notebooks: Sequence[Path], notebooks_out: Path, parameters: dict[str, Any], jobs: int,
                           record: RunRecord, scrubber: Scrubber, current: dict[str, str],
                           on_executed: Callable[[Path], None] = lambda path: None) -> list[Path] | int:
    """The notebooks on ``jobs`` worker processes (``helpers.parallel``): the executed copies in the set's
    order, or EXIT_NOTEBOOK_FAILED after reporting the first failure as the sequential route does.
    ``on_executed`` is given each executed (and scrubbed) copy as soon as its notebook succeeded."""
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
        keep_record()  # before the line that says it started, so an interrupt seen after it names it
        print(f"{label(name)} ...", flush=True)

    def on_finish(outcome: parallel.Outcome) -> None:
        target = notebooks_out / f"{outcome.name}.ipynb"
        if target.exists():
            scrubber.notebook(target)  # the executed copy (passed or failed) holds injected paths
        if outcome.status != "interrupted":
            running.remove(outcome.name)
            shown = "ok" if outcome.status == "ok" else "failed after"
            print(f"{label(outcome.name)} {shown} {outcome.seconds:.1f} s", flush=True)
        finished[outcome.name] = {"name": outcome.name, "seconds": outcome.seconds, "status": outcome.status}
        if outcome.status == "ok":
            on_executed(target)
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
    record.finished = now()
    record.write()
    print_failure(failed.name, info)
    print(f"Executed notebook with the error: {notebooks_out / (failed.name + '.ipynb')}\n"
          f"Run record: {record.out_dir / 'run.json'}", file=sys.stderr)
    return EXIT_NOTEBOOK_FAILED


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


def staging_folder(out_dir: Path, real: bool) -> Path:
    """Where the parallel route's tables worker writes until every notebook has passed: inside the secure
    folder for a real extract (its exact tables), else a hidden folder of the output folder."""
    return out_dir / pipeline.SECURE_DIRNAME / "staging" if real else out_dir / ".staging"


def move_staged(written: Sequence[str], staging: Path, out_dir: Path) -> list[str]:
    """Move the tables the worker wrote under ``staging`` (paths relative to it) to the same places in
    ``out_dir``; the same names back."""
    for name in written:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
    return list(written)


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
    previous = {sig: signal.signal(sig, raise_interrupted) for sig in (signal.SIGTERM,)}
    # The parallel route starts the result tables beside the notebooks (into a staging folder, moved into
    # place once every notebook passed) and renders each book page as its notebook finishes, so neither
    # waits for the last notebook; the sequential route (the one before, for debugging) does each at the end.
    staging = staging_folder(out_dir, real)
    early_tables: TablesWorker | None = None
    early_pages: book.EarlyPages | None = None
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
            shutil.rmtree(staging, ignore_errors=True)
            early_tables = TablesWorker.start(parameters, staging / "tables",
                                              staging / pipeline.SECURE_DIRNAME if real else None)
            early_pages = book.EarlyPages(notebooks) if html else None
            done = run_notebooks_parallel(notebooks, notebooks_out, parameters, jobs, record, scrubber, current,
                                          on_executed=early_pages.add if early_pages else lambda path: None)
            if isinstance(done, int):
                return done
            executed = done
        for i, nb in enumerate(notebooks if sequential else [], 1):
            target = notebooks_out / nb.name
            current["step"] = nb.stem
            start = time.perf_counter()
            try:  # the start line inside the try: an interrupt seen right after it still records the notebook
                print(f"[{i:>2}/{len(notebooks)}] {nb.stem} ...", end=" ", flush=True)
                execute(nb, target, parameters, cwd=nb.parent)
            except (Interrupted, KeyboardInterrupt):
                if target.exists():  # papermill writes no copy of an interrupted notebook; scrub any that is there
                    scrubber.notebook(target)
                record.notebooks.append({"name": nb.stem, "seconds": round(time.perf_counter() - start, 2),
                                         "status": "interrupted"})
                raise
            except Exception as err:  # noqa: BLE001 - record any failure of the notebook
                seconds = round(time.perf_counter() - start, 2)
                print(f"failed after {seconds:.1f} s", flush=True)
                if target.exists():
                    scrubber.notebook(target)
                info = scrubber(describe_failure(err))
                record.notebooks.append({"name": nb.stem, "seconds": seconds, "status": "failed"})
                record.status = "failed"
                record.error = {"notebook": nb.stem, **info}
                record.finished = now()
                record.write()
                print_failure(nb.stem, info)
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
            if early_tables is not None:
                record.tables = move_staged(early_tables.finish(), staging, out_dir)
            else:
                secure = out_dir / pipeline.SECURE_DIRNAME if real else None
                record.tables = write_result_tables_in_worker(parameters, out_dir / "tables", secure)
        except Exception as err:  # noqa: BLE001 - a failed table is a failed run, reported like a notebook
            text = str(err) if isinstance(err, TablesError) else f"{type(err).__name__}: {err}"
            record.status = "failed"
            record.error = scrubber({"step": "result tables", "error": text})
            record.finished = now()
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
                early=early_pages,
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
                record.finished = now()
                record.write()
                print(f"error: {len(findings)} disclosure finding(s) outside secure/; do not publish this folder:",
                      file=sys.stderr)
                for line in findings[:20]:
                    print("  " + line, file=sys.stderr)
                return EXIT_DISCLOSURE
            print("Disclosure check: no count 1-7, no unrounded count, no machine path outside secure/.", flush=True)
        record.status = "ok"
        record.finished = now()
        record.wall_seconds = round(time.perf_counter() - run_started, 2)
        path = record.write()
        print(f"Done in {record.wall_seconds:.1f} s (notebooks {sum(n['seconds'] for n in record.notebooks):.1f} s"
              f" added up). Run record: {path}", flush=True)
        return EXIT_OK
    except (Interrupted, KeyboardInterrupt) as err:
        name = str(err) if isinstance(err, Interrupted) else "SIGINT"
        record.status = "interrupted"
        record.error = {"signal": name, "during": current["step"]}
        record.finished = now()
        record.write()
        print(f"\ninterrupted ({name}) during {current['step']}; run record: {out_dir / 'run.json'}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if early_tables is not None:
            early_tables.stop()
        if early_pages is not None:
            early_pages.close()
        shutil.rmtree(staging, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.work is not None:
        return tablesworker.work(args.work) if is_tables_job(args.work) else work(args.work)
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
        print(f"error: writing into --out {out_dir.name} failed: {short_os_error(err)}", file=sys.stderr)
        return EXIT_NOTEBOOK_FAILED
    finally:
        folder.release()


if __name__ == "__main__":
    sys.exit(main())
