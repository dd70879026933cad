"""The sandbox over real loopback HTTP: conformance table, tokens, journal, faults, lifecycle, CLI."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from _clock import HandClock

from snapbook.errors import ConfigError, KeyKindError, SnapbookError, SnapResponseError
from snapbook.keys import public_key_bytes, save_public_key
from snapbook.sandbox import (
    FaultInjector,
    Faults,
    InvalidTokenError,
    Sandbox,
    SandboxConfig,
    check_token_request,
    create_app,
)
from snapbook.signing import JAKARTA, make_timestamp, sign, signed_headers

CLIENT = "MCP00000001"
#: The sandbox clock is frozen here, so signed headers and token claims are exact.
T = datetime(2026, 1, 15, 10, 0, 0, tzinfo=JAKARTA)
TS = "2026-01-15T10:00:00+07:00"
BODY = {"grantType": "client_credentials", "additionalInfo": {}}
PATHS = {
    "payment": "/auth/merchants/v1.0/access-token/b2b",
    "disbursement": "/api/v1.0/access-token/b2b",
    "snap": "/v1.0/access-token/b2b",
}


def frozen() -> datetime:
    return T


@pytest.fixture(scope="module")
def sb(public_key):
    with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def strict_sb(public_key):
    with Sandbox(SandboxConfig(clock=frozen, strict=True), clients={CLIENT: public_key}) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=10) as client:
        yield client


# --- the conformance table ------------------------------------------------------------


@dataclass
class Req:
    method: str = "POST"
    path: str = PATHS["payment"]
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = json.dumps(BODY).encode()


def signed(key, ts: str = TS, client: str = CLIENT, body: Any = BODY, **header_overrides: str | None) -> Req:
    """A request signed over ``ts``; header overrides replace (or, with None, remove) headers."""
    headers = signed_headers(key, client, ts)
    for name, value in header_overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Req(headers=headers, content=content)


def at(seconds: int) -> str:
    return make_timestamp(T + timedelta(seconds=seconds))


@dataclass
class Case:
    id: str
    build: Callable[[Any, Any], Req]  # (private_key, other_private_key) -> request
    status: int
    code: str
    message: str  # exact, or a prefix when it ends with "…"
    note: str | None = None  # a substring of the journal row's notes
    strict: bool = False


def _ok(**kw):
    return lambda k, o: signed(k, **kw)


CASES = [
    # success on every route, and what lenient mode accepts (with a note)
    *[
        Case(f"ok-{p}", lambda k, o, path=path: Req(**{**signed(k).__dict__, "path": path}), 200, "2007300",
             "Successful")
        for p, path in PATHS.items()
    ],
    Case("ok-charset", _ok(Content_Type="application/json; charset=utf-8"), 200, "2007300", "Successful"),
    Case("ok-edge-of-window", lambda k, o: signed(k, ts=at(-300)), 200, "2007300", "Successful"),
    Case("ok-no-additionalInfo", _ok(body={"grantType": "client_credentials"}), 200, "2007300", "Successful"),
    # the standard's own forms (issue 14 item 1): both modes accept them, without a note
    *[
        Case(f"{mode}-standard-{name}", lambda k, o, ts=ts: signed(k, ts=ts), 200, "2007300", "Successful",
             strict=mode == "strict")
        for mode in ("lenient", "strict")
        for name, ts in (("Z", "2026-01-15T03:00:00Z"), ("SSS", "2026-01-15T10:00:00.000+07:00"),
                         ("SSS-Z", "2026-01-15T03:00:00.123Z"), ("minus-offset", "2026-01-14T22:00:00-05:00"))
    ],
    Case("lenient--00:00", lambda k, o: signed(k, ts="2026-01-15T03:00:00-00:00"), 200, "2007300", "Successful",
         "-00:00"),
    Case("lenient-no-colon", lambda k, o: signed(k, ts="2026-01-15T10:00:00+0700"), 200, "2007300", "Successful",
         "without a colon"),
    Case("lenient-space", lambda k, o: signed(k, ts="2026-01-15 10:00:00+07:00"), 200, "2007300", "Successful",
         "space instead of 'T'"),
    Case("lenient-long-fraction", lambda k, o: signed(k, ts="2026-01-15T10:00:00.123456+07:00"), 200, "2007300",
         "Successful", "at most three (.SSS)"),
    Case("lenient-grant_type", _ok(body={"grant_type": "client_credentials"}), 200, "2007300", "Successful",
         "'grant_type'"),
    Case("lenient-additionalInfo-empty-string", _ok(body={"grantType": "client_credentials", "additionalInfo": ""}),
         200, "2007300", "Successful", 'additionalInfo sent as ""'),
    Case("lenient-extra-field", _ok(body={**BODY, "scope": "x"}), 200, "2007300", "Successful", "'scope'"),
    # strict mode rejects each of them
    Case("strict--00:00", lambda k, o: signed(k, ts="2026-01-15T03:00:00-00:00"), 400, "4007301",
         "Invalid Field Format [X-TIMESTAMP]", "SNAP form", strict=True),
    Case("strict-no-colon", lambda k, o: signed(k, ts="2026-01-15T10:00:00+0700"), 400, "4007301",
         "Invalid Field Format [X-TIMESTAMP]", "without a colon", strict=True),
    Case("strict-space", lambda k, o: signed(k, ts="2026-01-15 10:00:00+07:00"), 400, "4007301",
         "Invalid Field Format [X-TIMESTAMP]", "space instead of 'T'", strict=True),
    Case("strict-long-fraction", lambda k, o: signed(k, ts="2026-01-15T10:00:00.1234+07:00"), 400, "4007301",
         "Invalid Field Format [X-TIMESTAMP]", "at most three", strict=True),
    Case("strict-grant_type", _ok(body={"grant_type": "client_credentials"}), 400, "4007302",
         "Invalid Mandatory Field [grantType]", "strict mode", strict=True),
    Case("strict-additionalInfo-empty-string", _ok(body={"grantType": "client_credentials", "additionalInfo": ""}),
         400, "4007301", "Invalid Field Format [additionalInfo]", strict=True),
    Case("strict-ok", _ok(), 200, "2007300", "Successful", strict=True),
    # 4: missing and empty headers, in the documented order
    *[
        Case(f"missing-{h}", _ok(**{h.replace("-", "_"): None}), 400, "4007302", f"Invalid Mandatory Field [{h}]",
             f"header {h} is missing")
        for h in ("Content-Type", "X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE")
    ],
    Case("empty-X-SIGNATURE", _ok(X_SIGNATURE=""), 400, "4007302", "Invalid Mandatory Field [X-SIGNATURE]",
         "is empty"),
    Case("missing-all", lambda k, o: Req(headers={}, content=b""), 400, "4007302",
         "Invalid Mandatory Field [Content-Type]"),
    # 5: Content-Type
    Case("content-type-text", _ok(Content_Type="text/plain"), 400, "4007301", "Invalid Field Format [Content-Type]",
         "text/plain"),
    Case("content-type-form", _ok(Content_Type="application/x-www-form-urlencoded"), 400, "4007301",
         "Invalid Field Format [Content-Type]"),
    # 6: X-TIMESTAMP format
    *[
        Case(f"timestamp-{i}", _ok(X_TIMESTAMP=ts), 400, "4007301", "Invalid Field Format [X-TIMESTAMP]", note)
        for i, (ts, note) in enumerate(
            [
                ("2026-01-15_10:00:00+07:00", "separates date and time"),
                ("1768446000", "Unix epoch"),
                ("2026-01-15T10:00:00", "no time zone"),
                ("2026-01-15T10:00:00+07", "hours and minutes"),
                ("2026-13-45T10:00:00+07:00", "not a real date"),
                ("not a time", None),
            ]
        )
    ],
    # 7: freshness, both ways
    Case("stale", lambda k, o: signed(k, ts=at(-301)), 401, "4017300", "Unauthorized. [X-TIMESTAMP out of range]",
         "301 s behind"),
    Case("future", lambda k, o: signed(k, ts=at(+301)), 401, "4017300", "Unauthorized. [X-TIMESTAMP out of range]",
         "ahead of"),
    Case("wrong-zone", lambda k, o: signed(k, ts="2026-01-15T10:00:00+00:00"), 401, "4017300",
         "Unauthorized. [X-TIMESTAMP out of range]", "whole number of hours"),
    # 8: client
    Case("unknown-client", lambda k, o: signed(k, client="MCP99999999"), 401, "4017300",
         "Unauthorized. [Unknown client]", "'MCP99999999' is not registered"),
    # 9: signature
    Case("signature-not-base64", _ok(X_SIGNATURE="not base64!"), 401, "4017300", "Unauthorized. [Signature] (…",
         "X-SIGNATURE rejected"),
    Case("signature-urlsafe", _ok(X_SIGNATURE="Zm9v-_" + "A" * 338), 401, "4017300",
         "Unauthorized. [Signature] (…", "URL-safe"),
    Case("signature-other-key", lambda k, o: signed(k, X_SIGNATURE=sign(o, f"{CLIENT}|{TS}")), 401, "4017300",
         "Unauthorized. [Signature] (…", "does not verify"),
    Case("signature-colon", lambda k, o: signed(k, X_SIGNATURE=sign(k, f"{CLIENT}:{TS}")), 401, "4017300",
         "Unauthorized. [Signature] (…", "does not verify"),
    Case("signature-other-timestamp", lambda k, o: signed(k, X_SIGNATURE=sign(k, f"{CLIENT}|{at(-1)}")), 401,
         "4017300", "Unauthorized. [Signature] (…"),
    Case("signature-truncated", _ok(X_SIGNATURE="QUJD"), 401, "4017300", "Unauthorized. [Signature] (…"),
    # 10: body
    Case("body-empty", _ok(body=b""), 400, "4007300", "Bad Request (empty body)", "body is empty"),
    Case("body-not-json", _ok(body=b"grantType=client_credentials"), 400, "4007300", "Bad Request (…",
         "not valid JSON"),
    Case("body-not-utf8", _ok(body=b'{"grantType": "\xff"}'), 400, "4007300", "Bad Request (…", "not UTF-8"),
    Case("body-array", _ok(body=[BODY]), 400, "4007300", "Bad Request (body is a JSON array, not an object)"),
    Case("body-string", _ok(body="client_credentials"), 400, "4007300", "Bad Request (…", "string"),
    Case("body-null", _ok(body=b"null"), 400, "4007300", "Bad Request (…", "null"),
    Case("body-nan", _ok(body=b'{"grantType": NaN}'), 400, "4007300", "Bad Request (…", "NaN"),
    Case("body-deep", _ok(body=b"[" * 5000 + b"]" * 5000), 400, "4007300", "Bad Request (…"),
    Case("body-too-large", _ok(body=b"{" + b" " * 20_000 + b"}"), 400, "4007300", "Bad Request (body over 16384 bytes)",
         "16384-byte limit (20002+ bytes read)"),
    Case("body-too-large-not-read", _ok(body=b"x" * 2_000_000), 400, "4007300", "Bad Request (body over 16384 bytes)",
         "Content-Length 2000000, not read"),
    # 11-13: grantType and additionalInfo
    Case("grantType-missing", _ok(body={"additionalInfo": {}}), 400, "4007302", "Invalid Mandatory Field [grantType]",
         "no grantType"),
    Case("grantType-null", _ok(body={"grantType": None}), 400, "4007302", "Invalid Mandatory Field [grantType]"),
    Case("grantType-wrong", _ok(body={"grantType": "password"}), 400, "4007301", "Invalid Field Format [grantType]",
         "'password'"),
    Case("grantType-case", _ok(body={"grantType": "CLIENT_CREDENTIALS"}), 400, "4007301",
         "Invalid Field Format [grantType]"),
    Case("grantType-number", _ok(body={"grantType": 1}), 400, "4007301", "Invalid Field Format [grantType]"),
    Case("additionalInfo-number", _ok(body={**BODY, "additionalInfo": 5}), 400, "4007301",
         "Invalid Field Format [additionalInfo]"),
    Case("additionalInfo-list", _ok(body={**BODY, "additionalInfo": []}), 400, "4007301",
         "Invalid Field Format [additionalInfo]"),
    # routing
    Case("unknown-path", lambda k, o: Req(**{**signed(k).__dict__, "path": "/v2.0/access-token/b2b"}), 404,
         "4047300", "Not Found. [Unknown path]"),
    Case("trailing-slash", lambda k, o: Req(**{**signed(k).__dict__, "path": PATHS["snap"] + "/"}), 404, "4047300",
         "Not Found. [Unknown path]"),
    Case("b2b2c-not-served", lambda k, o: Req(**{**signed(k).__dict__, "path": "/v1.0/access-token/b2b2c"}), 404,
         "4047300", "Not Found. [Unknown path]"),
    *[
        Case(f"method-{m}", lambda k, o, m=m: Req(**{**signed(k).__dict__, "method": m}), 405, "4057300",
             "Requested Function Is Not Supported", "not allowed")
        for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")
    ],
]


def check_snap_answer(r: httpx.Response, sent_client_key: str | None = None) -> dict:
    """Every answer: JSON, status == responseCode[:3], both SNAP response headers."""
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, dict)
    code, message = body["responseCode"], body["responseMessage"]
    assert re.fullmatch(r"\d{7}", code), code
    assert int(code[:3]) == r.status_code
    assert isinstance(message, str) and 0 < len(message) <= 150
    assert "x-timestamp" in r.headers and "x-client-key" in r.headers
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", r.headers["x-timestamp"])
    if sent_client_key is not None:
        assert r.headers["x-client-key"] == sent_client_key
    return body


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case, sb, strict_sb, http, private_key, other_private_key):
    sandbox = strict_sb if case.strict else sb
    req = case.build(private_key, other_private_key)
    r = http.request(req.method, sandbox.base_url + req.path, headers=req.headers, content=req.content)
    assert r.status_code == case.status, r.text
    body = check_snap_answer(r, req.headers.get("X-CLIENT-KEY", ""))
    assert body["responseCode"] == case.code
    if case.message.endswith("…"):
        assert body["responseMessage"].startswith(case.message[:-1]), body["responseMessage"]
    else:
        assert body["responseMessage"] == case.message
    row = sandbox.journal[-1]
    assert (row.http_status, row.response_code, row.path) == (case.status, case.code, req.path)
    assert row.verdict == ("accepted" if case.status == 200 else "rejected")
    assert row.product == {path: product for product, path in PATHS.items()}.get(req.path, "")
    if case.note:
        assert case.note in "; ".join(row.notes), row.notes
    if case.status == 405:
        assert r.headers["allow"] == "POST"
    if case.status == 200:
        assert body["tokenType"] == "Bearer" and body["expiresIn"] == "900"
        assert set(body) == {"responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn"}


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1.0/access-token/b2b HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"POST /v1.0/access-token/b2b HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"P(ST / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\n\r\n",
    ],
    ids=["garbage", "bad-header-name", "bad-content-length", "bad-method", "no-host"],
)
def test_malformed_http_gets_a_snap_answer(sb, raw):
    before = len(sb.journal)
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
        conn.sendall(raw)
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"x-timestamp: " in head.lower() and b"x-client-key:" in head.lower()
    assert json.loads(body) == {"responseCode": "4007300", "responseMessage": "Bad Request (malformed HTTP request)"}
    assert len(sb.journal) == before + 1 and sb.journal[-1].http_status == 400


def test_conformance_covers_every_code():
    assert {c.code for c in CASES} >= {"2007300", "4007300", "4007301", "4007302", "4017300", "4047300", "4057300"}


def test_checks_are_pure_and_ordered(private_key, public_key):
    """The order is the documented one: a request wrong in every way is answered for its first fault."""
    clients = {CLIENT: public_key}
    bad_everything = {"Content-Type": "text/plain", "X-TIMESTAMP": "yesterday", "X-CLIENT-KEY": "nobody",
                      "X-SIGNATURE": "!!"}
    steps = [
        ("Content-Type", "application/json", "4007301", "[X-TIMESTAMP]"),
        ("X-TIMESTAMP", at(-3600), "4017300", "[X-TIMESTAMP out of range]"),
        ("X-TIMESTAMP", TS, "4017300", "[Unknown client]"),
        ("X-CLIENT-KEY", CLIENT, "4017300", "[Signature]"),
        ("X-SIGNATURE", sign(private_key, f"{CLIENT}|{TS}"), "4007300", "Bad Request"),
    ]
    v = check_token_request(bad_everything, b"[", clients=clients, now=T)
    assert (v.response_code, v.response_message) == ("4007301", "Invalid Field Format [Content-Type]")
    for name, value, code, message in steps:
        bad_everything[name] = value
        v = check_token_request(bad_everything, b"[", clients=clients, now=T)
        assert v.response_code == code and message in v.response_message, (name, v)
    v = check_token_request(bad_everything, json.dumps(BODY).encode(), clients=clients, now=T)
    assert v.accepted and v.client_key == CLIENT


def test_freshness_is_configurable(public_key, private_key):
    headers = signed_headers(private_key, CLIENT, at(-600))
    body = json.dumps(BODY).encode()
    clients = {CLIENT: public_key}
    assert not check_token_request(headers, body, clients=clients, now=T, freshness_seconds=300).accepted
    assert check_token_request(headers, body, clients=clients, now=T, freshness_seconds=900).accepted
    assert check_token_request(headers, body, clients=clients, now=T, freshness_seconds=None).accepted


def test_far_out_timestamps_do_not_overflow(public_key, private_key):
    for ts in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"):
        v = check_token_request(signed_headers(private_key, CLIENT, ts), b"{}", clients={CLIENT: public_key}, now=T)
        assert v.response_code == "4017300" and "out of range" in v.response_message


# --- tokens ---------------------------------------------------------------------------


def test_token_claims_are_exact_with_a_frozen_clock(private_key, public_key, http):
    secret = b"s" * 64
    cfg = SandboxConfig(clock=frozen, token_lifetime=600, secret=secret)
    with Sandbox(cfg, clients={CLIENT: public_key}) as sandbox:
        tokens = []
        for _ in range(2):
            req = signed(private_key)
            r = http.post(sandbox.token_url("snap"), headers=req.headers, content=req.content)
            assert r.status_code == 200
            assert r.json()["expiresIn"] == "600"
            tokens.append(r.json()["accessToken"])
    assert jwt.get_unverified_header(tokens[0]) == {"alg": "HS512"}
    claims = [jwt.decode(t, secret, algorithms=["HS512"], options={"verify_exp": False}) for t in tokens]
    for c in claims:
        assert c["sub"] == CLIENT
        assert c["iat"] == int(T.timestamp())
        assert c["exp"] == c["iat"] + 600
    assert claims[0]["jti"] != claims[1]["jti"]


def test_expires_in_as_number(private_key, public_key, http):
    with Sandbox(SandboxConfig(clock=frozen, expires_in_as_number=True), clients={CLIENT: public_key}) as sandbox:
        req = signed(private_key)
        r = http.post(sandbox.token_url("disbursement"), headers=req.headers, content=req.content)
        assert r.json()["expiresIn"] == 900
        doc = http.get(sandbox.base_url + "/openapi.json").json()
        assert doc["components"]["schemas"]["TokenResponse"]["properties"]["expiresIn"]["type"] == "integer"


def test_validate_token_python_and_endpoint(private_key, public_key, http):
    clock = HandClock(T)
    with Sandbox(SandboxConfig(clock=clock, token_lifetime=900), clients={CLIENT: public_key}) as sandbox:
        req = signed(private_key)
        token = http.post(sandbox.token_url(), headers=req.headers, content=req.content).json()["accessToken"]
        claims = sandbox.validate_token(token)
        assert claims["sub"] == CLIENT and claims["exp"] == int(T.timestamp()) + 900

        r = http.get(sandbox.validate_url, headers={"Authorization": f"Bearer {token}"})
        body = check_snap_answer(r)
        assert r.status_code == 200 and body["additionalInfo"]["expiresIn"] == 900
        assert r.headers["x-client-key"] == CLIENT
        r = http.post(sandbox.validate_url, headers={"Authorization": f"Bearer {token}", "X-CLIENT-KEY": CLIENT})
        assert r.status_code == 200

        r = http.get(sandbox.validate_url)
        assert (r.status_code, check_snap_answer(r)["responseCode"]) == (401, "4017303")
        for auth in ("Bearer nonsense", "Basic abc", f"Bearer {token[:-2]}xx", "Bearer"):
            r = http.get(sandbox.validate_url, headers={"Authorization": auth})
            assert (r.status_code, check_snap_answer(r)["responseCode"]) == (401, "4017301"), auth

        clock.now = T + timedelta(seconds=900)
        with pytest.raises(InvalidTokenError, match="expired 0 s ago") as info:
            sandbox.validate_token(token)
        assert isinstance(info.value, SnapbookError) and isinstance(info.value, SnapResponseError)
        assert info.value.response_code == "4017301" and info.value.http_status == 401
        r = http.get(sandbox.validate_url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and "expired" in r.json()["responseMessage"]

    with Sandbox(SandboxConfig(clock=frozen)) as other:  # another secret
        with pytest.raises(InvalidTokenError, match="secret"):
            other.validate_token(token)
        with pytest.raises(InvalidTokenError):
            other.validate_token("not.a.jwt")
        forged = jwt.encode({"sub": CLIENT, "iat": 1, "exp": 2**40, "jti": "x", "iss": "snapbook-sandbox"}, "k" * 64,
                            algorithm="HS256")
        with pytest.raises(InvalidTokenError):
            other.validate_token(forged)


# --- journal --------------------------------------------------------------------------


def test_journal_masks_signatures_and_tokens(private_key, public_key, http, capsys):
    with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
        req = signed(private_key)
        r = http.post(sandbox.token_url(), headers=req.headers, content=req.content)
        token = r.json()["accessToken"]
        http.get(sandbox.validate_url, headers={"Authorization": f"Bearer {token}"})
        bad = signed(private_key, X_SIGNATURE=sign(private_key, "something else"))
        http.post(sandbox.token_url(), headers=bad.headers, content=bad.content)
        df = sandbox.journal.to_dataframe()
        lines = "\n".join(e.line() for e in sandbox.journal)
    text = df.to_string() + df.to_csv() + repr(sandbox.journal.entries()) + lines + sandbox.journal._repr_html_()
    for secret in (req.headers["X-SIGNATURE"], bad.headers["X-SIGNATURE"], token):
        assert secret not in text
        assert secret[20:60] not in text
    assert len(df) == 3 and list(df.verdict) == ["accepted", "accepted", "rejected"]
    assert df.loc[0, "signature"].endswith("(344 chars)")
    assert df.loc[0, "jti"] and df.loc[0, "jti"] == df.loc[1, "jti"]
    assert df.loc[0, "client_key"] == CLIENT and df.loc[0, "product"] == "payment"
    assert {"time", "method", "path", "verdict", "http_status", "response_code", "latency_ms", "notes"} <= set(df)
    assert (df.latency_ms >= 0).all()


def test_refused_signatures_say_why_in_the_journal(private_key, public_key, other_private_key, http):
    """Issue 6: every refused signature's journal row carries the doctor's diagnosis.

    The diagnosis is worked out when the row is read, not while answering, so a refusal costs
    the server no more than a success does.
    """
    mistakes = {
        "colon": (sign(private_key, f"{CLIENT}:{TS}"), "':' instead of '|'"),
        "swapped": (sign(private_key, f"{TS}|{CLIENT}"), "the timestamp first"),
        "other key": (sign(other_private_key, f"{CLIENT}|{TS}"), "different key pair"),
    }
    seen: list = []
    with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
        sandbox.journal.subscribe(seen.append)
        for signature, _ in mistakes.values():
            bad = signed(private_key, X_SIGNATURE=signature)
            r = http.post(sandbox.token_url(), headers=bad.headers, content=bad.content)
            assert r.status_code == 401 and r.json()["responseCode"] == "4017300"
            assert r.json()["responseMessage"].startswith("Unauthorized. [Signature]")
        # as recorded (what a listener sees at once): not yet diagnosed
        assert all(e.doctor is not None and not any(n.startswith("doctor:") for n in e.notes) for e in seen)
        rows = sandbox.journal.entries()
        df = sandbox.journal.to_dataframe()
    assert "doctor" not in df.columns
    for row, (name, (_, phrase)) in zip(rows, mistakes.items()):
        doctor = [n for n in row.notes if n.startswith("doctor:")]
        assert len(doctor) == 1 and phrase in doctor[0].lower(), (name, row.notes)
        assert row.doctor is None
    assert df.notes.str.contains("doctor:").sum() == 3


def test_doctor_note_runs_once(public_key, private_key):
    from snapbook.sandbox.checks import DoctorNote

    note = DoctorNote(public_key, CLIENT, TS, sign(private_key, f"{CLIENT}:{TS}"))
    first = note()
    assert first and "':' instead of '|'" in first
    assert note() is first


def test_journal_counts_every_request(sb, http):
    before = len(sb.journal)
    for path in ("/", "/openapi.json", "/nope", PATHS["snap"]):
        http.post(sb.base_url + path)
    assert len(sb.journal) == before + 4


def test_openapi_describes_every_route(sb, http):
    r = http.get(sb.base_url + "/openapi.json")
    assert r.status_code == 200 and "x-timestamp" in r.headers and "x-client-key" in r.headers
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    services = {
        "/v1.0/qr/qr-mpm-generate", "/v1.0/qr/qr-mpm-query", "/api/v1.0/balance-inquiry", "/sandbox/v1.0/qr/pay"
    }
    assert set(doc["paths"]) == {*PATHS.values(), "/sandbox/v1.0/token/validate", "/openapi.json", *services}
    assert doc["servers"][0]["url"] == sb.base_url
    for path in PATHS.values():
        op = doc["paths"][path]["post"]
        # Content-Type is the requestBody's media type (OpenAPI ignores a Content-Type parameter)
        assert {p["name"] for p in op["parameters"]} == {"X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE"}
        assert set(op["requestBody"]["content"]) == {"application/json"}
        assert set(op["responses"]) == {"200", "400", "401", "429", "500", "503", "504"}
        assert set(op["responses"]["200"]["headers"]) == {"X-TIMESTAMP", "X-CLIENT-KEY"}


# --- faults ---------------------------------------------------------------------------


def test_fault_sequence_is_seeded_and_repeatable(sb, http, private_key):
    faults = Faults(rate_429=0.2, retry_after=7, rate_500=0.15, rate_503=0.15, rate_504=0.15, seed=42)
    req = signed(private_key)
    runs = []
    try:
        for _ in range(2):
            sb.faults = faults
            statuses = []
            for _ in range(40):
                r = http.post(sb.token_url(), headers=req.headers, content=req.content)
                body = check_snap_answer(r, CLIENT)
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["retry-after"] == "7" and body["responseCode"] == "4297300"
                elif r.status_code >= 500:
                    assert body["responseCode"] == {500: "5007300", 503: "5037300", 504: "5047300"}[r.status_code]
                    assert sb.journal[-1].verdict == "fault"
            runs.append(statuses)
    finally:
        sb.faults = None
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 429, 500, 503, 504}
    other = FaultInjector(Faults(rate_429=0.5, seed=1))
    again = FaultInjector(Faults(rate_429=0.5, seed=1))
    assert [other.decide() for _ in range(50)] == [again.decide() for _ in range(50)]


def test_dropped_connections(sb, http, private_key):
    req = signed(private_key)
    sb.faults = Faults(rate_drop=1.0)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(sb.token_url(), headers=req.headers, content=req.content)
        row = sb.journal[-1]
        assert (row.verdict, row.http_status) == ("fault", 0) and "without an answer" in "; ".join(row.notes)
    finally:
        sb.faults = None
    assert http.post(sb.token_url(), headers=req.headers, content=req.content).status_code == 200


def test_latency_and_jitter(sb, http, private_key):
    req = signed(private_key)
    sb.faults = Faults(latency=0.15, jitter=0.05, seed=3)
    try:
        started = time.perf_counter()
        r = http.post(sb.token_url(), headers=req.headers, content=req.content)
        elapsed = time.perf_counter() - started
    finally:
        sb.faults = None
    # The lower bound proves the delay; the upper one only that it is not unbounded (busy cores).
    assert r.status_code == 200 and 0.15 <= elapsed < 5.0
    assert sb.journal[-1].latency_ms >= 150 and "latency fault" in sb.journal[-1].notes[-1]


def test_slow_answers_exceed_a_client_timeout(sb, http, private_key):
    req = signed(private_key)
    sb.faults = Faults(slow_seconds=0.5)
    try:
        with pytest.raises(httpx.ReadTimeout):
            http.post(sb.token_url(), headers=req.headers, content=req.content, timeout=0.1)
        deadline = time.monotonic() + 3
        while "slow-answer" not in "; ".join(sb.journal[-1].notes) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sb.faults = None
    notes = "; ".join(sb.journal[-1].notes)
    assert "slow-answer fault" in notes and "the client had gone" in notes


def test_faults_are_validated():
    for bad in ({"rate_429": 1.5}, {"rate_500": 0.6, "rate_503": 0.6}, {"latency": -1}, {"retry_after": -1}):
        with pytest.raises(ConfigError):
            Faults(**bad)
    assert "429 10%" in Faults(rate_429=0.1).describe() and Faults().describe() == "no faults"
    with pytest.raises(ConfigError):
        SandboxConfig(freshness_seconds=0)
    with pytest.raises(ConfigError):
        SandboxConfig(secret="short")


# --- lifecycle ------------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _sockets_on_port(port: int) -> list[str]:
    """This process's open sockets bound to or connected from ``port`` (Linux /proc)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[9] in ours:
                    found.append(line.strip())
    return found


