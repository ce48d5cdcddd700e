"""Tests of helpers.disclosure: suppression 1-7, rounding to 5, secondary suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import disclosure


def test_primary_suppression_and_rounding():
    t = pd.DataFrame({"n": [0, 1, 3, 7, 8, 12, 13, 15, 22, 1234]})
    out = disclosure.disclose(t)
    assert str(out["n"].dtype) == "Int64"
    shown = out["n"].tolist()
    assert shown[0] == 0  # a true zero is kept
    assert all(v is pd.NA for v in shown[1:4])  # 1, 3, 7 suppressed
    assert shown[4:] == [10, 10, 15, 15, 20, 1235]  # 8->10, 12->10, 13->15, 15 stays, 22->20, 1234->1235


def test_rounding_halves_go_up_with_base_10():
    t = pd.DataFrame({"n": [15, 25, 14, 11]})
    out = disclosure.disclose(t, threshold=10, base=10)
    assert out["n"].tolist() == [20, 30, 10, 10]


def test_parameters_respected():
    t = pd.DataFrame({"n": [0, 7, 8, 10, 11, 16, 24]})
    out = disclosure.disclose(t, threshold=10, base=10)
    values = out["n"].tolist()
    assert values[0] == 0
    assert all(v is pd.NA for v in values[1:4])  # 7, 8, 10 suppressed at threshold 10
    assert values[4:] == [10, 20, 20]
    # No suppression threshold, no rounding: counts unchanged.
    same = disclosure.disclose(t, threshold=0, base=1)
    assert same["n"].tolist() == t["n"].tolist()


def test_non_count_columns_carried_through():
    t = pd.DataFrame({"group": ["a", "b"], "n": [3, 40]})
    out = disclosure.disclose(t)
    assert out["group"].tolist() == ["a", "b"]
    assert out["n"].tolist()[1] == 40


def test_totals_recomputed_from_rounded_values():
    t = pd.DataFrame({"a": [12, 13, 22], "b": [8, 18, 31]}, index=["x", "y", "z"])
    out = disclosure.disclose(t, total_row="Total", total_col="Total")
    # Rounded cells: a = 10, 15, 20; b = 10, 20, 30.
    assert out.loc["Total", "a"] == 45  # not round(47) = 45 by chance: check b too
    assert out.loc["Total", "b"] == 60  # true 57 -> round(57) would be 55; recomputed from rounded: 60
    assert out.loc["x", "Total"] == 20  # 10 + 10 (true 20)
    assert out.loc["y", "Total"] == 35  # 15 + 20 (true 31 -> would round to 30)
    assert out.loc["Total", "Total"] == 105
    # An existing total row/column is replaced, not counted as a cell.
    t2 = t.copy()
    t2["Total"] = t2.sum(axis=1)
    t2.loc["Total"] = t2.sum(axis=0)
    out2 = disclosure.disclose(t2, total_row="Total", total_col="Total")
    pd.testing.assert_frame_equal(out2, out, check_like=True)


def test_secondary_suppression_in_a_row():
    # Row totals only: row "x" has one small cell (3) -> the next-smallest cell in that row (20) goes too.
    t = pd.DataFrame({"a": [3, 40], "b": [20, 50], "c": [60, 70]}, index=["x", "y"])
    out = disclosure.disclose(t, total_col="Total")
    assert out.loc["x", "a"] is pd.NA
    assert out.loc["x", "b"] is pd.NA  # secondary: 3 could otherwise be recovered as Total - 20 - 60
    assert out.loc["x", "c"] == 60
    assert out.loc["x", "Total"] == 85  # 5 + 20 + 60 from rounded cells
    # Row y untouched; columns have no total, so no column-wise secondary suppression.
    assert out.loc["y"].tolist() == [40, 50, 70, 160]
    assert ("x", "b") in out.attrs["disclosure"]["secondary"]
    # Subtraction cannot recover the suppressed cell any more: two unknowns in the row.
    assert out.loc["x", ["a", "b", "c"]].isna().sum() == 2


def test_secondary_suppression_in_a_column():
    t = pd.DataFrame({"n": [5, 30, 12, 90], "m": [50, 50, 50, 50]}, index=list("abcd"))
    out = disclosure.disclose(t, total_row="Total")
    assert out.loc["a", "n"] is pd.NA
    assert out.loc["c", "n"] is pd.NA  # next smallest in the column (12)
    assert out.loc["b", "n"] == 30 and out.loc["d", "n"] == 90
    assert out["m"].tolist() == [50, 50, 50, 50, 200]
    assert out.loc["Total", "n"] == 5 + 30 + 10 + 90


def test_secondary_suppression_skips_zero_and_iterates_until_stable():
    # Column a: 4 suppressed -> 9 suppressed (smallest non-zero; the 0 is skipped). Rows w and z then each
    # hold one suppressed cell, so a second cell goes in each; column b then has two. Stable.
    t = pd.DataFrame({"a": [4, 0, 9, 100], "b": [40, 30, 60, 100]}, index=["w", "x", "z", "y"])
    out = disclosure.disclose(t, total_row="Total", total_col="Total")
    assert out.loc["x", "a"] == 0
    assert out.loc["x", "b"] == 30
    suppressed = {(r, c) for r, c in out.attrs["disclosure"]["suppressed"]}
    assert suppressed == {("w", "a"), ("z", "a"), ("w", "b"), ("z", "b")}
    full = out.isna().to_numpy()
    for line in list(full) + list(full.T):  # no row or column with exactly one suppressed cell
        assert line.sum() != 1, out


def test_secondary_suppression_random_tables_never_leave_a_lone_cell():
    rng = np.random.default_rng(20210802)
    for _ in range(200):
        shape = rng.integers(2, 6, size=2)
        values = rng.choice([0, 1, 2, 5, 7, 8, 12, 30, 100], size=shape)
        t = pd.DataFrame(values, columns=[f"c{j}" for j in range(shape[1])])
        out = disclosure.disclose(t, total_row="Total", total_col="Total")
        full = out.isna().to_numpy()
        for line in list(full) + list(full.T):
            assert line.sum() != 1, (t, out)
        assert disclosure.check_disclosure(out, threshold=7, base=5).empty


def test_small_total_is_suppressed():
    t = pd.DataFrame({"a": [3], "b": [0]}, index=["x"])
    out = disclosure.disclose(t, total_col="Total")
    assert out.loc["x", "Total"] is pd.NA
    assert out.loc["x", "a"] is pd.NA
    assert out.loc["x", "b"] == 0


@pytest.mark.parametrize("bad, message", [([1, -2, 3], "negative"), ([1, 2.5, 3], "non-integer"),
                                          ([1, None, 3], "missing"), (["1", "x", "3"], "non-numeric")])
def test_errors_name_the_column(bad, message):
    t = pd.DataFrame({"good": [10, 20, 30], "bad_column": bad})
    with pytest.raises(ValueError, match=rf"'bad_column'.*{message}|{message}.*'bad_column'"):
        disclosure.disclose(t, count_columns=["good", "bad_column"])


def test_default_count_columns_include_all_numeric():
    t = pd.DataFrame({"label": ["a", "b"], "x": [1, 20], "y": [2.0, 30.0]})
    out = disclosure.disclose(t)
    assert out["x"].isna().tolist() == [True, False]
    assert out["y"].isna().tolist() == [True, False]


def test_check_disclosure_finds_offending_cells():
    t = pd.DataFrame({"a": [0, 3, 50], "b": [7, 8, 12]}, index=["x", "y", "z"])
    found = disclosure.check_disclosure(t, threshold=7)
    assert set(zip(found["row"], found["column"])) == {("y", "a"), ("x", "b")}
    assert disclosure.check_disclosure(disclosure.disclose(t, total_row="Total", total_col="Total"), threshold=7).empty
    # With base: unrounded values are flagged too.
    found_base = disclosure.check_disclosure(t, threshold=7, base=5)
    assert ("y", "b") in set(zip(found_base["row"], found_base["column"]))  # 8 is not a multiple of 5


def test_check_disclosure_accepts_rounded_values_at_the_threshold():
    t = pd.DataFrame({"n": [11, 14, 30]})
    out = disclosure.disclose(t, threshold=10, base=10)  # 11, 14 -> 10
    assert disclosure.check_disclosure(out, threshold=10, base=10).empty
    # A 5 in a base-5 table would reveal a 3-7 count: flagged.
    assert len(disclosure.check_disclosure(pd.DataFrame({"n": [5, 10]}), threshold=7, base=5)) == 1


def test_disclosed_percent_uses_disclosed_counts():
    num = pd.Series([10, pd.NA, 15, 5], dtype="Int64")
    den = pd.Series([40, 30, pd.NA, 0], dtype="Int64")
    pct = disclosure.disclosed_percent(num, den)
    assert pct.iloc[0] == 25.0
    assert pct.iloc[1:].isna().all()
    assert disclosure.disclosed_percent(1, 3, digits=2) == 33.33


def test_format_disclosed():
    out = disclosure.disclose(pd.DataFrame({"n": [3, 1234]}))
    out["pct"] = [np.nan, 12.345]
    shown = disclosure.format_disclosed(out)
    assert shown["n"].tolist() == ["*", "1,235"]
    assert shown["pct"].tolist() == ["*", "12.3"]
