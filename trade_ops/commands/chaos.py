"""`trade-ops chaos`: inject faults under load, then verify every order's promise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from trade_ops.commands.options import JsonOpt, JunitOpt, RunDirOpt, StackOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

if TYPE_CHECKING:
    from trade_ops.chaos.result import ChaosResult

__all__ = ["register"]

FaultOpt = Annotated[list[str] | None, typer.Option(
    "--fault", show_default="none: name at least one",
    help="A fault, NAME[ SVC][@START][+HOLD] (seconds), repeatable for a sequence: "
                    "valkey-kill, nats-kill, nats-stop, 'service-kill SVC', 'service-stop SVC', "
                    "valkey-restart-burst, 'burst N', claim-crash.")]


def _show(result: ChaosResult) -> None:
    from trade_ops import console as out

    c = out.console
    c.print(f"[bold]chaos {result.run_id}[/] ({result.rate:g} orders/s for {result.duration_s:g} s, "
            f"account {result.account})")
    for f in result.faults:
        c.print(f"  fault {f.fault}: {f.began_s}s -> {f.ended_s}s  {'; '.join(f.notes)}")
    c.print(f"  sent {result.sent}, acknowledged (201) {result.acknowledged}, retried {result.retried}")
    c.print(f"  first answers {result.first_answers}; after retries {result.final_answers}")
    c.print(f"  recovery (fault end -> next 201): {result.recovery_s}")
    colour = "green" if result.passed else "red"
    c.print(f"  [{colour}]lost {result.lost}, traded after an error {result.traded_after_error}, "
            f"duplicated {result.duplicated}, not settled in time {result.unsettled}[/]")
    for kind in ("lost", "unsettled", "traded_after_error", "duplicated"):
        for text in result.examples.of(kind):
            c.print(f"    {kind}: {text}", markup=False)
    for text in result.unclear_after_retries:
        c.print(f"  no clear answer after retries: {text}", markup=False)
    degraded = {k: v for k, v in result.health.worst.items() if v != "pass"}
    c.print(f"  health seen during the run (worst): {degraded or 'all pass'}", markup=False)
    for note in result.notes:
        c.print(f"  note: {note}", markup=False)
    c.print(f"  report: {result.report}  (load average {result.load_average})")


@cli_errors
def chaos(
    fault: FaultOpt = None,
    rate: Annotated[float, typer.Option("--rate", help="Orders per second (open loop).")] = 100.0,
    duration: Annotated[float | None, typer.Option(
        "--duration", show_default="the last fault's end + 4", help="Seconds of load.")] = None,
    settle: Annotated[float, typer.Option(
        "--settle", min=0.0, help="Seconds to wait for every order to settle before judging.")] = 40.0,
    allow_foreign: Annotated[bool, typer.Option(
        "--allow-foreign", help="Run against a stack trade-ops did not start.")] = False,
    json_out: JsonOpt = False,
    junit: JunitOpt = None,
    run_dir: RunDirOpt = None,
    stack: StackOpt = None,
) -> None:
    """Load the OMS while faults are injected; exit 1 if any order's promise was broken."""
    from trade_ops import console as out
    from trade_ops.chaos import ChaosRequest, run_chaos
    from trade_ops.context import Context
    from trade_ops.errors import ExitCode
    from trade_ops.render.publish import publish_chaos

    if json_out:
        out.use_stderr()
    req = ChaosRequest(faults=fault or [], rate=rate, duration_s=duration, settle_s=settle,
                       ctx=Context.resolve(run_dir, stack), allow_foreign=allow_foreign)
    result = run_chaos(req, on_line=out.console.print)
    code = ExitCode.OK if result.passed else ExitCode.FAILED
    if json_out:
        status = "pass" if result.passed else "fail"
        out.print_json(out.envelope({"status": status, **result.to_json()}, code))
    else:
        _show(result)
    for path in publish_chaos(result, junit=junit):
        out.console.print(f"[dim]wrote {path}[/]")
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops chaos --fault valkey-kill@5+2 --fault nats-stop@15+4",
         "the compound fault: valkey killed at 5 s, nats stopped 15-19 s"),
        ("trade-ops chaos --fault 'service-kill oms'", "oms SIGKILLed and started again"),
        ("trade-ops chaos --fault claim-crash", "oms killed while requests hold their claims"),
    ))(chaos)
