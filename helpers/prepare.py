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
  :data:`helpers.extract.NORMALISATIONS`. Anything else that does not match is an exclusion with a reason.
  Missing ethnicity means one of ``codes.MISSING_ETHNIC_CODES`` (``"Z"``, ``"99"``, blank) after
  normalisation; such rows are kept with ``ethnicity`` NaN. ``"NA"`` is an unknown code, not missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import codes, extract, study

# --- Schema and constants (defined once, in the extract engine) ------------------------------------------
REQUIRED_COLUMNS: list[str] = extract.REQUIRED_COLUMNS
FIRST_DATA_LINE = extract.FIRST_DATA_LINE
N_EXAMPLES = extract.N_EXAMPLES
AGE_MIN_VALID = extract.AGE_MIN_VALID
AGE_MAX_VALID = extract.AGE_MAX_VALID
AGE_MIN_STUDY = extract.AGE_MIN_STUDY
STUDY_START = pd.Timestamp(extract.STUDY_START)
STUDY_END = pd.Timestamp(extract.STUDY_END)

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

ETHNIC_CODES: list[str] = extract.ETHNIC_CODES
ExtractError = extract.ExtractError
Check = extract.Check
CHECKS = extract.CHECKS
CHECK_BY_CODE = extract.CHECK_BY_CODE
EXCLUSION_CHECKS = extract.EXCLUSION_CHECKS
NORMALISATIONS = extract.NORMALISATIONS
REPORT_COLUMNS = extract.REPORT_COLUMNS
FLOW_COLUMNS = extract.FLOW_COLUMNS
ValidationReport = extract.ValidationReport


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
    import csv
    import io

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
    extract.resolve_columns(list(raw.columns), columns)
    extract._check_pandas(raw)


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


# --- Data dictionary ------------------------------------------------------------------------------------
DICTIONARY_COLUMNS = ["table", "field", "type", "codes_format", "meaning", "source"]
DICTIONARY_CSV = study.SYNTHETIC_DIR / "data_dictionary.csv"
DICTIONARY_MD = study.PROJECT_ROOT / "docs" / "data_dictionary.md"

_SRC_DD = "NHS Data Dictionary"
_SRC_FIELD = "NHS England IAPT analysis code field name"
_SRC_LOCAL = "local field"
_SRC_SYN = "synthetic only"
_SRC_DERIVED = "derived (helpers.prepare)"


def _ethnic_codes_text() -> str:
    parts = []
    for c, label in codes.ETHNIC_CATEGORY_LABELS.items():
        g = codes.ETHNIC_CODE_TO_GROUP.get(c)
        parts.append(f"{c} {label} -> {g if g else 'missing'}")
    return "; ".join(parts) + "; blank -> missing"


def _source_codes_text() -> str:
    return "; ".join(f"{c} {codes.SOURCE_OF_REFERRAL_LABELS.get(c, '?')} -> {cat}"
                     for c, cat in codes.SOURCE_CODE_TO_CATEGORY.items())


def _gender_codes_text() -> str:
    labels = {"1": "male", "2": "female", "9": "indeterminate", "X": "not known"}
    return "; ".join(f"{c} {labels.get(c, '')} -> {g if g else 'excluded (gender not known)'}"
                     for c, g in codes.GENDER_CODE_TO_LABEL.items())


