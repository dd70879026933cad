"""Delivering Ifortepay's payment notification to a merchant's callback URL, as the sandbox does on pay.

One delivery is up to ``1 + retries`` POSTs of the same minified body, each freshly signed
(new X-TIMESTAMP, :func:`snapbook.service_signing.notification_headers`), each bounded by
``timeout`` seconds as a whole (connect, send, answer), with ``backoff`` seconds before the
first retry, doubled before each next one, until the receiver answers HTTP 200. The receiver's
answer is read up to :data:`MAX_ANSWER_BYTES` only. It runs on the server's event loop
(asyncio), so it never blocks other requests; proxies from the environment are ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ..masking import printable
from ..service_signing import minify, notification_headers
from ..signing import make_timestamp

__all__ = ["MAX_ANSWER_BYTES", "DeliveryAttempt", "DeliveryOutcome", "deliver", "notification_body"]

#: How much of a receiver's answer is read (enough for a SNAP JSON answer).
MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of a notification: the HTTP status (0: no answer), time taken, the answer's responseCode."""

    number: int
    http_status: int
    latency_ms: float
    response_code: str = ""
    error: str = ""
    timestamp: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "httpStatus": self.http_status,
            "latencyMs": self.latency_ms,
            "responseCode": self.response_code,
            "error": self.error,
        }


@dataclass(frozen=True)
class DeliveryOutcome:
    """Every attempt of one notification, and whether one was answered HTTP 200."""

    url: str
    delivered: bool
    attempts: tuple[DeliveryAttempt, ...]
    refused: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "callbackUrl": self.url,
            "delivered": self.delivered,
            "attempts": [a.to_dict() for a in self.attempts],
            **({"refused": self.refused} if self.refused else {}),
        }


def notification_body(
    *,
    reference_no: str,
    partner_reference_no: str,
    value: str,
    currency: str,
    paid_time: datetime,
    merchant_id: str,
    issuer: str,
    retrieval_reference_no: str,
) -> bytes:
    """The notification of a paid QRIS (snap-services.md), minified, as Ifortepay sends it."""
    body = {
        "originalReferenceNo": reference_no,
        "originalPartnerReferenceNo": partner_reference_no,
        "latestTransactionStatus": "00",
        "transactionStatusDesc": "Success",
        "amount": {"value": value, "currency": currency},
        "additionalInfo": {
            "merchantId": merchant_id,
            "paymentChannel": "QRIS",
            "issuer": issuer,
            "retrievalReferenceNo": retrieval_reference_no,
            "invoiceNo": partner_reference_no,
            "paidTime": make_timestamp(paid_time),
            "paymentDetail": {"totalAmount": {"value": value, "currency": currency}},
        },
    }
    return minify(json.dumps(body, ensure_ascii=False))


async def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: MAX_ANSWER_BYTES - total])
        total += len(chunk)
        if total >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


def _response_code(data: bytes) -> str:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return ""
    code = value.get("responseCode") if isinstance(value, dict) else None
    return printable(code, 16) if isinstance(code, str) else ""


async def _attempt(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    """(HTTP status, the answer's responseCode) of one POST, its answer read within bounds."""
    async with client.stream("POST", url, content=body, headers=headers) as response:
        return response.status_code, _response_code(await _read_bounded(response))


async def deliver(
    url: str,
    body: bytes,
    secret: bytes,
    *,
    clock: Callable[[], datetime],
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
    on_attempt: Callable[[DeliveryAttempt], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> DeliveryOutcome:
    """POST ``body`` to ``url`` signed with ``secret`` until HTTP 200, at most ``1 + retries`` times.

    ``on_attempt`` is called after each attempt (the sandbox journals it). The URL must already
    have been judged acceptable (loopback, or remote callbacks allowed).
    """
    attempts: list[DeliveryAttempt] = []
    async with httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
    ) as client:
        for number in range(1, retries + 2):
            if number > 1:
                await sleep(backoff * 2 ** (number - 2))
            timestamp = make_timestamp(clock())
            headers = notification_headers(secret, url, body, timestamp=timestamp)
            started = time.perf_counter()
            status, code, error = 0, "", ""
            try:  # the whole attempt (connect, send, answer) within ``timeout``
                status, code = await asyncio.wait_for(_attempt(client, url, body, headers), timeout)
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                error = f"no answer within {timeout:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {printable(str(exc), 120)}"
            attempt = DeliveryAttempt(
                number, status, round((time.perf_counter() - started) * 1000, 3), code, error, timestamp
            )
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if status == 200:
                return DeliveryOutcome(url, True, tuple(attempts))
    return DeliveryOutcome(url, False, tuple(attempts))
