# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Study design
#
# Before any data: the IAPT pathway the paper follows, the three questions it asks at three stages, who counts in each, and how its variables and models are set up.
#
# **Learning objectives**
# - By the end you can draw the IAPT pathway (referral, assessment, treatment) and say what stepped care means.
# - By the end you can state the paper's three questions, each with its denominator, and explain why "treated among the assessed" and "treated among the referred" answer different questions.
# - By the end you can list the paper's eight ethnic groups, its reference group, its covariates and its three models, and say which coding choices are *assumed* here.
# - By the end you can compute an unadjusted odds ratio from two printed percentages and say why it matches the paper's.
# - By the end you can say what the paper published and what it did not, and read its Table 4.
#
# **Prerequisites**: notebook 00. You have met logistic regression and odds ratios once (a reminder is given below).
#
# **Time needed**: about 40 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
seed = 20210802

# %%
import pandas as pd

import helpers.notebook
from helpers import models, pipeline, plots, publish, replication, study

p = helpers.notebook.setup(globals())

# %% [markdown]
# ## The IAPT pathway
#
# IAPT (Improving Access to Psychological Therapies, now NHS Talking Therapies, for anxiety and depression: NHS England, "NHS Talking Therapies, for anxiety and depression", england.nhs.uk) offers talking therapy for common mental health problems such as depression and anxiety disorders. A person reaches it through a **referral**: from their GP, by referring themselves, or from another service (a community organisation, an employment or probation service, another part of the NHS). The service then offers an **assessment**, a first conversation to understand the problem and agree what would help; if therapy is agreed, **treatment** follows.
#
# IAPT works by **stepped care**: people are offered the least intrusive help that suits their needs first (NHS England, "NHS Talking Therapies, for anxiety and depression", england.nhs.uk), often *low-intensity* help such as guided self-help, stepping up to *high-intensity* therapy (for example cognitive behavioural therapy) if they need it, or starting there. The paper does not split treatment by intensity: "treated" means at least one treatment session of any kind.
#
# At every step some people leave the pathway. The paper asks whether these steps work equally well for people of every ethnic group.

# %%
fig = plots.pathway_diagram()
fig

# %% [markdown]
# *Figure: the IAPT pathway. Four referral sources (GP, Self, Community, Other) lead into "Referred", then "Assessed", then "Treated (stepped care: low or high intensity)"; grey side boxes show the exits "Not assessed" and "Assessed, not treated". Below: the paper's three questions (which source, multinomial among all referrals; assessed or not, logistic among all referrals; treated or not, logistic among the assessed), each group compared with White British.*
#
# ## Three questions, three denominators
#
# The paper asks one question at each stage. Each question has its own **denominator**, the people it is asked about:

# %%
pd.DataFrame(
    [{"stage": s.name, "question": s.label, "outcome column": s.outcome, "among": s.population,
      "model": "multinomial logistic" if s.kind == "mnlogit" else "logistic"}
     for s in study.STAGE_SPECS.values()]
)

# %% [markdown]
# The third row matters most: **treatment is studied among those assessed**, not among everyone referred. Someone who was never assessed cannot be in the treatment model at all.
#
# ### Why denominators matter: a worked example
#
# The numbers in the next cell are **made up, round and purely illustrative**; they do not come from the paper or from our cohort. Two groups, A and B, each have 1,000 referrals. Group A has 800 assessed and 560 treated; group B has 600 assessed and 420 treated.

# %%
# ILLUSTRATIVE numbers, invented for this example (not from the paper or the cohort)
example = pd.DataFrame({"referred": [1000, 1000], "assessed": [800, 600], "treated": [560, 420]},
                       index=["Group A", "Group B"])
example["% assessed (of referred)"] = 100 * example["assessed"] / example["referred"]
example["% treated (of assessed)"] = 100 * example["treated"] / example["assessed"]
example["% treated (of referred)"] = 100 * example["treated"] / example["referred"]
example

# %% [markdown]
# Among those **assessed**, both groups are treated at the same rate (70%); among those **referred**, group B is treated much less often (42% against 56%). Both are true; they answer different questions. The whole gap here arises at assessment, and choosing the denominator for each stage is what lets a study say *where* a gap arises: hence assessment among the referred and treatment among the assessed.
#
# In the analysis data (notebook 04 builds it) `assessed` is 0 or 1 for every referral, while `treated` is 1 or 0 only for the assessed and empty (NaN) for everyone else, so a treatment model cannot include people never assessed. The next cell counts each denominator in the default synthetic cohort.

