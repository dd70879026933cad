"""Service-call and notification signatures: OpenSSL as the oracle, every rule, and properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import shutil
import string
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from snapbook import service_signing
from snapbook.errors import BodyFormatError, ServiceSignatureInputError, SnapbookError, TimestampError
from snapbook.keys import save_private_key, save_public_key
from snapbook.service_signing import (
    EMPTY_BODY_SHA256,
    MinifiedJson,
    ServiceSignatureSteps,
    asymmetric_string_to_sign,
    body_hash,
    endpoint_url,
    explain_service_signature,
    minify,
    notification_headers,
    notification_string_to_sign,
    relative_url,
    service_headers,
    sign_asymmetric,
    sign_notification,
    sign_symmetric,
    symmetric_string_to_sign,
    verify_asymmetric,
    verify_notification,
    verify_symmetric,
)

TS = "2020-12-18T10:55:00+07:00"
NOW = datetime(2020, 12, 18, 3, 55, 0, tzinfo=timezone.utc)  # the same instant as TS
SECRET = "o7sWnn0oGXF7y7JBGf18!"  # the portal's example secret
TOKEN = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a"
OPENSSL = shutil.which("openssl")
SECRET_CHARS = string.ascii_letters + string.digits + "!@#$%^"


def _openssl(*args: str, data: bytes) -> bytes:
    assert OPENSSL, "the openssl binary is required for the oracle tests (apt-get install openssl)"
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=True, timeout=30).stdout


def _openssl_hmac_b64(secret: str, text: str) -> str:
    """`openssl dgst -sha512 -hmac SECRET -binary | base64`, the issue's oracle."""
    raw = _openssl("dgst", "-sha512", "-hmac", secret, "-binary", data=text.encode("utf-8"))
    return _openssl("base64", "-A", data=raw).decode("ascii").strip()


def _openssl_sha256_hex(data: bytes) -> str:
    return _openssl("dgst", "-sha256", "-binary", data=data).hex()


def _random_obj(rng: random.Random, depth: int = 0):
    """A JSON object with unicode, '/', nested objects and lists, nulls and numbers."""
    pool = [
        "Rp 10.000,00",
        "https://merchant.com/callback?x=1/2",
        "Jalan Sudirman №1 — Jakarta",
        "日本語",
        "emoji 🎉",
        'quote " and backslash \\',
        "tab\there",
        "  spaced  ",
    ]
    out = {}
    for i in range(rng.randint(1, 4)):
        kind = rng.choice(["s", "n", "f", "null", "b", "obj", "list"] if depth < 2 else ["s", "n", "null"])
        key = rng.choice(
            ["amount", "partnerReferenceNo", "zeta", "alpha", "callbackUrl", "ключ", "k/ey"]
        ) + str(i)
        out[key] = {
            "s": lambda: rng.choice(pool),
            "n": lambda: rng.randint(-(10**12), 10**12),
            "f": lambda: rng.choice([10000.5, 0.1, -3.25e-7]),
            "null": lambda: None,
            "b": lambda: rng.random() < 0.5,
            "obj": lambda: _random_obj(rng, depth + 1),
            "list": lambda: [_random_obj(rng, depth + 1), rng.choice(pool), None, 1],
        }[kind]()
    return out


def _cases(n: int, seed: int):
    rng = random.Random(seed)
    for i in range(n):
        secret = "".join(rng.choice(SECRET_CHARS) for _ in range(rng.randint(8, 40)))
        token = "".join(
            rng.choice(string.ascii_letters + string.digits + "-_.") for _ in range(rng.randint(20, 200))
        )
        obj = None if i % 5 == 0 else _random_obj(rng)
        path = rng.choice(
            [
                "/v1.0/qr/qr-mpm-generate",
                "/api/v1.0/balance-inquiry",
                "/api/v1.2/transfer-interbank",
                "/v1.0/qr/qr-mpm-query?lang=id&x=a/b",
                "/api/v1.0/account-inquiry-external?q=%20&z=1",
            ]
        )
        ts = rng.choice([TS, "2026-11-30T03:10:42.123+07:00", "2024-02-29T23:59:59+00:00"])
        yield secret, token, obj, path, ts


