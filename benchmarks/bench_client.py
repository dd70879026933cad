"""Client: one token round trip with TokenClient against raw httpx posting pre-signed headers + the signing.

Both talk to the same ``snapbook sandbox`` process over loopback, each with its own keep-alive
``httpx.Client``, one call at a time, interleaved call by call. The raw side signs with a bare
``key.sign`` inside the timed call (that is "pre-signed headers plus the signing time") and
parses the JSON; the TokenClient side does what a user's call does: fresh timestamp, sign,
send, parse into an AccessToken, append a RequestLog row.
"""

from __future__ import annotations

import base64
from unittest import mock

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from snapbook.signing import make_timestamp

from ._context import CLIENT_KEY, Context
from ._harness import Row, compare_ops
from ._servers import BODY, start_sandbox

AREA = "client"


def run(ctx: Context) -> list[Row]:
    import snapbook.keys as keys_module  # every private-key parse goes through these two
    from snapbook.client import TokenClient

    key = ctx.private_key
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    rows: list[Row] = []
    with start_sandbox(ctx) as sandbox:
        url = sandbox.token_url
        # The key is given as a file path, so any per-request parsing would show in the count below.
        client = TokenClient(url, CLIENT_KEY, ctx.private_pem)
        raw = httpx.Client(timeout=10.0, trust_env=False)

        def bare() -> str:
            ts = make_timestamp()
            signature = base64.b64encode(key.sign(f"{CLIENT_KEY}|{ts}".encode(), pkcs1, sha256)).decode("ascii")
            r = raw.post(url, content=BODY, headers={
                "Content-Type": "application/json", "X-TIMESTAMP": ts, "X-CLIENT-KEY": CLIENT_KEY,
                "X-SIGNATURE": signature,
            })
            data = r.json()
            if r.status_code != 200:
                raise RuntimeError(f"raw request refused: {r.status_code} {data}")
            return data["accessToken"]

        parses = mock.Mock()
        real_load, real_read = keys_module.load_private_key, keys_module.read_private_key
        with mock.patch.object(keys_module, "load_private_key", side_effect=lambda *a, **k: (parses(), real_load(*a, **k))[1]), \
             mock.patch.object(keys_module, "read_private_key", side_effect=lambda *a, **k: (parses(), real_read(*a, **k))[1]):
            n = ctx.size(150, 30)
            trip = compare_ops(
                AREA, "one token round trip over loopback (sync, keep-alive)",
                client.request_token, bare, a_label="TokenClient.request_token", b_label="raw httpx + key.sign",
                n=n, rounds=ctx.size(5, 2), budget_s=ctx.budget_s,
            ).check("<= 1.2")
        rows.append(trip)
        rows.append(Row(AREA, f"private-key parses during {trip.extra['calls_per_side'] + 1} requests (key given as a file path)",
                        a_label=str(parses.call_count), target="0", met=parses.call_count == 0))

        client.get_token()  # fill the cache
        before = len(client.log)
        cached = compare_ops(
            AREA, "get_token() with a fresh cached token, vs one round trip",
            client.get_token, client.request_token, a_label="cached get_token", b_label="request_token",
            n=ctx.size(100, 20), rounds=ctx.size(3, 1), min_rounds=1, budget_s=ctx.budget_s,
        )
        # request_token appends one log row per call; get_token from the cache must add none.
        requests_by_cache = len(client.log) - before - cached.extra["calls_per_side"] - 1
        cached.target = "< 50 µs, no request"
        cached.met = cached.a is not None and cached.a.median < 50e-6 and requests_by_cache == 0
        cached.note = f"requests made by {cached.extra['calls_per_side'] + 1} cached calls: {requests_by_cache}"
        rows.append(cached)
        client.close()
        raw.close()
    return rows
