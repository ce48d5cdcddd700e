# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Describing the cohort
#
# Before any model: who was referred, and how far each group's referrals travelled along the pathway
# (referred → assessed → treated). This is the descriptive picture every later notebook builds on.
#
# **Learning objectives**
# - By the end you can build an exploratory Table 1 by ethnic group with `tableone` and say why it must not be published as it is.
# - By the end you can apply NHS disclosure control (suppress counts 1-7, round the rest to 5) and this project's extra secondary suppression, and explain what each rule protects against.
# - By the end you can read the pathway funnel and name the denominator of each step (assessed among *referred*, treated among *assessed*).
# - By the end you can explain why referrals with missing ethnicity are shown as their own group rather than dropped.
#
# **Prerequisites**: `04_data_preparation` (how the analysis frame is built); basic pandas.
#
# **Time needed**: about 30 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
suppress_threshold = 7
rounding_base = 5

# %%
import pandas as pd

import helpers.notebook
from helpers import disclosure, plots, publish, study, tables

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame
print(publish.banner(p))

# %% [markdown]
# ## 1. The cohort at a glance
#
# The analysis frame has one row per referral. The paper's three stages share it: everyone is *referred*; some
# are *assessed*; of those assessed, some are *treated*. The next cell prints the headline numbers (percentages rounded), so
# the prose here never has to repeat a number that could change with the parameters.

# %% tags=["nbval-check-output"]
overall = publish.pathway_counts(frame, p).loc[tables.TOTAL_LABEL]
print(f"Referrals analysed:        {int(overall['referred']):,}")
print(f"Ethnicity missing:         {publish.percent(frame['ethnicity'].isna().sum(), len(frame), p)}")
print(f"Assessed, % of referred:   {overall['pct_assessed']:.1f}%")
print(f"Treated, % of assessed:    {overall['pct_treated']:.1f}%")

# %% [markdown]
# The paper reports 85,800 referrals with 18.5% missing ethnicity (abstract); with the default parameters the
# synthetic cohort is built to have the same. Everything else about its make-up (age, gender, borough, year mix,
# and how the missing-ethnicity referrals spread over the pathway) is *assumed* (see `02_synthetic_cohort` and `data/published/cohort_targets.csv`).
#
# ## 2. An exploratory Table 1 with `tableone`
#
# `tableone` is a quick way to see the cohort's make-up by group: one column per ethnic group (plus a column for
# referrals with missing ethnicity, labelled "Missing ethnicity" because `tableone` keeps the word "Missing" for
# its own count of missing values, a column left out here because every variable shown is complete), percentages
# within each group.
#
# Each block has the paper's denominator. Age, gender, year, borough, referral source and "Assessed (among referred)"
# are percentages of the group's **referrals**. "Treated (among assessed)" is a percentage of the group's
# **assessed** referrals only: `tables.table1_tableone` builds a second `tableone` on the assessed rows and appends
# it, after a row giving the number assessed in each group (the denominator). A single `tableone` over all
# referrals would have counted the not-assessed as a "None" level of `treated` and divided by all referrals,
# which understates treatment and mixes the assessment gap into it: exactly the mistake notebook 01 warns about.

# %%
explore = tables.table1_tableone(frame)
publish.exploratory(explore, p, "tableone's Table 1", "The disclosure-controlled Table 1 is in section 4.")

