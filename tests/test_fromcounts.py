"""The nine models and weighted MI from pattern counts alone equal the row-level route (ModelPlan, imputation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import extract, imputation, models, pipeline, pooling
from helpers import fromcounts as FC

NUM = ["estimate", "ci_low", "ci_high", "log_estimate", "se", "p_value"]


@pytest.fixture(scope="module")
def data():
    return pipeline.load_study_data()


@pytest.fixture(scope="module")
def extracted():
    """The default cohort through the extract engine, once for the module (the counts and the carried folder)."""
    return extract.run(pipeline.cohort.DEFAULT_COHORT)


@pytest.fixture(scope="module")
def counts(extracted):
    return FC.count_data(extracted.pattern_counts)


def _close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a[NUM].to_numpy(float), b[NUM].to_numpy(float), rtol=1e-8, atol=1e-10)
    rest = [c for c in a.columns if c not in NUM]
    pd.testing.assert_frame_equal(a[rest], b[rest])


def test_complete_case_from_counts_equals_rows(data, counts):
    assert counts.n == len(data.frame)
    _close(FC.complete_case(counts), models.fit_all(data.frame))


def test_imputation_model_from_counts_equals_rows(data, counts):
    margin = pipeline.population_margin(data)
    rows = imputation.impute_ethnicity(data.frame, margin, 2, np.random.default_rng(3))
    cnt = FC.impute(counts, margin, 2, np.random.default_rng(3))
    np.testing.assert_allclose(cnt.weights.to_numpy(), rows.weights.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(cnt.fit.params), np.asarray(rows.fit.params), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(cnt.fit.cov), np.asarray(rows.fit.cov), rtol=1e-8, atol=1e-12)
    assert cnt.n_missing == rows.n_missing
    for c, r in zip(cnt.completed, rows.completed):
        # every missing referral placed in exactly one group, observed ones untouched
        np.testing.assert_array_equal(c.sum(axis=1), counts.observed.sum(axis=1) + counts.missing)
        assert (c >= counts.observed).all()
        # one engine: the completed rows aggregate exactly to the completed table drawn from the same seed
        np.testing.assert_array_equal(FC.completed_counts(counts, data.frame, r), c)


def test_completed_rows_are_a_random_order_within_each_pattern(data):
    """The row route's second stream orders the drawn groups within a pattern: another seed for it alone
    keeps every pattern's split and moves rows between groups."""
    margin = pipeline.population_margin(data)
    a = imputation.impute_ethnicity(data.frame, margin, 1, np.random.default_rng(3)).completed[0]
    rng = np.random.default_rng(3)
    rng.spawn(1)  # the same imputation draws, the next spawned stream for the order
    b = imputation.impute_ethnicity(data.frame, margin, 1, rng).completed[0]
    assert (a != b).sum() > 0
    pd.testing.assert_frame_equal(FC.pattern_counts_from_frame(data.frame.assign(ethnicity=a)).sort_values(
        FC.PATTERN_COLUMNS).reset_index(drop=True), FC.pattern_counts_from_frame(data.frame.assign(ethnicity=b))
        .sort_values(FC.PATTERN_COLUMNS).reset_index(drop=True))


def test_pooled_mi_from_counts_equals_rows_on_the_same_completions(data, counts):
    margin = pipeline.population_margin(data)
    rows = imputation.impute_ethnicity(data.frame, margin, 3, np.random.default_rng(11))
    completed = [FC.completed_counts(counts, data.frame, c) for c in rows.completed]
    _close(FC.mi_estimates_from_counts(counts, completed), pooling.mi_estimates_from_rows(data.frame, rows, progress=False))


def mi_from_counts_as_the_run_draws(cd: FC.CountData, data: pipeline.StudyData, weighted: bool) -> pd.DataFrame:
    """Weighted or MAR MI from pattern counts with the run's own stream, margin and M (what the row route uses)."""
    rng = pipeline.rng_for(data.params, "imputation" if weighted else "mar_imputation")
    margin = pipeline.population_margin(data) if weighted else None
    imp = FC.impute(cd, margin, data.params["n_imputations"], rng, weights="conditional" if weighted else None)
    return FC.mi_estimates_from_counts(cd, imp.completed, imp.analysis)


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted_mi", "mar_mi"])
def test_pooled_mi_from_counts_equals_the_row_route_for_the_same_seed(data, counts, weighted):
    rows = pipeline.mi_estimates_from_study_data(data, weighted=weighted)
    ours = mi_from_counts_as_the_run_draws(counts, data, weighted)
    assert (ours["m"] == data.params["n_imputations"]).all()
    pd.testing.assert_frame_equal(ours, rows, check_exact=True)


