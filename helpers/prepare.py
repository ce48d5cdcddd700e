"""Raw NHS-coded IAPT referrals -> the analysis frame, with every excluded row counted.

Three steps, each usable on its own:

``read_extract(path)``
    reads the CSV extract with every field as a string (a blank stays ``""``, ``"99"`` stays ``"99"``,
    ``"NA"`` stays ``"NA"``: nothing becomes NaN behind your back).
``validate_extract(raw)``
    checks the rows and returns a :class:`ValidationReport`: one row per check with the number of rows
    failing it, up to five example line numbers and the offending (raw) values.
``prepare(raw)``
    maps the codes to the analysis variables and returns a :class:`Prepared` with the analysis ``frame``,
    the ``flow`` table (every input row accounted for, every normalisation counted) and the ``report``.

Normalising, checking and counting are done by the extract engine (:mod:`helpers.extract`: one SQL
definition run on DuckDB, or on Spark), so a notebook that teaches on rows and a national run that only
counts apply exactly the same rules. This module keeps the row-level entry points, the flow text and the
data dictionary.

Conventions (also in docs/data_dictionary.md, generated from this module):

* **Line numbers** are line numbers in the CSV file: the header is line 1, so the first data row is line 2
  (``line = row position + 2``). For a DataFrame not read from a file the same rule applies to its row
  positions.
* **Duplicate PathwayID**: the first occurrence is kept (if it passes the other checks), every later
  occurrence is flagged and excluded; the example values show the repeated identifier.
* **Order of exclusion reasons**: the order of :data:`CHECKS`. A row with several problems is reported under
  every check it fails in the validation report, but counted once, under its first reason, in the flow.
  Data errors come first, then the study-population criteria (age under 18, gender not known).
* **Real-world variants are normalised, never guessed silently**: trimmed and case-folded codes, two-character
  local ethnic codes, negative not-known codes, decimal ages, other datasets' gender codes, dates with a time
  part or day-first; each is counted in the flow (``step == "normalised"``), see
  :data:`helpers.extract_checks.NORMALISATIONS`. Anything else that does not match is an exclusion with a reason.
  Missing ethnicity means one of ``codes.MISSING_ETHNIC_CODES`` (``"Z"``, ``"99"``, blank) after
  normalisation; such rows are kept with ``ethnicity`` NaN. ``"NA"`` is an unknown code, not missing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import extract, extract_checks, extract_columns, extract_read, study

# --- Schema, constants and checks: defined once, in the extract engine; prepare is the face its users (the
# data dictionary, notebooks, tests) read them from, as prepare.NAME ----------------------------------------
from helpers.extract_checks import (  # noqa: F401 (re-exported for prepare's users)
    AGE_MAX_VALID,
    AGE_MIN_STUDY,
    AGE_MIN_VALID,
    CHECK_BY_CODE,
    CHECKS,
    ETHNIC_CODES,
    EXCLUSION_CHECKS,
    FIRST_DATA_LINE,
    FLOW_COLUMNS,
    N_EXAMPLES,
    NORMALISATIONS,
    REPORT_COLUMNS,
    REQUIRED_COLUMNS,
    Check,
    ExtractError,
)
from helpers.extract_flow import ValidationReport

STUDY_START = pd.Timestamp(extract_checks.STUDY_START)
STUDY_END = pd.Timestamp(extract_checks.STUDY_END)

ANALYSIS_COLUMNS: list[str] = [
    "referral_id",
    "referral_date",
    "year",
    "age",
    "age_band",
    "gender",
    "ethnic_code",
    "ethnicity",
    "borough",
    "referral_source",
    "assessed",
    "treated",
]


# --- Reading --------------------------------------------------------------------------------------------
_NOT_CSV_SUFFIXES = {".xlsx", ".xls", ".xlsm", ".parquet", ".feather", ".sav", ".dta", ".sas7bdat", ".json",
                     ".pkl", ".pickle"}


def read_extract(path, *, encoding: str = "utf-8-sig", check_columns: bool = True) -> pd.DataFrame:
    """Read a raw IAPT extract (CSV, one row per referral) with every field as a string.

    Blank fields stay ``""`` and NA-like strings (``"NA"``, ``"NULL"``, ``"99"``) stay as they are, so that
    :func:`validate_extract` sees exactly what is in the file. Blank lines are kept (they show up as rows with
    a blank PathwayID) so that row positions map to file line numbers. Raises ``FileNotFoundError`` if the
    file does not exist and :class:`ExtractError` if it cannot be read as CSV, has short rows or (with
    ``check_columns``) lacks a required column.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No extract file at {str(path)!r} (resolved: {path.resolve()}).")
    if path.is_dir():
        raise ExtractError(f"{str(path)!r} is a directory, not a CSV extract file.")
    if path.suffix.lower() in _NOT_CSV_SUFFIXES:
        raise ExtractError(f"{str(path)!r} looks like a {path.suffix} file; the extract must be a CSV file "
                           f"(comma-separated, header row with the columns {', '.join(REQUIRED_COLUMNS)}).")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                          encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ExtractError(f"{str(path)!r} is not a text CSV file readable as {encoding} ({exc.reason} at byte "
                           f"{exc.start}); is it a spreadsheet or a binary file? Export it as CSV.") from exc
    except pd.errors.EmptyDataError as exc:
        raise ExtractError(f"{str(path)!r} is empty: expected a CSV header with the columns "
                           f"{', '.join(REQUIRED_COLUMNS)}.") from exc
    except pd.errors.ParserError as exc:
        raise ExtractError(f"{str(path)!r} could not be parsed as CSV: {exc}") from exc
    # pandas pads a row with fewer fields than the header with blanks, which would silently read as "not
    # assessed": count the fields per line instead.
    short = _short_lines(path, encoding, raw.shape[1])
    if len(short):
        raise ExtractError(f"{str(path)!r}: {len(short)} line(s) have fewer fields than the header "
                           f"(lines {', '.join(map(str, short[:N_EXAMPLES]))}{', ...' if len(short) > N_EXAMPLES else ''}).")
    raw.attrs["source"] = path.name  # the file name: a full path would differ per machine (and may be sensitive)
    if check_columns:
        check_required_columns(raw)
    return raw


