# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Treatment
#
# The third stage of the pathway and the one the paper prints in full (Table 4): once assessed, did the person
# receive at least one treatment session? Logistic regression among the **assessed**, three models, ours beside
# the paper's.
#
# **Learning objectives**
# - By the end you can explain why the treatment model's denominator is the assessed, and what goes wrong with "treated among referred".
# - By the end you can fit the paper's three treatment models and put them beside the printed Table 4 in one table and one forest plot.
# - By the end you can say precisely what "our estimates match Table 4" proves for a cohort calibrated to Table 4, and what it does not.
# - By the end you can turn a treatment OR into the difference in the chance of being treated.
#
# **Prerequisites**: `06_assessment` (odds ratios and probabilities; the three models).
#
# **Time needed**: about 40 minutes.
#
# > The synthetic cohort was **constructed** so that its referrals with recorded ethnicity reproduce the paper's
# > printed Table 4 (complete case). Unlike notebooks 05-06, the target values here are *printed* figures, not
# > assumed ones.

# %% tags=["parameters"]
n_referrals = 85_800
seed = 20210802
missing_mechanism = "mnar"
missing_share = 0.185
outcome_mode = "calibrated"
targets_path = ""
data_path = ""
n_imputations = 20
margin = "auto"
n_simulations = 20
simulation_n_referrals = 20_000
suppress_threshold = 7
rounding_base = 5
output_dir = "../outputs"

# %%
import numpy as np
import pandas as pd

import helpers.notebook
from helpers import models, pipeline, plots, publish, study, tables

p = helpers.notebook.setup(globals())
data = pipeline.load_study_data(p)
frame = data.frame
print(f"Data: {data.origin}")

# %% [markdown]
# ## 1. The denominator: the assessed
#
# The paper's Table 4 is about people who **were assessed**: did they go on to treatment? Someone never assessed
# is not in this model at all (their `treated` value is missing). The pathway counts show both ways of counting
# (raw, for exploration): `pct_treated` is per 100 assessed, `treated_per_1000_referred` per 1,000 referred.

# %%
publish.pathway_counts(frame, p)[["referred", "assessed", "treated", "pct_treated", "treated_per_1000_referred"]].round(1)

# %% [markdown]
# ## 2. The three models, beside the paper's Table 4
#
# One call fits every stage and model; we keep the treatment rows. Then `tables.published_vs_ours` puts each of our
# ORs beside the paper's printed OR and CI (complete case here; the paper's weighted-MI rows are compared in
# notebook 08).

# %%
estimates = pipeline.complete_case_estimates(data)
published = pipeline.published_table4()
comparison = tables.published_vs_ours(estimates, published)
cc = comparison[comparison["analysis"] == "complete_case"]
cc.pivot(index="ethnicity", columns="model", values="ours_or").reindex(study.GROUPS)[list(study.MODELS)].round(2)

# %%
cc[["model", "ethnicity", "ours_or", "ours_ci", "paper_or", "paper_ci", "inside_paper_ci", "rounds_to_printed"]].round(2)

# %%
fig = plots.forest_plot(estimates, stage="treatment", published=published)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "07_forest_treatment_vs_table4.png"))
fig

# %% [markdown]
# *Figure: forest plot of odds ratios for receiving treatment among those assessed, one row per ethnic group
# (White British at the top as the reference, marked at 1). For each of the three models (unadjusted, age-gender-year
# adjusted, fully adjusted, in three colours) our estimate is a filled circle and the paper's printed Table 4
# estimate a hollow diamond just below it, each with its 95% confidence interval; log-scaled x axis with a dashed
# line at 1. Points left of the line mean lower odds of treatment than White British.*
#
# ## 3. What "matching" means here
#
# The next cell counts, over the 21 printed ORs for the seven minority groups × three models, how many of ours lie
# inside the printed 95% CI and how many round to the printed value (two decimals).

