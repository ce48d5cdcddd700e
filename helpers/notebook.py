"""The few lines every notebook starts with: validate the parameters, set display defaults, load the data.

A notebook's ``parameters`` cell declares only the few parameters its lesson invites a student to change;
:func:`setup` gives every other parameter its default (``helpers.params``), and takes any value papermill
injected (``helpers.run`` injects what the run changed). Keeping these lines here means a notebook's setup
cell is a few lines, and a bad parameter fails in every notebook with the same message as on the command line.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats

from helpers import params as params_mod
from helpers import pipeline


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


def study_data(p: dict[str, Any]) -> pipeline.StudyData:
    """The notebook's data (``pipeline.load_study_data``), after a line saying where they came from."""
    data = pipeline.load_study_data(p)
    print(f"Data: {data.origin}")
    return data


def imputation_notes(data: pipeline.StudyData) -> tuple[bool, bool]:
    """``(has_truth, nothing_to_impute)`` for the notebooks on missing ethnicity, each said where it limits them:
    only a synthetic cohort knows every referral's true group, and a complete extract has nothing to impute."""
    has_truth = data.truth is not None
    nothing_to_impute = pipeline.nothing_to_impute(data)
    if not has_truth:
        print("Real extract: there is no truth here. Sections that need it say so; the methods are compared with "
              "each other and with the margin instead.")
    if nothing_to_impute:
        print(pipeline.NOTHING_TO_IMPUTE)
    return has_truth, nothing_to_impute
