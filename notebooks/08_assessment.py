# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Assessment
#
# The second stage of the pathway: once referred, did the person receive an assessment? A logistic regression
# among all referrals, each ethnic group vs White British, three models, as in the paper.
#
# **Learning objectives**
# - By the end you can state the denominator of the assessment model (everyone referred) and fit the paper's logistic model yourself with `smf.logit`, then read its summary and turn coefficients into odds ratios (ORs) and 95% intervals with numpy.
# - By the end you can explain why a fit on covariate-pattern counts (a binomial GLM) gives the same estimates as a fit on rows, and why the project uses it.
# - By the end you can translate an OR into a difference in probabilities, by hand and with predicted probabilities.
# - By the end you can read a forest plot of the three models, say what adjustment changed, and judge whether a variable such as borough or referral source belongs in the model (confounder or part of the pathway).
#
# **Prerequisites**: `05_describing_the_cohort`, `06_referral_source` (the three adjustment sets); logistic regression met once.
#
# **Time needed**: about 35 minutes.
#
# > **Important.** The paper's assessment results (its Table 3) are not available to this project. The ORs planted
# > in this cohort are **assumed**: direction from the abstract ("almost all minority groups were less likely to
# > receive an assessment"), sizes of the order of the printed treatment-stage ORs
# > (`data/published/cohort_targets.csv`, rows `or_adjusted_full`, stage `assessment`).

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_referrals = 85_800
seed = 20210802
outcome_mode = "calibrated"

# %%
import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

import helpers.notebook
from helpers import design, models, params, pipeline, plots, publish, replication, simulation, study, teaching

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame

# %% [markdown]
# ## 1. The denominator: everyone referred
#
# Assessment is the first appointment after referral. Its denominator is **every referral**: someone who was
# referred and never assessed counts as "not assessed". The crude percentages (raw, for exploration):

# %%
crude = publish.pathway_counts(frame, p)[["referred", "assessed", "pct_assessed"]]  # disclosed on a real extract
crude.round(1)


# %% [markdown]
# ## 2. Odds, odds ratios and probabilities
#
# Logistic regression works on **odds**: odds = p / (1 − p). A probability of 75% is odds of 3 (three assessed
# for every one not assessed). An **odds ratio** compares a group's odds with White British odds. To get back to
# a probability: take the reference probability p₀, its odds o₀ = p₀/(1 − p₀), multiply by the OR, and convert
# back, p₁ = OR·o₀ / (1 + OR·o₀).
#
# A worked example with the paper's own printed figures (Table 4, treatment stage): White British 72.4% treated,
# Black Caribbean unadjusted OR 0.77. Then o₀ = 0.724/0.276 ≈ 2.62; 0.77 × 2.62 ≈ 2.02; p₁ = 2.02/3.02 ≈ 67%.
# So OR 0.77 with a 72% baseline means about **67% vs 72%**, a gap of about 5 percentage points: an OR of 0.77 is
# *not* "23% less likely". When the outcome is common, the OR is further from 1 than the ratio of probabilities.

# %%
def probability_from_or(p0, odds_ratio):
    odds = odds_ratio * p0 / (1 - p0)
    return odds / (1 + odds)

print(f"Table 4 example: {probability_from_or(0.724, 0.77) * 100:.1f}% vs 72.4%")

# %% [markdown]
# ## 3. Fitting the model yourself
#
# The fully adjusted model, fitted with `smf.logit` on the referrals with a recorded ethnicity (complete case), in
# the same way as the multinomial model of notebook 06: rows chosen and counted by us, `missing="raise"` so that
# nothing is dropped silently, White British as the reference group. The outcome `assessed` is 0/1 for **every**
# referral, so the denominator is everyone referred.

# %%
rows = frame[frame["ethnicity"].notna()]  # complete case: recorded ethnicity only
# A level with no rows (an extract of one year, say) has no coefficient to estimate: drop unused levels first.
rows = rows.apply(lambda col: col.cat.remove_unused_categories() if isinstance(col.dtype, pd.CategoricalDtype) else col)
print(f"Rows in the model: {publish.count(len(rows), p)} of {publish.count(len(frame), p)} referrals "
      f"({publish.count(len(frame) - len(rows), p)} with ethnicity missing left out)")
rhs = ("C(ethnicity, Treatment(reference='White British'))"
       " + C(age_band) + C(gender) + C(year) + C(borough)")  # the right-hand side: the fully adjusted model
