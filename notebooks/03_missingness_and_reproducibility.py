# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Missing ethnicity in the cohort, and rebuilding it byte for byte
#
# Notebook 02 built the synthetic cohort and checked it against Table 4, on the referrals with recorded ethnicity; this notebook turns to the referrals without it: who they are under each missingness mechanism, where the cohort keeps their true group, and how the same parameters rebuild the same cohort, byte for byte.
#
# **Learning objectives**
# - By the end you can describe what the three missingness mechanisms (MCAR, MAR, MNAR) do to who has ethnicity recorded, and read it from the expected shares missing by true group and by stage.
# - By the end you can say what an ethnic mix counted on the recorded referrals shows under each mechanism.
# - By the end you can say why the truth file is kept apart from the extract, and which notebooks open it.
# - By the end you can regenerate the cohort reproducibly (same seed, same bytes) and say what a seed changes in `calibrated` mode.
#
# **Prerequisites**: notebook 02 (how the cohort is built; `calibrated` and `random` modes).
#
# **Time needed**: about 20 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
seed = 20210802
missing_mechanism = "mnar"
missing_share = 0.185
outcome_mode = "calibrated"

# %%
import pandas as pd

import helpers.notebook
from helpers import cohort, models, params, pipeline, replication, study

p = helpers.notebook.setup(globals())
# This notebook is about the synthetic cohort: it uses one even when data_path names a real extract.
p = params.validate({**p, "data_path": "", "margin": "truth"} if p["data_path"] else p)
data = pipeline.load_study_data(p)
print("Data:", data.origin)

# %% [markdown]
# ## Missing ethnicity: three mechanisms, and one solved world
#
# Of the referrals, a share `missing_share` (the paper's 18.5%) has no recorded ethnicity. Which referrals those are is set by `missing_mechanism` (the sizes of all these effects are *assumed*: for the first three, rows `missing_log_odds` of the targets file; for `mnar_wmi`, the files in `data/assumed/`):
#
# - **`mcar`** (missing completely at random): every referral has the same chance of missing ethnicity.
# - **`mar`** (missing at random): the chance depends on things we can see in the data: the pathway stage reached (people never assessed have fewer chances to be asked) and the borough.
# - **`mnar`** (missing not at random, the default): it *also* depends on the person's true ethnic group, exactly what is unknown when it is missing; the hard case, which population-calibrated imputation is designed for (notebook 11; the paper's own reasons for its choice are not in the sources this project holds).
# - **`mnar_wmi`** (opt-in, not the default): an *assumed* world found by a computer search, in which weighted MI comes close to the paper's printed weighted-MI column (all 21 ORs inside the printed CIs, 9 to 16 of 21 at the printed value depending on the imputation seed, Mixed never), beside the same recorded records as the default cohort (so the complete-case half does not change). In this *assumed* world the service fails to record ethnicity for about 72% of Black African referrals (so 56% of the referrals without a recorded ethnicity are truly Black African), for almost no Mixed or Black Caribbean referral (an artefact of the search, which drove those groups' weights to about zero, not a claim about any service), and for 35% of the referrals never assessed against about 10% of those assessed (the `mnar_wmi` columns below). Nothing in the paper says its data looked like this (`helpers/mnar_wmi.py`, `docs/weighted_mi_bounds.md`).
#
# What each mechanism does, from the expected counts (no random draws): the share missing by **true** group, then by stage.

# %%
mechanisms = ("mcar", "mar", "mnar", "mnar_wmi")
by_group = cohort.expected_missing_share("group", mechanisms, p["missing_share"], p["targets_path"])
by_stage = cohort.expected_missing_share("stage", mechanisms, p["missing_share"], p["targets_path"])
(100 * by_group).round(1)

# %%
(100 * by_stage).round(1)

# %% tags=["nbval-check-output"]
print("expected % missing under MNAR, by true group:")
for group, share in by_group["mnar"].items():
    print(f"  {group:<16}{100 * share:5.1f}")