def test_start_stop_leaves_nothing_behind(private_key, public_key):
    gc.collect()
    threads, fds = set(threading.enumerate()), _fds()
    sandbox = Sandbox(SandboxConfig(clock=frozen)).start()
    port = sandbox.port
    assert any(t.name == f"snapbook-sandbox-{port}" for t in threading.enumerate())
    assert _sockets_on_port(port)  # the listening socket (the probe works)
    with httpx.Client() as client:  # a keep-alive connection still open at stop()
        sandbox.register(CLIENT, public_key_bytes(public_key))
        req = signed(private_key)
        assert client.post(sandbox.token_url(), headers=req.headers, content=req.content).status_code == 200
        sandbox.stop()
        assert not sandbox.running
        with pytest.raises(httpx.TransportError):
            client.post(f"http://127.0.0.1:{port}/", timeout=2)
    gc.collect()
    assert set(threading.enumerate()) == threads
    assert _sockets_on_port(port) == []
    # Other module sandboxes may close idle keep-alive connections meanwhile, never open any.
    assert _fds() <= fds
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port}{PATHS['payment']}", timeout=2)
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", port))  # the port is free again
    probe.close()
    sandbox.stop()  # twice is fine
    with pytest.raises(SnapbookError):
        _ = sandbox.base_url


