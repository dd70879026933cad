"""X-SIGNATURE of SNAP service calls and of Ifortepay's notifications (after the token).

Three strings to sign share one body hash, ``lowercase(hex(SHA-256(minify(body))))``:

* symmetric service call (Ifortepay's required form, the only one Senmo accepts):
  ``base64(HMAC-SHA512(clientSecret, METHOD:EndpointUrl:AccessToken:hash:X-TIMESTAMP))``;
* asymmetric service call (the standard's no-token variant):
  ``base64(SHA256withRSA(privateKey, METHOD:EndpointUrl:hash:X-TIMESTAMP))``;
* notification (Ifortepay -> merchant):
  ``base64(HMAC-SHA512(clientSecret, NotifyURL:X-VERSION:hash:X-TIMESTAMP))``.

Pure functions, no I/O; time is a parameter. The token signature lives in :mod:`snapbook.signing`;
this module reuses its X-TIMESTAMP parser and its RSA sign/verify, and :mod:`snapbook.masking`.

snapbook's choices where the standard leaves room, each enforced with a typed error:

* ``minify`` deletes only JSON whitespace (space, tab, CR, LF) outside strings, and never
  anything else. Bytes it cannot change are hashed exactly as given without being parsed: no
  whitespace at all, or an object/array in which no whitespace touches ``{}[],:`` (in JSON,
  whitespace outside strings always does). Other bytes with whitespace must be JSON, otherwise
  :class:`~snapbook.errors.BodyFormatError`, because which spaces to drop cannot be known.
* METHOD is upper-cased (HTTP clients send it so); anything but letters is refused.
* EndpointUrl must be the relative URL as sent (``/api/v1.0/...?...``); an absolute URL is
  refused, not silently cut, so a signer cannot sign one thing and send another.
* An access token starting ``Bearer `` is refused, not stripped: the header carries the scheme,
  the string to sign never does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import BodyFormatError, ServiceSignatureInputError, SignatureFormatError, TimestampError
from .masking import mask
from .signing import Clock, ParsedTimestamp, parse_timestamp, system_clock
from .signing import sign as rsa_sign
from .signing import verify as rsa_verify

__all__ = [
    "EMPTY_BODY_SHA256",
    "FRESHNESS_SECONDS",
    "Body",
    "MinifiedJson",
    "ServiceSignatureSteps",
    "Verification",
    "asymmetric_string_to_sign",
    "body_hash",
    "check_access_token",
    "check_method",
    "endpoint_url",
    "explain_service_signature",
    "minify",
    "notification_headers",
    "notification_string_to_sign",
    "relative_url",
    "service_headers",
    "sign_asymmetric",
    "sign_notification",
    "sign_symmetric",
    "symmetric_string_to_sign",
    "verify_asymmetric",
    "verify_notification",
    "verify_symmetric",
]

#: A request body: the bytes sent (or their text, sent as UTF-8); None or b"" for no body.
Body = bytes | bytearray | memoryview | str | None

#: SHA-256 of the empty string: the hash of a call without a body.
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

#: Default freshness window of verification, seconds either way (what the sandbox uses too).
FRESHNESS_SECONDS = 300.0

#: The notification's X-VERSION when the header is absent.
DEFAULT_VERSION = "v1"

# --- the body ---------------------------------------------------------------------------


def _touching_punctuation(whitespace: bytes) -> re.Pattern[bytes]:
    """A regex finding a ``whitespace`` byte with JSON punctuation (``{}[],:``) just before or after it."""
    return re.compile(rb"%s(?:(?<=[{}\[\],:]%s)|(?=[{}\[\],:]))" % (whitespace, whitespace))


# Whitespace (RFC 8259 section 2) touching punctuation. Spaces first, on their own: a regex that
# starts with one literal byte skips ahead at about 0.6 ns a byte, one that starts with a class
# at about 4 ns (SHA-256 takes about 0.55). Tabs and line breaks are rare in a compact body (JSON
# strings escape them), so one class search for them is enough.
_SPACE_TOUCHING_PUNCTUATION = _touching_punctuation(b" ").search
_WHITESPACE_TOUCHING_PUNCTUATION = _touching_punctuation(b"[ \t\n\r]").search
_OPENING = frozenset(b"{[")
_CLOSING = frozenset(b"}]")


def _minified_as_is(data: bytes) -> bool:
    """Whether minify cannot change ``data`` (an object or array), proved without parsing it.

    In JSON, whitespace outside strings always touches punctuation or the ends (two values are
    never adjacent), so whitespace that touches neither is inside strings.
    """
    # Integers, not one-byte bytes: `b"x" in data` first tries the needle as an int and pays
    # for a discarded TypeError (~0.25 us a test on CPython 3.11); `120 in data` is a memchr.
    if not data or data[0] not in _OPENING or data[-1] not in _CLOSING:
        return False
    if 10 in data or 13 in data or 9 in data:
        return _WHITESPACE_TOUCHING_PUNCTUATION(data) is None
    return _SPACE_TOUCHING_PUNCTUATION(data) is None


class MinifiedJson(bytes):
    """JSON bytes that minify cannot change, so signing hashes them without looking for whitespace.

    :meth:`dumps` makes them (compact separators: whitespace only inside strings), which is what
    the service client sends for a dict or list. Made from other bytes, they are checked (JSON,
    already minified) and refused with :class:`~snapbook.errors.BodyFormatError` otherwise, so the
    type is a proof, never a promise. Slices and concatenations are plain bytes again.
    """

    __slots__ = ()

    def __new__(cls, data: bytes | bytearray | memoryview) -> MinifiedJson:  # noqa: PYI034
        raw = bytes(data)
        _require_json(raw, "MinifiedJson needs JSON bytes ({exc}).", "Use MinifiedJson.dumps(obj), or pass plain bytes.")
        if minify(raw) != raw:
            raise BodyFormatError(
                "MinifiedJson needs minified JSON: these bytes have whitespace outside strings.",
                hint="Use MinifiedJson.dumps(obj), or minify(body) first.",
            )
        return bytes.__new__(cls, raw)

    @classmethod
    def dumps(cls, obj: object) -> MinifiedJson:
        """``obj`` as compact UTF-8 JSON (key order kept, ``/`` and non-ASCII as is, no NaN).

        ``TypeError``/``ValueError`` from :func:`json.dumps` pass through for the caller to word.
        """
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # json.dumps with these separators writes no whitespace outside strings: minified by construction.
        return bytes.__new__(cls, text.encode("utf-8"))


# A JSON string (unrolled: no backtracking blow-up) or a run of whitespace outside strings.
_STRING_OR_WS = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|[ \t\n\r]+', re.DOTALL)


def _body_bytes(body: Body) -> bytes:
    if type(body) is bytes:
        return body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, Mapping):
        raise BodyFormatError(
            "The body is a dict; a signature covers the bytes sent, not an object.",
            hint="Serialise once, e.g. json.dumps(obj, separators=(',', ':'), ensure_ascii=False).encode(), "
            "sign those bytes and send those same bytes (content=..., not json=...).",
        )
    raise BodyFormatError(
        f"The body must be bytes or str, not {type(body).__name__}.",
        hint="Pass the exact bytes you send (or None for no body).",
    )


def minify(body: Body) -> bytes:
    """The body with JSON whitespace outside strings removed, and nothing else changed.

    Keys keep their order, nulls stay, ``/`` and non-ASCII characters keep their escaping or lack
    of it, numbers keep their spelling. Bytes that minify cannot change are returned as given
    (JSON or not); bytes it would change must be JSON, else :class:`BodyFormatError`.
    """
    if type(body) is MinifiedJson:
        return body
    data = _body_bytes(body)
    # Fast paths (the usual, compact body a client built itself), at C speed: no whitespace at
    # all; or an object/array where no whitespace touches JSON punctuation (_minified_as_is).
    if not (32 in data or 10 in data or 13 in data or 9 in data) or _minified_as_is(data):
        return data
    if not data.strip(b" \t\n\r"):
        return b""  # only whitespace: no body
    _require_json(
        data,
        "The body is not JSON ({exc}), so snapbook cannot tell which of its spaces SNAP's minify would drop.",
        "Send (and sign) a JSON body, or pass bytes that contain no spaces or line breaks.",
    )
    return _STRING_OR_WS.sub(rb"\1", data)


def _require_json(data: bytes, message: str, hint: str) -> None:
    """Parse ``data`` as JSON or raise BodyFormatError(``message`` with ``{exc}``, ``hint``)."""
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also accept UTF-16/32, whose 0x20
        # bytes are halves of characters, not spaces.
        json.loads(data.decode("utf-8"))
    except RecursionError:
        raise BodyFormatError(
            "The body is JSON nested too deeply to parse.",
            hint="SNAP bodies nest a few levels; check the body.",
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyFormatError(message.format(exc=exc), hint=hint) from None


def body_hash(body: Body) -> str:
    """``lowercase(hex(SHA-256(minify(body))))``; no body hashes the empty string."""
    return hashlib.sha256(minify(body)).hexdigest()


# --- the parts of the string to sign ----------------------------------------------------


def _quoted(value: object, limit: int = 80) -> str:
    """``repr`` of a value for an error message, cut to ``limit`` characters (inputs may be hostile)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(str(value))} chars)"


