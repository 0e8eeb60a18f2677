"""`trade-ops render kubernetes`: the stack as manifests for a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trade_ops import console as out
from trade_ops.commands.options import RunDirOpt, StackOpt
from trade_ops.helptext import examples

__all__ = ["register"]

render_app = typer.Typer(help="Render the stack for another platform (Kubernetes).", no_args_is_help=True)


@render_app.command("kubernetes", epilog=examples(
    ("trade-ops render kubernetes", "manifests in RUN_DIR/kubernetes for namespace trade-ops"),
    ("trade-ops render kubernetes --namespace desk-a --out k8s", "another namespace, another folder"),
    ("kubectl apply -f k8s/namespace.yaml && kubectl apply -f k8s/", "then deploy them"),
))
@out.cli_errors
def kubernetes(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The namespace (a DNS label).")
                         ] = "trade-ops",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the manifests, and the credentials they carry in secrets/ (keep both "
                      "private) [default: RUN_DIR/kubernetes].")] = None,
    image: Annotated[str, typer.Option("--image", help="The service image, as the cluster pulls it.")
                     ] = "trade-ops-services:local",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Bench workers in the Indexed Job.")] = 2,
    stack: StackOpt = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Write Kubernetes manifests derived from the stack definition (the one `up` and compose.yaml use).

    StatefulSets with volumes for valkey and NATS JetStream, a Deployment and a Service per
    service with probes from its health paths, the credentials `up` generates as Secrets,
    NetworkPolicies from the contract's topology, the bench workers as an Indexed Job, and
    stack.toml naming the Services for doctor and bench inside the cluster.
    Exit codes: 0 written; 2 bad input (namespace, stack file).
    """
    from trade_ops.render.kubernetes import render, write
    from trade_ops.rundir import RunDir
    from trade_ops.stack import load_stack

    out_dir = out_dir or RunDir(run_dir).kubernetes
    manifests = render(load_stack(stack), namespace, creds_dir=out_dir, image=image, workers=workers)
    paths = write(manifests, out_dir)
    out.console.print(f"wrote {len(paths)} files to {out_dir}/ for namespace {namespace} "
                      f"(secrets.yaml and secrets/ hold the credentials: keep them out of version control)")


def register(app: typer.Typer) -> None:
    app.add_typer(render_app, name="render")
