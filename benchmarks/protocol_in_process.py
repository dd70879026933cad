"""The service route and its floor through uvicorn's h11 protocol in-process, with no socket (issue 12).

    python -m benchmarks.protocol_in_process [--route token] [--calls 3000] [--rounds 5] [--protocol sandbox]

Three rungs between "the application alone" and "real HTTP under load", each for the floor
(``_service_floor``) and the sandbox app (the client registered with its secret), interleaved
call by call (A B B A ...) with medians over all calls of a round:

- ``app``: the ASGI app called directly (as ``bench_sandbox._apps_in_process``);
- ``h11``: the same request as raw bytes into uvicorn's ``H11Protocol`` (``data_received``) on a
  transport that keeps what is written, until the answer is complete: h11 parsing, the scope,
  ``receive``/``send``, the answer's serialisation, uvicorn's per-request objects and tasks;
- ``h11+``: ``h11`` plus, between two requests, what the load generator and the kernel would
  otherwise do to the caches, approximated by a fixed amount of unrelated Python work
  (parsing and serialising one more request with a separate h11 connection).

The gap sandbox minus floor at each rung says where the extra per-request CPU appears. With
``--protocol sandbox`` the sandbox app goes through ``SandboxProtocol`` (its runner's protocol:
deadlines on the sweep, one-write answers) instead of stock ``H11Protocol``; the floor always
takes the stock one, as under the uvicorn CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from ._context import CLIENT_KEY
from ._load import RawLoadGenerator
from .bench_sandbox import SERVICE_PATH, asgi_post, service_pool


class _Transport:
    """Keeps what the protocol writes; answers the extra-info calls uvicorn makes."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_write_buffer_limits(self, *a, **k) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


def _connection(app, loop, protocol_class=H11Protocol):
    config = uvicorn.Config(
        app, http="h11", lifespan="off", access_log=False, log_level="warning", loop="asyncio"
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {}, loop)
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _thrash(wire: bytes) -> None:
    """Unrelated work between two requests, standing in for the load generator and the kernel."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    while conn.next_event() not in (h11.NEED_DATA, h11.PAUSED):
        pass
    conn.send(h11.Response(status_code=200, headers=[("content-length", "2"), ("x-a", "b")]))
    conn.send(h11.Data(data=b"{}"))
    conn.send(h11.EndOfMessage())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--route", choices=("service", "token"), default="service")
    parser.add_argument("--protocol", choices=("h11", "sandbox"), default="h11", help="the sandbox side's protocol")
    args = parser.parse_args()
    from snapbook.keys import generate_private_key
    from snapbook.sandbox import SandboxConfig, create_app

    from ._service_floor import create_app as create_floor

    jwt_secret, client_secret = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    sandbox = create_app(SandboxConfig(secret=jwt_secret, token_lifetime=3600))
    key = generate_private_key()
    sandbox.state.provider.register(CLIENT_KEY, key.public_key(), secret=client_secret)
    token, _ = sandbox.state.provider.issuer.issue(CLIENT_KEY)
    if args.route == "service":
        floor = create_floor(jwt_secret.encode(), client_secret.encode())
        apps = {"floor": (floor, "/floor" + SERVICE_PATH), "sandbox": (sandbox, SERVICE_PATH)}
    else:
        from ._bare_app import create_app as create_bare
        from ._servers import TOKEN_PATH
        from .bench_sandbox import signed_pool

        answer = {
            "body": "{}",
            "headers": {"X-TIMESTAMP": "2026-01-01T00:00:00+07:00", "X-CLIENT-KEY": ""},
            "path": TOKEN_PATH,
        }
        floor = create_bare(answer, key.public_key())
        apps = {"floor": (floor, "/floor" + TOKEN_PATH), "sandbox": (sandbox, TOKEN_PATH)}
        token_pool = signed_pool(key, 60)
    loop = asyncio.new_event_loop()
    from snapbook.sandbox.server import SandboxProtocol

    protocols = {"floor": H11Protocol, "sandbox": SandboxProtocol if args.protocol == "sandbox" else H11Protocol}
    conns = {name: _connection(app, loop, protocols[name]) for name, (app, _) in apps.items()}

    async def via_app(name: str, headers: dict[str, str], body: bytes) -> None:
        app, path = apps[name]
        scope = asgi_post(path, headers, body)
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            return messages.pop()

        async def send(message):
            pass

        await app(scope, receive, send)

    async def via_h11(name: str, wire: bytes) -> None:
        protocol, transport = conns[name]
        transport.out.clear()
        protocol.data_received(wire)
        while protocol.cycle is None or not protocol.cycle.response_complete:
            await asyncio.sleep(0)
        if b" 200 " not in transport.out[0]:
            raise RuntimeError(f"{name}: {b''.join(transport.out)[:200]!r}")

    async def run() -> dict[str, dict[str, list[float]]]:
        out: dict[str, dict[str, list[float]]] = {
            rung: {n: [] for n in apps} for rung in ("app", "h11", "h11+")
        }
        clock = time.perf_counter_ns
        for r in range(args.rounds + 1):
            samples = {rung: {n: [] for n in apps} for rung in out}
            if args.route == "service":
                pool = service_pool(token, client_secret.encode(), 3 * args.calls)
            else:
                pool = [token_pool[i % len(token_pool)] for i in range(3 * args.calls)]
            for i in range(args.calls):
                order = ("floor", "sandbox") if (i + r) % 2 else ("sandbox", "floor")
                for name in order:
                    for j, rung in enumerate(("app", "h11", "h11+")):
                        headers, body = pool[3 * i + j]
                        path = apps[name][1]
                        wire = RawLoadGenerator.serialise("http://127.0.0.1:8000" + path, headers, body)
                        if rung == "h11+":
                            _thrash(wire)
                        t0 = clock()
                        if rung == "app":
                            await via_app(name, headers, body)
                        else:
                            await via_h11(name, wire)
                        samples[rung][name].append(clock() - t0)
            if r:  # round 0 warms up
                for rung in out:
                    for n in apps:
                        out[rung][n].append(statistics.median(samples[rung][n]) / 1e3)
        return out

    result = loop.run_until_complete(run())
    print(
        f"{'rung':<6} {'floor µs':>9} {'sandbox µs':>11} {'gap µs':>7}   (medians of {args.rounds} round medians)"
    )
    for rung, per in result.items():
        f, s = statistics.median(per["floor"]), statistics.median(per["sandbox"])
        print(f"{rung:<6} {f:>9.1f} {s:>11.1f} {s - f:>7.1f}")


if __name__ == "__main__":
    main()
