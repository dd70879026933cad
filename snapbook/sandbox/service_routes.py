"""The sandbox's service routes: QRIS generate and query, Senmo balance inquiry, the simulated pay.

The checks are in :mod:`~snapbook.sandbox.service_checks` (their order is documented there),
the QR state in :mod:`~snapbook.sandbox.qr_store`, the notification delivery in
:mod:`~snapbook.sandbox.notify`; this module only reads the request, runs them, answers and
journals. Faults apply to the three service routes as to the token routes (not to the
sandbox's own pay route, which is a test helper, not a provider route).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import QrisError
from ..masking import mask
from ..qris import emv_amount
from ..signing import make_timestamp
from .app import (
    _CLOSE,
    _arrival,
    _body_or_journal,
    _delay_note,
    _first,
    _header_table,
    _internal_error,
    _read_body,
    _TokenRoute,
)
from .checks import Verdict, _load_json, _short
from .journal import JournalEntry
from .notify import DeliveryAttempt, DeliveryOutcome, deliver, notification_body
from .qr_store import STATUS_TEXT
from .service_bodies import (
    FieldError,
    check_balance_body,
    check_callback_url,
    check_generate_body,
    check_query_body,
    request_fingerprint,
)
from .service_checks import (
    GENERATE,
    QUERY,
    SERVED_SERVICES,
    UNSERVED_SERVICES,
    ServiceCall,
    ServiceRoute,
    check_service_call,
    service_reject,
)

if TYPE_CHECKING:  # pragma: no cover
    from .app import Provider

__all__ = ["PAY_PATH", "SANDBOX_BALANCE", "ServiceRouteApp", "pay", "served_routes", "unserved"]

#: The sandbox's own route that pays a QR (not an Ifortepay route).
PAY_PATH = "/sandbox/v1.0/qr/pay"

#: The available balance every Senmo account has in the sandbox.
SANDBOX_BALANCE = "100000000.00"

#: referenceNo of balance inquiries: unique per sandbox process, cheap (no system call per answer).
_BALANCE_REFERENCES = itertools.count(1)

_ISSUER = re.compile(r"[A-Za-z0-9 ._-]{1,32}")


def served_routes() -> list[tuple[str, str, str]]:
    """(method, path, what) of every service route served, for the banner and the 404 answer."""
    rows = [("POST", r.path, f"{r.name}, service {r.service}") for r in SERVED_SERVICES.values()]
    rows.append(("POST", PAY_PATH, "sandbox: pay a QR and deliver its notification"))
    return rows


class ServiceRouteApp(_TokenRoute):
    """The ASGI app behind one service route: read, draw a fault, check, answer, journal."""

    def __init__(self, provider: Provider, route: ServiceRoute) -> None:
        super().__init__(provider, route.product)
        self.route = route
        self.service = route.service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = self.provider
        config = provider.config
        started = time.perf_counter()
        table = _header_table(scope)
        now, arrived = _arrival(config)
        echo = _first(table, "x-client-key")
        query = scope.get("query_string", b"")
        sent_path = str(scope.get("path", "")) + (f"?{query.decode('latin-1')}" if query else "")
        info = {
            "time": arrived,
            "method": str(scope.get("method", "")),
            "path": sent_path[:200],
            "product": self.product,
            "client_key": _first(table, "x-partner-id").strip()[:128],
        }
        fields = {
            "service": self.service,
            "external_id": _first(table, "x-external-id").strip()[:64],
            "signature": mask(_first(table, "x-signature").strip()),
        }
        try:
            read = await _body_or_journal(provider, receive, table, info, started, **fields)
            if read is None:
                return
            body, oversize, must_close = read
            decision = provider.draw_fault()
            if decision.kind is not None:
                signature = fields.pop("signature")
                await self._fault(scope, receive, send, decision, info, started, echo, signature, **fields)
                return
            if now is None:
                now = config.now()
            if oversize is not None:
                verdict = Verdict(
                    False, 400, f"400{self.service}00", oversize.response_message, oversize.notes
                )
                response: Response = provider.error(verdict, echo, _CLOSE if must_close else None, now=now)
                extra: dict[str, Any] = {}
            else:
                call = check_service_call(
                    self.route,
                    table,
                    body,
                    path=sent_path,
                    clients=provider._service_clients,  # replaced, never mutated: a snapshot
                    validate_token=provider.validate_token,
                    external_ids=provider.external_ids,
                    now=now,
                    freshness_seconds=config.freshness_seconds,
                )
                verdict, response, extra = self._answer(call, now, echo)
            notes = verdict.notes
            if decision.delay:
                slept = await provider.pause(decision.delay)
                notes = (*notes, _delay_note(decision, slept))
            provider.record_verdict(info, started, verdict, notes=notes, **fields, **extra)
            await response(scope, receive, send)
        except Exception as exc:
            await _internal_error(provider, scope, receive, send, info, started, echo, exc, self.service)

    def _answer(
        self, call: ServiceCall, now: datetime, echo: str
    ) -> tuple[Verdict, Response, dict[str, Any]]:
        """The verdict, the answer and the journal fields of a checked call."""
        provider = self.provider
        # A token serves every call for its lifetime: the rows share its masked text (sys.intern).
        extra: dict[str, Any] = {"token": sys.intern(call.token), "jti": call.jti}
        if call.client is not None:
            extra["client_key"] = call.client.client_key
        verdict = call.verdict
        data = call.data
        if isinstance(data, dict):
            ref = data.get("partnerReferenceNo", data.get("originalPartnerReferenceNo"))
            if isinstance(ref, str):
                extra["partner_reference_no"] = ref[:64]
        if not verdict.accepted or data is None or call.client is None:
            return verdict, provider.error(verdict, echo, now=now), extra
        try:
            if self.route is GENERATE:
                verdict, body = self._generate(call, data, now)
            elif self.route is QUERY:
                verdict, body = self._query(call, data, now)
            else:
                verdict, body = self._balance(data, verdict)
        except FieldError as exc:
            verdict = exc.verdict(self.service, verdict.notes)
            return verdict, provider.error(verdict, echo, now=now), extra
        if not verdict.accepted:
            return verdict, provider.error(verdict, echo, now=now), extra
        return verdict, provider.answer(200, body, echo, now=now), extra

    def _generate(
        self, call: ServiceCall, data: dict[str, Any], now: datetime
    ) -> tuple[Verdict, dict[str, Any]]:
        provider = self.provider
        assert call.client is not None
        request = check_generate_body(data, now=now, allow_remote=provider.config.allow_remote_callbacks)
        try:
            emv_amount(request.value)
        except QrisError as exc:
            raise FieldError("01", "amount.value", f"amount.value {request.value}: {exc.message}") from None
        record, existing = provider.qrs.generate(
            partner_id=call.client.partner_id,
            client_key=call.client.client_key,
            partner_reference_no=request.partner_reference_no,
            value=request.value,
            currency=request.currency,
            terminal_id=request.terminal_id,
            callback_url=request.callback_url,
            now=now,
            expires=request.expires,
            fingerprint=request_fingerprint(data),
        )
        notes = call.verdict.notes
        if existing is not None:
            why = f"partnerReferenceNo {request.partner_reference_no} already made QR {existing.reference_no}"
            if existing.fingerprint == request_fingerprint(data):
                return service_reject(409, "47", "01", "Duplicate partnerReferenceNo", [*notes, why]), {}
            return (
                service_reject(
                    404, "47", "18", "Inconsistent Request", [*notes, why + " with other parameters"]
                ),
                {},
            )
        body: dict[str, Any] = {
            "responseCode": "2004700",
            "responseMessage": "Successful",
            "referenceNo": record.reference_no,
            "partnerReferenceNo": record.partner_reference_no,
            "qrContent": record.qr_content,
        }
        if record.terminal_id is not None:
            body["terminalId"] = record.terminal_id
        body["additionalInfo"] = {"validityPeriod": make_timestamp(record.expires)}
        return call.verdict, body

    def _query(
        self, call: ServiceCall, data: dict[str, Any], now: datetime
    ) -> tuple[Verdict, dict[str, Any]]:
        assert call.client is not None
        request = check_query_body(data)
        qrs = self.provider.qrs
        partner = call.client.partner_id
        if request.reference_no is not None:
            record = qrs.get(request.reference_no)
        else:
            record = qrs.find_partner_reference(partner, request.partner_reference_no)
        if (
            record is None
            or record.partner_id != partner
            or record.partner_reference_no != request.partner_reference_no
        ):
            why = f"no QR {request.reference_no or ''} with partnerReferenceNo {request.partner_reference_no} for this partner"
            return service_reject(404, "51", "01", "Transaction Not Found", [*call.verdict.notes, why]), {}
        status = record.status(now)
        body: dict[str, Any] = {
            "responseCode": "2005100",
            "responseMessage": "Successful",
            "originalReferenceNo": record.reference_no,
            "originalPartnerReferenceNo": record.partner_reference_no,
            "serviceCode": "47",
            "latestTransactionStatus": status,
            "transactionStatusDesc": STATUS_TEXT[status],
        }
        if record.paid_time is not None:
            body["paidTime"] = make_timestamp(record.paid_time)
        body["amount"] = {"value": record.value, "currency": record.currency}
        if record.terminal_id is not None:
            body["terminalId"] = record.terminal_id
        info: dict[str, Any] = {"merchantId": partner, "invoiceNo": record.partner_reference_no}
        if record.paid_time is not None:
            info["issuer"] = record.issuer
            info["retrievalReferenceNo"] = record.retrieval_reference_no
        body["additionalInfo"] = info
        return call.verdict, body

    def _balance(self, data: dict[str, Any], verdict: Verdict) -> tuple[Verdict, dict[str, Any]]:
        request = check_balance_body(data)
        body: dict[str, Any] = {
            "responseCode": "2001100",
            "responseMessage": "Successful",
            "referenceNo": f"B{next(_BALANCE_REFERENCES):015d}",
        }
        if request.partner_reference_no is not None:
            body["partnerReferenceNo"] = request.partner_reference_no
        body["accountNo"] = request.account_no
        body["accountInfos"] = [
            {"balanceType": "cash", "availableBalance": {"value": SANDBOX_BALANCE, "currency": "IDR"}}
        ]
        return verdict, body


# --- the sandbox's own pay route ----------------------------------------------------------------


def _pay_error(status: int, case: str, message: str, why: str) -> Verdict:
    return service_reject(status, "52", case, message, [why])


async def pay(provider: Provider, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /sandbox/v1.0/qr/pay`` ``{"referenceNo": ..., "issuer": ...}``: pay, notify, answer the outcome."""
    started = time.perf_counter()
    config = provider.config
    table = _header_table(scope)
    now = config.now()
    info = {"time": now, "method": "POST", "path": PAY_PATH, "product": "sandbox", "client_key": ""}
    try:
        body, oversize, must_close = await _read_body(
            receive, config.max_body_bytes, _first(table, "content-length")
        )
    except ClientDisconnect:
        return
    verdict: Verdict | None = None
    data: Any = None
    if oversize is not None:
        verdict = _pay_error(
            400, "00", oversize.response_message, oversize.notes[0] if oversize.notes else "too large"
        )
    else:
        try:
            data, _ = _load_json(body)
        except (ValueError, RecursionError):
            verdict = _pay_error(
                400, "00", "Bad Request (body is not JSON)", "body is not a UTF-8 JSON object"
            )
    if verdict is None:
        if not isinstance(data, dict):
            verdict = _pay_error(
                400, "00", "Bad Request (body is not a JSON object)", 'send {"referenceNo": ...}'
            )
        elif data.get("referenceNo") in (None, ""):
            verdict = _pay_error(400, "02", "Invalid Mandatory Field [referenceNo]", "referenceNo is missing")
        elif not isinstance(data["referenceNo"], str) or not re.fullmatch(
            r"[A-Za-z0-9]{1,64}", data["referenceNo"]
        ):
            verdict = _pay_error(
                400,
                "01",
                "Invalid Field Format [referenceNo]",
                f"referenceNo is {_short(data['referenceNo'])}",
            )
        elif data.get("issuer") is not None and not (
            isinstance(data["issuer"], str) and _ISSUER.fullmatch(data["issuer"])
        ):
            verdict = _pay_error(
                400,
                "01",
                "Invalid Field Format [issuer]",
                f"issuer is {_short(data['issuer'])}; letters, digits, <= 32",
            )
    if verdict is not None:
        provider.record_verdict(info, started, verdict, service="52")
        await provider.error(verdict, "", _CLOSE if must_close else None, now=now)(scope, receive, send)
        return
    outcome = provider.qrs.pay(data["referenceNo"], now=now, issuer=data.get("issuer") or "")
    record = outcome.record
    if outcome.result == "unknown":
        verdict = _pay_error(
            404, "01", "Transaction Not Found", f"no QR with referenceNo {data['referenceNo']}"
        )
    elif outcome.result != "paid":
        why = "it was already paid" if outcome.result == "already-paid" else "it has expired (status 07)"
        verdict = _pay_error(
            404, "00", f"Invalid Transaction Status ({why})", f"QR {data['referenceNo']}: {why}"
        )
    if verdict is not None or record is None:
        assert verdict is not None
        provider.record_verdict(
            info, started, verdict, service="52",
            partner_reference_no=record.partner_reference_no if record else "",
            client_key=record.client_key if record else "",
        )  # fmt: skip
        await provider.error(verdict, "", now=now)(scope, receive, send)
        return
    delivery = await notify(provider, record)
    answer = {
        "responseCode": "2005200",
        "responseMessage": "Successful",
        "referenceNo": record.reference_no,
        "partnerReferenceNo": record.partner_reference_no,
        "latestTransactionStatus": "00",
        "paidTime": make_timestamp(record.paid_time or now),
        "notification": delivery.to_dict(),
    }
    note = (
        "notification delivered"
        if delivery.delivered
        else f"notification not delivered {delivery.refused}".strip()
    )
    provider.record(
        info, started, verdict="accepted", http_status=200, response_code="2005200", response_message="Successful",
        notes=(f"QR {record.reference_no} paid; {note} after {len(delivery.attempts)} attempt(s)",),
        service="52", client_key=record.client_key, partner_reference_no=record.partner_reference_no,
    )  # fmt: skip
    await provider.answer(200, answer, "", now=now)(scope, receive, send)


