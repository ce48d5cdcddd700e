"""The data dictionary of the extract and the analysis frame, and the code tables a reader looks codes up in.

Generated from the code that defines the fields (``helpers.extract_checks``, ``helpers.extract_columns``,
``helpers.prepare``, ``helpers.codes``), so the dictionary cannot drift from what the pipeline does:
``python -m helpers.datadict`` rewrites
``data/synthetic/data_dictionary.csv`` and ``docs/data_dictionary.md``; a test checks both are up to date.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers import codes, extract_columns, study
from helpers.prepare import (
    AGE_MAX_VALID,
    AGE_MIN_STUDY,
    AGE_MIN_VALID,
    ANALYSIS_COLUMNS,
    CHECKS,
    ETHNIC_CODES,
    NORMALISATIONS,
    REQUIRED_COLUMNS,
    STUDY_END,
    STUDY_START,
)

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
                  "helpers.extract_checks.NORMALISATIONS") for n in NORMALISATIONS]
    norm_rows += [(alias, "field name", f"read as {canonical}", "field name of a later dataset version, recognised "
                   "by default (any other name: a YAML column mapping)", _SRC_FIELD)
                  for alias, canonical in extract_columns.DEFAULT_ALIASES.items()]
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
        "<!-- Generated by `python -m helpers.datadict` from helpers/codes.py, helpers/study.py, "
        "helpers/extract_checks.py, helpers/extract_columns.py and helpers/prepare.py. Do not edit by hand: "
        "tests/test_datadict.py checks that it is up to date. -->",
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
    out += ["", "## Normalisations (`helpers.extract_checks.NORMALISATIONS`)", "",
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
            + "; ".join(f"`{a}` is read as `{c}`" for a, c in extract_columns.DEFAULT_ALIASES.items())
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


if __name__ == "__main__":  # python -m helpers.datadict -> rewrite the data dictionary files
    write_data_dictionary()
    print(f"wrote {DICTIONARY_CSV} and {DICTIONARY_MD}")
