"""A merchant's notification endpoint on 127.0.0.1: receive Ifortepay's payment notifications and verify them.

:class:`NotificationReceiver` serves ``POST path`` on loopback (through the sandbox's runner,
:class:`snapbook.sandbox.server.ServerThread`, so it has the same bounds: request deadline,
connection limit, keep-alive timeout). Its :attr:`~NotificationReceiver.url` is the NotifyURL:
the callback URL to give the provider, and exactly what the notification signature covers.

Each request is checked in this order, answered like a careful merchant, and recorded as a
:class:`ReceivedNotification`:

===  ============  =============================================================================
 #   answer        check
===  ============  =============================================================================
 1   404 / 405     the path is :attr:`~NotificationReceiver.path`, the method POST
 2   413 4135200   the body is at most ``max_body_bytes`` (a larger declared one is not read)
 3   400 4005202   ``X-TIMESTAMP`` and ``X-SIGNATURE`` are present and not empty
 4   400 4005201   ``X-TIMESTAMP`` is SNAP's ``yyyy-MM-ddTHH:mm:ss(.SSS)TZD``; ``X-VERSION`` a token
 5   400 4005200   the body can be hashed (SNAP's minify needs JSON when it has whitespace)
 6   401 4015200   ``X-SIGNATURE`` = base64(HMAC-SHA512(secret, NotifyURL:X-VERSION:hash:ts))
                   (``Unauthorized. [Signature]``; the service doctor names the mistake)
 7   401 4015200   ``X-TIMESTAMP`` within ``window`` seconds of the clock
                   (``Unauthorized. [X-TIMESTAMP out of range]``)
 8   400 4005200   the body is a JSON object
 9   400 4005202   ``latestTransactionStatus`` and ``originalReferenceNo`` (or
                   ``originalPartnerReferenceNo``) are present
10   400 4005201   their formats, and ``amount`` {``value`` "10000.00", ``currency``} when present
 -   200 2005200   ``Successful``; a repeat of a verified notification is answered 200 again
                   and marked ``duplicate`` (the provider retries until it gets HTTP 200)
===  ============  =============================================================================

Whose rules: the signature, its string to sign and ``X-VERSION`` (default ``v1``) are
Ifortepay's; ``2005200`` for a received notification is the SNAP standard's (service 52); the
error codes 4005200/4005201/4005202/4015200/4135200, the check order, the freshness window and
the body checks are this receiver's own choices (Ifortepay only needs HTTP 200 to stop
retrying), modelled on SNAP's ``HTTP + service + case`` codes.

Both body shapes are accepted: the notification (``originalReferenceNo``,
``latestTransactionStatus``, ``amount``, ``additionalInfo``) and the query-response-shaped one
of Ifortepay's newest page (with ``responseCode``, ``serviceCode``, ``paidTime``).

Nothing here logs or shows the client secret; ``X-SIGNATURE`` is kept masked only.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .errors import BodyFormatError, ConfigError, NotificationTimeoutError, SnapbookError, TimestampError
from .masking import mask, mask_headers, printable
from .payment import AMOUNT_VALUE
from .service_signing import DEFAULT_VERSION, FRESHNESS_SECONDS, _secret_bytes, verify_notification
from .signing import Clock, system_clock

if TYPE_CHECKING:
    import pandas as pd

    from .doctor import Diagnosis

__all__ = [
    "RECEIVER_CODES",
    "NotificationCheck",
    "NotificationReceiver",
    "ReceivedNotification",
    "check_notification",
]

_LOGGER = logging.getLogger("snapbook.receiver")

#: The receiver's answers: reason -> (HTTP status, responseCode, responseMessage). ``2005200`` is
#: SNAP's; the others are this receiver's own choice (documented in the module docstring).
RECEIVER_CODES: dict[str, tuple[int, str, str]] = {
    "valid": (200, "2005200", "Successful"),
    "not-found": (404, "4045200", "Not Found"),
    "method": (405, "4055200", "Method Not Allowed"),
    "too-large": (413, "4135200", "Payload Too Large"),
    "missing-header": (400, "4005202", "Invalid Mandatory Field"),
    "bad-header": (400, "4005201", "Invalid Field Format"),
    "body-not-json": (400, "4005200", "Bad Request"),
    "signature-mismatch": (401, "4015200", "Unauthorized. [Signature]"),
    "not-base64": (401, "4015200", "Unauthorized. [Signature]"),
    "timestamp-stale": (401, "4015200", "Unauthorized. [X-TIMESTAMP out of range]"),
    "timestamp-future": (401, "4015200", "Unauthorized. [X-TIMESTAMP out of range]"),
    "missing-field": (400, "4005202", "Invalid Mandatory Field"),
    "bad-field": (400, "4005201", "Invalid Field Format"),
    "error": (500, "5005200", "General Error"),
}

Shape = Literal["notification", "query-response", ""]

#: At most this many requests are kept in :attr:`NotificationReceiver.notifications` by default.
MAX_RECORDS = 1000

_AMOUNT = AMOUNT_VALUE  # snapbook.payment's (ASCII digits only: \d would also take "١٠.٠٠")
_STATUS = re.compile(r"[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,16}")
_SHOWN = 200  # characters of any text from the network shown in a repr


def _text(value: object, limit: int = _SHOWN) -> str:
    """Network text made safe to show: control characters escaped, clipped."""
    return printable(value if isinstance(value, str) else str(value), limit)


@dataclass(frozen=True)
class ReceivedNotification:
    """One request the receiver answered: what came in, the verdict, and what the body said.

    ``headers`` are masked (``X-SIGNATURE`` shows a prefix and suffix only). ``body`` is the
    parsed JSON (None when it could not be parsed, with ``body_error`` saying why); fields are
    read from it even when the signature failed, so a mistake can be seen, but only
    ``verified`` ones are to be trusted. ``diagnosis`` is the service doctor's, when the
    signature did not verify.
    """

    time: datetime
    method: str
    path: str
    headers: Mapping[str, str] = field(repr=False)
    http_status: int
    response_code: str
    response_message: str
    #: A stable reason: "valid" or a key of :data:`RECEIVER_CODES`.
    reason: str
    #: One sentence: what was wrong and how to fix it ("" when valid).
    detail: str = ""
    body_size: int = 0
    body: Any = field(default=None, repr=False)
    body_error: str = ""
    shape: Shape = ""
    original_reference_no: str | None = None
    original_partner_reference_no: str | None = None
    latest_transaction_status: str | None = None
    transaction_status_desc: str | None = None
    amount: str | None = None
    currency: str | None = None
    #: A verified repeat (same references and status) of an earlier verified notification.
    duplicate: bool = False
    diagnosis: Diagnosis | None = field(default=None, repr=False)

    @property
    def verified(self) -> bool:
        """The signature holds, the timestamp is fresh and the body is well-formed (answered 200)."""
        return self.reason == "valid"

    @property
    def verdict(self) -> str:
        return "verified" if self.verified else "rejected"

    @property
    def signature(self) -> str:
        """``X-SIGNATURE`` as received, masked."""
        return self.headers.get("x-signature", "")

    @property
    def timestamp(self) -> str:
        return self.headers.get("x-timestamp", "")

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) rows for a table; every value escaped for display, the signature masked."""
        rows = [
            ("verdict", f"{self.verdict} ({self.reason})"),
            ("answer", f"HTTP {self.http_status} {self.response_code} {self.response_message}"),
            ("detail", self.detail),
            ("received", self.time.isoformat()),
            ("request", f"{self.method} {self.path}"),
            ("shape", self.shape),
            ("originalReferenceNo", self.original_reference_no or ""),
            ("originalPartnerReferenceNo", self.original_partner_reference_no or ""),
            (
                "latestTransactionStatus",
                " ".join(x for x in (self.latest_transaction_status, self.transaction_status_desc) if x),
            ),
            ("amount", " ".join(x for x in (self.amount, self.currency) if x)),
            ("duplicate", "yes" if self.duplicate else ""),
            ("body", self.body_error or f"{self.body_size} bytes"),
        ]
        rows += [(f"header {name}", value) for name, value in self.headers.items()]
        if self.diagnosis is not None:
            rows += [
                ("doctor", f"{self.diagnosis.cause}: {self.diagnosis.summary}"),
                ("fix", self.diagnosis.fix),
            ]
        return [(k, _text(v)) for k, v in rows if v]

    def __repr__(self) -> str:
        parts = [
            f"{self.verdict} HTTP {self.http_status} {self.response_code}",
            f"originalReferenceNo={_text(self.original_reference_no, 64)!r}"
            if self.original_reference_no
            else "",
            f"status={_text(self.latest_transaction_status, 8)!r}" if self.latest_transaction_status else "",
            f"amount={_text(self.amount or '', 24)} {_text(self.currency or '', 8)}" if self.amount else "",
            "duplicate" if self.duplicate else "",
            f"X-SIGNATURE {_text(self.signature, 40)}" if self.signature else "",
            f"{self.reason}: {_text(self.detail, 160)}" if not self.verified else "",
            f"doctor: {self.diagnosis.cause}" if self.diagnosis is not None else "",
        ]
        return "ReceivedNotification(" + ", ".join(p for p in parts if p) + ")"

    def _repr_html_(self) -> str:
        colour = "green" if self.verified else "red"
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in self.rows()
        )
        return (
            f"<div class='snapbook-notification'><b style='color:{colour}'>{html.escape(self.verdict)}</b>"
            f"<table>{body}</table></div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """One row of :meth:`NotificationReceiver.to_dataframe` (display-safe strings)."""
        return {
            "time": self.time,
            "verdict": self.verdict,
            "reason": self.reason,
            "http_status": self.http_status,
            "response_code": self.response_code,
            "detail": _text(self.detail),
            "shape": self.shape,
            "original_reference_no": _text(self.original_reference_no or "", 80),
            "original_partner_reference_no": _text(self.original_partner_reference_no or "", 80),
            "latest_transaction_status": _text(self.latest_transaction_status or "", 8),
            "amount": _text(self.amount or "", 24),
            "currency": _text(self.currency or "", 8),
            "duplicate": self.duplicate,
            "x_timestamp": _text(self.timestamp, 40),
            "x_signature": _text(self.signature, 40),
            "doctor": self.diagnosis.cause if self.diagnosis is not None else "",
        }


# --- checking one request (pure: no I/O) ---------------------------------------------------


@dataclass
class NotificationCheck:
    """What :func:`check_notification` found: a ``reason`` (a key of :data:`RECEIVER_CODES`) and why."""

    reason: str = "valid"
    detail: str = ""
    body: Any = None
    body_error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def _field_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


def _read_fields(body: Any) -> dict[str, Any]:
    """What the body says, whatever its validity (for display); non-strings are left out."""
    if not isinstance(body, dict):
        return {}
    amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
    shape: Shape = "query-response" if ("responseCode" in body or "serviceCode" in body) else "notification"
    return {
        "shape": shape,
        "original_reference_no": _field_text(body, "originalReferenceNo"),
        "original_partner_reference_no": _field_text(body, "originalPartnerReferenceNo"),
        "latest_transaction_status": _field_text(body, "latestTransactionStatus"),
        "transaction_status_desc": _field_text(body, "transactionStatusDesc"),
        "amount": _field_text(amount, "value"),
        "currency": _field_text(amount, "currency"),
    }


def _parse_body(data: bytes) -> tuple[Any, str]:
    try:
        return json.loads(data.decode("utf-8")), ""
    except RecursionError:
        return None, "the body is JSON nested too deeply to parse"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the body is not JSON ({_text(exc, 120)})"


def _check_fields(body: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) for the first body field a careful merchant refuses; None when all hold."""
    status = body.get("latestTransactionStatus")
    if status is None:
        return "missing-field", "latestTransactionStatus is missing [latestTransactionStatus]."
    if not isinstance(status, str) or not _STATUS.fullmatch(status):
        return "bad-field", 'latestTransactionStatus must be two digits, e.g. "00" [latestTransactionStatus].'
    refs = [body.get(k) for k in ("originalReferenceNo", "originalPartnerReferenceNo")]
    if all(r is None for r in refs):
        return (
            "missing-field",
            "originalReferenceNo (or originalPartnerReferenceNo) is missing [originalReferenceNo].",
        )
    for name, ref in zip(("originalReferenceNo", "originalPartnerReferenceNo"), refs):
        if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= 64 or not ref.isprintable()):
            return "bad-field", f"{name} must be 1 to 64 printable characters [{name}]."
    if "amount" in body:
        amount = body["amount"]
        if not isinstance(amount, dict):
            return "bad-field", "amount must be an object {value, currency} [amount]."
        value = amount.get("value")
        if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
            return (
                "bad-field",
                'amount.value must be digits with two decimals, e.g. "10000.00" [amount.value].',
            )
        currency = amount.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            return "bad-field", 'amount.currency must be a 3-letter code such as "IDR" [amount.currency].'
    return None


