"""snapbook.client.service: signed service calls against a loopback endpoint that checks them on its own.

Tokens come from the real sandbox (``running_sandbox``); service calls go to
``tests/_service_server.py``, which recomputes every X-SIGNATURE with ``hmac``/``hashlib`` (or
``cryptography`` for RSA) over the exact path and bytes it received, never through snapbook.
No test resolves or contacts any host but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta

import httpx
import pytest
from _clock import HandClock
from _service_server import CHANNEL, GENERATE, PARTNER, SECRET, ServiceServer, expected_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from snapbook.client import (
    AsyncServiceClient,
    ExternalIdGenerator,
    RetryPolicy,
    ServiceAuth,
    ServiceClient,
    check_external_id,
    encode_body,
    external_id,
    parse_service_response,
    service_code_for,
)
from snapbook.errors import (
    ConfigError,
    ConnectionFailedError,
    InvalidResponseError,
    RequestTimeoutError,
    ServiceSignatureInputError,
    SnapbookError,
    SnapResponseError,
)
from snapbook.log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR
from snapbook.service_signing import MinifiedJson, sign_symmetric
from snapbook.signing import JAKARTA

CLIENT = "MCP00000001"  # the client key conftest's sandbox knows
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any attempt to resolve a real host (api.ifortepay.id, api.senmo.id, ...) fails the test."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise AssertionError(f"a test tried to resolve {name!r}; tests talk only to 127.0.0.1")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


class Clock(HandClock):
    """Real time at the start (the sandbox checks token timestamps), then moved only by the fake sleep."""

    def __init__(self) -> None:
        super().__init__(datetime.now(JAKARTA))

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 1.0))  # X-TIMESTAMP has whole seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def server():
    with ServiceServer() as srv:
        yield srv


def make_client(sb, srv, private_key, clock: Clock | None = None, **options) -> ServiceClient:
    clock = clock or Clock()
    options.setdefault("retry", RetryPolicy(base_delay=1.0, jitter=False))
    return ServiceClient(
        srv.base_url,
        CLIENT,
        private_key,
        SECRET,
        partner_id=PARTNER,
        channel_id=CHANNEL,
        token_url=sb.token_url(),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def service_rows(client):
    return [r for r in client.log.records if r.path and "access-token" not in r.path]


def token_rows(client):
    return [r for r in client.log.records if r.path and "access-token" in r.path]


BODY = {
    "partnerReferenceNo": "INV-1",
    "amount": {"value": "10000.00", "currency": "IDR"},
    "additionalInfo": {"callbackUrl": "https://merchant.example/cb/qris", "note": "café ✓", "empty": None},
}


# --- headers and signature --------------------------------------------------------------------


def test_headers_and_signature_over_the_exact_bytes(sb, server, private_key):
    with make_client(sb, server, private_key, origin="merchant.example") as client:
        answer = client.post(GENERATE, BODY)
        token = client.tokens.token.access_token
    seen = server.seen[-1]
    assert seen.signature_ok
    # The bytes sent: compact JSON, key order kept, UTF-8 as is, "/" not escaped, null kept.
    assert seen.body == json.dumps(BODY, separators=(",", ":"), ensure_ascii=False).encode()
    h = seen.headers
    assert h["Authorization"] == f"Bearer {token}"
    assert h["Content-Type"] == "application/json"
    assert h["X-PARTNER-ID"] == PARTNER and h["CHANNEL-ID"] == CHANNEL and h["ORIGIN"] == "merchant.example"
    assert _TS.fullmatch(h["X-TIMESTAMP"])
    assert re.fullmatch(r"\d{1,36}", h["X-EXTERNAL-ID"])
    assert h["X-SIGNATURE"] == expected_signature(SECRET, "POST", GENERATE, token, seen.body, h["X-TIMESTAMP"])
    assert answer.ok and answer.response_code == "2004700" and answer.service_code == "47"
    assert answer.external_id == h["X-EXTERNAL-ID"]
    assert answer.data["qrContent"].startswith("000201")


def test_query_string_and_percent_encoding_are_signed_as_sent(sb, server, private_key):
    path = "/v1.0/qr/qr-mpm-query?ref=a%20b&next=/x"
    with make_client(sb, server, private_key) as client:
        client.call("POST", path, {"originalPartnerReferenceNo": "INV-1"})
    assert server.seen[-1].path == path and server.seen[-1].signature_ok


def test_a_pretty_printed_body_is_sent_as_given_and_signed_minified(sb, server, private_key):
    body = b'{\n  "partnerReferenceNo": "INV 1",\n  "amount": {"value": "1.00", "currency": "IDR"}\n}'
    with make_client(sb, server, private_key) as client:
        client.post(GENERATE, body)
    assert server.seen[-1].body == body and server.seen[-1].signature_ok


def test_a_dict_body_is_sent_as_minified_json_which_signs_like_plain_bytes():
    """encode_body's MinifiedJson lets the signer skip its whitespace scan; the signature is the same."""
    body = {"customerDetail": {"name": "Budi Santoso", "note": "a : b, [c]"}, "v": [1, None]}
    sent = encode_body(body)
    assert type(sent) is MinifiedJson and encode_body(sent) is sent
    assert sent == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert type(encode_body(bytes(sent))) is bytes  # bytes given are sent as given (and scanned when signed)
    args = ("o7sWnn0oGXF7y7JBGf18!", "POST", GENERATE, "tok", "2020-12-18T10:55:00+07:00")
    assert sign_symmetric(*args[:4], sent, args[4]) == sign_symmetric(*args[:4], bytes(sent), args[4])
    assert sign_symmetric(*args[:4], sent, args[4]) == expected_signature(*args[:4], bytes(sent), args[4])


