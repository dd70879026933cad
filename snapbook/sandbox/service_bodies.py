"""The body fields of the service routes (step 11 of :mod:`snapbook.sandbox.service_checks`): pure checks.

Mandatory fields first (``400SS02 [field]``), then their formats (``400SS01 [field]``); the
first wrong one raises :class:`FieldError`, which the route turns into its answer.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ..payment import AMOUNT_VALUE, MAX_VALIDITY_MINUTES, MIN_VALIDITY_MINUTES, PARTNER_REFERENCE
from .checks import Verdict, _short
from .service_checks import service_reject

__all__ = [
    "BalanceRequest",
    "FieldError",
    "GenerateRequest",
    "QueryRequest",
    "check_balance_body",
    "check_callback_url",
    "check_generate_body",
    "check_query_body",
    "is_loopback_url",
    "request_fingerprint",
]

#: The fields' forms, as the checks accept them (also the OpenAPI patterns).
REFERENCE = PARTNER_REFERENCE  # snapbook.payment's, the one definition
TERMINAL_ID = re.compile(r"[A-Za-z0-9]{1,16}")
ACCOUNT_NO = re.compile(r"[A-Za-z0-9]{1,16}")

#: validityPeriod: 15 to 60 minutes from the sandbox clock, with this slack for clock skew.
VALIDITY_MIN = timedelta(minutes=MIN_VALIDITY_MINUTES)
VALIDITY_MAX = timedelta(minutes=MAX_VALIDITY_MINUTES)
VALIDITY_SLACK = timedelta(seconds=60)


class FieldError(Exception):
    """A body field is missing (case ``02``) or malformed (``01``); ``field`` names it."""

    def __init__(self, case: str, name: str, why: str) -> None:
        super().__init__(why)
        self.case, self.name, self.why = case, name, why

    def verdict(self, service: str, notes: tuple[str, ...] = ()) -> Verdict:
        message = "Invalid Mandatory Field" if self.case == "02" else "Invalid Field Format"
        return service_reject(400, service, self.case, f"{message} [{self.name}]", [*notes, self.why])


def _mandatory(data: Mapping[str, Any], name: str, where: str = "") -> Any:
    value = data.get(name)
    if value is None or value == "":
        raise FieldError(
            "02", where + name, f"{where + name} is {'missing' if name not in data else _short(value)}"
        )
    return value


def _text(value: Any, name: str, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise FieldError("01", name, f"{name} is {_short(value)}; it must be {rule}")
    return value


def _amount(data: Mapping[str, Any], name: str = "amount") -> tuple[str, str]:
    amount = _mandatory(data, name)
    if not isinstance(amount, dict):
        raise FieldError("01", name, f"{name} is {_short(amount)}; it must be an object {{value, currency}}")
    value = _text(
        _mandatory(amount, "value", name + "."),
        name + ".value",
        AMOUNT_VALUE,
        'a string like "10000.00" (two decimals)',
    )
    if Decimal(value) <= 0:
        raise FieldError("01", name + ".value", f"{name}.value is {value!r}; it must be above zero")
    currency = _mandatory(amount, "currency", name + ".")
    if currency != "IDR":
        raise FieldError(
            "01", name + ".currency", f"{name}.currency is {_short(currency)}; only 'IDR' is served"
        )
    return value, currency


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine (127.0.0.0/8, ::1 or localhost), without any DNS look-up."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_callback_url(url: Any, *, allow_remote: bool, name: str = "additionalInfo.callbackUrl") -> str:
    """An absolute http(s) URL, on loopback unless ``allow_remote``; else :class:`FieldError`."""
    if not isinstance(url, str) or len(url) > 512 or not url.isascii() or not url.isprintable() or " " in url:
        raise FieldError("01", name, f"{name} is {_short(url)}; it must be an absolute http(s) URL (<= 512)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FieldError("01", name, f"{name} {_short(url)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or port == 0:
        raise FieldError("01", name, f"{name} {_short(url)} is not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        # a password in a URL would land in every journal row and log line of the delivery
        raise FieldError(
            "01", name, f"{name} carries user:password@; authenticate the notification by its signature"
        )
    if not allow_remote and not is_loopback_url(url):
        raise FieldError(
            "01",
            name,
            f"{name} host {_short(parts.hostname)} is not loopback; this sandbox delivers to 127.0.0.1/::1/localhost "
            "only, unless started with --allow-remote-callbacks",
        )
    return url


@dataclass(frozen=True)
class GenerateRequest:
    partner_reference_no: str
    value: str
    currency: str
    callback_url: str
    expires: datetime
    terminal_id: str | None


def check_generate_body(data: Mapping[str, Any], *, now: datetime, allow_remote: bool) -> GenerateRequest:
    """The fields of a qr-mpm-generate body, checked; :class:`FieldError` for the first wrong one.

    Mandatory fields first (partnerReferenceNo, amount, additionalInfo.callbackUrl), then their formats.
    """
    ref = _mandatory(data, "partnerReferenceNo")
    _mandatory(data, "amount")
    info = _mandatory(data, "additionalInfo")
    if not isinstance(info, dict):
        raise FieldError("01", "additionalInfo", f"additionalInfo is {_short(info)}; it must be an object")
    callback = _mandatory(info, "callbackUrl", "additionalInfo.")
    ref = _text(ref, "partnerReferenceNo", REFERENCE, "letters and digits, at most 64")
    value, currency = _amount(data)
    terminal = data.get("terminalId")
    if terminal is not None:
        _text(terminal, "terminalId", TERMINAL_ID, "letters and digits, at most 16")
    expires = now + VALIDITY_MIN
    period = data.get("validityPeriod")
    if period is not None:
        expires = _validity(period, now)
    return GenerateRequest(
        ref, value, currency, check_callback_url(callback, allow_remote=allow_remote), expires, terminal
    )


def _validity(period: Any, now: datetime) -> datetime:
    rule = "an ISO-8601 time with its offset, 15 to 60 minutes from now"
    if not isinstance(period, str) or len(period) > 40:
        raise FieldError("01", "validityPeriod", f"validityPeriod is {_short(period)}; it must be {rule}")
    try:  # Python 3.10's fromisoformat does not read "Z"
        when = datetime.fromisoformat(period[:-1] + "+00:00" if period.endswith("Z") else period)
    except ValueError:
        raise FieldError("01", "validityPeriod", f"validityPeriod {_short(period)} is not {rule}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise FieldError(
            "01", "validityPeriod", f"validityPeriod {_short(period)} has no offset; e.g. +07:00"
        )
    try:
        ahead = when - now
    except OverflowError:
        ahead = timedelta.max
    if not VALIDITY_MIN - VALIDITY_SLACK <= ahead <= VALIDITY_MAX + VALIDITY_SLACK:
        minutes = ahead.total_seconds() / 60
        raise FieldError(
            "01",
            "validityPeriod",
            f"validityPeriod is {minutes:.1f} minutes from the sandbox clock; it must be {rule}",
        )
    return when


@dataclass(frozen=True)
class QueryRequest:
    reference_no: str | None
    partner_reference_no: str


def check_query_body(data: Mapping[str, Any]) -> QueryRequest:
    """The fields of a qr-mpm-query body: originalPartnerReferenceNo and serviceCode "47" (mandatory)."""
    ref = _mandatory(data, "originalPartnerReferenceNo")
    code = _mandatory(data, "serviceCode")
    ref = _text(ref, "originalPartnerReferenceNo", REFERENCE, "letters and digits, at most 64")
    original = data.get("originalReferenceNo")
    if original is not None and original != "":
        original = _text(original, "originalReferenceNo", REFERENCE, "letters and digits, at most 64")
    else:
        original = None
    if code != "47":
        raise FieldError("01", "serviceCode", f"serviceCode is {_short(code)}; a QRIS MPM payment is '47'")
    return QueryRequest(original, ref)


@dataclass(frozen=True)
class BalanceRequest:
    account_no: str
    partner_reference_no: str | None


def check_balance_body(data: Mapping[str, Any]) -> BalanceRequest:
    """The fields of a Senmo balance-inquiry body: accountNo (mandatory), balanceType "cash" (a string)."""
    account = _mandatory(data, "accountNo")
    account = _text(account, "accountNo", ACCOUNT_NO, "letters and digits, at most 16")
    kind = data.get("balanceType")
    if kind is not None and kind != "cash":
        extra = " (Senmo takes a single string, not a list)" if isinstance(kind, list) else ""
        raise FieldError("01", "balanceType", f"balanceType is {_short(kind)}; it must be 'cash'{extra}")
    ref = data.get("partnerReferenceNo")
    if ref is not None and ref != "":
        ref = _text(ref, "partnerReferenceNo", REFERENCE, "letters and digits, at most 64")
    else:
        ref = None
    return BalanceRequest(account, ref)


def request_fingerprint(data: Mapping[str, Any]) -> str:
    """The generate parameters that must match for a repeat to be a duplicate, not an inconsistency."""
    return json.dumps(
        {k: data.get(k) for k in ("amount", "terminalId", "additionalInfo")}, sort_keys=True, default=str
    )
