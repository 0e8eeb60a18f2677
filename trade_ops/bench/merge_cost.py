"""The merge's cost: `python -m trade_ops.bench.merge_cost [N ...]` (default 4 and 64).

Builds N workers' result documents of a 30-second run (30 one-second intervals of 1,000
requests each, latencies drawn from a lognormal around 0.7 ms) and times `merge_workers`
over them: what a coordinator spends after the load, per run. A measurement to take on a
quiet host, with `uptime` beside it.
"""

from __future__ import annotations

import random
import sys
import time

from trade_ops.bench import hist
from trade_ops.bench.merge import merge_workers
from trade_ops.bench.worker import WorkerResult
from trade_ops.savedruns import BenchResult, Host, Interval

__all__ = ["main", "worker_document"]


def worker_document(seed: int, seconds: int = 30, per_s: int = 1000) -> WorkerResult:
    rnd, whole, intervals = random.Random(seed), hist.new(), []
    for s in range(seconds):
        iv = hist.new()
        for _ in range(per_s):
            value = int(rnd.lognormvariate(6.5, 0.6))
            iv.record_value(value)
            whole.record_value(value)
        intervals.append(Interval(start_s=s, end_s=s + 1, count=per_s, partial=False, latency=hist.encode(iv),
                                  service_time=hist.encode(iv)))
    n = seconds * per_s
    histograms = dict.fromkeys(("latency", "service_time", "schedule_lag", "lag_free"), hist.encode(whole))
    return WorkerResult(run_id="cost", shard=seed, shards=seed + 1, host=Host(name="here"), status="done",
                        results=BenchResult(requests=n, ok=n, connections=8), histograms=histograms,
                        intervals=intervals, first_s=0.0, last_intended_s=seconds - 0.001,
                        last_done_s=float(seconds))


def main(argv: list[str] | None = None) -> None:
    for n in [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [4, 64]:
        docs = [worker_document(i) for i in range(n)]
        start = time.perf_counter()
        merge_workers(docs, 1000.0 * n)
        print(f"{n} workers: merge {1000 * (time.perf_counter() - start):.1f} ms")


if __name__ == "__main__":
    main()