def test_a_forgotten_sandbox_stops_when_collected():
    threads = set(threading.enumerate())
    sandbox = Sandbox().start()
    port = sandbox.port
    del sandbox
    gc.collect()
    assert set(threading.enumerate()) == threads
    assert _sockets_on_port(port) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_restart_and_register_while_running(private_key, public_key, http, tmp_path):
    sandbox = Sandbox(SandboxConfig(clock=frozen))
    for _ in range(2):
        with sandbox:
            req = signed(private_key)
            r = http.post(sandbox.token_url("snap"), headers=req.headers, content=req.content)
            assert r.json()["responseMessage"] == "Unauthorized. [Unknown client]"
            path = tmp_path / "public.pem"
            if not path.exists():
                save_public_key(public_key, path)
            sandbox.register(CLIENT, path)
            assert http.post(sandbox.token_url("snap"), headers=req.headers, content=req.content).status_code == 200
            sandbox.unregister(CLIENT)
    assert not sandbox.running and len(sandbox.journal) == 4


def test_register_refuses_a_private_key_and_bad_client_keys(private_key, public_key):
    sandbox = Sandbox()
    with pytest.raises(KeyKindError):
        sandbox.register(CLIENT, private_key)
    for bad in ("", " MCP", "MC\nP"):
        with pytest.raises(SnapbookError):
            sandbox.register(bad, public_key)