_COMPRESSED_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"}


def _short_lines(path: Path, encoding: str, n_fields: int) -> np.ndarray:
    """File line numbers (1-based) of non-empty lines with fewer fields than the header.

    Fast path (no quote character in the file): count the commas per line with numpy. Otherwise parse with
    the csv module. Compressed files are not checked.
    """
    if path.suffix.lower() in _COMPRESSED_SUFFIXES:
        return np.array([], dtype=np.int64)
    data = path.read_bytes()
    if b'"' not in data:
        buf = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        if len(buf) and buf[-1] != 10:
            ends = np.append(ends, len(buf))
        starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.array([], dtype=np.int64)
        commas = np.flatnonzero(buf == 44)
        n_commas = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
        length = ends - starts - (buf[np.maximum(ends - 1, 0)] == 13)  # ignore a CR before the LF
        short = (n_commas < n_fields - 1) & (length > 0)
        return np.flatnonzero(short) + 1

    out = []
    with io.open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if row and len(row) < n_fields:
                out.append(reader.line_num)
    return np.array(out, dtype=np.int64)


def check_required_columns(raw: pd.DataFrame, columns=None) -> None:
    """Fail fast with :class:`ExtractError` naming the missing columns (v2.x names and a column mapping are
    recognised) and refusing text columns holding pandas' NaN (what ``pd.read_csv`` makes of 'NA')."""
    if not isinstance(raw, pd.DataFrame):
        raise ExtractError(f"Expected a pandas DataFrame of raw extract rows, got {type(raw).__name__}.")
    extract_columns.resolve_columns(list(raw.columns), columns)
    extract_read.check_pandas(raw)


# --- Checking: served by the extract engine ---------------------------------------------------------------
def validate_extract(raw: pd.DataFrame, *, engine: str = "duckdb", spark=None) -> ValidationReport:
    """Check a raw extract (a DataFrame; text, or typed columns from Spark/Parquet) before it is used.

    Runs :func:`helpers.extract.run` (normalise, then check). Raises :class:`ExtractError` at once if a required
    column is missing (the message lists the missing and the expected columns). Otherwise returns a
    :class:`ValidationReport` with one row per check in :data:`CHECKS`: ``check`` (reason code), ``field``,
    ``reason``, ``severity``, ``n_rows`` failing, ``example_lines`` (up to 5 CSV line numbers, header = line 1),
    ``example_values`` (the offending raw values) and ``action`` (``excluded`` or ``kept as missing``).
    """
    check_required_columns(raw)
    return extract.run(raw, engine=engine, spark=spark, reasons=True).report



