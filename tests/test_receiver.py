"""The notification receiver: notifications signed here with hmac/hashlib, posted over 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest

import snapbook
from snapbook.errors import ConfigError, NotificationTimeoutError, SnapbookError
from snapbook.leaks import find_leaks
from snapbook.receiver import RECEIVER_CODES, NotificationReceiver, ReceivedNotification

SECRET = "o7sWnn0oGXF7y7JBGf18!"  # the portal's example secret
OTHER_SECRET = "Zz9yXx8wWv7uUt6sSr5q!"
NOW = datetime(2026, 11, 30, 4, 0, 0, tzinfo=timezone.utc)
JAKARTA = timezone(timedelta(hours=7))

NOTIFICATION = {
    "originalReferenceNo": "A120251130110000",
    "originalPartnerReferenceNo": "INV0001",
    "latestTransactionStatus": "00",
    "transactionStatusDesc": "Success",
    "amount": {"value": "10000.00", "currency": "IDR"},
    "additionalInfo": {"merchantId": "MCP2021110228", "paymentChannel": "QRIS", "issuer": "OVO"},
}
QUERY_SHAPED = {
    "responseCode": "2005100",
    "responseMessage": "Successful",
    "originalReferenceNo": "A120251130110001",
    "originalPartnerReferenceNo": "INV0002",
    "serviceCode": "47",
    "latestTransactionStatus": "00",
    "transactionStatusDesc": "Success",
    "paidTime": "2026-11-30T11:00:00+07:00",
    "amount": {"value": "25000.50", "currency": "IDR"},
}


def ts(at: datetime = NOW) -> str:
    """X-TIMESTAMP written by hand (not snapbook's make_timestamp)."""
    return at.astimezone(JAKARTA).strftime("%Y-%m-%dT%H:%M:%S+07:00")


def signature(url: str, body: bytes, timestamp: str, secret: str = SECRET, version: str = "v1") -> str:
    """Ifortepay's notification signature, made independently of snapbook's signer."""
    text = f"{url}:{version}:{hashlib.sha256(body).hexdigest()}:{timestamp}"
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha512).digest()).decode()


def compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def post(url: str, body: bytes, headers: dict[str, str], **kw: object) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10, trust_env=False, **kw)


def signed(
    url: str, body: bytes, *, at: datetime = NOW, secret: str = SECRET, sign_url: str | None = None
) -> dict:
    stamp = ts(at)
    return {
        "Content-Type": "application/json",
        "X-TIMESTAMP": stamp,
        "X-VERSION": "v1",
        "X-SIGNATURE": signature(sign_url or url, body, stamp, secret),
    }


@pytest.fixture
def receiver():
    with NotificationReceiver(SECRET, clock=lambda: NOW) as r:
        yield r


def answer(response: httpx.Response) -> tuple[int, str, str]:
    data = response.json()
    return response.status_code, data["responseCode"], data["responseMessage"]


# --- valid notifications ----------------------------------------------------------------


@pytest.mark.parametrize("shape,body", [("notification", NOTIFICATION), ("query-response", QUERY_SHAPED)])
def test_a_valid_notification_of_either_shape_is_answered_2005200_and_recorded(receiver, shape, body):
    data = compact(body)
    assert answer(post(receiver.url, data, signed(receiver.url, data))) == (200, "2005200", "Successful")
    (got,) = receiver.notifications
    assert got.verified and got.reason == "valid" and got.shape == shape
    assert got.original_reference_no == body["originalReferenceNo"]
    assert got.original_partner_reference_no == body["originalPartnerReferenceNo"]
    assert got.latest_transaction_status == "00"
    assert (got.amount, got.currency) == (body["amount"]["value"], "IDR")
    assert got.body == body and got.body_size == len(data)
    assert got.time == NOW and got.diagnosis is None and not got.duplicate


def test_the_url_is_the_full_notify_url_on_loopback(receiver):
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/notify/qris"


def test_a_pretty_printed_body_signed_over_its_minified_form_verifies(receiver):
    pretty = json.dumps(NOTIFICATION, indent=2).encode()
    headers = signed(receiver.url, pretty)
    headers["X-SIGNATURE"] = signature(receiver.url, compact(NOTIFICATION), headers["X-TIMESTAMP"])
    assert answer(post(receiver.url, pretty, headers))[1] == "2005200"


