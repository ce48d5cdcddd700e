"""The synthetic IAPT cohort: one row per referral, in the raw NHS-coded form a real extract has.

How it is built (``02_synthetic_cohort`` tells the story):
1. ``expected_counts``: expected numbers of referrals in every cell of
   ethnic group x age band x gender x year x borough x referral source x pathway stage x ethnicity missing,
   from the calibration targets and the solved parameters (``helpers.calibrate``). The cells with recorded
   ethnicity reproduce the paper's Table 4; the cells with missing ethnicity are added on top, with odds of
   being missing that follow the chosen mechanism (MCAR / MAR / MNAR).
2. ``realise_counts``: integers per cell. ``calibrated`` mode rounds the expected counts under control so that
   every group's totals equal the printed ones (constructed to match, not sampled); ``random`` mode draws the
   whole cohort from the same probabilities (for simulation studies).
3. ``expand_rows``: one row per referral with ages, dates and NHS codes drawn within each cell.

One ``numpy.random.Generator`` seeded once drives every draw; same arguments, same bytes.
CLI: ``python -m helpers.cohort --n N --seed S --out FILE [--truth-out FILE]`` or ``--default``.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from helpers import codes, missingness, study
from helpers import params as params_mod
from helpers.calibrate import (
    COVS,
    N_PATTERNS,
    SHAPE,
    G,
    Solved,
    covariate_probabilities,
    load_solved,
    observed_referrals,
    pattern_index,
    source_probabilities,
    stage_probabilities,
)
from helpers.targets import STAGE_LEVELS, Targets, load_targets

DEFAULT_COHORT = study.SYNTHETIC_DIR / "iapt_referrals.csv"
DEFAULT_TRUTH = study.SYNTHETIC_DIR / "iapt_truth.csv"
RAW_COLUMNS = list(codes.RAW_COLUMNS)
TRUTH_COLUMNS = ["PathwayID", "true_ethnic_group", "true_EthnicCategory", "ethnicity_missing"]

# --- Within-cell details: none of these change any estimate; all *assumed* --------------------------------
# Missing ethnicity is recorded as Z (not stated), 99 (not known) or left blank.
MISSING_CODE_SHARES = {"Z": 0.5, "99": 0.3, "": 0.2}
# Source-of-referral codes within each analysis category.
SOURCE_CODE_SHARES = {
    "GP": {"A1": 1.0},
    "Self": {"B1": 1.0},
    "Community": {"C1": 0.10, "C2": 0.08, "C3": 0.05, "D1": 0.10, "D2": 0.07, "E3": 0.10, "E4": 0.05,
                  "G4": 0.30, "M5": 0.10, "M8": 0.05},
    "Other": {"A3": 0.20, "B2": 0.10, "H2": 0.15, "M6": 0.20, "M7": 0.10, "N4": 0.15, "P1": 0.10},
}
# Days from referral to first assessment and from assessment to first treatment: 1 + geometric(1 / mean).
MEAN_DAYS_TO_ASSESSMENT = 21
MEAN_DAYS_TO_TREATMENT = 35
OLDEST_AGE = 90
GENDER_CODES = {"Female": "2", "Male": "1"}
CENSUS_FILE = study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv"


@dataclass(frozen=True)
class Cohort:
    """A generated cohort: the raw extract, the truth file and the expected counts it was realised from."""

    raw: pd.DataFrame
    truth: pd.DataFrame
    counts: pd.DataFrame  # cells with expected and realised counts
    settings: dict[str, Any]


def code_shares_within_group() -> dict[str, dict[str, float]]:
    """Shares of NHS ethnic codes within each analysis group.

    Source: 2011 Census QS201EW counts for the four boroughs the cohort covers, pooled
    (data/published/census2011_ethnicity_boroughs.csv), mapped to NHS codes by that file and to groups by
    ``helpers.codes``. A code's share within its group is the same in every borough of the cohort (*assumed*).
    """
    census = pd.read_csv(CENSUS_FILE, dtype={"nhs_code": str})
    census = census[census.borough.isin(study.BOROUGHS) & census["count"].notna()]
    census = census[census.nhs_code.isin(codes.ETHNIC_CODE_TO_GROUP)]
    census = census.assign(group=census.nhs_code.map(codes.ETHNIC_CODE_TO_GROUP))
    by_code = census.groupby(["group", "nhs_code"])["count"].sum()
    out: dict[str, dict[str, float]] = {}
    for g in study.GROUPS:
        s = by_code.loc[g]
        out[g] = (s / s.sum()).to_dict()
    return out


def _missing_odds(t: Targets, mechanism: str) -> np.ndarray:
    """Log-odds of ethnicity being missing (besides the intercept) per group x pattern x stage."""
    g = t.missing_group.to_numpy() if mechanism == "mnar" else np.zeros(G)
    stage = t.missing_stage.to_numpy() if mechanism in ("mar", "mnar") else np.zeros(3)
    bor = t.missing_borough.to_numpy() if mechanism in ("mar", "mnar") else np.zeros(SHAPE[-1])
    bor_pattern = np.broadcast_to(bor, SHAPE).ravel()
    return g[:, None, None] + bor_pattern[None, :, None] + stage[None, None, :]


def expected_counts(t: Targets, solved: Solved, n_referrals: int, missing_share: float,
                    mechanism: str) -> pd.DataFrame:
    """Expected referrals per cell (group x pattern x source x stage x missing), as a tidy frame."""
    n_missing = int(round(n_referrals * missing_share))
    n_observed = n_referrals - n_missing
    scale = n_observed / round(t.n_referrals * (1 - t.missing_share))
    p_cov = covariate_probabilities(t, solved.agy_tilt, solved.borough_tilt)
    p_assess, p_treat = stage_probabilities(t, solved.alpha_assessment, solved.alpha_treatment)
    n_obs_group = observed_referrals(t, p_cov, p_assess, scale)
    # the recorded-ethnicity total is exact by construction (solved); rescale away the last rounding error
    n_obs_group = n_obs_group * n_observed / n_obs_group.sum()
    stage = np.stack([1 - p_assess, p_assess * (1 - p_treat), p_assess * p_treat], axis=-1)  # (G, P, 3)
    observed = n_obs_group[:, None, None] * p_cov[:, :, None] * stage  # (G, P, 3)

    p_src = source_probabilities(t, solved.alpha_source)  # (G, P, 4)
    calibrated = missingness.load_solved_missingness(t) if mechanism == "mnar" else None
    if n_missing > 0 and calibrated is not None:
        # MNAR calibrated to Table 4's weighted-MI column (helpers.missingness), the default
        missing = missingness.calibrated_missing(t, solved, calibrated, n_missing)
    elif n_missing > 0:
        odds = np.exp(_missing_odds(t, mechanism))
        mu = optimize.brentq(lambda m: np.exp(m) * (observed * odds).sum() - n_missing, -50, 50, xtol=1e-14)
        missing = observed * odds * np.exp(mu)
        missing = (missing * n_missing / missing.sum())[:, :, None, :] * p_src[:, :, :, None]
    else:
        missing = np.zeros(observed.shape[:2] + p_src.shape[-1:] + observed.shape[-1:])

    full = np.stack([observed[:, :, None, :] * p_src[:, :, :, None], missing], axis=-1)  # (G, P, 4, 3, 2)
    pats = pattern_index()
    index = pd.MultiIndex.from_product(
        [study.GROUPS, range(N_PATTERNS), study.SOURCES, STAGE_LEVELS, [0, 1]],
        names=["group", "pattern", "referral_source", "stage", "missing"],
    )
    frame = pd.DataFrame({"expected": full.ravel()}, index=index).reset_index()
    frame = frame.join(pats, on="pattern")
    return frame[["group", *COVS, "referral_source", "stage", "missing", "pattern", "expected"]]


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing exactly to ``total``, each within 1 of its share (cumulative rounding).

    Any run of neighbouring cells also stays within 1 of its expected sum, which keeps margins close.
    """
    w = np.asarray(weights, dtype=float)
    s = w.sum()
    if total == 0 or s <= 0:
        return np.zeros(len(w), dtype=np.int64)
    cum = np.floor(np.cumsum(w) * (total / s) + 0.5).astype(np.int64)
    cum[-1] = total
    return np.diff(np.concatenate([[0], cum]))


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing to ``total`` in proportion to ``weights`` (Hamilton's method, ties by position)."""
    w = np.clip(weights, 0, None)
    if total == 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    q = w * (total / w.sum())
    out = np.floor(q).astype(np.int64)
    short = total - out.sum()
    if short:
        out[np.argsort(-(q - out), kind="stable")[:short]] += 1
    return out


def _allocate_with_carry(totals: np.ndarray, probs: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Split each row total across columns exactly, carrying the rounding debt from row to row.

    Rounding every small cell on its own would send a cell of one referral to the same column every time
    (a bias that piles up); carrying the debt keeps every column's total within about one of its expectation.
    """
    out = np.zeros(probs.shape, dtype=np.int64)
    debt = np.zeros(probs.shape[1])
    for row in order:
        if totals[row] == 0:
            continue
        target = totals[row] * probs[row] + debt
        out[row] = _largest_remainder(int(totals[row]), target)
        debt = target - out[row]
    return out


def _calibrated(expected: pd.DataFrame, t: Targets, n_referrals: int, missing_share: float,
                rng: np.random.Generator) -> np.ndarray:
    """Controlled rounding: group x stage totals exact, then patterns, then sources within each pattern.

    Patterns are visited in a seeded random order so that systematic rounding cannot line up with the
    regular order of the pattern grid (which would favour one borough or year in small groups).
    """
    from helpers.targets import assessed_counts

    e = expected.expected.to_numpy().reshape(G, N_PATTERNS, 4, 3, 2)
    out = np.zeros(e.shape, dtype=np.int64)
    n_missing = int(round(n_referrals * missing_share))
    n_observed = n_referrals - n_missing
    scale = n_observed / round(t.n_referrals * (1 - t.missing_share))
    # recorded-ethnicity part: treated and assessed per group as printed (scaled), referred to the total
    if scale == 1.0:
        treated, assessed = t.treated_n.to_numpy().astype(np.int64), assessed_counts(t).to_numpy()
    else:
        treated = _split(int(round(t.treated_n.sum() * scale)), t.treated_n.to_numpy())
        assessed = _split(int(round(assessed_counts(t).sum() * scale)), assessed_counts(t).to_numpy())
        assessed = np.maximum(assessed, treated)
    referred = _split(n_observed, e[..., 0].sum(axis=(1, 2, 3)))
    referred = np.maximum(referred, assessed)
    referred[0] += n_observed - referred.sum()
    stage_totals_obs = np.stack([referred - assessed, assessed - treated, treated], axis=1)  # (G, 3)
    # missing part: group totals, then stage within group
    miss_group = _split(n_missing, e[..., 1].sum(axis=(1, 2, 3)))
    stage_totals_mis = np.stack([_split(int(m), e[gi, :, :, :, 1].sum(axis=(0, 1))) for gi, m in enumerate(miss_group)])
    for m, stage_totals in ((0, stage_totals_obs), (1, stage_totals_mis)):
        for gi in range(G):
            for si in range(3):
                cell = e[gi, :, :, si, m]  # (patterns, sources)
                order = rng.permutation(N_PATTERNS)
                pattern_totals = np.zeros(N_PATTERNS, dtype=np.int64)
                pattern_totals[order] = _split(int(stage_totals[gi, si]), cell.sum(axis=1)[order])
                probs = cell / np.maximum(cell.sum(axis=1, keepdims=True), 1e-300)
                out[gi, :, :, si, m] = _allocate_with_carry(pattern_totals, probs, order)
    return out.ravel()


def realise_counts(expected: pd.DataFrame, t: Targets, n_referrals: int, missing_share: float, mode: str,
                   rng: np.random.Generator) -> np.ndarray:
    """Integer referrals per cell: controlled rounding (``calibrated``) or a multinomial draw (``random``)."""
    if mode == "calibrated":
        return _calibrated(expected, t, n_referrals, missing_share, rng)
    if mode == "random":
        p = expected.expected.to_numpy()
        return rng.multinomial(n_referrals, p / p.sum())
    raise ValueError(f"outcome_mode {mode!r} is not valid: expected 'calibrated' or 'random'.")


def _draw_codes(rng: np.random.Generator, keys: np.ndarray, shares: dict[str, dict[str, float]]) -> np.ndarray:
    """For each row's key, draw a code from that key's shares (vectorised per key)."""
    out = np.empty(len(keys), dtype=object)
    for key, dist in shares.items():
        rows = np.flatnonzero(keys == key)
        if len(rows) == 0:
            continue
        labels = np.array(list(dist), dtype=object)
        probs = np.array(list(dist.values()), dtype=float)
        out[rows] = labels[rng.choice(len(labels), size=len(rows), p=probs / probs.sum())]
    return out


def _dates(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    starts = pd.to_datetime(pd.Series(years.astype(str)) + "-01-01").to_numpy()
    days_in_year = np.where(years % 4 == 0, 366, 365)  # 2016 is the study's leap year
    return starts + (rng.random(len(years)) * days_in_year).astype("int64").astype("timedelta64[D]")


def expand_rows(cells: pd.DataFrame, counts: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per referral, with the raw NHS fields and the truth kept apart."""
    idx = np.repeat(np.arange(len(cells)), counts)
    rows = cells.iloc[idx].reset_index(drop=True)
    n = len(rows)
    order = rng.permutation(n)  # random order before dates are drawn, so ties break at random
    rows = rows.iloc[order].reset_index(drop=True)

    band = rows.age_band.map({b: i for i, b in enumerate(study.AGE_BANDS)}).to_numpy()
    lower = np.array(study.AGE_BREAKS)[band]
    upper = np.array(study.AGE_BREAKS[1:] + [OLDEST_AGE + 1])[band]
    # within a band ages are uniform; in 65+ they thin out with age (assumed)
    u = rng.random(n)
    u = np.where(band == len(study.AGE_BANDS) - 1, u ** 2, u)
    age = lower + np.floor(u * (upper - lower)).astype(int)

    referral = _dates(rng, rows.year.to_numpy().astype(int))
    stage = rows.stage.to_numpy()
    assessed = stage != "not_assessed"
    treated = stage == "treated"
    assess_date = referral + (1 + rng.geometric(1 / MEAN_DAYS_TO_ASSESSMENT, n)).astype("timedelta64[D]")
    treat_date = assess_date + (1 + rng.geometric(1 / MEAN_DAYS_TO_TREATMENT, n)).astype("timedelta64[D]")

    true_code = _draw_codes(rng, rows.group.to_numpy(), code_shares_within_group())
    missing = rows.missing.to_numpy() == 1
    missing_code = _draw_codes(rng, np.where(missing, "m", "o"), {"m": MISSING_CODE_SHARES})
    recorded = np.where(missing, missing_code, true_code)
    source_code = _draw_codes(rng, rows.referral_source.to_numpy(), SOURCE_CODE_SHARES)

    def fmt(d: np.ndarray, keep: np.ndarray) -> np.ndarray:
        text = np.datetime_as_string(d, unit="D").astype(object)
        return np.where(keep, text, "")

    raw = pd.DataFrame({
        "ReferralRequestReceivedDate": fmt(referral, np.ones(n, bool)),
        "Age_ReferralRequest_ReceivedDate": age.astype(str),
        "Gender": rows.gender.map(GENDER_CODES).to_numpy(),
        "Validated_EthnicCategory": recorded,
        "SourceOfReferralIAPT": source_code,
        "Borough": rows.borough.to_numpy(),
        "Assessment_FirstDate": fmt(assess_date, assessed),
        "TherapySession_FirstDate": fmt(treat_date, treated),
    })
    truth = pd.DataFrame({"true_ethnic_group": rows.group.to_numpy(), "true_EthnicCategory": true_code,
                          "ethnicity_missing": missing.astype(int)})
    by_date = np.argsort(raw.ReferralRequestReceivedDate.to_numpy(), kind="stable")
    raw, truth = raw.iloc[by_date].reset_index(drop=True), truth.iloc[by_date].reset_index(drop=True)
    width = max(7, len(str(n)))
    ids = [f"P{i:0{width}d}" for i in range(1, n + 1)]
    raw.insert(0, "PathwayID", ids)
    truth.insert(0, "PathwayID", ids)
    return raw[RAW_COLUMNS], truth[TRUTH_COLUMNS]


def generate(n_referrals: int = params_mod.DEFAULTS["n_referrals"], seed: int = params_mod.DEFAULTS["seed"],
             missing_mechanism: str = params_mod.DEFAULTS["missing_mechanism"],
             missing_share: float = params_mod.DEFAULTS["missing_share"],
             outcome_mode: str = params_mod.DEFAULTS["outcome_mode"], targets_path: str | Path = "") -> Cohort:
    """Generate a cohort; every argument is validated by ``helpers.params`` first."""
    settings = params_mod.validate(n_referrals=n_referrals, seed=seed, missing_mechanism=missing_mechanism,
                                   missing_share=missing_share, outcome_mode=outcome_mode,
                                   targets_path=str(targets_path or ""))
    t = load_targets(params_mod.targets_file(settings))
    solved = load_solved(t)
    rng = np.random.default_rng(settings["seed"])
    cells = expected_counts(t, solved, settings["n_referrals"], settings["missing_share"],
                            settings["missing_mechanism"])
    counts = realise_counts(cells, t, settings["n_referrals"], settings["missing_share"],
                            settings["outcome_mode"], rng)
    raw, truth = expand_rows(cells, counts, rng)
    keep = {k: settings[k] for k in ("n_referrals", "seed", "missing_mechanism", "missing_share", "outcome_mode")}
    keep["targets_sha256"] = t.sha256
    return Cohort(raw=raw, truth=truth, counts=cells.assign(count=counts), settings=keep)


def from_params(p: dict[str, Any]) -> Cohort:
    """Generate the cohort a validated parameter dict describes."""
    return generate(p["n_referrals"], p["seed"], p["missing_mechanism"], p["missing_share"], p["outcome_mode"],
                    p["targets_path"])


def csv_text(frame: pd.DataFrame) -> str:
    """The one CSV format of the cohort files: fixed columns, '\\n' line ends, no index."""
    return frame.to_csv(index=False, lineterminator="\n")


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``csv_text(frame)`` as UTF-8 bytes (the same bytes ``csv_sha256`` hashes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(frame).encode("utf-8"))


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic IAPT cohort (raw NHS-coded rows).")
    parser.add_argument("--default", action="store_true", help="write the default cohort into data/synthetic/")
    parser.add_argument("--n", type=str, default=str(params_mod.DEFAULTS["n_referrals"]), help="referrals")
    parser.add_argument("--seed", type=str, default=str(params_mod.DEFAULTS["seed"]))
    parser.add_argument("--missing-mechanism", default=params_mod.DEFAULTS["missing_mechanism"])
    parser.add_argument("--missing-share", type=str, default=str(params_mod.DEFAULTS["missing_share"]))
    parser.add_argument("--outcome-mode", default=params_mod.DEFAULTS["outcome_mode"])
    parser.add_argument("--targets", default="")
    parser.add_argument("--out", help="CSV file for the raw extract")
    parser.add_argument("--truth-out", help="CSV file for the truth (default: beside --out, *_truth.csv)")
    args = parser.parse_args(argv)
    try:
        values = {
            "n_referrals": params_mod.parse_cli_value("n_referrals", args.n),
            "seed": params_mod.parse_cli_value("seed", args.seed),
            "missing_mechanism": args.missing_mechanism,
            "missing_share": params_mod.parse_cli_value("missing_share", args.missing_share),
            "outcome_mode": args.outcome_mode,
            "targets_path": args.targets,
        }
        params_mod.validate(values)
    except params_mod.ParameterError as err:
        parser.error(str(err))
    if args.default:
        out, truth_out = DEFAULT_COHORT, DEFAULT_TRUTH
    elif args.out:
        out = Path(args.out)
        truth_out = Path(args.truth_out) if args.truth_out else out.with_name(out.stem + "_truth.csv")
    else:
        parser.error("give --out FILE (or --default for data/synthetic/)")
    cohort = generate(**values)
    write_csv(cohort.raw, out)
    write_csv(cohort.truth, truth_out)
    print(f"{len(cohort.raw):,} referrals -> {out} (sha256 {sha256(out)[:16]})")
    print(f"truth -> {truth_out} (sha256 {sha256(truth_out)[:16]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def csv_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of the exact bytes ``write_csv`` would write for ``frame`` (no file needed)."""
    return hashlib.sha256(csv_text(frame).encode("utf-8")).hexdigest()


def expected_missing_share(by: str = "group", mechanisms: tuple[str, ...] = ("mcar", "mar", "mnar"),
                           missing_share: float = params_mod.DEFAULTS["missing_share"],
                           targets_path: str | Path = "") -> pd.DataFrame:
    """Expected share of referrals with ethnicity missing, by true ``group`` or pathway ``stage``, per mechanism.

    Computed from the expected cell counts (no rows drawn), so it shows what each mechanism *does*:
    MCAR gives every group and stage the same share; MAR varies it by stage and borough; MNAR also by the
    true ethnic group. The odds it uses are the *assumed* ``missing_log_odds`` rows of the targets file.
    """
    if by not in ("group", "stage"):
        raise ValueError(f"by must be 'group' or 'stage', not {by!r}")
    settings = params_mod.validate(missing_share=missing_share, targets_path=str(targets_path or ""))
    t = load_targets(params_mod.targets_file(settings))
    solved = load_solved(t)
    out = {}
    for mech in mechanisms:
        settings_m = params_mod.validate(missing_mechanism=mech)
        cells = expected_counts(t, solved, t.n_referrals, settings["missing_share"], settings_m["missing_mechanism"])
        total = cells.groupby(by, sort=False)["expected"].sum()
        missing = cells[cells.missing == 1].groupby(by, sort=False)["expected"].sum()
        out[mech] = missing / total
    levels = study.GROUPS if by == "group" else STAGE_LEVELS
    frame = pd.DataFrame(out).reindex(levels)
    frame.index.name = by
    frame.columns.name = "mechanism"
    return frame


def missing_share_table(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Realised share with ethnicity missing, by true group (rows) and pathway stage (columns), plus ``All``.

    ``frame``: the analysis frame; ``truth``: per row of ``frame`` (same order) ``referral_id`` and
    ``true_ethnic_group``, as ``pipeline.load_study_data`` returns it. Only a synthetic cohort has a truth.
    """
    if len(frame) != len(truth) or not (frame["referral_id"].to_numpy() == truth["referral_id"].to_numpy()).all():
        raise ValueError("truth must have one row per row of frame, in the same order (same referral_id)")
    stage = np.where(frame["assessed"].to_numpy() == 0, STAGE_LEVELS[0],
                     np.where(frame["treated"].to_numpy() == 1, STAGE_LEVELS[2], STAGE_LEVELS[1]))
    work = pd.DataFrame({
        "group": pd.Categorical(truth["true_ethnic_group"].to_numpy(), categories=study.GROUPS),
        "stage": pd.Categorical(stage, categories=STAGE_LEVELS),
        "missing": frame["ethnicity"].isna().to_numpy().astype(float),
    })
    table = work.pivot_table(index="group", columns="stage", values="missing", aggfunc="mean", observed=False)
    table["All"] = work.groupby("group", observed=False)["missing"].mean()
    table.columns = pd.Index([str(c) for c in table.columns], name="stage")
    return table
