"""What an access token says: a JWT's header and claims, when it was issued, when it expires.

The SNAP standard defines ``accessToken`` as an opaque String(2048): a client must not rely on
what is inside. Issuing it as a JWT is Ifortepay's choice (HS512, 900 s), and the snapbook
sandbox's; other providers issue opaque tokens. A JWT's claims are readable by anyone, only the
signature needs the issuer's secret, so :func:`inspect_token` shows them and verifies the
signature when given the secret (e.g. a sandbox's ``SandboxConfig.secret``); for an opaque
token it says "not a JWT: opaque token" and that ``expiresIn`` is the only lifetime there is.
Time is a parameter (``clock``).
"""

from __future__ import annotations

import html
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from .errors import TokenFormatError
from .masking import mask
from .signing import Clock, _zone, system_clock

__all__ = ["OPAQUE_NOTE", "TokenInfo", "inspect_token"]

#: What :func:`inspect_token` says about a token that is not a JWT.
OPAQUE_NOTE = (
    "not a JWT: opaque token. SNAP's accessToken is an opaque String(2048); JWTs are Ifortepay's "
    "choice, not the standard's. Its lifetime is the expiresIn of the token response."
)

#: Longer than any token a provider sends (SNAP: 2048 characters): refused before any parsing.
MAX_TOKEN_CHARS = 64 * 1024

_TIME_CLAIMS = {"iat": "issued at", "exp": "expires at", "nbf": "not before"}


@dataclass(frozen=True)
class TokenInfo:
    """An access token taken apart. ``token`` holds the full value; ``repr`` shows it masked."""

    token: str = field(repr=False)
    header: dict[str, Any]
    claims: dict[str, Any]
    #: The signing algorithm the header names ("HS512", ...).
    algorithm: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    not_before: datetime | None
    #: The clock reading the times were judged against.
    now: datetime
    #: ``exp - iat`` in seconds: 900 for a SNAP token.
    lifetime_seconds: int | None
    #: Whole seconds until ``exp`` (negative once expired); None without ``exp``.
    seconds_left: int | None
    #: True when the signature verifies with the given secret; None when no secret was given.
    verified: bool | None = None
    #: Why verification failed, when it did.
    problem: str | None = None
    notes: tuple[str, ...] = ()
    #: False for an opaque token (not a JWT): header and claims are then empty.
    is_jwt: bool = True

    @property
    def token_masked(self) -> str:
        return mask(self.token)

    @property
    def expired(self) -> bool | None:
        return None if self.seconds_left is None else self.seconds_left <= 0

    @property
    def subject(self) -> Any:
        return self.claims.get("sub")

    def rows(self) -> list[tuple[str, str]]:
        """The token as (name, value) rows, the token itself masked."""
        if self.verified is None:
            verified = "not checked (no secret given)"
        elif self.verified:
            verified = f"yes ({self.algorithm})"
        else:
            verified = f"NO: {self.problem}"
        if self.seconds_left is None:
            left = "no expiry (exp) claim"
        elif self.seconds_left > 0:
            left = f"{self.seconds_left} s ({_duration(self.seconds_left)})"
        else:
            left = f"expired {_duration(-self.seconds_left)} ago"
        if not self.is_jwt:
            rows = [
                ("token", self.token_masked),
                ("kind", "not a JWT: opaque token"),
                ("length", str(len(self.token))),
            ]
            return rows + [("note", n) for n in self.notes]
        rows = [
            ("token", self.token_masked),
            ("kind", f"JWT ({self.algorithm})" if self.algorithm else "JWT"),
            ("header", _compact(self.header)),
            ("claims", _compact(self.claims)),
            ("issued at", _when(self.issued_at)),
            ("not before", _when(self.not_before)),
            ("expires at", _when(self.expires_at)),
            ("lifetime", f"{self.lifetime_seconds} s" if self.lifetime_seconds is not None else ""),
            ("now", _when(self.now)),
            ("time left", left),
            ("signature verified", verified),
        ]
        rows += [("note", n) for n in self.notes]
        return [(k, v) for k, v in rows if v]

    def __repr__(self) -> str:
        return "TokenInfo(\n" + "\n".join(f"  {k}: {v}" for k, v in self.rows()) + "\n)"

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in self.rows()
        )
        return f"<table class='snapbook-token'>{body}</table>"


