"""What went wrong, as a typed :class:`~snapbook.errors.SnapbookError`: every transport failure mapped once."""

from __future__ import annotations

import re
import socket
import ssl

import httpx

from ..errors import (
    ConfigError,
    ConnectionFailedError,
    DNSError,
    InvalidResponseError,
    RequestTimeoutError,
    SnapbookError,
    TLSError,
    TransportError,
)
from ..masking import mask_url, printable
from ._shown import _excerpt
from .limits import _AnswerTooLarge, _DeadlineExceeded, _Undecodable

__all__ = ["transport_error"]



def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_DNS_TEXT = re.compile(
    r"name or service not known|nodename nor servname|getaddrinfo|temporary failure in name resolution"
    r"|no address associated|name resolution",
    re.IGNORECASE,
)
_TLS_TEXT = re.compile(r"\bssl\b|certificate|tls|handshake", re.IGNORECASE)
_REFUSED_TEXT = re.compile(r"refused|errno 111|errno 61|all connection attempts failed", re.IGNORECASE)


def transport_error(exc: BaseException, url: str, timeout: httpx.Timeout) -> tuple[SnapbookError, bool]:
    """The snapbook error for a failed exchange, and whether it is transient (worth a retry)."""
    host = printable(httpx.URL(url).host, 120) if url else "the server"
    if isinstance(exc, _Undecodable):
        return InvalidResponseError(
            f"{host} sent a body that could not be decoded: {printable(str(exc), 160)}.",
            hint="Report it to the provider; a proxy may be corrupting answers.",
        ), False
    if isinstance(exc, _AnswerTooLarge):
        if exc.announced:
            size = f"announced {exc.size} bytes"
        elif exc.encoded:
            size = f"sent an answer that decodes ({exc.encoded}) to more than {exc.limit} bytes"
        else:
            size = f"sent more than {exc.limit} bytes"
        return InvalidResponseError(
            f"{host} {size}: answer too large; a token answer is a few hundred bytes (limit {exc.limit}).",
            hint="This is not a token endpoint's answer: check the URL. Raise max_response_bytes only if you know why.",
        ), False
    if isinstance(exc, _DeadlineExceeded):
        err = RequestTimeoutError(
            f"{host} had not finished its answer after {exc.seconds:.1f} s (past the attempt's deadline); "
            "it kept the connection busy, sending too slowly.",
            hint="The provider or a proxy is stalling: retry later, or raise the timeout / deadline.",
        )
        err.phase = "total"
        return err, False
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: ("connect", timeout.connect),
            httpx.ReadTimeout: ("read", timeout.read),
            httpx.WriteTimeout: ("write", timeout.write),
            httpx.PoolTimeout: ("pool", timeout.pool),
        }.get(type(exc), ("", None))
        name, seconds = phase
        limit = f" within {seconds:g} s" if seconds is not None else ""
        if name == "connect":
            err = RequestTimeoutError(
                f"Could not connect to {host}{limit} (connect timeout).",
                hint="Check the host and port, your network, VPN or firewall, and whether the provider must "
                "whitelist your IP address.",
            )
        elif name == "read":
            err = RequestTimeoutError(
                f"{host} accepted the request but sent no complete answer{limit} (read timeout).",
                hint="The provider is slow or stuck: retry later, or raise the timeout (timeout=... / --timeout).",
            )
        else:
            err = RequestTimeoutError(
                f"The request to {host} timed out ({name or 'timeout'}).",
                hint="Retry later, or raise the timeout.",
            )
        err.phase = name
        return err, name in ("connect", "pool")
    if isinstance(exc, httpx.DecodingError):
        return InvalidResponseError(
            f"{host} sent a body that could not be decoded (bad Content-Encoding).",
            hint="Report it to the provider; a proxy may be corrupting answers.",
        ), False
    if any(isinstance(e, socket.gaierror) for e in chain) or _DNS_TEXT.search(text):
        return DNSError(
            f"The host name {host} did not resolve (DNS).",
            hint="Check the spelling of the host; stage hosts may only resolve on the provider's VPN or network.",
        ), False
    if any(isinstance(e, (ssl.SSLError, ssl.CertificateError)) for e in chain) or (
        isinstance(exc, httpx.ConnectError) and _TLS_TEXT.search(text)
    ):
        return TLSError(
            f"The TLS handshake with {host} failed: {_excerpt(str(exc), 160)}",
            hint="The certificate is not trusted or does not match the host: check the system CA bundle (or "
            "verify=path/to/ca.pem), and whether a proxy intercepts TLS. Never switch verification off "
            "against a real provider.",
        ), False
    if isinstance(exc, httpx.ConnectError):
        if any(isinstance(e, ConnectionRefusedError) for e in chain) or _REFUSED_TEXT.search(text):
            return ConnectionFailedError(
                f"Connection to {host} refused: nothing is listening on port {httpx.URL(url).port or (443 if url.startswith('https') else 80)}.",
                hint="Check the URL and port; for the sandbox, check that it is running.",
            ), True
        return ConnectionFailedError(
            f"Could not connect to {host}: {_excerpt(str(exc), 160)}",
            hint="Check the host, port, network, VPN and firewall.",
        ), True
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        return ConnectionFailedError(
            f"{host} closed the connection without a complete answer ({_excerpt(str(exc), 120) or type(exc).__name__}).",
            hint="Usually transient: retry. If it persists, a firewall may be dropping your requests "
            "(ask the provider about IP whitelisting).",
        ), True
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigError(
            f"Cannot send to {printable(mask_url(url), 200)}: {printable(str(exc), 200)}.",
            hint="Use an http:// or https:// URL.",
        ), False
    return TransportError(
        f"The request to {host} failed: {type(exc).__name__}: {_excerpt(str(exc), 160)}",
        hint="Check the URL and your network.",
    ), False
