"""The 2011 Census file (QS201EW, ``data/published/census2011_ethnicity_boroughs.csv``), read once.

One reader (:func:`read_census`) checks the file and its columns; two views serve the analyses:
:func:`census_population` (resident counts by study group and borough: the denominators of referral rates)
and :func:`margin_from_census` (the boroughs' ethnic mix as shares: the margin of weighted imputation).
Census categories are mapped to the paper's eight groups with ``helpers.codes.ETHNIC_CODE_TO_GROUP``.
No number is made up: what the file does not print is not used.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import study
from helpers.codes import ETHNIC_CODE_TO_GROUP

DEFAULT_CENSUS = study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv"
DEFAULT_BOROUGHS = ("Lambeth", "Southwark", "Lewisham", "Croydon")
CENSUS_NOTE = (
    "2011 Census QS201EW: all usual residents of every age (adults-only counts are not available in the "
    "project's files), census day 27 March 2011"
)


class CensusWarning(UserWarning):
    """How a census margin was built (percentages used, boroughs left out) when the file is incomplete."""


def read_census(path, needed: set[str], caller: str, stop: str = "") -> tuple[Path, pd.DataFrame]:
    """The census file as text columns, after checking it exists and has ``needed``; errors name ``caller``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{caller}: no such file {path}")
    raw = pd.read_csv(path, dtype={"nhs_code": str, "borough": str, "status": str})
    if not needed <= set(raw.columns):
        raise ValueError(f"{caller}: {path.name} lacks columns {sorted(needed - set(raw.columns))}{stop}")
    return path, raw


def census_population(path=DEFAULT_CENSUS, boroughs: Sequence[str] = DEFAULT_BOROUGHS) -> pd.DataFrame:
    """Resident counts by study ethnic group (rows, ``study.GROUPS`` order) and borough (columns).

    Census categories are mapped to the paper's eight groups with ``helpers.codes.ETHNIC_CODE_TO_GROUP``
    (the same mapping as referrals: Irish and Gypsy or Irish Traveller to White Other, Chinese to Other as
    *assumed* there). Counts are of all usual residents of every age in 2011 (see the module docstring).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a borough the file does not hold
    (listing those it does), a borough printed as percentages only (a rate needs counts), or a borough with
    categories not found.
    """
    path, raw = read_census(path, {"borough", "census_category", "nhs_code", "count", "status"},
                            "census_population")
    if isinstance(boroughs, str):
        boroughs = [boroughs]
    boroughs = list(boroughs)
    if not boroughs:
        raise ValueError("census_population: name at least one borough")
    available = list(dict.fromkeys(raw["borough"]))
    unknown = [b for b in boroughs if b not in available]
    if unknown:
        raise ValueError(
            f"census_population: borough(s) {unknown} not in {path.name}; available: {', '.join(available)} "
            f"(full counts only for those whose rows have status 'printed' with a count for every category)"
        )
    columns = {}
    for b in boroughs:
        rows = raw[(raw["borough"] == b) & raw["nhs_code"].isin([c for c, g in ETHNIC_CODE_TO_GROUP.items() if g])]
        if (rows["status"] == "printed_percent_only").any():
            raise ValueError(
                f"census_population: {b} is printed as percentages only in {path.name}; a referral rate needs "
                f"resident counts, and the file gives no population total to turn percentages into counts"
            )
        if (rows["status"] == "not_found").any() or rows["count"].isna().any():
            gaps = rows.loc[rows["count"].isna(), "census_category"].tolist()
            raise ValueError(
                f"census_population: {b} is incomplete in {path.name}: {len(gaps)} categories have no count "
                f"(e.g. {gaps[0]!r}); a rate needs a count for every category"
            )
        groups = rows["nhs_code"].map(ETHNIC_CODE_TO_GROUP)
        columns[b] = rows["count"].astype(float).groupby(groups.to_numpy()).sum()
    out = pd.DataFrame(columns).reindex(study.GROUPS).fillna(0).round().astype(np.int64)
    out.index.name = "ethnicity"
    out.columns.name = "borough"
    sources = raw.loc[raw["borough"].isin(boroughs), ["borough", "source"]].drop_duplicates()
    out.attrs["note"] = CENSUS_NOTE
    out.attrs["source"] = {r.borough: r.source for r in sources.itertuples()}
    return out


