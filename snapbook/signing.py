"""X-TIMESTAMP and X-SIGNATURE: the two headers every SNAP token request is judged on.

``X-SIGNATURE = base64(SHA256withRSA(private_key, client_key + "|" + X-TIMESTAMP))``, with
PKCS#1 v1.5 padding. The timestamp signed must be byte-for-byte the header value, so make
it once (:func:`make_timestamp`) and use that one string for both (:func:`signed_headers`).
Time is a parameter (``clock``), never read behind the caller's back, so tests and
notebooks can freeze it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import ClientKeyError, SignatureFormatError, TimestampError
from .masking import mask

__all__ = [
    "JAKARTA",
    "TIMESTAMP_PROFILES",
    "Clock",
    "ParsedTimestamp",
    "SignatureSteps",
    "TimestampProfile",
    "check_client_key",
    "decode_signature",
    "explain_signature",
    "make_timestamp",
    "parse_timestamp",
    "sign",
    "signed_headers",
    "string_to_sign",
    "system_clock",
    "verify",
]

#: Western Indonesia Time (WIB), UTC+7 all year: the zone SNAP providers expect.
JAKARTA = timezone(timedelta(hours=7), "WIB")

#: A clock returns the current time as an aware datetime.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real current time, in UTC."""
    return datetime.now(timezone.utc)


# --- X-TIMESTAMP ----------------------------------------------------------------------


def _zone(tz: tzinfo | str | None) -> tzinfo:
    if tz is None:
        return JAKARTA
    if isinstance(tz, str):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if tz.upper() in ("UTC", "Z"):
            return timezone.utc
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimestampError(
                f"Unknown time zone {tz!r}.", hint="Use an IANA name such as 'Asia/Jakarta' or 'UTC'."
            ) from None
    return tz


def make_timestamp(clock: Clock | datetime | None = None, tz: tzinfo | str | None = None) -> str:
    """An X-TIMESTAMP ``yyyy-MM-ddTHH:mm:ss+07:00`` for now (or ``clock``), in ``tz``.

    ``clock`` is a callable returning an aware datetime, or a datetime itself. The default
    zone is Asia/Jakarta (+07:00); UTC is written ``+00:00``, never ``Z``, because many
    providers only accept a numeric offset.
    """
    now = clock if isinstance(clock, datetime) else (clock or system_clock)()
    if now.tzinfo is None or now.utcoffset() is None:
        raise TimestampError(
            "The clock returned a naive datetime (no time zone), so the offset is unknown.",
            hint="Return aware datetimes, e.g. datetime.now(timezone.utc).",
        )
    return now.astimezone(_zone(tz)).replace(microsecond=0).isoformat()


#: The X-TIMESTAMP profiles :func:`parse_timestamp` knows, from most to least exacting.
#:
#: - ``ifortepay``: what Ifortepay's token page shows, ``yyyy-MM-ddTHH:mm:ss+07:00`` (no fraction,
#:   Jakarta offset). snapbook's own choice for what it sends (:func:`make_timestamp`).
#: - ``snap``: the SNAP standard, ``yyyy-MM-ddTHH:mm:ss(.SSS)TZD`` with TZD the W3C date-time zone
#:   designator ``Z``, ``+hh:mm`` or ``-hh:mm`` (DOKU sends ``Z``, Senmo's transfers ``.SSS``).
#:   ``strict=True`` means this profile.
#: - ``lenient``: the standard plus what real clients also send: ``-00:00``, ``+0700`` (no colon),
#:   a space instead of ``T``, a fraction of other than three digits (``.5``, ``.1234``); each is
#:   accepted with a note.
TIMESTAMP_PROFILES: dict[str, str] = {
    "ifortepay": "yyyy-MM-ddTHH:mm:ss+07:00 (Ifortepay's documented form)",
    "snap": "yyyy-MM-ddTHH:mm:ss(.SSS)TZD, TZD = Z, +hh:mm or -hh:mm (the SNAP standard)",
    "lenient": "the SNAP form, plus -00:00, +hhmm, a space for T and fractions of other than 3 digits "
    "(each noted)",
}

TimestampProfile = Literal["ifortepay", "snap", "lenient"]

# ASCII digits only ([0-9], not \d, which matches other scripts' digits) and no trailing newline
# (fullmatch, not $): a header value must be exactly this text. This is the lenient grammar; the
# details outside the standard are noted and refused by the stricter profiles.
_STANDARD = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})([T ])([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})"
)


