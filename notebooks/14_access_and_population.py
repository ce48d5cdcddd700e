# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 14 · Access and population: referrals per 1,000 residents
#
# Beyond the paper: before the pathway starts, how many people of each group are referred at all, relative to the
# people living in the boroughs? The paper's comparisons all happen *inside* the pathway; this notebook steps outside it.
#
# **Learning objectives**
# - By the end you can compute referrals per 1,000 residents by ethnic group from referral counts and census counts, and a rate ratio vs White British with an approximate 95% CI.
# - By the end you can explain why a group can be under-referred *and* less often treated once referred, and why the paper's within-pathway odds ratios cannot see the first.
# - By the end you can list the weaknesses of the census denominators used here (all ages, 2011, residents not registered patients, service borough taken as borough of residence) and say which way each could push a rate.
# - By the end you can say why these rates, computed on the synthetic cohort, illustrate a method and are **not** findings about South London.
#
# **Prerequisites**: `05_describing_the_cohort` (the pathway counts), `11_weighted_imputation` (imputed ethnicity); rates and ratios.
#
# **Time needed**: about 30 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
suppress_threshold = 7
rounding_base = 5

# %%
import pandas as pd

import helpers.notebook
from helpers import imputation, pipeline, plots, population, replication, reporting, study
from helpers.census import census_population

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame

# %% [markdown]
# > **Read this first: these rates are an illustration, not a finding.** The numerators below come from the
# > *synthetic* cohort, whose mix of boroughs and of ethnic groups within each borough is *assumed* (the paper's
# > Table 1 is not available to us). The denominators are real 2011 Census counts, but of **all usual residents of
# > every age in 2011**, not of adults in 2013-2016. A rate in this notebook therefore shows **how to compute and
# > read** referrals per 1,000 residents; it says nothing about how often people of any group in South London were
# > actually referred. With a real extract (`data_path`) the same cells give real rates, with the same caveats
# > about the denominators.
#
# ## 1. Why look outside the pathway?
#
# The paper asks three questions, each *among people already in the service*: where did referrals come from, were
# referred people assessed, were assessed people treated. An odds ratio for treatment compares Black Caribbean
# and White British referrals **that were assessed**. Suppose a group is referred half as often as its share of
# the population would suggest, and then, once referred, is treated less often too. The within-pathway odds
# ratios see only the second gap. To see the first we need a denominator from outside the service: the people
# living in the area. That is what a **rate per 1,000 residents** adds.

# %% [markdown]
# ## 2. The denominators: 2011 Census, all four boroughs
#
# The project's census file (`data/published/census2011_ethnicity_boroughs.csv`, each row with its source) holds
# the 2011 Census table QS201EW (ethnic group, 18 categories, **all usual residents**, via Nomis) in full counts for
# all four boroughs: **Lambeth**, **Southwark**, **Lewisham** and **Croydon**.
# Adult-only (18+) counts by ethnic group are **not available** to the project, so children are in every
# denominator although IAPT served adults. `census.census_population` maps the 18 census categories to the
# paper's eight groups with the same code list as the referrals (`helpers.codes`).

# %%
census = census_population(study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv")
print(census.attrs["note"])
for borough, source in census.attrs["source"].items():
    print(f"  {borough}: {source}")
census

# %% [markdown]
# Census counts are public aggregate statistics, so they need no disclosure control. Asking for a borough the file
# cannot serve fails with a message that says why, rather than filling the gap with a guess:

# %%
for borough in ["Bromley"]:
    try:
        census_population(boroughs=["Southwark", borough])
    except ValueError as err:
        print(err, "\n")

# %% [markdown]
# ## 3. Referrals per 1,000 residents
#
# The numerator is the number of referrals **with recorded ethnicity** from each borough over the whole study
# period (2013-2016, four years; `period_years=4` would give an annual rate). Referral counts are counts of
# people from NHS records, so, like every publishable count table in this project, they pass through
# `helpers.disclosure.disclose` (counts 1-7 suppressed, others rounded to 5) and **every rate and ratio is computed from
# the disclosed counts**: a rate next to an exact resident count would otherwise give the exact referral count
# back. The rate ratio compares each group with White British in the same borough; its approximate 95% CI
# assumes Poisson counts and fixed census denominators (SE of the log ratio = √(1/a + 1/b)).

# %%
rates = population.referral_rates(frame, census, disclose=True,
                                  threshold=p["suppress_threshold"], base=p["rounding_base"])
# the saved table carries a `data` column saying where its numbers come from (synthetic: not findings)
reporting.label_table(rates, data).to_csv(helpers.notebook.output_path(p, "tables", "14_referral_rates.csv"),
                                          index=False)
shown = rates.assign(rate_ratio_ci=replication.format_estimates(
    rates.rename(columns={"rate_ratio": "estimate", "rr_ci_low": "ci_low", "rr_ci_high": "ci_high"})))
shown[["borough", "ethnicity", "referrals", "residents", "rate", "rate_ratio_ci"]].round(1)

# %% tags=["nbval-check-output"]
pooled = rates[rates["borough"] == population.POOLED_LABEL]
print(f"{population.POOLED_LABEL}: referrals (recorded ethnicity) per 1,000 residents, 2013-2016")
for row in pooled.itertuples():
    ci = "" if pd.isna(row.rr_ci_low) else f" ({row.rr_ci_low:.2f}-{row.rr_ci_high:.2f})"
    print(f"  {row.ethnicity:<16} rate {row.rate:6.1f}   rate ratio {row.rate_ratio:.2f}{ci}")

# %%
fig = plots.referral_rate_plot(rates)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "14_referral_rates.png"))
fig

