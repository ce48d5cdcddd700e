"""Is the issue's bar for weighted MI reachable at all, in expectation? A sequential-LP probe (an analysis).

``wmi_missing_bounds.py`` searches the missing part by non-linear least squares from one start and stalls at 16-17
of 21 ORs rounding in expectation, with Mixed's completed % treated stuck at 73.1 (printed 72.8). This script asks the
question of issue 13's done-when directly, as a sequence of linear programmes:

* with the seven group weights ``w`` held fixed, the weighted imputation model ``pi_w`` depends on the recorded
  rows only, so the expected completed counts (recorded + ``M * pi_w``) are *linear* in the missing counts ``M``
  per cell (age band x gender x year x borough x source x stage, 2,304 cells);
* completed % treated within ``--pct-tol`` points of the printed value is two linear inequalities per group;
* a treatment model's group log-OR, linearised around a reference table ``ref`` (its score equations at the
  printed log-ORs, covariates refitted, times the inverse information), is linear in ``M`` too: ``beta ~ a'M + b``.
  At ``M = ref`` the error is second order (checked at the final solution: 0.003-0.05 of a rounding half-width);
* so one LP finds the ``M >= 0`` (15,873 records) that brings the 21 ORs closest to the printed values (sum of
  distances in rounding half-widths), with an OR outside its printed CI or a % treated beyond tolerance allowed
  only at a high cost (slacks, so every step is feasible from a start that meets neither).

The search runs ``--rounds`` rounds from equal weights and today's missing part: a Nelder-Mead step over the log
weights (the LP's optimum as objective), then three LP steps in a trust region around the last ``M`` (each cell's
missing count stays within [0.5 M - step, 1.5 M + step], M its last value), each re-linearised there.
``--unassessed-fixed`` holds the number of unrecorded referrals that were never assessed at today's (8,179 of
15,873: unrecorded ethnicity commonest before assessment, as in the default cohort); the split between
assessed-untreated and treated stays free; ``--max-cell-share S`` lets at most a share S of any cell's referrals go
unrecorded (a missing part spread over the cells, not piled into a few); ``--max-weight W`` keeps every weight
within [1/W, W] of White British's (so no group's share of the missing part is far from what its recorded share
predicts); ``--pct-centre X`` also costs X half-widths per 0.1 point a % treated lies off the printed value, so the
% treated sit mid-tolerance with room for Monte Carlo error; ``--band F`` costs 5 per half-width that an OR within
1.5 half-widths of its printed value lies beyond F half-widths (a soft pull off the rounding edge). The report gives
the expected ORs, % treated, the weights and margin, the full-data truth and the abstract directions it breaks, how
many cells the missing part uses and, with ``--realise SEEDS``, the real weighted MI on a cohort built from the
solution; ``--save FOLDER`` writes it as the two files ``missing_mechanism='mnar_wmi'`` reads. Deterministic (HiGHS
and Nelder-Mead, no random draw until ``--realise``).
Measured figures: ``docs/weighted_mi_bounds.md``, "A wider search".

    .venv/bin/python benchmarks/wmi_missing_slp.py                       # free stage mix
    .venv/bin/python benchmarks/wmi_missing_slp.py --realise 10
    .venv/bin/python benchmarks/wmi_missing_slp.py --unassessed-fixed --step 20
    .venv/bin/python benchmarks/wmi_missing_slp.py --unassessed-fixed --max-cell-share 0.5   # no cell mostly unrecorded
    .venv/bin/python benchmarks/wmi_missing_slp.py --unassessed-fixed --step 20 --rounds 30 --max-cell-share 0.5 \
        --pct-centre 3 --realise 10 --realise-m 100                                  # % treated mid-tolerance
    .venv/bin/python benchmarks/wmi_missing_slp.py --unassessed-fixed --step 20 --rounds 30 --max-cell-share 0.5 \
        --pct-centre 3 --band 0.3 --save data/assumed          # the world meeting the bar in 20/20 seeds at M = 100
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
import wmi_missing_bounds as bounds
from scipy.optimize import linprog, minimize

from helpers import pipeline, study
from helpers.fitting import mnlogit_probabilities

G = bounds.G
MODELS = bounds.TREAT_MODELS
CI_MARGIN = 0.002  # keep each OR this far (OR units) inside its printed CI, so rounding to 2 dp stays inside
BAND_COST = 5.0  # per half-width an OR that (nearly) rounds lies beyond --band F half-widths of the printed value
BAND_SELECT = 1.5  # ... "nearly": within this many half-widths at the last solution
PCT_SLACK_COST = 50.0  # per record of % treated beyond the tolerance (T - t A), against 1 per OR half-width
CI_SLACK_COST = 100.0  # per half-width an OR lies outside its printed CI


class Targets:
    """The printed weighted-MI column: ORs, CIs and % treated (source: Table 4, weighted MI)."""

    def __init__(self, published: pd.DataFrame):
        w = published[published.analysis == "weighted_mi"].set_index(["model", "ethnicity"])
        grid = [(m, g) for m in MODELS for g in study.GROUPS[1:]]
        self.or_ = np.array([w.loc[k, "or"] for k in grid])
        self.centre = np.log(self.or_)
        self.half_width = (np.log(self.or_ + 0.005) - np.log(self.or_ - 0.005)) / 2
        self.ci = np.log(np.array([[w.loc[k, "ci_low"] + CI_MARGIN, w.loc[k, "ci_high"] - CI_MARGIN] for k in grid]))
        self.pct = np.array([w.loc[("unadjusted", g), "pct_treated"] for g in study.GROUPS])


def fit_with_offset(X: np.ndarray, T: np.ndarray, A: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Logistic MLE (treated of assessed counts) with the group columns 1..G-1 held at ``fixed``.

    Its own Newton loop because ``fitting.fit_logit_counts`` takes no offset (fixed coefficients)."""
    free = np.r_[0, np.arange(G, X.shape[1])]
    beta = np.zeros(X.shape[1])
    beta[1:G] = fixed
    for _ in range(50):
        p = 1 / (1 + np.exp(-(X @ beta)))
        g = X[:, free].T @ (T - p * A)
        H = (X[:, free] * (A * p * (1 - p))[:, None]).T @ X[:, free]
        step = np.linalg.solve(H + 1e-9 * np.eye(len(free)), g)
        beta[free] += step
        if np.abs(step).max() < 1e-12:
            break
    return beta


