"""The shared route from parameters to tables: same parameters, same tables; outputs complete and safe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import disclosure, pipeline, replication, study


@pytest.fixture(scope="module")
def small():
    return pipeline.load_study_data(n_referrals=12_000, seed=4, n_imputations=5)


def test_default_parameters_load_the_committed_cohort():
    data = pipeline.load_study_data()
    assert "committed" in data.origin
    assert len(data.frame) == 85_800 and data.truth is not None
    assert (data.truth.referral_id == data.frame.referral_id).all()


def test_other_parameters_generate(small):
    assert "generated" in small.origin and len(small.frame) == 12_000


def test_streams_are_independent_and_reproducible():
    p = {"seed": 5}
    a = pipeline.rng_for(p, "imputation").random(3)
    assert np.array_equal(a, pipeline.rng_for(p, "imputation").random(3))
    assert not np.array_equal(a, pipeline.rng_for(p, "simulation").random(3))
    with pytest.raises(ValueError, match="unknown random stream 'x'"):
        pipeline.rng_for(p, "x")


def test_paper_estimates_cover_every_stage_model_and_analysis(small):
    est = pipeline.paper_estimates(small)
    non_ref = est[est.ethnicity != study.REFERENCE_GROUP]
    counts = non_ref.groupby(["analysis", "stage", "model"]).size()
    assert len(counts) == 2 * 3 * 3
    assert (counts.xs("referral_source", level="stage") == 7 * 3).all()
    assert (counts.xs("treatment", level="stage") == 7).all()
    assert set(est.outcome_level[est.stage == "referral_source"]) == {"Self", "Community", "Other"}
    assert (est.outcome_level[est.stage != "referral_source"].fillna("") == "").all()
    assert list(est.columns[:11]) == pipeline.ESTIMATE_COLUMNS
    # the same parameters give identical tables
    pd.testing.assert_frame_equal(est, pipeline.paper_estimates(small))


def test_truth_is_only_for_synthetic_cohorts(small, tmp_path):
    assert len(pipeline.truth_estimates(small)) > 0
    extract = tmp_path / "extract.csv"
    small.raw.head(3000).to_csv(extract, index=False)
    real = pipeline.load_study_data(data_path=str(extract), margin="census2011", n_imputations=3)
    assert real.truth is None and "extract" in real.origin
    with pytest.raises(ValueError, match="no truth file"):
        pipeline.true_frame(real)


def test_three_methods_are_the_three_fits_side_by_side(small):
    """10 and 11 start from this: the same fits as the three calls, compared with the full-data truth."""
    m = pipeline.three_methods(small)
    expected = pd.concat([pipeline.complete_case_estimates(small),
                          pipeline.mi_estimates_from_study_data(small, weighted=False),
                          pipeline.mi_estimates_from_study_data(small, weighted=True)], ignore_index=True)
    pd.testing.assert_frame_equal(m.estimates, expected)
    assert set(m.estimates["analysis"]) == {"complete_case", "mar_mi", "weighted_mi"}
    pd.testing.assert_frame_equal(m.weighted_mi, pipeline.mi_estimates_from_study_data(small, weighted=True))
    pd.testing.assert_frame_equal(m.truth, pipeline.truth_estimates(small))
    pd.testing.assert_frame_equal(m.treatment, pipeline.compare_methods(expected, m.truth, stage="treatment"))
    pd.testing.assert_frame_equal(m.assessment, pipeline.compare_methods(expected, m.truth, stage="assessment"))
    assert m.margin_label == "true referred mix"  # margin 'auto' on a synthetic cohort is the truth
    assert m.true_mix.sum() == pytest.approx(1.0)
    pd.testing.assert_series_equal(m.margin_used, m.true_mix)


def test_margin_choices(small, tmp_path):
    truth = pipeline.population_margin(small)
    assert truth.index.tolist() == study.GROUPS and truth.sum() == pytest.approx(1)
    census = pipeline.population_margin(pipeline.load_study_data({**small.params, "margin": "census2011"}))
    assert census.sum() == pytest.approx(1) and not np.allclose(census, truth)
    path = tmp_path / "margin.csv"
    pd.DataFrame({"ethnicity": study.GROUPS, "share": [1 / 8] * 8}).to_csv(path, index=False)
    custom = pipeline.population_margin(pipeline.load_study_data({**small.params, "margin": str(path)}))
    assert np.allclose(custom, 1 / 8)


def test_write_outputs_publishable_tables_have_no_small_counts(small, tmp_path):
    paths = pipeline.write_outputs(small, tmp_path)
    assert all(p.exists() for p in paths.values())
    est = pd.read_csv(paths["estimates"])
    assert {"stage", "outcome_level", "model", "analysis", "ethnicity", "estimate", "ci_low", "ci_high", "n"} <= set(est)
    table1 = pd.read_csv(paths["table1"], index_col=[0, 1], header=[0, 1])
    counts = table1.loc[:, table1.columns.get_level_values(1) == "n"]
    pathway = pd.read_csv(paths["pathway_counts"], index_col=0)[["referred", "assessed", "treated"]]
    est_counts = est[["n", "n_events"]].astype("Float64")
    for name, table in (("table1", counts), ("pathway_counts", pathway), ("estimates", est_counts)):
        assert table.notna().any().any()
        offending = disclosure.check_disclosure(table)
        assert offending.empty, (name, offending.head())
    flow = pd.read_csv(paths["flow"])
    assert flow.n_rows.iloc[0] == len(small.raw)


def test_estimate_counts_are_disclosure_controlled_but_estimates_are_not():
    est = pd.DataFrame({"ethnicity": ["A", "B", "C"], "estimate": [1.0, 0.7712345, 1.3],
                        "n": [1234, 6, 0], "n_events": [1000.0, 3.0, 0.0]})
    out = pipeline.disclose_estimate_counts(est, threshold=7, base=5)
    assert out.estimate.tolist() == est.estimate.tolist()
    assert out.n.iloc[0] == 1235 and pd.isna(out.n.iloc[1]) and out.n.iloc[2] == 0
    assert out.n_events.iloc[0] == 1000 and pd.isna(out.n_events.iloc[1])
    assert disclosure.check_disclosure(out[["n", "n_events"]]).empty
    assert out.count_rounding.iloc[0].startswith("n, n_events: rounded to the nearest 5, counts 1-7 suppressed")


def test_table4_comparison_percent_treated_at_printed_precision_on_the_default_cohort():
    """Complete case, default cohort: % treated among the assessed from exact counts equals the printed % at
    its one decimal for all 8 groups (and 21/21 ORs round to the printed value), in every model's row."""
    data = pipeline.load_study_data()
    cmp = replication.published_vs_ours(pipeline.complete_case_estimates(data), pipeline.published_table4())
    cc = cmp[cmp.analysis == "complete_case"]
    assert len(cc) == 24 and cc.ours_pct.notna().all()
    assert (cc.ours_pct.round(1) == cc.paper_pct).all(), cc[["ethnicity", "ours_pct", "paper_pct"]]
    assert cc.rounds_to_printed.all() and cc.inside_paper_ci.all()
