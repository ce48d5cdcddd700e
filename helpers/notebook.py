"""The few lines every notebook starts with: validate the papermill parameters, set display defaults.

Keeping them here means a notebook's second code cell is one line, and a bad parameter fails in every
notebook with the same message as on the command line.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats

from helpers import params as params_mod


def _short_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """Warnings as 'Category: message', without the machine path of the module that raised them."""
    return f"{category.__name__}: {message}\n"


def setup(namespace: dict[str, Any]) -> dict[str, Any]:
    """Collect the parameters defined in the notebook's ``parameters`` cell, validate them, set display options.

    Pass ``globals()``. Names the notebook does not define take their defaults.
    """
    given = {name: namespace[name] for name in params_mod.SCHEMA if name in namespace}
    p = params_mod.validate(given)
    warnings.formatwarning = _short_warning  # a reader needs the message; a path would differ per machine
    pd.set_option("display.precision", 2)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 120)
    try:  # crisp inline figures where IPython is running; harmless elsewhere

        set_matplotlib_formats("png")
    except Exception:  # pragma: no cover - outside IPython
        pass
    return p


def output_path(p: dict[str, Any], *parts: str) -> Path:
    """A path under the run's output directory (created), for figures and tables a notebook saves."""
    path = Path(p["output_dir"]).joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