def linear_rows(c: bounds.Cells, u: np.ndarray, ref: np.ndarray, tg: Targets, pct_tol: float):
    """At log weights ``u``: the % treated inequalities (row, lower, upper) and the linearised log-ORs (row, const)
    around the completed table of ``ref``."""
    pi = mnlogit_probabilities(c.Z, c.fit_weighted(u))
    is_t, is_a = (c.stage == 2).astype(float), (c.stage != 0).astype(float)
    obs = np.zeros((G, c.n_patterns, 3))
    np.add.at(obs, (slice(None), c.pattern, c.stage), c.obs.T)
    comp = obs.copy()
    np.add.at(comp, (slice(None), c.pattern, c.stage), (ref[:, None] * pi).T)
    A_obs, T_obs = obs[..., 1] + obs[..., 2], obs[..., 2]
    A0, T0 = comp[..., 1] + comp[..., 2], comp[..., 2]
    pct, centre = [], []
    for g in range(G):  # T_g - t A_g between the bounds, linear in M
        for t, upper in ((tg.pct[g] + pct_tol) / 100, True), ((tg.pct[g] - pct_tol) / 100, False):
            row, rhs = pi[:, g] * (is_t - t * is_a), -(T_obs[g].sum() - t * A_obs[g].sum())
            pct.append((row, -np.inf, rhs) if upper else (row, rhs, np.inf))
        t = tg.pct[g] / 100  # T_g - t A_g = 0 at the printed %; records per point of % ~ A_g / 100 at ref
        centre.append((pi[:, g] * (is_t - t * is_a), -(T_obs[g].sum() - t * A_obs[g].sum()), A0[g].sum() / 100))
    lin = []
    for mi, m in enumerate(MODELS):
        X = c.X[m]
        beta = fit_with_offset(X, T0.ravel(), A0.ravel(), tg.centre[mi * (G - 1):(mi + 1) * (G - 1)])
        p = 1 / (1 + np.exp(-(X @ beta)))
        Hinv = np.linalg.inv((X * (A0.ravel() * p * (1 - p))[:, None]).T @ X)
        pg, Xg = p.reshape(G, c.n_patterns), X.reshape(G, c.n_patterns, -1)
        e = pi * (is_t[:, None] - pg[:, c.pattern].T * is_a[:, None])
        coef = np.einsum("cg,gck->kc", e, Xg[:, c.pattern, :])  # score rows: coef @ M + r0
        r0 = np.einsum("gxk,gx->k", Xg, T_obs - pg * A_obs)
        lin += [(Hinv[k] @ coef, beta[k] + Hinv[k] @ r0) for k in range(1, G)]
    return pct, lin, centre


