"""helpers.cache: a run's shared results are the uncached results, byte for byte, and are computed once.

No test here reads the clock: that a cached route is faster is measured in benchmarks/bench_run.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from helpers import cache, pipeline

SMALL = {"n_referrals": 5000, "n_imputations": 2}


def _tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_tables_are_byte_identical_with_and_without_the_cache(tmp_path, monkeypatch):
    """Uncached, cache being filled, cache read back: the same result tables byte for byte."""
    plain = pipeline.write_outputs(pipeline.load_study_data(SMALL), tmp_path / "plain")
    store = tmp_path / "cache"
    with cache.enabled(store):
        pipeline.write_outputs(pipeline.load_study_data(SMALL), tmp_path / "cold")
        kinds = sorted(p.name.split("-")[0] for p in store.glob("*.pkl"))
        assert kinds == ["complete_case", "study_data", "weighted_mi"]

        def refuse(*args, **kwargs):
            raise AssertionError("recomputed although the run's cache holds the result")

        monkeypatch.setattr(pipeline, "_load_study_data", refuse)
        monkeypatch.setattr(pipeline, "_mi_estimates_from_study_data", refuse)
        monkeypatch.setattr(pipeline.models, "fit_all", refuse)
        pipeline.write_outputs(pipeline.load_study_data(SMALL), tmp_path / "warm")
    assert set(plain) >= {"estimates", "table1", "pathway_counts", "table4_comparison", "flow"}
    assert _tables(tmp_path / "plain") == _tables(tmp_path / "cold") == _tables(tmp_path / "warm")


def test_without_a_cache_folder_every_call_computes(monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    calls = []
    assert cache.directory() is None
    for _ in range(2):
        assert cache.memo("x", "k", lambda: calls.append(1) or 42) == 42
    assert len(calls) == 2


def test_an_entry_is_computed_once_and_keyed_by_what_it_depends_on(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    calls = []
    with cache.enabled(tmp_path):
        for key in ("a", "a", "b"):
            cache.memo("x", key, lambda key=key: calls.append(key) or [key])
        assert cache.memo("x", "a", lambda: ["never"]) == ["a"]
    assert calls == ["a", "b"]
    assert cache.directory() is None  # the block's setting is undone


def test_keys_follow_parameters_and_files_not_the_output_folder(tmp_path):
    base = pipeline._result_params({**pipeline.params_mod.validate(SMALL), "output_dir": "a"})
    same = pipeline._result_params({**pipeline.params_mod.validate(SMALL), "output_dir": "b"})
    other = pipeline._result_params(pipeline.params_mod.validate({**SMALL, "seed": 1}))
    assert cache.digest(base) == cache.digest(same) != cache.digest(other)
    f = tmp_path / "targets.csv"
    f.write_text("a\n", encoding="utf-8")
    before = cache.digest(base, f)
    f.write_text("b\n", encoding="utf-8")
    assert cache.digest(base, f) != before


def test_a_folder_input_is_keyed_by_its_files(tmp_path):
    """A folder of Parquet parts: a part changed, added or renamed changes the key; the same files, the same key."""
    folder = tmp_path / "extract.parquet"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"one")
    key = cache.digest(folder)
    assert key != cache.digest(tmp_path / "absent")
    (folder / "part-0.parquet").write_bytes(b"two")
    changed = cache.digest(folder)
    (folder / "part-1.parquet").write_bytes(b"")
    added = cache.digest(folder)
    (folder / "part-1.parquet").rename(folder / "part-2.parquet")
    renamed = cache.digest(folder)
    assert len({key, changed, added, renamed}) == 4
    (folder / "part-2.parquet").rename(folder / "part-1.parquet")
    assert cache.digest(folder) == added


def test_warnings_are_raised_again_when_the_result_is_reused(tmp_path):
    def compute():
        warnings.warn("the margin is assumed", UserWarning, stacklevel=2)
        return 1

    seen = []
    with cache.enabled(tmp_path):
        for _ in range(2):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cache.memo("w", "k", compute)
            seen.append([(w.category, str(w.message)) for w in caught])
    assert seen[0] == seen[1] == [(UserWarning, "the margin is assumed")]


def test_another_margin_shares_the_data_not_the_fits(tmp_path, monkeypatch):
    """The data are keyed by the data parameters only: asking with another margin or M reads them back, with the
    caller's own parameters, and every fit of them is keyed by those parameters (so it is computed again)."""
    with cache.enabled(tmp_path):
        first = pipeline.load_study_data(SMALL)
        truth_mi = pipeline.mi_estimates_from_study_data(first)

        def refuse(*args, **kwargs):
            raise AssertionError("the data were read or generated again for another margin")

        monkeypatch.setattr(pipeline, "_load_study_data", refuse)
        census = pipeline.load_study_data({**SMALL, "margin": "census2011", "n_imputations": 3})
        assert census.params["margin"] == "census2011" and census.params["n_imputations"] == 3
        assert census.frame.equals(first.frame) and census.digest != first.digest
        census_mi = pipeline.mi_estimates_from_study_data(census)
        monkeypatch.undo()
    plain = pipeline.load_study_data({**SMALL, "margin": "census2011", "n_imputations": 3})
    assert census_mi.equals(pipeline.mi_estimates_from_study_data(plain)) and not census_mi.equals(truth_mi)
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.pkl")) == ["study_data", "weighted_mi", "weighted_mi"]