# %% tags=["nbval-check-output"]
minority = cc[cc["ethnicity"] != study.REFERENCE_GROUP]
print(f"Our OR inside the printed 95% CI:   {int(minority['inside_paper_ci'].sum())}/{len(minority)}")
print(f"Our OR rounds to the printed OR:    {int(minority['rounds_to_printed'].sum())}/{len(minority)}")
directions = tables.check_directions(estimates, "treatment", {g: "lower" for g in study.GROUPS[1:]})
print(f"Fully adjusted OR below 1 (abstract: all minority groups): "
      f"{int(directions['direction_holds'].sum())}/{len(directions)}")

# %% [markdown]
# Be precise about what this shows. The cohort was **built to match** Table 4: its counts were solved so that these
# models give the printed ORs. So a full match proves that **our pipeline** (coding, denominators, model
# specification, reference groups, CIs) does what the paper's did; a bug in any of them would break the match. It
# does **not** confirm the paper's findings: a synthetic cohort cannot tell us anything about real IAPT services
# that was not put into it. Confirming the findings needs the real data (run the notebooks with `data_path`
# pointing to an extract in the same schema) or an independent cohort.
#
# Two more things the match does *not* fix: which confounding structure produces the differences between the three
# models (the cohort's age and borough mixes are *assumed*; many mixes would give the same printed ORs), and
# anything about the 18.5% with missing ethnicity (notebook 08).
#
# ## 4. What goes wrong with "treated among referred"?
#
# Suppose we had modelled treatment among **everyone referred**, counting "never assessed" as "not treated"
# (`models.treated_among_referred` fits exactly that; it is not the paper's model). That OR mixes two gaps into one
# number. A toy table first, with **made-up round numbers, for illustration only** (not from the cohort or the
# paper): two groups of 100 referrals; group B is assessed less often, but *once assessed* both groups are treated
# at the same rate, 75%. An assessment gap, and **no** treatment gap. `models.pathway_odds` turns counts into
# probabilities per stage and odds ratios vs the reference group.

# %%
toy = pd.DataFrame({"referred": [100, 100], "assessed": [80, 60], "treated": [60, 45]},
                   index=pd.Index(["A (reference)", "B"], name="illustrative group"))
toy_stages = models.pathway_odds(toy, reference="A (reference)")
toy_stages[["assessed_per_100_referred", "treated_per_100_assessed", "treated_per_100_referred",
            "or_assessed", "or_treated_given_assessed", "or_treated_given_referred"]].round(3)

# %% [markdown]
# Read row B. Per 100 assessed, both groups are treated equally: the treated | assessed OR is exactly 1. Per 100
# referred, B has 45 treated against A's 60, so the treated | referred OR is well below 1 (0.55). A model with
# everyone referred as the denominator would report a "treatment gap" that is entirely an assessment gap. Note also
# that the assessment OR, (0.6/0.4) / (0.8/0.2) = 0.375, times the treatment OR, 1, is not the treated | referred OR (0.55): **odds do not
# multiply along a pathway; probabilities do** (B: 0.60 assessed per referral × 0.75 treated per assessed = 0.45
# treated per referral).
#
# Now the cohort, as probabilities per stage (crude: all referrals with recorded ethnicity, raw, for exploration).
# The last column is the product of the first two: treated per 100 referred = assessed per 100 referred × treated
# per 100 assessed / 100.

# %%
counts = tables.pathway_counts(frame).loc[study.GROUPS]
stages = models.pathway_odds(counts)
stages[["assessed_per_100_referred", "treated_per_100_assessed", "treated_per_100_referred"]].round(1)

# %% [markdown]
# The same numbers as odds ratios vs White British (these crude ORs are exactly the *unadjusted* logistic-regression
# ORs). The last two columns split the treated | referred OR exactly into two factors: `or_part_assessment`, the
# change in the odds of "treated per referral" when only the group's assessment probability differs from White
# British's, and `or_part_treatment`, the further change when its treatment probability differs too. Each part is
# closer to 1 than its own stage OR, because "treated per referral" is a rarer outcome than either stage (odds ratios
# of a rarer outcome track the ratio of probabilities more closely).

# %%
ors = stages[["or_assessed", "or_treated_given_assessed", "or_treated_given_referred",
              "or_part_assessment", "or_part_treatment"]]
