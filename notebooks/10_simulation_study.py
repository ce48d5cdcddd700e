# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · A simulation study of the missing-data methods
#
# Notebook 08 compared complete case, standard MI and weighted MI on one cohort; this notebook draws many cohorts under three missingness mechanisms and measures each method's bias and confidence-interval coverage, the way methodologists test a method before trusting it.
#
# **Learning objectives**
# - By the end you can describe a simulation study in the ADEMP structure: aims, data-generating mechanisms, estimands, methods, performance measures.
# - By the end you can explain what the estimand of this study is (the full-data population odds ratio) and why it differs between missingness mechanisms.
# - By the end you can compute and interpret bias, empirical SE, model SE and coverage, each with its Monte Carlo standard error.
# - By the end you can judge whether a number of replicates is enough to detect a bias of a given size, and run the full study from the command line.
# - By the end you can say under which mechanism each method can be trusted here, and what this simulation cannot tell you.
#
# **Prerequisites**: `08_missing_ethnicity` (the three methods, MCAR/MAR/MNAR) and `09_weighted_imputation` (Rubin's rules, the margin); the idea of a sampling distribution and of a 95% confidence interval.
#
# **Time needed**: about 60 minutes.

# %% tags=["parameters"]
# The parameters this notebook uses (data, imputation, simulation, output); any other keeps its default (helpers.params).
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
output_dir = "../outputs"

# %%
import time

import numpy as np
import pandas as pd
from scipy.stats import binom, norm

import helpers.notebook
from helpers import plots, simulation, study

p = helpers.notebook.setup(globals())
sim = simulation.simulation_parameters(p)  # n_sims, n_referrals, seed, missing share, targets file
sim_imputations = min(p["n_imputations"], simulation.DEFAULT_SIM_IMPUTATIONS)
print(f"{sim['n_sims']} replicates of {sim['n_referrals']:,} referrals per mechanism; "
      f"{sim_imputations} imputations per MI analysis")
if p["data_path"]:
    print("This notebook is about synthetic worlds: it simulates its own cohorts and does not use the real extract.")

# %% [markdown]
# ## Why simulate?
#
# In notebook 08 each method gave one estimate per group, from one cohort. An estimate close to the truth may be luck; one far from it may be bad luck. To tell a **method's** behaviour from **chance** we need its sampling distribution: what it gives over many cohorts drawn the same way. A simulation study does exactly that: draw a cohort from a known data-generating process, apply every method, record the estimates, and repeat R times.
#
# Morris, White and Crowther (2019, "Using simulation studies to evaluate statistical methods", *Statistics in Medicine* 38:2074-2102) recommend planning and reporting a simulation study under five headings, **ADEMP**. We follow them.
#
# ## A · Aims
#
# To compare complete case, standard (MAR) multiple imputation and weighted (population-calibrated) multiple imputation as estimators of the odds ratio of being **treated among those assessed**, each ethnic group vs White British, adjusted for age, gender, year and borough (the paper's main model), when ethnicity is missing completely at random, at random, or not at random.
#
# ## D · Data-generating mechanisms
#
# Each replicate is a whole synthetic cohort of `simulation_n_referrals` referrals, drawn at random (`outcome_mode="random"`) from the same cell probabilities that build the project's cohort (notebook 02): the group, covariate and pathway effects are the calibrated and *assumed* ones, and 18.5% of ethnicity is expected to be missing (`missing_share`). Three mechanisms decide *whose* ethnicity goes missing (all *assumed*; notebook 08 shows the log-odds):
#
# - **MCAR**: the same chance for every referral;
# - **MAR**: the chance depends on pathway stage and borough only;
# - **MNAR**: it also depends on the ethnic group itself.
#
# The expected percentage missing, by pathway stage and by true group, under each mechanism (from the expected counts, before any sampling):

# %% tags=["nbval-check-output"]
worlds = {m: simulation.make_world(m, n_referrals=sim["n_referrals"], missing_share=sim["missing_share"],
                                   targets_path=sim["targets_path"])
          for m in simulation.MECHANISMS}
