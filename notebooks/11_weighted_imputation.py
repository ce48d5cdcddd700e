# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Inside weighted multiple imputation: the margin, the check and Rubin's rules
#
# Notebook 10 compared complete case, standard MI and weighted MI against the truth. This notebook opens up the paper's method, weighted multiple imputation: what it takes to reproduce the paper's printed weighted-MI column, how to check that the imputations hit their margin, how the M completed data sets are pooled, and why the margin must describe the referred population.
#
# **Learning objectives**
# - By the end you can say what weighted MI can and cannot change (how many records each group receives, not the link between group and outcome within a cell), and use that to judge a comparison with the paper's printed weighted-MI column.
# - By the end you can read a calibration check: the completed data's ethnic mix beside the margin.
# - By the end you can pool one coefficient over imputations by Rubin's rules by hand (within, between and total variance, degrees of freedom, fraction of missing information), and do the same with `statsmodels` fits on each completed data set.
# - By the end you can explain why weighted MI must be calibrated to the ethnic mix of the *referred* population and not to the boroughs' residents.
#
# **Prerequisites**: `10_missing_ethnicity` (the three methods, MCAR/MAR/MNAR); `09_treatment` (the treatment model).
#
# **Time needed**: about 45 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_imputations = 20
margin = "auto"

# %%
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import helpers.notebook
from helpers import census, imputation, pipeline, plots, pooling, replication, study

p = helpers.notebook.setup(globals())
data = helpers.notebook.study_data(p)
frame = data.frame
has_truth, nothing_to_impute = helpers.notebook.imputation_notes(data)


# %% [markdown]
# The three methods of notebook 10, fitted again here (the same seeds give the same imputations):

# %%
methods = pipeline.three_methods(data)
print(f"Missingness mechanism: {p['missing_mechanism'].upper() if has_truth else 'unknown (real extract)'}; "
      f"weighted MI margin: {methods.margin_label}")
margin_label, margin_used, true_mix, truth = methods.margin_label, methods.margin_used, methods.true_mix, methods.truth
estimates, treatment, assessment, wmi = methods.estimates, methods.treatment, methods.assessment, methods.weighted_mi

# %% [markdown]
# ## Against the paper's printed weighted-MI column
#
# The paper prints a weighted-MI column in Table 4 beside the complete-case one. How many of our weighted-MI treatment odds ratios (rounded to two decimals, as printed) lie inside the paper's printed weighted-MI 95% CIs?

# %% tags=["nbval-check-output"]
vs_paper = replication.published_vs_ours(wmi, pipeline.published_table4())
wmi_rows = vs_paper[(vs_paper["analysis"] == "weighted_mi") & (vs_paper["ethnicity"] != study.REFERENCE_GROUP)]
print(f"{int(wmi_rows['inside_paper_ci'].sum())} of {len(wmi_rows)} weighted-MI treatment ORs lie inside "
      "the paper's printed weighted-MI 95% CIs")
print(f"(This count is for the {p['missing_mechanism'].upper() if has_truth else 'unknown (real extract)'} mechanism and the margin '{margin_label}'; it "
      "changes with both, because our missing records follow an assumed mechanism, not the paper's real ones.)")
print(wmi_rows.loc[~wmi_rows["inside_paper_ci"], ["model", "ethnicity", "ours_or", "paper_or", "paper_ci"]]
      .round(2).to_string(index=False))

