"""snapbook.signing: the vendor vector, timestamps, and properties that must hold for every input."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapbook import errors
from snapbook.keys import load_private_key, load_public_key
from snapbook.signing import (
    JAKARTA,
    decode_signature,
    explain_signature,
    make_timestamp,
    parse_timestamp,
    sign,
    signed_headers,
    string_to_sign,
    verify,
)

# --- the vendor page's facts ----------------------------------------------------------------


def test_vendor_vector_signature_is_reproduced(vectors):
    key = load_private_key(vectors["private_key_pem"])
    text = string_to_sign(vectors["client_key"], vectors["timestamp"])
    assert text == vectors["string_to_sign"]
    assert sign(key, text) == vectors["signature_sha256withrsa_base64"]


def test_vendor_vector_signature_verifies(vectors):
    public = load_public_key(vectors["public_key_pem"])
    assert verify(public, vectors["string_to_sign"], vectors["signature_sha256withrsa_base64"])


def test_vendor_page_documented_signature_does_not_verify(vectors):
    public = load_public_key(vectors["public_key_pem"])
    assert vectors["documented_signature_verifies"] is False
    assert not verify(public, vectors["string_to_sign"], vectors["documented_signature_base64"])


def test_signed_headers_use_one_timestamp(vectors):
    key = load_private_key(vectors["private_key_pem"])
    headers = signed_headers(key, vectors["client_key"], vectors["timestamp"])
    assert headers == {
        "Content-Type": "application/json",
        "X-TIMESTAMP": vectors["timestamp"],
        "X-CLIENT-KEY": vectors["client_key"],
        "X-SIGNATURE": vectors["signature_sha256withrsa_base64"],
    }


def test_explain_signature_steps(vectors):
    key = load_private_key(vectors["private_key_pem"])
    steps = explain_signature(key, vectors["client_key"], vectors["timestamp"])
    assert steps.string_to_sign == vectors["string_to_sign"]
    assert steps.message_bytes == vectors["string_to_sign"].encode()
    assert steps.digest_hex == hashlib.sha256(steps.message_bytes).hexdigest()
    assert steps.signature == vectors["signature_sha256withrsa_base64"]
    shown = repr(steps) + steps._repr_html_()
    assert vectors["signature_sha256withrsa_base64"] not in shown
    assert vectors["signature_sha256withrsa_base64"][:6] in shown


# --- X-TIMESTAMP ----------------------------------------------------------------------------


def test_make_timestamp_defaults_to_jakarta():
    instant = datetime(2020, 12, 18, 3, 55, 0, 123456, tzinfo=timezone.utc)
    assert make_timestamp(lambda: instant) == "2020-12-18T10:55:00+07:00"
    assert make_timestamp(instant) == "2020-12-18T10:55:00+07:00"


def test_make_timestamp_other_zones():
    instant = datetime(2020, 12, 18, 3, 55, tzinfo=timezone.utc)
    assert make_timestamp(instant, tz="UTC") == "2020-12-18T03:55:00+00:00"
    assert make_timestamp(instant, tz="Asia/Makassar") == "2020-12-18T11:55:00+08:00"
    assert make_timestamp(instant, tz=timezone(timedelta(hours=-3))) == "2020-12-18T00:55:00-03:00"
    with pytest.raises(errors.TimestampError, match="Unknown time zone"):
        make_timestamp(instant, tz="Mars/Olympus")


def test_make_timestamp_refuses_naive_clock():
    with pytest.raises(errors.TimestampError, match="naive"):
        make_timestamp(lambda: datetime(2020, 1, 1))


@pytest.mark.parametrize(
    "text, notes",
    [
        ("2020-12-18T10:55:00+07:00", 0),
        ("2020-12-18T03:55:00Z", 0),
        ("2020-12-18T10:55:00.000+07:00", 0),
        ("2020-12-18T03:55:00.123Z", 0),
        ("2020-12-18T03:55:00-00:00", 1),
        ("2020-12-18T10:55:00+0700", 1),
        ("2020-12-18 10:55:00+07:00", 1),
        ("2020-12-18T03:55:00.123456789Z", 1),
        ("2020-12-18 03:55:00.1234-0000", 3),
    ],
)
def test_parse_accepts_what_real_clients_send(text, notes):
    parsed = parse_timestamp(text)
    assert parsed.value.replace(microsecond=0) == datetime(2020, 12, 18, 3, 55, tzinfo=timezone.utc)
    assert len(parsed.notes) == notes
    assert parsed.is_standard == (notes == 0)
    if notes:
        with pytest.raises(errors.TimestampError, match="strict"):
            parse_timestamp(text, strict=True)
    else:
        assert parse_timestamp(text, strict=True).value == parsed.value


# Issue 14 item 1: the standard's X-TIMESTAMP is yyyy-MM-ddTHH:mm:ss.SSSTZD, TZD = Z | +hh:mm | -hh:mm.
@pytest.mark.parametrize(
    "text",
    [
        "2020-12-18T10:55:00.000+07:00",
        "2020-12-18T03:55:00Z",
        "2020-12-18T03:55:00.000Z",
        "2020-12-17T22:55:00-05:00",
        "2020-12-18T10:55:00+07:00",
    ],
)
def test_strict_accepts_every_form_the_standard_allows(text):
    parsed = parse_timestamp(text, strict=True)
    assert parsed.value == datetime(2020, 12, 18, 3, 55, tzinfo=timezone.utc)
    assert parsed.notes == ()
    assert parse_timestamp(text, profile="snap") == parsed


@pytest.mark.parametrize(
    "text, note",
    [
        ("2020-12-18T03:55:00-00:00", "-00:00"),
        ("2020-12-18T10:55:00+0700", "without a colon"),
        ("2020-12-18 10:55:00+07:00", "space instead of 'T'"),
        ("2020-12-18T10:55:00.1234+07:00", "at most three (.SSS)"),
        # Review of issue 14.1: the standard's fraction is exactly .SSS; .5 and .12 are lenient-only.
        ("2020-12-18T10:55:00.5+07:00", "1 fractional digit (.5); SNAP's form has exactly three"),
        ("2020-12-18T03:55:00.12Z", "2 fractional digits (.12); SNAP's form has exactly three"),
    ],
)
def test_lenient_only_extras_each_carry_their_note(text, note):
    parsed = parse_timestamp(text)
    assert len(parsed.notes) == 1 and note in parsed.notes[0]
    with pytest.raises(errors.TimestampError) as caught:
        parse_timestamp(text, strict=True)
    assert note in str(caught.value) and "SNAP form" in str(caught.value)


@pytest.mark.parametrize(
    "text, difference",
    [
        ("2020-12-18T03:55:00Z", "'Z'"),
        ("2020-12-18T10:55:00.000+07:00", "fractional seconds"),
        ("2020-12-18T03:55:00+00:00", "+00:00"),
    ],
)
def test_ifortepay_profile_is_exactly_its_documented_form(text, difference):
    assert parse_timestamp("2020-12-18T10:55:00+07:00", profile="ifortepay").ifortepay_notes == ()
    assert any(difference in n for n in parse_timestamp(text).ifortepay_notes)
    with pytest.raises(errors.TimestampError, match="Ifortepay's documented form") as caught:
        parse_timestamp(text, profile="ifortepay")
    assert difference in str(caught.value)


def test_unknown_profile_is_a_typed_error():
    with pytest.raises(errors.TimestampError, match="profile") as caught:
        parse_timestamp("2020-12-18T10:55:00+07:00", profile="bank")  # type: ignore[arg-type]
    assert "snap" in caught.value.hint


BAD_TIMESTAMPS = [
    ("", "empty"),
    ("2020-12-18", "date only"),
    ("2020-12-18_10:55:00+07:00", "separates date and time with '_'"),
    ("2020-12-18t10:55:00+07:00", "separates date and time with 't'"),
    ("2020/12/18T10:55:00+07:00", "another date layout or separators"),
    ("18-12-2020T10:55:00+07:00", "another date layout or separators"),
    ("2020-12-18T10:55:00", "no time zone designator"),
    ("2020-12-18T10:55:00+070", "unreadable zone designator"),
    ("2020-12-18T10:55:00+07", "must be hours and minutes"),
    ("2020-12-18T10:55+07:00", "no seconds"),
    ("2020-2-8T10:55:00+07:00", "one-digit month or day"),
    ("2020-02-30T10:55:00+07:00", "not a real date and time"),
    ("2020-12-18T24:00:00+07:00", "not a real date and time"),
    ("2020-12-18T10:60:00+07:00", "not a real date and time"),
    ("2020-12-18T10:55:00+25:00", "impossible zone offset"),
    ("1608263700", "Unix epoch"),
    ("20201218T105500+0700", "basic form"),
    ("2020-12-18T10:55:00 WIB", "whitespace before the zone"),
    ("2020-12-18T10:55:00WIB", "names a zone"),
    ("2020-12-18T10:55:00z", "lower-case 'z'"),
    (" 2020-12-18T10:55:00+07:00", "whitespace"),
    ("Fri, 18 Dec 2020 10:55:00 +0700", "not in the form"),
]


@pytest.mark.parametrize("text, fragment", BAD_TIMESTAMPS, ids=[t or "<empty>" for t, _ in BAD_TIMESTAMPS])
def test_bad_timestamp_says_what_is_wrong(text, fragment):
    with pytest.raises(errors.TimestampError) as info:
        parse_timestamp(text)
    assert fragment in str(info.value)
    assert "yyyy-MM-ddTHH:mm:ss+07:00" in info.value.hint


def test_timestamp_type_error():
    with pytest.raises(errors.TimestampError, match="must be a string"):
        parse_timestamp(1608263700)  # type: ignore[arg-type]


# --- string to sign and signature format --------------------------------------------------------


@pytest.mark.parametrize(
    "bad, fragment",
    [("", "empty"), ("  ", "empty"), ("MCP\n0001", "control character"), ("MCP\x000001", "control character"),
     (" MCP1", "spaces around it"), ("MCP1 ", "spaces around it"), ("MCPé1", "non-ASCII"), ("MCP🔑", "non-ASCII")],
)
def test_client_key_must_travel_in_a_header(bad, fragment):
    with pytest.raises(errors.ClientKeyError, match=fragment):
        string_to_sign(bad, "2020-12-18T10:55:00+07:00")


@pytest.mark.parametrize(
    "sig, fragment",
    [
        ("", "empty"),
        ("abc$def=", "not base64"),
        ("abcde", "not a multiple of 4"),
        ("ab-_cdef", "URL-safe"),
        ("ab=c", "misplaced"),
    ],
)
def test_decode_signature_errors(sig, fragment):
    with pytest.raises(errors.SignatureFormatError, match=fragment):
        decode_signature(sig)


def test_verify_false_for_wrong_length(public_key):
    assert not verify(public_key, "x", base64.b64encode(b"\x01" * 128).decode())


# --- properties ---------------------------------------------------------------------------------

# A client key is printable ASCII without surrounding spaces (what can travel in a header).
client_keys = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(timezone.utc)
)
zones = st.sampled_from([JAKARTA, timezone.utc, timezone(timedelta(hours=-9, minutes=-30)), timezone(timedelta(hours=14))])
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPS
@given(client_key=client_keys, instant=instants, tz=zones)
def test_sign_verify_roundtrip(private_key, public_key, client_key, instant, tz):
    ts = make_timestamp(instant, tz=tz)
    assert parse_timestamp(ts, strict=True).value == instant.replace(microsecond=0)
    text = string_to_sign(client_key, ts)
    sig = sign(private_key, text)
    assert verify(public_key, text, sig)


@PROPS
@given(client_key=client_keys, instant=instants, data=st.data())
def test_any_change_to_the_string_fails(private_key, public_key, client_key, instant, data):
    text = string_to_sign(client_key, make_timestamp(instant))
    sig = sign(private_key, text)
    i = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(blacklist_categories=("Cs",)).filter(lambda c: c != text[i]))
    changed = text[:i] + replacement + text[i + 1 :]
    assert not verify(public_key, changed, sig)


@PROPS
@given(client_key=client_keys, data=st.data())
def test_any_change_to_the_signature_fails(private_key, public_key, client_key, data):
    text = string_to_sign(client_key, "2020-12-18T10:55:00+07:00")
    raw = bytearray(base64.b64decode(sign(private_key, text)))
    byte = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[byte] ^= 1 << bit
    assert not verify(public_key, text, base64.b64encode(bytes(raw)).decode())


@PROPS
@given(client_key=client_keys)
def test_another_key_fails(private_key, other_private_key, client_key):
    text = string_to_sign(client_key, "2020-12-18T10:55:00+07:00")
    assert not verify(other_private_key.public_key(), text, sign(private_key, text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_timestamp_never_raises_anything_but_timestamp_error(text):
    try:
        parsed = parse_timestamp(text)
    except errors.TimestampError as exc:
        assert str(exc)
    else:
        assert parsed.value.tzinfo is not None
