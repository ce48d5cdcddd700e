# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Data preparation
#
# Between the raw extract (NHS codes, text dates, blanks) and any model sits data preparation: this notebook maps codes to the paper's analysis groups, checks every row, and accounts for every row it does not analyse.
#
# **Learning objectives**
# - By the end you can map an NHS ethnic category code and a source-of-referral code to the study's groups, and say which parts of the mapping are *assumed*.
# - By the end you can describe how the raw extract differs from the analysis frame, column by column.
# - By the end you can read a validation report and a flow table, and find the rows behind each exclusion.
# - By the end you can explain why missing ethnicity is kept rather than dropped, and why nothing is dropped silently.
# - By the end you can say how a researcher would run these notebooks on a real extract (`data_path`).
#
# **Prerequisites**: notebooks 00-03 (the raw extract was first shown in 00).
#
# **Time needed**: about 30 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
data_path = ""

# %%
import pandas as pd

import helpers.notebook
from helpers import codes, cohort, datadict, prepare, publish, study

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
print(publish.banner(p))

# %% [markdown]
# ## From NHS codes to analysis groups
#
# ### Ethnicity
#
# IAPT records ethnicity with the NHS Data Dictionary's ethnic category codes: sixteen categories from the 2001 Census (letters A to S), plus `Z` (not stated: the person was asked and declined or could not choose) and `99` (not known: not asked). A blank field also happens. The paper uses eight groups; `helpers/codes.py` holds the mapping, the single place it is defined:

# %%
datadict.ethnic_code_table()

# %% [markdown]
# Two codes (`Z`, `99`) and the blank map to **missing**: such rows are kept, with ethnicity empty, because they are the 18.5% the paper imputes (notebook 10). The paper's eight groups put Irish (`B`) with White Other. Whether it put Chinese (`R`) under Asian or under Other is **not known**; this project *assumes* Other, and the choice is one line in `helpers/codes.py`:

# %%
print("codes.CHINESE_GROUP =", repr(codes.CHINESE_GROUP), "(assumed)")

# %% [markdown]
# ### Source of referral
#
# The source-of-referral field has around forty codes. NHS England counts `A1` as GP referral and `B1` as self-referral; the paper's "community services" are employment, voluntary, education, prison and probation services and the like. The exact mapping the paper used is not known, so everything except `A1` and `B1` is *assumed*:

# %%
source_codes = datadict.source_code_table()
source_codes

# %%
source_codes.groupby(["category", "basis"], observed=True).size().rename("codes").to_frame()

# %% [markdown]
# ### Gender
#
# `1` male, `2` female; `9` (indeterminate) and `X` (not known). The paper adjusts for gender but does not say how it coded it or what it did with codes `9` and `X`. This project *assumes* a two-level gender variable (Female, Male), so rows coded `9` or `X` cannot be placed in that adjustment and are treated as **out of scope** and excluded (counted, see the flow below). That exclusion rule is *assumed*, not the paper's known rule.

# %%
pd.Series(codes.GENDER_CODE_TO_LABEL, name="label").fillna("(out of scope: not Female or Male, assumed rule)").to_frame()

# %% [markdown]
# ## The raw extract and the analysis frame
#
# `prepare.prepare(raw)` turns the raw extract (every field a text string, as read from the CSV) into the **analysis frame**, one row per referral kept, with the variables the models use. The raw rows first:

# %%
show_rows = not p["data_path"]  # a real extract's rows are never printed (disclosure control)
no_rows = publish.not_in_counts("the raw extract", "A run from pattern counts has no row-level file; the frame below "
                                "is rebuilt from the counts, one row per referral, with the columns they hold.")
no_rows if data.from_counts else data.raw.head(3 if show_rows else 0)

# %% [markdown]
# and the same referrals in the analysis frame:

# %%
data.frame.head(3 if show_rows else 0)

# %% [markdown]
# Column by column:

# %%
pd.DataFrame({
    "type": data.frame.dtypes.astype(str),
    "example": data.frame.iloc[0].astype(str) if show_rows else "",
})

