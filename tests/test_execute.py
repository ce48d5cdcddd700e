"""helpers.execute: the kernel papermill starts is this interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import execute


def test_kernel_is_this_interpreter() -> None:
    """papermill resolves kernel `python3` to the interpreter running helpers.run (the venv's)."""
    assert Path(execute.kernel_command()[0]).resolve() == Path(sys.executable).resolve()
