# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The synthetic cohort: how it is built
#
# The real referrals are confidential, so every later notebook runs on a synthetic cohort; this notebook opens up how it is built from the paper's printed figures, what in it is *assumed*, and how a calibration makes it reproduce Table 4. Notebook 03 goes on to who in it has ethnicity missing, and how to rebuild it byte for byte.
#
# **Learning objectives**
# - By the end you can say which numbers in the targets file are printed in the paper and which are *assumed*, and how the number assessed per group is derived from Table 4.
# - By the end you can explain in plain words how the calibration creates the confounding that separates the unadjusted, age-gender-year and fully adjusted ORs, and why the resulting age and borough mixes are constructed, not observed.
# - By the end you can check that the default cohort reproduces Table 4, and say how the `calibrated` and `random` modes differ.
# - By the end you can change an assumed number in the targets file and predict what the rebuilt cohort does.
#
# **Prerequisites**: notebooks 00 and 01 (odds ratios, the three models, Table 4).
#
# **Time needed**: about 35 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
seed = 20210802
outcome_mode = "calibrated"

# %%
import numpy as np
import pandas as pd

import helpers.notebook
from helpers import calibrate, models, params, pipeline, plots, replication, study, targets, teaching

p = helpers.notebook.setup(globals())
# This notebook is about the synthetic cohort: it uses one even when data_path names a real extract.
p = params.validate({**p, "data_path": "", "margin": "truth"} if p["data_path"] else p)
t = targets.load_targets(params.targets_file(p))
solved = calibrate.load_solved(t)

# %% [markdown]
# ## Why a synthetic cohort with a known truth
#
# A synthetic cohort lets anyone run the whole analysis without confidential NHS records. And because **we** made it, we know its truth: every referral's real ethnic group (even where the "recorded" ethnicity is missing) and the effects planted in it, which is what lets notebooks 10 to 13 test whether a missing-data method gets the right answer.
#
# The price is honesty about what is invented. The cohort is built so that the paper's analysis, run on it, gives the paper's printed Table 4; everything the paper does not print had to be chosen, and is labelled *assumed* wherever it appears.
#
# ## The targets file: every number the cohort is built from
#
# `data/published/cohort_targets.csv` holds one number per row, each with a `source`: `printed` (copied from the paper; the `reference` column names where) or `assumed` (the paper does not report it; the `reference` column says what the choice is based on).

# %%
targets_table = pd.read_csv(params.targets_file(p), dtype=str, keep_default_na=False)  # as written in the file
targets_table.head(6)

# %% [markdown]
# How many rows of each kind, by quantity:

# %% tags=["not-extract-counts"]
pd.crosstab(t.table["quantity"], t.table["source"], margins=True, margins_name="total")

# %% tags=["nbval-check-output"]
counts = t.table["source"].value_counts()
print(f"printed rows: {counts.get('printed', 0)}, assumed rows: {counts.get('assumed', 0)}, "
      f"total: {len(t.table)}")

# %% [markdown]
# The **printed** rows are the cohort size, the missing share and Table 4 (numbers treated, percentages, the treatment ORs of all three models). Everything else is **assumed**: the assessment ORs and referral-source RRRs (directions from the abstract, sizes chosen), the covariate effects (`log_or_covariate`) and mix (`covariate_share`), White British referral-source shares, and the odds of ethnicity being missing (`missing_log_odds`).
#
# `or_adjusted_full` appears under both sources because it serves two stages: `printed` for **treatment** (Table 4) and `assumed` for **assessment** (the paper's assessment table is not available). No treatment OR is assumed: all three treatment models' ORs are printed in Table 4.
#
# ## One derived quantity: how many were assessed
#
# Table 4 prints, per group, `n` and `%`. The study notes (`docs/study/README.md`) say `n` is *most naturally read as* the number treated and `%` as the percentage of the assessed who were treated (the printed unadjusted ORs agree with the percentages, notebook 01, Exercise 1); the cohort is built on that reading. Then the number **assessed**, not printed, follows: assessed = n / (% / 100). Because `%` is rounded to one decimal, several whole numbers fit; `targets.assessed_counts` takes the one whose unadjusted OR is closest to the printed one.

