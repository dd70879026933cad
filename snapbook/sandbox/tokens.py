"""The access tokens the sandbox issues: HS512 JWTs, and checking them later.

A token's claims are ``sub`` (the client key), ``iat``, ``exp`` (``iat`` + lifetime), a unique
``jti`` and ``iss`` = ``snapbook-sandbox``. Its header is ``{"alg": "HS512"}``, like the vendor's
example token. Time comes from the sandbox's clock, never from PyJWT's, so a frozen clock gives
exact claims and expiry.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt

from ..errors import SnapResponseError

__all__ = ["ISSUER", "InvalidTokenError", "TokenIssuer"]

#: The ``iss`` claim of every sandbox token.
ISSUER = "snapbook-sandbox"


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


class TokenIssuer:
    """Issues and validates the sandbox's tokens with one HS512 secret and one clock."""

    def __init__(self, secret: bytes | str | None, lifetime: int, clock: Callable[[], datetime]) -> None:
        self._key = secret if secret is not None else secrets.token_bytes(64)
        self.lifetime = lifetime
        self._clock = clock

    def issue(self, client_key: str) -> tuple[str, dict[str, Any]]:
        """A new token for ``client_key`` and its claims."""
        iat = int(self._clock().timestamp())
        claims = {
            "sub": client_key,
            "iat": iat,
            "exp": iat + self.lifetime,
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
        }
        token = jwt.encode(claims, self._key, algorithm="HS512", headers={"typ": None})
        return token, claims

    def validate(self, token: str) -> dict[str, Any]:
        """The claims of ``token``, or :class:`InvalidTokenError` saying why it is not valid now."""
        if not isinstance(token, str) or not token.strip():
            raise InvalidTokenError("No token was given.", response_code="4017303")
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
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
        except Exception:  # noqa: BLE001 - PyJWT may raise other errors on hostile input; never let them escape
            raise InvalidTokenError("The token is not a well-formed JWT.") from None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise InvalidTokenError("The token's iat and exp claims are not whole numbers.")
        now = self._clock().timestamp()
        if now >= exp:
            raise InvalidTokenError(
                f"The token expired {now - exp:.0f} s ago.",
                hint="Request a new token before expiresIn runs out.",
            )
        if iat > now + 60:
            raise InvalidTokenError(f"The token was issued {iat - now:.0f} s in the future.")
        return claims
