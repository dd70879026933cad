"""The B2B access token: the signed request, reading the answer, and the two clients (sync, async).

>>> with TokenClient("payment-stage", "MCP00000001", "private.pem") as client:   # doctest: +SKIP
...     token = client.get_token()          # cached until 60 s before it expires
...     headers = token.authorization_header()

Two pure functions hold the protocol, so the sync and async clients cannot drift apart:
:func:`build_token_request` (one timestamp string, used for the header and the signature)
and :func:`parse_token_response` (status, headers, body -> :class:`AccessToken` or a typed
error). :class:`TokenClient` and :class:`AsyncTokenClient` add a token cache shared by
concurrent callers; every attempt goes through :class:`~snapbook.client.exchange.Exchange`
(deadline, decoded-size limit, retries, error mapping, one :class:`~snapbook.log.RequestLog`
row per attempt).

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
import os
import random
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Union

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from ..codes import TOKEN_SERVICE, describe_status, parse_code
from ..endpoints import Endpoint, resolve
from ..errors import ConfigError, InvalidResponseError, SnapResponseError
from ..keys import private_key_from
from ..log import RequestLog, format_clock_offset
from ..masking import mask, mask_headers, mask_url, printable
from ..signing import JAKARTA, Clock, check_client_key, make_timestamp, signed_headers, system_clock
from ._shown import _LONG_TOKEN, _clip, _excerpt, _Headers
from .exchange import Answer, Exchange, clock_offset_uncertainty, resolve_target, server_clock_offset
from .limits import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    bound_sync_client,
    check_deadline,
    check_timeout,
    client_options,
)
from .retry import DEFAULT_RETRY, RetryPolicy

__all__ = [
    "AccessToken",
    "AsyncTokenClient",
    "TokenClient",
    "TokenRequest",
    "build_token_request",
    "parse_token_response",
]

PrivateKeyLike = Union[rsa.RSAPrivateKey, str, bytes, os.PathLike]
EndpointLike = Union[Endpoint, str]

_MANDATORY = ("accessToken", "tokenType", "expiresIn")
_KNOWN_FIELDS = frozenset(
    {"responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn", "additionalInfo"}
)
# A clock difference this large makes most providers reject the signature's timestamp.
_SKEW_WARNING = timedelta(minutes=2)
# expiresIn beyond ~31 years is not a token lifetime (and would overflow datetime arithmetic).
_MAX_EXPIRES_IN = 999_999_999


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
            f"TokenRequest({self.method} {mask_url(self.url)}, headers={self.masked_headers()!r}, "
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
    ours (from its X-TIMESTAMP, against the request's midpoint); ``clock_offset_uncertainty``
    how far that can be off (the timestamp's resolution, usually 1 s, plus half the round trip):
    :attr:`clock_offset_text` shows both (``"0 s ± 1 s"``). ``notes`` lists where the answer
    departs from the standard without being unusable. Network text (response message, notes) is
    stored with control characters escaped.
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
    clock_offset_uncertainty: timedelta | None = None

    @property
    def clock_offset_text(self) -> str:
        """The clock offset with its resolution, e.g. ``"0 s ± 1 s"`` (empty when unknown)."""
        return format_clock_offset(self.clock_offset, self.clock_offset_uncertainty)

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
        offset = "" if self.clock_offset is None else f", clock_offset={self.clock_offset_text!r}"
        return (
            f"AccessToken(token={self.masked!r}, token_type={self.token_type!r}, expires_in={self.expires_in}, "
            f"expires_at={self.expires_at.astimezone(JAKARTA).isoformat()!r}, "
            f"response_code={self.response_code!r}{offset})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("access token", self.masked),
            ("token type", f"{self.token_type} (Authorization: {self.scheme} …)"),
            ("expires in", f"{self.expires_in} s, at {self.expires_at.astimezone(JAKARTA).isoformat()}"),
            ("response", f"{self.response_code or ''} {self.response_message or ''}".strip()),
            ("server X-TIMESTAMP", self.server_timestamp or "(none)"),
            ("clock offset (server - client)", self.clock_offset_text),
            (
                "latency",
                "" if self.latency_ms is None else f"{self.latency_ms:.1f} ms (attempt {self.attempt})",
            ),
            *(("note", n) for n in self.notes),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(printable(v, 2000))}</td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"


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
    client_key: str | None = None,
) -> AccessToken:
    """Read a token endpoint's answer: an :class:`AccessToken`, or the typed error saying what went wrong.

    Tolerates what real providers send (tokenType ``BearerToken``, expiresIn as a number,
    extra fields, no responseMessage) and records each such departure in ``notes``. Raises
    :class:`SnapResponseError` when the provider refused (also on HTTP 200 with a failure
    responseCode) and :class:`InvalidResponseError` when the answer is not a token response.
    With ``client_key`` (the one sent), a response ``X-CLIENT-KEY`` that is missing or differs is noted.
    """
    h = _Headers(headers)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    where = printable(mask_url(url), 300) if url else "the token endpoint"
    server_ts = h.get("x-timestamp")
    offset = server_clock_offset(server_ts, sent_at, received_at)

    if 300 <= status < 400:
        location = _location(h.get("location"))
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
    # Control characters are escaped here too, so no terminal downstream receives them.
    message = None if message is None else printable(_LONG_TOKEN.sub(lambda m: mask(m.group(0)), str(message)))
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
            notes.append(f"responseCode {_clip(code, 20)} says HTTP {parsed.http_status} but the status was {status}")
    if message is None:
        notes.append("no responseMessage (optional on success)")
    extra = sorted(set(data) - _KNOWN_FIELDS)
    if extra:
        notes.append(_clip("fields beyond the standard: " + ", ".join(map(str, extra)), 200))
    if server_ts is None:
        notes.append("no X-TIMESTAMP response header (mandatory), so the clock offset is unknown")
    elif offset is None:
        notes.append(f"the X-TIMESTAMP response header {_clip(server_ts, 40)!r} is unreadable")
    if client_key is not None:
        echoed = h.get("x-client-key")
        if echoed is None:
            notes.append("no X-CLIENT-KEY response header (mandatory on the vendor page)")
        elif echoed.strip() != client_key:
            notes.append(
                f"the X-CLIENT-KEY response header {_clip(echoed, 40)!r} differs from the client key sent "
                f"{_clip(client_key, 40)!r}"
            )

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
        server_timestamp=None if server_ts is None else _clip(server_ts, 64),
        clock_offset=offset,
        clock_offset_uncertainty=None
        if offset is None
        else clock_offset_uncertainty(server_ts, sent_at, received_at),
        url=mask_url(url),
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


def _location(value: str | None) -> str:
    """A redirect target fit to show: userinfo, query and fragment hidden, long base64 runs in the path masked
    (a Location can echo the signature)."""
    if not value:
        return "(no Location header)"
    base, sep, rest = value.partition("?")
    base, hsep, frag = base.partition("#")
    hidden = len(rest) + len(frag) + (1 if hsep else 0)
    scheme, colon, tail = mask_url(base).partition("://")
    host, slash, path = tail.partition("/") if colon else ("", "", base)
    path = _LONG_BASE64.sub(lambda m: mask(m.group(0)), path)
    shown = printable(f"{scheme}{colon}{host}{slash}{path}" if colon else path, 160)
    return shown + (f"?… ({hidden} chars hidden)" if sep or hsep else "")


# Signatures and tokens in a path: base64(url) runs with no dot, long enough not to be a path segment.
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-]{40,}")


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


# --- the clients ------------------------------------------------------------------------


class _TokenCall:
    """The B2B token request as a :class:`~snapbook.client.exchange.CallKind`."""

    def __init__(
        self,
        endpoint: Endpoint,
        client_key: str,
        private_key: rsa.RSAPrivateKey,
        origin: str | None,
        additional_info: Mapping[str, Any] | None,
    ) -> None:
        self.endpoint, self.client_key, self.private_key = endpoint, client_key, private_key
        self.origin, self.additional_info = origin, additional_info

    def prepare(self, started_at: datetime) -> TokenRequest:
        return build_token_request(
            self.endpoint,
            self.client_key,
            self.private_key,
            timestamp=make_timestamp(started_at),  # a fresh timestamp and signature on every attempt
            origin=self.origin,
            additional_info=self.additional_info,
        )

    def read(self, answer: Answer) -> AccessToken:
        return parse_token_response(
            answer.status,
            answer.headers,
            answer.body,
            sent_at=answer.sent_at,
            received_at=answer.received_at,
            url=answer.url,
            latency_ms=answer.latency_ms,
            attempt=answer.attempt,
            client_key=self.client_key,
        )


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
        # A CR, a space or port 99999 is unusable input, found before any attempt; userinfo never echoed.
        self.endpoint = resolve_target(endpoint, sandbox_url=sandbox_url)
        self.client_key = client_key
        self.timeout = check_timeout(timeout)
        # httpx's timeouts bound each network operation, not the whole answer: a server sending one byte
        # per second never trips a 10 s read timeout. The deadline bounds an attempt from send to last byte.
        if deadline is _AUTO:
            deadline = float(self.timeout.connect or 0) + float(self.timeout.read or 0)
        self.deadline: float | None = check_deadline(deadline)
        if not isinstance(max_response_bytes, int) or max_response_bytes < 1024:
            raise ConfigError(
                f"max_response_bytes must be an integer >= 1024, not {printable(repr(max_response_bytes), 40)}.",
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
        # A client key or ORIGIN that cannot travel in a header fails now, not on first use.
        check_client_key(client_key)
        if origin:
            _header_value(origin, "ORIGIN")
        call = _TokenCall(self.endpoint, client_key, private_key_from(private_key, passphrase), origin, additional_info)
        self._exchange: Exchange[AccessToken] = Exchange(
            self.endpoint,
            call,
            client_key=client_key,
            clock=self._clock,
            retry=self.retry,
            log=self.log,
            timeout=self.timeout,
            deadline=self.deadline,
            max_response_bytes=max_response_bytes,
            rng=rng if isinstance(rng, random.Random) else random.Random(rng),
        )

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
            f"{type(self).__name__}(endpoint={self.endpoint.name!r}, url={mask_url(self.endpoint.url)!r}, "
            f"client_key={self.client_key!r}, cached_token={cached!r})"
        )


class TokenClient(_BaseTokenClient):
    """Requests B2B access tokens (sync). Thread-safe; concurrent :meth:`get_token` calls share one request.

    ``endpoint`` is a name (``payment-stage``), a URL or an :class:`~snapbook.endpoints.Endpoint`;
    ``private_key`` a key object (parsed once), PEM/DER data or a file path. ``transport``
    (an ``httpx.BaseTransport``), ``clock``, ``sleep`` and ``rng`` are injectable for tests.
    ``retry=None`` switches retries off. ``timeout`` bounds each network operation (connect, each
    read) and ``deadline`` (default: connect + read timeout) the whole attempt: connect, headers
    (also a status line dribbled byte by byte, or endless ``100 Continue``) and body. Answers
    over ``max_response_bytes`` (1 MiB) decoded are refused, a compression bomb as it inflates.
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
                    self._http = bound_sync_client(
                        httpx.Client(**client_options(self.timeout, transport=self._transport, verify=self._verify))
                    )
        return self._http

    def request_token(self) -> AccessToken:
        """Always ask the provider for a new token (retrying transient failures); does not touch the cache."""
        return self._exchange.run(self._client(), self._sleep)

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
            self._http = httpx.AsyncClient(
                **client_options(self.timeout, transport=self._transport, verify=self._verify)
            )
        return self._http

    async def request_token(self) -> AccessToken:
        """Always ask the provider for a new token (retrying transient failures); does not touch the cache."""
        return await self._exchange.arun(self._client(), self._sleep)

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