# %%
derived = pd.DataFrame({
    "treated n (printed)": t.treated_n.astype(int),
    "% treated (printed)": t.treated_pct,
    "assessed (derived)": targets.assessed_counts(t),
})
derived["% check"] = (100 * derived["treated n (printed)"] / derived["assessed (derived)"]).round(1)
derived

# %% [markdown]
# The last column recomputes the percentage from the derived count: it matches the printed one for every group.
#
# ## Solving the cohort: what is planted, what is solved
#
# Every covariate is a category, so any model the paper fits is determined by the expected number of people in each combination of group, age band, gender, year and borough (a *covariate pattern*) at each stage. The generator (`helpers.calibrate`) works on those expected counts:
#
# 1. **Planted**: the **fully adjusted** ORs. The cohort comes from a logistic model with ethnicity, age band, gender, year and borough, whose ethnicity effects are the printed fully adjusted treatment ORs (and the *assumed* ones for assessment and referral source); fitting it to the cohort gives them back.
# 2. **Solved**: the **unadjusted** and **age-gender-year** ORs differ from the fully adjusted ones only if groups differ in their mix of age, gender, year and borough (confounding). Table 4 fixes *how much* confounding there must be, not *where* it comes from. So each group's covariate mix may **tilt**, by one number for age-gender-year and one for borough, towards combinations where treatment is more (positive) or less (negative) likely. The tilts and two intercepts are solved to reproduce the printed numbers treated and age-gender-year ORs; the unadjusted ORs then follow from the derived numbers assessed.
#
# The solved tilts (White British is the reference, 0 by construction):

# %%
calibrate.tilts_table(solved).round(2)

# %% [markdown]
# **What a tilt does.** *Confounding* means that a group's referrals differ from White British referrals in something that also changes the chance of treatment. If a group's referrals come more often from boroughs where treatment is less likely, its crude (unadjusted) treatment rate is lower than its fully adjusted OR alone would make it; the fully adjusted model compares people within the same borough, so it is not fooled. The generator creates Table 4's gap between columns with one number per group, the **tilt**.
#
# Take the borough tilt. Start from one base mix (White British's, *assumed*: what share of referrals comes from each borough). For each borough, multiply the base share by a weight
#
# $$\text{weight} = \exp(\text{tilt} \times \text{the borough's log-odds of treatment}),$$
#
# then rescale the shares so that they add up to 100% again. Read it in three steps (the figure below draws them):
#
# 1. Each borough has a log-odds of treatment (*assumed*, rows `log_or_covariate` of the targets file; Lambeth = 0): positive where treatment is more likely than in Lambeth, negative where it is less likely.
# 2. Tilt 0 gives every borough weight 1 (White British keeps the base mix). A positive tilt gives weights above 1 to the boroughs where treatment is more likely, a negative tilt to those where it is less likely: a borough with log-odds 0.3 gets weight exp(0.3) ≈ 1.35 from a tilt of 1, exp(0.6) ≈ 1.82 from a tilt of 2.
# 3. After rescaling, the group's referrals sit more in the boroughs its weights favour: its planted fully adjusted OR is untouched, its crude treatment rate moves. That is the confounding.
#
# The age-gender-year tilt (`agy_tilt`) works the same way, with the summed log-odds of age band, gender and year (code: `helpers.calibrate.covariate_probabilities`). Worked by hand for the group whose borough tilt is furthest from 0:

# %%
tilts = calibrate.tilts_table(solved)
borough_effect = t.effects["treatment"]["borough"]  # assumed log-odds of treatment, Lambeth = 0
base_mix = t.covariate_share["borough"]               # assumed base mix (White British's)
group = tilts["borough_tilt"].abs().idxmax()  # the group whose borough mix is tilted most
place = borough_effect.abs().idxmax()          # the borough whose treatment log-odds are furthest from Lambeth's
weights = base_mix * np.exp(tilts.loc[group, "borough_tilt"] * borough_effect)
by_hand = weights / weights.sum()
built = calibrate.group_covariate_mix(t, solved, "borough")
print(f"treatment log-odds, {place} vs Lambeth (assumed): {borough_effect[place]:+.2f}")
print(f"{group} borough_tilt: {tilts.loc[group, 'borough_tilt']:.2f} -> weight factor "
      f"exp({tilts.loc[group, 'borough_tilt']:.2f} x {borough_effect[place]:.2f}) = "
      f"{np.exp(tilts.loc[group, 'borough_tilt'] * borough_effect[place]):.2f}")
print(f"share of referrals in {place}: White British {built.loc['White British', place]:.1%} (the base mix), "
      f"{group} {by_hand[place]:.1%} by hand, {built.loc[group, place]:.1%} as the solved model builds it")

# %%
fig = plots.tilt_plot(borough_effect, base_mix, tilts.loc[group, "borough_tilt"], group)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "02_tilt.png"))
fig

# %% [markdown]
# *Figure: how one group's borough tilt builds its borough mix, left to right. Left: the assumed log-odds of treatment in each borough (Lambeth = 0). Middle: the weight exp(tilt × log-odds) on each borough's base share (printed above each bar; dashed line at 1, what White British gets). Right: the base mix (White British) beside the group's mix after weighting and rescaling to 100%. Boroughs with weights above 1 gain referrals, so the group's crude treatment rate moves towards theirs, while its fully adjusted OR, compared within boroughs, stays the planted one.*

# %% [markdown]
# Which mix produces the confounding is an **assumption** (one simple choice among many that would fit); *that* there is this much confounding is a constraint from Table 4. The two tables below are the expected age and borough mixes of referrals with recorded ethnicity as the solved model builds them: **constructed, not observed** (the real mixes are in the paper's Table 1, which we could not read).

# %%
def heatmap(table):
    return table.style.format("{:.0%}").background_gradient(cmap="Blues", axis=None)


heatmap(calibrate.group_covariate_mix(t, solved, "age_band"))

# %%
heatmap(calibrate.group_covariate_mix(t, solved, "borough"))

# %% [markdown]
# *Tables: the share of each group's referrals in each age band (first) and each borough (second), darker for larger shares; rows sum to 100%. Assumed base margins tilted by the solved tilts, not data.*
#
# Finally, the expected counts become whole referrals. In the default **`calibrated`** mode, *controlled rounding* sets each group's numbers referred, assessed and treated to the printed (or derived) totals and shares them out over covariate patterns as close to their expected values as whole numbers allow. **The calibrated outcomes are constructed, not sampled**: no sampling noise, which is why the match below is essentially exact. Ages within a band, dates and the exact NHS codes are then drawn at random (they do not affect any estimate).
#
# ## Does the default cohort reproduce Table 4?
#
# Load the default cohort, fit the paper's three treatment models to the referrals with recorded ethnicity (complete case) and put the estimates beside the printed ones:

# %%
data = pipeline.load_study_data(p)
print("Data:", data.origin)
ours = pd.concat([models.fit_stage(data.frame, "treatment", m) for m in study.MODELS], ignore_index=True)
comparison = replication.published_vs_ours(ours, pipeline.published_table4())
comparison = comparison[comparison["analysis"] == "complete_case"]
comparison.round({"ours_or": 3})

# %% [markdown]
# `inside_paper_ci`: our OR, rounded to two decimals, lies inside the printed 95% CI; `rounds_to_printed`: it rounds to the printed OR. The cell below counts both over the 21 ORs that compare a group with White British (7 groups x 3 models; every count in this course leaves out the White British rows, 1 by definition) and prints the fully adjusted ORs:

# %% tags=["nbval-check-output"]
compared = comparison[comparison["ethnicity"] != study.REFERENCE_GROUP]  # the 21 non-reference ORs
print(f"inside the printed CI: {int(compared['inside_paper_ci'].sum())} of {len(compared)}")
print(f"round to the printed OR: {int(compared['rounds_to_printed'].sum())} of {len(compared)}")
full = models.select(ours, model="adjusted_full", reference=False)
for group, estimate in zip(full["ethnicity"], full["estimate"]):
    print(f"  fully adjusted OR, {group:<16}{estimate:.2f}")
cis = teaching.ci_agreement(ours, pipeline.published_table4())
print(f"95% CI limits that round to the printed ones: {int(cis['same_rounded'].sum())} of {len(cis)}; "
      f"largest gap {cis['largest_gap'].max():.2f}")

# %% [markdown]
# The last line compares the **intervals** too (the same 21 rows; compare `ours_ci` and `paper_ci` above): nothing in the construction targets them, but their widths follow from the numbers in each group, which the calibration matches, so they land close to the printed ones. The weighted-MI rows of Table 4 are not in this comparison: notebook 11 compares them.
#
# ## Calibrated versus random mode
#
# `outcome_mode = "random"` draws the whole cohort at random from the **same** expected probabilities, one sample from the population the targets describe, as the simulation study (notebook 12) needs. One random cohort of the same size, beside the calibrated one and the paper (fully adjusted treatment model):

# %%
random_data = pipeline.load_study_data(p, outcome_mode="random")
random_fit = models.fit_stage(random_data.frame, "treatment", "adjusted_full").set_index("ethnicity")
printed = pipeline.published_table4().query("analysis == 'complete_case' and model == 'adjusted_full'")
pd.DataFrame({
    "paper": printed.set_index("ethnicity")["or"],
    "calibrated": full.set_index("ethnicity")["estimate"],
    "random": random_fit["estimate"],
    "random CI low": random_fit["ci_low"],
    "random CI high": random_fit["ci_high"],
}).reindex(study.GROUPS[1:]).round(2)

# %% [markdown]
# The random cohort's ORs wander around the paper's by chance; the calibrated cohort's do not. Use `calibrated` to teach and replicate, `random` to study methods over repeated samples.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Change an assumed number
#
# The paper does not print its assessment ORs (its Table 3), so the targets file assumes them. Suppose the fully adjusted assessment OR for Black African referrals were 0.50 instead. Predict: (a) the assessment OR the cohort then gives for Black African referrals; (b) whether Table 4 (treatment) is still reproduced; (c) whether the number of Black African referrals goes up, down or stays the same. Then check: change that row in a copy of `targets_table` (find it by `quantity`, `stage` and `ethnicity`), write it as a CSV under the run's output folder (`helpers.notebook.output_path(p, "exercises", name)`), load a cohort built from it (parameter `targets_path`), fit the fully adjusted assessment model as the Table 4 section fits the treatment models, repeat the Table 4 comparison, and count referrals per true group (truth file, column `true_ethnic_group`) beside the default cohort's.

# %% tags=["not-extract-counts", "solution"]
table = targets_table.copy()
row = ((table["quantity"] == "or_adjusted_full") & (table["stage"] == "assessment")
       & (table["ethnicity"] == "Black African"))
print("assumed value:", table.loc[row, "value"].item())
table.loc[row, ["value", "reference"]] = ["0.50", "exercise: changed from the assumed value"]
changed_path = helpers.notebook.output_path(p, "exercises", "cohort_targets_changed.csv")
table.to_csv(changed_path, index=False, lineterminator="\n")

