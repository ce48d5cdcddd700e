"""A real extract: checked before any notebook, the run owns its folder, and the publish folder is safe.

Small extracts are cut from the committed default cohort's raw file. One full real-mode run of every
notebook (module-scoped) is the integration test: it must finish, and helpers.check_outputs must find
nothing outside secure/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT, SLOW_NOTEBOOK, run_cli, sigterm_once_started, subprocess_env

from helpers import check_outputs, cohort, extract, imputation, pipeline, prepare, real_extract, tablesworker
from helpers import runcli as C

SMALL = ["-p", "n_imputations=2", "-p", "n_simulations=2", "-p", "simulation_n_referrals=2000"]


def raw_rows(n: int) -> pd.DataFrame:
    return prepare.read_extract(cohort.DEFAULT_COHORT).head(n).copy()


def write(raw: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(path, index=False, lineterminator="\n")
    return path


# ---------------------------------------------------------------------------------------------------------
# pipeline.check_extract: the one entry into the extract engine
# ---------------------------------------------------------------------------------------------------------


def test_a_usable_extract_with_exclusions_goes_on(tmp_path):
    raw = raw_rows(400)
    raw.loc[[3, 10], "ReferralRequestReceivedDate"] = "31/02/2014"
    check = pipeline.check_extract({"data_path": str(write(raw, tmp_path / "x.csv"))})
    assert check.ok and check.source == "x.csv"
    text = check.text()
    assert "referral date not a valid date" in text and "lines 5, 12" in text
    assert "OK: 398 usable row(s)" in text
    assert int(check.flow.loc[check.flow["check"] == "referral_date_invalid", "n_rows"].iloc[0]) == 2


@pytest.mark.parametrize("case, fragment", [
    ("every date unreadable", "no usable row: all 50 rows were excluded"),
    ("header only", "has a header but no data rows"),
    ("a column missing", "lacks 1 required column(s): Borough"),
    ("not a file", "No extract file"),
])
def test_blocking_problems(tmp_path, case, fragment):
    raw = raw_rows(50)
    path = tmp_path / "x.csv"
    if case == "every date unreadable":
        raw["ReferralRequestReceivedDate"] = "not a date"
    elif case == "header only":
        raw = raw.head(0)
    elif case == "a column missing":
        raw = raw.drop(columns="Borough")
    if case != "not a file":
        write(raw, path)
    check = pipeline.check_extract({"data_path": str(path)})
    assert not check.ok and fragment in check.problem
    assert str(tmp_path) not in check.text()  # the file's name, never its folder
    if case == "every date unreadable":
        assert "A usable row has" in check.problem and check.flow is not None


def test_nothing_to_impute_gives_the_complete_case_analysis(tmp_path):
    raw = raw_rows(3000)
    raw.loc[raw["Validated_EthnicCategory"].isin(["Z", "99", ""]), "Validated_EthnicCategory"] = "A"
    data = pipeline.load_study_data(data_path=str(write(raw, tmp_path / "x.csv")), n_imputations=3)
    assert pipeline.nothing_to_impute(data) and data.params["margin"] == "census2011"
    cc = pipeline.complete_case_estimates(data)
    for weighted in (True, False):
        mi = pipeline.mi_estimates_from_study_data(data, weighted=weighted)
        assert set(mi["analysis"]) == {"weighted_mi" if weighted else "mar_mi"}
        np.testing.assert_array_equal(mi["estimate"].to_numpy(), cc["estimate"].to_numpy())
    compared = pipeline.compare_methods(pd.concat([cc, mi]), None, "treatment")
    assert compared["truth"].isna().all() and set(compared["method"]) == {"complete_case", "mar_mi"}


def test_write_outputs_of_a_real_extract_keeps_exact_tables_in_secure(tmp_path):
    data = pipeline.load_study_data(data_path=str(write(raw_rows(2500), tmp_path / "x.csv")), n_imputations=2)
    paths = pipeline.write_outputs(data, tmp_path / "out" / "tables", secure_dir=tmp_path / "out" / "secure")
    assert paths["flow"].parent.name == "secure" and paths["table1_exact"].parent.name == "secure"
    assert not (tmp_path / "out" / "tables" / "flow.csv").exists()
    assert check_outputs.check_folder(tmp_path / "out") == []
    exact = pd.read_csv(paths["flow"])
    assert exact["n_rows"].iloc[0] == 2500


# ---------------------------------------------------------------------------------------------------------
# The command line: checked before any notebook; interrupted
# ---------------------------------------------------------------------------------------------------------


def test_a_blocking_extract_stops_before_any_notebook_and_leaves_the_flow(tmp_path):
    raw = raw_rows(30)
    raw["ReferralRequestReceivedDate"] = "2014/01/01"
    extract = write(raw, tmp_path / "data" / "bad.csv")
    out = tmp_path / "out"
    result = run_cli(["-p", f"data_path={extract}", "--out", str(out)])
    assert result.returncode == C.EXIT_BAD_EXTRACT, result.stderr
    assert "referral date not a valid date" in result.stdout and "lines 2, 3, 4, 5, 6" in result.stdout
    assert "no usable row: all 30 rows were excluded" in result.stderr and "No notebook was run" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((out / "notebooks").glob("*.ipynb"))
    flow = pd.read_csv(out / "secure" / "flow.csv")
    assert flow["n_rows"].iloc[0] == 30
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed" and record["error"]["step"] == "extract check"
    assert "30" not in json.dumps(record["error"])  # exact counts stay in secure/
    assert "all 30 rows were excluded" in (out / "secure" / "extract_check.txt").read_text(encoding="utf-8")
    assert str(tmp_path) not in (out / "run.json").read_text(encoding="utf-8")
    assert check_outputs.check_folder(out, forbidden=[str(tmp_path)]) == []


def test_sigterm_marks_the_run_interrupted(tmp_path, write_notebook):
    nbdir = tmp_path / "nbs"
    write_notebook(nbdir / "00_slow.ipynb", SLOW_NOTEBOOK)
    out = tmp_path / "out"
    code, err = sigterm_once_started(["--notebooks", str(nbdir), "--out", str(out), "--no-html"],
                                     started="00_slow ...")  # the notebook has started
    assert code == C.EXIT_INTERRUPTED, err
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "interrupted"
    assert record["error"] == {"signal": "SIGTERM", "during": "00_slow"}
    assert record["notebooks"][-1]["status"] == "interrupted"


@pytest.mark.parametrize("real, inside", [(True, "secure/cache"), (False, ".cache")])
def test_a_real_extract_keeps_its_cache_in_the_secure_folder(tmp_path, real, inside):
    assert real_extract.run_cache_folder(tmp_path, real) == tmp_path / inside


# ---------------------------------------------------------------------------------------------------------
# One full real-mode run of every notebook on a small extract with many small cells
# ---------------------------------------------------------------------------------------------------------


# The row-level run (real_run) and the run from the same extract's pattern counts (counts_run) are whole runs of
# every notebook: each group on its own pytest-xdist worker, so the two run side by side instead of one after the
# other on one worker while the other worker runs out of work.
COUNTS_GROUP = pytest.mark.xdist_group("counts_run")


def write_small_extract(base: Path) -> Path:
    """The small extract both whole runs read (the same bytes on every worker): a few rows excluded."""
    raw = raw_rows(3000)
    raw.loc[[5, 6, 7], "SourceOfReferralIAPT"] = "ZZ"  # a few exclusions, with line numbers to report
    raw.loc[9, "Age_ReferralRequest_ReceivedDate"] = "17"
    return write(raw, base / "secure_area" / "iapt_extract.csv")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("real")
    extract = write_small_extract(base)
    out = base / "out"
    result = run_cli(["-p", f"data_path={extract}", *SMALL, "--out", str(out), "--no-screenshot"], timeout=1500)
    return result, out, extract


@pytest.mark.whole_run
def test_real_run_finishes_every_notebook(real_run):
    result, out, _ = real_run
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok" and record["disclosure_check"]["findings"] == 0
    assert len(record["notebooks"]) == len(C.discover(C.NOTEBOOKS_DIR))
    assert record["parameters"]["data_path"] == "iapt_extract.csv" and record["parameters"]["margin"] == "census2011"
    assert "unknown source-of-referral code" in result.stdout and "lines 7, 8, 9" in result.stdout


@pytest.mark.whole_run
def test_real_run_publish_folder_passes_the_checker(real_run):
    _, out, extract = real_run
    found = check_outputs.check_folder(out, forbidden=[str(extract.parent), str(out), str(PROJECT_ROOT)])
    assert found == [], "\n".join(map(str, found[:20]))
    assert (out / "secure" / "flow.csv").exists() and (out / "secure" / "table1_exact.csv").exists()
    assert not (out / "tables" / "flow.csv").exists()


@pytest.mark.whole_run
def test_real_run_pages_say_what_needs_the_truth(real_run):
    _, out, _ = real_run
    page = (out / "html" / "10_missing_ethnicity.html").read_text(encoding="utf-8")
    assert "Real extract: there is no truth here" in page
    page04 = (out / "html" / "05_describing_the_cohort.html").read_text(encoding="utf-8")
    assert "Not shown on a real extract: tableone" in page04
    nb = nbformat.read(out / "notebooks" / "05_describing_the_cohort.ipynb", as_version=4)
    assert nb.metadata["papermill"]["parameters"]["data_path"] == "iapt_extract.csv"


def test_a_default_run_publishes_no_machine_path(small_run):
    """Even a synthetic run: papermill's injected cell and metadata, run.json and the book name no folder."""
    assert small_run.result.returncode == 0, small_run.result.stderr
    found = [f for f in check_outputs.check_folder(small_run.out, forbidden=[str(small_run.out), str(PROJECT_ROOT)])
             if f.problem == "machine path"]
    assert found == [], "\n".join(map(str, found[:10]))
    nb = nbformat.read(next((small_run.out / "notebooks").glob("*.ipynb")), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "output_dir = \".\"" in injected[0].source.replace("'", '"')


# ---------------------------------------------------------------------------------------------------------
# The same extract carried out as pattern counts: every notebook from the counts folder alone
# ---------------------------------------------------------------------------------------------------------


def test_a_counts_folder_is_checked_like_an_extract(tmp_path):
    folder = tmp_path / "agg"
    extract.write(extract.run(raw_rows(400)), folder)
    check = pipeline.check_extract({"data_path": str(folder)})
    assert check.ok and check.raw is None and "OK: pattern counts of 400 referral(s)" in check.text()
    (folder / "flow.csv").write_text((folder / "flow.csv").read_text().replace(",400,400\n", ",401,401\n"))
    bad = pipeline.check_extract({"data_path": str(folder)})
    assert not bad.ok and "not from the same extract run" in bad.problem and str(tmp_path) not in bad.text()


def test_counts_data_fit_what_the_rows_fit(tmp_path):
    raw = raw_rows(3000)
    rows = pipeline.load_study_data(data_path=str(write(raw, tmp_path / "x.csv")))
    extract.write(extract.run(tmp_path / "x.csv"), tmp_path / "agg")
    counts = pipeline.load_study_data(data_path=str(tmp_path / "agg"))
    assert counts.from_counts and not rows.from_counts and counts.truth is None
    pd.testing.assert_frame_equal(counts.prepared.flow, rows.prepared.flow)
    pd.testing.assert_frame_equal(pipeline.complete_case_estimates(counts), pipeline.complete_case_estimates(rows))
    # weighted MI: the same imputation model (weights, coefficients, their variance) from the same counts
    margin = pipeline.population_margin(counts)
    a, b = (imputation.impute_ethnicity(d.frame, margin, 2, np.random.default_rng(5)) for d in (counts, rows))
    np.testing.assert_allclose(a.weights.to_numpy(), b.weights.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(a.fit.params), np.asarray(b.fit.params), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(a.fit.cov), np.asarray(b.fit.cov), rtol=1e-8, atol=1e-12)
    assert a.n_missing == b.n_missing


@pytest.fixture(scope="module")
def counts_run(tmp_path_factory):
    """The real run's extract aggregated where it lives (helpers.extract), then every notebook from the folder."""
    csv = write_small_extract(tmp_path_factory.mktemp("real_extract"))
    folder = tmp_path_factory.mktemp("carried") / "aggregates"
    made = subprocess.run([sys.executable, "-m", "helpers.extract", str(csv), "--out", str(folder)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=subprocess_env())
    assert made.returncode == 0, made.stderr
    out = folder.parent / "out"
    result = run_cli(["-p", f"data_path={folder}", *SMALL, "--out", str(out), "--no-screenshot"], timeout=1500)
    return result, out, folder, csv


@COUNTS_GROUP
@pytest.mark.whole_run
def test_counts_run_finishes_every_notebook_and_publishes_safely(counts_run):
    result, out, folder, _ = counts_run
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok" and record["disclosure_check"]["findings"] == 0
    assert len(record["notebooks"]) == len(C.discover(C.NOTEBOOKS_DIR))
    assert record["parameters"]["data_path"] == "aggregates" and record["parameters"]["margin"] == "census2011"
    found = check_outputs.check_folder(out, forbidden=[str(folder.parent), str(out), str(PROJECT_ROOT)])
    assert found == [], "\n".join(map(str, found[:20]))
    page03 = (out / "html" / "04_data_preparation.html").read_text(encoding="utf-8")
    assert "Not available from pattern counts: the raw ethnic code by group" in page03
    assert "pattern counts do not say which code" in page03


@COUNTS_GROUP
@pytest.mark.whole_run
def test_counts_run_estimates_equal_the_row_level_run(counts_run, tmp_path):
    """The counts run's tables against the row-level run's: a run's tables are ``write_result_tables`` of its
    parameters in a worker process (helpers.tablesworker), so the row-level run's are computed here exactly so,
    from the same extract, without a second whole run on this worker."""
    _, out, _, csv = counts_run
    rows_out = tmp_path / "rows"
    overrides = C.collect_overrides(["data_path=" + str(csv), *SMALL[1::2]], None, rows_out, PROJECT_ROOT)
    written = tablesworker.write_result_tables_in_worker(C.validate_parameters(overrides), rows_out / "tables",
                                                         rows_out / "secure")
    assert "tables/estimates.csv" in written
    for name in ("table1.csv", "pathway_counts.csv", "flow_disclosed.csv"):
        assert (out / "tables" / name).read_bytes() == (rows_out / "tables" / name).read_bytes(), name
    a = pd.read_csv(out / "tables" / "estimates.csv")
    b = pd.read_csv(rows_out / "tables" / "estimates.csv")
    cc = a["analysis"] == "complete_case"
    pd.testing.assert_frame_equal(a[cc], b[cc])  # complete case: the same numbers, to the last digit
    # weighted MI: the same imputation model and coefficient draws (test_counts_data_fit_what_the_rows_fit), but
    # which missing referral gets which uniform draw follows row order, which counts do not keep: the pooled
    # estimates differ by Monte Carlo error (measured at 3,000 referrals, M = 2: up to 1.2 SE, median 0.12)
    mi = (~cc).to_numpy() & a["se"].notna().to_numpy()
    assert mi.sum() == ((b["analysis"] != "complete_case") & b["se"].notna()).sum() > 0
    gap = (np.log(a.loc[mi, "estimate"]) - np.log(b.loc[mi, "estimate"])).abs() / a.loc[mi, "se"]
    assert gap.median() < 0.5 and gap.max() < 3, gap.describe()
