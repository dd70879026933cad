"""The sandbox's answers go out in one write: head and body together (server._HeadWithBody)."""

from __future__ import annotations

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


class _Cycle:
    """What the wrapper reads of uvicorn's request cycle: whether its answer has started."""

    def __init__(self) -> None:
        self.response_started = False


def _answer(wrapped: _HeadWithBody) -> _Cycle:
    """A new request on the connection, whose answer has started (as uvicorn's send does before its head)."""
    cycle = _Cycle()
    wrapped.next_answer(cycle)
    cycle.response_started = True
    return cycle


def test_head_and_body_are_one_write_and_later_writes_pass_through() -> None:
    transport = _Transport()
    wrapped = _HeadWithBody(transport)  # type: ignore[arg-type]
    _answer(wrapped)
    wrapped.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.writes == []  # held: ASGI sends nothing before the first body message
    wrapped.write(b"{}")
    wrapped.write(b"")  # h11's EndOfMessage with Content-Length: nothing to send
    wrapped.write(b"more")
    assert wrapped.get_extra_info("peername") == "info:peername"
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"more"]


def test_each_answer_on_a_connection_is_held_again() -> None:
    transport = _Transport()
    wrapped = _HeadWithBody(transport)  # type: ignore[arg-type]
    for n in range(3):
        _answer(wrapped)
        wrapped.write(b"HEAD%d|" % n)
        wrapped.write(b"BODY%d" % n)
    assert transport.writes == [b"HEAD0|BODY0", b"HEAD1|BODY1", b"HEAD2|BODY2"]


def test_an_empty_body_sends_the_head_on_its_own_write() -> None:
    """An empty body (HEAD, 204) is still a body write: the head goes out then, not later."""
    transport = _Transport()
    wrapped = _HeadWithBody(transport)  # type: ignore[arg-type]
    _answer(wrapped)
    wrapped.write(b"HEAD-ONLY")
    wrapped.write(b"")
    assert transport.writes == [b"HEAD-ONLY"]


def test_a_write_before_the_answer_started_is_not_held() -> None:
    """uvicorn writes "100 Continue" from receive(), before the answer: the client waits for it."""
    transport = _Transport()
    wrapped = _HeadWithBody(transport)  # type: ignore[arg-type]
    cycle = _Cycle()
    wrapped.next_answer(cycle)
    wrapped.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    cycle.response_started = True
    wrapped.write(b"HEAD|")
    wrapped.write(b"BODY")
    assert transport.writes[1:] == [b"HEAD|BODY"]


def test_close_sends_the_held_head_first_and_abort_drops_it() -> None:
    closed = _Transport()
    wrapped = _HeadWithBody(closed)  # type: ignore[arg-type]
    _answer(wrapped)
    wrapped.write(b"HEAD")
    wrapped.close()
    aborted = _Transport()
    dropped = _HeadWithBody(aborted)  # type: ignore[arg-type]
    _answer(dropped)
    dropped.write(b"HEAD")
    dropped.abort()
    assert closed.writes == [b"HEAD"] and closed.closing
    assert aborted.writes == [] and aborted.closing


def _read_answer(sock: socket.socket, data: bytes = b"", *, head_only: bool = False) -> tuple[bytes, bytes, bytes]:
    """(head, body, what followed) of one framed answer read from ``sock``."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0 if head_only else int(
        next(v for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length], rest[length:]


def test_100_continue_reaches_the_client_before_it_sends_the_body() -> None:
    """The interim answer is not held back with the final one: a client waiting for it would stall."""
    body = b'{"grantType":"client_credentials"}'
    with Sandbox(port=0) as sandbox, socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1.0/access-token/b2b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim, _, rest = _read_answer(sock, head_only=True)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        head, answer, _ = _read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 400") and b"responseCode" in answer


def test_a_head_request_gets_its_answer_at_once_and_the_connection_goes_on() -> None:
    """An answer with an empty body is not held until the next request on the connection."""
    with Sandbox(port=0) as sandbox, socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
        sock.sendall(b"HEAD /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, _, rest = _read_answer(sock, head_only=True)
        assert head.startswith(b"HTTP/1.1 200") and rest == b""
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, body, _ = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200") and body.startswith(b"{")


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


def test_pipelined_requests_are_answered_in_order_each_in_one_piece() -> None:
    """Two requests in one packet: the second is served when the first is answered (on_response_complete)."""
    with Sandbox(port=0) as sandbox, socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
        sock.sendall(
            b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"POST /v1.0/access-token/b2b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"
        )
        first, body, rest = _read_answer(sock)
        assert first.startswith(b"HTTP/1.1 200") and body.startswith(b"{")
        second, answer, rest = _read_answer(sock, rest)
        assert second.startswith(b"HTTP/1.1 400") and b"responseCode" in answer and rest == b""
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        third, _, _ = _read_answer(sock)
        assert third.startswith(b"HTTP/1.1 200")
