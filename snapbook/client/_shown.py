"""How text from the network is shown in messages and log rows: one line, clipped, escaped, secrets masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..masking import mask, printable


def _clip(value: Any, limit: int = 80) -> str:
    """``value`` as one printable line for a message or a log row, cut to ``limit``: servers can send anything."""
    return printable(value if isinstance(value, str) else str(value), limit)


_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=._\-]{24,}")


def _excerpt(text: str, limit: int = 120) -> str:
    """A short, single-line, printable excerpt with anything token-like masked."""
    text = " ".join(text[: 8 * limit].split())
    text = _LONG_TOKEN.sub(lambda m: mask(m.group(0)), text)
    return printable(text, limit)


class _Headers:
    """Case-insensitive read access to any headers mapping (httpx.Headers, dict, list of pairs)."""

    def __init__(self, headers: Mapping[str, str] | Any) -> None:
        items = headers.items() if hasattr(headers, "items") else headers
        self._data = {str(k).lower(): str(v) for k, v in items}

    def get(self, name: str) -> str | None:
        return self._data.get(name.lower())
