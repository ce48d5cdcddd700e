"""Descriptive tables for the report: Table 1 (the cohort by ethnicity) and the counts along the pathway.

Counts a reader sees go through ``helpers.disclosure`` (suppressed 1-7, rounded to 5) wherever the data are
real. ``tableone``'s Table 1 (``table1_tableone``) is for exploring in a notebook only: its counts are raw.
The publishable Table 1 is ``table1``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from tableone import TableOne

from helpers import disclosure, imputation, study
from helpers.disclosure import SUPPRESSED_SYMBOL, disclosed_percent, is_small

TOTAL_LABEL = "Total"

# --------------------------------------------------------------------------------------------------
# Table 1 and pathway counts
# --------------------------------------------------------------------------------------------------

TABLE1_VARIABLES: dict[str, str] = {
    "age_band": "Age band",
    "gender": "Gender",
    "year": "Year of referral",
    "borough": "Borough",
    "referral_source": "Source of referral",
}
NOT_KNOWN = "Not known"


def group_labels() -> list[str]:
    """Column order for tables by ethnic group: the paper's groups, then Missing."""
    return [*study.GROUPS, study.MISSING_LABEL]


def ethnicity_with_missing(frame: pd.DataFrame) -> pd.Series:
    """The ethnicity column as a categorical over GROUPS + "Missing" (NaN becomes "Missing")."""
    eth = frame["ethnicity"].astype(object)
    unknown = set(eth.dropna().unique()) - set(study.GROUPS)
    if unknown:
        raise ValueError(f"ethnicity has values outside study.GROUPS: {sorted(map(str, unknown))}")
    eth = eth.where(eth.notna(), study.MISSING_LABEL)
    return pd.Categorical(eth, categories=group_labels())


