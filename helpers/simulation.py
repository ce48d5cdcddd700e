"""A simulation study of the missing-ethnicity methods: complete case, standard (MAR) MI and weighted MI.

Notebook ``12_simulation_study`` tells the story in the ADEMP structure of Morris, White & Crowther (2019),
"Using simulation studies to evaluate statistical methods", Statistics in Medicine 38:2074-2102.

**Data-generating mechanisms.** For each missingness mechanism (``mcar``, ``mar``, ``mnar``; the cohort
generator's, see ``helpers.cohort``) the expected referrals per cell (ethnic group x age band x gender x
year x borough x referral source x pathway stage x ethnicity missing) are computed once
(``cohort.expected_counts``). Each replicate draws a whole cohort from those cell probabilities, exactly
as ``cohort.generate(outcome_mode="random")`` does: one multinomial draw of ``n_referrals`` referrals.

**Estimand.** The full-data population parameter: the log odds ratio (log RRR for referral source) of each
group vs White British that the chosen model would give on the *expected* counts of the whole referred
population, observed and missing ethnicity together (:func:`true_values`). It is the same target for every
method, it does not depend on the cohort size (expected counts scale with ``n_referrals``), and it is the
planted value whenever the model is the data-generating one (the fully adjusted treatment and assessment
models). It differs between mechanisms on purpose: under MNAR the people whose ethnicity goes missing
are a different slice of each group's pathway, so the full population's odds ratios differ from those
of the recorded part. Per-replicate full-data estimates (every row's true group) are available as the
method ``full_data``: the benchmark a missing-data method cannot beat.

**Methods.** ``complete_case``; ``mar_mi`` (standard MI, imputation model on the outcomes and covariates);
``weighted_mi`` (population-calibrated MI, conditional weights, Pham et al. 2019). The margin weighted MI
calibrates to is, by default, the *expected* referred ethnic mix of the mechanism (``margin="expected"``):
a population quantity known in advance, like a census, not the replicate's own realised mix (which no
analyst could know). ``margin="replicate"`` uses the realised true mix instead (what ``margin="truth"``
does for the single cohort of notebook 10).

**Performance measures** (:func:`summarise`): bias, empirical SE, model SE, relative error in the model SE
and coverage of the 95% CI, each with its Monte Carlo SE (Morris et al. 2019, Table 6); coverage also
with the MCSE at the nominal level (``coverage_mcse_nominal``), which does not collapse to 0 when every CI
covers.

**Speed.** Each replicate's analysis frame is built straight from the drawn cell counts
(:func:`frame_from_counts`). ``cohort.generate`` would draw the same counts from the same seed and then
spend about a second per cohort on row-level detail (exact ages, dates, NHS codes) that ``prepare`` maps
back to the same categories; ``route="rows"`` takes that longer road and gives identical complete-case
estimates (tested).

**Randomness.** One seed. Replicate r under mechanism k uses the cohort seed
``SeedSequence(seed, spawn_key=(3, r, k)).generate_state(1)[0]`` (3 = ``pipeline.STREAMS["simulation"]``,
k the mechanism's position in :data:`MECHANISMS`) and independent imputation streams spawned from the same
key per method; no global state. So replicate r's results do not depend on ``n_sims`` or on which other
mechanisms or methods are run.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from helpers import cache, cohort, design, fitting, imputation, models, pipeline, pooling, prepare, replication, study
from helpers import params as params_mod
from helpers.calibrate import COVS, load_solved
from helpers.targets import STAGE_LEVELS, load_targets

MECHANISMS: tuple[str, ...] = ("mcar", "mar", "mnar")
MECHANISM_LABELS: dict[str, str] = {"mcar": "MCAR", "mar": "MAR", "mnar": "MNAR"}
METHODS: tuple[str, ...] = ("full_data", "complete_case", "mar_mi", "weighted_mi")
DEFAULT_METHODS: tuple[str, ...] = ("complete_case", "mar_mi", "weighted_mi")
MARGINS: tuple[str, ...] = ("expected", "replicate")
ROUTES: tuple[str, ...] = ("cells", "rows")
#: Imputations per MI analysis inside the simulation when not given: fewer than the analysis default (20),
#: chosen for run time (the MI methods' cost grows roughly in proportion to M, and the default study must run
#: in under a minute for teaching). The cost is in Monte Carlo terms: with fmi = f, each MI estimate's
#: variance is about (1 + f / M) times that with infinitely many imputations, so the empirical SE, and the
#: MCSE of bias, are slightly larger; Rubin's rules account for M, so bias and coverage are not changed.
DEFAULT_SIM_IMPUTATIONS = 5

RESULT_COLUMNS = ["replicate", "mechanism", "method", "stage", "model", "outcome_level", "ethnicity", "truth",
                  "estimate", "se", "ci_low", "ci_high", "df", "covered", "missing_share",
                  "imputation_terms_dropped"]
KEYS = ["stage", "model", "outcome_level", "mechanism", "method", "ethnicity"]


# --------------------------------------------------------------------------------------------------
# Data-generating mechanisms and the estimand
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """One data-generating mechanism: expected cell counts, the true values and the population margin."""

    mechanism: str
    cells: pd.DataFrame  # cohort.expected_counts: one row per cell, column ``expected``
    probabilities: np.ndarray  # cell probabilities (expected / total)
    truth: pd.DataFrame  # stage, model, outcome_level, ethnicity, truth (log scale)
    margin: pd.Series  # expected referred ethnic mix (observed + missing), indexed by study.GROUPS
    expected_missing_share: float


def expected_missing(world: World, by: str = "stage") -> pd.Series:
    """Expected % of referrals with ethnicity missing, by ``"stage"`` (pathway stage), ``"group"`` (true
    ethnic group) or ``"borough"``, under the world's mechanism (from the expected counts: no sampling)."""
    if by not in ("stage", "group", "borough"):
        raise ValueError(f"by={by!r} not valid; expected 'stage', 'group' or 'borough'")
    c = world.cells
    levels = {"stage": STAGE_LEVELS, "group": study.GROUPS, "borough": study.BOROUGHS}[by]
    tot = c.groupby(by)["expected"].sum()
    mis = c[c["missing"] == 1].groupby(by)["expected"].sum()
    out = (100 * mis / tot).reindex(levels)
    out.name = MECHANISM_LABELS[world.mechanism]
    return out


