"""The payment form (issue 13) against a real Sandbox and NotificationReceiver on 127.0.0.1.

Driven headless like the other forms: set values, click, read the widgets. The whole journey
(generate -> QR shown -> pay -> Success + verified), the refusals shown as notices (a bad amount,
an expired QR with the sandbox clock moved on, a replayed reference), the status update from the
receiver's thread, and no secret in any widget. Plus the pure rules of snapbook.payment.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import datetime, timedelta

import pytest
from _clock import HandClock

from snapbook import payment
from snapbook.client.service import ServiceClient
from snapbook.errors import PaymentInputError
from snapbook.receiver import NotificationReceiver, ReceivedNotification
from snapbook.sandbox import Sandbox, SandboxConfig
from snapbook.signing import JAKARTA
from snapbook.widgets import PaymentForm

CLIENT = "MCP00000001"
PARTNER = "MCP2021110228"
SECRET = "payment-form-test-secret-Zq81xW"
T0 = datetime(2026, 1, 15, 10, 0, 0, tzinfo=JAKARTA)


_refs = itertools.count(1)


def new_ref() -> str:
    return f"PF{next(_refs):06d}"


_ids = itertools.count(10**15)


@pytest.fixture
def world(private_key):
    """A sandbox with a moving clock, the merchant's receiver and service client, and a form on them."""
    clock = HandClock(T0)  # one clock for the sandbox, the client, the receiver and the form
    with Sandbox(SandboxConfig(clock=clock, notify_backoff=0.05)) as sb, \
            NotificationReceiver(SECRET, clock=clock) as receiver:
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        client = ServiceClient(sb.base_url, CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id="QR004",
                               token_url=sb.token_url("payment"), clock=clock,
                               external_ids=lambda: str(next(_ids)))
        form = PaymentForm(client, receiver, sandbox=sb, clock=clock, new_reference=new_ref)
        try:
            yield form, sb, receiver, client, clock
        finally:
            client.close()


def widget_state(form) -> str:
    from ipywidgets.embed import embed_data

    return json.dumps(embed_data(views=[form])["manager_state"])


def all_text(form) -> str:
    parts = [form.status.value, form.qr.value, form.verdict.value]
    for o in form.output.outputs:
        parts.append(o.get("text", ""))
        parts += [str(v) for v in o.get("data", {}).values()]
    return "\n".join(parts)


# --- the journey -------------------------------------------------------------------------------


def test_generate_shows_the_qr_then_pay_turns_the_status_to_success_verified(world):
    form, sb, _, client, clock = world
    assert [b.description for b in (form.generate_button, form.pay_button, form.status_button)] == [
        "Generate QR", "Pay in the sandbox", "Check status"]
    assert form.pay_button.disabled and form.status_button.disabled  # no QR open yet
    assert "snapbook-qr" in form.qr._dom_classes and "snapbook-payment-status" in form.status._dom_classes
    reference = form.reference.value

    form.amount.value = "25000.00"
    form.validity.value = 30
    form.generate_button.click()
    assert form.error is None, form.text
    qr = form.open_qr
    assert qr.partner_reference_no == reference and qr.amount == "25000.00"
    assert qr.expires_at == T0 + timedelta(minutes=30) and qr.validity_minutes == 30
    assert form.qr.value.count("<svg") == 1  # the QR code, inline
    for shown in ("25000.00 IDR", qr.reference_no, reference, "30 minutes", "2026-01-15T10:30:00+07:00"):
        assert shown in form.qr.value
    assert form.status_text.startswith("Initiated: waiting for payment")
    assert not form.pay_button.disabled and not form.status_button.disabled
    assert "2004700" in form.text
    assert form.reference.value != reference  # the next QR gets a fresh reference

    form.status_button.click()
    assert form.status_text.startswith("Initiated") and "2005100" in form.text

    clock.now += timedelta(minutes=3)
    form.pay_button.click()
    assert form.error is None, form.text
    assert form.status_text.startswith("Success"), form.status_text
    assert "verified" in form.verdict_text and "verified" in form.text
    assert form.notification.verified and form.notification.original_reference_no == qr.reference_no
    assert form.pay_button.disabled  # paid: nothing more to pay

    form.status_button.click()
    query = form.output.outputs
    assert "2005100" in form.text and "Success" in form.text
    assert form.status_text.startswith("Success")
    assert query

    log = client.log.to_dataframe()  # every call in the client's RequestLog: token, generate, 2 queries
    assert list(log["response_code"]) == ["2007300", "2004700", "2005100", "2005100"]
    journal = [e for e in sb.journal if e.service in ("47", "51")]
    assert set(log["external_id"].dropna()) == {e.external_id for e in journal}


