"""How the sandbox judges a token request: pure functions, no HTTP, no clock of their own.

The checks run in this order; the first that fails decides the answer. Every answer's HTTP
status equals the first three digits of its ``responseCode``.

====  ===============================================  ======  ===========  ==========================================
step  check                                            HTTP    responseCode responseMessage
====  ===============================================  ======  ===========  ==========================================
1     path is a known route                            404     4047300      Not Found. [Unknown path]
2     method is POST (token routes)                    405     4057300      Requested Function Is Not Supported
3     body is at most ``max_body_bytes``               400     4007300      Bad Request (reason)
4     Content-Type, X-TIMESTAMP, X-CLIENT-KEY,         400     4007302      Invalid Mandatory Field [name]
      X-SIGNATURE present and not empty (this order)
5     Content-Type is application/json                 400     4007301      Invalid Field Format [Content-Type]
6     X-TIMESTAMP is the SNAP form yyyy-MM-ddTHH:mm:  400     4007301      Invalid Field Format [X-TIMESTAMP]
      ss(.SSS)TZD, TZD = Z/+hh:mm/-hh:mm (unless
      strict, also -00:00, +hhmm, a space for T and
      a fraction of other than 3 digits, each noted)
7     X-TIMESTAMP within ``freshness_seconds`` of the  401     4017300      Unauthorized. [X-TIMESTAMP out of range]
      sandbox clock, either way (300 s: snapbook's
      default; the standard names no window)
8     X-CLIENT-KEY is registered                       401     4017300      Unauthorized. [Unknown client]
9     X-SIGNATURE is base64 and verifies with the      401     4017300      Unauthorized. [Signature] (reason)
      registered public key over client_key|timestamp
10    body is UTF-8 JSON and an object                 400     4007300      Bad Request (reason)
11    grantType present and not empty (unless strict,  400     4007302      Invalid Mandatory Field [grantType]
      ``grant_type``/``granttype`` also count)
12    grantType is "client_credentials"                400     4007301      Invalid Field Format [grantType]
13    additionalInfo absent or an object (unless       400     4007301      Invalid Field Format [additionalInfo]
      strict, ``""`` and ``null`` too)
--    all passed                                       200     2007300      Successful
====  ===============================================  ======  ===========  ==========================================

A request that is not even valid HTTP/1.1 (garbage, a bad header line) never reaches the
checks: the sandbox's server answers it ``400 4007300 Bad Request (malformed HTTP request)``,
also in SNAP JSON with both response headers, and journals it.

Cheap checks come before the RSA verification, and the timestamp before the client lookup, so
a stale request costs no RSA work. Steps 1-3 are applied by :mod:`snapbook.sandbox.app` around
:func:`check_token_request` (which does steps 3-13); injected faults (:mod:`~snapbook.sandbox.faults`),
when configured, are drawn once the body has been read and answer instead of the size verdict
and steps 4-13.

Codes outside the standard table, chosen here and documented so clients can rely on them
(:data:`snapbook.codes.SANDBOX_CODES` knows them, so ``parse_code`` explains them as sandbox codes):

- ``4047300`` for an unknown path: SNAP has no case for it (404xx00 is "Invalid Transaction
  Status" in the standard); clients should act on the HTTP status.
- ``5037300 Service Unavailable`` for an injected 503: the standard has no 503 row.
- An oversized body is ``400 4007300 Bad Request`` (not HTTP 413), to stay inside the table.
- A wrong Content-Type is ``400 4007301 Invalid Field Format [Content-Type]`` (not HTTP 415).

A reason in parentheses follows the standard message when the whole stays within the 150
characters SNAP allows for ``responseMessage``; it never contains a signature, a token or key
material. Lenient mode records each non-standard detail it accepted as a note.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import SnapbookError, TimestampError
from ..signing import ParsedTimestamp, parse_timestamp, string_to_sign, verify
from .frozen import fast_constructor

__all__ = [
    "MANDATORY_HEADERS",
    "MAX_MESSAGE",
    "DoctorNote",
    "Verdict",
    "check_token_request",
    "reject",
    "too_large",
    "with_reason",
]

#: The four mandatory request headers, in the order they are checked.
MANDATORY_HEADERS = ("Content-Type", "X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE")

_MANDATORY_LOWER = tuple((name, name.lower()) for name in MANDATORY_HEADERS)

#: SNAP's maximum length of responseMessage.
MAX_MESSAGE = 150

GENERIC_SIGNATURE_REASON = "signature does not verify for the registered key"


@dataclass(frozen=True)
class Verdict:
    """The outcome of the checks: accepted, or the SNAP answer to give and why."""

    accepted: bool
    http_status: int
    response_code: str
    response_message: str
    notes: tuple[str, ...] = ()
    #: The client key the request was accepted for ("" when rejected).
    client_key: str = ""
    #: For a signature that does not verify: the doctor's reason, computed when first read.
    doctor: DoctorNote | None = field(default=None, compare=False, repr=False)


#: ``Verdict(...)`` at the speed of a plain dataclass, for the verdicts made per request.
new_verdict = fast_constructor(Verdict)


def with_reason(base: str, reason: str | None) -> str:
    """``base (reason)`` when it fits SNAP's 150 characters, else ``base``."""
    if reason:
        text = f"{base} ({reason})"
        if len(text) <= MAX_MESSAGE:
            return text
    return base[:MAX_MESSAGE]


