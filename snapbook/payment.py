"""A first QRIS payment, as data: the generate and query bodies, their input rules, what a status means.

Pure (no widgets, no network, no printing): :class:`~snapbook.widgets.PaymentForm` and notebook 07
compose these with a :class:`~snapbook.client.ServiceClient`, a
:class:`~snapbook.receiver.NotificationReceiver` and, offline, the sandbox.

Whose rules: the body fields and the ``latestTransactionStatus`` codes are the **SNAP standard's**
(services 47 and 51); ``validityPeriod`` as an ISO-8601 time 15 to 60 minutes ahead and
``additionalInfo.callbackUrl`` are **Ifortepay's**; checking the amount, reference and validity
here, before any request, is **snapbook's** choice (a typo costs no X-EXTERNAL-ID and no log row
of a refusal).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .errors import PaymentInputError
from .masking import printable
from .signing import JAKARTA, Clock, make_timestamp, system_clock

__all__ = [
    "AMOUNT_VALUE",
    "DEFAULT_VALIDITY_MINUTES",
    "GENERATE_PATH",
    "MAX_VALIDITY_MINUTES",
    "MIN_VALIDITY_MINUTES",
    "PARTNER_REFERENCE",
    "QUERY_PATH",
    "TRANSACTION_STATUS",
    "OpenQr",
    "check_amount",
    "check_partner_reference",
    "check_validity",
    "generate_body",
    "new_partner_reference",
    "query_body",
    "status_line",
]

GENERATE_PATH = "/v1.0/qr/qr-mpm-generate"
QUERY_PATH = "/v1.0/qr/qr-mpm-query"
MIN_VALIDITY_MINUTES, MAX_VALIDITY_MINUTES, DEFAULT_VALIDITY_MINUTES = 15, 60, 15

#: ``latestTransactionStatus``: the SNAP standard's list (services 51/52). Ifortepay's QRIS uses 00, 01,
#: 04, 05 and 07 (an expired QR reads 07); 03 and 06 are the standard's, for other services.
TRANSACTION_STATUS = {
    "00": "Success",
    "01": "Initiated",
    "03": "Pending",
    "04": "Refunded",
    "05": "Canceled",
    "06": "Failed",
    "07": "Not found",
}

#: SNAP's amount ``value`` (``"10000.00"``) and a ``partnerReferenceNo``: the one definition the client,
#: the sandbox's checks, its OpenAPI document and the notification receiver all use.
AMOUNT_VALUE = re.compile(r"[0-9]{1,16}\.[0-9]{2}")
PARTNER_REFERENCE = re.compile(r"[A-Za-z0-9]{1,64}")


def check_amount(value: object) -> str:
    """SNAP's amount: digits, a point, exactly two decimals (``"10000.00"``), above zero."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not AMOUNT_VALUE.fullmatch(text) or Decimal(text) <= 0:
        raise PaymentInputError(
            f"The amount {printable(repr(value), 40)} is not a SNAP amount.",
            hint='Write rupiah with a point and two decimals, no thousands separator: "10000.00".',
            field="amount",
        )
    return text


def check_partner_reference(value: object) -> str:
    """``partnerReferenceNo``: your own id of the payment, letters and digits, at most 64."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not PARTNER_REFERENCE.fullmatch(text):
        raise PaymentInputError(
            f"The reference {printable(repr(value), 80)} is not a partnerReferenceNo.",
            hint="Use 1 to 64 letters and digits (no spaces, dashes or underscores), new for each QR.",
            field="partnerReferenceNo",
        )
    return text


def check_validity(minutes: object) -> int:
    """How long the QR may be paid, in whole minutes: 15 to 60 (Ifortepay's range)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
        MIN_VALIDITY_MINUTES <= minutes <= MAX_VALIDITY_MINUTES
    ):
        raise PaymentInputError(
            f"The validity {printable(repr(minutes), 40)} is not 15 to 60 minutes.",
            hint="Ifortepay accepts a validityPeriod 15 to 60 minutes ahead; 15 is the default.",
            field="validityPeriod",
        )
    return minutes