changed = pipeline.load_study_data(p, targets_path=str(changed_path))
for label, d in [("default", data), ("changed", changed)]:
    fit = models.fit_stage(d.frame, "assessment", "adjusted_full").set_index("ethnicity")
    treat = pd.concat([models.fit_stage(d.frame, "treatment", m) for m in study.MODELS], ignore_index=True)
    cmp = replication.published_vs_ours(treat, pipeline.published_table4()).query(
        "analysis == 'complete_case' and ethnicity != @study.REFERENCE_GROUP")
    n_ba = int((d.frame["ethnicity"] == "Black African").sum())
    print(f"{label:>8}: assessment OR Black African {fit.loc['Black African', 'estimate']:.2f}; "
          f"Table 4 rows rounding to printed {int(cmp['rounds_to_printed'].sum())}/{len(cmp)}; "
          f"Black African referrals (recorded) {n_ba:,}")

# Side effect: referrals by TRUE group (all referrals, whether or not ethnicity was recorded)
by_group = pd.DataFrame({
    "default": data.truth["true_ethnic_group"].value_counts(),
    "changed": changed.truth["true_ethnic_group"].value_counts(),
}).reindex(study.GROUPS)
by_group["change"] = by_group["changed"] - by_group["default"]
by_group["% change"] = (100 * by_group["change"] / by_group["default"]).round(1)
others = by_group.drop(index="Black African")
print(f"total referrals: default {int(by_group['default'].sum()):,}, changed {int(by_group['changed'].sum()):,}")
print(f"Black African referrals {int(by_group.loc['Black African', 'default']):,} -> "
      f"{int(by_group.loc['Black African', 'changed']):,} ({by_group.loc['Black African', '% change']:+.1f}%); "
      f"the other seven groups: {'all smaller' if (others['change'] < 0).all() else 'not all smaller'} "
      f"({others['% change'].min():+.1f}% to {others['% change'].max():+.1f}%)")
by_group

# %% [markdown] tags=["solution"]
# **Solution.** (a) The cohort's fully adjusted assessment OR for Black African referrals becomes 0.50: it is planted directly. (b) Table 4 is still reproduced: the changed file has a new fingerprint, so the calibration is solved again (this takes several seconds, where the default cohort loads its stored solution) and still meets the printed treatment figures. (c) The number of Black African referrals goes **up**: Table 4 fixes how many were treated and (derived) how many were assessed, so if a smaller share of referrals is assessed, more referrals are needed to produce the same number assessed. A **side effect** (the last lines printed above): `n_referrals` is fixed, so the extra Black African referrals come out of the other groups, which all shrink. So the ethnic mix of *referrals* in the synthetic cohort is driven by the *assumed* assessment ORs, not observed, and notebook 14's referral rates by group inherit this assumption. It is also how a lecturer who holds the paper's Tables 2-3 can type in the real values and regenerate, with no code change.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: What a calibrated cohort cannot tell you
#
# The default cohort reproduces Table 4 almost exactly. Name two things that this agreement does **not** show.

# %% [markdown] tags=["solution"]
# **Solution.** It does not show that the paper's analysis was right, or that our code would find the same answers on the real data: the cohort was *built* to give these numbers, so agreement checks that building and fitting are consistent with each other. It says nothing about the assumed parts (assessment and referral-source effects, the age and borough mixes, the missingness effects), which could all differ in reality with Table 4 unchanged. And calibrated counts carry no sampling noise, so it cannot show how estimates vary between samples; that is what `random` mode and notebook 12 are for.

# %% [markdown]
# ## Key points
#
# - The cohort is built from `data/published/cohort_targets.csv`: printed numbers (cohort size, missing share, Table 4) and *assumed* ones (everything else), each row labelled; the numbers assessed are derived from Table 4's n and %.
# - The fully adjusted ORs are planted; the confounding that separates the three models comes from tilting each group's age and borough mix, solved to reproduce Table 4: constructed, not observed.
# - In `calibrated` mode the counts are constructed to match the table (no sampling noise); `random` mode draws them, for simulation studies.
# - A changed targets file regenerates a different, still calibrated cohort: what the paper does not print can be typed in and rebuilt, with no code change.
#
# Next, notebook 03: who in this cohort has ethnicity missing under each mechanism, the truth file that records it, and how the same parameters rebuild the same bytes.
