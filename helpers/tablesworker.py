"""The result tables in a worker process, ``python -m helpers.run --work JOB`` with a job of kind ``tables``.

The result tables are computed in a worker, in the notebooks' environment (one BLAS thread, the run's cache),
so they are exactly what the notebooks compute, whichever route ran them. Apart from the notebook workers
(``helpers.worker``) because only this worker needs ``helpers.pipeline``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import pipeline
from helpers.execute import raise_interrupted
from helpers.runcli import EXIT_NOTEBOOK_FAILED, EXIT_OK
from helpers.worker import worker_environment


def work(job_file: Path) -> int:
    """The worker: write the result tables as ``job_file`` (kind ``tables``) says, and how it ended beside it."""
    job = json.loads(job_file.read_text(encoding="utf-8"))
    result = Path(job["result"])
    signal.signal(signal.SIGTERM, raise_interrupted)
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
    return TablesWorker.start(parameters, tables_dir, secure_dir).finish()


@dataclass
class TablesWorker:
    """The result tables being written by a worker process: ``start`` it, then ``finish()`` (wait; the tables
    written, as ``write_result_tables`` names them) or ``stop()``.

    The parallel route starts it beside the first notebooks, into a staging folder, so the tables (and the
    shared results they compute first, which the notebooks then find in the cache) cost no time after the
    last notebook; the sequential route starts it after the notebooks and waits for it at once.
    """

    process: subprocess.Popen
    result: Path
    scratch: tempfile.TemporaryDirectory

    @classmethod
    def start(cls, parameters: dict[str, Any], tables_dir: Path, secure_dir: Path | None) -> "TablesWorker":
        scratch = tempfile.TemporaryDirectory(prefix="iapt-run-")
        job_file, result = Path(scratch.name) / "tables.job.json", Path(scratch.name) / "tables.result.json"
        job_file.write_text(json.dumps({"kind": "tables", "parameters": parameters, "tables_dir": str(tables_dir),
                                        "secure_dir": str(secure_dir) if secure_dir else "",
                                        "result": str(result)}), encoding="utf-8")
        process = subprocess.Popen([sys.executable, "-m", "helpers.run", "--work", str(job_file)],
                                   stdin=subprocess.DEVNULL, env=worker_environment())
        return cls(process, result, scratch)

    def finish(self) -> list[str]:
        """Wait for the worker; the tables it wrote, or TablesError naming what went wrong."""
        try:
            code = self.process.wait()
        except BaseException:
            self.stop()
            raise
        try:
            if not self.result.exists():
                raise TablesError(f"the tables worker exited with code {code} without a result")
            ended = json.loads(self.result.read_text(encoding="utf-8"))
        finally:
            self.scratch.cleanup()
        if ended["status"] != "ok":
            raise TablesError(ended["error"])
        return ended["tables"]

    def stop(self) -> None:
        """End the worker if it is still running (an earlier notebook failed, or the run was interrupted)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.scratch.cleanup()


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
