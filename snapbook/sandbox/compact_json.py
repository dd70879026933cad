"""Compact JSON text (``separators=(",", ":")``) from an encoder made once.

``json.JSONEncoder.encode`` builds its C encoder, and a closure for floats, on every call: about
1 µs, twice per token request (the token's claims, the answer), a few per cent of the sandbox's
own work. :func:`compact_encoder` builds it once. The one difference from ``JSONEncoder.encode``:
no check for circular references (a value that contains itself raises ``RecursionError``
instead of ``ValueError``); the sandbox encodes only the dicts it has just made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _json_encoder
from typing import Any

__all__ = ["compact_encoder"]


def compact_encoder(*, ensure_ascii: bool = True, allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=..., allow_nan=..., separators=(",", ":")).encode``, made once."""
    reference = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=allow_nan, separators=(",", ":"))
    make = _json_encoder.c_make_encoder
    if make is None:  # a Python without the _json accelerator
        return reference.encode
    strings = _json_encoder.encode_basestring_ascii if ensure_ascii else _json_encoder.encode_basestring
    chunks = make(None, reference.default, strings, None, ":", ",", False, False, allow_nan)
    join = "".join

    def encode(value: Any) -> str:
        return join(chunks(value, 0))

    return encode