#: The responseMessage of a signature that does not verify (the doctor's reason goes to the journal).
_SIGNATURE_MESSAGE = with_reason("Unauthorized. [Signature]", GENERIC_SIGNATURE_REASON)[:MAX_MESSAGE]


#: Notes quote what the client sent; a header can be 64 KiB, a note stays readable.
MAX_NOTE = 240


def _clip(note: str) -> str:
    return note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 1] + "…"


def reject(status: int, case: str, message: str, notes: Iterable[str] = ()) -> Verdict:
    """A rejection with responseCode ``<status>73<case>``."""
    return new_verdict(False, status, f"{status}73{case}", message[:MAX_MESSAGE], tuple(map(_clip, notes)))


def too_large(size: int, limit: int, *, declared: bool = False) -> Verdict:
    """Step 3: the answer to a body over ``limit`` bytes.

    ``size`` is the Content-Length when ``declared`` (the body was then not read at all), else
    the number of bytes read before giving up.
    """
    seen = f"Content-Length {size}, not read" if declared else f"{size}+ bytes read"
    return reject(
        400,
        "00",
        with_reason("Bad Request", f"body over {limit} bytes"),
        [f"body is larger than the {limit}-byte limit ({seen}); nothing was parsed"],
    )


def _short(value: Any, limit: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _header_table(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Lower-case name -> values in the order received (a name may be sent more than once)."""
    items = headers.items() if hasattr(headers, "items") else headers  # type: ignore[union-attr]
    table: dict[str, list[str]] = {}
    for name, value in items:  # type: ignore[misc]
        table.setdefault(str(name).lower(), []).append(str(value))
    return table


class _DuplicateKey(Exception):
    """Raised by the fast decoder's hook: an object repeats a key, so parse again for the notes."""


def _unique_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(items)
    if len(out) != len(items):
        raise _DuplicateKey
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for the usual body (no repeated key), made once: json.loads with hooks builds a new
# JSONDecoder and scanner on every call. A repeated key sends the body to the noting parser below.
_FAST_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_no_constants)


def _load_json(body: bytes) -> tuple[Any, list[str]]:
    """``(value, notes)`` of a JSON body: NaN/Infinity refused, a repeated key noted (the last wins)."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not text.startswith("\ufeff"):  # json.loads' own BOM refusal comes from the path below
        try:
            return _FAST_DECODER.decode(text), []
        except _DuplicateKey:
            pass
    notes: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out and len(notes) < 3:
                notes.append(f"key {_short(key, 32)} appears twice in a JSON object; the last value wins")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs, parse_constant=_no_constants), notes


class DoctorNote:
    """Why a signature failed, worked out by :func:`snapbook.doctor.diagnose` on first use only.

    The doctor searches thousands of candidate messages (tens of ms); running it while answering
    would make every rejection far slower than a success and let one client stuck on a bad
    signature starve the server. So the answer carries the generic reason and the journal keeps
    this note, which runs the doctor when someone reads the row, once, thread-safely.
    """

    #: Longest X-SIGNATURE kept for the doctor: an RSA-16384 signature is 2,732 base64 or 4,096
    #: hex characters. A longer one would tie up to ~64 KB per journal row until read, so its
    #: (cheap: "wrong length") diagnosis is worked out now and only the summary is kept.
    MAX_SIGNATURE = 4200

    __slots__ = ("_args", "_lock", "_summary")

    def __init__(self, public_key: rsa.RSAPublicKey, client_key: str, timestamp: str, signature: str) -> None:
        self._args: tuple[Any, ...] | None = (public_key, client_key, timestamp, signature)
        self._summary: str | None = None
        self._lock = threading.Lock()
        if len(signature) > self.MAX_SIGNATURE:
            self._summary, self._args = _oversized_signature(public_key, signature), None

    def __call__(self) -> str | None:
        with self._lock:
            if self._args is not None:
                self._summary, self._args = _diagnose_signature(*self._args), None
            return self._summary


def _oversized_signature(public_key: rsa.RSAPublicKey, signature: str) -> str:
    """The doctor's verdict on a signature far too long for any RSA key, without decoding it."""
    expected = -(-public_key.key_size // 8)
    return (
        f"The signature is {len(signature):,} characters, but an RSA-{public_key.key_size} signature is "
        f"{expected} bytes ({4 * -(-expected // 3)} base64 characters)."
    )


def _diagnose_signature(
    public_key: rsa.RSAPublicKey, client_key: str, timestamp: str, signature: str
) -> str | None:
    """The doctor's one-line summary of why a signature fails (None if it cannot say)."""
    from ..doctor import diagnose

    try:
        summary = diagnose(public_key, client_key, timestamp, signature).summary
    except Exception:
        return None
    return summary if isinstance(summary, str) and summary.strip() else None


@lru_cache(maxsize=256)
def _parsed_timestamp(timestamp: str, strict: bool) -> ParsedTimestamp:
    """parse_timestamp, kept per text: a client sends the same X-TIMESTAMP for a whole second."""
    return parse_timestamp(timestamp, strict=strict)


def check_token_request(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    clients: Mapping[str, rsa.RSAPublicKey],
    now: datetime,
    freshness_seconds: float | None = 300,
    strict: bool = False,
    max_body_bytes: int | None = None,
) -> Verdict:
    """Judge one token request (steps 3-13 of the module docstring) at time ``now``.

    ``headers`` are the request headers (any case, repeated names allowed), ``body`` the raw
    body bytes, ``clients`` the registered public keys by client key. Never raises for any
    input: every problem becomes a rejecting :class:`Verdict`.
    """
    # 3. size
    if max_body_bytes is not None and len(body) > max_body_bytes:
        return too_large(len(body), max_body_bytes)
    return _check_table(
        _header_table(headers),
        body,
        clients=clients,
        now=now,
        freshness_seconds=freshness_seconds,
        strict=strict,
    )


def _check_table(
    table: Mapping[str, list[str]],
    body: bytes,
    *,
    clients: Mapping[str, rsa.RSAPublicKey],
    now: datetime,
    freshness_seconds: float | None = 300,
    strict: bool = False,
) -> Verdict:
    """Steps 4-13 of :func:`check_token_request`, on headers already read into a table.

    ``table`` maps each lower-case header name to its values in the order received (as
    :func:`_header_table` makes it); the sandbox builds it once per request and reuses it.
    """
    notes: list[str] = []

    # 4. mandatory headers
    values: dict[str, str] = {}
    for name, lower in _MANDATORY_LOWER:
        found = table.get(lower, ())
        if len(found) > 1:
            notes.append(f"header {name} was sent {len(found)} times; the first is used")
        value = found[0].strip() if found else ""
        if not value:
            why = "is empty" if found else "is missing"
            return reject(400, "02", f"Invalid Mandatory Field [{name}]", [*notes, f"header {name} {why}"])
        values[name] = value
    content_type, timestamp = values["Content-Type"], values["X-TIMESTAMP"]
    client_key, signature = values["X-CLIENT-KEY"], values["X-SIGNATURE"]

    # 5. Content-Type
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return reject(
            400,
            "01",
            "Invalid Field Format [Content-Type]",
            [*notes, f"Content-Type is {_short(content_type)}; send application/json"],
        )

    # 6. X-TIMESTAMP format
    try:
        parsed = _parsed_timestamp(timestamp, strict)
    except TimestampError as exc:
        return reject(400, "01", "Invalid Field Format [X-TIMESTAMP]", [*notes, exc.message])
    if parsed.notes:
        notes.extend(f"X-TIMESTAMP: {n}" for n in parsed.notes)

    # 7. freshness
    if freshness_seconds is not None:
        try:
            delta = (now - parsed.value).total_seconds()
        except OverflowError:  # year 1 or 9999 with an offset that leaves the datetime range
            delta = float("inf")
        if abs(delta) > freshness_seconds:
            if delta == float("inf"):
                where = "outside the representable range"
            else:
                where = f"{abs(delta):.0f} s {'behind' if delta > 0 else 'ahead of'} the sandbox clock"
            why = f"X-TIMESTAMP is {where}; the window is ±{freshness_seconds:g} s"
            if delta != float("inf") and abs(delta) >= 3000 and abs(abs(delta) % 3600 - 1800) > 1500:
                why += " (a whole number of hours off: is the zone offset right? WIB is +07:00)"
            return reject(401, "00", "Unauthorized. [X-TIMESTAMP out of range]", [*notes, why])

    # 8. client
    public_key = clients.get(client_key)
    if public_key is None:
        return reject(
            401,
            "00",
            "Unauthorized. [Unknown client]",
            [*notes, f"X-CLIENT-KEY {_short(client_key)} is not registered with this sandbox"],
        )

    # 9. signature
    try:
        valid = verify(public_key, string_to_sign(client_key, timestamp), signature)
    except SnapbookError as exc:  # not base64, or a client key that cannot be signed over
        reason = exc.message.rstrip(".")
        return reject(
            401,
            "00",
            with_reason("Unauthorized. [Signature]", reason),
            [*notes, f"X-SIGNATURE rejected: {reason}"],
        )
    except Exception:
        valid = False
    if not valid:
        # reject(401, "00", ...) with the doctor's deferred note attached, built in one go.
        # (This note is at most 115 characters: only the notes before it may need clipping.)
        note = f"X-SIGNATURE does not verify over {_short(client_key + '|' + timestamp, 80)}"
        return new_verdict(
            False,
            401,
            "4017300",
            _SIGNATURE_MESSAGE,
            (*map(_clip, notes), note) if notes else (note,),
            doctor=DoctorNote(public_key, client_key, timestamp, signature),
        )

    # 10. body
    if not body.strip():
        return reject(
            400,
            "00",
            with_reason("Bad Request", "empty body"),
            [*notes, 'body is empty; send {"grantType":"client_credentials","additionalInfo":{}}'],
        )
    try:
        data, json_notes = _load_json(body)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            why = "body is not UTF-8"
        elif isinstance(exc, RecursionError):
            why = "body is JSON nested too deeply"
        else:
            why = f"body is not valid JSON: {str(exc)[:80]}"
        return reject(400, "00", with_reason("Bad Request", why.split(":")[0]), [*notes, why])
    notes.extend(json_notes)
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(data), "number")
        why = f"body is a JSON {kind}, not an object"
        return reject(400, "00", with_reason("Bad Request", why), [*notes, why])

    # 11. grantType present
    spelling = "grantType"
    if "grantType" not in data:
        other = next((k for k in ("grant_type", "granttype", "GrantType") if k in data), None)
        if other is None:
            return reject(
                400, "02", "Invalid Mandatory Field [grantType]", [*notes, "body has no grantType field"]
            )
        if strict:
            return reject(
                400,
                "02",
                "Invalid Mandatory Field [grantType]",
                [*notes, f"body spells the field {other!r}; strict mode accepts only 'grantType'"],
            )
        spelling = other
        notes.append(
            f"grant type sent as {other!r} instead of 'grantType' (accepted; strict mode rejects it)"
        )
    else:
        extra = [k for k in ("grant_type", "granttype") if k in data]
        if extra:
            notes.append(f"body also has {', '.join(map(repr, extra))}; 'grantType' is used")
    grant = data[spelling]
    if grant is None or grant == "":
        return reject(
            400, "02", "Invalid Mandatory Field [grantType]", [*notes, f"{spelling} is {_short(grant)}"]
        )

    # 12. grantType value
    if grant != "client_credentials":
        return reject(
            400,
            "01",
            "Invalid Field Format [grantType]",
            [*notes, f"{spelling} is {_short(grant)}; the B2B value is 'client_credentials'"],
        )

    # 13. additionalInfo
    if "additionalInfo" in data:
        info = data["additionalInfo"]
        if info == "" or info is None:
            shown = '""' if info == "" else "null"
            if strict:
                return reject(
                    400,
                    "01",
                    "Invalid Field Format [additionalInfo]",
                    [*notes, f"additionalInfo is {shown}; strict mode wants an object or no field"],
                )
            notes.append(
                f"additionalInfo sent as {shown} instead of an object (accepted; strict mode rejects it)"
            )
        elif not isinstance(info, dict):
            return reject(
                400,
                "01",
                "Invalid Field Format [additionalInfo]",
                [*notes, f"additionalInfo is {_short(info)}; it must be a JSON object"],
            )
    if not data.keys() <= _TOKEN_BODY_FIELDS:  # the usual body has none but these: one set comparison
        unexpected = [
            k for k in data if k not in ("grantType", "additionalInfo", spelling, "grant_type", "granttype")
        ]
        if unexpected:
            shown = ", ".join(_short(k, 24) for k in unexpected[:5]) + (" …" if len(unexpected) > 5 else "")
            notes.append(f"unexpected body field(s) ignored: {shown}")

    if not notes:
        return _accepted(client_key)
    return new_verdict(True, 200, "2007300", "Successful", tuple(map(_clip, notes)), client_key)


#: The body fields a token request may carry without a note (``spelling`` aside).
_TOKEN_BODY_FIELDS = frozenset({"grantType", "additionalInfo", "grant_type", "granttype"})


@lru_cache(maxsize=256)
def _accepted(client_key: str) -> Verdict:
    """The verdict of a request accepted without notes: the same for every such request of a client,
    so it is made once per client (this is nearly every successful token request). Only keys of
    registered clients get here."""
    return Verdict(True, 200, "2007300", "Successful", (), client_key)
