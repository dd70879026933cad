"""Signed SNAP calls to a provider: today the B2B access token; the shared exchange is ready for more.

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
from .retry import DEFAULT_RETRY, RetryPolicy, parse_retry_after
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
    "AsyncTokenClient",
    "RetryPolicy",
    "TokenClient",
    "TokenRequest",
    "build_token_request",
    "format_clock_offset",
    "parse_retry_after",
    "parse_token_response",
    "server_clock_offset",
]