def test_estimates_entry_point_and_reproducible(data, counts):
    margin = pipeline.population_margin(data)
    a = FC.estimates(counts, margin, 3, np.random.default_rng(1))
    b = FC.estimates(counts, margin, 3, np.random.default_rng(1))
    pd.testing.assert_frame_equal(a, b)
    assert set(a["analysis"]) == {"complete_case", "weighted_mi"}
    # a different seed moves the pooled estimates (by Monte Carlo error only)
    c = FC.estimates(counts, margin, 3, np.random.default_rng(2))
    mi, other = (t[t["analysis"] == "weighted_mi"].reset_index(drop=True) for t in (a, c))
    ok = mi["se"].notna()
    diff = (mi.loc[ok, "log_estimate"] - other.loc[ok, "log_estimate"]).abs() / mi.loc[ok, "se"]
    assert 0 < diff.max() < 1.0


def test_bad_pattern_counts_named():
    pc = pd.DataFrame({c: ["White British"] if c == "ethnicity" else ["x"] for c in FC.PATTERN_COLUMNS})
    pc["n"] = [1]
    with pytest.raises(ValueError, match="column 'age_band' has values \\['x'\\]"):
        FC.count_data(pc)
    with pytest.raises(ValueError, match="lack columns \\['n'\\]"):
        FC.count_data(pc.drop(columns="n"))


@pytest.fixture(scope="module")
def counts_folder(tmp_path_factory, data, extracted):
    """What a researcher carries out: pattern_counts.csv and flow.csv, and a margin file (here the truth's)."""
    folder = tmp_path_factory.mktemp("carried")
    extract.write(extracted, folder)
    margin = pipeline.population_margin(data)
    margin.rename("share").rename_axis("ethnicity").reset_index().to_csv(folder / "margin.csv", index=False)
    return folder


def test_cli_from_the_carried_folder_alone_equals_the_row_level_route(counts_folder, data, tmp_path):
    out = tmp_path / "out"
    assert FC.main([str(counts_folder), "--out", str(out), "--margin", str(counts_folder / "margin.csv"),
                    "--m", "5", "--seed", str(data.params["seed"]), "--exact"]) == 0
    est = pd.read_csv(out / "estimates.csv", keep_default_na=False, na_values=[""])
    rows = pipeline.paper_estimates(data)
    cc, cc_rows = est[est.analysis == "complete_case"].reset_index(drop=True), rows[rows.analysis == "complete_case"]
    np.testing.assert_allclose(cc[NUM].to_numpy(float), cc_rows[NUM].to_numpy(float), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(cc["n"].to_numpy(), cc_rows["n"].to_numpy())
    assert list(cc[["stage", "outcome_level", "model", "ethnicity"]].fillna("").itertuples(index=False)) == \
        list(cc_rows[["stage", "outcome_level", "model", "ethnicity"]].fillna("").itertuples(index=False))
    # weighted MI: the run's imputation stream, the same numbers as the public function on the same counts
    p = {**data.params, "n_imputations": 5}
    again = FC.paper_estimates(FC.count_data(extract.read_pattern_counts(counts_folder / "pattern_counts.csv")),
                               pipeline.population_margin(data), 5, pipeline.rng_for(p, "imputation"))
    mi = est[est.analysis == "weighted_mi"].reset_index(drop=True)
    np.testing.assert_allclose(mi[NUM].to_numpy(float), again[again.analysis == "weighted_mi"][NUM].to_numpy(float),
                               rtol=1e-10, atol=1e-12)
    assert (mi["m"] == 5).all()
    # Table 4 beside ours: the complete-case treatment ORs lie in the printed CIs (what the cohort is built for)
    t4 = pd.read_csv(out / "table4_comparison.csv")
    assert t4[t4.analysis == "complete_case"]["inside_paper_ci"].all()


def test_cli_disclosure_controls_counts_by_default(counts_folder, tmp_path):
    assert FC.main([str(counts_folder), "--out", str(tmp_path), "--m", "2", "--margin", str(counts_folder / "margin.csv")]) == 0
    est = pd.read_csv(tmp_path / "estimates.csv")
    shown = est["n"].dropna()
    assert len(shown) and (shown % 5 == 0).all() and not shown.between(1, 7).any()


def test_cli_bad_folder_and_mismatched_files_named(counts_folder, tmp_path, capsys):
    assert FC.main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no pattern_counts.csv or flow.csv" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    pc = pd.read_csv(counts_folder / "pattern_counts.csv", dtype=str, keep_default_na=False)
    pc.iloc[1:].to_csv(other / "pattern_counts.csv", index=False)
    (other / "flow.csv").write_text((counts_folder / "flow.csv").read_text())
    assert FC.main([str(other), "--out", str(tmp_path / "o")]) == 2
    assert "not from the same extract run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        FC.main([str(counts_folder), "--out", str(tmp_path / "o"), "--margin", "truth"])
    assert "truth" in capsys.readouterr().err
