"""The sandbox's QRIS payments: generate, pay, expire and query, with time passed in (no clock of its own).

A QR is ``01`` Initiated until paid (``00`` Success, with ``paidTime``) or until its validity
period ends (``07`` Not found, as Ifortepay's QRIS table reads an expired QR). Thread-safe and
bounded: at most ``max_qrs`` are kept, the oldest forgotten first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from ..payment import TRANSACTION_STATUS
from ..qris import build_dynamic
from ..signing import JAKARTA

__all__ = ["STATUS_TEXT", "PayOutcome", "QrRecord", "QrStore"]

#: latestTransactionStatus -> transactionStatusDesc of the three a sandbox QR can be in (the names
#: are snapbook.payment's table; Ifortepay's QRIS answers these).
STATUS_TEXT = {code: TRANSACTION_STATUS[code] for code in ("00", "01", "07")}

#: The sandbox merchant printed in every QR (tags 51, 59, 60): a made-up acquirer 93600999.
MERCHANT_NAME = "SNAPBOOK SANDBOX"
MERCHANT_CITY = "JAKARTA"
MERCHANT_PAN = "9360099900000000001"


@dataclass(frozen=True)
class QrRecord:
    """One generated QR and what happened to it."""

    reference_no: str
    partner_reference_no: str
    partner_id: str
    client_key: str
    value: str
    currency: str
    terminal_id: str | None
    callback_url: str
    created: datetime
    expires: datetime
    qr_content: str
    #: The generate parameters, to tell a duplicate (409SS01) from an inconsistency (404SS18).
    fingerprint: str
    paid_time: datetime | None = None
    issuer: str = ""
    retrieval_reference_no: str = ""

    def status(self, now: datetime) -> str:
        """latestTransactionStatus at ``now``: 00 paid, 07 expired unpaid, else 01."""
        if self.paid_time is not None:
            return "00"
        return "07" if now >= self.expires else "01"


PayResult = Literal["paid", "unknown", "expired", "already-paid"]


@dataclass(frozen=True)
class PayOutcome:
    result: PayResult
    record: QrRecord | None = None


class QrStore:
    """Generated QRs by referenceNo, and by (partner, partnerReferenceNo)."""

    def __init__(self, max_qrs: int = 20_000) -> None:
        self.max_qrs = max_qrs
        self._by_reference: OrderedDict[str, QrRecord] = OrderedDict()
        self._by_partner_ref: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def find_partner_reference(self, partner_id: str, partner_reference_no: str) -> QrRecord | None:
        with self._lock:
            ref = self._by_partner_ref.get((partner_id, partner_reference_no))
            return None if ref is None else self._by_reference.get(ref)

    def get(self, reference_no: str) -> QrRecord | None:
        with self._lock:
            return self._by_reference.get(reference_no)

    def generate(
        self,
        *,
        partner_id: str,
        client_key: str,
        partner_reference_no: str,
        value: str,
        currency: str,
        terminal_id: str | None,
        callback_url: str,
        now: datetime,
        expires: datetime,
        fingerprint: str,
    ) -> tuple[QrRecord, QrRecord | None]:
        """(the new QR, None), or (the QR already made for this partnerReferenceNo, that same QR)."""
        reference_no = now.astimezone(JAKARTA).strftime("%y%m%d%H%M%S") + secrets.token_hex(5).upper()
        content = build_dynamic(
            amount=value,
            merchant_name=MERCHANT_NAME,
            merchant_city=MERCHANT_CITY,
            merchant_pan=MERCHANT_PAN,
            merchant_id=partner_id[:15] if partner_id.isalnum() else "SNAPBOOK",
            bill_number=partner_reference_no[:25],
            terminal_label=terminal_id,
        )
        record = QrRecord(
            reference_no, partner_reference_no, partner_id, client_key, value, currency, terminal_id,
            callback_url, now, expires, content, fingerprint,
        )  # fmt: skip
        key = (partner_id, partner_reference_no)
        with self._lock:
            existing = self._by_partner_ref.get(key)
            if existing is not None and existing in self._by_reference:
                old = self._by_reference[existing]
                return old, old
            self._by_reference[reference_no] = record
            self._by_partner_ref[key] = reference_no
            while len(self._by_reference) > self.max_qrs:
                _, dropped = self._by_reference.popitem(last=False)
                self._by_partner_ref.pop((dropped.partner_id, dropped.partner_reference_no), None)
        return record, None

    def pay(self, reference_no: str, *, now: datetime, issuer: str = "") -> PayOutcome:
        """Mark a QR paid at ``now``, once, if it has not expired."""
        with self._lock:
            record = self._by_reference.get(reference_no)
            if record is None:
                return PayOutcome("unknown")
            status = record.status(now)
            if status == "00":
                return PayOutcome("already-paid", record)
            if status == "07":
                return PayOutcome("expired", record)
            paid = replace(
                record,
                paid_time=now,
                issuer=issuer or "SANDBOXPAY",
                retrieval_reference_no=secrets.token_hex(6).upper(),
            )
            self._by_reference[reference_no] = paid
            return PayOutcome("paid", paid)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_reference)
