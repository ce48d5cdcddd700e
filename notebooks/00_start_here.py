# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Start here
#
# This is the front door of **IAPT Pathways**: what the project is, who it is for, how the notebooks fit together and how to run them, before the pathway itself begins in notebook 01.
#
# **Learning objectives**
# - By the end you can say in three sentences what Harwood et al. (2021) studied and found.
# - By the end you can name the seventeen notebooks in order and say what each one teaches.
# - By the end you can run the notebooks (all of them, or one) with the default or with your own parameters.
# - By the end you can find where a parameter is defined and checked, and read its allowed values.
# - By the end you can open the raw synthetic extract and say what one row stands for.
#
# **Prerequisites**: basic Python and pandas (reading a table, `head()`). No statistics yet.
#
# **Time needed**: about 35 minutes.

# %% tags=["parameters"]
# What this lesson invites you to change; every other parameter keeps its default (helpers.params).
n_referrals = 85_800
seed = 20210802

# %%
import pandas as pd

import helpers
import helpers.notebook
from helpers import models, params, pipeline, publish, study

p = helpers.notebook.setup(globals())

# %% [markdown]
# ## What this is
#
# **IAPT Pathways** is an open set of teaching notebooks that replicate, step by step, one published study of NHS talking therapies. IAPT ("Improving Access to Psychological Therapies", now called NHS Talking Therapies, for anxiety and depression, by NHS England) is the service in England that offers talking therapy for common mental health problems such as depression and anxiety.
#
# The study is:
#
# > Harwood H, Rhead R, Chui Z, et al. *Variations by ethnicity in referral and treatment pathways for IAPT service users in South London.* Psychological Medicine 2023;53(3):1084-1095 (online 2 August 2021). doi:10.1017/S0033291721002518
#
# **The paper in three sentences.** Harwood and colleagues followed the 85,800 people referred to the IAPT services of South London and Maudsley NHS Foundation Trust from 2013 to 2016 through three stages of care: where the referral came from, whether an assessment followed, and whether treatment followed the assessment. Comparing each ethnic group with White British in unadjusted and adjusted regression models, they report (abstract) that almost all minority ethnic groups were less likely to be assessed after referral and that, among those assessed, all minority groups were less likely to be treated. Table 4 qualifies the second finding: it holds in the fully adjusted models (every fully adjusted OR is below 1), but not for Mixed in the less adjusted complete-case models (73.1% of assessed Mixed referrals were treated against 72.4% of White British: unadjusted OR 1.04, 95% CI 0.97-1.10; adjusted for age, gender and year 1.00, 0.94-1.07; fully adjusted 0.93, 0.88-1.00 in the complete-case analysis and 0.93, 0.88-0.99 with weighted multiple imputation). Ethnicity was missing for 18.5% of referrals, and the authors handled this with population-calibrated ("weighted") multiple imputation reported beside a complete-case analysis.
#
# The real records are confidential, so this project builds a **synthetic cohort**: made-up referrals whose statistical "truth" we know, constructed so that analysing them reproduces the paper's printed Table 4. Notebook 02 shows exactly how.

# %%
print(study.CITATION)

# %% [markdown]
# ## Who it is for
#
# | you are | start with | what you will do |
# |---|---|---|
# | a **student** | this notebook, then 01, 02, ... in order | read, run each cell, try the exercises before opening the solutions |
# | a **lecturer** | 00, 02 and the parameter list below | re-run the set with other parameters (a smaller cohort, another missingness mechanism) and set the exercises; `make exercises` writes student copies with the solutions removed |
# | **CI** (automatic checks) | `make test` | unit tests of `helpers/`, then every notebook re-executed by nbval and its key numbers compared |
# | a **researcher with a real extract** | 04 (data preparation) | point `data_path` at a CSV in the same NHS-coded layout and run the same notebooks on it, inside your secure environment |