def test_svg_keeps_long_base64_out_of_the_widget_state(world):
    """The QR is inline SVG, not a data: URI; nothing in the state looks like a secret."""
    from snapbook.leaks import find_leaks

    form, _, _, client, _ = world
    form.generate()
    form.pay()
    assert form.status_text.startswith("Success")
    state = widget_state(form)
    token = client.tokens.token.access_token
    assert SECRET not in state and token not in state and "base64," not in state
    assert [str(leak) for leak in find_leaks(state, known_secrets=[SECRET, token], source="embed_data")] == []
    for text in (all_text(form), repr(form)):
        assert SECRET not in text and token not in text
    # the notification's X-SIGNATURE shows masked, never whole
    signature_rows = [o for o in form.output.outputs if "X-SIGNATURE" in json.dumps(o)]
    assert signature_rows and "…" in json.dumps(signature_rows, ensure_ascii=False)


# --- refusals shown as notices ------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["10000", "10.000,00", "abc", "0.00", "-5.00", "1e4"])
def test_a_bad_amount_is_a_notice_and_sends_nothing(world, amount):
    form, _, _, client, _ = world
    form.amount.value = amount
    form.generate_button.click()
    assert isinstance(form.error, PaymentInputError) and form.error.field == "amount"
    assert form.text.startswith("✖ PaymentInputError") and "Hint:" in form.text and '"10000.00"' in form.text
    assert "Traceback" not in form.text and form.open_qr is None
    assert len(client.log) == 0  # refused before any request


def test_an_expired_qr_reads_07_and_the_sandbox_refuses_to_pay_it(world):
    form, _, receiver, _, clock = world
    form.generate()
    ref = form.open_qr.reference_no
    clock.now += timedelta(minutes=16)  # past the default 15 minutes
    form.check_status()
    assert form.error is None, form.text
    assert form.status_text.startswith("Not found") and "07" in form.status_text
    assert form.pay_button.disabled and not form.status_button.disabled  # expired: nothing to pay
    form.pay()  # what the button did before the query said 07
    assert form.error is not None and form.error.response_code == "4045200"
    assert form.text.startswith("✖ Refused: 4045200") and "Hint:" in form.text and "Traceback" not in form.text
    assert not form.status_text.startswith("Success") and form.notification is None
    assert not receiver.notifications  # nothing was delivered
    assert form.open_qr.reference_no == ref and form.pay_button.disabled


def test_pay_refused_closes_the_qr_without_a_query_first(world):
    form, _, _, _, clock = world
    form.generate()
    clock.now += timedelta(minutes=16)
    assert not form.pay_button.disabled  # the form does not know yet
    form.pay_button.click()
    assert form.error.response_code == "4045200" and form.pay_button.disabled
    form.generate()  # a new QR is open again
    assert not form.pay_button.disabled


def test_a_replayed_reference_is_refused_with_the_sandboxs_code(world):
    form, _, _, client, _ = world
    first = form.reference.value
    form.generate()
    shown = form.open_qr
    form.reference.value = first  # the same partnerReferenceNo again
    form.generate()
    assert form.error is not None and form.error.response_code == "4094701"
    assert "✖ Refused: 4094701" in form.text and "Meaning:" in form.text and "Traceback" not in form.text
    assert form.open_qr is shown  # the open QR stays the one shown
    form.amount.value = "99000.00"  # other parameters under the same reference
    form.reference.value = first
    form.generate()
    assert form.error.response_code == "4044718"
    assert list(client.log.to_dataframe()["response_code"])[-2:] == ["4094701", "4044718"]


def test_transport_failure_is_a_notice(world):
    form, sb, _, client, _ = world
    sb.stop()
    form.generate()
    assert form.error is not None and form.text.startswith("✖ ") and "Hint:" in form.text
    assert "Traceback" not in form.text
    assert len(client.log) >= 1  # the failed attempt is logged


