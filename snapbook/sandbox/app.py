"""The sandbox as an ASGI application (Starlette): routes, answers, journal and faults.

Routes (see :mod:`snapbook.sandbox.checks` for the order of the checks on a token request):

- ``POST /auth/merchants/v1.0/access-token/b2b`` (Ifortepay Payment), ``POST
  /api/v1.0/access-token/b2b`` (Senmo Disbursement), ``POST /v1.0/access-token/b2b`` (plain SNAP);
- ``GET|POST /sandbox/v1.0/token/validate`` with ``Authorization: Bearer <token>``: is this token
  valid now? ``200 2007300`` with the claims in ``additionalInfo``, ``401 4017301 Invalid Token
  (B2B)``, or ``401 4017303 Token Not Found (B2B)`` when no token is sent;
- ``GET /openapi.json``: the OpenAPI description of all of the above;
- with ``SandboxConfig.route_prefixes``, the token routes again under each prefix (an SDK that
  posts to ``/openapi/v1.0/access-token/b2b`` needs ``/openapi``).

Every answer, including 404, 405 and injected faults, is SNAP-shaped JSON with the
``X-TIMESTAMP`` (the sandbox clock, +07:00) and ``X-CLIENT-KEY`` (the request's, echoed)
headers, and its HTTP status equals the first three digits of ``responseCode``. Only a
dropped-connection fault answers nothing. Faults apply to the three token routes only: the
body is read, then the fault draw decides between an injected answer and the normal checks,
and the added delay comes before either answer.

:func:`create_app` returns the application; ``app.state.provider`` is its :class:`Provider`
(registered clients, token issuer, journal and faults), which :class:`snapbook.sandbox.Sandbox`
drives.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..endpoints import TOKEN_PATHS
from ..errors import ConfigError, KeyKindError
from ..keys import public_key_from
from ..masking import mask, printable
from ..signing import check_client_key, make_timestamp
from .checks import Verdict, _check_table, reject, too_large, with_reason
from .compact_json import compact_encoder
from .config import SandboxConfig
from .external_ids import ExternalIds
from .faults import FaultDecision, FaultInjector, Faults
from .journal import Journal, JournalEntry, new_entry
from .openapi import openapi_document
from .qr_store import QrStore
from .service_checks import PARTNER_ID, SERVED_SERVICES, ServiceClient
from .tokens import InvalidTokenError, TokenIssuer

__all__ = [
    "OPENAPI_PATH",
    "PRODUCTS",
    "TRANSPORT_SCOPE_KEY",
    "VALIDATE_PATH",
    "Provider",
    "create_app",
]

logger = logging.getLogger("snapbook.sandbox")

#: The token route of each product (the same table as :data:`snapbook.endpoints.TOKEN_PATHS`).
PRODUCTS: dict[str, str] = dict(TOKEN_PATHS)
VALIDATE_PATH = "/sandbox/v1.0/token/validate"
OPENAPI_PATH = "/openapi.json"

#: Where the sandbox's uvicorn protocol puts the connection's transport in ``scope["extensions"]``,
#: so a dropped-connection fault can close it without answering.
TRANSPORT_SCOPE_KEY = "snapbook.transport"

# Fault answers: HTTP status -> (responseCode, responseMessage). 5037300 is not in the SNAP
# table (it has no 503 row); it is this sandbox's choice, documented in checks.py.
_FAULT_ANSWERS: dict[str, tuple[int, str, str]] = {
    "429": (429, "4297300", "Too Many Requests"),
    "500": (500, "5007300", "General Error"),
    "503": (503, "5037300", "Service Unavailable"),
    "504": (504, "5047300", "Timeout"),
}

#: Paths under these prefixes are service paths: one not served gets the "not served" answer.
_SERVICE_PREFIXES = ("/v1.0/", "/v1.1/", "/v1.2/", "/api/v1.0/", "/api/v1.1/", "/api/v1.2/")


def with_notes(verdict: Verdict, *notes: str) -> Verdict:
    return Verdict(verdict.accepted, verdict.http_status, verdict.response_code, verdict.response_message,
                   (*verdict.notes, *notes), verdict.client_key, verdict.doctor)


#: Said with every 404, so nobody reads 4047300 as the standard's 404xx00.
_SANDBOX_404_NOTE = "4047300 is a sandbox code (the standard's 404xx00 is 'Invalid Transaction Status')"

# Bodies larger than the limit are still read (and discarded) up to this much more, so the
# client gets its 400 instead of a broken pipe; beyond it the connection is closed.
_DRAIN_BYTES = 1024 * 1024


def _as_public_key(public_key: Any) -> rsa.RSAPublicKey:
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key
    if isinstance(public_key, rsa.RSAPrivateKey):
        raise KeyKindError(
            "A private key was given where the sandbox needs the client's public key.",
            hint="Register key.public_key(): a provider only ever holds the merchant's public key.",
        )
    return public_key_from(public_key)


def _check_client_key(client_key: str) -> str:
    return check_client_key(client_key)  # the signer's rule: what can be signed can be registered


def _check_secret(secret: str | bytes | None) -> bytes | None:
    """The client secret as bytes, refused (typed) when empty, not text, or wrapped in whitespace."""
    if secret is None:
        return None
    hint = (
        "Pass the client secret exactly as registered with Ifortepay (letters, digits, !@#$%^), "
        "no newline."
    )
    if isinstance(secret, str):
        data = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray)):
        data = bytes(secret)
    else:
        raise ConfigError(f"The client secret must be str or bytes, not {type(secret).__name__}.", hint=hint)
    if not data:
        raise ConfigError("The client secret is empty.", hint=hint)
    if data != data.strip():
        raise ConfigError("The client secret has whitespace around it (a newline from a file?).", hint=hint)
    return data


def _check_partner_id(partner_id: object) -> str:
    if not isinstance(partner_id, str) or not PARTNER_ID.fullmatch(partner_id):
        raise ConfigError(
            f"partner_id {printable(repr(partner_id), 60)} is not an X-PARTNER-ID "
            "(printable, at most 36 characters).",
            hint="Use the merchant id Ifortepay gave, e.g. MCP2021110228; it defaults to the client key.",
        )
    return partner_id


def _header_safe(value: str, limit: int = 256) -> str:
    """A header value that can be sent back: printable Latin-1, trimmed."""
    value = value[:limit]
    if value.isascii() and value.isprintable():  # every character is 0x20-0x7E: nothing to replace
        return value.strip()
    cleaned = "".join(c if (0x20 <= ord(c) <= 0x7E or 0xA0 <= ord(c) <= 0xFF) else "?" for c in value)
    return cleaned.strip()


# JSONResponse's own encoding (compact, UTF-8, no NaN), built once instead of once per answer.
_encode_json = compact_encoder(ensure_ascii=False, allow_nan=False)


class _JSONAnswer(JSONResponse):
    """A :class:`JSONResponse` (same body bytes, same headers) whose encoder is made once, not per answer."""

    def render(self, content: Any) -> bytes:
        return _encode_json(content).encode("utf-8")

    @classmethod
    def snap(cls, content: Any, status: int, timestamp: str, client_key: str) -> _JSONAnswer:
        """``cls(content, status, {"X-TIMESTAMP": timestamp, "X-CLIENT-KEY": client_key})``, byte for byte.

        Starlette's ``init_headers`` lower-cases and encodes a header mapping and searches it
        for Content-Length and Content-Type on every answer; the sandbox's usual answer has the
        same two headers each time, so its raw header list is written out directly (for a
        status that carries a body; others take Starlette's way).
        """
        if status < 200 or status in (204, 304):
            return cls(content, status_code=status, headers={"X-TIMESTAMP": timestamp, "X-CLIENT-KEY": client_key})
        answer = cls.__new__(cls)
        answer.status_code = status
        answer.background = None
        body = answer.body = _encode_json(content).encode("utf-8")
        answer.raw_headers = [
            (b"x-timestamp", timestamp.encode("latin-1")),
            (b"x-client-key", client_key.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]
        return answer


class Provider:
    """The sandbox's state: registered clients, token issuer, journal, faults and settings.

    Safe to use from any thread while the server runs: clients and faults are replaced, never
    mutated in place.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clients: Mapping[str, Any] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.journal = journal if journal is not None else Journal()
        self.issuer = TokenIssuer(self.config.secret, self.config.token_lifetime, self.config.now)
        self._clients: dict[str, rsa.RSAPublicKey] = {}
        self._service_clients: dict[str, ServiceClient] = {}
        self._lock = threading.Lock()
        self.qrs = QrStore()
        self._stamp_cache: tuple[float, str] = (float("nan"), "")
        self.external_ids = ExternalIds()
        self._injector = FaultInjector(self.config.faults)
        #: Set when the server stops, so injected delays end early instead of holding it up.
        self.closing = threading.Event()
        for client_key, key in (clients or {}).items():
            self.register(client_key, key)

    # --- clients ----------------------------------------------------------------------

    def register(
        self,
        client_key: str,
        public_key: Any,
        *,
        secret: str | bytes | None = None,
        partner_id: str | None = None,
    ) -> None:
        """Accept ``client_key`` signed with the private half of ``public_key`` (object, PEM/DER, or path).

        ``secret`` is the client secret of the symmetric service signature (and of the
        notifications); ``partner_id`` the X-PARTNER-ID of its service calls (default: the
        client key). Registering a client again replaces all three.
        """
        key = _as_public_key(public_key)
        check_client_key(client_key)  # the signer's rule: what can be signed can be registered
        secret_bytes = _check_secret(secret)
        partner = client_key if partner_id is None else _check_partner_id(partner_id)
        with self._lock:
            taken = [
                c
                for c in self._service_clients.values()
                if c.partner_id == partner and c.client_key != client_key
            ]
            if taken:
                raise ConfigError(
                    f"Partner id {printable(partner, 40)} is already registered for client "
                    f"{printable(taken[0].client_key, 40)}.",
                    hint="Each merchant has its own X-PARTNER-ID; give this client another partner_id.",
                )
            self._clients = {**self._clients, client_key: key}
            self._service_clients = {
                **self._service_clients,
                client_key: ServiceClient(client_key, partner, secret_bytes, key),
            }

    def unregister(self, client_key: str) -> None:
        with self._lock:
            self._clients = {k: v for k, v in self._clients.items() if k != client_key}
            self._service_clients = {k: v for k, v in self._service_clients.items() if k != client_key}

    @property
    def service_clients(self) -> dict[str, ServiceClient]:
        """The clients of service calls by client key (a copy; secrets are not shown in reprs)."""
        return dict(self._service_clients)

    @property
    def clients(self) -> dict[str, rsa.RSAPublicKey]:
        """The registered public keys by client key (a copy)."""
        return dict(self._clients)

    # --- faults and tokens ------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        if faults is not None and not isinstance(faults, Faults):
            raise TypeError("faults must be a snapbook.sandbox.Faults (or None for none)")
        self._injector = FaultInjector(faults or Faults())  # a fresh, re-seeded sequence

    def draw_fault(self) -> FaultDecision:
        """The fault (if any) and delay for the next token request, from the seeded sequence."""
        return self._injector.decide()

    def validate_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this sandbox issued, or :class:`InvalidTokenError` (invalid or expired)."""
        return self.issuer.validate(token)

    async def pause(self, seconds: float) -> float:
        """Sleep ``seconds``, ending early when the server is stopping; returns the time slept."""
        start = time.monotonic()
        deadline = start + seconds
        while not self.closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(0.05, remaining))
        return time.monotonic() - start

    # --- answers ----------------------------------------------------------------------

    def answer(
        self,
        status: int,
        body: dict[str, Any],
        client_key: str,
        headers: Mapping[str, str] | None = None,
        *,
        now: datetime | None = None,
    ) -> JSONResponse:
        """A JSON answer with the two SNAP response headers (X-TIMESTAMP from ``now``, else the clock)."""
        stamp = self._stamp(self.config.now() if now is None else now)
        if not headers:
            return _JSONAnswer.snap(body, status, stamp, _header_safe(client_key))
        all_headers = {"X-TIMESTAMP": stamp, "X-CLIENT-KEY": _header_safe(client_key)}
        all_headers.update(headers)
        return _JSONAnswer(body, status_code=status, headers=all_headers)

    def _stamp(self, now: datetime) -> str:
        """make_timestamp(now), made once per second: every answer of that second carries it."""
        second = now.timestamp() // 1
        cached = self._stamp_cache
        if cached[0] == second:
            return cached[1]
        text = make_timestamp(now)
        self._stamp_cache = (second, text)  # one tuple, replaced: safe across threads
        return text

    def error(
        self,
        verdict: Verdict,
        client_key: str,
        headers: Mapping[str, str] | None = None,
        *,
        now: datetime | None = None,
    ) -> JSONResponse:
        body = {"responseCode": verdict.response_code, "responseMessage": verdict.response_message}
        return self.answer(verdict.http_status, body, client_key, headers, now=now)

    def record(self, request_info: dict[str, Any], started: float, **fields: Any) -> None:
        self.journal.append(
            _journal_row(
                {
                    **request_info,
                    **fields,  # fields override what the request said (e.g. client_key)
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
        )

    def record_verdict(
        self, request_info: dict[str, Any], started: float, verdict: Verdict, **fields: Any
    ) -> None:
        """:meth:`record` the answer a :class:`Verdict` gave; ``fields`` add to or override it."""
        # record(), inlined: one merged dict per row instead of three (this runs for every request).
        self.journal.append(
            _journal_row(
                {
                    **request_info,
                    "verdict": "accepted" if verdict.accepted else "rejected",
                    "http_status": verdict.http_status,
                    "response_code": verdict.response_code,
                    "response_message": verdict.response_message,
                    "notes": verdict.notes,
                    "doctor": verdict.doctor,
                    **fields,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
        )


#: Row fields that repeat from request to request (the same method, path, client and code all
#: through a run), which uvicorn and the checks make anew for each: rows share one copy of each
#: (``sys.intern``; a text no row uses any more is released), about 200 B less per row kept.
#: (A service call's masked token repeats too: its route shares it. A new token's does not.)
_REPEATED_TEXTS = ("method", "path", "client_key", "response_code")


def _journal_row(fields: dict[str, Any]) -> JournalEntry:
    """The journal row of these fields, its repeated texts shared with the rows before it."""
    for name in _REPEATED_TEXTS:
        value = fields.get(name)
        if type(value) is str:
            fields[name] = sys.intern(value)
    return new_entry(**fields)


def _request_info(scope: Scope, provider: Provider, product: str) -> tuple[dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        headers.setdefault(name, raw_value.decode("latin-1"))
    try:
        now = provider.config.now()
    except Exception:
        now = datetime.now(timezone.utc)
    info = {
        "time": now,
        "method": str(scope.get("method", "")),
        "path": str(scope.get("path", ""))[:200],
        "product": product,
        "client_key": headers.get("x-client-key", "").strip()[:128],
    }
    return info, headers


def _header_table(scope: Scope) -> dict[str, list[str]]:
    """The request headers, decoded once: lower-case name -> values in the order received."""
    table: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        values = table.get(name)
        if values is None:
            table[name] = [raw_value.decode("latin-1")]
        else:
            values.append(raw_value.decode("latin-1"))
    return table


def _arrival(config: SandboxConfig) -> tuple[datetime | None, datetime]:
    """The clock, read once per request: ``now`` for the checks, the token's iat and the answer's
    X-TIMESTAMP, and the journal's time. A clock that raises gives ``now`` None (the route reads it
    again inside its error handling) and the system time for the journal."""
    try:
        now = config.now()
    except Exception:
        return None, datetime.now(timezone.utc)
    return now, now


async def _body_or_journal(
    provider: Provider, receive: Receive, table: Mapping[str, list[str]], info: dict[str, Any], started: float,
    **fields: Any,
) -> tuple[bytes, Verdict | None, bool] | None:
    """:func:`_read_body` for a route; None when the client left mid-body (journaled as such)."""
    try:
        return await _read_body(receive, provider.config.max_body_bytes, _first(table, "content-length"))
    except ClientDisconnect:
        provider.record(
            info, started, verdict="rejected", http_status=0, response_code="", response_message="",
            notes=("client disconnected before sending the whole body",), **fields,
        )  # fmt: skip
        return None


async def _read_body(receive: Receive, limit: int, declared: str) -> tuple[bytes, Verdict | None, bool]:
    """(body, the rejection when it is over ``limit``, whether the connection must then close).

    ``declared`` is the Content-Length header ("" if none). Reads the ASGI messages the way
    ``Request.stream()`` does, and raises :class:`ClientDisconnect` as it does.
    """
    if declared.isdigit() and int(declared) > limit + _DRAIN_BYTES:
        return b"", too_large(int(declared), limit, declared=True), True
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total <= limit:
                    chunks.append(chunk)
                if total > limit + _DRAIN_BYTES:
                    return b"", too_large(total, limit), True
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    if total > limit:
        return b"", too_large(total, limit), False
    return b"".join(chunks), None, False


class _TokenRoute:
    """The ASGI app behind one token route (an ASGI app, not a function, so it can drop a connection)."""

    #: The SNAP service code of this route's answers (73: Access Token B2B).
    service = "73"

    def __init__(self, provider: Provider, product: str) -> None:
        self.provider = provider
        self.product = product

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = self.provider
        config = provider.config
        started = time.perf_counter()
        # The headers are decoded once, and the clock read once: the journal's time, the checks'
        # "now", the token's iat and the answer's X-TIMESTAMP are the same instant.
        table = _header_table(scope)
        now, arrived = _arrival(config)
        client_key_header = _first(table, "x-client-key")
        info = {
            "time": arrived,
            "method": str(scope.get("method", "")),
            "path": str(scope.get("path", ""))[:200],
            "product": self.product,
            "client_key": client_key_header.strip()[:128],
        }
        signature = mask(_first(table, "x-signature").strip())
        try:
            read = await _body_or_journal(provider, receive, table, info, started, signature=signature)
            if read is None:
                return
            body, oversize, must_close = read
            decision = provider.draw_fault()
            if decision.kind is not None:
                await self._fault(scope, receive, send, decision, info, started, client_key_header, signature)
                return
            if now is None:  # a broken clock: it raises here, inside the error handling, as it always did
                now = config.now()
            if oversize is not None:
                verdict = oversize
            else:
                verdict = _check_table(
                    table,
                    body,
                    clients=provider._clients,  # replaced, never mutated: a consistent snapshot
                    now=now,
                    freshness_seconds=config.freshness_seconds,
                    strict=config.strict,
                )
            token = jti = ""
            if verdict.accepted:
                token, claims = provider.issuer.issue(verdict.client_key, now=now)
                jti = claims["jti"]
                lifetime = config.token_lifetime
                response: Response = provider.answer(
                    200,
                    {
                        "responseCode": verdict.response_code,
                        "responseMessage": verdict.response_message,
                        "accessToken": token,
                        "tokenType": "Bearer",
                        "expiresIn": lifetime if config.expires_in_as_number else str(lifetime),
                    },
                    verdict.client_key,
                    now=now,
                )
            else:
                extra_headers = _CLOSE if must_close else None
                response = provider.error(verdict, client_key_header, extra_headers, now=now)
            notes = verdict.notes
            if decision.delay:
                slept = await provider.pause(decision.delay)
                notes = (*notes, _delay_note(decision, slept))
                if decision.slow and await Request(scope, receive).is_disconnected():
                    notes = (*notes, "the client had gone before the answer was ready (slow-answer fault)")
            # Journal first, so a client that reads the journal after its answer finds its row.
            provider.record_verdict(
                info, started, verdict, notes=notes, signature=signature, token=mask(token) if token else "", jti=jti
            )
            await response(scope, receive, send)
        except Exception as exc:
            await _internal_error(provider, scope, receive, send, info, started, client_key_header, exc)

    async def _fault(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decision: FaultDecision,
        info: dict[str, Any],
        started: float,
        client_key: str,
        signature: str,
        **fields: Any,
    ) -> None:
        provider = self.provider
        service = self.service
        notes = [f"injected fault: {decision.kind}"]
        if decision.kind == "503":
            notes.append(f"503{service}00 is a sandbox code: the SNAP table has no 503 row")
        if decision.delay:
            slept = await provider.pause(decision.delay)
            notes.append(_delay_note(decision, slept))
        if decision.kind == "drop":
            provider.record(
                info,
                started,
                verdict="fault",
                http_status=0,
                response_code="",
                response_message="",
                notes=(*notes, "connection closed without an answer"),
                signature=signature,
                **fields,
            )
            await _drop(scope, send)
            return
        status, code, message = _FAULT_ANSWERS[decision.kind or "500"]
        code = f"{status}{service}{code[-2:]}"
        headers = {"Retry-After": str(provider.faults.retry_after)} if decision.kind == "429" else None
        verdict = Verdict(False, status, code, message)
        response = provider.error(verdict, client_key, headers)
        provider.record(
            info,
            started,
            verdict="fault",
            http_status=status,
            response_code=code,
            response_message=message,
            notes=tuple(notes),
            signature=signature,
            **fields,
        )
        await response(scope, receive, send)


def _first(table: Mapping[str, list[str]], name: str) -> str:
    """The first value of header ``name`` (lower case), or ""."""
    values = table.get(name)
    return values[0] if values else ""


_CLOSE = {"Connection": "close"}


def _delay_note(decision: FaultDecision, slept: float) -> str:
    kind = "slow-answer fault" if decision.slow else "latency fault"
    note = f"answer delayed {decision.delay:.3f} s ({kind})"
    if slept < decision.delay - 0.01:
        note += f", cut short after {slept:.3f} s because the sandbox was stopping"
    return note


async def _drop(scope: Scope, send: Send) -> None:
    """Close the connection without an answer (needs the sandbox's uvicorn protocol)."""
    transport = scope.get("extensions", {}).get(TRANSPORT_SCOPE_KEY)
    if transport is not None:
        transport.close()
        # Let the server see the connection is lost before this app returns, so it does not
        # try to send a 500 for an app that "returned without a response".
        for _ in range(3):
            await asyncio.sleep(0)
        return
    # Another server: announce a body and stop halfway, which closes the connection mid-answer.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


async def _internal_error(
    provider: Provider,
    scope: Scope,
    receive: Receive,
    send: Send,
    info: dict[str, Any],
    started: float,
    client_key: str,
    exc: BaseException,
    service: str = "73",
) -> None:
    logger.error("sandbox error on %s %s", info["method"], info["path"], exc_info=exc)
    verdict = reject(
        500, "01", "Internal Server Error", [f"sandbox error: {type(exc).__name__}: {str(exc)[:120]}"]
    )
    if service != "73":
        verdict = Verdict(False, 500, f"500{service}01", verdict.response_message, verdict.notes)
    try:
        await provider.error(verdict, client_key)(scope, receive, send)
    except Exception:
        logger.debug("could not send the 500 answer", exc_info=True)
    provider.record_verdict(info, started, verdict, verdict="error")


def _bearer(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, problem) from an Authorization header."""
    auth = headers.get("authorization", "").strip()
    if not auth:
        return None, None
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "Authorization is not 'Bearer <token>'"
    return token.strip(), None


def create_app(
    config: SandboxConfig | None = None,
    *,
    clients: Mapping[str, Any] | None = None,
    journal: Journal | None = None,
) -> Starlette:
    """The sandbox as a Starlette application; ``app.state.provider`` holds its state.

    ``clients`` maps client keys to public keys (objects, PEM/DER text or paths). Serve it with
    :class:`snapbook.sandbox.Sandbox` (which also supports dropped-connection faults), or with
    any ASGI server, or call it in-process with ``httpx.ASGITransport``.
    """
    provider = Provider(config, clients=clients, journal=journal)

    async def validate(request: Request) -> Response:
        started = time.perf_counter()
        info, headers = _request_info(request.scope, provider, "")
        token, problem = _bearer(headers)
        client_key = headers.get("x-client-key", "")
        masked = mask(token) if token else ""
        if token is None:
            if problem:
                verdict = reject(401, "01", with_reason("Invalid Token (B2B)", problem), [problem])
            else:
                verdict = reject(401, "03", "Token Not Found (B2B)", ["no Authorization: Bearer header"])
            provider.record_verdict(info, started, verdict)
            return provider.error(verdict, client_key)
        try:
            claims = provider.validate_token(token)
        except InvalidTokenError as exc:
            reason = exc.reason.rstrip(".")
            verdict = reject(401, "01", with_reason("Invalid Token (B2B)", reason), [reason])
            provider.record_verdict(info, started, verdict, token=masked)
            return provider.error(verdict, client_key)
        remaining = int(claims["exp"] - provider.config.now().timestamp())
        body = {
            "responseCode": "2007300",
            "responseMessage": "Successful",
            "additionalInfo": {
                "clientKey": claims["sub"],
                "jti": claims["jti"],
                "iat": claims["iat"],
                "exp": claims["exp"],
                "expiresIn": remaining,
            },
        }
        info["client_key"] = info["client_key"] or str(claims["sub"])[:128]
        provider.record(
            info,
            started,
            verdict="accepted",
            http_status=200,
            response_code="2007300",
            response_message="Successful",
            token=masked,
            jti=str(claims["jti"]),
        )
        return provider.answer(200, body, client_key or str(claims["sub"]))

    async def openapi(request: Request) -> Response:
        started = time.perf_counter()
        info, headers = _request_info(request.scope, provider, "")
        base = str(request.base_url).rstrip("/")
        response = provider.answer(
            200, openapi_document(provider.config, base), headers.get("x-client-key", "")
        )
        provider.record(
            info, started, verdict="accepted", http_status=200, response_code="", response_message=""
        )
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # Starlette only routes HTTPException here
            return await crash(request, exc)
        started = time.perf_counter()
        product = provider.config.token_paths().get(str(request.scope.get("path")), "")
        info, headers = _request_info(request.scope, provider, product)
        path = str(request.scope.get("path", ""))
        if exc.status_code == 404 and path.startswith(_SERVICE_PREFIXES) and "access-token" not in path:
            service, verdict, body = unserved(path)
            info["service"] = service
            verdict = with_notes(
                verdict,
                "404xx00 here is this sandbox's 'not served' answer (the standard's is "
                "'Invalid Transaction Status')",
            )
            provider.record_verdict(info, started, verdict)
            return provider.answer(404, body, headers.get("x-client-key", ""))
        if exc.status_code == 404:  # 4047300 is this sandbox's own code (codes.SANDBOX_CODES)
            verdict = reject(
                404, "00", "Not Found. [Unknown path]", [f"no route {info['path']!r}", _SANDBOX_404_NOTE]
            )
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            verdict = reject(
                405,
                "00",
                "Requested Function Is Not Supported",
                [f"{info['method']} is not allowed here ({allowed})"],
            )
        else:
            status = exc.status_code if 400 <= exc.status_code < 600 else 400
            verdict = reject(status, "00", str(exc.detail or "Bad Request"), [])
        provider.record_verdict(info, started, verdict)
        return provider.error(verdict, headers.get("x-client-key", ""), exc.headers)

    async def crash(request: Request, exc: Exception) -> Response:
        logger.error("sandbox error on %s %s", request.method, request.url.path, exc_info=exc)
        info, headers = _request_info(request.scope, provider, "")
        verdict = reject(500, "01", "Internal Server Error", [f"sandbox error: {type(exc).__name__}"])
        provider.record(
            info,
            time.perf_counter(),
            verdict="error",
            http_status=500,
            response_code=verdict.response_code,
            response_message=verdict.response_message,
            notes=verdict.notes,
        )
        return provider.error(verdict, headers.get("x-client-key", ""))

    routes = [
        Route(path, _TokenRoute(provider, product), methods=["POST"])
        for path, product in provider.config.token_paths().items()
    ]
    from .service_routes import PAY_PATH, ServiceRouteApp, pay, unserved

    routes += [
        Route(path, ServiceRouteApp(provider, route), methods=["POST"])
        for path, route in SERVED_SERVICES.items()
    ]

    class _PayRoute:  # an ASGI app (not a function, which Starlette would call with a Request)
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await pay(provider, scope, receive, send)

    routes.append(Route(PAY_PATH, _PayRoute(), methods=["POST"]))
    routes.append(Route(VALIDATE_PATH, validate, methods=["GET", "POST"]))
    routes.append(Route(OPENAPI_PATH, openapi, methods=["GET"]))
    app = _SandboxApp(routes=routes, exception_handlers={HTTPException: http_error, Exception: crash})
    app.router.redirect_slashes = False  # a redirect is not a SNAP answer
    app.state.provider = provider
    # POSTs to the token and service routes go straight to their apps, which answer every
    # outcome themselves (their own errors included); everything else takes Starlette's way.
    app.direct = {
        route.path: route.app
        for route in routes
        if isinstance(route.app, _TokenRoute) and route.methods and "POST" in route.methods
    }
    return app


class _SandboxApp(Starlette):
    """Starlette, with exact POST paths of the SNAP routes dispatched by one dict look-up.

    The token and service route apps catch and answer everything themselves, so Starlette's
    middleware stack and its route-by-route regex matching (about 10-20 µs a request, a large
    share of the cheapest answers) only add cost there; 404, 405 and the other routes are unchanged.
    """

    direct: ClassVar[dict[str, Any]] = {}  # replaced per app by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            route = self.direct.get(scope.get("path", ""))
            if route is not None:
                scope["app"] = self
                await route(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