# %% tags=["nbval-check-output"]
data = pipeline.load_study_data(p)
frame = data.frame
print(publish.banner(p))
print(f"referrals (denominator for source and assessment): {publish.count(len(frame), p)}")
print(f"assessed (denominator for treatment):               {publish.count(frame['assessed'].sum(), p)}")
print(f"rows with a treatment outcome (treated not NaN):    {publish.count(frame['treated'].notna().sum(), p)}")
print(f"treated:                                            {publish.count((frame['treated'] == 1).sum(), p)}")

# %% [markdown]
# The second and third lines agree: the treatment outcome exists exactly for the assessed.
#
# Only the first number is printed in the paper (85,800 referrals, abstract); the others are the synthetic cohort's. For referrals with a recorded ethnicity, the numbers treated and assessed were built from Table 4, read as the study notes read it (`docs/study/README.md`): `n` most naturally the number treated, `%` the percentage of the assessed who were treated, so a group's number assessed is about `n` / (`%` / 100). "About", because `%` is rounded to one decimal: notebook 02 shows how one whole number per group is chosen, so the cohort's count below is a few people off the sum of the unrounded quotients (computed in the cell after it). The recorded referrals' assessment rate is not assumed: the generator solves it so that the recorded referrals number 85,800 less the 18.5% missing, both printed (notebook 02, "Solving the cohort"). The referrals with missing ethnicity, and how many of them were assessed and treated, follow from an *assumed* value, the missingness mechanism (notebook 03). The next cell splits the count of the assessed that way.

# %% tags=["nbval-check-output"]
recorded_eth = frame["ethnicity"].notna()
assessed_all = frame["assessed"] == 1
print(f"assessed, ethnicity recorded (built from Table 4's n and %):  {publish.count((assessed_all & recorded_eth).sum(), p)}")
print(f"assessed, ethnicity missing (rests on assumed values):         {publish.count((assessed_all & ~recorded_eth).sum(), p)}")

# %% tags=["not-extract-counts", "nbval-check-output"]
printed = pipeline.published_table4().query("analysis == 'complete_case' and model == 'unadjusted'")
quotients = printed["n"] / (printed["pct_treated"] / 100)  # Table 4's printed n and %, no cohort involved
print(f"Table 4, sum over the eight groups of n / (% / 100): {quotients.sum():,.1f} (not whole numbers)")

# %% [markdown]
# ## Variables and how they are coded
#
# **Ethnicity** has the paper's eight groups, in the paper's order. Every comparison is with the **reference group**, White British:

# %%
print("Groups:   ", ", ".join(study.GROUPS))
print("Reference:", study.REFERENCE_GROUP)

# %% [markdown]
# The **covariates** are age, gender, year of referral and borough, all used as categories. How the paper coded age and which boroughs it used are not reported; the bands and boroughs below are *assumed*.

# %%
pd.Series({name: ", ".join(map(str, levels)) for name, levels in study.COVARIATE_LEVELS.items()},
          name="levels (first level is the reference)").to_frame()

# %% [markdown]
# The **referral source** has four categories in this project; the multinomial model compares each with referral by a GP (the *base outcome*, *assumed*):

# %%
print("Sources:", ", ".join(study.SOURCES), "| base outcome:", study.SOURCE_BASE)

# %% [markdown]
# Every choice the paper does not report is written down in one place, `study.ASSUMPTIONS`, so that it can be shown (here) and changed (in one line):

# %%
pd.Series(study.ASSUMPTIONS, name="assumed").to_frame()

# %% [markdown]
# ## The paper's three models
#
# At every stage the paper fits three models, which differ only in what else they **adjust for** besides ethnicity:

# %%
pd.DataFrame({
    "label": study.MODEL_LABELS,
    "covariates besides ethnicity": {m: ", ".join(c) or "(none)" for m, c in study.MODELS.items()},
})