def test_without_x_version_the_default_v1_is_signed(receiver):
    data = compact(NOTIFICATION)
    headers = signed(receiver.url, data)
    del headers["X-VERSION"]
    assert answer(post(receiver.url, data, headers))[1] == "2005200"


def test_a_repeat_is_answered_200_again_and_marked_duplicate(receiver):
    data = compact(NOTIFICATION)
    for _ in range(2):
        assert post(receiver.url, data, signed(receiver.url, data)).status_code == 200
    assert [n.duplicate for n in receiver.notifications] == [False, True]


# --- refusals ---------------------------------------------------------------------------


def test_a_wrong_secret_is_401_signature_and_the_doctor_says_so(receiver):
    data = compact(NOTIFICATION)
    response = post(receiver.url, data, signed(receiver.url, data, secret=OTHER_SECRET))
    assert answer(response) == (401, "4015200", "Unauthorized. [Signature]")
    (got,) = receiver.notifications
    assert not got.verified and got.reason == "signature-mismatch"
    assert got.diagnosis is not None and not got.diagnosis.ok
    assert got.original_reference_no == NOTIFICATION["originalReferenceNo"]  # shown, not trusted


@pytest.mark.parametrize(
    "other,cause",
    [
        (lambda url: url.replace("http://", "https://"), "notify-url"),  # a usual mistake: named
        (lambda url: url.replace("/notify/qris", "/callback"), "unidentified"),  # another URL altogether
    ],
)
def test_a_signature_over_another_notify_url_is_refused(receiver, other, cause):
    data = compact(NOTIFICATION)
    response = post(receiver.url, data, signed(receiver.url, data, sign_url=other(receiver.url)))
    assert answer(response)[:2] == (401, "4015200")
    got = receiver.notifications[0]
    assert got.diagnosis.cause == cause
    assert receiver.url in got.detail  # the NotifyURL it expected to be signed
    assert ("the other scheme" in got.detail) == (cause == "notify-url")  # the doctor's finding, when named


@pytest.mark.parametrize("skew", [301, -301, 3600])
def test_a_stale_or_future_timestamp_is_401_out_of_range(receiver, skew):
    data = compact(NOTIFICATION)
    response = post(receiver.url, data, signed(receiver.url, data, at=NOW - timedelta(seconds=skew)))
    assert answer(response) == (401, "4015200", "Unauthorized. [X-TIMESTAMP out of range]")
    assert receiver.notifications[0].reason in ("timestamp-stale", "timestamp-future")


def test_a_timestamp_just_inside_the_window_is_accepted(receiver):
    data = compact(NOTIFICATION)
    assert (
        post(receiver.url, data, signed(receiver.url, data, at=NOW - timedelta(seconds=299))).status_code
        == 200
    )


@pytest.mark.parametrize("missing", ["X-TIMESTAMP", "X-SIGNATURE"])
def test_a_missing_header_is_400_4005202_naming_it(receiver, missing):
    data = compact(NOTIFICATION)
    headers = signed(receiver.url, data)
    del headers[missing]
    assert answer(post(receiver.url, data, headers)) == (400, "4005202", "Invalid Mandatory Field")
    assert f"[{missing}]" in receiver.notifications[0].detail


def test_a_malformed_timestamp_is_400_4005201(receiver):
    data = compact(NOTIFICATION)
    headers = signed(receiver.url, data)
    headers["X-TIMESTAMP"] = "30/11/2026 11:00"
    assert answer(post(receiver.url, data, headers))[:2] == (400, "4005201")
    assert "[X-TIMESTAMP]" in receiver.notifications[0].detail


def test_a_signature_that_is_not_base64_is_401(receiver):
    data = compact(NOTIFICATION)
    headers = signed(receiver.url, data)
    headers["X-SIGNATURE"] = "not base64 at all!"
    assert answer(post(receiver.url, data, headers))[:2] == (401, "4015200")
    assert receiver.notifications[0].reason == "not-base64"


