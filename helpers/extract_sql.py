"""The one SQL definition of normalise -> check -> count (DuckDB dialect; Spark runs it transpiled by sqlglot).

Why SQL: every model in the study depends on the data only through covariate-pattern counts, so the only step
whose cost grows with the number of referrals is reading, checking and counting. This module holds that step
as SQL text over the view ``src`` (``line`` + the nine fields as text), readable by a Databricks analyst;
:mod:`helpers.extract_engines` runs it on DuckDB as it is and on Spark transpiled, so there are never two
hand-kept copies.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from helpers import codes, study
from helpers.extract_checks import (
    AGE_MAX_VALID,
    AGE_MIN_STUDY,
    AGE_MIN_VALID,
    CHECKS,
    ETHNIC_CODES,
    EXCLUSION_CHECKS,
    GENDER_VARIANTS,
    N_EXAMPLES,
    NORMALISATIONS,
    PATTERN_COLUMNS,
    REQUIRED_COLUMNS,
    STUDY_END,
    STUDY_START,
    Check,
)

#: National ethnic category letters: a two-character local code is read by its first character.
_NATIONAL_LETTERS: list[str] = [c for c in codes.ETHNIC_CATEGORY_LABELS if len(c) == 1]


def literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def _case_map(expr: str, mapping: Mapping[str, Any], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {literal(k)} THEN {v if isinstance(v, (int, np.integer)) else literal(v)}"
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

    Why this shape: every normalisation and code lookup is a function of one field's raw value, so pass 1 (one
    scan, ``agg``) groups the rows by the raw coded fields and age, the referral year and how the three dates
    compare as text, and finds in the same scan (GROUPING SETS) the distinct date values and the identifier
    hashes that repeat. The lookups (``lk_*``) normalise the distinct values (``vals``); joined to pass 1's
    groups (``joined_fast`` -> ``checked_fast`` -> ``summary_fast``) they give the answer whenever
    :data:`FAST_CHECK` finds every date a valid YYYY-MM-DD (or blank) and no identifier padded or repeated,
    where comparing dates as text is comparing them as dates. Otherwise pass 2 checks every row with the
    lookups joined to it (``base`` -> ``dups`` (small, kept) -> ``joined`` -> ``checked`` -> ``summary``).
    Both routes apply the same checks and normalisations (``checks`` below) to the same columns, and end in
    one aggregate: flow, check counts, normalisation counts and pattern counts.
    """
    sh = _SHORT_ALL
    base = ("SELECT line, " + ", ".join(f"COALESCE({c}, '') AS r_{sh[c]}" for c in REQUIRED_COLUMNS)
            + f", TRIM(COALESCE(PathwayID, ''), {_WS}) AS t_pid FROM src")
    # Pass 1, one scan: the rows grouped by the raw coded fields and age, the referral year and how the three
    # dates compare *as text* (exact when every date is a valid YYYY-MM-DD, which the distinct date values,
    # found in the same scan, tell), plus the identifier hashes that repeat.
    start, end = literal(STUDY_START), literal(STUDY_END)
    fast_key = ["r_gen", "r_eth", "r_src", "r_bor", "r_age", "ry", "sa", "st", "ro", "pb", "pw"]
    agg_in = ("SELECT " + ", ".join(f"COALESCE({c}, '') AS r_{sh[c]}" for c in REQUIRED_COLUMNS if c != "PathwayID")
              + ", COALESCE(PathwayID, '') AS r_pid FROM src")
    agg_rows = ("SELECT r_gen, r_eth, r_src, r_bor, r_age, r_ref, r_ass, r_thr, SUBSTRING(r_ref, 1, 4) AS ry, "
                "CASE WHEN r_ass = '' THEN 0 WHEN r_ass < r_ref THEN 1 ELSE 2 END AS sa, "
                "CASE WHEN r_thr = '' THEN 0 WHEN r_ass = '' THEN 3 WHEN r_thr < r_ass THEN 1 ELSE 2 END AS st, "
                f"(r_ref < {start} OR r_ref > {end}) AS ro, r_pid = '' AS pb, "
                "(r_pid <> '' AND (ASCII(r_pid) IN (9, 10, 13, 32) OR ASCII(RIGHT(r_pid, 1)) IN (9, 10, 13, 32))) AS pw, "
                "CASE WHEN r_pid <> '' THEN HASH(r_pid) END AS h FROM agg_in")
    gs = ("CASE WHEN GROUPING(h) = 0 THEN 'pid' WHEN GROUPING(r_ref) = 0 THEN 'ref' WHEN GROUPING(r_ass) = 0 "
          "THEN 'ass' WHEN GROUPING(r_thr) = 0 THEN 'thr' ELSE 'main' END")
    agg = (f"SELECT {gs} AS gs, {', '.join(fast_key)}, r_ref, r_ass, r_thr, h, COUNT(*) AS n FROM ({agg_rows}) AS r "
           f"GROUP BY GROUPING SETS (({', '.join(fast_key)}), (r_ref), (r_ass), (r_thr), (h)) "
           "HAVING GROUPING(h) = 1 OR (COUNT(*) > 1 AND h IS NOT NULL)")
    vals = " UNION ALL ".join(
        [f"SELECT '{c}' AS col, r_{c} AS k, MAX(h) AS h, SUM(n) AS n FROM agg WHERE gs = 'main' GROUP BY r_{c}"
         for c in ("gen", "eth", "src", "bor", "age")]
        + [f"SELECT '{c}' AS col, r_{c} AS k, h, n FROM agg WHERE gs = '{c}'" for c in ("ref", "ass", "thr")]
        + ["SELECT 'pid' AS col, CAST(NULL AS VARCHAR) AS k, h, n FROM agg WHERE gs = 'pid'"])

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
    views: dict[str, str] = {"base": base, "agg_in": agg_in, "agg": agg, "vals": vals}
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
    # Duplicates exactly, among the identifiers whose hash repeats (``dups``; pass 1 hashed the raw identifier,
    # which is the trimmed one when no identifier has surrounding whitespace), else among all (``dups_all``).
    views["dups"] = ("SELECT t_pid AS d_pid, MIN(line) AS first_line FROM base "
                     "WHERE t_pid <> '' AND HASH(r_pid) IN (SELECT h FROM vals WHERE col = 'pid') "
                     "GROUP BY t_pid HAVING COUNT(*) > 1")
    views["dups_all"] = ("SELECT t_pid AS d_pid, MIN(line) AS first_line FROM base WHERE t_pid <> '' "
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
    views["joined0"] = joined
    # What the checks read of the identifier and the dates, per row (the fast route has them per group)
    dated = {
        "pid_blank": "t_pid = ''",
        "pid_dup": "first_line IS NOT NULL AND line > first_line",
        "pid_ws": "r_pid <> t_pid",
        "ref_bad": "ref_ymd IS NULL",
        "ref_out": (f"ref_ymd IS NOT NULL AND (ref_ymd < {STUDY_START.replace('-', '')} "
                    f"OR ref_ymd > {STUDY_END.replace('-', '')})"),
        "ass_blank": "ass_form = 'blank'",
        "ass_bad": "ass_form <> 'blank' AND ass_ymd IS NULL",
        "ass_lt_ref": "ass_ymd IS NOT NULL AND ref_ymd IS NOT NULL AND ass_ymd < ref_ymd",
        "thr_blank": "thr_form = 'blank'",
        "thr_bad": "thr_form <> 'blank' AND thr_ymd IS NULL",
        "thr_lt_ass": "thr_ymd IS NOT NULL AND ass_ymd IS NOT NULL AND thr_ymd < ass_ymd",
        **{f"{f}_{x}": tmpl.format(s=x) for x in ("ref", "ass", "thr") for f, tmpl in (
            ("tp", "{s}_form = 'iso_time' AND {s}_ymd IS NOT NULL"),
            ("df", "{s}_form = 'dmy' AND {s}_ymd IS NOT NULL AND ({s}_d > 12 OR {s}_d = {s}_m)"),
            ("dfa", "{s}_form = 'dmy' AND {s}_ymd IS NOT NULL AND {s}_d <= 12 AND {s}_d <> {s}_m"))},
    }
    views["joined"] = "SELECT *, " + ", ".join(f"{v} AS {k}" for k, v in dated.items()) + ", 1 AS n FROM joined0"
    # The fast route (every date a valid YYYY-MM-DD or blank, no identifier padded or repeated: see
    # FAST_CHECK): the same columns per group of pass 1, the lookups joined to groups instead of rows.
    text_dates = {"pid_blank": "a.pb", "pid_dup": "FALSE", "pid_ws": "a.pw", "ref_bad": "FALSE", "ref_out": "a.ro",
                  "ass_blank": "a.sa = 0", "ass_bad": "FALSE", "ass_lt_ref": "a.sa = 1", "thr_blank": "a.st = 0",
                  "thr_bad": "FALSE", "thr_lt_ass": "a.st = 1"}
    assert set(text_dates) | {k for k in dated if k[:k.index("_")] in ("tp", "df", "dfa")} == set(dated)
    lookups = joined[joined.index("g.ws AS ws_gen"):joined.index(", " + ", ".join(
        f"{x}.ws AS ws_{x}" for x in ("ref",)))]
    views["joined_fast"] = (
        "SELECT a.n, " + lookups + ", CAST(a.ry AS INTEGER) AS ref_y, "
        + ", ".join(f"FALSE AS ws_{x}" for x in ("ref", "ass", "thr")) + ", "
        + ", ".join(f"{text_dates.get(k, 'FALSE')} AS {k}" for k in dated)
        + " FROM agg AS a LEFT JOIN lk_gen AS g ON a.r_gen = g.k LEFT JOIN lk_eth AS e ON a.r_eth = e.k "
        "LEFT JOIN lk_src AS s ON a.r_src = s.k LEFT JOIN lk_bor AS o ON a.r_bor = o.k "
        "LEFT JOIN lk_age AS a2 ON a.r_age = a2.k WHERE a.gs = 'main'").replace(" a.ws AS ws_age, a.dec AS dec_age, "
        "a.n AS n_age, a.band AS c_age_band", " a2.ws AS ws_age, a2.dec AS dec_age, a2.n AS n_age, a2.band AS c_age_band")

    # -- checks, in the order of CHECKS
    cond = {
        "pathway_id_blank": "pid_blank",
        "pathway_id_duplicate": "pid_dup",
        "referral_date_invalid": "ref_bad",
        "referral_date_out_of_period": "ref_out",
        "age_not_integer": "n_age IS NULL",
        "age_out_of_range": f"n_age IS NOT NULL AND (n_age < {AGE_MIN_VALID} OR n_age > {AGE_MAX_VALID})",
        "gender_unknown_code": "bad_gen",
        "ethnic_unknown_code": "bad_eth",
        "source_unknown_code": "bad_src",
        "borough_unknown": "bad_bor",
        "assessment_date_invalid": "ass_bad",
        "assessment_before_referral": "ass_lt_ref",
        "treatment_date_invalid": "thr_bad",
        "treatment_without_assessment": "NOT thr_blank AND ass_blank",
        "treatment_before_assessment": "thr_lt_ass",
        "age_under_18": f"n_age IS NOT NULL AND n_age >= {AGE_MIN_VALID} AND n_age <= {AGE_MAX_VALID} "
                        f"AND n_age < {AGE_MIN_STUDY}",
        "gender_not_known": "nk_gen",
        "ethnicity_missing": "miss_eth",
    }
    assert list(cond) == [c.code for c in CHECKS]
    date_flag = {"date_time_part_dropped": "tp", "date_day_first": "df", "date_day_first_ambiguous": "dfa"}
    nz = {
        "whitespace_trimmed": "pid_ws OR " + " OR ".join(f"ws_{c}" for c in _VALUE_COLS),
        "code_case_folded": "cf_gen OR cf_eth OR cf_src OR cf_bor",
        "ethnic_two_character": "two_eth",
        "ethnic_negative_code": "neg_eth",
        "age_decimal": "dec_age",
        "gender_other_dataset_code": "alt_gen",
        **{code: " OR ".join(f"{f}_{x}" for x in ("ref", "ass", "thr")) for code, f in date_flag.items()},
    }
    assert list(nz) == [n.code for n in NORMALISATIONS]
    ck_mask = " + ".join(f"CASE WHEN COALESCE({cond[c.code]}, FALSE) THEN {2 ** i} ELSE 0 END"
                         for i, c in enumerate(CHECKS))
    nz_mask = " + ".join(f"CASE WHEN COALESCE({nz[n.code]}, FALSE) THEN {2 ** i} ELSE 0 END"
                         for i, n in enumerate(NORMALISATIONS))
    first = ("CASE " + " ".join(f"WHEN COALESCE({cond[c.code]}, FALSE) THEN {i + 1}"
                                for i, c in enumerate(EXCLUSION_CHECKS)) + " ELSE 0 END")
    checks = (f"{ck_mask} AS ck_mask, {nz_mask} AS nz_mask, {first} AS first_reason, c_ethnicity, c_ethnic_code, "
              f"c_age_band, c_gender, COALESCE(ref_y - {min(study.YEARS)}, -1) AS c_year, c_borough, c_referral_source, "
              "CASE WHEN NOT ass_blank THEN 1 ELSE 0 END AS c_assessed, "
              "CASE WHEN NOT thr_blank THEN 1 ELSE 0 END AS c_treated")
    views["checked"] = ("SELECT line, r_pid, r_ref, r_age, r_gen, r_eth, r_src, r_bor, r_ass, r_thr, t_pid, "
                        f"COALESCE(first_line, 0) AS first_line, ref_ymd, n_age, n, {checks} FROM joined")
    views["checked_fast"] = f"SELECT n, {checks} FROM joined_fast"
    pcols = [f"c_{c}" for c in PATTERN_COLUMNS]
    kept = ", ".join(f"CASE WHEN first_reason = 0 THEN {c} ELSE -1 END AS {c}" for c in pcols)
    for suffix in ("", "_fast"):
        views["summary0" + suffix] = f"SELECT first_reason, ck_mask, nz_mask, {kept}, n FROM checked{suffix}"
        views["summary" + suffix] = (
            f"SELECT first_reason, ck_mask, nz_mask, {', '.join(pcols)}, CAST(SUM(n) AS BIGINT) AS n "
            f"FROM summary0{suffix} GROUP BY first_reason, ck_mask, nz_mask, {', '.join(pcols)}")
    return views


#: Views of the exact route only, and of the fast route only (the rest is shared).
EXACT_VIEWS = ("dups_all", "joined0", "joined", "checked", "summary0", "summary")
FAST_VIEWS = ("joined_fast", "checked_fast", "summary0_fast", "summary_fast")
#: Whether pass 1's groups are the answer (all zero): identifier hashes that repeat, rows with a padded
#: identifier, distinct date values that are not a valid YYYY-MM-DD (or blank, for the assessment and treatment).
FAST_CHECK = ("SELECT (SELECT COUNT(*) FROM agg WHERE gs = 'pid') AS pid_repeats, "
              "(SELECT COUNT(*) FROM agg WHERE gs = 'main' AND pw) AS pid_padded, "
              "(SELECT COUNT(*) FROM vals AS v JOIN lk_date AS d ON v.k = d.k WHERE v.col IN ('ref', 'ass', 'thr') "
              "AND NOT (NOT d.ws AND ((d.form = 'iso' AND d.ymd IS NOT NULL) OR (v.col <> 'ref' AND d.form = 'blank')))) "
              "AS dates_other")
HEAD_ROWS = 200_000


def head_views(views: Mapping[str, str]) -> dict[str, str]:
    """The row-level views over ``src_head`` (the first rows in file order) instead of ``src``: the lookups and
    the duplicate identifiers stay those of the whole extract, so a head row is checked exactly as in a full scan."""
    return {"base_h": views["base"].replace(" FROM src", " FROM src_head"),
            "joined0_h": views["joined0"].replace(" FROM base AS b ", " FROM base_h AS b "),
            "joined_h": views["joined"].replace(" FROM joined0", " FROM joined0_h"),
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