def _as_list(value: str | Sequence[str], valid: Sequence[str], name: str) -> list[str]:
    out = [value] if isinstance(value, str) else list(value)
    if not out:
        raise ValueError(f"{name}: give at least one of {list(valid)}")
    bad = [v for v in out if v not in valid]
    if bad:
        raise ValueError(f"{name}: {bad} not valid; expected some of {list(valid)}")
    return list(dict.fromkeys(out))


def _stages(stage: str | Sequence[str]) -> list[str]:
    if isinstance(stage, str) and stage == "all":
        return list(study.STAGES)
    return _as_list(stage, study.STAGES, "stage")


def _models(model: str | Sequence[str]) -> list[str]:
    if isinstance(model, str) and model == "all":
        return list(study.MODELS)
    return _as_list(model, list(study.MODELS), "model")


def true_values(cells: pd.DataFrame, stages: Sequence[str] = ("treatment",),
                model_names: Sequence[str] = ("adjusted_full",), weight: str = "expected") -> pd.DataFrame:
    """The estimand: each model fitted to the expected counts of the *full* cohort (missing or not).

    ``cells``: ``cohort.expected_counts`` output (columns group, covariates, referral_source, stage,
    missing, and ``weight``). Summing over ``missing`` gives the whole referred population. Returns one row
    per stage x model x outcome level x non-reference group with ``truth`` on the log scale.
    """
    full = cells.groupby(["group", *COVS, "referral_source", "stage"], observed=True)[weight].sum().reset_index()
    rows = []
    for stage in stages:
        spec = study.STAGE_SPECS[stage]
        for model in model_names:
            covs = study.MODELS[model]
            keys = ["group", *covs]
            if spec.kind == "logit":
                d = full
                if spec.among_assessed:
                    d = d[d["stage"] != "not_assessed"]
                event = "treated" if stage == "treatment" else None
                d = d.assign(_event=(d["stage"] == event) if event else (d["stage"] != "not_assessed"))
                agg = (d.assign(_s=d[weight] * d["_event"]).groupby(keys, observed=True)
                       .agg(successes=("_s", "sum"), trials=(weight, "sum")).reset_index())
                X, names = design.design_matrix(agg.rename(columns={"group": "ethnicity"}), covs)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", fitting.ModelFitWarning)
                    fit = fitting.fit_logit_counts(X, agg["successes"].to_numpy(), agg["trials"].to_numpy(),
                                                  names=names)
                params = {"": np.asarray(fit.params)}
            else:
                wide = (full.pivot_table(index=keys, columns="referral_source", values=weight, aggfunc="sum",
                                         observed=True).reindex(columns=study.SOURCES).fillna(0.0).reset_index())
                X, names = design.design_matrix(wide.rename(columns={"group": "ethnicity"}), covs)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", fitting.ModelFitWarning)
                    fit = fitting.fit_mnlogit_counts(X, wide[study.SOURCES].to_numpy(), names=names)
                beta = np.asarray(fit.params)
                params = {lv: beta[:, j] for j, lv in enumerate(study.SOURCES[1:])}
            for level, b in params.items():
                for g in study.GROUPS[1:]:
                    rows.append({"stage": stage, "model": model, "outcome_level": level, "ethnicity": g,
                                 "truth": float(b[names.index(f"ethnicity[{g}]")])})
    return pd.DataFrame(rows)