@dataclass(frozen=True)
class ParsedTimestamp:
    """A received X-TIMESTAMP, read: the instant, and what was outside the SNAP form about its text."""

    text: str
    value: datetime
    #: Human-readable notes on details outside the SNAP form ``yyyy-MM-ddTHH:mm:ss(.SSS)TZD``
    #: (``-00:00``, ``+0700``, a space for ``T``, a fraction of other than three digits).
    notes: tuple[str, ...] = field(default=())
    #: How it differs from Ifortepay's documented ``yyyy-MM-ddTHH:mm:ss+07:00`` (``Z``, a
    #: fraction, another offset), besides ``notes``; empty when it is exactly that form.
    ifortepay_notes: tuple[str, ...] = field(default=())

    @property
    def is_standard(self) -> bool:
        """True when the text is in the SNAP standard's form (``Z`` and ``.SSS`` included)."""
        return not self.notes


def parse_timestamp(
    text: str, *, strict: bool = False, profile: TimestampProfile | None = None
) -> ParsedTimestamp:
    """Read an X-TIMESTAMP the way a server with this ``profile`` would (see :data:`TIMESTAMP_PROFILES`).

    The default profile is ``lenient``; ``strict=True`` means ``snap``, the standard's
    ``yyyy-MM-ddTHH:mm:ss(.SSS)TZD``. Lenient-only details are recorded as notes. Anything the
    profile refuses raises :class:`TimestampError` saying exactly what is wrong.
    """
    if profile is None:
        profile = "snap" if strict else "lenient"
    if profile not in TIMESTAMP_PROFILES:
        raise TimestampError(
            f"Unknown X-TIMESTAMP profile {profile!r}.",
            hint="Use one of: " + ", ".join(TIMESTAMP_PROFILES) + ".",
        )
    if not isinstance(text, str):
        raise TimestampError(
            f"X-TIMESTAMP must be a string, not {type(text).__name__}.",
            hint="Format it as yyyy-MM-ddTHH:mm:ss+07:00, e.g. with snapbook.make_timestamp().",
        )
    m = _STANDARD.fullmatch(text)
    if m is None:
        raise TimestampError(_diagnose_timestamp(text), hint=_TS_HINT)
    year, month, day = (int(g) for g in m.groups()[:3])
    separator = m.group(4)
    hour, minute, second = (int(g) for g in m.groups()[4:7])
    fraction, zone = m.group(8), m.group(9)
    notes: list[str] = []
    exact: list[str] = []  # differences from Ifortepay's documented form only
    if separator == " ":
        notes.append(
            "date and time separated by a space instead of 'T' (RFC 3339 allows it; SNAP writes 'T')"
        )
    if zone == "Z":
        offset = timezone.utc
        exact.append("zone written as 'Z' (standard) where Ifortepay's page shows +07:00")
    else:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        hh, mm = int(digits[:2]), int(digits[2:])
        if hh > 23 or mm > 59:
            raise TimestampError(
                f"X-TIMESTAMP {text!r} has an impossible zone offset {zone!r} (hours 00-23, minutes 00-59).",
                hint=_TS_HINT,
            )
        offset = timezone(sign * timedelta(hours=hh, minutes=mm))
        if ":" not in zone:
            notes.append(
                f"zone offset written as {zone!r} without a colon; SNAP's TZD is {zone[:3]}:{zone[3:]}"
            )
        if zone == "-00:00":
            notes.append("zone written as '-00:00' (RFC 3339 'unknown local offset') instead of a real offset")
        elif zone != "+07:00" and ":" in zone:
            exact.append(f"zone offset {zone} (standard) where Ifortepay's page shows +07:00")
    if fraction:
        digits_count = len(fraction) - 1
        if digits_count > 3:
            notes.append(
                f"{digits_count} fractional digits ({fraction}); SNAP's form has at most three (.SSS)"
            )
        elif digits_count < 3:
            # The standard writes .SSS: a shortened fraction is a lenient extra, not the SNAP form.
            notes.append(
                f"{digits_count} fractional digit{'s' if digits_count > 1 else ''} ({fraction}); "
                "SNAP's form has exactly three (.SSS)"
            )
        else:
            exact.append(f"fractional seconds ({fraction}, standard) where Ifortepay's page shows none")
    try:
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        value = datetime(year, month, day, hour, minute, second, micro, tzinfo=offset)
    except ValueError as exc:
        raise TimestampError(
            f"X-TIMESTAMP {text!r} is not a real date and time: {exc}.", hint=_TS_HINT
        ) from None
    if profile == "snap" and notes:
        raise TimestampError(
            f"X-TIMESTAMP {text!r} is not in the SNAP form yyyy-MM-ddTHH:mm:ss(.SSS)TZD (strict): "
            + "; ".join(notes)
            + ".",
            hint=_TS_HINT,
        )
    if profile == "ifortepay" and (notes or exact):
        raise TimestampError(
            f"X-TIMESTAMP {text!r} is not in Ifortepay's documented form yyyy-MM-ddTHH:mm:ss+07:00: "
            + "; ".join([*notes, *exact])
            + ".",
            hint=_TS_HINT,
        )
    return ParsedTimestamp(text=text, value=value, notes=tuple(notes), ifortepay_notes=tuple(exact))


