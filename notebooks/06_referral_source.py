# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Referral source: the multinomial model
#
# The first stage of the pathway: *how* referrals reached IAPT (self-referral, GP, community services, other),
# compared between ethnic groups with a multinomial logistic regression, as in the paper. Notebook 07 then
# checks these estimates against the effects planted in the cohort and against the paper's abstract.
#
# **Learning objectives**
# - By the end you can fit the paper's multinomial model of referral source yourself with `statsmodels` (`smf.mnlogit`, GP referral as the base outcome, White British as the reference group) and read its summary: coefficient, standard error, relative risk ratio (RRR) and 95% interval.
# - By the end you can say an RRR in plain words, and why it is not "x% less likely".
# - By the end you can say what changes between the unadjusted, the age-gender-year adjusted and the fully adjusted models, using this cohort's own covariate mix to explain confounding.
# - By the end you can turn RRRs into predicted probabilities to show how large a gap is.
#
# **Prerequisites**: `05_describing_the_cohort`; logistic regression met once (odds, odds ratios).
#
# **Time needed**: about 30 minutes.
#
# > **Important.** The paper's referral-source results (its Table 2) are not available to this project. The effect
# > sizes in this synthetic cohort are **assumed**: their *directions* follow the abstract, their *sizes* are our
# > choice (`data/published/cohort_targets.csv`, rows `rrr_adjusted_full`). What you learn here is the method and
# > how to read it, not the paper's numbers.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_referrals = 85_800

# %%
import time

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import helpers.notebook
from helpers import design, models, pipeline, plots, publish, replication, study, teaching

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame

# %% [markdown]
# ## 1. The question and the raw picture
#
# Every referral has one source: **GP**, **Self** (the person referred themselves), **Community** (employment,
# voluntary, education, prison and probation services and the like) or **Other**. Which category each NHS
# source-of-referral code falls into is an *assumed* mapping (`helpers.codes`). First, the crude mix: the
# percentage of each group's referrals from each source (rows add to 100; raw, for exploration only).

# %%
crude = pd.crosstab(frame["ethnicity"], frame["referral_source"], normalize="index").mul(100).round(1)
crude.reindex(study.GROUPS)

# %% [markdown]
# ## 2. The multinomial model and what an RRR means
#
# A multinomial logistic regression compares each source with one **base** source, here **GP referral** (the
# abstract does not name its base: GP, the traditional route, is our *assumed* choice), three comparisons at once:
# Self vs GP, Community vs GP, Other vs GP.
#
# For one group, say Black African, the **relative risk ratio (RRR) for Self vs GP** is
#
# $$\text{RRR} = \frac{P(\text{Self}) / P(\text{GP}) \text{ among Black African referrals}}{P(\text{Self}) / P(\text{GP}) \text{ among White British referrals}}$$
#
# An RRR below 1 means: compared with White British referrals, a *smaller share of self-referrals relative to GP
# referrals*. It is a ratio of ratios, not "x% less likely": section 6 turns it into probabilities.
#
# ## 3. Fitting the model yourself
#
# This is a model you can fit on your own data with standard tools: the paper's **fully adjusted** model
# (ethnicity, age band, gender, year, borough) with the formula interface of `statsmodels`, on the rows with a
# recorded ethnicity (the *complete-case* analysis; notebook 10 deals with the missing ones). Three choices need
# care, each one visible line below:
#
# - **Which rows.** We drop the rows with missing ethnicity ourselves and count them; `missing="raise"` makes
#   statsmodels stop if any missing value is left, instead of silently dropping rows (its default).
# - **The reference group.** `C(ethnicity, Treatment(reference='White British'))` compares every other group with
#   White British (one 0/1 column per other group); the other covariates use their first level as reference.
# - **The base outcome.** `smf.mnlogit` compares every outcome with the outcome coded **0**, so we code the source
#   with GP first: 0 = GP, 1 = Self, 2 = Community, 3 = Other.

