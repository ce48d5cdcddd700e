"""How close can the missing part bring weighted MI to the printed weighted-MI column? (an analysis, not a timed test)

Issue 13 asks for the missing part of the cohort to be calibrated so that weighted MI on the default cohort
reproduces Table 4's printed weighted-MI column, with the complete-case half unchanged. This script measures
what that is possible at all, by the expected-completed-counts route the issue describes:

* the recorded part of the committed default cohort is fixed (its counts per group x covariate pattern x
  referral source x pathway stage, the imputation model's cells);
* the missing records' counts ``M`` per cell are the unknowns (15,873 in all, as today);
* each missing record's true group is drawn from the weighted imputation model ``pi_w`` of its cell (a
  multinomial logit of group on source, stage, age band, gender, year and borough, fitted to the recorded rows
  with one weight per group), so weighted MI is correctly specified; the weights are the conditional weights
  weighted MI computes from the resulting true margin (a fixed point the solver enforces);
* expected completed counts = recorded + ``M * pi_w``; the nine models fitted to them (``helpers.fitting``)
  approximate the pooled weighted-MI estimates.

``M`` is solved (penalised Levenberg-Marquardt) to bring the three treatment models' seven ORs to the printed
weighted-MI ORs, at several constraint levels (``LEVELS``): only the missing share per stage free (the
covariate and referral-source mix within a stage as recorded); pattern x stage free with a penalty towards the
recorded within-stage covariate mix (several strengths) or free; the same with referral source independent of
stage within a pattern (so it cannot act through source); and every cell free. For each level it prints how
many of the 21 ORs fall inside the printed CIs and round to the printed OR, the completed % treated, and the
full-data truth the solution implies: referral-source RRRs and assessment ORs (fully adjusted), against the
planted values and the abstract's directions. One cohort (the committed default), no random draw.

    .venv/bin/python benchmarks/wmi_missing_bounds.py                # all levels
    .venv/bin/python benchmarks/wmi_missing_bounds.py --levels stage free_ps
    .venv/bin/python benchmarks/wmi_missing_bounds.py --levels free_ps --start equal   # a second start
    .venv/bin/python benchmarks/wmi_missing_bounds.py --margin census2011 --levels stage free_ps

``--margin census2011``: weighted MI's weights come from the 2011 Census margin (four boroughs), a fixed
margin, instead of from the true margin the solution implies (the fixed point). Groups whose conditional
weight is <= 0 (on this cohort White British, Black Caribbean and Mixed, whose census shares are below their
recorded shares) are then floored: (almost) no missing record is imputed into them, so their % treated equals
complete case, as the paper's printed White British and Black Caribbean rows do.

``--margin free``: the group weights are free parameters too (no margin ties them down), which asks whether
*any* margin, with some missing part, would bring weighted MI to the printed column. The report then gives
the margin those weights imply (the shares that would make weighted MI compute them).

``--realise SEEDS``: after each level, the real weighted MI (M = 20, SEEDS imputation seeds) on a cohort
built from the solution: the recorded rows as they are, and the solved missing counts per cell (rounded to
whole records, 15,873 in all) as rows without ethnicity, weighted MI given the margin the solution's weights
come from. It checks the expected-count approximation on the realised engine (``--realise-m``: imputations).

``--save FOLDER`` writes the last level's solution as the two files ``missing_mechanism='mnar_wmi'`` reads
(``helpers/mnar_wmi.py``); ``data/assumed/`` holds ``--margin free --levels free_ps_R_indep --save data/assumed``.
Measured and not kept: ``--correct`` (shift the targets by the realised-minus-expected gap, solve again),
``--robust`` (down-weight the targets missed most), ``--start-weights`` / ``--hold`` (other starts; a weight held).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import imputation, pipeline, pooling, replication, study
from helpers.fitting import fit_logit_counts, fit_mnlogit_counts, mnlogit_probabilities
from helpers.targets import STAGE_LEVELS

G = len(study.GROUPS)
COVS = list(study.COVARIATE_LEVELS)
STAGES = imputation.PATHWAY_STAGES
TREAT_MODELS = list(study.MODELS)
# residual scales: half a printed OR digit, half a printed % digit; the weights' fixed point to 0.1%
SCALE_OR, SCALE_PCT, SCALE_FIXED_POINT = 0.005, 0.05, 0.001
# Abstract directions (study README), fully adjusted, vs White British: "less likely to self-refer";
# "more likely to be referred through community services"; "almost all ... less likely to receive an assessment".
SELF_LESS = ["Black African", "Asian", "Mixed"]
COMMUNITY_MORE = ["Black Caribbean", "Black Other", "White Other"]

# name: (cells the unknowns act on, penalty on the pattern-level deviations, source independent of stage)
LEVELS: dict[str, tuple[str, float, bool]] = {
    "stage": ("stage", np.inf, False),
    "ps_pen_1": ("pattern_stage", 1.0, False),
    "ps_pen_0.1": ("pattern_stage", 0.1, False),
    "ps_pen_0.01": ("pattern_stage", 0.01, False),
    "free_ps": ("pattern_stage", 1e-6, False),
    "free_ps_R_indep": ("pattern_stage", 1e-6, True),
    "free_cells": ("cell", 1e-6, False),
    # the lead's lever alone: the missing share the same in every pattern x stage (the recorded mix), only the
    # referral-source mix within each pattern x stage free
    "R_only": ("source_within", 1e-6, False),
}


# --------------------------------------------------------------------------------------------------------
# The cells of the default cohort
# --------------------------------------------------------------------------------------------------------
class Cells:
    """Recorded counts (cells x G), today's missing counts and true groups per cell, and the designs."""

    def __init__(self, data):
        f = data.frame.copy()
        f["pathway_stage"] = imputation.add_pathway_stage(f)
        truth = pipeline.true_frame(data)["ethnicity"]
        levels = {**study.COVARIATE_LEVELS, "referral_source": study.SOURCES, "pathway_stage": STAGES}
        cols = [*COVS, "referral_source", "pathway_stage"]
        codes = np.stack([pd.Categorical(f[c], categories=levels[c]).codes for c in cols], axis=1)
        if (codes < 0).any():
            raise ValueError("a row of the cohort has a level outside the study's levels")
        sizes = [len(levels[c]) for c in cols]
        cell = np.ravel_multi_index(codes.T, sizes)
        self.n_cells = int(np.prod(sizes))
        self.n_patterns = int(np.prod(sizes[:len(COVS)]))
        grid = np.array(np.unravel_index(np.arange(self.n_cells), sizes)).T
        self.levels, self.cols, self.grid = levels, cols, grid  # each cell's level codes, for realised_cohort
        self.pattern = np.ravel_multi_index(grid[:, :len(COVS)].T, sizes[:len(COVS)])
        self.source = grid[:, len(COVS)]
        self.stage = grid[:, len(COVS) + 1]
        frame = pd.DataFrame({c: pd.Categorical.from_codes(grid[:, i], categories=levels[c])
                              for i, c in enumerate(cols)})
        self.Z, self.znames = imputation.z_design(frame)
        eth = pd.Categorical(f["ethnicity"], categories=study.GROUPS).codes
        tru = pd.Categorical(truth, categories=study.GROUPS).codes
        obs = eth >= 0
        self.obs = np.zeros((self.n_cells, G))
        np.add.at(self.obs, (cell[obs], eth[obs]), 1)
        self.mis_today = np.bincount(cell[~obs], minlength=self.n_cells).astype(float)
        self.truth_today = self.obs.copy()
        np.add.at(self.truth_today, (cell[~obs], tru[~obs]), 1)
        self.n_mis = float(self.mis_today.sum())
        self.n = float(len(f))
        self.n_obs = self.n - self.n_mis
        self.obs_j = self.obs.sum(axis=0)
        pats = pd.DataFrame({c: pd.Categorical.from_codes(grid[:, i], categories=levels[c])
                             for i, c in enumerate(COVS)}).iloc[np.unique(self.pattern, return_index=True)[1]]
        self.X = {m: self._group_design(pats, study.MODELS[m]) for m in TREAT_MODELS}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.b_mar = np.asarray(fit_mnlogit_counts(self.Z, self.obs).params)
        self.pi_mar = mnlogit_probabilities(self.Z, self.b_mar)

    @staticmethod
    def _group_design(pats: pd.DataFrame, covariates: list[str]) -> np.ndarray:
        """Intercept, group dummies, covariate dummies over group x pattern (group-major rows)."""
        P = len(pats)
        cols = [np.ones((G, P))]
        cols += [np.broadcast_to((np.arange(G) == g)[:, None], (G, P)) for g in range(1, G)]
        for c in covariates:
            code = pats[c].cat.codes.to_numpy()
            cols += [np.broadcast_to((code == j)[None, :], (G, P)) for j in range(1, len(study.COVARIATE_LEVELS[c]))]
        return np.stack([np.asarray(c, dtype=float).ravel() for c in cols], axis=1)

    def fit_weighted(self, u: np.ndarray) -> np.ndarray:
        """The weighted imputation model's parameters, group weights exp(0, u)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(fit_mnlogit_counts(self.Z, self.obs, weights=np.exp(np.r_[0.0, u])).params)

    def conditional_log_weights(self, margin: np.ndarray, M: np.ndarray) -> np.ndarray:
        """log(w_j / w_WB) weighted MI computes from a margin (counts) with missing counts M (no rounding of m_j)."""
        p_mar = (self.obs_j + M @ self.pi_mar) / self.n
        wc = (margin - p_mar * self.n_obs) / (self.n_mis * p_mar)
        wc = np.clip(wc, imputation.WEIGHT_FLOOR, None)
        return np.log(wc[1:] / wc[0])


# --------------------------------------------------------------------------------------------------------
# Fits on expected completed counts
# --------------------------------------------------------------------------------------------------------
def treatment_fits(c: Cells, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Treatment log-ORs (7 groups vs White British) of the three models, from (cells x G) counts."""
    comp = np.zeros((G, c.n_patterns, 3))
    np.add.at(comp, (slice(None), c.pattern, c.stage), counts.T)
    A, T = comp[..., 1] + comp[..., 2], comp[..., 2]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in TREAT_MODELS:
            out[m] = np.asarray(fit_logit_counts(c.X[m], T.ravel(), A.ravel()).params)[1:G]
    return out


