"""Speed and memory figures for IAPT Pathways: printed, and written to benchmarks/results/benchmarks.json.

Not a timed test: run by hand or with `make bench`. Every measurement runs in its own Python process, so
its peak memory (ru_maxrss) is its own; each figure carries the machine's 1-minute load average when it was
taken (the machine may be shared). Cohort files live in a temporary folder under /tmp, deleted at the end.

    .venv/bin/python benchmarks/run_all.py            # everything (10 million rows: tens of minutes)
    .venv/bin/python benchmarks/run_all.py --quick    # skip the 10,000,000-row measurements
    .venv/bin/python benchmarks/run_all.py --sections generator extract   # only these
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import legacy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _cpu_s() -> float:
    """CPU seconds of this process, all its threads (user + system): what a figure costs on an idle machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def task_generate(n: int, folder: str) -> dict:
    """The CLI at national scale: n referrals to CSV and Parquet (and the truth CSV), imports included."""
    t0 = time.perf_counter()
    from helpers import cohort

    base = Path(folder) / f"cohort_{n}"
    cohort.main(["--n", str(n), "--out", f"{base}.csv", "--out", f"{base}.parquet"])
    return {"rows": n, "seconds": time.perf_counter() - t0,
            "csv_mb": Path(f"{base}.csv").stat().st_size / 1e6, "parquet_mb": Path(f"{base}.parquet").stat().st_size / 1e6}


def task_generate_legacy(n: int, folder: str) -> dict:
    """The generator before (pandas string rows, pandas CSV; run from its commit, benchmarks/legacy.py), CSV only.

    Run with the old package first on PYTHONPATH: raw and truth CSV written as its CLI wrote them.
    """
    t0 = time.perf_counter()
    from helpers import cohort

    old = legacy.from_baseline(cohort)
    out = Path(folder) / f"legacy_{n}.csv"
    generated = old.generate(n_referrals=n)
    old.write_csv(generated.raw, out)
    old.write_csv(generated.truth, out.with_name(out.stem + "_truth.csv"))
    seconds = time.perf_counter() - t0
    same = _same_bytes(out, Path(folder) / f"cohort_{n}.csv")
    out.unlink()
    out.with_name(out.stem + "_truth.csv").unlink()
    return {"rows": n, "seconds": seconds, "same_bytes_as_new": same}


def _same_bytes(a: Path, b: Path) -> bool | None:
    if not b.exists():
        return None
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


def task_mi(m: int) -> dict:
    from helpers import pipeline

    data = pipeline.load_study_data(n_imputations=m)
    t0 = time.perf_counter()
    est = pipeline.mi_estimates_from_study_data(data, weighted=True)
    return {"imputations": m, "models": int(est.groupby(["stage", "model"]).ngroups), "rows": len(data.frame),
            "seconds": time.perf_counter() - t0}


def task_pattern_fit(n_patterns: int) -> dict:
    """A multinomial fit on many covariate patterns (was a timed test; speed belongs here)."""
    import numpy as np

    from helpers import fitting

    rng = np.random.default_rng(61)
    X = np.column_stack([np.ones(n_patterns), (rng.random((n_patterns, 29)) < 0.3).astype(float)])
    eta = X @ rng.normal(0, 0.2, (30, 3))
    pr = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    counts = np.stack([rng.multinomial(50, pr[i]) for i in range(n_patterns)]).astype(float)
    t0 = time.perf_counter()
    res = fitting.fit_mnlogit_counts(X, counts)
    return {"patterns": n_patterns, "converged": bool(res.converged), "seconds": time.perf_counter() - t0}


def task_prepare(n: int) -> dict:
    """Raw NHS-coded rows to the analysis frame (was a timed test; speed belongs here)."""
    from helpers import cohort, prepare

    raw = cohort.generate(n_referrals=n).raw
    t0 = time.perf_counter()
    frame = prepare.prepare(raw).frame
    return {"rows": len(frame), "seconds": time.perf_counter() - t0}


TASKS = {"generate": task_generate, "generate_legacy": task_generate_legacy, "mi": task_mi,
         "pattern_fit": task_pattern_fit, "prepare": task_prepare}
