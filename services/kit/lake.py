"""The Delta Lake: table locations and appends, for a local directory or an s3:// URL.

Storage options for object stores come from the usual environment variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
AWS_ALLOW_HTTP), which delta-rs reads itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

__all__ = ["append", "is_local", "probe_writable", "table_exists", "table_uri"]


def is_local(lake_uri: str) -> bool:
    return "://" not in lake_uri or lake_uri.startswith("file://")


def table_uri(lake_uri: str, table: str) -> str:
    return f"{lake_uri.rstrip('/')}/{table}"


def table_exists(lake_uri: str, table: str) -> bool:
    return DeltaTable.is_deltatable(table_uri(lake_uri, table))


def append(lake_uri: str, table: str, rows: pa.Table, partition_by: Sequence[str] = ()) -> None:
    """Append rows in one Delta commit (atomic: all of them or none)."""
    if is_local(lake_uri):
        Path(lake_uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    write_deltalake(table_uri(lake_uri, table), rows, mode="append",
                    partition_by=list(partition_by) or None)


def probe_writable(lake_uri: str) -> None:
    """Raise OSError when the lake cannot be written (a local dir; s3 is checked by writing)."""
    if is_local(lake_uri):
        root = Path(lake_uri.removeprefix("file://"))
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
        return
    if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
        raise OSError(f"no credentials for {lake_uri} (set AWS_ACCESS_KEY_ID or AWS_PROFILE)")
