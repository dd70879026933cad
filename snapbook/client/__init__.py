"""Signed SNAP calls to a provider: the B2B access token, then the service calls it opens.

>>> with TokenClient("payment-stage", "MCP00000001", "private.pem") as client:   # doctest: +SKIP
...     token = client.get_token()          # cached until 60 s before it expires
...     headers = token.authorization_header()

- :mod:`snapbook.client.exchange`: the one path every SNAP HTTP exchange takes (an attempt,
  its retries, its log row); a new kind of call plugs in here (see its docstring).
- :mod:`snapbook.client.limits`: bounded time and memory (timeouts, the whole-attempt deadline,
  the decoded-size limit).
- :mod:`snapbook.client.retry`: :class:`RetryPolicy`, ``Retry-After``.
- :mod:`snapbook.client.failures`: every transport failure as a typed error.
- :mod:`snapbook.client.token`: the B2B token request and answer, :class:`TokenClient` and
  :class:`AsyncTokenClient`.
- :mod:`snapbook.client.service`: service calls (QRIS, VA, Senmo) signed with HMAC-SHA512:
  :class:`ServiceAuth` (an ``httpx.Auth``), :class:`ServiceClient`, :class:`AsyncServiceClient`,
  and their retry rule (a POST is never sent twice when the first may have been processed).
- :mod:`snapbook.client.external_id`: X-EXTERNAL-IDs unique per day across processes and restarts.

Errors (all :class:`~snapbook.errors.SnapbookError`):

- :class:`~snapbook.errors.SnapResponseError`: the provider answered and refused
  (HTTP status, responseCode, its meaning and a hint).
- :class:`~snapbook.errors.TransportError`: no answer. Subclasses say why:
  :class:`~snapbook.errors.RequestTimeoutError`, :class:`~snapbook.errors.ConnectionFailedError`,
  :class:`~snapbook.errors.TLSError`, :class:`~snapbook.errors.DNSError`.
- :class:`~snapbook.errors.InvalidResponseError`: an answer that is not a token response
  (an HTML page, non-JSON, truncated JSON, JSON without the mandatory fields, too large).
"""

from __future__ import annotations

from ..log import format_clock_offset
from .exchange import server_clock_offset
from .limits import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, MAX_TIMEOUT
from .external_id import ExternalIdGenerator, check_external_id, external_id
from .retry import DEFAULT_RETRY, RetryPolicy, parse_retry_after
from .service import (
    AsyncServiceClient,
    ServiceAuth,
    ServiceClient,
    ServiceRequest,
    ServiceResponse,
    encode_body,
    parse_service_response,
    service_code_for,
)
from .token import (
    AccessToken,
    AsyncTokenClient,
    TokenClient,
    TokenRequest,
    build_token_request,
    parse_token_response,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "AccessToken",
    "AsyncServiceClient",
    "AsyncTokenClient",
    "ExternalIdGenerator",
    "RetryPolicy",
    "ServiceAuth",
    "ServiceClient",
    "ServiceRequest",
    "ServiceResponse",
    "TokenClient",
    "TokenRequest",
    "build_token_request",
    "check_external_id",
    "encode_body",
    "external_id",
    "format_clock_offset",
    "parse_retry_after",
    "parse_service_response",
    "parse_token_response",
    "server_clock_offset",
    "service_code_for",
]