def test_a_validly_signed_non_json_body_is_400_4005200(receiver):
    data = b"status=00&ref=A1"  # no whitespace: hashable as is, so the signature can hold
    assert answer(post(receiver.url, data, signed(receiver.url, data)))[:2] == (400, "4005200")
    (got,) = receiver.notifications
    assert got.reason == "body-not-json" and got.body is None and "not JSON" in got.body_error


def test_a_non_json_body_with_spaces_cannot_be_hashed_and_is_400(receiver):
    data = b"status is paid"
    assert answer(post(receiver.url, data, signed(receiver.url, data)))[:2] == (400, "4005200")


def test_a_json_array_body_is_400_4005200(receiver):
    data = b"[1,2]"
    assert answer(post(receiver.url, data, signed(receiver.url, data)))[:2] == (400, "4005200")


@pytest.mark.parametrize(
    "change,code,where",
    [
        (lambda b: b.pop("latestTransactionStatus"), "4005202", "[latestTransactionStatus]"),
        (lambda b: b.update(latestTransactionStatus="Success"), "4005201", "[latestTransactionStatus]"),
        (
            lambda b: (b.pop("originalReferenceNo"), b.pop("originalPartnerReferenceNo")),
            "4005202",
            "[originalReferenceNo]",
        ),
        (lambda b: b.update(amount={"value": "10000", "currency": "IDR"}), "4005201", "[amount.value]"),
        # Arabic-Indic digits match \d but are no SNAP amount (nor is a status in other digits).
        (lambda b: b.update(amount={"value": "١٠٠٠٠.٠٠", "currency": "IDR"}), "4005201", "[amount.value]"),
        (lambda b: b.update(latestTransactionStatus="٠٠"), "4005201", "[latestTransactionStatus]"),
        (
            lambda b: b.update(amount={"value": "10000.00", "currency": "rupiah"}),
            "4005201",
            "[amount.currency]",
        ),
    ],
)
def test_body_field_problems_are_400_naming_the_field(receiver, change, code, where):
    body = json.loads(json.dumps(NOTIFICATION))
    change(body)
    data = compact(body)
    assert answer(post(receiver.url, data, signed(receiver.url, data)))[:2] == (400, code)
    assert where in receiver.notifications[0].detail


def test_other_paths_and_methods_are_refused_and_recorded(receiver):
    base = receiver.url.rsplit("/notify/qris", 1)[0]
    assert httpx.post(base + "/other", content=b"{}", trust_env=False).status_code == 404
    assert httpx.get(receiver.url, trust_env=False).status_code == 405
    assert [n.reason for n in receiver.notifications] == ["not-found", "method"]


# --- bounds -----------------------------------------------------------------------------


def test_an_oversized_body_is_413_and_recorded(receiver):
    data = b'{"pad":"' + b"x" * (64 * 1024) + b'"}'
    response = post(receiver.url, data, signed(receiver.url, data))
    assert answer(response) == (413, "4135200", "Payload Too Large")
    assert receiver.notifications[0].reason == "too-large"


