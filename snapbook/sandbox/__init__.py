"""A local SNAP provider: a real HTTP server that answers token requests, lenient by default, strict on request.

>>> from snapbook.sandbox import Sandbox, SandboxConfig, Faults     # doctest: +SKIP
>>> with Sandbox(SandboxConfig(strict=True)) as sb:
...     sb.register("MCP00000001", key.public_key())
...     url = sb.token_url("payment")        # http://127.0.0.1:PORT/auth/merchants/v1.0/access-token/b2b
...     ...                                  # send signed requests to url
...     sb.journal.to_dataframe()            # what it received and how it answered, secrets masked

- :mod:`~snapbook.sandbox.checks`: the checks, in their documented order (pure functions);
- :mod:`~snapbook.sandbox.app`: the Starlette application (:func:`create_app`);
- :mod:`~snapbook.sandbox.server`: :class:`Sandbox`, uvicorn in a background thread;
- :mod:`~snapbook.sandbox.journal`, :mod:`~snapbook.sandbox.faults`,
  :mod:`~snapbook.sandbox.tokens`, :mod:`~snapbook.sandbox.openapi`;
- the service routes (QRIS generate/query, Senmo balance, the simulated pay):
  :mod:`~snapbook.sandbox.service_checks` (their checks, pure), :mod:`~snapbook.sandbox.service_bodies`,
  :mod:`~snapbook.sandbox.external_ids`, :mod:`~snapbook.sandbox.qr_store`,
  :mod:`~snapbook.sandbox.notify` (signed notifications), :mod:`~snapbook.sandbox.service_routes`.
  Register a client secret to use them: ``sb.register(key, public_key, secret=..., partner_id=...)``,
  then ``sb.pay(reference_no)`` pays a QR and delivers its notification.

From a shell: ``snapbook sandbox --register MCP00000001=public.pem``.
"""

from __future__ import annotations

from .app import OPENAPI_PATH, PRODUCTS, VALIDATE_PATH, Provider, create_app
from .checks import Verdict, check_token_request
from .config import SandboxConfig
from .faults import FaultDecision, FaultInjector, Faults
from .journal import Journal, JournalEntry
from .openapi import openapi_document
from .server import Sandbox
from .tokens import InvalidTokenError, TokenIssuer

__all__ = [
    "OPENAPI_PATH",
    "PRODUCTS",
    "VALIDATE_PATH",
    "FaultDecision",
    "FaultInjector",
    "Faults",
    "InvalidTokenError",
    "Journal",
    "JournalEntry",
    "Provider",
    "Sandbox",
    "SandboxConfig",
    "TokenIssuer",
    "Verdict",
    "check_token_request",
    "create_app",
    "openapi_document",
]
