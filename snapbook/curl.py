"""A signed request as a curl command, laid out like the vendor's documentation.

Handy for comparing with the provider's examples, or for handing a failing request to their
support desk: X-SIGNATURE and Authorization are masked unless ``show_secrets=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .masking import mask_headers

__all__ = ["as_curl"]

# Headers curl writes itself (or must not copy): a stale Content-Length breaks an edited body,
# and copying Accept-Encoding makes curl print compressed bytes.
_CURL_OWNS = frozenset({"host", "content-length", "connection", "transfer-encoding", "accept-encoding"})


def as_curl(request: Any, *, show_secrets: bool = False) -> str:
    """``request`` as a multi-line curl command, secrets masked unless ``show_secrets``.

    ``request`` is an ``httpx.Request``, a :class:`snapbook.client.TokenRequest` (anything with
    ``method``, ``url``, ``headers`` and ``content`` or ``body``), or a tuple
    ``(method, url, headers[, body])``. Values are single-quoted for a
    POSIX shell; httpx's own default ``Accept``/``User-Agent`` and the headers curl sets itself
    are left out. A masked command is for reading, not running.
    """
    method, url, headers, body = _parts(request)
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in _CURL_OWNS and not _httpx_default(name, value)
    ]
    if not show_secrets:
        kept = [next(iter(mask_headers([pair]).items())) for pair in kept]
    # curl infers GET, or POST from --data; any other pairing needs --request (Postman's layout).
    implied = "POST" if body else "GET"
    request_option = "" if method == implied else f" --request {method}"
    lines = [f"curl --location{request_option} {_quote(url)}"]
    lines += [f"--header {_quote(f'{name}: {value}')}" for name, value in kept]
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            lines.append(f"--data-binary {_ansi_c_quote(body)}")
        else:
            # --data reads a file when the value starts with '@'; --data-raw never does.
            option = "--data-raw" if text.startswith("@") else "--data"
            lines.append(f"{option} {_quote(text)}")
    return " \\\n".join(lines)


def _parts(request: Any) -> tuple[str, str, list[tuple[str, str]], bytes]:
    if isinstance(request, Sequence) and not isinstance(request, (str, bytes)):
        if len(request) not in (3, 4):
            raise TypeError("as_curl() takes an httpx.Request or a (method, url, headers[, body]) tuple")
        method, url, headers = request[0], request[1], request[2]
        body = request[3] if len(request) == 4 else None
    elif all(hasattr(request, a) for a in ("method", "url", "headers")):
        method, url, headers = request.method, request.url, request.headers
        if hasattr(request, "body") and not hasattr(type(request), "content"):  # snapbook's TokenRequest
            body = request.body
        else:
            try:
                body = request.content
            except Exception:
                body = request.read()
    else:
        raise TypeError(
            "as_curl() takes an httpx.Request or a (method, url, headers[, body]) tuple, "
            f"not {type(request).__name__}"
        )
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:  # a dict or list: the JSON a client would send
        import json

        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if headers is None:
        pairs: list[tuple[str, str]] = []
    elif hasattr(headers, "raw") and hasattr(
        headers, "encoding"
    ):  # httpx.Headers: original case, repeats kept
        enc = headers.encoding
        pairs = [(k.decode(enc), v.decode(enc)) for k, v in headers.raw]
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    else:
        pairs = list(headers)
    return str(method).upper(), str(url), [(str(k), str(v)) for k, v in pairs], data


def _httpx_default(name: str, value: str) -> bool:
    lower = name.lower()
    return (lower == "user-agent" and value.startswith("python-httpx/")) or (
        lower == "accept" and value == "*/*"
    )


def _quote(text: str) -> str:
    """Single-quote for a POSIX shell: ``'`` becomes ``'"'"'``, everything else is literal."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _ansi_c_quote(data: bytes) -> str:
    """Bash/zsh ``$'...'`` quoting, for a body that is not UTF-8 text."""
    out = []
    for b in data:
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in "\\'":
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"
