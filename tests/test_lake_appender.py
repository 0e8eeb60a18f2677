"""lake.Appender keeps tables open between commits; what it writes must stay a valid table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from services.kit import lake

pytestmark = pytest.mark.unit


def _rows(*values: int) -> pa.Table:
    return pa.table({"n": pa.array(values, pa.int64()), "date": ["2026-11-30"] * len(values)})


def _values(uri: str) -> list[int]:
    return sorted(DeltaTable(uri).to_pyarrow_table().column("n").to_pylist())


def test_two_appenders_on_one_table_keep_every_row(tmp_path: Path) -> None:
    a, b = lake.Appender(str(tmp_path)), lake.Appender(str(tmp_path))
    a.append("t", _rows(1), ["date"])
    b.append("t", _rows(2), ["date"])  # a's kept table is now one version behind
    a.append("t", _rows(3), ["date"])
    b.append("t", _rows(4))
    uri = lake.table_uri(str(tmp_path), "t")
    assert _values(uri) == [1, 2, 3, 4]
    assert DeltaTable(uri).version() == 3  # versions 0..3, one commit each


def test_a_wiped_lake_is_written_anew_not_continued(tmp_path: Path) -> None:
    appender = lake.Appender(str(tmp_path))
    for n in range(3):
        appender.append("t", _rows(n))
    shutil.rmtree(tmp_path / "t")
    appender.append("t", _rows(9))
    uri = lake.table_uri(str(tmp_path), "t")
    assert DeltaTable(uri).version() == 0  # a log that starts at 0, not at 3
    assert _values(uri) == [9]


def test_a_failed_write_leaves_the_table_usable(tmp_path: Path) -> None:
    appender = lake.Appender(str(tmp_path))
    appender.append("t", _rows(1))
    with pytest.raises(Exception, match=r"(?i)schema|cast"):  # delta-rs refuses the wrong type
        appender.append("t", pa.table({"n": ["not a number"]}))
    appender.append("t", _rows(2))
    assert _values(lake.table_uri(str(tmp_path), "t")) == [1, 2]