# %% [markdown]
# The misses are listed above. Why do some groups miss, when the cohort was calibrated to Table 4?
#
# The cohort was calibrated to the paper's **complete-case** column; its missing records were added by an *assumed* mechanism (notebook 10). The paper's weighted-MI column tells us something about the real missing records that our mechanism does not contain. Table 4 prints, for Black African referrals:
#
# | | unadjusted OR | age-gender-year adjusted OR | fully adjusted OR | % treated |
# |---|---|---|---|---|
# | complete case | 0.74 | 0.73 | 0.67 | 66.1 |
# | weighted MI | 0.80 | 0.78 | 0.77 | 67.7 |
#
# Weighted MI moved Black African towards White British in every model and raised the percentage treated. For the percentage to rise, the Black African referrals imputed from the missing records must have been treated **more often** than those with ethnicity recorded: the real data seem to contain a pattern specific to one group and the outcome, for example ethnicity less often recorded for Black African people who went on to be treated in some service. The fully adjusted weighted-MI column moved other groups too (Black Other: 0.65 complete case, 0.73 weighted MI), so similar patterns may exist for them.
#
# What can weighted MI change? Within one cell of the imputation model (same source, stage, age band, gender, year and borough), an imputed Black African record carries the recorded Black African link between group and treatment: weighted MI shifts *how many* records each group receives, not that link. Pooled with the recorded records, though, the imputed ones can still move an OR when recording depends on the stage, because each group receives them in proportion to its weight (`docs/weighted_mi_bounds.md` derives this). Our *assumed* mechanism has no pattern of the paper's kind (a group's recording can be better or worse, and recording improves along the pathway, by the same factor for every group). It does use that stage lever, through the groups' unequal weights, but here the lever is small: our weighted MI, given the right margin, lands near our complete-case estimates (Black African fully adjusted: 0.66 in the table above, against 0.67 complete case, which ours reproduces to the printed precision, notebook 09) instead of the paper's shifted ones. A census margin moves the estimates another way (section "Which margin?").
#
# Could some other missing part make our weighted MI give the printed column? `docs/weighted_mi_bounds.md` searches for one, with expected completed counts standing in for the pooled imputations, the recorded records fixed and every missing record given a group drawn from weighted MI's own imputation model. The search is local: what it found, not everything that exists.
#
# - **Given the true mix as its margin** (the default cohort's set-up): the best missing part found puts all 21 ORs inside the printed CIs but only 10 of 21 at the printed value, the fully adjusted column falling short, and it needs the service to leave ethnicity unrecorded for more Black African referrals than it records.
# - **Given a margin chosen freely** (Black African about 0.9 points above the true mix): 16–17 of 21 at the printed value in expectation (11–16 when actually imputed), with most of the unrecorded referrals Black African, and Mixed unmoved.
# - **A wider search** (`benchmarks/wmi_missing_slp.py`, also with a margin chosen freely): it moves Mixed too, and in expectation puts all 21 inside, 16 to 20 at the printed value and all eight percentages treated within 0.2 points. The worlds it found all leave ethnicity unrecorded almost entirely for some groups and almost never for others, or almost never before assessment. Actually imputed with 20 imputations, they meet all three in at most 3 of 10 seeds; with 100 imputations the percentages treated vary less from seed to seed, and the two worlds tried meet all three in 8 and 9 of 10 seeds (5 of 10 when the generator builds one as it builds the opt-in cohort).
# - **Built as a cohort, `missing_mechanism='mnar_wmi'`** (its missing part is described in notebook 03): the same recorded records, so the same complete-case column, and the *assumed* missing part of the second search. Its full-data truth rounds to 16 of the 21 printed weighted-MI ORs; weighted MI, given the *assumed* margin that solution needs, puts all 21 inside the printed CIs and rounds 9 to 16 of them, depending on the imputation seed.
#
# How the paper's imputation differed from the method as documented here is not known. The figures in this notebook's text are the default cohort's; the printed tables are the run's. Run this notebook on the solved world with `python -m helpers.run --only 11 -p missing_mechanism=mnar_wmi`, and ask what a reader of the paper would need to know to tell the two worlds apart.
#
# Two caveats. We cannot know whether the paper's shift is a real pattern: its margin, imputation model and number of imputations are not reported. And weighted MI itself assumes that missingness shifts each group's chance of being recorded by one amount, the same at every stage; a group x outcome interaction breaks that, so even weighted MI would not fully correct it. The paper's weighted-MI column is an estimate under assumptions, not the truth.
#
# ## Did the imputations hit the margin?
#
# A calibration check compares the ethnic mix of the completed data (averaged over the imputations) with the margin. The imputations below use the same random streams as `pipeline.mi_estimates_from_study_data` above, so they are the same draws.

# %% tags=["nbval-check-output"]
if nothing_to_impute:
    wmi_result = mar_result = None
    print(pipeline.NOTHING_TO_IMPUTE, "Every method's completed mix is the recorded mix.")
