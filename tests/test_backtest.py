"""Back test of the whole chain: a small generated cohort -> prepare -> the nine models -> weighted MI -> Table 1.

Why: the unit tests check each step against its own truth; this one checks that the chain as a whole still
gives the tables it gave when they were committed (``tests/expected/``), so a change anywhere that moves a
published number is seen, and a pure refactor is shown to move none. After an *intended* change of results
(a new missing mechanism, another calibration), regenerate them and review the diff as part of the change:

    .venv/bin/python tests/test_backtest.py        # rewrites tests/expected/*.csv

Model: pythonhealthdatascience/pydesrap_mms ``tests/test_backtest.py``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script to regenerate
    sys.path.insert(0, str(ROOT))

from helpers import cohort, imputation, models, pooling, prepare, tables  # noqa: E402

EXPECTED = Path(__file__).resolve().parent / "expected"
N_REFERRALS = 6_000
SEED = 2021
M = 5


def chain() -> dict[str, pd.DataFrame]:
    """Every table of the chain, as plain frames (what the CSVs hold)."""
    c = cohort.generate(n_referrals=N_REFERRALS, seed=SEED)
    prepared = prepare.prepare(c.raw)
    frame = prepared.frame
    cc = models.fit_all(frame)
    truth = frame[["referral_id"]].merge(c.truth.rename(columns={"PathwayID": "referral_id"}), on="referral_id")
    margin = imputation.margin_from_truth(truth["true_ethnic_group"])
    result = imputation.impute_ethnicity(frame, margin, M, np.random.default_rng(SEED))
    mi = pooling.mi_estimates_from_rows(frame, result, progress=False)
    t1 = tables.table1(frame, disclose=False)
    t1.columns = [" | ".join(map(str, col)) for col in t1.columns]
    return {
        "flow": prepared.flow.reset_index(drop=True),
        "estimates": pd.concat([cc, mi], ignore_index=True),
        "table1": t1.reset_index(),
        "pathway_counts": tables.pathway_counts(frame).reset_index(),
    }


@pytest.fixture(scope="module")
def computed() -> dict[str, pd.DataFrame]:
    return chain()


@pytest.mark.parametrize("name", ["flow", "estimates", "table1", "pathway_counts"])
def test_chain_reproduces_the_committed_table(computed, name: str) -> None:
    expected = pd.read_csv(EXPECTED / f"{name}.csv", keep_default_na=False, na_values=[""])
    got = pd.read_csv(_round_trip(computed[name]), keep_default_na=False, na_values=[""])
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected), f"{name}: {len(got)} rows, the committed table has {len(expected)}"
    for col in expected.columns:
        if pd.api.types.is_float_dtype(expected[col]) or pd.api.types.is_float_dtype(got[col]):
            np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-9, atol=1e-12,
                                       equal_nan=True, err_msg=f"{name}.{col}")
        else:
            pd.testing.assert_series_equal(got[col], expected[col], check_dtype=False, obj=f"{name}.{col}")


def test_the_back_test_can_fail(computed) -> None:
    """A moved estimate is seen: the comparison above is not vacuous."""
    expected = pd.read_csv(EXPECTED / "estimates.csv")
    moved = computed["estimates"]["estimate"].to_numpy(float) * (1 + 1e-6)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(moved, expected["estimate"].to_numpy(float), rtol=1e-9, equal_nan=True)


def _round_trip(frame: pd.DataFrame):
    """The frame as the CSV it would be written to (same float text, same blanks)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.17g")
    buf.seek(0)
    return buf


def write_expected() -> None:
    EXPECTED.mkdir(exist_ok=True)
    for name, frame in chain().items():
        frame.to_csv(EXPECTED / f"{name}.csv", index=False, float_format="%.17g")
        print(f"wrote {EXPECTED / f'{name}.csv'} ({len(frame)} rows)")


if __name__ == "__main__":
    write_expected()
