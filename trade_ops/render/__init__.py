"""Renderers: the results doctor, bench, chaos and report return, turned into the formats
CI and monitoring read. Each format is one module; commands call `publish`.

    verdicts.py       the seam: a result -> the checks, gates or invariants it judged (Suite)
    junit.py          a Suite -> JUnit XML (`--junit FILE`)
    prometheus.py     doctor and bench results -> Prometheus text (`--metrics FILE`, `doctor --serve`)
    markdown.py       bench, chaos and report results -> the markdown of a CI job summary
    step_summary.py   appends that markdown to $GITHUB_STEP_SUMMARY when it is set
    html.py           markdown and plots -> one self-contained page (`--html FILE`)
    publish.py        what each command writes, given its result and its output options
    kubernetes.py     the stack definition -> Kubernetes manifests (`render kubernetes`)
"""
