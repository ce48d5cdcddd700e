"""What a notebook may show: one display rule for counts, so notebooks never branch on ``if real:``.

On a **real extract** (``data_path`` set: rows, or the pattern counts ``helpers.extract`` wrote) every count a
notebook shows passes through disclosure control (``helpers.disclosure.disclose``: 1-``suppress_threshold``
suppressed as "*", others rounded to ``rounding_base``, secondary suppression where a total is shown), and
percentages are recomputed from the disclosed counts. On a **synthetic cohort** the same calls show the exact
values: nothing there describes a real person, and exact values are what a student checks the arithmetic with.
``banner`` says which rule a page follows.

Notebooks call these functions instead of printing counts themselves; ``helpers.check_outputs`` checks the
result at the end of every real-extract run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from helpers import disclosure, prepare, tables


def is_real(p: dict[str, Any]) -> bool:
    """Real-extract mode: a ``data_path`` was given."""
    return bool(p.get("data_path"))


def banner(p: dict[str, Any]) -> str:
    """One line for the top of a page: which display rule its counts follow."""
    if is_real(p):
        return (f"Real extract: every count shown is disclosure controlled (1-{p['suppress_threshold']} "
                f"suppressed as *, others rounded to {p['rounding_base']}); exact counts stay in secure/.")
    return "Synthetic cohort: counts are shown exact (no real person is described)."


def count(n: int | float, p: dict[str, Any]) -> str:
    """One count as text: exact with thousands separators (synthetic), or disclosed ("*" / rounded)."""
    n = int(n)
    if not is_real(p):
        return f"{n:,}"
    shown = disclosure.disclose(pd.DataFrame({"n": [n]}), count_columns=["n"], threshold=p["suppress_threshold"],
                            base=p["rounding_base"])["n"].iloc[0]
    return disclosure.SUPPRESSED_SYMBOL if pd.isna(shown) else f"{int(shown):,}"


def percent(numerator: int | float, denominator: int | float, p: dict[str, Any], digits: int = 1) -> str:
    """A percentage as text; on a real extract computed from the disclosed counts ("*" if one is suppressed)."""
    if not is_real(p):
        return "" if not denominator else f"{100 * numerator / denominator:.{digits}f}%"
    pair = disclosure.disclose(pd.DataFrame({"n": [int(numerator), int(denominator)]}), count_columns=["n"],
                           threshold=p["suppress_threshold"], base=p["rounding_base"])["n"]
    value = disclosure.disclosed_percent(pair.iloc[0], pair.iloc[1], digits=digits)
    return disclosure.SUPPRESSED_SYMBOL if pd.isna(value) else f"{value:.{digits}f}%"


def counts(table: pd.DataFrame, p: dict[str, Any], count_columns: Sequence | None = None, total_row=None,
           total_col=None) -> pd.DataFrame:
    """A table of counts for display: exact (synthetic) or disclosed and formatted with "*" (real).

    Pass a table of counts only (no percentages computed from raw counts): on a real extract every numeric
    column not named in ``count_columns`` is dropped, because a rate from raw counts can undo the rounding.
    """
    if not is_real(p):
        return table
    cols = list(count_columns) if count_columns is not None else [
        c for c in table.columns if pd.api.types.is_numeric_dtype(table[c].dtype)
        and not pd.api.types.is_bool_dtype(table[c].dtype) and c != total_col]
    other_numeric = [c for c in table.columns if c not in cols and c != total_col
                     and pd.api.types.is_numeric_dtype(table[c].dtype)]
    base = table.drop(columns=other_numeric)
    if total_row is not None and total_row in base.index:
        base = base.drop(index=total_row)
    base = base.astype({c: np.int64 for c in cols})
    signs = np.sign(base[cols])  # a difference of counts (e.g. a change) is disclosed by its size, sign kept
    base[cols] = base[cols].abs()
    out = disclosure.disclose(base, count_columns=cols, threshold=p["suppress_threshold"], base=p["rounding_base"],
                          total_row=total_row, total_col=total_col)
    for c in cols:
        if (signs[c] < 0).any():
            out[c] = out[c] * signs[c].reindex(out.index).fillna(1).astype("Int64")
    shown = [*cols, *([total_col] if total_col is not None else [])]
    return disclosure.format_disclosed(out, count_columns=shown)


def crosstab(rows: pd.Series, columns: pd.Series, p: dict[str, Any]) -> pd.DataFrame:
    """``pd.crosstab`` of two columns for display, with totals; disclosed on a real extract."""
    tab = pd.crosstab(rows, columns)
    tab.columns = [str(c) for c in tab.columns]
    if not is_real(p):
        tab[tables.TOTAL_LABEL] = tab.sum(axis=1)
        tab.loc[tables.TOTAL_LABEL] = tab.sum(axis=0)
        return tab
    tab.index = [str(i) for i in tab.index]
    return counts(tab, p, count_columns=list(tab.columns), total_row=tables.TOTAL_LABEL,
                  total_col=tables.TOTAL_LABEL)


def pathway_counts(frame: pd.DataFrame, p: dict[str, Any]) -> pd.DataFrame:
    """``tables.pathway_counts`` for display: exact (synthetic) or disclosed, rates from disclosed counts."""
    return tables.pathway_counts(frame, disclose=is_real(p), threshold=p["suppress_threshold"],
                                 base=p["rounding_base"])


def flow(flow_table: pd.DataFrame, p: dict[str, Any]) -> pd.DataFrame:
    """The flow table for display: exact (synthetic) or ``disclosure.disclosed_flow`` (real)."""
    if not is_real(p):
        return flow_table
    return disclosure.disclosed_flow(flow_table, p["suppress_threshold"], p["rounding_base"])


def flow_text(flow_table: pd.DataFrame, p: dict[str, Any]) -> str:
    """``prepare.flow_text`` (synthetic), or the disclosed flow as lines of text (real: no running remainder,
    no percentages from exact counts)."""
    if not is_real(p):
        return prepare.flow_text(flow_table)
    shown = flow(flow_table, p)
    keep = shown[(shown["step"] != "excluded") | (flow_table["n_rows"].to_numpy() > 0)]
    w = max(len(r) for r in keep["reason"]) + 4
    lines = []
    for _, r in keep.iterrows():
        indent = "  - " if r["step"] == "excluded" else ("  " if r["step"] == "within analysed" else "")
        value = disclosure.SUPPRESSED_SYMBOL if pd.isna(r["n_rows"]) else f"{int(r['n_rows']):,}"
        lines.append(f"{indent + r['reason']:<{w}}{value:>12}")
    return "\n".join(lines)


class Withheld:
    """What a page shows in place of raw exploratory output on a real extract: one sentence saying why."""

    def __init__(self, what: str, instead: str):
        self.text = f"Not shown on a real extract: {what} has raw counts. {instead}"

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return "<p><em>" + self.text.replace("&", "&amp;").replace("<", "&lt;") + "</em></p>"


class NotInCounts(Withheld):
    """What a page shows, in a run from pattern counts alone, where it would show row-level detail: what is not
    there, and why the counts cannot hold it."""

    def __init__(self, what: str, why: str):
        self.text = f"Not available from pattern counts: {what}. {why}"


def not_in_counts(what: str, why: str) -> NotInCounts:
    """The sentence a page shows instead of row-level detail in a run from pattern counts alone."""
    return NotInCounts(what, why)


def exploratory(obj: Any, p: dict[str, Any], what: str, instead: str) -> Any:
    """Raw exploratory output (tableone's n (%), a crosstab): shown on a synthetic cohort; on a real extract
    replaced by a sentence (:class:`Withheld`), because its counts are not disclosure controlled."""
    return Withheld(what, instead) if is_real(p) else obj


PATH_PARAMETERS = ("data_path", "targets_path", "margin", "output_dir")


def parameters(p: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters as a page may show them: an absolute path becomes its file name (the output folder
    becomes "."), so no machine path is published, not even one a table display truncates."""
    shown = dict(p)
    for name in PATH_PARAMETERS:
        value = shown.get(name)
        if isinstance(value, str) and value and Path(value).is_absolute():
            shown[name] = "." if name == "output_dir" else Path(value).name
    return shown