def _compact(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _when(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _duration(seconds: int) -> str:
    minutes, s = divmod(abs(seconds), 60)
    hours, m = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    if days:
        return f"{days} d {h} h"
    if hours:
        return f"{hours} h {m} min {s} s"
    return f"{m} min {s} s" if m else f"{s} s"


def inspect_token(
    token: str | bytes,
    *,
    secret: str | bytes | Any | None = None,
    clock: Clock | datetime | None = None,
    tz: tzinfo | str | None = None,
) -> TokenInfo:
    """Read an access token: for a JWT, header, claims, issue and expiry times in ``tz``, seconds left.

    With ``secret`` (the issuer's HMAC secret or public key) the signature is verified with the
    algorithm the header names; without it ``verified`` is None. An expired token still
    verifies: expiry is reported separately (``seconds_left``, ``expired``). A token that is not
    a JWT (the standard's opaque String(2048)) gives ``is_jwt=False`` and :data:`OPAQUE_NOTE`.
    Raises :class:`~snapbook.errors.TokenFormatError` for no token at all and for a damaged JWT
    (one that starts like a JWT but cannot be read).
    """
    import jwt

    text, notes, kind = _clean(token)
    zone = _zone(tz)
    now = clock if isinstance(clock, datetime) else (clock or system_clock)()
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now = now.astimezone(zone)
    if kind == "opaque":
        if len(text) > 2048:
            notes.append(f"It is {len(text)} characters long; SNAP allows 2048.")
        return TokenInfo(
            token=text,
            header={},
            claims={},
            algorithm=None,
            issued_at=None,
            expires_at=None,
            not_before=None,
            now=now,
            lifetime_seconds=None,
            seconds_left=None,
            verified=None,
            notes=(OPAQUE_NOTE, *notes),
            is_jwt=False,
        )
    try:
        header = jwt.get_unverified_header(text)
        claims = jwt.decode(text, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenFormatError(
            f"The token {mask(text)} is not a readable JWT: {exc}.",
            hint="Pass the accessToken value from the token response, without quotes.",
        ) from None
    times: dict[str, datetime | None] = {}
    for name, label in _TIME_CLAIMS.items():
        value = claims.get(name)
        times[name] = None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            notes.append(f"The {name} ({label}) claim is {value!r}, not a number of seconds since 1970.")
            continue
        try:
            times[name] = datetime.fromtimestamp(value, zone)
        except (OverflowError, OSError, ValueError):
            notes.append(f"The {name} ({label}) claim {value!r} is out of the range of dates.")
    iat, exp = times["iat"], times["exp"]
    lifetime = int((exp - iat).total_seconds()) if iat and exp else None
    seconds_left = math.floor((exp - now).total_seconds()) if exp else None
    if exp is None:
        notes.append("The token has no exp claim, so it never expires by itself.")
    verified, problem = (None, None) if secret is None else _verify(jwt, text, header, secret, notes)
    return TokenInfo(
        token=text,
        header=dict(header),
        claims=dict(claims),
        algorithm=header.get("alg"),
        issued_at=iat,
        expires_at=exp,
        not_before=times["nbf"],
        now=now,
        lifetime_seconds=lifetime,
        seconds_left=seconds_left,
        verified=verified,
        problem=problem,
        notes=tuple(notes),
    )


#: Three (JWS) or five (JWE) non-empty base64url parts: the shape of a JWT.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2}|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}")


def _clean(token: str | bytes) -> tuple[str, list[str], str]:
    """(token text, notes, "jwt" or "opaque"); raises for no token and for a damaged JWT."""
    notes: list[str] = []
    if isinstance(token, (bytes, bytearray)):
        token = bytes(token).decode("ascii", "replace")
    if not isinstance(token, str):
        raise TokenFormatError(
            f"A token is a string, not {type(token).__name__}.",
            hint="Pass the accessToken value (or AccessToken.access_token).",
        )
    text = token.strip().strip("\"'")
    if text.lower().startswith("bearer "):
        text = text[7:].strip()
        notes.append("The 'Bearer ' prefix of the Authorization header was removed before reading.")
    if not text:
        raise TokenFormatError(
            "The token is empty.", hint="Pass the accessToken value from the token response."
        )
    if len(text) > MAX_TOKEN_CHARS:
        raise TokenFormatError(
            f"The token is {len(text)} characters long, far beyond SNAP's 2048: not an access token.",
            hint="Pass the accessToken value from the token response, not the whole answer.",
        )
    parts = text.split(".")
    # A JWT's header is base64url of '{"...', so it starts with "eyJ"; a value that starts so but
    # is not JWT-shaped is a damaged JWT (cut short when copied), not an opaque token.
    if not _JWT_SHAPE.fullmatch(text) and not text.startswith("eyJ"):
        return text, notes, "opaque"
    if len(parts) == 5:
        notes.append("It has five parts: an encrypted JWE, whose claims only the issuer can read.")
        return text, notes, "opaque"
    if len(parts) != 3:
        raise TokenFormatError(
            f"The token {mask(text)} has {len(parts)} dot-separated part{'s' if len(parts) != 1 else ''}; "
            "a JWT has "
            "three (header.claims.signature).",
            hint="It starts like a JWT (eyJ...) but is cut short: copy the whole accessToken value.",
        )
    return text, notes, "jwt"


def _verify(
    jwt: Any, text: str, header: dict[str, Any], secret: Any, notes: list[str]
) -> tuple[bool, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        return False, f"the header names no signing algorithm (alg {alg!r}): the token is unsigned"
    # Signature only: expiry and the other claims are reported, not enforced.
    options = {
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            jwt.decode(text, secret, algorithms=[alg], options=options)
            ok, problem = True, None
        except jwt.InvalidSignatureError:
            ok, problem = False, f"the {alg} signature does not match this secret"
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError) as exc:
            ok, problem = False, f"cannot verify {alg} with the key given: {exc}"
        except jwt.PyJWTError as exc:
            ok, problem = False, str(exc)
    for w in caught:
        if issubclass(w.category, jwt.InsecureKeyLengthWarning):
            notes.append(f"Weak secret: {w.message}")
    return ok, problem