@pytest.mark.openssl
@pytest.mark.parametrize("secret,token,obj,path,ts", list(_cases(16, seed=11)))
def test_symmetric_matches_openssl(secret, token, obj, path, ts):
    # What is sent: pretty-printed UTF-8 JSON (or nothing). What is hashed: its compact form,
    # built here independently of snapbook's minify.
    sent = b"" if obj is None else json.dumps(obj, indent=2, ensure_ascii=False).encode()
    compact = b"" if obj is None else json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    expected = f"POST:{path}:{token}:{_openssl_sha256_hex(compact)}:{ts}"
    assert symmetric_string_to_sign("POST", path, token, sent, ts) == expected
    assert sign_symmetric(secret, "POST", path, token, sent, ts) == _openssl_hmac_b64(secret, expected)


@pytest.mark.openssl
@pytest.mark.parametrize("secret,token,obj,path,ts", list(_cases(8, seed=12)))
def test_notification_matches_openssl(secret, token, obj, path, ts):
    url = "https://merchant.com/callback" + path
    sent = b"" if obj is None else json.dumps(obj, indent=1, ensure_ascii=False).encode()
    compact = b"" if obj is None else json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    expected = f"{url}:v1:{_openssl_sha256_hex(compact)}:{ts}"
    assert notification_string_to_sign(url, sent, ts) == expected
    assert sign_notification(secret, url, sent, ts) == _openssl_hmac_b64(secret, expected)
    assert verify_notification(secret, url, sent, ts, _openssl_hmac_b64(secret, expected), window=None)


@pytest.mark.openssl
@pytest.mark.parametrize("case", list(_cases(4, seed=13)))
def test_asymmetric_matches_openssl_sign_and_verify(tmp_path, private_key, case):
    _secret, _token, obj, path, ts = case
    key_path, pub_path = tmp_path / "private.pem", tmp_path / "public.pem"
    save_private_key(private_key, key_path)
    save_public_key(private_key.public_key(), pub_path)
    sent = b"" if obj is None else json.dumps(obj, indent=2, ensure_ascii=False).encode()
    compact = b"" if obj is None else json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    expected = f"GET:{path}:{_openssl_sha256_hex(compact)}:{ts}"
    assert asymmetric_string_to_sign("get", path, sent, ts) == expected
    ours = sign_asymmetric(private_key, "get", path, sent, ts)
    # PKCS#1 v1.5 is deterministic: OpenSSL's signature is byte-identical ...
    assert base64.b64decode(ours) == _openssl(
        "dgst", "-sha256", "-sign", str(key_path), data=expected.encode()
    )
    # ... and OpenSSL verifies ours.
    sig_path = tmp_path / "sig.bin"
    sig_path.write_bytes(base64.b64decode(ours))
    out = _openssl(
        "dgst", "-sha256", "-verify", str(pub_path), "-signature", str(sig_path), data=expected.encode()
    )
    assert b"Verified OK" in out
    assert verify_asymmetric(private_key.public_key(), "GET", path, sent, ts, ours, window=None)


def test_ifortepay_notification_example_prefix():
    text = notification_string_to_sign("https://merchant.com/callback", b'{"a":1}', TS)
    assert text.startswith("https://merchant.com/callback:v1:")
    assert (
        notification_headers(SECRET, "https://merchant.com/callback", b"", timestamp=TS)["X-VERSION"] == "v1"
    )


# --- the rules --------------------------------------------------------------------------


def test_method_is_upper_cased_and_nonsense_refused():
    assert symmetric_string_to_sign("post", "/v1.0/x", TOKEN, None, TS).startswith("POST:/v1.0/x:")
    assert sign_symmetric(SECRET, "post", "/v1.0/x", TOKEN, None, TS) == sign_symmetric(
        SECRET, "POST", "/v1.0/x", TOKEN, None, TS
    )
    for bad in ("", "PO ST", "POST\n", "GET:"):
        with pytest.raises(ServiceSignatureInputError) as exc:
            sign_symmetric(SECRET, bad, "/v1.0/x", TOKEN, None, TS)
        assert exc.value.hint


