"""One notebook through papermill (kernel ``python3``), and how a failure or an interrupt is described.

Both routes of ``helpers.run`` execute a notebook with :func:`execute`: the sequential one in its own
process, the parallel one in a worker process (``helpers.worker``). Every notebook is told what the run changed
(``helpers.params.overrides``: papermill adds one cell of assignments after the ``parameters`` cell);
``helpers.notebook.setup`` gives every other parameter its default, so the notebook has the run's full set.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import papermill as pm
from jupyter_client.manager import KernelManager

from helpers import params

KERNEL_NAME = "python3"


class Interrupted(BaseException):
    """SIGTERM arrived (SIGINT arrives as KeyboardInterrupt): stop, and record what was running."""


def raise_interrupted(signum: int, frame: Any) -> None:
    """The SIGTERM handler of a run and of its workers."""
    raise Interrupted(signal.Signals(signum).name)


def kernel_command() -> list[str]:
    """The command the ``python3`` kernel would be started with (to check it is this interpreter)."""
    return KernelManager(kernel_name=KERNEL_NAME).format_kernel_cmd()


def describe_failure(err: BaseException) -> dict[str, Any]:
    """A failure as run.json records it: type, message, and the failing cell when papermill names it."""
    info: dict[str, Any] = {"type": type(err).__name__, "message": str(err).strip()[-4000:]}
    for attr in ("cell_index", "exec_count", "ename", "evalue", "source"):
        if hasattr(err, attr):
            info[attr] = getattr(err, attr)
    return info


def print_failure(name: str, info: dict[str, Any]) -> None:
    """The failure on the terminal: the notebook, the cell and its last lines, the error."""
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
    """papermill warns once per injected name a notebook does not declare; every notebook gets all the run
    changed on purpose (names were validated already), so those warnings are noise."""

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
            parameters=params.overrides(parameters),
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            report_mode=False,
            # The executed copy is written once, when the notebook ends (passed, or failed with its error cell):
            # saving the whole notebook before and after every cell, as papermill does by default, cost 0.2-1.2 s
            # of CPU per notebook (more as its figures accumulate). An interrupted notebook leaves no copy.
            request_save_on_cell_execute=False,
        )
    finally:
        log.removeFilter(quiet)
