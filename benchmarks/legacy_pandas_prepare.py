# FROZEN BASELINE for benchmarks only: helpers/prepare.py as it was before the extract engine (pandas on
# strings). Kept so that benchmarks/bench_extract.py can measure the engine against the old pandas route on the
# same file in the same run. Not imported by the project; do not change it. Only the route the benchmark runs is
# kept (read_extract, validate_extract, prepare and the Prepared it returns): its data dictionary, which the
# benchmark never ran, was a copy of live code and is gone (it lives in helpers.datadict).
"""Raw NHS-coded IAPT referrals -> the analysis frame, with every excluded row counted.

Three steps, each usable on its own:

``read_extract(path)``
    reads the CSV extract with every field as a string (a blank stays ``""``, ``"99"`` stays ``"99"``,
    ``"NA"`` stays ``"NA"``: nothing becomes NaN behind your back).
``validate_extract(raw)``
    checks the raw strings *before* any transformation and returns a :class:`ValidationReport`: one row per
    check with the number of rows failing it, up to five example line numbers and the offending values.
``prepare(raw)``
    maps the codes to the analysis variables with the tables in :mod:`helpers.codes` and the levels in
    :mod:`helpers.study`, drops the rows that fail a check and returns a :class:`Prepared` with the
    analysis ``frame``, the ``flow`` table (every input row accounted for) and the ``report``.

Conventions (also in docs/data_dictionary.md, generated from this module):

* **Line numbers** are line numbers in the CSV file: the header is line 1, so the first data row is line 2
  (``line = row position + 2``). For a DataFrame not read from a file the same rule applies to its row
  positions. Fields with embedded line breaks would shift the numbering; IAPT extracts have none.
* **Duplicate PathwayID**: the first occurrence is kept (if it passes the other checks), every later
  occurrence is flagged and excluded; the example values show the repeated identifier.
* **Order of exclusion reasons**: the order of :data:`CHECKS`. A row with several problems is reported under
  every check it fails in the validation report, but counted once, under its first reason, in the flow.
  Data errors come first, then the study-population criteria (age under 18, gender not known).
* **Values are matched exactly** as they appear in the extract: ``" A"`` or ``"a"`` is an unknown ethnic
  code, not White British. Missing ethnicity means exactly one of the codes in
  ``codes.MISSING_ETHNIC_CODES`` (``"Z"``, ``"99"``, blank); such rows are kept with ``ethnicity`` NaN.

Everything is vectorised: each coded column is factorised once, the few distinct values are checked and
mapped, and the answers are broadcast back to the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import codes, study

# --- Schema and constants --------------------------------------------------------------------------------
REQUIRED_COLUMNS: list[str] = list(codes.RAW_COLUMNS)
FIRST_DATA_LINE = 2  # the header is line 1 of the CSV file
N_EXAMPLES = 5

# Plausibility limits for a recorded age (a data check, not a design choice); the study population
# starts at the first age break (18).
AGE_MIN_VALID = 16
AGE_MAX_VALID = 110
AGE_MIN_STUDY = study.AGE_BREAKS[0]

STUDY_START = pd.Timestamp(f"{min(study.YEARS)}-01-01")
STUDY_END = pd.Timestamp(f"{max(study.YEARS)}-12-31")

_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
_INT_PATTERN = re.compile(r"-?\d+")

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

ETHNIC_CODES: list[str] = list(codes.ETHNIC_CODE_TO_GROUP)  # categories of `ethnic_code` ("" = blank)


class ExtractError(ValueError):
    """The extract cannot be used as it is: missing columns, not a CSV, or (strict mode) invalid rows."""

    def __init__(self, message: str, report: "ValidationReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Check:
    """One row-level check. ``severity``: ``invalid`` (a data error; strict mode raises),
    ``out of scope`` (a valid value outside the study population) or ``missing`` (kept as missing)."""

    code: str
    fields: tuple[str, ...]
    reason: str
    severity: str
    action: str


_EXCL = "excluded"
CHECKS: list[Check] = [
    Check("pathway_id_blank", ("PathwayID",), "PathwayID blank", "invalid", _EXCL),
    Check("pathway_id_duplicate", ("PathwayID",), "PathwayID repeats an earlier line", "invalid", _EXCL),
    Check("referral_date_invalid", ("ReferralRequestReceivedDate",),
          "referral date not a valid YYYY-MM-DD date", "invalid", _EXCL),
    Check("referral_date_out_of_period", ("ReferralRequestReceivedDate",),
          f"referral date outside {STUDY_START:%Y-%m-%d} to {STUDY_END:%Y-%m-%d}", "invalid", _EXCL),
    Check("age_not_integer", ("Age_ReferralRequest_ReceivedDate",), "age not a whole number", "invalid", _EXCL),
    Check("age_out_of_range", ("Age_ReferralRequest_ReceivedDate",),
          f"age outside {AGE_MIN_VALID}-{AGE_MAX_VALID}", "invalid", _EXCL),
    Check("gender_unknown_code", ("Gender",), "unknown gender code", "invalid", _EXCL),
    Check("ethnic_unknown_code", ("Validated_EthnicCategory",), "unknown ethnic category code", "invalid", _EXCL),
    Check("source_unknown_code", ("SourceOfReferralIAPT",), "unknown source-of-referral code", "invalid", _EXCL),
    Check("borough_unknown", ("Borough",), "unknown borough", "invalid", _EXCL),
    Check("assessment_date_invalid", ("Assessment_FirstDate",),
          "assessment date not blank and not a valid YYYY-MM-DD date", "invalid", _EXCL),
    Check("assessment_before_referral", ("Assessment_FirstDate", "ReferralRequestReceivedDate"),
          "assessment before referral", "invalid", _EXCL),
    Check("treatment_date_invalid", ("TherapySession_FirstDate",),
          "treatment date not blank and not a valid YYYY-MM-DD date", "invalid", _EXCL),
    Check("treatment_without_assessment", ("TherapySession_FirstDate", "Assessment_FirstDate"),
          "treatment without assessment", "invalid", _EXCL),
    Check("treatment_before_assessment", ("TherapySession_FirstDate", "Assessment_FirstDate"),
          "treatment before assessment", "invalid", _EXCL),
    Check("age_under_18", ("Age_ReferralRequest_ReceivedDate",), f"age under {AGE_MIN_STUDY}",
          "out of scope", _EXCL),
    Check("gender_not_known", ("Gender",), "gender not known",
          "out of scope", _EXCL),
    Check("ethnicity_missing", ("Validated_EthnicCategory",),
          "ethnicity missing (" + ", ".join(repr(c) for c in codes.MISSING_ETHNIC_CODES) + ")",
          "missing", "kept as missing"),
]
CHECK_BY_CODE: dict[str, Check] = {c.code: c for c in CHECKS}
EXCLUSION_CHECKS: list[Check] = [c for c in CHECKS if c.action == _EXCL]

REPORT_COLUMNS = ["check", "field", "reason", "severity", "n_rows", "example_lines", "example_values", "action"]
FLOW_COLUMNS = ["step", "check", "reason", "n_rows", "n_remaining"]


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


def check_required_columns(raw: pd.DataFrame) -> None:
    """Fail fast with :class:`ExtractError` naming the missing columns, and require string values."""
    if not isinstance(raw, pd.DataFrame):
        raise ExtractError(f"Expected a pandas DataFrame of raw extract rows, got {type(raw).__name__}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        found = [str(c) for c in raw.columns]
        hint = ""
        if len(found) == 1 and any(sep in found[0] for sep in (";", "\t", "|")):
            hint = " The header has one column containing ';', tab or '|': is the file comma-separated?"
        raise ExtractError(
            f"The extract lacks {len(missing)} required column(s): {', '.join(missing)}. "
            f"Expected columns (NHS England IAPT analysis code names): {', '.join(REQUIRED_COLUMNS)}. "
            f"Found: {', '.join(found) if found else '(none)'}.{hint}"
        )
    for col in REQUIRED_COLUMNS:
        s = raw[col]
        if isinstance(s, pd.DataFrame):
            raise ExtractError(f"Column {col!r} appears more than once in the extract.")
        if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
            raise ExtractError(f"Column {col!r} has dtype {s.dtype}; the raw extract must be all strings. "
                               "Read it with helpers.prepare.read_extract (dtype=str, keep_default_na=False).")
    # NaN/None and non-string values are caught in _factorize, which sees every required column once.


# --- Checking -------------------------------------------------------------------------------------------
def _factorize(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Integer codes per row and the distinct values (as a Series of str). Raises :class:`ExtractError` on
    NaN/None or non-string values: the raw extract must be all strings, blanks as ''."""
    fc, uniques = pd.factorize(s.to_numpy(dtype=object))
    n_na = int((fc < 0).sum())
    kind = pd.api.types.infer_dtype(uniques, skipna=False) if len(uniques) else "string"
    if n_na or kind != "string":
        what = f"{n_na} NaN/None value(s)" if n_na else f"non-string values ({kind})"
        raise ExtractError(f"Column {s.name!r} holds {what}; the raw extract must be all strings with blanks as "
                           "''. Read it with helpers.prepare.read_extract (dtype=str, keep_default_na=False) so "
                           "that 'NA' or '99' are not lost.")
    return fc, pd.Series(np.asarray(uniques, dtype=object), dtype=object)


