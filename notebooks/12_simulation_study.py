# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 · A simulation study of the missing-data methods: design and results
#
# Notebook 10 compared complete case, standard MI and weighted MI on one cohort; this notebook plans a study that draws many cohorts under three missingness mechanisms, runs it, and measures each method's bias and confidence-interval coverage, the way methodologists test a method before trusting it. Notebook 13 then asks how far the results of this many replicates can be trusted.
#
# **Learning objectives**
# - By the end you can describe a simulation study in the ADEMP structure: aims, data-generating mechanisms, estimands, methods, performance measures.
# - By the end you can explain what the estimand of this study is (the full-data population odds ratio) and why it differs between missingness mechanisms.
# - By the end you can define bias, empirical SE, model SE and coverage, and say what a Monte Carlo standard error measures.
# - By the end you can run the study and read its bias and coverage figure: under which mechanism each method lands near the truth.
#
# **Prerequisites**: `10_missing_ethnicity` (the three methods, MCAR/MAR/MNAR) and `11_weighted_imputation` (Rubin's rules, the margin); the idea of a sampling distribution and of a 95% confidence interval.
#
# **Time needed**: about 30 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_simulations = 20
simulation_n_referrals = 20_000

# %%
import numpy as np
import pandas as pd

import helpers.notebook
from helpers import plots, simulation, study

p = helpers.notebook.setup(globals())
sim = simulation.simulation_parameters(p)  # replicates, cohort size, seed, missing share, targets, imputations
print(simulation.settings_note(sim, p["data_path"]))

# %% [markdown]
# ## Why simulate?
#
# In notebook 10 each method gave one estimate per group, from one cohort: closeness to the truth may be luck. To tell a **method's** behaviour from **chance** we need its sampling distribution over many cohorts drawn the same way: draw a cohort from a known data-generating process, apply every method, record the estimates, repeat R times.
#
# Morris, White and Crowther (2019, "Using simulation studies to evaluate statistical methods", *Statistics in Medicine* 38:2074-2102) recommend planning and reporting a simulation study under five headings, **ADEMP**. We follow them.
#
# ## A · Aims
#
# To compare complete case, standard (MAR) MI and weighted (population-calibrated) MI as estimators of the odds ratio of being **treated among those assessed**, each group vs White British, fully adjusted (the paper's main model), when ethnicity is MCAR, MAR or MNAR.
#
# ## D · Data-generating mechanisms
#
# Each replicate is a synthetic cohort of `simulation_n_referrals` referrals drawn at random (`outcome_mode="random"`) from the cell probabilities that build the project's cohort (notebook 02): the calibrated and *assumed* effects, with 18.5% of ethnicity expected missing (`missing_share`). Three mechanisms decide *whose* ethnicity goes missing (all *assumed*; notebook 10 shows the log-odds):
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
# Each replicate's seed derives from the one `seed` parameter (`numpy.random.SeedSequence` spawn keys: replicate and mechanism), so replicate r is the same cohort whether you run 20 replicates or 500.
#
# ## E · Estimands
#
# The estimand is the **full-data population odds ratio**: what the fully adjusted model would give fitted to the *whole* referred population, with and without recorded ethnicity, with every person's true group. We compute it without sampling, from the *expected* counts of the data-generating process (`simulation.true_values`). It is the same target for all three methods and does not depend on the cohort size.
#
# It does depend on the mechanism, because each mechanism builds a different population (`cohort.expected_counts`). The referrals **with** recorded ethnicity are the same in every world, calibrated to the paper's Table 4, which describes exactly those referrals. The referrals with **missing** ethnicity are added on top: under MCAR as a scaled copy of the recorded part, under MAR tilted towards the stages and boroughs recorded less often, under MNAR also towards the groups recorded less often. So the *full* population differs between worlds, and each world's estimand is its own full-population odds ratio. Under MCAR and MAR the missing records are (given the model's covariates and the outcome) a fair slice of each group, so the estimand equals the planted odds ratio; under MNAR they are a different slice of each group's pathway, and recovering that difference is the missing-data method's job.

# %% tags=["nbval-check-output"]
truth = pd.concat({simulation.MECHANISM_LABELS[m]: w.truth.set_index("ethnicity")["truth"]
                   for m, w in worlds.items()}, axis=1)
print("True odds ratios (treated among assessed, fully adjusted), vs White British")
print(np.exp(truth).to_string(float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# The same point as a picture: for each world, the missing-ethnicity records it adds among the assessed (the treatment model's rows), and the true odds ratio that results, beside the recorded referrals' own odds ratio (the same in every world):

# %%
estimands = simulation.estimand_by_mechanism(worlds, labels=simulation.MECHANISM_LABELS)
fig = plots.estimand_plot(estimands)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "12_estimand_by_mechanism.png"))
fig

