"""Masking of secrets for anything a person or a file may see.

One rule for the whole package: show a short prefix and suffix so two values can be told
apart, never enough to reuse one. Signatures and tokens are long (>= 100 chars), so six
characters on each side reveal under 10% of them.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_HEADERS", "mask", "mask_headers", "mask_url", "printable"]

#: Request and response headers whose values are secrets.
SECRET_HEADERS = frozenset({"x-signature", "authorization"})


def mask(value: str | bytes | None, keep: int = 6) -> str:
    """A masked form of ``value``: ``'EzuNpR…cX4w== (344 chars)'``.

    Short values are hidden completely, since a prefix and suffix would be most of them.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    n = len(value)
    if n == 0:
        return ""
    if n < 4 * keep:
        return f"*** ({n} chars)"
    return f"{value[:keep]}…{value[-keep:]} ({n} chars)"


def mask_headers(headers: dict[str, str] | object) -> dict[str, str]:
    """A copy of ``headers`` with the secret ones masked (``X-SIGNATURE``, ``Authorization``)."""
    items = headers.items() if hasattr(headers, "items") else headers  # type: ignore[union-attr]
    out: dict[str, str] = {}
    for name, value in items:  # type: ignore[misc]
        if name.lower() in SECRET_HEADERS:
            if name.lower() == "authorization" and " " in value:
                scheme, _, token = value.partition(" ")
                out[name] = f"{scheme} {mask(token)}"
            else:
                out[name] = mask(value)
        else:
            out[name] = value
    return out


def printable(text: str, limit: int | None = None) -> str:
    r"""``text`` safe for a terminal: control and other non-printable characters escaped, optionally clipped.

    C0 controls, DEL, C1 controls (``\x9b`` is a CSI on some terminals), bidi overrides and
    other non-printables become ``\xNN`` / ``\uNNNN`` / ``\UNNNNNNNN``, so text from the network
    cannot move the cursor, clear the screen, set the window title or forge lines. With
    ``limit``, the result is cut to at most ``limit`` characters, ending in ``…``.
    """
    if not isinstance(text, str):
        text = str(text)
    if limit is not None and len(text) > 4 * limit + 16:
        text = text[: 4 * limit + 16]  # escaping grows text at most 10x; never escape megabytes to show 80 chars
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def mask_url(url: str) -> str:
    """``url`` with any userinfo (``user:password@``) replaced by ``***@``: the rest is shown as is."""
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@", 1)[0].split("://", 1)[0] + "://***@" + url.rsplit("@", 1)[-1]
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