_METHOD = re.compile(r"[A-Za-z]+")


def check_method(method: str) -> str:
    """``method`` upper-cased, as HTTP clients send it; anything but letters is refused."""
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise ServiceSignatureInputError(
            f"{_quoted(method)} is not an HTTP method.",
            hint="Use the method the call is sent with: POST, GET, PUT, PATCH or DELETE.",
        )
    return method.upper()


def _check_header_text(value: str, what: str, hint: str) -> None:
    if not value.isascii() or not value.isprintable():
        raise ServiceSignatureInputError(
            f"The {what} contains a control or non-ASCII character, which cannot travel in an HTTP request line or header.",
            hint=hint,
        )
    if value != value.strip() or " " in value:
        raise ServiceSignatureInputError(f"The {what} contains spaces.", hint=hint)


def endpoint_url(path: str, *, include_query: bool = True) -> str:
    """EndpointUrl: the relative URL as sent (``/api/v1.0/x?a=1``), with or without its query.

    ``include_query=False`` is the switch for providers that sign the path only. An absolute URL
    (scheme and host) is refused: the string to sign holds the path as sent, nothing else.
    """
    hint = "Pass the path as sent, with any provider prefix and the query string, e.g. /api/v1.0/balance-inquiry."
    if not isinstance(path, str) or not path:
        raise ServiceSignatureInputError("The endpoint path is empty.", hint=hint)
    _check_header_text(path, "endpoint path", hint)
    if not path.startswith("/"):
        parts = urlsplit(path)
        if parts.scheme and parts.netloc:
            relative = parts.path + (f"?{parts.query}" if parts.query else "")
            raise ServiceSignatureInputError(
                f"The endpoint {_quoted(path)} is an absolute URL; SNAP signs the relative path only ({_quoted(relative)}).",
                hint=hint,
            )
        raise ServiceSignatureInputError(
            f"The endpoint path {_quoted(path)} does not start with '/'.", hint=hint
        )
    if path.startswith("//"):
        raise ServiceSignatureInputError(
            f"The endpoint path {_quoted(path)} starts with '//', which URL parsers read as a host.",
            hint=hint,
        )
    if "#" in path:
        raise ServiceSignatureInputError(
            f"The endpoint path {_quoted(path)} has a '#fragment', which is never sent.", hint=hint
        )
    return path if include_query else path.partition("?")[0]