def test_endpoint_url_keeps_prefix_and_query_and_has_a_switch():
    text = symmetric_string_to_sign("POST", "/api/v1.0/balance-inquiry?x=1&y=a/b", TOKEN, None, TS)
    assert text.split(":")[1] == "/api/v1.0/balance-inquiry?x=1&y=a/b"
    assert endpoint_url("/api/v1.0/balance-inquiry?x=1", include_query=False) == "/api/v1.0/balance-inquiry"
    assert sign_symmetric(SECRET, "POST", "/p?x=1", TOKEN, None, TS, include_query=False) == sign_symmetric(
        SECRET, "POST", "/p", TOKEN, None, TS
    )
    assert sign_symmetric(SECRET, "POST", "/p?x=1", TOKEN, None, TS) != sign_symmetric(
        SECRET, "POST", "/p", TOKEN, None, TS
    )


def test_relative_url_is_the_path_and_query_as_sent():
    import httpx

    assert (
        relative_url("https://api.senmo.id/api/v1.0/balance-inquiry?a=1&b=x/y")
        == "/api/v1.0/balance-inquiry?a=1&b=x/y"
    )
    assert relative_url("https://api.senmo.id") == "/"
    # httpx percent-encodes what it sends; the signature must cover that, not the typed text.
    request = httpx.Request("POST", "https://api-stage.ifortepay.id/v1.0/qr/qr mpm?nama=Budi Santoso")
    assert relative_url(request.url) == "/v1.0/qr/qr%20mpm?nama=Budi%20Santoso"
    assert request.url.raw_path.decode() == relative_url(request.url)
    for bad in ("/v1.0/x", 42):
        with pytest.raises(ServiceSignatureInputError):
            relative_url(bad)


@pytest.mark.parametrize(
    "path,words",
    [
        ("https://api-stage.ifortepay.id/v1.0/qr/qr-mpm-generate?a=1", "'/v1.0/qr/qr-mpm-generate?a=1'"),
        ("v1.0/qr", "does not start with '/'"),
        ("//evil.example/v1.0", "'//'"),
        ("/v1.0/x#frag", "fragment"),
        ("/v1.0/a b", "spaces"),
        ("", "empty"),
    ],
)
def test_endpoint_url_refuses_what_is_not_a_relative_path(path, words):
    with pytest.raises(ServiceSignatureInputError) as exc:
        sign_symmetric(SECRET, "POST", path, TOKEN, None, TS)
    assert words in exc.value.message and exc.value.hint


def test_error_messages_stay_short_for_hostile_input():
    for call in (
        lambda: sign_symmetric(SECRET, "POST", "x" * 100_000, TOKEN, None, TS),
        lambda: sign_symmetric(SECRET, "P" * 50_000 + "1", "/v1.0/x", TOKEN, None, TS),
        lambda: sign_notification(SECRET, "/" + "y" * 100_000, b"", TS),
        lambda: sign_symmetric(SECRET, "POST", "https://h/" + "z" * 100_000, TOKEN, None, TS),
    ):
        with pytest.raises(ServiceSignatureInputError) as exc:
            call()
        assert len(str(exc.value)) < 500


@pytest.mark.parametrize("token", [f"Bearer {TOKEN}", f"bearer {TOKEN}", "", "tok en", "tok\n"])
def test_access_token_without_bearer_is_refused_not_stripped(token):
    with pytest.raises(ServiceSignatureInputError) as exc:
        sign_symmetric(SECRET, "POST", "/v1.0/x", token, None, TS)
    assert "Bearer" in exc.value.hint
    assert TOKEN not in str(exc.value)  # the token itself is never echoed


def test_timestamp_is_byte_identical_to_the_header_and_validated():
    senmo = "2026-11-30T10:10:42.123+07:00"  # Senmo's pages show milliseconds
    headers = service_headers(
        "POST", "/api/v1.0/balance-inquiry", b"{}", timestamp=senmo, access_token=TOKEN, client_secret=SECRET
    )
    assert headers["X-TIMESTAMP"] == senmo
    assert symmetric_string_to_sign("POST", "/api/v1.0/balance-inquiry", TOKEN, b"{}", senmo).endswith(
        ":" + senmo
    )
    assert verify_symmetric(
        SECRET, "POST", "/api/v1.0/balance-inquiry", TOKEN, b"{}", senmo, headers["X-SIGNATURE"], window=None
    )
    for bad in ("2020-12-18 10:55:00", "1608263700", "2020-12-18T10:55:00+0700"):
        with pytest.raises(TimestampError):
            sign_symmetric(SECRET, "POST", "/v1.0/x", TOKEN, None, bad)


