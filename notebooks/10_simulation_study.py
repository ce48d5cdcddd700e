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
# **Time needed**: about 50 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_simulations = 20
simulation_n_referrals = 20_000

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
# In notebook 08 each method gave one estimate per group, from one cohort: closeness to the truth may be luck. To tell a **method's** behaviour from **chance** we need its sampling distribution over many cohorts drawn the same way: draw a cohort from a known data-generating process, apply every method, record the estimates, repeat R times.
#
# Morris, White and Crowther (2019, "Using simulation studies to evaluate statistical methods", *Statistics in Medicine* 38:2074-2102) recommend planning and reporting a simulation study under five headings, **ADEMP**. We follow them.
#
# ## A · Aims
#
# To compare complete case, standard (MAR) MI and weighted (population-calibrated) MI as estimators of the odds ratio of being **treated among those assessed**, each group vs White British, fully adjusted (the paper's main model), when ethnicity is MCAR, MAR or MNAR.
#
# ## D · Data-generating mechanisms
#
# Each replicate is a synthetic cohort of `simulation_n_referrals` referrals drawn at random (`outcome_mode="random"`) from the cell probabilities that build the project's cohort (notebook 02): the calibrated and *assumed* effects, with 18.5% of ethnicity expected missing (`missing_share`). Three mechanisms decide *whose* ethnicity goes missing (all *assumed*; notebook 08 shows the log-odds):
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
plots.savefig(fig, helpers.notebook.output_path(p, "figures", "10_estimand_by_mechanism.png"))
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
# Each MI analysis inside the simulation uses `sim_imputations` imputations (at most `simulation.DEFAULT_SIM_IMPUTATIONS` = 5, not the 20 of notebook 08), **for run time**: an MI analysis costs roughly in proportion to M, and CI re-runs this notebook on every change. **The price is Monte Carlo noise.** With a fraction of missing information f, an MI estimate's variance is about (1 + f/M) times that of infinitely many imputations (with f = 0.2: 4% more at M = 5, 1% more at M = 20), so the empirical SE and the MCSE of bias are a little larger. Rubin's rules (the (1 + 1/M) B term and the t degrees of freedom) account for M, so bias and coverage are not changed.
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
# One row per replicate, mechanism, method and group (log scale: truth, estimate, SE, CI, whether it covered, the realised missing share). The performance measures summarise them:

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
# *Figure: one column per mechanism (MCAR, MAR, MNAR). Top row: bias of the log odds ratio for each group vs White British, dashed line at zero, bars of ±2 Monte Carlo SEs; bottom row: coverage of the 95% CI, dashed line at 0.95, bars of ±2 MCSEs at the nominal level (cut off at 1). Four methods dodged per group: full-data benchmark (grey diamonds), complete case (circles), MAR MI (triangles), weighted MI (squares). A bias whose bar crosses zero is within Monte Carlo noise.*
#
# What to expect:
#
# - **MCAR**: every method should be unbiased and cover at about 95%; the imputation methods buy a little precision at most.
# - **MAR** (recording depends on stage and borough): among the assessed, the recorded referrals still give nearly the right answer; MI has little to add.
# - **MNAR** (recording depends on the group too): complete case and MAR MI can drift, and weighted MI, told the right margin, should drift least.
#
# Under MCAR the coverages in the table above can sit above 0.95, for every method including the full-data benchmark. Is that what 95% intervals predict for this many estimates? The cell below counts the misses and compares each method's model SE with its empirical SE (`rel_error_se`, with its MCSE):

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
# `rel_error_se` is how much larger, in %, the average model SE is than the spread of the estimates across replicates; positive means intervals wider than needed, hence coverage above 95%. Two things point to Monte Carlo error rather than a fault of any method:
#
# - **The full-data benchmark and complete case over-cover too**, without imputation or Rubin's rules. Every method analyses the *same* replicates, so when those happen to scatter less than the model SEs say, every method's coverage rises together.
# - **The empirical SE is itself uncertain**: with R replicates, to within about 100/√(2(R − 1)) percent (16% at R = 20), hence the large `rel_error_se_mcse`; a `rel_error_se` within about two of its MCSEs is chance. And the seven intervals of one replicate share their White British reference group, so misses come in clumps and the binomial range above is if anything too narrow.
#
# Rubin's variance can also be a little conservative when the imputation model is richer than the analysis model ("uncongeniality", Meng 1994; here it uses referral source and pathway stage); at this R that cannot be told apart from chance.
#
# ## Monte Carlo error: is the bias real?
#
# Each group's bias under MNAR with its MCSE, for complete case, weighted MI and the full-data benchmark. The full-data estimates are unbiased by construction, so their "bias" is pure Monte Carlo noise at this R; since all methods analyse the *same* cohorts, judge a method's bias beside the full-data column.

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
# Which biases does *this* run detect? Per mechanism and method, the groups whose |bias| exceeds two MCSEs, beside what chance alone would produce and the full-data benchmark (whose flags are chance):

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
# Two cautions. First, with many comparisons some exceed two MCSEs by chance (the expected number is printed), and a chance excursion shared by the same cohorts shows in every method: a flag is evidence of bias only where a method is flagged clearly more often than the full-data benchmark. Second, a bias smaller than about two MCSEs (the MNAR table above) goes undetected at this R: "not flagged" is not "unbiased"; coverage, too, is known only to within several percentage points (the MCSE printed above). The default number of replicates is small so that CI runs the notebook quickly: it demonstrates the machinery, not a study to base conclusions on.
#
# ## Running the full study
#
# The same notebook with more replicates, from the project folder:
#
# ```
# .venv/bin/python -m helpers.run -p n_simulations=500 --only 10
# ```
#
# Run time grows in proportion to the number of replicates; the estimate below comes from this run's measured time:

# %%
per_replicate = run_seconds / sim["n_sims"]
print(f"This run: {run_seconds:.0f} s for {sim['n_sims']} replicates, {per_replicate:.2f} s per replicate "
      f"(3 mechanisms x {len(simulation.METHODS)} methods)")
print(f"500 replicates: about {per_replicate * 500:.0f} s = {per_replicate * 500 / 60:.0f} minutes on this machine "
      "(plus the rest of the notebook, which does not grow with the number of replicates)")

# %% [markdown]
# The tables `10_simulation_estimates.csv` and `10_simulation_performance.csv` land in the run's output folder. For another stage or model, call `simulation.run_simulation(stage="assessment")`, `stage="all"` or `model="unadjusted"` (referral source gives one row per outcome level).
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
# Notebook 08 found the **assessment** stage much more sensitive to missing ethnicity than the treatment stage. Predict: under MNAR, which method will have the largest bias at the assessment stage, and will weighted MI's coverage stay near 95%? Then check, writing the code yourself: a small simulation (8 replicates show a large bias) for the **assessment** stage under **MNAR only**, otherwise with the arguments of the study above; summarise it the same way and print the MCSE of a 95% coverage at your R. How far can you trust the coverage you see?

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
# **Solution.** At the assessment stage recording depends on the outcome (unassessed referrals are recorded less often) and, under MNAR, on the group. Complete case and MAR MI should both show biases large compared with their MCSEs, usually in the same direction, because MAR MI imputes the missing records with the recorded ethnic mix; their coverage falls below 95%. Weighted MI, calibrated to the right margin, should have much smaller bias. A handful of replicates shows the bias, because at this stage it is large compared with the empirical SE; coverage, with an MCSE of several percentage points (printed), can be judged only from a full run. Compare `emp_se` with `model_se` as well: in the committed run weighted MI's empirical SE is above its model SE (the SE Rubin's rules give). With R replicates an empirical SE is itself uncertain by about 1/√(2(R − 1)) of its value, 27% at R = 8, so a gap of that size is within Monte Carlo error here; only a full run can say whether Rubin's variance understates weighted MI's spread at this stage.

# %% [markdown] tags=["exercise"]
# ### Exercise 3: critique: what can this simulation not tell us?
#
# The simulation gives weighted MI the exact margin, and in its mechanism each group has one shift in its chance of being recorded, the same at every stage. List three ways real IAPT data could differ, and for each say whether weighted MI would then do better or worse than here.

# %% [markdown] tags=["solution"]
# **Solution.**
# 1. **The margin is not known exactly.** Here weighted MI was given the true expected referred mix; real margins come from a census or another source describing a different population or year (notebook 09 shows how a resident margin misleads). Worse.
# 2. **Missingness interacts with the outcome differently by group**, e.g. one group's ethnicity recorded less often only among the treated (as the paper's Black African shift hints). Neither our MNAR mechanism nor weighted MI's assumptions allow it. Worse for the groups concerned, in a direction that depends on the pattern.
# 3. **The imputation model is misspecified**, e.g. borough-by-stage interactions in who has which ethnicity; ours has main effects only, as the cohort nearly does. Probably worse.
# 4. **Smaller or sparser groups**, or a higher missing share: every method noisier, MI's between-imputation variance larger, coverage at risk if the imputation model becomes unstable.
#
# A simulation's conclusions reach only as far as its data-generating mechanisms; a useful study varies them.

# %% [markdown]
# ## Limitations
#
# - The data-generating mechanisms are built from the paper's printed Table 4 and from *assumed* values for everything the paper does not report, including the whole missingness mechanism.
# - One estimand (treatment among the assessed, fully adjusted) by default; other stages and models need their own runs (Exercise 2 shows one).
# - The default number of replicates is for demonstration; run the full study (500 replicates) before quoting any performance figure.
# - Weighted MI gets the ideal margin; its performance with a realistic, imperfect margin is not studied here.
# - Five imputations per analysis, for speed: more noise, not bias.
#
# ## Key points
#
# - ADEMP (aims, data-generating mechanisms, estimands, methods, performance measures) is a checklist for planning and reporting a simulation study.
# - The estimand must be fixed before the methods are compared: here the full-data population odds ratio, which under MNAR differs from what the recorded referrals alone would give.
# - Bias, empirical SE, model SE and coverage each come with a Monte Carlo SE; a performance difference smaller than about two MCSEs may be chance.
# - Under MCAR every method works; under MNAR only a method that uses outside information about the missing records (weighted MI, with the right margin) can remove the bias, and only as far as its assumptions hold.
# - Small simulations teach the machinery; conclusions need hundreds of replicates.