# %% [markdown]
# Read it column by column: each percentage is *within* the ethnic group, so the columns can be compared even
# though the groups differ greatly in size. Three things to notice:
#
# - **Missing ethnicity is a group of its own**, not a footnote. Dropping it would silently change every
#   "overall" figure; notebook 10 deals with it properly.
# - The treated rows leave out everyone not assessed: treatment is only defined **among the assessed**, so the
#   percentages there are of the "n assessed" row, not of the group's referrals (the cell below checks one
#   group against the frame).
# - The counts are **raw**. Some cells (small groups crossed with rare levels) can be very small. That is fine on
#   your screen, and not fine in a report.
#
# ## 3. Why disclosure control?
#
# Tables built from NHS patient records are published under **statistical disclosure control**. A small count,
# such as "3 Black Other referrals aged 65+ in one borough in 2013", can let someone who knows one of those people
# learn something private about them (for example that they were referred to mental-health services, and were
# not treated). The rules here follow NHS Digital's disclosure control method for counts below national level
# (set out for Hospital Episode Statistics and the Emergency Care Data Set from September 2018 and since used for
# other NHS Digital datasets: digital.nhs.uk, "Disclosure control methodology for HES and ECDS"):
#
# 1. counts from **1 to 7 are suppressed** (shown as `*`); a true zero stays 0;
# 2. every other count is **rounded to the nearest 5**, so small differences between published tables cannot be
#    used to recover a small count;
# 3. **secondary suppression**, a further step this project adds to be cautious (the HES and ECDS rules that the 2018 method
#    replaced required it, as the same page says; the 2018 method relies on rounding instead): if a row or column has a total and only one cell in it is suppressed, the hidden
#    value could be recovered by subtraction (total minus the others), so a second cell is suppressed too.
#
# The thresholds are the parameters `suppress_threshold` (7) and `rounding_base` (5), because other data owners
# use other values. A tiny made-up example shows all three rules at work.

# %% tags=["nbval-check-output"]
wb = frame[frame["ethnicity"] == study.REFERENCE_GROUP]
wb_assessed, wb_treated = int(wb["assessed"].sum()), int((wb["treated"] == 1).sum())
print(f"White British: {publish.count(wb_treated, p)} treated of {publish.count(wb_assessed, p)} assessed = "
      f"{publish.percent(wb_treated, wb_assessed, p)} (the treated row's %); of all {publish.count(len(wb), p)} "
      f"referrals it would be {publish.percent(wb_treated, len(wb), p)} (wrong denominator)")

# %% tags=["not-extract-counts"]
example = pd.DataFrame(
    {"Self": [152, 4, 61], "GP": [148, 23, 9]},
    index=pd.Index(["Team A", "Team B", "Team C"], name="team"),
)
with_totals = example.assign(Total=example.sum(axis=1))
with_totals.loc["Total"] = with_totals.sum()
with_totals  # before: the raw counts, as an analyst sees them

# %% tags=["not-extract-counts"]
disclosed_example = disclosure.disclose(
    example, threshold=suppress_threshold, base=rounding_base, total_row="Total", total_col="Total"
)
info = disclosed_example.attrs["disclosure"]
print("suppressed (primary and secondary):", info["suppressed"])
print("of which secondary:                ", info["secondary"])
disclosure.format_disclosed(disclosed_example)  # after: what may be published

# %% [markdown]
# Before → after (default thresholds): Team B's 4 self-referrals are suppressed (rule 1). With the totals shown,
# that `*` alone could be undone (row total minus GP, or column total minus the other teams), so Team B's GP count
# is hidden too (its row), and so is a second cell in the Self column (Team C's), which in turn leaves Team C's row
# with a lone `*`, so Team C's GP count goes as well (rule 3, repeated until no line has a lone `*`). The
# other counts are rounded to 5 and the totals are *recomputed from the rounded cells*, hidden ones included, so a total never
# reveals an exact count (rule 2). Percentages must then be recomputed from the disclosed counts too, never from the raw ones.
#
# ## 4. The publishable Table 1
#
# `helpers.tables.table1` builds the same description, disclosure controlled block by block (each variable's
# levels × groups, with totals as lines for secondary suppression); each percentage is recomputed from disclosed
# counts. Cells show "n (%)", with `*` where suppressed.

# %%
t1 = tables.table1(frame, disclose=True, threshold=suppress_threshold, base=rounding_base)
t1.to_csv(helpers.notebook.output_path(p, "tables", "05_table1_disclosed.csv"))
tables.format_table1(t1)

# %% [markdown]
# A check that the table obeys the rules (no count 1-7, every count a multiple of the rounding base):

