"""The simulation study (helpers.simulation): reproducibility, the estimand, the performance measures.

Small cohorts and few replicates keep these fast; the statistical checks use Monte Carlo SE tolerances.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import params as params_mod
from helpers import simulation, study
from helpers import simulation as S
from helpers.targets import load_targets


@pytest.fixture(scope="module")
def small_run() -> pd.DataFrame:
    return S.run_simulation(n_sims=2, n_referrals=3000, methods=S.METHODS, n_imputations=2, seed=5)


def test_same_seed_same_results(small_run: pd.DataFrame) -> None:
    again = S.run_simulation(n_sims=2, n_referrals=3000, methods=S.METHODS, n_imputations=2, seed=5)
    pd.testing.assert_frame_equal(small_run, again)


def test_other_seed_other_results(small_run: pd.DataFrame) -> None:
    other = S.run_simulation(n_sims=2, n_referrals=3000, methods=S.METHODS, n_imputations=2, seed=6)
    assert not np.allclose(small_run["estimate"], other["estimate"], equal_nan=True)


def test_shape_and_columns(small_run: pd.DataFrame) -> None:
    assert list(small_run.columns) == S.RESULT_COLUMNS
    # 2 replicates x 3 mechanisms x 4 methods x 7 non-reference groups (one stage, one model)
    assert len(small_run) == 2 * 3 * 4 * 7
    assert set(small_run["mechanism"]) == {"MCAR", "MAR", "MNAR"}
    assert study.REFERENCE_GROUP not in set(small_run["ethnicity"])
    ok = small_run.dropna(subset=["estimate", "ci_low", "ci_high"])
    assert (ok["ci_low"] < ok["estimate"]).all() and (ok["estimate"] < ok["ci_high"]).all()
    assert ((small_run["missing_share"] > 0.1) & (small_run["missing_share"] < 0.3)).all()


def test_dropped_imputation_terms_are_counted_not_silenced(small_run: pd.DataFrame) -> None:
    """Small replicates can have an empty cell in the imputation model; how often is reported."""
    assert (small_run.loc[~small_run.method.isin(["mar_mi", "weighted_mi"]), "imputation_terms_dropped"] == 0).all()
    report = S.dropped_terms_report(small_run)
    mi = small_run[small_run.method.isin(["mar_mi", "weighted_mi"])]
    assert len(report) == mi.groupby(["mechanism", "method"]).ngroups
    per = mi.groupby(["mechanism", "method", "replicate"])["imputation_terms_dropped"].max()
    expected = per.gt(0).groupby(["mechanism", "method"]).sum()
    assert report.set_index(["mechanism", "method"])["replicates_with_dropped_terms"].to_dict() == expected.to_dict()


def test_replicates_do_not_depend_on_what_else_is_run(small_run: pd.DataFrame) -> None:
    one = S.run_simulation(n_sims=1, n_referrals=3000, mechanisms=("mnar",), methods=("weighted_mi",),
                           n_imputations=2, seed=5)
    ref = small_run[(small_run.replicate == 0) & (small_run.mechanism == "MNAR")
                    & (small_run.method == "weighted_mi")].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.reset_index(drop=True), ref, check_exact=False, rtol=1e-12)


def test_mar_and_weighted_mi_fit_their_common_unweighted_model_once(monkeypatch) -> None:
    """Per cohort: one unweighted imputation model for both MI methods, one weighted (the numbers are those
    of each method run alone: test_replicates_do_not_depend_on_what_else_is_run)."""
    from helpers import imputation

    calls = []
    real_fit = imputation.fit_imputation_model

    def counting(x, counts, weights=None, **kwargs):
        calls.append("unweighted" if weights is None else "weighted")
        return real_fit(x, counts, weights=weights, **kwargs)

    monkeypatch.setattr(imputation, "fit_imputation_model", counting)
    out = S.run_simulation(n_sims=1, n_referrals=20_000, mechanisms=("mcar",), methods=("mar_mi", "weighted_mi"),
                           n_imputations=2, seed=5)
    assert (out["imputation_terms_dropped"] == 0).all()  # the premise: no term dropped, so one round each
    assert calls == ["unweighted", "weighted"]


def test_cells_route_matches_generate_and_prepare() -> None:
    """Building the frame from the drawn counts gives the same complete-case and full-data estimates as
    cohort.generate(outcome_mode='random') + prepare with the same seed (same counts, same fits)."""
    kw = dict(n_sims=1, n_referrals=3000, mechanisms=("mnar",), methods=("full_data", "complete_case"), seed=11)
    fast = S.run_simulation(route="cells", **kw)
    slow = S.run_simulation(route="rows", **kw)
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-12)


def test_truth_is_the_planted_value_where_it_should_be() -> None:
    """Fully adjusted treatment model: the estimand equals the printed (planted) ORs under MCAR and MAR
    (missingness does not depend on group, and its stage x borough form is absorbed by the borough terms),
    and moves under MNAR (the missing slice of each group has a different pathway)."""
    t = load_targets(params_mod.DEFAULT_TARGETS)
    planted = np.log(t.treatment_or["adjusted_full"].reindex(study.GROUPS[1:]).to_numpy())
    truths = {}
    for mech in S.MECHANISMS:
        w = S.make_world(mech, n_referrals=20_000)
        truths[mech] = w.truth.set_index("ethnicity")["truth"].reindex(study.GROUPS[1:]).to_numpy()
        assert w.margin.sum() == pytest.approx(1.0)
        assert w.expected_missing_share == pytest.approx(0.185, abs=1e-9)
    np.testing.assert_allclose(truths["mcar"], planted, atol=1e-7)
    np.testing.assert_allclose(truths["mar"], planted, atol=1e-7)
    assert np.max(np.abs(truths["mnar"] - planted)) > 0.005


def test_truth_does_not_depend_on_cohort_size() -> None:
    a = S.make_world("mnar", n_referrals=5_000, stages=["assessment"], model_names=["unadjusted"]).truth
    b = S.make_world("mnar", n_referrals=200_000, stages=["assessment"], model_names=["unadjusted"]).truth
    np.testing.assert_allclose(a["truth"], b["truth"], atol=1e-8)


def test_referral_source_truth_has_levels() -> None:
    w = S.make_world("mcar", stages=["referral_source"], model_names=["adjusted_full"])
    assert set(w.truth["outcome_level"]) == {"Self", "Community", "Other"}
    t = load_targets(params_mod.DEFAULT_TARGETS)
    got = w.truth.set_index(["ethnicity", "outcome_level"])["truth"]
    assert got[("Black African", "Self")] == pytest.approx(np.log(t.referral_rrr.loc["Black African", "Self"]),
                                                          abs=1e-6)


def test_frame_from_counts() -> None:
    w = S.make_world("mar", n_referrals=4000)
    counts = np.random.default_rng(1).multinomial(4000, w.probabilities)
    frame, true_group = S.frame_from_counts(w.cells, counts)
    assert len(frame) == 4000 and len(true_group) == 4000
    assert frame["ethnicity"].isna().sum() == counts[w.cells["missing"].to_numpy() == 1].sum()
    seen = frame["ethnicity"].notna()
    assert (frame.loc[seen, "ethnicity"].astype(str).to_numpy() == np.asarray(true_group)[seen.to_numpy()]).all()
    assert frame.loc[frame.assessed == 0, "treated"].isna().all()
    assert frame.loc[frame.assessed == 1, "treated"].notna().all()
    assert list(frame["year"].cat.categories) == study.YEARS


def test_summarise_on_a_hand_made_frame() -> None:
    est = [0.1, 0.3, 0.2, 0.4, np.nan]
    se = [0.1, 0.1, 0.2, 0.2, np.nan]
    covered = [True, True, False, True, False]
    frame = pd.DataFrame({
        "replicate": range(5), "mechanism": "MCAR", "method": "complete_case", "stage": "treatment",
        "model": "adjusted_full", "outcome_level": "", "ethnicity": "Asian", "truth": 0.2,
        "estimate": est, "se": se, "covered": covered,
    })
    row = S.summarise(frame).iloc[0]
    x = np.array(est[:4])
    emp = x.std(ddof=1)
    assert row["n_sim"] == 4 and row["n_failed"] == 1
    assert row["bias"] == pytest.approx(0.05)
    assert row["mean_estimate"] == pytest.approx(0.25)
    assert row["emp_se"] == pytest.approx(emp)
    assert row["bias_mcse"] == pytest.approx(emp / 2)
    assert row["emp_se_mcse"] == pytest.approx(emp / np.sqrt(6))
    assert row["model_se"] == pytest.approx(np.sqrt(0.025))
    v = np.array([0.01, 0.01, 0.04, 0.04])
    assert row["model_se_mcse"] == pytest.approx(np.sqrt(v.var(ddof=1) / (4 * 4 * 0.025)))
    assert row["rel_error_se"] == pytest.approx(100 * (np.sqrt(0.025) / emp - 1))
    assert row["coverage"] == pytest.approx(0.75)
    assert row["coverage_mcse"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert row["coverage_mcse_nominal"] == pytest.approx(np.sqrt(0.95 * 0.05 / 4))


def test_coverage_mcse_at_nominal_level_does_not_collapse() -> None:
    """Every CI covers: the empirical coverage MCSE is 0, the MCSE at the nominal level is not."""
    frame = pd.DataFrame({
        "replicate": range(10), "mechanism": "MCAR", "method": "complete_case", "stage": "treatment",
        "model": "adjusted_full", "outcome_level": "", "ethnicity": "Asian", "truth": 0.0,
        "estimate": np.linspace(-0.1, 0.1, 10), "se": 0.1, "covered": True,
    })
    row = S.summarise(frame).iloc[0]
    assert row["coverage"] == 1.0 and row["coverage_mcse"] == 0.0
    assert row["coverage_mcse_nominal"] == pytest.approx(np.sqrt(0.95 * 0.05 / 10))
    assert S.summarise(frame, level=0.9).iloc[0]["coverage_mcse_nominal"] == pytest.approx(np.sqrt(0.09 / 10))
    with pytest.raises(ValueError, match="level"):
        S.summarise(frame, level=95)


def test_summarise_groups_separately() -> None:
    base = dict(replicate=0, stage="treatment", model="unadjusted", outcome_level="", truth=0.0, se=0.1,
                covered=True)
    rows = [dict(base, mechanism=m, method=k, ethnicity=g, estimate=e, replicate=r)
            for m in ("MCAR", "MNAR") for k in ("complete_case", "weighted_mi") for g in ("Asian", "Mixed")
            for r, e in enumerate([0.1, 0.3])]
    out = S.summarise(pd.DataFrame(rows))
    assert len(out) == 8
    assert np.allclose(out["bias"], 0.2)


def test_summarise_rejects_other_frames() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        S.summarise(pd.DataFrame({"estimate": [1.0]}))


def test_complete_case_unbiased_under_mcar() -> None:
    """Under MCAR the recorded rows are a random sample: complete case has no bias beyond Monte Carlo error."""
    res = S.run_simulation(n_sims=25, n_referrals=10_000, mechanisms=("mcar",), methods=("complete_case",),
                           seed=2024)
    summ = S.summarise(res)
    assert (summ["n_sim"] == 25).all()
    assert (summ["bias"].abs() < 4 * summ["bias_mcse"]).all(), summ[["ethnicity", "bias", "bias_mcse"]]
    assert summ["coverage"].mean() > 0.85


def test_weighted_mi_coverage_is_not_absurd() -> None:
    res = S.run_simulation(n_sims=6, n_referrals=8_000, mechanisms=("mnar",), methods=("weighted_mi",),
                           n_imputations=3, seed=99)
    summ = S.summarise(res)
    assert (summ["n_failed"] == 0).all()
    assert summ["coverage"].mean() > 0.75
    ratio = summ["model_se"] / summ["emp_se"]
    assert ((ratio > 0.4) & (ratio < 2.5)).all()
    assert (res["df"] > 1).all()


def test_overview_one_row_per_mechanism_and_method(small_run: pd.DataFrame) -> None:
    ov = S.overview(S.summarise(small_run))
    assert len(ov) == 3 * 4
    assert list(ov["mechanism"].unique()) == ["MCAR", "MAR", "MNAR"]
    assert list(ov["method"].unique()) == list(S.METHODS)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mechanisms=("random",)), "mechanisms"),
    (dict(methods=("listwise",)), "methods"),
    (dict(n_imputations=1), "n_imputations"),
    (dict(n_sims=0), "n_sims"),
    (dict(stage="referral"), "stage"),
    (dict(margin="census"), "margin"),
    (dict(n_referrals=10), "n_referrals"),
])
def test_bad_arguments_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        S.run_simulation(**{"n_sims": 1, "n_referrals": 3000, **kwargs})


def test_all_stages_run() -> None:
    res = S.run_simulation(n_sims=1, n_referrals=4000, mechanisms=("mar",), methods=("complete_case", "mar_mi"),
                           n_imputations=2, stage="all", model="unadjusted", seed=3)
    assert set(res["stage"]) == set(study.STAGES)
    # referral source: 3 non-base levels x 7 groups; assessment and treatment: 7 each; 2 methods
    assert len(res) == 2 * (21 + 7 + 7)
    assert res["truth"].notna().all()


def test_simulation_parameters_map_the_run_parameters() -> None:
    p = params_mod.validate(n_simulations=7, simulation_n_referrals=5000)
    sp = S.simulation_parameters(p)
    assert sp["n_sims"] == 7 and sp["n_referrals"] == 5000 and sp["seed"] == p["seed"]
    assert sp["n_imputations"] == min(p["n_imputations"], S.DEFAULT_SIM_IMPUTATIONS)
    assert S.simulation_parameters(params_mod.validate(n_imputations=2))["n_imputations"] == 2
    assert S.settings_note(sp) == "7 replicates of 5,000 referrals per mechanism; 5 imputations per MI analysis"
    assert S.settings_note(sp, "extract.csv").endswith("does not use the real extract.")


# --- one cohort against its truth (notebook 10) ---------------------------------------------------------


def test_expected_missing() -> None:
    mcar = S.make_world("mcar")
    by_stage = S.expected_missing(mcar, "stage")
    np.testing.assert_allclose(by_stage.to_numpy(), 18.5, atol=1e-6)  # MCAR: the same everywhere
    mnar = S.make_world("mnar")
    by_group = S.expected_missing(mnar, "group")
    assert list(by_group.index) == study.GROUPS and by_group.name == "MNAR"
    st = S.expected_missing(mnar, "stage")
    assert st["not_assessed"] > st["assessed_not_treated"] > st["treated"]
    with pytest.raises(ValueError):
        S.expected_missing(mnar, "age_band")


def test_planted_coverage_random() -> None:
    from helpers import params

    p = params.validate({"n_referrals": 6000})
    out = simulation.planted_coverage_random(p, "assessment", seeds=[11, 12])
    assert list(out.columns) == ["seed", "inside", "planted"]
    assert out["seed"].tolist() == [11, 12]
    assert (out["planted"] == 7).all()
    assert ((out["inside"] >= 0) & (out["inside"] <= out["planted"])).all()


def test_coverage_summary_reads_the_count_against_the_binomial() -> None:
    """07 and 08 print this: 5 cohorts x 21 values, 100 inside; the 95% range of Binomial(105, 0.05), by hand."""
    from math import comb

    coverage = pd.DataFrame({"seed": [1, 2, 3, 4, 5], "inside": [20, 21, 19, 20, 20], "planted": [21] * 5})
    pmf = [comb(105, k) * 0.05**k * 0.95 ** (105 - k) for k in range(106)]
    cdf = np.cumsum(pmf)
    low = int(np.searchsorted(cdf, 0.025))  # smallest k with P(X <= k) >= 0.025, as scipy's interval
    high = int(np.searchsorted(cdf, 0.975))
    lines = simulation.coverage_summary(coverage, "planted RRRs").splitlines()
    assert lines[0] == "Random outcome mode, 5 cohorts: 100/105 planted RRRs inside our 95% CI, 5 outside"
    assert lines[1] == (f"If every interval has 95% coverage: about 5.25 outside on average, "
                        f"and between {low} and {high} in 95% of such runs")
    assert (low, high) == (1, 10)


def test_estimand_by_mechanism_same_recorded_part_different_truth() -> None:
    """12's picture: every world shares its recorded referrals; only MNAR's added records move the true OR."""
    worlds = {m: S.make_world(m, n_referrals=20_000) for m in S.MECHANISMS}
    est = S.estimand_by_mechanism(worlds, labels=S.MECHANISM_LABELS)
    assert list(est.columns) == ["mechanism", "ethnicity", "missing_per_100_recorded", "truth_or", "recorded_or"]
    assert len(est) == len(S.MECHANISMS) * (len(study.GROUPS) - 1)
    wide = est.pivot(index="ethnicity", columns="mechanism")
    # the recorded referrals are the same in every world, so their odds ratio is too
    rec = wide["recorded_or"]
    assert np.allclose(rec.to_numpy(), rec.iloc[:, [0]].to_numpy(), atol=1e-9)
    # MCAR adds a scaled copy: the same number per 100 recorded in every group, and the truth is unchanged
    assert np.ptp(wide[("missing_per_100_recorded", "MCAR")]) < 1e-9
    np.testing.assert_allclose(wide[("truth_or", "MCAR")], rec["MCAR"], atol=1e-6)
    # MNAR adds a different slice of each group: a different number per group and another true OR
    assert np.ptp(wide[("missing_per_100_recorded", "MNAR")]) > 1.0
    assert (wide[("truth_or", "MNAR")] - rec["MNAR"]).abs().max() > 0.005
    # the true ORs are exactly what the worlds' own truth tables say
    mnar_truth = worlds["mnar"].truth.set_index("ethnicity")["truth"]
    np.testing.assert_allclose(wide[("truth_or", "MNAR")], np.exp(mnar_truth.reindex(wide.index)), atol=1e-12)


def test_planted_coverage_random_is_that_of_the_generated_cohorts() -> None:
    """Built from the drawn counts, the coverage is that of the cohorts load_study_data generates and prepares
    with the same seeds (the estimates themselves equal to the last digit)."""
    from helpers import cohort, models, params, pipeline, replication

    p = params.validate({"n_referrals": 4000, "missing_mechanism": "mar"})
    targets = pd.read_csv(params.targets_file(p), dtype=str, keep_default_na=False)
    for stage in ("referral_source", "assessment"):
        out = simulation.planted_coverage_random(p, stage, seeds=[3, 4])
        for seed, inside in zip(out["seed"], out["inside"]):
            data = pipeline.load_study_data(p, outcome_mode="random", seed=int(seed))
            est = pipeline.complete_case_estimates(data)
            planted = replication.planted_vs_estimated(est, targets, stage)
            assert inside == int(planted["planted_in_ci"].sum())
    data = pipeline.load_study_data(p, outcome_mode="random", seed=3)
    q = params.validate({**p, "outcome_mode": "random"})
    t = load_targets(params.targets_file(q))
    cells = cohort.expected_counts(t, S.load_solved(t), q["n_referrals"], q["missing_share"], q["missing_mechanism"])
    counts = cohort.realise_counts(cells, t, q["n_referrals"], q["missing_share"], "random", np.random.default_rng(3))
    pd.testing.assert_frame_equal(models.fit_stage(S.frame_from_counts(cells, counts)[0], "assessment", "adjusted_full"),
                                  models.fit_stage(data.frame, "assessment", "adjusted_full"), check_exact=True)


def test_simulation_study_runs_once_per_cache_and_passes_its_settings(monkeypatch, tmp_path) -> None:
    """12 runs the study and 13 asks for it with the same settings: inside a run (a cache folder) the second call
    gets the first one's results and seconds without simulating; without a cache each call simulates."""
    calls: list[dict] = []

    def fake_run_simulation(**kwargs):
        calls.append(kwargs)
        return pd.DataFrame({"replicate": range(kwargs["n_sims"])})

    monkeypatch.setattr(S, "run_simulation", fake_run_simulation)
    sim = simulation.simulation_parameters(params_mod.validate({}))
    monkeypatch.setenv("IAPT_CACHE_DIR", str(tmp_path))
    first, first_seconds = S.simulation_study(sim)
    second, second_seconds = S.simulation_study(sim)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, second)
    assert first_seconds == second_seconds
    assert calls[0]["n_sims"] == sim["n_sims"] and calls[0]["seed"] == sim["seed"]
    assert calls[0]["n_imputations"] == sim["n_imputations"] and calls[0]["model"] == "adjusted_full"
    assert list(calls[0]["mechanisms"]) == list(S.MECHANISMS) and list(calls[0]["methods"]) == list(S.METHODS)
    S.simulation_study({**sim, "n_imputations": 2})  # other settings: another entry
    assert len(calls) == 2
    monkeypatch.delenv("IAPT_CACHE_DIR")
    S.simulation_study(sim)  # no cache: computed again
    assert len(calls) == 3
