"""The baseline servers: a bare Starlette endpoint, and the least a real provider must compute.

Run by uvicorn in its own process (one worker, asyncio, h11, as the sandbox):

    python -m uvicorn --factory benchmarks._bare_app:from_env --port P --workers 1 --loop asyncio --http h11

- ``POST <token path>``: reads the body (as any endpoint must) and returns a success answer
  captured from the real sandbox earlier in the same run: the same JSON bytes and the same two
  SNAP headers, no crypto. This is the issue's baseline.
- ``POST /floor<token path>``: the *floor* for a SNAP provider in Python: base64-decode
  X-SIGNATURE, one RSA verify over ``client_key|timestamp`` and a hand-made HS512 JWT, nothing
  else (no checks, no journal). It shows how close any sandbox could get to the bare endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PKCS1, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
_JWT_HEAD = base64.urlsafe_b64encode(b'{"alg":"HS512"}').rstrip(b"=")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def create_app(answer: dict, public_key: Any) -> Starlette:
    """The two routes, replaying ``answer`` (``body``, ``headers``, ``path``) and verifying with ``public_key``."""
    body_bytes: bytes = answer["body"].encode("utf-8")
    headers: dict[str, str] = answer["headers"]
    path: str = answer["path"]
    secret = os.urandom(64)

    async def token(request: Request) -> Response:
        await request.body()
        return Response(body_bytes, media_type="application/json", headers=headers)

    async def floor(request: Request) -> Response:
        await request.body()
        h = request.headers
        client_key, ts = h["x-client-key"], h["x-timestamp"]
        try:
            public_key.verify(base64.b64decode(h["x-signature"]), f"{client_key}|{ts}".encode(), _PKCS1, _SHA256)
        except (InvalidSignature, ValueError):
            return Response(b'{"responseCode":"4017300","responseMessage":"Unauthorized. [Signature]"}',
                            status_code=401, media_type="application/json", headers=headers)
        iat = int(time.time())
        claims = {"sub": client_key, "iat": iat, "exp": iat + 900, "jti": uuid.uuid4().hex, "iss": "snapbook-sandbox"}
        signing_input = _JWT_HEAD + b"." + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        jwt = signing_input + b"." + _b64url(hmac.new(secret, signing_input, hashlib.sha512).digest())
        body = json.dumps({"responseCode": "2007300", "responseMessage": "Successful", "accessToken": jwt.decode(),
                           "tokenType": "Bearer", "expiresIn": "900"}, separators=(",", ":")).encode()
        return Response(body, media_type="application/json", headers=headers)

    return Starlette(routes=[Route(path, token, methods=["POST"]), Route("/floor" + path, floor, methods=["POST"])])


def from_env() -> Starlette:
    """The app for ``uvicorn --factory``: the answer and the public key come from two files named in the environment."""
    with open(os.environ["SNAPBOOK_BENCH_ANSWER"], encoding="utf-8") as fh:
        answer = json.load(fh)
    with open(os.environ["SNAPBOOK_BENCH_PUB"], "rb") as fh:
        public_key = serialization.load_pem_public_key(fh.read())
    return create_app(answer, public_key)
