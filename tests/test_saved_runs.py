"""The saved-run format's one reader: runs saved before a field existed read with its
default and lose nothing they said; a file of another shape is a usage error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from trade_ops.errors import UsageError
from trade_ops.savedruns import FORMAT, read_run

pytestmark = pytest.mark.unit

COMMITTED = sorted((Path(__file__).resolve().parents[1] / "reports" / "runs").glob("*.json"))


def _held(said: Any, typed: Any, where: str = "$") -> list[str]:
    """Where the typed run lost or changed something the file said."""
    if isinstance(said, dict):
        if not isinstance(typed, dict):
            return [where]
        return [w for k, v in said.items()
                for w in ([f"{where}.{k}"] if k not in typed else _held(v, typed[k], f"{where}.{k}"))]
    if isinstance(said, list):
        if not isinstance(typed, list) or len(said) != len(typed):
            return [where]
        pairs = enumerate(zip(said, typed, strict=True))
        return [w for i, (a, b) in pairs for w in _held(a, b, f"{where}[{i}]")]
    return [] if said == typed else [where]


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_a_committed_run_reads_whole_by_the_type(path: Path) -> None:
    _, run = read_run(path)
    assert _held(orjson.loads(path.read_bytes()), msgspec.to_builtins(run)) == []
    assert run.results.requests > 0 and run.intervals and run.meta.host.cores >= 1


def test_committed_runs_are_there() -> None:
    assert len(COMMITTED) >= 2  # the README's example reports compare them


def test_a_file_of_another_shape_is_a_usage_error(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(orjson.dumps({"format": FORMAT, "name": "x", "created_at": "2026-01-01T00:00:00+00:00",
                                    "results": {"requests": "many"}, "histograms": {}}))
    with pytest.raises(UsageError) as err:
        read_run(other)
    assert f"is not a {FORMAT} document" in err.value.message and "requests" in err.value.message
    other.write_bytes(orjson.dumps({"format": "pyperf/1.0"}))
    with pytest.raises(UsageError):
        read_run(other)
