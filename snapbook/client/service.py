"""Service calls after the token (QRIS, VA, Senmo): signed with HMAC-SHA512, sync and async.

>>> with ServiceClient("payment-stage", "MCP00000001", "private.pem", os.environ["SECRET"],
...                    partner_id="MCP2021110228", channel_id="QR004") as client:   # doctest: +SKIP
...     answer = client.post("/v1.0/qr/qr-mpm-generate", {"partnerReferenceNo": "INV-1", ...})
...     answer.response_code, answer.data["qrContent"]

Three pieces, each usable alone:

- :class:`ServiceAuth`, an ``httpx.Auth``: signs a request over the exact bytes and the path it
  carries (:mod:`snapbook.service_signing`, never a copy), with a fresh X-TIMESTAMP each time it
  is applied, and adds ``Authorization: Bearer``, ``X-TIMESTAMP``, ``X-SIGNATURE``,
  ``X-PARTNER-ID``, ``X-EXTERNAL-ID``, ``CHANNEL-ID``, optional ``ORIGIN`` and
  ``Content-Type: application/json``. Symmetric (the client secret; Ifortepay's required form,
  the only one Senmo accepts) or, with ``private_key``, asymmetric.
- :func:`parse_service_response`: an answer -> :class:`ServiceResponse`, or a typed error
  (:class:`~snapbook.errors.SnapResponseError` with the code's meaning and a hint,
  :class:`~snapbook.errors.InvalidResponseError`).
- :class:`ServiceClient` / :class:`AsyncServiceClient`: the token from a
  :class:`~snapbook.client.token.TokenClient` (cached, one request for concurrent callers), then
  each call through the shared :class:`~snapbook.client.exchange.Exchange` (whole-attempt
  deadline, decoded-size limit, escaping, error mapping, one RequestLog row per attempt).

The retry rule (one place: :meth:`_ServiceCall.may_retry`):

- every attempt is signed again, with a fresh X-TIMESTAMP and a fresh X-EXTERNAL-ID (unless
  the caller gave one);
- an answer ``401xx01`` (invalid or expired token) gets one new token and one more call;
- a non-idempotent call (every POST, unless ``idempotent=True``) is retried only when it cannot
  have been processed: the connection failed before the request was sent (refused, connect or
  pool timeout), or the answer is HTTP 429 (Too Many Requests: the standard's "not processed").
  After a read timeout, a dropped connection, a 5xx or 504 it is *not* retried: the provider may
  have processed it; query its status (by partnerReferenceNo) before sending it again.
- an idempotent call (GET, or ``idempotent=True``) follows the :class:`RetryPolicy` alone.
"""

from __future__ import annotations

import asyncio
import html
import json
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from ..codes import SERVICES, describe_status, parse_code
from ..endpoints import Endpoint, ServiceEndpoint, resolve_service
from ..errors import (
    ConfigError,
    InvalidResponseError,
    ServiceSignatureInputError,
    SnapbookError,
    SnapResponseError,
    TransportError,
)
from ..keys import private_key_from
from ..log import RequestLog
from ..masking import mask, mask_headers, mask_url, printable
from ..service_signing import MinifiedJson, check_access_token, relative_url, sign_asymmetric, sign_symmetric
from ..signing import Clock, make_timestamp, system_clock
from ._shown import _LONG_TOKEN, _clip, _excerpt, _Headers
from .exchange import Answer, Exchange, check_target
from .external_id import ExternalIdGenerator, check_external_id
from .limits import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT
from .retry import DEFAULT_RETRY, RetryPolicy
from .token import AccessToken, AsyncTokenClient, PrivateKeyLike, TokenClient

__all__ = [
    "AsyncServiceClient",
    "ServiceAuth",
    "ServiceClient",
    "ServiceRequest",
    "ServiceResponse",
    "encode_body",
    "parse_service_response",
    "service_code_for",
]

JsonBody = Union[Mapping[str, Any], list, bytes, bytearray, str, None]
TokenSource = Union[str, Callable[[], str]]

# The services snapbook knows, by the path's last segment (a provider prefix such as /api is ignored).
_PATH_SERVICES: dict[str, str] = {
    "balance-inquiry": "11",
    "account-inquiry-external": "16",
    "transfer-interbank": "18",
    "qr-mpm-generate": "47",
    "qr-mpm-query": "51",
    "qr-mpm-notify": "52",
    "b2b": "73",
}