def relative_url(url: object) -> str:
    """The relative URL a request line carries (path and query, exactly as encoded), for EndpointUrl.

    ``url`` is an absolute URL string (``https://api.senmo.id/api/v1.0/x?a=1`` ->
    ``/api/v1.0/x?a=1``) or an ``httpx.URL`` (its ``raw_path``: what httpx really sends, after its
    percent-encoding). Use it to sign what is sent, never a path re-typed by hand.
    """
    raw = getattr(url, "raw_path", None)
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).decode("ascii")
    if not isinstance(url, str):
        raise ServiceSignatureInputError(
            f"Cannot take a path from {type(url).__name__}.",
            hint="Pass an absolute URL string or an httpx.URL.",
        )
    parts = urlsplit(url)
    if not (parts.scheme and parts.netloc):
        raise ServiceSignatureInputError(
            f"{_quoted(url)} is not an absolute URL.",
            hint="Pass the full URL the request goes to, e.g. https://api.senmo.id/...",
        )
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def check_access_token(token: str) -> str:
    """The access token as it goes in the string to sign: non-empty, without ``Bearer ``."""
    hint = "Pass the accessToken from the B2B token answer alone; the Authorization header adds 'Bearer '."
    if not isinstance(token, str) or not token:
        raise ServiceSignatureInputError(
            "The access token is empty (a symmetric signature with '::' is always refused).", hint=hint
        )
    if token[:7].lower() == "bearer ":
        raise ServiceSignatureInputError("The access token starts with 'Bearer '.", hint=hint)
    _check_header_text(token, "access token", hint)
    return token