def _levels(frame: pd.DataFrame, column: str) -> list:
    series = frame[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        levels = list(series.cat.categories)
    else:
        levels = list(study.COVARIATE_LEVELS.get(column, [])) or (
            study.SOURCES if column == "referral_source" else sorted(series.dropna().unique())
        )
    if series.isna().any():
        levels.append(NOT_KNOWN)
    return levels


def _crosstab(frame: pd.DataFrame, column: str, eth: pd.Categorical) -> pd.DataFrame:
    """Counts: levels of ``column`` x ethnic group (+ Missing), zero-filled."""
    levels = _levels(frame, column)
    values = frame[column].astype(object)
    values = values.where(values.notna(), NOT_KNOWN)
    tab = pd.crosstab(pd.Categorical(values, categories=levels), eth, dropna=False)
    tab = tab.reindex(index=levels, columns=group_labels(), fill_value=0)
    tab.index = pd.Index(levels, name="level")
    tab.columns = pd.Index(group_labels(), name="ethnicity")
    return tab.astype(np.int64)


def check_frame(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"analysis frame lacks columns: {missing}")


def table1(
    frame: pd.DataFrame,
    disclose: bool = True,
    threshold: int = 7,
    base: int = 5,
) -> pd.DataFrame:
    """Table 1: the cohort by ethnic group (columns: each group, Missing, Total).

    Rows are a MultiIndex (variable, level): n referred; each level of age band, gender, year, borough and
    referral source (column % of the group's referred); assessed (% of referred); treated (% of assessed).
    Columns are a MultiIndex (group, "n" | "%"). With ``disclose=True`` (the publishable version) counts are
    disclosure controlled block by block (each variable's levels x groups, with the Total column and the
    group's total as lines for secondary suppression) and every % is recomputed from disclosed counts.
    """
    check_frame(frame, ["ethnicity", "assessed", "treated", *TABLE1_VARIABLES])
    eth = ethnicity_with_missing(frame)
    groups = group_labels()
    referred = pd.Series(eth).value_counts().reindex(groups, fill_value=0).astype(np.int64)
    assessed_mask = frame["assessed"].to_numpy() == 1
    assessed = pd.Series(eth[assessed_mask]).value_counts().reindex(groups, fill_value=0).astype(np.int64)
    treated_mask = assessed_mask & (frame["treated"].to_numpy() == 1)
    treated = pd.Series(eth[treated_mask]).value_counts().reindex(groups, fill_value=0).astype(np.int64)

    def one_row(series: pd.Series, label) -> pd.DataFrame:
        df = pd.DataFrame([series.to_numpy()], columns=groups, index=[label])
        if disclose:
            return disclosure.disclose(df, count_columns=groups, threshold=threshold, base=base, total_col=TOTAL_LABEL)
        df[TOTAL_LABEL] = df[groups].sum(axis=1)
        return df

    n_ref = one_row(referred, ("Referred", "n"))
    n_ass = one_row(assessed, ("Assessed", "n (% of referred)"))
    n_trt = one_row(treated, ("Treated", "n (% of assessed)"))
    cols = [*groups, TOTAL_LABEL]

    blocks_n, blocks_pct = [n_ref[cols]], [pd.DataFrame(np.nan, index=n_ref.index, columns=cols)]
    ref_row = n_ref.iloc[0][cols]
    for column, label in TABLE1_VARIABLES.items():
        tab = _crosstab(frame, column, eth)
        if disclose:
            block = disclosure.disclose(
                tab, count_columns=groups, threshold=threshold, base=base, total_row="__all__", total_col=TOTAL_LABEL
            ).drop(index="__all__")
        else:
            block = tab.copy()
            block[TOTAL_LABEL] = block.sum(axis=1)
        block = block[cols]
        block.index = pd.MultiIndex.from_tuples([(label, lvl) for lvl in block.index])
        blocks_n.append(block)
        blocks_pct.append(disclosed_percent(block, ref_row, digits=1) if disclose else _pct(block, ref_row))
    for counts_row, denom in ((n_ass, ref_row), (n_trt, n_ass.iloc[0][cols])):
        blocks_n.append(counts_row[cols])
        pct = (disclosed_percent if disclose else _pct_row)(counts_row[cols].iloc[0], denom)
        blocks_pct.append(pd.DataFrame([pct], index=counts_row.index, columns=cols).astype(float))

    n = pd.concat(blocks_n)
    pct = pd.concat(blocks_pct)
    n.index = pd.MultiIndex.from_tuples(list(n.index), names=["variable", "level"])
    pct.index = n.index
    out = pd.concat({"n": n.astype("Int64"), "%": pct.astype(float)}, axis=1)
    out = out.swaplevel(0, 1, axis=1)
    out = out.reindex(columns=pd.MultiIndex.from_product([cols, ["n", "%"]]))
    out.columns.names = ["ethnicity", "statistic"]
    out.attrs["disclosed"] = bool(disclose)
    return out


def _pct(block: pd.DataFrame, denom: pd.Series) -> pd.DataFrame:
    return np.round(block.astype(float) / denom.astype(float).where(denom != 0) * 100, 1)


def _pct_row(num: pd.Series, denom: pd.Series) -> pd.Series:
    return np.round(num.astype(float) / denom.astype(float).where(denom != 0) * 100, 1)


def format_table1(table: pd.DataFrame, symbol: str = SUPPRESSED_SYMBOL) -> pd.DataFrame:
    """Display form of ``table1``: one string column per group, "n (%)" ("*" where suppressed)."""
    groups = list(dict.fromkeys(table.columns.get_level_values(0)))
    out = pd.DataFrame(index=table.index, columns=groups, dtype=object)
    for g in groups:
        cells = []
        for n, p in zip(table[(g, "n")], table[(g, "%")]):
            n_s = symbol if pd.isna(n) else f"{int(n):,}"
            cells.append(n_s if pd.isna(p) else f"{n_s} ({p:.1f})")
        out[g] = cells
    return out


# tableone reserves the column name "Missing" (its own count of missing values per variable), so the
# group of referrals without a recorded ethnicity needs another label there.
TABLEONE_MISSING_GROUP = "Missing ethnicity"


TABLEONE_TREATED_LABEL = "Treated (among assessed)"
TABLEONE_ASSESSED_N_LABEL = "n assessed (denominator for treated)"


def table1_tableone(frame: pd.DataFrame, **kwargs):
    """Exploratory Table 1 with the ``tableone`` package, grouped by ethnicity, with referrals whose
    ethnicity is missing as their own column ("Missing ethnicity": tableone reserves "Missing" for its
    column of missing-value counts).

    Denominators follow the paper: age, gender, year, borough, referral source and ``Assessed`` are among
    **all referrals** of the group; ``Treated (among assessed)`` is among the group's **assessed referrals
    only**. A single ``TableOne`` over all referrals would put the not-assessed into the treated row's
    denominator (as a "None" level), which is exactly the wrong denominator for treatment. So two
    ``TableOne`` objects are built, the second on the assessed referrals only, and its rows (a row
    ``n assessed (denominator for treated)`` and the treated row) are appended to the first; the returned
    object is the first ``TableOne`` with that combined ``.tableone`` table (``explore.treated`` holds the
    second object).

    tableone's own "Missing" column (counts of missing values per variable) is left out: every variable shown
    is complete (a not-known value is a level of its own), so that column would be empty beside "Missing
    ethnicity" and confuse a reader.

    NOT disclosure controlled: raw counts, for the notebook only. The publishable table is ``table1``.
    Extra keyword arguments go to both ``tableone.TableOne`` calls.
    """
    columns = [*TABLE1_VARIABLES, "assessed"]
    check_frame(frame, ["ethnicity", *columns, "treated"])
    data = frame[[*columns, "treated"]].copy()
    for c in TABLE1_VARIABLES:
        data[c] = data[c].astype(object).astype(str).where(data[c].notna())
    assessed = pd.to_numeric(data["assessed"], errors="coerce")
    data["assessed"] = assessed.map({1: "Yes", 0: "No"})
    data["treated"] = data["treated"].map({1.0: "Yes", 0.0: "No"})  # NaN (not assessed) stays missing
    eth = pd.Series(ethnicity_with_missing(frame), index=frame.index).astype(str)
    data["ethnicity"] = eth.replace(study.MISSING_LABEL, TABLEONE_MISSING_GROUP)
    order = {c: [v for v in (str(x) for x in _levels(frame, c) if x != NOT_KNOWN) if v in set(data[c].dropna())]
             for c in TABLE1_VARIABLES}
    order["ethnicity"] = [*study.GROUPS, TABLEONE_MISSING_GROUP]
    order["assessed"] = ["Yes", "No"]
    order["treated"] = ["Yes", "No"]
    labels = {**TABLE1_VARIABLES, "assessed": "Assessed (among referred)", "treated": TABLEONE_TREATED_LABEL}
    common = dict(groupby="ethnicity", rename=labels, pval=False, missing=False, overall=True)
    options = dict(columns=columns, categorical=columns,
                   order={k: v for k, v in order.items() if k != "treated"}, **common)
    options.update(kwargs)
    main = TableOne(data, **options)

    # Treatment among the assessed only: a second TableOne on the assessed rows.
    on_assessed = data.loc[assessed == 1, ["ethnicity", "treated"]]
    treated_options = dict(columns=["treated"], categorical=["treated"],
                           order={k: order[k] for k in ("ethnicity", "treated")}, **common)
    treated_options.update({k: v for k, v in kwargs.items() if k not in ("columns", "categorical")})
    treated = TableOne(on_assessed, **treated_options)
    block = treated.tableone.copy()
    first = block.index.get_level_values(0)
    block = block[first != "n"]  # its "n" row is the number assessed: relabel it so it is not read as referrals
    n_assessed = treated.tableone[first == "n"].copy()
    n_assessed.index = pd.MultiIndex.from_tuples([(TABLEONE_ASSESSED_N_LABEL, "")], names=block.index.names)
    block = pd.concat([n_assessed, block]).reindex(columns=main.tableone.columns).fillna("")
    combined = pd.concat([main.tableone, block])
    main.tableone = combined
    for name in ("head", "tail", "to_csv", "to_excel", "to_html", "to_json", "to_latex"):
        setattr(main, name, getattr(combined, name))
    main.treated = treated
    return main


PATHWAY_COUNT_COLUMNS = ["referred", "assessed", "treated"]


def pathway_counts(frame: pd.DataFrame, disclose: bool = False, threshold: int = 7, base: int = 5,
                   exact_rates: bool = False) -> pd.DataFrame:
    """The pathway by ethnic group (+ Missing, + Total), one row each, index named ``ethnicity``.

    Columns: ``referred``, ``assessed``, ``treated``, ``pct_assessed`` (% of referred), ``pct_treated``
    (% of **assessed**, the paper's denominator for treatment), ``treated_per_1000_referred``.
    With ``disclose=True`` the counts are disclosure controlled (the Total row as the column total, so each
    count column is a line for secondary suppression) and the rates are recomputed from the disclosed
    counts (a rate from raw counts would let a reader multiply back to the raw count). With
    ``exact_rates=True`` as well, for a **synthetic** cohort where no disclosure rule applies to the rates,
    they are computed from the exact counts (so that they match the paper's printed percentages to the
    decimal), shown to one decimal (per 1,000: whole numbers), and still blank where a count behind a rate
    (numerator, denominator, denominator minus numerator) is suppressed or is 1..threshold.
    ``attrs['rates']`` says which.
    """
    check_frame(frame, ["ethnicity", "assessed", "treated"])
    assessed_values = pd.to_numeric(frame["assessed"], errors="coerce")
    if not assessed_values.isin([0, 1]).all():
        raise ValueError("assessed must be 0/1 for every referral")
    treated_values = pd.to_numeric(frame["treated"], errors="coerce")
    if (treated_values.notna() & (assessed_values == 0)).any():
        raise ValueError("treated must be missing (NaN) for referrals that were not assessed")
    eth = pd.Series(ethnicity_with_missing(frame), index=frame.index)
    groups = group_labels()
    counts = pd.DataFrame(
        {
            "referred": eth.value_counts(),
            "assessed": eth[assessed_values == 1].value_counts(),
            "treated": eth[(assessed_values == 1) & (treated_values == 1)].value_counts(),
        }
    )
    counts = counts.reindex(groups, fill_value=0).fillna(0).astype(np.int64)
    counts.index = pd.Index(groups, name="ethnicity")
    exact = counts.copy()
    exact.loc[TOTAL_LABEL] = exact.sum(axis=0)

    def rate(num: str, den: str, scale: float = 100.0) -> pd.Series:
        n, d = exact[num].astype(float), exact[den].astype(float)
        return n / d.where(d != 0) * scale

    if disclose:
        counts = disclosure.disclose(
            counts, count_columns=PATHWAY_COUNT_COLUMNS, threshold=threshold, base=base, total_row=TOTAL_LABEL
        )
    else:
        counts = exact.copy()
    counts.index.name = "ethnicity"
    pairs = {"pct_assessed": ("assessed", "referred", 100.0, 1), "pct_treated": ("treated", "assessed", 100.0, 1),
             "treated_per_1000_referred": ("treated", "referred", 1000.0, 0)}
    if disclose and not exact_rates:
        for name, (num, den, scale, _) in pairs.items():
            counts[name] = disclosed_percent(counts[num], counts[den], digits=None, scale=scale)
        counts.attrs["rates"] = "recomputed from the disclosed counts"
        return counts
    for name, (num, den, scale, digits) in pairs.items():
        value = rate(num, den, scale)
        if disclose:
            small = (is_small(exact[num].to_numpy(), threshold) | is_small(exact[den].to_numpy(), threshold)
                     | is_small((exact[den] - exact[num]).to_numpy(), threshold))
            hidden = counts[num].isna().to_numpy() | counts[den].isna().to_numpy() | small
            value = value.round(digits).where(~hidden)
        counts[name] = value.reindex(counts.index)
    if disclose:
        counts.attrs["rates"] = ("from exact counts, 1 decimal (per 1,000: whole numbers); blank where a count "
                                 "behind the rate is suppressed")
    return counts


# --------------------------------------------------------------------------------------------------
# Where ethnicity is missing
# --------------------------------------------------------------------------------------------------
def missing_by(frame: pd.DataFrame, by: str | pd.Series | pd.Categorical, name: str | None = None) -> pd.DataFrame:
    """How often ethnicity is missing within each level of ``by`` (a column name, or values per row such as
    every row's *true* group, which only a synthetic cohort has): ``n``, ``n_missing``, ``pct_missing``."""
    if isinstance(by, str):
        if by == "pathway_stage" and by not in frame.columns:
            values = imputation.add_pathway_stage(frame)
        else:
            values = frame[by]
        name = name or by
    else:
        values = pd.Series(by, index=frame.index) if not isinstance(by, pd.Series) else by.set_axis(frame.index)
        name = name or (values.name if values.name is not None else "group")
    if len(values) != len(frame):
        raise ValueError(f"missing_by: {len(values)} grouping values for {len(frame)} rows")
    miss = frame["ethnicity"].isna()
    out = (pd.DataFrame({"_by": pd.Series(values).reset_index(drop=True),
                         "_miss": miss.reset_index(drop=True)})
           .groupby("_by", observed=False, sort=True)["_miss"].agg(n="size", n_missing="sum"))
    out["n_missing"] = out["n_missing"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pct_missing"] = 100 * out["n_missing"] / out["n"]
    out.index.name = name
    return out
