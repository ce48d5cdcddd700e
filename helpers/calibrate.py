"""Solve the synthetic cohort's free parameters so that it reproduces the paper's printed figures.

Why this is possible: every covariate is categorical, so the estimates any of the paper's models would give
on the cohort are a function of *expected covariate-pattern counts*. The generator plants the fully adjusted
ORs directly (the fully adjusted model is the data-generating model, so it recovers them exactly). Table 4 then
fixes how much confounding there is between the fully adjusted, the age-gender-year adjusted and the
unadjusted ORs, but not where it comes from; we let each group's age mix and borough mix tilt along the
treatment effects of age and borough (one number each per group) and solve for the tilts, two intercepts and
nothing else. Which mix produces the confounding is an *assumption*; that it is produced is a constraint.

CLI: ``python -m helpers.calibrate [--targets FILE] [--out FILE]`` re-solves and writes the solved parameters.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, logsumexp

from helpers import study
from helpers.fitting import fit_logit_counts
from helpers.targets import NON_BASE_SOURCES, Targets, assessed_counts, load_targets

SOLVED_PATH = study.PUBLISHED_DIR / "solved_parameters.csv"
COVS = list(study.COVARIATE_LEVELS)  # age_band, gender, year, borough
SHAPE = tuple(len(v) for v in study.COVARIATE_LEVELS.values())  # (6, 2, 4, 4)
N_PATTERNS = int(np.prod(SHAPE))
G = len(study.GROUPS)


class CalibrationError(RuntimeError):
    """The solver could not reproduce the targets (they may be mutually impossible)."""


def pattern_index() -> pd.DataFrame:
    """All covariate patterns in a fixed (lexicographic) order: age_band, gender, year, borough."""
    idx = pd.MultiIndex.from_product(list(study.COVARIATE_LEVELS.values()), names=COVS)
    return idx.to_frame(index=False)


def _linear_predictor(effects: dict[str, pd.Series]) -> np.ndarray:
    """Sum of covariate log-ORs for each pattern, shape (N_PATTERNS,)."""
    lp = np.zeros(SHAPE)
    for axis, c in enumerate(COVS):
        shape = [1] * len(SHAPE)
        shape[axis] = SHAPE[axis]
        lp = lp + effects[c].to_numpy().reshape(shape)
    return lp.ravel()


@dataclass(frozen=True)
class Solved:
    """The solved free parameters (intercepts and group tilts), with the targets' hash they belong to."""

    alpha_treatment: float
    alpha_assessment: float
    alpha_source: np.ndarray  # (3,) for NON_BASE_SOURCES
    agy_tilt: np.ndarray  # (G,) reference group 0
    borough_tilt: np.ndarray  # (G,)
    targets_sha256: str

    def to_frame(self) -> pd.DataFrame:
        rows = [("alpha_treatment", "", self.alpha_treatment), ("alpha_assessment", "", self.alpha_assessment)]
        rows += [("alpha_source", k, v) for k, v in zip(NON_BASE_SOURCES, self.alpha_source)]
        rows += [("agy_tilt", g, v) for g, v in zip(study.GROUPS, self.agy_tilt)]
        rows += [("borough_tilt", g, v) for g, v in zip(study.GROUPS, self.borough_tilt)]
        frame = pd.DataFrame(rows, columns=["parameter", "level", "value"])
        frame["value"] = frame["value"].map(repr)  # exact round trip
        frame["targets_sha256"] = self.targets_sha256
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Solved":
        v = frame.assign(value=frame.value.astype(float)).set_index(["parameter", "level"]).value
        return cls(
            alpha_treatment=float(v[("alpha_treatment", "")]),
            alpha_assessment=float(v[("alpha_assessment", "")]),
            alpha_source=np.array([v[("alpha_source", k)] for k in NON_BASE_SOURCES]),
            agy_tilt=np.array([v[("agy_tilt", g)] for g in study.GROUPS]),
            borough_tilt=np.array([v[("borough_tilt", g)] for g in study.GROUPS]),
            targets_sha256=str(frame.targets_sha256.iloc[0]),
        )