def test_busy_port_is_a_config_error():
    with Sandbox() as first, pytest.raises(ConfigError, match="Cannot listen"):
        Sandbox(port=first.port).start()


def test_works_inside_a_running_event_loop(private_key, public_key):
    threads = set(threading.enumerate())

    async def main() -> int:
        asyncio.get_running_loop()  # like a Jupyter kernel
        with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
            async with httpx.AsyncClient() as client:
                req = signed(private_key)
                r = await client.post(sandbox.token_url(), headers=req.headers, content=req.content)
                return r.status_code

    assert asyncio.run(main()) == 200
    assert set(threading.enumerate()) == threads


def test_in_process_asgi(private_key, public_key):
    app = create_app(SandboxConfig(clock=frozen), clients={CLIENT: public_key})

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            req = signed(private_key)
            return await client.post(req.path, headers=req.headers, content=req.content)

    r = asyncio.run(main())
    assert r.status_code == 200 and len(app.state.provider.journal) == 1


def test_package_root_exports_are_lazy():
    code = (
        "import sys, snapbook; assert 'starlette' not in sys.modules and 'uvicorn' not in sys.modules; "
        "snapbook.Sandbox; assert 'uvicorn' in sys.modules; "
        "from snapbook import Faults, SandboxConfig; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ok"


# --- the command line -----------------------------------------------------------------


def test_cli_sandbox_serves_and_prints_one_masked_line_per_request(tmp_path, private_key, public_key):
    pem = tmp_path / "public.pem"
    save_public_key(public_key, pem)
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapbook", "sandbox", "--port", "0", "--register", f"{CLIENT}={pem}", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # never let a blocked readline() hang the suite
    watchdog.start()
    try:
        first = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first + proc.stderr.read()
        base = match.group(1)
        while "Press Ctrl+C" not in proc.stdout.readline():
            pass
        ts = make_timestamp()
        headers = signed_headers(private_key, CLIENT, ts)
        ok = httpx.post(base + PATHS["payment"], headers=headers, json=BODY, timeout=5)
        assert ok.status_code == 200
        bad = httpx.post(base + PATHS["snap"], headers={**headers, "X-CLIENT-KEY": "NOPE"}, json=BODY, timeout=5)
        assert bad.status_code == 401
        colon = {**headers, "X-SIGNATURE": sign(private_key, f"{CLIENT}:{ts}")}
        assert httpx.post(base + PATHS["snap"], headers=colon, json=BODY, timeout=5).status_code == 401
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        watchdog.cancel()
    assert proc.returncode == 0, err
    assert f"POST {PATHS['payment']} client={CLIENT} 200 2007300" in lines[0]
    assert "POST /v1.0/access-token/b2b client=NOPE 401 4017300" in lines[1] and "not registered" in lines[1]
    assert "doctor:" in lines[2] and "':' instead of '|'" in lines[2], lines[2]
    assert "stopped after 3 request(s): 1 accepted, 2 rejected" in out
    everything = first + "".join(lines) + out + err
    assert headers["X-SIGNATURE"] not in everything and ok.json()["accessToken"] not in everything


def test_cli_sandbox_refuses_bad_arguments(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "snapbook", "sandbox", "--port", "0", *args],
                              capture_output=True, text=True, timeout=20, check=False)

    r = run("--register", "no-equals-sign")
    assert r.returncode == 2 and "CLIENT_KEY=PUBLIC_KEY_FILE" in r.stderr
    r = run("--register", f"MCP=/{tmp_path}/missing.pem")
    assert r.returncode == 2 and r.stderr.startswith("snapbook: error:")
    r = run("--rate-429", "2")
    assert r.returncode == 2 and "between 0 and 1" in r.stderr