res = smf.logit("assessed ~ " + rhs, data=rows, missing="raise").fit(disp=0)
print(publish.exploratory(res.summary(), p, "the summary's header",
                         "It gives exact numbers of observations; the coefficients follow below."))

# %% [markdown]
# Read the summary as in notebook 06, section 3.1: each `C(ethnicity, ...)[T.group]` row is a log odds ratio of
# assessment against White British, for referrals of the same age band, gender, year and borough, with its SE, z,
# p-value and 95% interval (log scale); covariate rows are read against each factor's first level. Exponentiate:

# %%
eth_terms = [t for t in res.params.index if t.startswith("C(ethnicity")]
ors = pd.concat([np.exp(res.params).rename("OR"), np.exp(res.conf_int()).set_axis(["2.5%", "97.5%"], axis=1)],
                axis=1).loc[eth_terms]
ors.rename(index=lambda t: t.split("[T.")[1][:-1]).round(2)

# %% [markdown]
# ### 3.1 The same model on covariate patterns
#
# A logistic model gives every referral with the same ethnic group, age band, gender, year and borough the same
# probability of assessment. So the likelihood only needs, for each such **covariate pattern**, how many referrals
# were assessed (`n_1`) and how many were not (`n_0`): a binomial model for counts, which statsmodels fits as a
# generalised linear model (GLM) with a binomial family. `design.design` builds the pattern table.

# %%
patterns, _, _ = design.design(frame, study.MODELS["adjusted_full"], stage="assessment")
print(f"{publish.count(len(rows), p)} rows collapse to {len(patterns):,} covariate patterns")
publish.counts(patterns.head(), p, count_columns=["n_1", "n_0"])

# %%
res_counts = smf.glm("n_1 + n_0 ~ " + rhs, data=patterns, family=sm.families.Binomial()).fit()
print(f"Largest difference between the two fits, any coefficient: {(res.params - res_counts.params).abs().max():.1e}")
pd.DataFrame({"rows (smf.logit)": res.params.loc[eth_terms],
              "patterns (binomial GLM)": res_counts.params.loc[eth_terms]}
             ).rename(index=lambda t: t.split("[T.")[1][:-1]).style.format("{:.4f}")  # 4 decimals, not the page's 2

# %% [markdown]
# `"n_1 + n_0 ~ ..."` gives a binomial GLM its successes and failures. The two columns agree: same likelihood, same
# estimates. This is the idea behind the project's fitter, `models.fit_stage` (Newton-Raphson on the pattern
# counts), which every table here comes from, fast enough for the many refits multiple imputation needs (notebook
# 06, section 3.3). The check, coefficient by coefficient:

# %% tags=["nbval-check-output"]
check = teaching.compare_with_statsmodels(res, models.fit_stage(frame, "assessment", "adjusted_full"))
print(teaching.agreement_summary(check))

# %%
print(f"Largest difference in this run: {teaching.largest_difference(check):.1e}")
check

# %% [markdown]
# ## 4. The three models
#
# From here on the estimates come from `pipeline.complete_case_estimates` (every stage and model at once, referrals
# with recorded ethnicity). The table shows OR (95% CI) for assessment, vs White British, for each model.

# %%
estimates = pipeline.complete_case_estimates(data)
ass = estimates[estimates["stage"] == "assessment"].copy()
ass["display"] = replication.format_estimates(ass)
ass.pivot(index="ethnicity", columns="model", values="display").reindex(study.GROUPS)[list(study.MODELS)]

# %% tags=["nbval-check-output"]
wide = ass.pivot(index="ethnicity", columns="model", values="estimate").reindex(study.GROUPS[1:])
change = (np.log(wide["adjusted_full"]) - np.log(wide["unadjusted"])).abs()
big = change.idxmax()
print(f"Largest change, unadjusted -> fully adjusted: {big}: "
      f"{wide.loc[big, 'unadjusted']:.2f} -> {wide.loc[big, 'adjusted_full']:.2f} "
      f"({100 * (np.exp(change.max()) - 1):.0f}% of the OR)")
print(f"Median change across the {len(change)} groups: {100 * (np.exp(change.median()) - 1):.0f}% of the OR")
position = teaching.ci_position(ass[ass["model"] == "adjusted_full"])
print(f"Fully adjusted ORs with the whole 95% CI below 1: {position['whole CI below 1']}/{position['total']}")

