"""helpers.notebook: a notebook that declares some parameters gets the full validated set, the same one (and so
the same cache key) as a run that injects every parameter or only what it changed; a bad value is named; the
data are loaded with a line saying where they came from."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import patsy
import patsy.build
import pytest

from helpers import cache, notebook, params, pipeline


def setup_quietly(namespace: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """notebook.setup without leaving its display options and warning format behind in the test process."""
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    monkeypatch.setattr(patsy.build, "categorical_to_int", patsy.build.categorical_to_int)
    with pd.option_context("display.precision", 6, "display.max_columns", 20, "display.width", 80):
        return notebook.setup(namespace)


def test_a_partial_parameters_cell_gets_the_full_validated_set(monkeypatch) -> None:
    declared = {name: params.DEFAULTS[name] for name in params.GROUPS["data"]} | {"n_referrals": 20_000, "x": 1}
    p = setup_quietly(declared, monkeypatch)
    assert set(p) == set(params.SCHEMA)
    assert p == params.validate({"n_referrals": 20_000})
    assert p["n_imputations"] == params.DEFAULTS["n_imputations"] and p["margin"] == "truth"  # resolved default


def test_the_cache_key_does_not_depend_on_what_a_notebook_declared(monkeypatch) -> None:
    by_hand = setup_quietly({"seed": 7, "suppress_threshold": 7}, monkeypatch)
    injected = setup_quietly({**params.DEFAULTS, "seed": 7}, monkeypatch)  # papermill: every parameter
    assert by_hand == injected
    assert setup_quietly(params.overrides(by_hand), monkeypatch) == by_hand  # what helpers.run injects
    assert cache.digest(pipeline._result_params(by_hand)) == cache.digest(pipeline._result_params(injected))
    other = setup_quietly({"seed": 8}, monkeypatch)
    assert cache.digest(pipeline._result_params(other)) != cache.digest(pipeline._result_params(by_hand))


def test_a_bad_declared_value_is_named(monkeypatch) -> None:
    with pytest.raises(params.ParameterError, match="n_imputations"):
        setup_quietly({"n_imputations": 1}, monkeypatch)


def test_study_data_says_where_the_data_came_from_and_what_imputation_lacks(capsys) -> None:
    p = params.validate()
    data = notebook.study_data(p)
    assert capsys.readouterr().out == f"Data: {data.origin}\n"
    assert data.frame.equals(pipeline.load_study_data(p).frame)
    assert notebook.imputation_notes(data) == (True, False) and capsys.readouterr().out == ""
    complete = dataclasses.replace(data, truth=None, prepared=dataclasses.replace(
        data.prepared, frame=data.frame.dropna(subset=["ethnicity"])))
    assert notebook.imputation_notes(complete) == (False, True)
    out = capsys.readouterr().out
    assert "Real extract: there is no truth here" in out and pipeline.NOTHING_TO_IMPUTE in out


def test_setup_makes_patsy_read_wrapped_categoricals_by_their_codes_with_the_same_design(monkeypatch) -> None:
    """The notebooks' formulas (``C(ethnicity, Treatment(reference=...))``, ``C(year)``, ...) give the same design
    matrix, column names and errors after setup as with patsy's own row-by-row lookup."""
    frame = pipeline.load_study_data({}).frame.iloc[:3000]
    rows = frame[frame["ethnicity"].notna()].apply(
        lambda col: col.cat.remove_unused_categories() if isinstance(col.dtype, pd.CategoricalDtype) else col)
    formula = ("assessed ~ C(ethnicity, Treatment(reference='White British')) + C(age_band) + C(gender) + C(year)"
               " + C(borough) + C(referral_source, levels=['GP', 'Self', 'Community', 'Other'])")
    with_nan = frame.assign(age_band=frame["age_band"].where(frame.index % 7 != 0))  # missing values: patsy's path
    before = [patsy.dmatrices(formula, rows, return_type="dataframe"),
              patsy.dmatrices(formula, with_nan, NA_action="drop", return_type="dataframe")]
    with pytest.raises(patsy.PatsyError) as before_error:
        patsy.dmatrices(formula, with_nan, NA_action="raise")
    original = patsy.build.categorical_to_int
    setup_quietly({}, monkeypatch)
    assert patsy.build.categorical_to_int is not original
    after = [patsy.dmatrices(formula, rows, return_type="dataframe"),
             patsy.dmatrices(formula, with_nan, NA_action="drop", return_type="dataframe")]
    for (y0, x0), (y1, x1) in zip(before, after):
        pd.testing.assert_frame_equal(y0, y1)
        pd.testing.assert_frame_equal(x0, x1)
        assert list(x1.columns) == list(x0.columns) and np.isfinite(x1.to_numpy()).all()
    with pytest.raises(patsy.PatsyError) as after_error:
        patsy.dmatrices(formula, with_nan, NA_action="raise")
    assert str(after_error.value) == str(before_error.value)