_TS_HINT = "Send yyyy-MM-ddTHH:mm:ss+07:00, e.g. 2020-12-18T10:55:00+07:00 (snapbook.make_timestamp())."


def _diagnose_timestamp(text: str) -> str:
    """Say precisely what is wrong with a timestamp that does not match the standard form."""
    shown = text if len(text) <= 40 else f"{text[:32]}… ({len(text)} chars)"
    q = f"X-TIMESTAMP {shown!r}"
    if len(text) > 64:
        return f"{q} is far too long for a timestamp (yyyy-MM-ddTHH:mm:ss+07:00 is 25 characters)."
    if not text.isascii():
        return f"{q} contains non-ASCII characters; a timestamp is plain ASCII digits and separators."
    t = text.strip()
    if not t:
        return "X-TIMESTAMP is empty."
    if t != text:
        return f"{q} has leading or trailing whitespace."
    if re.fullmatch(r"\d{9,13}(\.\d+)?", t):
        return f"{q} looks like a Unix epoch number; SNAP wants an ISO-8601 date and time with a zone."
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        return f"{q} is a date only; it needs a time and a zone: yyyy-MM-ddTHH:mm:ss+07:00."
    if re.match(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}", t) or re.match(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}", t):
        return f"{q} uses another date layout or separators; the date must be yyyy-MM-dd with '-'."
    if re.match(r"^\d{8}T?\d{6}", t):
        return f"{q} is the ISO-8601 basic form without separators; SNAP needs the extended form yyyy-MM-ddTHH:mm:ss+07:00."
    m = re.match(r"^\d{4}-\d{2}-\d{2}(.)", t)
    if m and m.group(1) != "T":
        return f"{q} separates date and time with {m.group(1)!r}; it must be an upper-case 'T'."
    if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?!:)", t):
        return f"{q} has no seconds; the time must be HH:mm:ss."
    if re.match(r"^\d{4}-\d{1,2}-\d{1,2}T", t) and not re.match(r"^\d{4}-\d{2}-\d{2}T", t):
        return f"{q} has a one-digit month or day; write both with two digits."
    m = re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(.*)$", t)
    if m:
        rest = m.group(2)
        if rest == "":
            return f"{q} has no time zone designator; add the offset, e.g. +07:00 for Jakarta."
        if re.fullmatch(r"[+-]\d{2}", rest):
            return f"{q} writes the zone offset as {rest!r}; it must be hours and minutes: {rest}:00."
        if rest == "z":
            return f"{q} ends in a lower-case 'z'; write +00:00 (or 'Z')."
        if rest.strip() != rest:
            return f"{q} has whitespace before the zone designator {rest.strip()!r}."
        if re.fullmatch(r"[A-Za-z/_]+", rest):
            return f"{q} names a zone ({rest!r}) instead of a numeric offset such as +07:00."
        return f"{q} has an unreadable zone designator {rest!r}; use a numeric offset such as +07:00."
    return f"{q} is not in the form yyyy-MM-ddTHH:mm:ss+07:00."


# --- string to sign and the signature ---------------------------------------------------


def check_client_key(client_key: str) -> str:
    """``client_key`` if it can be an X-CLIENT-KEY, else :class:`ClientKeyError` saying why.

    The one rule for the signer, the client and the sandbox: non-empty printable ASCII with no
    surrounding whitespace. A server strips spaces around a header value, so a key signed with
    them could never verify there.
    """
    if not isinstance(client_key, str) or not client_key.strip():
        raise ClientKeyError(
            "The client key (X-CLIENT-KEY) is empty.",
            hint="Use the client_id Ifortepay gave you at registration, e.g. MCP00000001.",
        )
    if client_key.isascii() and client_key.isprintable():  # the usual case, at C speed
        if client_key != client_key.strip():
            raise ClientKeyError(
                f"The client key {client_key!r} has spaces around it, which servers strip from header values.",
                hint="Strip the value you read from the file or environment variable.",
            )
        return client_key
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in client_key):
        raise ClientKeyError(
            "The client key contains a control character (a newline?), which cannot travel in an HTTP header.",
            hint="Strip the value you read from the file or environment variable.",
        )
    raise ClientKeyError(
        "The client key contains a non-ASCII character, which cannot travel in an HTTP header.",
        hint="Use the client_id exactly as the provider issued it (printable ASCII, e.g. MCP00000001).",
    )


def string_to_sign(client_key: str, timestamp: str) -> str:
    """``client_key + "|" + timestamp``: the exact text SNAP's token signature covers."""
    return f"{check_client_key(client_key)}|{timestamp}"


def _as_bytes(message: str | bytes) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else message