# %% [markdown]
# What changes between the models is only what is held equal: age band, gender and year in the second; also
# borough in the third. Adjusting for borough can move the ORs because the groups are referred to services in
# different boroughs in different proportions (`borough` is the borough of the IAPT service; notebook 06, section 4)
# and, in this cohort, assessment rates differ by borough (an *assumed* covariate effect). How much it matters is an
# empirical question, answered by the cell above: with the default parameters the largest change is a few percent
# of the OR and most ORs barely move, so age, gender, year and borough explain little of the assessment gaps in this
# cohort.
#
# Whether borough *should* be adjusted for is a judgement, not something the data can settle. Referrals in different
# boroughs meet different services (SLaM's IAPT services covered four boroughs; which the study included is not
# reported, and this project *assumes* all four). If borough is a **confounder** (where people live shapes both their ethnic mix and which service
# they meet, for reasons outside the pathway), adjusting compares referrals served by the same service; that is the
# reading under which the paper's third model answers the cleaner question. The paper's own reasons for adjusting
# are not in any source this project holds (`docs/study/README.md`). If borough differences are **part of the pathway** (a group living
# mostly where the service assesses fewer referrals is served less well, and that is part of the inequality),
# adjusting removes part of the gap we want to describe. Reporting the model with and without borough, as the paper
# does, shows how much rests on that choice.

# %%
fig = plots.forest_plot(estimates, stage="assessment")
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "08_forest_assessment.png"))
fig

# %% [markdown]
# *Figure: odds ratios for being assessed after referral, one row per group (White British, the reference, at 1),
# three points with 95% CIs per group (unadjusted, age-gender-year, fully adjusted); log-scaled x axis, dashed line
# at 1. Points left of the line mean lower odds of assessment than White British referrals.*
#
# ## 5. Predicted probabilities
#
# `models.predicted_probabilities` standardises every group to the mix of age, gender, year and borough of everyone
# in the model (all referrals with recorded ethnicity): each referral keeps its own covariates and is given each
# group in turn, so the gaps below are the model's ethnic differences only, in percent. `observed` is the crude rate.

# %%
pp = models.predicted_probabilities(frame, "assessment", "adjusted_full").set_index("ethnicity")
pp = pp.reindex(study.GROUPS)
summary = pd.DataFrame({
    "predicted %": pp["probability"] * 100,
    "observed %": pp["observed"] * 100,
    "gap vs White British (points)": (pp["probability"] - pp.loc[study.REFERENCE_GROUP, "probability"]) * 100,
})
teaching.rounded(summary, 1)  # rounded to 0.1, with no "-0.0" for a gap that rounds to nothing

# %% [markdown]
# ## 6. Planted versus estimated, and the abstract
#
# The cohort was built with *assumed* fully adjusted ORs for referrals with recorded ethnicity. Is each planted OR
# inside our 95% CI? With the default `outcome_mode = "calibrated"`, yes **by construction** (notebook 07, section
# 1: constructed counts, no sampling noise), so the check tests the pipeline (coding, denominator, reference
# group), not the intervals; random outcome mode, below, is where the 1-in-20 reasoning applies. And the abstract:
# *almost all* minority groups were less likely to be assessed ("almost all" leaves room for an exception; our
# assumed value for Mixed is close to 1 for that reason).

# %%
targets = pd.read_csv(params.targets_file(p), dtype=str, keep_default_na=False)
planted = replication.planted_vs_estimated(estimates, targets, "assessment")
planted.round(2)

# %% tags=["nbval-check-output"]
directions = replication.check_directions(estimates, "assessment", {g: "lower" for g in study.GROUPS[1:]})
print(f"Planted (assumed) OR inside our 95% CI: {int(planted['planted_in_ci'].sum())}/{len(planted)}")
print(f"Fully adjusted OR below 1, rounded to 2 decimals: {int((directions['estimate'].round(2) < 1).sum())}/{len(directions)}")
print(f"... with the whole 95% CI below 1:               {int(directions['ci_excludes_1'].sum())}/{len(directions)}")

# %% [markdown]
# **Where the 1-in-20 reasoning does apply: random outcome mode.** With `outcome_mode="random"` the cohort is built
# from the same targets, but whether each referral was assessed is *drawn* at random, as in real data
# (`pipeline.load_study_data(p, outcome_mode="random")`). `simulation.planted_coverage_random` builds a few such
# cohorts (different seeds), fits the fully adjusted model to each and counts the planted ORs inside our 95% CIs.