by_stage = pd.concat([simulation.expected_missing(w, "stage") for w in worlds.values()], axis=1)
by_group = pd.concat([simulation.expected_missing(w, "group") for w in worlds.values()], axis=1)
print("Expected % missing by pathway stage")
print(by_stage.to_string(float_format=lambda x: f"{x:.1f}"))
print("\nExpected % missing by true ethnic group")
print(by_group.to_string(float_format=lambda x: f"{x:.1f}"))

# %% [markdown]
# Each replicate gets its own seed, derived from the one `seed` parameter (`numpy.random.SeedSequence` spawn keys: replicate number and mechanism), so the study is reproducible, and replicate r is the same cohort whether you run 20 replicates or 500.
#
# ## E · Estimands
#
# The estimand is the **full-data population odds ratio**: the odds ratio the fully adjusted model would give if it were fitted to the *whole* referred population, those with and without recorded ethnicity, with every person's true group. We compute it without sampling, by fitting the model to the *expected* counts of the data-generating process (`simulation.true_values`). It is the same target for all three methods, and it does not depend on the cohort size.
#
# It does depend on the mechanism, and it should, because each mechanism builds a different population. The worlds are built in two parts (`cohort.expected_counts`). The referrals **with** recorded ethnicity are held fixed: the same in every world, calibrated to the paper's Table 4, which describes exactly those referrals. The referrals with **missing** ethnicity are then added on top, according to the mechanism: under MCAR as a scaled copy of the recorded part, under MAR tilted towards the stages and boroughs recorded less often, under MNAR also towards the groups recorded less often. So the *full* referred population, recorded plus missing, differs between the three worlds, and the estimand is the full-population odds ratio of the world the cohort was drawn from: what every method should recover in that world.
#
# In detail: under MCAR and MAR the missing records are (given the model's covariates and the outcome) a fair slice of each group, and the estimand equals the planted odds ratio. Under MNAR the people whose ethnicity goes unrecorded are a different slice of each group's pathway, so the full population's odds ratios differ from those of the recorded part: that difference is precisely what a missing-data method has to recover.

# %% tags=["nbval-check-output"]
truth = pd.concat({simulation.MECHANISM_LABELS[m]: w.truth.set_index("ethnicity")["truth"]
                   for m, w in worlds.items()}, axis=1)
print("True odds ratios (treated among assessed, fully adjusted), vs White British")
print(np.exp(truth).to_string(float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# The same point as a picture. For each world, the records with missing ethnicity it adds to the same recorded referrals (counted among the assessed, who are the treatment model's rows), and the true odds ratio that results, beside the odds ratio of the recorded referrals alone (identical in every world, since the recorded part is):

# %%
estimands = simulation.estimand_by_mechanism(worlds, labels=simulation.MECHANISM_LABELS)
fig = plots.estimand_plot(estimands)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "10_estimand_by_mechanism.png"))
fig

# %% [markdown]
# *Figure: estimand versus missingness mechanism, two panels with one row per group (vs White British). Left: bars, one per mechanism, for the expected number of assessed referrals with missing ethnicity each world adds per 100 assessed referrals with ethnicity recorded; under MCAR every group gets the same number, under MAR and MNAR the numbers differ between groups. Right: each world's true odds ratio of treatment among the assessed (coloured markers, one per mechanism) and, as a black tick, the odds ratio of the recorded referrals alone, the same in every world; log-scaled axis with a dashed line at 1. Where a world's marker sits off the black tick, the full population of that world has another odds ratio than its recorded part: that difference is what a missing-data method must recover, and it differs between worlds.*

