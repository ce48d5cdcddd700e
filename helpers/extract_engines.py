"""The two engines that run the extract SQL: DuckDB (embedded, out of core, the default) and Spark.

Why: only *reading* differs per engine (a CSV reader, a Parquet reader, a registered data frame); from the view
``src`` on, both run the same statements of :mod:`helpers.extract_sql`, Spark's transpiled by sqlglot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import duckdb
import numpy as np
import pandas as pd
import sqlglot

from helpers.extract_checks import FIRST_DATA_LINE, REQUIRED_COLUMNS, ExtractError
from helpers.extract_columns import resolve_columns
from helpers.extract_read import check_pandas, sniff_csv
from helpers.extract_sql import literal

ENGINES = ("duckdb", "spark")


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
            check_pandas(source)
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
                rel = (f"read_csv({literal(str(p))}, all_varchar = true, header = true, delim = {literal(d['delimiter'])}, "
                       f"quote = {literal(d['quote'])}, escape = {literal(d['quote'])})")
                line = f"ROW_NUMBER() OVER () + {FIRST_DATA_LINE - 1}"
            else:
                glob = str(p / "**" / "*.parquet") if kind == "parquet_dir" else str(p)
                rel = f"read_parquet({literal(glob)}, file_row_number = true, filename = true)"
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
            check_pandas(source)
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