def sign(private_key: rsa.RSAPrivateKey, message: str | bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``message``, as standard base64: an X-SIGNATURE value."""
    raw = private_key.sign(_as_bytes(message), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def decode_signature(signature: str | bytes) -> bytes:
    """The raw bytes of a base64 X-SIGNATURE, or :class:`SignatureFormatError` saying why not."""
    text = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    text = text.strip()
    if text and not len(text) % 4:
        # Fast path for the well-formed case (every request the sandbox checks): b64decode's own
        # validation is C-speed; the per-character diagnosis below cost ~15 us, most of a verify.
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text: say precisely why, below
            pass
    if not text:
        raise SignatureFormatError("The signature is empty.", hint="Pass the X-SIGNATURE header value.")
    if re.search(r"[-_]", text) and not re.search(r"[+/]", text):
        raise SignatureFormatError(
            "The signature uses the URL-safe base64 alphabet ('-' and '_'); SNAP uses standard base64 ('+' and '/').",
            hint="Encode with base64.b64encode, not urlsafe_b64encode.",
        )
    bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "+/="))})
    if bad:
        raise SignatureFormatError(
            "The signature is not base64: it contains " + ", ".join(repr(c) for c in bad[:5]) + ".",
            hint="X-SIGNATURE is the standard base64 of the raw RSA signature bytes.",
        )
    if len(text) % 4:
        raise SignatureFormatError(
            f"The signature's base64 has {len(text)} characters, not a multiple of 4: truncated or missing '=' padding.",
            hint="Copy the whole header value, including trailing '=' characters.",
        )
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SignatureFormatError("The signature is not valid base64 (misplaced '=').",
                                   hint="Copy the whole header value again.") from None


#: The padding and hash of every verification, made once (immutable; the sandbox verifies per request).
_PKCS1V15, _SHA256 = padding.PKCS1v15(), hashes.SHA256()


def verify(public_key: rsa.RSAPublicKey, message: str | bytes, signature: str | bytes) -> bool:
    """True when ``signature`` (base64) is a valid SHA256withRSA signature of ``message``.

    A signature that is not base64 at all raises :class:`SignatureFormatError`; one of the wrong
    length or made with another key or message is simply ``False``
    (:func:`snapbook.doctor.diagnose` says which).
    """
    raw = decode_signature(signature)
    try:
        public_key.verify(raw, _as_bytes(message), _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def signed_headers(
    private_key: rsa.RSAPrivateKey,
    client_key: str,
    timestamp: str,
    *,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The four headers of a B2B token request, signed over this one timestamp string."""
    return {
        "Content-Type": content_type,
        "X-TIMESTAMP": timestamp,
        "X-CLIENT-KEY": client_key,
        "X-SIGNATURE": sign(private_key, string_to_sign(client_key, timestamp)),
    }


# --- teaching -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureSteps:
    """Each step from inputs to X-SIGNATURE, for learning and for comparing with another SDK.

    ``signature`` holds the full value; ``repr`` and the notebook view show it masked.
    """

    client_key: str
    timestamp: str
    string_to_sign: str
    message_bytes: bytes
    digest_hex: str
    signature: str = field(repr=False)
    key_fingerprint: str

    @property
    def signature_masked(self) -> str:
        return mask(self.signature)

    def rows(self) -> list[tuple[str, str]]:
        """The steps as (name, value) rows, secrets masked."""
        return [
            ("1. client key (X-CLIENT-KEY)", self.client_key),
            ("2. timestamp (X-TIMESTAMP)", self.timestamp),
            ("3. string to sign", self.string_to_sign),
            ("4. UTF-8 bytes", f"{len(self.message_bytes)} bytes: {self.message_bytes.hex()}"),
            ("5. SHA-256 digest (hex)", self.digest_hex),
            ("6. RSA PKCS#1 v1.5 signature, base64 (X-SIGNATURE)", self.signature_masked),
            ("   signed with key (SHA-256 fingerprint)", self.key_fingerprint),
        ]

    def __repr__(self) -> str:
        return "SignatureSteps(\n" + "\n".join(f"  {k}: {v}" for k, v in self.rows()) + "\n)"

    def _repr_html_(self) -> str:
        import html

        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in self.rows()
        )
        return f"<table>{body}</table>"


def explain_signature(private_key: rsa.RSAPrivateKey, client_key: str, timestamp: str) -> SignatureSteps:
    """Sign like :func:`signed_headers` does, keeping every intermediate step."""
    from .keys import fingerprint

    text = string_to_sign(client_key, timestamp)
    data = text.encode("utf-8")
    return SignatureSteps(
        client_key=client_key,
        timestamp=timestamp,
        string_to_sign=text,
        message_bytes=data,
        digest_hex=hashlib.sha256(data).hexdigest(),
        signature=sign(private_key, data),
        key_fingerprint=fingerprint(private_key),
    )