# %%
rows = frame[frame["ethnicity"].notna()].copy()  # complete case: recorded ethnicity only
# A level with no rows (an extract of one year, say) has no coefficient to estimate: drop unused levels first.
rows = rows.apply(lambda col: col.cat.remove_unused_categories() if isinstance(col.dtype, pd.CategoricalDtype) else col)
print(f"Rows in the model: {publish.count(len(rows), p)} of {publish.count(len(frame), p)} referrals "
      f"({publish.count(len(frame) - len(rows), p)} with ethnicity missing left out)")

source_order = ["GP", "Self", "Community", "Other"]  # GP first: code 0 is mnlogit's base outcome
rows["source_code"] = pd.Categorical(rows["referral_source"], categories=source_order).codes

formula = ("source_code ~ C(ethnicity, Treatment(reference='White British'))"
           " + C(age_band) + C(gender) + C(year) + C(borough)")
start = time.perf_counter()  # only to compare speeds in section 3.3
res = smf.mnlogit(formula, data=rows, missing="raise").fit(disp=0)
seconds_statsmodels = time.perf_counter() - start
print(publish.exploratory(res.summary(), p, "the summary's header",
                         "It gives exact numbers of observations; the coefficients follow below."))

# %% [markdown]
# ### 3.1 Reading the summary
#
# One block per comparison with the base (`source_code=1` **Self vs GP**, `=2` Community vs GP, `=3` Other vs GP),
# one row per column of the design:
#
# - `Intercept`: the log of P(Self) / P(GP) for the reference person (White British, 18-24, female, 2013,
#   Lambeth, the first level of every factor).
# - `C(ethnicity, ...)[T.Black African]`: the **coefficient** (`coef`), the difference in log P(Self) / P(GP)
#   between Black African and White British referrals with the same age band, gender, year and borough. Its
#   exponential is the RRR.
# - `std err`: its standard error; `z` = coef / std err; `P>|z|`: the p-value for "no difference";
#   `[0.025  0.975]`: the 95% confidence interval **of the coefficient**, coef ± 1.96 × std err (log scale).
#
# The next cell reads one row by hand.

# %%
term = "C(ethnicity, Treatment(reference='White British'))[T.Black African]"
b, se = res.params.loc[term, 0], res.bse.loc[term, 0]  # column 0 = the first block, Self vs GP
print(f"coef {b:.4f}, std err {se:.4f}, z = coef / std err = {b / se:.2f}")
print(f"95% CI of the coefficient: {b - 1.96 * se:.3f} to {b + 1.96 * se:.3f}")
print(f"RRR = exp(coef) = {np.exp(b):.2f}, 95% CI exp({b - 1.96 * se:.3f}) to exp({b + 1.96 * se:.3f}) "
      f"= {np.exp(b - 1.96 * se):.2f} to {np.exp(b + 1.96 * se):.2f}")

# %% [markdown]
# In words: among Black African referrals, self-referrals relative to GP referrals were that RRR times the ratio
# among White British referrals of the same age band, gender, year and borough.
#
# ### 3.2 All the RRRs at once, with numpy
#
# `np.exp(res.params)` turns every coefficient into a ratio; `np.exp(res.conf_int())` does the same to both ends of
# every interval (for a multinomial fit, `conf_int()` is indexed by block, `"1"` for Self vs GP, and then by term).

# %%
rrr = np.exp(res.params)
rrr.columns = source_order[1:]  # columns 0, 1, 2 are the blocks Self, Community, Other vs GP
ci_self = np.exp(res.conf_int().loc["1"])
eth_terms = [t for t in rrr.index if t.startswith("C(ethnicity")]
pd.DataFrame({"RRR Self vs GP": rrr.loc[eth_terms, "Self"], "2.5%": ci_self.loc[eth_terms, "lower"],
              "97.5%": ci_self.loc[eth_terms, "upper"]}).rename(index=lambda t: t.split("[T.")[1][:-1]).round(2)

# %% [markdown]
# ### 3.3 The same numbers from the project's fast route
#
# Every table and figure in this project comes from `helpers.models`, which fits the same likelihood a faster way.
# People with the same group, age band, gender, year and borough share every predicted probability, so the
# log-likelihood needs only how many people of each such **covariate pattern** had each outcome. `models.fit_stage`
# counts the patterns and runs Newton-Raphson on those counts. The two fits side by side:

# %% tags=["nbval-check-output"]
ours = models.fit_stage(frame, "referral_source", "adjusted_full")
check = teaching.compare_with_statsmodels(res, ours, outcome_levels=source_order[1:])
print(f"Ethnicity coefficients compared: {len(check)} (7 groups x 3 comparisons with GP)")
print(f"Largest difference, log RRR or standard error, below 1e-6: {teaching.largest_difference(check) < 1e-6}")

# %%
print(f"Largest difference in this run: {teaching.largest_difference(check):.1e}")
check.head(7)

# %% [markdown]
# Why have a second route at all? Speed, measured in this run (the figures depend on your computer):

# %%
table, _, _ = design.design(frame, study.MODELS["adjusted_full"], stage="referral_source")
start = time.perf_counter()
models.fit_stage(frame, "referral_source", "adjusted_full")
seconds_counts = time.perf_counter() - start
print(f"{publish.count(len(rows), p)} rows, but only {len(table):,} distinct covariate patterns with ethnicity recorded")
print(f"statsmodels on rows: {seconds_statsmodels:.1f} s; pattern counts: {seconds_counts:.2f} s "
      f"({seconds_statsmodels / seconds_counts:.0f} times faster)")

# %% [markdown]
# One fit taking the seconds printed above is fine for a lesson. Multiple imputation of the missing ethnicity (notebook 10) refits
# all nine models (three stages x three models) on each of 20 or more completed data sets, and notebook 12's
# simulation repeats that many times over: hundreds to thousands of fits. For your own data, one `smf.mnlogit` or
# `smf.logit` is all you need. From here on the notebook uses the project's tables (every stage and model,
# complete case).

# %%
estimates = pipeline.complete_case_estimates(data)
rs = estimates[estimates["stage"] == "referral_source"].copy()
rs["display"] = replication.format_estimates(rs)
full = rs[rs["model"] == "adjusted_full"]
full.pivot(index="ethnicity", columns="outcome_level", values="display").reindex(study.GROUPS)[["Self", "Community", "Other"]]

# %% [markdown]
# Each cell: RRR (95% CI), fully adjusted, vs GP referral, vs White British: section 3.2's numbers for every
# comparison.

# %% [markdown]
# In plain words: the self-referral route reached Black African referrals less than it reached White British
# referrals, relative to the GP route (in this cohort the size is *assumed*; the paper's Table 2 is not available).
# Such a difference describes how **services and routes into them** work for different groups, not a trait of any
# group; possible reasons, none of which a study like this can test (notebook 15 lists them as hypotheses), include
# how widely the self-referral route is known and advertised, trust in services, interpreting provision and
# cultural fit.
#
# ## 4. Three adjustment sets: what changes and why
#
# The paper fits each stage three times: **unadjusted**; adjusted for **age, gender and year**; and additionally
# for **borough**. If a covariate is linked both to ethnic group and to referral source, the unadjusted RRR mixes
# the two; adjusting compares like with like. That is **confounding**. Two ingredients must both be present.
#
# *Ingredient 1: the groups' covariate mix differs.* Percentage of each group's referrals in each age band and
# borough (the borough and age mixes of this cohort are *assumed*, tilted per group by the calibration):

# %%
age_mix = pd.crosstab(frame["ethnicity"], frame["age_band"], normalize="index").mul(100).round(1)
borough_mix = pd.crosstab(frame["ethnicity"], frame["borough"], normalize="index").mul(100).round(1)
pd.concat({"age band (%)": age_mix, "borough (%)": borough_mix}, axis=1).reindex(study.GROUPS)

# %% [markdown]
# *Ingredient 2: the covariate is linked to the outcome.* Percentage self-referred by age band (all referrals):

# %%
pd.crosstab(frame["age_band"], frame["referral_source"], normalize="index").mul(100).round(1)[["GP", "Self"]]

# %% [markdown]
# If self-referral becomes less common with age (as the *assumed* covariate effects in this cohort make it), a
# group with an older age mix would show a lower crude self-referral share even with no ethnic difference at all.
# Now the RRRs under the three models side by side:

# %%
wide = (rs[rs["ethnicity"] != study.REFERENCE_GROUP]
        .pivot_table(index=["outcome_level", "ethnicity"], columns="model", values="estimate", observed=True)
        [list(study.MODELS)].round(2))
wide.loc[["Self", "Community"]]

# %% tags=["nbval-check-output"]
change = (np.log(wide["adjusted_full"]) - np.log(wide["unadjusted"])).abs()
level, group = change.idxmax()
print(f"Largest change, unadjusted -> fully adjusted: {group}, {level} vs GP: "
      f"{wide.loc[(level, group), 'unadjusted']:.2f} -> {wide.loc[(level, group), 'adjusted_full']:.2f}")
print(f"Median absolute change in log RRR: {change.median():.3f}")

# %% [markdown]
# Where both ingredients are strong, the estimates move between models; where a group's mix is close to White
# British's, or the covariate hardly matters for the outcome, they barely move. A small change says the crude gap
# was not explained by age, gender, year or borough. Adjustment removes only the confounders you measured, and is
# not meant to remove gaps that run *through* the pathway itself (see Exercise 3 in notebook 08).
#
# ## 5. Forest plots, one per outcome level
#
# One panel per comparison with GP referral, the three models in different colours, log-scaled x axis (0.5 and 2
# equally far from 1).

# %%
figures = {}
for level in ["Self", "Community", "Other"]:
    figures[level] = plots.forest_plot(estimates, stage="referral_source", outcome_level=level)
    plots.savefig(figures[level], helpers.notebook.output_path(p, "figures", f"06_forest_{level.lower()}.png"))
figures["Self"]

# %% [markdown]
# *Figure: relative risk ratios for self-referral versus GP referral, one row per group (White British, the
# reference, at 1), three points with 95% CIs per group (unadjusted, age-gender-year, fully adjusted); log-scaled
# x axis, dashed line at 1.*

# %%
figures["Community"]

# %% [markdown]
# *Figure: the same layout for referral through community services versus GP referral.*

# %%
figures["Other"]

# %% [markdown]
# *Figure: the same layout for other referral sources versus GP referral.*
#
# ## 6. Predicted probabilities: how big is the gap?
#
# RRRs are hard to picture. `models.predicted_probabilities` asks: if every referral in the model kept its own age,
# gender, year and borough but belonged to group X, what share would come from each source? This *standardises*
# every group to the same covariate mix, so the differences are the model's ethnic differences only.

# %%
pp = models.predicted_probabilities(frame, "referral_source", "adjusted_full")
probs = pp.pivot(index="ethnicity", columns="outcome_level", values="probability").mul(100).round(1)
probs.reindex(study.GROUPS)[study.SOURCES]

# %% [markdown]
# The table above is the model's picture of the gap. How far can it be trusted? This cohort was built from *assumed* referral-source effects, so the estimates can be checked against what was planted: notebook 07 does that, and checks the directions against the paper's abstract.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Interpret an RRR for a service manager
#
# Take the fully adjusted RRR for **Asian, Self vs GP** (section 3) and the predicted self-referral shares of
# Asian and White British referrals (the table of section 6, in %). Write one sentence a **service manager** could
# act on. Then explain why "Asian referrals were x% less likely to self-refer", with x = 100 × (1 − RRR), would be
# wrong.

# %% tags=["solution"]
asian = models.select(full, ethnicity="Asian", outcome_level="Self").iloc[0]
p_wb = probs.loc["White British", "Self"]
p_asian = probs.loc["Asian", "Self"]
print(f"RRR {asian['estimate']:.2f}; predicted self-referral share: White British {p_wb:.1f}%, Asian {p_asian:.1f}%")
print(f"Ratio of probabilities: {p_asian / p_wb:.2f} (not the RRR, {asian['estimate']:.2f})")
print(f'Sentence: "Among referrals of the same age band, gender, year and borough, about {p_asian:.0f} in 100 Asian '
      f'referrals were self-referrals, against about {p_wb:.0f} in 100 White British referrals: the self-referral '
      f'route is reaching Asian communities less well."')

