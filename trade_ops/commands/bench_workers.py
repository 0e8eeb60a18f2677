"""`trade-ops bench worker` (one shard) and `bench TARGET --workers N` (the coordinator):
the flags of the bench command that split a run over workers, checked and passed on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trade_ops.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from trade_ops.bench.runner import BenchOutcome, BenchRequest
    from trade_ops.savedruns import BenchResult

__all__ = ["coordinate", "refuse_worker_flags", "show", "worker"]


def worker(shard: str | None, start_at: str | None, job: Path | None, out: Path | None,
           join: str | None) -> int:
    """Run one shard; its result document goes to `out` (or stdout). The exit code says
    whether it ran (0) or could not (3): the verdict is the coordinator's."""
    from trade_ops.bench.worker import Job, parse_shard, parse_start, run_shard, write_result

    if shard is None:
        raise UsageError("bench worker needs --shard i/N (and --job FILE --start-at T, or --join NATS_URL)")
    i, n = parse_shard(shard)
    if join is not None:
        from trade_ops.bench.join import join_run

        doc = join_run(join, i, n)
    elif job is None:
        raise UsageError("bench worker needs --job FILE (the coordinator writes it) or --join NATS_URL")
    else:
        j = Job.read(job)
        if j.shards != n:
            raise UsageError(f"--shard {shard} does not fit the job, which is split {j.shards} ways")
        if start_at is not None:
            j.start_at = parse_start(start_at)
        doc = run_shard(j, i)
    write_result(doc, out)
    return int(ExitCode.OK if doc.status == "done" else ExitCode.CANNOT_RUN)


def refuse_worker_flags(**given: object) -> None:
    """A worker's own flags on any other bench command: say so instead of ignoring them."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if named:
        raise UsageError(f"{', '.join(named)} belong(s) to `trade-ops bench worker`",
                         detail="a coordinator is `trade-ops bench TARGET --workers N`")


def coordinate(req: BenchRequest, workers: str, runtime: str, console: Console) -> BenchOutcome:
    """`--workers N` or `--workers auto` (one per core this process may use)."""
    from trade_ops.bench.coordinator import default_workers, run_workers

    if workers == "auto":
        n = default_workers()
    else:
        try:
            n = int(workers)
        except ValueError:
            raise UsageError(f"--workers {workers!r} must be a number of workers or 'auto'") from None
    return run_workers(req, n, runtime, console)


def show(result: BenchResult, console: Console) -> None:
    """One row per worker: where it ran, what it sent, how late it started, its lag and CPU."""
    from rich.table import Table

    rows = result.workers
    if rows is None:
        return
    table = Table("worker", "where", "host", "requests", "late ms", "lag p99 ms", "CPU s", "status",
                  title="workers", title_justify="left", box=None)

    def cell(value: object) -> str:
        return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    for w in rows:
        status = w.status if w.status == "done" else f"[red]{w.status}[/] ({w.ended})"
        table.add_row(str(w.shard), w.where, cell(w.host), cell(w.requests), cell(w.late_ms),
                      cell(w.schedule_lag_p99_ms), cell(w.cpu_s), status)
    console.print(table)
