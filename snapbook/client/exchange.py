"""One SNAP HTTP exchange: the single path every signed call takes to the network and back.

Every rule about hostile peers is applied here (the pieces live beside it: :mod:`.limits`,
:mod:`.failures`, :mod:`.retry`), so no kind of call can forget one:

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
one, logged masked). A call kind may also define ``may_retry(status, exc)``: asked before a retry the
:class:`RetryPolicy` allows (``status`` of the answer, or ``exc`` the transport failure); returning
False keeps a non-idempotent call from being sent twice. ``service_code`` (an attribute) names its
SNAP service in the log rows when the answer carries no responseCode.
Then ``Exchange(endpoint, call, ...).run(httpx_client, sleep)`` (or
``await ....arun(...)``) does the rest. Build the ``httpx`` client with
:func:`.limits.client_options` (and pass a sync one through :func:`.limits.bound_sync_client`,
so its transports enforce the deadline).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from ..endpoints import Endpoint
from ..errors import ConfigError, InvalidResponseError, SnapbookError, SnapResponseError
from ..log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR, LogRecord, RequestLog
from ..masking import mask, mask_url, printable
from ..signing import Clock, parse_timestamp
from ._shown import _clip, _Headers
from .failures import transport_error
from .limits import (
    _attempt_deadline,
    _AnswerTooLarge,
    _body_for,
    _check_declared_size,
    _DeadlineExceeded,
    _Undecodable,
)
from .retry import RetryPolicy, parse_retry_after

__all__ = [
    "Answer",
    "Attempt",
    "CallKind",
    "Exchange",
    "SignedRequest",
    "check_target",
    "clock_offset_uncertainty",
    "resolve_target",
    "server_clock_offset",
]



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
        if (
            error is not None
            and status in self.retry.statuses
            and att.number < self.retry.max_attempts
            and self._may_retry(status, None)
        ):
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
            if transient and att.number < self.retry.max_attempts and self._may_retry(status, exc)
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

    def _may_retry(self, status: int | None, exc: BaseException | None) -> bool:
        allowed = getattr(self.call, "may_retry", None)
        return True if allowed is None else bool(allowed(status, exc))

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
        code = values.get("response_code")
        # The answer's responseCode names the service; without one, the call kind may know it.
        if isinstance(code, str) and len(code) == 7 and code.isdigit():
            service = code[3:5]
        else:
            service = getattr(self.call, "service_code", None)
        external_id = att.request.headers.get("X-EXTERNAL-ID")
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
                service_code=service,
                method=att.request.method,
                path=_clip(_sent_path(att.request), 200),
                external_id=None if external_id is None else _clip(external_id, 40),
                **values,
            )
        )


def _sent_path(request: SignedRequest) -> str:
    """The path and query a request line carries; a call kind that knows it (``path``) saves a URL parse."""
    known = getattr(request, "path", None)
    if isinstance(known, str):
        return known
    return httpx.URL(request.url).raw_path.decode("ascii", "replace")


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
