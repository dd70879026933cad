"""snapbook: learn, try and debug a Bank Indonesia SNAP B2B access-token integration.

The core (keys, signing, codes, errors) imports only ``cryptography``; pandas, httpx,
ipywidgets and the sandbox server are imported when first used, so ``import snapbook`` is fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import *  # noqa: F403 - the error hierarchy is part of the public API
from .errors import __all__ as _errors_all
from .keys import (
    describe_key,
    fingerprint,
    generate_private_key,
    keys_match,
    load_private_key,
    load_public_key,
    private_key_bytes,
    public_key_bytes,
    read_private_key,
    read_public_key,
    save_key_pair,
    save_private_key,
    save_public_key,
)
from .masking import mask
from .signing import (
    explain_signature,
    make_timestamp,
    parse_timestamp,
    sign,
    signed_headers,
    string_to_sign,
    verify,
)

__version__ = "0.1.0"

# name -> module, imported on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "AccessToken": "client",
    "AsyncTokenClient": "client",
    "Diagnosis": "doctor",
    "DoctorForm": "widgets",
    "Endpoint": "endpoints",
    "Faults": "sandbox",
    "KeyForm": "widgets",
    "LogRecord": "log",
    "LogView": "widgets",
    "QrisPayload": "qris",
    "RequestLog": "log",
    "ResponseCode": "codes",
    "RetryPolicy": "client",
    "Sandbox": "sandbox",
    "SandboxConfig": "sandbox",
    "ServiceSignatureForm": "widgets",
    "SignatureForm": "widgets",
    "TokenClient": "client",
    "TokenForm": "widgets",
    "TokenInfo": "tokens",
    "TokenRequest": "client",
    "as_curl": "curl",
    "build_dynamic_qris": "qris",
    "build_token_request": "client",
    "diagnose": "doctor",
    "diagnose_request": "doctor",
    "find_leaks": "leaks",
    "inspect_token": "tokens",
    "load_vendor_example": "examples",
    "parse_code": "codes",
    "parse_qris": "qris",
    "parse_token_response": "client",
    "resolve_endpoint": "endpoints",
    # Service-call and notification signatures (after the token), and their doctor.
    "ServiceSignatureSteps": "service_signing",
    "diagnose_notification": "doctor",
    "diagnose_service": "doctor",
    "explain_service_signature": "service_signing",
    "notification_headers": "service_signing",
    "service_headers": "service_signing",
    "sign_asymmetric": "service_signing",
    "sign_notification": "service_signing",
    "sign_symmetric": "service_signing",
    "verify_asymmetric": "service_signing",
    "verify_notification": "service_signing",
    "verify_symmetric": "service_signing",
    # The service client (after the token): signed calls through the shared exchange.
    "AsyncServiceClient": "client",
    "ExternalIdGenerator": "client",
    "ServiceAuth": "client",
    "ServiceClient": "client",
    "ServiceEndpoint": "endpoints",
    "ServiceResponse": "client",
    "resolve_service": "endpoints",
    # The merchant's side of a notification: a verifying endpoint on 127.0.0.1.
    "NotificationReceiver": "receiver",
    # The first payment: its requests (pure) and its form.
    "PaymentForm": "widgets",
    "ReceivedNotification": "receiver",
}

__all__ = sorted(
    [
        *_errors_all,
        "__version__",
        "describe_key",
        "explain_signature",
        "fingerprint",
        "generate_private_key",
        "keys_match",
        "load_private_key",
        "load_public_key",
        "make_timestamp",
        "mask",
        "parse_timestamp",
        "private_key_bytes",
        "public_key_bytes",
        "read_private_key",
        "read_public_key",
        "save_key_pair",
        "save_private_key",
        "save_public_key",
        "sign",
        "signed_headers",
        "string_to_sign",
        "verify",
        *_LAZY,
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'snapbook' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
