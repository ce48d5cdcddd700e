"""Worker processes of a run: one notebook in a child ``python -m helpers.run --work JOB``.

A worker process (not a thread) per notebook, so an interrupt can stop a notebook and its kernel; the
parent (``helpers.run``, scheduled by ``helpers.parallel``) reads how it ended from a JSON file beside the
job. The result tables have their own worker (``helpers.tablesworker``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import parallel
from helpers.execute import Interrupted, describe_failure, execute, raise_interrupted
from helpers.runcli import EXIT_INTERRUPTED, EXIT_NOTEBOOK_FAILED, EXIT_OK


def is_tables_job(job_file: Path) -> bool:
    """True when ``job_file`` asks for the result tables (``helpers.tablesworker``), not a notebook."""
    return json.loads(job_file.read_text(encoding="utf-8")).get("kind") == "tables"


def work(job_file: Path) -> int:
    """The worker: execute one notebook as ``job_file`` says and write how it ended beside it (JSON).

    A worker process (not a thread) per notebook, so an interrupt can stop a notebook and its kernel.
    """
    job = json.loads(job_file.read_text(encoding="utf-8"))
    result = Path(job["result"])
    signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        execute(Path(job["notebook"]), Path(job["output"]), job["parameters"], cwd=Path(job["cwd"]))
    except (Interrupted, KeyboardInterrupt):
        result.write_text(json.dumps({"status": "interrupted"}), encoding="utf-8")
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the parent reports any failure of the notebook
        result.write_text(json.dumps({"status": "failed", "failure": describe_failure(err)}, default=str),
                          encoding="utf-8")
        return EXIT_NOTEBOOK_FAILED
    result.write_text(json.dumps({"status": "ok"}), encoding="utf-8")
    return EXIT_OK


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