def covariate_probabilities(t: Targets, agy_tilt: np.ndarray, borough_tilt: np.ndarray) -> np.ndarray:
    """P(pattern | group), shape (G, N_PATTERNS).

    Start from independent base margins (assumed) and tilt each group's mix exponentially along the treatment
    linear predictor of age, gender and year (``agy_tilt``) and of borough (``borough_tilt``): the smallest
    change of mix that creates the confounding Table 4 implies, spread over all covariates rather than one.
    """
    base = np.zeros(SHAPE)
    agy = np.zeros(SHAPE)
    bor = np.zeros(SHAPE)
    for axis, c in enumerate(COVS):
        shape = [1] * len(SHAPE)
        shape[axis] = SHAPE[axis]
        base = base + np.log(t.covariate_share[c].to_numpy()).reshape(shape)
        effect = t.effects["treatment"][c].to_numpy().reshape(shape)
        if c == "borough":
            bor = bor + effect
        else:
            agy = agy + effect
    logits = base.ravel()[None, :] + agy_tilt[:, None] * agy.ravel()[None, :] + borough_tilt[:, None] * bor.ravel()[None, :]
    return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))


def _group_shift(or_values: pd.Series) -> np.ndarray:
    return np.concatenate([[0.0], np.log(or_values.reindex(study.GROUPS[1:]).to_numpy())])


def stage_probabilities(t: Targets, alpha_assessment: float, alpha_treatment: float) -> tuple[np.ndarray, np.ndarray]:
    """P(assessed | group, pattern) and P(treated | assessed, group, pattern), each (G, N_PATTERNS)."""
    p_assess = expit(alpha_assessment + _group_shift(t.assessment_or)[:, None]
                     + _linear_predictor(t.effects["assessment"])[None, :])
    p_treat = expit(alpha_treatment + _group_shift(t.treatment_or["adjusted_full"])[:, None]
                    + _linear_predictor(t.effects["treatment"])[None, :])
    return p_assess, p_treat


def source_probabilities(t: Targets, alpha_source: np.ndarray) -> np.ndarray:
    """P(source | group, pattern), shape (G, N_PATTERNS, 4) with GP (the base) first."""
    logits = [np.zeros((G, N_PATTERNS))]
    for k, a in zip(NON_BASE_SOURCES, alpha_source):
        shift = np.concatenate([[0.0], np.log(t.referral_rrr[k].reindex(study.GROUPS[1:]).to_numpy())])
        logits.append(a + shift[:, None] + _linear_predictor(t.effects[f"referral_source:{k}"])[None, :])
    stacked = np.stack(logits, axis=-1)
    return np.exp(stacked - logsumexp(stacked, axis=-1, keepdims=True))


def observed_referrals(t: Targets, p_cov: np.ndarray, p_assess: np.ndarray, scale: float) -> np.ndarray:
    """Expected referrals with recorded ethnicity per group, from the (derived) numbers assessed."""
    n_assessed = assessed_counts(t).to_numpy() * scale
    return n_assessed / (p_cov * p_assess).sum(axis=1)


