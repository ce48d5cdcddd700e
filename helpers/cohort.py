"""The synthetic IAPT cohort: one row per referral, in the raw NHS-coded form a real extract has.

How it is built (``02_synthetic_cohort`` tells the story):
1. ``expected_counts``: expected numbers of referrals in every cell of
   ethnic group x age band x gender x year x borough x referral source x pathway stage x ethnicity missing,
   from the calibration targets and the solved parameters (``helpers.calibrate``). The cells with recorded
   ethnicity reproduce the paper's Table 4; the cells with missing ethnicity are added on top, with odds of
   being missing that follow the chosen mechanism (MCAR / MAR / MNAR), or (``mnar_wmi``) the solved missing
   part of ``helpers.mnar_wmi``, under which weighted MI reproduces the printed weighted-MI column.
2. ``realise_counts``: integers per cell. ``calibrated`` mode rounds the expected counts under control so that
   every group's totals equal the printed ones (constructed to match, not sampled); ``random`` mode draws the
   whole cohort from the same probabilities (for simulation studies).
3. ``draw_rows``: one row per referral with ages, dates and NHS codes drawn within each cell, kept as small
   integers and categoricals (10 million rows in under 2 GB); ``expand_rows`` / ``as_strings`` give the string
   frames the other modules read, ``write_cohort`` writes CSV or Parquet straight from the compact rows.

One ``numpy.random.Generator`` seeded once drives every draw; same arguments, same bytes.
CLI: ``python -m helpers.cohort --n N --seed S --out FILE.csv [--out FILE.parquet] [--truth-out FILE]`` or
``--default``.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import optimize

from helpers import codes, mnar_wmi, study
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
from helpers.targets import STAGE_LEVELS, Targets, assessed_counts, load_targets

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

    Source: 2011 Census KS201EW counts for Southwark and Lewisham (data/published/census2011_ethnicity_boroughs.csv,
    rows with printed counts), mapped to NHS codes by that file and to groups by ``helpers.codes``.
    """
    census = pd.read_csv(CENSUS_FILE, dtype={"nhs_code": str})
    census = census[census.borough.isin(["Southwark", "Lewisham"]) & census["count"].notna()]
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
    if mechanism == "mnar_wmi":  # the solved missing part (helpers.mnar_wmi), on the same recorded part
        recorded = observed[:, :, None, :] * p_src[:, :, :, None]  # (G, P, 4, 3)
        full = np.stack([recorded, mnar_wmi.missing_part(recorded, n_missing)], axis=-1)
    else:
        odds = np.exp(_missing_odds(t, mechanism))
        if n_missing > 0:
            mu = optimize.brentq(lambda m: np.exp(m) * (observed * odds).sum() - n_missing, -50, 50, xtol=1e-14)
            missing = observed * odds * np.exp(mu)
            missing *= n_missing / missing.sum()
        else:
            missing = np.zeros_like(observed)
        cells = np.stack([observed, missing], axis=-1)  # (G, P, 3 stage, 2 missing)
        full = cells[:, :, None, :, :] * p_src[:, :, :, None, None]  # (G, P, 4, 3, 2)
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


def _draw_code_index(rng: np.random.Generator, keys: np.ndarray, shares: dict[int, dict[str, float]],
                     labels: list[str]) -> np.ndarray:
    """For each row's key, draw a code from that key's shares; positions in ``labels`` (-1 where no key matched).

    The same draws in the same order as the string rows of the generator before (one ``rng.choice`` per key,
    keys in dict order; ``_draw_codes`` in helpers/cohort.py before commit 6384979, which `make bench` runs
    from history), so the cohort's bytes did not change when it went to integers; integers keep 10 million
    rows small.
    """
    out = np.full(len(keys), -1, dtype=np.int16)
    for key, dist in shares.items():
        rows = np.flatnonzero(keys == key)
        if len(rows) == 0:
            continue
        where = np.array([labels.index(c) for c in dist], dtype=np.int16)
        probs = np.array(list(dist.values()), dtype=float)
        out[rows] = where[rng.choice(len(where), size=len(rows), p=probs / probs.sum())]
    return out