# %% [markdown]
# ## The learning path
#
# Each notebook builds on the ones before it. The stages of care come in the order a referral meets them.
#
# | notebook | what it teaches |
# |---|---|
# | **00 start here** | what this is, who it is for, how to run it (this notebook) |
# | **01 study design** | the IAPT pathway, the three questions and their denominators, how variables are coded, what the paper did and did not publish |
# | **02 synthetic cohort** | how the known-truth cohort is built from the printed figures, what is assumed, and how a calibration reproduces Table 4 |
# | **03 missingness and reproducibility** | who has ethnicity missing under MCAR, MAR and MNAR; the truth file; the same seed, the same bytes |
# | **04 data preparation** | NHS codes to analysis groups; checking an extract; the flow table that accounts for every row |
# | **05 describing the cohort** | Table 1, the pathway by group, disclosure control of small counts |
# | **06 referral source** | the multinomial model, fitted yourself with `statsmodels` and read from its summary: relative risk ratios for self, community and other referral versus GP |
# | **07 planted versus estimated** | the referral-source estimates beside the planted effects, coverage by chance in random cohorts, the directions of the paper's abstract |
# | **08 assessment** | the logistic model for being assessed, among everyone referred; why a fit on covariate-pattern counts gives the same answer, faster |
# | **09 treatment** | the logistic model for being treated, among those assessed; our Table 4 beside the paper's |
# | **10 missing ethnicity** | complete case versus standard and weighted multiple imputation, checked against the known truth |
# | **11 weighted imputation** | inside the paper's method: its printed column, the calibration check, Rubin's rules, and why the margin must describe the referred population |
# | **12 simulation study** | a simulation study in the ADEMP structure: bias and coverage of each missing-data method under different missingness mechanisms |
# | **13 Monte Carlo error** | how far a simulation can be trusted: Monte Carlo error, how many replicates, the full study, its limitations |
# | **14 access and population** | referrals relative to the local resident population (a step beyond the paper) |
# | **15 interpretation** | what the results mean, possible mechanisms, careful framing, limitations |
# | **16 replication report** | ours beside the paper's: what matched, what could not be checked, and why |

# %% [markdown]
# ## How to run
#
# From the project folder (the one with the `Makefile`):
#
# | command | what it does |
# |---|---|
# | `make run` | sets up the Python environment, then runs **every** notebook with the default parameters into `outputs/` (executed notebooks, an HTML book and result tables) |
# | `make test` | the unit tests and an nbval re-run of every committed notebook |
# | `make lab` | opens JupyterLab so you can work through the notebooks by hand |
# | `.venv/bin/python -m helpers.run -p n_referrals=20000` | runs the whole set with a parameter changed (repeat `-p name=value` for more) |
# | `make exercises` | student versions of the notebooks, with the solutions emptied, in `notebooks/exercises/` |
#
# One notebook can also be run on its own with papermill, from the `notebooks/` folder:
# `mkdir -p ../outputs && ../.venv/bin/python -m papermill 00_start_here.ipynb ../outputs/00_start_here_n20000.ipynb -p n_referrals 20000`
# (papermill does not create folders, hence the `mkdir`; the executed copy goes under `outputs/`, like every other output; the committed notebook in `notebooks/` stays as it is).

# %% [markdown]
# ## How parameters work
#
# The second cell of every notebook (tagged `parameters`) lists the few parameters that notebook's lesson invites you to change, with their defaults (this one: `n_referrals` and `seed`). When you run a notebook by hand, edit that cell; every parameter it does not list keeps its default. When papermill or `helpers.run` runs it, they insert a new cell just after it with the values the run changed, so the defaults stay visible and your choices are recorded.
#
# The third cell passes everything to `helpers.notebook.setup`, which checks each value **once, in one place** (`helpers/params.py`) and stops with a clear message if one is wrong. Here is the full list, with defaults and allowed values:

# %%
print(params.describe())

# %% [markdown]
# The values this run is using (the defaults, unless you changed them):

