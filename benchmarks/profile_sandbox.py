#!/usr/bin/env python3
"""Where a sandbox request's server time goes: cProfile of the sandbox app under uvicorn, under load.

    .venv/bin/python benchmarks/profile_sandbox.py [--requests 3000] [--bad] [--bare] [--service]

Runs the sandbox's Starlette app (as ``snapbook sandbox`` builds it, journal line printing
included) with uvicorn and the sandbox's own protocol (``SandboxProtocol``: request deadline,
connection limit, one write per answer) in the *main* thread of a child process under cProfile, drives it
from this process with the raw load generator, then prints the costliest functions by
own time and by cumulative time. ``--bad`` sends signatures from another key pair (the
rejection path; the doctor now runs only when a journal row is read, so it is not in this
profile); ``--bare`` profiles the bare Starlette baseline instead (stock uvicorn h11);
``--service`` sends Senmo balance inquiries (the service route of issue 12) instead of token requests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)

_CHILD = r"""
import cProfile, os, pstats, signal, sys
import uvicorn
from snapbook.keys import read_public_key
from snapbook.sandbox import SandboxConfig, create_app
from snapbook.sandbox.server import SandboxProtocol
protocol = SandboxProtocol
if os.environ.get("BARE"):
    protocol = "h11"
    from benchmarks._bare_app import from_env
    app = from_env()
else:
    app = create_app(SandboxConfig(secret=os.environ["JWT_SECRET"], token_lifetime=3600), clients={})
    app.state.provider.register(os.environ["CLIENT_KEY"], read_public_key(os.environ["PUB"]),
                                secret=os.environ["CLIENT_SECRET"].encode())
    sink = open(os.devnull, "w")
    # One line per request, printed at once. The CLI hands each row to its console thread through a
    # deque instead; cProfile sees this thread only, so that hand-over and the console's doctor runs
    # are not in this profile (bench_sandbox reports them as the sandbox's "other threads" CPU).
    app.state.provider.journal.subscribe(lambda e: print(e.line(), file=sink, flush=True))
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(os.environ["PORT"]), lifespan="off",
                                       loop="asyncio", http=protocol, access_log=False, log_config=None))
prof = cProfile.Profile()
prof.enable()
try:
    server.run()
except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, after a clean shutdown
    pass
prof.disable()
stats = pstats.Stats(prof, stream=sys.stdout)
print("=== by own time ===")
stats.sort_stats("tottime").print_stats(22)
print("=== by cumulative time ===")
stats.sort_stats("cumtime").print_stats(30)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--bad", action="store_true", help="signatures from another key pair (rejections)")
    parser.add_argument("--bare", action="store_true", help="profile the bare Starlette baseline")
    parser.add_argument("--service", action="store_true", help="Senmo balance inquiries instead of token requests")
    args = parser.parse_args()

    import secrets

    import httpx

    from benchmarks._context import CLIENT_KEY, Context, child_env, free_port
    from benchmarks._load import RawLoadGenerator
    from benchmarks._servers import capture_answer, start_sandbox
    from benchmarks.bench_sandbox import SERVICE_PATH, service_pool, signed_pool
    from snapbook.keys import generate_private_key

    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(quick=False, tmp=Path(tmp))
        pool = signed_pool(ctx.private_key, 60)
        env = child_env()
        client_secret = secrets.token_urlsafe(24)
        env.update(PUB=str(ctx.public_pem), CLIENT_KEY=CLIENT_KEY, JWT_SECRET=secrets.token_urlsafe(48),
                   CLIENT_SECRET=client_secret)
        if args.bare:
            answer = Path(tmp) / "answer.json"
            with start_sandbox(ctx) as sb:
                capture_answer(sb, pool[0][0], answer)
            env.update(BARE="1", SNAPBOOK_BENCH_ANSWER=str(answer), SNAPBOOK_BENCH_PUB=str(ctx.public_pem))
        port = free_port()
        env["PORT"] = str(port)
        child = subprocess.Popen([sys.executable, "-c", _CHILD], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}/auth/merchants/v1.0/access-token/b2b"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or child.poll() is not None:
                        raise SystemExit("the profiled server did not start")
                    time.sleep(0.05)
            requests = signed_pool(generate_private_key(), 60) if args.bad else pool
            if args.service and not args.bare:
                headers, body = pool[0]
                token = httpx.post(url, headers=headers, content=body, timeout=10).json()["accessToken"]
                url = f"http://127.0.0.1:{port}{SERVICE_PATH}"
                requests = service_pool(token, client_secret.encode(), args.requests)
            with RawLoadGenerator(16) as gen:
                result = gen.run(url, requests, count=args.requests, max_seconds=120)
            print(f"{len(result.latencies_ns)} answers {dict(result.statuses)} at {result.rate:.0f} req/s (profiled)",
                  file=sys.stderr)
        finally:
            child.send_signal(2)  # SIGINT: uvicorn exits cleanly and the child prints its profile
            out, _ = child.communicate(timeout=60)
        print(out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