def lp_step(c: bounds.Cells, u: np.ndarray, ref: np.ndarray, tg: Targets, pct_tol: float,
            box: tuple[np.ndarray, np.ndarray], unassessed_fixed: bool, pct_centre: float = 0.0,
            band: float = 0.0) -> tuple[float, np.ndarray]:
    """min sum_k |beta_k - printed_k| / half-width_k + costs x (CI and % treated slacks)
    [+ pct_centre x sum_g |% treated_g - printed_g| / 0.1 point].

    Both constraints are soft (a slack with a high cost), so every step is feasible and the search can walk
    from a start where no OR is inside its CI; a solution with zero slack meets them exactly. ``pct_centre`` pulls
    each % treated towards the printed value rather than only inside the tolerance, leaving room for Monte Carlo
    error on both sides. ``band`` F > 0 adds BAND_COST per half-width that an OR lying within BAND_SELECT
    half-widths of its printed value at ``ref`` lies beyond F half-widths: the ORs that round are pulled off the
    rounding edge, so Monte Carlo error does not tip them over."""
    pct, lin, centre = linear_rows(c, u, ref, tg, pct_tol)
    n, K, S, C = c.n_cells, len(lin), len(pct), len(centre)
    extra = 2 * K + S + C + K  # distance to the printed OR, CI violation (both in half-widths), % slack,
    # % distance, distance beyond the band (half-widths)
    ub_rows, ub = [], []
    for i, (row, lo, hi) in enumerate(pct):
        s = np.zeros(extra)
        if np.isfinite(hi):
            s[2 * K + i] = -1
            ub_rows.append(np.r_[row, s])
            ub.append(hi)
        else:
            s[2 * K + i] = 1
            ub_rows.append(-np.r_[row, s])
            ub.append(-lo)
    for k, (row, k0) in enumerate(lin):
        d, v = np.zeros(extra), np.zeros(extra)
        d[k], v[K + k] = -tg.half_width[k], -tg.half_width[k]
        ub_rows += [np.r_[row, d], np.r_[-row, d], np.r_[row, v], np.r_[-row, v]]
        ub += [tg.centre[k] - k0, k0 - tg.centre[k], tg.ci[k, 1] - k0, k0 - tg.ci[k, 0]]
    for g, (row, rhs, _) in enumerate(centre):  # |row M - rhs| <= e_g (records)
        e = np.zeros(extra)
        e[2 * K + S + g] = -1
        ub_rows += [np.r_[row, e], np.r_[-row, e]]
        ub += [rhs, -rhs]
    near = np.zeros(K, bool)
    for k, (row, k0) in enumerate(lin):  # |beta_k - printed_k| <= hw_k (F + b_k)
        near[k] = abs(row @ ref + k0 - tg.centre[k]) <= BAND_SELECT * tg.half_width[k]
        if band > 0 and near[k]:
            b = np.zeros(extra)
            b[2 * K + S + C + k] = -tg.half_width[k]
            ub_rows += [np.r_[row, b], np.r_[-row, b]]
            ub += [band * tg.half_width[k] + tg.centre[k] - k0, band * tg.half_width[k] - tg.centre[k] + k0]
    eq_rows, eq = [np.r_[np.ones(n), np.zeros(extra)]], [c.n_mis]
    if unassessed_fixed:
        eq_rows.append(np.r_[(c.stage == 0).astype(float), np.zeros(extra)])
        eq.append(c.mis_today[c.stage == 0].sum())
    lower, upper = np.zeros(n + extra), np.full(n + extra, np.inf)
    lower[:n], upper[:n] = box  # the trust region on the missing counts; the slacks are >= 0, unbounded
    # a % treated slack is in units of T - tA (records); per point of % it is A_g / 100 records
    per_record = np.array([pct_centre * 10 / a for _, _, a in centre])  # pct_centre per 0.1 point of % treated
    band_cost = np.where(near, BAND_COST, 0.0) if band > 0 else np.zeros(K)
    cost = np.r_[np.zeros(n), np.ones(K), np.full(K, CI_SLACK_COST), np.full(S, PCT_SLACK_COST), per_record,
                 band_cost]
    res = linprog(cost, A_ub=np.array(ub_rows), b_ub=np.array(ub), A_eq=np.array(eq_rows), b_eq=eq,
                  bounds=np.c_[lower, upper], method="highs")
    if res.x is None:  # only a box that cannot hold the fixed totals: report it rather than walk on
        raise RuntimeError(f"LP step failed: {res.message}")
    return float(res.fun), res.x[:n]