# %%
pd.Series({name: repr(value) for name, value in publish.parameters(p).items()}, name="value").to_frame()  # no machine paths

# %% [markdown]
# ## A note on language
#
# Ethnicity is a **social category**, not a biological one. The differences these notebooks measure are differences in how services reach and serve people: we write "Black African referrals were less likely to be assessed", never "Black Africans avoid assessment". We use the paper's eight group names exactly (White British, Black Caribbean, Black African, Black Other, Asian, Mixed, White Other, Other), and we compare each with White British because the paper did, not because it is the norm (notebook 01 asks you to critique that choice). The records behind the paper describe real people; the synthetic ones here do not describe anybody.

# %% [markdown]
# ## A first look at the data
#
# `pipeline.load_study_data` is the one route to the data for every notebook. With the default parameters it loads the committed synthetic cohort; with other parameters it generates a new one; with `data_path` set it reads a real extract instead.

# %%
data = pipeline.load_study_data(p)
print("Data:", data.origin)
print(publish.banner(p))

# %% [markdown]
# The **raw extract** looks like what an NHS IAPT data extract looks like: one row per referral, NHS codes rather than words, dates as text, blanks where nothing happened. Here are its first five rows:

# %%
if data.from_counts:  # pattern counts alone: there are no rows to show
    display(publish.not_in_counts("the raw extract's rows", "A run from pattern counts has no row-level file."))
elif p["data_path"]:  # a real extract: never print its rows (disclosure control), only its columns
    display(data.raw.head(0))
else:
    display(data.raw.head(5))

# %% [markdown]
# Reading one row: `PathwayID` identifies the referral; `Validated_EthnicCategory` is an NHS ethnic category code (for example `A` is White British, `Z` means "not stated"); `SourceOfReferralIAPT` says who made the referral (`A1` a GP, `B1` the person themselves); a blank `Assessment_FirstDate` means no assessment happened, and a blank `TherapySession_FirstDate` means no treatment session happened. Notebook 04 turns these codes into analysis variables.
#
# How big is it? The cell below prints the size of the extract and its column names (a checked cell: CI compares its output on every run).

# %% tags=["nbval-check-output"]
if data.from_counts:  # the analysis frame rebuilt from the counts: the columns the counts hold
    print(f"{publish.count(len(data.frame), p)} referrals analysed, as pattern counts over {data.frame.shape[1]} columns")
    print(", ".join(data.frame.columns))
else:
    print(f"{publish.count(len(data.raw), p)} referrals (rows) x {data.raw.shape[1]} columns")
    print(", ".join(data.raw.columns))

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Where is a parameter checked?
#
# Suppose a lecturer sets `n_referrals = 100` to get a very quick run. (a) Find the file and the function that decides whether this value is allowed (hint: the third cell of this notebook calls `helpers.notebook.setup`; follow it with `help()` or by opening the file). (b) What is the smallest allowed value, and where is it written down? (c) Predict what the lecturer will be told: which parameter, which value, and what would be valid. Then check your prediction by calling the checking function you found in (a) yourself, catching its error and printing the message (one `try`/`except`), without editing the parameters cell.

# %% [markdown] tags=["solution"]
# **Solution.** (a) `helpers.notebook.setup` collects the values and calls `helpers.params.validate`, which checks each one with `helpers.params.check_value` against the schema `helpers.params.SCHEMA`. (b) The schema entry for `n_referrals` sets `minimum=2_000` (and a maximum of 20 million); `params.describe()` above prints the same limits. One place defines the limits, so the command line, papermill and a hand-run notebook all fail in the same way. (c) The message names the parameter, the value given and what would be valid:

# %% tags=["solution"]
try:
    params.validate(n_referrals=100)
except params.ParameterError as err:
    print(err)