ors.drop(index=study.REFERENCE_GROUP).round(2)

# %% tags=["nbval-check-output"]
wrong = models.treated_among_referred(frame, "unadjusted").set_index("ethnicity")["estimate"]
minority = study.GROUPS[1:]
agrees = np.allclose(wrong.reindex(minority), ors.loc[minority, "or_treated_given_referred"], rtol=1e-4)
print(f"Fitted unadjusted 'treated among referred' model = the crude OR from the probabilities: {agrees}")
gap = (np.log(ors.loc[minority, "or_treated_given_referred"])
       - np.log(ors.loc[minority, "or_treated_given_assessed"])).abs()
print(f"Groups whose treated | referred OR is within 5% of their treatment OR: {int((gap < np.log(1.05)).sum())}/{len(gap)}")
for g in minority:
    r = ors.loc[g]
    print(f"{g:<16} treatment OR {r['or_treated_given_assessed']:.2f} -> treatment part {r['or_part_treatment']:.2f}; "
          f"x assessment part {r['or_part_assessment']:.2f} = treated | referred OR {r['or_treated_given_referred']:.2f}")

# %% [markdown]
# So why does the all-referred OR land near the treatment OR in this cohort (the count printed above)? Not because it
# measures the treatment gap: the treatment gap alone, on the all-referred scale, is only the "treatment part",
# closer to 1 than the treatment OR; the assessment gap then supplies the "assessment part", and with the default
# parameters (the cohort's *assumed* assessment ORs) the two factors happen to multiply back to roughly the treatment
# OR. With a larger assessment gap the all-referred OR would fall well below the treatment OR; with no treatment gap
# at all (the toy table) it is still below 1. That is exactly the danger: read as "the treatment gap", it would blame
# treatment for losses that happened before assessment. It answers a real question (how likely is a referral to end
# in treatment?) but cannot say *where* people are lost, and that is what a service needs to know: a gap at
# assessment calls for different action (contact, waiting times, booking, outreach) than a gap after assessment
# (what is offered, whether it fits, whether people return). The paper keeps the stages apart for this reason.
#
# ## 5. How big is the treatment gap?
#
# Predicted probability of treatment among the assessed, every group standardised to the same covariate mix: the
# mix of age band, gender, year and borough of **everyone in the treatment model** (all assessed referrals with
# recorded ethnicity). `models.predicted_probabilities` keeps each assessed person's own covariates, gives them each
# ethnic group in turn and averages, so the gaps are the model's ethnic differences only. `observed` is the crude
# rate.

# %%
pp = models.predicted_probabilities(frame, "treatment", "adjusted_full").set_index("ethnicity").reindex(study.GROUPS)
pd.DataFrame({
    "predicted %": pp["probability"] * 100,
    "observed %": pp["observed"] * 100,
    "gap vs White British (points)": (pp["probability"] - pp.loc[study.REFERENCE_GROUP, "probability"]) * 100,
}).round(1)

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Interpret a printed OR
#
# Table 4 of the paper prints, for Black African referrals, a fully adjusted OR of 0.67 (complete case). Using the
# White British predicted probability of section 5 (`pp.loc["White British", "probability"]`), what chance of
# treatment after assessment does that correspond to? Convert as in notebook 06, section 2: odds = 0.67 × p₀ / (1 − p₀),
# then p₁ = odds / (1 + odds). Write one sentence that does not say "33% less likely".

# %% tags=["solution"]
p_wb = pp.loc[study.REFERENCE_GROUP, "probability"]
odds = 0.67 * p_wb / (1 - p_wb)
p_ba = odds / (1 + odds)
print(f"White British {p_wb * 100:.1f}% -> Black African about {p_ba * 100:.1f}% "
      f"(ratio of probabilities {p_ba / p_wb:.2f}, against the OR 0.67)")
print(f'Sentence: "Among people assessed, with the same age, gender, year and borough, about {p_ba * 100:.0f} in 100 '
      f'Black African people went on to treatment, against {p_wb * 100:.0f} in 100 White British people."')

