"""The opt-in ``mnar_wmi`` cohort: the default cohort's recorded part, a missing part solved so that weighted MI
reproduces the printed weighted-MI column (issue 13), and weighted MI correctly specified on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import cohort, imputation, mnar_wmi, params, pipeline, replication, study, targets

MNAR_WMI = {"missing_mechanism": "mnar_wmi"}
# Same parameters, same bytes, on every supported Python (the CI runs this file on 3.11, 3.12 and 3.13).
RAW_SHA256 = "500ca01751e33bf7a91501c062d89eb133e7904c0ea1d073b9cba3bdea1cdff3"
TRUTH_SHA256 = "4cfbe854f20c57230fd9d23adfa658239f04c11de386c133ea00a490e852fba1"
CELL = [*study.COVARIATE_LEVELS, "referral_source", "assessed", "treated", "ethnicity"]


@pytest.fixture(scope="module")
def both():
    return pipeline.load_study_data({}), pipeline.load_study_data(MNAR_WMI)


def _vs_printed(estimates: pd.DataFrame, analysis: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    cmp = replication.published_vs_ours(estimates.assign(analysis=analysis), pipeline.published_table4())
    rows = cmp[cmp.analysis == analysis]
    return rows[rows.ethnicity != study.REFERENCE_GROUP], rows[rows.model == "unadjusted"]


def test_same_parameters_same_bytes():
    made = cohort.generate(missing_mechanism="mnar_wmi")
    assert cohort.csv_sha256(made.raw) == RAW_SHA256
    assert cohort.csv_sha256(made.truth) == TRUTH_SHA256


def test_recorded_part_is_the_default_cohorts_so_complete_case_is_unchanged(both):
    default, solved = both
    def recorded_cells(d):
        f = d.frame[d.frame.ethnicity.notna()]
        return f.groupby(CELL, observed=True, dropna=False).size()
    pd.testing.assert_series_equal(recorded_cells(default), recorded_cells(solved))
    assert int(solved.frame.ethnicity.isna().sum()) == int(default.frame.ethnicity.isna().sum()) == 15_873
    cc = pipeline.complete_case_estimates(solved)
    same = pipeline.complete_case_estimates(default)
    pd.testing.assert_frame_equal(cc.drop(columns="n_excluded"), same.drop(columns="n_excluded"))
    ors, pct = _vs_printed(cc, "complete_case")
    assert (ors.rounds_to_printed.sum(), ors.inside_paper_ci.sum()) == (21, 21)
    assert ((pct.ours_pct.round(1) - pct.paper_pct).abs() < 1e-9).sum() == 8


def test_the_missing_part_is_the_solved_one(both):
    """Who lacks ethnicity: the file's spread over cells, true groups mostly Black African, almost no Mixed."""
    made = cohort.generate(missing_mechanism="mnar_wmi")
    missing = made.counts[made.counts.missing == 1]
    cells = ["pattern", "referral_source", "stage"]
    expected = missing.groupby(cells, sort=False)["expected"].sum()
    realised = missing.groupby(cells, sort=False)["count"].sum()
    shares = mnar_wmi.cell_shares()
    wanted = np.array([15_873 * shares[pat, study.SOURCES.index(src), targets.STAGE_LEVELS.index(stage)]
                       for pat, src, stage in expected.index])
    np.testing.assert_allclose(expected.to_numpy(), wanted, rtol=1e-10, atol=1e-9)  # the file, cell for cell
    assert np.abs(realised.to_numpy() - wanted).max() <= 7  # rounded within each of the 7 groups' counts
    _, solved = both
    truth = pipeline.true_frame(solved)
    missing = solved.frame.ethnicity.isna()
    mix = truth.ethnicity[missing].value_counts(normalize=True)
    assert 0.5 < mix["Black African"] < 0.6
    assert mix["Mixed"] < 0.001 and mix["Black Caribbean"] < 0.01
    # missing more often among referrals never assessed, as the solution has it (35.2% / 10.7% / 9.8%)
    stage = imputation.add_pathway_stage(solved.frame)
    by_stage = missing.groupby(stage.to_numpy(), observed=True).mean().reindex(imputation.PATHWAY_STAGES)
    np.testing.assert_allclose(by_stage.to_numpy(), [0.352, 0.107, 0.098], atol=0.002)