def make_world(mechanism: str, n_referrals: int = 20_000, missing_share: float = 0.185,
               stages: Sequence[str] = ("treatment",), model_names: Sequence[str] = ("adjusted_full",),
               targets_path: str = "", targets: Any = None) -> World:
    """Expected counts, true values and expected margin for one missingness mechanism.

    ``targets``: an already loaded ``(Targets, Solved)`` pair (loading the targets file takes a second).
    """
    p = params_mod.validate(n_referrals=n_referrals, missing_share=missing_share, missing_mechanism=mechanism,
                            targets_path=targets_path)
    if targets is None:
        t = load_targets(params_mod.targets_file(p))
        targets = (t, load_solved(t))
    cells = cohort.expected_counts(*targets, p["n_referrals"], p["missing_share"], mechanism)
    e = cells["expected"].to_numpy()
    margin = cells.groupby("group")["expected"].sum().reindex(study.GROUPS)
    margin = (margin / margin.sum()).rename("margin")
    margin.attrs["source"] = f"expected referred ethnic mix under {MECHANISM_LABELS[mechanism]}"
    return World(mechanism=mechanism, cells=cells, probabilities=e / e.sum(),
                 truth=true_values(cells, stages, model_names), margin=margin,
                 expected_missing_share=float(cells.loc[cells["missing"] == 1, "expected"].sum() / e.sum()))


# --------------------------------------------------------------------------------------------------
# One replicate
# --------------------------------------------------------------------------------------------------
def replicate_seed(seed: int, replicate: int, mechanism: str) -> int:
    """The integer cohort seed of one replicate (what ``cohort.generate(seed=...)`` would be given)."""
    key = (pipeline.STREAMS["simulation"], int(replicate), MECHANISMS.index(mechanism))
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def _method_rng(seed: int, replicate: int, mechanism: str, method: str) -> np.random.Generator:
    key = (pipeline.STREAMS["simulation"], int(replicate), MECHANISMS.index(mechanism), 1 + METHODS.index(method))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def frame_from_counts(cells: pd.DataFrame, counts: np.ndarray) -> tuple[pd.DataFrame, pd.Categorical]:
    """The analysis frame (``prepare``'s columns used by the models and imputation) from cell counts.

    Returns the frame (ethnicity NaN where missing) and every row's true group.
    """
    idx = np.repeat(np.arange(len(cells)), np.asarray(counts, dtype=np.int64))
    c = cells.iloc[idx]

    def cat(col: str, levels: list) -> pd.Categorical:
        return pd.Categorical(c[col].to_numpy(), categories=levels)

    true_group = cat("group", study.GROUPS)
    missing = c["missing"].to_numpy() == 1
    stage = c["stage"].to_numpy()
    assessed = (stage != "not_assessed").astype(np.int64)
    treated = np.where(assessed == 1, (stage == "treated").astype(float), np.nan)
    eth_codes = np.where(missing, -1, true_group.codes)
    frame = pd.DataFrame({
        "referral_id": np.arange(1, len(c) + 1),
        "year": cat("year", study.YEARS),
        "age_band": cat("age_band", study.AGE_BANDS),
        "gender": cat("gender", study.GENDERS),
        "ethnicity": pd.Categorical.from_codes(eth_codes, categories=study.GROUPS),
        "borough": cat("borough", study.BOROUGHS),
        "referral_source": cat("referral_source", study.SOURCES),
        "assessed": assessed,
        "treated": treated,
    })
    return frame, true_group


