# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 15 · Interpretation: what the pathway results mean together
#
# After the three stage-by-stage analyses (06-09) and the missing-data work (10-13), this notebook puts the pathway
# back together: where the gaps open, how big they are in people, what might explain them, and what could be done.
#
# **Learning objectives**
# - By the end you can turn stage-wise results into people per 1,000 referred, and split the treatment shortfall into those not assessed and those assessed but not treated.
# - By the end you can describe mechanisms that are often put forward for ethnic inequalities in talking-therapy pathways, and say why this synthetic replication cannot test them.
# - By the end you can write about ethnicity as a social category, using the paper's group names and the language of service provision.
# - By the end you can name the main limitations of routine data and of a replication calibrated by construction, and suggest what services, data teams, policy makers and researchers could do.
#
# **Prerequisites**: `08_assessment`, `09_treatment`, `14_access_and_population`; odds ratios and proportions.
#
# **Time needed**: about 40 minutes (reading and discussion).

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
suppress_threshold = 7
rounding_base = 5

# %%
import pandas as pd

import helpers.notebook
from helpers import plots, reporting, study

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame

# %% [markdown]
# ## 1. The pathway in one picture
#
# The paper's abstract reports, each compared with White British: Black African, Asian and Mixed groups were less
# likely to self-refer; Black Caribbean, Black Other and White Other groups were more likely to be referred through
# community services; almost all minority groups were less likely to be assessed after referral; and among those
# assessed, all minority groups were less likely to be treated (Table 4 prints the treatment odds ratios; for
# Mixed this holds only once adjusted: in the complete-case column only fully adjusted, 0.93; in the weighted-MI column in both adjusted models, 0.98 and 0.93).
#
# A service plans in people, so we ask: **per 1,000 referrals of each group, how many were assessed, how many
# treated, and how many fewer than at White British rates at each step?** Treated per referred is (assessed per
# referred) × (treated per assessed): the stage **probabilities** multiply (odds ratios do not, notebook 09), so
# the shortfall splits exactly into two parts:
#
# - **lost at assessment**: referrals not assessed who would have been treated at the White British rate after assessment;
# - **lost at treatment**: referrals assessed but not treated, beyond the White British rate.
#
# The split is exact for the order used here (assessment first); the other order gives the same total but another
# split (below). `reporting.pathway_gaps` computes both parts from the pathway counts after disclosure control (counts 1-7
# suppressed, others rounded to 5, as for every publishable table here); rates come from the disclosed counts.
#
# > Caution: the paper printed only the treatment stage (Table 4). In the synthetic cohort the **assessment**
# > effects are *assumed* (directions from the abstract, sizes chosen by the project), so the split between "lost at
# > assessment" and "lost at treatment" below is partly our assumption, not the paper's result.

# %%
gaps = reporting.pathway_gaps(frame, disclose=True, threshold=p["suppress_threshold"], base=p["rounding_base"])
# the saved table carries a `data` column saying where its numbers come from (synthetic: not findings)
reporting.label_table(gaps, data).to_csv(helpers.notebook.output_path(p, "tables", "15_pathway_gaps.csv"))
gaps.round(1)

# %% tags=["nbval-check-output"]
print("Per 1,000 referred (observed, disclosure-controlled counts): treated; shortfall vs White British "
      "= lost at assessment + lost at treatment")
for group, row in gaps.iterrows():
    print(f"  {group:<16} treated {row.treated_per_1000:4.0f}   shortfall {row.treated_shortfall:4.0f}"
          f" = {row.lost_at_assessment:4.0f} + {row.lost_at_treatment:4.0f}")

# %% [markdown]
# **The split depends on the order.** Switching treatment first (`order="treatment_first"`) values those lost at
# assessment at the group's own treatment rate and those lost at treatment at the White British assessment rate.
# The total is the same; the parts are not:

# %%
other_order = reporting.pathway_gaps(frame, disclose=True, threshold=p["suppress_threshold"],
                                     base=p["rounding_base"], order="treatment_first")
print("Shortfall per 1,000 referred = lost at assessment + lost at treatment, in each order")
for group in study.GROUPS[1:]:
    a, b = gaps.loc[group], other_order.loc[group]
    print(f"  {group:<16} assessment first {a.lost_at_assessment:4.0f} + {a.lost_at_treatment:4.0f}   "
          f"treatment first {b.lost_at_assessment:4.0f} + {b.lost_at_treatment:4.0f}   "
          f"(total {a.treated_shortfall:4.0f})")