# %% [markdown]
# What changed:
# - `PathwayID` became `referral_id`; the referral date became a real date, and `year` is derived from it.
# - age stays in years and also gets an age band (`age_band`, *assumed* bands);
# - codes became labelled categories: `gender`, `ethnicity` (the eight groups, empty when missing), `borough`, `referral_source`; `ethnic_code` keeps the raw code, so `Z`, `99` and blank can still be told apart;
# - the two dates became outcomes: `assessed` is 1 or 0 for every referral; `treated` is 1 or 0 **only for those assessed** and empty otherwise (the denominators of notebook 01).
#
# How the codes turned into groups in this cohort (raw code by analysis group; the column `(missing)` collects Z, 99 and blank):

# %%
group = data.frame["ethnicity"].astype(object).fillna("(missing)")
(publish.not_in_counts("the raw ethnic code by group", "Pattern counts keep each referral's group, or missing, "
                        "not the NHS code it was read from.") if data.from_counts
 else publish.crosstab(data.frame["ethnic_code"], group, p))

# %% tags=["nbval-check-output"]
if data.from_counts:  # Z, 99 and blank are one "missing" in the counts
    print("referrals with ethnicity missing:", publish.count(data.frame["ethnicity"].isna().sum(), p),
          "(pattern counts do not say which code: Z, 99 or blank)")
else:
    missing_codes = data.frame.loc[data.frame["ethnicity"].isna(), "ethnic_code"].astype(str)
    print("referrals with ethnicity missing, by raw code:")
    for code_, n in missing_codes.replace("", "(blank)").value_counts().sort_index().items():
        print(f"  {code_:<8}{publish.count(n, p):>7}")

# %% [markdown]
# How a missing ethnicity is split between `Z`, `99` and blank in the synthetic cohort is *assumed*: the paper does not report it. The generator gives each referral whose ethnicity it hides one of the three codes at random with the fixed shares below (so the counts above are close to those shares, not equal to them); notebook 10 discusses what the split would tell you in a real extract.

# %% tags=["not-extract-counts"]
print("assumed shares of the missing codes in the synthetic cohort:",
      ", ".join(f"{code_ or '(blank)'} {share:.0%}" for code_, share in cohort.MISSING_CODE_SHARES.items()))

# %% [markdown]
# ## The flow table: every row accounted for
#
# `prepare` never drops a row without counting it. The **flow table** starts from the rows in the extract, subtracts each exclusion with its reason, and ends with the rows analysed; below that it counts, within the analysed rows, how many have ethnicity recorded or missing, and how many were assessed and treated. For the default synthetic cohort:

# %% tags=["nbval-check-output"]
print(publish.flow_text(data.prepared.flow, p))

# %% [markdown]
# The synthetic extract is clean, so no row is excluded. Real extracts are not. The text above hides the checks that excluded no row (`prepare.flow_text(flow, show_zero=True)` would list them too); the table below, `data.prepared.flow`, has every check:

# %%
publish.flow(data.prepared.flow, p)

# %% [markdown]
# ## A deliberately broken extract
#
# To see the checks at work, take the first 20 rows of the raw extract and break some of them on purpose:
#
# - an ethnic category code that does not exist (`Q`);
# - a first treatment date one day *before* the first assessment;
# - a `PathwayID` that repeats the one on the line before;
# - an age of 17 (a valid value, but outside the study population of adults).
#
# The age rule is *assumed*: the paper does not state its age criterion. This project takes adults aged 18 and over because IAPT served adults and Southwark's service, for example, takes adults 18+ with no upper age limit (`docs/study/iapt_context.md`). Like the gender rule above, it is a study-population choice (severity `out of scope`), not a data error.
#
# The flow table above lists **two** age rules, and they do different jobs. "age outside 16-110" (severity `invalid`) is a plausibility check on the recorded value: an age below 16 or above 110 is taken to be a recording error (both limits are the project's *assumed* choice, in `helpers/extract_checks.py`). "age under 18" (severity `out of scope`) applies to the ages that pass that check: 16 and 17 are believable ages, but outside the (assumed) adult study population. A 15 is therefore excluded as a data error and a 17 as out of scope, and each row is counted under the first rule it fails.

