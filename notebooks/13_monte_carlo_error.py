# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13 · Monte Carlo error: how far to trust a simulation
#
# Notebook 12 planned the simulation study in the ADEMP structure, ran it and drew its bias and coverage; this notebook asks how much of what the run shows is chance. A simulation is itself a sample of R replicates, so every performance measure has a Monte Carlo standard error (MCSE); here you use it to read the results, to decide how many replicates a conclusion needs, and to say what the study cannot tell you.
#
# **Learning objectives**
# - By the end you can tell whether a coverage above or below 95% is more than Monte Carlo error, from the number of intervals and the binomial range.
# - By the end you can judge whether a bias is detectable at a given number of replicates, and compute the replicates needed to detect a bias of a given size.
# - By the end you can read which biases a run flags, beside what chance alone and the full-data benchmark give, and run the full study from the command line.
# - By the end you can say what this simulation cannot tell you, and list its limitations.
#
# **Prerequisites**: `12_simulation_study` (ADEMP, the estimand, the performance measures and their MCSEs).
#
# **Time needed**: about 25 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_simulations = 20
simulation_n_referrals = 20_000

# %%
import numpy as np
import pandas as pd
from scipy.stats import binom, norm

import helpers.notebook
from helpers import simulation, study

p = helpers.notebook.setup(globals())
sim = simulation.simulation_parameters(p)  # replicates, cohort size, seed, missing share, targets, imputations
print(simulation.settings_note(sim, p["data_path"]))

# %% [markdown]
# ## The results of notebook 12
#
# The same study as notebook 12, with the same arguments: in a run of the whole set the run's cache (`helpers.cache`) hands this notebook notebook 12's results; opened on its own, it runs the study again (the same seeds, so the same results). The performance measures, averaged over the seven groups:

# %%
results, run_seconds = simulation.simulation_study(sim)  # notebook 12's study, same arguments
summary = simulation.summarise(results)
overview = simulation.overview(summary)
print("Averaged over the seven groups (log OR scale); max_bias_in_mcse = largest |bias| / MCSE of bias")
print(overview.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

# %% [markdown]
# ## Coverage above 95%: a fault or chance?
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
# - **The empirical SE is itself uncertain**: with R replicates, to within about 100/√(2(R − 1)) percent (about 16% at the default R = 20), hence the large `rel_error_se_mcse`; a `rel_error_se` within about two of its MCSEs is chance. And the seven intervals of one replicate share their White British reference group, so misses come in clumps and the binomial range above is if anything too narrow.
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
# Notebooks 12 and 13 with more replicates, from the project folder (notebook 13 finds notebook 12's results in the run's cache):
#
# ```
# .venv/bin/python -m helpers.run -p n_simulations=500 --only 12 13
# ```
#
# Run time grows in proportion to the number of replicates; the estimate below comes from the measured time of the study above (notebook 12's, when the cache handed its results over):

# %%
per_replicate = run_seconds / sim["n_sims"]
print(f"This run: {run_seconds:.0f} s for {sim['n_sims']} replicates, {per_replicate:.2f} s per replicate "
      f"(3 mechanisms x {len(simulation.METHODS)} methods)")
print(f"500 replicates: about {per_replicate * 500:.0f} s = {per_replicate * 500 / 60:.0f} minutes on this machine "
      "(plus the rest of the notebook, which does not grow with the number of replicates)")

# %% [markdown]
# The tables `12_simulation_estimates.csv` and `12_simulation_performance.csv` (notebook 12) land in the run's output folder.
#
# ## Exercises

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Predict, then check: how many replicates to see a bias?
#
# Take complete case under MNAR and the group whose bias is largest in size (the MNAR table above). Predict: at this run's R, is that bias more than two MCSEs from zero? If its true bias were exactly the size this run estimates, how many replicates would make it two MCSEs from zero, and how many four? Then check, writing the code yourself from the formulas of this notebook (the MCSE of the bias is the empirical SE over √R).

# %% tags=["solution"]
cc = summary[(summary["mechanism"] == "MNAR") & (summary["method"] == "complete_case")].set_index("ethnicity")
worst = cc["bias"].abs().idxmax()
bias, mcse, emp = cc.loc[worst, "bias"], cc.loc[worst, "bias_mcse"], cc.loc[worst, "emp_se"]
print(f"{worst}: bias {bias:.3f}, MCSE {mcse:.3f} at R = {sim['n_sims']}: |bias| = {abs(bias) / mcse:.1f} MCSEs")
for k in (2, 4):
    print(f"R for |bias| = {k} MCSEs: ({k} x empirical SE / |bias|)^2 = {int(np.ceil((k * emp / abs(bias)) ** 2))}")

# %% [markdown] tags=["solution"]
# **Solution.** The first line prints how many MCSEs the largest complete-case bias under MNAR lies from zero at this run's R. Since the MCSE is empirical SE / √R, the bias is k MCSEs from zero once R ≥ (k × empirical SE / |bias|)²: the replicates needed grow with the square of k, so four MCSEs take four times the replicates of two. The estimated bias is itself uncertain (by its MCSE), so for planning use the smallest bias that would matter, as the "How many replicates" cell does with δ, not the bias one small run happened to give.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: critique: what can this simulation not tell us?
#
# The simulation gives weighted MI the exact margin, and in its mechanism each group has one shift in its chance of being recorded, the same at every stage. List three ways real IAPT data could differ, and for each say whether weighted MI would then do better or worse than here.

# %% [markdown] tags=["solution"]
# **Solution.**
# 1. **The margin is not known exactly.** Here weighted MI was given the true expected referred mix; real margins come from a census or another source describing a different population or year (notebook 11 shows how a resident margin misleads). Worse.
# 2. **Missingness interacts with the outcome differently by group**, e.g. one group's ethnicity recorded less often only among the treated (as the paper's Black African shift hints). Neither our MNAR mechanism nor weighted MI's assumptions allow it. Worse for the groups concerned, in a direction that depends on the pattern.
# 3. **The imputation model is misspecified**, e.g. borough-by-stage interactions in who has which ethnicity; ours has main effects only, as the cohort nearly does. Probably worse.
# 4. **Smaller or sparser groups**, or a higher missing share: every method noisier, MI's between-imputation variance larger, coverage at risk if the imputation model becomes unstable.
#
# A simulation's conclusions reach only as far as its data-generating mechanisms; a useful study varies them.

# %% [markdown]
# ## Limitations
#
# - The data-generating mechanisms are built from the paper's printed Table 4 and from *assumed* values for everything the paper does not report, including the whole missingness mechanism.
# - One estimand (treatment among the assessed, fully adjusted) by default; other stages and models need their own runs (notebook 12's Exercise 2 shows one).
# - The default number of replicates is for demonstration; run the full study (500 replicates) before quoting any performance figure.
# - Weighted MI gets the ideal margin; its performance with a realistic, imperfect margin is not studied here.
# - Five imputations per analysis, for speed: more noise, not bias.
#

# %% [markdown]
# ## Key points
#
# - A simulation is a sample of R replicates: bias, empirical SE, model SE and coverage each come with a Monte Carlo SE, and a performance difference smaller than about two MCSEs may be chance.
# - Coverage above 95% for every method, the full-data benchmark included, points to the shared replicates, not to a fault of one method; a coverage of 100% has an MCSE of 0 only on paper.
# - The replicates a conclusion needs follow from the MCSE: R ≥ (empirical SE / δ)² to pin a bias to within δ.
# - A flag counts as evidence of bias only where a method is flagged clearly more often than the full-data benchmark; "not flagged" is not "unbiased".
# - Small simulations teach the machinery; conclusions need hundreds of replicates, and reach only as far as the data-generating mechanisms.