else:
    wmi_result = imputation.impute_ethnicity(frame, margin_used, p["n_imputations"],
                                             pipeline.rng_for(p, "imputation"))
    mar_result = imputation.impute_ethnicity(frame, margin_used, p["n_imputations"],
                                             pipeline.rng_for(p, "mar_imputation"), weights=None)
    margin_col = f"margin used ({margin_label})"
    calibration = 100 * pd.DataFrame({
        **({"true referred mix": true_mix} if has_truth else {}),
        margin_col: wmi_result.calibration["margin"],
        "recorded only": wmi_result.calibration["observed"],
        "completed, MAR MI": mar_result.calibration["mean_completed"],
        "completed, weighted MI": wmi_result.calibration["mean_completed"],
    })
    print("Ethnic mix, % of all referrals")
    print(calibration.round(2).to_string())
    gap = (calibration["completed, weighted MI"] - calibration[margin_col]).abs()
    if gap.max() < 0.5:
        print(f"\nWeighted MI meets the margin: largest gap {gap.max():.2f} percentage points, Monte Carlo noise "
              f"from {p['n_imputations']} imputations.")
    else:
        print(f"\nWeighted MI misses the margin by up to {gap.max():.2f} percentage points ({gap.idxmax()}): a "
              "margin share below what is already recorded cannot be met (see the warnings), so the margin is "
              "suspect.")

# %% [markdown]
# The recorded-only column is what complete case works with. MAR MI keeps close to the recorded mix, because it assumes the missing resemble the recorded. Weighted MI's completed mix should match its margin whenever that can be met; the line under the table says whether it did. With the default margin (`"auto"`, which on the default synthetic cohort means `"truth"`) the first two columns are the same. On an `mnar_wmi` cohort `"auto"` means the *assumed* margin that cohort was solved with (`"mnar_wmi"`), which is not its true mix. With any margin other than the true mix the two columns differ, and matching the margin no longer means matching the truth. The weights weighted MI used (one per group; above 1 means the group is pushed up among the imputed records):