def _agy_odds_ratios(assessed: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Fit the age-gender-year adjusted treatment model on expected counts; return the 7 group log-ORs."""
    a = assessed.reshape(G, *SHAPE).sum(axis=-1).reshape(G, -1)  # collapse borough
    y = treated.reshape(G, *SHAPE).sum(axis=-1).reshape(G, -1)
    n_sub = a.shape[1]
    grid = np.array(np.unravel_index(np.arange(n_sub), SHAPE[:-1])).T  # (n_sub, 3): age, gender, year
    cols = [np.ones((G, n_sub))]
    for g in range(1, G):
        cols.append(np.broadcast_to((np.arange(G) == g)[:, None], (G, n_sub)).astype(float))
    for axis, size in enumerate(SHAPE[:-1]):
        for level in range(1, size):
            cols.append(np.broadcast_to((grid[:, axis] == level)[None, :], (G, n_sub)).astype(float))
    X = np.stack([c.ravel() for c in cols], axis=1)
    fit = fit_logit_counts(X, y.ravel(), a.ravel())
    return np.asarray(fit.params)[1:G]


def _unpack(x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    k = G - 1
    age = np.concatenate([[0.0], x[2:2 + k]])
    bor = np.concatenate([[0.0], x[2 + k:2 + 2 * k]])
    return float(x[0]), float(x[1]), age, bor


def _residuals(x: np.ndarray, t: Targets, n_observed_paper: float) -> np.ndarray:
    alpha_t, alpha_a, age, bor = _unpack(x)
    p_cov = covariate_probabilities(t, age, bor)
    p_assess, p_treat = stage_probabilities(t, alpha_a, alpha_t)
    n_obs = observed_referrals(t, p_cov, p_assess, 1.0)
    assessed = n_obs[:, None] * p_cov * p_assess
    treated = assessed * p_treat
    r_treated = np.log(treated.sum(axis=1) / t.treated_n.to_numpy())
    r_agy = _agy_odds_ratios(assessed, treated) - np.log(t.treatment_or["adjusted_age_gender_year"].to_numpy())
    r_total = np.log(n_obs.sum() / n_observed_paper)
    return np.concatenate([r_treated, r_agy, [r_total]])


def solve(t: Targets) -> Solved:
    """Solve intercepts and tilts; raise CalibrationError if the targets cannot be met to 1e-9."""
    n_observed_paper = round(t.n_referrals * (1 - t.missing_share))
    x0 = np.zeros(2 + 2 * (G - 1))
    x0[0], x0[1] = 1.0, 1.0
    sol = optimize.least_squares(_residuals, x0, args=(t, n_observed_paper), xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                 method="lm")
    worst = float(np.max(np.abs(sol.fun)))
    if worst > 1e-9:
        raise CalibrationError(
            f"could not reproduce the targets (largest log-scale residual {worst:.2e}); check that the printed "
            "ORs, % treated and n are mutually consistent."
        )
    alpha_t, alpha_a, age, bor = _unpack(sol.x)
    alpha_s = _solve_sources(t, covariate_probabilities(t, age, bor))
    return Solved(alpha_t, alpha_a, alpha_s, age, bor, t.sha256)


def _solve_sources(t: Targets, p_cov: np.ndarray) -> np.ndarray:
    """Source intercepts such that White British referrals have the assumed source shares."""
    target = t.reference_share.to_numpy()

    def resid(a: np.ndarray) -> np.ndarray:
        p = (source_probabilities(t, a)[0] * p_cov[0][:, None]).sum(axis=0)
        return np.log(p[1:] / p[0]) - np.log(target[1:] / target[0])

    sol = optimize.least_squares(resid, np.zeros(len(NON_BASE_SOURCES)), xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                 method="lm")
    return sol.x


def load_solved(t: Targets, path: Path = SOLVED_PATH) -> Solved:
    """The committed solution if it belongs to these targets, else a fresh solve (fast, deterministic)."""
    if path.exists():
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if frame.targets_sha256.iloc[0] == t.sha256:
            return Solved.from_frame(frame)
    return solve(t)


def write_solved(solved: Solved, path: Path = SOLVED_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    solved.to_frame().to_csv(path, index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default=str(study.PUBLISHED_DIR / "cohort_targets.csv"))
    parser.add_argument("--out", default=str(SOLVED_PATH))
    args = parser.parse_args(argv)
    t = load_targets(args.targets)
    solved = solve(t)
    write_solved(solved, Path(args.out))
    print(solved.to_frame().to_string(index=False))
    print(f"written to {args.out} (targets sha256 {t.sha256[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def tilts_table(solved: Solved) -> pd.DataFrame:
    """The solved group tilts, one row per group (White British 0 by construction), for display.

    ``agy_tilt`` leans a group's age-gender-year mix along the treatment effects of those covariates and
    ``borough_tilt`` its borough mix along the borough effects; positive = towards patterns with higher
    treatment odds. Both are *constructed* (solved to reproduce Table 4), not observed.
    """
    return pd.DataFrame({"agy_tilt": solved.agy_tilt, "borough_tilt": solved.borough_tilt},
                        index=pd.Index(study.GROUPS, name="ethnicity"))


def group_covariate_mix(t: Targets, solved: Solved, covariate: str) -> pd.DataFrame:
    """Share of each level of ``covariate`` within each group (rows sum to 1), as the solved model builds it.

    These are the expected mixes of referrals with recorded ethnicity (``covariate_probabilities``
    marginalised over the other covariates): *assumed* base margins tilted by the solved tilts.
    """
    if covariate not in COVS:
        raise ValueError(f"covariate {covariate!r} is not one of {COVS}")
    p = covariate_probabilities(t, solved.agy_tilt, solved.borough_tilt).reshape(G, *SHAPE)
    axis = 1 + COVS.index(covariate)
    other = tuple(a for a in range(1, 1 + len(SHAPE)) if a != axis)
    mix = p.sum(axis=other)
    return pd.DataFrame(mix, index=pd.Index(study.GROUPS, name="ethnicity"),
                        columns=pd.Index(study.COVARIATE_LEVELS[covariate], name=covariate))