def test_a_body_that_cannot_be_signed_is_refused_before_sending(sb, server, private_key):
    with make_client(sb, server, private_key) as client:
        with pytest.raises(SnapbookError) as info:
            client.post(GENERATE, b"not json but with spaces")
    assert info.value.hint and server.seen == []


def test_asymmetric_signature_option(sb, server, private_key):
    server.public_key = private_key.public_key()
    with make_client(sb, server, private_key, signature="asymmetric") as client:
        client.post(GENERATE, BODY)
    assert server.seen[-1].signature_ok  # RSA over METHOD:path:hash:ts, no token in the string
    assert server.seen[-1].headers["Authorization"] == f"Bearer {server.seen[-1].token}"


def test_service_auth_signs_in_any_httpx_client(sb, server, private_key):
    """ServiceAuth is a plain httpx.Auth: a user's own client gets the same signed headers."""
    with make_client(sb, server, private_key) as client:
        token = client.get_token().access_token
    auth = ServiceAuth(SECRET, lambda: token, partner_id=PARTNER, channel_id=CHANNEL)
    with httpx.Client(auth=auth, trust_env=False) as http:
        r1 = http.post(server.base_url + GENERATE, content=b'{"a":"b"}')
        r2 = http.post(server.base_url + GENERATE + "?q=1", content=b'{"a":"c"}')
    assert r1.status_code == r2.status_code == 200
    assert [s.signature_ok for s in server.seen[-2:]] == [True, True]
    assert server.seen[-1].headers["X-EXTERNAL-ID"] != server.seen[-2].headers["X-EXTERNAL-ID"]


# --- the retry rule -------------------------------------------------------------------------