@lru_cache(maxsize=64)
def _parsed(timestamp: str) -> ParsedTimestamp:
    # Pure and hot (one call per signature; the client signs many calls per second). The
    # standard's form only (ss(.SSS)?(Z|+hh:mm|-hh:mm)): a signature is made over the header as
    # sent, and lenient extras (+0700, a space for T) are what a provider may refuse.
    return parse_timestamp(timestamp, strict=True)


def _check_timestamp(timestamp: str) -> str:
    """The X-TIMESTAMP text unchanged, once signing's parser accepts it (so it is byte-identical)."""
    if type(timestamp) is str:
        _parsed(timestamp)
        return timestamp
    if not isinstance(timestamp, str):
        raise TimestampError(
            f"X-TIMESTAMP must be a string, not {type(timestamp).__name__}.",
            hint="Use the header's text, e.g. snapbook.make_timestamp().",
        )
    _parsed(timestamp)
    return timestamp


def _secret_bytes(secret: str | bytes) -> bytes:
    hint = "Use the client secret registered with Ifortepay, read without a trailing newline."
    if isinstance(secret, str):
        data = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray, memoryview)):
        # memoryview too: one equal to a cached bytes secret finds the signing cache's entry, so
        # refusing it only when the cache is cold would make the answer depend on earlier calls.
        data = bytes(secret)
    else:
        raise ServiceSignatureInputError(
            f"The client secret must be str or bytes, not {type(secret).__name__}.", hint=hint
        )
    if not data:
        raise ServiceSignatureInputError("The client secret is empty.", hint=hint)
    if data != data.strip():
        raise ServiceSignatureInputError(
            "The client secret has whitespace around it (a newline from a file or `echo`?).", hint=hint
        )
    return data


def _check_notify_url(url: str) -> str:
    hint = "Pass the full notification URL as registered with Ifortepay, e.g. https://merchant.com/callback."
    if not isinstance(url, str) or not url:
        raise ServiceSignatureInputError("The NotifyURL is empty.", hint=hint)
    _check_header_text(url, "NotifyURL", hint)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ServiceSignatureInputError(
            f"The NotifyURL {_quoted(url)} is not an absolute http(s) URL; a notification signs the full URL.",
            hint=hint,
        )
    return url


def _check_version(version: str) -> str:
    hint = "Use the X-VERSION header's value; Ifortepay's default is 'v1'."
    if not isinstance(version, str) or not version:
        raise ServiceSignatureInputError("X-VERSION is empty.", hint=hint)
    _check_header_text(version, "X-VERSION", hint)
    return version


# --- strings to sign --------------------------------------------------------------------


@lru_cache(maxsize=256)
def _call_prefix(method: str, path: str, access_token: str | None, include_query: bool) -> str:
    """``METHOD:EndpointUrl:[AccessToken:]``, checked. Cached: a client signs many calls per token."""
    token = "" if access_token is None else f"{check_access_token(access_token)}:"
    return f"{check_method(method)}:{endpoint_url(path, include_query=include_query)}:{token}"


def _prefix(method: str, path: str, access_token: str | None, include_query: bool) -> str:
    try:
        return _call_prefix(method, path, access_token, include_query)
    except TypeError:  # an unhashable argument: check it uncached, for the typed error
        return _call_prefix.__wrapped__(method, path, access_token, include_query)


def symmetric_string_to_sign(
    method: str, path: str, access_token: str, body: Body, timestamp: str, *, include_query: bool = True
) -> str:
    """``METHOD:EndpointUrl:AccessToken:hash(body):X-TIMESTAMP`` (holds the token: do not log it)."""
    if access_token is None:
        check_access_token(access_token)  # type: ignore[arg-type]
    return (
        f"{_prefix(method, path, access_token, include_query)}{body_hash(body)}:{_check_timestamp(timestamp)}"
    )


def asymmetric_string_to_sign(
    method: str, path: str, body: Body, timestamp: str, *, include_query: bool = True
) -> str:
    """``METHOD:EndpointUrl:hash(body):X-TIMESTAMP`` (no token, so no ``::``)."""
    return f"{_prefix(method, path, None, include_query)}{body_hash(body)}:{_check_timestamp(timestamp)}"