# --- Preparing ------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Output of :func:`prepare`: the analysis ``frame``, the ``flow`` table and the validation ``report``."""

    frame: pd.DataFrame
    flow: pd.DataFrame
    report: ValidationReport = field(repr=False)

    def __repr__(self) -> str:
        return f"Prepared(frame: {len(self.frame):,} rows x {self.frame.shape[1]} columns)\n" + flow_text(self.flow)


def _categorical(codes_: np.ndarray, categories: list) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes_).astype(np.int16, copy=False), categories=categories)


def frame_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The analysis frame (columns :data:`ANALYSIS_COLUMNS`) from the engine's coded rows."""
    ymd = rows["ref_ymd"].to_numpy(dtype=np.int64)
    dates = pd.to_datetime(pd.Series(ymd.astype(str)), format="%Y%m%d").to_numpy(dtype="datetime64[ns]") \
        if len(ymd) else np.array([], dtype="datetime64[ns]")
    assessed = rows["c_assessed"].to_numpy(dtype=np.int64)
    treated = np.where(assessed == 1, rows["c_treated"].to_numpy(dtype=np.float64), np.nan)
    return pd.DataFrame({
        "referral_id": rows["referral_id"].to_numpy(dtype=object),
        "referral_date": dates,
        "year": _categorical(rows["c_year"], study.YEARS),
        "age": rows["age"].to_numpy(dtype=np.int64),
        "age_band": _categorical(rows["c_age_band"], study.AGE_BANDS),
        "gender": _categorical(rows["c_gender"], study.GENDERS),
        "ethnic_code": _categorical(rows["c_ethnic_code"], ETHNIC_CODES),
        "ethnicity": _categorical(rows["c_ethnicity"], study.GROUPS),
        "borough": _categorical(rows["c_borough"], study.BOROUGHS),
        "referral_source": _categorical(rows["c_referral_source"], study.SOURCES),
        "assessed": assessed,
        "treated": treated,
    }, columns=ANALYSIS_COLUMNS)


#: The analysis-frame columns pattern counts hold (in the frame's order); the others (identifier, date, age in
#: years, the raw ethnic code) are row-level and stay where the rows are.
COUNTS_COLUMNS: list[str] = ["year", "age_band", "gender", "ethnicity", "borough", "referral_source", "assessed",
                             "treated"]


def frame_from_counts(pattern_counts: pd.DataFrame) -> pd.DataFrame:
    """The analysis frame rebuilt from pattern counts (``helpers.extract`` layout): each pattern repeated ``n``
    times, with the columns of :data:`COUNTS_COLUMNS` in the frame's order and types.

    Why: every model, Table 1 and the pathway counts depend on the data only through these columns, so a run
    from carried counts computes exactly what the row-level run computes from them. The row-level columns are
    absent, not blank, so code that needs them fails by name instead of reading blanks.
    """
    pc = pattern_counts
    missing = [c for c in COUNTS_COLUMNS + ["n"] if c not in pc.columns]
    if missing:
        raise ExtractError(f"pattern counts lack {', '.join(missing)} (expected {', '.join(COUNTS_COLUMNS)}, n).")
    n = pc["n"].to_numpy(dtype=np.int64)
    idx = np.repeat(np.arange(len(pc)), n)

    def cat(column: str, levels: list) -> pd.Categorical:
        values = pc[column].astype(np.int64) if column == "year" else pc[column].astype(str)
        c = pd.Categorical(values, categories=levels)
        bad = values[(c.codes < 0) & (values.astype(str) != "")]
        if len(bad):
            raise ExtractError(f"pattern counts: column {column!r} has value(s) {sorted(set(bad.astype(str)))[:5]} "
                               f"outside {levels}.")
        return pd.Categorical.from_codes(c.codes[idx], categories=levels)

    assessed = pc["assessed"].to_numpy(dtype=np.int64)[idx]
    treated = pd.to_numeric(pc["treated"].replace("", None)).to_numpy(dtype=np.float64)[idx]
    out = pd.DataFrame({
        "year": cat("year", study.YEARS),
        "age_band": cat("age_band", study.AGE_BANDS),
        "gender": cat("gender", study.GENDERS),
        "ethnicity": cat("ethnicity", study.GROUPS),
        "borough": cat("borough", study.BOROUGHS),
        "referral_source": cat("referral_source", study.SOURCES),
        "assessed": assessed,
        "treated": np.where(assessed == 1, treated, np.nan),
    })
    return out

