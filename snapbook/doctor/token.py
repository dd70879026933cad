"""Why a B2B token request's X-SIGNATURE does not verify: the token signature doctor.

A provider answers a bad token signature with ``401 Unauthorized. [Signature]`` and nothing
more. Whoever holds the public key can say much more, because RSA verification is public:
raising the signature to the public exponent (``s^e mod n``) recovers the block the signer
padded and encrypted with the private key. If that block is not a PKCS#1 v1.5 block, the
signature was made with another key pair (or with PSS padding). If it is, its DigestInfo names
the hash used and holds the digest of the bytes actually signed, and the doctor searches the
usual mistakes (``:`` for ``|``, a second timestamp, a trailing newline, ...) for a message
with that digest. It never guesses: a cause is reported only when the digest proves it.

:func:`diagnose` takes the four values; :func:`diagnose_request` takes captured headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, NamedTuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import SignatureFormatError, TimestampError
from ..endpoints import TOKEN_PATHS
from ..keys import MIN_BITS_TO_INSPECT, fingerprint, public_key_from
from ..masking import mask
from ..signing import JAKARTA, decode_signature, parse_timestamp

__all__ = ["CAUSES", "Diagnosis", "diagnose", "diagnose_request"]

#: Every cause the doctor can report: stable code -> short title.
CAUSES: dict[str, str] = {
    "valid": "valid signature",
    "missing-header": "a signature header is missing",
    "not-base64": "not standard base64",
    "base64url": "URL-safe base64 instead of standard base64",
    "hex-encoded": "hex instead of base64",
    "double-base64": "base64-encoded twice",
    "wrong-length": "wrong length for this key",
    "different-key": "made with a different key pair",
    "malformed-padding": "a hand-made, non-standard PKCS#1 v1.5 block",
    "no-digestinfo": "raw RSA without a DigestInfo (NONEwithRSA / privateEncrypt)",
    "wrong-hash-md5": "MD5 instead of SHA-256",
    "wrong-hash-sha1": "SHA-1 instead of SHA-256",
    "wrong-hash-sha224": "SHA-224 instead of SHA-256",
    "wrong-hash-sha384": "SHA-384 instead of SHA-256",
    "wrong-hash-sha512": "SHA-512 instead of SHA-256",
    "wrong-hash-sha512-224": "SHA-512/224 instead of SHA-256",
    "wrong-hash-sha512-256": "SHA-512/256 instead of SHA-256",
    "wrong-hash-sha3-224": "SHA3-224 instead of SHA-256",
    "wrong-hash-sha3-256": "SHA3-256 instead of SHA-256",
    "wrong-hash-sha3-384": "SHA3-384 instead of SHA-256",
    "wrong-hash-sha3-512": "SHA3-512 instead of SHA-256",
    "pss-padding": "PSS padding instead of PKCS#1 v1.5",
    "separator-colon": "':' instead of '|' in the string to sign",
    "separator-other": "another separator instead of '|'",
    "parts-swapped": "timestamp and client key swapped",
    "whitespace": "extra whitespace or a line break in the string to sign",
    "client-key-case": "the client key in another case",
    "missing-part": "only part of the string to sign",
    "quoted": "the string to sign in quotes",
    "message-encoding": "the string to sign in another byte encoding",
    "prehashed": "the message hashed before signing (hashed twice)",
    "timestamp-format": "the timestamp signed in another format than the header carries",
    "timestamp-drift": "a second timestamp made for the signature",
    "body-signed": "the body signed instead of client_key|timestamp",
    "unknown-message": "the right key and hash, but an unidentified message",
}

_FIX_SIGN_STRING = 'Sign exactly client_key + "|" + X-TIMESTAMP, byte-for-byte the header values, as UTF-8.'
_FIXES: dict[str, str] = {
    "valid": "",
    "missing-header": "Send all four headers: Content-Type, X-TIMESTAMP, X-CLIENT-KEY and X-SIGNATURE.",
    "not-base64": "Send the standard base64 (with '=' padding, on one line) of the raw signature bytes: "
    "base64.b64encode(sig), Java Base64.getEncoder(), `openssl base64 -A`.",
    "base64url": "Encode with standard base64 ('+', '/', '=' padding): Python base64.b64encode (not "
    "urlsafe_b64encode), Java Base64.getEncoder() (not getUrlEncoder()), Node .toString('base64') "
    "(not 'base64url').",
    "hex-encoded": "Send base64 of the raw signature bytes, not hex: Python base64.b64encode(sig) (not "
    "sig.hex()), PHP base64_encode($sig) (not bin2hex), Node .toString('base64') (not 'hex').",
    "double-base64": "Base64-encode the raw signature bytes once.",
    "wrong-length": "Send the whole signature: an RSA signature is exactly as long as the key's modulus "
    "(256 bytes, 344 base64 characters for RSA-2048).",
    "different-key": "Sign with the private key whose public key is registered with the provider. Compare "
    "`snapbook fingerprint private.pem` with `snapbook fingerprint public.pem` (the key you uploaded); if "
    "they differ, upload the matching public key or sign with the matching private key.",
    "malformed-padding": "Use a standard SHA256withRSA (RSASSA-PKCS1-v1_5) implementation instead of "
    "building the padding by hand.",
    "no-digestinfo": "Sign with SHA256withRSA, which hashes the message and wraps the digest in a "
    "DigestInfo: "
    'Python key.sign(msg, padding.PKCS1v15(), hashes.SHA256()); Java Signature.getInstance("SHA256withRSA"); '
    "Node crypto.sign('sha256', msg, key). Not raw RSA, NONEwithRSA or privateEncrypt.",
    "wrong-hash": 'Use SHA-256: Java Signature.getInstance("SHA256withRSA"), Python hashes.SHA256(), '
    "Node crypto.sign('sha256', ...), `openssl dgst -sha256 -sign private.pem`.",
    "pss-padding": "Use PKCS#1 v1.5 padding, not PSS: Python padding.PKCS1v15(); Java "
    '"SHA256withRSA" (not "SHA256withRSA/PSS" or "RSASSA-PSS"); Node: drop '
    "padding: RSA_PKCS1_PSS_PADDING; openssl: drop -sigopt rsa_padding_mode:pss.",
    "separator-colon": 'Join the parts with "|", not ":": client_key + "|" + X-TIMESTAMP '
    "(an older Ifortepay page shows ':'; the standard and the server use '|').",
    "separator-other": 'Join the parts with "|": client_key + "|" + X-TIMESTAMP.',
    "parts-swapped": 'Put the client key first: client_key + "|" + X-TIMESTAMP.',
    "whitespace": 'Sign exactly client_key + "|" + X-TIMESTAMP with no spaces or line breaks: strip values '
    "read from files or environment variables, and sign with printf '%s', not echo (which adds a newline).",
    "client-key-case": "Use the client key exactly as sent in X-CLIENT-KEY, same letter case, in the string "
    "to sign.",
    "missing-part": 'Sign both parts: client_key + "|" + X-TIMESTAMP.',
    "quoted": "Sign the raw text, not its JSON or repr() form (no surrounding quotes).",
    "message-encoding": "Sign the UTF-8 bytes of the string to sign (C#: Encoding.UTF8.GetBytes, not "
    "Encoding.Unicode; no byte order mark; not its base64 or hex).",
    "prehashed": "Pass the string itself to SHA256withRSA, which hashes it; hashing it first signs the "
    "hash of "
    "the hash. (To sign a digest you computed, use Prehashed(hashes.SHA256()).)",
    "timestamp-format": "Make the timestamp once and use that one string for both X-TIMESTAMP and the "
    "string to "
    "sign (snapbook.signed_headers does this): the signed text must be byte-for-byte the header value.",
    "timestamp-drift": "Read the clock once: a second timestamp made for the signature differs from the "
    "header's. Make one timestamp and use it for both (snapbook.signed_headers does this).",
    "body-signed": 'The token request signs client_key + "|" + X-TIMESTAMP only; the body is not signed '
    "(METHOD:url:sha256(body):timestamp belongs to transactional APIs).",
    "unknown-message": "Print the exact bytes you sign and compare their SHA-256 with the recovered digest "
    "above. " + _FIX_SIGN_STRING,
}

_HEADERS = ("X-CLIENT-KEY", "X-TIMESTAMP", "X-SIGNATURE")


# --- the result -----------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """The doctor's verdict on one signature: ``ok``, a stable ``cause`` code, and why.

    ``summary`` is one line; ``details`` says what the RSA public operation showed and
    ``fix`` what to change. Nothing here holds the full signature.
    """

    ok: bool
    cause: str
    summary: str
    details: str = ""
    fix: str = ""
    client_key: str = ""
    timestamp: str = ""
    #: What should have been signed: ``client_key + "|" + timestamp``.
    expected_message: str = ""
    #: The text found to have been signed, when the doctor identified it and it is text.
    signed_message: str | None = None
    #: "PKCS#1 v1.5" or "PSS", when the recovered block shows one.
    padding: str | None = None
    #: "SHA-256", "SHA-1", ... as named by the signature's DigestInfo.
    hash_algorithm: str | None = None
    #: The digest recovered from the signature with the public key (hex).
    recovered_digest_hex: str | None = None
    #: The digest of ``expected_message`` under ``hash_algorithm`` (SHA-256 by default), hex.
    expected_digest_hex: str | None = None
    #: The whole recovered block ``s^e mod n`` (hex): public knowledge, not a secret.
    recovered_block_hex: str | None = field(default=None, repr=False)
    signature_masked: str = ""
    #: Length of the decoded signature in bytes (None when it could not be decoded).
    signature_bytes: int | None = None
    key_bits: int | None = None
    key_fingerprint: str | None = None
    #: How many candidate messages were hashed to find ``signed_message``.
    candidates_tried: int = 0
    notes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """A short name for :attr:`cause`."""
        if self.cause in CAUSES:
            return CAUSES[self.cause]
        from .service import SERVICE_CAUSES  # the service doctor's causes share this result type

        return SERVICE_CAUSES.get(self.cause, self.cause)

    @property
    def verdict(self) -> str:
        return "valid" if self.ok else "invalid"

    def rows(self) -> list[tuple[str, str]]:
        """The diagnosis as (name, value) rows for a table; empty values are left out."""
        block = self.recovered_block_hex
        rows = [
            ("verdict", self.verdict),
            ("cause", f"{self.cause}: {self.title}"),
            ("summary", self.summary),
            ("expected string to sign", _show(self.expected_message) if self.expected_message else ""),
            ("found signed", _show(self.signed_message) if self.signed_message is not None else ""),
            ("padding / hash", " / ".join(x for x in (self.padding, self.hash_algorithm) if x)),
            ("recovered digest", self.recovered_digest_hex or ""),
            ("expected digest", self.expected_digest_hex or ""),
            ("recovered block (s^e mod n)", f"{block[:24]}…{block[-8:]}" if block else ""),
            (
                "signature",
                f"{self.signature_masked}, {self.signature_bytes} bytes"
                if self.signature_bytes is not None
                else self.signature_masked,
            ),
            (
                "public key",
                f"RSA-{self.key_bits}, SHA-256 fingerprint {self.key_fingerprint}" if self.key_bits else "",
            ),
            ("details", self.details),
            ("fix", self.fix),
        ]
        rows += [("note", n) for n in self.notes]
        return [(k, v) for k, v in rows if v]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no full signature), e.g. for a log row or ``snapbook doctor --json``."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        out["title"] = self.title
        return out

    def __repr__(self) -> str:
        return "Diagnosis(\n" + "\n".join(f"  {k}: {v}" for k, v in self.rows()) + "\n)"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        body = "".join(
            f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{_html_value(k, v, colour)}</td></tr>"
            for k, v in self.rows()
        )
        return f"<table class='snapbook-diagnosis'>{body}</table>"


def _html_value(name: str, value: str, colour: str) -> str:
    if name == "verdict":
        mark = "✔" if value == "valid" else "✘"
        return f"<b style='color:{colour}'>{mark} {html.escape(value)}</b>"
    if name in (
        "expected string to sign",
        "found signed",
        "recovered digest",
        "expected digest",
        "recovered block (s^e mod n)",
        "signature",
    ):
        return f"<code>{html.escape(value)}</code>"
    return html.escape(value)


def _show(text: str) -> str:
    """``repr`` of a message, so a trailing newline or space is visible."""
    return repr(text)


# --- entry points -----------------------------------------------------------------------

PublicKeyLike = Union[rsa.RSAPublicKey, rsa.RSAPrivateKey, str, bytes, "os.PathLike[str]"]
BodyLike = Union[bytes, str, Mapping[str, Any], None]


def diagnose(
    public_key: PublicKeyLike,
    client_key: str,
    timestamp: str,
    signature: str | bytes,
    *,
    body: BodyLike = None,
) -> Diagnosis:
    """Say whether ``signature`` verifies for ``client_key|timestamp`` and, if not, exactly why.

    ``public_key`` is a key object, PEM/DER text or bytes, or a path to a key file. ``body`` (the
    request body) lets the doctor recognise a body signed by mistake. Raises
    :class:`~snapbook.errors.KeyFormatError` only for an unusable public key; every problem with
    the signature itself is a :class:`Diagnosis`.
    """
    ctx = _Context.make(public_key, client_key, timestamp, body)
    text = signature.decode("latin-1") if isinstance(signature, (bytes, bytearray)) else str(signature)
    return _finish(ctx, _from_text(ctx, text, depth=0))


def diagnose_request(public_key: PublicKeyLike, headers: Any, body: BodyLike = None) -> Diagnosis:
    """:func:`diagnose` a captured request: X-CLIENT-KEY, X-TIMESTAMP and X-SIGNATURE from ``headers``.

    ``headers`` is any mapping (or list of pairs), matched case-insensitively; an object with
    ``.headers`` and ``.content`` (an ``httpx.Request``) is read whole. A missing or empty
    header gives the cause ``missing-header``.
    """
    if hasattr(headers, "headers") and not hasattr(headers, "items"):
        if body is None:
            body = getattr(headers, "content", None)
        headers = headers.headers
    items = list(headers.items() if hasattr(headers, "items") else headers)
    found = {str(k).lower(): str(v) for k, v in items}
    missing = [h for h in _HEADERS if not found.get(h.lower(), "").strip()]
    if missing:
        return _missing_headers(missing, [str(k) for k, _ in items], found)
    return diagnose(public_key, found["x-client-key"], found["x-timestamp"], found["x-signature"], body=body)


def _missing_headers(missing: list[str], names: list[str], found: dict[str, str]) -> Diagnosis:
    hints = []
    normal = {n.lower().replace("_", "-").strip(): n for n in names}
    for h in missing:
        if h.lower() in found:
            hints.append(f"{h} is present but empty.")
        elif h.lower() in normal:
            hints.append(
                f"{h} was sent as {normal[h.lower()]!r}: header names with '_' are dropped by many proxies "
                "(nginx by default); use '-'."
            )
    for alias, meant in (
        ("x-client-id", "X-CLIENT-KEY"),
        ("x-partner-id", "X-CLIENT-KEY"),
        ("signature", "X-SIGNATURE"),
        ("x-sign", "X-SIGNATURE"),
        ("timestamp", "X-TIMESTAMP"),
    ):
        if meant in missing and alias in found:
            hints.append(f"{alias.upper()} was sent, but the token request needs {meant}.")
    shown = ", ".join(missing)
    return Diagnosis(
        ok=False,
        cause="missing-header",
        summary=f"Missing or empty header{'s' if len(missing) > 1 else ''}: {shown}.",
        details=" ".join(hints) or f"The request carries {len(names)} headers, none named {shown}.",
        fix=_FIXES["missing-header"],
    )


# --- context: the key and the expected message ------------------------------------------


@dataclass(frozen=True)
class _Context:
    key: rsa.RSAPublicKey
    client_key: str
    timestamp: str
    body: bytes | None
    body_obj: Any

    @classmethod
    def make(cls, public_key: PublicKeyLike, client_key: str, timestamp: str, body: BodyLike) -> _Context:
        key = _public_key(public_key)
        body_obj: Any = None
        if isinstance(body, Mapping):
            body_obj = dict(body)
            data: bytes | None = json.dumps(body_obj, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
        else:
            data = None
        return cls(key, str(client_key), str(timestamp), data, body_obj)

    @property
    def expected(self) -> str:
        return f"{self.client_key}|{self.timestamp}"

    @property
    def k(self) -> int:
        return (self.key.key_size + 7) // 8


def _public_key(key: PublicKeyLike) -> rsa.RSAPublicKey:
    return public_key_from(key, min_bits=MIN_BITS_TO_INSPECT)


def _base(ctx: _Context, signature_masked: str, nbytes: int | None) -> dict[str, Any]:
    return {
        "client_key": ctx.client_key,
        "timestamp": ctx.timestamp,
        "expected_message": ctx.expected,
        "signature_masked": signature_masked,
        "signature_bytes": nbytes,
        "key_bits": ctx.key.key_size,
        "key_fingerprint": fingerprint(ctx.key),
    }


def _finish(ctx: _Context, d: Diagnosis) -> Diagnosis:
    """Notes that hold whatever the cause: a non-standard X-TIMESTAMP, a small key."""
    notes = list(d.notes)
    try:
        parse_timestamp(ctx.timestamp, strict=True)
    except TimestampError as exc:
        notes.append(f"Apart from the signature: {exc.message} Many providers reject that.")
    if ctx.key.key_size < 2048:
        notes.append(f"The public key is RSA-{ctx.key.key_size}; SNAP requires at least 2048 bits.")
    return replace(d, notes=tuple(notes)) if notes != list(d.notes) else d


def _wrap(outer: str, summary: str, details: str, fix: str, inner: Diagnosis, masked: str) -> Diagnosis:
    """An encoding problem on top of whatever the repaired signature shows."""
    if inner.ok:
        under = "Once that is undone, the signature is valid: the key, hash and message are right."
        fix_all = fix
    else:
        under = f"Once that is undone: {inner.summary}"
        fix_all = f"{fix} Then: {inner.fix}" if inner.fix else fix
    return replace(
        inner,
        ok=False,
        cause=outer,
        summary=summary,
        details=f"{details} {under}".strip(),
        fix=fix_all,
        signature_masked=masked,
        notes=((f"{inner.cause}: {inner.details}",) if not inner.ok and inner.details else ()) + inner.notes,
    )


# --- layer 1: the base64 text -------------------------------------------------------------


def _from_text(ctx: _Context, text: str, depth: int) -> Diagnosis:
    masked = mask(text.strip())
    try:
        raw = decode_signature(text)
    except SignatureFormatError as exc:
        return _bad_text(ctx, text, exc, masked, depth)
    return _from_bytes(ctx, text.strip(), raw, masked, depth)


def _bad_text(ctx: _Context, text: str, exc: SignatureFormatError, masked: str, depth: int) -> Diagnosis:
    t = text.strip()
    base = _base(ctx, masked, None)

    def plain(summary: str, cause: str = "not-base64", details: str = "") -> Diagnosis:
        return Diagnosis(
            ok=False, cause=cause, summary=summary, details=details or exc.message, fix=_FIXES[cause], **base
        )

    if not t:
        return plain("The signature is empty.")
    if depth > 3:
        return plain(f"The signature is not usable base64: {exc.message}")

    def repaired(fixed: str) -> Diagnosis:
        return _from_text(ctx, fixed, depth + 1)

    if len(t) > 1 and t[0] == t[-1] and t[0] in "\"'":
        inner = repaired(t[1:-1])
        return _wrap(
            "not-base64",
            "The signature is wrapped in quotes.",
            f"The value starts and ends with {t[0]!r}, which is not base64.",
            "Send the bare base64 text, without quotes.",
            inner,
            masked,
        )
    if re.search(r"\s", t):
        plus = t.replace(" ", "+")
        if not re.search(r"[\r\n\t]", t) and _decodes_to(plus, ctx.k):
            return _wrap(
                "not-base64",
                "The signature's '+' characters became spaces.",
                "The value went through URL or form decoding (application/x-www-form-urlencoded reads '+' "
                "as a space), e.g. it was pasted into a query string or a form field.",
                "Send the signature in the X-SIGNATURE header as it is; where it must travel in a URL, "
                "percent-encode '+' as %2B.",
                repaired(plus),
                masked,
            )
        inner = repaired(re.sub(r"\s+", "", t))
        breaks = bool(re.search(r"[\r\n]", t))
        return _wrap(
            "not-base64",
            f"The signature's base64 contains {'line breaks' if breaks else 'spaces'}.",
            "Line-wrapped base64 (`openssl base64` or `base64` without -w0 wrap at 64/76 characters; "
            "Java's MIME encoder at 76) cannot travel in one header line."
            if breaks
            else "Spaces are not part of the base64 alphabet.",
            "Encode on one line: `openssl base64 -A`, `base64 -w0`, Java Base64.getEncoder()."
            if breaks
            else "Send the base64 text without spaces.",
            inner,
            masked,
        )
    urlsafe = set(t) & set("-_")
    if urlsafe and not (set(t) & set("+/")) and re.fullmatch(r"[A-Za-z0-9_=-]+", t):
        fixed = t.translate(str.maketrans("-_", "+/")).rstrip("=")
        fixed += "=" * (-len(fixed) % 4)
        inner = repaired(fixed)
        unpadded = "" if t.endswith("=") or len(t) % 4 == 0 else " without '=' padding"
        return _wrap(
            "base64url",
            f"The signature is URL-safe base64{unpadded} ('-' and '_'); SNAP needs standard "
            "base64 ('+' and '/').",
            "Its characters include " + " and ".join(repr(c) for c in sorted(urlsafe)) + ".",
            _FIXES["base64url"],
            inner,
            masked,
        )
    if re.fullmatch(r"[A-Za-z0-9+/]+=*", t) and len(t) % 4:
        fixed = t.rstrip("=")
        fixed += "=" * (-len(fixed) % 4)
        try:
            raw = base64.b64decode(fixed, validate=True)
        except binascii.Error:
            return plain(f"The signature is not valid base64: {exc.message}")
        if len(raw) == ctx.k:
            inner = _from_bytes(ctx, fixed, raw, masked, depth + 1)
            return _wrap(
                "not-base64",
                "The signature's trailing '=' padding is missing.",
                f"{len(t)} characters is not a multiple of 4; with the padding restored it decodes to the "
                f"{ctx.k} bytes of an RSA-{ctx.key.key_size} signature. Strict decoders refuse it.",
                "Keep the '=' padding: use standard base64 with padding (not a 'no padding' option).",
                inner,
                masked,
            )
        return replace(
            _wrong_length(ctx, fixed, raw, masked, depth),
            summary=f"The signature was cut short: {len(t)} base64 characters (~{len(raw)} bytes), but an "
            f"RSA-{ctx.key.key_size} signature is {_b64len(ctx.k)} characters ({ctx.k} bytes).",
        )
    return plain(f"The signature is not base64: {exc.message}")


def _decodes_to(text: str, size: int) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == size
    except (binascii.Error, ValueError):
        return False


def _b64len(n: int) -> int:
    return 4 * ((n + 2) // 3)


# --- layer 2: the decoded bytes ------------------------------------------------------------


def _from_bytes(ctx: _Context, text: str, raw: bytes, masked: str, depth: int) -> Diagnosis:
    if len(raw) == ctx.k:
        return _from_block(ctx, raw, masked)
    k = ctx.k
    if depth <= 3 and re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) == 2 * k:
        inner = _from_bytes(ctx, text, bytes.fromhex(text), masked, depth + 1)
        return _wrap(
            "hex-encoded",
            "The signature is hex, not base64.",
            f"{len(text)} hex digits are the {k} bytes of an RSA-{ctx.key.key_size} signature; read as "
            f"base64 they give {len(raw)} bytes.",
            _FIXES["hex-encoded"],
            inner,
            masked,
        )
    if depth <= 3 and len(raw) == _b64len(k) and re.fullmatch(rb"[A-Za-z0-9+/]+=*", raw):
        inner = _from_text(ctx, raw.decode("ascii"), depth + 1)
        return _wrap(
            "double-base64",
            "The signature is base64-encoded twice.",
            f"Decoding it once gives {len(raw)} characters of base64, which decode to the {k} bytes of a "
            "signature.",
            _FIXES["double-base64"],
            inner,
            masked,
        )
    return _wrong_length(ctx, text, raw, masked, depth)


def _wrong_length(ctx: _Context, text: str, raw: bytes, masked: str, depth: int) -> Diagnosis:
    k, bits, n = ctx.k, ctx.key.key_size, len(raw)
    summary = f"The signature is {n} bytes, but an RSA-{bits} signature is {k} bytes."
    base = _base(ctx, masked, n)
    if (
        n == k - 1
        and depth <= 3
        and (inner := _from_block(ctx, b"\0" + raw, masked)).cause != "different-key"
    ):
        return _wrap(
            "wrong-length",
            summary + " A leading zero byte was dropped.",
            "About one signature in 256 starts with a 00 byte; code that turns the number into bytes "
            "without a fixed length (Java BigInteger.toByteArray, int.to_bytes(min length)) drops it.",
            f"Left-pad the signature to exactly {k} bytes (I2OSP), or use the library's sign() output as is.",
            inner,
            masked,
        )
    if (
        n == k + 1
        and raw[0] == 0
        and depth <= 3
        and (inner := _from_block(ctx, raw[1:], masked)).cause != "different-key"
    ):
        return _wrap(
            "wrong-length",
            summary + " It has an extra leading 00 byte.",
            "Java's BigInteger.toByteArray adds a 00 sign byte when the top bit is set.",
            f"Strip the sign byte: send exactly {k} bytes.",
            inner,
            masked,
        )
    expected_hash = hashlib.sha256(ctx.expected.encode()).digest()
    if raw == expected_hash:
        details = (
            "These 32 bytes are the SHA-256 of the string to sign: it was hashed but never signed with "
            "the private key."
        )
    elif n == 64:
        details = (
            "64 bytes is the size of an HMAC-SHA512, the symmetric signature of transactional APIs; the "
            "token request needs an asymmetric SHA256withRSA signature made with the private key."
        )
    elif n in (16, 20, 28, 32, 48) or n < 64:
        details = f"{n} bytes is the size of a hash or HMAC, not of an RSA-{bits} signature."
    elif n in (128, 192, 256, 384, 512, 1024) and n != k:
        details = (
            f"{n} bytes is the size of an RSA-{8 * n} signature: it was made with a different, "
            f"{8 * n}-bit key, not the key pair of this RSA-{bits} public key."
        )
    elif n < k:
        details = (
            f"It is {k - n} bytes short: the value was probably cut when copied "
            f"({len(text)} of {_b64len(k)} base64 characters)."
        )
    else:
        details = f"It is {n - k} bytes too long: extra data was appended, or it was encoded twice."
    return Diagnosis(
        ok=False, cause="wrong-length", summary=summary, details=details, fix=_FIXES["wrong-length"], **base
    )


# --- layer 3: the RSA public operation ---------------------------------------------------------


def _from_block(ctx: _Context, raw: bytes, masked: str) -> Diagnosis:
    key, k = ctx.key, ctx.k
    base = _base(ctx, masked, len(raw))
    numbers = key.public_numbers()
    s = int.from_bytes(raw, "big")
    expected_sha256 = hashlib.sha256(ctx.expected.encode()).hexdigest()
    if s >= numbers.n:
        return Diagnosis(
            ok=False,
            cause="different-key",
            summary="Made with a different key pair: as a number the signature is larger than this "
            f"RSA-{key.key_size} key's modulus, which no signature made with its private key can be.",
            details="Under this public key the signature is not even a valid RSA value.",
            fix=_FIXES["different-key"],
            expected_digest_hex=expected_sha256,
            **base,
        )
    try:
        key.verify(raw, ctx.expected.encode(), padding.PKCS1v15(), hashes.SHA256())
        return Diagnosis(
            ok=True,
            cause="valid",
            summary=f"Valid: the signature verifies for {ctx.expected!r} (SHA256withRSA, PKCS#1 v1.5).",
            signed_message=ctx.expected,
            padding="PKCS#1 v1.5",
            hash_algorithm="SHA-256",
            recovered_digest_hex=expected_sha256,
            expected_digest_hex=expected_sha256,
            **base,
        )
    except InvalidSignature:
        pass
    m = pow(s, numbers.e, numbers.n)
    em = m.to_bytes(k, "big")
    base["recovered_block_hex"] = em.hex()
    block = _parse_pkcs1(em)
    if block is not None:
        return _from_pkcs1(ctx, block, base, expected_sha256)
    pss = _parse_pss(m, key.key_size)
    if pss is not None:
        return _from_pss(ctx, pss, base)
    return Diagnosis(
        ok=False,
        cause="different-key",
        summary=f"Made with a different key pair: under this public key (RSA-{key.key_size}, fingerprint "
        f"{base['key_fingerprint'][:16]}…) the signature holds no PKCS#1 v1.5 block.",
        details=f"The RSA public operation s^e mod n gives {_head(em)}, not the 00 01 FF FF … FF 00 "
        "DigestInfo block a signature made with the matching private key opens to (nor a PSS block ending "
        "in BC). So it was made with another private key, or the provider holds another public key.",
        fix=_FIXES["different-key"],
        expected_digest_hex=expected_sha256,
        **base,
    )


def _head(em: bytes, n: int = 8) -> str:
    return " ".join(f"{b:02x}" for b in em[:n]) + " …"


class _Block(NamedTuple):
    hash_name: str | None  # "SHA-256", ... or None when there is no recognisable DigestInfo
    digest: bytes  # the DigestInfo's digest, or the whole payload when there is none
    problems: tuple[str, ...]
    oid: str | None


# DER of the hash OIDs a DigestInfo may name.
_OIDS: dict[str, str] = {
    "2a864886f70d0205": "MD5",
    "2b0e03021a": "SHA-1",
    "608648016503040204": "SHA-224",
    "608648016503040201": "SHA-256",
    "608648016503040202": "SHA-384",
    "608648016503040203": "SHA-512",
    "608648016503040205": "SHA-512/224",
    "608648016503040206": "SHA-512/256",
    "608648016503040207": "SHA3-224",
    "608648016503040208": "SHA3-256",
    "608648016503040209": "SHA3-384",
    "60864801650304020a": "SHA3-512",
}
_HASHLIB = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
    "SHA-512/224": "sha512_224",
    "SHA-512/256": "sha512_256",
    "SHA3-224": "sha3_224",
    "SHA3-256": "sha3_256",
    "SHA3-384": "sha3_384",
    "SHA3-512": "sha3_512",
}
_BY_SIZE = {16: "MD5", 20: "SHA-1", 28: "SHA-224", 32: "SHA-256", 48: "SHA-384", 64: "SHA-512"}


def _hasher(name: str) -> Callable[[bytes], bytes]:
    fn = getattr(hashlib, _HASHLIB[name], None)
    if fn is not None:
        return lambda data: fn(data).digest()
    algo = _HASHLIB[name]
    return lambda data: hashlib.new(algo, data).digest()


def _parse_pkcs1(em: bytes) -> _Block | None:
    """Read an EMSA-PKCS1-v1_5 block ``00 01 FF…FF 00 T``; None if ``em`` is not one."""
    if len(em) < 11 or em[0] != 0 or em[1] != 1:
        return None
    i = 2
    while i < len(em) and em[i] == 0xFF:
        i += 1
    if i >= len(em) or em[i] != 0 or i == 2:
        return None
    problems = []
    if i - 2 < 8:
        problems.append(f"only {i - 2} FF padding bytes (at least 8 are required)")
    payload = em[i + 1 :]
    info = _digest_info(payload)
    if info is None:
        return _Block(None, payload, tuple(problems), None)
    name, digest, oid, info_problems = info
    return _Block(name, digest, tuple(problems + info_problems), oid)


def _digest_info(t: bytes) -> tuple[str | None, bytes, str, list[str]] | None:
    """DER ``SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING digest }``, read leniently."""
    try:
        if t[0] != 0x30 or t[1] != len(t) - 2 or t[2] != 0x30:
            return None
        alg = t[4 : 4 + t[3]]
        rest = t[4 + t[3] :]
        if alg[0] != 0x06:
            return None
        oid = alg[2 : 2 + alg[1]]
        params = alg[2 + alg[1] :]
        if rest[0] != 0x04 or rest[1] != len(rest) - 2:
            return None
    except IndexError:
        return None
    problems = []
    if params == b"":
        problems.append("the DigestInfo omits the NULL algorithm parameters that DER encoders write")
    elif params != b"\x05\x00":
        return None
    name = _OIDS.get(oid.hex())
    digest = rest[2:]
    if name is None:
        problems.append(f"the DigestInfo names an unknown algorithm (OID bytes {oid.hex()})")
    elif len(digest) != len(_hasher(name)(b"")):
        problems.append(f"the {name} digest is {len(digest)} bytes long")
    return name, digest, oid.hex(), problems


def _from_pkcs1(ctx: _Context, block: _Block, base: dict[str, Any], expected_sha256: str) -> Diagnosis:
    base = dict(base, padding="PKCS#1 v1.5", recovered_digest_hex=block.digest.hex())
    opened = (
        "The RSA public operation s^e mod n opens the signature to a valid PKCS#1 v1.5 block "
        "(00 01 FF … FF 00 …), so the key pair is right."
    )
    if block.hash_name is None and block.oid is not None:
        return Diagnosis(
            ok=False,
            cause="malformed-padding",
            summary="The block under the signature is not standard PKCS#1 v1.5: "
            + "; ".join(block.problems)
            + ".",
            details=opened,
            fix=_FIXES["malformed-padding"],
            **base,
        )
    if block.hash_name is None:
        return _no_digest_info(ctx, block, base, opened)
    name = block.hash_name
    hash_fn = _hasher(name)
    expected_digest = hash_fn(ctx.expected.encode())
    base.update(hash_algorithm=name, expected_digest_hex=expected_digest.hex())
    digest = block.digest
    found, tried = _search(ctx, lambda m: hash_fn(m) == digest)
    base["candidates_tried"] = tried
    opened += f" Its DigestInfo names {name} and holds the digest {digest.hex()}."
    if block.problems:
        exact = found is not None and found.cause == "valid"
        return Diagnosis(
            ok=False,
            cause="malformed-padding",
            summary="The block under the signature is not standard PKCS#1 v1.5: "
            + "; ".join(block.problems)
            + ".",
            details=opened + (" The message is right." if exact else _found_text(ctx, found, name)),
            fix=_FIXES["malformed-padding"],
            signed_message=found.text if found else None,
            **base,
        )
    if name != "SHA-256":
        cause = "wrong-hash-" + _HASHLIB[name].replace("_", "-")
        if found is not None and found.cause == "valid":
            tail, fix = "; the message was right.", _FIXES["wrong-hash"]
        elif found is not None:
            tail = (
                f", and the message was {_show_found(found)} instead of {ctx.expected!r} "
                f"({_describe(ctx, found)})."
            )
            fix = f"{_FIXES['wrong-hash']} And: {_FIXES[found.cause]}"
        else:
            tail, fix = (
                "; the message could not be identified either.",
                _FIXES["wrong-hash"] + " " + _FIX_SIGN_STRING,
            )
        java = name.replace("-", "").replace("/", "")
        return Diagnosis(
            ok=False,
            cause=cause,
            summary=f"Signed with {name} ({java}withRSA) instead of SHA-256{tail}",
            details=opened + f" SHA256withRSA was required; {name} of the expected string is "
            f"{expected_digest.hex()}."
            + ("" if found is None or found.cause == "valid" else _found_text(ctx, found, name)),
            fix=fix,
            signed_message=found.text if found else None,
            **base,
        )
    if found is None:
        return Diagnosis(
            ok=False,
            cause="unknown-message",
            summary="The right key and hash (SHA256withRSA), but the message signed is not "
            f"{ctx.expected!r} nor any "
            f"of {tried} common variants of it.",
            details=opened
            + f" SHA-256 of the expected string to sign is {expected_sha256}: what was signed has SHA-256 "
            f"{digest.hex()}. Compute SHA-256 of the exact bytes your code signs and compare.",
            fix=_FIXES["unknown-message"],
            **base,
        )
    if (
        found.cause == "valid"
    ):  # a digest match that OpenSSL still refused: cannot happen with a standard block
        return Diagnosis(
            ok=False,
            cause="malformed-padding",
            summary="The block is not standard PKCS#1 v1.5.",
            details=opened,
            fix=_FIXES["malformed-padding"],
            signed_message=found.text,
            **base,
        )
    return Diagnosis(
        ok=False,
        cause=found.cause,
        summary=f"Signed {_show_found(found)} instead of {ctx.expected!r}: {_describe(ctx, found)}.",
        details=opened + _found_text(ctx, found, name),
        fix=_FIXES[found.cause],
        signed_message=found.text,
        **base,
    )


def _no_digest_info(ctx: _Context, block: _Block, base: dict[str, Any], opened: str) -> Diagnosis:
    payload = block.digest
    guess = _BY_SIZE.get(len(payload))
    fn = _hasher(guess) if guess else None
    found, tried = _search(ctx, lambda m: m == payload or (fn is not None and fn(m) == payload))
    base.update(candidates_tried=tried, hash_algorithm=guess)
    if found is not None and found.message == payload:
        what = f"the message itself ({len(payload)} bytes, no hash at all)"
    elif guess:
        what = f"a bare {len(payload)}-byte value, the size of a {guess} digest, with no DigestInfo around it"
    else:
        what = f"a {len(payload)}-byte payload that is no DigestInfo"
    if found is None:
        msg = "; the message could not be identified."
    elif found.cause == "valid":
        msg = "; the message was right."
    else:
        msg = f"; the message was {_show_found(found)} ({_describe(ctx, found)})."
    return Diagnosis(
        ok=False,
        cause="no-digestinfo",
        summary=f"Raw RSA: the block under the signature holds {what}{msg}",
        details=opened + " But after the 00 separator comes " + what + ", as produced by NONEwithRSA, "
        "Cipher RSA/ECB/PKCS1Padding with the private key, or Node's privateEncrypt. A SHA256withRSA "
        "signature "
        "carries the DER DigestInfo (30 31 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20 + digest).",
        fix=_FIXES["no-digestinfo"],
        signed_message=found.text if found else None,
        **base,
    )


# --- PSS -------------------------------------------------------------------------------------


class _Pss(NamedTuple):
    hash_name: str
    h: bytes
    salt: bytes


def _mgf1(seed: bytes, length: int, algo: str) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.new(algo, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def _parse_pss(m: int, mod_bits: int) -> _Pss | None:
    """Undo EMSA-PSS encoding (RFC 8017 9.1.2) far enough to read the salt; None if not PSS."""
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    if m.bit_length() > em_bits:
        return None
    em = m.to_bytes(em_len, "big")
    if em[-1] != 0xBC:
        return None
    for name in ("SHA-256", "SHA-1", "SHA-512", "SHA-384", "SHA-224"):
        algo = _HASHLIB[name]
        h_len = hashlib.new(algo).digest_size
        if em_len < h_len + 2:
            continue
        masked_db, h = em[: em_len - h_len - 1], em[em_len - h_len - 1 : -1]
        db_int = int.from_bytes(masked_db, "big") ^ int.from_bytes(_mgf1(h, len(masked_db), algo), "big")
        db_int &= (1 << (8 * len(masked_db) - (8 * em_len - em_bits))) - 1
        db = db_int.to_bytes(len(masked_db), "big")
        stripped = db.lstrip(b"\0")
        if stripped[:1] == b"\x01":
            return _Pss(name, h, stripped[1:])
    return None


def _from_pss(ctx: _Context, pss: _Pss, base: dict[str, Any]) -> Diagnosis:
    fn = _hasher(pss.hash_name)
    prefix, salt, h = b"\0" * 8, pss.salt, pss.h
    found, tried = _search(ctx, lambda m: fn(prefix + fn(m) + salt) == h)
    base.update(
        padding="PSS",
        hash_algorithm=pss.hash_name,
        candidates_tried=tried,
        signed_message=found.text if found else None,
    )
    hash_note = "" if pss.hash_name == "SHA-256" else f" and {pss.hash_name} instead of SHA-256"
    if found is not None and found.cause == "valid":
        tail, fix = "; the message was right.", _FIXES["pss-padding"]
    elif found is not None:
        tail = f"; and the message was {_show_found(found)} ({_describe(ctx, found)})."
        fix = f"{_FIXES['pss-padding']} And: {_FIXES[found.cause]}"
    else:
        tail, fix = "; the message could not be identified.", _FIXES["pss-padding"]
    if hash_note:
        fix += " " + _FIXES["wrong-hash"]
    return Diagnosis(
        ok=False,
        cause="pss-padding",
        summary=f"Signed with PSS padding{hash_note} (RSASSA-PSS) instead of PKCS#1 v1.5{tail}",
        details=f"The RSA public operation opens the signature to an EMSA-PSS block (ending in BC; MGF1 with "
        f"{pss.hash_name}, a {len(salt)}-byte salt), so the key pair is right but the padding is not "
        "SHA256withRSA's "
        "PKCS#1 v1.5. PSS is randomised and the provider's PKCS#1 v1.5 verifier rejects it.",
        fix=fix,
        **base,
    )


# --- candidate messages --------------------------------------------------------------------


class _Candidate(NamedTuple):
    cause: str
    message: bytes
    #: What the mistake is, in words; for timestamps it is computed when found.
    what: str
    #: The candidate as text when it is text (None for byte-level variants).
    text: str | None
    #: The timestamp text signed, for timestamp causes.
    signed_ts: str | None = None


def _search(ctx: _Context, matches: Callable[[bytes], bool]) -> tuple[_Candidate | None, int]:
    tried = 0
    for cand in _candidates(ctx):
        tried += 1
        if matches(cand.message):
            return cand, tried
    return None, tried


def _show_found(c: _Candidate) -> str:
    return repr(c.text) if c.text is not None else c.what


def _found_text(ctx: _Context, c: _Candidate | None, hash_name: str) -> str:
    if c is None:
        return " No common variant of the string to sign has that digest."
    if c.cause == "valid":
        return " That is the digest of the expected string to sign."
    text = (
        f" That is {hash_name} of {_show_found(c)} ({_describe(ctx, c)}), found among the common mistakes; "
        f"the expected string to sign is {ctx.expected!r}."
    )
    if c.signed_ts is not None:
        text += (
            f" The signature covers the timestamp text {c.signed_ts!r}; the X-TIMESTAMP header carries "
            f"{ctx.timestamp!r}."
        )
    return text


def _describe(ctx: _Context, c: _Candidate) -> str:
    if c.signed_ts is not None:
        return _describe_timestamp(ctx.timestamp, c.signed_ts)
    return c.what


def _t(cause: str, text: str, what: str) -> _Candidate:
    return _Candidate(cause, text.encode("utf-8"), what, text)


def _candidates(ctx: _Context) -> Iterator[_Candidate]:
    """Messages a signer may have signed instead, most common first. Bounded: about 15,000."""
    ck, ts = ctx.client_key, ctx.timestamp
    exact = f"{ck}|{ts}"
    yield _t("valid", exact, "the expected string to sign")
    yield _t("separator-colon", f"{ck}:{ts}", "':' instead of '|' between client key and timestamp")
    for sep, name in (
        ("", "no separator"),
        (",", "','"),
        (";", "';'"),
        (" ", "a space"),
        ("||", "'||'"),
        ("/", "'/'"),
        ("-", "'-'"),
        ("_", "'_'"),
        ("+", "'+'"),
        ("&", "'&'"),
        ("#", "'#'"),
        (".", "'.'"),
        ("\t", "a tab"),
        ("\\|", "an escaped '\\|'"),
    ):
        yield _t(
            "separator-other", f"{ck}{sep}{ts}", f"{name} instead of '|' between client key and timestamp"
        )
    for sep in ("|", ":", ""):
        yield _t("parts-swapped", f"{ts}{sep}{ck}", "the timestamp first, then the client key")
    yield from _whitespace(ck, ts)
    for variant, name in (
        (ck.upper(), "upper case"),
        (ck.lower(), "lower case"),
        (ck.capitalize(), "capitalised"),
        (ck.swapcase(), "swapped case"),
    ):
        if variant != ck:
            yield _t("client-key-case", f"{variant}|{ts}", f"the client key in {name} ({variant!r})")
    for text, what in (
        (ts, "the timestamp alone"),
        (ck, "the client key alone"),
        (f"|{ts}", "an empty client key"),
        (f"{ck}|", "an empty timestamp"),
    ):
        yield _t("missing-part", text, what)
    yield _t("quoted", json.dumps(exact), "the string to sign in double quotes (JSON-encoded)")
    yield _t("quoted", f"'{exact}'", "the string to sign in single quotes (repr)")
    yield _t("quoted", f'"{ck}"|"{ts}"', "each part in double quotes")
    raw = exact.encode("utf-8")
    for data, what in (
        (exact.encode("utf-16-le"), "UTF-16LE bytes (C# Encoding.Unicode)"),
        (exact.encode("utf-16"), "UTF-16 bytes with a byte order mark"),
        (exact.encode("utf-16-be"), "UTF-16BE bytes"),
        (b"\xef\xbb\xbf" + raw, "UTF-8 bytes after a byte order mark"),
        (base64.b64encode(raw), "the base64 of the string to sign"),
        (raw.hex().encode(), "the hex of the string to sign"),
    ):
        yield _Candidate("message-encoding", data, f"{what} of {exact!r}", None)
    digest = hashlib.sha256(raw).digest()
    for data, what in (
        (digest, "the raw SHA-256 digest"),
        (digest.hex().encode(), "the hex SHA-256 digest"),
        (digest.hex().upper().encode(), "the upper-case hex SHA-256 digest"),
        (base64.b64encode(digest), "the base64 SHA-256 digest"),
    ):
        yield _Candidate("prehashed", data, f"{what} of {exact!r}, hashed again by SHA256withRSA", None)
    yield from _body_candidates(ctx)
    yield from _timestamp_candidates(ck, ts)


def _whitespace(ck: str, ts: str) -> Iterator[_Candidate]:
    exact = f"{ck}|{ts}"
    names = {" ": "space", "\n": "newline", "\r\n": "CRLF", "\t": "tab", "\r": "carriage return"}
    for w, name in names.items():
        yield _t("whitespace", exact + w, f"a trailing {name}")
    for w, name in names.items():
        yield _t("whitespace", w + exact, f"a leading {name}")
        yield _t("whitespace", w + exact + w, f"a {name} at both ends")
        yield _t("whitespace", f"{ck}{w}|{ts}", f"a {name} after the client key")
        yield _t("whitespace", f"{ck}|{w}{ts}", f"a {name} before the timestamp")
    yield _t("whitespace", f"{ck} | {ts}", "spaces around '|'")
    if ck != ck.strip() or ts != ts.strip():
        yield _t(
            "whitespace",
            f"{ck.strip()}|{ts.strip()}",
            "the values stripped for signing, while the headers carry surrounding whitespace",
        )


_TOKEN_PATHS = tuple(TOKEN_PATHS.values())  # the same table the client and the sandbox use


def _body_variants(ctx: _Context) -> list[tuple[bytes, str]]:
    obj: Any = ctx.body_obj
    variants: list[tuple[bytes, str]] = []
    if ctx.body is not None:
        variants.append((ctx.body, "the request body"))
        if obj is None:
            try:
                obj = json.loads(ctx.body)
            except ValueError:
                obj = None
    if ctx.body is None:
        for default in (
            {"grantType": "client_credentials", "additionalInfo": {}},
            {"grantType": "client_credentials"},
        ):
            variants.append((json.dumps(default, separators=(",", ":")).encode(), "the usual token body"))
            variants.append((json.dumps(default).encode(), "the usual token body"))
    elif obj is not None:
        for kw, what in (
            ({"separators": (",", ":")}, "the minified JSON body"),
            ({}, "the JSON body as json.dumps writes it"),
            ({"indent": 2}, "the pretty-printed JSON body"),
            ({"indent": 4}, "the pretty-printed JSON body"),
            ({"separators": (",", ":"), "sort_keys": True}, "the minified JSON body with sorted keys"),
        ):
            data = json.dumps(obj, ensure_ascii=False, **kw)  # type: ignore[arg-type]
            variants.append((data.encode(), what))
    seen: set[bytes] = set()
    out = []
    for data, what in variants:
        if data not in seen:
            seen.add(data)
            out.append((data, what))
    return out


def _body_candidates(ctx: _Context) -> Iterator[_Candidate]:
    ck, ts = ctx.client_key, ctx.timestamp
    for data, what in _body_variants(ctx):
        text = data.decode("utf-8", "replace")
        yield _Candidate("body-signed", data, what + " instead of client_key|timestamp", text)
        for msg, how in (
            (f"{ck}|{ts}|{text}", f"client_key|timestamp|{what}"),
            (f"{ck}|{ts}{text}", f"client_key|timestamp followed by {what}"),
            (f"{text}|{ck}|{ts}", f"{what}|client_key|timestamp"),
        ):
            yield _t("body-signed", msg, how)
        body_hash = hashlib.sha256(data).hexdigest()
        yield _t("body-signed", f"{ck}|{ts}|{body_hash}", f"client_key|timestamp|SHA-256 hex of {what}")
        for path in _TOKEN_PATHS:
            yield _t(
                "body-signed",
                f"POST:{path}:{body_hash}:{ts}",
                f"the transactional (service) string to sign POST:{path}:sha256({what}):timestamp",
            )


# --- timestamp candidates ---------------------------------------------------------------

_TS_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})([Tt ])(\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?$"
)


class _Ts(NamedTuple):
    """A timestamp text taken apart: its instant, and how it was written."""

    instant: datetime
    wall: datetime  # naive local clock reading as written
    sep: str
    fraction: str
    zone: str  # as written; "" when none
    epoch: str  # "", "s" or "ms"


def _read_timestamp(text: str) -> _Ts | None:
    t = text.strip()
    if re.fullmatch(r"\d{10}", t):
        dt = datetime.fromtimestamp(int(t), timezone.utc)
        return _Ts(dt, dt.replace(tzinfo=None), "", "", "", "s")
    if re.fullmatch(r"\d{13}", t):
        dt = _EPOCH + timedelta(milliseconds=int(t))
        return _Ts(dt, dt.replace(tzinfo=None), "", "", "", "ms")
    m = _TS_RE.match(t)
    if m is None:
        return None
    date, sep, clock, fraction, zone = m.group(1), m.group(2), m.group(3), m.group(4) or "", m.group(5) or ""
    try:
        wall = datetime.strptime(f"{date}T{clock}", "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    if fraction:
        wall = wall.replace(microsecond=int(fraction[1:7].ljust(6, "0")))
    tz = _zone_of(zone)
    if tz is None:
        return None
    return _Ts(wall.replace(tzinfo=tz), wall, sep, fraction, zone, "")


def _zone_of(zone: str) -> tzinfo | None:
    if zone in ("Z", "z", "UTC", "GMT"):
        return timezone.utc
    if zone == "":
        return JAKARTA  # no zone written: read as the Jakarta clock SNAP servers assume
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    return timezone((1 if zone[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes))


def _offset_text(tz: tzinfo, colon: bool = True, minutes: bool = True) -> str:
    off = tz.utcoffset(None) or timedelta(0)
    total = int(off.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    hh, mm = divmod(abs(total), 60)
    if not minutes:
        return f"{sign}{hh:02d}"
    return f"{sign}{hh:02d}{':' if colon else ''}{mm:02d}"


_ZONES = (JAKARTA, timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=9)))


def _renderings(instant: datetime, zones: list[tzinfo]) -> Iterator[tuple[str, bool]]:
    """Texts for ``instant``: (text, labelled with its true offset)."""
    us = instant.microsecond
    fracs = ["", f".{us // 1000:03d}"] + ([f".{us:06d}"] if us else [])
    yield str(_epoch_ms(instant) // 1000), True
    yield str(_epoch_ms(instant)), True
    for w in zones:
        wall = instant.astimezone(w)
        off = w.utcoffset(None) or timedelta(0)
        own = [_offset_text(w), _offset_text(w, colon=False), _offset_text(w, minutes=False), ""]
        if not off:
            own += ["Z", "-00:00", " UTC", " GMT"]
        # Another zone's label on this zone's clock reading: utcnow() formatted with "+07:00", ...
        others = [_offset_text(z) for z in zones if z is not w] + (["Z"] if off else [])
        for sep in ("T", " "):
            stem = wall.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
            for frac in fracs:
                for label in own:
                    yield f"{stem}{frac}{label}", True
                for label in others:
                    yield f"{stem}{frac}{label}", False


def _timestamp_candidates(ck: str, ts: str) -> Iterator[_Candidate]:
    parsed = _read_timestamp(ts)
    if parsed is None:
        return
    zones: list[tzinfo] = []
    for z in (parsed.instant.tzinfo, *_ZONES):
        if z is not None and all(z.utcoffset(None) != y.utcoffset(None) for y in zones):
            zones.append(z)

    def cand(cause: str, signed: str) -> _Candidate:
        text = f"{ck}|{signed}"
        return _Candidate(cause, text.encode("utf-8"), "", text, signed)

    # The same instant written another way, or another zone's clock reading with the wrong label.
    for text, _true in _renderings(parsed.instant, zones):
        if text != ts:
            yield cand("timestamp-format", text)
    # A second timestamp, a few seconds apart: first as the header writes it, then in the other forms.
    for delta in (1, -1, 2, -2, 3, -3, 4, -4, 5, -5):
        yield cand("timestamp-drift", _shift(parsed, delta))
    for delta in (1, -1, 2, -2, 3, -3, 4, -4, 5, -5):
        for text, true in _renderings(parsed.instant + timedelta(seconds=delta), zones):
            yield cand("timestamp-drift" if true else "timestamp-format", text)
    # Minutes apart, as the header writes it (a timestamp cached or made at start-up).
    for delta in range(6, 301):
        yield cand("timestamp-drift", _shift(parsed, delta))
        yield cand("timestamp-drift", _shift(parsed, -delta))
    # Milliseconds: a second clock reading written with .SSS (Java, JavaScript toISOString).
    start = parsed.instant.replace(microsecond=0) - timedelta(seconds=1)
    for ms in range(3000):
        at = start + timedelta(milliseconds=ms)
        if at == parsed.instant:
            continue
        stamp = f".{at.microsecond // 1000:03d}"
        utc = at.astimezone(timezone.utc)
        yield cand("timestamp-drift", utc.strftime("%Y-%m-%dT%H:%M:%S") + stamp + "Z")
        for z in zones[:2]:
            local = at.astimezone(z)
            yield cand("timestamp-drift", local.strftime("%Y-%m-%dT%H:%M:%S") + stamp + _offset_text(z))
        yield cand("timestamp-drift", str(_epoch_ms(at)))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_ms(dt: datetime) -> int:
    """Unix time in whole milliseconds, in integers (float timestamps can be off by one)."""
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _shift(parsed: _Ts, seconds: int) -> str:
    """The header's own format, ``seconds`` later."""
    if parsed.epoch == "s":
        return str(_epoch_ms(parsed.instant) // 1000 + seconds)
    if parsed.epoch == "ms":
        return str(_epoch_ms(parsed.instant) + seconds * 1000)
    wall = parsed.wall + timedelta(seconds=seconds)
    return wall.strftime(f"%Y-%m-%d{parsed.sep}%H:%M:%S") + parsed.fraction + parsed.zone


_ZONE_NAMES = {0: "UTC", 7: "Jakarta (WIB, +07:00)", 8: "WITA (+08:00)", 9: "WIT (+09:00)"}


def _describe_timestamp(header: str, signed: str) -> str:
    """How the timestamp signed differs from the header's, in words."""
    a, b = _read_timestamp(header), _read_timestamp(signed)
    if a is None or b is None:
        return f"the timestamp signed is {signed!r}, not the header's {header!r}"
    diffs = []
    if b.epoch or a.epoch:
        if b.epoch != a.epoch:
            diffs.append(
                "as Unix epoch " + ("milliseconds" if b.epoch == "ms" else "seconds")
                if b.epoch
                else "as a date and time"
            )
    else:
        if b.zone != a.zone:
            diffs.append(
                f"zone {b.zone.strip()!r} instead of {a.zone.strip()!r}"
                if b.zone and a.zone
                else f"zone {b.zone.strip()!r} added"
                if b.zone
                else "no zone"
            )
        if b.fraction != a.fraction:
            diffs.append(
                f"fraction {b.fraction!r} added"
                if b.fraction and not a.fraction
                else f"fraction {b.fraction!r} instead of {a.fraction!r}"
                if b.fraction
                else "no fraction"
            )
        if b.sep != a.sep:
            diffs.append(f"{b.sep!r} instead of {a.sep!r} between date and time")
    style = ", ".join(diffs)
    delta = (b.instant - a.instant).total_seconds()
    if delta == 0:
        return "the same instant written differently" + (f" ({style})" if style else "")
    for hours, name in _ZONE_NAMES.items() if abs(delta) >= 1800 and delta % 1800 == 0 else ():
        zone = timezone(timedelta(hours=hours))
        if a.instant.astimezone(zone).replace(tzinfo=None, microsecond=0) == b.wall.replace(microsecond=0):
            label = repr(b.zone.strip()) if b.zone else "no zone"
            return (
                f"the {name} clock time labelled with {label}, so {abs(delta) / 3600:g} h "
                f"{'later' if delta > 0 else 'earlier'} than the header's instant"
            )
    when = f"{abs(delta):g} s {'later' if delta > 0 else 'earlier'}"
    return f"a second timestamp, {when} than the header's" + (
        f" and written differently ({style})" if style else ""
    )