@pytest.mark.parametrize("body", [None, b"", "", bytearray(), b"  \n\t "])
def test_no_body_hashes_the_empty_string(body):
    assert (
        body_hash(body)
        == EMPTY_BODY_SHA256
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert symmetric_string_to_sign("GET", "/v1.0/x", TOKEN, body, TS).split(":")[3] == EMPTY_BODY_SHA256


def test_minify_removes_only_whitespace_outside_strings():
    sent = (
        b'{\n  "z" : "a  b\\"  c",\r\n\t"a": null, "url" : "https:\\/\\/x.id/y",\n'
        b'  "caf\xc3\xa9": "\\u00e9 \xc3\xa9", "n": [1.50, 1e3, -0.0, 10000000000000000000001 ] }'
    )
    assert minify(sent) == (
        b'{"z":"a  b\\"  c","a":null,"url":"https:\\/\\/x.id/y",'
        b'"caf\xc3\xa9":"\\u00e9 \xc3\xa9","n":[1.50,1e3,-0.0,10000000000000000000001]}'
    )
    assert minify(sent.decode()) == minify(sent)  # text is hashed as its UTF-8 bytes


def test_minify_leaves_compact_bodies_with_spaces_in_strings_alone():
    for compact in (b'{"a":"x, y","b":[1,2]}', b'{"name":"Budi Santoso"}', b'["a : b","{ }"]'):
        assert minify(compact) == compact
    assert minify(b'{"a":"x, y" }') == b'{"a":"x, y"}'


def test_minify_of_a_non_json_body():
    assert minify(b"a=1&b=2") == b"a=1&b=2"  # nothing to remove: hashed as sent, JSON or not
    with pytest.raises(BodyFormatError) as exc:
        minify(b"a = 1 & b = 2")
    assert isinstance(exc.value, SnapbookError) and exc.value.hint
    with pytest.raises(BodyFormatError):
        minify({"a": 1})  # type: ignore[arg-type]  # an object is not the bytes sent
    with pytest.raises(BodyFormatError):
        minify('{"a": "é"}'.encode("utf-16"))  # json.loads(bytes) alone would accept UTF-16
    with pytest.raises(BodyFormatError, match="nested too deeply"):
        minify(b"[ " * 100_000 + b"]" * 100_000)  # hostile input: a typed error, not RecursionError


def test_the_bytes_hashed_are_the_bytes_sent():
    obj = {"amount": {"value": "10000.00", "currency": "IDR"}, "note": "a/b é"}
    sent = json.dumps(obj, indent=2, ensure_ascii=False).encode()
    headers = service_headers(
        "POST",
        "/v1.0/qr/qr-mpm-generate",
        sent,
        timestamp=TS,
        access_token=TOKEN,
        client_secret=SECRET,
        partner_id="MCP2021110228",
        external_id="1234",
        channel_id="QR004",
    )
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert {"X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID"} <= set(headers) and "ORIGIN" not in headers
    # The provider hashes what it received, after the same minify.
    assert verify_symmetric(
        SECRET, "POST", "/v1.0/qr/qr-mpm-generate", TOKEN, sent, TS, headers["X-SIGNATURE"], window=None
    )
    # Another serialisation of the same object is other bytes: it does not verify.
    for other in (json.dumps(obj).encode(), json.dumps(obj, separators=(",", ":")).encode()):
        assert not verify_symmetric(
            SECRET, "POST", "/v1.0/qr/qr-mpm-generate", TOKEN, other, TS, headers["X-SIGNATURE"], window=None
        )


def test_service_headers_asymmetric_and_argument_errors(private_key):
    headers = service_headers("POST", "/v1.0/x", b"{}", timestamp=TS, private_key=private_key)
    assert "Authorization" not in headers
    assert verify_asymmetric(
        private_key.public_key(), "POST", "/v1.0/x", b"{}", TS, headers["X-SIGNATURE"], window=None
    )
    with pytest.raises(ServiceSignatureInputError):
        service_headers("POST", "/v1.0/x", b"{}", timestamp=TS, private_key=private_key, client_secret=SECRET)
    with pytest.raises(ServiceSignatureInputError):
        service_headers("POST", "/v1.0/x", b"{}", timestamp=TS, client_secret=SECRET)


@pytest.mark.parametrize("secret", ["", SECRET + "\n", " " + SECRET])
def test_unusable_secrets_are_refused(secret):
    with pytest.raises(ServiceSignatureInputError) as exc:
        sign_symmetric(secret, "POST", "/v1.0/x", TOKEN, None, TS)
    assert exc.value.hint


def test_notification_url_must_be_absolute():
    for bad in ("/callback", "merchant.com/callback", "ftp://merchant.com/cb"):
        with pytest.raises(ServiceSignatureInputError):
            sign_notification(SECRET, bad, b"{}", TS)


# --- verification: freshness, encoding -----------------------------------------------------


def test_verification_checks_freshness_with_an_injected_clock():
    sig = sign_symmetric(SECRET, "POST", "/v1.0/x", TOKEN, b"{}", TS)

    def at(seconds: float):
        return lambda: NOW + timedelta(seconds=seconds)

    args = (SECRET, "POST", "/v1.0/x", TOKEN, b"{}", TS, sig)
    assert verify_symmetric(*args, clock=at(299)).reason == "valid"
    assert verify_symmetric(*args, clock=at(-299)).ok
    assert verify_symmetric(*args, clock=at(301)).reason == "timestamp-stale"
    assert verify_symmetric(*args, clock=at(-301)).reason == "timestamp-future"
    assert verify_symmetric(*args, clock=at(30), window=10).reason == "timestamp-stale"
    assert verify_symmetric(*args, clock=at(10**6), window=None).ok
    # A bad signature is reported as such even when the timestamp is stale too.
    bad = (*args[:-1], sign_symmetric(SECRET, "POST", "/v1.0/y", TOKEN, b"{}", TS))
    assert verify_symmetric(*bad, clock=at(10**6)).reason == "signature-mismatch"


def test_verification_of_an_unreadable_signature():
    v = verify_notification(SECRET, "https://m.id/cb", b"{}", TS, "not base64!", window=None)
    assert not v and v.reason == "not-base64"
    hexsig = base64.b64decode(sign_notification(SECRET, "https://m.id/cb", b"{}", TS)).hex()
    # Hex digits are base64 characters too: a hex HMAC reads as 96 wrong bytes (the doctor names it).
    assert (
        verify_notification(SECRET, "https://m.id/cb", b"{}", TS, hexsig, window=None).reason
        == "signature-mismatch"
    )


# --- the step-by-step view -------------------------------------------------------------------


def test_steps_show_each_step_with_token_secret_and_signature_masked():
    sent = b'{"partnerReferenceNo": "2020102900000000000001"}'
    steps = explain_service_signature(
        method="post",
        path="/v1.0/qr/qr-mpm-generate",
        body=sent,
        timestamp=TS,
        access_token=TOKEN,
        client_secret=SECRET,
    )
    assert isinstance(steps, ServiceSignatureSteps)
    assert steps.signature == sign_symmetric(SECRET, "POST", "/v1.0/qr/qr-mpm-generate", TOKEN, sent, TS)
    assert steps.minified_body == b'{"partnerReferenceNo":"2020102900000000000001"}'
    assert steps.body_sha256 == hashlib.sha256(steps.minified_body).hexdigest()
    for shown in (repr(steps), steps._repr_html_(), json.dumps(steps.to_dict()["stringToSign"])):
        assert TOKEN not in shown and SECRET not in shown
    for shown in (repr(steps), steps._repr_html_()):
        assert steps.signature not in shown
        assert "POST" in shown and steps.body_sha256 in shown and TS in shown
    notif = explain_service_signature(
        notify_url="https://merchant.com/callback", body=sent, timestamp=TS, client_secret=SECRET
    )
    assert notif.signature == sign_notification(SECRET, "https://merchant.com/callback", sent, TS)
    assert SECRET not in repr(notif)


# --- properties -------------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(obj=_json, indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]), ascii_=st.booleans())
def test_minify_preserves_meaning_and_is_idempotent(obj, indent, ascii_):
    text = json.dumps(obj, indent=indent, ensure_ascii=ascii_)
    once = minify(text)
    assert minify(once) == once
    assert json.loads(once) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(obj=_json)
def test_minify_of_pretty_json_is_compact_json(obj):
    pretty = json.dumps(obj, indent=2, ensure_ascii=False)
    assert minify(pretty) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_token = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=60)
