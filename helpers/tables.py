"""Tables for the report: disclosure control, Table 1, pathway counts, ours beside the paper's Table 4.

Disclosure control
------------------
Counts of people drawn from routine NHS data are published under statistical disclosure control.
``disclose`` applies the rule NHS Digital adopted for Hospital Episode Statistics in September 2018
("Disclosure control methodology for HES and ECDS", NHS Digital) and that NHS Digital / NHS England
statistical publications, the IAPT (NHS Talking Therapies) reports among them, follow:

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

``tableone``'s Table 1 (``table1_tableone``) is for exploring in a notebook only: its counts are raw. The
publishable Table 1 is ``table1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from helpers import study

SUPPRESSED_SYMBOL = "*"
TOTAL_LABEL = "Total"

# --------------------------------------------------------------------------------------------------
# Disclosure control
# --------------------------------------------------------------------------------------------------


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


def _is_small(values: np.ndarray, threshold: int) -> np.ndarray:
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

    inner_rows = [r for r in table.index if not (total_row is not None and r == total_row)]
    raw = _validate_counts(table, count_columns, inner_rows)
    n_r, n_c = raw.shape
    has_tc, has_tr = total_col is not None, total_row is not None

    # Full grid: inner cells, then a total column and/or total row (true and rounded-recomputed values).
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

    primary = _is_small(true, threshold)
    primary[:n_r, :n_c] = _is_small(raw, threshold)
    # A total is suppressed if its true value or its recomputed value is small.
    total_mask = np.zeros_like(primary)
    if has_tc:
        total_mask[:, n_c] = True
    if has_tr:
        total_mask[n_r, :] = True
    primary |= total_mask & _is_small(shown, threshold)
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


_disclose = disclose  # for functions whose `disclose` argument shadows the name


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


# --------------------------------------------------------------------------------------------------
# Table 1 and pathway counts
# --------------------------------------------------------------------------------------------------

TABLE1_VARIABLES: dict[str, str] = {
    "age_band": "Age band",
    "gender": "Gender",
    "year": "Year of referral",
    "borough": "Borough",
    "referral_source": "Source of referral",
}
NOT_KNOWN = "Not known"


def group_labels() -> list[str]:
    """Column order for tables by ethnic group: the paper's groups, then Missing."""
    return [*study.GROUPS, study.MISSING_LABEL]


def ethnicity_with_missing(frame: pd.DataFrame) -> pd.Series:
    """The ethnicity column as a categorical over GROUPS + "Missing" (NaN becomes "Missing")."""
    eth = frame["ethnicity"].astype(object)
    unknown = set(eth.dropna().unique()) - set(study.GROUPS)
    if unknown:
        raise ValueError(f"ethnicity has values outside study.GROUPS: {sorted(map(str, unknown))}")
    eth = eth.where(eth.notna(), study.MISSING_LABEL)
    return pd.Categorical(eth, categories=group_labels())


