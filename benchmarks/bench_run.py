"""The whole set, the route before 0.3 beside today's: wall seconds, their ratio, and the same tables.

    .venv/bin/python benchmarks/bench_run.py                  # one round: sequential, then shared + parallel
    .venv/bin/python benchmarks/bench_run.py --rounds 2       # alternate the order, report the medians
    .venv/bin/python benchmarks/bench_run.py -p n_referrals=20000 --out benchmarks/results/run.json

Routes, each ``python -m helpers.run --no-screenshot`` into its own temporary folder:
- ``sequential``: ``--sequential --no-cache``: one notebook after another, each computing for itself;
- ``shared_parallel``: the default: notebooks on every core, shared results computed once per run.

Both runs happen in this one invocation, one after the other (never at the same time), so they see the same
machine; the load average is printed beside them because the machine may be shared, and so is the CPU time of
each run and every process it waited for (its workers and kernels), which load changes far less than wall time. Every file under
``tables/`` (the run's result tables and the tables the notebooks write) must be byte for byte the same in both
routes, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUTES = {"sequential": ["--sequential", "--no-cache"], "shared_parallel": []}


def run_once(route: str, out: Path, extra: list[str]) -> dict:
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--no-screenshot", "--out", str(out),
                           *ROUTES[route], *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{route} run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return {"route": route, "wall_seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "notebooks": {n["name"]: n["seconds"] for n in record["notebooks"]}}


def tables(out: Path) -> dict[str, bytes]:
    folder = out / "tables"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds; the order alternates between rounds")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a run parameter for both routes")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    extra = [a for item in args.param for a in ("-p", item)]
    results: dict[str, list[dict]] = {r: [] for r in ROUTES}
    print(f"The whole set, both routes, {args.rounds} round(s); {os.cpu_count()} cores; "
          f"load average now {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="iapt-bench-") as scratch:
        reference: dict[str, bytes] | None = None
        for i in range(args.rounds):
            order = list(ROUTES) if i % 2 == 0 else list(reversed(ROUTES))
            for route in order:
                out = Path(scratch) / f"{route}-{i}"
                r = run_once(route, out, extra)
                results[route].append(r)
                print(f"  round {i + 1} {route:<16} {r['wall_seconds']:7.1f} s wall, {r['cpu_seconds']:7.1f} s CPU "
                      f"(load average {r['load_before']:.2f} before, {r['load_after']:.2f} after)", flush=True)
                found = tables(out)
                if reference is None:
                    reference = found
                elif found != reference:
                    differ = sorted(k for k in set(found) | set(reference) if found.get(k) != reference.get(k))
                    raise SystemExit(f"tables differ between routes: {', '.join(differ)}")
    seq = statistics.median(r["wall_seconds"] for r in results["sequential"])
    par = statistics.median(r["wall_seconds"] for r in results["shared_parallel"])
    slowest = {route: max(rs[-1]["notebooks"].items(), key=lambda kv: kv[1]) for route, rs in results.items()}
    print(f"sequential, no cache:      {seq:7.1f} s (slowest notebook {slowest['sequential'][0]} "
          f"{slowest['sequential'][1]:.1f} s)")
    print(f"shared + parallel:         {par:7.1f} s (slowest notebook {slowest['shared_parallel'][0]} "
          f"{slowest['shared_parallel'][1]:.1f} s)")
    print(f"ratio shared+parallel / sequential: {par / seq:.2f}")
    cpu = {route: statistics.median(r["cpu_seconds"] for r in rs) for route, rs in results.items()}
    print(f"CPU seconds (the run and every process it waited for): sequential {cpu['sequential']:.1f}, "
          f"shared + parallel {cpu['shared_parallel']:.1f}, ratio {cpu['shared_parallel'] / cpu['sequential']:.2f}")
    print(f"tables: {len(reference or {})} files, byte for byte the same in both routes")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"sequential_seconds": seq, "shared_parallel_seconds": par,
                                        "ratio": round(par / seq, 3), "cpu_seconds": cpu, "tables_identical": True,
                                        "cores": os.cpu_count(), "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