_secret = st.text(alphabet=SECRET_CHARS, min_size=1, max_size=40)
_path = st.text(alphabet=string.ascii_letters + string.digits + "/-.?=&", max_size=30).map(
    lambda p: "/" + p.lstrip("/")  # a relative path as sent ('//' would read as a host)
)


@settings(max_examples=150, deadline=None)
@given(
    secret=_secret,
    token=_token,
    path=_path,
    obj=st.dictionaries(st.text(max_size=6), _json, max_size=3),
    which=st.sampled_from(["secret", "method", "path", "token", "body", "timestamp", "signature"]),
)
def test_any_change_to_any_input_breaks_verification(secret, token, path, obj, which):
    body = json.dumps(obj, ensure_ascii=False).encode()
    args = {
        "client_secret": secret,
        "method": "POST",
        "path": path,
        "access_token": token,
        "body": body,
        "timestamp": TS,
    }
    sig = sign_symmetric(**args)
    assert verify_symmetric(**args, signature=sig, window=None)
    changed = dict(args)
    if which == "secret":
        changed["client_secret"] = secret + "x"
    elif which == "method":
        changed["method"] = "PUT"
    elif which == "path":
        changed["path"] = path + "x"
    elif which == "token":
        changed["access_token"] = token + "x"
    elif which == "body":
        changed["body"] = json.dumps({**obj, "\x00added": None}, ensure_ascii=False).encode()
    elif which == "timestamp":
        changed["timestamp"] = "2020-12-18T10:55:01+07:00"
    elif which == "signature":
        raw = bytearray(base64.b64decode(sig))
        raw[len(raw) // 2] ^= 1
        sig = base64.b64encode(bytes(raw)).decode()
    assert not verify_symmetric(**changed, signature=sig, window=None)


# --- sign_symmetric's fast paths (benchmarks/README.md, "Service signing") ----------------

_WHITESPACE = b" \t\n\r"
_PUNCT = b"{}[],:"


def _minified_as_is_by_definition(data: bytes) -> bool:
    """The rule, byte by byte: an object/array in which no whitespace byte touches ``{}[],:``."""
    if not data or data[0] not in b"{[" or data[-1] not in b"}]":
        return False
    for i, byte in enumerate(data):
        if byte in _WHITESPACE and (
            (i > 0 and data[i - 1] in _PUNCT) or (i + 1 < len(data) and data[i + 1] in _PUNCT)
        ):
            return False
    return True


def _signature_by_hand(secret: str, method: str, path: str, token: str, compact: bytes, ts: str) -> str:
    """The issue's formula with hashlib and hmac alone, over bytes known to be the minified body."""
    text = f"{method.upper()}:{path}:{token}:{hashlib.sha256(compact).hexdigest()}:{ts}"
    return base64.b64encode(hmac.digest(secret.encode(), text.encode(), "sha512")).decode()


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=40) | st.text(alphabet='{}[],:" \t\n\rab\\', max_size=40).map(str.encode))
def test_the_minify_needed_proof_agrees_with_its_definition(data):
    assert service_signing._minified_as_is(data) == _minified_as_is_by_definition(data)
    if service_signing._minified_as_is(data):
        assert minify(data) == data  # and then hashing the bytes as given is what minify would do