def _levels(frame: pd.DataFrame, column: str) -> list:
    series = frame[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        levels = list(series.cat.categories)
    else:
        levels = list(study.COVARIATE_LEVELS.get(column, [])) or (
            study.SOURCES if column == "referral_source" else sorted(series.dropna().unique())
        )
    if series.isna().any():
        levels.append(NOT_KNOWN)
    return levels


def _crosstab(frame: pd.DataFrame, column: str, eth: pd.Categorical) -> pd.DataFrame:
    """Counts: levels of ``column`` x ethnic group (+ Missing), zero-filled."""
    levels = _levels(frame, column)
    values = frame[column].astype(object)
    values = values.where(values.notna(), NOT_KNOWN)
    tab = pd.crosstab(pd.Categorical(values, categories=levels), eth, dropna=False)
    tab = tab.reindex(index=levels, columns=group_labels(), fill_value=0)
    tab.index = pd.Index(levels, name="level")
    tab.columns = pd.Index(group_labels(), name="ethnicity")
    return tab.astype(np.int64)


def _check_frame(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"analysis frame lacks columns: {missing}")


def table1(
    frame: pd.DataFrame,
    disclose: bool = True,
    threshold: int = 7,
    base: int = 5,
) -> pd.DataFrame:
    """Table 1: the cohort by ethnic group (columns: each group, Missing, Total).

    Rows are a MultiIndex (variable, level): n referred; each level of age band, gender, year, borough and
    referral source (column % of the group's referred); assessed (% of referred); treated (% of assessed).
    Columns are a MultiIndex (group, "n" | "%"). With ``disclose=True`` (the publishable version) counts are
    disclosure controlled block by block (each variable's levels x groups, with the Total column and the
    group's total as lines for secondary suppression) and every % is recomputed from disclosed counts.
    """
    _check_frame(frame, ["ethnicity", "assessed", "treated", *TABLE1_VARIABLES])
    eth = ethnicity_with_missing(frame)
    groups = group_labels()
    referred = pd.Series(eth).value_counts().reindex(groups, fill_value=0).astype(np.int64)
    assessed_mask = frame["assessed"].to_numpy() == 1
    assessed = pd.Series(eth[assessed_mask]).value_counts().reindex(groups, fill_value=0).astype(np.int64)
    treated_mask = assessed_mask & (frame["treated"].to_numpy() == 1)
    treated = pd.Series(eth[treated_mask]).value_counts().reindex(groups, fill_value=0).astype(np.int64)

    def one_row(series: pd.Series, label) -> pd.DataFrame:
        df = pd.DataFrame([series.to_numpy()], columns=groups, index=[label])
        if disclose:
            return _disclose(df, count_columns=groups, threshold=threshold, base=base, total_col=TOTAL_LABEL)
        df[TOTAL_LABEL] = df[groups].sum(axis=1)
        return df

    n_ref = one_row(referred, ("Referred", "n"))
    n_ass = one_row(assessed, ("Assessed", "n (% of referred)"))
    n_trt = one_row(treated, ("Treated", "n (% of assessed)"))
    cols = [*groups, TOTAL_LABEL]

    blocks_n, blocks_pct = [n_ref[cols]], [pd.DataFrame(np.nan, index=n_ref.index, columns=cols)]
    ref_row = n_ref.iloc[0][cols]
    for column, label in TABLE1_VARIABLES.items():
        tab = _crosstab(frame, column, eth)
        if disclose:
            block = _disclose(
                tab, count_columns=groups, threshold=threshold, base=base, total_row="__all__", total_col=TOTAL_LABEL
            ).drop(index="__all__")
        else:
            block = tab.copy()
            block[TOTAL_LABEL] = block.sum(axis=1)
        block = block[cols]
        block.index = pd.MultiIndex.from_tuples([(label, lvl) for lvl in block.index])
        blocks_n.append(block)
        blocks_pct.append(disclosed_percent(block, ref_row, digits=1) if disclose else _pct(block, ref_row))
    for counts_row, denom in ((n_ass, ref_row), (n_trt, n_ass.iloc[0][cols])):
        blocks_n.append(counts_row[cols])
        pct = (disclosed_percent if disclose else _pct_row)(counts_row[cols].iloc[0], denom)
        blocks_pct.append(pd.DataFrame([pct], index=counts_row.index, columns=cols).astype(float))

    n = pd.concat(blocks_n)
    pct = pd.concat(blocks_pct)
    n.index = pd.MultiIndex.from_tuples(list(n.index), names=["variable", "level"])
    pct.index = n.index
    out = pd.concat({"n": n.astype("Int64"), "%": pct.astype(float)}, axis=1)
    out = out.swaplevel(0, 1, axis=1)
    out = out.reindex(columns=pd.MultiIndex.from_product([cols, ["n", "%"]]))
    out.columns.names = ["ethnicity", "statistic"]
    out.attrs["disclosed"] = bool(disclose)
    return out


def _pct(block: pd.DataFrame, denom: pd.Series) -> pd.DataFrame:
    return np.round(block.astype(float) / denom.astype(float).where(denom != 0) * 100, 1)


def _pct_row(num: pd.Series, denom: pd.Series) -> pd.Series:
    return np.round(num.astype(float) / denom.astype(float).where(denom != 0) * 100, 1)


def format_table1(table: pd.DataFrame, symbol: str = SUPPRESSED_SYMBOL) -> pd.DataFrame:
    """Display form of ``table1``: one string column per group, "n (%)" ("*" where suppressed)."""
    groups = list(dict.fromkeys(table.columns.get_level_values(0)))
    out = pd.DataFrame(index=table.index, columns=groups, dtype=object)
    for g in groups:
        cells = []
        for n, p in zip(table[(g, "n")], table[(g, "%")]):
            n_s = symbol if pd.isna(n) else f"{int(n):,}"
            cells.append(n_s if pd.isna(p) else f"{n_s} ({p:.1f})")
        out[g] = cells
    return out


# tableone reserves the column name "Missing" (its own count of missing values per variable), so the
# group of referrals without a recorded ethnicity needs another label there.
TABLEONE_MISSING_GROUP = "Missing ethnicity"


TABLEONE_TREATED_LABEL = "Treated (among assessed)"
TABLEONE_ASSESSED_N_LABEL = "n assessed (denominator for treated)"


def table1_tableone(frame: pd.DataFrame, **kwargs):
    """Exploratory Table 1 with the ``tableone`` package, grouped by ethnicity, with referrals whose
    ethnicity is missing as their own column ("Missing ethnicity": tableone reserves "Missing" for its
    column of missing-value counts).

    Denominators follow the paper: age, gender, year, borough, referral source and ``Assessed`` are among
    **all referrals** of the group; ``Treated (among assessed)`` is among the group's **assessed referrals
    only**. A single ``TableOne`` over all referrals would put the not-assessed into the treated row's
    denominator (as a "None" level), which is exactly the wrong denominator for treatment. So two
    ``TableOne`` objects are built, the second on the assessed referrals only, and its rows (a row
    ``n assessed (denominator for treated)`` and the treated row) are appended to the first; the returned
    object is the first ``TableOne`` with that combined ``.tableone`` table (``explore.treated`` holds the
    second object).

    tableone's own "Missing" column (counts of missing values per variable) is left out: every variable shown
    is complete (a not-known value is a level of its own), so that column would be empty beside "Missing
    ethnicity" and confuse a reader.

    NOT disclosure controlled: raw counts, for the notebook only. The publishable table is ``table1``.
    Extra keyword arguments go to both ``tableone.TableOne`` calls.
    """
    from tableone import TableOne

    columns = [*TABLE1_VARIABLES, "assessed"]
    _check_frame(frame, ["ethnicity", *columns, "treated"])
    data = frame[[*columns, "treated"]].copy()
    for c in TABLE1_VARIABLES:
        data[c] = data[c].astype(object).astype(str).where(data[c].notna())
    assessed = pd.to_numeric(data["assessed"], errors="coerce")
    data["assessed"] = assessed.map({1: "Yes", 0: "No"})
    data["treated"] = data["treated"].map({1.0: "Yes", 0.0: "No"})  # NaN (not assessed) stays missing
    eth = pd.Series(ethnicity_with_missing(frame), index=frame.index).astype(str)
    data["ethnicity"] = eth.replace(study.MISSING_LABEL, TABLEONE_MISSING_GROUP)
    order = {c: [v for v in (str(x) for x in _levels(frame, c) if x != NOT_KNOWN) if v in set(data[c].dropna())]
             for c in TABLE1_VARIABLES}
    order["ethnicity"] = [*study.GROUPS, TABLEONE_MISSING_GROUP]
    order["assessed"] = ["Yes", "No"]
    order["treated"] = ["Yes", "No"]
    labels = {**TABLE1_VARIABLES, "assessed": "Assessed (among referred)", "treated": TABLEONE_TREATED_LABEL}
    common = dict(groupby="ethnicity", rename=labels, pval=False, missing=False, overall=True)
    options = dict(columns=columns, categorical=columns,
                   order={k: v for k, v in order.items() if k != "treated"}, **common)
    options.update(kwargs)
    main = TableOne(data, **options)

    # Treatment among the assessed only: a second TableOne on the assessed rows.
    on_assessed = data.loc[assessed == 1, ["ethnicity", "treated"]]
    treated_options = dict(columns=["treated"], categorical=["treated"],
                           order={k: order[k] for k in ("ethnicity", "treated")}, **common)
    treated_options.update({k: v for k, v in kwargs.items() if k not in ("columns", "categorical")})
    treated = TableOne(on_assessed, **treated_options)
    block = treated.tableone.copy()
    first = block.index.get_level_values(0)
    block = block[first != "n"]  # its "n" row is the number assessed: relabel it so it is not read as referrals
    n_assessed = treated.tableone[first == "n"].copy()
    n_assessed.index = pd.MultiIndex.from_tuples([(TABLEONE_ASSESSED_N_LABEL, "")], names=block.index.names)
    block = pd.concat([n_assessed, block]).reindex(columns=main.tableone.columns).fillna("")
    combined = pd.concat([main.tableone, block])
    main.tableone = combined
    for name in ("head", "tail", "to_csv", "to_excel", "to_html", "to_json", "to_latex"):
        setattr(main, name, getattr(combined, name))
    main.treated = treated
    return main


PATHWAY_COUNT_COLUMNS = ["referred", "assessed", "treated"]


def pathway_counts(frame: pd.DataFrame, disclose: bool = False, threshold: int = 7, base: int = 5,
                   exact_rates: bool = False) -> pd.DataFrame:
    """The pathway by ethnic group (+ Missing, + Total), one row each, index named ``ethnicity``.

    Columns: ``referred``, ``assessed``, ``treated``, ``pct_assessed`` (% of referred), ``pct_treated``
    (% of **assessed**, the paper's denominator for treatment), ``treated_per_1000_referred``.
    With ``disclose=True`` the counts are disclosure controlled (the Total row as the column total, so each
    count column is a line for secondary suppression) and the rates are recomputed from the disclosed
    counts (a rate from raw counts would let a reader multiply back to the raw count). With
    ``exact_rates=True`` as well, for a **synthetic** cohort where no disclosure rule applies to the rates,
    they are computed from the exact counts (so that they match the paper's printed percentages to the
    decimal), shown to one decimal (per 1,000: whole numbers), and still blank where a count behind a rate
    (numerator, denominator, denominator minus numerator) is suppressed or is 1..threshold.
    ``attrs['rates']`` says which.
    """
    _check_frame(frame, ["ethnicity", "assessed", "treated"])
    assessed_values = pd.to_numeric(frame["assessed"], errors="coerce")
    if not assessed_values.isin([0, 1]).all():
        raise ValueError("assessed must be 0/1 for every referral")
    treated_values = pd.to_numeric(frame["treated"], errors="coerce")
    if (treated_values.notna() & (assessed_values == 0)).any():
        raise ValueError("treated must be missing (NaN) for referrals that were not assessed")
    eth = pd.Series(ethnicity_with_missing(frame), index=frame.index)
    groups = group_labels()
    counts = pd.DataFrame(
        {
            "referred": eth.value_counts(),
            "assessed": eth[assessed_values == 1].value_counts(),
            "treated": eth[(assessed_values == 1) & (treated_values == 1)].value_counts(),
        }
    )
    counts = counts.reindex(groups, fill_value=0).fillna(0).astype(np.int64)
    counts.index = pd.Index(groups, name="ethnicity")
    exact = counts.copy()
    exact.loc[TOTAL_LABEL] = exact.sum(axis=0)

    def rate(num: str, den: str, scale: float = 100.0) -> pd.Series:
        n, d = exact[num].astype(float), exact[den].astype(float)
        return n / d.where(d != 0) * scale

    if disclose:
        counts = _disclose(
            counts, count_columns=PATHWAY_COUNT_COLUMNS, threshold=threshold, base=base, total_row=TOTAL_LABEL
        )
    else:
        counts = exact.copy()
    counts.index.name = "ethnicity"
    pairs = {"pct_assessed": ("assessed", "referred", 100.0, 1), "pct_treated": ("treated", "assessed", 100.0, 1),
             "treated_per_1000_referred": ("treated", "referred", 1000.0, 0)}
    if disclose and not exact_rates:
        for name, (num, den, scale, _) in pairs.items():
            counts[name] = disclosed_percent(counts[num], counts[den], digits=None, scale=scale)
        counts.attrs["rates"] = "recomputed from the disclosed counts"
        return counts
    for name, (num, den, scale, digits) in pairs.items():
        value = rate(num, den, scale)
        if disclose:
            small = (_is_small(exact[num].to_numpy(), threshold) | _is_small(exact[den].to_numpy(), threshold)
                     | _is_small((exact[den] - exact[num]).to_numpy(), threshold))
            hidden = counts[num].isna().to_numpy() | counts[den].isna().to_numpy() | small
            value = value.round(digits).where(~hidden)
        counts[name] = value.reindex(counts.index)
    if disclose:
        counts.attrs["rates"] = ("from exact counts, 1 decimal (per 1,000: whole numbers); blank where a count "
                                 "behind the rate is suppressed")
    return counts


# --------------------------------------------------------------------------------------------------
# Estimates: display and comparison with the paper
# --------------------------------------------------------------------------------------------------


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def format_ci(low, high, digits: int = 2) -> str:
    """"0.72-0.81"; "" if either bound is missing."""
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"{_fmt(low, digits)}-{_fmt(high, digits)}"


def format_estimates(estimates: pd.DataFrame, digits: int = 2) -> pd.Series:
    """Display strings "0.77 (0.72-0.81)", one per row of a tidy estimates table (same index).

    A row without a CI (the reference group) shows "1.00 (reference)"; a missing estimate shows "".
    """
    _check_frame(estimates, ["estimate", "ci_low", "ci_high"])
    out = []
    for est, lo, hi in zip(estimates["estimate"], estimates["ci_low"], estimates["ci_high"]):
        if pd.isna(est):
            out.append("")
        elif pd.isna(lo) or pd.isna(hi):
            out.append(f"{_fmt(est, digits)} (reference)")
        else:
            out.append(f"{_fmt(est, digits)} ({format_ci(lo, hi, digits)})")
    return pd.Series(out, index=estimates.index, name="display", dtype=object)


def tidy_published(published: pd.DataFrame, stage: str = "treatment") -> pd.DataFrame:
    """The paper's Table 4 (``analysis, ethnicity, n, pct_treated, model, or, ci_low, ci_high``) as a tidy
    estimates frame (``stage, outcome_level, model, analysis, ethnicity, estimate, ci_low, ci_high, n``).
    A frame already tidy (with ``estimate``) is returned as a copy."""
    if "estimate" in published.columns:
        out = published.copy()
        if "stage" not in out.columns:
            out["stage"] = stage
        if "outcome_level" not in out.columns:
            out["outcome_level"] = ""
        return out
    _check_frame(published, ["analysis", "ethnicity", "model", "or", "ci_low", "ci_high"])
    out = published.rename(columns={"or": "estimate"}).copy()
    out["stage"] = stage
    out["outcome_level"] = ""
    first = ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high"]
    return out[first + [c for c in out.columns if c not in first]]


def published_vs_ours(
    estimates: pd.DataFrame, published: pd.DataFrame, stage: str = "treatment", digits: int = 2,
    threshold: int | None = None,
) -> pd.DataFrame:
    """Our ORs beside the paper's printed Table 4, one row per printed (analysis, model, ethnicity).

    Columns: ``analysis, model, ethnicity, ours_or, ours_ci, paper_or, paper_ci, inside_paper_ci,
    rounds_to_printed, ours_pct, paper_pct``. ``inside_paper_ci``: our OR, rounded to the printed ``digits``,
    lies within the printed CI (bounds inclusive). ``rounds_to_printed``: our OR rounded to ``digits`` equals
    the printed OR. Both are False where we have no estimate. The reference group (printed 1.00 (1.00-1.00))
    is kept. ``ours_pct``: % treated among the assessed, 100 x ``n_events`` / ``n`` of our row, from exact
    counts (after MI: the average completed-data counts over the imputations), unrounded; NaN when the
    estimates carry no counts. ``paper_pct``: the printed % (``pct_treated``). Compare at the printed one
    decimal. ``threshold`` (publishable tables): ``ours_pct`` is blank where a count behind it (assessed,
    treated, assessed minus treated) is 1..``threshold``, the disclosure rule for counts.
    """
    keys = ["analysis", "model", "ethnicity"]
    _check_frame(estimates, [*keys, "estimate", "ci_low", "ci_high"])
    paper = tidy_published(published, stage=stage)
    paper = paper[paper["stage"] == stage] if "stage" in paper.columns else paper
    ours = estimates
    if "stage" in ours.columns:
        ours = ours[ours["stage"] == stage]
    has_counts = {"n", "n_events"} <= set(ours.columns)
    ours = ours[[*keys, "estimate", "ci_low", "ci_high", *(["n", "n_events"] if has_counts else [])]].copy()
    for k in keys:
        ours[k] = ours[k].astype(str)
    if ours.duplicated(keys).any():
        raise ValueError("estimates have more than one row per (analysis, model, ethnicity) for this stage")
    paper = paper[[*keys, "estimate", "ci_low", "ci_high", *(["pct_treated"] if "pct_treated" in paper else [])]].copy()
    for k in keys:
        paper[k] = paper[k].astype(str)
    merged = paper.merge(ours, on=keys, how="left", suffixes=("_paper", "_ours"))
    ours_or = merged["estimate_ours"].astype(float)
    # Reference rows carry estimate 1 and a blank CI in our tables.
    ours_rounded = np.round(ours_or, digits)
    tol = 0.5 * 10 ** (-digits) * 1e-6
    p_or = merged["estimate_paper"].astype(float)
    p_lo = merged["ci_low_paper"].astype(float)
    p_hi = merged["ci_high_paper"].astype(float)
    inside = (ours_rounded >= p_lo - tol) & (ours_rounded <= p_hi + tol)
    rounds = (ours_rounded - p_or).abs() <= tol
    out = pd.DataFrame(
        {
            "analysis": merged["analysis"],
            "model": merged["model"],
            "ethnicity": merged["ethnicity"],
            "ours_or": ours_or,
            "ours_ci": [
                format_ci(lo, hi, digits) if not pd.isna(lo) else ("reference" if e == 1 else "")
                for e, lo, hi in zip(ours_or, merged["ci_low_ours"], merged["ci_high_ours"])
            ],
            "paper_or": p_or,
            "paper_ci": [format_ci(lo, hi, digits) for lo, hi in zip(p_lo, p_hi)],
            "inside_paper_ci": (inside & ours_or.notna()).astype(bool),
            "rounds_to_printed": (rounds & ours_or.notna()).astype(bool),
        }
    )
    if has_counts:
        n = merged["n"].astype(float)
        out["ours_pct"] = 100.0 * merged["n_events"].astype(float) / n.where(n > 0)
        if threshold is not None:
            ev = merged["n_events"].astype(float)
            small = [_is_small(np.round(x.fillna(0).to_numpy()), threshold) for x in (n, ev, n - ev)]
            out["ours_pct"] = out["ours_pct"].where(~(small[0] | small[1] | small[2]))
    else:
        out["ours_pct"] = np.nan
    out["paper_pct"] = merged["pct_treated"].astype(float) if "pct_treated" in merged else np.nan
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Planted (calibration target) values beside estimates, and direction checks (notebooks 05-07)
# --------------------------------------------------------------------------------------------------


def _target_quantity(stage: str, model: str) -> str:
    return f"{'rrr' if stage == 'referral_source' else 'or'}_{model}"


def planted_vs_estimated(
    estimates: pd.DataFrame,
    targets: pd.DataFrame,
    stage: str,
    model: str = "adjusted_full",
    analysis: str = "complete_case",
) -> pd.DataFrame:
    """The effect sizes the synthetic cohort was built from (the targets file) beside our estimates.

    ``targets``: the targets table (``data/published/cohort_targets.csv``: ``quantity, stage, ethnicity,
    level, value, source``); the rows used are ``rrr_<model>`` (referral source, ``level`` = outcome level)
    or ``or_<model>``. Returns one row per planted value: ``outcome_level, ethnicity, planted, source``
    (``printed`` or ``assumed``), ``estimate, ci_low, ci_high`` and ``planted_in_ci`` (the planted value lies
    inside our 95% CI). Ordered by outcome level as in ``study.SOURCES`` and group as in ``study.GROUPS``.
    """
    _check_frame(targets, ["quantity", "stage", "ethnicity", "level", "value", "source"])
    _check_frame(estimates, ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low",
                             "ci_high"])
    quantity = _target_quantity(stage, model)
    planted = targets[(targets["quantity"] == quantity) & (targets["stage"] == stage)].copy()
    if planted.empty:
        raise ValueError(f"the targets table has no rows with quantity={quantity!r} and stage={stage!r}")
    planted = pd.DataFrame(
        {
            "outcome_level": planted["level"].fillna("").astype(str).to_numpy() if stage == "referral_source"
            else "",
            "ethnicity": planted["ethnicity"].astype(str).to_numpy(),
            "planted": pd.to_numeric(planted["value"]).astype(float).to_numpy(),
            "source": planted["source"].astype(str).to_numpy(),
        }
    )
    ours = estimates[(estimates["stage"] == stage) & (estimates["model"] == model)
                     & (estimates["analysis"] == analysis)].copy()
    ours["outcome_level"] = ours["outcome_level"].fillna("").astype(str)
    ours["ethnicity"] = ours["ethnicity"].astype(str)
    ours = ours[["outcome_level", "ethnicity", "estimate", "ci_low", "ci_high"]]
    out = planted.merge(ours, on=["outcome_level", "ethnicity"], how="left", validate="one_to_one")
    out["planted_in_ci"] = ((out["planted"] >= out["ci_low"]) & (out["planted"] <= out["ci_high"])).astype(bool)
    level_order = {lv: i for i, lv in enumerate(["", *study.SOURCES])}
    group_order = {g: i for i, g in enumerate(study.GROUPS)}
    out = out.sort_values(
        ["outcome_level", "ethnicity"],
        key=lambda s: s.map(level_order if s.name == "outcome_level" else group_order).fillna(99),
    )
    return out.reset_index(drop=True)


