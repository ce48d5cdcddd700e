"""Speed and memory figures for IAPT Pathways: printed, and written to benchmarks/results/benchmarks.json.

Not a timed test: run by hand or with `make bench`. Every measurement runs in its own Python process, so
its peak memory (ru_maxrss) is its own.

    .venv/bin/python benchmarks/run_all.py            # everything (10 million rows: tens of minutes)
    .venv/bin/python benchmarks/run_all.py --quick    # skip the 10,000,000-row measurements
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def task_cohort(n: int) -> dict:
    from helpers import cohort

    t0 = time.perf_counter()
    c = cohort.generate(n_referrals=n)
    seconds = time.perf_counter() - t0
    return {"rows": len(c.raw), "seconds": seconds}


def task_mi(m: int) -> dict:
    from helpers import pipeline

    data = pipeline.load_study_data(n_imputations=m)
    t0 = time.perf_counter()
    est = pipeline.mi_estimates(data, weighted=True)
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


TASKS = {"cohort": task_cohort, "mi": task_mi, "pattern_fit": task_pattern_fit, "prepare": task_prepare}


def run_child(task: str, arg: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--task", task, "--arg", str(arg)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000,000-row measurements")
    parser.add_argument("--task", choices=list(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--arg", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.task:  # child process: one measurement
        result = TASKS[args.task](args.arg)
        result["peak_rss_gb"] = _peak_gb()
        print(json.dumps(result))
        return 0

    RESULTS.mkdir(parents=True, exist_ok=True)
    big = [] if args.quick else [10_000_000]
    report: dict = {"machine": {"python": platform.python_version(), "processor": platform.machine(),
                                "cores": __import__("os").cpu_count()}}

    print("Cohort generation (calibrated mode, in memory)")
    report["cohort"] = []
    for n in [85_800, 1_000_000, *big]:
        r = run_child("cohort", n)
        report["cohort"].append(r)
        print(f"  {n:>12,} referrals: {r['seconds']:8.1f} s, peak memory {r['peak_rss_gb']:5.2f} GB")

    print("Building blocks")
    r = run_child("pattern_fit", 10_000)
    report["pattern_fit"] = r
    print(f"  multinomial fit on {r['patterns']:,} patterns x 30 parameters: {r['seconds']:.3f} s")
    r = run_child("prepare", 85_800)
    report["prepare"] = r
    print(f"  prepare (raw rows to analysis frame), {r['rows']:,} rows: {r['seconds']:.2f} s")

    print("Nine models, aggregated (pattern counts) vs row level (statsmodels): benchmarks/bench_models.py")
    sizes = ["85800", *[str(n) for n in big]]
    models_json = RESULTS / "models.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_models.py"), "--sizes", *sizes,
                    "--out", str(models_json)], cwd=ROOT, check=True)
    report["models"] = json.loads(models_json.read_text())

    print("Extract engine (DuckDB, Spark) vs the old pandas route: benchmarks/bench_extract.py")
    extract_json = RESULTS / "extract.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_extract.py"), "--sizes", "85800", "1000000",
                    *[str(n) for n in big], "--out", str(extract_json)], cwd=ROOT, check=True)
    report["extract"] = json.loads(extract_json.read_text())

    print("Weighted multiple imputation, M = 20, all nine models pooled, 85,800 referrals")
    r = run_child("mi", 20)
    report["weighted_mi"] = r
    print(f"  {r['seconds']:.1f} s for {r['models']} models, peak memory {r['peak_rss_gb']:.2f} GB")

    print("The whole set: sequential and uncached beside shared and parallel (benchmarks/bench_run.py)")
    run_json = RESULTS / "run.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_run.py"), "--out", str(run_json)], cwd=ROOT,
                   check=True)
    report["make_run"] = json.loads(run_json.read_text())

    path = RESULTS / "benchmarks.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