# %% [markdown]
# Neither order is the right one: splitting a product into stages is a convention. When the two orders disagree
# about which stage loses more people, say so (or report the average) rather than pick the better story.

# %%
fig = plots.pathway_gap_plot(gaps)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "15_pathway_gaps.png"))
fig

# %% [markdown]
# *Figure: stacked bars, one per group other than White British: the number fewer treated per 1,000 referred than
# at White British rates, split into not assessed (light blue; those who would have been treated at White British
# rates) and assessed but not treated (orange), total at the end of each bar. Bars left of zero mean more treated
# than at White British rates.*
#
# **Reading it.** The total length is the gap a referred person faces across the whole pathway; the colours say
# where it opens. The table's last column (`excess_untreated`) turns the rate back into people in this data set:
# how many more of each group's referrals would have reached treatment at White British rates.
#
# These are **crude** (observed) rates. Groups differ in age, gender, year and borough mix; the adjusted version
# standardises each stage to the same covariate mix (predicted probabilities from the fully adjusted models):

# %%
adjusted = reporting.pathway_gaps(frame, method="predicted", model="adjusted_full")
pd.concat({"observed": gaps[["treated_per_1000", "treated_shortfall"]],
           "adjusted (standardised)": adjusted[["treated_per_1000", "treated_shortfall"]]}, axis=1).round(0)

# %% [markdown]
# ## 2. What within-pathway comparisons cannot see
#
# All of the above starts at referral. Notebook 14 showed how to add the step before it: referrals per resident.
# A group can be referred less often *and* lose more people at each later step; a shortfall per 1,000 referred
# then understates the shortfall per 1,000 people in need. Neither the paper's odds ratios nor this notebook's
# rates measure need itself (the prevalence of common mental disorders by group), which routine IAPT data do not
# contain.
#
# ## 3. Possible mechanisms, for discussion
#
# The paper describes *where* differences occur, not *why*. The list below is this course's summary of
# explanations often put forward for ethnic inequalities in talking therapies, **not a review of the evidence**:
# no item cites a study, and only two rest on something this project holds (the abstract reports the
# community-services routes and the 18.5% missing ethnicity). Treat each as a **hypothesis to check against the
# literature**; our cohort, built to reproduce printed figures, contains no mechanism and can test none.
#
# - **Trust and past experience of services.** Earlier experiences of mental health care, including coercive care,
#   and of discrimination may shape whether people take up an offered assessment or treatment.
# - **Cultural fit and appropriateness of therapies.** Therapies, materials and ways of talking about distress
#   designed around majority populations may fit some people less well; availability of therapists who share a
#   language or background, and of interpreters, varies.
# - **Routes in through community services.** The paper found some groups more often referred through community
#   services; referrals by different routes may arrive with different expectations, information or urgency, and
#   may be handled differently.
# - **Stigma** about mental health problems, in communities and in services, may affect both referral and staying
#   in contact after referral.
# - **Recording of ethnicity.** Missing or inaccurate recording (18.5% missing in the paper) can itself create or
#   hide differences, especially if recording depends on how far someone travels along the pathway.
# - **Service and borough differences.** Boroughs differ in population, services and waiting times; a difference
#   between groups can partly be a difference between services. (The paper adjusted for borough in its third model;
#   its reasons are not in any source this project holds. Notebook 08, section 4, discusses what adjusting means.)
#
# Where to check them: the NHS Race and Health Observatory's *Ethnic Inequalities in Healthcare: A Rapid Evidence
# Review* (2022), which covers mental health services among other areas; the Observatory's *Ethnic Inequalities in
# Improving Access to Psychological Therapies (IAPT)* (2023); and the Discussion section of Harwood et al. (2021).
# Find out which items these sources support, for which groups and stage, before using any as an explanation.
#
# ## 4. Ethnicity as a social category: language
#
# Ethnic groups are social categories, recorded by services in ways that change over time. Differences between
# groups tell us about how services reach and serve people, shaped by wider social conditions, not about traits of
# the people in the groups.
#
# | do | don't |
# |---|---|
# | "Black African referrals were less likely to be assessed" | "Black Africans avoid assessment" |
# | "inequalities in how the service reached Asian residents" | "Asian people don't seek help" |
# | use the paper's group names: White British, Black Caribbean, Black African, Black Other, Asian, Mixed, White Other, Other | invent or merge labels ("BAME", "ethnics", "non-whites") |
# | say what a category contains (e.g. Chinese grouped with Other is *assumed* here) | treat "Other" or "Mixed" as if they were one community |
# | name the comparison: "compared with White British referrals" | imply White British is the "normal" group rather than the reference level |
# | describe missing ethnicity as a recording gap of the service ("not stated", code Z, records people asked who declined: also a fact about how and when services ask) | blame people for "refusing" to state ethnicity |
#
# ## 5. Limitations
#
# **Of routine data (the paper's and any real extract's).** Data collected to run a service, not for research:
# ethnicity missing or misrecorded; no measure of need or severity at referral in the paper's models; referral
# source categories grouped by analysts; outcomes defined by recorded sessions; one trust, four boroughs,
# 2013-2016; unmeasured confounding (deprivation, language, clinical presentation).
#
# **Of this synthetic replication.** The treatment stage was built to reproduce the printed Table 4, so matching it
# shows the pipeline works, not that the paper is right (notebook 16). Referral-source and assessment effects, the
# borough and ethnic mix, the age bands and the missing-data mechanism are *assumed*. The next cell counts the
# calibration targets by stage, printed or assumed.