def test_a_huge_declared_body_is_answered_without_being_read(receiver):
    """Content-Length says 100 MB, no byte of it is sent: the 413 comes anyway, at once."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(
            b"POST /notify/qris HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        sock.settimeout(5)
        received = b""
        deadline = time.monotonic() + 5
        while b"4135200" not in received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 413") and b"4135200" in received
    assert receiver.notifications[0].reason == "too-large"


def test_an_oversized_chunked_body_without_content_length_is_413(receiver):
    def chunks():
        for _ in range(20):  # 160 KiB in 8 KiB chunks, no Content-Length
            yield b"x" * 8192

    stamp = ts()
    response = httpx.post(
        receiver.url,
        content=chunks(),
        headers={"X-TIMESTAMP": stamp, "X-SIGNATURE": "AAAA"},
        timeout=10,
        trust_env=False,
    )
    assert answer(response)[:2] == (413, "4135200")
    assert receiver.notifications[0].reason == "too-large"


def test_json_nested_too_deeply_is_refused_as_400(receiver):
    data = b"[" * 30000 + b"]" * 30000  # no whitespace: hashable, and signed correctly
    assert answer(post(receiver.url, data, signed(receiver.url, data)))[:2] == (400, "4005200")
    assert "too deeply" in receiver.notifications[0].detail


def test_many_concurrent_posts_are_all_recorded(receiver):
    count = 60

    def one(i: int) -> int:
        body = dict(NOTIFICATION, originalReferenceNo=f"R{i:05d}")
        data = compact(body)
        return post(receiver.url, data, signed(receiver.url, data)).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(one, range(count)))
    assert statuses == [200] * count
    refs = sorted(n.original_reference_no for n in receiver.notifications)
    assert refs == [f"R{i:05d}" for i in range(count)]


def test_records_are_bounded_by_max_records():
    with NotificationReceiver(SECRET, clock=lambda: NOW, max_records=3) as r:
        for i in range(5):
            data = compact(dict(NOTIFICATION, originalReferenceNo=f"B{i}"))
            post(r.url, data, signed(r.url, data))
        assert [n.original_reference_no for n in r.notifications] == ["B2", "B3", "B4"]
        assert r.dropped == 2


# --- waiting and the callback ---------------------------------------------------------------


def test_wait_returns_a_notification_that_arrives_later(receiver):
    data = compact(NOTIFICATION)
    timer = threading.Timer(0.3, lambda: post(receiver.url, data, signed(receiver.url, data)))
    timer.start()
    try:
        got = receiver.wait(10)
    finally:
        timer.join(10)
    assert got.verified and got.original_reference_no == NOTIFICATION["originalReferenceNo"]


def test_wait_returns_one_already_received_and_honours_the_predicate(receiver):
    for ref in ("P1", "P2"):
        data = compact(dict(NOTIFICATION, originalReferenceNo=ref))
        post(receiver.url, data, signed(receiver.url, data))
    assert receiver.wait(1).original_reference_no == "P1"
    assert receiver.wait(1, lambda n: n.original_reference_no == "P2").original_reference_no == "P2"


def test_wait_times_out_with_a_typed_error_and_ignores_refused_ones(receiver):
    data = compact(NOTIFICATION)
    post(receiver.url, data, signed(receiver.url, data, secret=OTHER_SECRET))  # refused: not what wait wants
    started = time.monotonic()
    with pytest.raises(NotificationTimeoutError) as caught:
        receiver.wait(0.3)
    assert 0.25 <= time.monotonic() - started < 5
    assert isinstance(caught.value, SnapbookError) and caught.value.hint
    assert "1 request(s) recorded" in caught.value.message


def test_a_raising_callback_breaks_nothing():
    called: list[ReceivedNotification] = []

    def callback(n: ReceivedNotification) -> None:
        called.append(n)
        raise RuntimeError("the form crashed")

    with NotificationReceiver(SECRET, clock=lambda: NOW, on_notification=callback) as r:
        for i in range(3):
            data = compact(dict(NOTIFICATION, originalReferenceNo=f"C{i}"))
            assert post(r.url, data, signed(r.url, data)).status_code == 200
        deadline = time.monotonic() + 5
        while r.callback_errors < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.callback_errors == 3
        assert [n.original_reference_no for n in called] == ["C0", "C1", "C2"]  # in order
        assert len(r.verified) == 3 and r.running


def test_subscribed_listeners_run_beside_on_notification_and_unsubscribe():
    """Several listeners (two forms, say) each see every record, in order, after on_notification;
    one that raises is counted and spares the others; an unsubscribed one sees nothing more."""
    order: list[str] = []
    with NotificationReceiver(SECRET, clock=lambda: NOW,
                              on_notification=lambda n: order.append(f"own {n.original_reference_no}")) as r:
        first = r.subscribe(lambda n: order.append(f"first {n.original_reference_no}"))

        def broken(n: ReceivedNotification) -> None:
            raise RuntimeError("a closed form")

        r.subscribe(broken)
        r.subscribe(lambda n: order.append(f"second {n.original_reference_no}"))
        for i, unsubscribe_first in enumerate([False, True]):
            if unsubscribe_first:
                first()
            data = compact(dict(NOTIFICATION, originalReferenceNo=f"S{i}"))
            assert post(r.url, data, signed(r.url, data)).status_code == 200
            deadline = time.monotonic() + 5
            while r.callback_errors < i + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        while len(order) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert order == ["own S0", "first S0", "second S0", "own S1", "second S1"]
    assert r.callback_errors == 2


# --- secrets and hostile text ---------------------------------------------------------------


def test_no_secret_or_full_signature_in_repr_html_or_dataframe():
    with NotificationReceiver(SECRET, clock=lambda: NOW) as r:
        data = compact(NOTIFICATION)
        good = signed(r.url, data)
        post(r.url, data, good)
        bad = signed(r.url, data, secret=OTHER_SECRET)
        post(r.url, data, bad)
        shown = [repr(r), r._repr_html_(), r.to_dataframe().to_string(), r.to_dataframe().to_csv()]
        for n in r.notifications:
            shown += [repr(n), n._repr_html_(), str(n.to_dict()), repr(n.headers)]
        if r.notifications[1].diagnosis is not None:
            shown.append(repr(r.notifications[1].diagnosis))
    known = [SECRET, OTHER_SECRET, good["X-SIGNATURE"], bad["X-SIGNATURE"]]
    for text in shown:
        assert find_leaks(text, known_secrets=known) == [], text[:300]
        for value in known:
            assert value not in text


def test_control_characters_from_the_network_are_escaped(receiver):
    body = dict(NOTIFICATION, originalReferenceNo="A1\x1b[2J\x9b31m", transactionStatusDesc="ok\x07")
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    post(receiver.url, data, signed(receiver.url, data))
    (got,) = receiver.notifications
    assert got.reason == "bad-field" and got.http_status == 400  # a reference must be printable
    assert got.original_reference_no == "A1\x1b[2J\x9b31m"  # kept as received, escaped when shown
    for text in (repr(got), got._repr_html_(), receiver._repr_html_(), receiver.to_dataframe().to_string()):
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text


def test_to_dataframe_has_one_row_per_request(receiver):
    data = compact(NOTIFICATION)
    post(receiver.url, data, signed(receiver.url, data))
    post(receiver.url, data, signed(receiver.url, data, secret=OTHER_SECRET))
    frame = receiver.to_dataframe()
    assert list(frame["verdict"]) == ["verified", "rejected"]
    assert list(frame["response_code"]) == ["2005200", "4015200"]
    assert str(frame["time"].dtype).startswith("datetime64")


# --- configuration and lifecycle ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "notify"},
        {"path": "/a?b=1"},
        {"path": "//host/x"},
        {"port": 70000},
        {"host": ""},
        {"window": 0},
        {"max_body_bytes": 0},
        {"on_notification": "print"},
        {"version": "v 1"},
    ],
)
def test_bad_configuration_is_a_config_error_with_a_hint(kwargs):
    with pytest.raises(ConfigError) as caught:
        NotificationReceiver(SECRET, **kwargs)
    assert caught.value.hint


@pytest.mark.parametrize("secret", ["", " padded\n", None])
def test_a_bad_secret_is_a_typed_error(secret):
    with pytest.raises(SnapbookError):
        NotificationReceiver(secret)


def test_stop_frees_the_port_and_keeps_the_records():
    r = NotificationReceiver(SECRET, clock=lambda: NOW).start()
    port, url = r.port, r.url
    data = compact(NOTIFICATION)
    post(url, data, signed(url, data))
    r.stop()
    r.stop()  # twice is fine
    assert not r.running and len(r) == 1
    with pytest.raises(SnapbookError):
        r.url  # noqa: B018
    with socket.socket() as sock:  # the port can be bound again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_a_forgotten_receiver_is_shut_down_when_collected():
    import gc

    r = NotificationReceiver(SECRET).start()
    name = f"snapbook-receiver-{r.port}"
    assert any(t.name == name for t in threading.enumerate())
    del r
    gc.collect()
    deadline = time.monotonic() + 10
    while any(t.name == name and t.is_alive() for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_the_codes_table_is_what_the_receiver_answers():
    assert RECEIVER_CODES["valid"] == (200, "2005200", "Successful")
    assert {RECEIVER_CODES[r][1] for r in ("signature-mismatch", "timestamp-stale")} == {"4015200"}


def test_exported_lazily_from_the_package_root():
    assert snapbook.NotificationReceiver is NotificationReceiver
    assert snapbook.NotificationTimeoutError is NotificationTimeoutError
