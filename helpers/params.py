"""Every run parameter in one schema, validated once before any work starts.

The same checks serve the CLI (``python -m helpers.run -p name=value``), papermill and notebooks run by
hand, so a bad value fails the same way everywhere: with the parameter's name, the value given and what
would be valid.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from helpers.study import PUBLISHED_DIR


class ParameterError(ValueError):
    """A run parameter has an unknown name or an invalid value."""


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, what is valid, and what it means."""

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    allow_empty: bool = False
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def valid_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        if self.type in (int, float):
            kind = "a whole number" if self.type is int else "a number"
            lo = "" if self.minimum is None else f" >= {self.type(self.minimum):,}"
            hi = "" if self.maximum is None else f" <= {self.type(self.maximum):,}"
            joiner = " and" if lo and hi else ""
            return f"{kind}{lo}{joiner}{hi}"
        return "a text value" + (" (empty for none)" if self.allow_empty else "")


MARGIN_KEYWORDS = ("auto", "truth", "census2011", "mnar_wmi")


def _margin_check(value: str) -> str | None:
    if value in MARGIN_KEYWORDS:
        return None
    if value.endswith(".csv"):
        return None
    return ("'auto' (the default: 'truth' for a synthetic cohort, 'mnar_wmi' for an mnar_wmi cohort, 'census2011' "
            "for a real extract), 'truth' (the synthetic cohort's known referred mix), 'census2011', 'mnar_wmi' (the "
            "*assumed* margin of data/assumed/mnar_wmi_groups.csv), or a path to a CSV file")


SCHEMA: dict[str, Param] = {
    p.name: p
    for p in [
        Param("n_referrals", int, 85_800, "Number of referrals in the synthetic cohort (paper: 85,800).",
              minimum=2_000, maximum=20_000_000),
        Param("seed", int, 20210802, "The one seed behind every random draw (default: the paper's online date).",
              minimum=0, maximum=2**32 - 1),
        Param("missing_mechanism", str, "mnar",
              "How ethnicity goes missing: 'mcar' (at random), 'mar' (depends on the pathway stage and borough), "
              "'mnar' (also depends on the ethnic group itself; default); 'mnar_wmi' (an *assumed*, extreme MNAR solved "
              "so that weighted MI reproduces the paper's weighted-MI column; see helpers/mnar_wmi.py).",
              choices=("mcar", "mar", "mnar", "mnar_wmi")),
        Param("missing_share", float, 0.185, "Share of referrals with ethnicity missing (paper: 18.5%).",
              minimum=0.0, maximum=0.8),
        Param("outcome_mode", str, "calibrated",
              "'calibrated': counts built to reproduce the paper's printed figures; 'random': independent draws "
              "(for simulation studies).", choices=("calibrated", "random")),
        Param("targets_path", str, "",
              "CSV of calibration targets (empty: data/published/cohort_targets.csv). Lecturers can type the "
              "paper's Tables 2-3 into a copy.", allow_empty=True),
        Param("data_path", str, "",
              "A real IAPT extract in the same schema (CSV in any common dialect, or Parquet), or the folder "
              "'python -m helpers.extract PATH --out DIR' wrote (pattern_counts.csv, flow.csv): every notebook then "
              "runs from those aggregates alone. Empty: use the synthetic cohort.", allow_empty=True),
        Param("engine", str, "duckdb",
              "Extract engine that reads, checks and counts the data: 'duckdb' (embedded, default) or 'spark' "
              "(needs PySpark: make spark; on Databricks the running session is used).", choices=("duckdb", "spark")),
        Param("n_imputations", int, 20, "Imputations (M) for multiple imputation.", minimum=2, maximum=500),
        Param("margin", str, "auto",
              "Population margin that weighted imputation calibrates to: 'auto' (default: the true referred mix "
              "'truth' for a synthetic cohort, the *assumed* 'mnar_wmi' margin for an mnar_wmi cohort, the 2011 "
              "Census 'census2011' for a real extract), 'truth', 'census2011', 'mnar_wmi' or a CSV path.",
              check=_margin_check),
        Param("n_simulations", int, 20, "Repeated cohorts in the simulation study (12-13).", minimum=2,
              maximum=10_000),
        Param("simulation_n_referrals", int, 20_000, "Cohort size in each simulation replicate (12-13).",
              minimum=2_000, maximum=2_000_000),
        Param("suppress_threshold", int, 7, "Counts from 1 to this value are suppressed in publishable tables.",
              minimum=0, maximum=100),
        Param("rounding_base", int, 5, "Publishable counts are rounded to a multiple of this.", minimum=1,
              maximum=100),
        Param("output_dir", str, "../outputs", "Where notebooks write tables and figures (relative to notebooks/).")
    ]
}