# %%
targets = pd.read_csv(study.PUBLISHED_DIR / "cohort_targets.csv")
targets.groupby(["stage", "source"]).size().unstack(fill_value=0)

# %% [markdown]
# The treatment row has assumed targets too, although its ethnicity targets are printed (notebook 09): every **ethnicity**
# target at the treatment stage (numbers treated, percentages, the three models' ORs) is printed in Table 4; the
# assumed ones are the **covariate effects** (age band, gender, year, borough), which the paper does not print:

# %%
treatment_assumed = targets[(targets["stage"] == "treatment") & (targets["source"] == "assumed")]
print("assumed treatment-stage targets, by quantity:", treatment_assumed["quantity"].value_counts().to_dict())
print("their levels:", ", ".join(treatment_assumed["level"]))

# %% [markdown]
# ## 6. What could be done
#
# - **Services**: monitor the pathway by ethnic group routinely (assessed per referred, treated per assessed, and
#   per 1,000 residents); ask people who did not take up an assessment or treatment why; work with community
#   organisations on routes in; review the fit of materials, language support and therapist diversity.
# - **Data teams**: improve the recording of ethnicity (the paper's 18.5% missing), report missingness by stage and
#   service, publish disclosure-controlled tables by group, keep code lists and groupings versioned (as
#   `helpers.codes` does here).
# - **Policy makers and commissioners**: set and check access targets by group using appropriate denominators
#   (adults, current population estimates, GP-registered lists); fund work that measures need.
# - **Researchers**: report all stages and both complete-case and imputation analyses, with the imputation margin
#   stated; publish code; link to measures of need and outcomes; study mechanisms with designs that can test them
#   (qualitative work with service users, evaluations of service changes).

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Interpret the gap
# Using the table printed under section 1, describe the Black Caribbean shortfall in two sentences for a
# commissioner: how many fewer per 1,000 referred were treated than at White British rates, and at which step most
# of them were lost (check whether the answer holds in both decomposition orders). Then say which part of your answer rests on an *assumed* input of the synthetic cohort.

# %% tags=["solution"]
bc, bc_other = gaps.loc["Black Caribbean"], other_order.loc["Black Caribbean"]
def step(row):
    return "after assessment" if row.lost_at_treatment > row.lost_at_assessment else "before assessment"
same = step(bc) == step(bc_other)
print(f"Per 1,000 Black Caribbean referrals, about {bc.treated_shortfall:.0f} fewer people reached treatment than "
      f"would have at White British rates: {bc.lost_at_assessment:.0f} were not assessed and "
      f"{bc.lost_at_treatment:.0f} were assessed but not treated, so more were lost {step(bc)}.")
print(f"Splitting in the other order gives {bc_other.lost_at_assessment:.0f} + {bc_other.lost_at_treatment:.0f}: "
      + ("the same step loses more." if same else "the step that loses more changes, so say that the split is uncertain."))

# %% [markdown] tags=["solution"]
# **Solution.** The cell above writes the two sentences with this run's numbers. What rests on an assumption: the
# treatment-among-assessed part is calibrated to the paper's printed Table 4, but the assessment part rests on
# *assumed* assessment effects (the paper's Table 3 is not available to us), so the split, and the "at which step"
# sentence, cannot be attributed to the paper; and the split itself depends on the decomposition order.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Critique the wording
# Rewrite these three sentences from a draft report so that they describe inequalities in service provision and use
# the paper's group names: (a) "BAME clients drop out before therapy." (b) "Asians don't self-refer because of
# stigma." (c) "White Other patients are harder to engage."