def _parse_dates(uniques: pd.Series) -> np.ndarray:
    """datetime64 per distinct value; NaT for blank or anything that is not a real YYYY-MM-DD date."""
    ok = uniques.str.fullmatch(_DATE_PATTERN).fillna(False).astype(bool)
    parsed = pd.to_datetime(uniques.where(ok), format="%Y-%m-%d", errors="coerce")
    return parsed.to_numpy(dtype="datetime64[ns]")


def _lookup_codes(uniques: pd.Series, mapping: dict, categories: list) -> np.ndarray:
    """Category code (position in ``categories``) per distinct value; -1 when unmapped or mapped to None."""
    pos = {c: i for i, c in enumerate(categories)}
    return np.array([pos.get(mapping.get(u), -1) if mapping.get(u) is not None else -1 for u in uniques],
                    dtype=np.int16)


@dataclass
class _Checked:
    """Per-row results of the checks and the parsed values (internal, shared by validate and prepare)."""

    masks: dict[str, np.ndarray]
    first: np.ndarray  # index into EXCLUSION_CHECKS of the first failed exclusion check; -1 if kept
    parsed: dict[str, np.ndarray]


def _run_checks(raw: pd.DataFrame) -> _Checked:
    check_required_columns(raw)
    n = len(raw)
    masks: dict[str, np.ndarray] = {}
    parsed: dict[str, np.ndarray] = {}

    # PathwayID
    fc, u = _factorize(raw["PathwayID"])
    blank_id = (u == "").to_numpy()[fc] if n else np.zeros(0, dtype=bool)
    masks["pathway_id_blank"] = blank_id
    masks["pathway_id_duplicate"] = pd.Series(fc).duplicated(keep="first").to_numpy() & ~blank_id

    # Dates
    dates = {}
    blank = {}
    for col in ("ReferralRequestReceivedDate", "Assessment_FirstDate", "TherapySession_FirstDate"):
        fc, u = _factorize(raw[col])
        dates[col] = _parse_dates(u)[fc]
        blank[col] = (u == "").to_numpy()[fc]
    ref, ass, thr = (dates[c] for c in ("ReferralRequestReceivedDate", "Assessment_FirstDate",
                                        "TherapySession_FirstDate"))
    ref_ok = ~np.isnat(ref)
    masks["referral_date_invalid"] = ~ref_ok
    masks["referral_date_out_of_period"] = ref_ok & ((ref < STUDY_START.to_datetime64())
                                                     | (ref > STUDY_END.to_datetime64()))
    ass_ok, thr_ok = ~np.isnat(ass), ~np.isnat(thr)
    ass_blank, thr_blank = blank["Assessment_FirstDate"], blank["TherapySession_FirstDate"]
    masks["assessment_date_invalid"] = ~ass_blank & ~ass_ok
    masks["assessment_before_referral"] = ass_ok & ref_ok & (ass < ref)
    masks["treatment_date_invalid"] = ~thr_blank & ~thr_ok
    masks["treatment_without_assessment"] = ~thr_blank & ass_blank
    masks["treatment_before_assessment"] = thr_ok & ass_ok & (thr < ass)
    parsed["referral_date"] = ref
    parsed["assessed"] = ~ass_blank
    parsed["treated"] = ~thr_blank

    # Age
    fc, u = _factorize(raw["Age_ReferralRequest_ReceivedDate"])
    is_int = np.array([bool(_INT_PATTERN.fullmatch(v)) for v in u], dtype=bool)
    age_u = np.array([int(v) if ok and len(v) <= 6 else -(10**6) for v, ok in zip(u, is_int)], dtype=np.int64)
    in_range_u = is_int & (age_u >= AGE_MIN_VALID) & (age_u <= AGE_MAX_VALID)
    masks["age_not_integer"] = ~is_int[fc]
    masks["age_out_of_range"] = (is_int & ~in_range_u)[fc]
    masks["age_under_18"] = (in_range_u & (age_u < AGE_MIN_STUDY))[fc]
    parsed["age"] = age_u[fc]

    # Gender
    fc, u = _factorize(raw["Gender"])
    known_u = u.isin(list(codes.GENDER_CODE_TO_LABEL)).to_numpy()
    masks["gender_unknown_code"] = ~known_u[fc]
    gcode_u = _lookup_codes(u, codes.GENDER_CODE_TO_LABEL, study.GENDERS)
    masks["gender_not_known"] = (known_u & (gcode_u < 0))[fc]
    parsed["gender"] = gcode_u[fc]

    # Ethnicity
    fc, u = _factorize(raw["Validated_EthnicCategory"])
    known_u = u.isin(ETHNIC_CODES).to_numpy()
    masks["ethnic_unknown_code"] = ~known_u[fc]
    masks["ethnicity_missing"] = u.isin(list(codes.MISSING_ETHNIC_CODES)).to_numpy()[fc]
    parsed["ethnicity"] = _lookup_codes(u, codes.ETHNIC_CODE_TO_GROUP, study.GROUPS)[fc]
    parsed["ethnic_code"] = _lookup_codes(u, {c: c for c in ETHNIC_CODES}, ETHNIC_CODES)[fc]

    # Source of referral
    fc, u = _factorize(raw["SourceOfReferralIAPT"])
    scode_u = _lookup_codes(u, codes.SOURCE_CODE_TO_CATEGORY, study.SOURCES)
    masks["source_unknown_code"] = (scode_u < 0)[fc]
    parsed["referral_source"] = scode_u[fc]

    # Borough
    fc, u = _factorize(raw["Borough"])
    bcode_u = _lookup_codes(u, {b: b for b in study.BOROUGHS}, study.BOROUGHS)
    masks["borough_unknown"] = (bcode_u < 0)[fc]
    parsed["borough"] = bcode_u[fc]

    # First exclusion reason per row (order of CHECKS).
    first = np.full(n, -1, dtype=np.int16)
    for i in range(len(EXCLUSION_CHECKS) - 1, -1, -1):
        first[masks[EXCLUSION_CHECKS[i].code]] = i
    return _Checked(masks=masks, first=first, parsed=parsed)