# %%
seeds = [p["seed"] + k for k in range(1, 6)]
coverage = simulation.planted_coverage_random(p, "assessment", seeds)
print(coverage.to_string(index=False))
print(simulation.coverage_summary(coverage, "planted ORs"))

# %% [markdown]
# Here misses are what chance gives: about 1 in 20 on average, but with this few planted values the count varies a
# lot between runs (the last line prints the range; none at all is unremarkable). Matching planted values shows the
# pipeline recovers what was built in; it says nothing about the paper's Table 3.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Interpret an OR for a commissioner
#
# Take the fully adjusted OR for **Black Other** (section 4) and the White British predicted probability of
# assessment (section 5). Convert the OR into a probability by hand, as in section 2, and compare it with the Black
# Other predicted probability of section 5. Are they equal? Why or why not? Then write one sentence for a
# **commissioner** who funds the service, without the words "odds" or "x% less likely".

# %% tags=["solution"]
or_bo = wide.loc["Black Other", "adjusted_full"]
p_wb = pp.loc[study.REFERENCE_GROUP, "probability"]
p_bo = pp.loc["Black Other", "probability"]
print(f"OR {or_bo:.2f}; White British {p_wb * 100:.1f}% -> by hand {probability_from_or(p_wb, or_bo) * 100:.1f}%; "
      f"predicted_probabilities {p_bo * 100:.1f}%")
print(f'Sentence: "After allowing for age, gender, year and borough, about {p_bo * 100:.0f} in 100 Black Other '
      f'referrals were assessed, against {p_wb * 100:.0f} in 100 White British referrals: the service lost more '
      f'Black Other referrals between referral and first appointment."')

# %% [markdown] tags=["solution"]
# **Solution.** The hand conversion and the standardised prediction are close but not identical: the hand version
# applies the OR to one average baseline, while `predicted_probabilities` applies the model to every covariate
# pattern and then averages (odds ratios do not average the way probabilities do). The sentence for the
# commissioner is printed by the cell above, with the model's numbers for this run.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Write it yourself: the age-gender-year model
#
# Predict first: from the table of section 4, which groups' ORs will differ most between the age-gender-year model
# and the fully adjusted one, and in which direction? Then fit the **age-gender-year** model yourself with
# `smf.logit` on the rows of section 3, turn its ethnicity coefficients into ORs with 95% intervals, and compare
# them with the `adjusted_age_gender_year` column of section 4. They should agree to the printed decimals: do they?

# %% tags=["solution"]
rhs_agy = "C(ethnicity, Treatment(reference='White British')) + C(age_band) + C(gender) + C(year)"
res_agy = smf.logit("assessed ~ " + rhs_agy, data=rows, missing="raise").fit(disp=0)
mine = pd.concat([np.exp(res_agy.params).rename("OR (mine)"),
                  np.exp(res_agy.conf_int()).set_axis(["2.5%", "97.5%"], axis=1)], axis=1).loc[eth_terms]
mine.index = [t.split("[T.")[1][:-1] for t in mine.index]
mine["OR (section 4)"] = wide["adjusted_age_gender_year"]
mine["OR (fully adjusted)"] = wide["adjusted_full"]
# Why adding borough moves an OR: each group's borough mix (share of its referrals per borough) times the fitted
# borough effects on assessment (log odds vs the first borough) gives the group's average borough effect.
borough_effect = pd.Series({b: res.params.get(f"C(borough)[T.{b}]", 0.0) for b in rows["borough"].cat.categories})
borough_mix = pd.crosstab(rows["ethnicity"], rows["borough"], normalize="index")[borough_effect.index]
average_effect = borough_mix @ borough_effect
mine["log OR change"] = np.log(mine["OR (section 4)"]) - np.log(mine["OR (fully adjusted)"])
mine["avg borough effect vs White British"] = (average_effect - average_effect[study.REFERENCE_GROUP]).reindex(mine.index)
print("fitted borough effects on assessment (log odds):", borough_effect.round(2).to_dict())
mine.round(2).assign(**mine[["log OR change", "avg borough effect vs White British"]].round(3)).style.format(
    "{:.2f}").format("{:+.3f}", subset=["log OR change", "avg borough effect vs White British"])