def data_dictionary() -> pd.DataFrame:
    """One row per raw-extract field, truth-file field and analysis-frame variable (built from
    helpers.codes and helpers.study, so it cannot drift from the code)."""
    period = f"{STUDY_START:%Y-%m-%d} to {STUDY_END:%Y-%m-%d}"
    raw_rows = [
        ("PathwayID", "string", "any non-blank identifier, unique per referral",
         codes.RAW_COLUMNS["PathwayID"], _SRC_FIELD),
        ("ReferralRequestReceivedDate", "date", f"YYYY-MM-DD (a time part or dd/mm/yyyy is normalised); study period {period}",
         codes.RAW_COLUMNS["ReferralRequestReceivedDate"], _SRC_FIELD),
        ("Age_ReferralRequest_ReceivedDate", "integer", f"whole years; valid {AGE_MIN_VALID}-{AGE_MAX_VALID}; "
         f"study population {AGE_MIN_STUDY}+", codes.RAW_COLUMNS["Age_ReferralRequest_ReceivedDate"], _SRC_FIELD),
        ("Gender", "code", _gender_codes_text(), codes.RAW_COLUMNS["Gender"],
         f"{_SRC_FIELD}; codes: {_SRC_DD} (person stated gender code)"),
        ("Validated_EthnicCategory", "code", _ethnic_codes_text(), codes.RAW_COLUMNS["Validated_EthnicCategory"],
         f"{_SRC_FIELD}; codes: {_SRC_DD} (ethnic category, 2001 census 16+1)"),
        ("SourceOfReferralIAPT", "code", _source_codes_text(),
         codes.RAW_COLUMNS["SourceOfReferralIAPT"] + " (SourceOfReferralMH in later dataset versions); "
         "grouping into GP/Self/Community/Other assumed apart from A1 and B1",
         f"{_SRC_FIELD}; codes: {_SRC_DD} (IAPT source of referral)"),
        ("Borough", "text", "; ".join(study.BOROUGHS), codes.RAW_COLUMNS["Borough"], _SRC_LOCAL),
        ("Assessment_FirstDate", "date", "YYYY-MM-DD (or a normalised variant) or blank; not before the referral date",
         codes.RAW_COLUMNS["Assessment_FirstDate"], _SRC_FIELD),
        ("TherapySession_FirstDate", "date",
         "YYYY-MM-DD (or a normalised variant) or blank; only if assessed; not before the assessment",
         codes.RAW_COLUMNS["TherapySession_FirstDate"], _SRC_FIELD),
    ]
    assert [r[0] for r in raw_rows] == REQUIRED_COLUMNS
    truth_rows = [
        ("PathwayID", "string", "as in the raw extract", "Referral identifier linking to the raw extract", _SRC_SYN),
        ("true_ethnic_group", "category", "; ".join(study.GROUPS),
         "The referral's true analysis ethnic group, known for every synthetic referral", _SRC_SYN),
        ("true_EthnicCategory", "code", "; ".join(c for c in codes.ETHNIC_CATEGORY_LABELS
                                                  if c not in codes.MISSING_ETHNIC_CODES),
         "The true NHS ethnic category code (never missing)", _SRC_SYN),
        ("ethnicity_missing", "integer 0/1", "1 = missing in the extract; 0 = recorded",
         "1 if Validated_EthnicCategory in the raw extract is Z, 99 or blank", _SRC_SYN),
    ]
    analysis_rows = [
        ("referral_id", "string", "", "Referral identifier; from PathwayID", _SRC_DERIVED),
        ("referral_date", "datetime64", period, "From ReferralRequestReceivedDate", _SRC_DERIVED),
        ("year", "category (int)", "; ".join(map(str, study.YEARS)), "Calendar year of the referral date",
         _SRC_DERIVED),
        ("age", "integer", f"{AGE_MIN_STUDY}-{AGE_MAX_VALID}", "From Age_ReferralRequest_ReceivedDate "
         f"(rows under {AGE_MIN_STUDY} excluded)", _SRC_DERIVED),
        ("age_band", "category", "; ".join(study.AGE_BANDS),
         "Age banded at " + ", ".join(map(str, study.AGE_BREAKS)) + " (banding assumed)", _SRC_DERIVED),
        ("gender", "category", "; ".join(study.GENDERS),
         "From Gender: 2 Female, 1 Male; 9 and X excluded as gender not known", _SRC_DERIVED),
        ("ethnic_code", "category", "; ".join(repr(c) if c == "" else c for c in ETHNIC_CODES),
         "Validated_EthnicCategory as recorded ('' = blank); kept to tell Z from 99 from blank", _SRC_DERIVED),
        ("ethnicity", "category", "; ".join(study.GROUPS) + "; NaN = missing",
         "From Validated_EthnicCategory via helpers.codes.ETHNIC_CODE_TO_GROUP (Chinese R -> "
         f"{codes.CHINESE_GROUP}, assumed); Z, 99 and blank kept as NaN", _SRC_DERIVED),
        ("borough", "category", "; ".join(study.BOROUGHS), "From Borough", _SRC_DERIVED),
        ("referral_source", "category", "; ".join(study.SOURCES),
         "From SourceOfReferralIAPT via helpers.codes.SOURCE_CODE_TO_CATEGORY (assumed apart from A1, B1)",
         _SRC_DERIVED),
        ("assessed", "integer 0/1", "1 = assessed; 0 = not", "1 if Assessment_FirstDate is not blank "
         "(among all referrals analysed)", _SRC_DERIVED),
        ("treated", "float 1.0/0.0/NaN", "1 = treated; 0 = assessed not treated; NaN = not assessed",
         "1 if TherapySession_FirstDate is not blank, among the assessed", _SRC_DERIVED),
    ]
    assert [r[0] for r in analysis_rows] == ANALYSIS_COLUMNS
    norm_rows = [(n.code, "normalisation", n.maps_to, f"{n.reason} (fields: {', '.join(n.fields)})",
                  "helpers.extract.NORMALISATIONS") for n in NORMALISATIONS]
    norm_rows += [(alias, "field name", f"read as {canonical}", "field name of a later dataset version, recognised "
                   "by default (any other name: a YAML column mapping)", _SRC_FIELD)
                  for alias, canonical in extract.DEFAULT_ALIASES.items()]
    rows = ([("raw extract", *r) for r in raw_rows] + [("truth file", *r) for r in truth_rows]
            + [("analysis frame", *r) for r in analysis_rows] + [("normalisation", *r) for r in norm_rows])
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def data_dictionary_csv() -> str:
    """The exact text of data/synthetic/data_dictionary.csv."""
    return data_dictionary().to_csv(index=False, lineterminator="\n")


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def data_dictionary_markdown() -> str:
    """The exact text of docs/data_dictionary.md (generated: edit this function, not the file)."""
    dd = data_dictionary()
    out = [
        "# Data dictionary",
        "",
        "<!-- Generated by `python -m helpers.prepare` from helpers/codes.py, helpers/study.py and "
        "helpers/prepare.py. Do not edit by hand: tests/test_prepare.py checks that it is up to date. -->",
        "",
        "Three tables: the **raw extract** (one row per referral, NHS-coded, the same schema for the synthetic "
        "cohort and a real IAPT extract), the **truth file** (synthetic cohort only; never read by "
        "`helpers.prepare`) and the **analysis frame** made by `helpers.prepare.prepare`. "
        "The same content is in `data/synthetic/data_dictionary.csv`.",
        "",
        "Sources: *NHS Data Dictionary* (code lists), *NHS England IAPT analysis code field name* (field names "
        "as in NHS England's IAPT analysis code), *local field* (not in the national dataset), "
        "*synthetic only* (exists for the synthetic cohort only).",
        "",
    ]
    for table, title in [("raw extract", "Raw extract (CSV, every field read as a string)"),
                         ("truth file", "Truth file (synthetic cohort only)"),
                         ("analysis frame", "Analysis frame (`Prepared.frame`)")]:
        out += [f"## {title}", "", "| field | type | codes / format | meaning | source |", "|---|---|---|---|---|"]
        for _, r in dd[dd["table"] == table].iterrows():
            codes_fmt = r["codes_format"] if len(r["codes_format"]) < 120 else "see code list below"
            out.append(f"| `{r['field']}` | {r['type']} | {_md_escape(codes_fmt)} | {_md_escape(r['meaning'])} "
                       f"| {r['source']} |")
        out.append("")
    out += ["## Code lists", "", "### Ethnic category (`Validated_EthnicCategory`)", "",
            "| code | NHS label | analysis group |", "|---|---|---|"]
    for c, label in codes.ETHNIC_CATEGORY_LABELS.items():
        g = codes.ETHNIC_CODE_TO_GROUP.get(c)
        out.append(f"| {c} | {label} | {g if g else 'missing (kept, NaN)'} |")
    out += ["| (blank) | | missing (kept, NaN) |", "",
            f"Chinese (R) is grouped with **{codes.CHINESE_GROUP}** (*assumed*: the paper's choice is not known; "
            "one line in `helpers/codes.py`). After the normalisations below (so `a`, ` A` and `A1` read as A), any "
            "other value (for example `NA`, `X`) is an unknown code: "
            "reported and the row excluded, never treated as missing.", "",
            "### Source of referral (`SourceOfReferralIAPT`)", "",
            "| code | NHS label | analysis category |", "|---|---|---|"]
    for c, cat in codes.SOURCE_CODE_TO_CATEGORY.items():
        out.append(f"| {c} | {codes.SOURCE_OF_REFERRAL_LABELS.get(c, '')} | {cat} |")
    out += ["", "A1 (GP) and B1 (self) follow NHS England; the rest of the grouping is *assumed*.", "",
            "### Gender (`Gender`)", "", "| code | analysis |", "|---|---|"]
    for c, g in codes.GENDER_CODE_TO_LABEL.items():
        out.append(f"| {c} | {g if g else 'excluded: gender not known'} |")
    out += ["", "## Normalisations (`helpers.extract.NORMALISATIONS`)", "",
            "Real extracts write the same value in other ways. The extract engine reads these variants as the "
            "study's form before any check, and counts every row each one touches in the flow table (`step` "
            "`normalised`), so nothing is guessed silently. A value matching none of them is checked as it is "
            "(and excluded with its reason if invalid). Blank means empty, spaces only, or null (None, NaN in a "
            "typed column, NaT, SQL NULL).", "",
            "| normalisation | fields | what is read | read as |", "|---|---|---|---|"]
    for n in NORMALISATIONS:
        out.append(f"| `{n.code}` | {', '.join(n.fields) if len(n.fields) < 5 else 'every field'} | "
                   f"{_md_escape(n.reason)} | {_md_escape(n.maps_to)} |")
    out += ["", "Dates: ISO (YYYY-MM-DD) first; then YYYY-MM-DD with a time part; then d/m/yyyy, read as UK "
            "day-first (an ambiguous one, both parts 12 or less, is counted separately as such); anything "
            "else is not a valid date (a named exclusion). Field names: "
            + "; ".join(f"`{a}` is read as `{c}`" for a, c in extract.DEFAULT_ALIASES.items())
            + "; a field whose name differs only in case or surrounding spaces is matched too; any other local "
            "name through a YAML column mapping (`python -m helpers.extract PATH --columns MAPPING.yaml`, "
            "`{study field: your column}`). Each rename is a flow row (`column_renamed`).", ""]
    out += ["", "## Checks and exclusions (`helpers.prepare.CHECKS`, in order)", "",
            "Every check is run on the raw strings before any transformation. The validation report lists, per "
            "check, the number of rows failing it, up to five example **line numbers in the CSV file** (line 1 "
            "is the header, so the first data row is line 2: line = row position + 2) and the offending values. "
            "A row failing several checks appears under each in the report but is counted **once, under the "
            "first failed check in this order**, in the flow table, so that rows in extract = rows analysed + "
            "the sum of the exclusions. Date-order checks apply only where both dates are valid.", "",
            "For a repeated `PathwayID` the first occurrence is kept (if it passes the other checks) and every "
            "later one is excluded. Checks see the values after the normalisations below; the report shows the raw "
            "values.", "",
            "| order | check | field | reason | severity | action |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(CHECKS, 1):
        out.append(f"| {i} | `{c.code}` | {', '.join(c.fields)} | {_md_escape(c.reason)} | {c.severity} "
                   f"| {c.action} |")
    out += ["", "Severity *invalid* is a data error (`prepare(raw, strict=True)` raises on it); *out of scope* "
            "is a valid value outside the study population (always excluded and counted); *missing* is kept "
            "with `ethnicity` NaN.", ""]
    return "\n".join(out)


def write_data_dictionary(csv_path=DICTIONARY_CSV, md_path=DICTIONARY_MD) -> None:
    """Write data/synthetic/data_dictionary.csv and docs/data_dictionary.md from :func:`data_dictionary`."""
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    Path(csv_path).write_text(data_dictionary_csv(), encoding="utf-8")
    Path(md_path).parent.mkdir(parents=True, exist_ok=True)
    Path(md_path).write_text(data_dictionary_markdown(), encoding="utf-8")


if __name__ == "__main__":  # python -m helpers.prepare  -> rewrite the data dictionary files
    write_data_dictionary()
    print(f"wrote {DICTIONARY_CSV} and {DICTIONARY_MD}")


# --- Code tables for display ------------------------------------------------------------------------------
def ethnic_code_table() -> pd.DataFrame:
    """NHS ethnic category codes with their label, the study's group (or ``missing``) and the basis of the
    grouping (``paper's eight groups`` or *assumed*), one row per code in :data:`ETHNIC_CODES`."""
    rows = []
    for code in ETHNIC_CODES:
        group = codes.ETHNIC_CODE_TO_GROUP[code]
        label = codes.ETHNIC_CATEGORY_LABELS.get(code, "Blank (nothing recorded)")
        if group is None:
            basis = "missing: kept, ethnicity NaN"
        elif code == "R":
            basis = "assumed (codes.CHINESE_GROUP)"
        else:
            basis = "paper's eight groups"
        rows.append({"code": code if code else "(blank)", "label": label, "group": group or "missing",
                     "basis": basis})
    return pd.DataFrame(rows)


def source_code_table() -> pd.DataFrame:
    """IAPT source-of-referral codes with their label, the study's category and the basis of the mapping:
    A1 (GP) and B1 (self) as NHS England counts them, every other code *assumed*."""
    rows = []
    for code, category in codes.SOURCE_CODE_TO_CATEGORY.items():
        basis = "NHS England" if code in ("A1", "B1") else "assumed"
        rows.append({"code": code, "label": codes.SOURCE_OF_REFERRAL_LABELS.get(code, ""), "category": category,
                     "basis": basis})
    out = pd.DataFrame(rows)
    out["category"] = pd.Categorical(out["category"], categories=study.SOURCES)
    return out.sort_values(["category", "code"], kind="stable").reset_index(drop=True)
