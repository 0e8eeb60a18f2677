"""Slow and hostile HTTP clients: to test the kit's HTTP limits (services/kit/server.py)
and to measure order latency while they are connected.

    python -m tests.apps.slow_clients --port 8099 -n 1000 --kind body --seconds 40

keeps `n` connections of one kind open to 127.0.0.1:PORT from `--source` (127.0.0.2 by
default, so the load generator's own address keeps its per-client allowance), opening a
new one whenever the server cuts one, for `--seconds`:

    body    a POST's headers, then its body one byte a second, never finished
    header  a request line, then its headers one byte a second, never finished
    idle    a connection that sends nothing
    huge    an endless header (the server answers 431 and closes)
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import sys
import time

__all__ = ["KINDS", "hold", "open_one"]

KINDS = ("body", "header", "idle", "huge")
_STARTS = {
    "body": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{",
    "header": b"POST /orders HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    "idle": b"",
    "huge": b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Huge: ",
}


def open_one(port: int, kind: str, source: str = "127.0.0.2") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.sendall(_STARTS[kind])
    sock.setblocking(False)
    return sock


def _trickle(sock: socket.socket, kind: str) -> bool:
    """One more byte (a huge header: 64 KB more); False when the server closed it."""
    try:
        if kind != "idle":
            sock.send(b"y" * 65536 if kind == "huge" else b"x")
        return True
    except OSError:
        return False


def hold(port: int, n: int, kind: str, seconds: float, source: str = "127.0.0.2") -> int:
    """Keep `n` connections of `kind` open for `seconds`; how many the server cut."""
    sel = selectors.DefaultSelector()
    for _ in range(n):
        sel.register(open_one(port, kind, source), selectors.EVENT_READ)
    cut, end, next_byte = 0, time.monotonic() + seconds, 0.0
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):  # readable: an answer (431) or the close
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            with contextlib.suppress(OSError):
                if sock.recv(65536):
                    continue
            sel.unregister(sock)
            sock.close()
            cut += 1
            sel.register(open_one(port, kind, source), selectors.EVENT_READ)
        if time.monotonic() >= next_byte:
            next_byte = time.monotonic() + (0.05 if kind == "huge" else 1.0)
            for key in list(sel.get_map().values()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                _trickle(sock, kind)
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return cut


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.apps.slow_clients", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--kind", choices=KINDS, default="body")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--source", default="127.0.0.2")
    args = parser.parse_args(argv)
    cut = hold(args.port, args.n, args.kind, args.seconds, args.source)
    print(f"held {args.n} {args.kind} clients for {args.seconds:g} s; the server cut {cut}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
