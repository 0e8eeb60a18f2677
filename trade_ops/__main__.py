"""`python -m trade_ops`: the CLI, as the coordinator starts bench workers (bench/worker.py: worker_argv)."""

from trade_ops.cli import main

main()
