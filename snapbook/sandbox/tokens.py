"""The access tokens the sandbox issues: HS512 JWTs, and checking them later.

A token's claims are ``sub`` (the client key), ``iat``, ``exp`` (``iat`` + lifetime), a unique
``jti`` and ``iss`` = ``snapbook-sandbox``. Its header is ``{"alg": "HS512"}``, like the vendor's
example token. Time comes from the sandbox's clock, never from PyJWT's, so a frozen clock gives
exact claims and expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from ..errors import SnapResponseError
from .compact_json import compact_encoder

__all__ = ["ISSUER", "InvalidTokenError", "TokenIssuer"]

#: The ``iss`` claim of every sandbox token.
ISSUER = "snapbook-sandbox"

# What ``jwt.encode(claims, key, algorithm="HS512", headers={"typ": None})`` puts first: the
# base64url of the sorted, compact JSON header {"alg":"HS512"}.
_HEADER_SEGMENT = base64.urlsafe_b64encode(
    json.dumps({"alg": "HS512"}, separators=(",", ":"), sort_keys=True).encode()
).replace(b"=", b"")
# PyJWT's payload encoding: json.dumps with compact separators (ASCII escapes, as its default).
_encode_payload = compact_encoder()


class InvalidTokenError(SnapResponseError):
    """A token this sandbox did not issue, altered, or expired: SNAP ``4017301 Invalid Token (B2B)``."""

    def __init__(self, message: str, *, hint: str | None = None, response_code: str = "4017301") -> None:
        super().__init__(
            message,
            hint=hint
            or "Request a new token from this sandbox and send it as 'Authorization: Bearer <token>'.",
            http_status=401,
            response_code=response_code,
            response_message="Invalid Token (B2B)" if response_code == "4017301" else "Token Not Found (B2B)",
        )
        #: A short reason without secrets, for a responseMessage: "expired 12 s ago".
        self.reason = message


def _uuid4_hex() -> str:
    """``uuid.uuid4().hex``: 16 random bytes with the version (4) and variant (RFC 4122) bits set,
    without the UUID object (half the cost; a token is issued per request)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


class TokenIssuer:
    """Issues and validates the sandbox's tokens with one HS512 secret and one clock."""

    def __init__(self, secret: bytes | str | None, lifetime: int, clock: Callable[[], datetime]) -> None:
        self._key = secret if secret is not None else secrets.token_bytes(64)
        self._verified: dict[str, dict[str, Any]] = {}
        self.lifetime = lifetime
        self._clock = clock
        # PyJWT prepares (validates) the HMAC key on every encode: about half of issuing a token.
        # Prepare it once here, with PyJWT's own HS512 algorithm object. A key PyJWT refuses or
        # warns about (shorter than 64 bytes) keeps the per-call jwt.encode, so its error or
        # warning comes exactly as before.
        self._prepared: bytes | None = None
        # The HMAC keyed once and copied per token: `hmac.digest(key, ...)` looks SHA-512 up in
        # OpenSSL 3 and hashes the key pads on every call (2.5 µs warm, 9 µs in the sandbox's
        # token route under load, by cProfile), a copy of a keyed HMAC does neither (1.6 µs warm).
        self._keyed: Any = None
        try:
            algorithm = HMACAlgorithm(HMACAlgorithm.SHA512)
            prepared = algorithm.prepare_key(self._key)
            if algorithm.check_key_length(prepared) is None:
                self._prepared = prepared
                self._keyed = hmac.new(prepared, digestmod=hashlib.sha512)
        except Exception:
            self._prepared = None
            self._keyed = None

    def issue(self, client_key: str, *, now: datetime | None = None) -> tuple[str, dict[str, Any]]:
        """A new token for ``client_key`` and its claims, issued at ``now`` (default: the clock's time)."""
        iat = int((self._clock() if now is None else now).timestamp())
        claims = {
            "sub": client_key,
            "iat": iat,
            "exp": iat + self.lifetime,
            "jti": _uuid4_hex(),
            "iss": ISSUER,
        }
        return self._encode(claims), claims

    def _encode(self, claims: dict[str, Any]) -> str:
        """``jwt.encode(claims, key, algorithm="HS512", headers={"typ": None})``, byte for byte.

        The same steps as PyJWT (compact JSON payload, base64url without padding, HMAC-SHA512
        over ``header.payload``), with the key prepared once instead of on every call.
        """
        keyed = self._keyed
        if keyed is None:
            return jwt.encode(claims, self._key, algorithm="HS512", headers={"typ": None})
        payload = base64.urlsafe_b64encode(_encode_payload(claims).encode("utf-8")).replace(b"=", b"")
        signing_input = _HEADER_SEGMENT + b"." + payload
        mac = keyed.copy()
        mac.update(signing_input)
        signature = base64.urlsafe_b64encode(mac.digest()).replace(b"=", b"")
        return (signing_input + b"." + signature).decode("utf-8")

    #: Tokens whose signature and claims were verified once, kept so every service call with the
    #: same token costs a dict look-up and the expiry check instead of a full JWT decode.
    MAX_VERIFIED = 4096

    def validate(self, token: str) -> dict[str, Any]:
        """The claims of ``token``, or :class:`InvalidTokenError` saying why it is not valid now."""
        if not isinstance(token, str) or not token.strip():
            raise InvalidTokenError("No token was given.", response_code="4017303")
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        verified = self._verified.get(token)
        if verified is None:
            verified = self._decode(token)
            if len(self._verified) >= self.MAX_VERIFIED:
                self._verified.clear()  # rare: a fresh start is simpler than an LRU and stays bounded
            self._verified[token] = verified
        return self._check_times(verified)

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a well-formed, untampered token of this sandbox (its times not yet checked)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS512"],
                issuer=ISSUER,
                options={
                    "verify_exp": False,  # checked below against the sandbox clock
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "iat", "exp", "jti", "iss"],
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidTokenError(
                "The token's signature does not match this sandbox's secret (another sandbox, or altered).",
            ) from None
        except jwt.InvalidAlgorithmError:
            raise InvalidTokenError(
                "The token is not signed with HS512, the only algorithm this sandbox uses."
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"The token has no {exc.claim!r} claim.") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError(f"The token was not issued by {ISSUER}.") from None
        except jwt.DecodeError:
            raise InvalidTokenError("The token is not a well-formed JWT (three base64url parts).") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError(f"The token is not valid: {type(exc).__name__}.") from None
        except Exception:
            raise InvalidTokenError("The token is not a well-formed JWT.") from None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise InvalidTokenError("The token's iat and exp claims are not whole numbers.")
        return claims

    def _check_times(self, claims: dict[str, Any]) -> dict[str, Any]:
        """``claims`` (a copy) if the token is unexpired and not issued in the future by the clock."""
        iat, exp = claims["iat"], claims["exp"]
        now = self._clock().timestamp()
        if now >= exp:
            raise InvalidTokenError(
                f"The token expired {now - exp:.0f} s ago.",
                hint="Request a new token before expiresIn runs out.",
            )
        if iat > now + 60:
            raise InvalidTokenError(f"The token was issued {iat - now:.0f} s in the future.")
        return dict(claims)
