"""Instructions per request of a server under HTTP load, counted by valgrind (callgrind): a figure without noise.

    python -m benchmarks.instructions [--route token|service] [--requests 1000] VARIANT [VARIANT ...]

VARIANT as in ``ab_stack.py`` (``floor:uvicorn``, ``cli``, ``sandbox:thread``, ``cli@../other-checkout``
...). Each server runs under ``valgrind --tool=callgrind`` in its own process; the raw load
generator (16 keep-alive connections) sends it 300 requests to warm up, the counters are zeroed
(``callgrind_control -z``), ``--requests`` more are sent, and the counters dumped. The figure is
user-space instructions per answered request, all threads of the server included (the console
thread of ``snapbook sandbox`` too), the kernel not. ``--cache-sim`` adds callgrind's simulated
cache and branch misses per request.

Why: on this 2-core VM a throughput ratio swings by ±10 % from run to run, so a change of 2-3 %
cannot be seen in ``run.py`` without many runs. Instruction counts repeat to about 0.5 % and
show such a change at once. They are not time (cache misses, branch mispredictions, page faults
and the interpreter lock cost time without instructions): confirm a gain with ``run.py``.
Under valgrind a server runs about 50 times slower, so its console thread prints larger batches
less often than at full speed: its share here is an estimate.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ._context import CLIENT_KEY, Context, child_env
from ._load import RawLoadGenerator
from ._servers import TOKEN_PATH
from .ab_stack import start
from .bench_sandbox import SERVICE_PATH, service_pool, signed_pool

WARM_UP = 300


def _totals(dump: str) -> dict[str, int]:
    """The event totals of one callgrind dump file (``events:`` names, ``summary:``/``totals:`` values)."""
    names: list[str] = []
    with open(dump, errors="replace") as fh:
        for line in fh:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                return dict(zip(names, (int(x) for x in line.split()[1:])))
    return {}


def measure(variant: str, route: str, requests: int, cache_sim: bool, ctx: Context, env: dict[str, str]) -> dict[str, float]:
    """Events per answered request of ``variant`` (``Ir``: instructions)."""
    out = ctx.tmp / f"callgrind-{variant.replace(':', '-').replace('/', '_')}"
    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"]
    if cache_sim:
        prefix += ["--cache-sim=yes", "--branch-sim=yes"]
    with start(variant, ctx, env, route, prefix=tuple(prefix), start_s=300.0) as server:
        floor = variant.startswith("floor")
        path = ("/floor" if floor else "") + (SERVICE_PATH if route == "service" else TOKEN_PATH)
        url = server.base_url + path
        if route == "service":
            from snapbook.sandbox.tokens import TokenIssuer
            from snapbook.signing import system_clock

            token, _ = TokenIssuer(env["SNAPBOOK_BENCH_JWT_SECRET"], 3600, system_clock).issue(CLIENT_KEY)
            pool = service_pool(token, env["SNAPBOOK_BENCH_CLIENT_SECRET"].encode(), WARM_UP + requests)
            warm, timed = pool[:WARM_UP], pool[WARM_UP:]
        else:
            warm = timed = signed_pool(ctx.private_key, 60)
        with RawLoadGenerator(16) as gen:
            res = gen.run(url, warm, count=WARM_UP, max_seconds=600)
            if res.statuses.get(200) != WARM_UP:
                raise RuntimeError(f"{variant}: warm-up answers {dict(res.statuses)}, errors {res.errors}")
            pid = str(server.proc.pid)
            subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
            res = gen.run(url, timed, count=requests, max_seconds=1800)
            answered = res.statuses.get(200, 0)
            if answered != requests:
                raise RuntimeError(f"{variant}: {dict(res.statuses)}, errors {res.errors}")
            before = set(glob.glob(f"{out}.*"))
            subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
            deadline = time.monotonic() + 30
            while not (set(glob.glob(f"{out}.*")) - before) and time.monotonic() < deadline:
                time.sleep(0.2)
        dumps = sorted(set(glob.glob(f"{out}.*")) - before)
        if not dumps:
            raise RuntimeError(f"{variant}: callgrind wrote no dump")
        totals: dict[str, int] = {}
        for dump in dumps:
            for name, value in _totals(dump).items():
                totals[name] = totals.get(name, 0) + value
        return {name: value / answered for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--route", choices=("token", "service"), default="token")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--cache-sim", action="store_true", help="also simulated cache and branch misses")
    parser.add_argument("--keep", action="store_true", help="keep the callgrind dumps (for callgrind_annotate)")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind")
    ctx = Context(quick=False, tmp=Path(tempfile.mkdtemp(prefix="instructions-")))
    env = child_env()
    env["SNAPBOOK_BENCH_JWT_SECRET"] = secrets.token_urlsafe(48)
    env["SNAPBOOK_BENCH_CLIENT_SECRET"] = secrets.token_urlsafe(24)
    results = {v: measure(v, args.route, args.requests, args.cache_sim, ctx, env) for v in args.variants}
    base = results[args.variants[0]]["Ir"]
    print(f"{args.route} route, {args.requests} requests each after {WARM_UP} to warm up (per answered request):")
    for variant, events in results.items():
        extra = "  ".join(f"{k} {v:,.0f}" for k, v in events.items() if k != "Ir")
        print(f"  {variant:<28} {events['Ir']:>12,.0f} instructions  {events['Ir'] / base:.3f}x  {extra}")
    if args.keep:
        print(f"dumps kept in {ctx.tmp} (callgrind_annotate --inclusive=no FILE)")
        return
    for dump in glob.glob(str(ctx.tmp / "callgrind-*")):
        os.remove(dump)


if __name__ == "__main__":
    main()