# %% [markdown]
# A short reminder. A **logistic regression** models the log of the *odds* of an outcome (odds = p / (1 - p)). The coefficient of an ethnic group, exponentiated, is an **odds ratio (OR)**: the odds of the outcome in that group divided by the odds in White British. An OR below 1 means lower odds than White British. For referral source the **multinomial** model gives one ratio per source compared with GP referral, called a **relative risk ratio (RRR)**.
#
# - The **unadjusted** model compares the groups as they are.
# - The **adjusted** models compare people of the same age band, gender and year (and, in the full model, borough). If groups differ in age mix, and age also affects the outcome, unadjusted and adjusted ORs differ: the adjustment removes the part of the difference that runs through age. Notebook 02 shows how the synthetic cohort builds in exactly the amount of such *confounding* the paper's table implies.
#
# Adjusting is not automatically "more correct", and borough is the clearest case. SLaM's IAPT services covered four boroughs (which the study included is not reported; this project *assumes* all four), and a borough's service is where its residents are assessed and treated. Whether borough is a **confounder** (where people live shapes both the ethnic mix and which service they meet, for reasons outside the pathway: adjust, and compare people served by the same service) or **part of the pathway** (a group living mostly where the service assesses or treats fewer people is served less well, and that is part of the inequality: adjusting removes part of the gap) is a judgement, not something the data can settle. The paper adjusted for borough in its third model and also reported the models without it, so a reader can see how much rests on that choice. Notebooks 08 and 15 return to this.
#
# ## What the paper published, and what it did not
#
# Everything below is from the paper's abstract and Table 4, as gathered with sources in `docs/study/README.md` (beside it: `docs/study/iapt_context.md` for national IAPT figures, `docs/study/nhs_codes.md` for the NHS codes and `docs/study/weighted_mi.md` for weighted multiple imputation).
#
# | known for certain | not known (not in any source we could read) |
# |---|---|
# | South London and Maudsley IAPT services, referrals 1 January 2013 to 31 December 2016, 85,800 individuals | Tables 1-3: sample characteristics, referral-source RRRs, assessment ORs |
# | three outcomes: source of referral; assessment among the referred; treatment among the assessed | the exact referral-source categories and the multinomial base outcome |
# | multinomial (source) and logistic (assessment, treatment) regression; three models each; reference White British | how age was coded; which boroughs were included |
# | eight ethnic groups as named here | the census margin used for imputation and the number of imputations; software |
# | 18.5% missing ethnicity, weighted multiple imputation beside complete case | |
# | Table 4 in full (treatment among the assessed) | |
# | findings in words: Black African, Asian and Mixed referrals less likely to be self-referrals; Black Caribbean, Black Other and White Other referrals more likely to come through community services; almost all minority groups less likely to be assessed; all less likely to be treated once assessed (the abstract's wording: in Table 4 every **fully adjusted** OR is below 1, but Mixed's unadjusted OR is 1.04, 0.97-1.10) | |
#
# So only the **treatment** stage can be checked number by number. For referral source and assessment we know the **directions** of the effects but not their sizes; the sizes in our cohort are *assumed* (notebook 02).
#
# ## Table 4 as printed
#
# `data/published/harwood2021_table4.csv` holds Table 4 exactly as printed: per group a count `n` and a percentage `%`, and the three ORs with 95% CIs, complete case and weighted multiple imputation. The labels leave the two columns open to reading; the study notes (`docs/study/README.md`) say `n` is *most naturally read as* the number treated and `%` as the percentage of the assessed who were treated, because the printed unadjusted ORs agree with the percentages (Exercise 1 checks this). This project adopts that reading (hence the column name `pct_treated`).

# %% tags=["not-extract-counts"]
table4 = pipeline.published_table4()
table4.drop(columns="source").astype({"n": "Int64"}).head(8)

# %% [markdown]
# The same table, wide, as the paper lays it out (OR and 95% CI per model):

# %%
shown = table4.assign(display=replication.format_estimates(table4.rename(columns={"or": "estimate"})))
wide = shown.pivot_table(index=["analysis", "ethnicity"], columns="model", values="display", aggfunc="first",
                         sort=False)[list(study.MODELS)]
wide.rename(columns=study.MODEL_LABELS)