def service_code_for(path: str) -> str | None:
    """The SNAP service code a path calls (``/v1.0/qr/qr-mpm-generate`` -> ``"47"``), when snapbook knows it."""
    last = path.partition("?")[0].rstrip("/").rpartition("/")[2].lower()
    return _PATH_SERVICES.get(last)


def encode_body(body: JsonBody) -> bytes:
    """The bytes sent (and signed): a dict or list as compact JSON (key order kept, UTF-8 as is);
    bytes and text exactly as given; None as no body.

    A dict or list comes back as :class:`~snapbook.service_signing.MinifiedJson`, which the signer
    hashes without looking for whitespace to minify; bytes and text are looked at when signed.
    """
    if body is None:
        return b""
    if type(body) is MinifiedJson:
        return body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (Mapping, list)):
        try:
            return MinifiedJson.dumps(body)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"The body cannot be sent as JSON: {printable(str(exc), 120)}.",
                hint="Use str, int, Decimal-as-string, bool, None, lists and dicts; amounts as strings (\"10000.00\").",
            ) from None
    raise ConfigError(
        f"A body must be a dict, a list, bytes or str, not {type(body).__name__}.",
        hint="Pass the JSON object, or the exact bytes to send.",
    )


def _header_value(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable() or value != value.strip():
        raise ConfigError(
            f"The {what} must be printable ASCII without spaces around it (got {printable(repr(value), 60)}).",
            hint=f"Use the {what} exactly as the provider issued it.",
        )
    return value


# --- signing: an httpx.Auth ---------------------------------------------------------------


class ServiceAuth(httpx.Auth):
    """Signs SNAP service calls in any ``httpx`` client: ``httpx.Client(auth=ServiceAuth(...))``.

    ``access_token`` is the token (or a callable returning the current one, e.g.
    ``lambda: tokens.get_token().access_token``). Symmetric with ``client_secret``; asymmetric
    with ``private_key`` (then ``access_token`` is optional and only sets ``Authorization``).
    Every time the flow runs (each attempt), X-TIMESTAMP is made fresh from ``clock`` and an
    X-EXTERNAL-ID comes from ``external_ids`` (or ``external_id``, fixed). ``include_query=False``
    signs the path without its query (for providers that do). ``repr`` shows no secret.
    """

    requires_request_body = True

    def __init__(
        self,
        client_secret: str | bytes | None = None,
        access_token: TokenSource | None = None,
        *,
        private_key: rsa.RSAPrivateKey | None = None,
        partner_id: str,
        channel_id: str,
        origin: str | None = None,
        external_ids: Callable[[], str] | None = None,
        clock: Clock | None = None,
        include_query: bool = True,
    ) -> None:
        if (client_secret is None) == (private_key is None):
            raise ConfigError(
                "Pass exactly one of client_secret (symmetric) or private_key (asymmetric).",
                hint="Ifortepay and Senmo want the symmetric form: the client secret you registered.",
            )
        if client_secret is not None and access_token is None:
            raise ConfigError(
                "The symmetric signature needs the access token.",
                hint="Pass access_token= (or use snapbook.ServiceClient, which gets it).",
            )
        self._secret = client_secret
        self._private_key = private_key
        self._token = access_token
        self.partner_id = _header_value(partner_id, "X-PARTNER-ID")
        self.channel_id = _header_value(channel_id, "CHANNEL-ID")
        self.origin = None if origin is None else _header_value(origin, "ORIGIN")
        self.external_ids = external_ids or ExternalIdGenerator(clock=clock)
        self.clock: Clock = clock or system_clock
        self.include_query = include_query

    @property
    def kind(self) -> Literal["symmetric", "asymmetric"]:
        return "symmetric" if self._secret is not None else "asymmetric"

    def current_token(self) -> str | None:
        token = self._token() if callable(self._token) else self._token
        return None if token is None else check_access_token(token)

    def signed_headers(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        timestamp: str | None = None,
        external_id: str | None = None,
        access_token: str | None = None,
    ) -> dict[str, str]:
        """Every header of one attempt, signed over ``path`` (as sent) and ``body`` (the bytes sent)."""
        ts = timestamp if timestamp is not None else make_timestamp(self.clock())
        token = access_token if access_token is not None else self.current_token()
        if self._secret is not None:
            assert token is not None
            signature = sign_symmetric(self._secret, method, path, token, body, ts, include_query=self.include_query)
        else:
            assert self._private_key is not None
            signature = sign_asymmetric(self._private_key, method, path, body, ts, include_query=self.include_query)
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        headers["X-TIMESTAMP"] = ts
        headers["X-SIGNATURE"] = signature
        headers["X-PARTNER-ID"] = self.partner_id
        headers["X-EXTERNAL-ID"] = check_external_id(external_id if external_id is not None else self.external_ids())
        headers["CHANNEL-ID"] = self.channel_id
        if self.origin is not None:
            headers["ORIGIN"] = self.origin
        return headers

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Set the signed headers on ``request``, over its body bytes and the path httpx will send."""
        request.headers.update(
            self.signed_headers(request.method, relative_url(request.url), request.content)
        )
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)

    def __repr__(self) -> str:
        return (
            f"ServiceAuth({self.kind}, partner_id={self.partner_id!r}, channel_id={self.channel_id!r}, "
            f"secret={'(held)' if self._secret is not None else None})"
        )


# --- the request and the answer -------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRequest:
    """One signed attempt of a service call, ready to send. ``repr`` masks the token and the signature."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes
    timestamp: str
    #: The path and query as the request line carries them (what was signed).
    path: str = ""

    @property
    def signature(self) -> str:
        return self.headers["X-SIGNATURE"]

    @property
    def external_id(self) -> str:
        return self.headers["X-EXTERNAL-ID"]

    def masked_headers(self) -> dict[str, str]:
        return mask_headers(self.headers)

    def __repr__(self) -> str:
        return (
            f"ServiceRequest({self.method} {mask_url(self.url)}, headers={self.masked_headers()!r}, "
            f"body={_clip(self.body.decode('utf-8', 'replace'), 200)!r})"
        )


@dataclass(frozen=True)
class ServiceResponse:
    """A successful service answer (a 2xx responseCode). ``data`` is the JSON as received;
    :meth:`response_json` the same with any echoed token or signature masked (for showing)."""

    http_status: int
    response_code: str
    response_message: str | None
    data: Mapping[str, Any] = field(repr=False)
    method: str = ""
    path: str = ""
    url: str = ""
    external_id: str = ""
    service_code: str | None = None
    server_timestamp: str | None = None
    latency_ms: float | None = None
    attempt: int = 1
    #: Secrets sent with the call (token, signature): masked wherever the answer echoes them.
    _secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.response_code.startswith("2")

    @property
    def service(self) -> str:
        return SERVICES.get(self.service_code or "", f"service {self.service_code or '?'}")

    def response_json(self) -> dict[str, Any]:
        """The body with any echoed token or signature masked and network text left as received."""
        secrets = [s for s in self._secrets if s]

        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                for s in secrets:
                    value = value.replace(s, mask(s))
                return value
            if isinstance(value, dict):
                return {k: scrub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [scrub(v) for v in value]
            return value

        out = scrub(dict(self.data))
        if "responseMessage" in out and self.response_message is not None:
            out["responseMessage"] = self.response_message
        return out

    def __repr__(self) -> str:
        return (
            f"ServiceResponse({self.method} {printable(self.path, 120)} -> HTTP {self.http_status} "
            f"{self.response_code} {self.response_message or ''!r}, external_id={self.external_id!r})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("call", f"{self.method} {self.path}"),
            ("service", f"{self.service_code or '?'} ({self.service})"),
            ("response", f"HTTP {self.http_status}, {self.response_code} {self.response_message or ''}"),
            ("X-EXTERNAL-ID", self.external_id),
            ("latency", "" if self.latency_ms is None else f"{self.latency_ms:.1f} ms (attempt {self.attempt})"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(printable(v, 2000))}</td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"


def _token_rejected(exc: SnapbookError) -> bool:
    """Whether a refusal says the access token is invalid or expired: ``401xx01``."""
    code = getattr(exc, "response_code", None) or ""
    return isinstance(exc, SnapResponseError) and len(code) == 7 and code.startswith("401") and code.endswith("01")


def parse_service_response(
    status: int,
    headers: Mapping[str, str] | Any,
    body: bytes | str,
    *,
    method: str = "",
    path: str = "",
    url: str = "",
    external_id: str = "",
    latency_ms: float | None = None,
    attempt: int = 1,
    secrets: tuple[str, ...] = (),
) -> ServiceResponse:
    """Read a service call's answer: a :class:`ServiceResponse` for a 2xx responseCode, else a typed error.

    :class:`SnapResponseError` when the provider refused (any non-2xx status or responseCode, with
    the code's meaning and a hint); :class:`InvalidResponseError` when the answer is not a SNAP
    answer (HTML, non-JSON, not an object, no responseCode on success).
    """
    h = headers if isinstance(headers, httpx.Headers) else _Headers(headers)  # both case-insensitive
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    where = f"{printable(method, 20)} {printable(path, 120)}".strip() or "the service"
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = _NOT_JSON
    except RecursionError:
        raise InvalidResponseError(
            f"{where} answered HTTP {status} with JSON nested too deeply to read ({len(raw)} bytes).",
            hint="No SNAP answer looks like this: check the URL, and report the answer to the provider.",
        ) from None
    if not isinstance(data, dict):
        what = (
            "an empty body"
            if data is None
            else "a body that is not JSON"
            if data is _NOT_JSON
            else f"a JSON {type(data).__name__}"
        )
        if data is _NOT_JSON and b"<html" in raw[:2048].lower():
            what = "an HTML page (a gateway or web server answered, not the SNAP service)"
        meaning, hint = describe_status(status)
        error_cls = SnapResponseError if status >= 400 and data is None else InvalidResponseError
        message = f"{where} answered HTTP {status} with {what}, not a SNAP answer."
        if data is _NOT_JSON:
            message += f" It begins {_excerpt(raw[:120].decode('utf-8', 'replace'), 60)!r}."
        if error_cls is SnapResponseError:
            raise SnapResponseError(
                message + f" {meaning}", hint=hint, http_status=status, response_code=None,
                response_message=None, meaning=meaning,
            )
        raise InvalidResponseError(message, hint=hint if status >= 300 else "Check the path and the base URL.")
    code = data.get("responseCode")
    code = None if code is None else _clip(code, 32)
    message = data.get("responseMessage")
    # A provider may echo a token or signature in its message: mask anything token-like at once.
    message = None if message is None else printable(_LONG_TOKEN.sub(lambda m: mask(m.group(0)), str(message)), 300)
    if not (200 <= status < 300) or (code is not None and not code.startswith("2")):
        if code is not None:
            parsed = parse_code(code, message)
            meaning, hint = parsed.meaning, parsed.hint
            what = f"HTTP {status}, responseCode {code}" + (f" {_clip(message, 200)!r}" if message else "")
        else:
            meaning, hint = describe_status(status)
            what = f"HTTP {status} without a SNAP responseCode"
        raise SnapResponseError(
            f"{where} was refused: {what}. {meaning}",
            hint=hint,
            http_status=status,
            response_code=code,
            response_message=message,
            meaning=meaning,
        )
    if code is None:
        raise InvalidResponseError(
            f"{where} answered HTTP {status} without a responseCode (mandatory in every SNAP answer).",
            hint="Check that the base URL is the provider's service host, and report the answer to the provider.",
        )
    server_ts = h.get("x-timestamp")
    return ServiceResponse(
        http_status=status,
        response_code=code,
        response_message=message,
        data=data,
        method=method,
        path=path,
        url=mask_url(url),
        external_id=external_id,
        service_code=code[3:5] if len(code) == 7 and code.isdigit() else service_code_for(path),
        server_timestamp=None if server_ts is None else _clip(server_ts, 64),
        latency_ms=latency_ms,
        attempt=attempt,
        _secrets=secrets,
    )


_NOT_JSON: Any = object()


# --- the call kind on the shared exchange ---------------------------------------------------

# Failures that prove the request never left: nothing was sent, so even a payment may be sent again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _never_sent(exc: BaseException | None) -> bool:
    return isinstance(exc, _NEVER_SENT) and not isinstance(exc, httpx.ProxyError)


class _ServiceCall:
    """One service call as a :class:`~snapbook.client.exchange.CallKind`: signed afresh per attempt."""

    def __init__(
        self,
        auth: ServiceAuth,
        method: str,
        url: str,
        path: str,
        body: bytes,
        token: str,
        *,
        external_id: str | None,
        idempotent: bool,
    ) -> None:
        self.auth, self.method, self.url, self.body, self.token = auth, method, url, body, token
        self.external_id = external_id
        self.idempotent = idempotent
        self.path = path
        self.service_code = service_code_for(path)
        self.signatures: list[str] = []
        self.last_external_id = ""

    def prepare(self, started_at: datetime) -> ServiceRequest:
        headers = self.auth.signed_headers(
            self.method,
            self.path,
            self.body,
            timestamp=make_timestamp(started_at),  # fresh for every attempt
            external_id=self.external_id,
            access_token=self.token,
        )
        self.signatures.append(headers["X-SIGNATURE"])
        self.last_external_id = headers["X-EXTERNAL-ID"]
        return ServiceRequest(self.method, self.url, headers, self.body, headers["X-TIMESTAMP"], self.path)

    def read(self, answer: Answer) -> ServiceResponse:
        return parse_service_response(
            answer.status,
            answer.headers,
            answer.body,
            method=self.method,
            path=self.path,
            url=answer.url,
            external_id=self.last_external_id,
            latency_ms=answer.latency_ms,
            attempt=answer.attempt,
            secrets=(self.token, *self.signatures),
        )

    def may_retry(self, status: int | None, exc: BaseException | None) -> bool:
        """The non-idempotent rule: retry only what cannot have been processed (see the module docstring)."""
        if self.idempotent:
            return True
        if exc is not None:
            return _never_sent(exc)
        return status == 429


# --- the clients ----------------------------------------------------------------------------

_AUTO: Any = object()


class _BaseServiceClient:
    def __init__(
        self,
        target: str | ServiceEndpoint,
        client_key: str,
        private_key: PrivateKeyLike,
        client_secret: str | bytes | None,
        *,
        partner_id: str,
        channel_id: str,
        token_url: str | None = None,
        passphrase: str | bytes | None = None,
        signature: Literal["symmetric", "asymmetric"] = "symmetric",
        origin: str | None = None,
        include_query: bool = True,
        external_ids: Callable[[], str] | None = None,
        transport: Any = None,
        clock: Clock | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        log: RequestLog | None = None,
        rng: random.Random | int | None = None,
        verify: bool | str | ssl.SSLContext = True,
        sandbox_url: str | None = None,
        deadline: float | None = _AUTO,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        safety_margin: float = 60.0,
    ) -> None:
        self.endpoint = resolve_service(target, token_url=token_url, sandbox_url=sandbox_url)
        check_target(self.endpoint.base_url)
        if signature not in ("symmetric", "asymmetric"):
            raise ConfigError(
                f"signature must be 'symmetric' or 'asymmetric', not {printable(repr(signature), 40)}.",
                hint="Ifortepay and Senmo want 'symmetric' (HMAC-SHA512 with the client secret).",
            )
        if signature == "symmetric" and not client_secret:
            raise ConfigError(
                "The symmetric signature needs the client secret.",
                hint="Pass client_secret (read it from an environment variable, never from code).",
            )
        key = private_key_from(private_key, passphrase)  # parsed once, shared with the token client
        self.log = log if log is not None else RequestLog()
        self.retry = retry if retry is not None else RetryPolicy.off()
        self._clock: Clock = clock or system_clock
        self._rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        self.signature = signature
        self._options: dict[str, Any] = {
            "transport": transport,
            "clock": clock,
            "timeout": timeout,
            "origin": origin,
            "retry": retry,
            "log": self.log,
            "rng": self._rng,
            "verify": verify,
            "max_response_bytes": max_response_bytes,
            "safety_margin": safety_margin,
        }
        if deadline is not _AUTO:
            self._options["deadline"] = deadline
        self.auth = ServiceAuth(
            client_secret if signature == "symmetric" else None,
            access_token=self._current_token if signature == "symmetric" else None,
            private_key=key if signature == "asymmetric" else None,
            partner_id=partner_id,
            channel_id=channel_id,
            origin=origin,
            external_ids=external_ids or ExternalIdGenerator(clock=clock),
            clock=clock,
            include_query=include_query,
        )
        self.client_key = client_key
        self._key = key
        self._targets: dict[str, tuple[Endpoint, str]] = {}

    def _current_token(self) -> str:
        token = self.tokens.token  # type: ignore[attr-defined]
        if token is None:
            raise ConfigError("No access token yet.", hint="Call get_token() first, or use call().")
        return token.access_token

    def _call(
        self, method: str, path: str, body: JsonBody, token: AccessToken, external_id: str | None, idempotent: bool | None
    ) -> Exchange[ServiceResponse]:
        method = _method(method)
        data = encode_body(body)
        endpoint, sent_path = self._target(path)
        if external_id is not None:
            check_external_id(external_id)
        call = _ServiceCall(
            self.auth,
            method,
            endpoint.url,
            sent_path,
            data,
            token.access_token,
            external_id=external_id,
            idempotent=(method in ("GET", "HEAD", "OPTIONS")) if idempotent is None else bool(idempotent),
        )
        tc = self.tokens  # type: ignore[attr-defined]
        return Exchange(
            endpoint,
            call,
            client_key=self.client_key,
            clock=self._clock,
            retry=self.retry,
            log=self.log,
            timeout=tc.timeout,
            deadline=tc.deadline,
            max_response_bytes=tc.max_response_bytes,
            rng=self._rng,
        )

    def _target(self, path: str) -> tuple[Endpoint, str]:
        """The endpoint of ``path`` and the path as httpx sends it, checked once per path (a hot loop
        calls the same few paths; parsing a URL costs tens of microseconds)."""
        found = self._targets.get(path)
        if found is None:
            endpoint = self.endpoint.endpoint_for(path)
            check_target(endpoint.url)
            found = (endpoint, relative_url(httpx.URL(endpoint.url)))
            if len(self._targets) >= 256:
                self._targets.clear()
            self._targets[path] = found
        return found

    def prepare(
        self,
        method: str,
        path: str,
        body: JsonBody = None,
        *,
        access_token: str,
        external_id: str | None = None,
        idempotent: bool | None = None,
    ) -> ServiceRequest:
        """The signed first attempt :meth:`call` would send with ``access_token``, without sending it.

        For showing a request (``as_curl``) or checking input before any network: a body that cannot
        be signed, a bad path or X-EXTERNAL-ID raises here.
        """
        token = _TokenOnly(access_token)
        exchange = self._call(method, path, body, token, external_id, idempotent)  # type: ignore[arg-type]
        return exchange.call.prepare(self._clock())

    @staticmethod
    def _explain(exc: SnapbookError, exchange: Exchange[ServiceResponse]) -> SnapbookError:
        """Add the retry rule's consequence to a failure the client did not retry."""
        call: _ServiceCall = exchange.call  # type: ignore[assignment]
        maybe_processed = (
            isinstance(exc, (TransportError, InvalidResponseError)) and not _never_sent(exc.__cause__)
        ) or (isinstance(exc, SnapResponseError) and (exc.http_status or 0) >= 500)
        if not call.idempotent and maybe_processed:
            exc.hint = (exc.hint + " " if exc.hint else "") + (
                f"snapbook did not retry this {call.method}: it may have reached the provider. Query the "
                "transaction's status (by partnerReferenceNo) before sending it again, with a new X-EXTERNAL-ID."
            )
        return exc

    def __repr__(self) -> str:
        e = self.endpoint
        return (
            f"{type(self).__name__}(endpoint={e.name!r}, base_url={mask_url(e.base_url)!r}, "
            f"token_url={mask_url(e.token.url)!r}, client_key={self.client_key!r}, "
            f"partner_id={self.auth.partner_id!r}, channel_id={self.auth.channel_id!r}, signature={self.signature!r})"
        )


@dataclass(frozen=True)
class _TokenOnly:
    access_token: str = field(repr=False)


def _method(method: str) -> str:
    if not isinstance(method, str) or not method.isascii() or not method.isalpha() or len(method) > 20:
        raise ServiceSignatureInputError(
            f"{printable(repr(method), 40)} is not an HTTP method.", hint="Use POST, GET, PUT, PATCH or DELETE."
        )
    return method.upper()


class ServiceClient(_BaseServiceClient):
    """Signed SNAP service calls (sync), with the B2B token got, cached and refreshed for you. Thread-safe.

    ``target`` is a name (``payment-stage``: services on ``api-stage.ifortepay.id``, token on
    ``kronos-stage``; ``disbursement-stage``: Senmo; ``sandbox``) or a base URL (``token_url``
    then says where the token comes from). ``private_key`` signs the token request;
    ``client_secret`` the calls (``signature="asymmetric"`` signs them with the key instead).
    Every other option is :class:`~snapbook.client.TokenClient`'s (transport, clock, timeout,
    deadline, retry, log, rng, verify, max_response_bytes, sleep), shared by both. The retry rule
    is in the module docstring: a POST is never sent twice when the first may have been processed.
    """

    def __init__(
        self,
        target: str | ServiceEndpoint,
        client_key: str,
        private_key: PrivateKeyLike,
        client_secret: str | bytes | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(target, client_key, private_key, client_secret, **options)
        self._sleep = sleep
        self.tokens = TokenClient(self.endpoint.token, client_key, self._key, sleep=sleep, **self._options)
        self._refresh_lock = threading.Lock()

    def get_token(self) -> AccessToken:
        """The cached B2B token, or a new one (see :meth:`TokenClient.get_token`)."""
        return self.tokens.get_token()

    def call(
        self,
        method: str,
        path: str,
        body: JsonBody = None,
        *,
        external_id: str | None = None,
        idempotent: bool | None = None,
    ) -> ServiceResponse:
        """One signed call: ``path`` as the provider documents it (query included), ``body`` a dict or the bytes.

        Returns the answer for a 2xx responseCode; raises :class:`SnapResponseError` for a refusal,
        :class:`TransportError` / :class:`InvalidResponseError` otherwise. ``idempotent`` defaults to
        True for GET only.
        """
        token = self.tokens.get_token()
        exchange = self._call(method, path, body, token, external_id, idempotent)
        http = self.tokens._client()  # one connection pool for token and service calls
        try:
            return exchange.run(http, self._sleep)
        except SnapbookError as exc:
            if not _token_rejected(exc):
                raise self._explain(exc, exchange) from exc.__cause__
        # 401xx01: one new token (joined with any refresh already made by another thread), one more call.
        with self._refresh_lock:
            current = self.tokens.token
            token = self.tokens.refresh() if current is None or current is token else current
        exchange = self._call(method, path, body, token, external_id, idempotent)
        try:
            return exchange.run(http, self._sleep)
        except SnapbookError as exc:
            raise self._explain(exc, exchange) from exc.__cause__

    def post(self, path: str, body: JsonBody = None, **options: Any) -> ServiceResponse:
        return self.call("POST", path, body, **options)

    def get(self, path: str, **options: Any) -> ServiceResponse:
        return self.call("GET", path, None, **options)

    def close(self) -> None:
        self.tokens.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncServiceClient(_BaseServiceClient):
    """The asyncio twin of :class:`ServiceClient`: same options, ``await``-able :meth:`call`."""

    def __init__(
        self,
        target: str | ServiceEndpoint,
        client_key: str,
        private_key: PrivateKeyLike,
        client_secret: str | bytes | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(target, client_key, private_key, client_secret, **options)
        self._sleep = sleep
        self.tokens = AsyncTokenClient(self.endpoint.token, client_key, self._key, sleep=sleep, **self._options)

    async def get_token(self) -> AccessToken:
        return await self.tokens.get_token()

    async def call(
        self,
        method: str,
        path: str,
        body: JsonBody = None,
        *,
        external_id: str | None = None,
        idempotent: bool | None = None,
    ) -> ServiceResponse:
        """See :meth:`ServiceClient.call`."""
        token = await self.tokens.get_token()
        exchange = self._call(method, path, body, token, external_id, idempotent)
        http = self.tokens._client()
        try:
            return await exchange.arun(http, self._sleep)
        except SnapbookError as exc:
            if not _token_rejected(exc):
                raise self._explain(exc, exchange) from exc.__cause__
        current = self.tokens.token
        token = await self.tokens.refresh() if current is None or current is token else current
        exchange = self._call(method, path, body, token, external_id, idempotent)
        try:
            return await exchange.arun(http, self._sleep)
        except SnapbookError as exc:
            raise self._explain(exc, exchange) from exc.__cause__

    async def post(self, path: str, body: JsonBody = None, **options: Any) -> ServiceResponse:
        return await self.call("POST", path, body, **options)

    async def get(self, path: str, **options: Any) -> ServiceResponse:
        return await self.call("GET", path, None, **options)

    async def aclose(self) -> None:
        await self.tokens.aclose()

    async def __aenter__(self) -> AsyncServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