def check_directions(
    estimates: pd.DataFrame,
    stage: str,
    expected: dict,
    model: str = "adjusted_full",
    analysis: str = "complete_case",
) -> pd.DataFrame:
    """Do our estimates point the way a published sentence says?

    ``expected`` maps ``ethnicity`` (logit stages) or ``(ethnicity, outcome_level)`` (referral source) to
    ``"lower"`` (ratio below 1) or ``"higher"``. Returns one row per expectation: ``ethnicity,
    outcome_level, expected, estimate, ci_low, ci_high, direction_holds`` (the point estimate is on the
    expected side of 1) and ``ci_excludes_1`` (the whole 95% CI is on that side).
    """
    _check_frame(estimates, ["stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low",
                             "ci_high"])
    ours = estimates[(estimates["stage"] == stage) & (estimates["model"] == model)
                     & (estimates["analysis"] == analysis)]
    rows = []
    for key, direction in expected.items():
        if direction not in ("lower", "higher"):
            raise ValueError(f"expected direction for {key!r} must be 'lower' or 'higher', got {direction!r}")
        ethnicity, level = (key if isinstance(key, tuple) else (key, ""))
        hit = ours[(ours["ethnicity"].astype(str) == ethnicity)
                   & (ours["outcome_level"].fillna("").astype(str) == str(level))]
        if len(hit) != 1:
            raise ValueError(f"no single estimate for {key!r} in stage {stage!r}, model {model!r} ({len(hit)} found)")
        est, lo, hi = (float(hit[c].iloc[0]) for c in ("estimate", "ci_low", "ci_high"))
        if direction == "lower":
            holds, excl = est < 1, hi < 1
        else:
            holds, excl = est > 1, lo > 1
        rows.append({"ethnicity": ethnicity, "outcome_level": str(level), "expected": direction, "estimate": est,
                     "ci_low": lo, "ci_high": hi, "direction_holds": bool(holds), "ci_excludes_1": bool(excl)})
    return pd.DataFrame(rows, columns=["ethnicity", "outcome_level", "expected", "estimate", "ci_low", "ci_high",
                                       "direction_holds", "ci_excludes_1"])