# %% tags=["not-extract-counts", "nbval-check-output"]
cc = models.select(table4, analysis="complete_case", model="unadjusted")
print(f"Table 4 rows: {len(table4)} ({table4['analysis'].nunique()} analyses x {table4['model'].nunique()} models "
      f"x {table4['ethnicity'].nunique()} groups)")
print(f"Treated (complete case, sum of printed n): {int(cc['n'].sum()):,}")

# %% [markdown]
# ### Why does the cohort have more people treated than Table 4?
#
# The cohort count near the top of this notebook is every treated referral; Table 4's `n` column adds up to fewer, because its complete-case rows count only people whose ethnicity was **recorded** (a person without a recorded group fits no row). How many treated referrals lack ethnicity is not printed anywhere: in the synthetic cohort it follows from the *assumed* missingness mechanism (`missing_mechanism`, notebook 03), under which people who reach treatment are less likely to lack a recorded ethnicity than people never assessed. The next cell reconciles the two numbers:

# %% tags=["nbval-check-output"]
treated = frame["treated"] == 1
recorded = frame["ethnicity"].notna()
n_treated, n_treated_recorded = int(treated.sum()), int((treated & recorded).sum())
print(f"treated, all referrals in the cohort:          {publish.count(n_treated, p)}")
print(f"  with ethnicity recorded (complete case):     {publish.count(n_treated_recorded, p)}")
print(f"  with ethnicity missing:                      {publish.count(n_treated - n_treated_recorded, p)}"
      f"  ({publish.percent(n_treated - n_treated_recorded, n_treated, p)} of the treated)")
print(f"Table 4, sum of printed n (complete case):     {int(cc['n'].sum()):,}")
print(f"ethnicity missing among all referrals:         {publish.percent((~recorded).sum(), len(frame), p)}")

# %% [markdown] tags=["exercise"]
# ### Exercise 1: An odds ratio from two percentages
#
# Table 4 prints that 66.8% of assessed Black Caribbean referrals were treated, against 72.4% of assessed White British referrals, and an unadjusted OR of 0.77. (a) Compute the OR from the two percentages. (b) Explain why this hand calculation gives the same number as the paper's unadjusted logistic regression. (c) Would it also give the adjusted OR? Why not?

# %% tags=["solution"]
p_bc, p_wb = 0.668, 0.724
odds_bc, odds_wb = p_bc / (1 - p_bc), p_wb / (1 - p_wb)
print(f"odds Black Caribbean {odds_bc:.3f}, odds White British {odds_wb:.3f}, OR {odds_bc / odds_wb:.2f}")

# the same for every group, from the printed percentages, beside the printed unadjusted OR
ref_pct = cc.set_index("ethnicity").loc[study.REFERENCE_GROUP, "pct_treated"] / 100
check = cc.set_index("ethnicity")[["pct_treated", "or"]].rename(columns={"or": "printed OR"})
q = check["pct_treated"] / 100
check["OR from %"] = ((q / (1 - q)) / (ref_pct / (1 - ref_pct))).round(2)
check

# %% [markdown] tags=["solution"]
# **Solution.** (a) The odds are 0.668 / 0.332 = 2.01 and 0.724 / 0.276 = 2.62, and their ratio is 0.77, the printed unadjusted OR. (b) The unadjusted model has only ethnicity in it, one parameter per group: it is *saturated* and reproduces each group's observed proportion exactly, so its OR is the ratio of the two groups' observed odds (the table above repeats this for every group and matches the printed ORs to two decimals). The agreement shows that the printed `%` and the OR share a denominator; that those people are the assessed comes from the paper's stated design (`docs/study/README.md`), not from the arithmetic. Note the Mixed row: 73.1% against 72.4%, unadjusted OR 1.04 (0.97-1.10), so the abstract's "all minority groups were less likely to be treated" holds in Table 4 only after full adjustment (Mixed 0.93, 0.88-1.00). (c) No: adjusted ORs combine comparisons within age band, gender, year (and borough), so they depend on how each group is spread over those strata, which Table 4 does not print.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Critique the reference group
#
# The paper compares every group with White British. Give two reasons for this choice and two concerns about it. Would choosing another reference group change the fitted model's predicted treatment rates for any group?

