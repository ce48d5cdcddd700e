"""The calibration targets: what the synthetic cohort must reproduce, each value with its source.

The file ``data/published/cohort_targets.csv`` holds every number the generator is built from, one per row,
with ``source`` = ``printed`` (copied from the paper, the row names the table) or ``assumed`` (the paper does
not report it). A lecturer who holds the paper's Tables 2-3 types them into a copy of this file and
regenerates the cohort; no code changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import study

REQUIRED_COLUMNS = ["quantity", "stage", "ethnicity", "level", "value", "source", "reference"]
VALID_SOURCES = ("printed", "assumed", "derived")
TREATMENT_MODELS = ["unadjusted", "adjusted_age_gender_year", "adjusted_full"]
NON_BASE_SOURCES = [s for s in study.SOURCES if s != study.SOURCE_BASE]
STAGE_LEVELS = ["not_assessed", "assessed_not_treated", "treated"]


class TargetsError(ValueError):
    """The targets file is incomplete or has an invalid value."""


@dataclass(frozen=True)
class Targets:
    """Targets parsed into arrays in the study's level orders (groups as in ``study.GROUPS``)."""

    table: pd.DataFrame
    sha256: str
    n_referrals: int
    missing_share: float
    treated_n: pd.Series  # by group
    treated_pct: pd.Series  # by group
    treatment_or: pd.DataFrame  # non-reference groups x TREATMENT_MODELS
    assessment_or: pd.Series  # non-reference groups, fully adjusted
    referral_rrr: pd.DataFrame  # non-reference groups x NON_BASE_SOURCES, fully adjusted
    reference_share: pd.Series  # White British share by source
    covariate_share: dict[str, pd.Series]
    effects: dict[str, dict[str, pd.Series]]  # stage key -> covariate -> log-OR by level (ref 0)
    missing_group: pd.Series
    missing_stage: pd.Series
    missing_borough: pd.Series