def notification_string_to_sign(
    notify_url: str, body: Body, timestamp: str, *, version: str = DEFAULT_VERSION
) -> str:
    """``NotifyURL:X-VERSION:hash(body):X-TIMESTAMP``, NotifyURL the full URL as registered."""
    return f"{_check_notify_url(notify_url)}:{_check_version(version)}:{body_hash(body)}:{_check_timestamp(timestamp)}"


# --- signing ----------------------------------------------------------------------------


def _hmac_b64(secret: bytes, text: str) -> str:
    return base64.b64encode(hmac.digest(secret, text.encode("utf-8"), "sha512")).decode("ascii")


def sign_symmetric(
    client_secret: str | bytes,
    method: str,
    path: str,
    access_token: str,
    body: Body,
    timestamp: str,
    *,
    include_query: bool = True,
) -> str:
    """X-SIGNATURE of a service call: base64(HMAC-SHA512(clientSecret, symmetric string to sign))."""
    # symmetric_string_to_sign, inlined: this is the client's per-call hot path, benchmarked
    # against bare hmac + hashlib (benchmarks/README.md, "Service signing"), and each Python
    # call level costs about 0.1 us. Every check still runs; what repeats is looked up.
    try:
        signer = _SYMMETRIC_SIGNERS.get((client_secret, method, path, access_token, include_query))
    except TypeError:  # an unhashable argument: checked uncached below, for the typed error
        signer = None
    if signer is None:
        signer = _symmetric_signer(client_secret, method, path, access_token, include_query)
    if type(body) is MinifiedJson:
        data = body  # minified by construction (checked if not made by MinifiedJson.dumps)
    elif type(body) is bytes and (
        not (32 in body or 10 in body or 13 in body or 9 in body) or _minified_as_is(body)
    ):
        data = body  # minify(body) is body itself
    else:
        data = minify(body)
    if type(timestamp) is not str or timestamp not in _CHECKED_TIMESTAMPS:
        _check_timestamp(timestamp)
        _CHECKED_TIMESTAMPS.remember(timestamp, None)
    mac = signer[0].copy()
    mac.update(f"{signer[1]}{hashlib.sha256(data).hexdigest()}:{timestamp}".encode())
    return binascii.b2a_base64(mac.digest(), newline=False).decode("ascii")


class _Cache(dict):  # type: ignore[type-arg]
    """A small dict of checked inputs, emptied when full (no LRU bookkeeping on the hot path).

    Its keys hold the client secret and token the caller already holds: the repr never shows them.
    """

    def __repr__(self) -> str:
        return f"<snapbook signing cache: {len(self)} entries, not shown>"

    def remember(self, key: object, value: object) -> None:
        if len(self) >= _CACHE_SIZE:
            self.clear()  # a new token or a new second now and then: refilled on the next calls
        self[key] = value


_CACHE_SIZE = 64

#: Per (secret, METHOD, path, token, include_query): an HMAC-SHA512 keyed with the checked
#: secret, to ``copy()`` per call (its key pads are hashed once, not per signature), and the
#: checked ``METHOD:EndpointUrl:AccessToken:``.
_SYMMETRIC_SIGNERS = _Cache()

#: X-TIMESTAMP texts the strict parser accepted (a client signs many calls per second).
_CHECKED_TIMESTAMPS = _Cache()


def _symmetric_signer(
    client_secret: str | bytes, method: str, path: str, access_token: str, include_query: bool
) -> tuple[hmac.HMAC, str]:
    """Check the secret, METHOD, EndpointUrl and token (typed errors), and cache the result when hashable."""
    if access_token is None:
        check_access_token(access_token)  # type: ignore[arg-type]
    secret = _secret_bytes(client_secret)
    signer = (
        hmac.new(secret, digestmod=hashlib.sha512),
        _prefix(method, path, access_token, include_query),
    )
    try:
        _SYMMETRIC_SIGNERS.remember((client_secret, method, path, access_token, include_query), signer)
    except TypeError:  # unhashable (a bytearray secret): used once, not cached
        pass
    return signer


