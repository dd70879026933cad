"""Masking of secrets for anything a person or a file may see.

One rule for the whole package: show a short prefix and suffix so two values can be told
apart, never enough to reuse one. Signatures and tokens are long (>= 100 chars), so six
characters on each side reveal under 10% of them.
"""

from __future__ import annotations

__all__ = ["SECRET_HEADERS", "mask", "mask_headers", "printable"]

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
    """``text`` safe for a terminal or a one-line log: control characters escaped, optionally clipped.

    C0 controls (newline and ESC included), DEL, C1 controls (0x9B is a one-byte CSI) and every
    other non-printable character (line separators, bidi overrides) become ``\\xNN`` or
    ``\\uNNNN``, so text from the network can neither forge a line nor drive the terminal.
    ``limit`` clips the escaped result to that many characters, ending in ``…``.
    """
    text = str(text)
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
            if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
            for c in text
        )
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text
