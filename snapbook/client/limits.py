"""Bounded time and memory for one exchange: timeouts, the whole-attempt deadline, the decoded-size limit.

- :class:`DeadlineBackend` sits under the sync ``httpx`` client: every connect, read and write
  waits at most until the attempt's deadline (httpx's own timeouts bound each operation only,
  so a server dribbling its status line, or sending endless ``100 Continue``, never trips them).
- :class:`BoundedBody` reads the raw body and undoes its Content-Encoding in bounded steps,
  counting *decoded* bytes, so a compression bomb stops at the limit while it inflates.
"""

from __future__ import annotations

import math
import ssl
import threading
import time
import zlib
from typing import Any

import httpcore
import httpx

from ..errors import ConfigError
from ..masking import printable

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "BoundedBody",
    "DeadlineBackend",
    "bound_sync_client",
    "check_deadline",
    "check_timeout",
    "client_options",
    "install_deadline",
]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: A token answer is a few hundred bytes (accessToken <= 2048 chars); 1 MiB leaves room for any error page.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
#: No timeout or deadline beyond a day: larger values only overflow socket and timer arithmetic.
MAX_TIMEOUT = 86_400.0
# Decoded bytes produced per decompression step: peak memory is the limit plus about this much.
_DECODE_STEP = 64 * 1024
# More content codings than this on one answer is an attack, not a server configuration.
_MAX_ENCODINGS = 3


def check_timeout(value: httpx.Timeout | float | None) -> httpx.Timeout:
    """An ``httpx.Timeout`` whose every part is a finite number of seconds in (0, :data:`MAX_TIMEOUT`]."""
    timeout = value if isinstance(value, httpx.Timeout) else None
    if timeout is None:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            seconds = math.nan
        timeout = httpx.Timeout(seconds)
    for name in ("connect", "read", "write", "pool"):
        seconds = getattr(timeout, name)
        if seconds is None or not (
            isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT
        ):
            raise ConfigError(
                f"The {name} timeout must be a finite number of seconds > 0 and <= {MAX_TIMEOUT:g}, "
                f"not {printable(repr(seconds), 40)}: a request must not wait forever.",
                hint="Give seconds (timeout=10, --timeout 10) or an httpx.Timeout with every part set.",
            )
    return timeout


def check_deadline(deadline: float | None) -> float | None:
    if deadline is not None and not (
        isinstance(deadline, (int, float)) and math.isfinite(deadline) and 0 < deadline <= 2 * MAX_TIMEOUT
    ):
        raise ConfigError(
            f"deadline must be a finite number of seconds > 0 (at most {2 * MAX_TIMEOUT:g}) or None, "
            f"not {printable(repr(deadline), 40)}.",
            hint="The default is the connect timeout plus the read timeout.",
        )
    return None if deadline is None else float(deadline)


# --- the deadline, enforced below httpx for the sync client ------------------------------