def test_a_refused_notification_shows_why_and_the_status_stays(private_key):
    """A receiver with the wrong secret: the verdict says refused and names the reason."""
    clock = HandClock(T0)  # one clock for the sandbox, the client, the receiver and the form
    with Sandbox(SandboxConfig(clock=clock, notify_backoff=0.01, notify_retries=0)) as sb, \
            NotificationReceiver("not-the-registered-secret", clock=clock) as receiver:
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        with ServiceClient(sb.base_url, CLIENT, private_key, SECRET, partner_id=PARTNER, channel_id="QR004",
                           token_url=sb.token_url("payment"), clock=clock) as client:
            form = PaymentForm(client, receiver, sandbox=sb, clock=clock, new_reference=new_ref)
            form.generate()
            form.pay()
    assert form.status_text.startswith("Initiated")
    assert "refused" in form.verdict_text and "signature" in form.verdict_text.lower()
    assert "Notification refused" in form.text and "Traceback" not in form.text
    assert form.notification is None


def test_without_a_sandbox_the_pay_button_stays_disabled(world):
    _, _, receiver, client, clock = world
    other = PaymentForm(client, callback_url=receiver.url, clock=clock, new_reference=new_ref)
    other.generate()
    assert other.error is None, other.text
    assert other.pay_button.disabled and not other.status_button.disabled
    assert other.pay() is None and "Nothing to pay" in other.text


def test_the_form_needs_somewhere_to_be_notified(world):
    from snapbook.errors import ConfigError

    _, _, _, client, _ = world
    with pytest.raises(ConfigError) as info:
        PaymentForm(client)
    assert info.value.hint


# --- the receiver's thread -------------------------------------------------------------------


def test_the_receivers_thread_turns_the_status_to_success_by_itself(world):
    """No waiting in pay(): the update comes from the receiver's callback thread alone."""
    form, sb, receiver, _, _ = world
    form._timeout = 0.0  # pay() gives up waiting at once
    seen_threads: list[str] = []
    original = form._set_status

    def spy(text: str) -> None:
        seen_threads.append(threading.current_thread().name)
        original(text)

    form._set_status = spy  # type: ignore[method-assign]
    form.generate()
    sb.pay(form.open_qr.reference_no)  # as if paid from elsewhere: only the callback can tell the form
    note = receiver.wait(10)
    assert note.verified
    for _ in range(200):  # bounded: the callback thread runs right after the record is stored
        if form.status_text.startswith("Success"):
            break
        threading.Event().wait(0.02)
    assert form.status_text.startswith("Success") and "verified" in form.verdict_text
    assert any(name.startswith("snapbook-receiver-callback") for name in seen_threads), seen_threads


def _record(reference_no: str, *, verified: bool = True, status: str = "00") -> ReceivedNotification:
    return ReceivedNotification(
        time=T0, method="POST", path="/notify/qris", headers={}, http_status=200 if verified else 401,
        response_code="2005200" if verified else "4015200", response_message="",
        reason="valid" if verified else "signature", detail="" if verified else "X-SIGNATURE does not verify",
        original_reference_no=reference_no, latest_transaction_status=status, amount="10000.00", currency="IDR",
    )


