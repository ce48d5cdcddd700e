"""Small extracts for the extract engine's tests: one good referral, and rows that change it field by field.

Shared by the tests of helpers.extract and its modules (extract_columns, extract_read, extract_sql,
extract_engines, extract_flow) and by tests/test_spark.py.
"""

from __future__ import annotations

import pandas as pd

from helpers import extract as X
from helpers.extract_checks import REQUIRED_COLUMNS

GOOD = {
    "PathwayID": "r0",
    "ReferralRequestReceivedDate": "2014-03-01",
    "Age_ReferralRequest_ReceivedDate": "30",
    "Gender": "2",
    "Validated_EthnicCategory": "A",
    "SourceOfReferralIAPT": "A1",
    "Borough": "Lambeth",
    "Assessment_FirstDate": "2014-03-10",
    "TherapySession_FirstDate": "2014-04-01",
}


def rows(*changes: dict) -> pd.DataFrame:
    out = []
    for i, ch in enumerate(changes):
        r = dict(GOOD, PathwayID=f"r{i}")
        r.update(ch)
        out.append(r)
    return pd.DataFrame(out, columns=REQUIRED_COLUMNS)


def flow_n(res: X.ExtractResult, step: str, check: str) -> int:
    f = res.flow
    return int(f.loc[(f["step"] == step) & (f["check"] == check), "n_rows"].sum())


def excluded(res: X.ExtractResult) -> int:
    return int(res.flow.loc[res.flow["step"] == "excluded", "n_rows"].sum())