def test_endpoint_names_the_sandbox_environment(sb):
    for product in ("payment", "disbursement", "snap"):
        endpoint = sb.endpoint(product)
        assert endpoint.environment == "sandbox" and endpoint.product == product
        assert endpoint.url == sb.token_url(product)


@pytest.mark.parametrize("client_key", ["MCP00000001", "a", "ключ-клиента", "x" * 64])
def test_issued_tokens_are_exactly_what_pyjwt_makes(client_key):
    """The issuer prepares its HS512 key once for speed; its tokens must stay byte-identical to PyJWT's."""
    import jwt

    from snapbook.sandbox.tokens import TokenIssuer

    secret = "s" * 64
    issuer = TokenIssuer(secret, 900, frozen)
    token, claims = issuer.issue(client_key)
    assert token == jwt.encode(claims, secret, algorithm="HS512", headers={"typ": None})
    assert jwt.decode(token, secret, algorithms=["HS512"], options={"verify_exp": False})["sub"] == client_key


def test_one_issuer_s_successive_tokens_are_each_what_pyjwt_makes():
    """The HMAC is keyed once and copied per token: no token may carry state from the one before."""
    import jwt

    from snapbook.sandbox.tokens import TokenIssuer

    secret = b"k" * 64
    issuer = TokenIssuer(secret, 900, frozen)
    tokens = set()
    for client_key in ("MCP00000001", "MCP00000002", "MCP00000001"):
        token, claims = issuer.issue(client_key)
        assert token == jwt.encode(claims, secret, algorithm="HS512", headers={"typ": None})
        assert issuer.validate(token)["sub"] == client_key
        tokens.add(token)
    assert len(tokens) == 3  # each has its own jti