def _example_value(raw: pd.DataFrame, check: Check, pos: int) -> str:
    if check.code == "pathway_id_duplicate":
        pid = raw["PathwayID"].iat[pos]
        earlier = np.flatnonzero((raw["PathwayID"].iloc[:pos] == pid).to_numpy())
        return f"{pid} (first on line {earlier[0] + FIRST_DATA_LINE})" if len(earlier) else pid
    if len(check.fields) == 1:
        return raw[check.fields[0]].iat[pos]
    return "; ".join(f"{f}={raw[f].iat[pos]!r}" for f in check.fields)


@dataclass
class ValidationReport:
    """Result of :func:`validate_extract`: one row per check in ``table`` (all checks, also those with no
    failing rows), plus ``n_input`` rows checked and ``row_reason``: per input row (by position) the first
    exclusion reason, NaN for rows kept."""

    table: pd.DataFrame
    n_input: int
    row_reason: pd.Series
    source: str | None = None

    @property
    def errors(self) -> pd.DataFrame:
        """Checks with severity 'invalid' that some rows fail (data errors; strict mode raises on these)."""
        t = self.table
        return t[(t["severity"] == "invalid") & (t["n_rows"] > 0)]

    @property
    def ok(self) -> bool:
        """True when no row has a data error (out-of-scope rows and missing ethnicity are not errors)."""
        return self.errors.empty

    @property
    def n_excluded(self) -> int:
        return int(self.row_reason.notna().sum())

    @property
    def n_invalid(self) -> int:
        """Rows excluded for a data error (first reason of severity 'invalid')."""
        invalid = [c.reason for c in EXCLUSION_CHECKS if c.severity == "invalid"]
        return int(self.row_reason.isin(invalid).sum())

    def __getitem__(self, code: str) -> pd.Series:
        """The report row of one check, by code (e.g. ``report["ethnic_unknown_code"]``)."""
        return self.table.set_index("check").loc[code]

    def __str__(self) -> str:
        src = f" from {self.source}" if self.source else ""
        last = self.n_input + FIRST_DATA_LINE - 1
        lines = [f"Extract validation: {self.n_input:,} rows{src} "
                 f"(CSV lines {FIRST_DATA_LINE}-{last:,}; line 1 is the header)."]
        hits = self.table[self.table["n_rows"] > 0]
        if hits.empty:
            lines.append(f"All {len(self.table)} checks passed: no row excluded, no missing ethnicity.")
        else:
            lines.append("Rows failing each check (a row can fail several):")
            w = max(len(r) for r in hits["reason"])
            for _, r in hits.iterrows():
                ex_lines = ", ".join(map(str, r["example_lines"]))
                more = ", ..." if r["n_rows"] > len(r["example_lines"]) else ""
                vals = ", ".join(repr(v) for v in r["example_values"])
                lines.append(f"  {r['reason']:<{w}}  {r['n_rows']:>10,}  {r['action']:<15}  "
                             f"lines {ex_lines}{more}  values {vals}")
        lines.append(f"{self.n_excluded:,} row(s) excluded (each counted once, under its first reason; "
                     f"{self.n_invalid:,} for data errors), {self.n_input - self.n_excluded:,} kept.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def _report(raw: pd.DataFrame, checked: _Checked) -> ValidationReport:
    rows = []
    for c in CHECKS:
        mask = checked.masks[c.code]
        pos = np.flatnonzero(mask)[:N_EXAMPLES]
        rows.append({
            "check": c.code,
            "field": ", ".join(c.fields),
            "reason": c.reason,
            "severity": c.severity,
            "n_rows": int(mask.sum()),
            "example_lines": tuple(int(p) + FIRST_DATA_LINE for p in pos),
            "example_values": tuple(_example_value(raw, c, int(p)) for p in pos),
            "action": c.action,
        })
    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    reasons = [c.reason for c in EXCLUSION_CHECKS]
    row_reason = pd.Series(pd.Categorical.from_codes(checked.first, categories=reasons), name="exclusion_reason")
    return ValidationReport(table=table, n_input=len(raw), row_reason=row_reason, source=raw.attrs.get("source"))


def validate_extract(raw: pd.DataFrame) -> ValidationReport:
    """Check a raw extract (all strings) before any transformation.

    Raises :class:`ExtractError` at once if a required column is missing (the message lists the missing and
    the expected columns) or if values are not strings. Otherwise returns a :class:`ValidationReport` with
    one row per check in :data:`CHECKS`: ``check`` (reason code), ``field``, ``reason``, ``severity``,
    ``n_rows`` failing, ``example_lines`` (up to 5 CSV line numbers, header = line 1), ``example_values``
    (the offending raw values) and ``action`` (``excluded`` or ``kept as missing``).
    """
    return _report(raw, _run_checks(raw))


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
    return pd.Categorical.from_codes(codes_.astype(np.int16, copy=False), categories=categories)


def prepare(raw: pd.DataFrame, strict: bool = False) -> Prepared:
    """Validate ``raw`` and map it to the analysis frame (columns :data:`ANALYSIS_COLUMNS`).

    Rows failing any exclusion check are dropped and counted in ``flow`` under their first reason (order of
    :data:`CHECKS`); with ``strict=True`` any data error (severity ``invalid``) raises :class:`ExtractError`
    carrying the report instead. Out-of-scope rows (age under 18, gender not known) are always excluded and
    counted, never an error. Missing ethnicity (Z, 99, blank) is kept as NaN.
    """
    checked = _run_checks(raw)
    report = _report(raw, checked)
    if strict and not report.ok:
        raise ExtractError("The extract has invalid rows (strict mode):\n" + str(report), report=report)

    keep = checked.first < 0
    p = {k: v[keep] for k, v in checked.parsed.items()}
    ref = p["referral_date"]
    years = ref.astype("datetime64[Y]").astype(np.int64) + 1970
    age = p["age"]
    band = np.searchsorted(np.asarray(study.AGE_BREAKS), age, side="right") - 1
    assessed = p["assessed"].astype(np.int64)
    treated = np.where(p["assessed"], p["treated"].astype(np.float64), np.nan)
    frame = pd.DataFrame({
        "referral_id": raw["PathwayID"].to_numpy(dtype=object)[keep],
        "referral_date": ref,
        "year": _categorical(years - min(study.YEARS), study.YEARS),
        "age": age,
        "age_band": _categorical(band, study.AGE_BANDS),
        "gender": _categorical(p["gender"], study.GENDERS),
        "ethnic_code": _categorical(p["ethnic_code"], ETHNIC_CODES),
        "ethnicity": _categorical(p["ethnicity"], study.GROUPS),
        "borough": _categorical(p["borough"], study.BOROUGHS),
        "referral_source": _categorical(p["referral_source"], study.SOURCES),
        "assessed": assessed,
        "treated": treated,
    }, columns=ANALYSIS_COLUMNS)
    flow = _flow(report, checked, frame)
    return Prepared(frame=frame, flow=flow, report=report)


def _flow(report: ValidationReport, checked: _Checked, frame: pd.DataFrame) -> pd.DataFrame:
    n = report.n_input
    counts = np.bincount(checked.first[checked.first >= 0], minlength=len(EXCLUSION_CHECKS))
    rows = [("extract", "", "referrals in extract", n, n)]
    remaining = n
    for c, k in zip(EXCLUSION_CHECKS, counts):
        remaining -= int(k)
        rows.append(("excluded", c.code, c.reason, int(k), remaining))
    n_an = len(frame)
    if remaining != n_an:  # cannot happen; guards the accounting
        raise AssertionError(f"flow does not add up: {remaining} remaining vs {n_an} analysed")
    n_missing = int(frame["ethnicity"].isna().sum())
    n_assessed = int(frame["assessed"].sum())
    rows += [
        ("analysed", "", "referrals analysed", n_an, n_an),
        ("within analysed", "ethnicity_recorded", "ethnicity recorded", n_an - n_missing, pd.NA),
        ("within analysed", "ethnicity_missing", CHECK_BY_CODE["ethnicity_missing"].reason, n_missing, pd.NA),
        ("within analysed", "assessed", "assessed", n_assessed, pd.NA),
        ("within analysed", "treated", "treated (among assessed)", int(np.nansum(frame["treated"])), pd.NA),
    ]
    flow = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    flow["n_rows"] = flow["n_rows"].astype(np.int64)
    flow["n_remaining"] = flow["n_remaining"].astype("Int64")
    return flow


def flow_text(flow: pd.DataFrame, show_zero: bool = False) -> str:
    """A readable rendering of the flow table for notebooks (exclusions with no rows hidden unless
    ``show_zero``)."""
    n_in = int(flow.loc[flow["step"] == "extract", "n_rows"].iloc[0])
    n_an = int(flow.loc[flow["step"] == "analysed", "n_rows"].iloc[0])
    within = flow[flow["step"] == "within analysed"].set_index("check")["n_rows"]
    excl = flow[flow["step"] == "excluded"]
    shown = excl if show_zero else excl[excl["n_rows"] > 0]
    w = max([len(r) for r in flow["reason"]] + [30]) + 4

    def pct(k, d):
        return f"({100 * k / d:5.1f}%)" if d else ""

    out = [f"{'Referrals in extract':<{w}}{n_in:>12,}"]
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
