"""One SNAP HTTP exchange: the single path every signed call takes to the network and back.

Every rule about hostile peers lives here, so no kind of call can forget one:

- **time**: a per-attempt ``deadline`` bounds the whole attempt (connect, TLS, request, status
  line, headers, interim ``100 Continue`` answers, body). The sync client gets it from a network
  backend we own (:class:`DeadlineBackend`: every socket operation's timeout is clipped to what is
  left of the deadline), the async client from ``asyncio.wait_for``.
- **memory**: the body is read raw and decoded here, layer by layer (``gzip``, ``deflate``,
  ``identity``), in bounded steps, counting *decoded* bytes: a compression bomb stops at
  ``max_response_bytes``, not after it has been inflated.
- **errors**: every failure becomes a typed :class:`~snapbook.errors.SnapbookError`
  (:func:`transport_error`), and every attempt, good or bad, becomes one
  :class:`~snapbook.log.RequestLog` row (the URL's userinfo masked, network text escaped).
- **retries**: :class:`RetryPolicy` decides; each retry is prepared (signed) again.

How a new kind of call plugs in: write a :class:`CallKind`, i.e. ``prepare(started_at)`` returning
a signed request (``method``, ``url``, ``headers``, ``body``, ``timestamp``, ``signature``) and
``read(answer)`` turning an :class:`Answer` into a result or raising
:class:`~snapbook.errors.SnapResponseError` / :class:`~snapbook.errors.InvalidResponseError`. The
result should carry ``response_code`` and ``response_message`` (and ``access_token`` when it holds
one, logged masked). Then ``Exchange(endpoint, call, ...).run(httpx_client, sleep)`` (or
``await ....arun(...)``) does the rest. Build the ``httpx`` client with :func:`client_options`
(and pass a sync one through :func:`bound_sync_client`, so its transports enforce the deadline).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from ..endpoints import Endpoint
from ..errors import (
    ConfigError,
    ConnectionFailedError,
    DNSError,
    InvalidResponseError,
    RequestTimeoutError,
    SnapbookError,
    SnapResponseError,
    TLSError,
    TransportError,
)
from ..log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR, LogRecord, RequestLog, format_clock_offset
from ..masking import mask, mask_url, printable
from ..signing import Clock, parse_timestamp, system_clock

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "Answer",
    "Attempt",
    "CallKind",
    "DeadlineBackend",
    "Exchange",
    "RetryPolicy",
    "bound_sync_client",
    "check_target",
    "resolve_target",
    "client_options",
    "clock_offset_uncertainty",
    "format_clock_offset",
    "parse_retry_after",
    "server_clock_offset",
    "transport_error",
]

#: 5 s to connect, 10 s for each read or write: a healthy token endpoint answers in well under a second.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: A token answer is a few hundred bytes (accessToken <= 2048 chars); 1 MiB leaves room for any error page.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
#: No timeout or deadline beyond a day: larger values only overflow socket and timer arithmetic.
MAX_TIMEOUT = 86_400.0
# Decoded bytes produced per decompression step: peak memory is the limit plus about this much.
_DECODE_STEP = 64 * 1024
# More content codings than this on one answer is an attack, not a server configuration.
_MAX_ENCODINGS = 3


def _clip(value: Any, limit: int = 80) -> str:
    """``value`` as one printable line for a message or a log row, cut to ``limit``: servers can send anything."""
    return printable(value if isinstance(value, str) else str(value), limit)


_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=._\-]{24,}")


def _excerpt(text: str, limit: int = 120) -> str:
    """A short, single-line, printable excerpt with anything token-like masked."""
    text = " ".join(text[: 8 * limit].split())
    text = _LONG_TOKEN.sub(lambda m: mask(m.group(0)), text)
    return printable(text, limit)


class _Headers:
    """Case-insensitive read access to any headers mapping (httpx.Headers, dict, list of pairs)."""

    def __init__(self, headers: Mapping[str, str] | Any) -> None:
        items = headers.items() if hasattr(headers, "items") else headers
        self._data = {str(k).lower(): str(v) for k, v in items}

    def get(self, name: str) -> str | None:
        return self._data.get(name.lower())


# --- what the caller configures ----------------------------------------------------------


def check_target(url: str) -> str:
    """``url`` if httpx can send to it: no control characters or spaces, a port in 1..65535.

    Checked before any network attempt, so unusable input is a :class:`ConfigError` (CLI exit 2).
    """
    shown = printable(mask_url(url), 200)
    if any(not c.isprintable() or c.isspace() for c in url):
        raise ConfigError(
            f"The URL {shown!r} contains a space or a control character (CR, LF, tab, ...).",
            hint="Give the URL exactly, on one line, without spaces; percent-encode what must be in it.",
        )
    try:
        port = urlsplit(url).port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise ConfigError(
            f"The URL {shown!r} is not usable: {printable(str(exc), 120)}.",
            hint="Check the host and the port: a port is a number from 1 to 65535.",
        ) from None
    if port == 0:
        raise ConfigError(f"The URL {shown!r} has port 0.", hint="A port is a number from 1 to 65535.")
    return url


def resolve_target(target: Endpoint | str, *, sandbox_url: str | None = None) -> Endpoint:
    """:func:`~snapbook.endpoints.resolve`, with the URL checked first and any userinfo masked in its errors."""
    from ..endpoints import resolve

    for url in (target if isinstance(target, str) and "://" in target else None, sandbox_url):
        if url:
            check_target(url.strip())  # before resolve(): urlsplit raises a bare ValueError on "http://[::1"
    try:
        endpoint = resolve(target, sandbox_url=sandbox_url)
    except ConfigError as exc:
        for url in (target, sandbox_url):
            if isinstance(url, str) and "@" in url:
                exc.message = exc.message.replace(url.strip(), mask_url(url.strip()))
        exc.message = printable(exc.message)
        exc.args = (exc.message,)
        raise
    check_target(endpoint.url)
    return endpoint


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


# --- retries ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again. Only transient failures are retried.

    Transient means: the connection failed or was dropped, a connect timeout, or HTTP
    429/502/503/504. A read timeout is not retried (the provider may be overloaded and the
    wait would multiply), nor is a refusal, DNS or TLS failure: retrying cannot fix those.
    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))``, times a random factor in
    [0.5, 1] with ``jitter``; a ``Retry-After`` header is honoured exactly, up to
    ``max_retry_after`` seconds (beyond that the client gives up). Each retry is signed again.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: bool = True
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(
                f"RetryPolicy.max_attempts must be an integer >= 1, not {self.max_attempts!r}.",
                hint="Use max_attempts=1 (or retry=None) to switch retries off.",
            )
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigError("RetryPolicy delays must not be negative.", hint="Use seconds >= 0.")
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    @classmethod
    def off(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.max_delay, self.base_delay * (2 ** max(0, retry - 1)))
        if self.jitter:
            delay *= 0.5 + (rng or random).random() / 2
        return delay


#: Three attempts, 0.5 s then 1 s (with jitter), Retry-After honoured up to 60 s.
DEFAULT_RETRY = RetryPolicy()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or system_clock())).total_seconds())


# --- transport failures -----------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_DNS_TEXT = re.compile(
    r"name or service not known|nodename nor servname|getaddrinfo|temporary failure in name resolution"
    r"|no address associated|name resolution",
    re.IGNORECASE,
)
_TLS_TEXT = re.compile(r"\bssl\b|certificate|tls|handshake", re.IGNORECASE)
_REFUSED_TEXT = re.compile(r"refused|errno 111|errno 61|all connection attempts failed", re.IGNORECASE)


def transport_error(exc: BaseException, url: str, timeout: httpx.Timeout) -> tuple[SnapbookError, bool]:
    """The snapbook error for a failed exchange, and whether it is transient (worth a retry)."""
    host = printable(httpx.URL(url).host, 120) if url else "the server"
    if isinstance(exc, _Undecodable):
        return InvalidResponseError(
            f"{host} sent a body that could not be decoded: {printable(str(exc), 160)}.",
            hint="Report it to the provider; a proxy may be corrupting answers.",
        ), False
    if isinstance(exc, _AnswerTooLarge):
        if exc.announced:
            size = f"announced {exc.size} bytes"
        elif exc.encoded:
            size = f"sent an answer that decodes ({exc.encoded}) to more than {exc.limit} bytes"
        else:
            size = f"sent more than {exc.limit} bytes"
        return InvalidResponseError(
            f"{host} {size}: answer too large; a token answer is a few hundred bytes (limit {exc.limit}).",
            hint="This is not a token endpoint's answer: check the URL. Raise max_response_bytes only if you know why.",
        ), False
    if isinstance(exc, _DeadlineExceeded):
        err = RequestTimeoutError(
            f"{host} had not finished its answer after {exc.seconds:.1f} s (past the attempt's deadline); "
            "it kept the connection busy, sending too slowly.",
            hint="The provider or a proxy is stalling: retry later, or raise the timeout / deadline.",
        )
        err.phase = "total"
        return err, False
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: ("connect", timeout.connect),
            httpx.ReadTimeout: ("read", timeout.read),
            httpx.WriteTimeout: ("write", timeout.write),
            httpx.PoolTimeout: ("pool", timeout.pool),
        }.get(type(exc), ("", None))
        name, seconds = phase
        limit = f" within {seconds:g} s" if seconds is not None else ""
        if name == "connect":
            err = RequestTimeoutError(
                f"Could not connect to {host}{limit} (connect timeout).",
                hint="Check the host and port, your network, VPN or firewall, and whether the provider must "
                "whitelist your IP address.",
            )
        elif name == "read":
            err = RequestTimeoutError(
                f"{host} accepted the request but sent no complete answer{limit} (read timeout).",
                hint="The provider is slow or stuck: retry later, or raise the timeout (timeout=... / --timeout).",
            )
        else:
            err = RequestTimeoutError(
                f"The request to {host} timed out ({name or 'timeout'}).",
                hint="Retry later, or raise the timeout.",
            )
        err.phase = name
        return err, name in ("connect", "pool")
    if isinstance(exc, httpx.DecodingError):
        return InvalidResponseError(
            f"{host} sent a body that could not be decoded (bad Content-Encoding).",
            hint="Report it to the provider; a proxy may be corrupting answers.",
        ), False
    if any(isinstance(e, socket.gaierror) for e in chain) or _DNS_TEXT.search(text):
        return DNSError(
            f"The host name {host} did not resolve (DNS).",
            hint="Check the spelling of the host; stage hosts may only resolve on the provider's VPN or network.",
        ), False
    if any(isinstance(e, (ssl.SSLError, ssl.CertificateError)) for e in chain) or (
        isinstance(exc, httpx.ConnectError) and _TLS_TEXT.search(text)
    ):
        return TLSError(
            f"The TLS handshake with {host} failed: {_excerpt(str(exc), 160)}",
            hint="The certificate is not trusted or does not match the host: check the system CA bundle (or "
            "verify=path/to/ca.pem), and whether a proxy intercepts TLS. Never switch verification off "
            "against a real provider.",
        ), False
    if isinstance(exc, httpx.ConnectError):
        if any(isinstance(e, ConnectionRefusedError) for e in chain) or _REFUSED_TEXT.search(text):
            return ConnectionFailedError(
                f"Connection to {host} refused: nothing is listening on port {httpx.URL(url).port or (443 if url.startswith('https') else 80)}.",
                hint="Check the URL and port; for the sandbox, check that it is running.",
            ), True
        return ConnectionFailedError(
            f"Could not connect to {host}: {_excerpt(str(exc), 160)}",
            hint="Check the host, port, network, VPN and firewall.",
        ), True
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        return ConnectionFailedError(
            f"{host} closed the connection without a complete answer ({_excerpt(str(exc), 120) or type(exc).__name__}).",
            hint="Usually transient: retry. If it persists, a firewall may be dropping your requests "
            "(ask the provider about IP whitelisting).",
        ), True
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigError(
            f"Cannot send to {printable(mask_url(url), 200)}: {printable(str(exc), 200)}.",
            hint="Use an http:// or https:// URL.",
        ), False
    return TransportError(
        f"The request to {host} failed: {type(exc).__name__}: {_excerpt(str(exc), 160)}",
        hint="Check the URL and your network.",
    ), False




# --- timing the phases of an attempt ---------------------------------------------------


class _Phases:
    """Collects httpx/httpcore trace events (``connection.connect_tcp.started`` ...) as perf_counter marks."""

    __slots__ = ("marks",)

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def __call__(self, name: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started" / "http11.receive_response_headers.complete": drop the prefix so
        # HTTP/1.1 and HTTP/2 events land on the same keys.
        self.marks.setdefault(name.split(".", 1)[-1], time.perf_counter())

    async def atrace(self, name: str, info: dict[str, Any]) -> None:
        self(name, info)

    def span(self, start: str, end: str) -> float | None:
        a = self.marks.get(start)
        b = self.marks.get(end + ".complete", self.marks.get(end + ".failed"))
        return None if a is None or b is None else (b - a) * 1000.0

    def durations(self, fallback_wait: float | None, fallback_read: float | None) -> dict[str, float | None]:
        if not self.marks:  # a mock transport sends no trace events: time what we can see ourselves
            return {"connect_ms": None, "tls_ms": None, "wait_ms": fallback_wait, "read_ms": fallback_read}
        return {
            "connect_ms": self.span("connect_tcp.started", "connect_tcp"),
            "tls_ms": self.span("start_tls.started", "start_tls"),
            "wait_ms": self.span("send_request_headers.started", "receive_response_headers"),
            "read_ms": self.span("receive_response_body.started", "receive_response_body"),
        }




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


# --- clock offsets --------------------------------------------------------------------------


def server_clock_offset(
    server_timestamp: str | None, sent_at: datetime | None, received_at: datetime | None = None
) -> timedelta | None:
    """Server clock minus client clock, from the response X-TIMESTAMP and the request's midpoint."""
    if not server_timestamp or sent_at is None:
        return None
    if len(server_timestamp) > 64:  # no timestamp is this long; do not parse what a server dumps here
        return None
    try:
        server = parse_timestamp(server_timestamp).value
    except (SnapbookError, ValueError, OverflowError):
        return None
    midpoint = sent_at + ((received_at or sent_at) - sent_at) / 2
    try:
        return server - midpoint
    except (OverflowError, ValueError):
        return None


