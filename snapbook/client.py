"""The B2B access-token client: sign, send, read the answer, retry what is transient, cache.

>>> with TokenClient("payment-stage", "MCP00000001", "private.pem") as client:   # doctest: +SKIP
...     token = client.get_token()          # cached until 60 s before it expires
...     headers = token.authorization_header()

Two pure functions hold the protocol, so the sync and async clients cannot drift apart:
:func:`build_token_request` (one timestamp string, used for the header and the signature)
and :func:`parse_token_response` (status, headers, body -> :class:`AccessToken` or a typed
error). :class:`TokenClient` and :class:`AsyncTokenClient` add only I/O: an injectable
``httpx`` transport and clock, timeouts, retries and a token cache shared by concurrent
callers. Every attempt becomes one row of a :class:`~snapbook.log.RequestLog`.

Errors (all :class:`~snapbook.errors.SnapbookError`):

- :class:`~snapbook.errors.SnapResponseError`: the provider answered and refused
  (HTTP status, responseCode, its meaning and a hint).
- :class:`~snapbook.errors.TransportError`: no answer. Subclasses say why:
  :class:`~snapbook.errors.RequestTimeoutError`, :class:`~snapbook.errors.ConnectionFailedError`,
  :class:`~snapbook.errors.TLSError`, :class:`~snapbook.errors.DNSError`.
- :class:`~snapbook.errors.InvalidResponseError`: an answer that is not a token response
  (an HTML page, non-JSON, truncated JSON, JSON without the mandatory fields).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import json
import math
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Union

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from .codes import TOKEN_SERVICE, describe_status, parse_code
from .endpoints import Endpoint, resolve
from .errors import (
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
from .keys import private_key_from
from .log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR, LogRecord, RequestLog
from .masking import mask, mask_headers
from .signing import Clock, check_client_key, make_timestamp, parse_timestamp, signed_headers, system_clock

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "AccessToken",
    "AsyncTokenClient",
    "RetryPolicy",
    "TokenClient",
    "TokenRequest",
    "build_token_request",
    "parse_retry_after",
    "parse_token_response",
    "server_clock_offset",
]

#: 5 s to connect, 10 s for each read or write: a healthy token endpoint answers in well under a second.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

PrivateKeyLike = Union[rsa.RSAPrivateKey, str, bytes, os.PathLike]
EndpointLike = Union[Endpoint, str]

_MANDATORY = ("accessToken", "tokenType", "expiresIn")
_KNOWN_FIELDS = frozenset(
    {"responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn", "additionalInfo"}
)
# A clock difference this large makes most providers reject the signature's timestamp.
_SKEW_WARNING = timedelta(minutes=2)
#: A token answer is a few hundred bytes (accessToken <= 2048 chars); 1 MiB leaves room for any error page.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
# expiresIn beyond ~31 years is not a token lifetime (and would overflow datetime arithmetic).
_MAX_EXPIRES_IN = 999_999_999


def _clip(value: Any, limit: int = 80) -> str:
    """``value`` as text for a message or a log row, cut to ``limit`` characters: servers can send anything."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header_value(value: str, what: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ConfigError(
            f"The {what} contains a character that cannot travel in an HTTP header (non-ASCII or control).",
            hint=f"Use the {what} exactly as the provider issued it: printable ASCII, no spaces around it.",
        )
    return value


# --- the request ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """A signed token request, ready to send. ``repr`` masks the signature."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes
    timestamp: str

    @property
    def signature(self) -> str:
        return self.headers["X-SIGNATURE"]

    def masked_headers(self) -> dict[str, str]:
        return mask_headers(self.headers)

    def __repr__(self) -> str:
        return (
            f"TokenRequest({self.method} {self.url}, headers={self.masked_headers()!r}, "
            f"body={self.body.decode('utf-8', 'replace')!r})"
        )