def sign_asymmetric(
    private_key: rsa.RSAPrivateKey,
    method: str,
    path: str,
    body: Body,
    timestamp: str,
    *,
    include_query: bool = True,
) -> str:
    """X-SIGNATURE of a service call without a token: base64(SHA256withRSA(key, asymmetric string))."""
    return rsa_sign(
        private_key, asymmetric_string_to_sign(method, path, body, timestamp, include_query=include_query)
    )


def sign_notification(
    client_secret: str | bytes, notify_url: str, body: Body, timestamp: str, *, version: str = DEFAULT_VERSION
) -> str:
    """X-SIGNATURE of a notification: base64(HMAC-SHA512(clientSecret, NotifyURL:X-VERSION:hash:ts))."""
    secret = _secret_bytes(client_secret)
    return _hmac_b64(secret, notification_string_to_sign(notify_url, body, timestamp, version=version))


# --- verification -------------------------------------------------------------------------

VerificationReason = Literal[
    "valid", "signature-mismatch", "not-base64", "timestamp-stale", "timestamp-future"
]


@dataclass(frozen=True)
class Verification:
    """Whether a received signature holds: ``ok``, a stable ``reason`` and a sentence. Truthy when ok."""

    ok: bool
    reason: VerificationReason
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _decode(signature: str | bytes) -> bytes | None:
    text = (
        signature.decode("ascii", "replace") if isinstance(signature, (bytes, bytearray)) else str(signature)
    )
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _fresh(timestamp: str, clock: Clock | None, window: float | None) -> Verification:
    if window is None:
        return Verification(True, "valid", "the signature verifies (freshness not checked)")
    sent = _parsed(timestamp).value
    now = (clock or system_clock)()
    skew = (now - sent) / timedelta(seconds=1)
    if skew > window:
        return Verification(
            False, "timestamp-stale", f"X-TIMESTAMP is {skew:.0f} s old; the window is {window:g} s."
        )
    if -skew > window:
        return Verification(
            False,
            "timestamp-future",
            f"X-TIMESTAMP is {-skew:.0f} s in the future; the window is {window:g} s.",
        )
    return Verification(True, "valid", "the signature verifies and X-TIMESTAMP is fresh")


def _verify_hmac(
    secret: bytes,
    text: str,
    signature: str | bytes,
    timestamp: str,
    clock: Clock | None,
    window: float | None,
) -> Verification:
    raw = _decode(signature)
    if raw is None:
        return Verification(False, "not-base64", "X-SIGNATURE is not standard base64.")
    if not hmac.compare_digest(raw, hmac.digest(secret, text.encode("utf-8"), "sha512")):
        return Verification(False, "signature-mismatch", "X-SIGNATURE does not match the string to sign.")
    return _fresh(timestamp, clock, window)


def verify_symmetric(
    client_secret: str | bytes,
    method: str,
    path: str,
    access_token: str,
    body: Body,
    timestamp: str,
    signature: str | bytes,
    *,
    include_query: bool = True,
    clock: Clock | None = None,
    window: float | None = FRESHNESS_SECONDS,
) -> Verification:
    """Check a received symmetric X-SIGNATURE over the received bytes; constant-time; then freshness.

    ``window`` seconds either way of ``clock()`` (None: no freshness check). Inputs that cannot be
    a request at all (a non-JSON body with spaces, a bad timestamp) raise typed errors.
    """
    text = symmetric_string_to_sign(method, path, access_token, body, timestamp, include_query=include_query)
    return _verify_hmac(_secret_bytes(client_secret), text, signature, timestamp, clock, window)


def verify_asymmetric(
    public_key: rsa.RSAPublicKey,
    method: str,
    path: str,
    body: Body,
    timestamp: str,
    signature: str | bytes,
    *,
    include_query: bool = True,
    clock: Clock | None = None,
    window: float | None = FRESHNESS_SECONDS,
) -> Verification:
    """Check a received asymmetric X-SIGNATURE (SHA256withRSA) over the received bytes; then freshness."""
    text = asymmetric_string_to_sign(method, path, body, timestamp, include_query=include_query)
    try:
        ok = rsa_verify(public_key, text, signature)
    except SignatureFormatError as exc:
        return Verification(False, "not-base64", exc.message)
    if not ok:
        return Verification(False, "signature-mismatch", "X-SIGNATURE does not verify with this public key.")
    return _fresh(timestamp, clock, window)


