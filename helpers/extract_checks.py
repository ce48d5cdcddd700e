"""What every extract row is checked for, and which real-world variants are read as the study's form: the
catalogue, as data.

Why a module of its own: the checks and normalisations are the extract engine's rules; the SQL
(:mod:`helpers.extract_sql`) implements them, the flow (:mod:`helpers.extract_flow`) counts them, the data
dictionary (:mod:`helpers.datadict`) documents them and :mod:`helpers.prepare` names them, all from this one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helpers import codes, study

# --- Schema ---------------------------------------------------------------------------------------------
REQUIRED_COLUMNS: list[str] = list(codes.RAW_COLUMNS)
FIRST_DATA_LINE = 2  # the header is line 1 of the CSV file
N_EXAMPLES = 5

# Plausibility limits for a recorded age (a data check, not a design choice); the study population
# starts at the first age break (18).
AGE_MIN_VALID = 16
AGE_MAX_VALID = 110
AGE_MIN_STUDY = study.AGE_BREAKS[0]
STUDY_START = f"{min(study.YEARS)}-01-01"
STUDY_END = f"{max(study.YEARS)}-12-31"

ETHNIC_CODES: list[str] = list(codes.ETHNIC_CODE_TO_GROUP)  # categories of `ethnic_code` ("" = blank)

#: Gender as other NHS datasets write it -> the person stated gender code the study uses.
GENDER_VARIANTS: dict[str, str] = {
    "M": "1", "MALE": "1", "F": "2", "FEMALE": "2",
    "0": "X", "U": "X", "UNKNOWN": "X", "NOT KNOWN": "X", "Z": "X", "NOT STATED": "X",
    "I": "9", "INDETERMINATE": "9",
}


class ExtractError(ValueError):
    """The extract cannot be used as it is: missing columns, unreadable, or (strict mode) invalid rows.
    ``report``: the :class:`helpers.extract_flow.ValidationReport` behind a strict-mode failure."""

    def __init__(self, message: str, report: Any = None):
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