# %% [markdown]
# *Figure: two panels sharing the eight ethnic groups on the vertical axis. Left: horizontal bars of referrals per
# 1,000 residents for each of the four boroughs and all four together. Right: the rate ratio of each group vs White
# British on a log scale with 95% confidence intervals, a dashed line at 1 and White British marked "reference".
# Synthetic numerators and 2011 all-age census denominators: an illustration of the method only.*
#
# **Reading it.** A rate ratio below 1 means fewer referrals per resident than White British residents of the same
# borough; above 1, more. Compare the borough rows of the table above: with the default parameters
# the boroughs disagree sharply for several groups. In a synthetic cohort such differences come from the
# *assumed* ethnic mix of each borough's referrals, which was not built to match its census population, which is
# exactly why these numbers must not be read as facts about any of the boroughs. In a real extract, a difference between
# boroughs would be a question for the services (routes in, outreach, recording), not a property of the groups.

# %% [markdown]
# ## 4. Missing ethnicity in the numerator
#
# Referrals with missing ethnicity (18.5% in the paper) are left out of every numerator above, so every rate is
# too low; if recording differed by group, the rate *ratios* are off too. One remedy is to count referrals by their
# **imputed** ethnicity: each of the M weighted-MI data sets (notebook 11) gives counts, the rates are averaged and
# the log rate ratios pooled with Rubin's rules, so the CI (`rr_ci_low` to `rr_ci_high` in the weighted-MI columns
# below) includes the uncertainty about who the unrecorded referrals were.
#
# Which margin the imputation is calibrated to matters here more than anywhere. On this synthetic cohort the
# `margin` parameter `"auto"` means the **true** referred mix, so the completed counts are the true counts per group.
# On a real extract `"auto"` means the 2011 Census mix of residents, the same population as the denominators: the
# completed referral mix is then forced towards the residents' mix, and every group whose margin can be met gets a
# rate ratio near 1 by construction. On real data this remedy is only as good as a margin for the *referred*
# population, which nobody has (notebook 11, "Which margin?").

# %%
margin_shares = pipeline.population_margin(data)  # not `margin`: that name is the run parameter
imputed = imputation.impute_ethnicity(frame, margin_shares, p["n_imputations"], pipeline.rng_for(p, "imputation"))
rates_mi = population.referral_rates(frame, census, ethnicity=imputed.completed, disclose=True,
                                     threshold=p["suppress_threshold"], base=p["rounding_base"])
both = pd.concat({"recorded ethnicity": rates.set_index(["borough", "ethnicity"])[["rate", "rate_ratio"]],
                  "weighted MI": rates_mi.set_index(["borough", "ethnicity"])[["rate", "rate_ratio", "rr_ci_low", "rr_ci_high"]]},
                 axis=1)
both.loc[population.POOLED_LABEL].round(2)

# %% [markdown]
# Every rate rises once the unrecorded referrals are counted somewhere. How much each *ratio* moves depends on
# whether ethnicity was missing more often for some groups (the default cohort's missingness, `mnar`, is built so
# that it was, an *assumed* mechanism). Imputation cannot fix the denominators, which is the next problem.
#
# ## 5. The denominator problem
#
# A rate is only as good as its denominator. Here each denominator departs from the population at risk:
#
# | issue | what the data give | what a rate needs | likely effect |
# |---|---|---|---|
# | age | all ages | adults (18+) | groups with more children get rates that are too low |
# | time | 2011 | 2013-2016 | growing groups get rates that are too high |
# | place | residents of the borough | people the service covers (GP-registered) | people registered in one borough and living in another are misplaced |
# | need | everyone | people with a common mental disorder | a rate per resident is not a rate per person in need: prevalence may differ by group |
# | categories | self-reported census ethnicity | NHS-recorded ethnicity | different recording can shift people between groups |
#
# None of these can be fixed from the files the project holds: adult counts, mid-year estimates and GP-registered
# list sizes by ethnic group would all be needed, and are not used here. A rate ratio is more robust than a rate
# only when a problem affects the group and White British alike.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Interpret a rate ratio
# Take the pooled (all four boroughs) rate ratio for Black African referrals printed above. Write two sentences
# for a service manager: one saying what the number means, and one saying what it cannot tell them. Use the
# language of service provision, not of group traits.