# %% [markdown] tags=["solution"]
# **Solution.** *For*: White British is the largest group, so comparisons with it are the most precise; results can be set beside other studies that use the same reference; "are minority groups served as well as the majority?" is a natural policy question. *Concerns*: it can frame the majority as the norm, and it hides differences between minority groups (the table does not compare, say, Black African with Asian referrals); "White British" is itself mixed across boroughs and ages, so a shift in it moves all seven ORs at once. Alternatives: compare each group with the overall average (deviation coding), or report standardised predicted rates for every group, as notebook 09 does. Changing the reference does **not** change the fitted model: every group's predicted rate stays the same and only the printed contrasts change, so the choice is about presentation and framing, not the data.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Predict, then check: treatment among the referred
#
# Suppose the paper had measured treatment among **everyone referred** instead of among the assessed. Predict: compared with White British, would Black African referrals look further behind, less far behind, or the same? Then check on the synthetic cohort (its assessment-stage effects are *assumed*, so the sizes are illustrative; their direction follows the abstract). Write the pandas yourself: on the referrals with a recorded ethnicity, compute by group the three proportions of the worked example (assessed of referred, treated of assessed, treated of referred; mind which referrals have `treated` empty). Divide each group's proportions by White British's, and do the same with the odds p / (1 - p). Do the two steps' ratios multiply to the whole pathway's? Do the odds ratios?

# %% tags=["solution"]
known = frame[frame["ethnicity"].notna()]
group = known["ethnicity"]
rates = pd.DataFrame({
    "assessed (of referred)": known["assessed"].groupby(group, observed=True).mean(),
    "treated (of assessed)": known["treated"].groupby(group, observed=True).mean(),
    "treated (of referred)": known["treated"].fillna(0).groupby(group, observed=True).mean(),
})
ratio_to_reference = rates / rates.loc[study.REFERENCE_GROUP]
odds = rates / (1 - rates)
odds_ratio = odds / odds.loc[study.REFERENCE_GROUP]
ba = "Black African"
print(f"{ba} vs White British, ratio of %: treated of assessed {ratio_to_reference.loc[ba, 'treated (of assessed)']:.2f}, "
      f"treated of referred {ratio_to_reference.loc[ba, 'treated (of referred)']:.2f} "
      f"(= {ratio_to_reference.loc[ba, 'assessed (of referred)']:.2f} x {ratio_to_reference.loc[ba, 'treated (of assessed)']:.2f})")
print(f"{ba} vs White British, odds ratio: treated of assessed {odds_ratio.loc[ba, 'treated (of assessed)']:.2f}, "
      f"treated of referred {odds_ratio.loc[ba, 'treated (of referred)']:.2f}")
further = ratio_to_reference.loc[ba, "treated (of referred)"] < ratio_to_reference.loc[ba, "treated (of assessed)"]
print(f"{ba} referrals look {'further behind' if further else 'no further behind'} among the referred")
pd.concat({"ratio of % to White British": ratio_to_reference, "odds ratio": odds_ratio}, axis=1).round(2)

# %% [markdown] tags=["solution"]
# **Solution.** Further behind (the first lines printed above, with the default parameters): a Black African referral is less likely to be assessed and, once assessed, less likely to be treated, and over the whole pathway the two gaps compound. On the percentage scale the two steps **multiply** exactly: the ratio for "treated (of referred)" equals the ratio for "assessed" times the ratio for "treated (of assessed)". Odds ratios do not (odds are not proportions), so the odds ratio changes by a different amount than the percentage ratio (compare the printed lines). A study reporting only "treated among referred" could not say at which step a gap arises; one reporting only "treated among assessed" would miss the gap at assessment. The paper's staged design separates the two.

# %% [markdown]
# ## Key points
#
# - The IAPT pathway runs referral, assessment, treatment (stepped care); people can leave at every step.
# - The paper asks three questions with three denominators: referral source and assessment among all referrals, treatment **among the assessed**; the denominator decides which question a number answers.
# - Eight ethnic groups, White British as reference; covariates age, gender, year and borough as categories; three models (unadjusted; age, gender, year; plus borough). Age bands, boroughs, referral categories and the GP base outcome are *assumed* here.
# - An unadjusted OR is the ratio of two groups' observed odds; adjusted ORs need the covariate mix, which the paper does not print.
# - Only the treatment stage (Table 4) is published in numbers; the other stages are known only in direction.