# %% [markdown]
# Under MCAR every cell equals the overall share. Under MAR the stage makes the difference (group shares move only because groups differ in the stages they reach and their boroughs); under MNAR the groups differ directly, and by more, so the ethnic mix of the recorded referrals moves further from that of all referrals (Exercise 2 measures how far). The `mnar_wmi` column is of another kind: it was not set by a few odds but solved for, cell by cell, and its differences between groups are far larger than any of the other three.
#
# The realised shares in the cohort this run uses, from its **truth file** (percent missing by true group and stage):

# %% tags=["not-extract-counts"]
(100 * cohort.missing_share_table(data.frame, data.truth)).round(1)

# %% [markdown]
# ## The truth file is kept apart
#
# The generator writes the raw extract (`data/synthetic/iapt_referrals.csv`, what an analyst would receive) and the truth (`data/synthetic/iapt_truth.csv`: each referral's true group and NHS code, and whether its ethnicity was hidden). The complete-case and MAR-MI estimates never use it. It is opened in two kinds of place. To **check** against it: how recording distorts the ethnic mix (here and in 02's Exercise 1), the full-data estimates beside ours (07), and how the missing-data methods perform (10, 11). And for one input that only a synthetic world can give: weighted MI's default margin in this cohort is the true ethnic mix of all referrals, computed from the truth (10, 11, 14, 16); with a real extract the margin must come from elsewhere, and 11 shows why the census is a poor substitute.

# %%
data.truth.head()

# %% [markdown]
# ## Reproducibility: same seed, same bytes
#
# One `numpy` random generator, seeded once from `seed`, drives every random draw, so the same parameters give the same CSV, byte for byte (`cohort.csv_sha256` fingerprints those bytes). Two small cohorts with the same seed, and one with another:

# %%
small = dict(n_referrals=5_000, missing_mechanism=p["missing_mechanism"], outcome_mode=p["outcome_mode"])
hash_1 = cohort.csv_sha256(cohort.generate(seed=p["seed"], **small).raw)
hash_2 = cohort.csv_sha256(cohort.generate(seed=p["seed"], **small).raw)
hash_3 = cohort.csv_sha256(cohort.generate(seed=p["seed"] + 1, **small).raw)
print("seed", p["seed"], hash_1[:16])
print("seed", p["seed"], hash_2[:16])
print("seed", p["seed"] + 1, hash_3[:16])

# %% tags=["nbval-check-output"]
print("same seed, same bytes:", hash_1 == hash_2)
print("another seed, other bytes:", hash_1 != hash_3)

# %% [markdown]
# `make data` (`python -m helpers.cohort --default`) rebuilds the committed default cohort the same way; the next cell regenerates it in memory and compares fingerprints:

# %% tags=["nbval-check-output"]
if params.is_default_cohort(p):
    rebuilt = cohort.generate()
    print("rebuilt default cohort identical to the committed file:",
          cohort.csv_sha256(rebuilt.raw) == cohort.sha256(cohort.DEFAULT_COHORT))
else:
    print("non-default cohort parameters: nothing to compare with the committed file")

# %% [markdown]
# To write a cohort of your own: `python -m helpers.cohort --n 20000 --seed 1 --out my_cohort.csv` (the truth goes beside it as `my_cohort_truth.csv`).

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Another seed
#
# Predict first: if you change `seed` (keep `outcome_mode = "calibrated"`), will the new cohort still reproduce Table 4? What changes and what does not? Then check, writing the code yourself: load a cohort with the next seed (`pipeline.load_study_data` takes any parameter as a keyword override), repeat notebook 02's Table 4 comparison on it (the same three treatment fits with `models.fit_stage`, set beside the printed table with `replication.published_vs_ours`, and its two counts), and test whether its raw extract equals the default one.

