"""Benchmark: the nine pathway models fitted on covariate-pattern counts vs on rows (statsmodels).

Why: the count-based fits are what make weighted multiple imputation cheap; this script shows how much time
they save, and checks on the way that both give the same estimates.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_models.py [--sizes 85800 10000000] [--out FILE]

Frames come from the project's cohort generator + ``helpers.prepare`` when they import and the size is at
most ``--cohort-max`` (generating 10 million raw NHS-coded rows is itself slow and memory-hungry); otherwise
from ``helpers.planted.planted_frame`` (the planted-gaps frame the tests of design and models use). Row-level
multinomial fits are skipped at a size where their time (extrapolated linearly from the previous size) would
exceed ``--max-row-seconds`` or their memory ``--max-row-gb``; the output says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers import models, planted, study  # noqa: E402


def build_frame(n: int, cohort_max: int, seed: int) -> tuple[pd.DataFrame, str]:
    """Project generator + prepare when possible (and not too large), else the planted-gaps frame."""
    if n <= cohort_max:
        try:
            from helpers import cohort, prepare

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = cohort.generate(n, seed=seed).raw
                return prepare.prepare(raw).frame, "helpers.cohort + helpers.prepare"
        except Exception as exc:  # the generator is someone else's work in progress
            print(f"  (helpers.cohort/prepare unavailable: {type(exc).__name__}: {exc}; using helpers.planted)")
    return planted.planted_frame(n, seed, missing_eth=0.1, ids=n <= 2_000_000), "helpers.planted.planted_frame"


def row_design(frame: pd.DataFrame, stage: str, covariates: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Row-level y and dummy design (same coding as design.design_matrix), built with numpy, not patsy."""
    spec = study.STAGE_SPECS[stage]
    keep = frame["ethnicity"].notna().to_numpy()
    if spec.among_assessed:
        keep &= frame["assessed"].to_numpy() == 1
    for c in covariates:
        keep &= frame[c].notna().to_numpy()
    idx = np.flatnonzero(keep)
    cols = ["ethnicity", *covariates]
    codes = [frame[c].cat.codes.to_numpy()[idx] for c in cols]
    levels = [list(frame[c].cat.categories) for c in cols]
    p = 1 + sum(len(lv) - 1 for lv in levels)
    X = np.zeros((idx.size, p))
    X[:, 0] = 1.0
    names = ["Intercept"]
    j = 1
    for c, cd, lv in zip(cols, codes, levels):
        for lvl in range(1, len(lv)):
            X[:, j] = cd == lvl
            names.append(f"{c}[{lv[lvl]}]")
            j += 1
    if spec.kind == "logit":
        y = frame[spec.outcome].to_numpy()[idx].astype(np.int64)
    else:
        y = frame[spec.outcome].cat.codes.to_numpy()[idx].astype(np.int64)
    return y, X, names