def build_token_request(
    endpoint: EndpointLike,
    client_key: str,
    private_key: rsa.RSAPrivateKey,
    *,
    timestamp: str | None = None,
    clock: Clock | datetime | None = None,
    origin: str | None = None,
    additional_info: Mapping[str, Any] | None = None,
) -> TokenRequest:
    """A signed ``POST`` for a B2B token: one X-TIMESTAMP string, used for the header and the signature.

    ``timestamp`` defaults to now (``clock``) in +07:00. ``origin`` adds the optional ORIGIN
    header (the domain registered with the provider).
    """
    url = resolve(endpoint).url
    check_client_key(client_key)  # before the RSA operation, not after
    ts = timestamp if timestamp is not None else make_timestamp(clock)
    headers = signed_headers(private_key, client_key, ts)
    if origin:
        headers["ORIGIN"] = _header_value(origin, "ORIGIN")
    body = json.dumps(
        {"grantType": "client_credentials", "additionalInfo": dict(additional_info or {})},
        separators=(",", ":"),
    ).encode("utf-8")
    return TokenRequest("POST", url, headers, body, ts)


# --- the answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    """A B2B access token and what came with it. The token itself shows masked in ``repr``.

    ``issued_at`` is the client's clock when the request was sent, so ``expires_at`` is
    never later than the provider's own expiry. ``clock_offset`` is the server's clock minus
    ours (from its X-TIMESTAMP; resolution about one second). ``notes`` lists where the
    answer departs from the standard without being unusable.
    """

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    issued_at: datetime
    expires_at: datetime
    response_code: str | None = None
    response_message: str | None = None
    http_status: int = 200
    server_timestamp: str | None = None
    clock_offset: timedelta | None = None
    url: str = ""
    latency_ms: float | None = None
    attempt: int = 1
    additional_info: Any = None
    notes: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def masked(self) -> str:
        return mask(self.access_token)

    @property
    def scheme(self) -> str:
        """The Authorization scheme: ``Bearer`` (also for the observed ``BearerToken``), else tokenType."""
        return "Bearer" if self.token_type.lower().startswith("bearer") else self.token_type

    def authorization_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for the transactional requests."""
        return {"Authorization": f"{self.scheme} {self.access_token}"}

    def remaining(self, now: datetime | None = None) -> timedelta:
        return self.expires_at - (now or system_clock())

    def is_expired(self, now: datetime | None = None, *, margin: float = 0.0) -> bool:
        """True when fewer than ``margin`` seconds of life remain."""
        return self.remaining(now) <= timedelta(seconds=margin)

    def response_json(self, *, show_token: bool = False) -> dict[str, Any]:
        """The response body as received, the token masked unless ``show_token``."""
        if show_token:
            return dict(self.body)
        secret, masked = self.access_token, self.masked

        def scrub(value: Any) -> Any:  # the token may be echoed anywhere in the body
            if isinstance(value, str):
                return value.replace(secret, masked) if secret else value
            if isinstance(value, dict):
                return {k: scrub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [scrub(v) for v in value]
            return value

        out = scrub(dict(self.body))
        if "responseMessage" in out and self.response_message is not None:
            out["responseMessage"] = self.response_message
        return out

    def __repr__(self) -> str:
        offset = "" if self.clock_offset is None else f", clock_offset={_seconds(self.clock_offset)}"
        return (
            f"AccessToken(token={self.masked!r}, token_type={self.token_type!r}, expires_in={self.expires_in}, "
            f"expires_at={self.expires_at.isoformat()!r}, response_code={self.response_code!r}{offset})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("access token", self.masked),
            ("token type", f"{self.token_type} (Authorization: {self.scheme} …)"),
            ("expires in", f"{self.expires_in} s, at {self.expires_at.isoformat()}"),
            ("response", f"{self.response_code or ''} {self.response_message or ''}".strip()),
            ("server X-TIMESTAMP", self.server_timestamp or "(none)"),
            (
                "clock offset (server - client)",
                "" if self.clock_offset is None else _seconds(self.clock_offset),
            ),
            (
                "latency",
                "" if self.latency_ms is None else f"{self.latency_ms:.1f} ms (attempt {self.attempt})",
            ),
            *(("note", n) for n in self.notes),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():+.1f} s"


class _Headers:
    """Case-insensitive read access to any headers mapping (httpx.Headers, dict, list of pairs)."""

    def __init__(self, headers: Mapping[str, str] | Any) -> None:
        items = headers.items() if hasattr(headers, "items") else headers
        self._data = {str(k).lower(): str(v) for k, v in items}

    def get(self, name: str) -> str | None:
        return self._data.get(name.lower())


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


def parse_token_response(
    status: int,
    headers: Mapping[str, str] | Any,
    body: bytes | str,
    *,
    sent_at: datetime | None = None,
    received_at: datetime | None = None,
    url: str = "",
    latency_ms: float | None = None,
    attempt: int = 1,
) -> AccessToken:
    """Read a token endpoint's answer: an :class:`AccessToken`, or the typed error saying what went wrong.

    Tolerates what real providers send (tokenType ``BearerToken``, expiresIn as a number,
    extra fields, no responseMessage) and records each such departure in ``notes``. Raises
    :class:`SnapResponseError` when the provider refused (also on HTTP 200 with a failure
    responseCode) and :class:`InvalidResponseError` when the answer is not a token response.
    """
    h = _Headers(headers)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    where = url or "the token endpoint"
    server_ts = h.get("x-timestamp")
    offset = server_clock_offset(server_ts, sent_at, received_at)

    if 300 <= status < 400:
        location = _clip(h.get("location") or "(no Location header)", 200)
        raise InvalidResponseError(
            f"{where} answered HTTP {status}, a redirect to {location}, instead of a token.",
            hint="Use the final URL as the endpoint (often http -> https, or a missing path prefix); "
            "POST requests are not followed across redirects.",
        )
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise _not_json(where, status, h.get("content-type") or "", raw) from None
    except RecursionError:
        raise InvalidResponseError(
            f"{where} answered HTTP {status} with JSON nested too deeply to read ({len(raw)} bytes).",
            hint="No token response looks like this: check the URL, and report the answer to the provider.",
        ) from None
    if data is None:
        raise InvalidResponseError(
            f"{where} answered HTTP {status} with an empty body, not a token response.",
            hint=_status_hint(status, "Retry later; if it persists, check the URL with the provider."),
        )
    if not isinstance(data, dict):
        raise InvalidResponseError(
            f"{where} answered HTTP {status} with a JSON {type(data).__name__}, not an object.",
            hint="A SNAP token response is a JSON object with responseCode, accessToken, tokenType and expiresIn.",
        )

    code = data.get("responseCode")
    code = None if code is None else str(code)
    message = data.get("responseMessage")
    # A provider may echo a token or signature in its message: mask anything token-like at once,
    # so no repr, log row or DataFrame downstream ever holds it.
    message = None if message is None else _LONG_TOKEN.sub(lambda m: mask(m.group(0)), str(message))
    refused_by_code = code is not None and not code.startswith("2")
    if not (200 <= status < 300) or refused_by_code:
        raise _refusal(where, status, code, message, data, offset)

    missing = [name for name in _MANDATORY if data.get(name) in (None, "")]
    if missing:
        present = _clip(", ".join(sorted(map(str, data))) or "none", 200)
        raise InvalidResponseError(
            f"{where} answered HTTP {status}{f' {_clip(code, 20)}' if code else ''} but the JSON lacks the mandatory "
            f"field(s) {', '.join(missing)} (fields present: {present}).",
            hint="A token response needs accessToken, tokenType and expiresIn; check that this URL is the "
            "B2B token endpoint, and report the answer to the provider.",
        )
    token, token_type = data["accessToken"], data["tokenType"]
    if not isinstance(token, str):
        raise InvalidResponseError(
            f"{where} sent accessToken as a JSON {type(token).__name__}, not a string.",
            hint="Report the answer to the provider; a token must be a string.",
        )
    if not isinstance(token_type, str):
        raise InvalidResponseError(
            f"{where} sent tokenType as a JSON {type(token_type).__name__}, not a string.",
            hint="Report the answer to the provider; tokenType must be 'Bearer' or 'Mac'.",
        )
    notes: list[str] = []
    expires_in = _expires_in(data["expiresIn"], where, notes)
    if token_type not in ("Bearer", "Mac"):
        notes.append(
            f"tokenType {_clip(token_type, 40)!r} is not one of the standard's values 'Bearer' or 'Mac'"
        )
    if code is None:
        notes.append("no responseCode (optional on success, but most providers send 2007300)")
    else:
        parsed = parse_code(code)
        if parsed.service_code != TOKEN_SERVICE:
            notes.append(f"responseCode {_clip(code, 20)} is not a service-73 (Access Token B2B) code")
        if parsed.http_status is not None and parsed.http_status != status:
            notes.append(f"responseCode {code} says HTTP {parsed.http_status} but the status was {status}")
    if message is None:
        notes.append("no responseMessage (optional on success)")
    extra = sorted(set(data) - _KNOWN_FIELDS)
    if extra:
        notes.append(_clip("fields beyond the standard: " + ", ".join(map(str, extra)), 200))
    if server_ts is None:
        notes.append("no X-TIMESTAMP response header (mandatory), so the clock offset is unknown")
    elif offset is None:
        notes.append(f"the X-TIMESTAMP response header {_clip(server_ts, 40)!r} is unreadable")

    issued = sent_at or system_clock()
    return AccessToken(
        access_token=token,
        token_type=token_type,
        expires_in=expires_in,
        issued_at=issued,
        expires_at=issued + timedelta(seconds=expires_in),
        response_code=code,
        response_message=message,
        http_status=status,
        server_timestamp=server_ts,
        clock_offset=offset,
        url=url,
        latency_ms=latency_ms,
        attempt=attempt,
        additional_info=data.get("additionalInfo"),
        notes=tuple(notes),
        body=data,
    )


def _expires_in(value: Any, where: str, notes: list[str]) -> int:
    seconds: int | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = value
        notes.append('expiresIn sent as a JSON number; the standard says a string ("900")')
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
        notes.append('expiresIn sent as a JSON number; the standard says a string ("900")')
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{1,9}\s*", value):
        seconds = int(value)
    if seconds is None or not 0 < seconds <= _MAX_EXPIRES_IN:
        raise InvalidResponseError(
            f"{where} sent expiresIn={_clip(repr(value), 40)}, which is not a plausible number of seconds.",
            hint='expiresIn must be seconds, such as "900"; report the answer to the provider.',
        )
    return seconds


def _refusal(
    where: str,
    status: int,
    code: str | None,
    message: str | None,
    data: dict[str, Any],
    offset: timedelta | None,
) -> SnapResponseError:
    if code is not None:
        parsed = parse_code(code, message)
        meaning, hint = parsed.meaning, parsed.hint
        what = f"HTTP {status}, responseCode {_clip(code, 20)}" + (
            f" {_clip(message, 200)!r}" if message else ""
        )
    else:
        meaning, hint = describe_status(status)
        detail = {k: data[k] for k in ("error", "message", "status", "path") if k in data}
        what = f"HTTP {status} without a SNAP responseCode" + (
            f" ({_excerpt(json.dumps(detail, default=str))})" if detail else ""
        )
    if offset is not None and abs(offset) > _SKEW_WARNING and status in (400, 401):
        hint += (
            f" Your clock differs from the provider's by {offset.total_seconds():+.0f} s: "
            "synchronise it (NTP), since stale timestamps are refused."
        )
    return SnapResponseError(
        f"{where} refused the token request: {what}. {meaning}",
        hint=hint,
        http_status=status,
        response_code=code,
        response_message=message,
        meaning=meaning,
    )


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=._\-]{24,}")