# %% [markdown] tags=["solution"]
# **Solution.** The fitted ORs agree with the section 4 column to the printed decimals (the same model, fitted two
# ways). The difference from the fully adjusted column is what adding borough does, and it is small, not because
# the groups live in the same boroughs (notebook 06's borough table: Black African referrals, for one, come far
# more often from Southwark than White British referrals do) but because borough changes the odds of assessment
# only a little (the fitted borough effects printed above, which follow the *assumed* ones in the targets file).
# The last two columns show the mechanism: a group's change in log OR is close to how much its average borough
# effect (its mix times those effects) differs from White British's; a group concentrated where assessment is more
# likely looks better before borough is held equal. With real data, large borough effects would make the same
# mixes matter much more. Name the ethnicity terms exactly as in section 3, or the reference group changes.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Extend the model: is referral source a confounder or part of the pathway?
#
# Add `referral_source` to the fully adjusted assessment model yourself (`smf.logit`, as in section 3). To predict
# whether the ORs will move you need to know how this synthetic cohort was built: its covariate effects on
# assessment are the `targets` rows (section 6) with stage `assessment` and quantity `log_or_covariate` (all
# *assumed*). Is referral source among them? Predict, then fit. Then discuss: should the paper have adjusted for
# referral source, and would your prediction hold in real data?

# %% tags=["solution"]
covariate_effects = targets[(targets["stage"] == "assessment") & (targets["quantity"] == "log_or_covariate")]
print("Covariates with an effect on assessment in the targets file:",
      sorted({level.split("=")[0] for level in covariate_effects["level"]}))
res_source = smf.logit("assessed ~ " + rhs + " + C(referral_source)", data=rows, missing="raise").fit(disp=0)
side = pd.DataFrame({
    "adjusted_full": wide["adjusted_full"],
    "+ referral source": np.exp(res_source.params.loc[eth_terms]).set_axis(wide.index),
}).round(2)
side

# %% [markdown] tags=["solution"]
# **Solution.** In this synthetic cohort, referral source was *not* built into the assessment step (the targets
# file lists effects of age band, gender, year and borough on assessment, none of referral source: an
# *assumption*), so adding it changes the ORs very little (compare the two columns printed above). In real
# data it might: self-referrers, for example, may be more likely to attend. But referral source comes *after*
# ethnicity on the pathway: if the route into services differs by ethnic group (notebook 06) and the route affects
# assessment, then source is a **mediator**, part of the path by which the inequality arises. Adjusting for it
# would remove that part of the gap and answer a narrower question ("among people referred by the same route"),
# and can even introduce bias if something unmeasured affects both route and assessment. Age, gender and year
# cannot be consequences of how a referral moved through the service, so adjusting for them is uncontroversial.
# Borough is in between: whether it is a confounder or part of the pathway is a judgement (section 4), which is
# why the paper's two adjusted models, with and without borough, are both worth reading.

# %% [markdown] tags=["exercise"]
# ### Exercise 4: Critique the denominator
#
# A colleague suggests modelling assessment only among people who **self-referred** "because they clearly wanted
# help". What question would that answer, and what would it hide?

# %% [markdown] tags=["solution"]
# **Solution.** It answers "among self-referrers, who gets assessed", a legitimate sub-question, but it conditions
# on a step where groups already differ (notebook 06: some groups self-refer less), so the people compared are
# selected differently in each group. It hides every referral that came through the GP or community route and
# the inequalities in those routes. The paper's denominator (all referred) describes the service as people meet
# it; sub-analyses belong beside it, clearly labelled.

# %% [markdown]
# ## Key points
#
# - Assessment is modelled among **all referrals**; not assessed includes everyone who never reached a first appointment.
# - An OR compares odds, not probabilities: with a common outcome it overstates the relative gap; convert it (OR 0.77 at a 72% baseline is about 67%), or use predicted probabilities standardised to one covariate mix.
# - `smf.logit` on the rows, or a binomial GLM on covariate-pattern counts, gives the same ORs as the project's fitter; `np.exp(res.params)` and `np.exp(res.conf_int())` turn coefficients into ORs and intervals.
# - Adjust for confounders, not for steps on the pathway such as referral source, unless you mean to ask a narrower question; whether borough is a confounder or part of the pathway is a judgement, so read the models with and without it.
# - The assessment effects in this cohort are **assumed** (direction from the abstract); the checks test the pipeline, not the paper.
