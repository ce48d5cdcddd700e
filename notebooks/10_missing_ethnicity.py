# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Missing ethnicity
#
# Nearly one referral in five in the paper had no recorded ethnicity; this notebook asks what that does to the pathway comparisons of notebooks 06-09, and compares three ways of handling it against a truth that only a synthetic cohort can show. Notebook 11 then opens up the paper's method, weighted multiple imputation.
#
# **Learning objectives**
# - By the end you can give three reasons why ethnicity goes unrecorded in IAPT records, and explain why those reasons make "missing completely at random" unlikely.
# - By the end you can define MCAR, MAR and MNAR using this cohort, and say which of them the recorded data can and cannot rule out.
# - By the end you can compare complete-case, standard (MAR) multiple imputation and weighted multiple imputation estimates with the known full-data truth, and explain why the assessment stage is hit harder than the treatment stage.
#
# **Prerequisites**: `08_assessment` and `09_treatment` (the logistic models and their odds ratios); the idea of a sampling distribution. No earlier exposure to multiple imputation is assumed.
#
# **Time needed**: about 40 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
missing_mechanism = "mnar"
missing_share = 0.185
n_imputations = 20

# %%
import numpy as np
import pandas as pd

import helpers.notebook
from helpers import params, pipeline, plots, replication, tables, targets

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame
has_truth, nothing_to_impute = helpers.notebook.imputation_notes(data)

# %% [markdown]
# ## Why ethnicity goes missing in IAPT records
#
# Ethnicity is one field among many in an IAPT record. Where in the pathway it is recorded is not reported for this study (it may come with the referral or be asked by the service later), and there are three ways it can be *not* there: the NHS codes **Z** "not stated" (the person was asked and chose not to say) and **99** "not known" (for example, never asked), or a field simply left blank.
#
# The reasons a field stays empty are not reported for this study; the plausible ones are about **services and how they record** rather than the people referred (this cohort builds in all three, as an *assumed* mechanism: missingness depends on the stage, the borough and, under the default MNAR setting, the group):
#
# - **Stage of the pathway.** If the question is asked at a first appointment, someone who is never assessed has fewer chances of having their ethnicity recorded than someone who went on to treatment.
# - **Service.** Forms, IT systems and routines differ between services and boroughs, and so does how complete the field is.
# - **The relationship between service and person.** Whether staff ask, how they ask, and whether people feel able to answer can differ between groups, for example where earlier experiences of services have reduced trust. That is an inequality in how services reach people; it says nothing about a group's "traits".
#
# None of these is random. The first thing to look at is how the missing records are coded:

# %% tags=["nbval-check-output"]
missing_rows = frame["ethnicity"].isna()
print(f"Ethnicity missing: {100 * missing_rows.mean():.1f}% of referrals")
if data.from_counts:  # Z, 99 and blank are one "missing" in pattern counts
    print("Not available from pattern counts: the split by code (Z, 99, blank); the counts keep only 'missing'.")
else:
    codes = frame.loc[missing_rows, "ethnic_code"].astype(str).replace({"": "blank"}).value_counts()
    codes = codes[codes > 0]
    print((100 * codes / codes.sum()).round(1).rename("% of missing records").to_string())

# %% [markdown]
# The split between Z, 99 and blank is *assumed* in the synthetic cohort (the paper does not report it). In a real extract it is worth reporting: many "not stated" (Z) suggest people were asked and declined, many "not known" (99) or blanks that they were not asked. Both describe how services record, not the people referred (notebook 15).
#
# ## MCAR, MAR and MNAR, with this cohort
#
# Statisticians sort missing data into three kinds, by *what the chance of being missing depends on*:
#
# | kind | the chance that ethnicity is missing ... | in this cohort it would mean ... |
# |---|---|---|
# | **MCAR** (missing completely at random) | is the same for every referral | a random 18.5% of records had the field wiped |
# | **MAR** (missing at random) | depends only on things we *can* see in the record | it depends on pathway stage and borough, but among referrals at the same stage in the same borough it is the same whatever their ethnic group |
# | **MNAR** (missing not at random) | depends on the missing value itself, even after allowing for what we can see | at the same stage in the same borough, some groups' ethnicity still goes unrecorded more often than others' |
#
# The cohort uses an **MNAR** mechanism by default (parameter `missing_mechanism`), with *assumed* log-odds of being missing in the targets file (the paper reports only the 18.5%). Their sizes were chosen, not estimated: an intercept solved so that 18.5% are missing overall, stage terms under which referrals never assessed are recorded least often, and moderate shifts by group (the `group` rows below). They are plausible for routine records, but no data stand behind them.

# %%
t = targets.load_targets(params.targets_file(p))
mechanism = t.table[t.table["quantity"] == "missing_log_odds"]
mechanism[["ethnicity", "level", "value", "source"]].rename(columns={"value": "log-odds of missing"})