def prepare(raw, strict: bool = False, *, engine: str = "duckdb", spark=None, columns=None) -> Prepared:
    """Validate ``raw`` and map it to the analysis frame (columns :data:`ANALYSIS_COLUMNS`).

    ``raw``: a DataFrame of extract rows (or anything :func:`helpers.extract.run` reads: a CSV or Parquet path,
    a Spark DataFrame). The extract engine normalises real-world variants (each counted in the flow), checks
    every row, and returns the kept rows. Rows failing any exclusion check are dropped and counted in ``flow``
    under their first reason (order of :data:`CHECKS`); with ``strict=True`` any data error (severity
    ``invalid``) raises :class:`ExtractError` carrying the report instead. Out-of-scope rows (age under 18,
    gender not known) are always excluded and counted, never an error. Missing ethnicity (Z, 99, blank) is
    kept as NaN.
    """
    if isinstance(raw, pd.DataFrame):
        check_required_columns(raw, columns)
    res = extract.run(raw, engine=engine, spark=spark, columns=columns, rows=True)
    if strict and not res.report.ok:
        raise ExtractError("The extract has invalid rows (strict mode):\n" + str(res.report), report=res.report)
    return Prepared(frame=frame_from_rows(res.rows), flow=res.flow, report=res.report)



def flow_text(flow: pd.DataFrame, show_zero: bool = False) -> str:
    """A readable rendering of the flow table for notebooks (exclusions with no rows hidden unless
    ``show_zero``)."""
    n_in = int(flow.loc[flow["step"] == "extract", "n_rows"].iloc[0])
    n_an = int(flow.loc[flow["step"] == "analysed", "n_rows"].iloc[0])
    within = flow[flow["step"] == "within analysed"].set_index("check")["n_rows"]
    excl = flow[flow["step"] == "excluded"]
    shown = excl if show_zero else excl[excl["n_rows"] > 0]
    norm = flow[(flow["step"] == "normalised") & (flow["n_rows"] > 0)]
    w = max([len(r) for r in flow.loc[flow["step"] != "normalised", "reason"]] + [30]) + 4

    def pct(k, d):
        return f"({100 * k / d:5.1f}%)" if d else ""

    out = [f"{'Referrals in extract':<{w}}{n_in:>12,}"]
    if len(norm):
        out.append("  read as the study's form (kept, counted):")
        out += [f"    {r['reason']} ({r['n_rows']:,} rows)" for _, r in norm.iterrows()]
    for _, r in shown.iterrows():
        out.append(f"{'  - ' + r['reason']:<{w}}{r['n_rows']:>12,}   remaining {int(r['n_remaining']):,}")
    if excl["n_rows"].sum() == 0:
        out.append("  (no rows excluded)")
    else:
        out.append(f"{'  excluded in all':<{w}}{int(excl['n_rows'].sum()):>12,}  {pct(excl['n_rows'].sum(), n_in)}")
    out.append(f"{'Referrals analysed':<{w}}{n_an:>12,}  {pct(n_an, n_in)}")
    for key, label, denom in [("ethnicity_recorded", "ethnicity recorded", n_an),
                              ("ethnicity_missing", "ethnicity missing (Z, 99, blank)", n_an),
                              ("assessed", "assessed", n_an),
                              ("treated", "treated (of those assessed)", within.get("assessed", 0))]:
        k = int(within.get(key, 0))
        out.append(f"{'  ' + label:<{w}}{k:>12,}  {pct(k, denom)}")
    return "\n".join(out)
