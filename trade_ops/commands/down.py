"""`trade-ops down`: stop everything `up` started; leave no process behind."""

from __future__ import annotations

import typer

from trade_ops.commands.options import GraceOpt, JsonOpt, RunDirOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]


@cli_errors
def down(grace: GraceOpt = 3.0, json: JsonOpt = False, run_dir: RunDirOpt = None) -> None:
    """Stop every process of the stack (SIGTERM, then SIGKILL after a grace period)."""
    import time

    from trade_ops import console as out
    from trade_ops import runtime
    from trade_ops.commands.proctable import process_rows
    from trade_ops.errors import ExitCode
    from trade_ops.rundir import RunDir

    if json:
        out.use_json()
    rd = RunDir(run_dir)
    started = time.monotonic()
    statuses = runtime.of(rd).down(rd, grace=grace)
    left = [s.name for s in statuses if s.alive]
    if left:
        out.abort(f"still running after SIGKILL: {', '.join(left)}", ExitCode.CANNOT_RUN)
    seconds = time.monotonic() - started
    if json:
        out.print_json({"status": "ok", "exit_code": 0, "stopped": process_rows(statuses),
                        "seconds": round(seconds, 3)})
    elif not statuses:
        out.console.print(f"nothing running: {rd.no_stack_error().message}", markup=False, soft_wrap=True)
    else:
        # Counted as they were: a recorded process that was not running is not "stopped".
        stopped = sum(s.state == "stopped" for s in statuses)
        gone = [s.name for s in statuses if s.state == "dead"]
        out.console.print(f"stopped {stopped} process{'es' if stopped != 1 else ''} in {seconds:.2f} s"
                          + (f"; not running already: {', '.join(gone)}" if gone else ""),
                          markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops down", "stop the stack found from here"),
        ("trade-ops down --run-dir /tmp/b", "stop the stack in /tmp/b"),
    ))(down)