def test_429_is_retried_with_a_fresh_timestamp_signature_and_external_id(sb, server, private_key):
    server.plans.extend([("code", 429, "4294700", "Too Many Requests", {"Retry-After": "2"}), ("ok",)])
    with make_client(sb, server, private_key) as client:
        answer = client.post(GENERATE, BODY)
        rows = service_rows(client)
    first, second = server.seen
    assert first.signature_ok and second.signature_ok
    assert first.headers["X-TIMESTAMP"] != second.headers["X-TIMESTAMP"]
    assert first.headers["X-SIGNATURE"] != second.headers["X-SIGNATURE"]
    assert first.headers["X-EXTERNAL-ID"] != second.headers["X-EXTERNAL-ID"]
    assert answer.attempt == 2 and answer.external_id == second.headers["X-EXTERNAL-ID"]
    assert [(r.attempt, r.outcome, r.will_retry) for r in rows] == [(1, REFUSED, True), (2, SUCCESS, False)]


def test_an_explicit_external_id_is_kept_on_every_attempt(sb, server, private_key):
    server.plans.extend([("code", 429, "4294700", "Too Many Requests"), ("ok",)])
    with make_client(sb, server, private_key) as client:
        client.post(GENERATE, BODY, external_id="123456789012345678901234567890123456")
    assert {s.headers["X-EXTERNAL-ID"] for s in server.seen} == {"123456789012345678901234567890123456"}


def test_invalid_token_gets_one_new_token_and_one_more_call(sb, server, private_key):
    with make_client(sb, server, private_key) as client:
        first = client.get_token().access_token
        server.rejected_tokens.add(first)
        answer = client.post(GENERATE, BODY)
        second = client.tokens.token.access_token
        rows, tokens = service_rows(client), token_rows(client)
    assert first != second and answer.ok
    assert [s.token for s in server.seen] == [first, second]
    assert all(s.signature_ok for s in server.seen)  # the retry is signed over the new token
    assert len(tokens) == 2 and [r.response_code for r in rows] == ["4014701", "2004700"]


def test_invalid_token_twice_gives_up_after_one_refresh(sb, server, private_key):
    server.reject_all_tokens = True
    with make_client(sb, server, private_key) as client:
        with pytest.raises(SnapResponseError) as info:
            client.post(GENERATE, BODY)
        tokens = token_rows(client)
    assert info.value.response_code == "4014701" and "token" in info.value.hint.lower()
    assert len(server.seen) == 2 and len(tokens) == 2


@pytest.mark.parametrize("status, code", [(500, "5004700"), (502, "5024700"), (503, "5034700"), (504, "5044700")])
def test_a_post_is_not_retried_after_a_5xx(sb, server, private_key, status, code):
    server.plans.extend([("code", status, code, "Failure"), ("ok",)])
    with make_client(sb, server, private_key) as client:
        with pytest.raises(SnapResponseError) as info:
            client.post(GENERATE, BODY)
    assert len(server.seen) == 1
    assert "did not retry this POST" in info.value.hint and "partnerReferenceNo" in info.value.hint


def test_an_idempotent_call_is_retried_after_a_503(sb, server, private_key):
    server.plans.extend([("code", 503, "5034700", "Unavailable"), ("ok",)])
    with make_client(sb, server, private_key) as client:
        answer = client.call("GET", "/v1.0/qr/qr-mpm-query?ref=1")
    assert answer.ok and len(server.seen) == 2


@pytest.mark.parametrize("idempotent, sent", [(None, 1), (True, 2)])
def test_a_dropped_connection_retries_only_an_idempotent_call(sb, server, private_key, idempotent, sent):
    server.plans.extend([("drop",), ("ok",)])
    with make_client(sb, server, private_key) as client:
        if idempotent:
            assert client.post(GENERATE, BODY, idempotent=True).ok
        else:
            with pytest.raises(ConnectionFailedError) as info:
                client.post(GENERATE, BODY)
            assert "did not retry this POST" in info.value.hint
        rows = service_rows(client)
    assert len(server.seen) == sent
    assert rows[0].outcome == TRANSPORT_ERROR and rows[0].will_retry == bool(idempotent)