# %% [markdown] tags=["solution"]
# **Solution.** (a) "Compared with White British referrals, assessed Black Caribbean, Black African, Black Other,
# Asian, White Other and Other referrals were less likely to receive a treatment session (Table 4 of the paper:
# unadjusted ORs 0.70-0.79)." Mixed needs its own sentence: by observed share, assessed Mixed referrals were treated
# slightly *more* often than White British ones (73.1% vs 72.4%; unadjusted OR 1.04, 0.97-1.10), and in the complete-case
# analysis the OR falls below 1 only in the fully adjusted model (0.93, 0.88-1.00; weighted MI: 0.98 and 0.93 in the two adjusted models); so "every minority group" is not what Table 4 shows.
# Name the groups; "BAME" merges groups with very different results. (b) "Asian referrals were less likely than
# White British referrals to be self-referrals; stigma is one mechanism that has been proposed, which these data
# cannot test." (c) "The service engaged White Other referrals less often: a smaller share of those assessed
# received treatment." Each rewrite names the comparison, keeps the paper's group labels, and locates the difference
# in the service.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Change the adjustment, predict first
# The adjusted gaps above use the fully adjusted models (`adjusted_full`). Predict whether the shortfalls will be
# larger or smaller with the age-gender-year models (no borough), and for which groups (notebook 02's borough mixes
# and Table 4's columns are your evidence). Then compute the adjusted gaps again yourself with that model instead
# (the cell that computed `adjusted` shows how) and put the two `treated_shortfall` columns side by side. What would
# a large difference tell a **commissioner** deciding where to act?

# %% tags=["solution"]
no_borough = reporting.pathway_gaps(frame, method="predicted", model="adjusted_age_gender_year")
both = pd.concat({"adjusted_full": adjusted["treated_shortfall"],
                  "adjusted_age_gender_year": no_borough["treated_shortfall"]}, axis=1)
for group in study.GROUPS[1:]:
    with_b, without_b = both.loc[group]
    print(f"  {group:<16} shortfall per 1,000 without borough {without_b:4.0f}, with borough {with_b:4.0f}: "
          f"{'larger' if with_b > without_b else 'smaller' if with_b < without_b else 'the same'} once borough is held equal")
both.round(0)

# %% [markdown] tags=["solution"]
# **Solution.** If groups are unevenly spread over boroughs that differ in how often referrals are assessed and
# treated, leaving borough out moves the shortfalls: a group referred mostly where services assess and treat more
# looks better until borough is held equal (its shortfall *grows* with borough in the model), and the reverse.
#
# The lines printed above show both kinds for this run, and Table 4 is the evidence for the treatment part.
# Adding borough moves the printed complete-case ORs further from 1 for Black Caribbean (0.76 to 0.72), Black
# African (0.73 to 0.67) and Mixed (1.00 to 0.93), and towards 1 for Black Other (0.63 to 0.65) and Asian (0.78 to
# 0.81); White Other (0.81 to 0.80) and Other (0.76 to 0.77) barely move. The cohort reproduces those columns
# (notebook 02), and the shortfalls, which add the assessment stage, mostly follow. Mixed is the clearest case: at
# the age-gender-year OR of 1.00 it has almost no treatment gap; the gap it shows with borough held equal exists
# only within boroughs. Two cautions: *which* boroughs carry the difference is assumed here (notebook 02's mixes are
# constructed), and the assessment part of each shortfall rests on assumed effects. For a commissioner, a large
# difference says part of the gap lies *between services* (where a group's referrals go), a target for
# service-level action, and the rest *within* them.

# %% [markdown]
# ## Key points
# - Stage **probabilities** multiply along the pathway (odds ratios do not): read the gaps as people per 1,000
#   referred, lost at assessment or at treatment (the split depends on the order of the stages; the total does not).
# - In this synthetic cohort the treatment stage is calibrated to the printed Table 4, but assessment effects are
#   *assumed*, so where the gap opens is partly an assumption here.
# - Trust, cultural fit, routes in, stigma, recording and service differences are **proposed** mechanisms; a
#   cohort calibrated by construction contains none of them and cannot test them.
# - Ethnicity is a social category: describe differences as inequalities in how services reach and serve people,
#   with the paper's group names.
# - Better recording, routine monitoring by stage with suitable denominators, and research on mechanisms are the
#   practical next steps.