DEFAULTS: dict[str, Any] = {name: p.default for name, p in SCHEMA.items()}

#: The parameters that go together, by what uses them. A notebook's ``parameters`` cell declares a few names of
#: the groups it uses, the ones its lesson invites a student to change (tests/test_notebook_hygiene.py);
#: ``helpers.notebook.setup`` gives every other name its default and the run injects what it changed
#: (:func:`overrides`), so what a notebook declares changes no value, only what a reader running it by hand sees
#: to edit. ``engine`` is in no group: no notebook declares it (a run sets it with ``-p engine=spark``).
GROUPS: dict[str, tuple[str, ...]] = {
    # the data: the synthetic cohort, or a real extract instead (pipeline.load_study_data)
    "data": ("n_referrals", "seed", "missing_mechanism", "missing_share", "outcome_mode", "targets_path", "data_path"),
    # multiple imputation of ethnicity (pipeline.mi_estimates_from_study_data, population_margin)
    "imputation": ("n_imputations", "margin"),
    # the simulation study (simulation.simulation_parameters)
    "simulation": ("n_simulations", "simulation_n_referrals"),
    # what a published count may show (helpers.publish on a real extract)
    "disclosure": ("suppress_threshold", "rounding_base"),
    # where a notebook saves its tables and figures (helpers.notebook.output_path)
    "output": ("output_dir",),
}
DEFAULT_TARGETS = PUBLISHED_DIR / "cohort_targets.csv"


def _close_names(name: str) -> list[str]:
    return difflib.get_close_matches(name, SCHEMA, n=3)


def _coerce(param: Param, value: Any) -> Any:
    """Bring a value to the parameter's type without guessing (no float->int truncation, no bool->int)."""
    if param.type is int:
        if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            isinstance(value, float) and value.is_integer()
        ):
            raise TypeError
        return int(value)
    if param.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError  # NaN passes every range comparison and inf is no share: refuse both here
        return float(value)
    if param.type is str:
        if value is None:
            return ""
        if not isinstance(value, (str, Path)):
            raise TypeError
        return str(value)
    if param.type is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    raise TypeError


def check_value(name: str, value: Any) -> Any:
    """Validate one parameter; return it coerced to its type or raise ParameterError naming it."""
    if name not in SCHEMA:
        hint = _close_names(name)
        did_you_mean = f" Did you mean {', '.join(hint)}?" if hint else ""
        raise ParameterError(
            f"Unknown parameter {name!r}.{did_you_mean} Valid parameters: {', '.join(SCHEMA)}."
        )
    param = SCHEMA[name]
    try:
        out = _coerce(param, value)
    except TypeError:
        raise ParameterError(
            f"Parameter {name!r} = {value!r} is not valid: expected {param.valid_text()}."
        ) from None
    if param.choices is not None and out not in param.choices:
        raise ParameterError(f"Parameter {name!r} = {value!r} is not valid: expected {param.valid_text()}.")
    if param.minimum is not None and out < param.minimum or param.maximum is not None and out > param.maximum:
        raise ParameterError(f"Parameter {name!r} = {value!r} is out of range: expected {param.valid_text()}.")
    if param.check is not None:
        problem = param.check(out)
        if problem:
            raise ParameterError(f"Parameter {name!r} = {value!r} is not valid: expected {problem}.")
    return out


