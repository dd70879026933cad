"""How the sandbox judges a service call (QRIS generate/query, Senmo balance): pure checks, no HTTP.

The checks run in this order; the first that fails decides the answer. ``SS`` is the route's
service code (47 generate, 51 query, 11 balance inquiry); the HTTP status is the first three
digits of ``responseCode``.

====  =========================================================  ====  ===========  =====================================
step  check                                                      HTTP  responseCode responseMessage
====  =========================================================  ====  ===========  =====================================
1     path is served, method is POST                             404   404SS00      Not Found. [Not served by this sandbox]
2     body is at most ``max_body_bytes``                         400   400SS00      Bad Request (reason)
3     Content-Type, Authorization, X-TIMESTAMP, X-SIGNATURE,     400   400SS02      Invalid Mandatory Field [name]
      X-PARTNER-ID, X-EXTERNAL-ID, CHANNEL-ID present (this
      order); a missing Authorization is the standard's own     401   401SS03      Token Not Found (B2B)
      case, except on payment routes, where its absence means
      the asymmetric signature (checked at steps 6 and 8)
4     formats: Content-Type application/json; X-TIMESTAMP the    400   400SS01      Invalid Field Format [name]
      standard's form ``yyyy-MM-ddTHH:mm:ss(.SSS)TZD`` in both
      modes (lenient extras such as +0700 are for the token
      route only); X-PARTNER-ID printable, <= 36; X-EXTERNAL-ID
      digits, <= 36; CHANNEL-ID letters/digits <= 16 (Senmo:
      exactly ``api``)
5     X-TIMESTAMP within ``freshness_seconds``                   401   401SS00      Unauthorized. [X-TIMESTAMP out of range]
6     the Bearer token: issued by this sandbox, untampered,      401   401SS01      Invalid Token (B2B) (reason)
      unexpired, its client still registered (no Authorization
      on a payment route: X-PARTNER-ID must be registered)       401   401SS00      Unauthorized. [Unknown partner]
7     X-PARTNER-ID is the partner registered for the token's     401   401SS00      Unauthorized. [X-PARTNER-ID]
      client
8     X-SIGNATURE: HMAC-SHA512 with the client's secret over     401   401SS00      Unauthorized. [Signature] (reason)
      ``POST:path:token:sha256(minify(body)):X-TIMESTAMP``
      (asymmetric: SHA256withRSA over ``POST:path:sha256:ts``
      with the registered public key); a body with whitespace
      that is not JSON cannot be minified                        400   400SS00      Bad Request (body is not JSON)
9     X-EXTERNAL-ID not seen for this partner today (Asia/       409   409SS00      Conflict
      Jakarta day); it is spent from here on, whatever follows
10    body is a UTF-8 JSON object                                400   400SS00      Bad Request (reason)
11    body fields: mandatory (400SS02 [field]), then formats     400   400SS02/01   Invalid Mandatory Field / Invalid
      (400SS01 [field]); see :mod:`.service_bodies`                                 Field Format [field]
12    generate: partnerReferenceNo already used by this partner  409   4094701      Duplicate partnerReferenceNo
      with the same parameters; with different ones              404   4044718      Inconsistent Request
--    query: no such QR for this partner                         404   4045101      Transaction Not Found
====  =========================================================  ====  ===========  =====================================

Steps 1-2 and 12 are applied by :mod:`snapbook.sandbox.service_routes` (they need the route
table and the QR store); :func:`check_service_call` does 3-10 (the X-EXTERNAL-ID ledger is
:class:`~snapbook.sandbox.external_ids.ExternalIds`), and :mod:`~snapbook.sandbox.service_bodies`
step 11.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import BodyFormatError, SnapbookError, TimestampError
from ..masking import mask
from ..service_signing import Verification, sign_symmetric, verify_asymmetric, verify_symmetric
from ..signing import parse_timestamp
from .checks import MAX_MESSAGE, Verdict, _clip, _load_json, _short, new_verdict, with_reason
from .external_ids import ExternalIds
from .frozen import fast_constructor

__all__ = [
    "SERVED_SERVICES",
    "UNSERVED_SERVICES",
    "ServiceCall",
    "ServiceClient",
    "ServiceRoute",
    "check_service_call",
    "service_reject",
]


@dataclass(frozen=True)
class ServiceRoute:
    """One service route the sandbox serves."""

    path: str
    service: str
    product: str
    name: str
    #: The asymmetric (RSA) signature is accepted without Authorization (never on Senmo routes).
    asymmetric: bool
    #: The one CHANNEL-ID accepted, or None for any letters/digits.
    channel: str | None = None


GENERATE = ServiceRoute("/v1.0/qr/qr-mpm-generate", "47", "payment", "Generate QR MPM (QRIS)", True)
QUERY = ServiceRoute("/v1.0/qr/qr-mpm-query", "51", "payment", "Query Payment QR MPM (QRIS)", True)
BALANCE = ServiceRoute(
    "/api/v1.0/balance-inquiry", "11", "disbursement", "Balance Inquiry (Senmo)", False, "api"
)

#: The service routes served, by path.
SERVED_SERVICES: dict[str, ServiceRoute] = {r.path: r for r in (GENERATE, QUERY, BALANCE)}

#: Service paths of Ifortepay/Senmo this sandbox knows but does not serve: path -> service code.
UNSERVED_SERVICES: dict[str, str] = {
    "/api/v1.0/account-inquiry-external": "16",
    "/api/v1.2/transfer-interbank": "18",
    "/v1.0/qr/qr-mpm-refund": "78",
    "/v1.0/qr/qr-mpm-cancel": "77",
}

#: The standard's header forms, as the checks accept them (also the OpenAPI patterns).
PARTNER_ID = re.compile(r"[!-~](?:[ -~]{0,34}[!-~])?")
EXTERNAL_ID = re.compile(r"[0-9]{1,36}")
CHANNEL_ID = re.compile(r"[A-Za-z0-9]{1,16}")

_MANDATORY = (
    "Content-Type",
    "Authorization",
    "X-TIMESTAMP",
    "X-SIGNATURE",
    "X-PARTNER-ID",
    "X-EXTERNAL-ID",
    "CHANNEL-ID",
)

_VALID = Verification(True, "valid", "the signature verifies")

_MANDATORY_LOWER = tuple((name, name.lower()) for name in _MANDATORY)


@dataclass(frozen=True)
class ServiceClient:
    """What the sandbox knows of a client for service calls (the secret never shown)."""

    client_key: str
    partner_id: str
    secret: bytes | None = field(default=None, repr=False)
    public_key: rsa.RSAPublicKey | None = field(default=None, repr=False)


def service_reject(status: int, service: str, case: str, message: str, notes: Any = ()) -> Verdict:
    """A rejection with responseCode ``<status><service><case>``."""
    return new_verdict(
        False, status, f"{status}{service}{case}", message[:MAX_MESSAGE], tuple(_clip(str(n)) for n in notes)
    )


@dataclass(frozen=True)
class ServiceCall:
    """The outcome of steps 3-10: a verdict and, when accepted, who called and the parsed body."""

    verdict: Verdict
    client: ServiceClient | None = None
    data: dict[str, Any] | None = None
    external_id: str = ""
    #: The presented token, masked, and its jti (symmetric calls).
    token: str = ""
    jti: str = ""


#: ``ServiceCall(...)`` at the speed of a plain dataclass (one per service call).
new_service_call = fast_constructor(ServiceCall)


class ServiceDoctorNote:
    """Why a service signature failed, from :func:`snapbook.doctor.diagnose_service`, on first read only.

    The doctor searches thousands of candidates; it runs when someone reads the journal row,
    never while answering (like the token route's :class:`~snapbook.sandbox.checks.DoctorNote`).
    Bodies over :data:`MAX_BODY` are not kept: their note says so.
    """

    MAX_BODY = 8 * 1024

    def __init__(
        self,
        path: str,
        headers: dict[str, str],
        body: bytes,
        secret: bytes | None,
        public_key: rsa.RSAPublicKey | None,
    ) -> None:
        self._summary: str | None = None
        self._args: tuple[Any, ...] | None = (path, headers, body, secret, public_key)
        self._lock = threading.Lock()
        if len(body) > self.MAX_BODY:
            self._summary, self._args = f"not diagnosed: the body is over {self.MAX_BODY} bytes", None

    def __call__(self) -> str | None:
        with self._lock:
            if self._args is not None:
                self._summary, self._args = _diagnose(*self._args), None
            return self._summary


def _diagnose(
    path: str, headers: dict[str, str], body: bytes, secret: bytes | None, public_key: rsa.RSAPublicKey | None
) -> str | None:
    from ..doctor import diagnose_service

    try:
        if public_key is not None:
            summary = diagnose_service("POST", path, headers, body, public_key=public_key).summary
        else:
            summary = diagnose_service("POST", path, headers, body, client_secret=secret).summary
    except Exception:
        return None
    return summary if isinstance(summary, str) and summary.strip() else None


@lru_cache(maxsize=256)
def _sent_at(timestamp: str) -> datetime:
    """X-TIMESTAMP in the standard's form (strict), parsed; cached: one second serves many calls."""
    return parse_timestamp(timestamp, strict=True).value


def check_service_call(
    route: ServiceRoute,
    table: Mapping[str, list[str]],
    body: bytes,
    *,
    path: str,
    clients: Mapping[str, ServiceClient],
    validate_token: Callable[[str], Mapping[str, Any]],
    external_ids: ExternalIds,
    now: datetime,
    freshness_seconds: float | None = 300,
) -> ServiceCall:
    """Steps 3-10 of the module docstring for one call to ``route``; never raises for any input.

    ``table`` maps lower-case header names to their values in the order received, ``path`` is
    the relative URL as sent (the EndpointUrl signed), ``clients`` the service clients by client
    key, ``validate_token`` returns a token's claims or raises. Step 9 records X-EXTERNAL-ID.
    """
    ss = route.service
    notes: list[str] = []

    def no(status: int, case: str, message: str, why: str) -> ServiceCall:
        return ServiceCall(service_reject(status, ss, case, message, [*notes, why]))

    # 3. mandatory headers
    values: dict[str, str] = {}
    for name, lower in _MANDATORY_LOWER:
        found = table.get(lower)
        if found is None:
            values[name] = ""
            continue
        if len(found) > 1:
            notes.append(f"header {name} was sent {len(found)} times; the first is used")
        values[name] = found[0].strip()
    if not all(values.values()):
        for name, lower in _MANDATORY_LOWER:
            if values[name] or (name == "Authorization" and route.asymmetric):
                continue  # present, or the asymmetric form (judged at step 6)
            why = "is empty" if table.get(lower) else "is missing"
            if name == "Authorization":  # the standard's own case for it (HTTP clients expect 401 too)
                return no(
                    401,
                    "03",
                    "Token Not Found (B2B)",
                    f"header Authorization {why}; send 'Bearer <accessToken>'",
                )
            return no(400, "02", f"Invalid Mandatory Field [{name}]", f"header {name} {why}")
    timestamp, signature = values["X-TIMESTAMP"], values["X-SIGNATURE"]
    partner_id, external_id = values["X-PARTNER-ID"], values["X-EXTERNAL-ID"]

    # 4. formats
    content_type = values["Content-Type"]
    if (
        content_type != "application/json"
        and content_type.split(";", 1)[0].strip().lower() != "application/json"
    ):
        return no(
            400,
            "01",
            "Invalid Field Format [Content-Type]",
            f"Content-Type is {_short(content_type)}; send application/json",
        )
    try:
        sent = _sent_at(timestamp)
    except TimestampError as exc:
        return no(
            400,
            "01",
            "Invalid Field Format [X-TIMESTAMP]",
            f"{exc.message} Service routes take the standard's form only, yyyy-MM-ddTHH:mm:ss(.SSS)TZD, in both modes.",
        )
    if not PARTNER_ID.fullmatch(partner_id):
        return no(
            400,
            "01",
            "Invalid Field Format [X-PARTNER-ID]",
            f"X-PARTNER-ID {_short(partner_id)} is not String(36)",
        )
    if not EXTERNAL_ID.fullmatch(external_id):
        return no(
            400,
            "01",
            "Invalid Field Format [X-EXTERNAL-ID]",
            f"X-EXTERNAL-ID {_short(external_id)} is not numeric String(36) (digits only, at most 36)",
        )
    channel = values["CHANNEL-ID"]
    if route.channel is not None and channel != route.channel:
        return no(
            400,
            "01",
            "Invalid Field Format [CHANNEL-ID]",
            f"CHANNEL-ID is {_short(channel)}; Senmo takes {route.channel!r}",
        )
    if not CHANNEL_ID.fullmatch(channel):
        return no(
            400,
            "01",
            "Invalid Field Format [CHANNEL-ID]",
            f"CHANNEL-ID {_short(channel)} is not letters/digits (<= 16), e.g. QR004",
        )

    # 5. freshness
    if freshness_seconds is not None:
        try:
            delta = (now - sent).total_seconds()
        except OverflowError:
            delta = float("inf")
        if abs(delta) > freshness_seconds:
            where = (
                "outside the representable range"
                if delta == float("inf")
                else (f"{abs(delta):.0f} s {'behind' if delta > 0 else 'ahead of'} the sandbox clock")
            )
            return no(
                401,
                "00",
                "Unauthorized. [X-TIMESTAMP out of range]",
                f"X-TIMESTAMP is {where}; the window is ±{freshness_seconds:g} s",
            )

    # 6. the token (or, without Authorization on a payment route, the partner)
    auth = values["Authorization"]
    token = jti = ""
    if auth:
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return no(401, "01", "Invalid Token (B2B)", "Authorization is not 'Bearer <token>'")
        try:
            claims = validate_token(token)
        except SnapbookError as exc:
            reason = getattr(exc, "reason", exc.message).rstrip(".")
            return no(401, "01", with_reason("Invalid Token (B2B)", reason), reason)
        client = clients.get(str(claims.get("sub", "")))
        if client is None:
            return no(
                401,
                "01",
                with_reason("Invalid Token (B2B)", "its client is not registered"),
                "the token's client is no longer registered",
            )
        jti = str(claims.get("jti", ""))
        # 7. the partner of the token's client
        if partner_id != client.partner_id:
            return no(
                401,
                "00",
                "Unauthorized. [X-PARTNER-ID]",
                f"X-PARTNER-ID {_short(partner_id)} is not the partner registered for client {_short(client.client_key)}",
            )
    else:
        found_client = next((c for c in clients.values() if c.partner_id == partner_id), None)
        if found_client is None or found_client.public_key is None:
            return no(
                401,
                "00",
                "Unauthorized. [Unknown partner]",
                f"no Authorization (the asymmetric form) and X-PARTNER-ID {_short(partner_id)} is not registered",
            )
        client = found_client
        notes.append("no Authorization: the asymmetric signature (SHA256withRSA) is checked")

    # 8. the signature, over the body as received (minified)
    masked_token = mask(token) if token else ""
    try:
        if auth:
            if client.secret is None:
                return ServiceCall(
                    service_reject(
                        401,
                        ss,
                        "00",
                        with_reason("Unauthorized. [Signature]", "no client secret registered"),
                        [
                            *notes,
                            f"client {_short(client.client_key)} has no client secret: register it (--client-secret)",
                        ],
                    ),
                    client,
                    token=masked_token,
                    jti=jti,
                )
            # The usual case first: the expected signature, made by service_signing's benchmarked
            # signer, equals the one received (constant-time). Anything else goes through
            # verify_symmetric, which says why (and accepts a non-canonical base64 of the same bytes).
            expected = sign_symmetric(client.secret, "POST", path, token, body, timestamp)
            if hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
                result = _VALID
            else:
                result = verify_symmetric(
                    client.secret, "POST", path, token, body, timestamp, signature, window=None
                )
        else:
            assert client.public_key is not None
            result = verify_asymmetric(
                client.public_key, "POST", path, body, timestamp, signature, window=None
            )
    except BodyFormatError:
        return no(
            400,
            "00",
            with_reason("Bad Request", "body is not JSON"),
            "body has whitespace but is not JSON, so it has no minified form to hash",
        )
    except SnapbookError as exc:  # a path that cannot be an EndpointUrl, a token with odd characters
        reason = exc.message.rstrip(".")
        return no(
            401,
            "00",
            with_reason("Unauthorized. [Signature]", reason[:60]),
            f"X-SIGNATURE rejected: {reason}",
        )
    if not result.ok:
        kind = (
            "HMAC-SHA512 with the client secret" if auth else "SHA256withRSA with the registered public key"
        )
        notes.append(f"X-SIGNATURE ({kind}) does not verify: {result.detail}")
        doctor = ServiceDoctorNote(
            path,
            {"X-TIMESTAMP": timestamp, "X-SIGNATURE": signature, **({"Authorization": auth} if auth else {})},
            body,
            client.secret if auth else None,
            None if auth else client.public_key,
        )
        reason = "X-SIGNATURE is not base64" if result.reason == "not-base64" else "signature does not verify"
        verdict = service_reject(401, ss, "00", with_reason("Unauthorized. [Signature]", reason), notes)
        return ServiceCall(
            Verdict(
                False,
                verdict.http_status,
                verdict.response_code,
                verdict.response_message,
                verdict.notes,
                doctor=doctor,
            ),
            client,
            token=masked_token,
            jti=jti,
        )

    # 9. X-EXTERNAL-ID once per partner and day
    if not external_ids.claim(partner_id, external_id, now):
        return ServiceCall(
            service_reject(
                409,
                ss,
                "00",
                "Conflict",
                [
                    *notes,
                    f"X-EXTERNAL-ID {external_id} was already used by partner {_short(partner_id)} today (Asia/Jakarta)",
                ],
            ),
            client,
            external_id=external_id,
            token=masked_token,
            jti=jti,
        )

    # 10. the body
    try:
        data, json_notes = _load_json(body)
    except (ValueError, RecursionError) as exc:
        why = (
            "body is not UTF-8"
            if isinstance(exc, UnicodeDecodeError)
            else (
                "body is JSON nested too deeply"
                if isinstance(exc, RecursionError)
                else "body is not valid JSON"
            )
        )
        return ServiceCall(
            service_reject(400, ss, "00", with_reason("Bad Request", why), [*notes, why]),
            client,
            external_id=external_id,
            token=masked_token,
            jti=jti,
        )
    notes.extend(json_notes)
    if not isinstance(data, dict):
        why = "body is not a JSON object"
        return ServiceCall(
            service_reject(400, ss, "00", with_reason("Bad Request", why), [*notes, why]),
            client,
            external_id=external_id,
            token=masked_token,
            jti=jti,
        )
    accepted = new_verdict(True, 200, f"200{ss}00", "Successful", tuple(map(_clip, notes)), client.client_key)
    return new_service_call(accepted, client, data, external_id, masked_token, jti)