# %% tags=["not-extract-counts"]
# from the cohort's raw rows; with a real extract, from a small synthetic cohort instead (rows get printed)
demo_raw = data.raw if show_rows else cohort.generate(n_referrals=2_000, seed=p["seed"]).raw
broken = demo_raw.head(20).copy().reset_index(drop=True)
broken.attrs["source"] = "a broken copy of the first 20 rows"
broken.loc[3, "Validated_EthnicCategory"] = "Q"
treated_rows = broken.index[broken["TherapySession_FirstDate"] != ""]
row = treated_rows[0]
day_before = pd.Timestamp(broken.loc[row, "Assessment_FirstDate"]) - pd.Timedelta(days=1)
broken.loc[row, "TherapySession_FirstDate"] = day_before.strftime("%Y-%m-%d")
broken.loc[12, "PathwayID"] = broken.loc[11, "PathwayID"]
broken.loc[16, "Age_ReferralRequest_ReceivedDate"] = "17"
print("treatment moved before assessment on data row", row)

# %% [markdown]
# `prepare.validate_extract` checks the raw text **before** anything is converted, and reports each check that some row fails, with up to five example line numbers (line 1 of a CSV file is the header, so data row 0 is line 2) and the offending values:

# %% tags=["not-extract-counts"]
report = prepare.validate_extract(broken)
print(report)

# %% [markdown]
# The report as a table, only the checks with failing rows (`severity` separates data errors, `invalid`, from valid values outside the study population, `out of scope`, and from missing ethnicity, kept):

# %% tags=["not-extract-counts"]
report.table[report.table["n_rows"] > 0]

# %% [markdown]
# Preparing the broken extract drops the failing rows, each counted **once**, under its first reason in the order of the checks, and the flow table says so:

# %% tags=["not-extract-counts", "nbval-check-output"]
prepared_broken = prepare.prepare(broken)
print(prepare.flow_text(prepared_broken.flow))

# %% [markdown]
# Which rows went, and why (the report keeps a reason per input row):

# %% tags=["not-extract-counts"]
reasons = report.row_reason
broken.assign(exclusion_reason=reasons)[reasons.notna()][
    ["PathwayID", "Validated_EthnicCategory", "Age_ReferralRequest_ReceivedDate", "Assessment_FirstDate",
     "TherapySession_FirstDate", "exclusion_reason"]]

# %% [markdown]
# ## Why nothing is dropped silently
#
# A row that disappears without a trace is a hidden decision. If, say, rows with an unusual code were quietly dropped, and those codes were more common in one group, the analysis would be biased and nobody could tell. So:
#
# - every excluded row is counted in the flow table under a named reason, and the numbers add up (a check inside `prepare` refuses to continue if they do not);
# - nothing is guessed: a code is read only by a rule in the data dictionary (spaces trimmed and letter case folded, so `" a"` is read as A, White British, and each such row is counted under `whitespace_trimmed` or `code_case_folded` in the flow table above); a value no rule covers is an unknown code, counted as such, because guessing would hide a data problem;
# - missing ethnicity is **kept**, not dropped: dropping it is the complete-case analysis, one of the choices the paper compares, and it must be made in the model, visibly, not in data preparation;
# - data errors and study-population criteria are told apart (`severity`), so a reader can see whether exclusions reflect bad data or the study design.
#
# If you would rather stop than exclude anything, use strict mode: `prepare(raw, strict=True)` raises an error carrying the report when any row has a data error.

# %% tags=["not-extract-counts"]
try:
    prepare.prepare(broken, strict=True)
except prepare.ExtractError as err:
    print(str(err).splitlines()[0])
    print("rows with data errors:", err.report.n_invalid)

# %% [markdown]
# ## Running on a real extract
#
# A researcher with access to real IAPT data, inside their organisation's secure environment, can run the same notebooks on it:
#
# 1. Export the referrals as a CSV file with the columns below (the field names follow NHS England's IAPT analysis code; `Borough` is a local field).
# 2. Set the parameter `data_path` to that file. The default `margin = "auto"` then calibrates weighted MI to the 2011 Census (a real extract has no truth file); a CSV of population shares (`ethnicity`, `share`) can be given instead.
# 3. Run, for example, `python -m helpers.run -p data_path=my_extract.csv`. The extract is checked before any notebook starts: problems are reported with line numbers on the console, and a file with no usable row stops the run.
#
# On a real extract every count a page shows (this one included) is disclosure controlled through `helpers.publish`: the crosstab and flow above become rounded, with small counts starred. The exact flow table goes to the run's `secure/` folder, which is never published. The broken-extract demonstration above uses a small synthetic cohort instead, so its rows can be printed.