def new_partner_reference(clock: Clock | None = None, token: str | None = None) -> str:
    """A fresh ``partnerReferenceNo``: ``SNAPBOOK`` + Jakarta time + 6 random hex digits (or ``token``)."""
    now = (clock or system_clock)().astimezone(JAKARTA)
    return f"SNAPBOOK{now:%Y%m%d%H%M%S}{token if token is not None else secrets.token_hex(3).upper()}"


def generate_body(
    amount: object,
    partner_reference_no: object,
    callback_url: str,
    *,
    validity_minutes: object = DEFAULT_VALIDITY_MINUTES,
    now: datetime,
    currency: str = "IDR",
) -> dict[str, Any]:
    """The qr-mpm-generate body, its inputs checked: ``validityPeriod`` is ``now`` + the minutes, +07:00."""
    minutes = check_validity(validity_minutes)
    return {
        "partnerReferenceNo": check_partner_reference(partner_reference_no),
        "amount": {"value": check_amount(amount), "currency": currency},
        "validityPeriod": make_timestamp(now + timedelta(minutes=minutes)),
        "additionalInfo": {"callbackUrl": callback_url},
    }


def query_body(reference_no: str, partner_reference_no: str) -> dict[str, str]:
    """The qr-mpm-query body for a QR made by qr-mpm-generate (service code 47)."""
    return {
        "originalReferenceNo": reference_no,
        "originalPartnerReferenceNo": partner_reference_no,
        "serviceCode": "47",
    }


def status_line(status: str | None, description: str | None = None, *, paid_time: str | None = None) -> str:
    """One line for a ``latestTransactionStatus``: ``"Initiated: waiting for payment"``, ``"Success: ..."``."""
    code = printable(status or "", 8)
    name = TRANSACTION_STATUS.get(code, printable(description or "", 40) or f"status {code!r}")
    if code == "00":
        return f"Success: paid{' at ' + printable(paid_time, 40) if paid_time else ''} (status 00)"
    if code == "01":
        return "Initiated: waiting for payment (status 01)"
    if code == "07":
        return "Not found: the QR expired or is unknown (status 07); generate a new one"
    return f"{name} (status {code})"


@dataclass(frozen=True)
class OpenQr:
    """A generated QR the form follows: the provider's and your references, amount, content and expiry."""

    reference_no: str
    partner_reference_no: str
    amount: str
    currency: str
    qr_content: str
    validity_minutes: int
    expires_at: datetime

    @classmethod
    def from_answer(cls, data: Mapping[str, Any], body: Mapping[str, Any], *, now: datetime) -> OpenQr:
        """From a 2004700 answer and the body sent; the expiry the provider echoed, else the one asked."""
        sent_amount = body.get("amount") or {}
        info = data.get("additionalInfo") if isinstance(data.get("additionalInfo"), Mapping) else {}
        expires_text = str(info.get("validityPeriod") or body.get("validityPeriod") or "")
        try:
            expires_at = datetime.fromisoformat(expires_text)
        except ValueError:
            expires_at = now + timedelta(minutes=DEFAULT_VALIDITY_MINUTES)
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=JAKARTA)
        minutes = max(0, round((expires_at - now).total_seconds() / 60))
        return cls(
            reference_no=printable(str(data.get("referenceNo", "")), 64),
            partner_reference_no=printable(str(data.get("partnerReferenceNo") or body.get("partnerReferenceNo", "")), 64),
            amount=str(sent_amount.get("value", "")),
            currency=str(sent_amount.get("currency", "")),
            qr_content=str(data.get("qrContent", "")),
            validity_minutes=minutes,
            expires_at=expires_at.astimezone(JAKARTA),
        )

    def summary(self) -> list[tuple[str, str]]:
        """(name, value) rows: amount, referenceNo, partnerReferenceNo, validity, expiry."""
        return [
            ("amount", f"{self.amount} {self.currency}".strip()),
            ("referenceNo", self.reference_no),
            ("partnerReferenceNo", self.partner_reference_no),
            ("validity", f"{self.validity_minutes} minutes"),
            ("expires", self.expires_at.isoformat()),
        ]