def multinomial_skip(n: int, frame: pd.DataFrame, args: argparse.Namespace, prev: dict | None) -> str | None:
    """Reason to skip the row-level MNLogit fits at this size (projected linearly from the last size)."""
    if prev is None:
        return None
    prev_mn = [r for r in prev["models"] if r["kind"] == "mnlogit"]
    if any(r["row_level_s"] is None for r in prev_mn):
        return "skipped at the previous size already"
    # Linear extrapolation is optimistic: on the 2-core test machine the unadjusted MNLogit took 0.33 s at
    # 85,800 rows and 244 s at 10 million (x740 for x117 rows), hence the factor args.superlinear.
    proj_s = sum(r["row_level_s"] for r in prev_mn) * n / prev["n"] * args.superlinear
    # statsmodels MNLogit holds the design plus about five temporaries of its size (Hessian blocks)
    p = 1 + sum(len(frame[c].cat.categories) - 1 for c in ["ethnicity", *study.MODELS["adjusted_full"]])
    proj_gb = 6 * 8 * n * p / 1024**3 + 1.0
    if proj_s > args.max_row_seconds or proj_gb > args.max_row_gb:
        return (f"the three MNLogit fits are projected to take {proj_s:.0f} s and {proj_gb:.1f} GB "
                f"(linear from N={prev['n']:,} x safety factor {args.superlinear:g}), beyond "
                f"--max-row-seconds {args.max_row_seconds:.0f} / "
                f"--max-row-gb {args.max_row_gb:.0f}")
    return None


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_size(n: int, args: argparse.Namespace, prev: dict | None) -> dict:
    import statsmodels.api as sm

    print(f"\n== N = {n:,} rows")
    t = time.perf_counter()
    frame, builder = build_frame(n, args.cohort_max, args.seed)
    t_build = time.perf_counter() - t
    print(f"  frame: {builder}, {len(frame):,} rows, built in {t_build:.1f} s")

    # aggregated: the whole table, then each model, then a refit as multiple imputation would do it
    t = time.perf_counter()
    tidy = models.fit_all(frame)
    t_fit_all = time.perf_counter() - t
    t = time.perf_counter()
    plan = models.ModelPlan(frame)
    t_plan = time.perf_counter() - t
    imputed = frame["ethnicity"].fillna(study.REFERENCE_GROUP)
    codes = plan.ethnicity_codes(imputed)
    refits = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        plan.fit_all(codes, analysis="weighted_mi")
        refits.append(time.perf_counter() - t)
    print(f"  aggregated fit_all (9 models, incl. coding): {t_fit_all * 1000:.1f} ms; plan build "
          f"{t_plan * 1000:.1f} ms; refit with an imputed ethnicity column: median "
          f"{np.median(refits) * 1000:.1f} ms (min {min(refits) * 1000:.1f}) over {args.repeats}")

    mn_skip = multinomial_skip(n, frame, args, prev)
    if mn_skip:
        print(f"  row-level multinomial fits SKIPPED at this size: {mn_skip}")
    per_model = []
    for stage in study.STAGES:
        kind = study.STAGE_SPECS[stage].kind
        for model, covs in study.MODELS.items():
            t = time.perf_counter()
            sf = plan.fit(stage, model)
            t_agg = time.perf_counter() - t
            rec = {"stage": stage, "model": model, "kind": kind, "n_model": sf.counts.n_rows,
                   "n_patterns": int(sf.counts.counts.shape[0]), "n_params": int(np.size(sf.result.params)),
                   "aggregated_s": t_agg, "row_level_s": None, "row_level_skipped": None,
                   "max_abs_diff_coef": None}
            skip = mn_skip if kind == "mnlogit" else None
            if skip is None:
                y, X, names = row_design(frame, stage, covs)
                t = time.perf_counter()
                if kind == "logit":
                    ref = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=100)
                    diff = np.max(np.abs(np.asarray(ref.params) - sf.result.params))
                else:
                    ref = sm.MNLogit(y, X).fit(disp=0, method="newton", maxiter=100)
                    diff = np.max(np.abs(np.asarray(ref.params) - sf.result.params))
                rec["row_level_s"] = time.perf_counter() - t
                rec["max_abs_diff_coef"] = float(diff)
                del X, y, ref
                gc.collect()
            else:
                rec["row_level_skipped"] = skip
            per_model.append(rec)
            rl = f"{rec['row_level_s']:.2f} s" if rec["row_level_s"] is not None else f"SKIPPED ({skip})"
            diff_s = f", max |coef diff| {rec['max_abs_diff_coef']:.1e}" if rec["max_abs_diff_coef"] is not None else ""
            print(f"  {stage:16s} {model:25s} patterns {rec['n_patterns']:5d}  aggregated "
                  f"{t_agg * 1000:7.1f} ms   row level {rl}{diff_s}")
    done = [r for r in per_model if r["row_level_s"] is not None]
    row_level_note = mn_skip
    out = {
        "n": n,
        "builder": builder,
        "frame_build_s": t_build,
        "n_rows_tidy": len(tidy),
        "aggregated_fit_all_s": t_fit_all,
        "aggregated_plan_build_s": t_plan,
        "aggregated_refit_median_s": float(np.median(refits)),
        "aggregated_refit_min_s": float(min(refits)),
        "aggregated_sum_of_models_s": float(sum(r["aggregated_s"] for r in per_model)),
        "row_level_sum_s": float(sum(r["row_level_s"] for r in done)),
        "row_level_models_run": len(done),
        "row_level_skipped_reason": row_level_note,
        "models": per_model,
        "peak_rss_gb": peak_rss_gb(),
    }
    print(f"  total aggregated (9 models) {out['aggregated_sum_of_models_s']:.3f} s; row level "
          f"({len(done)} models) {out['row_level_sum_s']:.1f} s; peak RSS {out['peak_rss_gb']:.1f} GB")
    del frame, plan, tidy
    gc.collect()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[85_800, 10_000_000])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "models.json")
    ap.add_argument("--cohort-max", type=int, default=1_000_000,
                    help="largest N generated with helpers.cohort (bigger: helpers.planted)")
    ap.add_argument("--max-row-seconds", type=float, default=600.0)
    ap.add_argument("--max-row-gb", type=float, default=16.0)
    ap.add_argument("--superlinear", type=float, default=6.0,
                    help="safety factor on the linear time projection of row-level MNLogit fits")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    results, prev = [], None
    for n in sorted(args.sizes):
        prev = run_size(n, args, prev)
        results.append(prev)
    payload = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "numpy": np.__version__, "pandas": pd.__version__},
        "note": ("aggregated = helpers.models on covariate-pattern counts; row level = statsmodels Logit/"
                 "MNLogit (Newton) on a numpy dummy design of the same rows. Times in seconds."),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
