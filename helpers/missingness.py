"""Who lacks ethnicity in the synthetic cohort: the missing part, calibrated to Table 4's weighted-MI column.

Why: the paper printed two halves of Table 4, complete case and weighted MI. The recorded-ethnicity part of
the cohort reproduces the first (``helpers.calibrate``); this module shapes the missing part so that weighted
MI on the cohort reproduces the second. It does so without touching a single recorded row.

How. Cells are covariate pattern x referral source x pathway stage (the imputation model's Z, 2,304 of them).
With the recorded part fixed, two things decide what weighted MI finds:

1. ``M``: how many referrals without a recorded ethnicity sit in each cell, and
2. the weighted imputation model's group probabilities ``pi_w`` in each cell (a multinomial logit of group on
   Z fitted to the recorded rows, each group weighted by ``w``).

The expected completed counts are ``observed + M * pi_w``; fitting the nine treatment models to them
approximates the pooled weighted-MI estimates. We solve for ``M`` (a reweighting ``exp(delta)`` of the
*assumed* logit-additive mechanism, kept close to it by a penalty) and the weights (kept close to those the
assumed mechanism implies) so that these fits give the printed weighted-MI ORs and % treated. Then each
missing referral's true group is ``pi_w`` of its cell: weighted MI is correctly specified, and the weights are
the ones weighted MI computes from the cohort's true margin (a fixed point the solver enforces).

Two honest details. (a) The expected-count fit is an approximation of pooled MI; on the committed cohort the
realised weighted MI (default seed) differed from it by a systematic few thousandths of a log-OR and a few
tenths of a % point, so the committed solution was re-solved with its targets moved by that gap
(``shift_or``, ``shift_pct``, stored with it). (b) The solution was reached by continuation (a smooth
stage x covariate start, then every cell free); ``python -m helpers.missingness`` refines the committed one.

The result is MNAR, and extreme: whether ethnicity is missing depends strongly on the group itself.
``helpers.cohort.missing_share_table`` shows it by group and stage. The solution belongs to one targets file
(its SHA-256) and is committed in ``data/published/solved_missingness.csv``; any other targets file gets the
assumed mechanism.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import study
from helpers.calibrate import (
    COVS,
    N_PATTERNS,
    G,
    Solved,
    covariate_probabilities,
    load_solved,
    observed_referrals,
    pattern_index,
    source_probabilities,
    stage_probabilities,
)
from helpers.fitting import fit_logit_counts, fit_mnlogit_counts
from helpers.targets import STAGE_LEVELS, Targets, load_targets

SOLVED_MISSINGNESS_PATH = study.PUBLISHED_DIR / "solved_missingness.csv"
MODELS = ["unadjusted", "adjusted_age_gender_year", "adjusted_full"]
N_SOURCES = len(study.SOURCES)
N_STAGES = len(STAGE_LEVELS)
N_CELLS = N_PATTERNS * N_SOURCES * N_STAGES
# How hard each target pulls (residual = miss / scale): half a printed OR digit, a tenth of a % point, and the
# weights' fixed point to 1%. The penalties keep the mechanism near the assumed one (see ``solve``).
SCALE_OR, SCALE_PCT, SCALE_FIXED_POINT = 0.005, 0.1, 0.01
PENALTY_CELLS, PENALTY_WEIGHTS = 0.001, 0.01


class MissingnessError(RuntimeError):
    """The missing part could not be calibrated (targets inconsistent, or the solver did not converge)."""


@dataclass(frozen=True)
class SolvedMissingness:
    """The solved missing part: per-cell log reweighting of the assumed mechanism and the group log-weights."""

    delta: np.ndarray  # (N_CELLS,) in pattern x source x stage order
    log_weight: np.ndarray  # (G,) log w relative to White British (first 0)
    targets_sha256: str
    # realised-minus-expected gap of weighted MI (log OR, 3 models x 7 groups; % treated, 8 groups) that the
    # expected-count targets were moved by (see ``solve``); zero for a plain solve
    shift_or: np.ndarray = field(default_factory=lambda: np.zeros((len(MODELS), G - 1)))
    shift_pct: np.ndarray = field(default_factory=lambda: np.zeros(G))

    def to_frame(self) -> pd.DataFrame:
        pats = pattern_index()
        cells = pd.MultiIndex.from_product([range(N_PATTERNS), study.SOURCES, STAGE_LEVELS],
                                           names=["pattern", "referral_source", "stage"]).to_frame(index=False)
        cells = cells.join(pats, on="pattern")
        level = (cells[COVS].astype(str).agg("|".join, axis=1) + "|" + cells.referral_source + "|" + cells.stage)
        rows = pd.DataFrame({"parameter": "delta", "level": level, "value": self.delta})
        weights = pd.DataFrame({"parameter": "log_weight", "level": study.GROUPS, "value": self.log_weight})
        shift_or = pd.DataFrame({"parameter": "shift_log_or",
                                 "level": [f"{m}|{g}" for m in MODELS for g in study.GROUPS[1:]],
                                 "value": self.shift_or.ravel()})
        shift_pct = pd.DataFrame({"parameter": "shift_pct", "level": study.GROUPS, "value": self.shift_pct})
        frame = pd.concat([weights, shift_or, shift_pct, rows], ignore_index=True)
        frame["value"] = frame["value"].map(repr)
        frame["targets_sha256"] = self.targets_sha256
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "SolvedMissingness":
        v = frame.value.astype(float).to_numpy()
        part = frame.parameter.to_numpy()
        return cls(delta=v[part == "delta"], log_weight=v[part == "log_weight"],
                   targets_sha256=str(frame.targets_sha256.iloc[0]),
                   shift_or=v[part == "shift_log_or"].reshape(len(MODELS), G - 1), shift_pct=v[part == "shift_pct"])


def weighted_mi_targets(t: Targets) -> tuple[np.ndarray, np.ndarray]:
    """The printed weighted-MI ORs (3 models x 7 groups) and % treated (8 groups) of Table 4, from the targets."""
    if t.wmi_treatment_or is None or t.wmi_treated_pct is None:
        raise MissingnessError("the targets file has no weighted-MI rows (wmi_or_*, wmi_treated_pct) to calibrate to")
    return t.wmi_treatment_or[MODELS].to_numpy().T, t.wmi_treated_pct.to_numpy()


def observed_cells(t: Targets, solved: Solved, n_observed: float) -> np.ndarray:
    """Expected referrals with recorded ethnicity per group x pattern x source x stage, (G, P, 4, 3)."""
    p_cov = covariate_probabilities(t, solved.agy_tilt, solved.borough_tilt)
    p_assess, p_treat = stage_probabilities(t, solved.alpha_assessment, solved.alpha_treatment)
    n_g = observed_referrals(t, p_cov, p_assess, 1.0)
    n_g = n_g * n_observed / n_g.sum()
    stage = np.stack([1 - p_assess, p_assess * (1 - p_treat), p_assess * p_treat], axis=-1)
    p_src = source_probabilities(t, solved.alpha_source)
    return n_g[:, None, None, None] * p_cov[:, :, None, None] * p_src[:, :, :, None] * stage[:, :, None, :]


def assumed_odds(t: Targets) -> np.ndarray:
    """The assumed logit-additive odds of being missing (group + borough + stage), (G, P, 1, 3)."""
    bor = pattern_index()["borough"].map({b: i for i, b in enumerate(study.BOROUGHS)}).to_numpy()
    log_odds = (t.missing_group.to_numpy()[:, None, None] + t.missing_borough.to_numpy()[bor][None, :, None]
                + t.missing_stage.to_numpy()[None, None, :])
    return np.exp(log_odds)[:, :, None, :]


def imputation_design() -> np.ndarray:
    """The imputation model's Z per cell (intercept, source, stage, age, gender, year, borough dummies)."""
    pats = pattern_index()
    shape = (N_PATTERNS, N_SOURCES, N_STAGES)
    cols = [np.ones(shape)]
    for k in range(1, N_SOURCES):
        cols.append(np.broadcast_to((np.arange(N_SOURCES) == k)[None, :, None], shape))
    for s in range(1, N_STAGES):
        cols.append(np.broadcast_to((np.arange(N_STAGES) == s)[None, None, :], shape))
    for c, levels in study.COVARIATE_LEVELS.items():
        code = pats[c].map({lv: i for i, lv in enumerate(levels)}).to_numpy()
        for j in range(1, len(levels)):
            cols.append(np.broadcast_to((code == j)[:, None, None], shape))
    return np.stack([np.asarray(c, dtype=float).reshape(-1) for c in cols], axis=1)


