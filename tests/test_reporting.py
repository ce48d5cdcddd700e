"""helpers.reporting: pathway gaps per 1,000 referred (hand-computed), replication summary, STROBE/RECORD map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import plots, reporting, study


def _pathway_frame() -> pd.DataFrame:
    """White British: 10 referred, 8 assessed, 6 treated. Black Caribbean: 10, 6, 3. Black African: 10, 4, 3."""
    def block(group, referred, assessed, treated):
        a = [1] * assessed + [0] * (referred - assessed)
        t = [1.0] * treated + [0.0] * (assessed - treated) + [np.nan] * (referred - assessed)
        return pd.DataFrame({"ethnicity": group, "assessed": a, "treated": t})

    frame = pd.concat([block("White British", 10, 8, 6), block("Black Caribbean", 10, 6, 3),
                       block("Black African", 10, 4, 3), block(None, 5, 2, 1)], ignore_index=True)
    frame["ethnicity"] = pd.Categorical(frame["ethnicity"], categories=study.GROUPS)
    return frame


def test_pathway_gaps_hand_computed() -> None:
    gaps = reporting.pathway_gaps(_pathway_frame())
    assert list(gaps.index) == study.GROUPS
    assert list(gaps.columns) == reporting.GAP_COLUMNS
    wb, bc, ba = gaps.loc["White British"], gaps.loc["Black Caribbean"], gaps.loc["Black African"]
    assert wb["assessed_per_1000"] == pytest.approx(800) and wb["treated_per_1000"] == pytest.approx(600)
    assert wb["treated_shortfall"] == pytest.approx(0)
    assert bc["treated_per_1000"] == pytest.approx(300)
    assert bc["treated_per_1000_assessed"] == pytest.approx(500)
    assert bc["assessed_shortfall"] == pytest.approx(200)
    assert bc["treated_shortfall"] == pytest.approx(300)
    # (0.8 - 0.6) x 0.75 = 0.15 lost at assessment; 0.6 x (0.75 - 0.5) = 0.15 lost at treatment
    assert bc["lost_at_assessment"] == pytest.approx(150)
    assert bc["lost_at_treatment"] == pytest.approx(150)
    assert bc["excess_untreated"] == pytest.approx(3)
    # Black African: the whole gap opens at assessment (treated share among assessed equals White British)
    assert ba["lost_at_assessment"] == pytest.approx(300) and ba["lost_at_treatment"] == pytest.approx(0)
    assert ba["referred"] == 10
    parts = gaps["lost_at_assessment"] + gaps["lost_at_treatment"]
    assert np.allclose(parts.dropna(), gaps["treated_shortfall"].dropna())
    assert np.isnan(gaps.loc["Other", "treated_per_1000"])  # nobody referred: no rate


def test_pathway_gaps_per_and_errors() -> None:
    gaps = reporting.pathway_gaps(_pathway_frame(), per=100)
    assert gaps.loc["Black Caribbean", "treated_shortfall"] == pytest.approx(30)
    assert gaps.loc["Black Caribbean", "excess_untreated"] == pytest.approx(3)
    with pytest.raises(ValueError, match="method"):
        reporting.pathway_gaps(_pathway_frame(), method="guess")
    with pytest.raises(ValueError, match="per must be positive"):
        reporting.pathway_gaps(_pathway_frame(), per=-1)


def test_pathway_gaps_predicted_unadjusted_equals_observed() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    eth = rng.choice(study.GROUPS, size=n)
    assessed = (rng.random(n) < 0.7).astype(int)
    treated = np.where(assessed == 1, (rng.random(n) < 0.6).astype(float), np.nan)
    frame = pd.DataFrame({
        "ethnicity": pd.Categorical(eth, categories=study.GROUPS),
        "assessed": assessed, "treated": treated,
        "age_band": pd.Categorical(rng.choice(study.AGE_BANDS, n), categories=study.AGE_BANDS),
        "gender": pd.Categorical(rng.choice(study.GENDERS, n), categories=study.GENDERS),
        "year": pd.Categorical(rng.choice(study.YEARS, n), categories=study.YEARS),
        "borough": pd.Categorical(rng.choice(study.BOROUGHS, n), categories=study.BOROUGHS),
    })
    observed = reporting.pathway_gaps(frame)
    predicted = reporting.pathway_gaps(frame, method="predicted", model="unadjusted")
    cols = ["assessed_per_1000", "treated_per_1000", "lost_at_assessment", "lost_at_treatment"]
    assert np.allclose(observed[cols].to_numpy(float), predicted[cols].to_numpy(float), atol=1e-5)
    assert predicted.attrs["method"] == "predicted (unadjusted)"


def test_pathway_gaps_disclosed() -> None:
    gaps = reporting.pathway_gaps(_pathway_frame(), disclose=True)
    # every count here is 1..7 or rounds to 10: Black Caribbean assessed 6 and treated 3 are suppressed
    assert np.isnan(gaps.loc["Black Caribbean", "treated_per_1000"])
    assert gaps.attrs["disclosed"] is True


def test_pathway_gap_plot() -> None:
    fig = plots.pathway_gap_plot(reporting.pathway_gaps(_pathway_frame()))
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    assert {p.get_gid() for p in ax.patches} == {"lost_at_assessment", "lost_at_treatment"}
    assert len(ax.containers[0]) == len(study.GROUPS) - 1
    with pytest.raises(ValueError, match="pathway_gaps"):
        plots.pathway_gap_plot(pd.DataFrame())


def test_replication_summary() -> None:
    comparison = pd.DataFrame({
        "analysis": ["complete_case"] * 3 + ["weighted_mi"] * 3,
        "model": ["unadjusted"] * 6,
        "ethnicity": ["White British", "Black Caribbean", "Black African"] * 2,
        "inside_paper_ci": [True, True, True, True, True, False],
        "rounds_to_printed": [True, True, True, True, False, False],
    })
    s = reporting.replication_summary(comparison).set_index("analysis")
    assert s.loc["complete_case", "compared"] == 2
    assert s.loc["complete_case", "inside_paper_ci"] == 2 and s.loc["complete_case", "outside_paper_ci"] == ""
    assert s.loc["weighted_mi", "inside_paper_ci"] == 1
    assert s.loc["weighted_mi", "rounds_to_printed"] == 0
    assert s.loc["weighted_mi", "outside_paper_ci"] == "Black African (unadjusted)"
    with pytest.raises(ValueError, match="lacks"):
        reporting.replication_summary(comparison.drop(columns="model"))


def test_checklist_items() -> None:
    table = reporting.checklist()
    assert list(table.columns) == reporting.CHECKLIST_COLUMNS
    strobe = table[table["guideline"] == "STROBE"]["item"].tolist()
    assert strobe == [str(i) for i in range(1, 23)]
    record = " ".join(table[table["guideline"] == "RECORD"]["item"])
    for item in ("1.1", "6.1", "6.2", "6.3", "7.1", "12.1", "12.2", "12.3", "13.1", "19.1", "22.1"):
        assert item in record
    assert table["where"].str.len().gt(0).all() and table["how"].str.len().gt(0).all()


def test_every_checklist_reference_exists() -> None:
    missing = reporting.missing_references()
    assert not missing, f"the STROBE/RECORD checklist names files that do not exist: {missing}"


def test_missing_references_detects(tmp_path) -> None:
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "codes.py").write_text("")
    table = pd.DataFrame([("RECORD", "7.1", "codes", "helpers/codes.py; notebooks/99_nope.ipynb", "x")],
                         columns=reporting.CHECKLIST_COLUMNS)
    assert reporting.missing_references(table, root=tmp_path) == ["notebooks/99_nope.ipynb"]
    assert reporting.referenced_paths(table) == ["helpers/codes.py", "notebooks/99_nope.ipynb"]


def test_pathway_gaps_order_changes_split_not_total() -> None:
    first = reporting.pathway_gaps(_pathway_frame())
    other = reporting.pathway_gaps(_pathway_frame(), order="treatment_first")
    assert other.attrs["order"] == "treatment_first" and first.attrs["order"] == "assessment_first"
    # Black Caribbean: (0.8 - 0.6) x 0.5 = 0.10 lost at assessment; 0.8 x (0.75 - 0.5) = 0.20 at treatment
    assert other.loc["Black Caribbean", "lost_at_assessment"] == pytest.approx(100)
    assert other.loc["Black Caribbean", "lost_at_treatment"] == pytest.approx(200)
    assert first.loc["Black Caribbean", "lost_at_assessment"] == pytest.approx(150)
    # same total either way; no treatment gap (Black African) means no difference between orders
    assert np.allclose(other["treated_shortfall"].dropna(), first["treated_shortfall"].dropna())
    parts = other["lost_at_assessment"] + other["lost_at_treatment"]
    assert np.allclose(parts.dropna(), other["treated_shortfall"].dropna())
    assert other.loc["Black African", "lost_at_assessment"] == pytest.approx(300)
    with pytest.raises(ValueError, match="order"):
        reporting.pathway_gaps(_pathway_frame(), order="backwards")


def test_label_table_synthetic_and_extract() -> None:
    from types import SimpleNamespace

    table = pd.DataFrame({"ethnicity": ["White British"], "rate": [1.0]})
    synthetic = SimpleNamespace(truth=pd.DataFrame(), params={"data_path": ""}, origin="synthetic")
    labelled = reporting.label_table(table, synthetic)
    assert list(labelled.columns) == ["data", "ethnicity", "rate"]
    assert labelled["data"].iloc[0] == reporting.SYNTHETIC_LABEL and "synthetic" in reporting.SYNTHETIC_LABEL
    assert "data" not in table.columns  # a copy, the input untouched
    extract = SimpleNamespace(truth=None, params={"data_path": "/secure/iapt_extract_2017.csv"}, origin="extract")
    assert reporting.label_table(labelled, extract)["data"].tolist() == ["iapt_extract_2017.csv"]
    assert list(reporting.label_table(labelled, extract).columns) == ["data", "ethnicity", "rate"]