def test_counting_and_showing_the_journal_do_not_run_the_doctor_on_every_row(private_key, public_key, http):
    """A flood of bad signatures must not make len(), counts() or repr() run thousands of diagnoses."""
    calls = []
    with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
        for i in range(60):
            bad = signed(private_key, X_SIGNATURE=sign(private_key, f"{CLIENT}:{TS}"))
            http.post(sandbox.token_url(), headers=bad.headers, content=bad.content)
        raw = sandbox.journal.entries(diagnose=False)
        for entry in raw:
            original = entry.doctor
            object.__setattr__(entry, "doctor", lambda original=original: calls.append(1) or original())
        assert sandbox.journal.counts() == {"rejected": 60} and "60 requests" in repr(sandbox.journal)
        assert calls == []
        html = sandbox.journal._repr_html_()
        assert len(calls) == 50 and "doctor:" in html  # only the rows shown
        assert not sandbox.journal.to_dataframe(diagnose=False).notes.str.contains("doctor:").any()


# --- issue 14: what is snapbook's, not SNAP's, said where it is shown --------------------------


def test_openapi_example_signature_verifies_and_the_title_says_lenient():
    from snapbook.examples import load_vendor_example
    from snapbook.sandbox import openapi_document
    from snapbook.signing import string_to_sign, verify

    example = load_vendor_example()
    doc = openapi_document(SandboxConfig())
    params = {p["name"]: p for p in doc["paths"][PATHS["payment"]]["post"]["parameters"]}
    ts, client_key, signature = (params[n]["example"] for n in ("X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE"))
    assert verify(example.public_key, string_to_sign(client_key, ts), signature)
    assert signature != example.documented_signature  # the vendor's example does not verify
    info = doc["info"]
    assert "lenient" in info["title"] and "strict" not in info["title"]
    assert "strict" in info["description"] and "answers like a strict" not in info["description"]
    assert "(strict)" in openapi_document(SandboxConfig(strict=True))["info"]["title"]
    assert "4047300" in info["description"] and "sandbox code" in info["description"]