def test_concurrent_updates_are_consistent(world):
    """Many threads deliver notifications (for this QR, an older one, refused ones) while the kernel's
    thread checks the status: one Success, the first verified record kept, no exception anywhere."""
    form, _, _, _, _ = world
    form.generate()
    old_ref = form.open_qr.reference_no
    form.generate()  # a second QR: the first one's notifications must not touch it
    ref = form.open_qr.reference_no
    records = [_record(ref) for _ in range(40)] + [_record(old_ref) for _ in range(40)]
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def deliver(chunk: list[ReceivedNotification]) -> None:
        start.wait(5)
        for r in chunk:
            try:
                form._on_notification(r)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(records[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    start.wait(5)
    for _ in range(3):
        form.check_status()  # the kernel thread, at the same time (01 in the sandbox: Success must stay)
    for t in threads:
        t.join(10)
    assert not errors and all(not t.is_alive() for t in threads)
    assert form.notification is not None and form.notification.original_reference_no == ref
    assert any(form.notification is r for r in records[:40])
    assert form.status_text.startswith("Success") and "verified" in form.verdict_text
    assert form.pay_button.disabled


def test_a_late_notification_of_an_older_qr_leaves_the_new_one_alone(world):
    form, _, _, _, _ = world
    form.generate()
    first = form.open_qr.reference_no
    form.generate()
    form._on_notification(_record(first))
    assert form.status_text.startswith("Initiated") and form.notification is None


def test_a_verified_notification_is_success_only_when_its_status_says_paid(world):
    """Verified proves who sent it; latestTransactionStatus 00 is what says paid (06 Failed is not)."""
    form, _, _, _, _ = world
    form.generate()
    ref = form.open_qr.reference_no
    form._on_notification(_record(ref, status="06"))
    assert not form.status_text.startswith("Success") and "status 06" in form.status_text
    assert "verified" in form.verdict_text and "status 06" in form.verdict_text
    assert not form.pay_button.disabled  # still open: it was not paid
    form._on_notification(_record(ref, status="00"))
    assert form.status_text.startswith("Success") and form.pay_button.disabled


def test_a_refused_notification_after_the_verified_one_keeps_the_verdict_and_is_listed(world):
    form, _, _, _, _ = world
    form.generate()
    ref = form.open_qr.reference_no
    form._on_notification(_record(ref))
    form._on_notification(_record(ref, verified=False))
    assert form.status_text.startswith("Success") and "verified" in form.verdict_text
    assert "refused" not in form.verdict_text
    assert "Notification refused: signature" in all_text(form)


@pytest.mark.parametrize("validity", [14, 61, 90, 0])
def test_a_validity_out_of_range_is_a_typed_error_not_silently_clamped(world, validity):
    _, _, receiver, client, _ = world
    with pytest.raises(PaymentInputError) as raised:
        PaymentForm(client, receiver, validity=validity)
    assert raised.value.field == "validityPeriod" and raised.value.hint


def test_a_form_listens_beside_the_receivers_own_callback_and_stops_when_closed(world):
    """Two forms on one receiver both follow it; the user's on_notification is left alone; a
    closed form unsubscribes (re-running the cell must not keep the old form listening)."""
    form, sb, receiver, client, clock = world
    receiver.on_notification = mine = lambda n: None
    other = PaymentForm(client, receiver, sandbox=sb, clock=clock, new_reference=new_ref)
    assert receiver.on_notification is mine and len(receiver._listeners) == 2
    other.close()
    assert receiver._listeners == (form._on_notification,)
    form.generate()
    form.pay()
    assert form.status_text.startswith("Success")


# --- the pure rules (snapbook.payment) -----------------------------------------------------------


def test_payment_rules():
    assert payment.check_amount(" 10000.00 ") == "10000.00"
    for bad in ("10000", "10000.0", "1,000.00", "0.00", "", None, 10000.0, "12345678901234567.00"):
        with pytest.raises(PaymentInputError):
            payment.check_amount(bad)
    assert payment.check_partner_reference("INV123") == "INV123"
    for bad in ("INV-1", "", "A" * 65, "INV 1", None):
        with pytest.raises(PaymentInputError):
            payment.check_partner_reference(bad)
    assert [payment.check_validity(m) for m in (15, 60)] == [15, 60]
    for bad in (14, 61, 15.0, True, "15"):
        with pytest.raises(PaymentInputError):
            payment.check_validity(bad)
    body = payment.generate_body("10000.00", "INV1", "http://127.0.0.1:1/cb", validity_minutes=20, now=T0)
    assert body == {
        "partnerReferenceNo": "INV1",
        "amount": {"value": "10000.00", "currency": "IDR"},
        "validityPeriod": "2026-01-15T10:20:00+07:00",
        "additionalInfo": {"callbackUrl": "http://127.0.0.1:1/cb"},
    }
    ref = payment.new_partner_reference(lambda: T0)
    assert ref.startswith("SNAPBOOK20260115100000") and len(ref) == 28 and ref.isalnum()
    assert payment.new_partner_reference(lambda: T0) != ref  # random tail
    assert payment.status_line("00", paid_time="2026-01-15T10:03:00+07:00").startswith("Success: paid at 2026")
    assert payment.status_line("01") == "Initiated: waiting for payment (status 01)"
    assert payment.status_line("07").startswith("Not found")
    hostile = payment.status_line("\x1b[31m", "\x07bell")  # a provider's text reaches a screen escaped
    assert "\x1b" not in hostile and "\x07" not in hostile and "\\x1b" in hostile


# --- the receiver behind a public URL (stage: a tunnel forwards to 127.0.0.1) -----------------------


def test_a_receiver_behind_a_public_url_verifies_over_that_url():
    import httpx

    from snapbook.errors import ConfigError
    from snapbook.service_signing import notification_headers

    public = "https://merchant-tunnel.example/notify/qris"
    body = json.dumps({"originalReferenceNo": "R1", "originalPartnerReferenceNo": "P1",
                       "latestTransactionStatus": "00", "transactionStatusDesc": "Success",
                       "amount": {"value": "10000.00", "currency": "IDR"}}, separators=(",", ":")).encode()
    with NotificationReceiver(SECRET, public_url=public, clock=lambda: T0) as receiver:
        assert receiver.url == public and receiver.local_url.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False, timeout=10) as http:
            for signed_for in (public, receiver.local_url):  # the provider signs the registered URL
                headers = notification_headers(SECRET, signed_for, body, timestamp="2026-01-15T10:00:00+07:00")
                http.post(receiver.local_url, content=body, headers=headers)
        first, second = receiver.notifications
    assert first.verified and not second.verified
    for bad in ("merchant.example/cb", "ftp://x/cb", "https://x/cb?a=1", "https://x/c b", 5, "http://[::1"):
        with pytest.raises(ConfigError):
            NotificationReceiver(SECRET, public_url=bad)


def test_behind_a_tunnel_the_receiver_serves_the_public_urls_path():
    """A tunnel forwards https://host/callback to 127.0.0.1:PORT/callback: that path is served and verified."""
    import httpx

    from snapbook.service_signing import notification_headers

    public = "https://merchant-tunnel.example/callback"
    body = json.dumps({"originalReferenceNo": "R1", "latestTransactionStatus": "00",
                       "amount": {"value": "10000.00", "currency": "IDR"}}, separators=(",", ":")).encode()
    with NotificationReceiver(SECRET, public_url=public, clock=lambda: T0) as receiver:
        assert receiver.path == "/callback" and receiver.local_url.endswith(f":{receiver.port}/callback")
        headers = notification_headers(SECRET, public, body, timestamp="2026-01-15T10:00:00+07:00")
        with httpx.Client(trust_env=False, timeout=10) as http:
            answer = http.post(receiver.local_url, content=body, headers=headers)
        assert answer.status_code == 200 and receiver.notifications[0].verified
    assert NotificationReceiver(SECRET, public_url="https://t.example").path == "/notify/qris"  # no path: default
    assert NotificationReceiver(SECRET, public_url=public, path="/in").path == "/in"  # an explicit one wins


# --- notebook 07 aimed at "stage" (papermill), against a separate local SNAP provider -------------

NOTEBOOK = __import__("pathlib").Path(__file__).resolve().parents[1] / "notebooks" / "07-first-payment.ipynb"
STAGE_VARS = ("SNAPBOOK_CLIENT_KEY", "SNAPBOOK_PRIVATE_KEY_PATH", "SNAPBOOK_PASSPHRASE", "SNAPBOOK_CLIENT_SECRET",
              "SNAPBOOK_PARTNER_ID", "SNAPBOOK_CHANNEL_ID", "SNAPBOOK_CALLBACK_URL", "SNAPBOOK_RECEIVER_PORT")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_papermill_aims_the_payment_notebook_at_another_provider(tmp_path, monkeypatch, private_key):
    """Credentials only in SNAPBOOK_* variables, the real clock, no sandbox pay: the 'payer' here is
    the test, paying on the provider once the QR exists; the notebook's receiver verifies over the
    callback URL, the query reads 00, and no secret reaches the saved notebook."""
    import time

    import papermill as pm

    from snapbook.keys import save_private_key

    key_path = save_private_key(private_key, tmp_path / "private.pem", "env-passphrase-07")
    port = _free_port()
    secret = "stage-like-secret-" + "Qx7" * 6
    with Sandbox(SandboxConfig(notify_backoff=0.05)) as provider:
        provider.register("MCP12345678", private_key.public_key(), secret=secret, partner_id="PARTNER77")
        env = {"SNAPBOOK_CLIENT_KEY": "MCP12345678", "SNAPBOOK_PRIVATE_KEY_PATH": str(key_path),
               "SNAPBOOK_PASSPHRASE": "env-passphrase-07", "SNAPBOOK_CLIENT_SECRET": secret,
               "SNAPBOOK_PARTNER_ID": "PARTNER77", "SNAPBOOK_CHANNEL_ID": "QR004",
               "SNAPBOOK_CALLBACK_URL": f"http://127.0.0.1:{port}/notify/qris", "SNAPBOOK_RECEIVER_PORT": str(port)}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        paid: list[dict] = []

        def payer() -> None:  # pays the first QR generated on the provider, as a payer's app would
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not paid:
                rows = [e for e in provider.journal if e.service == "47" and e.response_code == "2004700"]
                if rows:
                    qr = provider.provider.qrs.find_partner_reference("PARTNER77", rows[0].partner_reference_no)
                    paid.append(provider.pay(qr.reference_no))
                    return
                time.sleep(0.1)

        thread = threading.Thread(target=payer, daemon=True)
        thread.start()
        out = tmp_path / "out.ipynb"
        pm.execute_notebook(
            str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
            log_output=False, execution_timeout=180,
            parameters={"environment": provider.base_url, "token_url": provider.token_url("payment")},
        )
        thread.join(10)
    assert paid and paid[0]["notification"]["delivered"]
    saved = out.read_text()
    text = json.dumps([c.get("outputs", []) for c in json.loads(saved)["cells"]])
    assert "verdict:                 verified (valid)" in text
    assert "Success: paid at" in text and "MCP12345678" in text
    assert secret not in saved and "env-passphrase-07" not in saved
    assert "4095100" not in text and "4045200" not in text  # the refusal demos run in the sandbox only


def test_papermill_without_stage_credentials_stops_with_a_clear_error(tmp_path, monkeypatch):
    import papermill as pm

    for name in STAGE_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters={"environment": "payment-stage"},
            kernel_name="python3", cwd=str(tmp_path), progress_bar=False, log_output=False,
        )
    assert info.value.ename == "ConfigError"
    assert "SNAPBOOK_CLIENT_KEY" in info.value.evalue and "SNAPBOOK_CALLBACK_URL" in info.value.evalue


