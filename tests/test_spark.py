"""The Spark engine for real (PySpark in local mode): the same pattern counts, flow and report as DuckDB.

``make test`` installs PySpark (``make spark``) and sets IAPT_REQUIRE_SPARK=1, so these tests cannot be skipped
there; a plain ``pytest`` without PySpark skips them with the reason below.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from helpers import cohort, pipeline
from helpers import extract as X
from helpers import fromcounts as FC

if os.environ.get("IAPT_REQUIRE_SPARK") or os.environ.get("CI"):
    import pyspark  # noqa: F401  (fails loudly: make test must run these)
else:
    pytest.importorskip("pyspark", reason="PySpark is optional (make spark installs it; make test runs these)")

from extract_rows import rows  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from test_fromcounts import mi_from_counts_as_the_run_draws  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    """One local session for the module: one core, two shuffle partitions, no UI, bound to 127.0.0.1."""
    session = (SparkSession.builder.master("local[1]").appName("iapt-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.default.parallelism", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _same(a: X.ExtractResult, b: X.ExtractResult) -> None:
    pd.testing.assert_frame_equal(a.pattern_counts, b.pattern_counts)
    pd.testing.assert_frame_equal(a.flow, b.flow)
    pd.testing.assert_frame_equal(a.report.table, b.report.table)


@pytest.fixture(scope="module")
def default_cohort(spark) -> tuple[X.ExtractResult, X.ExtractResult]:
    """The default cohort's CSV through Spark and through DuckDB, once for the module: a Spark pass over it
    takes about 30 s in local mode (hundreds of small jobs), and the tests below each compare both."""
    return X.run(cohort.DEFAULT_COHORT, engine="spark", spark=spark), X.run(cohort.DEFAULT_COHORT)


def test_default_cohort_csv_same_as_duckdb(default_cohort):
    _same(*default_cohort)


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted_mi", "mar_mi"])
def test_pooled_mi_from_spark_counts_equals_duckdb_counts_and_the_row_route(default_cohort, weighted):
    data = pipeline.load_study_data()
    spark_counts, duckdb_counts = (FC.count_data(r.pattern_counts) for r in default_cohort)
    from_spark = mi_from_counts_as_the_run_draws(spark_counts, data, weighted)
    from_duckdb = mi_from_counts_as_the_run_draws(duckdb_counts, data, weighted)
    pd.testing.assert_frame_equal(from_spark, from_duckdb, check_exact=True)
    pd.testing.assert_frame_equal(from_spark, pipeline.mi_estimates_from_study_data(data, weighted=weighted), check_exact=True)


VARIANTS = [
    {}, {"PathwayID": ""}, {"PathwayID": "r0"}, {"ReferralRequestReceivedDate": "2015-02-30"},
    {"ReferralRequestReceivedDate": "2012-12-31"}, {"Age_ReferralRequest_ReceivedDate": "30.5"},
    {"Age_ReferralRequest_ReceivedDate": "111"}, {"Gender": "Q"}, {"Validated_EthnicCategory": "NA"},
    {"SourceOfReferralIAPT": "Z9"}, {"Borough": "Leeds"}, {"Assessment_FirstDate": "10 March 2014"},
    {"Assessment_FirstDate": "2014-02-28"}, {"TherapySession_FirstDate": "2014-4-1"}, {"Assessment_FirstDate": ""},
    {"TherapySession_FirstDate": "2014-03-09"}, {"Age_ReferralRequest_ReceivedDate": "17"}, {"Gender": "X"},
    {"Validated_EthnicCategory": "Z"}, {"Validated_EthnicCategory": "-1"}, {"Validated_EthnicCategory": "a1"},
    {"SourceOfReferralIAPT": " b1 "}, {"Borough": "croydon"}, {"Gender": "F"}, {"Gender": "0"},
    {"Age_ReferralRequest_ReceivedDate": "34.0"}, {"ReferralRequestReceivedDate": "2014-03-01 00:00:00.000"},
    {"ReferralRequestReceivedDate": "25/02/2014"}, {"ReferralRequestReceivedDate": "01/02/2014"},
    {"Assessment_FirstDate": "", "TherapySession_FirstDate": ""},
]


def test_every_check_and_normalisation_same_as_duckdb(spark):
    raw = rows(*VARIANTS)
    a, b = X.run(raw, engine="spark", spark=spark, rows=True), X.run(raw, rows=True)
    _same(a, b)
    pd.testing.assert_frame_equal(a.rows.astype(b.rows.dtypes.to_dict()), b.rows)
    assert (a.report.table["n_rows"] > 0).all()  # every check fails on some row
    f = a.flow
    assert (f.loc[f["step"] == "normalised", "n_rows"] > 0).all()


def test_spark_dataframe_v2_names_and_parquet_folder(spark, tmp_path):
    raw = rows({}, {"Validated_EthnicCategory": "Z"}, {"Borough": "Leeds"}, {"Gender": "1"})
    v2 = raw.rename(columns={"SourceOfReferralIAPT": "SourceOfReferralMH", "Validated_EthnicCategory": "EthnicCategory"})
    sdf = spark.createDataFrame(v2)
    _same(X.run(sdf, engine="spark", spark=spark), X.run(v2))
    folder = tmp_path / "parts"
    sdf.coalesce(1).write.parquet(str(folder))
    _same(X.run(folder, engine="spark", spark=spark), X.run(folder))