# %%
pd.Series(codes.RAW_COLUMNS, name="meaning").rename_axis("column").to_frame()

# %% [markdown]
# A file without one of these columns is refused at once, with a message naming what is missing (here the `Borough` column is removed from the broken extract):

# %% tags=["not-extract-counts"]
try:
    prepare.validate_extract(broken.drop(columns="Borough"))
except prepare.ExtractError as err:
    print(err)

# %% [markdown] tags=["exercise"]
# ### Exercise 1: What happens to code "99"?
#
# A referral has `Validated_EthnicCategory = "99"`. Predict: is it excluded, kept with an ethnic group, or kept with ethnicity missing? Does it count as a data error? Does it matter that the code is `"99"` and not `"Z"`? Then check with a one-row extract.

# %% tags=["not-extract-counts", "solution"]
one = demo_raw.head(1).copy()
one["Validated_EthnicCategory"] = "99"
one_prepared = prepare.prepare(one)
print(one_prepared.frame[["referral_id", "ethnic_code", "ethnicity"]])
print(prepare.flow_text(one_prepared.flow))
print("data errors:", one_prepared.report.n_invalid)

# %% [markdown] tags=["solution"]
# **Solution.** It is **kept**, with `ethnicity` empty (missing), counted in the flow under "ethnicity missing", and it is not a data error. `99` means "not known" (not asked) and `Z` "not stated" (asked, not given): both are missing for the analysis, but `ethnic_code` keeps them apart, because the difference can matter for *why* ethnicity is missing (notebook 10). An unknown code like `Q`, by contrast, is a data error and the row is excluded.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Move Chinese to Asian (in your head)
#
# Suppose the paper had grouped Chinese (`R`) under Asian and you changed `codes.CHINESE_GROUP` to `"Asian"`. Without editing the file: which groups' counts would change, by how much in this cohort, and which later results could move?

# %% tags=["solution"]
if data.from_counts:  # regrouping needs the raw code, which pattern counts do not keep
    display(publish.not_in_counts("the rows coded R", "Regrouping a code needs the raw codes: re-run "
                                  "helpers.extract where the rows are, after changing codes.CHINESE_GROUP."))
else:
    counts_now = data.frame["ethnicity"].value_counts().reindex(study.GROUPS)
    alternative = {**codes.ETHNIC_CODE_TO_GROUP, "R": "Asian"}
    regrouped = data.frame["ethnic_code"].astype(str).map(alternative)
    counts_alt = regrouped.value_counts().reindex(study.GROUPS)
    print("rows with code R:", publish.count((data.frame["ethnic_code"] == "R").sum(), p))
    display(publish.counts(pd.DataFrame({"Chinese in Other (assumed)": counts_now, "Chinese in Asian": counts_alt,
                                        "change": counts_alt - counts_now}), p))

# %% [markdown] tags=["solution"]
# **Solution.** Only **Asian** and **Other** change: Asian gains every row coded `R`, Other loses the same number; the other six groups and the number missing stay the same. Every estimate for those two groups could move (at all three stages), and so could the weighted imputation, whose population margin would need Chinese residents counted under Asian too. In this synthetic cohort the `R` rows were *generated* as members of Other, so moving them would blur the planted effects; with real data the question is which grouping the paper used, which is why the choice is labelled *assumed* and kept to one line.

# %% [markdown]
# ## Key points
#
# - `helpers/codes.py` is the one place NHS codes map to the paper's groups; Irish goes to White Other, Chinese to Other (*assumed*), and the source-of-referral mapping beyond A1 (GP) and B1 (self) is *assumed*.
# - `prepare` turns text codes and dates into labelled categories and two outcomes: `assessed` for every referral, `treated` only for the assessed.
# - `validate_extract` reports every failed check with line numbers and values; the flow table counts every excluded row once, under its first reason, and the numbers must add up.
# - Missing ethnicity (Z, 99, blank) is kept, never dropped in preparation: how to handle it is an analysis choice (notebook 10).
# - A real extract in the same layout runs through the same code with `data_path` (and a census or custom `margin`).