def _treatment_design(covariates: list[str]) -> np.ndarray:
    """Design of a treatment model over group x pattern: intercept, group dummies, covariate dummies."""
    pats = pattern_index()
    cols = [np.ones((G, N_PATTERNS))]
    cols += [np.broadcast_to((np.arange(G) == g)[:, None], (G, N_PATTERNS)) for g in range(1, G)]
    for c in covariates:
        levels = study.COVARIATE_LEVELS[c]
        code = pats[c].map({lv: i for i, lv in enumerate(levels)}).to_numpy()
        cols += [np.broadcast_to((code == j)[None, :], (G, N_PATTERNS)) for j in range(1, len(levels))]
    return np.stack([np.asarray(c, dtype=float).ravel() for c in cols], axis=1)


def _softmax(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    eta = np.column_stack([np.zeros(len(X)), X @ params])
    eta -= eta.max(axis=1, keepdims=True)
    p = np.exp(eta)
    return p / p.sum(axis=1, keepdims=True)


class _Problem:
    """Everything the solver needs, computed once: observed cells, Z, the MAR fit, the targets."""

    def __init__(self, t: Targets, solved: Solved):
        self.obs, self.base, self.n_mis = _base_and_observed(t, solved)
        self.n = float(t.n_referrals)
        self.n_obs = self.n - self.n_mis
        self.obs_j = self.obs.sum(axis=0)
        self.stage = np.tile(np.arange(N_STAGES), N_PATTERNS * N_SOURCES)
        self.Z = imputation_design()
        self.pi_mar = _softmax(self.Z, self._fit(np.ones(G)))
        self.pattern = np.repeat(np.arange(N_PATTERNS), N_SOURCES * N_STAGES)
        self.X = {m: _treatment_design(study.MODELS[m]) for m in MODELS}
        self.target_or, self.target_pct = weighted_mi_targets(t)
        # Under the assumed mechanism a group's odds of being missing multiply by exp(missing_log_odds): that is
        # exactly a weight on the group in every cell, so these are the weights it implies (the prior).
        a = t.missing_group.to_numpy()
        self.u_prior = a[1:] - a[0]

    def _fit(self, w: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(fit_mnlogit_counts(self.Z, self.obs, weights=w).params)

    def fit_weighted(self, u: np.ndarray) -> np.ndarray:
        """Parameters of the weighted imputation model with group weights exp(0, u)."""
        return self._fit(np.exp(np.concatenate([[0.0], u])))

    def pi(self, u: np.ndarray, around: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """The weighted imputation model's group probabilities per cell, to first order about a fit: weighting
        group j by w_j shifts its intercept by log w_j (exact for a saturated model). ``around`` =
        (params fitted at u_ref, u_ref); the solver refits there between rounds."""
        b0, u_ref = around
        b = b0.copy()
        b[0] += u - u_ref
        return _softmax(self.Z, b)

    def missing_counts(self, delta: np.ndarray) -> np.ndarray:
        M = self.base * np.exp(delta)
        return M * self.n_mis / M.sum()

    def residuals(self, delta: np.ndarray, u: np.ndarray, around, jacobian: bool = False):
        """Scaled misses of the printed weighted-MI ORs, % treated and the weights' fixed point, and (optionally)
        their Jacobian in (delta, u), analytic: implicit differentiation of the three treatment fits."""
        M = self.missing_counts(delta)
        pi_w = self.pi(u, around)
        comp = (self.obs + M[:, None] * pi_w).T.reshape(G, N_PATTERNS, N_SOURCES, N_STAGES).sum(axis=2)
        A, T = comp[..., 1] + comp[..., 2], comp[..., 2]
        is_t, is_a = (self.stage == 2).astype(float), (self.stage != 0).astype(float)
        r, rows_m, rows_u = [], [], []

        def add_jacobian(E: np.ndarray, scale: np.ndarray) -> None:
            # E: (k, cells, G) = d residual / d (imputed count of group g in cell c)
            rows_m.append(np.einsum("kcg,cg->kc", E, pi_w) / scale[:, None])
            mean_e = np.einsum("kcg,cg->kc", E, pi_w)
            rows_u.append(np.einsum("c,cj,kcj->kj", M, pi_w, E - mean_e[:, :, None])[:, 1:] / scale[:, None])

        for mi, m in enumerate(MODELS):
            X = self.X[m]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                beta = np.asarray(fit_logit_counts(X, T.ravel(), A.ravel()).params)
            scale = SCALE_OR / self.target_or[mi]
            r.append((beta[1:G] - np.log(self.target_or[mi])) / scale)
            if jacobian:  # d beta = H^-1 X' d(T - p A)
                p = 1 / (1 + np.exp(-(X @ beta)))
                H = (X * (A.ravel() * p * (1 - p))[:, None]).T @ X
                K = np.linalg.solve(H, X.T)[1:G].reshape(G - 1, G, N_PATTERNS)[:, :, self.pattern]
                pc = p.reshape(G, N_PATTERNS)[:, self.pattern]
                E = (K * (is_t[None, None, :] - pc[None] * is_a[None, None, :])).transpose(0, 2, 1)
                add_jacobian(E, scale)
        At, Tt = A.sum(axis=1), T.sum(axis=1)
        r.append((100 * Tt / At - self.target_pct) / SCALE_PCT)
        if jacobian:
            E = np.zeros((G, len(M), G))
            for g in range(G):
                E[g, :, g] = 100 * (is_t - Tt[g] / At[g] * is_a) / At[g]
            add_jacobian(E, np.full(G, SCALE_PCT))
        margin = self.obs_j + M @ pi_w
        p_mar = (self.obs_j + M @ self.pi_mar) / self.n
        wc = (margin - p_mar * self.n_obs) / (self.n_mis * p_mar)
        wcc = np.clip(wc, 1e-9, None)
        r.append((np.log(wcc[1:] / wcc[0]) - u) / SCALE_FIXED_POINT)
        r = np.concatenate(r)
        if not jacobian:
            return r
        # fixed point: d log wc_j / d M_c and / d u_k
        dwc_m = ((pi_w.T - self.n_obs * self.pi_mar.T / self.n) / (self.n_mis * p_mar[:, None])
                 - wc[:, None] * self.pi_mar.T / (self.n * p_mar[:, None])) / wcc[:, None]
        rows_m.append((dwc_m[1:] - dwc_m[0][None]) / SCALE_FIXED_POINT)
        dmargin_u = np.einsum("c,cj,cjk->jk", M, pi_w, np.eye(G)[None] - pi_w[:, None, :])[:, 1:]
        dl_u = dmargin_u / (self.n_mis * p_mar[:, None]) / wcc[:, None]
        rows_u.append(((dl_u[1:] - dl_u[0][None]) - np.eye(G - 1)) / SCALE_FIXED_POINT)
        JM = np.concatenate(rows_m)
        J_delta = M[None, :] * (JM - (JM @ M)[:, None] / self.n_mis)  # through the normalisation of M
        return r, np.concatenate([J_delta, np.concatenate(rows_u)], axis=1)


def solve(t: Targets, solved: Solved | None = None, rounds: int = 3, max_iter: int = 200, verbose: bool = False,
          penalty_cells: float = PENALTY_CELLS, penalty_weights: float = PENALTY_WEIGHTS,
          start: SolvedMissingness | None = None, shift_or: np.ndarray | None = None,
          shift_pct: np.ndarray | None = None) -> SolvedMissingness:
    """Penalised Levenberg-Marquardt for delta (per cell) and u (group log-weights vs White British).

    Minimises |residuals|^2 + penalty_cells * sum(base * delta^2) / mean(base) + penalty_weights * |u - u_prior|^2.
    The first penalty is (to second order) the divergence of the missing records' cell mix from the assumed
    mechanism's, so cells move only as much as the targets need; the second keeps the group weights near the
    assumed group odds. Steps use the Woodbury identity (36 residuals, 2,311 unknowns). Each round refits the
    weighted imputation model at the current weights and solves again from there.
    """
    solved = solved or load_solved(t)
    pr = _Problem(t, solved)
    shift_or = np.zeros((len(MODELS), G - 1)) if shift_or is None else np.asarray(shift_or, dtype=float)
    shift_pct = np.zeros(G) if shift_pct is None else np.asarray(shift_pct, dtype=float)
    pr.target_or = pr.target_or * np.exp(-shift_or)
    pr.target_pct = pr.target_pct - shift_pct
    n_cells = N_CELLS
    d_all = np.concatenate([penalty_cells * pr.base / pr.base.mean(), np.full(G - 1, penalty_weights)])
    x0 = np.concatenate([np.zeros(n_cells), pr.u_prior])
    x = x0.copy() if start is None else np.concatenate([start.delta, start.log_weight[1:]])

    def total(x: np.ndarray, r: np.ndarray) -> float:
        return float(r @ r + (d_all * (x - x0)) @ (x - x0))

    for rnd in range(rounds):
        around = (pr.fit_weighted(x[n_cells:]), x[n_cells:].copy())
        mu = 1e-3
        for it in range(max_iter):
            r, J = pr.residuals(x[:n_cells], x[n_cells:], around, jacobian=True)
            cost = total(x, r)
            g = J.T @ r + d_all * (x - x0)
            for _ in range(30):
                a = d_all * (1 + mu)
                ag, aj = g / a, J.T / a[:, None]
                step = -(ag - aj @ np.linalg.solve(np.eye(len(r)) + J @ aj, J @ ag))
                rn = pr.residuals(x[:n_cells] + step[:n_cells], x[n_cells:] + step[n_cells:], around)
                cn = total(x + step, rn)
                if cn < cost:
                    mu = max(mu / 3, 1e-7)
                    break
                mu *= 5
            else:
                break
            x = x + step
            if verbose:
                print(f"round {rnd} iteration {it}: cost {cost:.4f} -> {cn:.4f}; max |residual| "
                      f"{np.abs(rn).max():.2f}; u {np.round(x[n_cells:], 2)}", flush=True)
            if cost - cn < 1e-7 * cost:
                break
    r = pr.residuals(x[:n_cells], x[n_cells:], (pr.fit_weighted(x[n_cells:]), x[n_cells:]))
    if not np.all(np.isfinite(r)):
        raise MissingnessError("the calibration of the missing part did not converge (non-finite residuals)")
    return SolvedMissingness(delta=x[:n_cells], log_weight=np.concatenate([[0.0], x[n_cells:]]),
                             targets_sha256=t.sha256, shift_or=shift_or, shift_pct=shift_pct)


def load_solved_missingness(t: Targets, path: Path = SOLVED_MISSINGNESS_PATH) -> SolvedMissingness | None:
    """The committed solution if it belongs to these targets; else None (the assumed mechanism is used)."""
    if not path.exists():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if frame.targets_sha256.iloc[0] != t.sha256:
        return None
    return SolvedMissingness.from_frame(frame)


def write_solved_missingness(s: SolvedMissingness, path: Path = SOLVED_MISSINGNESS_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    s.to_frame().to_csv(path, index=False, lineterminator="\n")


def _base_and_observed(t: Targets, solved: Solved) -> tuple[np.ndarray, np.ndarray, float]:
    """Observed cells (cells x G), the assumed mechanism's missing counts per cell, and n missing."""
    n_mis = float(round(t.n_referrals * t.missing_share))
    cells = observed_cells(t, solved, t.n_referrals - n_mis)
    base = (cells * assumed_odds(t)).sum(axis=0).reshape(-1)
    return cells.reshape(G, -1).T, base * n_mis / base.sum(), n_mis


def calibrated_missing(t: Targets, solved: Solved, s: SolvedMissingness, n_missing: float) -> np.ndarray:
    """Expected referrals without recorded ethnicity per true group x pattern x source x stage, (G, P, 4, 3).

    ``M`` (cells) times the weighted imputation model's probabilities ``pi_w``, fitted to the expected recorded
    part of the default-size cohort; any other size or missing share scales the same mix.
    """
    obs, base, _ = _base_and_observed(t, solved)
    M = base * np.exp(s.delta)
    M *= n_missing / M.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = np.asarray(fit_mnlogit_counts(imputation_design(), obs, weights=np.exp(s.log_weight)).params)
    pi_w = _softmax(imputation_design(), params)
    return (M[:, None] * pi_w).T.reshape(G, N_PATTERNS, N_SOURCES, N_STAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refine the calibrated missing part of the synthetic cohort.")
    parser.add_argument("--targets", default=str(study.PUBLISHED_DIR / "cohort_targets.csv"))
    parser.add_argument("--start", default=str(SOLVED_MISSINGNESS_PATH), help="solution to start from")
    parser.add_argument("--out", default=str(SOLVED_MISSINGNESS_PATH))
    args = parser.parse_args(argv)
    t = load_targets(args.targets)
    frame = pd.read_csv(args.start, dtype=str, keep_default_na=False)
    start = SolvedMissingness.from_frame(frame)
    s = solve(t, verbose=True, start=start, shift_or=start.shift_or, shift_pct=start.shift_pct)
    write_solved_missingness(s, Path(args.out))
    print(f"written to {args.out} (targets sha256 {t.sha256[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