# %% tags=["solution"]
row = rates[(rates["borough"] == population.POOLED_LABEL) & (rates["ethnicity"] == "Black African")].iloc[0]
direction = "less" if row.rate_ratio < 1 else "more"
print(f"Means: over 2013-2016, the four boroughs' services received {row.rate_ratio:.2f} referrals with "
      f"recorded Black African ethnicity per Black African resident for every one referral per White British "
      f"resident (95% CI {row.rr_ci_low:.2f}-{row.rr_ci_high:.2f}): referrals reached Black African residents "
      f"{direction} often than White British residents.")

# %% [markdown] tags=["solution"]
# **Solution.** The cell above writes the first sentence with this run's numbers. The second: "It cannot tell you
# why: whether the difference reflects need, routes into the service or recording (the numerator leaves out
# referrals with unrecorded ethnicity; the denominator includes children and is from 2011); and because this cohort
# is synthetic, with an *assumed* borough and ethnic mix, it says nothing about the real service." Avoid "Black
# Africans refer themselves less": the rate describes how the service reaches people, not what people choose.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Critique the denominator
# A colleague proposes dividing by the whole 2011 population of each group, as here, and reporting the result as
# "the referral rate of adults in need". Name two problems with that label and the direction in which each would
# push the rate ratio for a group that is younger on average than White British residents.

# %% [markdown] tags=["solution"]
# **Solution.** (1) *Age*: the denominator includes children, who cannot be referred to an adult service. A group
# with a larger share of children has a larger denominator relative to its adults, so its rate, and its rate ratio
# vs White British, is pushed **down**. (2) *Need*: residents are not people in need; if the prevalence of common
# mental disorders differs by group the ratio mixes access with need, in a direction we cannot know without
# prevalence data. (Also: 2011 counts for 2013-16 referrals; residents vs registered patients.) A better label is
# "referrals per 1,000 residents (all ages, 2011 census)".

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Extend the calculation to treatment
# Before computing anything, predict: will the rate ratios for people **treated** per 1,000 residents be further
# from 1 or closer to 1 than those for referrals, and why (think of the pathway as a chain of steps, notebook 01)?
# Then compute them yourself for the four boroughs together, the way section 3 computes the referral rates; the
# function can count only the referrals that reached treatment (read `help(population.referral_rates)` to find
# how). Put the two pooled rate ratios side by side for each group.

# %% tags=["solution"]
treated_rates = population.referral_rates(frame, census, count="treated", disclose=True,
                                          threshold=p["suppress_threshold"], base=p["rounding_base"])
pooled_treated = treated_rates[treated_rates["borough"] == population.POOLED_LABEL].set_index("ethnicity")
pooled_referred = rates[rates["borough"] == population.POOLED_LABEL].set_index("ethnicity")
compare = pd.DataFrame({"referral rate ratio": pooled_referred["rate_ratio"],
                        "treatment rate ratio": pooled_treated["rate_ratio"]})
compare["treatment / referral"] = compare["treatment rate ratio"] / compare["referral rate ratio"]
lower = [g for g in compare.index[1:] if compare.loc[g, "treatment / referral"] < 1]
print(f"Treatment rate ratio below the referral rate ratio for {len(lower)} of {len(compare) - 1} groups: "
      f"{', '.join(lower)}")
compare.round(2)

# %% [markdown] tags=["solution"]
# **Solution.** Treated per resident = referred per resident × assessed per referred × treated per assessed, so
# the treatment rate ratio is the referral rate ratio times the group's relative chance of being assessed and then
# treated once referred (the last column above). Where a group's referrals were less often assessed and treated than
# White British referrals (as in the paper's findings, built into the synthetic cohort), that factor is below 1 and
# the treatment rate ratio is **lower** than the referral rate ratio: further below 1 for a group already
# under-referred, closer to (or below) 1 for one referred more often than White British. A group whose referrals
# went on as often as White British ones (in the paper, Mixed referrals were treated about as often once assessed)
# need not move at all. The printed line lists, for this run, the groups where the ratio fell. This one number
# combines access to the service and progress through it, which is what the paper's within-pathway odds ratios, by
# design, keep apart.

# %% [markdown]
# ## Key points
# - The paper's odds ratios compare groups **within** the pathway; a rate per resident adds the step before it,
#   reaching the service at all. A group can be under-referred and less often treated once referred.
# - Rates need counts of people at risk: the project holds full 2011 counts for all four boroughs, for all ages;
#   adult counts are not available.
# - Referral counts are disclosure controlled and every rate is computed from the disclosed counts.
# - Missing ethnicity lowers every rate; counting imputed ethnicity (pooled with Rubin's rules) is one remedy, as good as its margin: with a census margin the rate ratios are pushed towards 1 by construction.
# - On the synthetic cohort these rates illustrate the method; they are **not** findings about South London.