def draw_replicate(world: World, n_referrals: int, cohort_seed: int, route: str = "cells",
                   missing_share: float = 0.185, targets_path: str = "") -> tuple[pd.DataFrame, pd.Categorical]:
    """One cohort of the mechanism: (analysis frame, true groups), drawn from ``cohort_seed``.

    ``route="cells"`` draws the counts as ``cohort.generate(outcome_mode="random")`` does (same generator,
    same first draw) and builds the frame directly; ``route="rows"`` runs ``cohort.generate`` and
    ``prepare.prepare`` in full.
    """
    if route == "cells":
        rng = np.random.default_rng(cohort_seed)
        counts = rng.multinomial(n_referrals, world.probabilities)
        return frame_from_counts(world.cells, counts)
    if route == "rows":
        gen = cohort.generate(n_referrals=n_referrals, seed=cohort_seed, missing_mechanism=world.mechanism,
                              missing_share=missing_share, outcome_mode="random", targets_path=targets_path)
        frame = prepare.prepare(gen.raw).frame
        truth = frame[["referral_id"]].merge(gen.truth.rename(columns={"PathwayID": "referral_id"}),
                                             on="referral_id", how="left")
        return frame, pd.Categorical(truth["true_ethnic_group"].to_numpy(), categories=study.GROUPS)
    raise ValueError(f"route {route!r} not valid; expected one of {list(ROUTES)}")


def _rows(stage: str, model: str, levels: list[str], est: np.ndarray, se: np.ndarray, lo: np.ndarray,
          hi: np.ndarray, df: np.ndarray | float, method: str) -> pd.DataFrame:
    n_groups = len(study.GROUPS) - 1
    return pd.DataFrame({
        "method": method, "stage": stage, "model": model,
        "outcome_level": np.repeat(levels, n_groups),
        "ethnicity": np.tile(study.GROUPS[1:], len(levels)),
        "estimate": est.ravel(), "se": se.ravel(), "ci_low": lo.ravel(), "ci_high": hi.ravel(),
        "df": np.broadcast_to(df, est.shape).ravel(),
    })


def _impute(frame_codes: np.ndarray, design: np.ndarray, znames: list[str], method: str, margin: pd.Series,
            m: int, rng: np.random.Generator, shared: dict | None = None) -> list[np.ndarray]:
    """M completed ethnicity code arrays by the project's engine (``imputation.impute_codes``): the same
    draws ``imputation.impute_ethnicity`` makes from the same generator, without rebuilding Z each time.
    ``shared``: one dict per cohort, so MAR and weighted MI fit their common unweighted model once."""
    weighted = method == "weighted_mi"
    res = imputation.impute_codes(design, frame_codes, len(study.GROUPS), m, rng,
                                  pop_shares=margin.to_numpy() if weighted else None,
                                  weights="conditional" if weighted else None,
                                  categories=study.GROUPS, names=znames, shared=shared)
    completed = []
    for i in range(m):
        c = frame_codes.copy()
        c[res.missing_rows] = res.draws[i]
        completed.append(c)
    return completed, res.n_dropped


