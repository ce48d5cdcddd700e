"""The study's fixed facts: groups, reference levels, covariates and model specifications.

Everything a model or a notebook needs to know about the design of Harwood et al. (2021) lives here,
so that a change of design (another banding, another base outcome) is one edit, not a search.
Values the paper does not report are marked *assumed* in comments and in ``ASSUMPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
PUBLISHED_DIR = DATA_DIR / "published"
SYNTHETIC_DIR = DATA_DIR / "synthetic"

CITATION = (
    "Harwood H, Rhead R, Chui Z, et al. Variations by ethnicity in referral and treatment pathways for "
    "IAPT service users in South London. Psychological Medicine 2023;53(3):1084-1095. "
    "doi:10.1017/S0033291721002518"
)

# The paper's eight ethnic groups, in the paper's order (Table 4). Reference: White British.
GROUPS: list[str] = [
    "White British",
    "Black Caribbean",
    "Black African",
    "Black Other",
    "Asian",
    "Mixed",
    "White Other",
    "Other",
]
REFERENCE_GROUP = "White British"
MISSING_LABEL = "Missing"

# Age bands: how the paper coded age is not known; ten-year bands are usual (*assumed*).
AGE_BANDS: list[str] = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
AGE_BREAKS: list[int] = [18, 25, 35, 45, 55, 65]
GENDERS: list[str] = ["Female", "Male"]
YEARS: list[int] = [2013, 2014, 2015, 2016]
# SLaM's IAPT services in 2013-2016 covered these four boroughs (study README); the paper's list is not known.
BOROUGHS: list[str] = ["Lambeth", "Southwark", "Lewisham", "Croydon"]

# Referral source categories named in the abstract; GP referral as the multinomial base is *assumed*.
SOURCES: list[str] = ["GP", "Self", "Community", "Other"]
SOURCE_BASE = "GP"

COVARIATE_LEVELS: dict[str, list] = {
    "age_band": AGE_BANDS,
    "gender": GENDERS,
    "year": YEARS,
    "borough": BOROUGHS,
}

# The paper's three models for every stage (abstract): covariates besides ethnicity.
MODELS: dict[str, list[str]] = {
    "unadjusted": [],
    "adjusted_age_gender_year": ["age_band", "gender", "year"],
    "adjusted_full": ["age_band", "gender", "year", "borough"],
}
MODEL_LABELS: dict[str, str] = {
    "unadjusted": "Unadjusted",
    "adjusted_age_gender_year": "Adjusted: age, gender, year",
    "adjusted_full": "Adjusted: age, gender, year, borough",
}

# complete case and weighted MI are the paper's; standard (MAR) MI is shown in 08 for comparison.
ANALYSES: list[str] = ["complete_case", "mar_mi", "weighted_mi"]


@dataclass(frozen=True)
class StageSpec:
    """One pathway stage: what is modelled, among whom, and how."""

    name: str
    outcome: str
    population: str  # human-readable denominator
    kind: str  # "mnlogit" or "logit"
    among_assessed: bool
    label: str


STAGE_SPECS: dict[str, StageSpec] = {
    "referral_source": StageSpec(
        "referral_source", "referral_source", "all referrals", "mnlogit", False, "Source of referral"
    ),
    "assessment": StageSpec(
        "assessment", "assessed", "all referrals", "logit", False, "Assessed (among referred)"
    ),
    "treatment": StageSpec(
        "treatment", "treated", "referrals that were assessed", "logit", True, "Treated (among assessed)"
    ),
}
STAGES: list[str] = list(STAGE_SPECS)

# Every design choice the paper does not report, in one place for notebooks to show.
ASSUMPTIONS: dict[str, str] = {
    "age bands": "18-24, 25-34, 35-44, 45-54, 55-64, 65+ (the paper's coding of age is not known)",
    "boroughs": "Lambeth, Southwark, Lewisham, Croydon (SLaM IAPT services 2013-2016; the paper's list is not known)",
    "referral base": "GP referral is the multinomial base outcome (not stated in the abstract)",
    "referral categories": "mapping of NHS source-of-referral codes to self / GP / community / other: helpers.codes",
    "Chinese": "NHS code R (Chinese) grouped with Other (the paper's choice is not known): helpers.codes",
}
