"""The *assumed* missing part under which weighted MI reproduces the printed weighted-MI column (``mnar_wmi``).

Why it exists: under the default *assumed* mechanism (``mnar``) weighted MI lands far from Table 4's printed
weighted-MI column (5 of 21 ORs at printed precision). ``docs/weighted_mi_bounds.md`` measures what any missing
part can do; this module builds, as an opt-in cohort (``missing_mechanism='mnar_wmi'``), the solution that page
calls ``free_ps_R_indep`` (the abstract's directions kept): the same recorded part as the default cohort, so
the complete-case half is unchanged, and a missing part solved so that weighted MI, given the margin in
``data/assumed/mnar_wmi_groups.csv``, reproduces the printed column in expectation.

The mechanism is MNAR and extreme, and nothing in the paper says its data looked like this:

* where the missing records sit: ``data/assumed/mnar_wmi_cells.csv`` gives each cell's share of them (age
  band x gender x year x borough x referral source x pathway stage; referral source as recorded within the
  covariate pattern, independent of stage);
* who they are: each missing record's true group is drawn from the *weighted imputation model* of its cell,
  the multinomial logit of group on those six variables fitted to the recorded part with one weight per
  group (``mnar_wmi_groups.csv``, column ``weight``), so weighted MI imputes from the model the truth came
  from;
* the margin weighted MI is given (column ``share``) is the one whose conditional weights are those weights.
  It is **not** the cohort's true mix (Black African 15.3% against about 14.4%): weighted MI's weight formula
  starts from the MAR-imputed mix, so it needs that margin to return those weights.

Both files were written by ``benchmarks/wmi_missing_bounds.py --margin free --levels free_ps_R_indep --save
data/assumed`` from the committed default cohort; their first line says so. The solver fitted the weighted
model to that cohort's realised (integer) recorded counts; the generator fits it to the expected recorded
counts, so the true groups differ from the solution's by the recorded part's rounding (the weights weighted MI
then computes are within 1% of the file's for every group but Mixed, 0.00071 against 0.00076). The solution is
for the default targets, size and missing share; with others the same spread and weights give a cohort of the
same shape that was not solved for.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from helpers import study
from helpers.calibrate import COVS, N_PATTERNS, pattern_index
from helpers.design import column_codes, design_from_spec, design_spec
from helpers.fitting import fit_mnlogit_counts, mnlogit_probabilities
from helpers.targets import STAGE_LEVELS

ASSUMED_DIR = study.DATA_DIR / "assumed"
CELLS_FILE = ASSUMED_DIR / "mnar_wmi_cells.csv"
GROUPS_FILE = ASSUMED_DIR / "mnar_wmi_groups.csv"


def read_groups() -> pd.DataFrame:
    """The group weights and the margin, indexed by the study's groups in order."""
    table = pd.read_csv(GROUPS_FILE, comment="#").set_index("ethnicity")
    if list(table.index) != list(study.GROUPS):
        raise ValueError(f"{GROUPS_FILE.name}: groups {list(table.index)}, expected {list(study.GROUPS)}")
    return table


def margin() -> pd.Series:
    """The margin (shares) weighted MI is given on an ``mnar_wmi`` cohort: margin keyword ``mnar_wmi``."""
    return read_groups()["share"].astype(float)


def cell_shares() -> np.ndarray:
    """Each cell's share of the missing records, shaped (pattern, source, stage) in the generator's order."""
    table = pd.read_csv(CELLS_FILE, comment="#")
    pats = pattern_index().assign(pattern=np.arange(N_PATTERNS))
    merged = table.merge(pats, on=COVS, how="left", validate="many_to_one")
    src = pd.Categorical(merged.referral_source, categories=study.SOURCES).codes
    stage = pd.Categorical(merged.stage, categories=STAGE_LEVELS).codes
    cell = merged.pattern.fillna(-1).to_numpy(dtype=int) * 12 + src * 3 + stage
    if (merged.pattern.isna().any() or (src < 0).any() or (stage < 0).any() or len(table) != N_PATTERNS * 12
            or len(np.unique(cell)) != len(cell)):
        raise ValueError(f"{CELLS_FILE.name}: expected one row per cell of the study's levels "
                         f"({N_PATTERNS * 12} rows), got {len(table)} with unknown levels, gaps or repeats")
    if (table.share < 0).any() or not np.isfinite(table.share).all() or table.share.sum() <= 0:
        raise ValueError(f"{CELLS_FILE.name}: column 'share' must be finite, >= 0 and not all 0")
    out = np.zeros((N_PATTERNS, len(study.SOURCES), len(STAGE_LEVELS)))
    out[merged.pattern.to_numpy(dtype=int), src, stage] = merged.share.to_numpy(dtype=float)
    return out / out.sum()


def cell_design() -> np.ndarray:
    """The imputation model's design over every (pattern, source, stage) cell, in the generator's order.

    The same main effects as weighted MI's (``imputation.DEFAULT_Z``: referral source, pathway stage, age band,
    gender, year, borough; first level the reference), built from ``helpers.design`` so that the data layer
    needs nothing from the analysis layer.
    """
    pats = pattern_index()
    p, s, t = np.unravel_index(np.arange(N_PATTERNS * 12), (N_PATTERNS, len(study.SOURCES), len(STAGE_LEVELS)))
    frame = pd.DataFrame({c: pd.Categorical(pats[c].to_numpy()[p], categories=study.COVARIATE_LEVELS[c])
                          for c in COVS})
    frame["referral_source"] = pd.Categorical(np.asarray(study.SOURCES)[s], categories=study.SOURCES)
    frame["pathway_stage"] = pd.Categorical(np.asarray(STAGE_LEVELS)[t], categories=STAGE_LEVELS)
    variables = ["referral_source", "pathway_stage", *COVS]
    coded = [column_codes(frame, v) for v in variables]
    codes = np.column_stack([c for c, _ in coded])
    return design_from_spec(codes, design_spec(codes, variables, [lv for _, lv in coded]))


def missing_part(recorded: np.ndarray, n_missing: int) -> np.ndarray:
    """Expected missing records per (group, pattern, source, stage), from the recorded part's expected counts.

    ``recorded`` has that same shape. The true groups follow the weighted imputation model fitted to
    ``recorded`` with the file's group weights.
    """
    G = len(study.GROUPS)
    shape = (G, N_PATTERNS, len(study.SOURCES), len(STAGE_LEVELS))
    if recorded.shape != shape:
        raise ValueError(f"missing_part: recorded counts must have shape {shape}, got {recorded.shape}")
    Z = cell_design()
    counts = recorded.reshape(G, -1).T
    weights = read_groups()["weight"].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty recorded cells are expected: the model is additive
        fit = fit_mnlogit_counts(Z, counts, weights=weights)
    if not fit.converged:
        raise RuntimeError("mnar_wmi: the weighted imputation model did not converge on the recorded counts")
    beta = np.asarray(fit.params)
    pi = mnlogit_probabilities(Z, beta)  # cells x G
    total = n_missing * cell_shares().reshape(-1)
    return (total[:, None] * pi).T.reshape(shape)