def search(c: bounds.Cells, tg: Targets, rounds: int, step: float, pct_tol: float, unassessed_fixed: bool,
           cap: np.ndarray | None = None, max_weight: float | None = None, pct_centre: float = 0.0,
           band: float = 0.0, log=print) -> tuple[np.ndarray, np.ndarray]:
    """Weights and missing part after ``rounds`` trust-region rounds from equal weights and today's missing part;
    ``cap``: at most this many missing records per cell; ``max_weight``: every weight within [1/W, W] of White
    British's (the log weights are clipped before each LP)."""
    bound = np.inf if max_weight is None else np.log(max_weight)
    ref = np.maximum(c.mis_today, 0.5)
    ref *= c.n_mis / ref.sum()
    u = np.zeros(G - 1)  # equal weights (MAR) to start
    t0 = time.time()

    def trust(ref):
        lo, hi = np.maximum(ref * 0.5 - step, 0), ref * 1.5 + step
        return (lo, hi) if cap is None else (np.minimum(lo, cap), np.minimum(hi, cap))

    for rnd in range(rounds):
        box = trust(ref)
        simplex = np.vstack([u] + [u + 0.05 * np.eye(G - 1)[i] for i in range(G - 1)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = minimize(lambda v, ref=ref, box=box: lp_step(c, np.clip(v, -bound, bound), ref, tg, pct_tol, box,
                                                             unassessed_fixed, pct_centre, band)[0], u,
                         method="Nelder-Mead",
                         options={"maxfev": 80, "adaptive": True, "xatol": 1e-4, "fatol": 1e-3,
                                  "initial_simplex": simplex})
            u = np.clip(r.x, -bound, bound)
            for _ in range(3):
                f, ref = lp_step(c, u, ref, tg, pct_tol, trust(ref), unassessed_fixed, pct_centre, band)
        log(f"round {rnd + 1}/{rounds}: LP objective {f:.2f}, weights "
            + ", ".join(f"{w:.3g}" for w in np.exp(u)) + f" ({time.time() - t0:.0f} s)")
    return u, ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="trust-region rounds (weights step + 3 LP steps)")
    parser.add_argument("--step", type=float, default=2.0,
                        help="trust region: a cell's missing count M may move to [0.5 M - step, 1.5 M + step] per LP step")
    parser.add_argument("--pct-tol", type=float, default=0.19,
                        help="%% treated tolerance, points (the bar: 0.2; a little less so rounding cannot tip it over)")
    parser.add_argument("--unassessed-fixed", action="store_true",
                        help="unrecorded referrals never assessed held at today's number")
    parser.add_argument("--max-cell-share", type=float, default=None, metavar="S",
                        help="at most this share of a cell's referrals unrecorded (0 < S < 1; None: no cap)")
    parser.add_argument("--max-weight", type=float, default=None, metavar="W",
                        help="every group's weight within [1/W, W] of White British's (W > 1; None: free)")
    parser.add_argument("--pct-centre", type=float, default=0.0, metavar="X",
                        help="cost, in OR rounding half-widths, of each 0.1 point a %% treated lies off the printed "
                             "value (0: only the tolerance counts)")
    parser.add_argument("--band", type=float, default=0.0, metavar="F",
                        help=f"cost ({BAND_COST:g} per half-width) for an OR within {BAND_SELECT:g} rounding half-widths "
                             "of its printed value lying more than F half-widths off: a soft pull off the rounding edge "
                             "(0 <= F < 1; 0: off)")
    parser.add_argument("--save", metavar="FOLDER", default="",
                        help="write the solution as the two files missing_mechanism='mnar_wmi' reads (e.g. data/assumed)")
    parser.add_argument("--realise", type=int, default=0, metavar="SEEDS",
                        help="build the solution as a cohort and run real weighted MI with imputation seeds 0..SEEDS-1")
    parser.add_argument("--realise-m", type=int, default=20, metavar="M", help="imputations per realised weighted MI")
    args = parser.parse_args(argv)
    if args.max_cell_share is not None and not 0 < args.max_cell_share < 1:
        parser.error(f"--max-cell-share must lie strictly between 0 and 1, got {args.max_cell_share}")
    if args.max_weight is not None and not args.max_weight > 1:
        parser.error(f"--max-weight must be greater than 1, got {args.max_weight}")
    if args.pct_centre < 0:
        parser.error(f"--pct-centre must be 0 or more, got {args.pct_centre}")
    if not 0 <= args.band < 1:
        parser.error(f"--band must be 0 (off) or lie between 0 and 1 half-widths, got {args.band}")
    data = pipeline.load_study_data({})
    c = bounds.Cells(data)
    published = pipeline.published_table4()
    tg = Targets(published)
    cap = None
    if args.max_cell_share is not None:  # M <= S (obs + M), so M <= S / (1 - S) x the cell's recorded referrals
        cap = args.max_cell_share / (1 - args.max_cell_share) * c.obs.sum(axis=1)
        if cap.sum() < c.n_mis:
            parser.error(f"--max-cell-share {args.max_cell_share} leaves room for {cap.sum():.0f} of the "
                         f"{c.n_mis:.0f} unrecorded referrals; choose a larger share")
    u, M = search(c, tg, args.rounds, args.step, args.pct_tol, args.unassessed_fixed, cap, args.max_weight,
                  args.pct_centre, args.band)
    pct, lin, _ = linear_rows(c, u, M, tg, args.pct_tol)
    pi = mnlogit_probabilities(c.Z, c.fit_weighted(u))
    fits = bounds.treatment_fits(c, c.obs + M[:, None] * pi)
    exact = np.concatenate([fits[m] for m in MODELS])
    lin_err = np.abs(np.array([row @ M + k0 for row, k0 in lin]) - exact) / tg.half_width
    print(f"linearisation at the solution: max |error| {lin_err.max():.4f} rounding half-widths")
    ev = bounds.evaluate(c, M, u, published, free_weights=True)
    printed_pct = pd.Series(tg.pct, index=study.GROUPS)
    bounds.report("sequential LP", ev, bounds.planted_values(), printed_pct)
    within = int((np.abs(ev["pct"].to_numpy() - tg.pct) <= 0.2 + 1e-9).sum())
    print(f"completed % treated within 0.2 points of the printed: {within}/8")
    truth = M[:, None] * pi
    total = c.obs + truth
    print("% of each group's referrals unrecorded (" + ", ".join(study.GROUPS) + "):")
    for st, name in enumerate(bounds.STAGES):
        k = c.stage == st
        print(f"  {name}: " + ", ".join(f"{v:.1f}" for v in 100 * truth[k].sum(0) / total[k].sum(0)))
    print(f"cells holding a missing record (M > 0.5): {int((M > 0.5).sum())} of {c.n_cells}; "
          f"largest {M.max():.0f} records")
    if args.save:
        bounds.save_solution(args.save, c, M, ev, "sequential LP", argv if argv is not None else sys.argv[1:],
                             script="wmi_missing_slp.py")
    if args.realise:
        per_seed, values = bounds.realised_weighted_mi(bounds.realised_cohort(c, data, M), ev["margin_share"],
                                                       args.realise, m=args.realise_m)
        print(per_seed.to_string())
        # a realised % treated off by more than the tolerance: a shift (bias of the realised route) or noise?
        pct = values[values.quantity == "pct"].groupby("ethnicity")["value"]
        print("realised % treated minus expected, mean (SD over seeds): " + ", ".join(
            f"{g} {pct.mean()[g] - ev['pct'][g]:+.2f} ({pct.std()[g]:.2f})" for g in study.GROUPS))
        bar = (per_seed.inside == 21) & (per_seed.rounding >= 15) & (per_seed.pct_within_02 == 8)
        print(f"seeds meeting the whole bar (21 inside, >= 15 rounding, 8/8 within 0.2): {int(bar.sum())}/{args.realise}")
        print(f"mean rounding {per_seed.rounding.mean():.1f}, inside {per_seed.inside.mean():.1f}, "
              f"% treated within 0.2 {per_seed.pct_within_02.mean():.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
