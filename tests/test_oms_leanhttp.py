"""The lean keep-alive client oms uses for risk over HTTP, against a real asyncio server."""

from __future__ import annotations

import asyncio

import pytest

from services.oms.leanhttp import LeanHttp, LeanHttpError

pytestmark = pytest.mark.unit

ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s'


async def serve(close_after_each: bool) -> tuple[asyncio.Server, int, list[int]]:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            reply = b'{"echo": %s}' % (body or b"null")
            writer.write(ANSWER % (len(reply), reply))
            await writer.drain()
            if close_after_each:
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


async def test_keeps_one_connection_alive() -> None:
    server, port, connections = await serve(close_after_each=False)
    client = LeanHttp(f"http://127.0.0.1:{port}", timeout=2)
    for i in range(5):
        assert await client.request("POST", "/check", b"%d" % i) == (200, b'{"echo": %d}' % i)
    assert len(connections) == 1
    await client.aclose()
    server.close()


async def test_retries_once_when_the_server_closed_an_idle_connection() -> None:
    server, port, connections = await serve(close_after_each=True)
    client = LeanHttp(f"http://127.0.0.1:{port}", timeout=2)
    for _ in range(3):
        status, _ = await client.request("GET", "/livez")
        assert status == 200
        await asyncio.sleep(0.05)
    assert len(connections) == 3
    await client.aclose()
    server.close()


async def test_nothing_listening_is_an_error_not_a_hang() -> None:
    server, port, _ = await serve(close_after_each=False)
    server.close()
    await server.wait_closed()
    with pytest.raises(LeanHttpError):
        await LeanHttp(f"http://127.0.0.1:{port}", timeout=1).request("GET", "/livez")