# %% tags=["nbval-check-output"]
counts_only = t1.xs("n", axis=1, level="statistic")
problems = disclosure.check_disclosure(counts_only, threshold=suppress_threshold, base=rounding_base)
print(f"Cells breaking disclosure rules: {len(problems)}")
print(f"Suppressed cells in Table 1: {int(counts_only.isna().sum().sum())}")

# %% [markdown]
# ## 5. The pathway funnel by group
#
# The paper's stages have **different denominators**: assessment is counted among everyone referred, treatment
# among those assessed. The funnel shows both, plus treated per 1,000 referred (the whole pathway at once). The
# counts are disclosure controlled first and the rates recomputed from them.

# %%
funnel = tables.pathway_counts(frame, disclose=True, threshold=suppress_threshold, base=rounding_base)
disclosure.format_disclosed(funnel)

# %% [markdown]
# Two things in this table are not errors but disclosure control at work. The **Total** row (and the Total
# column of Table 1 above) is *recomputed from the rounded cells*, so it is the sum of what a reader can see, and
# it can differ from the true total by a few (each rounded cell moves by at most 2). And every percentage is
# *recomputed from the rounded counts*, so it can differ from the exact one in the last digit: that is why a
# group's `pct_treated` here can differ by 0.1 from the figure Table 4 prints (66.8% for Black Caribbean). The
# next cell prints both differences for this run.

# %% tags=["nbval-check-output"]
exact = tables.pathway_counts(frame)
if publish.is_real(p):  # exact totals stay in secure/; a reader sees only the disclosed funnel
    print("Real extract: the exact counts are not shown beside the disclosed ones (they are in secure/).")
else:
    print(f"referrals, true total {int(exact.loc[tables.TOTAL_LABEL, 'referred']):,}; "
        f"disclosed Total (sum of rounded cells) {int(funnel.loc[tables.TOTAL_LABEL, 'referred']):,}")
    group = "Black Caribbean"
    print(f"{group}, % treated of assessed: exact {exact.loc[group, 'pct_treated']:.1f}% "
        f"({int(exact.loc[group, 'treated']):,} / {int(exact.loc[group, 'assessed']):,}); "
        f"disclosed {funnel.loc[group, 'pct_treated']:.1f}% "
        f"({int(funnel.loc[group, 'treated']):,} / {int(funnel.loc[group, 'assessed']):,}); Table 4 prints 66.8%")

# %%
fig = plots.pathway_funnel(funnel, per_1000=True)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "05_pathway_funnel.png"))
fig

# %% [markdown]
# *Figure: three panels of horizontal bars, one bar per ethnic group (the paper's eight groups, then referrals
# with missing ethnicity in grey, then the total). Left panel: percentage of referrals assessed. Middle panel:
# percentage of assessed referrals treated. Right panel: referrals treated per 1,000 referred. Each bar is
# labelled with its value.*
#
# How to read it:
#
# - The middle panel is the quantity behind the paper's Table 4 (treated **among the assessed**). The right panel
#   multiplies the two steps together: a group can look similar to White British at one step and still end up
#   further behind over the whole pathway.
# - **Missing ethnicity is shown, not hidden.** The default cohort is built so that referrals that never reach
#   an assessment lack ethnicity more often (an *assumed* mechanism, `missing_mechanism = "mnar"`: missingness
#   depends on the stage reached, the borough and the group; the paper does not report it by stage). If
#   the Missing bar differs from the others, dropping those rows changes the picture, which is the problem the paper's
#   weighted multiple imputation beside the complete-case analysis addresses (notebook 10).
# - These are *crude* percentages: they do not account for the groups' different age, gender, year and borough
#   mixes. Notebooks 06-09 fit the paper's adjusted models.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Predict the effect of stricter disclosure rules
#
# Some data owners suppress counts 1-10 and round to 10. Before running anything, work it out on paper for the
# small example table in section 3, rule by rule: which cells are suppressed first, which must go too so that no
# row or column with a total has a lone `*`, what do the surviving counts round to, and what will Team C's GP
# count (9) become? Then check by disclosing the same table yourself with the stricter rules (section 3 shows the
# call with the default ones). Which of your predictions was wrong, and which rule caused it?