# --- in a real kernel: the receiver thread's update reaches the front end ------------------------

KERNEL_CODE = r'''
import threading
from datetime import datetime
from IPython.display import display
from snapbook.client.service import ServiceClient
from snapbook.examples import load_vendor_example
from snapbook.receiver import NotificationReceiver
from snapbook.sandbox import Sandbox, SandboxConfig
from snapbook.signing import JAKARTA
from snapbook.widgets import PaymentForm

clock = lambda: datetime(2026, 1, 15, 10, 0, tzinfo=JAKARTA)
ex = load_vendor_example()
sb = Sandbox(SandboxConfig(clock=clock)).start()
sb.register(ex.client_key, ex.private_key.public_key(), secret="kernel-test-secret-123", partner_id="P1")
receiver = NotificationReceiver("kernel-test-secret-123", clock=clock).start()
client = ServiceClient(sb.base_url, ex.client_key, ex.private_key, "kernel-test-secret-123", partner_id="P1",
                       channel_id="QR004", token_url=sb.token_url(), clock=clock)
form = PaymentForm(client, receiver, sandbox=sb, clock=clock, notification_timeout=0.0)
display(form)
form.generate()
threads = []
original = form._set_status
form._set_status = lambda text: (threads.append(threading.current_thread().name), original(text))[1]
sb.pay(form.open_qr.reference_no)  # no wait in the form: only the receiver's thread can update it
for _ in range(100):
    if form.status_text.startswith("Success"):
        break
    threading.Event().wait(0.05)
print("STATUS", form.status_text[:7], "THREADS", sorted(set(threads)))
'''


def test_in_a_kernel_the_receivers_thread_sends_the_success_update_to_the_front_end():
    """The widget update made on the receiver's callback thread leaves the kernel as a comm message
    (what JupyterLab and Voilà render), not only as a Python-side value."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        msg_id = kc.execute(KERNEL_CODE)
        updates, printed, errors = [], [], []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_msg" and content.get("data", {}).get("method") == "update":
                updates.append(json.dumps(content["data"].get("state", {}), ensure_ascii=False))
            elif kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                errors.append(content["ename"] + ": " + content["evalue"])
            elif kind == "status" and content["execution_state"] == "idle" and \
                    msg["parent_header"].get("msg_id") == msg_id:
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert not errors, errors
    out = "".join(printed)
    assert "STATUS Success" in out and "snapbook-receiver-callback" in out, out
    assert any("Success: paid, notification verified" in u for u in updates)
    assert any("verified" in u and "Notification" in u for u in updates)
    assert not any("kernel-test-secret-123" in u for u in updates)
