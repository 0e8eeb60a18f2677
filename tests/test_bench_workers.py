"""`bench --workers N` and `bench worker` on real processes: the shards interleave into one
schedule, the merged percentiles are those of every request pooled, a worker that was
killed, started late or lagged is named and makes the run invalid, and a 1-worker and a
4-worker run of the same load compare as unchanged. Nothing asserts a timing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hdrh.histogram import HdrHistogram
from rich.console import Console
from typer.testing import CliRunner

from tests.helpers import start_delay_app
from trade_ops.bench import hist
from trade_ops.bench.coordinator import Started, process_launch, run_workers
from trade_ops.bench.loadgen import run_load
from trade_ops.bench.runner import BenchRequest
from trade_ops.bench.worker import (
    Job,
    WorkerResult,
    job_target,
    parse_shard,
    parse_start,
    run_shard,
    shard_spec,
)
from trade_ops.cli import app
from trade_ops.errors import ExitCode, UsageError
from trade_ops.savedruns import BenchResult

pytestmark = [pytest.mark.process, pytest.mark.timeout(240), pytest.mark.usefixtures("tmp_cwd")]
runner = CliRunner()
QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (the module's lifetime)


@pytest.fixture(scope="module")
def delay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real service answering after 5 ms: its latency does not depend on the generator."""
    proc = start_delay_app(tmp_path_factory.mktemp("delay"), DELAY_MS="5")
    try:
        yield proc.url + "/check"
    finally:
        proc.stop()


def _scenario(where: Path, name: str, **load: object) -> str:
    """Untimed: only errors are gated (a test never asserts a timing on a shared box)."""
    path = where / f"{name}.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in {"name": name, "model": "open", **load,
                                                    "slo": ["errors==0"]}.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class _Kept:
    """A started worker whose result is kept after the coordinator's work folder is gone."""

    def __init__(self, inner: Started) -> None:
        self.inner, self.where = inner, inner.where
        self.doc: WorkerResult | None = None
        self.pid: int = inner.proc.pid  # type: ignore[attr-defined]

    def ended(self) -> str | None:
        return self.inner.ended()

    def stop(self) -> None:
        self.inner.stop()

    def result(self) -> WorkerResult | None:
        self.doc = self.doc or self.inner.result()
        return self.doc


def test_shards_interleave_into_the_whole_schedule(null_url: str) -> None:
    d = {"model": "open", "rate": 400.0, "requests": 90, "warmup_requests": 10, "concurrency": 4}
    job = Job("inter", "null", null_url, d, 3, time.time())
    sent: dict[int, float] = {}
    for shard in range(3):
        spec = shard_spec(job, shard)
        raw = run_load(job_target(job), spec)
        assert sorted(raw.index) == list(range(shard, 100, 3))  # requests shard, shard+3, ...
        start_at = spec.start_at
        assert start_at is not None  # a shard's schedule starts at the job's start
        sent.update({k: t - start_at for k, t in zip(raw.index, raw.intended, strict=True)})
    assert sorted(sent) == list(range(100))  # together: the whole schedule, each request once
    assert all(t == pytest.approx(k / 400.0) for k, t in sent.items())
    docs = [run_shard(Job("inter", "null", null_url, d, 3, time.time() + 0.3), i) for i in (0,)]
    assert docs[0].status == "done" and docs[0].results is not None and docs[0].results.requests == 30
    assert {iv.start_s for iv in docs[0].intervals} == {0.0}


def test_bad_shard_and_start_are_usage_errors() -> None:
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    assert parse_start("2026-12-05T17:00:00Z") == parse_start("1796490000")
    with pytest.raises(UsageError):
        parse_start("2026-12-05T17:00:00")  # no zone: whose 17:00?


def test_cli_usage_errors_exit_2_with_one_line(null_url: str) -> None:
    for args in (["bench", "worker"], ["bench", "worker", "--shard", "2/2", "--job", "x.json"],
                 ["bench", "null", "--shard", "0/2"], ["bench", "null", "--workers", "2", "-n", "10"],
                 ["bench", "fill", "--workers", "2", "--rate", "10", "-d", "1"],
                 ["bench", "null", "--workers", "two", "--rate", "10", "-d", "1"],
                 ["bench", "null", "--workers", "0", "--rate", "10", "-d", "1"],
                 ["bench", "null", "--workers", "2", "--rate", "10", "-d", "1", "--runtime", "ssh"]):
        result = runner.invoke(app, args)
        assert result.exit_code == ExitCode.USAGE, (args, result.output)
        assert "Traceback" not in result.output and result.output.strip(), args


