"""helpers.publish: exact counts on a synthetic cohort, disclosed counts on a real extract, same call."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers import check_outputs, disclosure, prepare, publish, tables

SYNTHETIC = {"data_path": "", "suppress_threshold": 7, "rounding_base": 5}
REAL = {"data_path": "extract.csv", "suppress_threshold": 7, "rounding_base": 5}


@pytest.mark.parametrize("n, synthetic, real", [(3, "3", "*"), (0, "0", "0"), (85_801, "85,801", "85,800"),
                                                 (12, "12", "10"), (8, "8", "10")])
def test_one_count(n, synthetic, real):
    assert publish.count(n, SYNTHETIC) == synthetic
    assert publish.count(n, REAL) == real


def test_percent_from_disclosed_counts():
    assert publish.percent(1, 3, SYNTHETIC) == "33.3%"
    assert publish.percent(3, 101, REAL) == "*"
    assert publish.percent(52, 101, REAL) == "50.0%"  # 50 of 100, not 51.5%


def test_counts_table_is_disclosed_only_on_a_real_extract():
    table = pd.DataFrame({"Self": [152, 4, 61], "GP": [148, 23, 9], "rate": [0.5, 0.1, 0.9]},
                         index=["A", "B", "C"])
    assert publish.counts(table, SYNTHETIC) is table
    shown = publish.counts(table, REAL, count_columns=["Self", "GP"], total_row="Total", total_col="Total")
    assert "rate" not in shown.columns  # a rate from raw counts could undo the rounding
    assert shown.loc["B", "Self"] == "*" and shown.loc["A", "Self"] == "150"
    found = check_outputs.check_grid([["", *shown.columns]], [[i, *map(str, r)] for i, r in shown.iterrows()])
    assert found == []


def test_a_difference_of_counts_keeps_its_sign():
    shown = publish.counts(pd.DataFrame({"change": [-27, 3, 40]}), REAL)
    assert shown["change"].tolist() == ["-25", "*", "40"]


def test_crosstab_real_has_totals_and_no_small_count():
    rows = pd.Series(["Z"] * 3 + ["A"] * 40 + ["99"] * 12)
    cols = pd.Series(["(missing)"] * 3 + ["White British"] * 40 + ["(missing)"] * 12)
    exact = publish.crosstab(rows, cols, SYNTHETIC)
    assert exact.loc["Z", "(missing)"] == 3 and exact.loc[tables.TOTAL_LABEL, tables.TOTAL_LABEL] == 55
    shown = publish.crosstab(rows, cols, REAL)
    assert shown.loc["Z", "(missing)"] == "*"
    assert "3" not in shown.to_string().split()


def test_flow_text_and_table_disclosed(tmp_path):
    raw = pd.DataFrame({c: [""] * 3 for c in prepare.REQUIRED_COLUMNS})
    flow = prepare.prepare(raw).flow  # three blank rows, all excluded
    text = publish.flow_text(flow, REAL)
    assert "*" in text and "remaining" not in text
    assert check_outputs.check_text(text) == []
    assert "3" in prepare.flow_text(flow) and publish.flow_text(flow, SYNTHETIC) == prepare.flow_text(flow)
    shown = publish.flow(flow, REAL)
    assert "n_remaining" not in shown.columns and disclosure.check_disclosure(shown[["n_rows"]]).empty
    assert disclosure.disclosed_flow(flow, 7, 5)["n_rows"].isna().sum() >= 1


def test_exploratory_output_is_withheld_on_a_real_extract():
    obj = object()
    assert publish.exploratory(obj, SYNTHETIC, "x", "y") is obj
    withheld = publish.exploratory(obj, REAL, "tableone's Table 1", "See section 4.")
    assert "Not shown on a real extract" in repr(withheld) and "<em>" in withheld._repr_html_()
    assert "Synthetic" in publish.banner(SYNTHETIC) and "disclosure controlled" in publish.banner(REAL)


def test_parameters_shown_without_machine_paths():
    p = {"data_path": "/secure/area/iapt.csv", "targets_path": "", "margin": "/x/m.csv",
         "output_dir": "/tmp/run", "seed": 1}
    assert publish.parameters(p) == {"data_path": "iapt.csv", "targets_path": "", "margin": "m.csv",
                                     "output_dir": ".", "seed": 1}
    assert publish.parameters({"output_dir": "../outputs", "margin": "truth"}) == {
        "output_dir": "../outputs", "margin": "truth"}