async def notify(provider: Provider, record: Any) -> DeliveryOutcome:
    """Deliver the notification of a paid QR to its callback, journaling each attempt."""
    config = provider.config
    client = provider._service_clients.get(record.client_key)
    url = record.callback_url
    try:
        check_callback_url(url, allow_remote=config.allow_remote_callbacks)
    except FieldError as exc:
        return DeliveryOutcome(url, False, (), refused=exc.why)
    if client is None or client.secret is None:
        return DeliveryOutcome(url, False, (), refused="the client has no client secret to sign it with")
    body = notification_body(
        reference_no=record.reference_no,
        partner_reference_no=record.partner_reference_no,
        value=record.value,
        currency=record.currency,
        paid_time=record.paid_time,
        merchant_id=record.partner_id,
        issuer=record.issuer,
        retrieval_reference_no=record.retrieval_reference_no,
    )

    def journal(attempt: DeliveryAttempt) -> None:
        notes = [f"notification attempt {attempt.number} of {config.notify_retries + 1}"]
        if attempt.error:
            notes.append(attempt.error)
        try:
            when = config.now()
        except Exception:
            when = datetime.now(timezone.utc)
        provider.journal.append(
            JournalEntry(
                time=when,
                method="POST",
                path=url[:200],
                product="notification",
                client_key=record.client_key,
                verdict="delivered" if attempt.http_status == 200 else "undelivered",
                http_status=attempt.http_status,
                response_code=attempt.response_code,
                response_message="",
                latency_ms=attempt.latency_ms,
                notes=tuple(notes),
                service="52",
                partner_reference_no=record.partner_reference_no,
            )
        )

    return await deliver(
        url,
        body,
        client.secret,
        clock=config.now,
        timeout=config.notify_timeout,
        retries=config.notify_retries,
        backoff=config.notify_backoff,
        on_attempt=journal,
    )


def unserved(path: str) -> tuple[str, Verdict, dict[str, Any]]:
    """The answer to a service path under a known prefix that this sandbox does not serve."""
    service = UNSERVED_SERVICES.get(path, "00")
    served = [f"{m} {p}" for m, p, _ in served_routes()]
    verdict = service_reject(
        404,
        service,
        "00",
        "Not Found. [Not served by this sandbox]",
        [f"{path[:120]!r} is not served by this sandbox; it serves {', '.join(served)} and the token routes"],
    )
    body = {
        "responseCode": verdict.response_code,
        "responseMessage": verdict.response_message,
        "additionalInfo": {"served": served},
    }
    return service, verdict, body
