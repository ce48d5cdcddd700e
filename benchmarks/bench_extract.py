"""Extract -> pattern counts -> the nine models and weighted MI (M = 20), by size and engine, against the old
pandas route (``helpers/prepare.py`` before the engine, run from its commit: ``benchmarks/legacy.py``) on the
same file in the same run.

Every measurement runs in its own Python process, so its peak memory (ru_maxrss) is its own.

    .venv/bin/python benchmarks/bench_extract.py --sizes 85800 1000000 10000000 [--spark-max 1000000] [--data DIR]

Cohort files (``cohort_N.csv``, and ``cohort_N.parquet`` for the DuckDB-on-Parquet route) are taken from
``--data`` (default: a folder under /tmp, deleted at the end), generated there by ``python -m helpers.cohort``
when absent; 85,800 is the committed cohort (its Parquet twin is written beside the others).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import legacy

ROOT = Path(__file__).resolve().parent.parent
M = 20


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cohort_files(n: int, data: Path) -> dict[str, Path]:
    """The synthetic cohort of n referrals as CSV (the committed one for 85,800) and Parquet, generated once."""
    from helpers import cohort

    csv, parquet = data / f"cohort_{n}.csv", data / f"cohort_{n}.parquet"
    if n == 85_800:
        csv = cohort.DEFAULT_COHORT
    if not parquet.exists() or (n != 85_800 and not csv.exists()):
        data.mkdir(parents=True, exist_ok=True)
        outs = ["--out", str(parquet)] + ([] if n == 85_800 else ["--out", str(csv)])
        subprocess.run([sys.executable, "-m", "helpers.cohort", "--n", str(n), *outs,
                        "--truth-out", str(data / f"cohort_{n}_truth.csv")], cwd=ROOT, check=True,
                       capture_output=True)
    return {"csv": csv, "parquet": parquet}


def _margin():
    from helpers import pipeline

    return pipeline.population_margin(pipeline.load_study_data())  # the default cohort's truth margin


def task_pandas(path: str) -> dict:
    """The old route: pandas read_extract + prepare (strings), then the row-level ModelPlan and row MI.

    Run with the baseline folder first on PYTHONPATH (the old prepare.py as legacy_pandas_prepare).
    """
    import legacy_pandas_prepare
    import numpy as np

    from helpers import imputation, models, pooling

    old = legacy.from_baseline(legacy_pandas_prepare)

    margin = _margin()
    t0 = time.perf_counter()
    prepared = old.prepare(old.read_extract(path))
    t1 = time.perf_counter()
    models.fit_all(prepared.frame)
    res = imputation.impute_ethnicity(prepared.frame, margin, M, np.random.default_rng(1))
    pooling.mi_estimates_from_rows(prepared.frame, res, progress=False)
    t2 = time.perf_counter()
    return {"extract_s": t1 - t0, "fits_s": t2 - t1, "total_s": t2 - t0, "rows": len(prepared.frame)}


def task_engine(path: str, engine: str) -> dict:
    """The engine: read -> normalise -> check -> count, then the nine models and weighted MI from counts."""
    import numpy as np

    from helpers import extract, fromcounts

    margin = _margin()
    spark = None
    if engine == "spark":
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "4")
                 .config("spark.driver.memory", "2g").config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.driver.host", "127.0.0.1").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
    t0 = time.perf_counter()
    res = extract.run(path, engine=engine, spark=spark)
    t1 = time.perf_counter()
    fromcounts.estimates(res.pattern_counts, margin, M, np.random.default_rng(1))
    t2 = time.perf_counter()
    return {"extract_s": t1 - t0, "fits_s": t2 - t1, "total_s": t2 - t0, "rows": int(res.pattern_counts["n"].sum()),
            "patterns": len(res.pattern_counts)}


# Single-threaded BLAS for every route alike: the model matrices are small, and threaded BLAS spin-waits on a
# shared 2-core machine (measured here: 8 s instead of 110 s for the same fits under load).
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_child(*args: str, env: dict[str, str] = ENV) -> dict:
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--task", *args], cwd=ROOT, capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_1min": load}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[85_800, 1_000_000, 10_000_000])
    ap.add_argument("--spark-max", type=int, default=1_000_000, help="largest size run on Spark (local mode)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", type=Path, help="folder for the cohort files (default: a temporary one, deleted)")
    ap.add_argument("--task", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.task:
        kind, path = a.task[0], a.task[1]
        r = task_pandas(path) if kind == "pandas" else task_engine(path, kind)
        r["peak_gb"] = _peak_gb()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        r["cpu_s"] = ru.ru_utime + ru.ru_stime  # all threads: the cost on an idle machine
        print(json.dumps(r))
        return 0
    try:
        import pyspark  # noqa: F401
        have_spark = True
    except ImportError:
        have_spark = False
    data = a.data or Path(tempfile.mkdtemp(prefix="iapt-extract-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        with legacy.environment("pandas_prepare", ENV) as pandas_env:
            results = _measure(a, data, have_spark, pandas_env)
    finally:
        if a.data is None:
            shutil.rmtree(data, ignore_errors=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _ratio(base: dict, r: dict) -> str:
    t, m = base["total_s"] / r["total_s"], base["peak_gb"] / r["peak_gb"]
    time = f"{t:.1f}x faster" if t >= 1 else f"{1 / t:.1f}x slower"
    return f"{time}, {m:.1f}x less memory" if m >= 1 else f"{time}, {1 / m:.1f}x the memory"


def _measure(a: argparse.Namespace, data: Path, have_spark: bool, pandas_env: dict[str, str] | None) -> list[dict]:
    results = []
    print(f"Extract -> all complete-case and weighted-MI (M = {M}) estimates, by route "
          "(extract = read, check, count; fits = 9 models + weighted MI from counts; load = 1-minute load average)")
    print(f"  {'referrals':>12}  {'route':<16} {'extract s':>9} {'fits s':>7} {'total s':>8} {'peak MB':>8} "
          f"{'CPU s':>6} {'load':>5}  ratio to pandas")
    for n in a.sizes:
        files = cohort_files(n, data)
        base = None
        routes = (["pandas"] if pandas_env else []) + ["duckdb", "duckdb_parquet"] + (
            ["spark"] if have_spark and n <= a.spark_max else [])
        for route in routes:
            path = str(files["parquet"] if route == "duckdb_parquet" else files["csv"])
            r = run_child("duckdb" if route == "duckdb_parquet" else route, path,
                          env=pandas_env if route == "pandas" else ENV)
            r.update(size=n, route=route)
            results.append(r)
            if "error" in r:
                print(f"  {n:>12,}  {route:<16} failed: {r['error']}")
                continue
            base = r if route == "pandas" else base
            ratio = "(old route)" if route == "pandas" else _ratio(base, r) if base else "(old route not run)"
            label = {"pandas": "pandas (old)", "duckdb": "duckdb csv", "duckdb_parquet": "duckdb parquet",
                     "spark": "spark local csv"}[route]  # its peak MB is the Python driver's, not the JVM's
            print(f"  {n:>12,}  {label:<16} {r['extract_s']:9.1f} {r['fits_s']:7.1f} {r['total_s']:8.1f} "
                  f"{1024 * r['peak_gb']:8.0f} {r['cpu_s']:6.1f} {r['load_1min']:5.1f}  {ratio}")
    return results


if __name__ == "__main__":
    raise SystemExit(main())
