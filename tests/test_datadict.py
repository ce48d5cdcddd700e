"""Tests of helpers.datadict: the data dictionary is complete and its committed files are up to date."""

from __future__ import annotations

import pandas as pd  # noqa: E402

from helpers import codes, datadict, study  # noqa: E402
from helpers import prepare as P


def test_code_tables_cover_every_code() -> None:
    eth = datadict.ethnic_code_table()
    assert len(eth) == len(codes.ETHNIC_CODE_TO_GROUP)
    assert eth.loc[eth.code == "R", "basis"].item().startswith("assumed")
    assert eth.loc[eth.code == "R", "group"].item() == codes.CHINESE_GROUP
    assert set(eth.loc[eth.group == "missing", "code"]) == {"Z", "99", "(blank)"}
    src = datadict.source_code_table()
    assert set(src.code) == set(codes.SOURCE_CODE_TO_CATEGORY)
    assert set(src.loc[src.basis == "NHS England", "code"]) == {"A1", "B1"}
    assert list(src.category.cat.categories) == study.SOURCES


def test_data_dictionary_content():
    dd = datadict.data_dictionary()
    assert list(dd.columns) == datadict.DICTIONARY_COLUMNS
    assert list(dd.loc[dd["table"] == "raw extract", "field"]) == list(codes.RAW_COLUMNS)
    assert list(dd.loc[dd["table"] == "truth file", "field"]) == [
        "PathwayID", "true_ethnic_group", "true_EthnicCategory", "ethnicity_missing"]
    assert list(dd.loc[dd["table"] == "analysis frame", "field"]) == P.ANALYSIS_COLUMNS
    assert (dd.loc[dd["table"] == "truth file", "source"] == "synthetic only").all()
    assert dd.loc[dd["field"] == "Borough", "source"].item() == "local field"
    eth = dd.loc[dd["field"] == "Validated_EthnicCategory", "codes_format"].item()
    for c, g in codes.ETHNIC_CODE_TO_GROUP.items():
        if c:
            assert f"{c} {codes.ETHNIC_CATEGORY_LABELS[c]} -> {g or 'missing'}" in eth


def test_data_dictionary_files_up_to_date():
    assert datadict.DICTIONARY_CSV.read_text(encoding="utf-8") == datadict.data_dictionary_csv(), \
        "run: python -m helpers.datadict"
    assert datadict.DICTIONARY_MD.read_text(encoding="utf-8") == datadict.data_dictionary_markdown(), \
        "run: python -m helpers.datadict"
    back = pd.read_csv(datadict.DICTIONARY_CSV, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, datadict.data_dictionary().astype(str))
