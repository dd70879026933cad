"""The OpenAPI description of the service routes (QRIS generate/query, Senmo balance, the pay route).

Part of :func:`snapbook.sandbox.openapi.openapi_document`, kept here so each file holds one
family of routes. Every pattern below is the one :mod:`~snapbook.sandbox.service_checks`
applies, so a request the schema allows is never refused for its form.
"""

from __future__ import annotations

from typing import Any

from ..payment import AMOUNT_VALUE, PARTNER_REFERENCE
from .config import SandboxConfig
from .openapi import _header  # one header schema for every route (openapi imports this module lazily)
from .service_checks import BALANCE, GENERATE, QUERY, ServiceRoute

__all__ = ["service_paths", "service_schemas"]

_SIGNATURE = "^[A-Za-z0-9+/]+={0,2}$"
_PARTNER = "^[!-~](?:[ -~]{0,34}[!-~])?$"
_EXTERNAL = "^[0-9]{1,36}$"
_CHANNEL = "^[A-Za-z0-9]{1,16}$"
_REFERENCE = f"^{PARTNER_REFERENCE.pattern}$"  # snapbook.payment's forms, as patterns
_AMOUNT_VALUE = f"^{AMOUNT_VALUE.pattern}$"
_ISSUER = "^[A-Za-z0-9 ._-]{1,32}$"


def _amount() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value", "currency"],
        "properties": {
            "value": {
                "type": "string",
                "pattern": _AMOUNT_VALUE,
                "description": "Rupiah with two decimals, above zero; at most 13 characters once written "
                "to the QR's tag 54.",
            },
            "currency": {"type": "string", "const": "IDR"},
        },
    }