# %% [markdown] tags=["solution"]
# **Solution.** The sentence printed by the cell above (numbers from this run's model). "33% less likely" misreads
# an odds ratio as a ratio of probabilities: with treatment this common, the printed ratio of probabilities is much
# closer to 1 than the OR. The gap is an inequality in what happens to people after they have been assessed by the
# service.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Change a parameter and predict
#
# Build a cohort a quarter of this run's size:
# `small = pipeline.load_study_data(p, n_referrals=max(p["n_referrals"] // 4, 2_000))` (rebuilt from the same
# targets, calibrated to Table 4 again; 2,000 is the smallest size allowed). Predict before running: will our ORs
# still lie inside the printed CIs? Will they still *round* to the printed values? How much wider will our own CIs
# be? Check with `tables.published_vs_ours(pipeline.complete_case_estimates(small), published)` (columns
# `inside_paper_ci`, `rounds_to_printed`).

# %% tags=["solution"]
n_small = max(p["n_referrals"] // 4, 2_000)
small = pipeline.load_study_data(p, n_referrals=n_small)
small_est = pipeline.complete_case_estimates(small)
small_cmp = tables.published_vs_ours(small_est, published)
small_min = small_cmp[(small_cmp["analysis"] == "complete_case") & (small_cmp["ethnicity"] != study.REFERENCE_GROUP)]
print(f"n = {p['n_referrals']:,} -> {n_small:,}")
print(f"inside printed CI: {int(small_min['inside_paper_ci'].sum())}/{len(small_min)}; "
      f"rounds to printed: {int(small_min['rounds_to_printed'].sum())}/{len(small_min)}")
trt = lambda e: e[(e["stage"] == "treatment") & (e["ethnicity"] != study.REFERENCE_GROUP)]
width = lambda e: np.log(trt(e)["ci_high"] / trt(e)["ci_low"]).median()
print(f"Our CI width ratio (small / this run): {width(small_est) / width(estimates):.2f}; "
      f"expected sqrt({p['n_referrals']:,} / {n_small:,}) = {np.sqrt(p['n_referrals'] / n_small):.2f}")

# %% [markdown] tags=["solution"]
# **Solution.** Inside the printed CI: yes (see the printed count), because the calibration targets the printed ORs
# whatever the size. Rounding exactly: not always, because whole people per cell cannot hit every ratio exactly when
# the cells are small, so some ORs can land a hair away and round to a neighbouring value. Note what does *not*
# change: the paper's printed CIs. Our own CIs grow as 1/√n, about √4 = 2 times wider for a quarter of the referrals
# (the cell prints the observed and the expected factor), so "inside the paper's CI" is a check on the point
# estimate only, not on precision.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Critique a headline
#
# A press release based on a study like this says: "Ethnic minority patients are less likely to want therapy." Use
# the denominators in this notebook and the framing in `docs/notebook_conventions.md` to rewrite it.

# %% [markdown] tags=["solution"]
# **Solution.** The data show what happened to referrals in services, not what people wanted: the treatment model
# is among people who were *assessed*, i.e. who came to the service and were seen. A defensible headline: "Among
# people assessed by South London IAPT services, those from most minority ethnic groups were less likely to go on to
# treatment than White British people." ("Most": in Table 4, Mixed referrals were treated about as often as White British ones, 73.1% vs 72.4%, and their odds ratio is below 1 only in the fully adjusted model.) Possible reasons lie in the services (what is offered after assessment,
# in which languages, with whom, with what waits) as much as in anything else, and a descriptive study cannot
# separate them (notebook 11).

# %% [markdown]
# ## Key points
#
# - Treatment is modelled among the **assessed**; "treated among referred" merges the assessment gap and the
#   treatment gap and hides where people are lost; odds do not multiply along a pathway, probabilities do.
# - Our complete-case ORs sit beside the printed Table 4 in one table and one forest plot.
# - The cohort was constructed to match Table 4, so a match proves the **pipeline**, not the paper's findings.
# - An OR of 0.77 at a 72% baseline means about 67% vs 72%, not "23% less likely".
# - The paper's weighted multiple imputation results are compared in notebook 08.
