"""Service client: one signed service call round trip with ServiceClient against raw httpx + hmac/hashlib.

Both sides call the same loopback service endpoint (a bare Starlette app in its own uvicorn
process, :func:`service_app`: it reads the body and answers a fixed QRIS-generate success), each
over its own keep-alive ``httpx.Client``, one call at a time, interleaved call by call. The token
comes from ``snapbook sandbox`` once, before timing (the client caches it, as in real use).

- A, ``ServiceClient.post(path, dict)``: what a user's call does: cached token, compact JSON,
  fresh X-TIMESTAMP and X-EXTERNAL-ID, HMAC-SHA512 signature, the shared exchange (deadline,
  decoded-size limit), answer parsed into a ServiceResponse, one RequestLog row.
- B, raw: ``json.dumps`` + timestamp + ``hashlib.sha256`` + ``hmac`` + ``base64`` inside the
  timed call, ``httpx.Client.post`` with the same headers, ``r.json()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

import httpx

from snapbook.signing import make_timestamp

from ._context import CLIENT_KEY, Context, child_env, python
from ._harness import Row, compare_ops
from ._servers import _start, start_sandbox

AREA = "service-client"
PATH = "/v1.0/qr/qr-mpm-generate"
SECRET = "o7sWnn0oGXF7y7JBGf18!"
PARTNER, CHANNEL = "MCP2021110228", "QR004"
BODY = {
    "partnerReferenceNo": "INV-20260120-0001",
    "amount": {"value": "10000.00", "currency": "IDR"},
    "validityPeriod": "2026-01-20T10:15:00+07:00",
    "additionalInfo": {"callbackUrl": "https://merchant.example/callback/qris"},
}
ANSWER = json.dumps({
    "responseCode": "2004700",
    "responseMessage": "Successful",
    "referenceNo": "A120260120100000001",
    "partnerReferenceNo": "INV-20260120-0001",
    "qrContent": "00020101021226650013ID.CO.QRIS.WWW0118936000000000000001021400000000000001"
                 "0303UMI51440014ID.CO.QRIS.WWW0215ID10200000000010303UMI5204581253033605405"
                 "10000.005802ID5910MERCHANT 16007JAKARTA6105101106304ABCD",
}).encode()


def service_app():
    """The loopback service endpoint (uvicorn --factory): read the body, answer a fixed success."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def generate(request: Request) -> Response:
        await request.body()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(time.time() + 7 * 3600))
        return Response(ANSWER, media_type="application/json", headers={"X-TIMESTAMP": ts})

    async def root(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route(PATH, generate, methods=["POST"]), Route("/", root)])


def run(ctx: Context) -> list[Row]:
    from snapbook.client import RetryPolicy, ServiceClient

    rows: list[Row] = []
    env = child_env()
    cmd = [python(), "-m", "uvicorn", "--factory", "benchmarks.bench_service_client:service_app", "--host",
           "127.0.0.1", "--port", "{port}", "--workers", "1", "--loop", "asyncio", "--http", "h11",
           "--lifespan", "off", "--no-access-log", "--log-level", "warning"]
    with start_sandbox(ctx) as sandbox, _start("service", cmd, ctx, probe="/", env=env) as service:
        client = ServiceClient(
            service.base_url, CLIENT_KEY, ctx.private_pem, SECRET, partner_id=PARTNER, channel_id=CHANNEL,
            token_url=sandbox.token_url, retry=RetryPolicy.off(),
        )
        token = client.get_token().access_token
        raw = httpx.Client(timeout=10.0, trust_env=False)
        url = service.base_url + PATH
        secret = SECRET.encode()
        counter = [0]

        def bare() -> dict:
            body = json.dumps(BODY, separators=(",", ":"), ensure_ascii=False).encode()
            ts = make_timestamp()
            counter[0] += 1
            text = f"POST:{PATH}:{token}:{hashlib.sha256(body).hexdigest()}:{ts}"
            signature = base64.b64encode(hmac.digest(secret, text.encode(), "sha512")).decode("ascii")
            r = raw.post(url, content=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}", "X-TIMESTAMP": ts,
                "X-SIGNATURE": signature, "X-PARTNER-ID": PARTNER, "X-EXTERNAL-ID": f"{os.getpid()}{counter[0]}",
                "CHANNEL-ID": CHANNEL,
            })
            data = r.json()
            if data.get("responseCode") != "2004700":
                raise RuntimeError(f"raw call refused: {r.status_code} {data}")
            return data

        def ours() -> object:
            return client.post(PATH, BODY)

        trip = compare_ops(
            AREA, "one signed service call round trip over loopback (sync, keep-alive, token cached)",
            ours, bare, a_label="ServiceClient.post", b_label="raw httpx + hmac/hashlib",
            n=ctx.size(150, 30), rounds=ctx.size(5, 2), budget_s=ctx.budget_s,
        ).check("<= 1.2")
        rows.append(trip)
        client.close()
        raw.close()
    return rows