# %% tags=["solution"]
other = pipeline.load_study_data(p, seed=p["seed"] + 1)
other_fit = pd.concat([models.fit_stage(other.frame, "treatment", m) for m in study.MODELS], ignore_index=True)
other_cmp = replication.published_vs_ours(other_fit, pipeline.published_table4())
other_cmp = other_cmp[(other_cmp["analysis"] == "complete_case") & (other_cmp["ethnicity"] != study.REFERENCE_GROUP)]
print(f"inside the printed CI: {int(other_cmp['inside_paper_ci'].sum())} of {len(other_cmp)}")
print(f"round to the printed OR: {int(other_cmp['rounds_to_printed'].sum())} of {len(other_cmp)}")
print("same rows as the default cohort:", other.raw.equals(data.raw))

# %% [markdown] tags=["solution"]
# **Solution.** Yes: in calibrated mode the counts per group, stage and covariate pattern come from controlled rounding, with no random draw, so Table 4 is reproduced whatever the seed. The seed changes what is drawn within each cell (exact ages, dates, which NHS code within a group, row order), so the file differs. With `outcome_mode = "random"` the seed would also change the counts, and the ORs would move by chance.

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Predict, then check: whose ethnicity is recorded?
#
# A service reports the ethnic mix of its referrals, counted on the referrals whose ethnicity is recorded. Predict from the table of expected shares missing by true group: under MCAR, would that mix be the mix of all referrals? Under MNAR (this run's default), which group's share would be understated most, and which groups' shares overstated? Then check on this run's cohort, writing the code yourself from its truth file: each true group's percentage of all referrals, its percentage of the referrals with ethnicity recorded, and the ratio of the two.

# %% tags=["not-extract-counts", "solution"]
recorded = data.truth[data.truth["ethnicity_missing"].astype(int) == 0]  # the flag is read as text, "0" or "1"
mix = pd.DataFrame({
    "% of all referrals": 100 * data.truth["true_ethnic_group"].value_counts(normalize=True),
    "% of recorded referrals": 100 * recorded["true_ethnic_group"].value_counts(normalize=True),
}).reindex(study.GROUPS)
mix["recorded / all"] = mix["% of recorded referrals"] / mix["% of all referrals"]
print(f"mechanism: {p['missing_mechanism']}")
print(f"most understated among the recorded: {mix['recorded / all'].idxmin()} "
      f"(ratio {mix['recorded / all'].min():.2f})")
print("overstated (ratio above 1):", ", ".join(mix.index[mix["recorded / all"] > 1]))
mix.round(2)

# %% [markdown] tags=["solution"]
# **Solution.** Under MCAR every group loses the same share of its records, so the recorded referrals have the mix of all referrals, up to chance. Under MNAR a group with a higher share missing than the overall share keeps a smaller share of its referrals on record, so the recorded mix understates it; a group with a lower share missing is overstated. The cell above prints which group is understated most and which are overstated in this run: they are the groups with the highest and the lowest percentages missing in the `All` column of the realised table (and the MNAR column of the expected one). Under MAR the shares move a little, only because groups differ in the stages they reach and their boroughs. So a count of referrals by *recorded* ethnicity describes who was recorded, not who was referred; notebook 10 asks what recording of this kind does to the odds ratios.

# %% [markdown]
# ## Key points
#
# - `missing_mechanism` decides who has ethnicity missing: at random (MCAR), by stage and borough (MAR), or also by true group (MNAR, the default); the sizes of these effects are *assumed*.
# - Under MNAR the recorded referrals no longer have the ethnic mix of all referrals: a mix counted on recorded ethnicity describes who was recorded.
# - The truth file records every referral's true group. Complete case and MAR MI never read it; it is opened to check against it (this one, 02's Exercise 1, 07's full-data column, 10 and 11) and, in the synthetic world only, for weighted MI's default margin, the true referred mix (10, 11, 14, 16).
# - Same parameters, same bytes: `make data` rebuilds the committed cohort exactly; in `calibrated` mode another seed changes the rows drawn within each cell, not the counts Table 4 is built from.