# %% [markdown]
# Rows with `level` "group" are used only under MNAR; the stage and borough rows under both MAR and MNAR. Every value is *assumed*.
#
# What can the **recorded** data tell us? We can see how often ethnicity is missing at each stage of the pathway and in each borough, because stage and borough are always recorded:

# %% tags=["nbval-check-output"]
by_stage = tables.missing_by(frame, "pathway_stage")
by_borough = tables.missing_by(frame, "borough")
print("% missing by pathway stage")
print(by_stage["pct_missing"].round(1).to_string())
print("\n% missing by borough")
print(by_borough["pct_missing"].round(1).to_string())

# %% [markdown]
# If the shares differ by stage, the data are **not MCAR**: that much the records alone can show. But they cannot tell MAR from MNAR: that needs the ethnic group of the very people whose ethnicity is missing. Only a synthetic world lets us look. The truth file holds every referral's true group:

# %% tags=["nbval-check-output"]
if has_truth:
    true_groups = pipeline.true_frame(data)["ethnicity"]
    by_true_group = tables.missing_by(frame, true_groups, name="true ethnic group")
    print("% missing by true ethnic group (knowable only in a synthetic cohort)")
    print(by_true_group["pct_missing"].round(1).to_string())
else:
    print("A real extract has no true group for the missing records: this table exists only in a synthetic cohort.")

# %% [markdown]
# Read this table with care: a group can have more missing records for two reasons. Under MNAR its own recording is worse; but even under MAR a group that is less often assessed (notebook 08) would have more missing records, because unassessed referrals are recorded less often. The table mixes both.
#
# The practical lesson: **in real data you can show that ethnicity is not MCAR, but you can never show that it is MAR.** Any method that handles the missing values rests on an assumption that the data cannot check.
#
# ## Three methods against the truth
#
# | method | what it does | what it assumes |
# |---|---|---|
# | **Complete case** (CC) | drops referrals with missing ethnicity | the recorded referrals give the same odds ratios as all referrals (true under MCAR, and in some MNAR cases) |
# | **Standard MI** (MAR MI) | fills in each missing ethnicity 20 times (`n_imputations`) by drawing from a model of ethnicity given referral source, pathway stage, age band, gender, year and borough, fitted to the recorded rows; analyses each completed data set and pools | MAR: among referrals alike in all those variables, the missing have the same ethnic mix as the recorded |
# | **Weighted MI** (the paper's method) | the same, but the imputation model is re-weighted so that the completed data match a known *population* ethnic mix, the **margin** (Pham et al. 2019; Stata `mi impute wmlogit`) | the margin is right for this population, and missingness shifts each group's chance of being recorded by its own amount without interacting with the other variables |
#
# Note that the imputation model includes the **outcomes** (referral source, assessed, treated): an imputation model must contain every variable of the analysis model, or it would pull the odds ratios towards 1 (White, Royston & Wood 2011, *Statistics in Medicine* 30:377-399; for weighted MI, Pham et al. 2019, `docs/study/weighted_mi.md`).
#
# The margin is the parameter `margin`: by default `"auto"`, on a synthetic cohort `"truth"`, the true ethnic mix of all referrals, which only a synthetic world knows (notebook 11 returns to this choice); the cell below prints the one this run uses. Every method aims at the **full-data truth**: the same models fitted with every referral's true group.

# %%
# complete_case_estimates, then mi_estimates_from_study_data(weighted=False) (MAR MI; the same as complete case when
# nothing is missing) and (weighted=True), each set beside the full-data truth (None on a real extract):
methods = pipeline.three_methods(data)
print(f"Missingness mechanism: {p['missing_mechanism'].upper() if has_truth else 'unknown (real extract)'}; "
      f"weighted MI margin: {methods.margin_label}")
margin_label, margin_used, true_mix, truth = methods.margin_label, methods.margin_used, methods.true_mix, methods.truth
estimates, treatment, assessment = methods.estimates, methods.treatment, methods.assessment

# %% [markdown]
# First the paper's headline stage, treatment among the assessed, in the fully adjusted model:

# %%
fig = plots.compare_methods_plot(treatment, truth=treatment[["ethnicity", "truth"]].drop_duplicates() if has_truth
                                 else None, stage="treatment",
                                 title="Treated among assessed (fully adjusted): three methods and the truth")
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "10_methods_treatment.png"))
fig

# %% [markdown]
# *Figure: odds ratios of being treated among the assessed, each group vs White British, fully adjusted model. For each of the seven groups three dodged points with 95% CIs show complete case (circles), standard MAR MI (triangles) and weighted MI (squares); a black vertical tick, drawn behind the points, marks the full-data truth (absent on a real extract). The x axis is log scaled with a dashed line at 1; the legend is under the plot.*
#
# And the assessment stage, among everyone referred:

# %%
fig = plots.compare_methods_plot(assessment, truth=assessment[["ethnicity", "truth"]].drop_duplicates()
                                 if has_truth else None, stage="assessment",
                                 title="Assessed among referred (fully adjusted): three methods and the truth")
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "10_methods_assessment.png"))
fig

# %% [markdown]
# *Figure: the same layout for the odds of being assessed among all referrals (fully adjusted; assessment effects are* assumed *in the cohort): three dodged points with 95% CIs per group and a black tick for the full-data truth.*
#
# The same comparison in numbers: for each method, the average and largest distance from the truth on the log scale (0.05 is about a 5% difference in the odds ratio), and how many of the seven 95% CIs contain the truth.

# %% tags=["nbval-check-output"]
if has_truth:
    accuracy = pd.concat({"treatment": replication.accuracy_vs_truth(treatment),
                          "assessment": replication.accuracy_vs_truth(assessment)}, names=["stage"])
    print(accuracy.to_string(float_format=lambda x: f"{x:.3f}"))
else:  # no truth: the three methods side by side (odds ratios, fully adjusted)
    side_by_side = pd.concat({"treatment": treatment.pivot(index="ethnicity", columns="method", values="estimate"),
                              "assessment": assessment.pivot(index="ethnicity", columns="method", values="estimate")},
                             names=["stage"])
    print("No truth on a real extract: the methods' odds ratios side by side")
    print(side_by_side.to_string(float_format=lambda x: f"{x:.2f}"))

# %% [markdown]
# The verdicts below are printed from this table, so they follow the mechanism and margin of the run. We call a method *close to the truth* when no group's odds ratio is more than 0.05 from it on the log scale and every CI contains it (a convention of this notebook, not a statistical test):

# %% tags=["nbval-check-output"]
print(f"Mechanism: {p['missing_mechanism'].upper() if has_truth else 'unknown (real extract)'}; weighted MI margin: {margin_label}")
for (stage, method), row in (accuracy.iterrows() if has_truth else []):
    close = row["max_abs_log_difference"] <= 0.05 and row["cis_covering_truth"] == row["groups"]
    print(f"{stage:>10}, {method:<13}: {'close to the truth' if close else 'DRIFTS from the truth'} "
          f"(largest distance {row['max_abs_log_difference']:.3f}; "
          f"{int(row['cis_covering_truth'])} of {int(row['groups'])} CIs contain it)")

# %% [markdown]
# How to read this, and why the stages differ. Which case applies depends on the mechanism printed above:
#
# - **MNAR (the default), assessment.** Missingness depends on the outcome itself (unassessed referrals are recorded less often) *and* on the group. Complete case keeps a slice of each group in which the assessed are over-represented, by a different amount per group, so its odds ratios can drift from the truth. MAR MI repairs the part that runs through the outcome (its imputation model includes the pathway stage), but it lands no closer to the truth than complete case (the accuracy table above): it assumes that among referrals alike in the recorded variables the missing have the recorded ethnic mix, so groups recorded less often are under-imputed. Weighted MI is told each group's total (the margin) and re-weights the imputations to match it; with a wrong margin it can drift further than the others (notebook 11, "Which margin?").
# - **MNAR, treatment.** Dropping unrecorded referrals leaves an odds ratio unchanged in two cases. If recording depends on the **outcome only** (treated referrals are recorded more often, by the same factor in every group), every group keeps the same share of its treated and the same share of its untreated referrals, so every group's odds of treatment are multiplied by the same number and their ratio does not move; case-control studies rely on exactly this when they sample cases and controls at different rates. If recording depends on the **group only**, a group loses the same share of its treated and untreated referrals, so its odds do not move at all. Only recording that depends on group and outcome *together* shifts the odds ratio. Among the assessed, our *assumed* mechanism comes close to the two harmless cases, so the methods can land near the truth. This is a property of the assumed mechanism, not a law: notebook 12 shows how close "near" is over many cohorts.
# - **MAR** (`missing_mechanism="mar"`): recording depends on pathway stage and borough only, not on the group. Borough is in the fully adjusted model and the stage is (almost) the outcome, so the recorded referrals give nearly the full-data odds ratios, and no method has much to repair.
# - **MCAR** (`missing_mechanism="mcar"`, Exercise 1): the recorded referrals are a random sample of all referrals; nothing drifts, and all three methods should be close to the truth.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: predict, then run: complete case under MCAR
#
# Suppose ethnicity were missing **completely at random**: the same 18.5% chance for every referral. Predict: would the complete-case *assessment* odds ratios be close to the full-data truth? Would their CIs be wider or narrower than the full-data ones, and by roughly what factor (notebook 00, Exercise 2: SEs scale with 1/√n)? Then check, writing the code yourself with the tools of section "Three methods against the truth": build the same synthetic cohort with `missing_mechanism` set to `"mcar"` (on a real extract, from the run's synthetic parameters: only a synthetic world has a truth), set its complete-case assessment estimates beside the full-data ones, summarise their distance as the accuracy table does, and compare the two sets of standard errors.

