"""HTTP servers that misbehave on purpose, on raw sockets (no framework would let them).

`python -m tests.apps.hostile MODE PORT`; every path answers the same way:

    closer           500 with a Content-Length, then closes, without `Connection: close`
    endless-chunked  200, Transfer-Encoding: chunked, 64 KB chunks for ever
    close-delimited  200 with no length: bytes until the client gives up
    gzip-bomb        200, Content-Encoding: gzip, 2 MB that inflate to 2 GB of zeros
    huge-body        200, a 10 MB JSON health body with a Content-Length

`start_hostile(workdir, mode)` starts one as a real process and returns its URL.
"""

from __future__ import annotations

import socket
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MODES", "hostile"]

CHUNK = b"x" * 65536
MB = 1024 * 1024


def _read_request(conn: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(v.split(b":")[1]) for v in head.split(b"\r\n")
                   if v.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        rest += chunk
    return True


def _closer(conn: socket.socket) -> None:
    body = b"Internal Server Error"
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def _endless_chunked(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    while True:
        conn.sendall(frame)


def _close_delimited(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    while True:
        conn.sendall(CHUNK)


def _bomb(copies: int = 128) -> bytes:
    """A gzip body that inflates to 2 GB of JSON-ish zeros (about 2 MB on the wire): one 16 MB
    block deflated once and repeated (each copy starts after a full flush, so it stands alone)."""
    zeros = b"0" * (16 * MB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc, size = 0, 0
    for _ in range(copies):
        crc, size = zlib.crc32(zeros, crc), size + len(zeros)
    end = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * copies + end + crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")


_BOMB: list[bytes] = []


def _gzip_bomb(conn: socket.socket) -> None:
    body = _BOMB[0]
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def _huge_body(conn: socket.socket) -> None:
    body = b'{"status":"pass","pad":"' + b"y" * (10 * MB) + b'"}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))


MODES: dict[str, Callable[[socket.socket], None]] = {
    "closer": _closer, "endless-chunked": _endless_chunked, "close-delimited": _close_delimited,
    "gzip-bomb": _gzip_bomb, "huge-body": _huge_body}


def _serve(conn: socket.socket, answer: Callable[[socket.socket], None]) -> None:
    try:
        while _read_request(conn):
            answer(conn)
            if answer is _closer:
                break  # closes after its answer, without saying so
    except OSError:
        pass  # the client gave up: what a hostile server wants
    finally:
        conn.close()


def main(mode: str, port: int) -> None:
    if mode == "gzip-bomb":
        _BOMB.append(_bomb())
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_serve, args=(conn, MODES[mode]), daemon=True).start()


@contextmanager
def hostile(workdir: Path, mode: str) -> Iterator[str]:
    """One hostile server as a real process; its base URL."""
    import subprocess

    from tests.apps.stacks import ROOT
    from tests.helpers import wait_until
    from trade_ops import infra

    port = infra.free_port()
    log = workdir / f"hostile-{mode}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.apps.hostile", mode, str(port)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        if not wait_until(lambda: b"ready" in log.read_bytes() or proc.poll() is not None, 30) \
                or proc.poll() is not None:
            raise RuntimeError(f"hostile {mode} did not start: {log.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(5)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
