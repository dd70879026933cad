"""Same-harness A/B of the service (or token) route: one app or one runner swapped at a time (issue 12).

    python -m benchmarks.ab_stack [--route token] [--rounds 6] [--count 3000] [--pin] [VARIANT ...]

VARIANT is ``APP:RUNNER`` (APP ``floor`` or ``sandbox``, RUNNER ``uvicorn`` or ``thread``, see
``_stack_variant.py``) or ``cli`` (``snapbook sandbox``, as the benchmark runs it; ``cli:PAUSE``
and ``cli:PAUSE:SWITCH`` set its console's pause after a batch and ``sys.setswitchinterval``);
default: the first five. Experiments: ``sandbox+j1000:RUNNER`` (a journal of 1,000 rows),
``+nogc``, ``+freeze``; ``cliquiet`` (the CLI with no journal listener: no console lines),
``cligc`` (the CLI with its startup objects frozen out of the collector's way); any variant
``@DIR`` runs from another checkout (``cli@../before``). Every server gets the same requests
(balance inquiries signed with ``hmac``, each with its own X-EXTERNAL-ID; or signed token
requests) from the raw load generator (16 keep-alive connections), rounds alternating between
the servers with the order rotated each round. Server CPU per answered request is read from
``/proc/PID/task/*/schedstat`` (nanoseconds) around each round, per thread: the busiest thread
(the event loop) and the rest; minor page faults per request from ``/proc``. ``--pin`` puts
the servers on CPU 1 and the generator on CPU 0. Prints the medians over the rounds, and the
load average. Rounds of one server still vary by ±15 % here: read only differences seen in
several runs, or count instructions instead (``instructions.py``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from pathlib import Path

import httpx

from ._context import CLIENT_KEY, Context, child_env, python
from ._load import RawLoadGenerator
from ._servers import TOKEN_PATH, _start
from .bench_sandbox import SERVICE_PATH, service_pool, signed_pool

VARIANTS = ("floor:uvicorn", "floor:thread", "sandbox:uvicorn", "sandbox:thread", "cli")


def thread_ns(pid: int) -> dict[int, int]:
    """CPU nanoseconds of each thread of ``pid`` (schedstat's first field)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                out[int(tid)] = int(fh.read().split()[0])
        except OSError:
            continue
    return out


def proc_counts(pid: int) -> tuple[int, int, int, int]:
    """(user ticks, system ticks, context switches of all threads, minor page faults) of ``pid``."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                switches += sum(int(line.split()[1]) for line in fh if "ctxt_switches" in line)
        except OSError:
            continue
    return int(fields[11]), int(fields[12]), switches, int(fields[7])


def start(
    variant: str,
    ctx: Context,
    env: dict[str, str],
    route: str = "service",
    pin: bool = False,
    prefix: tuple[str, ...] = (),
    start_s: float = 30.0,
):
    """One server of ``variant`` in its own process (``prefix``: a command to run it under, e.g. valgrind)."""
    variant, _, tree = variant.partition("@")  # VARIANT@DIR: the same variant from another checkout
    if variant.startswith("cli"):
        cmd = [
            python(),
            "-m",
            "benchmarks._stack_variant",
            variant,
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--register",
            f"{CLIENT_KEY}={ctx.public_pem}",
            "--secret-env",
            "SNAPBOOK_BENCH_JWT_SECRET",
            "--client-secret",
            f"{CLIENT_KEY}=SNAPBOOK_BENCH_CLIENT_SECRET",
            "--token-lifetime",
            "3600",
        ]
    else:
        app, runner = variant.split(":")
        if app == "floor" and route == "token":
            app = "tokenfloor"
        cmd = [python(), "-m", "benchmarks._stack_variant", app, runner, "{port}", str(ctx.public_pem)]
    cmd = [*prefix, *cmd]
    if tree:
        cmd = ["env", "-C", tree, *cmd]
    if pin:  # the server on CPU 1, the load generator on CPU 0: less scheduler noise between rounds
        cmd = ["taskset", "-c", "1", *cmd]
    name = (variant + ("-" + Path(tree).name if tree else "")).replace(":", "-").replace(".", "_")
    return _start(name, cmd, ctx, probe="/", env=env, start_s=start_s)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument(
        "--route",
        choices=("service", "token"),
        default="service",
        help="the balance inquiry against _service_floor, or the token route against _bare_app's floor",
    )
    parser.add_argument("--syscalls", action="store_true", help="count system calls per request with perf")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="perf trace -s of each server's last round: system calls by name, per request",
    )
    parser.add_argument("--pin", action="store_true", help="servers on CPU 1, this load generator on CPU 0")
    args = parser.parse_args()
    import tempfile

    if args.pin:
        os.sched_setaffinity(0, {0})

    ctx = Context(quick=False, tmp=Path(tempfile.mkdtemp(prefix="ab-stack-")))
    env = child_env()
    env["SNAPBOOK_BENCH_JWT_SECRET"] = secrets.token_urlsafe(48)
    env["SNAPBOOK_BENCH_CLIENT_SECRET"] = secrets.token_urlsafe(24)
    secret = env["SNAPBOOK_BENCH_CLIENT_SECRET"].encode()
    print("load average at start:", Path("/proc/loadavg").read_text().strip())
    servers = {v: start(v, ctx, env, args.route, args.pin) for v in args.variants}
    try:
        token_server = next((s for v, s in servers.items() if not v.startswith("floor")), None)
        if token_server is None:  # only floors: a sandbox app just for the token
            token_server = servers["_token"] = start("sandbox:uvicorn", ctx, env)
        headers, body = signed_pool(ctx.private_key, 1)[0]
        token = httpx.post(token_server.token_url, headers=headers, content=body, timeout=10).json()[
            "accessToken"
        ]
        path = SERVICE_PATH if args.route == "service" else TOKEN_PATH
        urls = {
            v: s.base_url + ("/floor" if v.startswith("floor") else "") + path
            for v, s in servers.items()
            if v != "_token"
        }
        token_pool = signed_pool(ctx.private_key, 60)

        def make_pool() -> list[tuple[dict[str, str], bytes]]:
            if args.route == "token":
                return token_pool
            return service_pool(token, secret, args.count)

        for v, url in urls.items():
            h, b = make_pool()[0] if args.route == "token" else service_pool(token, secret, 1)[0]
            r = httpx.post(url, headers=h, content=b, timeout=10)
            if r.status_code != 200:
                raise RuntimeError(f"{v} refused: {r.status_code} {r.text[:200]}")
        stats: dict[str, dict[str, list[float]]] = {
            v: {"rate": [], "cpu": [], "loop": [], "other": [], "sys%": [], "cs": [], "calls": [], "faults": []}
            for v in urls
        }
        order = list(urls)
        with RawLoadGenerator(16) as gen:
            for r in range(args.rounds + 1):  # round 0 warms up
                k = r % len(order)
                for v in order[k:] + order[:k]:
                    pool = make_pool()
                    pid = servers[v].proc.pid
                    perf = None
                    trace_file = ctx.tmp / f"trace-{v.replace(':', '-')}.txt"
                    if args.trace and r == args.rounds:
                        import subprocess

                        perf = subprocess.Popen(
                            ["perf", "trace", "-s", "-o", str(trace_file), "-p", str(pid)],
                            stderr=subprocess.DEVNULL,
                        )
                        time.sleep(0.5)
                    elif args.syscalls:
                        import subprocess

                        perf = subprocess.Popen(
                            ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid)],
                            stderr=subprocess.PIPE,
                            text=True,
                        )
                        time.sleep(0.3)
                    c0 = proc_counts(pid)
                    t0 = thread_ns(pid)
                    res = gen.run(urls[v], pool, count=args.count, max_seconds=30)
                    t1 = thread_ns(pid)
                    c1 = proc_counts(pid)
                    calls = 0.0
                    if perf is not None:
                        import signal

                        perf.send_signal(signal.SIGINT)
                        out = perf.communicate(timeout=10)[1]
                        if args.trace:
                            counts: dict[str, int] = {}
                            for line in trace_file.read_text().splitlines():
                                parts = line.split()
                                if len(parts) >= 3 and parts[1].isdigit() and parts[0].isidentifier():
                                    counts[parts[0]] = counts.get(parts[0], 0) + int(parts[1])
                            ok_now = res.statuses.get(200, 0) or 1
                            print(
                                f"  {v} syscalls per request: "
                                + ", ".join(
                                    f"{name} {n / ok_now:.2f}"
                                    for name, n in sorted(counts.items(), key=lambda x: -x[1])
                                )
                            )
                        else:
                            calls = float(next(x for x in out.splitlines() if "sys_enter" in x).split(",")[0])
                    ok = res.statuses.get(200, 0)
                    if ok != args.count:
                        print(f"  {v}: {dict(res.statuses)} errors={res.errors}")
                    spent = [t1[t] - t0.get(t, 0) for t in t1]
                    loop = max(spent)
                    if r:
                        s = stats[v]
                        s["rate"].append(res.rate)
                        s["cpu"].append(sum(spent) / ok / 1e3)
                        s["loop"].append(loop / ok / 1e3)
                        s["other"].append((sum(spent) - loop) / ok / 1e3)
                        ticks = (c1[0] - c0[0]) + (c1[1] - c0[1])
                        s["sys%"].append(100 * (c1[1] - c0[1]) / ticks if ticks else 0.0)
                        s["cs"].append((c1[2] - c0[2]) / ok)
                        s["faults"].append((c1[3] - c0[3]) / ok)
                        s["calls"].append(calls / ok)
        print("load average at end:  ", Path("/proc/loadavg").read_text().strip())
        print(
            f"{'variant':<16} {'req/s':>7} {'CPU µs/req':>11} {'loop µs':>8} {'other µs':>9} {'sys %':>6} "
            f"{'ctxsw/req':>9} {'syscalls/req':>12} {'faults/req':>10}   loop per round"
        )
        for v, s in stats.items():
            med = {k: statistics.median(x) for k, x in s.items()}
            rounds = " ".join(f"{x:.0f}" for x in s["loop"])
            print(
                f"{v:<16} {med['rate']:>7.0f} {med['cpu']:>11.1f} {med['loop']:>8.1f} {med['other']:>9.1f} "
                f"{med['sys%']:>6.1f} {med['cs']:>9.2f} {med['calls']:>12.2f} {med['faults']:>10.2f}   {rounds}"
            )
    finally:
        for s in servers.values():
            s.stop()
        for v, s in servers.items():
            tail = [line for line in s.log.read_text(errors="replace").splitlines() if line.startswith("GC ")]
            if tail:
                print(f"{v:<16} {tail[-1]}")


if __name__ == "__main__":
    main()
