"""Faults: the client against every way the sandbox can misbehave on purpose.

For each fault (slow answers, 429 with Retry-After, 500, 503, 504, dropped connections, and
timeouts) three things are checked: the retry policy (which failures are retried, and how
long the client waits: recorded through an injected ``sleep``, so no test sleeps for real),
the final typed error, and that every attempt is one row in the client's log and one row in
the sandbox's journal. A last test mixes all faults under concurrent load and requires the
log and the journal to agree row for row.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter

import httpx
import pytest

from snapbook.client import AsyncTokenClient, RetryPolicy, TokenClient
from snapbook.errors import (
    ConnectionFailedError,
    RequestTimeoutError,
    SnapbookError,
    SnapResponseError,
    TransportError,
)
from snapbook.log import REFUSED, SUCCESS, TRANSPORT_ERROR, RequestLog
from snapbook.sandbox import Faults, Sandbox

CLIENT = "FAULTS01"
pytestmark = pytest.mark.timeout(60)  # nothing here may hang: every test is bounded


def settle(journal, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while len(journal) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    return len(journal)


@pytest.fixture(scope="module")
def sb(private_key):
    with Sandbox() as sandbox:
        sandbox.register(CLIENT, private_key.public_key())
        yield sandbox


@pytest.fixture
def fresh(sb):
    """The shared sandbox with an empty journal and no faults, restored afterwards."""
    sb.journal.clear()
    sb.faults = Faults()
    yield sb
    sb.faults = Faults()


def make_client(target, private_key, **options) -> tuple[TokenClient, list[float]]:
    """A client of ``target`` (a sandbox or a URL) whose sleeps are recorded, not slept."""
    slept: list[float] = []
    options.setdefault("timeout", 5)
    url = target if isinstance(target, str) else target.token_url("payment")
    client = TokenClient(url, CLIENT, private_key, sleep=slept.append, **options)
    return client, slept


def attempts(log: RequestLog) -> list[tuple[int, str, int | None, bool]]:
    return [(r.attempt, r.outcome, r.http_status, r.will_retry) for r in log.records]


# --- slow answers and timeouts ------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_slow_answer_is_one_read_timeout_not_retried(fresh, private_key):
    fresh.faults = Faults(slow_seconds=1.0)
    client, slept = make_client(fresh, private_key, timeout=0.3)
    started = time.monotonic()
    with client, pytest.raises(RequestTimeoutError) as info:
        client.request_token()
    assert time.monotonic() - started < 1.5
    assert info.value.phase == "read"
    assert "read timeout" in info.value.message and info.value.hint
    # A read timeout is not retried (the provider may be overloaded): one attempt, one row.
    assert slept == []
    assert attempts(client.log) == [(1, TRANSPORT_ERROR, None, False)]
    row = client.log.records[0]
    assert row.error_type == "RequestTimeoutError" and 250 < row.latency_ms < 1500
    # The sandbox still journals the request once its delayed answer is due, noting the client left.
    assert settle(fresh.journal, 1, timeout=3) == 1
    assert any("slow-answer fault" in n for n in fresh.journal[0].notes)


@pytest.mark.timeout(30)
def test_latency_within_the_timeout_succeeds_and_is_measured(fresh, private_key):
    fresh.faults = Faults(latency=0.2, jitter=0.1, seed=3)
    client, slept = make_client(fresh, private_key, timeout=2)
    with client:
        token = client.request_token()
    assert token.attempt == 1 and slept == []
    row = client.log.records[0]
    assert row.outcome == SUCCESS and 190 <= row.latency_ms < 1500
    assert settle(fresh.journal, 1) == 1
    assert any("latency fault" in n for n in fresh.journal[0].notes)


def test_connect_timeout_is_retried_then_typed(private_key):
    def handler(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, jitter=False)
    with TokenClient("http://127.0.0.1:9/v1.0/access-token/b2b", CLIENT, private_key, retry=policy,
                     transport=httpx.MockTransport(handler), sleep=slept.append, timeout=1) as client:
        with pytest.raises(RequestTimeoutError) as info:
            client.request_token()
    assert info.value.phase == "connect"
    assert "attempt 3; giving up" in info.value.message
    assert slept == [0.5, 1.0]
    assert attempts(client.log) == [(1, TRANSPORT_ERROR, None, True), (2, TRANSPORT_ERROR, None, True),
                                    (3, TRANSPORT_ERROR, None, False)]
    assert {r.error_type for r in client.log.records} == {"RequestTimeoutError"}


@pytest.mark.timeout(30)
def test_connection_refused_is_retried_then_typed(private_key):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client, slept = make_client(f"http://127.0.0.1:{port}/v1.0/access-token/b2b", private_key,
                                retry=RetryPolicy(max_attempts=2, jitter=False, base_delay=0.1))
    with client, pytest.raises(ConnectionFailedError) as info:
        client.request_token()
    assert "refused" in info.value.message
    assert slept == [0.1]
    assert attempts(client.log) == [(1, TRANSPORT_ERROR, None, True), (2, TRANSPORT_ERROR, None, False)]


# --- 429 with Retry-After -----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_429_honours_retry_after_then_gives_up(fresh, private_key):
    fresh.faults = Faults(rate_429=1.0, retry_after=2)
    client, slept = make_client(fresh, private_key)
    with client, pytest.raises(SnapResponseError) as info:
        client.request_token()
    err = info.value
    assert (err.http_status, err.response_code) == (429, "4297300")
    assert "attempt 3; giving up" in err.message
    assert slept == [2.0, 2.0]  # Retry-After exactly, not the exponential backoff
    assert attempts(client.log) == [(1, REFUSED, 429, True), (2, REFUSED, 429, True), (3, REFUSED, 429, False)]
    assert [r.response_code for r in client.log.records] == ["4297300"] * 3
    # Each retry is signed again: three attempts, three journal rows (signatures may repeat within a second).
    assert settle(fresh.journal, 3) == 3
    assert [(e.verdict, e.http_status) for e in fresh.journal] == [("fault", 429)] * 3


@pytest.mark.timeout(30)
def test_429_then_success(fresh, private_key):
    fresh.faults = Faults(rate_429=1.0, retry_after=1)

    def heal(seconds: float) -> None:  # the provider recovers while the client waits
        slept.append(seconds)
        fresh.faults = Faults()

    slept: list[float] = []
    with TokenClient(fresh.token_url("payment"), CLIENT, private_key, sleep=heal, timeout=5) as client:
        token = client.request_token()
    assert token.attempt == 2 and slept == [1.0]
    assert attempts(client.log) == [(1, REFUSED, 429, True), (2, SUCCESS, 200, False)]
    assert settle(fresh.journal, 2) == 2
    assert [e.verdict for e in fresh.journal] == ["fault", "accepted"]
    assert fresh.validate_token(token.access_token)["sub"] == CLIENT


@pytest.mark.timeout(30)
def test_retry_after_beyond_the_limit_gives_up_at_once(fresh, private_key):
    fresh.faults = Faults(rate_429=1.0, retry_after=120)
    client, slept = make_client(fresh, private_key, retry=RetryPolicy(max_retry_after=30))
    with client, pytest.raises(SnapResponseError) as info:
        client.request_token()
    assert slept == [] and "Retry-After" in info.value.hint and "120" in info.value.hint
    assert attempts(client.log) == [(1, REFUSED, 429, False)]


# --- 5xx ----------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind,status,code,retried", [
    ("rate_503", 503, "5037300", True),
    ("rate_504", 504, "5047300", True),
    ("rate_500", 500, "5007300", False),  # a General Error is not transient: retrying cannot fix it
])
def test_5xx_retry_policy_and_final_error(fresh, private_key, kind, status, code, retried):
    fresh.faults = Faults(**{kind: 1.0})
    policy = RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=0.6)
    client, slept = make_client(fresh, private_key, retry=policy, rng=7)
    with client, pytest.raises(SnapResponseError) as info:
        client.request_token()
    assert (info.value.http_status, info.value.response_code) == (status, code)
    n = 4 if retried else 1
    rng = random.Random(7)
    assert slept == [policy.backoff(i, rng) for i in range(1, n)]  # exponential, jittered, capped
    assert all(0.125 <= s <= 0.6 for s in slept)
    assert attempts(client.log) == [(i, REFUSED, status, i < n) for i in range(1, n + 1)]
    assert settle(fresh.journal, n) == n
    assert Counter(e.http_status for e in fresh.journal) == {status: n}


# --- dropped connections ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_dropped_connections_are_retried_then_typed(fresh, private_key):
    fresh.faults = Faults(rate_drop=1.0)
    client, slept = make_client(fresh, private_key, retry=RetryPolicy(max_attempts=3, base_delay=0.05, jitter=False))
    with client, pytest.raises(ConnectionFailedError) as info:
        client.request_token()
    assert "closed the connection" in info.value.message and "attempt 3; giving up" in info.value.message
    assert slept == [0.05, 0.1]
    assert attempts(client.log) == [(1, TRANSPORT_ERROR, None, True), (2, TRANSPORT_ERROR, None, True),
                                    (3, TRANSPORT_ERROR, None, False)]
    assert settle(fresh.journal, 3) == 3
    assert [(e.verdict, e.http_status) for e in fresh.journal] == [("fault", 0)] * 3


@pytest.mark.timeout(30)
def test_async_client_follows_the_same_policy(fresh, private_key):
    fresh.faults = Faults(rate_429=1.0, retry_after=1)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run():
        async with AsyncTokenClient(fresh.token_url("disbursement"), CLIENT, private_key, sleep=fake_sleep,
                                    timeout=5) as client:
            with pytest.raises(SnapResponseError) as info:
                await client.request_token()
            return client, info.value

    client, err = asyncio.run(run())
    assert err.http_status == 429 and slept == [1.0, 1.0]
    assert attempts(client.log) == [(1, REFUSED, 429, True), (2, REFUSED, 429, True), (3, REFUSED, 429, False)]


# --- everything at once, under load ----------------------------------------------------------------


@pytest.mark.timeout(90)
def test_fault_storm_under_load_log_and_journal_agree(private_key):
    """8 clients, 3 s, 10% 429 + 10% 503 + 5% 504 + 5% drops + jittered latency: every attempt accounted for."""
    faults = Faults(rate_429=0.10, retry_after=0, rate_503=0.10, rate_504=0.05, rate_drop=0.05,
                    latency=0.0, jitter=0.02, seed=42)
    policy = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
    n_clients, duration = 8, 3.0
    log = RequestLog()
    with Sandbox() as sb:
        keys = [f"STORM{i}" for i in range(n_clients)]
        for ck in keys:
            sb.register(ck, private_key.public_key())
        sb.faults = faults

        async def worker(i: int, deadline: float):
            ok, failed = 0, []
            async with AsyncTokenClient(sb.token_url("snap"), keys[i], private_key, log=log, retry=policy,
                                        timeout=5, rng=i) as client:
                while time.monotonic() < deadline and ok + len(failed) < 2_000:
                    try:
                        await client.request_token()
                        ok += 1
                    except SnapbookError as exc:
                        failed.append(exc)
            return ok, failed

        async def run():
            deadline = time.monotonic() + duration
            return await asyncio.gather(*(worker(i, deadline) for i in range(n_clients)))

        results = asyncio.run(run())
        rows = log.records
        journal_n = settle(sb.journal, len(rows))
        journal = sb.journal.entries()

    successes = sum(ok for ok, _ in results)
    failures = [e for _, failed in results for e in failed]
    # Only the typed errors of the injected faults, after six attempts each (p ~ 0.3^6 per request).
    assert all(isinstance(e, (SnapResponseError, TransportError)) for e in failures), failures[:3]
    assert successes > n_clients * 5
    assert len(failures) <= max(2, successes // 100)
    # Every attempt: exactly one log row and one journal row, the same outcomes on both sides.
    assert journal_n == len(rows) == len(journal)
    assert sum(r.outcome == SUCCESS for r in rows) == successes
    assert Counter(r.http_status or 0 for r in rows) == Counter(e.http_status for e in journal)
    assert Counter(r.client_key for r in rows) == Counter(e.client_key for e in journal)
    assert Counter(r.token for r in rows if r.token) == Counter(e.token for e in journal if e.token)
    # Retries happened, and each retried attempt is followed by the next attempt of the same request.
    retried = [r for r in rows if r.will_retry]
    assert len(retried) > 0
    assert sum(r.attempt == 1 for r in rows) == successes + len(failures)
    kinds = Counter(e.http_status for e in journal)
    assert {200, 429, 503, 504, 0} <= set(kinds), kinds
    print(f"\nstorm: {len(rows)} attempts, {successes} tokens, {len(failures)} gave up, journal {dict(kinds)}")
