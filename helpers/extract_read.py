"""Reading an extract: what kind of source it is (CSV, Parquet file or folder, a data frame, a Spark table)
and, for a CSV, its dialect.

Why a module of its own: this is the only part of the engine that looks at the file itself; it fails on a bad
source (missing, empty, binary, a spreadsheet, pandas' NaN in text columns) before an engine starts.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.extract_checks import REQUIRED_COLUMNS, ExtractError


def sniff_csv(path: Path) -> dict[str, str]:
    """Delimiter and quote character of a CSV (plain or gzip), from its first 64 KB; ``,`` and ``"`` if unsure."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(65536)
    except (OSError, EOFError) as exc:
        raise ExtractError(f"{path.name!r} could not be read: {exc}") from exc
    if not head.strip():
        raise ExtractError(f"{path.name!r} is empty: expected a CSV header with the columns "
                           f"{', '.join(REQUIRED_COLUMNS)}.")
    if head[:2] == b"PK" or b"\x00" in head[:4096]:
        raise ExtractError(f"{path.name!r} is not a text CSV file (binary content: a spreadsheet or a zip?); "
                           "export it as CSV or Parquet.")
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text.splitlines() else ""
    delim = ","
    if first.count(",") == 0:
        for cand in (";", "\t", "|"):
            if first.count(cand) >= len(REQUIRED_COLUMNS) - 1:
                delim = cand
                break
    quote = '"'
    try:
        dialect = csv.Sniffer().sniff(text[:16384], delimiters=delim)
        quote = dialect.quotechar or '"'
    except csv.Error:
        pass
    return {"delimiter": delim, "quote": quote}


_PARQUET = {".parquet", ".parq", ".pq"}
_NOT_SUPPORTED = {".xlsx", ".xls", ".xlsm", ".feather", ".sav", ".dta", ".sas7bdat", ".json", ".pkl", ".pickle",
                  ".zip"}


def source_kind(source: Any) -> str:
    """``csv``, ``parquet``, ``parquet_dir``, ``pandas``, ``spark`` (DataFrame) or ``table`` (a Spark table name);
    fails with a clear message for anything else."""
    if isinstance(source, pd.DataFrame):
        return "pandas"
    if type(source).__name__ == "DataFrame" and hasattr(source, "sparkSession"):
        return "spark"
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            if not any(p.rglob("*.parquet")):
                raise ExtractError(f"{p.name!r} is a folder without .parquet files; give a CSV or Parquet file, "
                                   "or a folder of Parquet files.")
            return "parquet_dir"
        if p.exists():
            suf = p.suffix.lower()
            if suf in _PARQUET:
                return "parquet"
            if suf in _NOT_SUPPORTED:
                raise ExtractError(f"{p.name!r} looks like a {suf} file; the extract must be a CSV file "
                                   f"(any delimiter, optionally .gz) or Parquet, with the columns "
                                   f"{', '.join(REQUIRED_COLUMNS)}.")
            return "csv"
        if isinstance(source, str) and "/" not in source and "." in source and p.suffix.lower() not in (
                {".csv", ".gz", ".txt"} | _PARQUET):
            return "table"
        raise FileNotFoundError(f"No extract file at {str(p)!r} (resolved: {p.resolve()}).")
    raise ExtractError(f"Cannot read an extract from a {type(source).__name__}: give a file path (CSV or Parquet), "
                       "a folder of Parquet files, a pandas DataFrame, or (engine='spark') a Spark DataFrame or table.")


def check_pandas(raw: pd.DataFrame) -> None:
    """A string column holding float NaN is what ``pd.read_csv`` makes of 'NA', '' or 'NULL': refuse it rather
    than read an unknown code 'NA' as missing. None (Spark's toPandas) and typed nulls are blanks."""
    for col in raw.columns:
        s = raw[col]
        if isinstance(s, pd.DataFrame):
            raise ExtractError(f"Column {col!r} appears more than once in the extract.")
        if s.dtype == object and len(s):
            vals = s.to_numpy()
            na = pd.isna(vals)
            nan = na.any() and any(isinstance(v, float) for v in vals[na])
            if nan:
                raise ExtractError(
                    f"Column {col!r} holds NaN value(s) among text values: a CSV read with "
                    "pandas' defaults turns 'NA', 'NULL' or blanks into NaN, so an unknown code would read as "
                    "missing. Read it with helpers.prepare.read_extract (dtype=str, keep_default_na=False), or "
                    "give the file path to helpers.extract.")