_FRACTION = re.compile(r"T\d\d:\d\d:\d\d(?:[.,](\d+))?")


def clock_offset_uncertainty(
    server_timestamp: str | None, sent_at: datetime | None, received_at: datetime | None = None
) -> timedelta | None:
    """Half the width of the range the true offset lies in: half the X-TIMESTAMP's resolution plus half the round trip.

    X-TIMESTAMP usually has whole seconds, so a server on the same host can look 0.9 s behind;
    :func:`~snapbook.log.format_clock_offset` shows the offset with this (``"0 s ± 1 s"``).
    """
    if not server_timestamp or sent_at is None or len(server_timestamp) > 64:
        return None
    m = _FRACTION.search(server_timestamp)
    digits = len(m.group(1)) if m and m.group(1) else 0
    resolution = 10.0 ** -min(digits, 6)
    round_trip = ((received_at or sent_at) - sent_at).total_seconds()
    return timedelta(seconds=resolution / 2 + max(0.0, round_trip) / 2)


# --- one attempt -----------------------------------------------------------------------------


class SignedRequest(Protocol):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timestamp: str

    @property
    def signature(self) -> str: ...


ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Answer:
    """What came back, read within the limits: status, headers, decoded body, and when."""

    status: int
    headers: httpx.Headers | Mapping[str, str]
    body: bytes
    sent_at: datetime
    received_at: datetime
    latency_ms: float
    attempt: int
    url: str


