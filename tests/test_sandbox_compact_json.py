"""compact_encoder: the JSON text of json.JSONEncoder with compact separators, from an encoder made once."""

from __future__ import annotations

import json
import math

import pytest

from snapbook.sandbox.compact_json import compact_encoder

VALUES = [
    {"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "eyJ.a.b", "expiresIn": "900"},
    {"b": 1, "a": [1, 2.5, -0.0, 1e300, True, False, None], "nested": {"x": {"y": []}}, "": {}},
    {"merchantName": "Toko Kopi Ñandú ☕", "quote": 'a "b" \\ c\n\t\u0000\u001f', "emoji": "\U0001F600"},
    {"surrogate": "\ud800", "int": 10**30, "neg": -7},
    "just a string ☕",
    [1, "two", 3.0],
    42,
    None,
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_same_text_as_json_dumps(value, ensure_ascii):
    expected = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":"))
    assert compact_encoder(ensure_ascii=ensure_ascii)(value) == expected
    assert compact_encoder(ensure_ascii=ensure_ascii, allow_nan=False)(value) == expected


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_as_json_dumps_does(number):
    assert compact_encoder()({"v": number}) == json.dumps({"v": number}, separators=(",", ":"))
    with pytest.raises(ValueError, match="Out of range float"):
        compact_encoder(allow_nan=False)({"v": number})


def test_what_json_cannot_encode_is_refused_the_same_way():
    encode = compact_encoder()
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"when": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        encode({(1, 2): "tuple key"})
    assert encode({1: "a", 2.5: "b", None: "c", True: "d"}) == json.dumps({1: "a", 2.5: "b", None: "c", True: "d"}, separators=(",", ":"))


def test_one_encoder_serves_many_values_in_turn():
    encode = compact_encoder(ensure_ascii=False)
    assert [encode(v) for v in VALUES * 3] == [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in VALUES * 3]
