"""Statistical disclosure control of counts drawn from routine NHS data.

Counts of people drawn from routine NHS data are published under statistical disclosure control.
``disclose`` applies the rule NHS Digital adopted for Hospital Episode Statistics in September 2018
("Disclosure control methodology for HES and ECDS", NHS Digital), since used for other NHS Digital
datasets, for counts below national level:

* counts from 1 to 7 (``threshold``) are **suppressed**;
* a true **zero is kept** as 0 (a structural or true zero discloses nothing about an individual);
* every other count is **rounded to the nearest 5** (``base``; halves round up: 15 -> 20 for base 10).

On top of that rule this module is deliberately more conservative than the 2018 HES method in two ways,
because our tables are small (eight groups, a few levels) and totals are shown:

* totals are **recomputed from the rounded cell values** (before suppression is applied), so a total is
  the sum of what the reader could have seen; a total that is itself 1..threshold (true or recomputed) is
  suppressed;
* **secondary suppression** (the older HES rule): in any line (row or column) that has a total, if exactly
  one element is suppressed it could be recovered by subtraction, so the next-smallest count in that line
  is suppressed too (preferring a cell that also protects its crossing line, then non-zero counts); this is
  repeated over rows and columns until stable (greedy: safe, not guaranteed minimal).

Representation (decided here, used everywhere): disclosed counts are **numeric** (pandas nullable ``Int64``)
with ``pd.NA`` for a suppressed cell, so they still add, compare and plot; ``format_disclosed`` turns a table
into display strings with ``"*"`` for a suppressed cell (the symbol NHS publications use). Percentages shown
beside disclosed counts must be recomputed from the disclosed counts (``disclosed_percent``), never taken
from the raw counts. Regression estimates (odds ratios, CIs) need no disclosure control (HES method: complex
calculations are exempt).

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SUPPRESSED_SYMBOL = "*"


def _round_to_base(values: np.ndarray, base: int) -> np.ndarray:
    """Round non-negative integers to the nearest multiple of ``base``, halves up (15 -> 20 for base 10)."""
    if base <= 1:
        return values.astype(np.int64)
    return (np.floor(values / base + 0.5) * base).astype(np.int64)


def _validate_counts(table: pd.DataFrame, columns: Sequence, rows: Sequence) -> np.ndarray:
    """Counts as an int64 array; ValueError naming the column for missing, negative or non-integer counts."""
    out = np.zeros((len(rows), len(columns)), dtype=np.int64)
    for j, col in enumerate(columns):
        series = table.loc[rows, col]
        if pd.api.types.is_bool_dtype(series.dtype):
            raise ValueError(f"count column {col!r} is boolean, not a count")
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.isna().any():
            if series.isna().any():
                raise ValueError(f"count column {col!r} has missing values; counts must be whole numbers >= 0")
            raise ValueError(f"count column {col!r} has non-numeric values; counts must be whole numbers >= 0")
        values = numeric.to_numpy(dtype=float)
        if (values < 0).any():
            raise ValueError(f"count column {col!r} has negative counts (min {values.min():g})")
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ValueError(f"count column {col!r} has non-integer counts; counts must be whole numbers >= 0")
        out[:, j] = values.astype(np.int64)
    return out


def is_small(values: np.ndarray, threshold: int) -> np.ndarray:
    return (values >= 1) & (values <= threshold)


def disclose(
    table: pd.DataFrame,
    count_columns: Sequence | None = None,
    threshold: int = 7,
    base: int = 5,
    total_row=None,
    total_col=None,
) -> pd.DataFrame:
    """Apply NHS disclosure control to a table of counts (see the module docstring for the rule and sources).

    Parameters
    ----------
    table : rows x columns of counts (other, non-count columns are carried through unchanged).
    count_columns : the count columns; default every numeric (non-boolean) column except ``total_col``.
    threshold : counts 1..threshold (inclusive) are suppressed; 0 is kept.
    base : other counts are rounded to the nearest ``base`` (halves up); ``base=1`` means no rounding.
    total_row : label of a row holding column totals. It is (re)computed from the rounded cells of the other
        rows (added at the end if absent), and makes every count column a line for secondary suppression.
    total_col : name of a column holding row totals, (re)computed from the rounded count cells of each row
        (added if absent); makes every row a line for secondary suppression.

    Returns
    -------
    A copy with count and total columns as nullable ``Int64``: rounded values, ``pd.NA`` where suppressed.
    ``result.attrs["disclosure"]`` records the parameters and the suppressed cells (primary and secondary).
    """
    count_columns, threshold, base = _check_arguments(table, count_columns, threshold, base, total_row, total_col)
    inner_rows = [r for r in table.index if not (total_row is not None and r == total_row)]
    raw = _validate_counts(table, count_columns, inner_rows)
    has_tr, has_tc = total_row is not None, total_col is not None
    true, shown = _grid(raw, base, has_tr, has_tc)
    primary = _primary_suppression(raw, true, shown, threshold, has_tr, has_tc)
    supp = _secondary_suppression(primary, true, has_tr, has_tc)
    return _output(table, count_columns, inner_rows, shown, primary, supp, threshold, base, total_row, total_col)


def _check_arguments(table: pd.DataFrame, count_columns: Sequence | None, threshold, base, total_row,
                     total_col) -> tuple[list, int, int]:
    """The count columns (default: every numeric, non-boolean column but the total), threshold and base, checked."""
    if int(threshold) != threshold or threshold < 0:
        raise ValueError(f"threshold must be a whole number >= 0, got {threshold!r}")
    if int(base) != base or base < 1:
        raise ValueError(f"base must be a whole number >= 1, got {base!r}")
    threshold, base = int(threshold), int(base)
    if total_row is not None and table.index.has_duplicates:
        raise ValueError("table index has duplicate labels; cannot place a total row")

    if count_columns is None:
        count_columns = [
            c
            for c in table.columns
            if c != total_col
            and pd.api.types.is_numeric_dtype(table[c].dtype)
            and not pd.api.types.is_bool_dtype(table[c].dtype)
        ]
    else:
        count_columns = [c for c in count_columns if c != total_col]
        missing = [c for c in count_columns if c not in table.columns]
        if missing:
            raise ValueError(f"count columns not in the table: {missing}")
    if not count_columns:
        raise ValueError("no count columns to disclose")
    return count_columns, threshold, base


def _grid(raw: np.ndarray, base: int, has_tr: bool, has_tc: bool) -> tuple[np.ndarray, np.ndarray]:
    """Full grid: inner cells, then a total column and/or total row (true and rounded-recomputed values)."""
    n_r, n_c = raw.shape
    rows_full = n_r + int(has_tr)
    cols_full = n_c + int(has_tc)
    true = np.zeros((rows_full, cols_full), dtype=np.int64)
    shown = np.zeros((rows_full, cols_full), dtype=np.int64)
    true[:n_r, :n_c] = raw
    shown[:n_r, :n_c] = _round_to_base(raw, base)
    if has_tc:
        true[:n_r, n_c] = raw.sum(axis=1)
        shown[:n_r, n_c] = shown[:n_r, :n_c].sum(axis=1)
    if has_tr:
        true[n_r, :n_c] = raw.sum(axis=0)
        shown[n_r, :n_c] = shown[:n_r, :n_c].sum(axis=0)
    if has_tc and has_tr:
        true[n_r, n_c] = raw.sum()
        shown[n_r, n_c] = shown[:n_r, :n_c].sum()
    return true, shown


def _primary_suppression(raw: np.ndarray, true: np.ndarray, shown: np.ndarray, threshold: int, has_tr: bool,
                         has_tc: bool) -> np.ndarray:
    """Cells 1..threshold; a total is suppressed if its true value or its recomputed value is small."""
    n_r, n_c = raw.shape
    primary = is_small(true, threshold)
    primary[:n_r, :n_c] = is_small(raw, threshold)
    total_mask = np.zeros_like(primary)
    if has_tc:
        total_mask[:, n_c] = True
    if has_tr:
        total_mask[n_r, :] = True
    primary |= total_mask & is_small(shown, threshold)
    return primary


def _secondary_suppression(primary: np.ndarray, true: np.ndarray, has_tr: bool, has_tc: bool) -> np.ndarray:
    """Primary plus secondary suppression: no line with a total keeps a lone suppressed cell."""
    rows_full, cols_full = true.shape
    supp = primary.copy()

    # Lines with a total: (cells in the line, position of its total within the line).
    lines: list[tuple[list[tuple[int, int]], int]] = []
    if has_tc:
        for i in range(rows_full):
            lines.append(([(i, j) for j in range(cols_full)], cols_full - 1))
    if has_tr:
        for j in range(cols_full):
            lines.append(([(i, j) for i in range(rows_full)], rows_full - 1))

    # Greedy, repeated until stable. Among a line's candidates prefer (1) a cell whose crossing line also
    # has a lone suppressed cell (one suppression then protects both lines), (2) a non-zero count, (3) the
    # smallest count; ties go to the first in line order.
    lines_of: dict[tuple[int, int], list[int]] = {}
    for k, (cells, _) in enumerate(lines):
        for c in cells:
            lines_of.setdefault(c, []).append(k)

    def n_suppressed(k: int) -> int:
        return int(sum(supp[c] for c in lines[k][0]))

    changed = True
    while changed:
        changed = False
        for k, (cells, total_pos) in enumerate(lines):
            if n_suppressed(k) != 1:
                continue
            candidates = [c for p, c in enumerate(cells) if p != total_pos and not supp[c]]
            if not candidates:
                target = cells[total_pos]
            else:
                target = min(
                    candidates,
                    key=lambda c: (
                        not any(n_suppressed(o) == 1 for o in lines_of[c] if o != k),
                        true[c] == 0,
                        true[c],
                    ),
                )
            if not supp[target]:
                supp[target] = True
                changed = True
    return supp


def _output(table: pd.DataFrame, count_columns: list, inner_rows: list, shown: np.ndarray, primary: np.ndarray,
            supp: np.ndarray, threshold: int, base: int, total_row, total_col) -> pd.DataFrame:
    """The disclosed copy of ``table`` (``Int64``, ``pd.NA`` where suppressed) with ``attrs["disclosure"]``."""
    rows_full, cols_full = shown.shape
    has_tr, has_tc = total_row is not None, total_col is not None
    out = table.copy()
    col_labels = list(count_columns) + ([total_col] if has_tc else [])
    if has_tr and total_row not in out.index:
        out = out.reindex([*out.index, total_row])
    row_labels = inner_rows + ([total_row] if has_tr else [])
    for k, col in enumerate(col_labels):
        series = pd.Series(shown[:, k], index=row_labels, dtype="Int64")
        series[supp[:, k]] = pd.NA
        out[col] = series.reindex(out.index).astype("Int64")

    suppressed_cells = [
        (row_labels[i], col_labels[j]) for i in range(rows_full) for j in range(cols_full) if supp[i, j]
    ]
    secondary_cells = [
        (row_labels[i], col_labels[j])
        for i in range(rows_full)
        for j in range(cols_full)
        if supp[i, j] and not primary[i, j]
    ]
    out.attrs = dict(out.attrs)
    out.attrs["disclosure"] = {
        "threshold": threshold,
        "base": base,
        "count_columns": list(count_columns),
        "total_row": total_row,
        "total_col": total_col,
        "suppressed": suppressed_cells,
        "secondary": secondary_cells,
    }
    return out


def smallest_shown_count(threshold: int = 7, base: int = 5) -> int:
    """The smallest non-zero value a disclosed count can show: ``threshold + 1`` rounded to ``base``."""
    return int(_round_to_base(np.array([threshold + 1]), base)[0])


def check_disclosure(
    table: pd.DataFrame,
    threshold: int = 7,
    count_columns: Sequence | None = None,
    base: int | None = None,
) -> pd.DataFrame:
    """Cells of ``table`` that break disclosure control: columns ``row``, ``column``, ``value``, ``problem``.

    A numeric count cell offends if its value is between 1 and ``threshold`` (inclusive), or is not a whole
    number. With ``base`` given it also offends if it is not a multiple of ``base``; and a multiple of
    ``base`` that rounding of a count just above the threshold can produce (``smallest_shown_count``, e.g. 10
    for threshold 10, base 10) is then accepted. Missing (suppressed) and zero cells never offend.
    ``count_columns`` defaults to every numeric, non-boolean column (percentages must be excluded by the
    caller, e.g. via ``count_columns``). An empty frame means the table passes.
    """
    if count_columns is None:
        count_columns = [
            c
            for c in table.columns
            if pd.api.types.is_numeric_dtype(table[c].dtype) and not pd.api.types.is_bool_dtype(table[c].dtype)
        ]
    floor_ok = smallest_shown_count(threshold, base) if base else None
    found = []
    for col in count_columns:
        values = pd.to_numeric(table[col], errors="coerce")
        for row, value in values.items():
            if pd.isna(value):
                continue
            value = float(value)
            problem = None
            if value != np.round(value):
                problem = "not a whole number"
            elif base and value % base != 0:
                problem = f"not rounded to a multiple of {base}"
            elif 1 <= value <= threshold and not (floor_ok is not None and value == floor_ok and value > 0):
                problem = f"small count (1-{threshold})"
            if problem:
                found.append({"row": row, "column": col, "value": value, "problem": problem})
    return pd.DataFrame(found, columns=["row", "column", "value", "problem"])


def disclosed_percent(numerator, denominator, digits: int | None = 1, scale: float = 100.0):
    """Percentage (or rate with ``scale``) recomputed from disclosed counts, elementwise.

    Missing (suppressed) numerator or denominator, or a zero denominator, gives NaN. Works on scalars,
    Series and DataFrames (pandas alignment applies). Returns float values, rounded to ``digits`` if given.
    """

    def to_float(x):
        if isinstance(x, (pd.Series, pd.DataFrame)):
            return x.astype("Float64").astype(float)
        return np.nan if x is None or pd.isna(x) else float(x)

    num, den = to_float(numerator), to_float(denominator)
    if isinstance(den, (pd.Series, pd.DataFrame)):
        den = den.where(den != 0)
    elif den == 0:
        den = np.nan
    result = num / den * scale
    if digits is not None:
        result = np.round(result, digits)
    return result


def format_disclosed(
    table: pd.DataFrame,
    count_columns: Sequence | None = None,
    symbol: str = SUPPRESSED_SYMBOL,
    thousands: bool = True,
    digits: int = 1,
) -> pd.DataFrame:
    """Display strings: counts with thousands separators, ``symbol`` ("*") for suppressed counts,
    floats (percentages) to ``digits`` decimals with "*" where missing. Other columns are unchanged."""
    out = table.copy().astype(object)
    if count_columns is None:
        count_columns = [c for c in table.columns if pd.api.types.is_integer_dtype(table[c].dtype)]
    for col in table.columns:
        series = table[col]
        if col in count_columns:
            out[col] = [
                symbol if pd.isna(v) else (f"{int(v):,}" if thousands else str(int(v))) for v in series
            ]
        elif pd.api.types.is_float_dtype(series.dtype):
            out[col] = [symbol if pd.isna(v) else f"{float(v):.{digits}f}" for v in series]
    return out


def disclosed_flow(flow: pd.DataFrame, threshold: int, base: int) -> pd.DataFrame:
    """The flow table as it may be published: every count suppressed (1-threshold) or rounded (to base).

    The exclusions and the analysed rows add up to the rows read, so they are one line with that total for
    secondary suppression (a lone suppressed exclusion cannot be recovered by subtraction); recorded and
    missing ethnicity add up to the analysed rows likewise. ``n_remaining`` is dropped: a running remainder
    beside rounded steps would let a reader undo the rounding.
    """
    f = flow.reset_index(drop=True)
    steps = f[f["step"].isin(["excluded", "analysed"])]
    total = f[f["step"] == "extract"]
    line = pd.concat([steps, total])[["n_rows"]].astype(np.int64)
    line.index = [*steps.index, "__total__"]
    first = disclose(line, count_columns=["n_rows"], threshold=threshold, base=base, total_row="__total__")
    within = f[f["check"].isin(["ethnicity_recorded", "ethnicity_missing"])]
    analysed = f[f["step"] == "analysed"]
    pair = pd.concat([within, analysed])[["n_rows"]].astype(np.int64)
    pair.index = [*within.index, "__analysed__"]
    second = disclose(pair, count_columns=["n_rows"], threshold=threshold, base=base,
                             total_row="__analysed__")
    rest = f[f["check"].isin(["assessed", "treated"])][["n_rows"]].astype(np.int64)
    third = disclose(rest, count_columns=["n_rows"], threshold=threshold, base=base)
    shown = pd.Series(pd.NA, index=f.index, dtype="Int64")
    for part in (first.drop(index="__total__"), second.drop(index="__analysed__"), third):
        shown.loc[part.index] = part["n_rows"]
    shown.loc[total.index] = first.loc["__total__", "n_rows"]
    if pd.isna(second.loc["__analysed__", "n_rows"]):  # the analysed row is in both lines: suppressed if either says
        shown.loc[analysed.index] = pd.NA
    out = f[["step", "check", "reason"]].copy()
    out["n_rows"] = shown
    return out