# %% [markdown]
# *Figure: estimand versus missingness mechanism, one row per group (vs White British). Left: bars, one per mechanism, for the expected number of assessed referrals with missing ethnicity each world adds per 100 assessed referrals with ethnicity recorded (under MCAR the same for every group). Right: each world's true odds ratio of treatment among the assessed (coloured markers) and, as a black tick, the odds ratio of the recorded referrals alone, the same in every world; log-scaled axis, dashed line at 1. A marker off the tick is a world whose full population has another odds ratio than its recorded part.*

# %% [markdown]
# ## M · Methods
#
# 1. **Complete case**: the model on the referrals with recorded ethnicity; Wald 95% CI.
# 2. **MAR MI**: standard multiple imputation (imputation model: referral source, pathway stage, age band, gender, year, borough); Rubin's rules, t-based 95% CI.
# 3. **Weighted MI**: as 2, calibrated to the *expected* ethnic mix of all referrals under the mechanism, a population figure fixed before any data are drawn, like a census (not each replicate's realised mix, which no analyst could know). It is the ideal margin: the simulation asks how weighted MI behaves when its margin is right.
# 4. **Full data** (benchmark, not a real option): every referral's true group; it shows how much apparent bias is Monte Carlo noise, and the best precision possible.
#
# Each MI analysis inside the simulation uses `sim["n_imputations"]` imputations (at most `simulation.DEFAULT_SIM_IMPUTATIONS` = 5, not the 20 of notebook 10), **for run time**: an MI analysis costs roughly in proportion to M, and CI re-runs this notebook on every change. **The price is Monte Carlo noise.** With a fraction of missing information f, an MI estimate's variance is about (1 + f/M) times that of infinitely many imputations (with f = 0.2: 4% more at M = 5, 1% more at M = 20), so the empirical SE and the MCSE of bias are a little larger. Rubin's rules (the (1 + 1/M) B term and the t degrees of freedom) account for M, so bias and coverage are not changed.
#
# ## P · Performance measures
#
# Per mechanism, method and group, over R replicates with estimates θ̂ᵢ, model SEs sᵢ and truth θ (log OR scale):
#
# | measure | definition | Monte Carlo SE |
# |---|---|---|
# | **bias** | mean(θ̂ᵢ) − θ | empirical SE / √R |
# | **empirical SE** | SD(θ̂ᵢ): how much the estimate really varies between cohorts | empirical SE / √(2(R − 1)) |
# | **model SE** | √mean(sᵢ²): what the method *says* its SE is | √(Var(sᵢ²) / (4R · model SE²)) |
# | **coverage** | share of 95% CIs that contain θ | √(coverage (1 − coverage) / R); at the nominal level √(0.95 × 0.05 / R) |
#
# The Monte Carlo SE (MCSE) is the uncertainty of the performance measure itself from using only R replicates (Morris et al. 2019, Table 6); a bias smaller than about two MCSEs cannot be told apart from zero.
#
# **Warning: a coverage of 100% has an MCSE of 0.** With few replicates every CI of a group often covers the truth; √(coverage (1 − coverage) / R) is then 0, as if coverage were known exactly, which it is not. `simulation.summarise` therefore also reports `coverage_mcse_nominal` = √(0.95 × 0.05 / R), the MCSE when the true coverage is 95%: use it (as the figure's coverage bars do) to judge whether a coverage differs from 95%.
#
# ## Running the study

# %%
# `simulation.run_simulation` with the settings above: every mechanism and method, the fully adjusted treatment OR,
# timed. In a run of the whole set notebook 13 reads these results back from the run's cache.
results, run_seconds = simulation.simulation_study(sim)
results.to_csv(helpers.notebook.output_path(p, "tables", "12_simulation_estimates.csv"), index=False)
results.head()

# %% [markdown]
# One row per replicate, mechanism, method and group (log scale: truth, estimate, SE, CI, whether it covered, the realised missing share). The performance measures summarise them:

# %% tags=["nbval-check-output"]
summary = simulation.summarise(results)
summary.to_csv(helpers.notebook.output_path(p, "tables", "12_simulation_performance.csv"), index=False)
overview = simulation.overview(summary)
print("Averaged over the seven groups (log OR scale); max_bias_in_mcse = largest |bias| / MCSE of bias")
print(overview.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

# %%
fig = plots.simulation_plot(summary)
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "12_simulation_bias_coverage.png"))
fig

