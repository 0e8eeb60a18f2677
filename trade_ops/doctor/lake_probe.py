"""The lake probe's child process: which Delta tables exist at a lake URI.

deltalake holds the GIL while it waits on storage (~1.8 s per table against an S3
endpoint that does not answer), so a thread would stall every other probe of the run.
doctor runs this in a child process and kills it at its deadline instead:

    python -m trade_ops.doctor.lake_probe URI TABLE...   ->   {"TABLE": true|false, ...}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["endpoint", "is_local", "probe_tables", "tables_present"]


def endpoint(uri: str) -> str | None:
    """host:port of the storage endpoint a remote lake URI is read from (None for a local one):
    AWS_ENDPOINT_URL(_S3) when set (MinIO, a local S3), else the bucket's AWS host."""
    if is_local(uri):
        return None
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    parts = urlsplit(uri)
    if parts.scheme in ("s3", "s3a"):
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return f"{parts.hostname}.s3.{region + '.' if region else ''}amazonaws.com:443"
    return f"{parts.hostname}:{parts.port or 443}" if parts.hostname else None


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def tables_present(uri: str, tables: list[str]) -> dict[str, bool]:
    if is_local(uri):
        root = Path(uri.removeprefix("file://"))
        return {t: (root / t / "_delta_log").is_dir() for t in tables}
    from deltalake import DeltaTable

    return {t: DeltaTable.is_deltatable(f"{uri.rstrip('/')}/{t}") for t in tables}


async def probe_tables(uri: str, tables: list[str], timeout: float) -> dict[str, bool]:
    """tables_present, in a child process for a remote URI; TimeoutError or OSError on failure."""
    if is_local(uri) or not tables:
        return tables_present(uri, tables)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout  # the child's start counts: on a busy machine it is not free
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trade_ops.doctor.lake_probe", uri, *tables,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), max(0.0, deadline - loop.time()))
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise OSError(lines[-1][:300] if lines else f"lake probe exited {proc.returncode}")
    found: dict[str, bool] = json.loads(out)
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m trade_ops.doctor.lake_probe URI TABLE...", file=sys.stderr)
        return 2
    print(json.dumps(tables_present(argv[0], argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
