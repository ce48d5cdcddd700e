"""Lecturers' example parameter files: each is valid, and the counterfactual one really removes the gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import models, params, pipeline, study, targets

EXAMPLES = sorted((study.PROJECT_ROOT / "examples").glob("*.yaml"))


def _load(path: Path) -> dict:
    values = yaml.safe_load(path.read_text())
    for name in ("targets_path", "data_path"):
        if values.get(name):
            values[name] = str(study.PROJECT_ROOT / values[name])  # relative to the project folder
    return values


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"class_small.yaml", "equal_access.yaml", "missing_at_random.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_the_analysis(path):
    """Each example validates and drives the shared pipeline to complete-case and weighted-MI estimates."""
    values = _load(path)
    p = params.validate(values)
    data = pipeline.load_study_data({**p, "n_imputations": 2})
    est = pipeline.paper_estimates(data)
    assert set(est.analysis) == {"complete_case", "weighted_mi"}
    assert est.estimate[est.ethnicity != study.REFERENCE_GROUP].notna().all()


def test_equal_access_targets_follow_the_default_file():
    """The committed counterfactual is exactly helpers.targets.equal_access of the default targets."""
    default = pd.read_csv(study.PUBLISHED_DIR / "cohort_targets.csv", dtype=str, keep_default_na=False)
    committed = pd.read_csv(study.PROJECT_ROOT / "examples" / "targets_equal_access.csv", dtype=str,
                            keep_default_na=False)
    pd.testing.assert_frame_equal(committed, targets.equal_access(default))


def test_equal_access_cohort_has_no_treatment_gaps():
    data = pipeline.load_study_data(_load(study.PROJECT_ROOT / "examples" / "equal_access.yaml"))
    est = models.fit_all(data.frame)
    treat = est[(est.stage == "treatment") & (est.ethnicity != study.REFERENCE_GROUP)]
    assert np.allclose(treat.estimate, 1, atol=0.015), treat[["model", "ethnicity", "estimate"]]