def test_cli_help_says_what_the_default_accepts_and_what_strict_changes():
    out = subprocess.run([sys.executable, "-m", "snapbook", "sandbox", "--help"], capture_output=True, text=True,
                         check=True).stdout
    flat = " ".join(out.split())
    assert "A strict, well-documented" not in flat
    assert "By default it is lenient" in flat and "--strict refuses those" in flat
    assert "Z, +hh:mm and .SSS stay accepted" in flat
    assert "--route-prefix PREFIX" in flat
    assert "snapbook's choice: SNAP names none" in flat


def test_freshness_window_is_called_snapbooks_default():
    with pytest.raises(ConfigError) as caught:
        SandboxConfig(freshness_seconds=-1)
    assert "snapbook's default" in caught.value.hint and "most providers" not in caught.value.hint


def test_readme_claim_list_matches_the_claims_the_sandbox_issues(http, private_key):
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "all passed" in x and "HS512 JWT" in x)
    listed = set(re.findall(r"`(\w+)`", line.split("HS512 JWT", 1)[1].split(")")[0]))
    with Sandbox() as sandbox:
        sandbox.register(CLIENT, private_key.public_key())
        r = http.post(sandbox.token_url("snap"), headers=signed_headers(private_key, CLIENT, make_timestamp()),
                      json=BODY)
    claims = jwt.decode(r.json()["accessToken"], options={"verify_signature": False})
    assert listed == set(claims) and "iss" in listed