# %%
print(pipeline.NOTHING_TO_IMPUTE if nothing_to_impute else
      wmi_result.weights.to_string(float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# ## Rubin's rules, one coefficient by hand
#
# Multiple imputation ends by **pooling**: each of the M completed data sets gives an estimate and a standard error, and Rubin's rules (Rubin 1987) combine them. Pooling happens on the **log** odds ratio scale. We work through one coefficient: Black African vs White British, treatment, fully adjusted, weighted MI. First the M completed-data estimates:

# %%
completed = [frame["ethnicity"]] * 2 if nothing_to_impute else wmi_result.completed  # no missing: M copies
worked = pooling.per_imputation_estimates(frame, completed, "treatment", "adjusted_full", "Black African")
print(f"{len(worked)} imputations; the first five:")
print(worked.head().to_string(index=False, float_format=lambda x: f"{x:.5f}"))

# %% [markdown]
# Now the rules, one line each:
#
# - pooled estimate Q̄ = the mean of the M log odds ratios;
# - **within**-imputation variance Ū = the mean of the squared standard errors (the uncertainty each completed data set reports);
# - **between**-imputation variance B = the variance of the M log odds ratios (the uncertainty from not knowing the missing values);
# - **total** variance T = Ū + (1 + 1/M) B; the pooled SE is √T;
# - λ = (1 + 1/M) B / T, the share of the total variance due to missing data, and r = (1 + 1/M) B / Ū, the relative increase in variance;
# - Rubin's degrees of freedom ν = (M − 1) / λ², for a t-based 95% CI;
# - the fraction of missing information, fmi = (r + 2/(ν + 3)) / (r + 1).

# %% tags=["nbval-check-output"]
M = len(worked)
q, u = worked["log_estimate"], worked["variance"]
q_bar = q.mean()
u_bar = u.mean()
between = q.var(ddof=1)
total = u_bar + (1 + 1 / M) * between
lam = (1 + 1 / M) * between / total
r = (1 + 1 / M) * between / u_bar
df = (M - 1) / lam**2 if lam > 0 else np.inf  # nothing missing: no between-imputation variance
fmi = (r + 2 / (df + 3)) / (r + 1)

pooled_row = wmi[(wmi["stage"] == "treatment") & (wmi["model"] == "adjusted_full")
                 & (wmi["ethnicity"] == "Black African")].iloc[0]
print(f"M = {M}")
print(f"pooled log OR {q_bar:.4f} -> OR {np.exp(q_bar):.3f}")
print(f"within {u_bar:.6f}, between {between:.6f}, total {total:.6f}, pooled SE {np.sqrt(total):.4f}")
print(f"lambda {lam:.3f}, r {r:.3f}, df {df:.0f}, fmi {fmi:.3f}")
print(f"pooled table: OR {pooled_row['estimate']:.3f}, SE {pooled_row['se']:.4f}, "
      f"df {pooled_row['df']:.0f}, fmi {pooled_row['fmi']:.3f}")

# %% [markdown]
# The hand calculation and the pooled table agree. Two things to notice. The between-imputation variance is what single imputation (fill each missing value once, analyse as if observed) leaves out, making CIs too narrow; complete case has none to leave out, its costs being the dropped records and, when the recorded referrals are not representative, bias. And the fmi is about the *coefficient*: the share of the information about this odds ratio lost to missingness, which can be larger or smaller than the share of records with missing ethnicity.
#
# ### The same pooled estimate with standard tools
#
# The M estimates above came from the project's fast fitter (`pooling.per_imputation_estimates`), but Rubin's rules do not depend on it. With tools you can use on your own data: for each completed data set, put the imputed ethnicity in place of the recorded one, keep the assessed referrals (as in notebook 09), fit the paper's model with `smf.logit`, keep the Black African coefficient and its squared SE, and pool with the same lines as above.

# %%
rhs = ("C(ethnicity, Treatment(reference='White British'))"
       " + C(age_band) + C(gender) + C(year) + C(borough)")  # the fully adjusted model, as in notebook 09
term = "C(ethnicity, Treatment(reference='White British'))[T.Black African]"
q_sm, u_sm = [], []
for ethnicity_m in completed:  # one completed data set per imputation
    rows_m = frame.assign(ethnicity=ethnicity_m)
    rows_m = rows_m[rows_m["assessed"] == 1]
    rows_m = rows_m.apply(lambda col: col.cat.remove_unused_categories()
                          if isinstance(col.dtype, pd.CategoricalDtype) else col)  # as in notebook 09
    res_m = smf.logit("treated ~ " + rhs, data=rows_m, missing="raise").fit(disp=0)
    q_sm.append(res_m.params[term])
    u_sm.append(res_m.bse[term] ** 2)
q_sm, u_sm = np.array(q_sm), np.array(u_sm)
q_bar_sm = q_sm.mean()
total_sm = u_sm.mean() + (1 + 1 / M) * q_sm.var(ddof=1)
print(f"smf.logit on each of {len(q_sm)} completed data sets, pooled by hand: "
      f"OR {np.exp(q_bar_sm):.3f}, pooled SE {np.sqrt(total_sm):.4f}")
print(f"the helpers' pooled table:                          OR {pooled_row['estimate']:.3f}, "
      f"pooled SE {pooled_row['se']:.4f}")

# %% tags=["nbval-check-output"]
diff_sm = max(abs(q_bar_sm - pooled_row["log_estimate"]), abs(np.sqrt(total_sm) - pooled_row["se"]))
print(f"Largest difference, pooled log OR or pooled SE, smf.logit route vs helpers, below 1e-6: {diff_sm < 1e-6}")

# %%
print(f"Largest difference in this run: {diff_sm:.1e}")

# %% [markdown]
# The two routes agree to rounding error. Why then the fast route? Each `smf.logit` fit works row by row; the project's fitter works on counts of covariate patterns (notebook 08, section 3.1), and this notebook's MI analyses alone need 3 weighted or MAR imputation runs (MAR MI, weighted MI, and the census-margin sensitivity analysis) x M imputations x 9 models, notebook 12 hundreds more per replicate. Same numbers, far less time.
#
# ## Which margin? Referred population or borough residents
#
# Weighted MI needs the ethnic mix of the population the sample comes from. Here that population is **everyone referred** to the services in 2013-2016. In a real study nobody knows that mix (if we knew everyone's ethnicity, nothing would be missing), so the paper calibrated to census figures; its exact margin is not reported. The obvious candidate is the 2011 Census mix of the boroughs' residents (`census.margin_from_census`).
#
# That candidate raises two problems. The practical one, which boroughs the census covers, is dealt with: our census file holds the full 2011 Census counts (QS201EW, via Nomis) for all four boroughs, Lambeth, Southwark, Lewisham and Croydon, so the margin covers the whole service area, each borough weighted by its residents (which boroughs it covers matters, since their ethnic mixes differ; the file holds each borough's counts). The fundamental one remains: **residents are the wrong population.** Unequal referral, some groups reaching IAPT less often than their share of residents would suggest, is a known concern (ONS, 2017-18: among adults with a probable common mental disorder, 9.7% of White and 6.5% of Asian people were treated in IAPT; `docs/study/iapt_context.md`). The paper's comparisons all happen inside the pathway; notebook 14 goes beyond the paper to look at referral. Calibrating referrals to residents forces the completed data to *assume there is no referral inequality*.

# %% tags=["nbval-check-output"]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    margin_census = census.margin_from_census(study.PUBLISHED_DIR / "census2011_ethnicity_boroughs.csv")
for w in caught:
    print("Warning:", w.message)
observed_mix = frame["ethnicity"].value_counts(normalize=True).reindex(study.GROUPS)
margins = 100 * pd.DataFrame({**({"referred (true mix)": true_mix} if has_truth else {}),
                              "census 2011, four boroughs": margin_census,
                              "recorded only": observed_mix})
print("\nEthnic mix, %")
print(margins.round(1).to_string())

# %% [markdown]
# A sensitivity analysis: weighted MI calibrated to the census margin beside weighted MI calibrated to the true referred mix (both margins computed above, so the comparison holds whatever `margin` this run uses). Watch the warnings (under the next cell, or under the first analysis cell if this run already uses the census): where a group's census share is *below* the share already recorded among referrals, the margin cannot be met (imputing cannot lower the recorded count), and the method sets that group's weight to almost zero, so no missing record is imputed into it.

# %%
census_sensitivity = has_truth and not nothing_to_impute  # needs the true referred mix and missing records
if census_sensitivity:
    margins_to_compare = {"truth": true_mix, "census2011": margin_census}
    wmi_by_margin = {}
    for name, mgn in margins_to_compare.items():  # reuse this run's weighted MI where it used the same margin
        res = wmi if p["margin"] == name else pooling.mi_estimates_from_rows(
            frame, imputation.impute_ethnicity(frame, mgn, p["n_imputations"], pipeline.rng_for(p, "imputation")),
            progress=False)
        wmi_by_margin[name] = res
    both = pd.concat([wmi_by_margin["truth"].assign(analysis="weighted MI, referred margin"),
                      wmi_by_margin["census2011"].assign(analysis="weighted MI, census margin")], ignore_index=True)
    census_treatment = replication.methods_vs_truth(both, truth, stage="treatment", model="adjusted_full")
    census_assessment = replication.methods_vs_truth(both, truth, stage="assessment", model="adjusted_full")
else:
    print("This sensitivity analysis needs the true referred mix (a synthetic cohort) and missing records.")

# %% tags=["nbval-check-output"]
if census_sensitivity:
    census_accuracy = pd.concat({"treatment": replication.accuracy_vs_truth(census_treatment),
                                 "assessment": replication.accuracy_vs_truth(census_assessment)}, names=["stage"])
    print(census_accuracy.to_string(float_format=lambda x: f"{x:.3f}"))
not_assessed = 100 * (frame.loc[frame["ethnicity"].isna(), "assessed"] == 0).mean()
print(f"\n{not_assessed:.0f}% of the records with missing ethnicity are of referrals never assessed "
      f"({100 * (frame['assessed'] == 0).mean():.0f}% of all referrals)")

# %%
fig = plots.compare_methods_plot(census_assessment if census_sensitivity else assessment,
                                 truth=census_assessment[["ethnicity", "truth"]].drop_duplicates()
                                 if census_sensitivity else None, stage="assessment",
                                 title="Assessed among referred: weighted MI with two margins" if census_sensitivity
                                 else "Assessed among referred: the three methods (no truth, no second margin)")
fig

# %% [markdown]
# *Figure: odds ratios of being assessed (fully adjusted), each group vs White British, from weighted MI calibrated to the true referred mix (purple diamonds) and to the 2011 Census mix of the four boroughs' residents (orange downward triangles), with 95% CIs, full-data truth as black ticks behind; log-scaled axis, dashed line at 1. (On a real extract the figure shows the three methods instead.)*
#
# Groups whose census share is much larger than their share of referrals receive many extra imputed records. What those records carry depends on who is missing. Under the default MNAR mechanism (and under MAR) the unassessed are recorded least often, so the records with missing ethnicity are far more often of people never assessed than referrals in general (both shares are printed under the accuracy table above). Those groups then gain mostly unassessed referrals and their assessment odds ratios fall below the truth: the census margin manufactures an inequality at the assessment stage by assuming away the one at referral, while the treatment stage, among the assessed, where fewer records are missing, moves less. Under MCAR the missing records would be a random sample of referrals, so the two shares would agree up to chance and the imputed records would carry the average pathway; this page does not run that case (predict what the wrong margin would do, then re-run with `missing_mechanism = "mcar"` to check). Either way the census margin answers a different question ("what if referrals looked like residents?"), not the paper's.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: change the margin and explain the shift
#
# Using the margin table and the census sensitivity analysis above: which groups' assessment odds ratios move most when weighted MI is calibrated to the census instead of the referred mix, and in which direction? Explain the shift in two or three sentences, using the words "margin", "imputed" and "not assessed". (To see it in a whole run, set `margin = "census2011"` in the parameters cell and re-run the notebook.)

# %% tags=["solution"]
if census_sensitivity:
    shift = census_assessment.pivot(index="ethnicity", columns="method", values="estimate")
    shift["census / referred"] = shift["weighted MI, census margin"] / shift["weighted MI, referred margin"]
    shift = shift.join(margins[["referred (true mix)", "census 2011, four boroughs"]])
    print(shift.sort_values("census / referred").to_string(float_format=lambda x: f"{x:.2f}"))
    more = shift["census 2011, four boroughs"] > shift["referred (true mix)"]
    down = shift["census / referred"] < 1
    print(f"\nCensus share above the referred share: {', '.join(shift.index[more])}; of these, assessment OR "
          f"lower with the census margin: {', '.join(shift.index[more & down]) or 'none'}")
else:
    print("Needs the census sensitivity analysis above (a synthetic cohort with missing records).")

# %% [markdown] tags=["solution"]
# **Solution.** The groups whose census share is well above their share of referrals (compare the first two columns of the margin table) move most; the last printed line says which of them move **down** (a ratio below 1), away from 1, as they do under the default MNAR mechanism. The census margin tells weighted MI that these groups make up a larger part of the population than the referrals do, so many more missing records are imputed into them; under MNAR the missing records are far more often of people never assessed than referrals in general (both shares printed under the census accuracy table), so each of those groups gains a block of unassessed referrals and its odds of assessment fall. (This page runs only the default mechanism; under `missing_mechanism="mcar"` the two shares should agree up to chance, so re-run with it to see which groups the printed line then names.) Groups whose census share is below their recorded share cannot reach the margin (the warnings above) and get almost no imputed records, so their comparison with White British shifts too. The shift is not a finding about assessment: it is the referral inequality, assumed away by the wrong margin, reappearing one stage later.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: critique: when would weighted MI fail?
#
# List at least three situations in which weighted MI would give biased odds ratios even with a correct implementation. For each, say whether a better margin, a better imputation model, or neither would fix it.

# %% [markdown] tags=["solution"]
# **Solution.**
# 1. **Wrong margin.** A margin from another population (residents rather than referrals, another year, other boroughs, another grouping of categories such as where Chinese is counted) calibrates to the wrong target, as the census analysis showed. Fix: a better margin, if one exists; otherwise show a sensitivity analysis over plausible margins.
# 2. **Missingness that interacts with the outcome differently by group**, e.g. one group's ethnicity recorded less often only among the treated, as the paper's Black African shift hints. Weighted MI assumes one shift per group; this breaks it. Neither fix is complete: the margin fixes totals, not how they split between treated and untreated; an imputation model cannot learn an interaction from the recorded data alone.
# 3. **An imputation model that is too simple**, e.g. leaving out an outcome or a covariate of the analysis model, or an interaction the analysis model contains (MI then pulls those associations towards zero). Fix: a richer imputation model, including every analysis variable.
# 4. **A margin the data cannot meet**: a group whose population share is below its recorded share gets a weight near zero; the completed data then cannot match the margin, which usually means the margin is wrong (point 1).
# 5. **Very small groups**: with few recorded members the imputation model is unstable and the weights are noisy; estimates and fmi for those groups deserve caution whatever the margin.

# %% [markdown]
# ## Limitations
#
# - The margin `"truth"` is knowable only in a synthetic world. With real data the margin must come from somewhere else, and this notebook shows that the obvious source, the census, describes the wrong population.
# - The imputation model has main effects only, with no interactions between the pathway variables; interactions could matter in real data, and the paper does not report its model.
# - The paper's margin, imputation model and number of imputations are not reported, so its weighted-MI column cannot be reproduced exactly; the misses above are reported, not tuned away.
#
# ## Key points
#
# - Weighted MI corrects the ethnic mix of the completed data to a known margin, and works when the margin describes the population the sample comes from and missingness shifts each group by its own amount.
# - For this study the margin must describe the **referred** population, not borough residents: calibrating to residents assumes there is no referral inequality, a question the paper does not estimate (notebook 14 goes beyond it), and that assumption distorts the comparisons inside the pathway.
# - Rubin's rules add the between-imputation variance to the within-imputation variance; the fmi shows how much information about a coefficient the missing data cost.
