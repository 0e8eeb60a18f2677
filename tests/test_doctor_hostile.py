"""doctor against hostile HTTP servers (tests/apps/hostile.py, real processes): bounded in
memory as in time, each oversized body a finding with its size, never copied into the report.

Before: an endless chunked body took doctor to 676 MB, a close-delimited one 883 MB, a gzip
bomb 1.78 GB; a 10 MB health body gave `warn`, exit 0, and a 52 MB JSON document. Each run
here is compared with doctor's own peak against a tiny healthy server, measured alike.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.foreign_oms import start_foreign_oms
from tests.apps.hostile import hostile
from tests.helpers import CLI

pytestmark = pytest.mark.process

HEADROOM_MB = 50  # above doctor's peak against a healthy server; the bodies are 10 MB to 2 GB


def doctor_peak(url: str, tmp_path: Path) -> tuple[float, dict[str, Any], int]:
    """(peak RSS in MB, the JSON document, its size) of one doctor run, every read it makes
    pointed at `url`: health, OpenAPI, the order round trip (traded, a price given), NATS
    monitoring."""
    args = ["doctor", "--json", "--no-report", "--timeout", "1", "--trade", "--order", "price=1",
            "--url", f"oms={url}", "--url", f"risk={url}", "--nats-monitor", url]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "TRADE_OPS_RUN_DIR": str(tmp_path / "run")})
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024, json.loads(out), len(out)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[float]:
    workdir = tmp_path_factory.mktemp("healthy")
    oms = start_foreign_oms(workdir)  # a sane server: small bodies on every path doctor reads
    try:
        yield doctor_peak(oms.url, workdir)[0]
    finally:
        oms.stop()


@pytest.mark.parametrize("mode", ["endless-chunked", "close-delimited", "gzip-bomb", "huge-body"])
def test_doctor_is_bounded_in_memory_and_says_what_was_too_large(mode: str, baseline: float,
                                                                  tmp_path: Path) -> None:
    with hostile(tmp_path, mode) as url:
        peak, doc, size = doctor_peak(url, tmp_path)
    assert peak < baseline + HEADROOM_MB, (mode, peak, baseline)
    assert size < 256 * 1024  # the report holds findings, not the bodies
    oms = next(c for c in doc["checks"] if c["name"] == "oms")
    assert oms["status"] == "fail" and doc["exit_code"] != 0
    assert any("body over 64 KB" in p for p in oms["problems"]), oms["problems"]
    if mode == "huge-body":
        assert any("(10 MB announced), read 64 KB" in p for p in oms["problems"]), oms["problems"]