def parse_cli_value(name: str, text: str) -> Any:
    """Turn ``-p name=value`` text into the parameter's type (papermill would pass strings through)."""
    if name not in SCHEMA:
        check_value(name, text)  # raises with the unknown-name message
    param = SCHEMA[name]
    text = text.strip()
    try:
        if param.type is int:
            return int(text.replace("_", ""))
        if param.type is float:
            return float(text)
        if param.type is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError
    except ValueError:
        raise ParameterError(
            f"Parameter {name!r} = {text!r} is not valid: expected {param.valid_text()}."
        ) from None
    return text


def auto_margin(p: dict[str, Any]) -> str:
    """What margin 'auto' means: the census for a real extract (no truth), the margin an ``mnar_wmi`` cohort was
    solved with, else the synthetic cohort's true mix."""
    if p.get("data_path"):
        return "census2011"
    return "mnar_wmi" if p.get("missing_mechanism") == "mnar_wmi" else "truth"


def validate(overrides: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Return the full parameter set: defaults updated by the overrides, every value checked.

    All problems are collected and reported together, so a user fixes them in one go.
    """
    given = {**(overrides or {}), **kwargs}
    out = dict(DEFAULTS)
    problems: list[str] = []
    for name, value in given.items():
        try:
            out[name] = check_value(name, value)
        except ParameterError as err:
            problems.append(str(err))
    for path_name in ("data_path", "targets_path"):
        path = out[path_name]
        if path and not Path(path).exists():
            problems.append(f"Parameter {path_name!r} = {path!r}: no such file.")
    if out["margin"] == "auto":  # the margin follows the data
        out["margin"] = auto_margin(out)
    if out["margin"] not in MARGIN_KEYWORDS and not Path(out["margin"]).exists():
        problems.append(f"Parameter 'margin' = {out['margin']!r}: no such file.")
    if out["data_path"] and out["margin"] == "mnar_wmi":
        problems.append(
            "Parameter 'margin' = 'mnar_wmi' is the *assumed* margin of the synthetic mnar_wmi cohort, not a "
            "description of a real extract's population (data_path): use 'census2011' or a CSV of population shares."
        )
    if out["data_path"] and out["margin"] == "truth":
        problems.append(
            "Parameter 'margin' = 'truth' needs the synthetic cohort's truth file, which a real extract "
            "(data_path) does not have: use 'census2011' or a CSV of population shares."
        )
    if problems:
        raise ParameterError("\n".join(problems))
    return out


def overrides(validated: dict[str, Any]) -> dict[str, Any]:
    """The values of a validated set that validation would not give by itself: what a run must tell a notebook
    (papermill injects these), so that ``validate(overrides(p)) == p``. A default run tells only its output_dir."""
    out = {name: value for name, value in validated.items() if name not in DEFAULTS or value != DEFAULTS[name]}
    if out.get("margin") == auto_margin(validated):
        del out["margin"]  # what 'auto' resolves to
    return out


def targets_file(params: dict[str, Any]) -> Path:
    """The calibration targets file a run uses."""
    return Path(params["targets_path"]) if params.get("targets_path") else DEFAULT_TARGETS


def is_default_cohort(params: dict[str, Any]) -> bool:
    """True when the parameters describe the committed default cohort (so it can be loaded, not rebuilt)."""
    keys = ("n_referrals", "seed", "missing_mechanism", "missing_share", "outcome_mode", "targets_path")
    return all(params[k] == DEFAULTS[k] for k in keys) and not params.get("data_path")


def describe() -> str:
    """A plain-text table of the parameters, for --help and notebooks."""
    rows = [f"{p.name:<24} default {p.default!r:<14} {p.valid_text()}\n{'':<24} {p.doc}" for p in SCHEMA.values()]
    return "\n".join(rows)
