"""NHS Data Dictionary code lists mapped to the study's analysis groups: the single source of truth.

Sources: NHS Data Dictionary ethnic category (2001-census "16+1"), IAPT source-of-referral codes as used in
NHS England's IAPT analysis code, person stated gender code (see docs/study/nhs_codes.md, and
docs/data_dictionary.md). Groupings the paper does not state are marked *assumed*.
"""

from __future__ import annotations

# --- Ethnic category -------------------------------------------------------------------------------
ETHNIC_CATEGORY_LABELS: dict[str, str] = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other ethnic groups - Chinese",
    "S": "Other ethnic groups - Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}

# Whether the paper put Chinese (R) under Asian or Other is not known: *assumed* Other. One line to change.
CHINESE_GROUP = "Other"

ETHNIC_CODE_TO_GROUP: dict[str, str | None] = {
    "A": "White British",
    "B": "White Other",  # Irish grouped with White Other (paper's eight groups)
    "C": "White Other",
    "D": "Mixed",
    "E": "Mixed",
    "F": "Mixed",
    "G": "Mixed",
    "H": "Asian",
    "J": "Asian",
    "K": "Asian",
    "L": "Asian",
    "M": "Black Caribbean",
    "N": "Black African",
    "P": "Black Other",
    "R": CHINESE_GROUP,
    "S": "Other",
    "Z": None,  # not stated -> missing
    "99": None,  # not known -> missing
    "": None,  # blank -> missing
}
MISSING_ETHNIC_CODES = ("Z", "99", "")

# --- Source of referral ----------------------------------------------------------------------------
SOURCE_OF_REFERRAL_LABELS: dict[str, str] = {
    "A1": "GP practice", "A2": "Health visitor", "A3": "Other primary care", "A4": "Maternity service",
    "B1": "Self", "B2": "Carer/relative",
    "C1": "Social services", "C2": "Education service", "C3": "Housing service",
    "D1": "Employer", "D2": "Occupational health",
    "E1": "Police", "E2": "Courts", "E3": "Probation", "E4": "Prison", "E5": "Court liaison and diversion",
    "E6": "Youth offending team",
    "F1": "School nurse", "F2": "Hospital paediatrics", "F3": "Community paediatrics",
    "G1": "Independent medium secure", "G2": "Independent low secure", "G3": "Other independent mental health",
    "G4": "Voluntary sector",
    "H1": "Emergency department", "H2": "Other secondary care specialty",
    "I1": "Temporary transfer from another MH trust", "I2": "Permanent transfer",
    "M1": "Asylum services", "M2": "Telephone/electronic access service", "M3": "Out of area agency",
    "M4": "Drug action team", "M5": "Jobcentre Plus", "M6": "Other service or agency",
    "M7": "Single point of access", "M8": "Debt agency",
    "N1": "Stepped up from low intensity IAPT", "N2": "Stepped down from high intensity IAPT",
    "N4": "Other IAPT service", "P1": "Internal referral", "Q1": "Mental health drop-in",
}

# NHS England counts B1 as self-referral and A1 as GP referral. The paper's "community services" are
# employment, voluntary, education, prison and probation services and the like; the exact mapping the paper
# used is not known, so the whole table below is *assumed* apart from A1 and B1.
SOURCE_CODE_TO_CATEGORY: dict[str, str] = {
    "A1": "GP",
    "B1": "Self",
    **{c: "Community" for c in ("C1", "C2", "C3", "D1", "D2", "E1", "E2", "E3", "E4", "E5", "E6",
                                "G4", "M1", "M4", "M5", "M8")},
    **{c: "Other" for c in ("A2", "A3", "A4", "B2", "F1", "F2", "F3", "G1", "G2", "G3", "H1", "H2",
                            "I1", "I2", "M2", "M3", "M6", "M7", "N1", "N2", "N4", "P1", "Q1")},
}

# --- Gender ------------------------------------------------------------------------------------------
GENDER_CODE_TO_LABEL: dict[str, str | None] = {"1": "Male", "2": "Female", "9": None, "X": None}

# --- Raw IAPT extract schema (field names as in NHS England's IAPT analysis code) --------------------
RAW_COLUMNS: dict[str, str] = {
    "PathwayID": "Referral (care pathway) identifier, unique per referral",
    "ReferralRequestReceivedDate": "Date the referral was received (YYYY-MM-DD)",
    "Age_ReferralRequest_ReceivedDate": "Age in whole years when the referral was received",
    "Gender": "Person stated gender code: 1 male, 2 female, 9 indeterminate, X not known",
    "Validated_EthnicCategory": "NHS ethnic category code A-S; Z not stated; 99 not known; blank missing",
    "SourceOfReferralIAPT": "IAPT source of referral code (A1 GP, B1 self, ...)",
    "Borough": "Borough of the IAPT service (local field, not in the national dataset)",
    "Assessment_FirstDate": "Date of the first assessment session; blank if none",
    "TherapySession_FirstDate": "Date of the first treatment session; blank if none",
}
