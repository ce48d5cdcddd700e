"""Tests of helpers.planted: the planted-gaps frame has the analysis frame's columns, one seed gives one frame,
and what is planted is there (missing share, treatment only among the assessed, the groups' assessment gaps)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import planted, study


def test_columns_and_categories_are_the_analysis_frames() -> None:
    frame = planted.planted_frame(500, seed=1)
    assert list(frame.columns) == ["referral_id", "ethnicity", "age_band", "gender", "year", "borough",
                                   "referral_source", "assessed", "treated"]
    for column, levels in [("ethnicity", study.GROUPS), ("age_band", study.AGE_BANDS), ("gender", study.GENDERS),
                           ("year", study.YEARS), ("borough", study.BOROUGHS), ("referral_source", study.SOURCES)]:
        assert list(frame[column].cat.categories) == list(levels), column
    assert frame["referral_id"].iloc[[0, -1]].tolist() == ["R000000", "R000499"]
    assert frame["referral_id"].is_unique


def test_one_seed_one_frame_with_or_without_ids() -> None:
    a = planted.planted_frame(2000, seed=7)
    pd.testing.assert_frame_equal(a, planted.planted_frame(2000, seed=7), check_exact=True)
    assert not a.equals(planted.planted_frame(2000, seed=8))
    no_ids = planted.planted_frame(2000, seed=7, ids=False)
    pd.testing.assert_frame_equal(no_ids, a.drop(columns="referral_id"), check_exact=True)  # the same draws


def test_what_is_planted_is_there() -> None:
    frame = planted.planted_frame(40_000, seed=3, missing_eth=0.1)
    assert abs(frame["ethnicity"].isna().mean() - 0.1) < 0.01
    assert planted.planted_frame(3000, seed=3, missing_eth=0.0)["ethnicity"].notna().all()
    assert frame["treated"].isna().equals(frame["assessed"] == 0)  # treatment only among the assessed
    # assessment: log-odds 0.8 - 0.4 x group effect + 0.05 age band - 0.1 gender + 0.05 year + 0.2 (borough 3)
    seen = frame.dropna(subset=["ethnicity"])
    code = {c: seen[c].cat.codes.to_numpy() for c in ("ethnicity", "age_band", "gender", "year", "borough")}
    effect = np.array(planted.GROUP_EFFECTS)[code["ethnicity"]]
    logit = (0.8 - 0.4 * effect + 0.05 * code["age_band"] - 0.1 * code["gender"] + 0.05 * code["year"]
             + 0.2 * (code["borough"] == 2))
    expected = pd.Series(1 / (1 + np.exp(-logit))).groupby(code["ethnicity"]).mean()
    observed = pd.Series(seen["assessed"].to_numpy()).groupby(code["ethnicity"]).agg(["mean", "size"])
    se = np.sqrt(expected * (1 - expected) / observed["size"])
    assert (abs(observed["mean"] - expected) < 4 * se).all(), pd.DataFrame({"observed": observed["mean"],
                                                                            "expected": expected, "se": se})
    assert expected.iloc[3] < expected.iloc[0] < expected.iloc[4]  # Black Other (effect 0.5) < WB < Asian (-0.2)
