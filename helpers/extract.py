"""The extract engine: read -> normalise -> check -> count, written once in SQL, run on DuckDB or Spark.

Why SQL: every model in the study depends on the data only through covariate-pattern counts, so the only step
whose cost grows with the number of referrals is reading, checking and counting. That step is one SQL
definition below (DuckDB dialect, readable by a Databricks analyst). DuckDB runs it embedded and out of core
on a laptop; on Spark the same text is transpiled by sqlglot to Spark SQL, so there are never two hand-kept
copies. Only *reading* differs per engine (a CSV reader, a Parquet reader, a registered data frame); from the
view ``src`` on, both engines run the same statements.

What comes out (:class:`ExtractResult`): the covariate-pattern counts (what every model needs and what may
leave a secure environment after disclosure checks), the flow table (every input row counted: excluded rows
by their first reason, every normalisation of a real-world variant by kind), the validation report (each
check with its count and first five line numbers) and, for small data only, the analysis rows.

Line numbers: the header is line 1, the first data row line 2 (``line = row position + 2``), over the rows in
file order (for a folder of Parquet files: files in name order). Both CSV readers skip blank lines, so on a
file with blank lines the numbers count data rows, not physical lines.

CLI: ``python -m helpers.extract PATH [--engine duckdb|spark] [--columns MAPPING.yaml] --out DIR`` writes
``pattern_counts.csv`` and ``flow.csv`` (nothing row-level).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import duckdb
import numpy as np
import pandas as pd
import sqlglot
import yaml

from helpers import codes, study

ENGINES = ("duckdb", "spark")

# --- Schema ---------------------------------------------------------------------------------------------
REQUIRED_COLUMNS: list[str] = list(codes.RAW_COLUMNS)
FIRST_DATA_LINE = 2  # the header is line 1 of the CSV file
N_EXAMPLES = 5

#: Field names of later dataset versions (IAPT v2.x / NHS Talking Therapies) recognised without a mapping.
DEFAULT_ALIASES: dict[str, str] = {
    "SourceOfReferralMH": "SourceOfReferralIAPT",
    "EthnicCategory": "Validated_EthnicCategory",
}

# Plausibility limits for a recorded age (a data check, not a design choice); the study population
# starts at the first age break (18).
AGE_MIN_VALID = 16
AGE_MAX_VALID = 110
AGE_MIN_STUDY = study.AGE_BREAKS[0]
STUDY_START = f"{min(study.YEARS)}-01-01"
STUDY_END = f"{max(study.YEARS)}-12-31"

ETHNIC_CODES: list[str] = list(codes.ETHNIC_CODE_TO_GROUP)  # categories of `ethnic_code` ("" = blank)
#: National ethnic category letters: a two-character local code is read by its first character.
_NATIONAL_LETTERS: list[str] = [c for c in codes.ETHNIC_CATEGORY_LABELS if len(c) == 1]

#: Gender as other NHS datasets write it -> the person stated gender code the study uses.
GENDER_VARIANTS: dict[str, str] = {
    "M": "1", "MALE": "1", "F": "2", "FEMALE": "2",
    "0": "X", "U": "X", "UNKNOWN": "X", "NOT KNOWN": "X", "Z": "X", "NOT STATED": "X",
    "I": "9", "INDETERMINATE": "9",
}


class ExtractError(ValueError):
    """The extract cannot be used as it is: missing columns, unreadable, or (strict mode) invalid rows."""

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


@dataclass(frozen=True)
class Normalisation:
    """One real-world variant the engine reads as the study's form; every row it touches is counted."""

    code: str
    fields: tuple[str, ...]
    reason: str
    maps_to: str


_EXCL = "excluded"
_DATES = ("ReferralRequestReceivedDate", "Assessment_FirstDate", "TherapySession_FirstDate")
CHECKS: list[Check] = [
    Check("pathway_id_blank", ("PathwayID",), "PathwayID blank", "invalid", _EXCL),
    Check("pathway_id_duplicate", ("PathwayID",), "PathwayID repeats an earlier line", "invalid", _EXCL),
    Check("referral_date_invalid", ("ReferralRequestReceivedDate",),
          "referral date not a valid date", "invalid", _EXCL),
    Check("referral_date_out_of_period", ("ReferralRequestReceivedDate",),
          f"referral date outside {STUDY_START} to {STUDY_END}", "invalid", _EXCL),
    Check("age_not_integer", ("Age_ReferralRequest_ReceivedDate",), "age not a whole number", "invalid", _EXCL),
    Check("age_out_of_range", ("Age_ReferralRequest_ReceivedDate",),
          f"age outside {AGE_MIN_VALID}-{AGE_MAX_VALID}", "invalid", _EXCL),
    Check("gender_unknown_code", ("Gender",), "unknown gender code", "invalid", _EXCL),
    Check("ethnic_unknown_code", ("Validated_EthnicCategory",), "unknown ethnic category code", "invalid", _EXCL),
    Check("source_unknown_code", ("SourceOfReferralIAPT",), "unknown source-of-referral code", "invalid", _EXCL),
    Check("borough_unknown", ("Borough",), "unknown borough", "invalid", _EXCL),
    Check("assessment_date_invalid", ("Assessment_FirstDate",),
          "assessment date not blank and not a valid date", "invalid", _EXCL),
    Check("assessment_before_referral", ("Assessment_FirstDate", "ReferralRequestReceivedDate"),
          "assessment before referral", "invalid", _EXCL),
    Check("treatment_date_invalid", ("TherapySession_FirstDate",),
          "treatment date not blank and not a valid date", "invalid", _EXCL),
    Check("treatment_without_assessment", ("TherapySession_FirstDate", "Assessment_FirstDate"),
          "treatment without assessment", "invalid", _EXCL),
    Check("treatment_before_assessment", ("TherapySession_FirstDate", "Assessment_FirstDate"),
          "treatment before assessment", "invalid", _EXCL),
    Check("age_under_18", ("Age_ReferralRequest_ReceivedDate",), f"age under {AGE_MIN_STUDY}",
          "out of scope", _EXCL),
    Check("gender_not_known", ("Gender",), "gender not known", "out of scope", _EXCL),
    Check("ethnicity_missing", ("Validated_EthnicCategory",),
          "ethnicity missing (" + ", ".join(repr(c) for c in codes.MISSING_ETHNIC_CODES) + ")",
          "missing", "kept as missing"),
]
CHECK_BY_CODE: dict[str, Check] = {c.code: c for c in CHECKS}
EXCLUSION_CHECKS: list[Check] = [c for c in CHECKS if c.action == _EXCL]

