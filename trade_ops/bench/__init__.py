"""`trade-ops bench`: a load generator that measures without lying.

    client.py       raw keep-alive HTTP/1.1 connections on asyncio (uvloop), httptools parsing
    loadgen.py      closed loop (N in flight) and open loop (constant arrival rate, latency
                    from each request's intended start: coordinated omission corrected)
    results.py      raw per-request records -> HDR histograms, percentiles, intervals, validity
    hist.py         HdrHistogram helpers (microseconds, 1 us .. 60 s, 3 significant digits)
    slo.py          `p99<100ms`, `errors<0.1%`, `rate>=1000/s` ... parsed and evaluated
    scenario.py     TOML scenarios, hashed, overridden by flags
    targets.py      oms, risk, gateway, generic http, and the built-in null endpoint
    bus_targets.py  fill (an order until its fill) and sink (a tick until committed): answered
                    on NATS, measured by the same generator, histograms and verdict
    null_server.py  the null endpoint, served in a separate process (also the test server)
    calibrate.py    generator overhead against the null endpoint, cached in the run dir
    findmax.py      the highest rate that still meets the SLOs
    runner.py       one bench run end to end (what the CLI calls)
    worker.py       one shard of a run (`bench worker`), its result as data
    merge.py        the workers' results as one run: histograms added exactly, workers named
    coordinator.py  `bench TARGET --workers N`: starts the workers (processes), merges, judges
    docker_workers.py  the workers as containers; join.py: workers elsewhere, through NATS
    merge_cost.py   what a merge of N workers' histograms costs
    render.py       the live line and the final table
    runs.py         saved runs: reports/runs/NAME.json and NAME.hgrm
"""
