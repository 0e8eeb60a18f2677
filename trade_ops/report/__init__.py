"""Before/after performance reports over saved bench runs, and the status report.

    runs.py      load a saved run by name (reports/runs/NAME.json) or path
    stats.py     significance of a change: Mann-Whitney U over per-interval values,
                 or a bootstrap confidence interval from the histograms
    compare.py   refuse incomparable runs; the comparison table's rows
    plots.py     percentile-distribution and latency-over-time plots (SVG + PNG)
    markdown.py  PERFORMANCE_REPORT.md
    expect.py    `--expect '5x p50'` gates for CI
    status.py    STATUS_REPORT.md re-rendered from the last doctor result
"""
