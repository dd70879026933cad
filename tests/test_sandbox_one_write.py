"""The sandbox's answers go out in one write: head and body together (server._HeadWithBody)."""

from __future__ import annotations

import asyncio
import socket

from snapbook.sandbox import Sandbox
from snapbook.sandbox.server import _HeadWithBody


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_head_and_body_are_one_write_and_later_writes_pass_through() -> None:
    async def run() -> list[bytes]:
        transport = _Transport()
        wrapped = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        wrapped.write(b"HTTP/1.1 200 OK\r\n\r\n")
        wrapped.write(b"")  # h11's EndOfMessage with Content-Length: nothing to send
        wrapped.write(b"{}")
        wrapped.write(b"more")
        await asyncio.sleep(0)  # the scheduled flush finds nothing held
        assert wrapped.get_extra_info("peername") == "info:peername"
        return transport.writes

    assert asyncio.run(run()) == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"more"]


def test_a_head_without_body_still_goes_out_on_the_next_loop_turn() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        transport = _Transport()
        wrapped = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        wrapped.write(b"HEAD-ONLY")
        before = list(transport.writes)
        await asyncio.sleep(0)
        return before, transport.writes

    before, after = asyncio.run(run())
    assert before == [] and after == [b"HEAD-ONLY"]


def test_close_sends_the_held_head_first_and_abort_drops_it() -> None:
    async def run() -> tuple[list[bytes], bool, list[bytes]]:
        loop = asyncio.get_running_loop()
        closed = _Transport()
        wrapped = _HeadWithBody(closed, loop)  # type: ignore[arg-type]
        wrapped.write(b"HEAD")
        wrapped.close()
        aborted = _Transport()
        dropped = _HeadWithBody(aborted, loop)  # type: ignore[arg-type]
        dropped.write(b"HEAD")
        dropped.abort()
        await asyncio.sleep(0)
        return closed.writes, closed.closing, aborted.writes

    closed_writes, closing, aborted_writes = asyncio.run(run())
    assert closed_writes == [b"HEAD"] and closing
    assert aborted_writes == []


def test_the_running_sandbox_still_sends_whole_framed_answers() -> None:
    """Over a real socket, through the wrapped transport: a complete head and a body of its Content-Length."""
    with Sandbox(port=0) as sandbox:
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = int(
                next(v for k, _, v in (h.partition(b":") for h in lines) if k.lower() == b"content-length")
            )
            while len(body) < length:
                body += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200") and len(body) == length
