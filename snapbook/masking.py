"""Masking of secrets for anything a person or a file may see.

One rule for the whole package: show a short prefix and suffix so two values can be told
apart, never enough to reuse one. Signatures and tokens are long (>= 100 chars), so six
characters on each side reveal under 10% of them.
"""

from __future__ import annotations

__all__ = ["SECRET_HEADERS", "mask", "mask_headers"]

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
