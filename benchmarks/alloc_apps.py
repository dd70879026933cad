"""Memory blocks allocated per request by the service route's app and its floor, in-process (issue 12).

    python -m benchmarks.alloc_apps

Each app is called as ASGI (no uvicorn, no socket) with validly signed balance inquiries, each
with its own X-EXTERNAL-ID; ``tracemalloc`` counts the blocks allocated during N calls (warm),
and ``gc`` the container objects created (its generation-0 counter) and the collections run.
"""

from __future__ import annotations

import gc
import os
import secrets
import tracemalloc

from ._context import CLIENT_KEY
from .bench_sandbox import SERVICE_PATH, asgi_post, service_pool


def _call(app, path: str, headers: dict[str, str], body: bytes) -> int:
    scope = asgi_post(path, headers, body)
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return messages.pop()

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    coro = app(scope, receive, send)
    try:
        coro.send(None)  # the apps finish in one step (no real awaiting)
    except StopIteration:
        pass
    return status[0]


def main() -> None:
    from snapbook.keys import generate_private_key
    from snapbook.sandbox import SandboxConfig, create_app
    from snapbook.sandbox.tokens import TokenIssuer  # noqa: F401 - the sandbox issues the token below

    from ._service_floor import create_app as create_floor

    jwt_secret, client_secret = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    key = generate_private_key()
    sandbox = create_app(SandboxConfig(secret=jwt_secret, token_lifetime=3600))
    sandbox.state.provider.register(CLIENT_KEY, key.public_key(), secret=client_secret)
    token, _ = sandbox.state.provider.issuer.issue(CLIENT_KEY)
    floor = create_floor(jwt_secret.encode(), client_secret.encode())
    n = 2000
    for name, app, path in (("floor", floor, "/floor" + SERVICE_PATH), ("sandbox", sandbox, SERVICE_PATH)):
        pool = service_pool(token, client_secret.encode(), n + 200)
        for h, b in pool[:200]:  # warm
            assert _call(app, path, h, b) == 200, name
        gc.collect()
        before = gc.get_count()[0]
        collections = [s["collections"] for s in gc.get_stats()]
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        for h, b in pool[200:]:
            _call(app, path, h, b)
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = snap1.compare_to(snap0, "filename")
        kept_blocks = sum(s.count_diff for s in stats)
        kept_bytes = sum(s.size_diff for s in stats)
        after = [s["collections"] for s in gc.get_stats()]
        print(
            f"{name:<8} kept per request: {kept_blocks / n:.1f} blocks, {kept_bytes / n:.0f} B; "
            f"gc collections during {n} calls: {[a - b for a, b in zip(after, collections)]}, gen0 count now {gc.get_count()[0]} (was {before})"
        )
        top = [s for s in snap1.compare_to(snap0, "lineno") if s.count_diff > 0][:6]
        for s in top:
            print(
                f"    {s.count_diff / n:6.2f} blocks/req {s.size_diff / n:7.0f} B/req  {s.traceback[0].filename.split('/')[-1]}:{s.traceback[0].lineno}"
            )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