def test_a_post_is_not_retried_after_a_read_timeout(sb, server, private_key):
    server.plans.extend([("sleep", 1.5), ("ok",)])
    with make_client(sb, server, private_key, timeout=0.5) as client:
        client.get_token()
        with pytest.raises(RequestTimeoutError) as info:
            client.post(GENERATE, BODY)
    assert len(server.seen) == 1 and "did not retry" in info.value.hint


def test_a_post_is_retried_after_a_connect_error(sb, private_key):
    """Nothing listens at first; the (injected) backoff sleep starts the server on that port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = ServiceServer(port=port, start=False)
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if srv._httpd is None:
            srv.start()

    try:
        client = ServiceClient(
            srv.base_url, CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id=CHANNEL,
            token_url=sb.token_url(), clock=clock, sleep=sleep, retry=RetryPolicy(base_delay=1.0, jitter=False),
        )
        with client:
            answer = client.post(GENERATE, BODY)
            rows = service_rows(client)
    finally:
        srv.close()
    assert answer.ok and answer.attempt == 2 and len(srv.seen) == 1 and srv.seen[0].signature_ok
    assert rows[0].outcome == TRANSPORT_ERROR and rows[0].error_type == "ConnectionFailedError" and rows[0].will_retry


# --- log rows, masking, errors --------------------------------------------------------------------


def test_every_attempt_is_one_log_row_with_secrets_masked(sb, server, private_key):
    server.plans.extend([("code", 429, "4294700", "Too Many Requests"), ("ok",)])
    with make_client(sb, server, private_key) as client:
        client.post(GENERATE, BODY)
        token = client.tokens.token.access_token
        rows = service_rows(client)
        frame = client.log.to_dataframe()
    assert len(rows) == 2 == len(server.seen)
    for row, seen in zip(rows, server.seen):
        assert (row.service_code, row.method, row.path) == ("47", "POST", GENERATE)
        assert row.external_id == seen.headers["X-EXTERNAL-ID"]
        assert row.timestamp == seen.headers["X-TIMESTAMP"]
        assert row.signature.endswith(" chars)") and row.token is None
        assert row.url == server.base_url + GENERATE and row.client_key == CLIENT
        assert row.connect_ms is not None or row.attempt > 1  # a reused connection has no connect phase
        assert row.wait_ms is not None and row.latency_ms > 0
    assert [r.response_code for r in rows] == ["4294700", "2004700"]
    text = json.dumps([r.to_json() for r in client.log.records]) + frame.to_csv()
    assert token not in text and SECRET not in text
    assert not any(s.headers["X-SIGNATURE"] in text for s in server.seen)
    assert token_rows(client)[0].service_code == "73"


def test_reprs_hold_no_secret(sb, server, private_key):
    with make_client(sb, server, private_key) as client:
        answer = client.post(GENERATE, BODY)
        token = client.tokens.token.access_token
        request = client.prepare("POST", GENERATE, BODY, access_token=token)
        shown = repr(client) + repr(client.auth) + repr(request) + repr(answer) + answer._repr_html_()
    assert SECRET not in shown and token not in shown and request.signature not in shown


def test_an_echoed_token_is_masked_in_the_shown_answer(sb, server, private_key):
    with make_client(sb, server, private_key) as client:
        token = client.get_token().access_token
        answer = parse_service_response(
            200, {}, json.dumps({"responseCode": "2004700", "echo": f"Bearer {token}"}), secrets=(token,)
        )
    assert token not in json.dumps(answer.response_json()) and answer.data["echo"].endswith(token)


def test_hostile_text_in_a_refusal_is_escaped_and_masked(sb, server, private_key):
    long = "A" * 40
    server.plans.append(("code", 400, "4004701", f"Invalid Field Format [amount]\x1b[2J {long}"))
    with make_client(sb, server, private_key) as client:
        with pytest.raises(SnapResponseError) as info:
            client.post(GENERATE, BODY)
        row = service_rows(client)[0]
    text = str(info.value) + (row.response_message or "") + (row.error or "")
    assert "\x1b" not in text and long not in text
    assert info.value.response_code == "4004701" and "responseMessage" in info.value.hint


def test_too_large_an_answer_is_refused_through_the_shared_exchange(sb, server, private_key):
    server.plans.append(("big", 2 * 1024 * 1024))
    with make_client(sb, server, private_key) as client:
        with pytest.raises(InvalidResponseError) as info:
            client.post(GENERATE, BODY)
        row = service_rows(client)[0]
    assert "too large" in info.value.message and row.outcome == INVALID_RESPONSE
    assert len(server.seen) == 1


def test_a_dribbled_answer_hits_the_whole_attempt_deadline(sb, server, private_key):
    server.plans.append(("dribble", 0.2))
    with make_client(sb, server, private_key, deadline=1.0) as client:
        client.get_token()
        start = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            client.post(GENERATE, BODY)
        took = time.monotonic() - start
    assert took < 5.0 and len(server.seen) == 1


@pytest.mark.parametrize(
    "status, body, error",
    [
        (200, b"<html><title>Gateway</title></html>", InvalidResponseError),
        (200, b'{"referenceNo":"1"}', InvalidResponseError),
        (200, b"[1,2]", InvalidResponseError),
        (200, b'{"responseCode":"4044701","responseMessage":"Transaction Not Found"}', SnapResponseError),
        (502, b"", SnapResponseError),
        (409, b'{"responseCode":"4094700","responseMessage":"Conflict"}', SnapResponseError),
    ],
)
def test_answers_that_are_not_a_success(status, body, error):
    with pytest.raises(error) as info:
        parse_service_response(status, {}, body, method="POST", path=GENERATE)
    assert info.value.hint


def test_service_call_hints_name_the_service_rules():
    with pytest.raises(SnapResponseError) as conflict:
        parse_service_response(409, {}, b'{"responseCode":"4094700","responseMessage":"Conflict"}')
    assert "X-EXTERNAL-ID" in conflict.value.hint
    with pytest.raises(SnapResponseError) as sig:
        parse_service_response(401, {}, b'{"responseCode":"4014700","responseMessage":"Unauthorized. [Signature]"}')
    assert "HMAC-SHA512" in sig.value.hint and "client_key + '|'" not in sig.value.hint


def test_unusable_input_is_refused_before_any_network(sb, server, private_key):
    with make_client(sb, server, private_key) as client:
        client.get_token()
        for bad in (
            lambda: client.post(GENERATE, BODY, external_id="12ab"),
            lambda: client.post(GENERATE, BODY, external_id="1" * 37),
            lambda: client.post("v1.0/no-slash", BODY),
            lambda: client.call("PO ST", GENERATE, BODY),
            lambda: client.post(GENERATE, {"amount": float("nan")}),
        ):
            with pytest.raises((ConfigError, ServiceSignatureInputError)) as info:
                bad()
            assert info.value.hint
    assert server.seen == []


def test_options_are_checked_when_the_client_is_made(private_key):
    with pytest.raises(ConfigError):
        ServiceClient("sandbox", CLIENT, private_key, None, partner_id=PARTNER, channel_id=CHANNEL)
    with pytest.raises(ConfigError):
        ServiceClient("sandbox", CLIENT, private_key, SECRET, partner_id="MCP 1\n", channel_id=CHANNEL)
    with pytest.raises(ConfigError):
        ServiceClient("sandbox", CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id=CHANNEL,
                      signature="hmac")  # type: ignore[arg-type]


def test_vendor_names_aim_at_the_service_hosts_without_contacting_them(private_key):
    client = ServiceClient("payment-stage", CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id=CHANNEL)
    assert client.endpoint.base_url == "https://api-stage.ifortepay.id"
    assert client.tokens.endpoint.url.startswith("https://kronos-stage.ifortepay.id/")
    request = client.prepare("POST", GENERATE, BODY, access_token="tok")
    assert request.url == "https://api-stage.ifortepay.id" + GENERATE
    client.close()


# --- the async client -----------------------------------------------------------------------------


def test_async_client_signs_refreshes_and_logs(sb, server, private_key):
    clock = Clock()

    async def main():
        async with AsyncServiceClient(
            server.base_url, CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id=CHANNEL,
            token_url=sb.token_url(), clock=clock, sleep=clock.asleep,
        ) as client:
            first = (await client.get_token()).access_token
            server.rejected_tokens.add(first)
            a = await client.post(GENERATE, BODY)
            server.plans.append(("drop",))
            with pytest.raises(ConnectionFailedError):
                await client.post(GENERATE, BODY)
            return a, first, client.tokens.token.access_token, service_rows(client)

    answer, first, second, rows = asyncio.run(main())
    assert answer.ok and first != second
    assert [s.token for s in server.seen] == [first, second, second]
    assert all(s.signature_ok for s in server.seen)
    assert [r.outcome for r in rows] == [REFUSED, SUCCESS, TRANSPORT_ERROR]
    assert rows[-1].will_retry is False


# --- X-EXTERNAL-ID --------------------------------------------------------------------------------


def test_external_id_layout():
    at = datetime(2026, 1, 20, 23, 59, 59, 123456, tzinfo=JAKARTA)
    value = external_id(at, pid=4242, random_digits=7)
    assert value == "20260120235959123456" + "00004242" + "00000007"
    # The day is Jakarta's: 17:30 UTC is already the next day there.
    from datetime import timezone

    assert external_id(datetime(2026, 1, 20, 17, 30, tzinfo=timezone.utc), 1, 1).startswith("20260121")


@settings(max_examples=200, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)),
    pid=st.integers(min_value=0, max_value=2**32),
    rnd=st.integers(min_value=0, max_value=10**12),
)
def test_external_id_is_always_36_digits(at, pid, rnd):
    value = external_id(at.replace(tzinfo=JAKARTA), pid, rnd)
    assert len(value) == 36 and value.isdigit() and check_external_id(value) == value


def test_a_generator_never_repeats_even_with_a_frozen_or_rewound_clock():
    times = iter([datetime(2026, 1, 20, 10, tzinfo=JAKARTA)] * 500 + [datetime(2026, 1, 20, 9, tzinfo=JAKARTA)] * 500)
    gen = ExternalIdGenerator(clock=lambda: next(times), pid=lambda: 7, rng=__import__("random").Random(0))
    values = [gen() for _ in range(1000)]
    assert len(set(values)) == 1000 and values == sorted(values)


_CHILD = """
import sys
from snapbook.client import ExternalIdGenerator
gen = ExternalIdGenerator()
print("\\n".join(gen() for _ in range(int(sys.argv[1]))))
"""


def test_external_ids_are_unique_across_processes():
    """Several processes at once (and one after the other, as restarts) never produce the same id."""
    n = 2000
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(n)], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    restarted = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True, timeout=60)
    values = [v for out in outputs for v in out] + restarted.stdout.split()
    values += [ExternalIdGenerator()() for _ in range(n)]
    assert len(values) == 5 * n
    assert all(v.isdigit() and len(v) <= 36 for v in values)
    assert len(set(values)) == len(values)


def test_check_external_id():
    assert check_external_id("1") == "1"
    for bad in ("", "1" * 37, "12a", " 12", "١٢", None):
        with pytest.raises(ConfigError):
            check_external_id(bad)  # type: ignore[arg-type]


def test_service_code_from_the_path():
    assert service_code_for("/v1.0/qr/qr-mpm-generate") == "47"
    assert service_code_for("/api/v1.0/balance-inquiry?x=1") == "11"
    assert service_code_for("/api/v1.2/transfer-interbank/") == "18"
    assert service_code_for("/v1.0/unknown") is None