def full_data_effects(c: Cells, counts: np.ndarray) -> pd.DataFrame:
    """Fully adjusted referral-source RRRs and assessment ORs vs White British from (cells x G) counts."""
    X = c.X["adjusted_full"]
    src = np.zeros((G, c.n_patterns, len(study.SOURCES)))
    np.add.at(src, (slice(None), c.pattern, c.source), counts.T)
    st = np.zeros((G, c.n_patterns, 3))
    np.add.at(st, (slice(None), c.pattern, c.stage), counts.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b_src = np.asarray(fit_mnlogit_counts(X, src.reshape(G * c.n_patterns, -1)).params)
        ref = st.sum(axis=2).ravel()
        b_ass = np.asarray(fit_logit_counts(X, (st[..., 1] + st[..., 2]).ravel(), ref).params)
    rows = []
    for g in range(1, G):
        for k, s in enumerate(study.SOURCES[1:]):
            rows.append(("referral_source", s, study.GROUPS[g], float(np.exp(b_src[g, k]))))
        rows.append(("assessment", "assessed", study.GROUPS[g], float(np.exp(b_ass[g]))))
    return pd.DataFrame(rows, columns=["stage", "level", "ethnicity", "value"])


# --------------------------------------------------------------------------------------------------------
# The problem: residuals and their Jacobian
# --------------------------------------------------------------------------------------------------------
class Problem:
    def __init__(self, c: Cells, target_or: np.ndarray, target_pct: np.ndarray, kind: str, r_indep: bool,
                 margin: np.ndarray | None = None, free_weights: bool = False):
        self.c = c
        self.margin = margin  # a fixed margin (counts, e.g. the census); None: the completed data's own margin
        self.free_weights = free_weights  # the weights free (any margin): no fixed-point residual
        self.target = np.log(target_or)  # (3, 7)
        self.target_pct = target_pct  # (8,)
        recorded = c.obs.sum(axis=1)
        # base: the recorded covariate x source mix within each stage, scaled to today's missing stage totals
        stage_obs = np.bincount(c.stage, weights=recorded, minlength=3)
        stage_mis = np.bincount(c.stage, weights=c.mis_today, minlength=3)
        base = recorded / stage_obs[c.stage] * stage_mis[c.stage]
        if r_indep:  # source mix within a pattern pooled over stages: source independent of stage
            ps = c.pattern * 3 + c.stage
            src_share = np.zeros((c.n_patterns, len(study.SOURCES)))
            np.add.at(src_share, (c.pattern, c.source), recorded)
            src_share /= np.maximum(src_share.sum(axis=1, keepdims=True), 1e-300)
            ps_tot = np.bincount(ps, weights=base, minlength=c.n_patterns * 3)
            base = ps_tot[ps] * src_share[c.pattern, c.source]
        if kind == "source_within":  # missing share equal in every cell; the source mix is what moves
            base = recorded.copy()
        self.base = np.maximum(base, 1e-9) * c.n_mis / base.sum()
        self.kind = kind
        self.ps = c.pattern * 3 + c.stage
        self.rw: np.ndarray | None = None  # per-target weights (--robust); None: every target weighs 1
        # parameters: 3 stage log-scales (unpenalised) then, for pattern_stage / cell, one deviation per group
        if kind == "stage":
            groups = None
        elif kind == "source_within":
            self.P = np.eye(c.n_cells)
            self.n_dev = c.n_cells
            self.group_base = self.base.copy()
            self.ps_base = np.bincount(self.ps, weights=self.base, minlength=c.n_patterns * 3)
            return
        elif kind == "pattern_stage":
            groups = c.pattern * 3 + c.stage
        else:
            groups = np.arange(c.n_cells)
        cols = [np.eye(3)[c.stage]]
        if groups is not None:
            _, inv = np.unique(groups, return_inverse=True)
            cols.append(np.eye(inv.max() + 1)[inv])
        self.P = np.concatenate(cols, axis=1)  # cells x params
        self.n_dev = self.P.shape[1] - 3
        self.group_base = self.P[:, 3:].T @ self.base if self.n_dev else np.zeros(0)

    def missing(self, theta: np.ndarray) -> np.ndarray:
        if self.kind == "source_within":  # each pattern x stage keeps its total; sources reweighted within it
            e = self.base * np.exp(theta - theta.max())
            return e * self.ps_base[self.ps] / np.maximum(np.bincount(self.ps, weights=e)[self.ps], 1e-300)
        M = self.base * np.exp(self.P @ theta)
        return M * self.c.n_mis / M.sum()

    def residuals(self, theta, u, around, jacobian=False):
        c = self.c
        M = self.missing(theta)
        b0, u_ref = around
        b = b0.copy()
        b[0] += u - u_ref  # weighting group j by w_j shifts its intercept by log w_j (first order; refit per round)
        pi_w = mnlogit_probabilities(c.Z, b)
        counts = c.obs + M[:, None] * pi_w
        comp = np.zeros((G, c.n_patterns, 3))
        np.add.at(comp, (slice(None), c.pattern, c.stage), counts.T)
        A, T = comp[..., 1] + comp[..., 2], comp[..., 2]
        is_t, is_a = (c.stage == 2).astype(float), (c.stage != 0).astype(float)
        r, rows_m, rows_u = [], [], []
        for mi, m in enumerate(TREAT_MODELS):
            X = c.X[m]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                beta = np.asarray(fit_logit_counts(X, T.ravel(), A.ravel()).params)
            scale = SCALE_OR / np.exp(self.target[mi])
            r.append((beta[1:G] - self.target[mi]) / scale)
            if jacobian:  # d beta = H^-1 X' d(T - p A)
                p = 1 / (1 + np.exp(-(X @ beta)))
                H = (X * (A.ravel() * p * (1 - p))[:, None]).T @ X
                K = np.linalg.solve(H, X.T)[1:G].reshape(G - 1, G, c.n_patterns)[:, :, c.pattern]
                pc = p.reshape(G, c.n_patterns)[:, c.pattern]
                E = (K * (is_t[None, None, :] - pc[None] * is_a[None, None, :])).transpose(0, 2, 1)  # k, cell, g
                mean_e = np.einsum("kcg,cg->kc", E, pi_w)
                rows_m.append(mean_e / scale[:, None])
                rows_u.append(np.einsum("c,cj,kcj->kj", M, pi_w, E - mean_e[:, :, None])[:, 1:] / scale[:, None])
        At, Tt = A.sum(axis=1), T.sum(axis=1)
        if self.target_pct is not None:
            r.append((100 * Tt / At - self.target_pct) / SCALE_PCT)
        if jacobian and self.target_pct is not None:
            E = np.zeros((G, c.n_cells, G))
            for g in range(G):
                E[g, :, g] = 100 * (is_t - Tt[g] / At[g] * is_a) / At[g]
            mean_e = np.einsum("kcg,cg->kc", E, pi_w)
            rows_m.append(mean_e / SCALE_PCT)
            rows_u.append(np.einsum("c,cj,kcj->kj", M, pi_w, E - mean_e[:, :, None])[:, 1:] / SCALE_PCT)
        if self.free_weights:
            r = self._weigh(np.concatenate(r))
            if not jacobian:
                return r
            J = np.concatenate([self._j_theta(np.concatenate(rows_m), M), np.concatenate(rows_u)], axis=1)
            return r, self._weigh(J)
        fixed = self.margin is not None
        margin = self.margin if fixed else c.obs_j + M @ pi_w
        p_mar = (c.obs_j + M @ c.pi_mar) / c.n
        wc = (margin - p_mar * c.n_obs) / (c.n_mis * p_mar)
        # a weight <= 0 is floored, as weighted MI does (the group then gets (almost) no imputed record)
        wcc = np.clip(wc, imputation.WEIGHT_FLOOR, None)
        r.append((np.log(wcc[1:] / wcc[0]) - u) / SCALE_FIXED_POINT)
        r = np.concatenate(r)
        if not jacobian:
            return r
        dwc_m = (((0.0 if fixed else pi_w.T) - c.n_obs * c.pi_mar.T / c.n) / (c.n_mis * p_mar[:, None])
                 - wc[:, None] * c.pi_mar.T / (c.n * p_mar[:, None])) / wcc[:, None] * (wc > imputation.WEIGHT_FLOOR)[:, None]
        rows_m.append((dwc_m[1:] - dwc_m[0][None]) / SCALE_FIXED_POINT)
        dmargin_u = np.einsum("c,cj,cjk->jk", M, pi_w, np.eye(G)[None] - pi_w[:, None, :])[:, 1:] * (not fixed)
        dl_u = dmargin_u / (c.n_mis * p_mar[:, None]) / wcc[:, None] * (wc > imputation.WEIGHT_FLOOR)[:, None]
        rows_u.append(((dl_u[1:] - dl_u[0][None]) - np.eye(G - 1)) / SCALE_FIXED_POINT)
        return r, np.concatenate([self._j_theta(np.concatenate(rows_m), M), np.concatenate(rows_u)], axis=1)

    def _weigh(self, a: np.ndarray) -> np.ndarray:
        """The target rows (the first ones) times their weights."""
        if self.rw is None:
            return a
        a = a.copy()
        a[:len(self.rw)] *= self.rw if a.ndim == 1 else self.rw[:, None]
        return a

    def _j_theta(self, JM: np.ndarray, M: np.ndarray) -> np.ndarray:
        """The Jacobian in theta from the one in the missing counts M (rows x cells)."""
        if self.kind == "source_within":  # d M_c / d theta_c' = M_c' (1[c = c'] - q_c) within one pattern x stage
            q = M / np.maximum(self.ps_base[self.ps], 1e-300)
            mean_q = np.zeros((JM.shape[0], len(self.ps_base)))
            np.add.at(mean_q.T, self.ps, (JM * q[None, :]).T)
            return M[None, :] * (JM - mean_q[:, self.ps])
        J_logm = M[None, :] * (JM - (JM @ M)[:, None] / self.c.n_mis)  # through the normalisation of M
        return J_logm @ self.P


def solve(pr: Problem, penalty: float, u0: np.ndarray, rounds: int = 4, max_iter: int = 60,
          verbose: bool = False, theta0: np.ndarray | None = None,
          hold: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Penalised Levenberg-Marquardt in (theta, u): |r|^2 + penalty * sum(base_k dev_k^2) / mean(base_k)."""
    n_theta = pr.P.shape[1]
    d = np.zeros(n_theta + G - 1)
    if pr.kind == "source_within":
        d[:n_theta] = penalty * pr.base / pr.base.mean() + 1e-9
    elif pr.n_dev:
        d[3:n_theta] = penalty * pr.group_base / pr.group_base.mean()
    if pr.free_weights:  # nothing else holds the weights: a faint pull towards equal weights keeps them finite
        d[n_theta:] = 1e-3
    for j in hold:  # a group's weight held (near) equal to White British's: log-weight pulled to 0
        d[n_theta + j] = 1e4
    x = np.concatenate([np.zeros(n_theta) if theta0 is None else theta0, u0])

    def total(x, r):
        return float(r @ r + (d * x) @ x)

    for rnd in range(rounds):
        around = (pr.c.fit_weighted(x[n_theta:]), x[n_theta:].copy())
        mu = 1e-3
        for it in range(max_iter):
            r, J = pr.residuals(x[:n_theta], x[n_theta:], around, jacobian=True)
            cost = total(x, r)
            g = J.T @ r + d * x
            JtJ = J.T @ J
            for _ in range(30):
                A = JtJ + np.diag(d + mu * (np.diag(JtJ) + d + 1e-9))
                step = -np.linalg.solve(A, g)
                try:
                    rn = pr.residuals(x[:n_theta] + step[:n_theta], x[n_theta:] + step[n_theta:], around)
                    cn = total(x + step, rn) if np.all(np.isfinite(rn)) else np.inf
                except np.linalg.LinAlgError:  # a step so long that a fit breaks down: take a shorter one
                    cn = np.inf
                if cn < cost:
                    mu = max(mu / 3, 1e-9)
                    break
                mu *= 5
            else:
                break
            x = x + step
            if verbose:
                print(f"  round {rnd} it {it}: cost {cost:.3f} -> {cn:.3f}, max|r| {np.abs(rn).max():.2f}", flush=True)
            if cost - cn < 1e-8 * cost:
                break
    r, J = pr.residuals(x[:n_theta], x[n_theta:], (pr.c.fit_weighted(x[n_theta:]), x[n_theta:].copy()), jacobian=True)
    g = J.T @ r + d * x
    # stationarity: the gradient is ~0 relative to |J| |r| at a (local) minimum with the targets not met
    print(f"  solver: cost {float(r @ r + (d * x) @ x):.2f} (targets {float(r @ r):.2f}), "
          f"|gradient| / (|J| |r|) = {np.linalg.norm(g) / (np.linalg.norm(J) * np.linalg.norm(r)):.1e}")
    return x[:n_theta], x[n_theta:]


# --------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------
def evaluate(c: Cells, M: np.ndarray, u: np.ndarray, published: pd.DataFrame, truth_counts=None,
             fixed_margin: np.ndarray | None = None, free_weights: bool = False) -> dict:
    """Expected completed counts at (M, u): ORs vs the printed column, % treated, the full-data truth."""
    b = c.fit_weighted(u)
    pi_w = mnlogit_probabilities(c.Z, b)
    completed = c.obs + M[:, None] * pi_w
    full = completed if truth_counts is None else truth_counts
    lors = treatment_fits(c, completed)
    wmi = published[published.analysis == "weighted_mi"].set_index(["model", "ethnicity"])
    rows = []
    for m in TREAT_MODELS:
        for gi, g in enumerate(study.GROUPS[1:]):
            p = wmi.loc[(m, g)]
            ours = float(np.exp(lors[m][gi]))
            r2 = round(ours, 2)
            rows.append((m, g, ours, p["or"], p.ci_low <= r2 + 1e-9 and r2 <= p.ci_high + 1e-9,
                         abs(r2 - p["or"]) < 1e-9))
    ors = pd.DataFrame(rows, columns=["model", "ethnicity", "ours", "printed", "inside", "rounds"])
    a = completed[c.stage != 0].sum(axis=0)
    t = completed[c.stage == 2].sum(axis=0)
    pct = pd.Series(100 * t / a, index=study.GROUPS)
    # the missing part by stage: share missing per stage, and the weights' fixed point gap
    stage_mis = np.bincount(c.stage, weights=M, minlength=3)
    stage_all = np.bincount(c.stage, weights=c.obs.sum(axis=1) + M, minlength=3)
    p_mar = (c.obs_j + M @ c.pi_mar) / c.n
    if free_weights:  # the margin that makes weighted MI compute these weights: p n_obs + n_mis p w / sum(p w)
        w = np.exp(np.r_[0.0, u])
        margin = p_mar * c.n_obs + c.n_mis * p_mar * w / (p_mar @ w)
    else:
        margin = c.obs_j + M @ pi_w if fixed_margin is None else fixed_margin
    fixed_gap = float(np.abs(c.conditional_log_weights(margin, M) - u).max())
    return {"ors": ors, "pct": pct, "effects": full_data_effects(c, full), "missing_by_stage": stage_mis / stage_all,
            "weights": np.exp(np.r_[0.0, u]), "fixed_point_gap": fixed_gap,
            "missing_group_share": (M @ pi_w) / c.n_mis if truth_counts is None else None,
            "margin_share": margin / c.n}


def realised_cohort(c: Cells, data, M: np.ndarray) -> pd.DataFrame:
    """The recorded rows of the default cohort plus the missing counts ``M`` per cell as rows without ethnicity
    (rounded to whole records by largest remainder, so the total stays the cohort's)."""
    k = np.floor(M).astype(np.int64)
    short = int(round(c.n_mis)) - int(k.sum())
    k[np.argsort(-(M - k), kind="stable")[:short]] += 1
    recorded = data.frame[data.frame["ethnicity"].notna()]
    cell = np.repeat(np.arange(c.n_cells), k)
    miss = pd.DataFrame({col: pd.Categorical.from_codes(c.grid[cell, i], categories=c.levels[col])
                         for i, col in enumerate(c.cols)})
    stage = miss.pop("pathway_stage").astype(str)
    miss["assessed"] = (stage != STAGES[0]).astype(np.int64)
    miss["treated"] = np.where(stage == STAGES[0], np.nan, (stage == STAGES[2]).astype(float))
    miss["referral_id"] = [f"M{i:07d}" for i in range(len(miss))]
    out = pd.concat([recorded, miss], ignore_index=True)
    for col in [*COVS, "referral_source", "ethnicity"]:
        out[col] = pd.Categorical(out[col].astype(object), categories=data.frame[col].cat.categories)
    return out


def realised_weighted_mi(frame: pd.DataFrame, margin_share: np.ndarray, seeds: int,
                         first_seed: int = 0, m: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real weighted MI (``m`` imputations) on ``frame`` for ``seeds`` imputation seeds. Returns per seed: ORs rounding to
    and inside the printed, and % treated at one decimal / within 0.2 points of the printed; and the long table
    of every seed's 21 treatment log-ORs and 8 % treated (``quantity``: model name or ``pct``)."""
    margin = pd.Series(margin_share / margin_share.sum(), index=list(study.GROUPS))
    published = pipeline.published_table4()
    rows, values = [], []
    for seed in range(first_seed, first_seed + seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = imputation.impute_ethnicity(frame, margin, m, np.random.default_rng(seed))
            est = pooling.mi_estimates_from_rows(frame, res, progress=False)
        cmp = replication.published_vs_ours(est, published)
        w = cmp[cmp.analysis == "weighted_mi"]
        ors = w[w.ethnicity != study.REFERENCE_GROUP]
        pct = w[w.model == "unadjusted"]
        ba = ors[(ors.ethnicity == "Black African") & (ors.model == "adjusted_full")]["ours_or"].iloc[0]
        rows.append({"seed": seed, "rounding": int(ors.rounds_to_printed.sum()), "inside": int(ors.inside_paper_ci.sum()),
                     "pct_1dp": int(((pct.ours_pct.round(1) - pct.paper_pct).abs() < 1e-9).sum()),
                     "pct_within_02": int(((pct.ours_pct - pct.paper_pct).abs() <= 0.2 + 1e-9).sum()),
                     "ba_full_or": round(float(ba), 4)})
        values += [(seed, m, g, float(np.log(o))) for m, g, o in zip(ors.model, ors.ethnicity, ors.ours_or)]
        values += [(seed, "pct", g, float(v)) for g, v in zip(pct.ethnicity, pct.ours_pct)]
    return (pd.DataFrame(rows).set_index("seed"),
            pd.DataFrame(values, columns=["seed", "quantity", "ethnicity", "value"]))


def realised_shift(values: pd.DataFrame, ev: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean realised minus expected: treatment log-ORs (3 x 7) and % treated (8), for a corrected target."""
    mean = values.groupby(["quantity", "ethnicity"])["value"].mean()
    exp_or = ev["ors"].set_index(["model", "ethnicity"])["ours"]
    d_or = np.array([[mean[(m, g)] - np.log(exp_or[(m, g)]) for g in study.GROUPS[1:]] for m in TREAT_MODELS])
    d_pct = np.array([mean[("pct", g)] - ev["pct"][g] for g in study.GROUPS])
    return d_or, d_pct


def save_solution(folder: str, c: Cells, M: np.ndarray, ev: dict, level: str, argv: list[str],
                  script: str = "wmi_missing_bounds.py") -> None:
    """The solved missing part as the two files ``missing_mechanism='mnar_wmi'`` reads (``helpers.mnar_wmi``)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    note = f"# benchmarks/{script} {' '.join(argv)} (level {level}); *assumed*, not a published figure"
    cells = pd.DataFrame({col: np.asarray(c.levels[col], dtype=object)[c.grid[:, i]] for i, col in enumerate(c.cols)})
    cells = cells.rename(columns={"pathway_stage": "stage"}).assign(share=M / M.sum())
    cells["stage"] = np.asarray(STAGE_LEVELS, dtype=object)[c.stage]  # the generator's stage names
    cells["share"] = cells.share.map(lambda v: f"{v:.9e}")
    groups = pd.DataFrame({"ethnicity": list(study.GROUPS), "weight": ev["weights"] / ev["weights"][0],
                           "share": ev["margin_share"] / ev["margin_share"].sum()})
    groups["weight"] = groups.weight.map(lambda v: f"{v:.9e}")
    groups["share"] = groups.share.map(lambda v: f"{v:.9f}")
    for name, table in (("mnar_wmi_cells.csv", cells), ("mnar_wmi_groups.csv", groups)):
        (out / name).write_text(note + "\n" + table.to_csv(index=False, lineterminator="\n"))
        print(f"wrote {out / name} ({len(table)} rows)")


def planted_values() -> pd.DataFrame:
    t = pd.read_csv(study.PUBLISHED_DIR / "cohort_targets.csv")
    src = t[t.quantity == "rrr_adjusted_full"].rename(columns={"level": "lv"})
    ass = t[(t.quantity == "or_adjusted_full") & (t.stage == "assessment")].assign(lv="assessed")
    both = pd.concat([src, ass])
    return both.assign(value=both.value.astype(float)).set_index(["stage", "lv", "ethnicity"])["value"]


def directions(eff: pd.DataFrame) -> list[str]:
    """Abstract directions the full-data truth breaks."""
    e = eff.set_index(["stage", "level", "ethnicity"])["value"]
    out = []
    out += [f"{g} Self {e[('referral_source', 'Self', g)]:.2f} (not < 1)" for g in SELF_LESS
            if not e[("referral_source", "Self", g)] < 1]
    out += [f"{g} Community {e[('referral_source', 'Community', g)]:.2f} (not > 1)" for g in COMMUNITY_MORE
            if not e[("referral_source", "Community", g)] > 1]
    above = [f"{g} assessment {e[('assessment', 'assessed', g)]:.2f}" for g in study.GROUPS[1:]
             if not e[("assessment", "assessed", g)] < 1]
    if len(above) > 1:  # "almost all": one exception allowed
        out += [f"{a} (not < 1)" for a in above]
    return out


def report(name: str, ev: dict, planted: pd.Series, printed_pct: pd.Series) -> None:
    ors = ev["ors"]
    print(f"\n=== {name}: inside printed CI {int(ors.inside.sum())}/21, rounds to printed {int(ors.rounds.sum())}/21")
    tab = ors.assign(ours=ors.ours.round(3)).pivot(index="ethnicity", columns="model", values="ours")
    print("expected-count ORs (printed):")
    pr = ors.pivot(index="ethnicity", columns="model", values="printed")
    print((tab.astype(str) + " (" + pr.map(lambda v: f"{v:.2f}") + ")")[TREAT_MODELS]
          .reindex(study.GROUPS[1:]).to_string())
    n_pct = int((ev["pct"].round(1) - printed_pct.reindex(study.GROUPS)).abs().lt(1e-9).sum())
    print(f"completed % treated equal to the printed at 1 dp: {n_pct}/8; (printed): " + ", ".join(
        f"{g} {ev['pct'][g]:.1f} ({printed_pct[g]:.1f})" for g in study.GROUPS))
    print("share missing by stage (not assessed, assessed not treated, treated): "
          + ", ".join(f"{v:.3f}" for v in ev["missing_by_stage"]))
    print("weights (vs White British): " + ", ".join(f"{g} {w:.3g}" for g, w in zip(study.GROUPS, ev["weights"])))
    if ev["missing_group_share"] is not None:
        print("true group mix of the missing part: " + ", ".join(
            f"{g} {s:.3f}" for g, s in zip(study.GROUPS, ev["missing_group_share"])))
    print("margin (shares) the weights come from: " + ", ".join(
        f"{g} {100 * s:.2f}%" for g, s in zip(study.GROUPS, ev["margin_share"])))
    print(f"weights' fixed point: max |log gap| {ev['fixed_point_gap']:.4f}")
    eff = ev["effects"].assign(planted=lambda d: [planted.get((s, lv, g), np.nan)
                                                  for s, lv, g in zip(d.stage, d.level, d.ethnicity)])
    eff["value"] = eff.value.round(2)
    wide = eff.pivot(index="ethnicity", columns="level", values="value").reindex(study.GROUPS[1:])
    pl = eff.pivot(index="ethnicity", columns="level", values="planted").reindex(study.GROUPS[1:])
    print("full-data truth, fully adjusted (planted): RRR vs GP and assessment OR")
    print((wide.astype(str) + " (" + pl.map(lambda v: f"{v:.2f}") + ")")[["Self", "Community", "Other", "assessed"]]
          .to_string())
    broken = directions(ev["effects"])
    print("abstract directions broken: " + ("; ".join(broken) if broken else "none"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", nargs="*", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--start", choices=["today", "equal"], default="today",
                        help="start the solver from today's weights or from equal weights (a second start)")
    parser.add_argument("--start-weights", default="", metavar="GROUP=W,...",
                        help="start weights (relative to White British) for some groups, on top of --start; a "
                             "group whose weight the solver has driven to ~0 gets no gradient, so a start decides it")
    parser.add_argument("--hold", nargs="*", default=[], metavar="GROUP",
                        help="with --margin free: hold these groups' weights at White British's (a strong pull)")
    parser.add_argument("--no-pct", action="store_true", help="target the 21 ORs only, not the printed %% treated")
    parser.add_argument("--realise", type=int, default=0, metavar="SEEDS",
                        help="after each level, real weighted MI (M = 20) on a cohort built from the solution")
    parser.add_argument("--realise-m", type=int, default=20, metavar="M",
                        help="imputations per realised weighted MI (more: a smaller Monte Carlo error in --correct)")
    parser.add_argument("--correct", type=int, default=0, metavar="ROUNDS",
                        help="with --realise: shift the targets by the mean realised-minus-expected gap and "
                             "solve again, ROUNDS times (the expected-count route's bias, measured)")
    parser.add_argument("--robust", type=int, default=0, metavar="ROUNDS",
                        help="with --margin free: after solving, down-weight the targets the solution misses most "
                             "(Cauchy weights 1 / (1 + (r / 2)^2), r in half printed digits) and solve again, ROUNDS "
                             "times, so the solver spends its freedom on the ORs it can bring to the printed value")
    parser.add_argument("--save", metavar="FOLDER", default="",
                        help="write the last level's solution as mnar_wmi_cells.csv and mnar_wmi_groups.csv")
    parser.add_argument("--margin", choices=["truth", "census2011", "free"], default="truth",
                        help="weighted MI's margin: the true margin the solution implies (a fixed point, the "
                             "default), the 2011 Census (fixed), or free (the weights are free parameters)")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    data = pipeline.load_study_data({})
    c = Cells(data)
    published = pipeline.published_table4()
    wmi = published[published.analysis == "weighted_mi"].set_index(["model", "ethnicity"])
    target = np.array([[wmi.loc[(m, g), "or"] for g in study.GROUPS[1:]] for m in TREAT_MODELS])
    printed_pct = published[(published.analysis == "weighted_mi") & (published.model == "unadjusted")] \
        .set_index("ethnicity").pct_treated
    planted = planted_values()
    print(f"default cohort: {c.n:.0f} referrals, {c.n_mis:.0f} without recorded ethnicity; "
          f"{c.n_cells} cells ({c.n_patterns} covariate patterns x 4 sources x 3 stages)")

    fixed_margin = None
    if args.margin == "census2011":
        shares = pipeline.margin_from_choice("census2011").reindex(study.GROUPS).to_numpy(dtype=float)
        fixed_margin = shares / shares.sum() * c.n
        print("margin: 2011 Census, four boroughs (" + ", ".join(
            f"{g} {100 * s:.2f}%" for g, s in zip(study.GROUPS, shares / shares.sum())) + ")")
    # today: the assumed mechanism, weights from the true margin (what the committed weighted MI does) or census
    margin_today = c.truth_today.sum(axis=0) if fixed_margin is None else fixed_margin
    u_today = c.conditional_log_weights(margin_today, c.mis_today)
    ev = evaluate(c, c.mis_today, u_today, published, truth_counts=c.truth_today, fixed_margin=fixed_margin)
    report(f"today (assumed mechanism; margin {args.margin}; expected-count approximation of weighted MI; "
           "truth = the cohort's)", ev, planted, printed_pct)

    for name in args.levels:
        kind, penalty, r_indep = LEVELS[name]
        pct = None if args.no_pct else printed_pct.reindex(study.GROUPS).to_numpy()
        pr = Problem(c, target, pct, kind, r_indep, margin=fixed_margin, free_weights=args.margin == "free")
        u0 = (u_today if args.start == "today" else np.zeros(G - 1)).copy()
        for item in filter(None, args.start_weights.split(",")):
            group, weight = item.rsplit("=", 1)
            if group.strip() not in study.GROUPS[1:]:
                raise SystemExit(f"--start-weights: {group.strip()!r} is not one of {list(study.GROUPS[1:])}")
            u0[study.GROUPS.index(group.strip()) - 1] = np.log(float(weight))
        bad = [g for g in args.hold if g not in study.GROUPS[1:]]
        if bad:
            raise SystemExit(f"--hold: {bad} not among {list(study.GROUPS[1:])}")
        hold = tuple(study.GROUPS.index(g) - 1 for g in args.hold)
        theta, u = solve(pr, penalty, u0, verbose=args.verbose, hold=hold)
        for k in range(args.robust if args.margin == "free" else 0):
            pr.rw = None
            r = pr.residuals(theta, u, (c.fit_weighted(u), u.copy()))
            pr.rw = 1 / np.sqrt(1 + (r / 2.0) ** 2)
            print(f"robust round {k + 1}: targets missed by more than a printed digit: {int((np.abs(r) > 2).sum())}")
            theta, u = solve(pr, penalty, u, verbose=args.verbose, theta0=theta)
        M = pr.missing(theta)
        ev = evaluate(c, M, u, published, fixed_margin=fixed_margin, free_weights=args.margin == "free")
        report(f"{name} (margin {args.margin}; {kind}, penalty {penalty:g}{', source independent of stage' if r_indep else ''}"
               f"{'; ORs only' if args.no_pct else '; ORs and % treated'}; "
               f"{pr.P.shape[1]} cell parameters)", ev, planted, printed_pct)
        for k in range(args.correct + 1 if args.realise else 0):
            per_seed, values = realised_weighted_mi(realised_cohort(c, data, M), ev["margin_share"], args.realise,
                                                    m=args.realise_m)
            print(f"realised weighted MI (M = {args.realise_m}) on the cohort this solution builds, {args.realise} seeds:")
            print(per_seed.to_string())
            print(f"  mean rounding {per_seed.rounding.mean():.1f}, inside {per_seed.inside.mean():.1f}, "
                  f"% treated within 0.2 {per_seed.pct_within_02.mean():.1f}")
            if k == args.correct:
                break
            d_or, d_pct = realised_shift(values, ev)
            print(f"correction {k + 1}: realised - expected, log-OR max |{np.abs(d_or).max():.4f}|, "
                  f"% treated max |{np.abs(d_pct).max():.3f}|")
            pr.target = pr.target - d_or
            if pr.target_pct is not None:
                pr.target_pct = pr.target_pct - d_pct
            theta, u = solve(pr, penalty, u, verbose=args.verbose, theta0=theta)
            M = pr.missing(theta)
            ev = evaluate(c, M, u, published, fixed_margin=fixed_margin, free_weights=args.margin == "free")
            report(f"{name}, corrected {k + 1} (expected-count figures against the printed column)", ev, planted,
                   printed_pct)
        if args.save and name == args.levels[-1]:
            save_solution(args.save, c, M, ev, name, argv if argv is not None else sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