def verify_notification(
    client_secret: str | bytes,
    notify_url: str,
    body: Body,
    timestamp: str,
    signature: str | bytes,
    *,
    version: str = DEFAULT_VERSION,
    clock: Clock | None = None,
    window: float | None = FRESHNESS_SECONDS,
) -> Verification:
    """What a merchant's callback runs: does this notification's X-SIGNATURE hold, and is it fresh?"""
    text = notification_string_to_sign(notify_url, body, timestamp, version=version)
    return _verify_hmac(_secret_bytes(client_secret), text, signature, timestamp, clock, window)


# --- headers ------------------------------------------------------------------------------


def service_headers(
    method: str,
    path: str,
    body: Body,
    *,
    timestamp: str,
    access_token: str | None = None,
    client_secret: str | bytes | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
    partner_id: str | None = None,
    external_id: str | None = None,
    channel_id: str | None = None,
    origin: str | None = None,
    include_query: bool = True,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Every signed header of one service call, over this one timestamp and these body bytes.

    Symmetric with ``client_secret`` and ``access_token`` (``Authorization: Bearer`` added);
    asymmetric with ``private_key`` (with ``access_token`` it still sends ``Authorization``).
    Optional headers are left out when None.
    """
    if (client_secret is None) == (private_key is None):
        raise ServiceSignatureInputError(
            "Pass exactly one of client_secret (symmetric) or private_key (asymmetric).",
            hint="Ifortepay and Senmo want the symmetric form: client_secret and access_token.",
        )
    if client_secret is not None:
        if access_token is None:
            raise ServiceSignatureInputError(
                "The symmetric signature needs the access token.",
                hint="Get a B2B token first (snapbook.TokenClient).",
            )
        signature = sign_symmetric(
            client_secret, method, path, access_token, body, timestamp, include_query=include_query
        )
    else:
        assert private_key is not None
        signature = sign_asymmetric(private_key, method, path, body, timestamp, include_query=include_query)
    headers = {"Content-Type": content_type}
    if access_token is not None:
        headers["Authorization"] = f"Bearer {check_access_token(access_token)}"
    headers["X-TIMESTAMP"] = timestamp
    headers["X-SIGNATURE"] = signature
    for name, value in (
        ("X-PARTNER-ID", partner_id),
        ("X-EXTERNAL-ID", external_id),
        ("CHANNEL-ID", channel_id),
        ("ORIGIN", origin),
    ):
        if value is not None:
            headers[name] = value
    return headers


def notification_headers(
    client_secret: str | bytes,
    notify_url: str,
    body: Body,
    *,
    timestamp: str,
    version: str = DEFAULT_VERSION,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers Ifortepay's notification carries: Content-Type, X-TIMESTAMP, X-VERSION, X-SIGNATURE."""
    return {
        "Content-Type": content_type,
        "X-TIMESTAMP": timestamp,
        "X-VERSION": version,
        "X-SIGNATURE": sign_notification(client_secret, notify_url, body, timestamp, version=version),
    }


# --- teaching -----------------------------------------------------------------------------

Kind = Literal["symmetric", "asymmetric", "notification"]


def _shown_body(data: bytes, limit: int = 160) -> str:
    text = data.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(data)} bytes)"