_attempt_deadline = threading.local()


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` clipped to what is left of this thread's attempt deadline (if one is set)."""
    deadline: float | None = getattr(_attempt_deadline, "at", None)
    if deadline is None:
        return timeout
    remaining = deadline - time.perf_counter()
    if timeout is not None and timeout < remaining:
        return timeout
    _attempt_deadline.hit = True  # a timeout from here on is the deadline's, not the per-read one
    if remaining <= 0:
        raise httpcore.ReadTimeout("the attempt's deadline has passed")
    return remaining


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync network backend, with every socket operation bounded by the attempt's deadline.

    httpx's sync timeouts bound each operation, so a server sending its status line one byte a
    second, or endless ``100 Continue`` answers, never trips them. Here each connect, read and
    write waits at most until the deadline the calling thread set (see :class:`Exchange`); the
    socket timeout then fires, and the attempt ends as a ``total`` :class:`RequestTimeoutError`.
    """

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, _bounded(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _bounded(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def client_options(
    timeout: httpx.Timeout,
    *,
    transport: Any = None,
    verify: bool | str | ssl.SSLContext = True,
) -> dict[str, Any]:
    """Options for the ``httpx.Client`` / ``AsyncClient`` an :class:`Exchange` sends through.

    Pass the sync ``httpx.Client`` built from them through :func:`bound_sync_client`, so its
    transports enforce the deadline. Redirects are never followed (a POST must not wander).
    """
    from .. import __version__

    options: dict[str, Any] = {
        "timeout": timeout,
        "follow_redirects": False,
        # Only codings decoded here, in bounded steps (no br/zstd surprises when those packages exist).
        "headers": {"User-Agent": f"snapbook/{__version__}", "Accept-Encoding": "gzip, deflate"},
    }
    if transport is not None:
        options["transport"] = transport
    else:
        options["verify"] = verify  # httpx then also honours HTTPS_PROXY / NO_PROXY from the environment
    return options


def install_deadline(transport: Any) -> Any:
    """Give an ``httpx.HTTPTransport`` (also a proxy's, from ``HTTPS_PROXY``) the :class:`DeadlineBackend`.

    httpx offers no public hook for the network backend, so this reaches its connection pool;
    ``tests/test_client_hostile.py`` fails loudly if a new httpx moves it.
    """
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's HTTPTransport changed: snapbook cannot install its deadline backend")
    if not isinstance(pool._network_backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(pool._network_backend)
    return transport


def bound_sync_client(http: httpx.Client) -> httpx.Client:
    """``http`` with the :class:`DeadlineBackend` on its own transport and on every proxy transport it
    mounted from the environment; an injected transport (a test's mock) is left as it is."""
    transports = [getattr(http, "_transport", None), *getattr(http, "_mounts", {}).values()]
    for transport in transports:
        if isinstance(transport, httpx.HTTPTransport):
            install_deadline(transport)
    return http


# --- the body: read raw, decode in bounded steps -------------------------------------------


class _AnswerTooLarge(Exception):
    def __init__(self, size: int, limit: int, announced: bool, encoded: str = "") -> None:
        super().__init__(size)
        self.size, self.limit, self.announced, self.encoded = size, limit, announced, encoded


class _DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _Undecodable(Exception):
    """A body whose Content-Encoding we do not speak, or that does not decode."""


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or (against the RFC, but common) raw."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._obj.decompress(data, max_length)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._obj.decompress(data, max_length)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._obj.unconsumed_tail

    def flush(self) -> bytes:
        return self._obj.flush()


class BoundedBody:
    """Collects a body from raw chunks, undoing its Content-Encoding, refusing more than ``limit`` decoded bytes.

    Each decoder produces at most :data:`_DECODE_STEP` bytes per call, and counting happens as
    they come, so 6.7 KB of ``gzip, gzip`` that would inflate to gigabytes stops at the limit.
    """

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
        names = [n for n in names if n != "identity"]
        if len(names) > _MAX_ENCODINGS:
            raise _Undecodable(f"{len(names)} content codings stacked ({printable(', '.join(names), 80)})")
        self._layers: list[Any] = []
        for name in reversed(names):  # the last coding applied is undone first
            if name in ("gzip", "x-gzip"):
                self._layers.append(zlib.decompressobj(zlib.MAX_WBITS | 16))
            elif name == "deflate":
                self._layers.append(_Deflate())
            else:
                raise _Undecodable(f"Content-Encoding {printable(name, 40)!r}, which snapbook did not ask for")
        self.encoding = ", ".join(names)
        self.limit = limit
        self.size = 0
        self.raw_size = 0
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self.raw_size += len(chunk)
        self._push(0, chunk)

    def finish(self) -> bytes:
        for i, layer in enumerate(self._layers):
            try:
                tail = layer.flush()  # small: every step above ran until its output was short
            except zlib.error as exc:
                raise _Undecodable(str(exc)) from None
            if tail:
                self._push(i + 1, tail)
        return b"".join(self._parts)

    def _push(self, index: int, data: bytes) -> None:
        if index == len(self._layers):
            self.size += len(data)
            if self.size > self.limit:
                raise _AnswerTooLarge(self.size, self.limit, announced=False, encoded=self.encoding)
            self._parts.append(data)
            return
        layer = self._layers[index]
        while True:
            try:
                out = layer.decompress(data, _DECODE_STEP)
            except zlib.error as exc:
                raise _Undecodable(str(exc)) from None
            if out:
                self._push(index + 1, out)
            data = layer.unconsumed_tail
            if not data and len(out) < _DECODE_STEP:
                return


def _body_for(response: httpx.Response, limit: int) -> BoundedBody:
    """A :class:`BoundedBody` for ``response``; an answer httpx already read (a mock's
    ``Response(content=...)``, decoded when it was built) is counted as it is."""
    if response.is_stream_consumed:
        body = BoundedBody(None, limit)
        body.feed(response.content)
        return body
    return BoundedBody(response.headers.get("content-encoding"), limit)


def _check_declared_size(response: httpx.Response, limit: int) -> None:
    declared = response.headers.get("content-length", "")
    # Only an identity body's length says its decoded size; a compressed one is counted while decoding.
    if declared.isdigit() and int(declared) > limit:
        raise _AnswerTooLarge(int(declared), limit, announced=True)