def test_journal_marks_the_sandbox_codes_as_such(http):
    with Sandbox() as sandbox:
        http.post(sandbox.base_url + "/openapi/v1.0/access-token/b2b", json=BODY)
        sandbox.faults = Faults(rate_503=1.0)
        http.post(sandbox.token_url("snap"), json=BODY)
        lines = [entry.line() for entry in sandbox.journal]
    assert "404 4047300" in lines[0] and "sandbox code" in lines[0] and "Invalid Transaction Status" in lines[0]
    assert "503 5037300" in lines[1] and "sandbox code" in lines[1]


# Review of issue 14: a '.' or '..' segment was accepted, yet clients resolve dot segments before
# sending (httpx sends /v1.0/access-token/b2b for /openapi/../v1.0/...), so its routes were unreachable.
@pytest.mark.parametrize("prefix", ["/..", "/.", "/openapi/..", "/./openapi", "/a/../b", "/../"])
def test_a_route_prefix_with_a_dot_segment_is_a_config_error(prefix):
    with pytest.raises(ConfigError) as caught:
        SandboxConfig(route_prefixes=[prefix])
    assert "'.' or '..' segment" in caught.value.message and "/openapi" in caught.value.hint
    # Dots inside a segment are ordinary characters and stay allowed.
    assert SandboxConfig(route_prefixes=["/v1.0", "/.well-known", "/a..b"]).route_prefixes == (
        "/v1.0", "/.well-known", "/a..b"
    )


def test_cli_refuses_a_dot_segment_route_prefix_with_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "snapbook", "sandbox", "--port", "0", "--route-prefix", "/.."],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result
    assert "'/..'" in result.stderr and "segment" in result.stderr and "Traceback" not in result.stderr


def test_jti_is_a_version_4_uuid_as_uuid4_makes_it():
    """The issuer makes uuid4().hex without the UUID object: same form, version and variant, each one new."""
    import uuid

    from snapbook.sandbox.tokens import _uuid4_hex

    seen = set()
    for _ in range(2000):
        text = _uuid4_hex()
        parsed = uuid.UUID(hex=text)
        assert len(text) == 32 and text == parsed.hex and text.islower()
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 2000


@pytest.mark.parametrize("status", [200, 201, 400, 401, 404, 409, 429, 500, 503, 204, 304, 100])
@pytest.mark.parametrize(
    "content",
    [
        {"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "eyJ.x.y", "expiresIn": "900"},
        {"responseMessage": "Café ünïcode ✓", "list": [1, 2.5, None, True], "nested": {"a": ""}},
        {},
    ],
)
def test_the_usual_answer_is_exactly_starlette_s_json_response(status, content):
    """_JSONAnswer.snap writes the raw header list itself: same body, headers and status as JSONResponse."""
    from starlette.responses import JSONResponse

    from snapbook.sandbox.app import _JSONAnswer

    headers = {"X-TIMESTAMP": "2026-11-30T14:00:00+07:00", "X-CLIENT-KEY": "MCP00000001 é"}
    fast = _JSONAnswer.snap(content, status, headers["X-TIMESTAMP"], headers["X-CLIENT-KEY"])
    slow = JSONResponse(content, status_code=status, headers=headers)
    assert (fast.status_code, fast.body, fast.raw_headers) == (slow.status_code, slow.body, slow.raw_headers)
    assert fast.background is None and dict(fast.headers) == dict(slow.headers)


def test_journal_rows_share_the_texts_that_repeat_and_keep_their_own_values(private_key, public_key, http):
    """uvicorn decodes the method and path anew per request: rows keep one shared copy (less memory per row)."""
    with Sandbox(SandboxConfig(clock=frozen), clients={CLIENT: public_key}) as sandbox:
        for _ in range(2):
            req = signed(private_key)
            assert http.post(sandbox.token_url(), headers=req.headers, content=req.content).status_code == 200
        bad = signed(private_key, X_CLIENT_KEY="MCP-OTHER")
        http.post(sandbox.token_url("snap"), headers=bad.headers, content=bad.content)
        first, second, third = sandbox.journal.entries()
    for name in ("method", "path", "client_key", "response_code"):
        assert getattr(first, name) == getattr(second, name) and getattr(first, name) is getattr(second, name)
    assert first.jti != second.jti and first.token != second.token
    assert (third.path, third.client_key, third.response_code) == (PATHS["snap"], "MCP-OTHER", "4017300")


@pytest.mark.parametrize(
    ("body", "notes"),
    [
        (BODY, ()),
        ({"grantType": "client_credentials"}, ()),
        ({**BODY, "merchantId": "M1", "extra": 1}, ("unexpected body field(s) ignored: 'merchantId', 'extra'",)),
        ({**BODY, "grant_type": "client_credentials"}, ("body also has 'grant_type'; 'grantType' is used",)),
        (
            {"GrantType": "client_credentials", "additionalInfo": {}},
            ("grant type sent as 'GrantType' instead of 'grantType' (accepted; strict mode rejects it)",),
        ),
        (
            {"GrantType": "client_credentials", "scope": "x"},
            (
                "grant type sent as 'GrantType' instead of 'grantType' (accepted; strict mode rejects it)",
                "unexpected body field(s) ignored: 'scope'",
            ),
        ),
    ],
)
def test_accepted_bodies_carry_exactly_their_notes(public_key, private_key, body, notes):
    """Accepted with notes for what is unusual (an unknown field, another spelling), none for the usual body;
    the usual verdict is shared per client, and equal to one made afresh."""
    headers = signed_headers(private_key, CLIENT, TS)
    v = check_token_request(headers, json.dumps(body).encode(), clients={CLIENT: public_key}, now=T)
    assert v.accepted and v.client_key == CLIENT and v.notes == notes
    if not notes:
        from snapbook.sandbox.checks import Verdict

        assert v == Verdict(True, 200, "2007300", "Successful", (), CLIENT)