def test_merged_percentiles_are_those_of_every_request_pooled(null_url: str, tmp_path: Path) -> None:
    kept: list[_Kept] = []

    def launch(job: Job, job_path: Path, shard: int, work: Path) -> Started:
        job.keep_samples = True  # the raw latencies beside the histograms
        job_path.write_text(json.dumps(job.to_json()))
        kept.append(_Kept(process_launch(job, job_path, shard, work)))
        return kept[-1]

    sc = _scenario(tmp_path, "pooled", rate=600.0, duration_s=2.0, warmup_s=0.2, concurrency=16,
                   interval_s=0.5)
    req = BenchRequest("null", sc, url=null_url, save="pooled", runs_dir=tmp_path / "runs")
    outcome = run_workers(req, 3, "process", QUIET, launch=launch)
    r = outcome.result
    assert [w.status for w in r.workers or []] == ["done"] * 3, r.workers
    docs = [k.doc for k in kept if k.doc is not None]
    assert len(docs) == len(kept)  # every worker's result kept
    samples = sorted(s for doc in docs for s in doc.samples_us or [])
    assert r.requests == len(samples) == 1200
    pooled = hist.new()
    for s in samples:
        pooled.record_value(s)
    for key, p in (("p50", 50.0), ("p99", 99.0), ("p999", 99.9)):
        rank = max(int(p / 100 * len(samples) + 0.5), 1)
        exact = samples[rank - 1]  # the pooled order statistic, at HDR's 3 significant digits
        assert getattr(r.latency_ms, key) * 1000 == pytest.approx(pooled.get_highest_equivalent_value(exact))
        assert getattr(r.latency_ms, key) * 1000 == pytest.approx(exact, rel=1e-3)
        assert outcome.analysis.latency.get_value_at_percentile(p) == pooled.get_value_at_percentile(p)
    # the saved run is a single run's format: its latency histogram is the pooled one
    saved = json.loads(Path(r.saved or "").read_text())
    assert HdrHistogram.decode(saved["histograms"]["latency"].encode()).get_total_count() == 1200
    assert sum(iv["count"] for iv in saved["intervals"]) == 1200 and len(saved["intervals"]) == 4
    assert saved["settings"]["workers"] == 3 and "--workers 3" in saved["meta"]["command"]


def test_killed_late_and_lagging_workers_are_named_and_the_run_is_invalid(null_url: str,
                                                                           tmp_path: Path) -> None:
    """Worker 0 runs as asked; 1 is SIGKILLed mid-run, 2 is stopped (SIGSTOP) for 0.4 s
    mid-run: its generator falls behind its schedule; 3 is started after the start time."""
    timers: list[threading.Timer] = []

    def at(when: float, fn: Any, *args: Any) -> None:
        timers.append(threading.Timer(max(when - time.time(), 0.0), fn, args))
        timers[-1].start()

    def launch(job: Job, job_path: Path, shard: int, work: Path) -> Started:
        if shard == 3:
            time.sleep(max(job.start_at + 0.5 - time.time(), 0.0))
        started = _Kept(process_launch(job, job_path, shard, work))
        if shard == 1:
            at(job.start_at + 0.8, os.kill, started.pid, signal.SIGKILL)
        if shard == 2:
            at(job.start_at + 0.8, os.kill, started.pid, signal.SIGSTOP)
            at(job.start_at + 1.2, os.kill, started.pid, signal.SIGCONT)
        return started

    sc = _scenario(tmp_path, "faults", rate=400.0, duration_s=2.0, concurrency=8)
    try:
        outcome = run_workers(BenchRequest("null", sc, url=null_url), 4, "process", QUIET, launch=launch)
    finally:
        for t in timers:
            t.join()
    r = outcome.result
    assert outcome.exit_code == ExitCode.INVALID and r.status == "invalid", r
    reason = r.invalid_reason or ""
    rows = {w.shard: w for w in r.workers or []}
    assert f"worker 1 ({rows[1].where}) wrote no result (killed by SIGKILL)" in reason
    assert f"worker 2 ({rows[2].where}) on {rows[2].host} lagged: " in reason
    assert f"worker 3 ({rows[3].where}) on {rows[3].host} started " in reason
    assert "after the start time" in reason
    # worker 0 ran as asked: it is never named killed or late (on a loaded host its own lag may be real)
    assert f"worker 0 ({rows[0].where}) wrote" not in reason and "worker 0 (" not in reason.replace(
        f"worker 0 ({rows[0].where}) on {rows[0].host} lagged", "")
    # nothing dropped silently: what the others measured is in the figures, each named
    assert r.requests == sum(rows[i].requests or 0 for i in (0, 2, 3)) and rows[1].status == "missing"


def test_one_and_four_workers_of_the_same_load_compare_unchanged(delay_url: str, tmp_path: Path) -> None:
    sc = _scenario(tmp_path, "same", rate=200.0, duration_s=3.0, warmup_s=0.2, concurrency=8,
                   interval_s=0.25)
    # Four workers on a busy 2-core host may lag by the loop's ~1 ms wake-up, which moves this
    # 5 ms service's p99 by more than the 1 ms floor: the run is then rightly marked invalid
    # and report refuses it (CI saw it once). That is the tool being right about the host, not
    # the A/A: such a pair is measured again, at most three times.
    for attempt in range(3):
        one, four = f"one-{attempt}", f"four-{attempt}"  # a saved run is never replaced
        for workers, name in ((1, one), (4, four)):
            result = runner.invoke(app, ["bench", "http", "--url", delay_url, "--method", "POST", "--body",
                                         '{"i": $i}', "-s", sc, "--workers", str(workers), "--save", name,
                                         "--json"], catch_exceptions=False)
            doc = json.loads(result.stdout)
            # the document is the typed result's, its workers' rows too, every key and type of it
            assert msgspec.json.decode(result.stdout, type=BenchResult, strict=True).to_json() == doc
            assert doc["requests"] == 600 and doc["errors"] == 0 and len(doc["workers"]) == workers, doc
        result = runner.invoke(app, ["report", "perf", one, four, "--json"], catch_exceptions=False)
        cmp = json.loads(result.stdout)
        lagged = "lagged" in cmp.get("message", "") and "lower the rate" in cmp.get("message", "")
        if result.exit_code == 2 and lagged:
            continue
        break
    assert result.exit_code == 0, result.stdout
    # the acceptance of the report's own A/A test: no row calls a change (a loaded 2-core host
    # may leave a row inconclusive; it never calls 1 and 4 workers different)
    called = {row["metric"]: row["verdict"] for row in cmp["rows"] if row["call"] == "changed"}
    assert {row["metric"] for row in cmp["rows"]} >= {"p50", "p99"} and not called, cmp["rows"]