@dataclass(frozen=True)
class ServiceSignatureSteps:
    """Each step from a call (or notification) to its X-SIGNATURE; token and secret shown masked.

    ``access_token``, ``string_to_sign`` and ``signature`` hold the full values for programs;
    ``repr`` and the notebook view mask them.
    """

    kind: Kind
    #: METHOD (service calls) or "" (notifications).
    method: str
    #: EndpointUrl (service calls) or NotifyURL (notifications).
    url: str
    version: str
    timestamp: str
    access_token: str = field(repr=False)
    body_sent: bytes = field(repr=False)
    minified_body: bytes = field(repr=False)
    body_sha256: str
    string_to_sign: str = field(repr=False)
    signature: str = field(repr=False)
    #: How the signature was made: "HMAC-SHA512, secret <masked>" or "SHA256withRSA, key <fingerprint>".
    signed_with: str

    @property
    def string_to_sign_masked(self) -> str:
        """The string to sign with the access token masked (safe to print or log)."""
        if self.access_token:
            return self.string_to_sign.replace(f":{self.access_token}:", f":{mask(self.access_token)}:", 1)
        return self.string_to_sign

    def rows(self) -> list[tuple[str, str]]:
        """The steps as (name, value) rows, secrets masked."""
        if self.kind == "notification":
            rows = [("1. NotifyURL (as registered)", self.url), ("2. X-VERSION", self.version)]
        else:
            rows = [("1. METHOD", self.method), ("2. EndpointUrl (path as sent)", self.url)]
            if self.kind == "symmetric":
                rows.append(("   AccessToken (without 'Bearer ')", mask(self.access_token)))
        rows += [
            ("3. body as sent", _shown_body(self.body_sent) if self.body_sent else "(no body)"),
            ("4. minified body", _shown_body(self.minified_body) if self.minified_body else "(empty)"),
            ("5. SHA-256 of minified body (lowercase hex)", self.body_sha256),
            ("6. X-TIMESTAMP", self.timestamp),
            ("7. string to sign", self.string_to_sign_masked),
            ("8. X-SIGNATURE (base64)", mask(self.signature)),
            ("   signed with", self.signed_with),
        ]
        return rows

    def to_dict(self) -> dict[str, str]:
        """JSON-ready, token masked in the string to sign (the shape of ``snapbook sign-service --json``)."""
        return {
            "method": self.method,
            "path": self.url,
            "minifiedBody": self.minified_body.decode("utf-8", "backslashreplace"),
            "bodySha256": self.body_sha256,
            "stringToSign": self.string_to_sign_masked,
            "signature": self.signature,
        }

    def __repr__(self) -> str:
        return "ServiceSignatureSteps(\n" + "\n".join(f"  {k}: {v}" for k, v in self.rows()) + "\n)"

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in self.rows()
        )
        return f"<table class='snapbook-service-signature'>{body}</table>"


def explain_service_signature(
    *,
    timestamp: str,
    body: Body = None,
    method: str = "",
    path: str = "",
    access_token: str | None = None,
    client_secret: str | bytes | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
    notify_url: str | None = None,
    version: str = DEFAULT_VERSION,
    include_query: bool = True,
) -> ServiceSignatureSteps:
    """Sign like :func:`sign_symmetric`, :func:`sign_asymmetric` or :func:`sign_notification`, keeping each step.

    A notification with ``notify_url`` (and ``client_secret``); a symmetric call with
    ``client_secret`` and ``access_token``; an asymmetric one with ``private_key``.
    """
    sent = _body_bytes(body)
    minified = minify(sent)
    digest = hashlib.sha256(minified).hexdigest()
    if notify_url is not None:
        if client_secret is None:
            raise ServiceSignatureInputError(
                "A notification signature needs the client secret.", hint="Pass client_secret=..."
            )
        text = notification_string_to_sign(notify_url, sent, timestamp, version=version)
        secret = _secret_bytes(client_secret)
        return ServiceSignatureSteps(
            "notification",
            "",
            notify_url,
            version,
            timestamp,
            "",
            sent,
            minified,
            digest,
            text,
            _hmac_b64(secret, text),
            f"HMAC-SHA512, client secret {mask(secret)}",
        )
    if client_secret is not None and private_key is None:
        if access_token is None:
            raise ServiceSignatureInputError(
                "The symmetric signature needs the access token.",
                hint="Pass access_token=... (without 'Bearer ').",
            )
        text = symmetric_string_to_sign(
            method, path, access_token, sent, timestamp, include_query=include_query
        )
        secret = _secret_bytes(client_secret)
        return ServiceSignatureSteps(
            "symmetric",
            check_method(method),
            endpoint_url(path, include_query=include_query),
            "",
            timestamp,
            access_token,
            sent,
            minified,
            digest,
            text,
            _hmac_b64(secret, text),
            f"HMAC-SHA512, client secret {mask(secret)}",
        )
    if private_key is not None and client_secret is None:
        from .keys import fingerprint

        text = asymmetric_string_to_sign(method, path, sent, timestamp, include_query=include_query)
        return ServiceSignatureSteps(
            "asymmetric",
            check_method(method),
            endpoint_url(path, include_query=include_query),
            "",
            timestamp,
            "",
            sent,
            minified,
            digest,
            text,
            rsa_sign(private_key, text),
            f"SHA256withRSA, key SHA-256 fingerprint {fingerprint(private_key)}",
        )
    raise ServiceSignatureInputError(
        "Pass exactly one of client_secret (symmetric, or a notification with notify_url) or private_key.",
        hint="Ifortepay's service calls use client_secret and access_token.",
    )