# %% [markdown]
# *Figure: one column per mechanism (MCAR, MAR, MNAR). Top row: bias of the log odds ratio for each group vs White British, dashed line at zero, bars of ±2 Monte Carlo SEs; bottom row: coverage of the 95% CI, dashed line at 0.95, bars of ±2 MCSEs at the nominal level (cut off at 1). Four methods dodged per group: full-data benchmark (grey diamonds), complete case (circles), MAR MI (triangles), weighted MI (squares). A bias whose bar crosses zero is within Monte Carlo noise.*
#
# What to expect:
#
# - **MCAR**: every method should be unbiased and cover at about 95%; the imputation methods gain no precision here (their empirical SEs in the table are slightly larger than complete case's).
# - **MAR** (recording depends on stage and borough): among the assessed, the recorded referrals still give nearly the right answer; MI has little to add.
# - **MNAR** (recording depends on the group too): complete case and MAR MI can drift, and weighted MI, told the right margin, should drift least.
#
# The tables `12_simulation_estimates.csv` and `12_simulation_performance.csv` land in the run's output folder. For another stage or model, call `simulation.run_simulation(stage="assessment")`, `stage="all"` or `model="unadjusted"` (referral source gives one row per outcome level).
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
# **Solution.** Under MCAR the recorded referrals are a random sample of all referrals, so complete case is unbiased and its CIs should cover at 95%. The bias estimate itself varies with SD = empirical SE / √R (the MCSE), so a `bias_in_mcse` between −2 and 2 is what chance alone produces; with seven groups, one beyond 2 is not surprising. Coverage is a proportion out of R, jumping in steps of 1/R; where every CI covered, `coverage_mcse` is 0 but `coverage_mcse_nominal` is the honest yardstick: a coverage differs from 0.95 by more than chance only if it is more than about two of those away.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: change the stage and predict
#
# Notebook 10 found the **assessment** stage much more sensitive to missing ethnicity than the treatment stage. Predict: under MNAR, which method will have the largest bias at the assessment stage, and will weighted MI's coverage stay near 95%? Then check, writing the code yourself: a small simulation (8 replicates show a large bias) for the **assessment** stage under **MNAR only**, otherwise with the arguments of the study above; summarise it the same way and print the MCSE of a 95% coverage at your R. How far can you trust the coverage you see?

# %% tags=["solution"]
assess = simulation.run_simulation(
    n_sims=min(8, sim["n_sims"]), n_referrals=sim["n_referrals"], seed=sim["seed"], mechanisms=("mnar",),
    methods=("complete_case", "mar_mi", "weighted_mi"), n_imputations=sim["n_imputations"], stage="assessment",
    targets_path=sim["targets_path"], missing_share=sim["missing_share"],
)
assess_summary = simulation.summarise(assess)
print(simulation.overview(assess_summary).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
print(f"R = {int(assess_summary['n_sim'].max())}: MCSE of a 95% coverage = "
      f"{100 * assess_summary['coverage_mcse_nominal'].max():.1f} percentage points")

# %% [markdown] tags=["solution"]
# **Solution.** At the assessment stage recording depends on the outcome (unassessed referrals are recorded less often) and, under MNAR, on the group. Complete case and MAR MI should both show biases large compared with their MCSEs, usually in the same direction, because MAR MI imputes the missing records with the recorded ethnic mix; their coverage falls below 95%. Weighted MI, calibrated to the right margin, should have much smaller bias. A handful of replicates shows the bias, because at this stage it is large compared with the empirical SE; coverage, with an MCSE of several percentage points (printed), can be judged only from a full run. Compare `emp_se` with `model_se` as well: in the committed run weighted MI's empirical SE is above its model SE (the SE Rubin's rules give). With R replicates an empirical SE is itself uncertain by about 1/√(2(R − 1)) of its value, 27% at R = 8, so a gap of that size is within Monte Carlo error here; only a full run can say whether Rubin's variance understates weighted MI's spread at this stage.

# %% [markdown]
# ## Key points
#
# - ADEMP (aims, data-generating mechanisms, estimands, methods, performance measures) is a checklist for planning and reporting a simulation study.
# - The estimand must be fixed before the methods are compared: here the full-data population odds ratio, which under MNAR differs from what the recorded referrals alone would give.
# - Bias, empirical SE, model SE and coverage summarise each method over the replicates; each has a Monte Carlo SE, because R replicates are themselves a sample.
# - Under MCAR every method should work; under MNAR only a method that uses outside information about the missing records (weighted MI, with the right margin) can remove the bias, and only as far as its assumptions hold.
#
# Next, notebook 13: how much of what this run shows is Monte Carlo error, how many replicates a conclusion needs, and what the study cannot tell you.