def _schemas() -> dict[str, Any]:
    ref = {"type": "string", "pattern": _REFERENCE}
    return {
        "QrGenerateRequest": {
            "type": "object",
            "required": ["partnerReferenceNo", "amount", "additionalInfo"],
            "properties": {
                "partnerReferenceNo": ref,
                "amount": _amount(),
                "terminalId": {"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$"},
                "validityPeriod": {
                    "type": "string",
                    "description": "ISO-8601 with offset, 15 to 60 minutes (±60 s) from the sandbox clock; "
                    "default 15 minutes.",
                },
                "additionalInfo": {
                    "type": "object",
                    "required": ["callbackUrl"],
                    "properties": {
                        "callbackUrl": {
                            "type": "string",
                            "maxLength": 512,
                            "pattern": "^https?://",
                            "description": "Absolute http(s) URL without user:password@; loopback only unless "
                            "the sandbox runs with --allow-remote-callbacks.",
                        }
                    },
                },
            },
        },
        "QrGenerateResponse": {
            "type": "object",
            "required": ["responseCode", "responseMessage", "referenceNo", "partnerReferenceNo", "qrContent"],
            "properties": {
                "responseCode": {"type": "string", "const": "2004700"},
                "responseMessage": {"type": "string", "const": "Successful"},
                "referenceNo": ref,
                "partnerReferenceNo": ref,
                "qrContent": {
                    "type": "string",
                    "maxLength": 512,
                    "description": "EMVCo MPM dynamic QRIS (tag 51 ID.CO.QRIS.WWW, 53 360, 54 amount, 58 ID, "
                    "59/60 merchant, 63 CRC-16/CCITT-FALSE).",
                },
                "terminalId": {"type": "string"},
                "additionalInfo": {
                    "type": "object",
                    "required": ["validityPeriod"],
                    "properties": {"validityPeriod": {"type": "string"}},
                },
            },
        },
        "QrQueryRequest": {
            "type": "object",
            "required": ["originalPartnerReferenceNo", "serviceCode"],
            "properties": {
                "originalReferenceNo": ref,
                "originalPartnerReferenceNo": ref,
                "serviceCode": {"type": "string", "const": "47"},
            },
        },
        "QrQueryResponse": {
            "type": "object",
            "required": [
                "responseCode",
                "responseMessage",
                "originalReferenceNo",
                "originalPartnerReferenceNo",
                "serviceCode",
                "latestTransactionStatus",
                "transactionStatusDesc",
                "amount",
                "additionalInfo",
            ],
            "properties": {
                "responseCode": {"type": "string", "const": "2005100"},
                "responseMessage": {"type": "string", "const": "Successful"},
                "originalReferenceNo": ref,
                "originalPartnerReferenceNo": ref,
                "serviceCode": {"type": "string", "const": "47"},
                "latestTransactionStatus": {
                    "type": "string",
                    "enum": ["00", "01", "07"],
                    "description": "00 Success (paid), 01 Initiated, 07 Not found (expired).",
                },
                "transactionStatusDesc": {"type": "string", "enum": ["Success", "Initiated", "Not found"]},
                "paidTime": {"type": "string", "description": "When paid (status 00 only)."},
                "amount": _amount(),
                "terminalId": {"type": "string"},
                "additionalInfo": {
                    "type": "object",
                    "required": ["merchantId", "invoiceNo"],
                    "properties": {
                        "merchantId": {"type": "string"},
                        "invoiceNo": {"type": "string"},
                        "issuer": {"type": "string"},
                        "retrievalReferenceNo": {"type": "string"},
                    },
                },
            },
        },
        "BalanceInquiryRequest": {
            "type": "object",
            "required": ["accountNo"],
            "properties": {
                "accountNo": {"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$"},
                "balanceType": {
                    "type": "string",
                    "const": "cash",
                    "description": "A single string on Senmo.",
                },
                "partnerReferenceNo": ref,
            },
        },
        "BalanceInquiryResponse": {
            "type": "object",
            "required": ["responseCode", "responseMessage", "referenceNo", "accountNo", "accountInfos"],
            "properties": {
                "responseCode": {"type": "string", "const": "2001100"},
                "responseMessage": {"type": "string", "const": "Successful"},
                "referenceNo": {"type": "string"},
                "partnerReferenceNo": ref,
                "accountNo": {"type": "string"},
                "accountInfos": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["balanceType", "availableBalance"],
                        "properties": {"balanceType": {"type": "string"}, "availableBalance": _amount()},
                    },
                },
            },
        },
        "QrPayRequest": {
            "type": "object",
            "required": ["referenceNo"],
            "properties": {"referenceNo": ref, "issuer": {"type": "string", "pattern": _ISSUER}},
        },
        "QrPayResponse": {
            "type": "object",
            "required": [
                "responseCode",
                "responseMessage",
                "referenceNo",
                "partnerReferenceNo",
                "latestTransactionStatus",
                "paidTime",
                "notification",
            ],
            "properties": {
                "responseCode": {"type": "string", "const": "2005200"},
                "responseMessage": {"type": "string", "const": "Successful"},
                "referenceNo": ref,
                "partnerReferenceNo": ref,
                "latestTransactionStatus": {"type": "string", "const": "00"},
                "paidTime": {"type": "string"},
                "notification": {
                    "type": "object",
                    "required": ["callbackUrl", "delivered", "attempts"],
                    "properties": {
                        "callbackUrl": {"type": "string"},
                        "delivered": {"type": "boolean"},
                        "refused": {"type": "string", "description": "Why nothing was sent, when so."},
                        "attempts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["attempt", "httpStatus", "latencyMs", "responseCode", "error"],
                                "properties": {
                                    "attempt": {"type": "integer", "minimum": 1},
                                    "httpStatus": {"type": "integer", "description": "0: no answer."},
                                    "latencyMs": {"type": "number"},
                                    "responseCode": {"type": "string"},
                                    "error": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "QrNotification": {
            "type": "object",
            "required": [
                "originalReferenceNo",
                "originalPartnerReferenceNo",
                "latestTransactionStatus",
                "transactionStatusDesc",
                "amount",
                "additionalInfo",
            ],
            "properties": {
                "originalReferenceNo": ref,
                "originalPartnerReferenceNo": ref,
                "latestTransactionStatus": {"type": "string", "const": "00"},
                "transactionStatusDesc": {"type": "string", "const": "Success"},
                "amount": _amount(),
                "additionalInfo": {
                    "type": "object",
                    "properties": {
                        "merchantId": {"type": "string"},
                        "paymentChannel": {"type": "string", "const": "QRIS"},
                        "issuer": {"type": "string"},
                        "retrievalReferenceNo": {"type": "string"},
                        "invoiceNo": {"type": "string"},
                        "paidTime": {"type": "string"},
                        "paymentDetail": {"type": "object"},
                    },
                },
            },
        },
    }


def service_schemas() -> dict[str, Any]:
    """The component schemas of the service routes."""
    return _schemas()


def _callback() -> dict[str, Any]:
    """The payment notification the sandbox posts to additionalInfo.callbackUrl, as an OpenAPI callback."""
    return {
        "paymentNotification": {
            "{$request.body#/additionalInfo/callbackUrl}": {
                "post": {
                    "summary": "QRIS payment notification (service 52), sent when the QR is paid",
                    "description": "Signed base64(HMAC-SHA512(clientSecret, NotifyURL + ':' + X-VERSION + ':' + "
                    "lowercase(hex(SHA-256(minified body))) + ':' + X-TIMESTAMP)), NotifyURL the full callbackUrl. "
                    "Retried up to 3 times (backoff 0.5 s, doubled) until HTTP 200, each attempt bounded by "
                    "the sandbox's notify timeout and journaled.",
                    "parameters": [
                        _header(
                            "X-TIMESTAMP", "The sandbox's time, +07:00.", "2026-01-15T10:03:00+07:00", "^.+$"
                        ),
                        _header("X-SIGNATURE", "The notification signature (base64).", "AAAA", _SIGNATURE),
                        _header("X-VERSION", "The signature's version.", "v1", "^v1$"),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/QrNotification"}}
                        },
                    },
                    "responses": {
                        "200": {"description": "Received: the sandbox stops retrying."},
                        "default": {"description": "Anything else: the sandbox retries."},
                    },
                }
            }
        }
    }


def _errors(
    ss: str, route: ServiceRoute, error: Any, response_headers: dict[str, Any], faults: str
) -> dict[str, Any]:
    errors: dict[str, Any] = {
        "400": error(
            "Missing or malformed header or field, unreadable or oversized body.",
            [f"400{ss}00", f"400{ss}01", f"400{ss}02"],
        ),
        "401": error(
            "Stale X-TIMESTAMP, unknown partner, wrong X-PARTNER-ID or bad signature (401SS00); invalid or "
            "expired token (401SS01); no Authorization where the symmetric signature is required (401SS03).",
            [f"401{ss}00", f"401{ss}01"] if route.asymmetric else [f"401{ss}00", f"401{ss}01", f"401{ss}03"],
        ),
        "409": error(
            "X-EXTERNAL-ID already used by this partner today (409SS00)"
            + (
                "; partnerReferenceNo already used with the same parameters (409SS01)."
                if route is GENERATE
                else "."
            ),
            [f"409{ss}00", f"409{ss}01"] if route is GENERATE else [f"409{ss}00"],
        ),
        "429": error(
            "Throttled. " + faults,
            [f"429{ss}00"],
            {
                "Retry-After": {
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    "description": "Seconds to wait.",
                    "required": True,
                }
            },
        ),
        "500": error(
            f"500{ss}00: injected general error ({faults}) 500{ss}01: a sandbox bug.",
            [f"500{ss}00", f"500{ss}01"],
        ),
        "503": error(f"Service unavailable; 503{ss}00 is a sandbox code. " + faults, [f"503{ss}00"]),
        "504": error("Timeout. " + faults, [f"504{ss}00"]),
    }
    if route is GENERATE:
        errors["404"] = error("partnerReferenceNo already used with other parameters.", ["4044718"])
    if route is QUERY:
        errors["404"] = error("No such QR for this partner.", ["4045101"])
    return dict(sorted(errors.items()))


def service_paths(
    config: SandboxConfig, error: Any, response_headers: dict[str, Any], timestamp_pattern: str
) -> dict[str, Any]:
    """The path items of the service routes and of the sandbox's pay route."""
    window = "off" if config.freshness_seconds is None else f"±{config.freshness_seconds:g} s"
    faults = "Only with fault injection (snapbook sandbox --rate-...)."
    paths: dict[str, Any] = {}
    for route, request, response in (
        (GENERATE, "QrGenerateRequest", "QrGenerateResponse"),
        (QUERY, "QrQueryRequest", "QrQueryResponse"),
        (BALANCE, "BalanceInquiryRequest", "BalanceInquiryResponse"),
    ):
        ss = route.service
        signature = (
            "base64(HMAC-SHA512(clientSecret, 'POST:' + path + ':' + accessToken + ':' + lowercase(hex(SHA-256("
            "minified body))) + ':' + X-TIMESTAMP)) with Authorization: Bearer <token>"
            + (
                "; or, without Authorization, base64(SHA256withRSA(private key, 'POST:' + path + ':' + hash + ':' "
                "+ X-TIMESTAMP)) for a partner registered with a public key."
                if route.asymmetric
                else " (Senmo: symmetric only)."
            )
        )
        operation: dict[str, Any] = {
            "summary": f"{route.name} (service {ss})",
            "operationId": {"47": "qrMpmGenerate", "51": "qrMpmQuery", "11": "balanceInquiry"}[ss],
            "tags": ["QRIS" if route.product == "payment" else "Senmo"],
            "description": (
                "Checks, in order (README 'Service routes'): body size (at most "
                f"{config.max_body_bytes} bytes), mandatory headers, their formats (X-TIMESTAMP in the "
                f"standard's form in both modes), freshness ({window}), the token, X-PARTNER-ID, the "
                "signature, X-EXTERNAL-ID once per partner and Asia/Jakarta day, then the body. " + signature
            ),
            "security": [{"bearer": []}, {}] if route.asymmetric else [{"bearer": []}],
            "parameters": [
                _header(
                    "X-TIMESTAMP",
                    "yyyy-MM-ddTHH:mm:ss(.SSS)TZD (TZD Z, +hh:mm or -hh:mm); the string signed.",
                    "2026-01-15T10:00:00+07:00",
                    timestamp_pattern,
                ),
                _header("X-SIGNATURE", "See the description.", "AAAA", _SIGNATURE),
                _header("X-PARTNER-ID", "The partner (merchant) id, String(36).", "MCP2021110228", _PARTNER),
                _header(
                    "X-EXTERNAL-ID",
                    "Numeric String(36), once per partner and day.",
                    "41807553358950093184",
                    _EXTERNAL,
                ),
                _header(
                    "CHANNEL-ID",
                    "Senmo: 'api'." if route.channel else "Letters and digits, e.g. QR004.",
                    route.channel or "QR004",
                    f"^{route.channel}$" if route.channel else _CHANNEL,
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}}},
            },
            "responses": {
                "200": {
                    "description": f"Successful. responseCode: 200{ss}00.",
                    "headers": response_headers,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}},
                },
                **_errors(ss, route, error, response_headers, faults),
            },
        }
        if route is GENERATE:
            operation["callbacks"] = _callback()
        paths[route.path] = {"post": operation}

    paths["/sandbox/v1.0/qr/pay"] = {
        "post": {
            "summary": "Pay a QR and deliver its notification (a sandbox route, not Ifortepay's)",
            "operationId": "sandboxQrPay",
            "tags": ["sandbox"],
            "description": "Marks the QR paid at the sandbox clock, posts the signed notification to its "
            "callbackUrl (retries included) and answers with the delivery outcome. No signature, no faults.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QrPayRequest"}}},
            },
            "responses": {
                "200": {
                    "description": "Paid. responseCode: 2005200; notification.delivered says whether the "
                    "callback answered HTTP 200.",
                    "headers": response_headers,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/QrPayResponse"}}
                    },
                },
                "400": error(
                    "Unreadable body or a missing/malformed field.", ["4005200", "4005201", "4005202"]
                ),
                "404": error(
                    "Unknown referenceNo (4045201); expired or already paid (4045200 Invalid Transaction Status).",
                    ["4045200", "4045201"],
                ),
                "500": error("A sandbox bug.", ["5007301"]),
            },
        }
    }
    return paths