def check_notification(
    secret: bytes,
    notify_url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    default_version: str = DEFAULT_VERSION,
    clock: Clock = system_clock,
    window: float = FRESHNESS_SECONDS,
) -> NotificationCheck:
    """Steps 3-10 of the module docstring over one request's lower-cased headers and body bytes."""
    missing = [h for h in ("X-TIMESTAMP", "X-SIGNATURE") if not headers.get(h.lower(), "").strip()]
    if missing:
        return NotificationCheck(
            "missing-header", f"Missing or empty header {', '.join(missing)} [{missing[0]}]."
        )
    timestamp = headers["x-timestamp"].strip()
    version = headers.get("x-version", default_version).strip() or default_version
    if not _VERSION.fullmatch(version):
        return NotificationCheck(
            "bad-header", f"X-VERSION {_text(version, 40)!r} is not a version such as v1 [X-VERSION]."
        )
    try:
        verification = verify_notification(
            secret,
            notify_url,
            body,
            timestamp,
            headers["x-signature"],
            version=version,
            clock=clock,
            window=window,
        )
    except TimestampError as exc:
        return NotificationCheck("bad-header", f"{_text(exc.message, 200)} [X-TIMESTAMP]")
    except BodyFormatError as exc:
        return NotificationCheck(
            "body-not-json", f"{_text(exc.message, 200)}", body_error="not JSON, cannot be minified"
        )
    parsed, error = _parse_body(body)
    outcome = NotificationCheck(body=parsed, body_error=error, fields=_read_fields(parsed))
    if not verification.ok:
        outcome.reason, outcome.detail = verification.reason, verification.detail
        if verification.reason in ("signature-mismatch", "not-base64"):
            outcome.detail += (
                f" Expected base64(HMAC-SHA512(client secret, '{notify_url}:{version}:"
                "sha256hex(minified body):X-TIMESTAMP'))."
            )
        return outcome
    if error:
        outcome.reason, outcome.detail = "body-not-json", f"The signature holds but {error}."
    elif not isinstance(parsed, dict):
        outcome.reason, outcome.detail = "body-not-json", "The body is JSON but not an object."
        outcome.body_error = "not a JSON object"
    else:
        refused = _check_fields(parsed)
        if refused is not None:
            outcome.reason, outcome.detail = refused
    return outcome