# %% [markdown]
# ## M · Methods
#
# 1. **Complete case**: the model on the referrals with recorded ethnicity; Wald 95% CI.
# 2. **MAR MI**: standard multiple imputation (imputation model: referral source, pathway stage, age band, gender, year, borough); Rubin's rules, t-based 95% CI.
# 3. **Weighted MI**: as 2, calibrated to the *expected* ethnic mix of all referrals under the mechanism. That is a population figure fixed before any data are drawn, like a census, rather than each replicate's own realised mix, which no analyst could know. It is the ideal margin: the simulation asks how weighted MI behaves when its margin is right.
# 4. **Full data** (benchmark, not a real option): the model with every referral's true group. It shows how much of any apparent bias is Monte Carlo noise, and the best precision any method could reach.
#
# Each MI analysis inside the simulation uses `sim_imputations` imputations (at most `simulation.DEFAULT_SIM_IMPUTATIONS` = 5, fewer than the 20 of notebook 08). **Why 5: run time.** The cost of an MI analysis grows roughly in proportion to the number of imputations M, so with 20 the study's MI analyses would take about four times as long as with 5, for a teaching notebook that CI re-runs on every change (this run's time is printed under "Running the full study"). **The cost is in Monte Carlo terms.** With a fraction of missing information f, an MI estimate's variance is about (1 + f/M) times what infinitely many imputations would give: for example, with f = 0.2, 4% more at M = 5 against 1% more at M = 20. So each replicate's estimate is a little noisier, the empirical SE and the MCSE of bias a little larger, and slightly more replicates are needed for the same precision. Rubin's rules (the (1 + 1/M) B term and the t degrees of freedom) account for M, so the method's bias and coverage are not changed.
#
# ## P · Performance measures
#
# For each mechanism, method and group, over R replicates with estimates θ̂ᵢ, model SEs sᵢ and true value θ (all on the log odds ratio scale):
#
# | measure | definition | Monte Carlo SE |
# |---|---|---|
# | **bias** | mean(θ̂ᵢ) − θ | empirical SE / √R |
# | **empirical SE** | SD(θ̂ᵢ): how much the estimate really varies between cohorts | empirical SE / √(2(R − 1)) |
# | **model SE** | √mean(sᵢ²): what the method *says* its SE is | √(Var(sᵢ²) / (4R · model SE²)) |
# | **coverage** | share of 95% CIs that contain θ | √(coverage (1 − coverage) / R); at the nominal level √(0.95 × 0.05 / R) |
#
# The Monte Carlo SE (MCSE) is the uncertainty of the performance measure itself that comes from using only R replicates (Morris et al. 2019, Table 6). A bias smaller than about two MCSEs cannot be told apart from zero.
#
# **Warning: a coverage of 100% has an MCSE of 0.** With few replicates it is common for every CI of a group to cover the truth (coverage = 1, or 0 at the other extreme). √(coverage (1 − coverage) / R) is then 0, as if coverage were known exactly; it is not, the formula has only been given an extreme estimate. `simulation.summarise` therefore also reports `coverage_mcse_nominal` = √(0.95 × 0.05 / R), the MCSE a coverage estimate has when the true coverage is 95%: use it to judge whether a coverage differs from 95%. The figure's coverage bars use it.
#
# ## Running the study

# %%
started = time.perf_counter()
results = simulation.run_simulation(
    n_sims=sim["n_sims"], n_referrals=sim["n_referrals"], seed=sim["seed"], missing_share=sim["missing_share"],
    targets_path=sim["targets_path"], mechanisms=simulation.MECHANISMS, methods=simulation.METHODS,
    n_imputations=sim_imputations, stage="treatment", model="adjusted_full",
)
run_seconds = time.perf_counter() - started  # used below to estimate the run time of a full study
results.to_csv(helpers.notebook.output_path(p, "tables", "10_simulation_estimates.csv"), index=False)
results.head()

# %% [markdown]
# One row per replicate, mechanism, method and group: the true value, the estimate, its SE and CI (log scale), whether the CI covered the truth, and the replicate's realised share of missing ethnicity. The performance measures summarise these rows:

# %% tags=["nbval-check-output"]
summary = simulation.summarise(results)
summary.to_csv(helpers.notebook.output_path(p, "tables", "10_simulation_performance.csv"), index=False)
overview = simulation.overview(summary)
print("Averaged over the seven groups (log OR scale); max_bias_in_mcse = largest |bias| / MCSE of bias")
print(overview.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

# %%
fig = plots.simulation_plot(summary)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "10_simulation_bias_coverage.png"))
fig

# %% [markdown]
# *Figure: simulation results in two rows of three panels, one column per mechanism (MCAR, MAR, MNAR). Top row: bias of the log odds ratio for each of the seven groups vs White British, with a dashed line at zero and horizontal bars of ±2 Monte Carlo SEs of the bias; bottom row: coverage of the 95% CI, with a dashed line at the nominal 0.95 and bars of ±2 MCSEs at the nominal level (√(0.95 × 0.05 / R), which does not shrink to zero when every CI covers; cut off at 1, since a coverage cannot exceed it). In each panel four methods are dodged per group: the full-data benchmark (grey diamonds), complete case (circles), MAR MI (triangles) and weighted MI (squares). A bias whose bar crosses zero is within Monte Carlo noise.*
#
# How to read it, and what to expect:
#
# - **MCAR**: every method should be unbiased and cover at about 95%; the imputation methods buy a little precision at most.
# - **MAR** (here: recording depends on stage and borough): for an odds ratio among the assessed, the recorded referrals still give nearly the right answer, and MI has little to add.
# - **MNAR** (recording depends on the group too): complete case and MAR MI can drift, and weighted MI, told the right margin, should drift least.
#
# Under MCAR the coverages in the table above can sit well above 0.95, for the full-data benchmark and complete case as well as for the two MI methods. Is that what 95% intervals predict for this many estimates? The cell below counts the misses and compares each method's model SE with its empirical SE (`rel_error_se`, with its MCSE):

# %% tags=["nbval-check-output"]
mcar = summary[summary["mechanism"] == "MCAR"]
n_ci = int(mcar.groupby("method")["n_sim"].sum().iloc[0])  # replicates x groups, the same for every method
mcar_check = mcar.groupby("method", sort=False).agg(coverage=("coverage", "mean"), rel_error_se=("rel_error_se", "mean"),
                                                    rel_error_se_mcse=("rel_error_se_mcse", "mean"))
mcar_check.insert(1, "CIs missing the truth", ((1 - mcar_check["coverage"]) * n_ci).round().astype(int))
low_miss, high_miss = binom.interval(0.95, n_ci, 0.05)
print(f"MCAR: {n_ci} intervals per method; 95% coverage predicts {0.05 * n_ci:.1f} misses, "
      f"between {low_miss:.0f} and {high_miss:.0f} in 95% of runs if the intervals were independent")
