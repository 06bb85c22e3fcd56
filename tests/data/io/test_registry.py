"""The format registry: lookups that fail say what exists."""

from __future__ import annotations

import pytest

from tooltune.data.io import EXPORT_FORMATS, FORMATS, export_file, import_file
from tooltune.errors import DataError


def test_every_format_reads_and_all_but_bfcl_write():
    assert list(FORMATS) == ["openai", "sharegpt", "chatml", "alpaca", "glaive", "xlam", "bfcl"]
    assert EXPORT_FORMATS == ["openai", "sharegpt", "chatml", "alpaca", "glaive", "xlam"]


def test_unknown_format_lists_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown data format 'parquet'; known formats: openai, sharegpt, chatml"):
        import_file("parquet", tmp_path / "x")
    with pytest.raises(DataError, match=r"'bfcl' \(bfcl is import only\); known formats: openai, .*, xlam\.$"):
        export_file("bfcl", [], tmp_path / "x")


def test_options_a_format_does_not_take_are_refused(tmp_path):
    with pytest.raises(DataError, match="format 'openai' has no option call_format; its options: none"):
        import_file("openai", tmp_path / "x", call_format="hermes")
    with pytest.raises(DataError, match="quality 'great' is not one of high, medium, low"):
        import_file("openai", tmp_path / "x", quality="great")
