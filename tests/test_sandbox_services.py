"""The sandbox's service routes over loopback HTTP (issue 12), signed independently of snapbook.

Signatures here are made with ``hmac``/``hashlib`` and ``cryptography`` directly, never with
snapbook's signers; the QR's CRC is checked with ``binascii.crc_hqx``; notifications are
received and verified by a plain ``http.server`` receiver on 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from _clock import HandClock
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from snapbook.errors import ConfigError, SnapResponseError
from snapbook.keys import save_public_key
from snapbook.sandbox import Faults, Sandbox, SandboxConfig
from snapbook.signing import JAKARTA

CLIENT = "MCP00000001"
PARTNER = "MCP2021110228"
SECRET = "o7sWnn0oGXF7y7JBGf18!"
GENERATE = "/v1.0/qr/qr-mpm-generate"
QUERY = "/v1.0/qr/qr-mpm-query"
BALANCE = "/api/v1.0/balance-inquiry"
T0 = datetime(2026, 1, 15, 10, 0, 0, tzinfo=JAKARTA)



def ts(when: datetime) -> str:
    return when.astimezone(JAKARTA).strftime("%Y-%m-%dT%H:%M:%S+07:00")


_ids = itertools.count(int(datetime.now().timestamp() * 1000))


def external_id() -> str:
    return str(next(_ids))


def minified(body: bytes) -> bytes:
    """Independent minify for these ASCII test bodies: parse and re-serialise compactly."""
    if not any(c in body for c in b" \t\r\n"):
        return body  # nothing to remove (and perhaps not JSON at all)
    return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


def hmac_signature(secret: str, method: str, path: str, token: str, body: bytes, timestamp: str) -> str:
    try:
        digest = hashlib.sha256(minified(body)).hexdigest()
    except ValueError:  # a body with spaces that is not JSON has no minified form: sign it as is
        digest = hashlib.sha256(body).hexdigest()
    text = f"{method}:{path}:{token}:{digest}:{timestamp}"
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha512).digest()).decode()


def rsa_signature(private_key, text: str) -> str:
    return base64.b64encode(private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


class Env:
    """A running sandbox with a frozen clock, a registered client and a token."""

    def __init__(self, sb: Sandbox | None, clock: HandClock, private_key, base_url: str | None = None) -> None:
        self.sb, self.clock, self.key = sb, clock, private_key
        self.base_url = base_url or sb.base_url  # type: ignore[union-attr]
        self.http = httpx.Client(timeout=30, trust_env=False)
        self.token = self.new_token()

    def new_token(self, client: str = CLIENT) -> str:
        stamp = ts(self.clock.now)
        headers = {
            "X-TIMESTAMP": stamp,
            "X-CLIENT-KEY": client,
            "X-SIGNATURE": rsa_signature(self.key, f"{client}|{stamp}"),
        }
        url = self.base_url + "/auth/merchants/v1.0/access-token/b2b"
        r = self.http.post(url, headers=headers, json={"grantType": "client_credentials"})
        assert r.status_code == 200, r.text
        return r.json()["accessToken"]

    def headers(self, path: str, body: bytes, **over: Any) -> dict[str, str]:
        stamp = over.pop("timestamp", ts(self.clock.now))
        token = over.pop("token", self.token)
        secret = over.pop("secret", SECRET)
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "X-TIMESTAMP": stamp,
            "X-SIGNATURE": hmac_signature(secret, "POST", path, token, body, stamp),
            "X-PARTNER-ID": PARTNER,
            "X-EXTERNAL-ID": external_id(),
            "CHANNEL-ID": "api" if path == BALANCE else "QR004",
        }
        for name, value in over.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return headers

    def call(self, path: str, body: Any, **over: Any) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(self.base_url + path, content=raw, headers=self.headers(path, raw, **over))


def generate_body(ref: str, callback: str = "http://127.0.0.1:9/callback", **extra: Any) -> dict[str, Any]:
    return {
        "partnerReferenceNo": ref,
        "amount": {"value": "10000.00", "currency": "IDR"},
        "additionalInfo": {"callbackUrl": callback},
        **extra,
    }


_refs = itertools.count(1)


def new_ref() -> str:
    return f"INV{next(_refs):06d}X{os.getpid()}"


@pytest.fixture
def env(private_key) -> Iterator[Env]:
    clock = HandClock(T0)
    config = SandboxConfig(clock=clock, notify_timeout=2.0, notify_backoff=0.05)
    with Sandbox(config) as sb:
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        e = Env(sb, clock, private_key)
        yield e
        e.http.close()


class Receiver:
    """A plain callback receiver on 127.0.0.1 that verifies the notification HMAC itself."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = json.dumps({"responseCode": "2005200" if status == 200 else "5005200"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/snap/callback"

    def verifies(self, item: dict[str, Any], secret: str = SECRET) -> bool:
        h = item["headers"]
        digest = hashlib.sha256(item["body"]).hexdigest()  # the body arrives minified
        text = f"{self.url}:{h['X-VERSION']}:{digest}:{h['X-TIMESTAMP']}"
        expected = base64.b64encode(
            hmac.new(secret.encode(), text.encode(), hashlib.sha512).digest()
        ).decode()
        return hmac.compare_digest(expected, h["X-SIGNATURE"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def tlv(payload: str) -> dict[str, str]:
    """An independent EMVCo TLV reader (top level only)."""
    out, i = {}, 0
    while i < len(payload):
        tag, length = payload[i : i + 2], int(payload[i + 2 : i + 4])
        out[tag] = payload[i + 4 : i + 4 + length]
        i += 4 + length
    assert i == len(payload)
    return out


# --- generate, query, pay, notification -------------------------------------------------------


def test_generate_answers_a_qris_whose_crc_an_independent_implementation_accepts(env):
    ref = new_ref()
    r = env.call(GENERATE, generate_body(ref, terminalId="T001"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["responseCode"] == "2004700" and data["partnerReferenceNo"] == ref and data["referenceNo"]
    assert data["terminalId"] == "T001"
    qr = data["qrContent"]
    assert len(qr) <= 512
    assert binascii.crc_hqx(qr[:-4].encode(), 0xFFFF) == int(qr[-4:], 16) and qr[-8:-4] == "6304"
    fields = tlv(qr)
    assert fields["00"] == "01" and fields["01"] == "12"  # dynamic
    assert tlv(fields["51"])["00"] == "ID.CO.QRIS.WWW"
    assert fields["53"] == "360" and fields["54"] == "10000" and fields["58"] == "ID"
    assert fields["59"] and fields["60"]
    assert data["additionalInfo"]["validityPeriod"] == "2026-01-15T10:15:00+07:00"  # default 15 minutes


def test_query_follows_the_qr_from_initiated_to_paid_with_a_verified_notification(env, receiver):
    ref = new_ref()
    made = env.call(GENERATE, generate_body(ref, callback=receiver.url)).json()
    query = {
        "originalReferenceNo": made["referenceNo"],
        "originalPartnerReferenceNo": ref,
        "serviceCode": "47",
    }
    before = env.call(QUERY, query)
    assert before.status_code == 200 and before.json()["responseCode"] == "2005100"
    assert before.json()["latestTransactionStatus"] == "01" and "paidTime" not in before.json()

    env.clock.now += timedelta(minutes=3)
    paid = env.sb.pay(made["referenceNo"], issuer="BANKX")
    assert paid["responseCode"] == "2005200" and paid["notification"]["delivered"] is True
    assert [a["httpStatus"] for a in paid["notification"]["attempts"]] == [200]

    [note] = receiver.received
    assert note["path"] == "/snap/callback" and receiver.verifies(note)
    assert note["headers"]["X-VERSION"] == "v1" and note["headers"]["Content-Type"] == "application/json"
    assert note["headers"]["X-TIMESTAMP"] == "2026-01-15T10:03:00+07:00"
    sent = json.loads(note["body"])
    assert note["body"] == minified(note["body"])
    assert sent["originalReferenceNo"] == made["referenceNo"] and sent["originalPartnerReferenceNo"] == ref
    assert sent["latestTransactionStatus"] == "00" and sent["amount"] == {
        "value": "10000.00",
        "currency": "IDR",
    }
    assert sent["additionalInfo"]["issuer"] == "BANKX" and sent["additionalInfo"]["merchantId"] == PARTNER
    assert not receiver.verifies(note, secret="another-secret")  # the receiver's check can fail

    after = env.call(QUERY, {"originalPartnerReferenceNo": ref, "serviceCode": "47"}).json()
    assert after["latestTransactionStatus"] == "00" and after["transactionStatusDesc"] == "Success"
    assert after["paidTime"] == "2026-01-15T10:03:00+07:00" and after["additionalInfo"]["issuer"] == "BANKX"

    rows = [e for e in env.sb.journal if e.product == "notification"]
    assert [(e.verdict, e.http_status, e.response_code, e.service) for e in rows] == [
        ("delivered", 200, "2005200", "52")
    ]
    with pytest.raises(SnapResponseError) as again:
        env.sb.pay(made["referenceNo"])
    assert again.value.response_code == "4045200"


def test_notification_is_retried_until_the_receiver_answers_200(env):
    failing = Receiver([500, 503])
    try:
        made = env.call(GENERATE, generate_body(new_ref(), callback=failing.url)).json()
        paid = env.sb.pay(made["referenceNo"])
    finally:
        failing.close()
    attempts = paid["notification"]["attempts"]
    assert [a["httpStatus"] for a in attempts] == [500, 503, 200] and paid["notification"]["delivered"]
    assert len(failing.received) == 3 and all(failing.verifies(n) for n in failing.received)
    rows = [e for e in env.sb.journal if e.product == "notification"]
    assert [e.verdict for e in rows] == ["undelivered", "undelivered", "delivered"]
    assert [e.response_code for e in rows] == ["5005200", "5005200", "2005200"]


def test_notification_gives_up_after_three_retries(env):
    failing = Receiver([500] * 10)
    try:
        made = env.call(GENERATE, generate_body(new_ref(), callback=failing.url)).json()
        paid = env.sb.pay(made["referenceNo"])
    finally:
        failing.close()
    assert paid["notification"]["delivered"] is False and len(paid["notification"]["attempts"]) == 4
    assert len(failing.received) == 4


def test_notification_to_a_dead_receiver_is_bounded_and_journaled(env):
    made = env.call(GENERATE, generate_body(new_ref(), callback="http://127.0.0.1:9/cb")).json()
    paid = env.sb.pay(made["referenceNo"])
    attempts = paid["notification"]["attempts"]
    assert len(attempts) == 4 and all(a["httpStatus"] == 0 and a["error"] for a in attempts)


def test_expiry_reads_07_via_the_injected_clock_and_cannot_be_paid(env):
    ref = new_ref()
    period = ts(env.clock.now + timedelta(minutes=30))
    made = env.call(GENERATE, generate_body(ref, validityPeriod=period)).json()
    assert made["additionalInfo"]["validityPeriod"] == period
    query = {"originalPartnerReferenceNo": ref, "serviceCode": "47"}
    env.clock.now += timedelta(minutes=29)
    env.token = env.new_token()
    assert env.call(QUERY, query).json()["latestTransactionStatus"] == "01"
    env.clock.now += timedelta(minutes=2)
    answer = env.call(QUERY, query).json()
    assert answer["latestTransactionStatus"] == "07" and answer["transactionStatusDesc"] == "Not found"
    with pytest.raises(SnapResponseError) as late:
        env.sb.pay(made["referenceNo"])
    assert late.value.response_code == "4045200" and "expired" in late.value.response_message


def test_query_of_an_unknown_qr_is_404_51_01(env):
    r = env.call(QUERY, {"originalPartnerReferenceNo": "NOPE1", "serviceCode": "47"})
    assert (r.status_code, r.json()["responseCode"]) == (404, "4045101")
    with pytest.raises(SnapResponseError) as unknown:
        env.sb.pay("NOSUCHREF")
    assert unknown.value.response_code == "4045201"


def test_a_pretty_printed_body_signed_over_its_minified_form_verifies(env):
    pretty = json.dumps(generate_body(new_ref()), indent=4).encode()
    assert b"\n    " in pretty
    r = env.call(GENERATE, pretty)
    assert r.status_code == 200, r.text


def test_a_signature_over_the_unminified_body_is_refused_and_the_doctor_names_it(env):
    pretty = json.dumps(generate_body(new_ref()), indent=2).encode()
    headers = env.headers(GENERATE, pretty)
    stamp, token = headers["X-TIMESTAMP"], env.token
    text = f"POST:{GENERATE}:{token}:{hashlib.sha256(pretty).hexdigest()}:{stamp}"
    headers["X-SIGNATURE"] = base64.b64encode(
        hmac.new(SECRET.encode(), text.encode(), hashlib.sha512).digest()
    ).decode()
    r = env.http.post(env.sb.base_url + GENERATE, content=pretty, headers=headers)
    assert (r.status_code, r.json()["responseCode"]) == (401, "4014700")
    assert r.json()["responseMessage"].startswith("Unauthorized. [Signature]")
    row = env.sb.journal[-1]
    doctor = [n for n in row.notes if n.startswith("doctor:")]
    assert doctor and "minif" in doctor[0].lower(), row.notes


def test_replay_of_an_external_id_is_409_conflict_and_a_new_day_is_a_new_slate(env):
    body = generate_body(new_ref())
    first = env.call(GENERATE, body, X_EXTERNAL_ID="4242")
    assert first.status_code == 200
    replay = env.call(GENERATE, generate_body(new_ref()), X_EXTERNAL_ID="4242")
    assert (replay.status_code, replay.json()["responseCode"], replay.json()["responseMessage"]) == (
        409,
        "4094700",
        "Conflict",
    )
    other_route = env.call(
        QUERY, {"originalPartnerReferenceNo": "X1", "serviceCode": "47"}, X_EXTERNAL_ID="4242"
    )
    assert other_route.json()["responseCode"] == "4095100"  # once per partner and day, whatever the route
    env.clock.now = T0.replace(hour=23, minute=59) + timedelta(minutes=2)  # 00:01 the next day in Jakarta
    env.token = env.new_token()
    assert env.call(GENERATE, generate_body(new_ref()), X_EXTERNAL_ID="4242").status_code == 200


def test_repeated_partner_reference_is_409_01_or_404_18_when_parameters_differ(env):
    ref = new_ref()
    assert env.call(GENERATE, generate_body(ref)).status_code == 200
    same = env.call(GENERATE, generate_body(ref))
    assert (same.status_code, same.json()["responseCode"]) == (409, "4094701")
    differ = env.call(GENERATE, {**generate_body(ref), "amount": {"value": "20000.00", "currency": "IDR"}})
    assert (differ.status_code, differ.json()["responseCode"], differ.json()["responseMessage"]) == (
        404,
        "4044718",
        "Inconsistent Request",
    )


# --- every refusal of the check list ----------------------------------------------------------

MANDATORY = [
    "Content-Type",
    "Authorization",
    "X-TIMESTAMP",
    "X-SIGNATURE",
    "X-PARTNER-ID",
    "X-EXTERNAL-ID",
    "CHANNEL-ID",
]


@pytest.mark.parametrize("header", MANDATORY)
def test_each_missing_mandatory_header_is_400_02_on_balance(env, header):
    body = json.dumps({"accountNo": "1234567890"}).encode()
    headers = env.headers(BALANCE, body)
    del headers[header]
    r = env.http.post(env.sb.base_url + BALANCE, content=body, headers=headers)
    if header == "Authorization":  # the standard's own case for a missing token
        assert (r.status_code, r.json()["responseCode"], r.json()["responseMessage"]) == (
            401,
            "4011103",
            "Token Not Found (B2B)",
        )
        return
    assert (r.status_code, r.json()["responseCode"]) == (400, "4001102")
    assert r.json()["responseMessage"] == f"Invalid Mandatory Field [{header}]"


CASES: list[tuple[str, dict[str, Any], Any, int, str, str]] = [
    (
        "content-type",
        {"Content_Type": "text/plain"},
        None,
        400,
        "4004701",
        "Invalid Field Format [Content-Type]",
    ),
    (
        "lenient-timestamp",
        {"timestamp": "2026-01-15T10:00:00+0700"},
        None,
        400,
        "4004701",
        "Invalid Field Format [X-TIMESTAMP]",
    ),
    (
        "space-timestamp",
        {"timestamp": "2026-01-15 10:00:00+07:00"},
        None,
        400,
        "4004701",
        "Invalid Field Format [X-TIMESTAMP]",
    ),
    (
        "partner-too-long",
        {"X_PARTNER_ID": "P" * 37},
        None,
        400,
        "4004701",
        "Invalid Field Format [X-PARTNER-ID]",
    ),
    (
        "external-not-numeric",
        {"X_EXTERNAL_ID": "abc123"},
        None,
        400,
        "4004701",
        "Invalid Field Format [X-EXTERNAL-ID]",
    ),
    (
        "external-too-long",
        {"X_EXTERNAL_ID": "1" * 37},
        None,
        400,
        "4004701",
        "Invalid Field Format [X-EXTERNAL-ID]",
    ),
    ("channel", {"CHANNEL_ID": "QR-004"}, None, 400, "4004701", "Invalid Field Format [CHANNEL-ID]"),
    (
        "stale",
        {"timestamp": "2026-01-15T09:50:00+07:00"},
        None,
        401,
        "4014700",
        "Unauthorized. [X-TIMESTAMP out of range]",
    ),
    ("not-bearer", {"Authorization": "Basic abc"}, None, 401, "4014701", "Invalid Token (B2B)"),
    ("tampered-token", {"token": "TAMPER"}, None, 401, "4014701", "Invalid Token (B2B)"),
    ("other-partner", {"X_PARTNER_ID": "MCP9999"}, None, 401, "4014700", "Unauthorized. [X-PARTNER-ID]"),
    ("wrong-secret", {"secret": "not-the-secret"}, None, 401, "4014700", "Unauthorized. [Signature]"),
    ("not-base64", {"X_SIGNATURE": "***"}, None, 401, "4014700", "Unauthorized. [Signature]"),
    ("not-json", {}, b"notjson", 400, "4004700", "Bad Request (body is not valid JSON)"),
    (
        "not-json-spaces",
        {"X_SIGNATURE": "AAAA"},
        b"not json",
        400,
        "4004700",
        "Bad Request (body is not JSON)",
    ),
    ("not-object", {}, b"[1,2]", 400, "4004700", "Bad Request"),
    (
        "no-ref",
        {},
        {
            "amount": {"value": "1.00", "currency": "IDR"},
            "additionalInfo": {"callbackUrl": "http://127.0.0.1/c"},
        },
        400,
        "4004702",
        "Invalid Mandatory Field [partnerReferenceNo]",
    ),
    ("ref-format", {}, generate_body("INV-1"), 400, "4004701", "Invalid Field Format [partnerReferenceNo]"),
    (
        "no-amount",
        {},
        {"partnerReferenceNo": "A1", "additionalInfo": {"callbackUrl": "http://127.0.0.1/c"}},
        400,
        "4004702",
        "Invalid Mandatory Field [amount]",
    ),
    (
        "amount-decimals",
        {},
        {**generate_body("A2"), "amount": {"value": "10000", "currency": "IDR"}},
        400,
        "4004701",
        "Invalid Field Format [amount.value]",
    ),
    (
        "amount-number",
        {},
        {**generate_body("A3"), "amount": {"value": 10000.0, "currency": "IDR"}},
        400,
        "4004701",
        "Invalid Field Format [amount.value]",
    ),
    (
        "currency",
        {},
        {**generate_body("A4"), "amount": {"value": "1.00", "currency": "USD"}},
        400,
        "4004701",
        "Invalid Field Format [amount.currency]",
    ),
    (
        "no-callback",
        {},
        {**generate_body("A5"), "additionalInfo": {}},
        400,
        "4004702",
        "Invalid Mandatory Field [additionalInfo.callbackUrl]",
    ),
    (
        "callback-relative",
        {},
        generate_body("A6", callback="/callback"),
        400,
        "4004701",
        "Invalid Field Format [additionalInfo.callbackUrl]",
    ),
    (
        "callback-remote",
        {},
        generate_body("A7", callback="https://merchant.example/callback"),
        400,
        "4004701",
        "Invalid Field Format [additionalInfo.callbackUrl]",
    ),
    (
        "validity-short",
        {},
        {**generate_body("A8"), "validityPeriod": "2026-01-15T10:05:00+07:00"},
        400,
        "4004701",
        "Invalid Field Format [validityPeriod]",
    ),
    (
        "validity-long",
        {},
        {**generate_body("A9"), "validityPeriod": "2026-01-15T12:00:00+07:00"},
        400,
        "4004701",
        "Invalid Field Format [validityPeriod]",
    ),
    (
        "terminal",
        {},
        {**generate_body("A10"), "terminalId": "T" * 17},
        400,
        "4004701",
        "Invalid Field Format [terminalId]",
    ),
]


@pytest.mark.parametrize(
    "over, body, status, code, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_refusal_of_generate(env, over, body, status, code, message):
    if over.get("token") == "TAMPER":
        over = {**over, "token": env.token[:-4] + ("AAAA" if not env.token.endswith("AAAA") else "BBBB")}
    r = env.call(GENERATE, body if body is not None else generate_body(new_ref()), **over)
    assert (r.status_code, r.json()["responseCode"]) == (status, code), r.text
    assert r.json()["responseMessage"].startswith(message)
    assert r.headers["X-TIMESTAMP"].endswith("+07:00")
    row = env.sb.journal[-1]
    assert row.verdict == "rejected" and row.service == "47" and row.response_code == code


def test_an_expired_token_and_one_from_another_sandbox_are_invalid(env, private_key):
    with Sandbox(SandboxConfig(clock=env.clock)) as other:
        other.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        foreign = Env(other, env.clock, private_key).token
    r = env.call(GENERATE, generate_body(new_ref()), token=foreign)
    assert (r.status_code, r.json()["responseCode"]) == (401, "4014701")
    env.clock.now += timedelta(seconds=901)
    r = env.call(GENERATE, generate_body(new_ref()))
    assert (r.status_code, r.json()["responseCode"]) == (401, "4014701") and "expired" in r.json()[
        "responseMessage"
    ]


def test_service_routes_take_milliseconds_and_z_but_no_lenient_extras_even_in_lenient_mode(env):
    for stamp in ("2026-01-15T10:00:00.123+07:00", "2026-01-15T03:00:00Z"):
        assert env.call(GENERATE, generate_body(new_ref()), timestamp=stamp).status_code == 200
    assert not env.sb.config.strict


def test_an_oversized_body_is_400_47_00(env):
    big = json.dumps({**generate_body(new_ref()), "pad": "x" * 20_000}).encode()
    r = env.call(GENERATE, big)
    assert (r.status_code, r.json()["responseCode"]) == (400, "4004700")


def test_remote_callbacks_are_accepted_only_when_allowed(private_key):
    clock = HandClock(T0)
    with Sandbox(SandboxConfig(clock=clock, allow_remote_callbacks=True)) as sb:
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        e = Env(sb, clock, private_key)
        r = e.call(GENERATE, generate_body(new_ref(), callback="https://merchant.example/callback"))
        assert r.status_code == 200, r.text  # accepted; never paid here, so nothing is sent anywhere


# --- asymmetric, Senmo balance, not served ----------------------------------------------------


def test_the_asymmetric_signature_is_accepted_on_payment_routes_without_authorization(env, private_key):
    body = json.dumps(generate_body(new_ref())).encode()
    stamp = ts(env.clock.now)
    text = f"POST:{GENERATE}:{hashlib.sha256(minified(body)).hexdigest()}:{stamp}"
    good = env.headers(GENERATE, body, Authorization=None, X_SIGNATURE=rsa_signature(private_key, text))
    r = env.http.post(env.sb.base_url + GENERATE, content=body, headers=good)
    assert r.status_code == 200, r.text
    bad = {**good, "X-SIGNATURE": rsa_signature(private_key, text + "x"), "X-EXTERNAL-ID": external_id()}
    r = env.http.post(env.sb.base_url + GENERATE, content=body, headers=bad)
    assert (r.status_code, r.json()["responseCode"]) == (401, "4014700")
    stranger = {**good, "X-PARTNER-ID": "NOBODY", "X-EXTERNAL-ID": external_id()}
    r = env.http.post(env.sb.base_url + GENERATE, content=body, headers=stranger)
    assert (r.status_code, r.json()["responseMessage"]) == (401, "Unauthorized. [Unknown partner]")


def test_senmo_balance_inquiry(env):
    r = env.call(BALANCE, {"accountNo": "1234567890", "balanceType": "cash", "partnerReferenceNo": "B1"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["responseCode"] == "2001100" and data["partnerReferenceNo"] == "B1"
    assert data["accountInfos"][0]["availableBalance"] == {"value": "100000000.00", "currency": "IDR"}
    r = env.call(BALANCE, {"accountNo": "1234567890"}, CHANNEL_ID="QR004")
    assert (r.status_code, r.json()["responseMessage"]) == (400, "Invalid Field Format [CHANNEL-ID]")
    r = env.call(BALANCE, {"accountNo": "1234567890", "balanceType": ["cash"]})
    assert (r.status_code, r.json()["responseCode"]) == (400, "4001101")
    r = env.call(BALANCE, {"balanceType": "cash"})
    assert (r.status_code, r.json()["responseCode"]) == (400, "4001102")


def test_senmo_never_takes_the_asymmetric_signature(env, private_key):
    body = b'{"accountNo":"1234567890"}'
    stamp = ts(env.clock.now)
    text = f"POST:{BALANCE}:{hashlib.sha256(body).hexdigest()}:{stamp}"
    headers = env.headers(BALANCE, body, Authorization=None, X_SIGNATURE=rsa_signature(private_key, text))
    r = env.http.post(env.sb.base_url + BALANCE, content=body, headers=headers)
    assert (r.status_code, r.json()["responseCode"]) == (401, "4011103")


def test_a_client_without_a_secret_cannot_make_service_calls(private_key):
    clock = HandClock(T0)
    with Sandbox(SandboxConfig(clock=clock)) as sb:
        sb.register(CLIENT, private_key.public_key(), partner_id=PARTNER)
        e = Env(sb, clock, private_key)
        r = e.call(GENERATE, generate_body(new_ref()))
    assert (r.status_code, r.json()["responseCode"]) == (401, "4014700")
    assert "no client secret" in r.json()["responseMessage"]


@pytest.mark.parametrize(
    "path, code",
    [
        ("/api/v1.2/transfer-interbank", "4041800"),
        ("/v1.0/qr/qr-mpm-refund", "4047800"),
        ("/v1.0/debit/payment-host-to-host", "4040000"),
    ],
)
def test_other_service_paths_are_not_served_and_the_answer_lists_what_is(env, path, code):
    r = env.http.post(env.sb.base_url + path, json={})
    assert (r.status_code, r.json()["responseCode"]) == (404, code)
    assert r.json()["responseMessage"] == "Not Found. [Not served by this sandbox]"
    served = r.json()["additionalInfo"]["served"]
    assert (
        f"POST {GENERATE}" in served and f"POST {BALANCE}" in served and "POST /sandbox/v1.0/qr/pay" in served
    )


# --- journal, secrets, faults -----------------------------------------------------------------


def test_journal_rows_carry_service_external_id_and_reference_with_secrets_masked(env):
    ref = new_ref()
    r = env.call(GENERATE, generate_body(ref), X_EXTERNAL_ID="777001")
    assert r.status_code == 200
    row = env.sb.journal[-1]
    assert (row.service, row.external_id, row.partner_reference_no, row.client_key) == (
        "47",
        "777001",
        ref,
        CLIENT,
    )
    df = env.sb.journal.to_dataframe()
    text = df.to_csv() + "\n".join(e.line() for e in env.sb.journal) + repr(env.sb.provider.service_clients)
    assert SECRET not in text and env.token not in text
    assert r.request.headers["X-SIGNATURE"] not in text
    assert "service=47 external_id=777001" in row.line()


@pytest.mark.parametrize(
    "kind, status, code",
    [
        ("rate_429", 429, "4294700"),
        ("rate_500", 500, "5004700"),
        ("rate_503", 503, "5034700"),
        ("rate_504", 504, "5044700"),
    ],
)
def test_faults_cover_the_service_routes(env, kind, status, code):
    env.sb.faults = Faults(**{kind: 1.0})
    r = env.call(GENERATE, generate_body(new_ref()))
    assert (r.status_code, r.json()["responseCode"]) == (status, code)
    if status == 429:
        assert r.headers["Retry-After"] == "1"
    assert env.sb.journal[-1].verdict == "fault" and env.sb.journal[-1].service == "47"


def test_drop_and_latency_faults_cover_the_service_routes(env):
    env.sb.faults = Faults(rate_drop=1.0)
    with pytest.raises(httpx.TransportError):
        env.call(BALANCE, {"accountNo": "1"})
    assert env.sb.journal[-1].http_status == 0 and env.sb.journal[-1].service == "11"
    env.sb.faults = Faults(latency=0.3)
    r = env.call(BALANCE, {"accountNo": "1"})
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3


# --- registration and CLI ---------------------------------------------------------------------


def test_register_refuses_bad_secrets_and_shared_partner_ids(private_key):
    sb = Sandbox()
    for bad in ("", " padded\n", 42):
        with pytest.raises(ConfigError):
            sb.register(CLIENT, private_key.public_key(), secret=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id="x" * 37)
    sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
    with pytest.raises(ConfigError, match="already registered"):
        sb.register("MCP00000002", private_key.public_key(), secret=SECRET, partner_id=PARTNER)
    assert sb.provider.service_clients[CLIENT].partner_id == PARTNER
    assert SECRET not in repr(sb.provider.service_clients)


def test_cli_registers_secrets_from_env_lists_routes_and_pays(private_key, tmp_path, receiver):
    pub = tmp_path / "pub.pem"
    save_public_key(private_key.public_key(), pub)
    env = {**os.environ, "SANDBOX_TEST_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapbook", "sandbox", "--port", "0", "--register", f"{CLIENT}={pub}",
         "--client-secret", f"{CLIENT}=SANDBOX_TEST_SECRET", "--partner-id", f"{CLIENT}={PARTNER}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        banner = []
        for line in proc.stdout:  # type: ignore[union-attr]
            banner.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        text = "".join(banner)
        base = text.split("listening on ", 1)[1].split()[0]
        for path in (GENERATE, QUERY, BALANCE, "/sandbox/v1.0/qr/pay"):
            assert f"{base}{path}" in text
        assert f"partner {PARTNER}" in text and "$SANDBOX_TEST_SECRET" in text and SECRET not in text
        e = Env(None, HandClock(datetime.now(JAKARTA)), private_key, base_url=base)
        made = e.call(GENERATE, generate_body(new_ref(), callback=receiver.url)).json()
        pay = [
            sys.executable,
            "-m",
            "snapbook",
            "sandbox-pay",
            "--url",
            base,
            made["referenceNo"],
            "--issuer",
            "BANKX",
        ]
        done = subprocess.run(pay, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "attempt 1: HTTP 200 2005200" in done.stdout and done.stdout.rstrip().endswith("delivered")
        assert len(receiver.received) == 1 and receiver.verifies(receiver.received[0])
        again = subprocess.run(pay, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert again.returncode == 1 and "404 4045200" in again.stdout
        e.http.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the OpenAPI document matches what the routes really answer -------------------------------


def test_real_answers_and_the_notification_match_the_documented_schemas(env, receiver):
    """schemathesis cannot sign with HMAC, so the 200 bodies are checked here against the document."""
    import jsonschema

    doc = env.http.get(env.sb.base_url + "/openapi.json").json()
    components = doc["components"]["schemas"]

    def check(instance: Any, name: str) -> None:
        # the component, with the components beside it so any "#/components/..." $ref resolves
        jsonschema.validate(instance, {"components": doc["components"], **components[name]})

    ref = new_ref()
    made = env.call(GENERATE, generate_body(ref, callback=receiver.url, terminalId="T1")).json()
    check(made, "QrGenerateResponse")
    query = {"originalPartnerReferenceNo": ref, "serviceCode": "47"}
    check(env.call(QUERY, query).json(), "QrQueryResponse")
    check(env.sb.pay(made["referenceNo"]), "QrPayResponse")
    check(json.loads(receiver.received[0]["body"]), "QrNotification")
    check(env.call(QUERY, query).json(), "QrQueryResponse")
    check(env.call(BALANCE, {"accountNo": "1", "partnerReferenceNo": "R1"}).json(), "BalanceInquiryResponse")
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        check({"responseCode": "2004700"}, "QrGenerateResponse")
    post = doc["paths"][GENERATE]["post"]
    assert "paymentNotification" in post["callbacks"]
    assert {p["name"] for p in post["parameters"]} == {
        "X-TIMESTAMP",
        "X-SIGNATURE",
        "X-PARTNER-ID",
        "X-EXTERNAL-ID",
        "CHANNEL-ID",
    }
    assert set(post["responses"]) == {"200", "400", "401", "404", "409", "429", "500", "503", "504"}
    assert doc["paths"][BALANCE]["post"]["security"] == [{"bearer": []}]


def test_parse_code_reads_the_not_served_answer_as_a_sandbox_code_and_a_provider_one_as_standard():
    from snapbook.codes import parse_code

    assert parse_code("4041800", "Not Found. [Not served by this sandbox]").origin == "sandbox"
    assert parse_code("4041800", "Invalid Transaction Status").origin == "standard"


def test_the_external_id_ledger_forgets_days_before_yesterday_and_stays_bounded():
    from snapbook.sandbox.external_ids import ExternalIds

    ledger = ExternalIds(max_ids=5)
    assert ledger.claim("P", "1", T0) and not ledger.claim("P", "1", T0) and ledger.claim("Q", "1", T0)
    assert ledger.claim("P", "1", T0 + timedelta(days=1))  # a new Jakarta day
    assert not ledger.claim("P", "1", T0 + timedelta(days=1))
    ledger.claim("P", "2", T0 + timedelta(days=2))  # the day before yesterday is forgotten
    assert len(ledger) == 2
    for i in range(20):
        ledger.claim("P", str(100 + i), T0 + timedelta(days=2))
    assert len(ledger) == 5
    # 23:59 and 00:01 Jakarta time are two days, whatever the offset the clock uses
    late = datetime(2026, 1, 15, 16, 59, tzinfo=timezone.utc)  # 23:59 WIB
    fresh = ExternalIds()
    assert fresh.claim("P", "9", late) and fresh.claim("P", "9", late + timedelta(minutes=2))


# --- notification delivery against hostile receivers (bounded in time and memory) -------------


class _HostileReceiver:
    """A raw-socket receiver on 127.0.0.1: 'silent' never answers, 'huge' streams a 50 MB answer."""

    def __init__(self, mode: str) -> None:
        import socket

        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/cb"
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if self.mode == "huge":
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
                    )
                    chunk = b"[" * 65536
                    for _ in range(800):  # at most 50 MB, and the sender stops reading long before
                        if self.stop.is_set():
                            break
                        conn.sendall(chunk)
                else:
                    self.stop.wait(10)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_delivery_to_a_receiver_that_never_answers_is_bounded_per_attempt():
    import asyncio
    import time

    from snapbook.sandbox.notify import deliver

    silent = _HostileReceiver("silent")
    try:
        started = time.monotonic()
        outcome = asyncio.run(
            deliver(silent.url, b"{}", b"secret", clock=lambda: T0, timeout=0.3, retries=2, backoff=0.01)
        )
        took = time.monotonic() - started
    finally:
        silent.close()
    assert not outcome.delivered and len(outcome.attempts) == 3 and silent.accepted == 3
    assert all(a.http_status == 0 and "no answer within 0.3 s" in a.error for a in outcome.attempts)
    assert took < 3  # 3 x 0.3 s plus backoff, not the receiver's 10 s


def test_delivery_reads_a_huge_answer_only_up_to_its_bound():
    import asyncio

    from snapbook.sandbox.notify import MAX_ANSWER_BYTES, _read_bounded, deliver

    huge = _HostileReceiver("huge")
    try:
        outcome = asyncio.run(deliver(huge.url, b"{}", b"secret", clock=lambda: T0, timeout=5, retries=0))
    finally:
        huge.close()
    [attempt] = outcome.attempts
    assert outcome.delivered and attempt.http_status == 200 and attempt.response_code == ""

    pulled = []

    async def endless():
        while True:  # a receiver that never stops sending
            pulled.append(1)
            yield b"x" * 4096

    async def read() -> bytes:
        response = httpx.Response(200, stream=_AsyncStream(endless()))
        return await _read_bounded(response)

    data = asyncio.run(read())
    assert len(data) == MAX_ANSWER_BYTES and len(pulled) <= MAX_ANSWER_BYTES // 4096 + 1


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, gen) -> None:
        self.gen = gen

    async def __aiter__(self):
        async for chunk in self.gen:
            yield chunk


def test_hostile_service_requests_never_get_a_5xx_and_always_snap_json(env):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)
    header_names = st.sampled_from(
        [
            "Authorization",
            "X-TIMESTAMP",
            "X-SIGNATURE",
            "X-PARTNER-ID",
            "X-EXTERNAL-ID",
            "CHANNEL-ID",
            "Content-Type",
        ]
    )
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
        max_leaves=8,
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from([GENERATE, QUERY, BALANCE]),
        st.dictionaries(header_names, text, max_size=7),
        json_values,
        st.booleans(),
    )
    def check(path: str, over: dict[str, str], data: Any, keep_valid_headers: bool) -> None:
        raw = json.dumps(data).encode()
        headers = env.headers(path, raw) if keep_valid_headers else {}
        headers.update(over)
        r = env.http.post(env.sb.base_url + path, content=raw, headers=headers)
        assert r.status_code < 500, (path, headers, raw, r.text)
        body = r.json()
        assert str(r.status_code) == body["responseCode"][:3] and body["responseMessage"]
        assert r.headers["X-TIMESTAMP"]

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(json_values)
    def pay(data: Any) -> None:
        r = env.http.post(env.sb.base_url + "/sandbox/v1.0/qr/pay", json=data)
        assert r.status_code in (400, 404) and r.json()["responseCode"][:3] == str(r.status_code)

    check()
    pay()
    assert env.sb.journal.counts().get("error", 0) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--client-secret", f"{CLIENT}=SNAPBOOK_TEST_UNSET_VAR"], "SNAPBOOK_TEST_UNSET_VAR is not set"),
        (["--client-secret", "OTHER=SANDBOX_TEST_SECRET"], "not registered"),
        (["--client-secret", "no-equals-sign"], "is not CLIENT_KEY=ENV_VAR"),
        (["--partner-id", f"{CLIENT}=" + "P" * 37], "not an X-PARTNER-ID"),
    ],
)
def test_cli_refuses_bad_service_options_with_one_line_and_exit_2(private_key, tmp_path, args, message):
    pub = tmp_path / "pub.pem"
    save_public_key(private_key.public_key(), pub)
    env = {k: v for k, v in os.environ.items() if k != "SNAPBOOK_TEST_UNSET_VAR"}
    env["SANDBOX_TEST_SECRET"] = SECRET
    done = subprocess.run(
        [sys.executable, "-m", "snapbook", "sandbox", "--port", "0", "--register", f"{CLIENT}={pub}", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1 and SECRET not in done.stderr + done.stdout


def test_a_token_whose_client_is_no_longer_registered_is_invalid(env, other_private_key):
    env.sb.register("MCP00000002", other_private_key.public_key(), secret="another-secret", partner_id="P2")
    stamp = ts(env.clock.now)
    headers = {
        "X-TIMESTAMP": stamp,
        "X-CLIENT-KEY": "MCP00000002",
        "X-SIGNATURE": rsa_signature(other_private_key, f"MCP00000002|{stamp}"),
    }
    token = env.http.post(
        env.sb.token_url(), headers=headers, json={"grantType": "client_credentials"}
    ).json()["accessToken"]
    body = {"accountNo": "1"}
    assert env.call(BALANCE, body, token=token, secret="another-secret", X_PARTNER_ID="P2").status_code == 200
    env.sb.unregister("MCP00000002")
    r = env.call(BALANCE, body, token=token, secret="another-secret", X_PARTNER_ID="P2")
    assert (r.status_code, r.json()["responseCode"]) == (401, "4011101")
    assert "not registered" in r.json()["responseMessage"]


def test_a_slow_notification_never_blocks_other_requests(env):
    import time

    silent = _HostileReceiver("silent")
    try:
        made = env.call(GENERATE, generate_body(new_ref(), callback=silent.url)).json()
        outcome: dict[str, Any] = {}
        payer = threading.Thread(target=lambda: outcome.update(env.sb.pay(made["referenceNo"])))
        payer.start()
        time.sleep(0.3)  # the delivery is now waiting on the silent receiver
        assert payer.is_alive()
        started = time.monotonic()
        r = env.call(BALANCE, {"accountNo": "1"})
        answered_in = time.monotonic() - started
        payer.join(timeout=30)
    finally:
        silent.close()
    assert r.status_code == 200 and answered_in < 1.0  # while the delivery still waits (2 s per attempt)
    assert outcome["notification"]["delivered"] is False and len(outcome["notification"]["attempts"]) == 4


def test_calls_with_one_token_share_its_masked_text_in_the_journal_a_new_token_does_not(env):
    """A token serves every call for its 15 minutes: the rows keep one copy of its masked form."""
    for _ in range(2):
        assert env.call(BALANCE, {"accountNo": "1234567890"}).status_code == 200
    env.token = env.new_token()
    assert env.call(BALANCE, {"accountNo": "1234567890"}).status_code == 200
    first, second, third = (r for r in env.sb.journal.entries() if r.path == BALANCE)
    assert first.token == second.token and first.token is second.token and "…" in first.token
    assert third.token != first.token and third.jti != first.jti