# %% [markdown] tags=["solution"]
# **Solution.** The sentence printed by the cell above (its numbers follow the run's parameters). Why "x% less
# likely" is wrong: the RRR compares *ratios* (Self vs GP), not probabilities. The step from the RRR to the chance
# of self-referral, P(Self) = odds(Self vs GP) / (1 + odds(Self vs GP) + odds(Community vs GP) + odds(Other vs GP)),
# depends on how common self-referral and the Community and Other routes already are, so 100 × (1 − RRR) is not a
# percentage difference in the chance of self-referral; compare the printed ratio of predicted probabilities with
# the RRR (with the default parameters it is much closer to 1).

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Predict, then check: another base outcome
#
# We chose GP referral as the base (*assumed*: the abstract does not say). A colleague fits the same fully adjusted
# model with **Self** as the base. Predict, from the RRRs of section 3 and before computing: what will the RRR for
# *GP vs Self* be for Black African referrals? And for *Community vs Self*? Will the fit itself (its
# log-likelihood) or the predicted probabilities change? Then check: fit your colleague's model yourself with
# `smf.mnlogit`, as in section 3 (think about how the outcome must be coded).

# %% tags=["solution"]
self_first = ["Self", "GP", "Community", "Other"]  # Self coded 0: the new base outcome
rows_self = rows.assign(source_self=pd.Categorical(rows["referral_source"], categories=self_first).codes)
res_self = smf.mnlogit(formula.replace("source_code ~", "source_self ~"), data=rows_self, missing="raise").fit(disp=0)
ba_term = "C(ethnicity, Treatment(reference='White British'))[T.Black African]"
vs_gp = pd.Series(np.exp(res.params.loc[ba_term]).to_numpy(), index=source_order[1:])
vs_self = pd.Series(np.exp(res_self.params.loc[ba_term]).to_numpy(), index=self_first[1:])
print(f"GP vs Self:        predicted 1 / {vs_gp['Self']:.3f} = {1 / vs_gp['Self']:.3f}; fitted {vs_self['GP']:.3f}")
print(f"Community vs Self: predicted {vs_gp['Community']:.3f} / {vs_gp['Self']:.3f} = "
      f"{vs_gp['Community'] / vs_gp['Self']:.3f}; fitted {vs_self['Community']:.3f}")
print(f"Log-likelihood, GP base {res.llf:.3f}; Self base {res_self.llf:.3f}")

# %% [markdown] tags=["solution"]
# **Solution.** A multinomial model with another base is the *same* model: the same fit (the two log-likelihoods
# printed above are equal), the same predicted probabilities, and every RRR with the new base follows by division:
# GP vs Self = 1 / (Self vs GP), Community vs Self = (Community vs GP) / (Self vs GP). In code, the one thing to get
# right is the outcome coding (`mnlogit` takes the outcome coded 0 as its base). What changes is which comparisons
# get their own intervals, and so which story is told: with Self as the base, a low self-referral RRR turns into
# *high* RRRs for every other route, inviting "more likely to be GP-referred" headlines. Choose the base for the
# question and say which you chose (here GP, the traditional route).

# %% [markdown]
# ## Key points
#
# - Referral source is modelled with multinomial logistic regression: each source vs a base (GP, *assumed*), each
#   group vs White British; an RRR is a ratio of ratios, not a percentage difference.
# - You can fit it yourself: `smf.mnlogit` with the outcome coded base-first and
#   `C(ethnicity, Treatment(reference='White British'))`; `np.exp(res.params)` and `np.exp(res.conf_int())` give
#   the RRRs and their intervals. The project's pattern-count fitter gives the same numbers, fast enough for
#   multiple imputation.
# - The three models differ only in what they adjust for; estimates move when a covariate both differs between
#   groups and relates to the source (confounding).
# - Predicted probabilities, standardised to one covariate mix, make gap sizes readable.
# - The referral-source effects in this cohort are **assumed** (directions from the abstract); notebook 07 checks
#   the estimates against them.
