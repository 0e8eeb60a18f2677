"""The null endpoint: answers every HTTP/1.1 request with `200 {}` as fast as it can, in a
process of its own (so it never competes with the generator's event loop).

    python -m trade_ops.bench.null_server [--port 0] [--delay-ms 5] [--stall-ms 300 --stall-at 500]
                                          [--status 400 --body '{"detail": "bad side"}']

--delay-ms answers each request after a fixed (non-blocking) delay; --stall-ms blocks the
whole server once, at the N-th request, like a GC pause. Both exist to test the instrument.
--status/--body answer every request with that status and body: a target that fails in
a known way. It prints `READY <port>` once it listens. NullServer starts and stops it from Python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from types import TracebackType

__all__ = ["NullServer", "main"]

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Connection: keep-alive\r\n\r\n{}")


def response(status: int, body: bytes) -> bytes:
    return (b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: keep-alive\r\n\r\n%s" % (status, len(body), body))


class _Server:
    def __init__(self, delay_s: float, stall_s: float, stall_at: int, answer: bytes = RESPONSE) -> None:
        self.delay_s, self.stall_s, self.stall_at = delay_s, stall_s, stall_at
        self.answer = answer
        self.count = 0


class _Handler(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        import httptools

        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:
            if self.transport:
                self.transport.close()

    def on_message_complete(self) -> None:
        s = self.server
        s.count += 1
        if s.stall_s and s.count == s.stall_at:
            time.sleep(s.stall_s)  # blocks everything, on purpose
        if s.delay_s:
            asyncio.get_running_loop().call_later(s.delay_s, self._send)
        else:
            self._send()

    def _send(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.server.answer)


async def _serve(host: str, port: int, server: _Server) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: _Handler(server), host, port, backlog=1024)
    bound = srv.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    async with srv:
        await srv.serve_forever()


def main(argv: list[str] | None = None) -> None:
    import uvloop

    ap = argparse.ArgumentParser(prog="null_server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--stall-ms", type=float, default=0.0)
    ap.add_argument("--stall-at", type=int, default=0)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--body", default="{}")
    a = ap.parse_args(argv)
    server = _Server(a.delay_ms / 1000, a.stall_ms / 1000, a.stall_at, response(a.status, a.body.encode()))
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(a.host, a.port, server))


class NullServer:
    """`with NullServer(delay_ms=5) as url:` a null endpoint in a child process."""

    def __init__(self, *, delay_ms: float = 0.0, stall_ms: float = 0.0, stall_at: int = 0,
                 status: int = 200, body: str = "{}", timeout: float = 10.0) -> None:
        self.args = ["--delay-ms", str(delay_ms), "--stall-ms", str(stall_ms), "--stall-at", str(stall_at),
                     "--status", str(status), "--body", body]
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        from trade_ops.errors import StartupError

        self.proc = subprocess.Popen([sys.executable, "-m", "trade_ops.bench.null_server", *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
            self.stop()
            raise StartupError("the null endpoint did not start", detail=err[-2000:] or None)
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/"
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()
        self.proc = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    main()