def _excerpt(text: str, limit: int = 120) -> str:
    """A short, single-line excerpt with anything token-like masked."""
    text = " ".join(text.split())
    text = _LONG_TOKEN.sub(lambda m: mask(m.group(0)), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_hint(status: int, default: str) -> str:
    if status >= 500:
        return "The provider, or a gateway in front of it, is failing: retry later; if it persists, contact the provider."
    if status in (401, 403):
        return "A firewall or gateway refused the request before the SNAP service: ask the provider whether your IP must be whitelisted."
    if status == 404:
        return "Nothing answers at this path: check the token URL for this product and environment."
    return default


def _not_json(where: str, status: int, content_type: str, raw: bytes) -> InvalidResponseError:
    head = raw[:2048].lstrip().lower()
    if b"<html" in head or head.startswith(b"<!doctype") or "html" in content_type.lower():
        m = _TITLE.search(raw[:8192])
        title = f" (title {_excerpt(m.group(1).decode('utf-8', 'replace'), 60)!r})" if m else ""
        return InvalidResponseError(
            f"{where} answered HTTP {status} with an HTML page{title}, not JSON: a web server, gateway or "
            "firewall answered instead of the SNAP token service.",
            hint=_status_hint(
                status, "Check that the URL is the token endpoint (…/access-token/b2b), not a web page."
            ),
        )
    if head[:1] in (b"{", b"["):
        return InvalidResponseError(
            f"{where} answered HTTP {status} with JSON that does not parse ({len(raw)} bytes, probably cut off).",
            hint="Retry; if it repeats, a proxy may be truncating answers: send the provider the time and your X-TIMESTAMP.",
        )
    text = raw[:200].decode("utf-8", "replace")
    return InvalidResponseError(
        f"{where} answered HTTP {status} with a body that is not JSON (Content-Type {_clip(content_type or 'none', 60)}, "
        f"{len(raw)} bytes: {_excerpt(text, 60)!r}).",
        hint=_status_hint(status, "Check that the URL is the SNAP token endpoint."),
    )


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


class _AnswerTooLarge(Exception):
    def __init__(self, size: int, limit: int, announced: bool) -> None:
        super().__init__(size)
        self.size, self.limit, self.announced = size, limit, announced


class _DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _transport_error(exc: BaseException, url: str, timeout: httpx.Timeout) -> tuple[SnapbookError, bool]:
    """The snapbook error for a failed exchange, and whether it is transient (worth a retry)."""
    host = httpx.URL(url).host if url else "the server"
    if isinstance(exc, _AnswerTooLarge):
        size = f"announced {exc.size} bytes" if exc.announced else f"sent more than {exc.limit} bytes"
        return InvalidResponseError(
            f"{host} {size}; a token answer is a few hundred bytes (limit {exc.limit}).",
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
        return ConfigError(f"Cannot send to {url}: {exc}.", hint="Use an http:// or https:// URL."), False
    return TransportError(
        f"The request to {host} failed: {type(exc).__name__}: {_excerpt(str(exc), 160)}",
        hint="Check the URL and your network.",
    ), False


# --- one attempt, shared by the sync and async clients -----------------------------------


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


@dataclass
class _Attempt:
    number: int
    request: TokenRequest
    started_at: datetime
    phases: _Phases


@dataclass
class _Outcome:
    token: AccessToken | None = None
    error: SnapbookError | None = None
    cause: BaseException | None = None
    delay: float | None = None


class _Core:
    """Everything about an attempt except the I/O: signing, reading, retry decisions, log rows."""

    def __init__(
        self,
        endpoint: Endpoint,
        client_key: str,
        private_key: rsa.RSAPrivateKey,
        *,
        clock: Clock,
        origin: str | None,
        retry: RetryPolicy,
        log: RequestLog,
        timeout: httpx.Timeout,
        rng: random.Random,
        additional_info: Mapping[str, Any] | None,
    ) -> None:
        self.endpoint = endpoint
        self.client_key = client_key
        self.private_key = private_key
        self.clock = clock
        self.origin = origin
        self.retry = retry
        self.log = log
        self.timeout = timeout
        self.rng = rng
        self.additional_info = additional_info

    def prepare(self, number: int) -> _Attempt:
        started_at = self.clock()
        request = build_token_request(
            self.endpoint,
            self.client_key,
            self.private_key,
            timestamp=make_timestamp(started_at),  # a fresh timestamp and signature on every attempt
            origin=self.origin,
            additional_info=self.additional_info,
        )
        return _Attempt(number, request, started_at, _Phases())

    def on_response(
        self, att: _Attempt, status: int, headers: Any, body: bytes, t0: float, t_headers: float, t1: float
    ) -> _Outcome:
        latency = (t1 - t0) * 1000.0
        received_at = att.started_at + timedelta(seconds=t1 - t0)
        h = _Headers(headers)
        token: AccessToken | None = None
        error: SnapbookError | None = None
        try:
            token = parse_token_response(
                status,
                headers,
                body,
                sent_at=att.started_at,
                received_at=received_at,
                url=self.endpoint.url,
                latency_ms=latency,
                attempt=att.number,
            )
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
        code, message = (token.response_code, token.response_message) if token else _peek_code(error, body)
        server_ts = h.get("x-timestamp")
        offset = server_clock_offset(server_ts, att.started_at, received_at)
        self._record(
            att,
            outcome=SUCCESS
            if token
            else (REFUSED if isinstance(error, SnapResponseError) else INVALID_RESPONSE),
            latency_ms=latency,
            http_status=status,
            response_code=None if code is None else _clip(code, 32),
            response_message=None if message is None else _clip(message, 200),
            **att.phases.durations((t_headers - t0) * 1000.0, (t1 - t_headers) * 1000.0),
            response_bytes=len(body),
            server_timestamp=None if server_ts is None else _clip(server_ts, 64),
            clock_offset_s=None if offset is None else offset.total_seconds(),
            error=error,
            will_retry=delay is not None,
            token=token.access_token if token else None,
        )
        return _Outcome(token, self._final(error, att) if delay is None else error, None, delay)

    def on_error(
        self, att: _Attempt, exc: BaseException, t0: float, t1: float, status: int | None = None
    ) -> _Outcome:
        error, transient = _transport_error(exc, self.endpoint.url, self.timeout)
        delay = (
            self.retry.backoff(att.number, self.rng)
            if transient and att.number < self.retry.max_attempts
            else None
        )
        durations = att.phases.durations(None, None)
        self._record(
            att,
            outcome=INVALID_RESPONSE if isinstance(error, InvalidResponseError) else TRANSPORT_ERROR,
            latency_ms=(t1 - t0) * 1000.0,
            http_status=status,
            **durations,
            error=error,
            will_retry=delay is not None,
        )
        return _Outcome(None, self._final(error, att) if delay is None else error, exc, delay)

    def _final(self, error: SnapbookError | None, att: _Attempt) -> SnapbookError | None:
        if error is not None and att.number > 1:
            error.message = f"{error.message} (attempt {att.number}; giving up)"
            error.args = (error.message,)
        return error

    def _record(
        self,
        att: _Attempt,
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
                url=e.url,
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


# --- the clients ------------------------------------------------------------------------


def _check_declared_size(response: httpx.Response, limit: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _AnswerTooLarge(int(declared), limit, announced=True)


def _add_chunk(chunks: list[bytes], chunk: bytes, total: int, limit: int, deadline: float | None) -> int:
    total += len(chunk)
    if total > limit:
        raise _AnswerTooLarge(total, limit, announced=False)
    chunks.append(chunk)
    if deadline is not None and time.perf_counter() > deadline:
        raise _DeadlineExceeded(0.0)
    return total


def _timeout(value: httpx.Timeout | float | None) -> httpx.Timeout:
    timeout = value if isinstance(value, httpx.Timeout) else None
    if timeout is None:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seconds = math.nan
        timeout = httpx.Timeout(seconds)
    for name in ("connect", "read", "write", "pool"):
        seconds = getattr(timeout, name)
        if seconds is None or not (
            isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0
        ):
            raise ConfigError(
                f"The {name} timeout must be a finite number of seconds > 0, not {seconds!r}: "
                "a request must not wait forever.",
                hint="Give seconds (timeout=10, --timeout 10) or an httpx.Timeout with every part set.",
            )
    return timeout


_AUTO: Any = object()


class _BaseTokenClient:
    def __init__(
        self,
        endpoint: EndpointLike,
        client_key: str,
        private_key: PrivateKeyLike,
        *,
        passphrase: str | bytes | None = None,
        transport: Any = None,
        clock: Clock | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        origin: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        log: RequestLog | None = None,
        safety_margin: float = 60.0,
        rng: random.Random | int | None = None,
        verify: bool | str | ssl.SSLContext = True,
        sandbox_url: str | None = None,
        additional_info: Mapping[str, Any] | None = None,
        deadline: float | None = _AUTO,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.endpoint = resolve(endpoint, sandbox_url=sandbox_url)
        self.client_key = client_key
        self.timeout = _timeout(timeout)
        # httpx's timeouts bound each network operation, not the whole answer: a server sending one byte
        # per second never trips a 10 s read timeout. The deadline bounds an attempt from send to last byte.
        if deadline is _AUTO:
            deadline = float(self.timeout.connect or 0) + float(self.timeout.read or 0)
        if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
            raise ConfigError(
                f"deadline must be a finite number of seconds > 0 or None, not {deadline!r}.",
                hint="The default is the connect timeout plus the read timeout.",
            )
        self.deadline: float | None = deadline
        if not isinstance(max_response_bytes, int) or max_response_bytes < 1024:
            raise ConfigError(
                f"max_response_bytes must be an integer >= 1024, not {max_response_bytes!r}.",
                hint="The default, 1 MiB, fits any token answer or error page.",
            )
        self.max_response_bytes = max_response_bytes
        self.log = log if log is not None else RequestLog()
        self.retry = retry if retry is not None else RetryPolicy.off()
        if safety_margin < 0:
            raise ConfigError(
                "safety_margin must be >= 0 seconds.", hint="The default, 60, refreshes a minute early."
            )
        self.safety_margin = float(safety_margin)
        self._clock: Clock = clock or system_clock
        self._transport = transport
        self._verify = verify
        self._token: AccessToken | None = None
        self._core = _Core(
            self.endpoint,
            client_key,
            private_key_from(private_key, passphrase),
            clock=self._clock,
            origin=origin,
            retry=self.retry,
            log=self.log,
            timeout=self.timeout,
            rng=rng if isinstance(rng, random.Random) else random.Random(rng),
            additional_info=additional_info,
        )
        # A client key or ORIGIN that cannot travel in a header fails now, not on first use.
        check_client_key(client_key)
        if origin:
            _header_value(origin, "ORIGIN")

    def _client_options(self) -> dict[str, Any]:
        from . import __version__

        options: dict[str, Any] = {
            "timeout": self.timeout,
            "follow_redirects": False,
            "headers": {"User-Agent": f"snapbook/{__version__}"},
        }
        if self._transport is not None:
            options["transport"] = self._transport
        else:
            options["verify"] = self._verify
        return options

    @property
    def token(self) -> AccessToken | None:
        """The cached token, if any (it may be expired: :meth:`get_token` checks)."""
        return self._token

    def invalidate(self) -> None:
        """Forget the cached token, e.g. after a transactional call answered 401 Invalid Token."""
        self._token = None

    def _fresh(self, token: AccessToken | None) -> bool:
        if token is None:
            return False
        # A token that lives shorter than twice the margin would never be reused: use half its life instead.
        margin = min(self.safety_margin, token.expires_in / 2)
        return self._clock() < token.expires_at - timedelta(seconds=margin)

    def __repr__(self) -> str:
        cached = "none" if self._token is None else self._token.masked
        return (
            f"{type(self).__name__}(endpoint={self.endpoint.name!r}, url={self.endpoint.url!r}, "
            f"client_key={self.client_key!r}, cached_token={cached!r})"
        )


class TokenClient(_BaseTokenClient):
    """Requests B2B access tokens (sync). Thread-safe; concurrent :meth:`get_token` calls share one request.

    ``endpoint`` is a name (``payment-stage``), a URL or an :class:`~snapbook.endpoints.Endpoint`;
    ``private_key`` a key object (parsed once), PEM/DER data or a file path. ``transport``
    (an ``httpx.BaseTransport``), ``clock``, ``sleep`` and ``rng`` are injectable for tests.
    ``retry=None`` switches retries off. ``timeout`` bounds each network operation (connect, each
    read) and ``deadline`` (default: connect + read timeout) the reading of the answer's body, so
    a server that dribbles its body cannot hold a caller forever (:class:`AsyncTokenClient` bounds
    the whole attempt, headers included); answers over ``max_response_bytes`` (1 MiB) are refused.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        endpoint: EndpointLike,
        client_key: str,
        private_key: PrivateKeyLike,
        *,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, client_key, private_key, **options)
        self._sleep = sleep
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self._inflight: concurrent.futures.Future[AccessToken] | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(**self._client_options())
        return self._http

    def request_token(self) -> AccessToken:
        """Always ask the provider for a new token (retrying transient failures); does not touch the cache."""
        number = 0
        while True:
            number += 1
            att = self._core.prepare(number)
            outcome = self._send(att)
            if outcome.token is not None:
                return outcome.token
            if outcome.delay is None:
                assert outcome.error is not None
                raise outcome.error from outcome.cause
            self._sleep(outcome.delay)

    def _send(self, att: _Attempt) -> _Outcome:
        client = self._client()
        req = client.build_request(
            att.request.method,
            att.request.url,
            headers=att.request.headers,
            content=att.request.body,
            extensions={"trace": att.phases},
        )
        t0 = time.perf_counter()
        deadline = None if self.deadline is None else t0 + self.deadline
        status = None
        try:
            response = client.send(req, stream=True)
            t_headers = time.perf_counter()
            status = response.status_code
            try:
                _check_declared_size(response, self.max_response_bytes)
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_bytes():
                    total = _add_chunk(chunks, chunk, total, self.max_response_bytes, deadline)
            finally:
                response.close()
            t1 = time.perf_counter()
        except (httpx.HTTPError, _AnswerTooLarge, _DeadlineExceeded) as exc:
            if isinstance(exc, _DeadlineExceeded):
                exc.seconds = time.perf_counter() - t0
            return self._core.on_error(att, exc, t0, time.perf_counter(), status)
        body = b"".join(chunks)
        return self._core.on_response(att, response.status_code, response.headers, body, t0, t_headers, t1)

    def get_token(self, *, force: bool = False) -> AccessToken:
        """The cached token while it has more than ``safety_margin`` seconds left, else a new one.

        Concurrent callers share one in-flight request (and its failure). ``force`` asks for a
        new token even if the cached one is fresh.
        """
        with self._lock:
            if not force and self._fresh(self._token):
                return self._token  # type: ignore[return-value]
            future = self._inflight
            leader = future is None
            if future is None:
                future = self._inflight = concurrent.futures.Future()
        if not leader:
            return future.result()
        try:
            token = self.request_token()
        except BaseException as exc:
            with self._lock:
                self._inflight = None
            future.set_exception(exc)
            raise
        with self._lock:
            self._token = token
            self._inflight = None
        future.set_result(token)
        return token

    def refresh(self) -> AccessToken:
        """A new token now, replacing the cached one (joins a request already in flight)."""
        return self.get_token(force=True)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> TokenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTokenClient(_BaseTokenClient):
    """The asyncio twin of :class:`TokenClient`: same options, ``await``-able methods.

    Concurrent tasks calling :meth:`get_token` share one in-flight request; cancelling one
    waiting task does not cancel the shared request. ``transport`` is an
    ``httpx.AsyncBaseTransport``; ``sleep`` defaults to ``asyncio.sleep``.
    """

    def __init__(
        self,
        endpoint: EndpointLike,
        client_key: str,
        private_key: PrivateKeyLike,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, client_key, private_key, **options)
        self._sleep = sleep
        self._http: httpx.AsyncClient | None = None
        self._inflight: asyncio.Task[AccessToken] | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(**self._client_options())
        return self._http

    async def request_token(self) -> AccessToken:
        """Always ask the provider for a new token (retrying transient failures); does not touch the cache."""
        number = 0
        while True:
            number += 1
            att = self._core.prepare(number)
            outcome = await self._send(att)
            if outcome.token is not None:
                return outcome.token
            if outcome.delay is None:
                assert outcome.error is not None
                raise outcome.error from outcome.cause
            await self._sleep(outcome.delay)

    async def _send(self, att: _Attempt) -> _Outcome:
        client = self._client()
        req = client.build_request(
            att.request.method,
            att.request.url,
            headers=att.request.headers,
            content=att.request.body,
            extensions={"trace": att.phases.atrace},
        )
        t0 = time.perf_counter()
        marks: dict[str, Any] = {}

        async def exchange() -> tuple[httpx.Response, bytes]:
            response = await client.send(req, stream=True)
            marks["t_headers"], marks["status"] = time.perf_counter(), response.status_code
            try:
                _check_declared_size(response, self.max_response_bytes)
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.aiter_bytes():
                    total = _add_chunk(chunks, chunk, total, self.max_response_bytes, None)
            finally:
                await response.aclose()
            return response, b"".join(chunks)

        try:
            # The deadline covers the whole attempt, headers included: a server dribbling bytes
            # never trips the per-read timeout.
            response, body = await asyncio.wait_for(exchange(), self.deadline)
            t1 = time.perf_counter()
        except asyncio.TimeoutError:
            exc = _DeadlineExceeded(time.perf_counter() - t0)
            return self._core.on_error(att, exc, t0, time.perf_counter(), marks.get("status"))
        except (httpx.HTTPError, _AnswerTooLarge) as exc:
            return self._core.on_error(att, exc, t0, time.perf_counter(), marks.get("status"))
        return self._core.on_response(att, response.status_code, response.headers, body, t0, marks["t_headers"], t1)

    async def get_token(self, *, force: bool = False) -> AccessToken:
        """The cached token while it has more than ``safety_margin`` seconds left, else a new one."""
        if not force and self._fresh(self._token):
            return self._token  # type: ignore[return-value]
        task = self._inflight
        if task is None:
            task = asyncio.ensure_future(self._fetch())
            self._inflight = task
            task.add_done_callback(self._fetched)
        return await asyncio.shield(task)

    async def _fetch(self) -> AccessToken:
        token = await self.request_token()
        self._token = token
        return token

    def _fetched(self, task: asyncio.Task[AccessToken]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # mark it retrieved even if every waiter was cancelled

    async def refresh(self) -> AccessToken:
        """A new token now, replacing the cached one (joins a request already in flight)."""
        return await self.get_token(force=True)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncTokenClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
