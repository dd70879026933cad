"""Service signing: snapbook's symmetric X-SIGNATURE against bare ``hmac`` + ``hashlib`` over the same bytes.

The bare side is the least any signer must do: SHA-256 of the body bytes (already compact, as a
client sends them), the string to sign, HMAC-SHA512, base64. snapbook's side also checks every
part (METHOD, EndpointUrl, token, X-TIMESTAMP, secret) and makes sure the body needs no minify.
The first three rows give it plain bytes (scanned for whitespace); the last gives it the same
bytes as the service client sends a dict: ``encode_body``'s ``MinifiedJson``, minified by type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from snapbook import service_signing
from snapbook.client import encode_body

from ._context import Context
from ._harness import Row, compare_ops

AREA = "service-signing"
TIMESTAMP = "2020-12-18T10:55:00+07:00"
SECRET = "o7sWnn0oGXF7y7JBGf18!"
TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "x" * 300 + ".sig"  # the size of a real JWT access token
PATH = "/v1.0/qr/qr-mpm-generate"


def _qris_body() -> bytes:
    """A QRIS generate request as a client sends it: compact UTF-8 JSON, about 500 bytes."""
    return json.dumps(_qris_obj(), separators=(",", ":"), ensure_ascii=False).encode()


def _qris_obj() -> dict:
    return {
        "partnerReferenceNo": "2020102900000000000001",
        "amount": {"value": "10000.00", "currency": "IDR"},
        "terminalId": "A01",
        "validityPeriod": "2020-12-18T11:10:00+07:00",
        "additionalInfo": {"callbackUrl": "https://merchant.com/callback/qris?order=1234"},
        "customerDetail": {"name": "Budi Santoso", "email": "budi@example.co.id", "phone": "081234567890"},
        "itemDetails": [
            {"name": "Kopi susu", "price": {"value": "10000.00", "currency": "IDR"}, "quantity": 1}
        ],
    }


def _bare(body: bytes):
    secret = SECRET.encode()

    def sign() -> str:
        text = f"POST:{PATH}:{TOKEN}:{hashlib.sha256(body).hexdigest()}:{TIMESTAMP}"
        return base64.b64encode(hmac.digest(secret, text.encode(), "sha512")).decode()

    return sign


def run(ctx: Context) -> list[Row]:
    rounds = ctx.size(10, 3)
    n = ctx.size(3000, 300)
    rows = []
    for label, body in (
        (f"QRIS generate body, {len(_qris_body())} B", _qris_body()),
        ("no body (GET)", b""),
        ("64 KB body", json.dumps({"items": ["x" * 60] * 1000}, separators=(",", ":")).encode()),
        (f"QRIS generate body, {len(_qris_body())} B, as the client sends a dict", encode_body(_qris_obj())),
    ):
        bare = _bare(bytes(body))  # plain bytes, equal to A's
        assert service_signing.sign_symmetric(SECRET, "POST", PATH, TOKEN, body, TIMESTAMP) == bare()
        rows.append(
            compare_ops(
                AREA,
                f"symmetric X-SIGNATURE ({label})",
                lambda body=body: service_signing.sign_symmetric(
                    SECRET, "POST", PATH, TOKEN, body, TIMESTAMP
                ),
                bare,
                a_label="sign_symmetric",
                b_label="bare hmac + hashlib",
                n=n,
                rounds=rounds,
                budget_s=ctx.budget_s,
            ).check("<= 1.1")
        )
    return rows