print("n_referrals must be", params.SCHEMA["n_referrals"].valid_text())

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Predict, then check: half the referrals
#
# One fact you need (notebooks 08-09 return to it): an estimate's **standard error** (SE) measures how much it would vary from sample to sample, and it shrinks in proportion to **1/√n**, the square root of the number of people behind it. Four times the data halves the SE; half the data multiplies it by √2 ≈ 1.41. A 95% confidence interval for an odds ratio is, on the log scale, the estimate ± 1.96 SE, so its width moves with the SE.
#
# A second fact (notebook 02 shows how it is done): the default cohort is not a random sample. It is *built* from the paper's printed figures, so that its counts give back the paper's odds ratios up to rounding to whole people: at the default size they round to the printed values, and the smaller the cohort, the further rounding to whole people can move them (notebook 09's Exercise 3 tries a quarter of the size).
#
# Before running anything, write down what you expect if `n_referrals` is halved (to 42,900 from the default 85,800): (a) to the odds ratios for treatment, first if the cohort were a random sample of half the size, then for this built cohort; (b) to the width of their 95% confidence intervals. Then check, writing the code yourself. Two functions do the work: `pipeline.load_study_data` loads a cohort (it takes the parameters `p` and, as keywords, any you want changed: the same override `helpers.run -p` makes, above), and `models.fit_stage` fits one of the paper's models to a prepared frame (`data.frame`). Find out what `models.fit_stage` needs and returns with `help(models.fit_stage)`: reading a function's help is how you will meet most tools. The paper's main model is the fully adjusted one at the treatment stage. Put the two cohorts' ORs side by side with the ratio of their SEs. Notebooks 08-09 show how such a model is fitted with standard tools; here you only read its output.

# %% [markdown] tags=["solution"]
# **Solution.** (a) A random sample of half the size would move each odds ratio by chance, typically by about one of its (new, larger) standard errors on the log scale. This cohort is built, not drawn, so the smaller one is the same truth scaled down: most odds ratios barely move, and the smallest group's by about 0.01 (Black Other in the table below), from rounding cells to whole people. (b) The SE shrinks with the square root of the sample size, so halving the data multiplies it by about √2: the confidence intervals, on the log scale, should be about 1.4 times as wide. The table below shows both, and the line above it prints the ratio expected from 1/√n.

# %% tags=["solution"]
half_n = max(p["n_referrals"] // 2, params.SCHEMA["n_referrals"].minimum)  # the smallest cohort allowed
half = pipeline.load_study_data(p, n_referrals=half_n)
fit_full = models.fit_stage(data.frame, "treatment", "adjusted_full").set_index("ethnicity")
fit_half = models.fit_stage(half.frame, "treatment", "adjusted_full").set_index("ethnicity")
print(f"expected SE ratio from 1/sqrt(n): sqrt({len(data.frame):,} / {len(half.frame):,}) = "
      f"{(len(data.frame) / len(half.frame)) ** 0.5:.2f}")
pd.DataFrame({
    "OR (full cohort)": fit_full["estimate"],
    "OR (half cohort)": fit_half["estimate"],
    "CI width ratio (log scale)": fit_half["se"] / fit_full["se"],
}).round(2).drop(index=study.REFERENCE_GROUP)

# %% [markdown]
# ## Key points
#
# - The project replicates Harwood et al. (2021): ethnic inequalities at three stages of IAPT care (referral source, assessment among the referred, treatment among the assessed), each group compared with White British.
# - The real data are confidential, so the notebooks run on a synthetic cohort built to reproduce the paper's printed Table 4; everything the paper does not report is labelled *assumed*.
# - Every notebook starts with a `parameters` cell listing the few parameters its lesson invites you to change (every other keeps its default); values are checked once, in `helpers/params.py`, whether you run by hand, with papermill or with `python -m helpers.run`.
# - `make run` runs everything; `make test` checks everything; notebooks 01 to 16 follow the pathway in order.
# - Differences between groups are described as differences in how services reach and serve people, not as traits of groups.
