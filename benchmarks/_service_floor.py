"""The floor of a service route: the least a SNAP provider must compute for one, on the sandbox's stack.

Run by uvicorn in its own process (one worker, asyncio, h11, as the sandbox):

    python -m uvicorn --factory benchmarks._service_floor:from_env --port P --workers 1 --loop asyncio --http h11

``POST /floor/api/v1.0/balance-inquiry`` reads the body, verifies the Bearer token (an HS512 JWT
made by the sandbox with the shared secret: one HMAC-SHA512 and its expiry) and the symmetric
X-SIGNATURE (SHA-256 of the body, one HMAC-SHA512), and answers a fixed balance JSON with the
two SNAP headers. Nothing else: no header checks, no replay ledger, no journal, no console.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PATH = "/api/v1.0/balance-inquiry"

_DENIED = b'{"responseCode":"4011100","responseMessage":"Unauthorized. [Signature]"}'
_ANSWER = json.dumps(
    {
        "responseCode": "2001100",
        "responseMessage": "Successful",
        "referenceNo": "0123456789ABCDEF",
        "accountNo": "1234567890",
        "accountInfos": [
            {"balanceType": "cash", "availableBalance": {"value": "100000000.00", "currency": "IDR"}}
        ],
    },
    separators=(",", ":"),
).encode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def create_app(jwt_secret: bytes, client_secret: bytes) -> Starlette:
    async def floor(request: Request) -> Response:
        body = await request.body()
        h = request.headers
        headers = {"X-TIMESTAMP": h.get("x-timestamp", ""), "X-CLIENT-KEY": h.get("x-client-key", "")}
        token = h.get("authorization", "")[7:]
        head_payload, _, sig = token.rpartition(".")
        ok = (
            hmac.compare_digest(hmac.digest(jwt_secret, head_payload.encode(), "sha512"), _b64url_decode(sig))
            and json.loads(_b64url_decode(head_payload.partition(".")[2]))["exp"] > time.time()
        )
        if ok:
            text = (
                f"POST:{request.url.path[6:]}:{token}:{hashlib.sha256(body).hexdigest()}:{h['x-timestamp']}"
            )
            expected = hmac.digest(client_secret, text.encode(), "sha512")
            ok = hmac.compare_digest(expected, base64.b64decode(h["x-signature"]))
        if not ok:
            return Response(_DENIED, status_code=401, media_type="application/json", headers=headers)
        return Response(_ANSWER, media_type="application/json", headers=headers)

    return Starlette(routes=[Route("/floor" + PATH, floor, methods=["POST"])])


def from_env() -> Starlette:
    """The app for ``uvicorn --factory``: both secrets from the environment (as the sandbox reads them)."""
    return create_app(
        os.environ["SNAPBOOK_BENCH_JWT_SECRET"].encode(), os.environ["SNAPBOOK_BENCH_CLIENT_SECRET"].encode()
    )
