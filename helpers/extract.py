"""The extract engine's face: read -> normalise -> check -> count one extract (:func:`run`), on DuckDB or Spark,
and the CLI that writes only what may leave a secure environment.

Why SQL: every model in the study depends on the data only through covariate-pattern counts, so the only step
whose cost grows with the number of referrals is reading, checking and counting. That step is one SQL
definition (DuckDB dialect, readable by a Databricks analyst). DuckDB runs it embedded and out of core
on a laptop; on Spark the same text is transpiled by sqlglot to Spark SQL, so there are never two hand-kept
copies. Only *reading* differs per engine (a CSV reader, a Parquet reader, a registered data frame); from the
view ``src`` on, both engines run the same statements.

The engine's modules, one job each: :mod:`helpers.extract_checks` (the schema, the checks and the
normalisations, as data), :mod:`helpers.extract_columns` (which column holds which field: aliases, a YAML
mapping), :mod:`helpers.extract_read` (the kind of source and a CSV's dialect), :mod:`helpers.extract_sql`
(the one SQL definition), :mod:`helpers.extract_engines` (DuckDB and Spark running it),
:mod:`helpers.extract_flow` (pattern counts, the flow table, the validation report) and this module.

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
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from helpers.extract_checks import (
    CHECKS,
    EXCLUSION_CHECKS,
    N_EXAMPLES,
    NORMALISATIONS,
    PATTERN_COLUMNS,
    REPORT_COLUMNS,
    REQUIRED_COLUMNS,
    ExtractError,
)
from helpers.extract_columns import read_column_mapping, validate_column_mapping
from helpers.extract_engines import ENGINES, DuckDBEngine, make_engine
from helpers.extract_flow import ExtractResult, ValidationReport, decode_patterns, example_value, flow_table
from helpers.extract_read import source_kind
from helpers.extract_sql import (
    EXACT_VIEWS,
    FAST_CHECK,
    FAST_VIEWS,
    HEAD_ROWS,
    ROWS_SQL,
    core_sql,
    examples_sql,
    head_views,
)


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
        summary, _ = aggregate(eng, views, kind)
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
        patterns = decode_patterns(summary)
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
                "example_values": tuple(example_value(c, a, b, f) for a, b, f in zip(e["v1"], e["v2"],
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


def aggregate(eng: Any, views: Mapping[str, str], kind: str, force: str | None = None) -> tuple[pd.DataFrame, str]:
    """The engine's one aggregate (first reason, check and normalisation masks, pattern codes, ``n``) and the
    route that made it: ``fast`` (pass 1's groups of raw values, normalised and checked per group) or ``rows``
    (pass 2: every row checked with the lookups joined to it, when a date is not YYYY-MM-DD or an identifier is
    padded or repeated). ``force='rows'`` takes pass 2 anyway (the tests compare the two routes)."""
    # Pass 1 (one scan) gives the groups of raw values and the distinct values; the lookups normalise them.
    eng.create_views({"agg_in": views["agg_in"]})
    for view in ("agg", "vals"):
        eng.materialise(view, views[view], small=True)
    eng.create_views({v: sql for v, sql in views.items() if v.startswith("lk_")})
    pre = eng.query(FAST_CHECK).iloc[0]
    fast = int(pre["pid_repeats"]) == 0 and int(pre["pid_padded"]) == 0 and int(pre["dates_other"]) == 0
    dups = views["dups"] if int(pre["pid_padded"]) == 0 else views["dups_all"]
    if int(pre["pid_repeats"]) == 0 and int(pre["pid_padded"]) == 0:
        dups += " LIMIT 0"  # no identifier hash repeats: no duplicates, and no second pass over the rows
    eng.create_views({"base": views["base"]})
    eng.materialise("dups", dups, small=True)
    for view in EXACT_VIEWS[1:] + FAST_VIEWS:
        if view in ("summary", "summary_fast"):
            continue
        if view == "checked" and kind == "pandas":
            eng.materialise(view, views[view], small=True)  # an in-memory frame is small: query it once
        else:
            eng.create_views({view: views[view]})
    # Pass 2 only when pass 1's groups cannot be the answer (a date not YYYY-MM-DD, an identifier padded or
    # repeated): then every row is checked with the lookups joined to it.
    route = "fast" if fast and force != "rows" else "rows"
    return eng.query(views["summary_fast" if route == "fast" else "summary"]), route


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


COUNTS_FILES = ("pattern_counts.csv", "flow.csv")


def is_counts_folder(path: str | Path) -> bool:
    """True for a folder that holds ``pattern_counts.csv`` (what :func:`write` leaves): aggregates, not rows."""
    return Path(path).is_dir() and (Path(path) / COUNTS_FILES[0]).is_file()


def read_counts_folder(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``pattern_counts.csv`` and ``flow.csv`` from the folder ``python -m helpers.extract --out`` wrote, checked
    to be one run's (the flow's analysed referrals are the counts' total)."""
    folder = Path(folder)
    need = [folder / name for name in COUNTS_FILES]
    absent = [p.name for p in need if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{folder.name}: no {' or '.join(absent)} here; give the folder that "
                                "'python -m helpers.extract PATH --out DIR' wrote")
    pc = read_pattern_counts(need[0])
    flow = pd.read_csv(need[1], dtype=str, keep_default_na=False)  # blank 'check' stays '' as the engine wrote it
    analysed = flow.loc[flow["step"] == "analysed", "n_rows"] if {"step", "n_rows"} <= set(flow.columns) else []
    if len(analysed) != 1:
        raise ExtractError(f"{need[1].name}: not the flow table 'python -m helpers.extract' writes (no 'analysed' line)")
    if int(analysed.iloc[0]) != int(pc["n"].sum()):  # the two files must come from one extract run
        raise ExtractError(f"{need[0].name} counts {int(pc['n'].sum()):,} referrals but {need[1].name} says "
                           f"{int(analysed.iloc[0]):,} were analysed: the two files are not from the same extract run")
    flow["n_rows"] = flow["n_rows"].astype(np.int64)
    flow["n_remaining"] = pd.to_numeric(flow["n_remaining"].replace("", None)).astype("Int64")
    return pc, flow


def folder_parser(prog: str, description: str, source: str, source_help: str) -> argparse.ArgumentParser:
    """The command line of a step that reads ``source`` and writes only into ``--out DIR``: this module's and
    ``python -m helpers.fromcounts``, which reads the folder this one writes."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument(source, help=source_help)
    ap.add_argument("--out", required=True, help="output folder")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = folder_parser("python -m helpers.extract", (
        "Aggregate an IAPT extract where it lives: writes pattern_counts.csv (one row per covariate pattern x "
        "outcomes, count n) and flow.csv (every row accounted for). Nothing row-level is written."),
        "path", "CSV (any delimiter, .gz), Parquet file or folder, or (spark) a table name")
    ap.add_argument("--engine", choices=ENGINES, default="duckdb")
    ap.add_argument("--columns", help="YAML mapping {study field: your column name}")
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