class _Rows:
    """The targets table's values by (quantity, stage, ethnicity, level), indexed once.

    Why: a targets file is read for every cohort drawn (a run draws dozens); filtering the whole table with four
    comparisons for each of its ~160 lookups took about a second per read, a dictionary takes milliseconds."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.values = table["value"].to_numpy()
        self.rows: dict[tuple[str, str, str, str], list[int]] = {}
        keys = zip(table["quantity"], table["stage"], table["ethnicity"], table["level"])
        for i, key in enumerate(keys):
            self.rows.setdefault(key, []).append(i)


def _lookup(t: _Rows, quantity: str, stage: str, ethnicity: str = "", level: str = "") -> float:
    hit = t.rows.get((quantity, stage, ethnicity, level), [])
    if len(hit) != 1:
        what = f"quantity={quantity!r}, stage={stage!r}, ethnicity={ethnicity!r}, level={level!r}"
        raise TargetsError(f"targets file needs exactly one row with {what}; found {len(hit)}.")
    return float(t.values[hit[0]])


def load_targets(path: str | Path) -> Targets:
    """Read and check a targets file; every problem names the row and what is expected."""
    path = Path(path)
    if not path.exists():
        raise TargetsError(f"targets file {str(path)!r} does not exist.")
    raw = path.read_bytes()
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise TargetsError(f"targets file {path.name} lacks columns {missing}; expected {REQUIRED_COLUMNS}.")
    bad_source = table[~table.source.isin(VALID_SOURCES)]
    if len(bad_source):
        line = int(bad_source.index[0]) + 2
        raise TargetsError(
            f"targets file {path.name}, line {line}: source {bad_source.source.iloc[0]!r} is not one of "
            f"{VALID_SOURCES} (every value must say whether it is printed in the paper or assumed)."
        )
    values = pd.to_numeric(table.value, errors="coerce")
    if values.isna().any():
        line = int(values[values.isna()].index[0]) + 2
        raise TargetsError(f"targets file {path.name}, line {line}: value {table.value[line - 2]!r} is not a number.")
    table = table.assign(value=values)

    groups, others = study.GROUPS, study.GROUPS[1:]
    t = _Rows(table)
    treated_n = pd.Series([_lookup(t, "treated_n", "treatment", g) for g in groups], index=groups)
    treated_pct = pd.Series([_lookup(t, "treated_pct", "treatment", g) for g in groups], index=groups)
    treatment_or = pd.DataFrame(
        {m: [_lookup(t, f"or_{m}", "treatment", g) for g in others] for m in TREATMENT_MODELS}, index=others
    )
    assessment_or = pd.Series([_lookup(t, "or_adjusted_full", "assessment", g) for g in others], index=others)
    referral_rrr = pd.DataFrame(
        {k: [_lookup(t, "rrr_adjusted_full", "referral_source", g, k) for g in others] for k in NON_BASE_SOURCES},
        index=others,
    )
    reference_share = pd.Series(
        [_lookup(t, "reference_share", "referral_source", study.REFERENCE_GROUP, k) for k in study.SOURCES],
        index=study.SOURCES,
    )
    covariate_share = {
        c: pd.Series([_lookup(t, "covariate_share", "cohort", "", f"{c}={lv}") for lv in levels], index=levels)
        for c, levels in study.COVARIATE_LEVELS.items()
    }
    stage_keys = ["treatment", "assessment"] + [f"referral_source:{k}" for k in NON_BASE_SOURCES]
    effects: dict[str, dict[str, pd.Series]] = {}
    for key in stage_keys:
        stage, _, level = key.partition(":")
        prefix = f"{level}:" if level else ""
        effects[key] = {
            c: pd.Series(
                [0.0] + [_lookup(t, "log_or_covariate", stage, "", f"{prefix}{c}={lv}") for lv in levels[1:]],
                index=levels,
            )
            for c, levels in study.COVARIATE_LEVELS.items()
        }
    missing_group = pd.Series([_lookup(t, "missing_log_odds", "missingness", g, "group") for g in groups], index=groups)
    missing_stage = pd.Series(
        [_lookup(t, "missing_log_odds", "missingness", "", f"stage={s}") for s in STAGE_LEVELS], index=STAGE_LEVELS
    )
    missing_borough = pd.Series(
        [_lookup(t, "missing_log_odds", "missingness", "", f"borough={b}") for b in study.BOROUGHS],
        index=study.BOROUGHS,
    )
    out = Targets(
        table=table, sha256=hashlib.sha256(raw).hexdigest(),
        n_referrals=int(_lookup(t, "n_referrals", "cohort")), missing_share=_lookup(t, "missing_share", "cohort"),
        treated_n=treated_n, treated_pct=treated_pct, treatment_or=treatment_or, assessment_or=assessment_or,
        referral_rrr=referral_rrr, reference_share=reference_share, covariate_share=covariate_share,
        effects=effects, missing_group=missing_group, missing_stage=missing_stage, missing_borough=missing_borough,
    )
    _check_ranges(out, path.name)
    return out


def _check_ranges(t: Targets, name: str) -> None:
    def bad(what: str, valid: str) -> TargetsError:
        return TargetsError(f"targets file {name}: {what} is not valid; expected {valid}.")

    if (t.treated_n <= 0).any():
        raise bad(f"treated_n {t.treated_n[t.treated_n <= 0].to_dict()}", "positive counts")
    if ((t.treated_pct <= 0) | (t.treated_pct >= 100)).any():
        raise bad("treated_pct", "percentages strictly between 0 and 100")
    for name_, frame in [("treatment OR", t.treatment_or), ("assessment OR", t.assessment_or),
                         ("referral RRR", t.referral_rrr)]:
        if (np.asarray(frame) <= 0).any():
            raise bad(name_, "ratios greater than 0")
    for c, s in {"reference_share": t.reference_share, **t.covariate_share}.items():
        if (s < 0).any() or abs(s.sum() - 1) > 1e-6:
            raise bad(f"shares for {c} (sum {s.sum():.6f})", "non-negative shares summing to 1")
    if not 0 <= t.missing_share < 1:
        raise bad("missing_share", "a share in [0, 1)")


def assessed_counts(t: Targets) -> pd.Series:
    """Number assessed per group implied by the printed n treated and % treated (derived, not printed).

    Under the reading that Table 4's n is the number treated and % the percentage of the assessed who were
    treated, n_assessed = n / %. Among the integers consistent with the printed % (to its one decimal), take
    the one whose unadjusted OR against White British is closest to the printed unadjusted OR.
    """
    ref = study.REFERENCE_GROUP
    n_ref = t.treated_n[ref]
    a_ref = int(round(n_ref / (t.treated_pct[ref] / 100)))
    odds_ref = n_ref / (a_ref - n_ref)
    out = {ref: a_ref}
    for g in study.GROUPS[1:]:
        n = t.treated_n[g]
        lo = int(np.ceil(n / ((t.treated_pct[g] + 0.05) / 100)))
        hi = int(np.floor(n / ((t.treated_pct[g] - 0.05) / 100)))
        candidates = range(lo, hi + 1) if hi >= lo else [int(round(n / (t.treated_pct[g] / 100)))]
        target = t.treatment_or.loc[g, "unadjusted"]
        out[g] = min(candidates, key=lambda a: (abs((n / (a - n)) / odds_ref - target), abs(a - n / t.treated_pct[g] * 100)))
    return pd.Series(out)[study.GROUPS].astype(int)


def equal_access(table: pd.DataFrame, pct_treated: float | None = None) -> pd.DataFrame:
    """A counterfactual targets table: every ethnic effect 1 and the same % treated in every group.

    Everything else (cohort size, covariate mixes and effects, numbers treated) stays as in ``table``, so the
    only thing that changes is the inequality itself. Group-specific missingness is removed too: recording
    is equal as well. The % treated defaults to the reference group's.
    """
    out = table.copy()
    out["value"] = out["value"].astype(str)
    ratio = out.quantity.str.startswith(("or_", "rrr_"))
    out.loc[ratio, "value"] = "1.0"
    pct = out.quantity == "treated_pct"
    if pct_treated is None:
        ref = out[pct & (out.ethnicity == study.REFERENCE_GROUP)].value.iloc[0]
        pct_treated = float(ref)
    out.loc[pct, "value"] = repr(float(pct_treated))
    group_missing = (out.quantity == "missing_log_odds") & (out.level == "group")
    out.loc[group_missing, "value"] = "0.0"
    changed = ratio | pct | group_missing
    out.loc[changed, "source"] = "assumed"
    out.loc[changed, "reference"] = "counterfactual: equal access (helpers.targets.equal_access)"
    return out
