"""Load: many concurrent clients against the sandbox, and nothing lost.

N async clients hammer a real sandbox (uvicorn on 127.0.0.1) for a bounded time. Then three
independent records of the run must agree exactly: what the clients got back, the clients'
RequestLog (in memory and as JSON lines on disk) and the sandbox's journal. p50/p99 latencies
are printed and written to ``test-artifacts/reliability/load.json`` for docs/RELIABILITY.md.

Every loop here stops at a deadline and at a count, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import jwt as pyjwt
import pytest

from snapbook.client import AsyncTokenClient, TokenClient
from snapbook.log import SUCCESS, RequestLog
from snapbook.masking import mask
from snapbook.sandbox import PRODUCTS, Sandbox, SandboxConfig

N_CLIENTS = int(os.environ.get("SNAPBOOK_LOAD_CLIENTS", "16"))
DURATION = float(os.environ.get("SNAPBOOK_LOAD_SECONDS", "4"))
MAX_PER_CLIENT = 5_000
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "reliability"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def settle(journal, expected: int, timeout: float = 5.0) -> int:
    """The sandbox journals a request just after answering it: wait (bounded) for the last rows."""
    deadline = time.monotonic() + timeout
    while len(journal) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and make sure nothing more arrives
    return len(journal)


def write_artifact(name: str, data: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps(data, indent=2) + "\n")


def jti(token: str) -> str:
    return pyjwt.decode(token, options={"verify_signature": False})["jti"]


@pytest.mark.timeout(90)
def test_concurrent_async_clients_lose_nothing(private_key, tmp_path):
    path = tmp_path / "load.jsonl"
    products = list(PRODUCTS)
    with Sandbox(SandboxConfig()) as sb, RequestLog(path) as log:
        client_keys = [f"LOAD{i:03d}" for i in range(N_CLIENTS)]
        for ck in client_keys:
            sb.register(ck, private_key.public_key())

        async def worker(i: int, deadline: float) -> list:
            tokens = []
            url = sb.token_url(products[i % len(products)])
            async with AsyncTokenClient(url, client_keys[i], private_key, log=log, timeout=10, retry=None) as client:
                while time.monotonic() < deadline and len(tokens) < MAX_PER_CLIENT:
                    tokens.append(await client.request_token())
            return tokens

        async def run() -> list:
            deadline = time.monotonic() + DURATION
            return await asyncio.gather(*(worker(i, deadline) for i in range(N_CLIENTS)), return_exceptions=True)

        started = time.monotonic()
        results = asyncio.run(run())
        elapsed = time.monotonic() - started
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], f"{len(errors)} client(s) failed: {errors[:3]!r}"
        per_client = {client_keys[i]: tokens for i, tokens in enumerate(results)}
        tokens = [t for ts in per_client.values() for t in ts]
        total = len(tokens)
        assert total >= N_CLIENTS * 5, f"only {total} requests in {elapsed:.1f} s"

        journal_rows = settle(sb.journal, total)
        journal = sb.journal.entries()

    # 1. the clients' log, in memory: one successful first attempt per token, nothing else
    records = log.records
    assert len(records) == total
    assert all(r.outcome == SUCCESS and r.attempt == 1 and r.http_status == 200 for r in records)
    assert Counter(r.client_key for r in records) == Counter({ck: len(ts) for ck, ts in per_client.items()})
    assert Counter(r.token for r in records) == Counter(mask(t.access_token) for t in tokens)

    # 2. the same log on disk: every line complete and loadable, same rows
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == total and all(json.loads(line) for line in lines)
    loaded = RequestLog.load(path)
    assert len(loaded) == total
    assert [r.to_json() for r in loaded.records] == [r.to_json() for r in records]

    # 3. the sandbox's journal: the same requests, one row each, all accepted
    assert journal_rows == total == len(journal)
    assert all(e.verdict == "accepted" and e.http_status == 200 and e.response_code == "2007300" for e in journal)
    assert Counter(e.client_key for e in journal) == Counter(r.client_key for r in records)
    assert Counter(e.token for e in journal) == Counter(r.token for r in records)
    assert Counter(e.product for e in journal) == Counter(
        products[client_keys.index(r.client_key) % len(products)] for r in records
    )
    # every token the clients hold was issued exactly once, and is the one the journal recorded
    jtis = [jti(t.access_token) for t in tokens]
    assert len(set(jtis)) == total
    assert set(jtis) == {e.jti for e in journal}

    latencies = [r.latency_ms for r in records]
    server = [e.latency_ms for e in journal]
    stats = {
        "clients": N_CLIENTS,
        "duration_s": round(elapsed, 2),
        "requests": total,
        "errors": len(errors),
        "throughput_rps": round(total / elapsed, 1),
        "client_latency_ms": {"p50": round(percentile(latencies, 50), 1), "p99": round(percentile(latencies, 99), 1),
                              "max": round(max(latencies), 1)},
        "server_latency_ms": {"p50": round(percentile(server, 50), 2), "p99": round(percentile(server, 99), 2)},
        "log_rows": len(records),
        "jsonl_lines": len(lines),
        "journal_rows": journal_rows,
    }
    write_artifact("load.json", stats)
    print(f"\nload: {json.dumps(stats)}")
    # Generous: a loaded 2-core CI box; the point is bounded, not fast.
    assert stats["client_latency_ms"]["p99"] < 5_000


@pytest.mark.timeout(60)
def test_concurrent_threads_share_one_sync_client_and_log(private_key):
    """TokenClient and RequestLog from many threads at once: counts still match the journal."""
    threads_n, duration = 6, 1.5
    with Sandbox() as sb:
        sb.register("THREADS", private_key.public_key())
        log = RequestLog()
        counts = [0] * threads_n
        failures: list[BaseException] = []
        with TokenClient(sb.token_url("snap"), "THREADS", private_key, log=log, timeout=10, retry=None) as client:
            deadline = time.monotonic() + duration

            def work(i: int) -> None:
                try:
                    while time.monotonic() < deadline and counts[i] < MAX_PER_CLIENT:
                        client.request_token()
                        counts[i] += 1
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)

            pool = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
            for t in pool:
                t.start()
            for t in pool:
                t.join(duration + 30)
            assert not any(t.is_alive() for t in pool)
        total = sum(counts)
        assert failures == []
        assert total > threads_n
        assert len(log) == total and all(r.ok for r in log.records)
        assert settle(sb.journal, total) == total
        assert Counter(e.verdict for e in sb.journal) == {"accepted": total}


@pytest.mark.timeout(60)
def test_concurrent_get_token_calls_share_one_request(private_key):
    """The token cache under a burst: 200 concurrent get_token() calls cost the provider one request."""
    with Sandbox() as sb:
        sb.register("CACHE", private_key.public_key())
        log = RequestLog()

        async def burst():
            async with AsyncTokenClient(sb.token_url("payment"), "CACHE", private_key, log=log, timeout=10) as client:
                first = await asyncio.gather(*(client.get_token() for _ in range(200)))
                again = await asyncio.gather(*(client.get_token() for _ in range(50)))
                return first + again

        tokens = asyncio.run(burst())
        assert len({t.access_token for t in tokens}) == 1
        assert len(log) == 1
        assert settle(sb.journal, 1) == 1


@pytest.mark.timeout(60)
def test_sandbox_answers_without_delayed_ack_stalls(private_key):
    """Sequential requests on one keep-alive connection take milliseconds, not ~40 ms each.

    Without TCP_NODELAY on the sandbox's sockets, each answer (headers, then body, in two
    writes) waits for the client's delayed ACK: about 40 ms per request on Linux, which made
    the sandbox 20x slower than it is.
    """
    with Sandbox() as sb:
        sb.register("SEQ", private_key.public_key())
        with TokenClient(sb.token_url("payment"), "SEQ", private_key, timeout=10, retry=None) as client:
            client.request_token()  # connect once
            for _ in range(30):
                client.request_token()
            latencies = [r.latency_ms for r in client.log.records[1:]]
    assert statistics.median(latencies) < 25, f"median {statistics.median(latencies):.1f} ms"