def test_the_minify_needed_proof_on_the_cases_that_matter():
    as_is = service_signing._minified_as_is
    assert as_is(b'{"name":"Budi Santoso","city":"a b c"}')  # spaces inside strings only
    assert as_is(b'["x\ty"]')  # a raw tab is not JSON, but minify would not change it either
    for needs in (b'{"a": 1}', b'{"a" :1}', b"[1 ,2]", b'{"a":1 }', b'{ "a":1}', b'{"a" \n :1}', b"[1,2\n]"):
        assert not as_is(needs), needs
    for not_bracketed in (b"", b" ", b'"a b"', b"a=1 b=2", b'{"a":"b c"} ', b'{"a":"b c"'):
        assert not as_is(not_bracketed), not_bracketed


@st.composite
def _bodies(draw):
    """(text sent, its minified bytes): one object in three styles; the compact style is the
    minified form of all three (json.dumps differs between them only outside strings)."""
    obj, ascii_ = draw(_json), draw(st.booleans())
    style = draw(st.sampled_from([{"separators": (",", ":")}, {}, {"indent": 2}, {"indent": "\t"}]))
    compact = json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_).encode()
    return json.dumps(obj, ensure_ascii=ascii_, **style), compact


@settings(max_examples=300, deadline=None)
@given(
    secret=_secret,
    token=_token,
    path=_path,
    sent=st.none() | _bodies(),
    form=st.sampled_from(["bytes", "str", "bytearray", "memoryview", "minified"]),
    method=st.sampled_from(["POST", "post", "Get"]),
)
@example(SECRET, TOKEN, "/v1.0/x", ('{"a": "b c", "d": [1, 2]}', b'{"a":"b c","d":[1,2]}'), "bytes", "POST")
@example(SECRET, TOKEN, "/v1.0/x", ('{\n  "a": "b c"\n}', b'{"a":"b c"}'), "bytes", "POST")
@example(SECRET, TOKEN, "/v1.0/x", ('{"a":"b c"}', b'{"a":"b c"}'), "bytes", "POST")
def test_every_body_form_signs_like_the_formula(secret, token, path, sent, form, method):
    """Fast paths (no whitespace, spaces only in strings, MinifiedJson), the slow one and the
    caches give the signature the issue's formula gives, computed by hand."""
    if sent is None:
        body, compact = None, b""
    else:
        text, compact = sent
        raw = text.encode()
        body = {
            "bytes": raw,
            "str": text,
            "bytearray": bytearray(raw),
            "memoryview": memoryview(raw),
            "minified": MinifiedJson(compact),
        }[form]
    expected = _signature_by_hand(secret, method, path, token, compact, TS)
    service_signing._SYMMETRIC_SIGNERS.clear()
    service_signing._CHECKED_TIMESTAMPS.clear()
    assert sign_symmetric(secret, method, path, token, body, TS) == expected  # checked, then cached
    assert sign_symmetric(secret, method, path, token, body, TS) == expected  # from the caches
    assert sign_symmetric(secret.encode(), method, path, token, body, TS) == expected  # bytes secret
    assert sign_symmetric(bytearray(secret.encode()), method, path, token, body, TS) == expected  # unhashable
    assert verify_symmetric(secret, method, path, token, body, TS, expected, window=None)