NORMALISATIONS: list[Normalisation] = [
    Normalisation("whitespace_trimmed", tuple(REQUIRED_COLUMNS), "leading/trailing spaces, tabs or CR trimmed",
                  "the value without them ('a ' -> 'a')"),
    Normalisation("code_case_folded", ("Gender", "Validated_EthnicCategory", "SourceOfReferralIAPT", "Borough"),
                  "code or borough in another letter case", "upper-case code ('b1' -> 'B1'); borough as listed"),
    Normalisation("ethnic_two_character", ("Validated_EthnicCategory",),
                  "two-character (local) ethnic code read by its first character",
                  "the national code, its first character ('A1' -> 'A'; '99' stays not known; 'NA' stays an unknown code)"),
    Normalisation("ethnic_negative_code", ("Validated_EthnicCategory",),
                  "negative NHS England not stated/not known code read as not known",
                  "'99' (not known), so ethnicity missing"),
    Normalisation("age_decimal", ("Age_ReferralRequest_ReceivedDate",), "whole-number age written as a decimal",
                  "the whole number ('34.0' -> 34)"),
    Normalisation("gender_other_dataset_code", ("Gender",), "gender written as in other NHS datasets",
                  "; ".join(f"{k} -> {v}" for k, v in GENDER_VARIANTS.items())),
    Normalisation("date_time_part_dropped", _DATES, "date with a time part (e.g. SQL Server datetime)",
                  "the date ('2013-01-05 00:00:00.000' -> 2013-01-05)"),
    Normalisation("date_day_first", _DATES, "day-first date dd/mm/yyyy (day > 12 or day = month: unambiguous)",
                  "the date ('25/03/2014' -> 2014-03-25)"),
    Normalisation("date_day_first_ambiguous", _DATES,
                  "ambiguous dd/mm/yyyy date (both parts <= 12) read as UK day-first",
                  "day first ('05/03/2014' -> 2014-03-05, not 2014-05-03)"),
]
NORM_BY_CODE: dict[str, Normalisation] = {n.code: n for n in NORMALISATIONS}

REPORT_COLUMNS = ["check", "field", "reason", "severity", "n_rows", "example_lines", "example_values", "action"]
FLOW_COLUMNS = ["step", "check", "reason", "n_rows", "n_remaining"]
#: Columns of pattern_counts.csv (codes of the analysis frame; ethnicity blank = missing; treated blank = not
#: assessed) and the count ``n``.
PATTERN_COLUMNS = ["ethnicity", "age_band", "gender", "year", "borough", "referral_source", "assessed", "treated"]


# --- Column mapping -------------------------------------------------------------------------------------
def read_column_mapping(path: str | Path) -> dict[str, str]:
    """A YAML mapping ``{study field: column in your extract}`` (optionally under a ``columns:`` key).

    Fails before any work, naming the key or value that is wrong and what would be valid.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No column mapping file at {str(p)!r}.")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and set(data) == {"columns"}:
        data = data["columns"]
    return validate_column_mapping(data, source=p.name)


def validate_column_mapping(mapping: Any, source: str = "columns") -> dict[str, str]:
    """Check a ``{study field: extract column}`` mapping: keys must be study fields, values non-blank text."""
    if not isinstance(mapping, Mapping):
        raise ExtractError(f"{source}: a column mapping must be a mapping of study field -> extract column, "
                           f"got {type(mapping).__name__}.")
    out = {}
    for k, v in mapping.items():
        if k not in REQUIRED_COLUMNS:
            raise ExtractError(f"{source}: {k!r} is not a study field; valid keys: {', '.join(REQUIRED_COLUMNS)}.")
        if not isinstance(v, str) or not v.strip():
            raise ExtractError(f"{source}: the column for {k!r} must be a non-blank column name, got {v!r}.")
        out[k] = v
    return out


def _clean_name(name: Any) -> str:
    return str(name).replace("\ufeff", "").strip()


def resolve_columns(found: list[str], mapping: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Study field -> column of the source, and the renames to report.

    Order: an explicit mapping, the study's own name, a known alias (:data:`DEFAULT_ALIASES`), then the same
    names ignoring case and surrounding spaces. Raises :class:`ExtractError` listing what is missing.
    """
    mapping = dict(mapping or {})
    clean = {_clean_name(c): c for c in found}
    lower = {k.lower(): v for k, v in clean.items()}
    dup = sorted({c for c in clean if list(map(_clean_name, found)).count(c) > 1})
    if dup:
        raise ExtractError(f"Column(s) {', '.join(map(repr, dup))} appear more than once in the extract.")
    chosen: dict[str, str] = {}
    renames: list[str] = []
    for col in REQUIRED_COLUMNS:
        if col in mapping:
            want = mapping[col]
            if want not in clean:
                raise ExtractError(f"The column mapping says {col!r} is in column {want!r}, which the extract does "
                                   f"not have. Found: {', '.join(clean)}.")
            chosen[col] = clean[want]
            renames.append(f"{want} -> {col} (column mapping)")
            continue
        if col in clean:
            chosen[col] = clean[col]
            continue
        alias = next((a for a, c in DEFAULT_ALIASES.items() if c == col and a in clean), None)
        if alias:
            chosen[col] = clean[alias]
            renames.append(f"{alias} -> {col} (later dataset version)")
            continue
        names = [col] + [a for a, c in DEFAULT_ALIASES.items() if c == col]
        hit = next((lower[n.lower()] for n in names if n.lower() in lower), None)
        if hit is not None:
            chosen[col] = hit
            renames.append(f"{_clean_name(hit)} -> {col} (case or spaces differ)")
    missing = [c for c in REQUIRED_COLUMNS if c not in chosen]
    if missing:
        shown = [str(c) for c in clean]
        hint = ""
        if len(shown) == 1 and any(sep in shown[0] for sep in (";", "\t", "|")):
            hint = " The header has one column containing ';', tab or '|': is the file comma-separated?"
        raise ExtractError(
            f"The extract lacks {len(missing)} required column(s): {', '.join(missing)}. "
            f"Expected columns (NHS England IAPT analysis code names): {', '.join(REQUIRED_COLUMNS)} "
            f"(also recognised: {', '.join(DEFAULT_ALIASES)}; any other name through a column mapping, "
            f"--columns MAPPING.yaml). Found: {', '.join(shown) if shown else '(none)'}.{hint}")
    return chosen, renames


