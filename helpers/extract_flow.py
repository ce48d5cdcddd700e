"""What the engine's one aggregate becomes: the pattern counts, the flow table (every input row counted) and
the validation report (each check with its count and first example lines).

Why a module of its own: these are the engine's results, shared by every route (DuckDB, Spark, the rows of
:mod:`helpers.prepare`), and the flow's accounting is checked here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from helpers import study
from helpers.extract_checks import (
    CHECK_BY_CODE,
    EXCLUSION_CHECKS,
    FIRST_DATA_LINE,
    FLOW_COLUMNS,
    NORMALISATIONS,
    PATTERN_COLUMNS,
    Check,
)


@dataclass
class ValidationReport:
    """One row per check in ``table`` (all checks, also those with no failing rows), ``n_input`` rows checked,
    ``excluded`` rows per first exclusion reason and, for small data, ``row_reason``: per input row (by
    position) the first exclusion reason, NaN for rows kept."""

    table: pd.DataFrame
    n_input: int
    row_reason: pd.Series | None = None
    source: str | None = None
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> pd.DataFrame:
        """Checks with severity 'invalid' that some rows fail (data errors; strict mode raises on these)."""
        t = self.table
        return t[(t["severity"] == "invalid") & (t["n_rows"] > 0)]

    @property
    def ok(self) -> bool:
        """True when no row has a data error (out-of-scope rows and missing ethnicity are not errors)."""
        return self.errors.empty

    @property
    def n_excluded(self) -> int:
        return int(sum(self.excluded.values()))

    @property
    def n_invalid(self) -> int:
        """Rows excluded for a data error (first reason of severity 'invalid')."""
        return int(sum(k for c, k in self.excluded.items() if CHECK_BY_CODE[c].severity == "invalid"))

    def __getitem__(self, code: str) -> pd.Series:
        """The report row of one check, by code (e.g. ``report["ethnic_unknown_code"]``)."""
        return self.table.set_index("check").loc[code]

    def __str__(self) -> str:
        src = f" from {self.source}" if self.source else ""
        last = self.n_input + FIRST_DATA_LINE - 1
        lines = [f"Extract validation: {self.n_input:,} rows{src} "
                 f"(CSV lines {FIRST_DATA_LINE}-{last:,}; line 1 is the header)."]
        hits = self.table[self.table["n_rows"] > 0]
        if hits.empty:
            lines.append(f"All {len(self.table)} checks passed: no row excluded, no missing ethnicity.")
        else:
            lines.append("Rows failing each check (a row can fail several):")
            w = max(len(r) for r in hits["reason"])
            for _, r in hits.iterrows():
                ex_lines = ", ".join(map(str, r["example_lines"]))
                more = ", ..." if r["n_rows"] > len(r["example_lines"]) else ""
                vals = ", ".join(repr(v) for v in r["example_values"])
                lines.append(f"  {r['reason']:<{w}}  {r['n_rows']:>10,}  {r['action']:<15}  "
                             f"lines {ex_lines}{more}  values {vals}")
        lines.append(f"{self.n_excluded:,} row(s) excluded (each counted once, under its first reason; "
                     f"{self.n_invalid:,} for data errors), {self.n_input - self.n_excluded:,} kept.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


@dataclass
class ExtractResult:
    """What the engine returns: counts that may leave a secure environment, and the audit that must not."""

    pattern_counts: pd.DataFrame  # PATTERN_COLUMNS + n (kept rows only)
    flow: pd.DataFrame  # FLOW_COLUMNS
    report: ValidationReport
    normalisations: pd.DataFrame  # code, field, reason, maps_to, n_rows
    renames: list[str]
    engine: str
    rows: pd.DataFrame | None = None  # coded analysis rows (rows=True only)


def decode_patterns(summary: pd.DataFrame) -> pd.DataFrame:
    kept = summary[summary["first_reason"] == 0]
    cols = [f"c_{c}" for c in PATTERN_COLUMNS]
    g = kept.groupby(cols, sort=True, dropna=False)["n"].sum().reset_index()
    levels = {"ethnicity": study.GROUPS, "age_band": study.AGE_BANDS, "gender": study.GENDERS,
              "year": study.YEARS, "borough": study.BOROUGHS, "referral_source": study.SOURCES}
    out = pd.DataFrame()
    for c in PATTERN_COLUMNS:
        v = g[f"c_{c}"].to_numpy(dtype=np.int64)
        if c == "year":  # kept rows always have a year in the study period
            out[c] = v + min(study.YEARS)
        elif c in levels:
            lv = np.asarray(levels[c], dtype=object)
            out[c] = np.where(v >= 0, lv[np.clip(v, 0, None)], "")
        else:
            out[c] = v
    out["treated"] = np.where(out["assessed"] == 1, out["treated"].astype(str), "")
    out["n"] = g["n"].to_numpy(dtype=np.int64)
    return out


def flow_table(n_input: int, excluded: Mapping[str, int], normalised: Mapping[str, int], renames: list[str],
               patterns: pd.DataFrame) -> pd.DataFrame:
    """The flow: rows in, each normalisation (and field rename) counted, each exclusion by first reason, rows
    analysed, and within them ethnicity recorded/missing, assessed and treated."""
    rows = [("extract", "", "referrals in extract", n_input, n_input)]
    for r in renames:
        rows.append(("normalised", "column_renamed", f"column {r}", n_input, pd.NA))
    for nz in NORMALISATIONS:
        rows.append(("normalised", nz.code, nz.reason, int(normalised.get(nz.code, 0)), pd.NA))
    remaining = n_input
    for c in EXCLUSION_CHECKS:
        k = int(excluded.get(c.code, 0))
        remaining -= k
        rows.append(("excluded", c.code, c.reason, k, remaining))
    n = patterns["n"].to_numpy(dtype=np.int64)
    n_an = int(n.sum())
    if remaining != n_an:  # cannot happen; guards the accounting
        raise AssertionError(f"flow does not add up: {remaining} remaining vs {n_an} analysed")
    n_missing = int(n[(patterns["ethnicity"] == "").to_numpy()].sum())
    n_assessed = int(n[(patterns["assessed"] == 1).to_numpy()].sum())
    n_treated = int(n[(patterns["treated"] == "1").to_numpy()].sum())
    rows += [
        ("analysed", "", "referrals analysed", n_an, n_an),
        ("within analysed", "ethnicity_recorded", "ethnicity recorded", n_an - n_missing, pd.NA),
        ("within analysed", "ethnicity_missing", CHECK_BY_CODE["ethnicity_missing"].reason, n_missing, pd.NA),
        ("within analysed", "assessed", "assessed", n_assessed, pd.NA),
        ("within analysed", "treated", "treated (among assessed)", n_treated, pd.NA),
    ]
    flow = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    flow["n_rows"] = flow["n_rows"].astype(np.int64)
    flow["n_remaining"] = flow["n_remaining"].astype("Int64")
    return flow


def example_value(check: Check, v1: str, v2: str, first_line: int) -> str:
    if check.code == "pathway_id_duplicate":
        return f"{v1.strip()} (first on line {int(first_line)})"
    if len(check.fields) == 1:
        return v1
    return f"{check.fields[0]}={v1!r}; {check.fields[1]}={v2!r}"