# --- the server --------------------------------------------------------------------------


class NotificationReceiver:
    """A notification endpoint on ``http://127.0.0.1:<port><path>`` that verifies each POST.

    >>> with NotificationReceiver(secret) as receiver:        # doctest: +SKIP
    ...     generate(callback_url=receiver.url); sandbox.pay(reference_no)
    ...     receiver.wait(10)                                   # the first verified notification

    ``client_secret`` is the merchant's secret registered with Ifortepay (the notification's
    HMAC key); ``version`` the X-VERSION assumed when the header is absent; ``window`` the
    freshness of X-TIMESTAMP in seconds either way of ``clock()``; ``on_notification(n)`` is
    called (on a worker thread, in order) for every recorded request, and an exception it raises
    is logged and counted in :attr:`callback_errors`, never answered to the provider. At most
    ``max_records`` requests are kept (the oldest are dropped). ``public_url``: the callback URL
    registered with a real provider when it reaches this receiver through a tunnel or proxy; the
    notification signature covers that URL, so it is what :attr:`url` returns and verifies against.
    ``path``: the local path served; by default ``public_url``'s path (a tunnel forwards it as it
    is), else ``/notify/qris``.
    """

    def __init__(
        self,
        client_secret: str | bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str | None = None,
        version: str = DEFAULT_VERSION,
        window: float = FRESHNESS_SECONDS,
        clock: Clock | None = None,
        max_body_bytes: int = 64 * 1024,
        max_records: int = MAX_RECORDS,
        on_notification: Callable[[ReceivedNotification], object] | None = None,
        keep_alive_timeout: float = 5.0,
        public_url: str | None = None,
    ) -> None:
        from .sandbox.server import check_address  # the sandbox's own rules for a listening address

        self._secret = _secret_bytes(client_secret)  # typed error for an empty or padded secret
        self.host = check_address(host, port)
        self._requested_port = port
        if path is None:
            # A tunnel forwards the registered URL's path as it is: serve that path (else /notify/qris).
            try:
                public_path = urlsplit(public_url).path if isinstance(public_url, str) else ""
            except ValueError:  # an unreadable public_url is refused just below, by name
                public_path = ""
            path = public_path if public_path.startswith("/") and public_path != "/" else "/notify/qris"
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or path.startswith("//")
            or not (path.isascii() and path.isprintable() and not any(c in path for c in " ?#%"))
        ):
            raise ConfigError(
                f"path must be a plain absolute path such as /notify/qris, not {_text(repr(path), 80)}.",
                hint="Letters, digits and / - _ . only, no query string: "
                "the provider posts to the URL as given.",
            )
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise ConfigError(
                f"version {_text(repr(version), 40)} is not an X-VERSION such as v1.", hint="Leave it v1."
            )
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 86400:
            raise ConfigError(
                f"window must be a number of seconds from 0 to 86400, not {window!r}.",
                hint="300 (five minutes either way) is what the sandbox and most providers use.",
            )
        for name, value, upper in (
            ("max_body_bytes", max_body_bytes, 16 * 1024 * 1024),
            ("max_records", max_records, 10**6),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
                raise ConfigError(
                    f"{name} must be a whole number from 1 to {upper}, not {value!r}.",
                    hint=f"Leave {name} at its default.",
                )
        if on_notification is not None and not callable(on_notification):
            raise ConfigError(
                "on_notification must be callable: on_notification(received).",
                hint="Pass a function or None.",
            )
        if public_url is not None:
            try:
                parts = urlsplit(public_url) if isinstance(public_url, str) else None
            except ValueError:  # e.g. an unclosed IPv6 bracket
                parts = None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.query
                or parts.fragment
                or not (public_url.isascii() and public_url.isprintable() and " " not in public_url)
            ):
                raise ConfigError(
                    f"public_url must be an absolute http(s) URL, not {_text(repr(public_url), 120)}.",
                    hint="The callback URL registered with the provider, exactly, e.g. "
                    "https://abc.example-tunnel.io/notify/qris (it forwards to this receiver).",
                )
        #: The NotifyURL the provider posts to when it is not this receiver's own address (a tunnel).
        self.public_url = public_url
        self.path = path
        self.version = version
        self.window = float(window)
        self.clock: Clock = clock or system_clock
        self.max_body_bytes = max_body_bytes
        self.on_notification = on_notification
        self.keep_alive_timeout = keep_alive_timeout
        #: How many times ``on_notification`` (or a :meth:`subscribe`d listener) raised.
        self.callback_errors = 0
        #: How many old records were dropped to stay within ``max_records``.
        self.dropped = 0
        self._records: deque[ReceivedNotification] = deque(maxlen=max_records)
        self._verified_keys: set[tuple[str | None, str | None, str | None]] = set()
        self._changed = threading.Condition()
        self._doctor_busy = threading.Lock()
        self._runner: Any = None
        self._callbacks: ThreadPoolExecutor | None = None
        self._listeners: tuple[Callable[[ReceivedNotification], object], ...] = ()
        self._listeners_lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> NotificationReceiver:
        """Start serving in a background thread; returns self. Does nothing if already running."""
        if self.running:
            return self
        from .sandbox.server import ServerThread

        self._callbacks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapbook-receiver-callback")
        runner = ServerThread(
            _App(self),
            host=self.host,
            port=self._requested_port,
            keep_alive_timeout=self.keep_alive_timeout,
            name="receiver",
        )
        try:
            self._runner = runner.start(timeout)
        except BaseException:
            self._callbacks.shutdown(wait=False)
            self._callbacks = None
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and end the callback thread. Safe to call twice; the records stay."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(timeout)
        callbacks, self._callbacks = self._callbacks, None
        if callbacks is not None:
            callbacks.shutdown(wait=False, cancel_futures=True)

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.running

    def __enter__(self) -> NotificationReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise SnapbookError(
                "The notification receiver is not running.", hint="Call start() or use it in a with block."
            )
        port: int = self._runner.port
        return port

    @property
    def url(self) -> str:
        """The NotifyURL: give exactly this to the provider (``callbackUrl``); the signature covers it.

        ``public_url`` when given (a public address that forwards here: the provider signs that one),
        else :attr:`local_url`.
        """
        return self.public_url or self.local_url

    @property
    def local_url(self) -> str:
        """Where this receiver listens: ``http://127.0.0.1:<port><path>``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    # --- what arrived -------------------------------------------------------------------

    @property
    def notifications(self) -> tuple[ReceivedNotification, ...]:
        """Every recorded request, oldest first (a snapshot; safe from any thread)."""
        with self._changed:
            return tuple(self._records)

    @property
    def verified(self) -> tuple[ReceivedNotification, ...]:
        """The verified notifications, oldest first."""
        return tuple(n for n in self.notifications if n.verified)

    def __len__(self) -> int:
        with self._changed:
            return len(self._records)

    def clear(self) -> None:
        """Forget every record (and which notifications were seen, for ``duplicate``)."""
        with self._changed:
            self._records.clear()
            self._verified_keys.clear()

    def wait(
        self, timeout: float = 10.0, predicate: Callable[[ReceivedNotification], bool] | None = None
    ) -> ReceivedNotification:
        """The first record (already received or arriving within ``timeout`` s) matching ``predicate``.

        ``predicate`` defaults to "verified". Raises :class:`NotificationTimeoutError` when none
        arrives in time. To wait for one payment: ``predicate=lambda n: n.verified and
        n.original_reference_no == reference_no``.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= 3600:
            raise ConfigError(
                f"timeout must be 0 to 3600 seconds, not {timeout!r}.", hint="wait(10) waits ten seconds."
            )
        test = predicate or (lambda n: n.verified)
        found: list[ReceivedNotification] = []

        def match() -> bool:
            found[:] = [n for n in self._records if test(n)][:1]
            return bool(found)

        with self._changed:
            if self._changed.wait_for(match, timeout):
                return found[0]
            seen = len(self._records)
        raise NotificationTimeoutError(
            f"No matching notification arrived at {self.url if self.running else 'the receiver'} within "
            f"{timeout:g} s ({seen} request(s) recorded).",
            hint="Check that the provider was given receiver.url as callbackUrl "
            "and that the payment was made; "
            "look at receiver.notifications for refused ones.",
        )

    def to_dataframe(self) -> pd.DataFrame:
        """One row per recorded request: verdict, answer, references, status, amount (secrets masked)."""
        import pandas as pd

        rows = [n.to_dict() for n in self.notifications]
        order = [
            "time",
            "verdict",
            "reason",
            "http_status",
            "response_code",
            "detail",
            "shape",
            "original_reference_no",
            "original_partner_reference_no",
            "latest_transaction_status",
            "amount",
            "currency",
            "duplicate",
            "x_timestamp",
            "x_signature",
            "doctor",
        ]
        frame = pd.DataFrame(rows, columns=order)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame

    # --- display ------------------------------------------------------------------------

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        records = self.notifications
        ok = sum(n.verified for n in records)
        return (
            f"<NotificationReceiver {where}, secret {mask(self._secret)}, "
            f"{len(records)} request(s), {ok} verified>"
        )

    def _repr_html_(self) -> str:
        records = self.notifications
        head = (
            f"<p>Notification receiver <code>{html.escape(self.url if self.running else 'stopped')}</code>: "
            f"{len(records)} request(s), {sum(n.verified for n in records)} verified.</p>"
        )
        if not records:
            return head
        cols = (
            "received",
            "verdict",
            "answer",
            "originalReferenceNo",
            "latestTransactionStatus",
            "amount",
            "detail",
        )
        th = "".join(f"<th style='text-align:left'>{c}</th>" for c in cols)
        trs = []
        for n in records[-50:]:
            cells = dict(n.rows())
            colour = "green" if n.verified else "red"
            values = [cells.get(c, "") for c in cols]
            values[1] = n.verdict
            trs.append(
                "<tr>"
                + "".join(
                    f"<td style='text-align:left{';color:' + colour if i == 1 else ''}'>{html.escape(v)}</td>"
                    for i, v in enumerate(values)
                )
                + "</tr>"
            )
        more = f"<p>(the last 50 of {len(records)})</p>" if len(records) > 50 else ""
        return f"{head}<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>{more}"

    # --- serving (runs on the server thread's event loop) --------------------------------

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            return
        arrived = self._now()
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
        body_size = 0
        close = False
        try:
            if path != self.path:
                outcome = NotificationCheck("not-found", f"Only {self.path} is served here (POST).")
            elif method != "POST":
                outcome = NotificationCheck(
                    "method", f"{_text(method, 16)} is not served; notifications are POSTed."
                )
            else:
                body, oversize, close = await self._read_body(receive, headers.get("content-length", ""))
                if oversize:
                    close = True
                    outcome = NotificationCheck(
                        "too-large",
                        f"The body is over the {self.max_body_bytes}-byte limit; it was not parsed.",
                        body_error="too large",
                    )
                else:
                    body_size = len(body)
                    outcome = check_notification(
                        self._secret,
                        self.url,
                        headers,
                        body,
                        default_version=self.version,
                        clock=self.clock,
                        window=self.window,
                    )
                    diagnosis = None
                    if outcome.reason in ("signature-mismatch", "not-base64"):
                        diagnosis = await self._diagnose(headers, body)
                        if diagnosis is not None and diagnosis.cause != "unidentified":
                            outcome.detail += f" The doctor: {diagnosis.summary}"
                    outcome.fields["diagnosis"] = diagnosis
        except _Disconnected:
            return  # nothing to answer; a provider retries
        except Exception as exc:  # never a traceback to the peer; the record says what happened
            outcome = NotificationCheck(
                "error", f"The receiver failed: {type(exc).__name__}: {_text(exc, 160)}"
            )
        status, code, message = RECEIVER_CODES[outcome.reason]
        record = self._record(arrived, method, path, headers, status, code, message, outcome, body_size)
        answer = json.dumps(
            {"responseCode": code, "responseMessage": message}, separators=(",", ":")
        ).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
        ]
        if close:
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": answer})
        self._call_back(record)

    async def _read_body(self, receive: Any, declared: str) -> tuple[bytes, bool, bool]:
        """(body, over the limit?, must close?), read the sandbox's bounded way."""
        from starlette.requests import ClientDisconnect

        from .sandbox.app import _read_body  # the one bounded body reader every snapbook server uses

        try:
            body, oversize, close = await _read_body(receive, self.max_body_bytes, declared)
        except ClientDisconnect:
            raise _Disconnected from None
        return body, oversize is not None, close

    async def _diagnose(self, headers: Mapping[str, str], body: bytes) -> Diagnosis | None:
        """The service doctor's verdict, off the event loop; one at a time (a flood gets none)."""
        if not self._doctor_busy.acquire(blocking=False):
            return None
        try:
            from .doctor import diagnose_notification

            return await asyncio.to_thread(
                diagnose_notification, self.url, dict(headers), body, client_secret=self._secret
            )
        except Exception:  # the doctor explains; it must never break the answer
            return None
        finally:
            self._doctor_busy.release()

    def _now(self) -> datetime:
        try:
            return self.clock()
        except Exception:
            return system_clock()

    def _record(
        self,
        arrived: datetime,
        method: str,
        path: str,
        headers: Mapping[str, str],
        status: int,
        code: str,
        message: str,
        outcome: NotificationCheck,
        body_size: int,
    ) -> ReceivedNotification:
        fields = dict(outcome.fields)
        diagnosis = fields.pop("diagnosis", None)
        shown_headers = {
            k: _text(v, 120)
            for k, v in mask_headers(headers).items()
            if k
            in ("x-timestamp", "x-signature", "x-version", "content-type", "content-length", "user-agent")
        }
        with self._changed:
            duplicate = False
            if outcome.reason == "valid":
                key = (
                    fields.get("original_reference_no"),
                    fields.get("original_partner_reference_no"),
                    fields.get("latest_transaction_status"),
                )
                duplicate = key in self._verified_keys
                if len(self._verified_keys) < 100_000:
                    self._verified_keys.add(key)
            record = ReceivedNotification(
                time=arrived,
                method=_text(method, 16),
                path=_text(path, 200),
                headers=shown_headers,
                http_status=status,
                response_code=code,
                response_message=message,
                reason=outcome.reason,
                detail=outcome.detail,
                body_size=body_size,
                body=outcome.body,
                body_error=outcome.body_error,
                duplicate=duplicate,
                diagnosis=diagnosis,
                **fields,
            )
            if len(self._records) == self._records.maxlen:
                self.dropped += 1
            self._records.append(record)
            self._changed.notify_all()
        return record

    def subscribe(self, listener: Callable[[ReceivedNotification], object]) -> Callable[[], None]:
        """Also call ``listener(record)`` for every recorded request, after ``on_notification``, on
        the same worker thread; returns an unsubscribe function (a form calls it when closed)."""
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def _call_back(self, record: ReceivedNotification) -> None:
        callbacks = self._callbacks
        if (self.on_notification is None and not self._listeners) or callbacks is None:
            return
        try:
            callbacks.submit(self._run_callback, record)
        except RuntimeError:  # shut down meanwhile
            pass

    def _run_callback(self, record: ReceivedNotification) -> None:
        for callback in (self.on_notification, *self._listeners):
            if callback is None:
                continue
            try:
                callback(record)
            except Exception as exc:
                self.callback_errors += 1
                _LOGGER.warning("on_notification raised %s: %s", type(exc).__name__, _text(exc, 200))


class _App:
    """The ASGI app of one receiver, holding it weakly: a receiver forgotten in a notebook can be
    collected, and its runner's finalizer then stops the server."""

    def __init__(self, receiver: NotificationReceiver) -> None:
        self._receiver = weakref.ref(receiver)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        receiver = self._receiver()
        if receiver is None:
            return  # being shut down: the connection closes unanswered
        await receiver._asgi(scope, receive, send)


class _Disconnected(Exception):
    """The provider went away before sending the whole body."""