SECTIONS = ["generator", "blocks", "models", "extract", "mi", "make_run"]
# Single-threaded BLAS, as in bench_extract.py: threaded BLAS spin-waits on a shared 2-core machine.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_child(task: str, *args: object, env: dict[str, str] = ENV) -> dict:
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--task", task, "--arg", *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, check=True, env=env)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_1min": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000,000-row measurements")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--legacy-generator-max", type=int, default=1_000_000,
                        help="largest size the old generator is measured at (at 10 million: ~160 s, ~7 GB)")
    parser.add_argument("--task", choices=list(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--arg", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.task:  # child process: one measurement
        values = [int(a) if a.isdigit() else a for a in args.arg]
        result = TASKS[args.task](*values)
        result["peak_rss_gb"] = _peak_gb()
        result["cpu_s"] = _cpu_s()
        print(json.dumps(result))
        return 0

    RESULTS.mkdir(parents=True, exist_ok=True)
    big = [] if args.quick else [10_000_000]
    report: dict = {"machine": {"python": platform.python_version(), "processor": platform.machine(),
                                "cores": os.cpu_count()}}
    folder = Path(tempfile.mkdtemp(prefix="iapt-bench-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        _sections(args, big, report, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    path = RESULTS / "benchmarks.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path.relative_to(ROOT)}")
    return 0


def _sections(args: argparse.Namespace, big: list[int], report: dict, folder: Path) -> None:
    sizes = [85_800, 1_000_000, *big]
    if "generator" in args.sections:
        print("Cohort generator: python -m helpers.cohort --n N (CSV + Parquet + truth CSV) vs the old row-by-row "
              "pandas generator (CSV only); load = 1-minute load average on this machine")
        report["generator"] = []
        with legacy.environment("generator", ENV) as old_env:
            _generator(args, sizes, folder, old_env, report["generator"])

    if "blocks" in args.sections:
        _blocks(report)

    if "models" in args.sections:
        print("Nine models, aggregated (pattern counts) vs row level (statsmodels): benchmarks/bench_models.py")
        models_json = RESULTS / "models.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_models.py"), "--sizes", "85800",
                        *[str(n) for n in big], "--out", str(models_json)], cwd=ROOT, check=True, env=ENV)
        report["models"] = json.loads(models_json.read_text())

    if "extract" in args.sections:
        print("Extract engine (DuckDB, Spark) vs the old pandas route: benchmarks/bench_extract.py")
        extract_json = RESULTS / "extract.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_extract.py"), "--sizes",
                        *[str(n) for n in sizes], "--data", str(folder), "--spark-max", "85800",
                        "--out", str(extract_json)], cwd=ROOT, check=True)
        report["extract"] = json.loads(extract_json.read_text())

    if "mi" in args.sections:
        print("Weighted multiple imputation, M = 20, all nine models pooled, 85,800 referrals (row level)")
        r = run_child("mi", 20)
        report["weighted_mi"] = r
        print(f"  {r['seconds']:.1f} s for {r['models']} models, peak memory {r['peak_rss_gb']:.2f} GB "
              f"(load {r['load_1min']:.1f})")

    if "make_run" in args.sections:
        print("The whole set: sequential and uncached beside shared and parallel (benchmarks/bench_run.py)")
        run_json = RESULTS / "run.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_run.py"), "--out", str(run_json)],
                       cwd=ROOT, check=True)
        report["make_run"] = json.loads(run_json.read_text())


def _generator(args: argparse.Namespace, sizes: list[int], folder: Path, old_env: dict[str, str] | None,
               rows: list[dict]) -> None:
    for n in sizes:
        r = run_child("generate", n, folder)
        rows.append({**r, "route": "new"})
        print(f"  {n:>12,} referrals  new: {r['seconds']:7.1f} s, peak {1024 * r['peak_rss_gb']:7.0f} MB"
              f", CPU {r['cpu_s']:6.1f} s  ({r['csv_mb']:.1f} MB CSV, {r['parquet_mb']:.1f} MB Parquet; "
              f"load {r['load_1min']:.1f})")
        if old_env is not None and n <= args.legacy_generator_max:
            old = run_child("generate_legacy", n, folder, env=old_env)
            rows.append({**old, "route": "legacy"})
            print(f"  {'':>12}             old: {old['seconds']:7.1f} s, peak {1024 * old['peak_rss_gb']:7.0f} MB"
                  f", CPU {old['cpu_s']:6.1f} s  (load {old['load_1min']:.1f}; "
                  f"same CSV bytes as new: {old['same_bytes_as_new']}; "
                  f"{old['seconds'] / r['seconds']:.1f}x the time, {old['peak_rss_gb'] / r['peak_rss_gb']:.1f}x "
                  "the memory)")


def _blocks(report: dict) -> None:
    print("Building blocks")
    r = run_child("pattern_fit", 10_000)
    report["pattern_fit"] = r
    print(f"  multinomial fit on {r['patterns']:,} patterns x 30 parameters: {r['seconds']:.3f} s")
    r = run_child("prepare", 85_800)
    report["prepare"] = r
    print(f"  prepare (raw rows to analysis frame), {r['rows']:,} rows: {r['seconds']:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
