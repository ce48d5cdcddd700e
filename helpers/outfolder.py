"""The run owns its output folder: a folder it made earlier (marked by ``.iapt-run``) is cleared first, a
non-empty folder it did not make is refused, and a lock (``.iapt-run.lock``) stops a second run writing
into it. Every refusal is one line naming the folder and what to do."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.runcli import DEFAULT_OUT, UsageError

OWNER_MARKER = ".iapt-run"  # written into every output folder a run creates or clears
LOCK_NAME = ".iapt-run.lock"


class OutputFolderError(UsageError):
    """``--out`` cannot be used: a file, read-only, full, locked by another run, or someone else's folder."""


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


def short_os_error(err: OSError) -> str:
    """An OS error in a few words (no path): "Permission denied", "No space left on device"."""
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
        raise OutputFolderError(f"--out {out_dir.name}: cannot create the folder ({short_os_error(err)})") from None
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
        raise OutputFolderError(f"--out {out_dir.name}: cannot write the lock file ({short_os_error(err)})") from None
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
        raise OutputFolderError(f"--out {out_dir.name}: cannot clear or write the folder ({short_os_error(err)})") \
            from None
    return OutputFolder(out_dir, handle)