# %% tags=["solution"]
data_mcar = pipeline.load_study_data(pipeline.synthetic_params(p), missing_mechanism="mcar")  # a synthetic world
cc_mcar = pipeline.complete_case_estimates(data_mcar)
truth_mcar = pipeline.truth_estimates(data_mcar)
assessment_mcar = replication.methods_vs_truth(cc_mcar, truth_mcar, stage="assessment")
print(replication.accuracy_vs_truth(assessment_mcar).to_string(float_format=lambda x: f"{x:.3f}"))

# CI widths: the CI is estimate x/÷ exp(1.96 SE), so its width on the log scale is proportional to the SE
se = pd.DataFrame({name: d[(d["stage"] == "assessment") & (d["model"] == "adjusted_full")].set_index("ethnicity")["se"]
                   for name, d in {"complete case SE": cc_mcar, "full-data SE": truth_mcar}.items()}).dropna()
se["ratio (CI width CC / full data)"] = se["complete case SE"] / se["full-data SE"]
print("\nAssessment, fully adjusted, MCAR")
print(se.to_string(float_format=lambda x: f"{x:.3f}"))
print(f"median ratio {se.iloc[:, 2].median():.3f}; "
      f"sqrt(1 / (1 - missing share)) = {np.sqrt(1 / (1 - p['missing_share'])):.3f}")

# %% [markdown] tags=["solution"]
# **Solution.** Under MCAR the recorded referrals are a random sample of all referrals, so complete case estimates the full-data odds ratios and its 95% CIs contain the truth (under the default MNAR its assessment row of the accuracy table drifts). In this *calibrated* cohort the differences are practically zero, because the missing records are an exact scaled copy of the recorded ones; in a randomly drawn cohort they would be of the size of sampling noise (notebook 12 draws many). The price is precision only: every complete-case CI is **wider** than the full-data one, by close to √(1 / (1 − missing share)), the value printed beside the median ratio (the SE of a log odds ratio scales with one over the square root of the number of records). MCAR is the one case where complete case is both unbiased and honest, and the default cohort's records (missingness differing by stage) already show it does not hold.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: interpret for a service manager
#
# A service manager reads the table "% missing by pathway stage" above and says: "So ethnicity is missing at random; we can simply analyse the records that have it." Write them a reply of four or five sentences: what the table does show about MCAR, what it cannot show about MAR versus MNAR, and what that means for the complete-case odds ratios of assessment. Name one thing the service could record or report that would help.

# %% [markdown] tags=["solution"]
# **Solution.** The share missing differs by stage, so the records are **not MCAR**: the referrals with ethnicity are not a random sample of all referrals. Whether they are MAR (missingness explained by stage, borough and the other recorded variables) or MNAR (some groups still recorded less often at the same stage and borough) the records cannot show: that needs the ethnic group of exactly the people whose group is missing, which only a synthetic cohort (the by-true-group table above) can look at. Assessment is most at risk: recording depends on the outcome itself (the unassessed are recorded least often), so if it also depends on the group, the complete-case odds ratios drift, as the accuracy table shows for this cohort. Worth recording or reporting: the split between "not stated" (Z), "not known" (99) and blank by stage and service, which separates people who declined from people never asked, and the share missing by service and year.

# %% [markdown]
# ## Limitations
#
# - The missingness mechanism is *assumed*: the paper reports only that 18.5% of ethnicity was missing. Every comparison with the truth here is a comparison under that assumption; a different mechanism (notebook 12 tries three) gives different verdicts.
# - One cohort is one draw: in this calibrated cohort the recorded counts are constructed, so complete case's distance from the truth is systematic, while the MI methods add imputation noise and, in random mode, every method has sampling noise. Notebooks 12 and 13 measure bias and coverage over many cohorts.
#
# ## Key points
#
# - Ethnicity plausibly goes missing through how services record it (stage, service, the relationship between service and person; the study does not report the reasons), so MCAR is unlikely; the recorded data can show it is not MCAR but never that it is MAR.
# - Complete case and standard MI can mis-state group comparisons when recording depends on the group; the damage is largest where recording also depends on the outcome (here, assessment).
# - Comparing each method with a known truth is possible only in a synthetic world; with real data the methods can only be compared with each other and with what they assume. Notebook 11 looks inside weighted MI; notebooks 12 and 13 repeat the comparison over many cohorts.