class CallKind(Protocol[ResultT]):
    """A kind of SNAP call: how to sign a request, how to read its answer."""

    def prepare(self, started_at: datetime) -> SignedRequest: ...

    def read(self, answer: Answer) -> ResultT: ...


@dataclass
class Attempt:
    number: int
    request: SignedRequest
    started_at: datetime
    phases: _Phases


@dataclass
class _Outcome(Generic[ResultT]):
    result: ResultT | None = None
    error: SnapbookError | None = None
    cause: BaseException | None = None
    delay: float | None = None


class Exchange(Generic[ResultT]):
    """Sends one kind of call to one endpoint: limits, retries, error mapping, one log row per attempt."""

    def __init__(
        self,
        endpoint: Endpoint,
        call: CallKind[ResultT],
        *,
        client_key: str | None,
        clock: Clock,
        retry: RetryPolicy,
        log: RequestLog,
        timeout: httpx.Timeout,
        deadline: float | None,
        max_response_bytes: int,
        rng: random.Random,
    ) -> None:
        self.endpoint = endpoint
        self.call = call
        self.client_key = client_key
        self.clock = clock
        self.retry = retry
        self.log = log
        self.timeout = timeout
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.rng = rng

    # --- the retry loop -----------------------------------------------------------------

    def run(self, http: httpx.Client, sleep: Callable[[float], None]) -> ResultT:
        """Attempts until one succeeds or the policy gives up (then raises its typed error)."""
        number = 0
        while True:
            number += 1
            outcome = self.send(http, self.prepare(number))
            if outcome.error is None:
                return outcome.result  # type: ignore[return-value]
            if outcome.delay is None:
                raise outcome.error from outcome.cause
            sleep(outcome.delay)

    async def arun(self, http: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]]) -> ResultT:
        number = 0
        while True:
            number += 1
            outcome = await self.asend(http, self.prepare(number))
            if outcome.error is None:
                return outcome.result  # type: ignore[return-value]
            if outcome.delay is None:
                raise outcome.error from outcome.cause
            await sleep(outcome.delay)

    def prepare(self, number: int) -> Attempt:
        started_at = self.clock()
        return Attempt(number, self.call.prepare(started_at), started_at, _Phases())

    # --- I/O ------------------------------------------------------------------------------

    def _build(self, http: httpx.Client | httpx.AsyncClient, att: Attempt, trace: Any) -> httpx.Request:
        return http.build_request(
            att.request.method,
            att.request.url,
            headers=att.request.headers,
            content=att.request.body,
            extensions={"trace": trace},
        )

    def send(self, http: httpx.Client, att: Attempt) -> _Outcome[ResultT]:
        """One attempt on a sync client (built with :func:`client_options`), within the deadline."""
        req = self._build(http, att, att.phases)
        t0 = time.perf_counter()
        deadline = None if self.deadline is None else t0 + self.deadline
        status: int | None = None
        _attempt_deadline.at, _attempt_deadline.hit = deadline, False
        try:
            response = http.send(req, stream=True)
            t_headers = time.perf_counter()
            status = response.status_code
            try:
                _check_declared_size(response, self.max_response_bytes)
                body = _body_for(response, self.max_response_bytes)
                for chunk in [] if response.is_stream_consumed else response.iter_raw():
                    body.feed(chunk)
                    # An injected transport (a mock) has no deadline backend: check between chunks too.
                    if deadline is not None and time.perf_counter() > deadline:
                        raise _DeadlineExceeded(0.0)
                data = body.finish()
            finally:
                response.close()
            t1 = time.perf_counter()
        except (httpx.HTTPError, _AnswerTooLarge, _DeadlineExceeded, _Undecodable) as exc:
            hit = getattr(_attempt_deadline, "hit", False)
            if isinstance(exc, _DeadlineExceeded) or (hit and isinstance(exc, httpx.TimeoutException)):
                exc = _DeadlineExceeded(time.perf_counter() - t0)
            return self.on_error(att, exc, t0, time.perf_counter(), status)
        finally:
            _attempt_deadline.at = None
        return self.on_response(att, response.status_code, response.headers, data, t0, t_headers, t1)

    async def asend(self, http: httpx.AsyncClient, att: Attempt) -> _Outcome[ResultT]:
        """One attempt on an async client; the deadline covers the whole attempt, headers included."""
        req = self._build(http, att, att.phases.atrace)
        t0 = time.perf_counter()
        marks: dict[str, Any] = {}

        async def exchange() -> tuple[httpx.Response, bytes]:
            response = await http.send(req, stream=True)
            marks["t_headers"], marks["status"] = time.perf_counter(), response.status_code
            try:
                _check_declared_size(response, self.max_response_bytes)
                body = _body_for(response, self.max_response_bytes)
                if not response.is_stream_consumed:
                    async for chunk in response.aiter_raw():
                        body.feed(chunk)
                        await asyncio.sleep(0)  # a mock stream never yields: let the deadline's timer run
                data = body.finish()
            finally:
                await response.aclose()
            return response, data

        try:
            response, data = await asyncio.wait_for(exchange(), self.deadline)
            t1 = time.perf_counter()
        except asyncio.TimeoutError:
            exc = _DeadlineExceeded(time.perf_counter() - t0)
            return self.on_error(att, exc, t0, time.perf_counter(), marks.get("status"))
        except (httpx.HTTPError, _AnswerTooLarge, _Undecodable) as exc:
            return self.on_error(att, exc, t0, time.perf_counter(), marks.get("status"))
        return self.on_response(att, response.status_code, response.headers, data, t0, marks["t_headers"], t1)

    # --- what an attempt's result means -----------------------------------------------------

    def on_response(
        self, att: Attempt, status: int, headers: Any, body: bytes, t0: float, t_headers: float, t1: float
    ) -> _Outcome[ResultT]:
        latency = (t1 - t0) * 1000.0
        received_at = att.started_at + timedelta(seconds=t1 - t0)
        h = _Headers(headers)
        result: ResultT | None = None
        error: SnapbookError | None = None
        answer = Answer(status, headers, body, att.started_at, received_at, latency, att.number, self.endpoint.url)
        try:
            result = self.call.read(answer)
        except (SnapResponseError, InvalidResponseError) as exc:
            error = exc
        delay = None
        if error is not None and status in self.retry.statuses and att.number < self.retry.max_attempts:
            retry_after = parse_retry_after(h.get("retry-after"), received_at)
            if retry_after is None:
                delay = self.retry.backoff(att.number, self.rng)
            elif retry_after <= self.retry.max_retry_after:
                delay = retry_after
            else:
                error.hint = (error.hint + " " if error.hint else "") + (
                    f"The provider asked to wait {retry_after:.0f} s (Retry-After), longer than "
                    f"max_retry_after={self.retry.max_retry_after:g} s: try again later."
                )
        if result is not None:
            code, message = getattr(result, "response_code", None), getattr(result, "response_message", None)
        else:
            code, message = _peek_code(error, body)
        server_ts = h.get("x-timestamp")
        offset = server_clock_offset(server_ts, att.started_at, received_at)
        uncertainty = clock_offset_uncertainty(server_ts, att.started_at, received_at) if offset is not None else None
        secret = getattr(result, "access_token", None) if result is not None else None
        self._record(
            att,
            outcome=SUCCESS
            if result is not None
            else (REFUSED if isinstance(error, SnapResponseError) else INVALID_RESPONSE),
            latency_ms=latency,
            http_status=status,
            response_code=None if code is None else _clip(code, 32),
            response_message=None if message is None else _clip(message, 200),
            **att.phases.durations((t_headers - t0) * 1000.0, (t1 - t_headers) * 1000.0),
            response_bytes=len(body),
            server_timestamp=None if server_ts is None else _clip(server_ts, 64),
            clock_offset_s=None if offset is None else offset.total_seconds(),
            clock_offset_uncertainty_s=None if uncertainty is None else uncertainty.total_seconds(),
            error=error,
            will_retry=delay is not None,
            token=secret if isinstance(secret, str) else None,
        )
        if error is None:
            return _Outcome(result)
        return _Outcome(None, self._final(error, att) if delay is None else error, None, delay)

    def on_error(
        self, att: Attempt, exc: BaseException, t0: float, t1: float, status: int | None = None
    ) -> _Outcome[ResultT]:
        error, transient = transport_error(exc, self.endpoint.url, self.timeout)
        delay = (
            self.retry.backoff(att.number, self.rng)
            if transient and att.number < self.retry.max_attempts
            else None
        )
        self._record(
            att,
            outcome=INVALID_RESPONSE if isinstance(error, InvalidResponseError) else TRANSPORT_ERROR,
            latency_ms=(t1 - t0) * 1000.0,
            http_status=status,
            **att.phases.durations(None, None),
            error=error,
            will_retry=delay is not None,
        )
        return _Outcome(None, self._final(error, att) if delay is None else error, exc, delay)

    def _final(self, error: SnapbookError, att: Attempt) -> SnapbookError:
        if att.number > 1:
            error.message = f"{error.message} (attempt {att.number}; giving up)"
            error.args = (error.message,)
        return error

    def _record(
        self,
        att: Attempt,
        *,
        outcome: str,
        error: SnapbookError | None = None,
        token: str | None = None,
        **values: Any,
    ) -> None:
        e = self.endpoint
        self.log.append(
            LogRecord(
                time=att.started_at.astimezone(timezone.utc),
                environment=e.environment,
                product=e.product,
                endpoint=e.name,
                url=mask_url(e.url),
                attempt=att.number,
                outcome=outcome,
                request_bytes=len(att.request.body),
                error_type=None if error is None else type(error).__name__,
                error=None if error is None else _clip(error.message, 500),
                client_key=self.client_key,
                timestamp=att.request.timestamp,
                signature=mask(att.request.signature),
                token=None if token is None else mask(token),
                **values,
            )
        )


def _peek_code(error: SnapbookError | None, body: bytes) -> tuple[str | None, str | None]:
    if isinstance(error, SnapResponseError):
        return error.response_code, error.response_message
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code, message = data.get("responseCode"), data.get("responseMessage")
    return (None if code is None else str(code)), (None if message is None else str(message))
