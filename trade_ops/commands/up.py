"""`trade-ops up`: start the infrastructure, then every service, and wait until ready."""

from __future__ import annotations

from typing import Annotated

import typer

from services import env
from trade_ops.commands.options import JsonOpt, RunDirOpt, StackOpt, TimeoutOpt
from trade_ops.commands.starting import BaseImageOpt, OfflineImagesOpt, OffsetOpt, RuntimeOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]

OnlyOpt = Annotated[str | None, typer.Option(
    "--only", help="Comma-separated services (or valkey, nats) to start, plus what they depend on "
                    "[default: every enabled service].")]
DurabilityOpt = Annotated[str | None, typer.Option(
    "--durability", envvar=env.DURABILITY, show_envvar=True,
    help="What a 201 survives: 'process' (fsync each second: any process crash) or 'host' "
         "(fsync before every ack: a host crash too, slower) [default: process].")]


@cli_errors
def up(only: OnlyOpt = None, port_offset: OffsetOpt = None, timeout: TimeoutOpt = 30.0,
       json: JsonOpt = False, run_dir: RunDirOpt = None, stack_file: StackOpt = None,
       durability: DurabilityOpt = None, runtime: RuntimeOpt = None,
       offline_images: OfflineImagesOpt = False, base_image: BaseImageOpt = None) -> None:
    """Start valkey, nats and every service that exists; wait until all are ready."""
    from trade_ops import console as out
    from trade_ops.commands.proctable import process_rows, process_table
    from trade_ops.commands.starting import choose_runtime, show_token, start_with_progress
    from trade_ops.context import Context
    from trade_ops.errors import UsageError

    if json:
        out.use_json()
    names = [n.strip() for n in only.split(",") if n.strip()] if only is not None else None
    if names is not None and not names:
        raise UsageError("--only needs at least one service name", detail="e.g. --only oms,risk")
    ctx = Context.resolve(run_dir, stack_file, port_offset=port_offset)
    chosen = choose_runtime(ctx.run_dir, runtime, base_image, offline_images)
    started = start_with_progress(ctx.run_dir, ctx.stack, chosen, names, timeout, durability)
    statuses, seconds = started.statuses, started.seconds
    if json:
        out.print_json({"status": "ok", "exit_code": 0, "run_dir": str(ctx.run_dir.path),
                        "offset": ctx.stack.offset, "seconds": round(seconds, 3),
                        "processes": process_rows(statuses)})
        show_token(started, on_stderr=True)
        return
    out.console.print(process_table(statuses, title=f"stack in {ctx.run_dir.path} "
                                                     f"(port offset {ctx.stack.offset})"))
    slowest = max((s.ready_s or 0.0 for s in statuses), default=0.0)
    out.console.print(f"[green]all {len(statuses)} ready[/] in {seconds:.2f} s (slowest {slowest:.2f} s)")
    show_token(started, on_stderr=False)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops up", "the whole stack in ./.trade-ops"),
        ("trade-ops up --only oms", "oms and what it needs: valkey, nats, risk"),
        ("trade-ops up --port-offset 1000 --run-dir /tmp/b", "a second stack beside the first"),
    ))(up)