def margin_from_census(census_csv_path, boroughs: Sequence[str] | None = None,
                       populations: Mapping[str, float] | None = None) -> pd.Series:
    """Ethnic mix of the boroughs' usual residents from the 2011 Census file, mapped to the study groups.

    The file has one row per census category and borough with ``count``, ``percent`` and ``status``. The
    committed file (2011 Census QS201EW via Nomis) prints full counts for all four boroughs, Southwark,
    Lewisham, Lambeth and Croydon, so by default all four are used, each weighted by its residents. The
    function also reads files that are less complete:

    - ``printed`` with counts for every category: counts are used.
    - ``printed_percent_only``: the file prints no population, so the borough's counts are its
      percentages (renormalised to sum to 100) times a population you supply in ``populations``
      (for example the number of referrals from the borough, which makes the margin describe the referred
      mix). Without one the borough cannot be weighted against the others and is left out.
    - ``not_found`` rows: the borough's mix is incomplete, so it is left out.

    With ``populations`` given for a borough, every borough named there is weighted by it (its shares times
    that population), whether or not the file prints counts. ``boroughs=None``: every borough the file can
    serve, with a :class:`CensusWarning` listing those left out and why; naming a borough that cannot be
    served raises ValueError. The returned Series carries ``attrs['method']`` (one line per borough: what was
    used) and ``attrs['source']``. No number is made up: what the file does not print is not used.
    """
    path, raw = read_census(census_csv_path, {"borough", "census_category", "nhs_code", "count", "percent", "status"},
                            "margin_from_census", stop=".")
    populations = dict(populations or {})
    all_boroughs = list(dict.fromkeys(raw["borough"]))
    requested = list(all_boroughs if boroughs is None else boroughs)
    unknown = [b for b in requested if b not in all_boroughs]
    if unknown:
        raise ValueError(f"margin_from_census: boroughs {unknown} are not in {path.name} (it has {all_boroughs}).")
    unknown_pop = [b for b in populations if b not in requested]
    if unknown_pop:
        raise ValueError(f"margin_from_census: populations given for boroughs not used: {unknown_pop}.")

    counts_by_borough: dict[str, pd.Series] = {}
    method: list[str] = []
    left_out: list[str] = []
    for b in requested:
        rows = raw[raw["borough"] == b]
        single = rows[rows["nhs_code"].isin(ETHNIC_CODE_TO_GROUP)]
        problem = None
        if (single["status"] == "not_found").any():
            gaps = single.loc[single["status"] == "not_found", "census_category"].tolist()
            problem = f"{b}: incomplete in the census file ({len(gaps)} categories not found, e.g. {gaps[0]!r})"
        elif single["percent"].isna().any() and single["count"].isna().any():
            problem = f"{b}: some categories have neither count nor percent"
        if problem is None:
            groups = single["nhs_code"].map(ETHNIC_CODE_TO_GROUP)
            has_counts = single["count"].notna().all()
            if b in populations:
                pop = float(populations[b])
                if not pop > 0:
                    raise ValueError(f"margin_from_census: population for {b} must be positive, got {pop}.")
                if has_counts:
                    shares = single["count"].astype(float) / single["count"].sum()
                    basis = "printed counts as shares"
                else:
                    shares = single["percent"].astype(float) / single["percent"].sum()
                    basis = f"printed percentages (sum {single['percent'].sum():.1f}, renormalised)"
                counts_by_borough[b] = (shares * pop).groupby(groups.values).sum()
                method.append(f"{b}: {basis} x supplied population {pop:,.0f}")
            elif has_counts:
                counts_by_borough[b] = single["count"].astype(float).groupby(groups.values).sum()
                method.append(f"{b}: printed 2011 counts (total {single['count'].sum():,.0f})")
            else:
                problem = f"{b}: the file prints percentages only and no population was supplied (populations=...)"
        if problem is not None:
            if boroughs is not None:
                raise ValueError(f"margin_from_census: cannot use {problem}.")
            left_out.append(problem)
    if not counts_by_borough:
        raise ValueError(f"margin_from_census: no usable borough in {path.name}: {left_out}")
    if left_out:
        text = "margin_from_census left out " + "; ".join(left_out) + "."
        warnings.warn(text, CensusWarning, stacklevel=2)
        method.extend(f"left out: {p}" for p in left_out)
    total = pd.concat(counts_by_borough, axis=1).fillna(0.0).sum(axis=1)
    total = total.reindex(study.GROUPS, fill_value=0.0)
    margin = total / total.sum()
    margin.name = "margin"
    margin.attrs["method"] = method
    margin.attrs["boroughs"] = list(counts_by_borough)
    margin.attrs["source"] = f"2011 Census QS201EW via {path.name}: " + ", ".join(counts_by_borough)
    return margin
