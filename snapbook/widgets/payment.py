"""The payment form: a QRIS generated, paid in the sandbox, and its verified notification."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from .. import signing as _signing
from ..errors import ConfigError
from ..masking import mask_url, printable
from .base import _AUTO, _COLORS, _WIDE, Notice, _Form, _Table, notice_for

if TYPE_CHECKING:
    from ..client import ServiceClient, ServiceResponse
    from ..log import RequestLog
    from ..payment import OpenQr
    from ..receiver import NotificationReceiver, ReceivedNotification
    from ..sandbox import Sandbox


def _html_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(printable(k, 80))}</th>"
        f"<td style='text-align:left'><code>{html.escape(printable(v, 200))}</code></td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def _status_html(text: str, colour: str) -> str:
    # The text comes first in the element (no icon before it): "Success…" is what a reader and a
    # browser test see at the start of .snapbook-payment-status.
    return f"<span style='color:{colour};font-weight:bold'>{html.escape(text)}</span>"


_STATUS_COLOURS = {"Success": _COLORS["ok"], "Initiated": _COLORS["info"], "Not found": _COLORS["warn"]}


class PaymentForm(_Form):
    """Amount, reference and validity in; a QRIS out, paid in the sandbox, and its verified notification.

    "Generate QR" sends qr-mpm-generate through ``client`` (a :class:`~snapbook.client.ServiceClient`,
    whose RequestLog gets every attempt) with ``callbackUrl`` = ``callback_url`` or the
    ``receiver``'s URL, and shows the QR code (inline SVG in ``.snapbook-qr``) with a summary.
    "Pay in the sandbox" (enabled with a ``sandbox`` and an open QR) pays it there and waits up to
    ``notification_timeout`` s for the notification; "Check status" sends qr-mpm-query. The status
    line (``.snapbook-payment-status``) reads "Initiated: waiting for payment" and turns to
    "Success…" when the receiver gets the *verified* notification of this QR; the verdict line
    says "verified" or why the notification was refused. The receiver calls back on its own
    thread: the form subscribes to it (``close()`` unsubscribes) and updates under a lock,
    whichever thread gets there first. No secret reaches a widget: the client holds them.
    """

    def __init__(
        self,
        client: ServiceClient,
        receiver: NotificationReceiver | None = None,
        *,
        sandbox: Sandbox | None = None,
        callback_url: str | None = None,
        amount: str = "10000.00",
        reference: str | None = None,
        validity: int = 15,
        clock: _signing.Clock | None = None,
        new_reference: Callable[[], str] | None = None,
        notification_timeout: float = 10.0,
    ) -> None:
        # Imported here, not at the top: snapbook.payment and snapbook.qris pull in decimal (~7 ms),
        # which `import snapbook.widgets` does not need until a payment form is made.
        from .. import payment as _payment

        if receiver is None and not callback_url:
            raise ConfigError(
                "The payment form needs a callback URL for the notification.",
                hint="Pass receiver=NotificationReceiver(secret).start(), or callback_url= the URL "
                "the provider should notify.",
            )
        validity = _payment.check_validity(validity)  # a typed error, not the bounded field's silent clamp
        self._payment = _payment
        self.client, self.receiver, self.sandbox = client, receiver, sandbox
        self.request_log: RequestLog | None = getattr(client, "log", None)
        self._callback_url = callback_url
        self._clock: _signing.Clock = clock or _signing.system_clock
        self._new_reference = new_reference or (lambda: _payment.new_partner_reference(self._clock))
        self._timeout = notification_timeout
        self._lock = threading.RLock()  # the receiver's thread and the kernel's both update the widgets
        #: The QR the form follows (:class:`~snapbook.payment.OpenQr`), or None before "Generate QR".
        self.open_qr: OpenQr | None = None
        #: The verified notification of the open QR, or None.
        self.notification: ReceivedNotification | None = None
        #: The last error shown, or None.
        self.error: BaseException | None = None
        # Records already shown (the pay wait and the callback both see one).
        self._handled: list[ReceivedNotification] = []
        self._paid = False
        self._closed = False  # expired or unknown to the provider: nothing to pay any more
        self._pay_notice: Notice | None = None  # the last pay's delivery outcome, shown with the verdict
        self._verdict_shown: list[Any] = []  # what the last notification put in the output area

        wide = {"description_width": "12em"}  # "partnerReferenceNo" in full
        self.amount = W.Text(value=amount, description="Amount (IDR)", placeholder="10000.00",
                             style=wide, layout=_WIDE)
        self.reference = W.Text(value=reference or self._new_reference(), description="partnerReferenceNo",
                                placeholder="letters and digits, new for each QR", style=wide, layout=_WIDE)
        self.validity = W.BoundedIntText(value=validity, min=_payment.MIN_VALIDITY_MINUTES,
                                         max=_payment.MAX_VALIDITY_MINUTES, description="Valid (minutes)",
                                         style=wide, layout=W.Layout(width="18em"))
        self.generate_button = W.Button(description="Generate QR", icon="qrcode", button_style="primary",
                                        layout=_AUTO)
        self.pay_button = W.Button(description="Pay in the sandbox", icon="credit-card", disabled=True,
                                   layout=_AUTO,
                                   tooltip="The sandbox's own route: marks the QR paid and sends the notification")
        self.status_button = W.Button(description="Check status", icon="refresh", disabled=True, layout=_AUTO)
        self.status = W.HTML(_status_html("No QR yet: click Generate QR", "#57606a"))
        self.status.add_class("snapbook-payment-status")
        self.qr = W.HTML("")
        self.qr.add_class("snapbook-qr")
        self.verdict = W.HTML("")
        self.verdict.add_class("snapbook-payment-verdict")
        self.generate_button.on_click(lambda _: self.generate())
        self.pay_button.on_click(lambda _: self.pay())
        self.status_button.on_click(lambda _: self.check_status())
        # The receiver's own on_notification stays the user's: the form listens beside it.
        self._unsubscribe = receiver.subscribe(self._on_notification) if receiver is not None else None
        super().__init__([
            self.amount, self.reference, self.validity,
            W.HBox([self.generate_button, self.pay_button, self.status_button]),
            self.status, self.qr, self.verdict,
        ])

    def close(self) -> None:
        """Stop listening to the receiver, then close the widgets (an old form is not kept alive)."""
        unsubscribe = getattr(self, "_unsubscribe", None)  # also called by __del__ after a refused __init__
        if unsubscribe is not None:
            unsubscribe()
            self._unsubscribe = None
        super().close()

    def __repr__(self) -> str:
        ref = "none" if self.open_qr is None else self.open_qr.reference_no
        return f"PaymentForm(referenceNo={ref!r}, status={self.status_text!r})"

    @property
    def status_text(self) -> str:
        """The status line as plain text ("Initiated: waiting for payment", "Success: …")."""
        return html.unescape(re.sub(r"<[^>]*>", "", self.status.value))

    @property
    def verdict_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]*>", "", self.verdict.value))

    @property
    def callback_url(self) -> str:
        return self._callback_url or self.receiver.url

    # -- state, always changed under the lock --

    def _set_status(self, text: str) -> None:
        colour = next((c for prefix, c in _STATUS_COLOURS.items() if text.startswith(prefix)), "#57606a")
        self.status.value = _status_html(text, colour)

    def _sync_buttons(self) -> None:
        is_open = self.open_qr is not None and not self._paid and not self._closed
        self.pay_button.disabled = not (self.sandbox is not None and is_open)
        self.status_button.disabled = self.open_qr is None

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self.error = exc
            self._show(notice_for(exc))

    # -- the actions (what the buttons do) --

    def generate(self) -> ServiceResponse | None:
        """Send qr-mpm-generate with the form's inputs; show the QR. Returns the ServiceResponse or None."""
        self.error = None
        self.generate_button.disabled = True
        try:
            now = self._clock()
            body = self._payment.generate_body(self.amount.value, self.reference.value, self.callback_url,
                                               validity_minutes=self.validity.value, now=now)
            answer = self.client.post(self._payment.GENERATE_PATH, body)
            qr = self._payment.OpenQr.from_answer(answer.data, body, now=now)
            from ..qris import parse as parse_qris  # not at the top: decimal, as for snapbook.payment

            svg = parse_qris(qr.qr_content).image(scale=4).svg()
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            self._fail(exc)
            return None
        finally:
            self.generate_button.disabled = False
        with self._lock:
            self.open_qr, self.notification, self._paid, self._handled = qr, None, False, []
            self._closed = False
            self._pay_notice, self._verdict_shown = None, []
            self.qr.value = (
                "<div style='display:flex;gap:1.5em;align-items:center'>"
                f"<div>{svg}</div>{_html_table(qr.summary())}</div>"
            )
            self._set_status(self._payment.status_line("01"))
            self.verdict.value = "<i>No notification yet.</i>"
            self.reference.value = self._new_reference()  # the next QR gets a new one; typing an old one replays
            self._sync_buttons()
            self._show(
                Notice("ok", f"{answer.response_code} {answer.response_message or ''}".strip(),
                       (f"POST {answer.path}, X-EXTERNAL-ID {answer.external_id}",),
                       "Show the QR to the payer; the notification comes to "
                       f"{mask_url(self.callback_url)} when it is paid."),
                _Table("Response body", answer.response_json().items()),
            )
        return answer

    def pay(self) -> dict[str, Any] | None:
        """Pay the open QR in the sandbox, then wait for its notification. Returns the pay answer or None."""
        self.error = None
        qr = self.open_qr
        if self.sandbox is None or qr is None:
            with self._lock:
                self._show(Notice("warn", "Nothing to pay in the sandbox.",
                                  hint="Generate a QR first; outside the sandbox, pay it with a QRIS app."))
            return None
        self.pay_button.disabled = True
        try:
            answer = self.sandbox.pay(qr.reference_no)
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            with self._lock:
                if self.open_qr is qr and str(getattr(exc, "response_code", "") or "").startswith("404"):
                    self._closed = True  # expired, unknown or already paid: the button would only fail again
                self._sync_buttons()
            self._fail(exc)
            return None
        delivery = answer.get("notification") or {}
        attempts = delivery.get("attempts") or []
        shown = Notice(
            "ok" if delivery.get("delivered") else "warn",
            f"Paid in the sandbox: {answer.get('responseCode', '')} {answer.get('responseMessage', '')}".strip(),
            tuple(f"notification attempt {i}: HTTP {a.get('httpStatus')} {a.get('responseCode') or a.get('error') or ''}"
                  .rstrip() for i, a in enumerate(attempts, 1)),
            "" if delivery.get("delivered") else (
                "The receiver answered but refused the notification: see why below."
                if any(a.get("httpStatus") for a in attempts)
                else "The callback never answered: is the receiver running at the callbackUrl?"),
        )
        with self._lock:
            self._paid = True
            self._pay_notice = shown
            self._sync_buttons()
            self._show(shown, *self._verdict_shown)  # the callback's thread may have shown a verdict already
        record = None
        if self.receiver is not None:
            try:
                record = self.receiver.wait(self._timeout, predicate=lambda n: self._is_for(n, qr))
            except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
                self._fail(exc)
                return answer
            self._on_notification(record)  # the callback may not have run yet: same update, once
        return answer

    def check_status(self) -> ServiceResponse | None:
        """Send qr-mpm-query for the open QR and show its latestTransactionStatus. Returns the answer or None."""
        self.error = None
        qr = self.open_qr
        if qr is None:
            with self._lock:
                self._show(Notice("warn", "No QR to check yet.", hint="Click Generate QR first."))
            return None
        try:
            answer = self.client.post(self._payment.QUERY_PATH,
                                      self._payment.query_body(qr.reference_no, qr.partner_reference_no))
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            self._fail(exc)
            return None
        data = answer.data
        status = data.get("latestTransactionStatus")
        line = self._payment.status_line(status, data.get("transactionStatusDesc"), paid_time=data.get("paidTime"))
        with self._lock:
            if self.open_qr is qr:  # a new QR generated meanwhile keeps its own status
                # A payment never goes back to Initiated: after a verified notification (or a 00), an
                # older 01 answer, crossing it on the way, does not undo the Success line.
                stale = status == "01" and self._paid
                if status == "00":
                    self._paid = True
                elif status == "07":
                    self._closed = True
                notified_success = self.notification is not None and self.notification.latest_transaction_status == "00"
                if not stale and (status != "00" or not notified_success):  # keep the notification's time
                    self._set_status(line)
                self._sync_buttons()
            self._show(
                Notice("info", f"{answer.response_code} {answer.response_message or ''}: {line}".strip(),
                       (f"POST {answer.path}, X-EXTERNAL-ID {answer.external_id}",)),
                _Table("Response body", answer.response_json().items()),
            )
        return answer

    # -- the notification (called on the receiver's thread) --

    @staticmethod
    def _is_for(record: ReceivedNotification, qr: OpenQr | None) -> bool:
        return qr is not None and record.original_reference_no == qr.reference_no

    def _on_notification(self, record: ReceivedNotification) -> None:
        """Show a notification of the open QR: Success when verified, the reason when refused. Thread-safe."""
        with self._lock:
            qr = self.open_qr
            if not self._is_for(record, qr) or any(r is record for r in self._handled):
                return  # another QR's (an older one), or already shown
            self._handled.append(record)
            if record.verified:
                if self._paid and self.notification is not None:
                    return  # a verified repeat after Success: the first one decided
                self.notification = record
                status = record.latest_transaction_status
                # Verified says who sent it, not that it was paid: only latestTransactionStatus 00 is Success.
                if status == "00":
                    self._paid = True
                    self._set_status("Success: paid, notification verified at "
                                     f"{record.time.astimezone(_signing.JAKARTA).isoformat()}")
                else:
                    self._set_status(self._payment.status_line(status, record.transaction_status_desc))
                self.verdict.value = (
                    f"<span style='color:{_COLORS['ok']}'>Notification <b>verified</b>: signature OK, "
                    f"X-TIMESTAMP fresh, fields well-formed; status {html.escape(printable(status or '', 8))}.</span>"
                )
                self._sync_buttons()
                self._show_verdict(
                    Notice("ok", "Notification verified", (
                        f"originalReferenceNo {record.original_reference_no}, "
                        f"latestTransactionStatus {record.latest_transaction_status}, "
                        f"amount {record.amount or ''} {record.currency or ''}".rstrip(),
                        f"answered HTTP {record.http_status} {record.response_code}",
                    ), "Only a verified notification proves who sent it; its latestTransactionStatus says "
                       "whether it was paid (00). Confirm with Check status if in doubt."),
                    record,
                )
                return
            fix = record.diagnosis.fix if record.diagnosis is not None else ""
            refused = Notice("error", f"Notification refused: {record.reason}",
                             (record.detail, f"answered HTTP {record.http_status} {record.response_code}"),
                             fix or "Check the client secret and that the callback URL is exactly the one registered.")
            if self.notification is not None:
                # A forged or broken one after the verified one: list it, keep the verified verdict.
                self._show_verdict(*self._verdict_shown, refused, record)
                return
            self.verdict.value = (
                f"<span style='color:{_COLORS['error']}'>Notification <b>refused</b> "
                f"({html.escape(record.reason)}): {html.escape(printable(record.detail, 300))}</span>"
            )
            self._show_verdict(refused, record)

    def _show_verdict(self, *objects: Any) -> None:
        """The notification's verdict below the pay outcome (called under the lock)."""
        self._verdict_shown = list(objects)
        self._show(*([self._pay_notice] if self._pay_notice is not None else []), *objects)