def _dates(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """Uniform days within each referral's year (one ``rng.random`` per row)."""
    starts = (np.asarray(years, dtype=np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    days_in_year = np.where(years % 4 == 0, 366, 365)  # 2016 is the study's leap year
    return starts + (rng.random(len(years)) * days_in_year).astype("int64").astype("timedelta64[D]")


def _codes_of(values: pd.Series, levels: list) -> np.ndarray:
    """Positions of ``values`` in ``levels`` as small integers (every value must be a level)."""
    out = pd.Categorical(values, categories=levels).codes
    if (out < 0).any():
        raise ValueError(f"values {sorted(set(values) - set(levels))} are not among {levels}")
    return out


def _date_column(days: np.ndarray, keep: np.ndarray) -> pd.Categorical:
    """Dates (days since 1970) as a categorical of ISO strings, blank where not ``keep``.

    The categories are every day from the first to the last, each formatted once, so no sort of 10 million
    dates is needed; the codes are the day offsets.
    """
    first = int(days.min()) if len(days) else 0
    last = int(days.max()) if len(days) else 0
    labels = np.datetime_as_string(np.arange(first, last + 1).astype("datetime64[D]"), unit="D")
    offset = (days - first).astype(np.int32)
    return pd.Categorical.from_codes(np.where(keep, offset, -1), categories=labels)


def _codes_as(positions: np.ndarray, labels: list[str]) -> pd.Categorical:
    """Positions in ``labels`` as a categorical; the label '' (and -1) become a blank (missing) field."""
    kept = [x for x in labels if x != ""]
    remap = np.array([kept.index(x) if x != "" else -1 for x in labels] + [-1], dtype=np.int16)
    return pd.Categorical.from_codes(remap[np.where(positions < 0, len(labels), positions)], categories=kept)


def draw_rows(cells: pd.DataFrame, counts: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per referral in compact form: the raw NHS fields and the truth, without ``PathwayID``.

    Codes and dates are categoricals (missing = blank field), ages integers, in the final order (by referral
    date). At 10 million referrals this is a few hundred MB, where strings as Python objects would be many GB.
    ``expand_rows`` turns it into strings; ``write_cohort`` writes it straight to CSV or Parquet. The draws and
    their order are those of the row-by-row version this replaced, so the bytes are the same.
    """
    counts = np.asarray(counts, dtype=np.int64)
    cell = np.repeat(np.arange(len(cells), dtype=np.int32), counts)
    n = len(cell)
    cell = cell[rng.permutation(n)]  # random order before dates are drawn, so ties break at random

    band = _codes_of(cells.age_band, study.AGE_BANDS)[cell]
    lower = np.array(study.AGE_BREAKS)[band]
    upper = np.array(study.AGE_BREAKS[1:] + [OLDEST_AGE + 1])[band]
    # within a band ages are uniform; in 65+ they thin out with age (assumed)
    u = rng.random(n)
    u = np.where(band == len(study.AGE_BANDS) - 1, u ** 2, u)
    age = (lower + np.floor(u * (upper - lower))).astype(np.int16)
    del u, lower, upper, band

    referral = _dates(rng, cells.year.to_numpy().astype(int)[cell]).view(np.int64).astype(np.int32)
    assess_date = referral + (1 + rng.geometric(1 / MEAN_DAYS_TO_ASSESSMENT, n)).astype(np.int32)
    treat_date = assess_date + (1 + rng.geometric(1 / MEAN_DAYS_TO_TREATMENT, n)).astype(np.int32)

    shares = code_shares_within_group()
    ethnic_labels = list(dict.fromkeys([c for d in shares.values() for c in d] + list(MISSING_CODE_SHARES)))
    group_of_cell = _codes_of(cells.group, study.GROUPS)
    true_code = _draw_code_index(rng, group_of_cell[cell],
                                 {gi: shares[g] for gi, g in enumerate(study.GROUPS) if g in shares}, ethnic_labels)
    missing_of_cell = cells.missing.to_numpy() == 1
    missing_code = _draw_code_index(rng, missing_of_cell[cell].astype(np.int8), {1: MISSING_CODE_SHARES},
                                    ethnic_labels)
    recorded = np.where(missing_code >= 0, missing_code, true_code)
    del missing_code
    source_labels = list(dict.fromkeys(c for d in SOURCE_CODE_SHARES.values() for c in d))
    source_code = _draw_code_index(rng, _codes_of(cells.referral_source, study.SOURCES)[cell],
                                   {study.SOURCES.index(s): d for s, d in SOURCE_CODE_SHARES.items()}, source_labels)

    # The final order: by referral date, ties in the random order above. A stable sort of the day offsets (small
    # integers, so numpy sorts them in linear time) gives the order a stable sort of the printed ISO dates gives.
    by_date = np.argsort((referral - referral.min()).astype(np.int16) if n else referral, kind="stable")
    cell, age, referral, assess_date, treat_date, true_code, recorded, source_code = (
        a[by_date] for a in (cell, age, referral, assess_date, treat_date, true_code, recorded, source_code))
    del by_date
    stage = _codes_of(cells.stage, STAGE_LEVELS)[cell]

    gender_labels = [GENDER_CODES[g] for g in study.GENDERS]
    raw = pd.DataFrame({
        "ReferralRequestReceivedDate": _date_column(referral, np.ones(n, bool)),
        "Age_ReferralRequest_ReceivedDate": age,
        "Gender": pd.Categorical.from_codes(_codes_of(cells.gender, study.GENDERS)[cell], categories=gender_labels),
        "Validated_EthnicCategory": _codes_as(recorded, ethnic_labels),
        "SourceOfReferralIAPT": _codes_as(source_code, source_labels),
        "Borough": pd.Categorical.from_codes(_codes_of(cells.borough, study.BOROUGHS)[cell], categories=study.BOROUGHS),
        "Assessment_FirstDate": _date_column(assess_date, stage != STAGE_LEVELS.index("not_assessed")),
        "TherapySession_FirstDate": _date_column(treat_date, stage == STAGE_LEVELS.index("treated")),
    })
    truth = pd.DataFrame({"true_ethnic_group": pd.Categorical.from_codes(group_of_cell[cell], categories=study.GROUPS),
                          "true_EthnicCategory": _codes_as(true_code, ethnic_labels),
                          "ethnicity_missing": missing_of_cell[cell].astype(int)})
    return raw, truth


def pathway_ids(n: int) -> list[str]:
    """``P0000001`` ... : zero-padded to at least 7 digits (8 from 10 million referrals)."""
    width = max(7, len(str(n)))
    return [f"P{i:0{width}d}" for i in range(1, n + 1)]


def as_strings(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A compact frame (``draw_rows``) as the string frame every other module reads: blanks as '', ages as text,
    ``PathwayID`` first."""
    out = {"PathwayID": pathway_ids(len(frame))}
    for c in columns[1:]:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[c] = np.asarray(col.cat.categories.astype(object).tolist() + [""], dtype=object)[col.cat.codes]
        elif c == "ethnicity_missing":
            out[c] = col.to_numpy()
        else:  # ages: as ``str(int)`` writes them
            out[c] = col.to_numpy().astype(np.int64).astype(str).astype(object)
    return pd.DataFrame(out)[columns]


def expand_rows(cells: pd.DataFrame, counts: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per referral, with the raw NHS fields and the truth kept apart (strings, as the CSV holds them)."""
    raw, truth = draw_rows(cells, counts, rng)
    return as_strings(raw, RAW_COLUMNS), as_strings(truth, TRUTH_COLUMNS)


def generate(n_referrals: int = params_mod.DEFAULTS["n_referrals"], seed: int = params_mod.DEFAULTS["seed"],
             missing_mechanism: str = params_mod.DEFAULTS["missing_mechanism"],
             missing_share: float = params_mod.DEFAULTS["missing_share"],
             outcome_mode: str = params_mod.DEFAULTS["outcome_mode"], targets_path: str | Path = "",
             compact: bool = False) -> Cohort:
    """Generate a cohort; every argument is validated by ``helpers.params`` first.

    ``compact=True`` keeps the rows as ``draw_rows`` gives them (categoricals, no ``PathwayID``) for
    ``write_cohort``: the way to national sizes. The default gives the string frames the other modules read.
    """
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
    raw, truth = draw_rows(cells, counts, rng)
    if not compact:
        raw, truth = as_strings(raw, RAW_COLUMNS), as_strings(truth, TRUTH_COLUMNS)
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
    """SHA-256 of a file, read in blocks (a 10-million-row cohort need not fit in memory twice)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def _file_format(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "parquet" if suffix in (".parquet", ".pq") else "csv" if suffix == ".csv" else None


def write_cohort(frame: pd.DataFrame, columns: list[str], path: str | Path) -> None:
    """Write a compact frame (``draw_rows``, ``generate(compact=True)``) as CSV or Parquet, by the file's suffix.

    DuckDB writes it without ever holding the rows as Python strings. The CSV has the exact bytes ``write_csv``
    writes for the string frame (blank fields empty, ``\\n`` line ends, quotes never needed); the Parquet file
    holds the same text columns, a blank field as null, and ``ethnicity_missing`` as an integer.
    """
    path = Path(path)
    fmt = _file_format(path)
    if fmt is None:
        raise ValueError(f"{path}: the file name must end in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Integers go in; DuckDB turns them into text: a code indexes a list literal of its labels (1-based; 0, a
    # blank, gives NULL, an empty field), and PathwayID is the digits of 10^width + row without the leading 1.
    width = max(7, len(str(len(frame))))
    work = {"_row": np.arange(10**width + 1, 10**width + len(frame) + 1, dtype=np.int64)}
    select = ["'P' || substr(CAST(_row AS VARCHAR), 2) AS PathwayID"]
    for c in columns[1:]:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            work[c] = col.cat.codes.to_numpy().astype(np.int32) + 1
            labels = ", ".join("'" + str(x).replace("'", "''") + "'" for x in col.cat.categories)
            select.append(f'[{labels}]["{c}"] AS "{c}"')
        else:
            work[c] = col.to_numpy()
            select.append(f'"{c}"' if c == "ethnicity_missing" else f'CAST("{c}" AS VARCHAR) AS "{c}"')
    work = pd.DataFrame(work)
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true, DELIMITER ','"
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")  # rows leave in the order given (the default, made explicit)
        con.register("rows_in", work)
        target = str(path).replace("'", "''")
        con.execute(f"COPY (SELECT {', '.join(select)} FROM rows_in) TO '{target}' ({options})")
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic IAPT cohort (raw NHS-coded rows).")
    parser.add_argument("--default", action="store_true", help="write the default cohort into data/synthetic/")
    parser.add_argument("--n", type=str, default=str(params_mod.DEFAULTS["n_referrals"]), help="referrals")
    parser.add_argument("--seed", type=str, default=str(params_mod.DEFAULTS["seed"]))
    parser.add_argument("--missing-mechanism", default=params_mod.DEFAULTS["missing_mechanism"])
    parser.add_argument("--missing-share", type=str, default=str(params_mod.DEFAULTS["missing_share"]))
    parser.add_argument("--outcome-mode", default=params_mod.DEFAULTS["outcome_mode"])
    parser.add_argument("--targets", default="")
    parser.add_argument("--out", action="append", default=[],
                        help="file for the raw extract: .csv, or .parquet for Parquet; give it twice for both")
    parser.add_argument("--truth-out", help="file for the truth (default: beside the first --out, *_truth.*)")
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
        outs, truth_out = [DEFAULT_COHORT], DEFAULT_TRUTH
    elif args.out:
        outs = [Path(o) for o in args.out]
        for o in outs:
            if _file_format(o) is None:
                parser.error(f"--out {o}: the file name must end in .csv or .parquet")
        first = outs[0]
        truth_out = Path(args.truth_out) if args.truth_out else first.with_name(first.stem + "_truth" + first.suffix)
        if _file_format(truth_out) is None:
            parser.error(f"--truth-out {truth_out}: the file name must end in .csv or .parquet")
    else:
        parser.error("give --out FILE (or --default for data/synthetic/)")
    cohort = generate(**values, compact=True)
    for out in outs:
        write_cohort(cohort.raw, RAW_COLUMNS, out)
        print(f"{len(cohort.raw):,} referrals -> {out} (sha256 {sha256(out)[:16]})")
    write_cohort(cohort.truth, TRUTH_COLUMNS, truth_out)
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
    true ethnic group. The odds it uses are the *assumed* ``missing_log_odds`` rows of the targets file;
    ``mnar_wmi`` (ask for it in ``mechanisms``) uses the solved files of ``helpers.mnar_wmi`` instead.
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