def test_cached_calls_still_refuse_what_today_refuses():
    path, body = "/v1.0/qr/qr-mpm-generate", b'{"a":"b c"}'
    good = sign_symmetric(SECRET, "POST", path, TOKEN, body, TS)  # warms both caches
    assert sign_symmetric(SECRET, "post", path, TOKEN, body, TS) == good  # upper-cased, as today
    with pytest.raises(ServiceSignatureInputError, match="Bearer"):
        sign_symmetric(SECRET, "POST", path, f"Bearer {TOKEN}", body, TS)
    with pytest.raises(ServiceSignatureInputError, match="absolute URL"):
        sign_symmetric(SECRET, "POST", f"https://api.senmo.id{path}", TOKEN, body, TS)
    with pytest.raises(ServiceSignatureInputError):
        sign_symmetric(SECRET, "PO ST", path, TOKEN, body, TS)
    with pytest.raises(ServiceSignatureInputError):
        sign_symmetric(SECRET, "POST", path, None, body, TS)  # type: ignore[arg-type]
    with pytest.raises(ServiceSignatureInputError):
        sign_symmetric(SECRET + "\n", "POST", path, TOKEN, body, TS)
    for _ in range(2):  # a refused X-TIMESTAMP is never remembered as checked
        with pytest.raises(TimestampError):
            sign_symmetric(SECRET, "POST", path, TOKEN, body, "2020-12-18T10:55:00+0700")
    with pytest.raises(TimestampError):
        sign_symmetric(SECRET, "POST", path, TOKEN, body, 1608263700)  # type: ignore[arg-type]
    with pytest.raises(BodyFormatError):
        sign_symmetric(SECRET, "POST", path, TOKEN, b"a = 1", TS)
    # An un-minified body is minified, exactly as today: it signs like its compact form.
    assert sign_symmetric(SECRET, "POST", path, TOKEN, b'{ "a" : "b c" }', TS) == good
    # Which error comes first is unchanged: the call's parts, then the body, then the timestamp.
    with pytest.raises(ServiceSignatureInputError):
        sign_symmetric(SECRET, "POST", path, f"Bearer {TOKEN}", b"a = 1", "bad")
    with pytest.raises(BodyFormatError):
        sign_symmetric(SECRET, "POST", path, TOKEN, b"a = 1", "bad")