# --- The one SQL definition (DuckDB dialect) --------------------------------------------------------------
def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _case_map(expr: str, mapping: Mapping[str, Any], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {_q(k)} THEN {v if isinstance(v, (int, np.integer)) else _q(v)}"
                     for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


_WS = "' ' || CHR(9) || CHR(13) || CHR(10)"
_ISO = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?Z?$"
_DMY = "^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}( [0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$"
_INT = "^-?[0-9]{1,6}$"
_DEC = "^-?[0-9]{1,6}[.]0+$"


def _date_form(s: str) -> str:
    """Which form a date field ``t_<s>`` is written in (each regular expression evaluated once per row)."""
    t = f"t_{s}"
    return (f"CASE WHEN {t} = '' THEN 'blank' WHEN regexp_matches({t}, '{_ISO}') THEN 'iso' "
            f"WHEN regexp_matches({t}, '{_ISO_TIME}') THEN 'iso_time' WHEN regexp_matches({t}, '{_DMY}') THEN 'dmy' "
            f"ELSE 'other' END AS {s}_form")


def _date_parts(s: str) -> list[str]:
    """Year, month and day (integers) of a date field, by its form."""
    t, f = f"t_{s}", f"{s}_form"
    iso = f"{f} IN ('iso', 'iso_time')"
    return [
        f"CASE WHEN {iso} THEN TRY_CAST(SUBSTRING({t}, 1, 4) AS INTEGER) "
        f"WHEN {f} = 'dmy' THEN TRY_CAST(regexp_extract({t}, '/([0-9]{{4}})', 1) AS INTEGER) END AS {s}_y",
        f"CASE WHEN {iso} THEN TRY_CAST(SUBSTRING({t}, 6, 2) AS INTEGER) "
        f"WHEN {f} = 'dmy' THEN TRY_CAST(regexp_extract({t}, '^[0-9]{{1,2}}/([0-9]{{1,2}})/', 1) AS INTEGER) "
        f"END AS {s}_m",
        f"CASE WHEN {iso} THEN TRY_CAST(SUBSTRING({t}, 9, 2) AS INTEGER) "
        f"WHEN {f} = 'dmy' THEN TRY_CAST(regexp_extract({t}, '^([0-9]{{1,2}})/', 1) AS INTEGER) END AS {s}_d",
    ]


def _valid_ymd(s: str) -> str:
    y, m, d = f"{s}_y", f"{s}_m", f"{s}_d"
    dim = (f"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN CASE WHEN ({y} % 4 = 0 AND {y} % 100 <> 0) "
           f"OR {y} % 400 = 0 THEN 29 ELSE 28 END ELSE 31 END")
    return (f"CASE WHEN {y} IS NOT NULL AND {m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {dim} "
            f"THEN {y} * 10000 + {m} * 100 + {d} END AS {s}_ymd")


_SHORT_ALL = {"PathwayID": "pid", "ReferralRequestReceivedDate": "ref", "Age_ReferralRequest_ReceivedDate": "age",
              "Gender": "gen", "Validated_EthnicCategory": "eth", "SourceOfReferralIAPT": "src", "Borough": "bor",
              "Assessment_FirstDate": "ass", "TherapySession_FirstDate": "thr"}
_VALUE_COLS = ["gen", "eth", "src", "bor", "age", "ref", "ass", "thr"]  # normalised once per distinct value


def core_sql() -> dict[str, str]:
    """The engine's logic as ordered SELECT statements (DuckDB dialect; :class:`SparkEngine` transpiles each).

    Why this shape: coded fields have few distinct values, so every normalisation and code lookup runs once per
    *distinct value* (``vals`` -> ``lk_*``), found in one scan with GROUPING SETS; per row only the identifier
    and the comparisons between fields are computed. Duplicate identifiers are found by hash first
    (``vals``), then exactly among the candidates (``dups``). Stages: ``base`` -> ``vals`` (small, kept) ->
    ``lk_*`` -> ``dups`` (small, kept) -> ``checked`` -> ``summary`` (one aggregate: flow, check counts,
    normalisation counts and pattern counts).
    """
    sh = _SHORT_ALL
    base = ("SELECT line, " + ", ".join(f"COALESCE({c}, '') AS r_{sh[c]}" for c in REQUIRED_COLUMNS)
            + f", TRIM(COALESCE(PathwayID, ''), {_WS}) AS t_pid FROM src")
    sets = ", ".join(f"(r_{c})" for c in _VALUE_COLS) + ", (h_pid)"
    col = "CASE " + " ".join(f"WHEN GROUPING(r_{c}) = 0 THEN '{c}'" for c in _VALUE_COLS) + " ELSE 'pid' END"
    key = "CASE " + " ".join(f"WHEN GROUPING(r_{c}) = 0 THEN r_{c}" for c in _VALUE_COLS) + " ELSE NULL END"
    vals0 = (f"SELECT {col} AS col, {key} AS k, CASE WHEN GROUPING(h_pid) = 0 THEN h_pid END AS h, COUNT(*) AS n "
             f"FROM (SELECT *, HASH(t_pid) AS h_pid FROM base) AS b GROUP BY GROUPING SETS ({sets})")
    vals = "SELECT col, k, h, n FROM vals0 WHERE col <> 'pid' OR (n > 1)"

    def lk(c: str, exprs: list[str]) -> str:
        where = "col IN ('ref', 'ass', 'thr')" if c == "date" else f"col = '{c}'"
        return (f"SELECT k, {', '.join(exprs)} FROM (SELECT DISTINCT k, TRIM(k, {_WS}) AS t FROM vals "
                f"WHERE {where}) AS v")

    ws = "k <> t AS ws"
    borough = _case_map("UPPER(t)", {b.upper(): b for b in study.BOROUGHS}, default="t")
    gender = _case_map("UPPER(t)", GENDER_VARIANTS, default="UPPER(t)")
    eth_neg = "regexp_matches(t, '^-[0-9]+$')"
    # 'NA' is "not available" far more often than N + a local character: it stays an unknown code.
    eth_two = (f"(LENGTH(t) = 2 AND SUBSTRING(UPPER(t), 1, 1) IN {_in(_NATIONAL_LETTERS)} "
               f"AND regexp_matches(UPPER(t), '^.[A-Z0-9]$') AND UPPER(t) <> 'NA')")
    ethnic = f"CASE WHEN {eth_neg} THEN '99' WHEN {eth_two} THEN SUBSTRING(UPPER(t), 1, 1) ELSE UPPER(t) END"
    group_code = {c: study.GROUPS.index(g) for c, g in codes.ETHNIC_CODE_TO_GROUP.items() if g is not None}
    gender_code = {c: study.GENDERS.index(g) for c, g in codes.GENDER_CODE_TO_LABEL.items() if g is not None}
    source_code = {c: study.SOURCES.index(x) for c, x in codes.SOURCE_CODE_TO_CATEGORY.items()}
    bands = " ".join(f"WHEN n >= {b} THEN {i}" for i, b in reversed(list(enumerate(study.AGE_BREAKS))))
    age = (f"CASE WHEN regexp_matches(t, '{_INT}') THEN TRY_CAST(t AS INTEGER) "
           f"WHEN regexp_matches(t, '{_DEC}') THEN TRY_CAST(regexp_extract(t, '^(-?[0-9]+)', 1) AS INTEGER) END")
    not_known = [k for k, v in codes.GENDER_CODE_TO_LABEL.items() if v is None]
    views: dict[str, str] = {"base": base, "vals0": vals0, "vals": vals}
    views["lk_gen0"] = lk("gen", [ws, f"{gender} AS v", "t <> UPPER(t) AS cf",
                                  f"UPPER(t) IN {_in(GENDER_VARIANTS)} AS alt"])
    views["lk_gen"] = (f"SELECT k, ws, cf, alt, v NOT IN {_in(codes.GENDER_CODE_TO_LABEL)} AS bad, "
                       f"v IN {_in(not_known)} AS nk, {_case_map('v', gender_code, '-1')} AS code FROM lk_gen0")
    views["lk_eth0"] = lk("eth", [ws, f"{ethnic} AS v", f"(t <> UPPER(t) AND NOT {eth_neg}) AS cf",
                                  f"(NOT {eth_neg} AND {eth_two}) AS two", f"{eth_neg} AS neg"])
    views["lk_eth"] = (f"SELECT k, ws, cf, two, neg, v NOT IN {_in(ETHNIC_CODES)} AS bad, "
                       f"v IN {_in(codes.MISSING_ETHNIC_CODES)} AS miss, {_case_map('v', group_code, '-1')} AS grp, "
                       f"{_case_map('v', {c: i for i, c in enumerate(ETHNIC_CODES)}, '-1')} AS code FROM lk_eth0")
    views["lk_src"] = lk("src", [ws, "t <> UPPER(t) AS cf",
                                 f"UPPER(t) NOT IN {_in(codes.SOURCE_CODE_TO_CATEGORY)} AS bad",
                                 f"{_case_map('UPPER(t)', source_code, '-1')} AS code"])
    views["lk_bor0"] = lk("bor", [ws, f"{borough} AS v", "t"])
    views["lk_bor"] = (f"SELECT k, ws, v <> t AS cf, v NOT IN {_in(study.BOROUGHS)} AS bad, "
                       f"{_case_map('v', {b: i for i, b in enumerate(study.BOROUGHS)}, '-1')} AS code FROM lk_bor0")
    views["lk_age0"] = lk("age", [ws, f"{age} AS n", f"regexp_matches(t, '{_DEC}') AS dec"])
    views["lk_age"] = (f"SELECT k, ws, dec, n, CASE {bands} ELSE -1 END AS band FROM lk_age0")
    views["lk_date0"] = lk("date", [ws, _date_form("x").replace("t_x", "t").replace("x_form", "form"), "t"])
    views["lk_date1"] = ("SELECT k, ws, form, " + ", ".join(p.replace("t_x", "t").replace("x_form", "form")
                                                        .replace(" AS x_", " AS ") for p in _date_parts("x"))
                         + " FROM lk_date0")
    views["lk_date"] = ("SELECT k, ws, form, y, m, d, " + _valid_ymd("x").replace("x_", "").replace(" AS ymd", "")
                        + " AS ymd FROM lk_date1")
    views["dups"] = ("SELECT t_pid AS d_pid, MIN(line) AS first_line FROM base "
                     "WHERE t_pid <> '' AND HASH(t_pid) IN (SELECT h FROM vals WHERE col = 'pid') "
                     "GROUP BY t_pid HAVING COUNT(*) > 1")
    joined = ("SELECT b.line, b.r_pid, b.r_ref, b.r_age, b.r_gen, b.r_eth, b.r_src, b.r_bor, b.r_ass, b.r_thr, "
              "b.t_pid, first_line, "
              "g.ws AS ws_gen, g.cf AS cf_gen, g.alt AS alt_gen, g.bad AS bad_gen, g.nk AS nk_gen, g.code AS c_gender, "
              "e.ws AS ws_eth, e.cf AS cf_eth, e.two AS two_eth, e.neg AS neg_eth, e.bad AS bad_eth, "
              "e.miss AS miss_eth, e.grp AS c_ethnicity, e.code AS c_ethnic_code, "
              "s.ws AS ws_src, s.cf AS cf_src, s.bad AS bad_src, s.code AS c_referral_source, "
              "o.ws AS ws_bor, o.cf AS cf_bor, o.bad AS bad_bor, o.code AS c_borough, "
              "a.ws AS ws_age, a.dec AS dec_age, a.n AS n_age, a.band AS c_age_band, "
              + ", ".join(f"{x}.ws AS ws_{x}, {x}.form AS {x}_form, {x}.y AS {x}_y, {x}.m AS {x}_m, {x}.d AS {x}_d, "
                          f"{x}.ymd AS {x}_ymd" for x in ("ref", "ass", "thr"))
              + " FROM base AS b LEFT JOIN lk_gen AS g ON b.r_gen = g.k LEFT JOIN lk_eth AS e ON b.r_eth = e.k "
              "LEFT JOIN lk_src AS s ON b.r_src = s.k LEFT JOIN lk_bor AS o ON b.r_bor = o.k "
              "LEFT JOIN lk_age AS a ON b.r_age = a.k "
              + " ".join(f"LEFT JOIN lk_date AS {x} ON b.r_{x} = {x}.k" for x in ("ref", "ass", "thr"))
              + " LEFT JOIN dups ON b.t_pid = dups.d_pid")
    views["joined"] = joined

    # -- checks, in the order of CHECKS
    cond = {
        "pathway_id_blank": "t_pid = ''",
        "pathway_id_duplicate": "first_line IS NOT NULL AND line > first_line",
        "referral_date_invalid": "ref_ymd IS NULL",
        "referral_date_out_of_period": (f"ref_ymd IS NOT NULL AND (ref_ymd < {STUDY_START.replace('-', '')} "
                                        f"OR ref_ymd > {STUDY_END.replace('-', '')})"),
        "age_not_integer": "n_age IS NULL",
        "age_out_of_range": f"n_age IS NOT NULL AND (n_age < {AGE_MIN_VALID} OR n_age > {AGE_MAX_VALID})",
        "gender_unknown_code": "bad_gen",
        "ethnic_unknown_code": "bad_eth",
        "source_unknown_code": "bad_src",
        "borough_unknown": "bad_bor",
        "assessment_date_invalid": "ass_form <> 'blank' AND ass_ymd IS NULL",
        "assessment_before_referral": "ass_ymd IS NOT NULL AND ref_ymd IS NOT NULL AND ass_ymd < ref_ymd",
        "treatment_date_invalid": "thr_form <> 'blank' AND thr_ymd IS NULL",
        "treatment_without_assessment": "thr_form <> 'blank' AND ass_form = 'blank'",
        "treatment_before_assessment": "thr_ymd IS NOT NULL AND ass_ymd IS NOT NULL AND thr_ymd < ass_ymd",
        "age_under_18": f"n_age IS NOT NULL AND n_age >= {AGE_MIN_VALID} AND n_age <= {AGE_MAX_VALID} "
                        f"AND n_age < {AGE_MIN_STUDY}",
        "gender_not_known": "nk_gen",
        "ethnicity_missing": "miss_eth",
    }
    assert list(cond) == [c.code for c in CHECKS]
    date_flag = {
        "date_time_part_dropped": "{s}_form = 'iso_time' AND {s}_ymd IS NOT NULL",
        "date_day_first": "{s}_form = 'dmy' AND {s}_ymd IS NOT NULL AND ({s}_d > 12 OR {s}_d = {s}_m)",
        "date_day_first_ambiguous": "{s}_form = 'dmy' AND {s}_ymd IS NOT NULL AND {s}_d <= 12 AND {s}_d <> {s}_m",
    }
    nz = {
        "whitespace_trimmed": "r_pid <> t_pid OR " + " OR ".join(f"ws_{c}" for c in _VALUE_COLS),
        "code_case_folded": "cf_gen OR cf_eth OR cf_src OR cf_bor",
        "ethnic_two_character": "two_eth",
        "ethnic_negative_code": "neg_eth",
        "age_decimal": "dec_age",
        "gender_other_dataset_code": "alt_gen",
        **{code: " OR ".join("(" + tmpl.format(s=x) + ")" for x in ("ref", "ass", "thr"))
           for code, tmpl in date_flag.items()},
    }
    assert list(nz) == [n.code for n in NORMALISATIONS]
    ck_mask = " + ".join(f"CASE WHEN COALESCE({cond[c.code]}, FALSE) THEN {2 ** i} ELSE 0 END"
                         for i, c in enumerate(CHECKS))
    nz_mask = " + ".join(f"CASE WHEN COALESCE({nz[n.code]}, FALSE) THEN {2 ** i} ELSE 0 END"
                         for i, n in enumerate(NORMALISATIONS))
    first = ("CASE " + " ".join(f"WHEN COALESCE({cond[c.code]}, FALSE) THEN {i + 1}"
                                for i, c in enumerate(EXCLUSION_CHECKS)) + " ELSE 0 END")
    views["checked"] = (f"SELECT line, r_pid, r_ref, r_age, r_gen, r_eth, r_src, r_bor, r_ass, r_thr, t_pid, "
                        f"COALESCE(first_line, 0) AS first_line, ref_ymd, n_age, {ck_mask} AS ck_mask, "
                        f"{nz_mask} AS nz_mask, {first} AS first_reason, c_ethnicity, c_ethnic_code, c_age_band, "
                        f"c_gender, COALESCE(ref_y - {min(study.YEARS)}, -1) AS c_year, c_borough, c_referral_source, "
                        "CASE WHEN ass_form <> 'blank' THEN 1 ELSE 0 END AS c_assessed, "
                        "CASE WHEN thr_form <> 'blank' THEN 1 ELSE 0 END AS c_treated FROM joined")
    pcols = [f"c_{c}" for c in PATTERN_COLUMNS]
    kept = ", ".join(f"CASE WHEN first_reason = 0 THEN {c} ELSE -1 END AS {c}" for c in pcols)
    views["summary0"] = f"SELECT first_reason, ck_mask, nz_mask, {kept} FROM checked"
    views["summary"] = (f"SELECT first_reason, ck_mask, nz_mask, {', '.join(pcols)}, COUNT(*) AS n FROM summary0 "
                        f"GROUP BY first_reason, ck_mask, nz_mask, {', '.join(pcols)}")
    return views


#: Views computed once and kept (small: distinct values and duplicate identifiers).
KEPT_VIEWS = ("vals", "dups")
HEAD_ROWS = 200_000


def head_views(views: Mapping[str, str]) -> dict[str, str]:
    """The row-level views over ``src_head`` (the first rows in file order) instead of ``src``: the lookups and
    the duplicate identifiers stay those of the whole extract, so a head row is checked exactly as in a full scan."""
    return {"base_h": views["base"].replace(" FROM src", " FROM src_head"),
            "joined_h": views["joined"].replace(" FROM base AS b ", " FROM base_h AS b "),
            "checked_h": views["checked"].replace(" FROM joined", " FROM joined_h")}


def examples_sql(checks: list[Check], view: str = "checked") -> str:
    """First lines and raw values of the rows failing each of ``checks`` (up to :data:`N_EXAMPLES` each), in one
    scan: failing rows are paired with the checks they fail, then ranked by line within each check."""
    raw = {c: f"r_{_SHORT_ALL[c]}" for c in REQUIRED_COLUMNS}
    idx = [CHECKS.index(c) for c in checks]
    values = ", ".join(f"({i}, {2 ** i})" for i in idx)
    v1 = "CASE " + " ".join(f"WHEN chk = {CHECKS.index(c)} THEN {raw[c.fields[0]]}" for c in checks) + " END"
    v2 = "CASE " + " ".join(f"WHEN chk = {CHECKS.index(c)} THEN {raw[c.fields[1]]}" for c in checks
                            if len(c.fields) > 1) + " ELSE '' END" if any(len(c.fields) > 1 for c in checks) else "''"
    failing = (f"SELECT chk, line, {v1} AS v1, {v2} AS v2, first_line FROM {view} "
               f"JOIN (VALUES {values}) AS k(chk, bit) ON FLOOR(ck_mask / bit) % 2 = 1")
    return (f"SELECT chk, line, v1, v2, first_line FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY chk ORDER BY line) "
            f"AS rk FROM ({failing}) AS failing) AS ranked WHERE rk <= {N_EXAMPLES} ORDER BY chk, line")


ROWS_SQL = ("SELECT line, first_reason, t_pid AS referral_id, ref_ymd, n_age AS age, c_ethnic_code, c_ethnicity, "
            "c_age_band, c_gender, c_year, c_borough, c_referral_source, c_assessed, c_treated FROM checked "
            "ORDER BY line")


# --- Reading: the only part that differs per engine -------------------------------------------------------
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


def _check_pandas(raw: pd.DataFrame) -> None:
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


class DuckDBEngine:
    """DuckDB, embedded (out of core): the default, for a laptop or a single server."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")

    def register(self, source: Any, kind: str, mapping: Mapping[str, str] | None) -> tuple[int, list[str], str]:
        """Create the view ``src`` (line + the nine fields as text); returns (rows, renames, source name)."""
        if kind == "pandas":
            _check_pandas(source)
            chosen, renames = resolve_columns(list(source.columns), mapping)
            df = pd.DataFrame({c: source[chosen[c]].to_numpy() for c in REQUIRED_COLUMNS})
            df["__row"] = np.arange(len(df), dtype=np.int64)
            chosen = {c: c for c in REQUIRED_COLUMNS}
            self.con.register("raw_input", df)
            rel = "raw_input"
            line = f"__row + {FIRST_DATA_LINE}"
            name = source.attrs.get("source")
        elif kind in ("csv", "parquet", "parquet_dir"):
            p = Path(source)
            name = p.name
            if kind == "csv":
                d = sniff_csv(p)
                rel = (f"read_csv({_q(str(p))}, all_varchar = true, header = true, delim = {_q(d['delimiter'])}, "
                       f"quote = {_q(d['quote'])}, escape = {_q(d['quote'])})")
                line = f"ROW_NUMBER() OVER () + {FIRST_DATA_LINE - 1}"
            else:
                glob = str(p / "**" / "*.parquet") if kind == "parquet_dir" else str(p)
                rel = f"read_parquet({_q(glob)}, file_row_number = true, filename = true)"
                # One file: its row number is the position (0-based), and the rows stream. A folder needs a
                # window ordered by file and row, which holds every row in memory (4.8 GB at 10 million).
                line = (f"file_row_number + {FIRST_DATA_LINE}" if kind == "parquet" else
                        f"ROW_NUMBER() OVER (ORDER BY filename, file_row_number) + {FIRST_DATA_LINE - 1}")
            try:
                cols = [d[0] for d in self.con.sql(f"SELECT * FROM {rel} LIMIT 0").description]
            except duckdb.Error as exc:
                raise ExtractError(f"{name!r} could not be read as {kind.replace('_dir', ' folder')}: "
                                   f"{str(exc).splitlines()[0]}") from exc
            cols = [c for c in cols if c not in ("filename", "file_row_number")] if kind != "csv" else cols
            chosen, renames = resolve_columns(cols, mapping)
        else:
            raise ExtractError(f"engine='duckdb' cannot read a {kind} source; use engine='spark' with a session.")
        select = ", ".join(f'CAST("{chosen[c]}" AS VARCHAR) AS {c}' for c in REQUIRED_COLUMNS)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW src AS SELECT {line} AS line, {select} FROM {rel}")
        return -1, renames, name

    def head_view(self, k: int) -> None:
        """The first ``k`` rows in file order (DuckDB keeps insertion order and stops reading after them)."""
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW src_head AS SELECT * FROM src LIMIT {int(k)}")

    def create_views(self, views: Mapping[str, str]) -> None:
        for name, sql in views.items():
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def materialise(self, name: str, sql: str, small: bool = False) -> None:
        """A small result (distinct values, duplicates) is computed once and kept; anything row-level stays a
        view, so DuckDB streams the file rather than holding every row in memory."""
        kind = "TABLE" if small else "VIEW"
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}")
        except duckdb.Error as exc:
            raise ExtractError(f"The extract could not be read: {str(exc).splitlines()[0]}") from exc

    def query(self, sql: str) -> pd.DataFrame:
        try:
            return self.con.sql(sql).df()
        except duckdb.Error as exc:
            raise ExtractError(f"The extract could not be read: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """Spark (local mode in tests; Databricks or a cluster where national data lives). The same SQL as
    :class:`DuckDBEngine`, transpiled from the DuckDB dialect by sqlglot."""

    name = "spark"

    def __init__(self, spark: Any) -> None:
        if spark is None:
            raise ExtractError("engine='spark' needs a Spark session: pass spark=SparkSession.builder...getOrCreate()"
                               " (on Databricks: spark=spark).")
        self.spark = spark
        self._views: list[str] = []
        self._cached: list[Any] = []

    @staticmethod
    def transpile(sql: str) -> str:
        return sqlglot.transpile(sql, read="duckdb", write="spark")[0]

    def register(self, source: Any, kind: str, mapping: Mapping[str, str] | None) -> tuple[int, list[str], str]:
        from pyspark.sql import functions as sf  # optional dependency: only a Spark run needs pyspark
        from pyspark.sql.types import LongType, StringType, StructField, StructType
        from pyspark.sql.window import Window

        name = None
        if kind == "pandas":
            _check_pandas(source)
            chosen, renames = resolve_columns(list(source.columns), mapping)
            pdf = pd.DataFrame({c: source[chosen[c]].astype(object).where(source[chosen[c]].notna(), None)
                                .map(lambda v: None if v is None else str(v)).to_numpy() for c in REQUIRED_COLUMNS})
            pdf["__row"] = np.arange(len(pdf), dtype=np.int64)
            schema = StructType([StructField(c, StringType()) for c in REQUIRED_COLUMNS]
                                + [StructField("__row", LongType())])
            df = self.spark.createDataFrame(pdf.to_dict("records") if len(pdf) else [], schema=schema)
            chosen = {c: c for c in REQUIRED_COLUMNS}
            df = df.withColumn("__line", sf.col("__row") + FIRST_DATA_LINE)
            name = source.attrs.get("source")
        else:
            if kind == "spark":
                df = source
            elif kind == "table":
                df = self.spark.table(source)
                name = str(source)
            elif kind == "csv":
                p = Path(source)
                d = sniff_csv(p)
                df = (self.spark.read.option("header", True).option("sep", d["delimiter"])
                      .option("quote", d["quote"]).option("escape", d["quote"]).option("inferSchema", False)
                      .option("encoding", "UTF-8").csv(str(p)))
                name = p.name
            elif kind in ("parquet", "parquet_dir"):
                p = Path(source)
                df = self.spark.read.parquet(str(p))
                name = p.name
                if kind == "parquet_dir":
                    df = df.withColumn("__file", sf.input_file_name())
            else:
                raise ExtractError(f"engine='spark' cannot read a {kind} source.")
            chosen, renames = resolve_columns([c for c in df.columns if c != "__file"], mapping)
            df = df.withColumn("__mid", sf.monotonically_increasing_id())
            if "__file" in df.columns:
                order = [sf.col("__file"), sf.col("__mid")]
            else:
                order = [sf.col("__mid")]
            df = df.withColumn("__line", sf.row_number().over(Window.orderBy(*order)) + (FIRST_DATA_LINE - 1))
        df = df.select(sf.col("__line").alias("line"),
                       *[sf.col(f"`{chosen[c]}`").cast("string").alias(c) for c in REQUIRED_COLUMNS])
        df = df.cache()  # the file-order window is computed once, not once per query
        self._cached.append(df)
        df.createOrReplaceTempView("src")
        self._views.append("src")
        return -1, renames, name

    def head_view(self, k: int) -> None:
        """The first ``k`` rows by line number (a LIMIT would not say which rows on Spark)."""
        self.spark.sql(f"SELECT * FROM src WHERE line < {int(k) + FIRST_DATA_LINE}").createOrReplaceTempView("src_head")
        self._views.append("src_head")

    def create_views(self, views: Mapping[str, str]) -> None:
        for name, sql in views.items():
            self.spark.sql(self.transpile(sql)).createOrReplaceTempView(name)
            self._views.append(name)

    def materialise(self, name: str, sql: str, small: bool = False) -> None:
        """Cached: Spark would otherwise recompute it (and the file-order window) for every query."""
        df = self.spark.sql(self.transpile(sql)).cache()
        self._cached.append(df)
        df.createOrReplaceTempView(name)
        self._views.append(name)

    def query(self, sql: str) -> pd.DataFrame:
        res = self.spark.sql(self.transpile(sql))
        rows = res.collect()
        return pd.DataFrame([r.asDict() for r in rows], columns=res.columns)

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        for v in self._views:
            self.spark.catalog.dropTempView(v)


def make_engine(engine: str = "duckdb", spark: Any = None) -> DuckDBEngine | SparkEngine:
    """An engine by name; a bad name fails before any work."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    return DuckDBEngine() if engine == "duckdb" else SparkEngine(spark)


# --- Results ---------------------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    """One row per check in ``table`` (all checks, also those with no failing rows), ``n_input`` rows checked,
    ``excluded`` rows per first exclusion reason and, for small data, ``row_reason``: per input row (by
    position) the first exclusion reason, NaN for rows kept."""

    table: pd.DataFrame
    n_input: int
    row_reason: pd.Series | None = None
    source: str | None = None
    excluded: dict[str, int] = field(default_factory=dict)

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
        return int(sum(self.excluded.values()))

    @property
    def n_invalid(self) -> int:
        """Rows excluded for a data error (first reason of severity 'invalid')."""
        return int(sum(k for c, k in self.excluded.items() if CHECK_BY_CODE[c].severity == "invalid"))

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


@dataclass
class ExtractResult:
    """What the engine returns: counts that may leave a secure environment, and the audit that must not."""

    pattern_counts: pd.DataFrame  # PATTERN_COLUMNS + n (kept rows only)
    flow: pd.DataFrame  # FLOW_COLUMNS
    report: ValidationReport
    normalisations: pd.DataFrame  # code, field, reason, maps_to, n_rows
    renames: list[str]
    engine: str
    rows: pd.DataFrame | None = None  # coded analysis rows (rows=True only)


def _decode_patterns(summary: pd.DataFrame) -> pd.DataFrame:
    kept = summary[summary["first_reason"] == 0]
    cols = [f"c_{c}" for c in PATTERN_COLUMNS]
    g = kept.groupby(cols, sort=True, dropna=False)["n"].sum().reset_index()
    levels = {"ethnicity": study.GROUPS, "age_band": study.AGE_BANDS, "gender": study.GENDERS,
              "year": study.YEARS, "borough": study.BOROUGHS, "referral_source": study.SOURCES}
    out = pd.DataFrame()
    for c in PATTERN_COLUMNS:
        v = g[f"c_{c}"].to_numpy(dtype=np.int64)
        if c == "year":  # kept rows always have a year in the study period
            out[c] = v + min(study.YEARS)
        elif c in levels:
            lv = np.asarray(levels[c], dtype=object)
            out[c] = np.where(v >= 0, lv[np.clip(v, 0, None)], "")
        else:
            out[c] = v
    out["treated"] = np.where(out["assessed"] == 1, out["treated"].astype(str), "")
    out["n"] = g["n"].to_numpy(dtype=np.int64)
    return out


def flow_table(n_input: int, excluded: Mapping[str, int], normalised: Mapping[str, int], renames: list[str],
               patterns: pd.DataFrame) -> pd.DataFrame:
    """The flow: rows in, each normalisation (and field rename) counted, each exclusion by first reason, rows
    analysed, and within them ethnicity recorded/missing, assessed and treated."""
    rows = [("extract", "", "referrals in extract", n_input, n_input)]
    for r in renames:
        rows.append(("normalised", "column_renamed", f"column {r}", n_input, pd.NA))
    for nz in NORMALISATIONS:
        rows.append(("normalised", nz.code, nz.reason, int(normalised.get(nz.code, 0)), pd.NA))
    remaining = n_input
    for c in EXCLUSION_CHECKS:
        k = int(excluded.get(c.code, 0))
        remaining -= k
        rows.append(("excluded", c.code, c.reason, k, remaining))
    n = patterns["n"].to_numpy(dtype=np.int64)
    n_an = int(n.sum())
    if remaining != n_an:  # cannot happen; guards the accounting
        raise AssertionError(f"flow does not add up: {remaining} remaining vs {n_an} analysed")
    n_missing = int(n[(patterns["ethnicity"] == "").to_numpy()].sum())
    n_assessed = int(n[(patterns["assessed"] == 1).to_numpy()].sum())
    n_treated = int(n[(patterns["treated"] == "1").to_numpy()].sum())
    rows += [
        ("analysed", "", "referrals analysed", n_an, n_an),
        ("within analysed", "ethnicity_recorded", "ethnicity recorded", n_an - n_missing, pd.NA),
        ("within analysed", "ethnicity_missing", CHECK_BY_CODE["ethnicity_missing"].reason, n_missing, pd.NA),
        ("within analysed", "assessed", "assessed", n_assessed, pd.NA),
        ("within analysed", "treated", "treated (among assessed)", n_treated, pd.NA),
    ]
    flow = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    flow["n_rows"] = flow["n_rows"].astype(np.int64)
    flow["n_remaining"] = flow["n_remaining"].astype("Int64")
    return flow


def _example_value(check: Check, v1: str, v2: str, first_line: int) -> str:
    if check.code == "pathway_id_duplicate":
        return f"{v1.strip()} (first on line {int(first_line)})"
    if len(check.fields) == 1:
        return v1
    return f"{check.fields[0]}={v1!r}; {check.fields[1]}={v2!r}"


def run(source: Any, *, engine: str = "duckdb", spark: Any = None, columns: Mapping[str, str] | str | Path | None = None,
        rows: bool = False, reasons: bool = False) -> ExtractResult:
    """Read -> normalise -> check -> count one extract on ``engine`` (``duckdb`` or ``spark``).

    ``source``: a CSV (any common delimiter, quoting, BOM, line endings, gzip), a Parquet file or a folder of
    them, a pandas DataFrame, or with ``engine='spark'`` a Spark DataFrame or table name. ``columns``: a
    ``{study field: your column}`` mapping or a YAML file of one. ``rows``: also return the coded analysis
    rows (small data: the notebooks that teach on rows); ``reasons``: the first exclusion reason of every row.
    """
    if isinstance(columns, (str, Path)):
        columns = read_column_mapping(columns)
    elif columns is not None:
        columns = validate_column_mapping(columns)
    kind = source_kind(source)  # fails on a bad source before an engine starts
    eng = make_engine(engine, spark)
    try:
        _, renames, name = eng.register(source, kind, columns)
        views = core_sql()
        for view, sql in views.items():
            if view == "summary":
                continue
            if view == "dups" and int(eng.query("SELECT COUNT(*) AS k FROM vals WHERE col = 'pid'")["k"].iloc[0]) == 0:
                sql += " LIMIT 0"  # no identifier hash repeats: no duplicates, and no second pass over the rows
            if view in KEPT_VIEWS or (view == "checked" and kind == "pandas"):
                eng.materialise(view, sql, small=True)  # an in-memory frame is small: query it once
            else:
                eng.create_views({view: sql})
        summary = eng.query(views["summary"])
        for c in summary.columns:
            summary[c] = summary[c].astype(np.int64)
        n_input = int(summary["n"].sum())
        ck = summary["ck_mask"].to_numpy(dtype=np.int64)
        nz = summary["nz_mask"].to_numpy(dtype=np.int64)
        n = summary["n"].to_numpy(dtype=np.int64)
        check_n = {c.code: int(n[(ck >> i) & 1 == 1].sum()) for i, c in enumerate(CHECKS)}
        norm_n = {z.code: int(n[(nz >> i) & 1 == 1].sum()) for i, z in enumerate(NORMALISATIONS)}
        fr = summary["first_reason"].to_numpy(dtype=np.int64)
        excluded = {c.code: int(n[fr == i + 1].sum()) for i, c in enumerate(EXCLUSION_CHECKS)}
        patterns = _decode_patterns(summary)
        failing = [c for c in CHECKS if check_n[c.code] > 0]
        ex = pd.DataFrame(columns=["chk", "line", "v1", "v2", "first_line"])
        if failing:
            # The first HEAD_ROWS rows usually hold every check's first five examples (missing ethnicity is common):
            # look there first, and scan everything only for the checks still short of examples.
            eng.head_view(HEAD_ROWS)
            eng.create_views(head_views(views))
            ex = eng.query(examples_sql(failing, view="checked_h"))
            got = ex["chk"].astype(int).value_counts()
            short = [c for c in failing if got.get(CHECKS.index(c), 0) < min(N_EXAMPLES, check_n[c.code])]
            if short:
                done = [CHECKS.index(c) for c in failing if c not in short]
                ex = pd.concat([ex[ex["chk"].astype(int).isin(done)], eng.query(examples_sql(short))],
                               ignore_index=True)
                ex = ex.sort_values(["chk", "line"], kind="stable").reset_index(drop=True)
        report_rows = []
        for i, c in enumerate(CHECKS):
            e = ex[ex["chk"].astype(int) == i]
            report_rows.append({
                "check": c.code, "field": ", ".join(c.fields), "reason": c.reason, "severity": c.severity,
                "n_rows": check_n[c.code], "example_lines": tuple(int(v) for v in e["line"]),
                "example_values": tuple(_example_value(c, a, b, f) for a, b, f in zip(e["v1"], e["v2"],
                                                                                       e["first_line"])),
                "action": c.action})
        row_reason = frame_rows = None
        if reasons or rows:
            every = eng.query(ROWS_SQL)
            fr_all = every["first_reason"].to_numpy(dtype=np.int64)
            labels = [c.reason for c in EXCLUSION_CHECKS]
            row_reason = pd.Series(pd.Categorical.from_codes(fr_all - 1, categories=labels), name="exclusion_reason")
            if rows:
                frame_rows = every[fr_all == 0].reset_index(drop=True)
        report = ValidationReport(pd.DataFrame(report_rows, columns=REPORT_COLUMNS), n_input, row_reason,
                                  name, excluded)
        flow = flow_table(n_input, excluded, norm_n, renames, patterns)
        normalisations = pd.DataFrame([{"code": z.code, "field": ", ".join(z.fields), "reason": z.reason,
                                        "maps_to": z.maps_to, "n_rows": norm_n[z.code]} for z in NORMALISATIONS])
        return ExtractResult(patterns, flow, report, normalisations, renames, eng.name, frame_rows)
    finally:
        eng.close()


def read_raw(source: Any, columns: Mapping[str, str] | str | Path | None = None) -> pd.DataFrame:
    """The extract's rows as text (study field names, blanks as ''), read by DuckDB: for notebooks that show
    raw rows (small data). Any CSV dialect or Parquet; v2.x names and a column mapping are applied."""
    if isinstance(columns, (str, Path)):
        columns = read_column_mapping(columns)
    kind = source_kind(source)
    eng = DuckDBEngine()
    try:
        _, _, name = eng.register(source, kind, columns)
        select = ", ".join(f"COALESCE({c}, '') AS {c}" for c in REQUIRED_COLUMNS)
        raw = eng.query(f"SELECT {select} FROM src ORDER BY line")
    finally:
        eng.close()
    raw = raw.astype(object)
    raw.attrs["source"] = name
    return raw


def spark_session() -> Any:
    """The running Spark session (Databricks), or a local one."""
    from pyspark.sql import SparkSession  # optional dependency: only a Spark run needs pyspark

    return SparkSession.builder.appName("iapt-pathways").getOrCreate()


def write(result: ExtractResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``pattern_counts.csv`` and ``flow.csv`` (and nothing row-level) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pattern_counts": out / "pattern_counts.csv", "flow": out / "flow.csv"}
    result.pattern_counts.to_csv(paths["pattern_counts"], index=False, lineterminator="\n")
    result.flow.to_csv(paths["flow"], index=False, lineterminator="\n")
    return paths


def read_pattern_counts(path: str | Path) -> pd.DataFrame:
    """Read a ``pattern_counts.csv`` back with the types :func:`run` gives (blank ethnicity = missing)."""
    pc = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PATTERN_COLUMNS + ["n"] if c not in pc.columns]
    if missing:
        raise ExtractError(f"{Path(path).name!r} is not a pattern-count file: it lacks {', '.join(missing)} "
                           f"(expected {', '.join(PATTERN_COLUMNS + ['n'])}).")
    for c in ("year", "assessed", "n"):
        pc[c] = pc[c].astype(np.int64)
    return pc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.extract", description=(
        "Aggregate an IAPT extract where it lives: writes pattern_counts.csv (one row per covariate pattern x "
        "outcomes, count n) and flow.csv (every row accounted for). Nothing row-level is written."))
    ap.add_argument("path", help="CSV (any delimiter, .gz), Parquet file or folder, or (spark) a table name")
    ap.add_argument("--engine", choices=ENGINES, default="duckdb")
    ap.add_argument("--columns", help="YAML mapping {study field: your column name}")
    ap.add_argument("--out", required=True, help="output folder")
    a = ap.parse_args(argv)
    spark = None
    if a.engine == "spark":
        from pyspark.sql import SparkSession  # optional dependency: only a Spark run needs pyspark

        spark = SparkSession.builder.appName("iapt-extract").getOrCreate()
    try:
        res = run(a.path, engine=a.engine, spark=spark, columns=a.columns)
    except (ExtractError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write(res, a.out)
    n_an = int(res.pattern_counts["n"].sum())
    print(f"{res.report.n_input:,} referrals read, {n_an:,} analysed in {len(res.pattern_counts):,} patterns "
          f"({res.engine}) -> {paths['pattern_counts']}, {paths['flow']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
