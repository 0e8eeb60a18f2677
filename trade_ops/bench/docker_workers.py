"""Bench workers as containers: `trade-ops bench TARGET --workers N --runtime docker`.

Each worker is a container of the project's bench image (the service image plus trade-ops
itself, the Dockerfile's `bench` target: runtime/image.py) running `python -m trade_ops bench
worker`, on the host's network (it sends to the same addresses a local worker would, loopback
included), as the invoking user, with the run's work folder mounted (the job in, its result out) and the
stack's run directory read-only (the operator token, never passed in the environment).
Each container is removed when the run ends, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services import env
from trade_ops.bench.worker import Job, WorkerResult, read_result, worker_argv
from trade_ops.compose import BENCH_IMAGE

__all__ = ["LABEL_RUN", "container_launch", "prepare_image"]

LABEL_RUN = "trade-ops.bench-run"
IN_CONTAINER = "/bench"


@dataclass
class _Container:
    container: Any
    out: Path

    @property
    def where(self) -> str:
        return f"container {self.container.name}"

    def ended(self) -> str | None:
        import docker.errors

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "removed"
        state = self.container.attrs.get("State", {})
        if state.get("Status") not in ("exited", "dead"):
            return None
        return "killed by the kernel (OOM)" if state.get("OOMKilled") else f"exit {state.get('ExitCode')}"

    def stop(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True)

    def result(self) -> WorkerResult | None:
        return read_result(self.out.read_bytes()) if self.out.exists() else None


def prepare_image() -> None:
    """Build the bench image if the project changed: before the start time is set, so a
    build never makes every worker late."""
    from trade_ops.runtime.docker import DEFAULT_BASE_IMAGE, engine_errors
    from trade_ops.runtime.image import BENCH, ensure_image

    with engine_errors():
        ensure_image(_client(), BENCH_IMAGE, os.environ.get(env.BASE_IMAGE) or DEFAULT_BASE_IMAGE,
                     lambda _: None, target=BENCH)


def _client() -> Any:
    from trade_ops.runtime.docker import connect

    return connect()


def container_launch(job: Job, job_path: Path, shard: int, work: Path) -> _Container:
    from trade_ops.runtime.docker import engine_errors

    out = f"worker-{shard}.json"
    argv = worker_argv(shard, job.shards, job.start_at, f"{IN_CONTAINER}/{job_path.name}",
                       f"{IN_CONTAINER}/{out}")
    volumes = {str(work): {"bind": IN_CONTAINER, "mode": "rw"}}
    if job.run_dir and Path(job.run_dir).is_dir():
        volumes[job.run_dir] = {"bind": job.run_dir, "mode": "ro"}
    with engine_errors():
        container = _client().containers.run(
            BENCH_IMAGE, ["python", *argv], name=f"trade-ops-bench-{job.run_id}-{shard}", detach=True,
            network_mode="host", user=f"{os.getuid()}:{os.getgid()}", volumes=volumes,
            labels={LABEL_RUN: job.run_id}, environment={"PYTHONUNBUFFERED": "1"})
    return _Container(container, work / out)