def test_the_signing_caches_are_bounded():
    for i in range(500):
        ts = f"2020-12-18T10:{i // 60:02d}:{i % 60:02d}+07:00"
        sign_symmetric(SECRET, "POST", "/v1.0/x", f"{TOKEN}{i}", None, ts)
    assert 0 < len(service_signing._SYMMETRIC_SIGNERS) <= 64
    assert 0 < len(service_signing._CHECKED_TIMESTAMPS) <= 64
    shown = repr(service_signing._SYMMETRIC_SIGNERS) + str(service_signing._SYMMETRIC_SIGNERS)
    assert SECRET not in shown and TOKEN not in shown  # keyed by secret and token: never shown


def test_minified_json_is_a_proof_not_a_promise():
    obj = {"amount": {"value": "10000.00"}, "note": "a/b é", "n": None, "list": [1, 2.5]}
    made = MinifiedJson.dumps(obj)
    assert type(made) is MinifiedJson
    assert made == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    assert minify(made) is made
    assert MinifiedJson(b'{"name":"Budi Santoso"}') == b'{"name":"Budi Santoso"}'
    for bad in (
        b'{"a": 1}',
        b"a=1",
        b'{"a":1',
        '{"a":"é"}'.encode("utf-16"),
        b"[" * 100_000 + b"]" * 100_000,
    ):
        with pytest.raises(BodyFormatError) as exc:
            MinifiedJson(bad)
        assert exc.value.hint
    # Derived bytes lose the proof (and are looked at again when signed).
    assert type(made[1:]) is bytes and type(made + b" ") is bytes and type(bytes(made)) is bytes
    import pickle

    assert type(pickle.loads(pickle.dumps(made))) is MinifiedJson
    with pytest.raises((TypeError, ValueError)):
        MinifiedJson.dumps({"x": float("nan")})


def test_the_secrets_type_gets_the_same_answer_cold_and_cached():
    """A memoryview secret equal to a cached bytes one must not be refused cold and accepted warm."""
    import snapbook.service_signing as S

    args = ("POST", "/v1.0/qr/qr-mpm-query", "tok-abc", b"{}", "2026-01-15T10:00:00+07:00")
    S._SYMMETRIC_SIGNERS.clear()
    cold = S.sign_symmetric(memoryview(b"secret-1"), *args)
    S._SYMMETRIC_SIGNERS.clear()
    S.sign_symmetric(b"secret-1", *args)  # cached under the bytes secret
    warm = S.sign_symmetric(memoryview(b"secret-1"), *args)
    expected = base64.b64encode(hmac.new(b"secret-1", f"POST:/v1.0/qr/qr-mpm-query:tok-abc:{hashlib.sha256(b'{}').hexdigest()}:"
                                         "2026-01-15T10:00:00+07:00".encode(), hashlib.sha512).digest()).decode()
    assert cold == warm == expected