def test_weighted_mi_given_the_assumed_margin_computes_the_weights_the_truth_was_drawn_with(both):
    """Correct specification: the conditional weights weighted MI computes equal the file's (to 1%)."""
    _, solved = both
    result = imputation.impute_ethnicity(solved.frame, pipeline.population_margin(solved), 2,
                                         np.random.default_rng(0))
    weights = np.asarray(result.weights, dtype=float)
    computed = weights / weights[0]
    planted = mnar_wmi.read_groups()["weight"].to_numpy(dtype=float)
    mixed = list(study.GROUPS).index("Mixed")
    others = np.arange(len(planted)) != mixed
    np.testing.assert_allclose(computed[others], planted[others], rtol=0.01)
    # Mixed's weight (7.6e-4: almost no imputed record either way) is fitted on expected, not realised, recorded
    # counts by the generator, so it differs by 6% (0.00071)
    np.testing.assert_allclose(computed[mixed], planted[mixed], rtol=0.1)
    # the margin is not the cohort's true mix: weighted MI's formula starts from the MAR-imputed mix
    true_mix = imputation.margin_from_truth(pipeline.true_frame(solved)["ethnicity"])
    assert mnar_wmi.margin()["Black African"] - true_mix["Black African"] == pytest.approx(0.009, abs=0.001)


def test_the_full_data_truth_rounds_to_16_of_21_printed_weighted_mi_ors(both):
    """The synthetic truth rounds to 16 of 21 printed weighted-MI ORs; the 5 that miss are named."""
    _, solved = both
    ors, _ = _vs_printed(pipeline.truth_estimates(solved), "weighted_mi")
    assert ors.inside_paper_ci.all()
    missed = set(zip(ors.model[~ors.rounds_to_printed], ors.ethnicity[~ors.rounds_to_printed]))
    assert missed == {("unadjusted", "Mixed"), ("adjusted_age_gender_year", "Mixed"),
                      ("adjusted_full", "Mixed"), ("adjusted_age_gender_year", "Asian"),
                      ("adjusted_full", "Other")}


def test_weighted_mi_of_the_run_inside_every_printed_ci_and_near_the_truth(both):
    _, solved = both
    wmi = pipeline.mi_estimates_from_study_data(solved, weighted=True)
    ors, pct = _vs_printed(wmi, "weighted_mi")
    assert ors.inside_paper_ci.sum() == 21
    assert ors.rounds_to_printed.sum() == 13  # this seed's draw; 9-16 over 10 seeds (docs/weighted_mi_bounds.md)
    assert list(pct.ethnicity[(pct.ours_pct - pct.paper_pct).abs() > 0.2]) == ["Mixed"]
    assert round(float(pct.set_index("ethnicity").ours_pct["Mixed"]), 1) == 73.1  # complete case's: never moved
    truth = pipeline.truth_estimates(solved)
    keys = ["stage", "outcome_level", "model", "ethnicity"]
    both_ = wmi.merge(truth, on=keys, suffixes=("", "_truth"))
    both_ = both_[both_.ethnicity != study.REFERENCE_GROUP]
    z = (np.log(both_.estimate) - np.log(both_.estimate_truth)) / both_.se
    assert z.abs().max() < 1  # every pooled estimate within one pooled SE of the cohort's truth


def test_margin_auto_means_the_solved_margin_and_is_not_injected():
    p = params.validate(MNAR_WMI)
    assert p["margin"] == "mnar_wmi"
    assert params.overrides(p) == MNAR_WMI
    assert params.validate({**MNAR_WMI, "margin": "truth"})["margin"] == "truth"
    shares = pipeline.margin_from_choice("mnar_wmi")
    assert list(shares.index) == list(study.GROUPS) and shares.sum() == pytest.approx(1)


def test_the_assumed_margin_is_refused_for_a_real_extract_and_kept_for_its_synthetic_world(tmp_path):
    extract = tmp_path / "extract.csv"
    extract.write_text("PathwayID\n")
    with pytest.raises(params.ParameterError, match=r"'margin' = 'mnar_wmi' .*real extract.*census2011"):
        params.validate({**MNAR_WMI, "data_path": str(extract), "margin": "mnar_wmi"})
    real = params.validate({**MNAR_WMI, "data_path": str(extract)})
    assert real["margin"] == "census2011"
    assert pipeline.synthetic_params(real)["margin"] == "mnar_wmi"
    assert pipeline.synthetic_params(params.validate({"data_path": str(extract)}))["margin"] == "truth"


def test_a_broken_cells_file_is_named_with_what_it_needs(tmp_path, monkeypatch):
    lines = mnar_wmi.CELLS_FILE.read_text().splitlines()
    broken = tmp_path / "mnar_wmi_cells.csv"
    broken.write_text("\n".join(lines[:-2]) + "\n")  # two rows short
    monkeypatch.setattr(mnar_wmi, "CELLS_FILE", broken)
    with pytest.raises(ValueError, match=r"mnar_wmi_cells.csv: expected one row per cell .*2304 rows.*got 2302"):
        mnar_wmi.cell_shares()
    broken.write_text("\n".join(lines[:-1] + [lines[-2]]) + "\n")  # the last cell replaced by a repeat
    with pytest.raises(ValueError, match="repeats"):
        mnar_wmi.cell_shares()
    broken.write_text("\n".join(lines[:-1] + [lines[-1].rsplit(",", 1)[0] + ",-0.1"]) + "\n")
    with pytest.raises(ValueError, match="'share' must be finite, >= 0"):
        mnar_wmi.cell_shares()