print(mcar_check.to_string(float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# How to read it. `rel_error_se` is how much larger, in %, the average model SE is than the spread of the estimates across replicates; a positive value means intervals wider than needed, hence coverage above 95%. Two things point to Monte Carlo error rather than to a fault of any method:
#
# - **The full-data benchmark and complete case over-cover too**, and neither uses imputation or Rubin's rules. What they share with the MI methods is the cohorts: every method analyses the *same* replicates, so when those replicates happen to scatter less than the model SEs say, every method's coverage rises together.
# - **The empirical SE is itself uncertain.** With R replicates it is known only to within about 100/√(2(R − 1)) percent (16% at R = 20), which is why `rel_error_se_mcse` is large; a `rel_error_se` within about two of its MCSEs is chance. And the seven intervals of one replicate share their White British reference group, so their misses come in clumps; the binomial range above, which assumes independent intervals, is if anything too narrow.
#
# Rubin's variance can also be a little conservative when the imputation model is richer than the analysis model ("uncongeniality", Meng 1994): here the imputation model uses referral source and every referral's pathway stage, while the treatment model uses neither and sees only the assessed. That could add to the MI methods' coverage beyond the benchmark's, but at this R it cannot be told apart from chance; the full study (below) can.
#
# Whether the points differ from zero by more than chance is the next question.
#
# ## Monte Carlo error: is the bias real?
#
# The table below shows each group's bias under MNAR with its MCSE, for complete case, weighted MI and the full-data benchmark. The full-data estimates are unbiased by construction, so their "bias" shows the size of pure Monte Carlo noise at this number of replicates. All methods analyse the *same* cohorts, so their chance errors move together: a method's bias is best judged beside the full-data column of the same run.

# %% tags=["nbval-check-output"]
mnar = summary[summary["mechanism"] == "MNAR"].pivot(index="ethnicity", columns="method",
                                                      values=["bias", "bias_mcse"])
mnar = mnar.reindex(study.GROUPS[1:])
cols = [(k, m) for m in ("full_data", "complete_case", "weighted_mi") for k in ("bias", "bias_mcse")]
print("MNAR: bias and its Monte Carlo SE (log OR scale)")
print(mnar[cols].to_string(float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# How many replicates would we need? The MCSE of the bias is empirical SE / √R, so to make it at most δ we need R ≥ (empirical SE / δ)². For coverage, √(0.95 × 0.05 / R) is the MCSE when the true coverage is 95%:

# %% tags=["nbval-check-output"]
emp_se = summary.loc[summary["method"] == "complete_case", "emp_se"].median()
for delta in (0.02, 0.01, 0.005):
    print(f"MCSE of bias <= {delta}: R >= {int(np.ceil((emp_se / delta) ** 2))} replicates")
for r in (sim["n_sims"], 500):
    print(f"R = {r}: MCSE of a 95% coverage = {100 * np.sqrt(0.95 * 0.05 / r):.1f} percentage points")

# %% [markdown]
# Which biases does *this* run detect? For every mechanism and method, the number of groups whose |bias| exceeds two MCSEs, beside the number chance alone would produce, and the full-data benchmark (unbiased by construction, so its flags are chance):

# %% tags=["nbval-check-output"]
beyond = summary.assign(beyond=summary["bias"].abs() > 2 * summary["bias_mcse"])
flags = beyond.pivot_table(index="method", columns="mechanism", values="beyond", aggfunc="sum")
flags = flags.reindex(index=list(simulation.METHODS), columns=list(simulation.MECHANISM_LABELS.values()))
n_groups = len(study.GROUPS) - 1
print(f"Groups (of {n_groups}) with |bias| > 2 MCSE, R = {sim['n_sims']} replicates")
print(flags.astype(int).to_string())
beyond_2_by_chance = 2 * norm.sf(2)  # P(|Z| > 2): an unbiased, normal estimate lands > 2 SEs from the truth
print(f"Chance alone: about {beyond_2_by_chance * flags.size * n_groups:.1f} of these {flags.size * n_groups} "
      f"comparisons ({beyond_2_by_chance:.4f}, the chance that a normal estimate lies more than 2 SEs from its "
      "mean, times the number of comparisons)")
for mech in flags.columns:
    bench = int(flags.loc["full_data", mech])
    worse = [m for m in simulation.DEFAULT_METHODS if flags.loc[m, mech] > bench]
    print(f"{mech}: " + (f"{', '.join(worse)} flagged in more groups than the full-data benchmark ({bench}): "
                         "a bias this run can detect" if worse else
                         f"no method flagged in more groups than the full-data benchmark ({bench}): "
                         "no bias detectable at this R"))

# %% [markdown]
# The lines above are printed from the table, so they hold for whatever number of replicates this run used. Read them with two cautions. First, with many comparisons some exceed two MCSEs by chance (the expected number is printed), and all methods analyse the *same* cohorts, so a chance excursion of the full-data estimate for a group tends to show in the other methods too: a flag counts as evidence of bias only where a method is flagged clearly more often than the full-data benchmark. Second, a bias smaller than about two MCSEs of bias (see the MNAR table above) goes undetected at this R: "not flagged" is not "unbiased". Coverage, too, is known only to within several percentage points either way (the MCSE of a 95% coverage is printed above). The default number of replicates is small so that the notebook runs quickly in continuous integration (this run's time is printed in the next section). It demonstrates the machinery; it is not a study to base conclusions on.
#
# ## Running the full study
#
# The same notebook, with more replicates, from the project folder:
#
# ```
# .venv/bin/python -m helpers.run -p n_simulations=500 --only 10
# ```
#
# Run time grows in proportion to the number of replicates. The estimate below is computed from the measured time of this run:

# %%
per_replicate = run_seconds / sim["n_sims"]
print(f"This run: {run_seconds:.0f} s for {sim['n_sims']} replicates, {per_replicate:.2f} s per replicate "
      f"(3 mechanisms x {len(simulation.METHODS)} methods)")
print(f"500 replicates: about {per_replicate * 500:.0f} s = {per_replicate * 500 / 60:.0f} minutes on this machine "
      "(plus the rest of the notebook, which does not grow with the number of replicates)")

# %% [markdown]
# The executed notebook and the tables `10_simulation_estimates.csv` and `10_simulation_performance.csv` land in the run's output folder. To study another stage or model, call `simulation.run_simulation(stage="assessment")`, `stage="all"` or `model="unadjusted"`; referral source gives one row per outcome level.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: predict before you look: complete case under MCAR
#
# Before reading the MCAR rows of the tables above: what should the bias of the complete-case estimates be under MCAR, and what coverage should their 95% CIs have? How large a "bias" could you see by chance with this many replicates? Then check your prediction against the results.

# %% tags=["solution"]
mcar_cc = summary[(summary["mechanism"] == "MCAR") & (summary["method"] == "complete_case")]
print(mcar_cc.assign(bias_in_mcse=mcar_cc["bias"] / mcar_cc["bias_mcse"])
      [["ethnicity", "bias", "bias_mcse", "bias_in_mcse", "coverage", "coverage_mcse", "coverage_mcse_nominal"]]
      .to_string(index=False, float_format=lambda x: f"{x:.3f}"))

# %% [markdown] tags=["solution"]
# **Solution.** Under MCAR the recorded referrals are a random sample of all referrals, so complete case is unbiased and its CIs should cover at 95%. With R replicates the bias estimate itself varies with SD = empirical SE / √R (the MCSE), so values within about two MCSEs of zero (a `bias_in_mcse` between −2 and 2) are what chance alone produces; with seven groups, one of them beyond 2 is not surprising. Coverage is a proportion out of R, so with few replicates it jumps in steps of 1/R and its MCSE is several percentage points. Where every CI covered (coverage 1.000) `coverage_mcse` is 0: that is the formula meeting an extreme estimate, not precision; `coverage_mcse_nominal` is the honest yardstick: a coverage differs from 0.95 by more than chance only if it is more than about two of those away.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: change the stage and predict
#
# Notebook 08 found the **assessment** stage much more sensitive to missing ethnicity than the treatment stage. Predict: under MNAR, which method will have the largest bias at the assessment stage, and will weighted MI's coverage stay near 95%? Then check, writing the code yourself: run a small simulation (8 replicates is enough to see a large bias) for the **assessment** stage under **MNAR only**, with the same cohort size, seed, missing share, targets and number of imputations as the study above (the cell under "Running the study" shows every argument; the paragraph after "Running the full study" says how to change the stage), summarise it as the study above is summarised, and print the MCSE of a 95% coverage at your number of replicates. How far can you trust the coverage you see?

# %% tags=["solution"]
assess = simulation.run_simulation(
    n_sims=min(8, sim["n_sims"]), n_referrals=sim["n_referrals"], seed=sim["seed"], mechanisms=("mnar",),
    methods=("complete_case", "mar_mi", "weighted_mi"), n_imputations=sim_imputations, stage="assessment",
    targets_path=sim["targets_path"], missing_share=sim["missing_share"],
)
assess_summary = simulation.summarise(assess)
print(simulation.overview(assess_summary).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
print(f"R = {int(assess_summary['n_sim'].max())}: MCSE of a 95% coverage = "
      f"{100 * assess_summary['coverage_mcse_nominal'].max():.1f} percentage points")

# %% [markdown] tags=["solution"]
# **Solution.** At the assessment stage recording depends on the outcome (unassessed referrals are recorded less often) and, under MNAR, on the group. Complete case and MAR MI should both show biases that are large compared with their MCSEs, usually in the same direction, because MAR MI imputes the missing records with the recorded ethnic mix; their coverage falls below 95%. Weighted MI, calibrated to the right margin, should have much smaller bias. Even a handful of replicates shows the bias, because at this stage it is large compared with the empirical SE (at the treatment stage it is not). Coverage is another matter: with so few replicates its MCSE at the nominal level (printed) is several percentage points, and larger still away from 95%, so judge it only from a full run. Compare `emp_se` with `model_se` as well: in the committed run weighted MI's empirical SE is above its model SE (the SE Rubin's rules give). With R replicates an empirical SE is itself uncertain by about 1/√(2(R − 1)) of its value, 27% at R = 8, so a gap of that size is within Monte Carlo error here; only a full run can say whether Rubin's variance understates weighted MI's spread at this stage.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: critique: what can this simulation not tell us?
#
# The simulation gives weighted MI the exact margin and draws missingness from a mechanism in which each group has one shift in its chance of being recorded, the same at every stage. List three ways in which real IAPT data could differ, and for each say whether weighted MI would then do better or worse than in this simulation.

# %% [markdown] tags=["solution"]
# **Solution.**
# 1. **The margin is not known exactly.** Here weighted MI was given the true expected referred mix. Real margins come from a census or another source describing a different population or year (notebook 09 shows how badly a resident margin can mislead). Worse.
# 2. **Missingness interacts with the outcome differently by group**, e.g. one group's ethnicity recorded less often only among the treated (the paper's Black African shift hints at something like it). Our MNAR mechanism has no such interaction; weighted MI's assumptions exclude it too. Worse, for the groups concerned, and the direction of the error depends on the pattern.
# 3. **The imputation model is misspecified**, e.g. interactions between borough and stage in who gets which ethnicity. Our imputation model has main effects only, and the cohort's structure is close to that. Probably worse.
# 4. **Smaller or sparser groups**, or a higher missing share, make every method noisier and MI's between-imputation variance larger; coverage may suffer if the imputation model becomes unstable.
#
# A simulation answers "how does the method behave *if* the world looks like this?". Its conclusions reach only as far as its data-generating mechanisms; a useful study varies them.

# %% [markdown]
# ## Limitations
#
# - The data-generating mechanisms are built from the paper's printed Table 4 and from *assumed* values for everything the paper does not report, including the whole missingness mechanism.
# - One estimand (treatment among the assessed, fully adjusted) by default; other stages and models need their own runs (Exercise 2 shows one).
# - The default number of replicates is for demonstration; its Monte Carlo error is too large for conclusions. Run the full study (500 replicates) before quoting any performance figure.
# - Weighted MI gets the ideal margin; its performance with a realistic, imperfect margin is not studied here.
# - Imputations per analysis are reduced inside the simulation for speed; that adds noise, not bias.
#
# ## Key points
#
# - ADEMP (aims, data-generating mechanisms, estimands, methods, performance measures) is a checklist for planning and reporting a simulation study.
# - The estimand must be fixed before the methods are compared: here the full-data population odds ratio, which under MNAR differs from what the recorded referrals alone would give.
# - Bias, empirical SE, model SE and coverage each come with a Monte Carlo SE; a performance difference smaller than about two MCSEs may be chance.
# - Under MCAR every method works; under MNAR only a method that uses outside information about the missing records (weighted MI, with the right margin) can remove the bias, and only as far as its assumptions hold.
# - Small simulations are for learning the machinery; conclusions need hundreds of replicates (`.venv/bin/python -m helpers.run -p n_simulations=500 --only 10`).