# %% tags=["not-extract-counts", "solution"]
stricter = disclosure.disclose(example, threshold=10, base=10, total_row="Total", total_col="Total")
print("suppressed:", stricter.attrs["disclosure"]["suppressed"])
disclosure.format_disclosed(stricter)

# %% [markdown] tags=["solution"]
# **Solution.** Now both Team B's 4 and Team C's 9 are small (1-10), so both are *primary* suppressions. They
# sit in different rows and different columns, so each row and each column has a lone `*`, and secondary
# suppression hides the other cell of Teams B and C: the same four cells as before, but now two of them are hidden
# for being small themselves. Rounding to 10 moves the shown counts and totals further from the truth (Team B's
# total of 27 is shown as 20, the sum of its rounded cells 0 + 20). Stricter rules protect more and tell the
# reader less, which is why the thresholds are parameters and why the rule used must be stated beside every
# published table.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: What if we had dropped the missing group?
#
# A colleague reports the assessment rate "among referrals" using only rows with a recorded ethnicity. Predict
# first, from the funnel figure of section 5: will that rate be higher or lower than the rate among all
# referrals, and why? Then compute both yourself from the pathway counts of section 5 (the undisclosed version is
# fine for this exploration; `publish.pathway_counts(frame, p)` gives it in a form safe to show). Which is the
# right figure for "the service's assessment rate" in a report to the **service manager**, and why?

# %% tags=["solution"]
raw = publish.pathway_counts(frame, p)  # exact on a synthetic cohort, disclosed on a real extract
recorded = raw.loc[study.GROUPS, ["referred", "assessed"]].sum()
print(f"% assessed, recorded ethnicity only: {recorded['assessed'] / recorded['referred'] * 100:.1f}%")
print(f"% assessed, all referrals:           {raw.loc[tables.TOTAL_LABEL, 'pct_assessed']:.1f}%")
print(f"% assessed, missing ethnicity:       {raw.loc[study.MISSING_LABEL, 'pct_assessed']:.1f}%")

# %% [markdown] tags=["solution"]
# **Solution.** The service's assessment rate is the one among *all* referrals. When referrals with missing
# ethnicity differ from the rest (here they were built, by an *assumed* mechanism, to be assessed less often),
# dropping them makes the service look better than it is, and it also
# changes each group's apparent rate, because the people whose ethnicity is missing belong to real groups in
# unknown proportions. Showing Missing as its own group keeps this visible; notebook 10 estimates what it hides.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Critique a table
#
# A draft report shows Table 1 with disclosure-controlled counts, but the percentages beside them were computed
# from the raw counts. Why is that a problem, even though every count shown passes the rules?

# %% [markdown] tags=["solution"]
# **Solution.** A percentage computed from raw counts carries the raw count inside it: with a denominator (or a
# rounded one) the reader can multiply back and recover the exact count, including counts of 1-7 that were
# suppressed, and undo the rounding. Percentages must be recomputed from the disclosed counts
# (`disclosure.disclosed_percent`), and are missing wherever their count is suppressed; `tables.table1` does this.

# %% [markdown]
# ## Key points
#
# - `tableone` gives a fast exploratory Table 1; its raw counts are for your screen, not for publication.
# - Publishable tables go through disclosure control: counts 1-7 suppressed, others rounded to 5, totals
#   recomputed, secondary suppression so nothing can be recovered by subtraction; percentages from disclosed counts.
# - Each stage has its own denominator: assessed among referred, treated among assessed (the paper's Table 4).
# - Referrals with missing ethnicity are a group to show, not to drop: they differ from the rest, and dropping
#   them changes both overall and group-specific figures.
# - Crude percentages do not adjust for age, gender, year or borough; notebooks 06-09 fit the paper's models.