def analyse_replicate(frame: pd.DataFrame, true_group: pd.Categorical, margin: pd.Series,
                      methods: Sequence[str], stages: Sequence[str], model_names: Sequence[str],
                      n_imputations: int, rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Every requested method on one cohort: long rows (log scale), without truth or replicate labels.

    Complete case and full data: Wald CIs (estimate +/- 1.96 SE). MI: Rubin's rules
    (``pooling.rubin``) on the log scale, CI with Rubin's degrees of freedom.
    """
    plan = models.ModelPlan(frame, stages, model_names)
    pairs = [(s, mo) for s in stages for mo in model_names]
    codes = pd.Categorical(frame["ethnicity"], categories=study.GROUPS).codes.astype(np.int64)
    parts = []
    z975 = stats.norm.ppf(0.975)
    with warnings.catch_warnings():
        # Sparse cells are possible in small replicates: a non-estimable OR becomes NaN and is counted
        # (n_failed) by summarise instead of stopping the study.
        warnings.simplefilter("ignore", fitting.ModelFitWarning)
        warnings.simplefilter("ignore", imputation.MarginWarning)
        design = znames = None
        shared: dict = {}  # the unweighted imputation model, fitted once for both MI methods
        for method in methods:
            if method in ("full_data", "complete_case"):
                eth = true_group.codes.astype(np.int64) if method == "full_data" else codes
                for s, mo in pairs:
                    levels, est, se = models.group_coefficients(plan.fit(s, mo, eth))
                    parts.append(_rows(s, mo, levels, est, se, est - z975 * se, est + z975 * se, np.inf, method))
                continue
            if design is None:
                design, znames = imputation.z_design(frame)
            # A term the complete cases cannot estimate is dropped from the imputation model (with an
            # ImputationModelWarning, not silenced here); each MI row counts how many were dropped.
            completed, n_dropped = _impute(codes, design, znames, method, margin, n_imputations, rngs[method],
                                           shared)
            for s, mo in pairs:
                fits = [models.group_coefficients(plan.fit(s, mo, c)) for c in completed]
                levels = fits[0][0]
                q = np.stack([f[1].ravel() for f in fits])
                u = np.square(np.stack([f[2].ravel() for f in fits]))
                ok = np.isfinite(q).all(axis=0) & np.isfinite(u).all(axis=0)
                shape = fits[0][1].shape
                vals = {k: np.full(q.shape[1], np.nan) for k in ("estimate", "se", "ci_low", "ci_high", "df")}
                if ok.any():
                    r = pooling.rubin(q[:, ok], u[:, ok])
                    for k in vals:
                        vals[k][ok] = np.asarray(getattr(r, k))
                parts.append(_rows(s, mo, levels, *(vals[k].reshape(shape) for k in
                                                    ("estimate", "se", "ci_low", "ci_high")),
                                   vals["df"].reshape(shape), method).assign(imputation_terms_dropped=n_dropped))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------------
def run_simulation(n_sims: int = 20, n_referrals: int = 20_000,
                   mechanisms: Sequence[str] = MECHANISMS, methods: Sequence[str] = DEFAULT_METHODS,
                   n_imputations: int = DEFAULT_SIM_IMPUTATIONS, seed: int = params_mod.DEFAULTS["seed"],
                   stage: str | Sequence[str] = "treatment", model: str | Sequence[str] = "adjusted_full",
                   progress: bool = False, margin: str = "expected", missing_share: float = 0.185,
                   route: str = "cells", targets_path: str = "") -> pd.DataFrame:
    """Repeat: draw a cohort under each mechanism, analyse it with each method; return every estimate.

    ``stage``/``model``: one name, a list, or ``"all"``. ``methods`` may add ``"full_data"`` (the analysis
    with every row's true group, the no-missing-data benchmark). ``margin``: ``"expected"`` (default) or
    ``"replicate"`` (see the module docstring). Returns one row per replicate x mechanism x method x stage
    x model x outcome level x non-reference group (:data:`RESULT_COLUMNS`); ``truth``, ``estimate``,
    ``se``, ``ci_low`` and ``ci_high`` are on the log scale; ``covered`` says whether the method's 95% CI
    contains the truth; ``mechanism`` is the label (MCAR, MAR, MNAR). ``attrs`` keep the settings, the
    true values and the margins used.
    """
    if not isinstance(n_sims, (int, np.integer)) or n_sims < 1:
        raise ValueError(f"n_sims must be a whole number >= 1, got {n_sims!r}")
    if not isinstance(n_imputations, (int, np.integer)) or n_imputations < 2:
        raise ValueError(f"n_imputations must be a whole number >= 2 (Rubin's rules need two), got {n_imputations!r}")
    mechs = _as_list(mechanisms, MECHANISMS, "mechanisms")
    meths = _as_list(methods, METHODS, "methods")
    stages, model_names = _stages(stage), _models(model)
    if margin not in MARGINS:
        raise ValueError(f"margin {margin!r} not valid; expected one of {list(MARGINS)}")
    if route not in ROUTES:
        raise ValueError(f"route {route!r} not valid; expected one of {list(ROUTES)}")
    params_mod.validate(n_referrals=n_referrals, seed=seed, missing_share=missing_share, targets_path=targets_path)

    t = load_targets(params_mod.targets_file(params_mod.validate(targets_path=targets_path)))
    loaded = (t, load_solved(t))
    worlds = {m: make_world(m, n_referrals, missing_share, stages, model_names, targets_path, loaded)
              for m in mechs}

    parts = []
    for r in tqdm(range(n_sims), desc="Simulation replicates", disable=not progress, leave=False):
        for mech in mechs:
            w = worlds[mech]
            frame, true_group = draw_replicate(w, n_referrals, replicate_seed(seed, r, mech), route,
                                               missing_share, targets_path)
            mgn = w.margin if margin == "expected" else imputation.margin_from_truth(np.asarray(true_group))
            rngs = {m: _method_rng(seed, r, mech, m) for m in meths if m in ("mar_mi", "weighted_mi")}
            rows = analyse_replicate(frame, true_group, mgn, meths, stages, model_names, n_imputations, rngs)
            rows.insert(0, "replicate", r)
            rows.insert(1, "mechanism", MECHANISM_LABELS[mech])
            rows["missing_share"] = float(frame["ethnicity"].isna().mean())
            parts.append(rows.merge(w.truth, on=["stage", "model", "outcome_level", "ethnicity"], how="left"))
    out = pd.concat(parts, ignore_index=True)
    out["covered"] = (out["ci_low"] <= out["truth"]) & (out["truth"] <= out["ci_high"])
    if "imputation_terms_dropped" not in out:
        out["imputation_terms_dropped"] = 0
    out["imputation_terms_dropped"] = out["imputation_terms_dropped"].fillna(0).astype(int)
    out = out[RESULT_COLUMNS]
    out.attrs["settings"] = dict(n_sims=n_sims, n_referrals=n_referrals, mechanisms=mechs, methods=meths,
                                 n_imputations=n_imputations, seed=seed, stages=stages, models=model_names,
                                 margin=margin, missing_share=missing_share, route=route)
    out.attrs["truth"] = pd.concat([w.truth.assign(mechanism=MECHANISM_LABELS[m]) for m, w in worlds.items()],
                                   ignore_index=True)
    out.attrs["margins"] = pd.DataFrame({MECHANISM_LABELS[m]: w.margin for m, w in worlds.items()})
    return out


def simulation_study(sim: Mapping[str, Any]) -> tuple[pd.DataFrame, float]:
    """The notebook set's simulation study and the seconds it took: every mechanism and method, the fully
    adjusted treatment OR, with ``sim`` from :func:`simulation_parameters`.

    Notebook 12 runs it and notebook 13 reads it; inside a run (``helpers.run``, ``make nbval``) the run's cache
    hands the second caller the first one's results and measured seconds, so the set simulates once. Opened on
    its own, either notebook simulates (the same seeds, so the same results)."""
    def timed() -> tuple[pd.DataFrame, float]:
        started = time.perf_counter()
        results = run_simulation(
            n_sims=sim["n_sims"], n_referrals=sim["n_referrals"], seed=sim["seed"],
            missing_share=sim["missing_share"], targets_path=sim["targets_path"], mechanisms=MECHANISMS,
            methods=METHODS, n_imputations=sim["n_imputations"], stage="treatment", model="adjusted_full")
        return results, time.perf_counter() - started
    return cache.memo("simulation_study", cache.digest(dict(sim)), timed)


def dropped_terms_report(results: pd.DataFrame) -> pd.DataFrame:
    """How often the imputation model had a term it could not estimate (empty cell or separation), which
    ``imputation.impute_codes`` then dropped: replicates affected per mechanism x MI method."""
    mi = results[results["method"].isin(["mar_mi", "weighted_mi"])]
    per = mi.groupby(["mechanism", "method", "replicate"])["imputation_terms_dropped"].max().reset_index()
    out = per.groupby(["mechanism", "method"]).agg(
        replicates=("replicate", "nunique"),
        replicates_with_dropped_terms=("imputation_terms_dropped", lambda x: int((x > 0).sum())),
        most_terms_dropped=("imputation_terms_dropped", "max"))
    return out.reset_index()


def summarise(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Performance measures per stage x model x outcome level x mechanism x method x group.

    With n_sim valid replicates, estimates theta_i, model SEs s_i and true value theta (Morris et al.
    2019, Table 6):

    - ``bias`` = mean(theta_i) - theta; ``bias_mcse`` = emp_se / sqrt(n_sim)
    - ``emp_se`` = SD(theta_i); ``emp_se_mcse`` = emp_se / sqrt(2 (n_sim - 1))
    - ``model_se`` = sqrt(mean(s_i^2)); ``model_se_mcse`` = sqrt(Var(s_i^2) / (4 n_sim model_se^2))
    - ``rel_error_se`` = 100 (model_se / emp_se - 1) %; ``rel_error_se_mcse`` =
      100 (model_se / emp_se) sqrt(Var(s_i^2) / (4 n_sim model_se^4) + 1 / (2 (n_sim - 1)))
    - ``coverage`` = share of CIs containing theta; ``coverage_mcse`` = sqrt(coverage (1 - coverage) / n_sim)
    - ``coverage_mcse_nominal`` = sqrt(level (1 - level) / n_sim): the MCSE a coverage estimate would have if
      the true coverage were the nominal ``level``. ``coverage_mcse`` collapses to 0 when every CI (or none)
      covers, which with few replicates happens by chance and says nothing about precision; the nominal
      version does not, so use it to judge whether a coverage differs from ``level`` (Morris et al. 2019
      recommend it for planning the number of replicates).

    Rows whose estimate or SE is not finite (not estimable in that replicate) are left out and counted in
    ``n_failed``. All on the log scale. ``level``: the nominal coverage of the CIs (0.95).
    """
    needed = set(KEYS) | {"truth", "estimate", "se", "covered"}
    missing = sorted(needed - set(results.columns))
    if missing:
        raise ValueError(f"results lack columns {missing}: pass run_simulation(...) output")
    if not 0 < level < 1:
        raise ValueError(f"level must be a proportion between 0 and 1, got {level!r}")
    ok = np.isfinite(results["estimate"].astype(float)) & np.isfinite(results["se"].astype(float))
    data = results.assign(_ok=ok)
    rows = []
    for key, g in data.groupby(KEYS, sort=False, observed=True):
        valid = g[g["_ok"]]
        n = len(valid)
        theta = float(g["truth"].iloc[0])
        est = valid["estimate"].to_numpy(dtype=float)
        var = np.square(valid["se"].to_numpy(dtype=float))
        cov = valid["covered"].to_numpy(dtype=bool)
        row = dict(zip(KEYS, key))
        row.update(n_sim=n, n_failed=int(len(g) - n), truth=theta)
        if n == 0:
            rows.append(row)
            continue
        emp_se = float(est.std(ddof=1)) if n > 1 else np.nan
        model_se = float(np.sqrt(var.mean()))
        var_of_var = float(var.var(ddof=1)) if n > 1 else np.nan
        coverage = float(cov.mean())
        row.update(
            mean_estimate=float(est.mean()),
            bias=float(est.mean() - theta),
            bias_mcse=emp_se / np.sqrt(n),
            emp_se=emp_se,
            emp_se_mcse=emp_se / np.sqrt(2 * (n - 1)) if n > 1 else np.nan,
            model_se=model_se,
            model_se_mcse=np.sqrt(var_of_var / (4 * n * model_se**2)) if model_se > 0 else np.nan,
            rel_error_se=100 * (model_se / emp_se - 1) if emp_se > 0 else np.nan,
            rel_error_se_mcse=(100 * model_se / emp_se
                               * np.sqrt(var_of_var / (4 * n * model_se**4) + 1 / (2 * (n - 1))))
            if emp_se > 0 and n > 1 else np.nan,
            coverage=coverage,
            coverage_mcse=float(np.sqrt(coverage * (1 - coverage) / n)),
            coverage_mcse_nominal=float(np.sqrt(level * (1 - level) / n)),
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["nominal_coverage"] = level
    return out


def overview(summary: pd.DataFrame) -> pd.DataFrame:
    """One line per mechanism x method, averaged over groups (and stages/models/levels present):
    mean |bias|, mean emp SE, mean model SE, mean coverage, and the largest |bias| / bias MCSE."""
    s = summary.assign(abs_bias=summary["bias"].abs(),
                       z=summary["bias"].abs() / summary["bias_mcse"])
    order_m = [MECHANISM_LABELS[m] for m in MECHANISMS]
    out = (s.groupby(["mechanism", "method"], observed=True, sort=False)
           .agg(mean_abs_bias=("abs_bias", "mean"), max_bias_in_mcse=("z", "max"), emp_se=("emp_se", "mean"),
                model_se=("model_se", "mean"), coverage=("coverage", "mean"), min_coverage=("coverage", "min"))
           .reset_index())
    out["_m"] = out["mechanism"].map({m: i for i, m in enumerate(order_m)})
    out["_k"] = out["method"].map({m: i for i, m in enumerate(METHODS)})
    return out.sort_values(["_m", "_k"]).drop(columns=["_m", "_k"]).reset_index(drop=True)


def simulation_parameters(p: dict[str, Any]) -> dict[str, Any]:
    """The run parameters that drive the simulation (notebooks 12-13): n_sims, n_referrals, seed, missing share,
    targets file, and imputations per MI analysis (the run's ``n_imputations``, at most
    :data:`DEFAULT_SIM_IMPUTATIONS`, for run time)."""
    return dict(n_sims=p["n_simulations"], n_referrals=p["simulation_n_referrals"], seed=p["seed"],
                missing_share=p["missing_share"], targets_path=p["targets_path"],
                n_imputations=min(p["n_imputations"], DEFAULT_SIM_IMPUTATIONS))


def settings_note(sim: Mapping[str, Any], data_path: str = "") -> str:
    """What the simulation notebooks say they run, and, on a real extract, that they do not use it."""
    note = (f"{sim['n_sims']} replicates of {sim['n_referrals']:,} referrals per mechanism; "
            f"{sim['n_imputations']} imputations per MI analysis")
    if data_path:
        note += ("\nThis notebook is about synthetic worlds: it simulates its own cohorts and does not use the real "
                 "extract.")
    return note


# --------------------------------------------------------------------------------------------------
# Planted values inside the CIs of cohorts drawn in random outcome mode (notebooks 07-08)
# --------------------------------------------------------------------------------------------------
def planted_coverage_random(p: dict, stage: str, seeds: Sequence[int], model: str = "adjusted_full") -> pd.DataFrame:
    """How many planted (targets-file) values fall inside our 95% CIs in cohorts drawn in *random* outcome mode.

    Why: a calibrated cohort constructs its counts, so its estimates equal the planted values up to rounding
    and "every planted value inside the CI" holds by construction. In random mode each outcome is one draw, so
    the usual "about 1 in 20 outside by chance" applies. One row per seed: ``seed, inside, planted``
    (complete-case estimates; ``p`` as from ``helpers.notebook.setup``, other parameters kept).

    Each cohort is the one ``pipeline.load_study_data(p, outcome_mode="random", seed=s)`` holds, built from its
    drawn counts (:func:`frame_from_counts`, as the replicates of :func:`run_simulation`): the same estimates to
    the last digit without the row-level detail and the extract engine (about 3 s of CPU per cohort), and only
    the stage and model asked for is fitted.
    """
    targets = pd.read_csv(params_mod.targets_file(p), dtype=str, keep_default_na=False)
    q = params_mod.validate({**p, "outcome_mode": "random", "data_path": ""})
    t = load_targets(params_mod.targets_file(q))
    cells = cohort.expected_counts(t, load_solved(t), q["n_referrals"], q["missing_share"], q["missing_mechanism"])
    rows = []
    for s in seeds:
        # the cohort pipeline.load_study_data(p, outcome_mode="random", seed=s) holds, built from its drawn counts
        # (the generator's first draw) as the simulation study's replicates are: the same complete-case estimates
        counts = cohort.realise_counts(cells, t, q["n_referrals"], q["missing_share"], "random",
                                       np.random.default_rng(int(s)))
        est = models.fit_stage(frame_from_counts(cells, counts)[0], stage, model)
        planted = replication.planted_vs_estimated(est, targets, stage, model=model)
        rows.append({"seed": int(s), "inside": int(planted["planted_in_ci"].sum()), "planted": len(planted)})
    return pd.DataFrame(rows, columns=["seed", "inside", "planted"])


def coverage_summary(coverage: pd.DataFrame, what: str) -> str:
    """Two lines reading a :func:`planted_coverage_random` table against the binomial: how many planted values
    (``what``, e.g. "planted ORs") fell outside our 95% CIs, and how many 95% intervals would leave outside.

    Why: with ``n`` independent 95% intervals the number outside is Binomial(n, 0.05), so "a few outside" is
    expected; the central 95% range of that binomial says how few or many would be surprising.
    """
    inside, total = int(coverage["inside"].sum()), int(coverage["planted"].sum())
    low, high = stats.binom.interval(0.95, total, 0.05)
    return (f"Random outcome mode, {len(coverage)} cohorts: {inside}/{total} {what} inside our 95% CI, "
            f"{total - inside} outside\n"
            f"If every interval has 95% coverage: about {total / 20:g} outside on average, "
            f"and between {low:.0f} and {high:.0f} in 95% of such runs")


def estimand_by_mechanism(worlds: Mapping[str, Any], stage: str = "treatment", model: str = "adjusted_full",
                          labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per mechanism and group: missing records added per 100 recorded, the world's true OR, the recorded-only OR.

    ``worlds``: mechanism -> ``simulation.World``. Why: every world shares the same recorded referrals and adds
    different missing ones, so the full-population odds ratio (the estimand) differs between worlds while the
    odds ratio of the recorded part alone does not. Counted among the referrals the stage's model uses (the
    assessed, for treatment). Expected counts, no sampling.
    """
    rows = []
    for mech, world in worlds.items():
        cells = world.cells
        if study.STAGE_SPECS[stage].among_assessed:
            cells = cells[cells["stage"] != "not_assessed"]
        by = cells.groupby(["group", "missing"], observed=True)["expected"].sum().unstack("missing")
        added = 100 * by.get(1, 0.0) / by[0]
        truth = world.truth[(world.truth["stage"] == stage) & (world.truth["model"] == model)]
        recorded = true_values(world.cells[world.cells["missing"] == 0], (stage,), (model,))
        truth = truth.set_index("ethnicity")["truth"]
        recorded = recorded.set_index("ethnicity")["truth"]
        for group in truth.index:
            rows.append({"mechanism": (labels or {}).get(mech, mech), "ethnicity": group,
                         "missing_per_100_recorded": float(added[group]),
                         "truth_or": float(np.exp(truth[group])), "recorded_or": float(np.exp(recorded[group]))})
    return pd.DataFrame(rows)
