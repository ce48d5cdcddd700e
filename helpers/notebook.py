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

import numpy as np
import pandas as pd
import patsy.build
import patsy.categorical
from matplotlib_inline.backend_inline import set_matplotlib_formats

from helpers import params as params_mod
from helpers import pipeline


def _short_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """Warnings as 'Category: message', without the machine path of the module that raised them."""
    return f"{category.__name__}: {message}\n"


_PATSY_CATEGORICAL_TO_INT = patsy.categorical.categorical_to_int


def _categorical_to_int(data: Any, levels: tuple, NA_action: Any, origin: Any = None) -> Any:
    """patsy's ``categorical_to_int``, reading a pandas categorical by its codes also when it is wrapped in
    ``C(...)``.

    patsy (1.0.3) takes the codes of a pandas categorical only when it is not wrapped: under ``C(x, ...)`` it
    looks every row up one by one (pydata/patsy#97, never merged), about 0.7 s of CPU per formula fit on the
    assessed referrals, most of notebook 09's statsmodels cross-check (20 fits). Here a wrapped categorical whose
    categories are the levels patsy expects and which holds no missing value gives its codes, the integers the
    row-by-row loop gives; anything else (other levels, missing values, any other data) goes to patsy's own
    function, so every design matrix and every error is patsy's.
    """
    if isinstance(data, patsy.categorical._CategoricalBox) and isinstance(data.data, (pd.Series, pd.Categorical)):
        inner = data.data
        if (isinstance(inner.dtype, pd.CategoricalDtype) and (data.levels is None or tuple(data.levels) == levels)
                and tuple(inner.cat.categories if isinstance(inner, pd.Series) else inner.categories) == levels):
            codes = np.asarray(inner.cat.codes if isinstance(inner, pd.Series) else inner.codes)
            if codes.ndim == 1 and (codes >= 0).all():
                return codes.astype(int)
    return _PATSY_CATEGORICAL_TO_INT(data, levels, NA_action, origin)


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
    patsy.build.categorical_to_int = _categorical_to_int  # the statsmodels formula fits of 06, 08, 09 and 11
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
