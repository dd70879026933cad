"""Thousands of malformed requests: never a 5xx, every rejection a valid SNAP JSON error.

The bulk runs in-process (straight into the ASGI app, no sockets, under a millisecond each); a
smaller share goes over real loopback HTTP through the threaded server, where the headers must
also survive h11 on both sides.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapbook.sandbox import Sandbox, SandboxConfig, create_app
from snapbook.signing import JAKARTA, signed_headers

CLIENT = "MCP00000001"
T = datetime(2026, 1, 15, 10, 0, 0, tzinfo=JAKARTA)
TS = "2026-01-15T10:00:00+07:00"
LIMIT = 2048  # a small body limit, so oversized bodies are cheap to generate
PATHS = ["/auth/merchants/v1.0/access-token/b2b", "/api/v1.0/access-token/b2b", "/v1.0/access-token/b2b"]
OTHER_PATHS = ["/", "/openapi.json", "/sandbox/v1.0/token/validate", "/v1.0/access-token/b2b2c", "/%00", "/a/../b"]

# Each example is sent to a lenient and a strict sandbox: twice as many requests as examples.
IN_PROCESS_EXAMPLES = 1500
OVER_HTTP_EXAMPLES = 200


def frozen() -> datetime:
    return T


def config(strict: bool) -> SandboxConfig:
    return SandboxConfig(clock=frozen, strict=strict, max_body_bytes=LIMIT)


# --- what a malformed request is made of -------------------------------------------------

# Header text that h11 lets through on both sides: visible ASCII and Latin-1, inner spaces.
SAFE = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40).map(str.strip)
# In-process there is no h11: any Latin-1 byte except CR/LF can reach the application.
RAW = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40)

# Built from parts rather than st.datetimes(timezones=...), which is ten times slower to draw.
TIMESTAMPS = st.one_of(
    st.just(TS),
    st.sampled_from(
        ["2026-01-15T03:00:00Z", "2026-01-15T10:00:00.5+07:00", "2026-01-15T03:00:00-00:00",
         "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-02-30T10:00:00+07:00",
         "2026-01-15T10:00:00+99:99", "1768446000", ""]
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,
        st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
        st.integers(0, 60), st.sampled_from(["", ".5", ".123456789"]),
        st.sampled_from(["+07:00", "Z", "-00:00", "+00:00", "+23:59", "-12:00", "+0700", "", " +07:00"]),
    ),
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=10), SCALARS, max_size=4)
)
BODIES = st.one_of(
    st.just(b'{"grantType":"client_credentials","additionalInfo":{}}'),
    st.builds(
        lambda grant, info, extra: json.dumps({**extra, "grantType": grant, "additionalInfo": info}).encode(),
        st.one_of(st.just("client_credentials"), SCALARS),
        st.one_of(st.just({}), JSON),
        st.dictionaries(st.sampled_from(["grant_type", "granttype", "x", ""]), SCALARS, max_size=2),
    ),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"[" * 3000, b'{"grantType": NaN}', b"\xef\xbb\xbf{}", b"x" * (LIMIT + 1)]),
)


@st.composite
def requests(draw, text=SAFE):
    """A token request, starting from a valid signed one and breaking any part of it."""
    key = draw(st.sampled_from(["valid", "other"]))
    timestamp = draw(TIMESTAMPS)
    headers = dict(SIGNED[key][timestamp] if timestamp in SIGNED[key] else SIGNED[key][TS])
    headers["X-TIMESTAMP"] = timestamp
    for name in ["Content-Type", "X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE"]:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "empty", "random"]))
        if action == "drop":
            headers.pop(name)
        elif action == "empty":
            headers[name] = ""
        elif action == "random":
            headers[name] = draw(text)
    for _ in range(draw(st.integers(0, 2))):
        headers[draw(st.sampled_from(["X-Extra", "Authorization", "Content-Length-Extra"]))] = draw(text)
    return {
        "method": draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])),
        "path": draw(st.one_of(st.sampled_from(PATHS), st.sampled_from(PATHS), st.sampled_from(OTHER_PATHS))),
        "headers": {k: v.encode("latin-1") for k, v in headers.items()},
        "content": draw(BODIES),
    }


SIGNED: dict[str, dict[str, dict[str, str]]] = {}


@pytest.fixture(scope="module", autouse=True)
def presigned(private_key, other_private_key):
    """Signatures for the fixed timestamps, made once (RSA signing costs ~1 ms each)."""
    stamps = [TS, "2026-01-15T03:00:00Z", "2026-01-15T10:00:00.5+07:00", "2026-01-15T03:00:00-00:00"]
    SIGNED["valid"] = {ts: signed_headers(private_key, CLIENT, ts) for ts in stamps}
    SIGNED["other"] = {ts: signed_headers(other_private_key, CLIENT, ts) for ts in stamps}


def assert_snap_answer(status: int, headers: httpx.Headers, content: bytes, method: str, path: str) -> dict | None:
    assert status < 500, (status, content[:200])
    assert "x-timestamp" in headers and "x-client-key" in headers
    assert headers["content-type"].startswith("application/json")
    if method == "HEAD":  # no body on HEAD, by HTTP
        return None
    body = json.loads(content)
    assert isinstance(body, dict)
    if path == "/openapi.json" and status == 200:  # the one answer that is a document, not a SNAP body
        assert body["openapi"].startswith("3.1")
        return body
    code = body["responseCode"]
    assert isinstance(code, str) and re.fullmatch(r"\d{7}", code), code
    assert int(code[:3]) == status
    assert isinstance(body["responseMessage"], str) and 0 < len(body["responseMessage"]) <= 150
    if status != 200:
        assert set(body) == {"responseCode", "responseMessage"}
    return body


FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: repeatable, and a steady test time
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


async def call_asgi(app, method: str, path: str, headers: dict[str, bytes], body: bytes):
    """One request straight into the ASGI app: (status, headers, body).

    A dozen lines instead of ``httpx.ASGITransport``, whose per-request trio probe (a failing
    ``import sniffio``) costs more than the sandbox itself.
    """
    raw_headers = [(name.lower().encode("latin-1"), value) for name, value in headers.items()]
    raw_headers += [(b"host", b"sandbox"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("sandbox", 80),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status, response_headers, chunks = 0, [], []

    async def receive():
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status, response_headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, httpx.Headers(response_headers), b"".join(chunks)


def test_fuzz_in_process(public_key):
    apps = {strict: create_app(config(strict), clients={CLIENT: public_key}) for strict in (False, True)}
    runner = asyncio.Runner()
    statuses: dict[int, int] = {}

    @settings(FUZZ, max_examples=IN_PROCESS_EXAMPLES)
    @given(req=requests(text=RAW))
    def one(req):
        seen = {}
        for strict, app in apps.items():
            status, headers, content = runner.run(
                call_asgi(app, req["method"], req["path"], req["headers"], req["content"])
            )
            assert_snap_answer(status, headers, content, req["method"], req["path"])
            statuses[status] = statuses.get(status, 0) + 1
            seen[strict] = status
        assert seen[True] != 200 or seen[False] == 200, "strict accepted what lenient refused"

    try:
        one()
    finally:
        runner.close()
    total = sum(statuses.values())
    assert total >= 2 * IN_PROCESS_EXAMPLES * 0.9
    assert total == sum(len(app.state.provider.journal) for app in apps.values())
    # The fuzz reached deep into the checks, not just the first one.
    assert {200, 400, 401, 404, 405} <= set(statuses), statuses
    for app in apps.values():
        df = app.state.provider.journal.to_dataframe()
        assert set(df.verdict) <= {"accepted", "rejected"}
        text = df.to_string()
        for signed in SIGNED["valid"].values():
            assert signed["X-SIGNATURE"] not in text


def test_fuzz_over_loopback_http(public_key):
    statuses: dict[int, int] = {}
    with Sandbox(config(False), clients={CLIENT: public_key}) as lenient, Sandbox(
        config(True), clients={CLIENT: public_key}
    ) as strict, httpx.Client(timeout=10) as client:
        servers = {False: lenient, True: strict}

        @settings(FUZZ, max_examples=OVER_HTTP_EXAMPLES)
        @given(req=requests(text=SAFE))
        def one(req):
            for server in servers.values():
                url = server.base_url + req["path"]
                r = client.request(req["method"], url, headers=req["headers"], content=req["content"])
                assert_snap_answer(r.status_code, r.headers, r.content, req["method"], req["path"])
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        one()
        assert sum(statuses.values()) == len(lenient.journal) + len(strict.journal)
        assert not [e for s in servers.values() for e in s.journal if e.verdict == "error"]
    assert sum(statuses.values()) >= 2 * OVER_HTTP_EXAMPLES * 0.9
    assert {200, 400, 401} <= set(statuses), statuses
