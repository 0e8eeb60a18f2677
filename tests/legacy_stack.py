"""Start the legacy and foreign fixture stacks (tests/apps/legacy.py, tests/apps/foreign.py):
one uvicorn process per role."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.apps.stacks import ROOT
from tests.helpers import Proc, _on_a_free_port, _spawn, _started
from trade_ops import infra

__all__ = ["FOREIGN_ROLES", "ROLES", "start_foreign", "start_legacy", "stop_all"]

ROLES = ("gateway", "risk", "oms", "exeq", "live-gateway", "event-writer", "ptrc", "hot-cache")
FOREIGN_ROLES = ("gateway", "normalizer", "exeq", "sink-ticks", "pnl", "ptrc", "hot-cache", "risk",
                 "live-gateway", "event-writer", "oms")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # a 503 is an answer: the legacy event-writer is up and unhealthy
    except OSError:
        return False


def _start(role: str, workdir: Path, nats_url: str | None, app: str = "legacy",
           more: dict[str, str] | None = None) -> Proc:
    prefix = app.upper()

    def once() -> Proc:
        port = infra.free_port()
        log = workdir / f"{app}-{role}-{port}.log"
        env = {f"{prefix}_ROLE": role, **({f"{prefix}_NATS": nats_url} if nats_url else {}), **(more or {})}
        cmd = [sys.executable, "-m", "uvicorn", f"tests.apps.{app}:app", "--app-dir", str(ROOT),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        proc = Proc(_spawn(cmd, log, env), port, log, f"http://127.0.0.1:{port}")
        return _started(proc, lambda: _answers(proc.url + "/health"), f"{app} {role}")

    return _on_a_free_port(once)


def stop_all(procs: dict[str, Proc]) -> None:
    for proc in procs.values():
        proc.stop()


def start_legacy(workdir: Path, nats_url: str | None = None,
                 roles: tuple[str, ...] = ROLES) -> dict[str, Proc]:
    procs: dict[str, Proc] = {}
    try:
        for role in roles:
            procs[role] = _start(role, workdir, nats_url)
    except BaseException:
        stop_all(procs)
        raise
    return procs


def start_foreign(workdir: Path, nats_url: str, valkey: str,
                  roles: tuple[str, ...] = FOREIGN_ROLES) -> dict[str, Proc]:
    """The foreign deployment of tests/apps/foreign.py; `valkey` is the host:port its pnl uses."""
    procs: dict[str, Proc] = {}
    try:
        for role in roles:
            procs[role] = _start(role, workdir, nats_url, "foreign", {"FOREIGN_VALKEY": valkey})
    except BaseException:
        stop_all(procs)
        raise
    return procs


def main(argv: list[str]) -> int:
    """`python -m tests.legacy_stack DIR`: the foreign fixture on a real nats-server and valkey,
    its stack file at DIR/foreign.toml, until Ctrl-C (to measure doctor on it by hand). Its
    `oms` there is the foreign OMS of tests/apps/foreign_oms.py, which takes orders (--trade)
    and publishes them where nobody hears them."""
    import signal
    import time

    from tests.helpers import start_nats, start_valkey

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if len(argv) != 1:
        print("usage: python -m tests.legacy_stack DIR", file=sys.stderr)
        return 2
    workdir = Path(argv[0]).resolve()
    nats, valkey = start_nats(workdir / "nats"), start_valkey(workdir / "valkey")
    procs: dict[str, Proc] = {}
    try:
        from tests.apps.foreign_oms import start_foreign_oms

        procs = start_foreign(workdir / "apps", nats.url, f"127.0.0.1:{valkey.port}")
        procs["orders"] = start_foreign_oms(workdir / "oms", nats_url=nats.url)
        monitor = next(line.rsplit(":", 1)[-1] for line in nats.log_text().splitlines()
                       if "Starting http monitor on" in line)
        stack = workdir / "foreign.toml"
        stack.write_text(f"[infra.valkey]\nport = {valkey.port}\n\n[infra.nats]\nport = {nats.port}\n"
                         f"monitor_port = {monitor}\n\n"
                         + "\n".join(f'[services.{"oms" if r == "orders" else r}]\nurl = "{p.url}"\n'
                                     for r, p in procs.items() if r != "oms"))
        print(f"foreign fixture up; stack file {stack}\n"
              f"  trade-ops doctor --stack {stack} --run-dir {workdir / 'run'} --no-report\n"
              "Ctrl-C stops it", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(procs)
        valkey.stop()
        nats.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
