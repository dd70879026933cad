"""The signature doctor: every diagnosis is produced by really making that mistake with a real key."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from snapbook.cli import main
from snapbook.doctor import CAUSES, Diagnosis, diagnose, diagnose_request
from snapbook.errors import KeyFileError, KeyFormatError
from snapbook.keys import load_private_key, save_public_key
from snapbook.signing import JAKARTA, make_timestamp, sign, signed_headers

CK = "MCP00000001"
NOW = datetime(2020, 12, 18, 3, 55, 0, tzinfo=timezone.utc)  # 10:55:00 in Jakarta
TS = make_timestamp(NOW)  # '2020-12-18T10:55:00+07:00'
EXACT = f"{CK}|{TS}"
BODY = b'{"grantType":"client_credentials","additionalInfo":{}}'


@pytest.fixture(scope="module")
def key(private_key):
    return private_key


@pytest.fixture(scope="module")
def pub(key):
    return key.public_key()


def raw_sign(key, message: bytes, algorithm=None, pad=None) -> bytes:
    return key.sign(message, pad or padding.PKCS1v15(), algorithm or hashes.SHA256())


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def check(d: Diagnosis, cause: str) -> Diagnosis:
    assert d.cause == cause, d
    assert cause in CAUSES
    assert d.ok is (cause == "valid")
    assert d.summary and "\n" not in d.summary
    if not d.ok:
        assert d.fix
    return d


# --- valid --------------------------------------------------------------------------------


def test_a_correct_signature_is_valid(key, pub):
    d = check(diagnose(pub, CK, TS, sign(key, EXACT)), "valid")
    assert d.signed_message == EXACT
    assert d.hash_algorithm == "SHA-256" and d.padding == "PKCS#1 v1.5"
    assert d.recovered_digest_hex == hashlib.sha256(EXACT.encode()).hexdigest()


def test_the_vendor_key_pair_and_its_correct_signature(vectors):
    d = diagnose(
        vectors["public_key_pem"],
        vectors["client_key"],
        vectors["timestamp"],
        vectors["signature_sha256withrsa_base64"],
    )
    check(d, "valid")


def test_signed_headers_are_valid_for_diagnose_request(key, pub):
    headers = signed_headers(key, CK, TS)
    lower = {k.lower(): v for k, v in headers.items()}
    check(diagnose_request(pub, lower, BODY), "valid")


def test_diagnose_request_reads_an_httpx_request(key, pub):
    httpx = pytest.importorskip("httpx")
    request = httpx.Request(
        "POST",
        "https://sandbox.test/v1.0/access-token/b2b",
        headers=signed_headers(key, CK, TS),
        content=BODY,
    )
    check(diagnose_request(pub, request), "valid")


# --- the signature's encoding ----------------------------------------------------------------


def test_not_base64(pub):
    d = check(diagnose(pub, CK, TS, "not a signature!"), "not-base64")
    assert "'!'" in d.details or "' '" in d.details or "spaces" in d.summary


def test_empty_signature(pub):
    check(diagnose(pub, CK, TS, ""), "not-base64")


def test_line_wrapped_base64_is_not_base64_but_valid_underneath(key, pub):
    wrapped = "\n".join(textwrap.wrap(sign(key, EXACT), 64))  # `openssl base64` without -A
    d = check(diagnose(pub, CK, TS, wrapped), "not-base64")
    assert "line breaks" in d.summary
    assert "valid" in d.details


def test_plus_signs_turned_into_spaces_by_url_decoding(key, pub):
    from urllib.parse import unquote_plus

    for i in range(50):  # a signature with a '+' in it
        ts = make_timestamp(NOW + timedelta(seconds=i))
        sig = sign(key, f"{CK}|{ts}")
        if "+" in sig:
            break
    d = check(diagnose(pub, CK, ts, unquote_plus(sig)), "not-base64")  # pasted into a query string
    assert "'+' characters became spaces" in d.summary
    assert "valid" in d.details


def test_quoted_signature(key, pub):
    d = check(diagnose(pub, CK, TS, json.dumps(sign(key, EXACT))), "not-base64")
    assert "quotes" in d.summary


def test_stripped_padding(key, pub):
    sig = sign(key, EXACT)
    assert sig.endswith("=")
    d = check(diagnose(pub, CK, TS, sig.rstrip("=")), "not-base64")
    assert "padding" in d.summary


def test_base64url(key, pub):
    # urlsafe_b64encode of a signature with no '-'/'_' would be indistinguishable; find one with them.
    for i in range(50):
        ts = make_timestamp(NOW + timedelta(seconds=i))
        raw = raw_sign(key, f"{CK}|{ts}".encode())
        text = base64.urlsafe_b64encode(raw).decode()
        if set(text) & set("-_"):
            break
    d = check(diagnose(pub, CK, ts, text), "base64url")
    assert "valid" in d.details
    unpadded = check(diagnose(pub, CK, ts, text.rstrip("=")), "base64url")
    assert "padding" in unpadded.summary


def test_hex_instead_of_base64(key, pub):
    d = check(diagnose(pub, CK, TS, raw_sign(key, EXACT.encode()).hex()), "hex-encoded")
    assert "valid" in d.details


def test_double_base64(key, pub):
    twice = base64.b64encode(sign(key, EXACT).encode()).decode()
    check(diagnose(pub, CK, TS, twice), "double-base64")


# --- the length -------------------------------------------------------------------------------


def test_truncated_signature_is_wrong_length(key, pub):
    sig = sign(key, EXACT)
    d = check(diagnose(pub, CK, TS, sig[:200]), "wrong-length")
    assert "256 bytes" in d.summary
    d = check(diagnose(pub, CK, TS, sig[:-4]), "wrong-length")  # a whole base64 quantum lost


def test_hmac_sha512_is_wrong_length(pub):
    mac = __import__("hmac").new(b"client-secret", EXACT.encode(), hashlib.sha512).digest()
    d = check(diagnose(pub, CK, TS, b64(mac)), "wrong-length")
    assert "HMAC-SHA512" in d.details


def test_a_bare_sha256_digest_is_wrong_length(pub):
    d = check(diagnose(pub, CK, TS, b64(hashlib.sha256(EXACT.encode()).digest())), "wrong-length")
    assert "never signed" in d.details


def test_dropped_leading_zero_byte(key, pub):
    # About one signature in 256 starts with 00; int -> bytes without a fixed length drops it.
    for i in range(3000):
        ts = make_timestamp(NOW + timedelta(seconds=i))
        raw = raw_sign(key, f"{CK}|{ts}".encode())
        if raw[0] == 0:
            break
    else:  # pragma: no cover
        pytest.skip("no signature with a leading zero byte found")
    number = int.from_bytes(raw, "big")
    short = number.to_bytes((number.bit_length() + 7) // 8, "big")
    d = check(diagnose(pub, CK, ts, b64(short)), "wrong-length")
    assert "leading zero" in d.summary
    assert "valid" in d.details


# --- the key pair and the padding ------------------------------------------------------------------


def test_the_vendor_example_signature_is_a_different_key(vectors):
    d = diagnose(
        vectors["public_key_pem"],
        vectors["client_key"],
        vectors["timestamp"],
        vectors["documented_signature_base64"],
    )
    check(d, "different-key")
    assert "PKCS#1 v1.5" in d.summary


def test_signed_with_another_private_key(pub, vectors):
    other = load_private_key(vectors["private_key_pem"])
    d = check(diagnose(pub, CK, TS, sign(other, EXACT)), "different-key")
    assert d.key_fingerprint and d.key_fingerprint[:16] in d.summary


@pytest.mark.parametrize(
    "algorithm, cause",
    [
        (hashes.SHA1(), "wrong-hash-sha1"),
        (hashes.SHA512(), "wrong-hash-sha512"),
        (hashes.SHA384(), "wrong-hash-sha384"),
        (hashes.SHA224(), "wrong-hash-sha224"),
        (hashes.MD5(), "wrong-hash-md5"),
        (hashes.SHA512_224(), "wrong-hash-sha512-224"),
        (hashes.SHA512_256(), "wrong-hash-sha512-256"),
        (hashes.SHA3_224(), "wrong-hash-sha3-224"),
        (hashes.SHA3_256(), "wrong-hash-sha3-256"),
        (hashes.SHA3_384(), "wrong-hash-sha3-384"),
        (hashes.SHA3_512(), "wrong-hash-sha3-512"),
    ],
)
def test_another_hash(key, pub, algorithm, cause):
    d = check(diagnose(pub, CK, TS, b64(raw_sign(key, EXACT.encode(), algorithm))), cause)
    assert "the message was right" in d.summary
    assert d.recovered_digest_hex == hashlib.new(algorithm.name, EXACT.encode()).hexdigest()


def test_another_hash_and_another_message(key, pub):
    d = check(
        diagnose(pub, CK, TS, b64(raw_sign(key, f"{CK}:{TS}".encode(), hashes.SHA512()))), "wrong-hash-sha512"
    )
    assert d.signed_message == f"{CK}:{TS}"
    assert "'|'" in d.fix


@pytest.mark.parametrize("salt", [padding.PSS.MAX_LENGTH, padding.PSS.DIGEST_LENGTH, 0])
def test_pss_padding(key, pub, salt):
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    raw = raw_sign(key, EXACT.encode(), pad=pss)
    d = check(diagnose(pub, CK, TS, b64(raw)), "pss-padding")
    assert "the message was right" in d.summary
    # The doctor's own PSS decoding agrees with cryptography's.
    pub.verify(
        raw, EXACT.encode(), padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), hashes.SHA256()
    )


def test_pss_padding_over_another_message(key, pub):
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    d = check(diagnose(pub, CK, TS, b64(raw_sign(key, f"{TS}|{CK}".encode(), pad=pss))), "pss-padding")
    assert d.signed_message == f"{TS}|{CK}"


def _raw_rsa(key, em: bytes) -> bytes:
    """The private-key operation on a hand-made block, as NONEwithRSA or privateEncrypt do."""
    numbers = key.private_numbers()
    k = key.key_size // 8
    return pow(int.from_bytes(em, "big"), numbers.d, numbers.public_numbers.n).to_bytes(k, "big")


def _type1(payload: bytes, k: int) -> bytes:
    return b"\x00\x01" + b"\xff" * (k - 3 - len(payload)) + b"\x00" + payload


def test_raw_digest_without_digestinfo(key, pub):
    digest = hashlib.sha256(EXACT.encode()).digest()  # NONEwithRSA over a digest made by hand
    d = check(diagnose(pub, CK, TS, b64(_raw_rsa(key, _type1(digest, 256)))), "no-digestinfo")
    assert "the message was right" in d.summary


def test_message_encrypted_with_the_private_key(key, pub):
    # Node: crypto.privateEncrypt(key, Buffer.from(stringToSign))
    d = check(diagnose(pub, CK, TS, b64(_raw_rsa(key, _type1(EXACT.encode(), 256)))), "no-digestinfo")
    assert "no hash at all" in d.summary


def test_hand_made_digestinfo_without_null(key, pub):
    digest = hashlib.sha256(EXACT.encode()).digest()
    info = bytes.fromhex("302f300b06096086480165030402010420") + digest  # forgot the 05 00
    d = check(diagnose(pub, CK, TS, b64(_raw_rsa(key, _type1(info, 256)))), "malformed-padding")
    assert "NULL" in d.summary
    assert "message is right" in d.details


# --- the message ----------------------------------------------------------------------------


def _wrong(key, pub, message: str | bytes, **kw) -> Diagnosis:
    return diagnose(pub, CK, TS, sign(key, message), **kw)


def test_colon_instead_of_bar(key, pub):
    d = check(_wrong(key, pub, f"{CK}:{TS}"), "separator-colon")
    assert d.signed_message == f"{CK}:{TS}"
    assert d.expected_message == EXACT
    assert d.recovered_digest_hex == hashlib.sha256(f"{CK}:{TS}".encode()).hexdigest()


def test_no_separator(key, pub):
    check(_wrong(key, pub, CK + TS), "separator-other")


def test_parts_swapped(key, pub):
    check(_wrong(key, pub, f"{TS}|{CK}"), "parts-swapped")


@pytest.mark.parametrize(
    "message",
    [
        EXACT + "\n",  # echo "$CK|$TS" | openssl dgst ...
        EXACT + "\r\n",
        f" {EXACT} ",
        f"{CK} | {TS}",
        f"{CK}\n|{TS}",  # the client key read from a file with its newline
    ],
)
def test_whitespace(key, pub, message):
    d = check(_wrong(key, pub, message), "whitespace")
    assert d.signed_message == message
    assert repr(message) in d.summary  # the whitespace is visible


def test_client_key_in_another_case(key, pub):
    d = check(_wrong(key, pub, f"{CK.lower()}|{TS}"), "client-key-case")
    assert "lower case" in d.summary


def test_only_the_timestamp(key, pub):
    check(_wrong(key, pub, TS), "missing-part")


def test_json_encoded_string_to_sign(key, pub):
    check(_wrong(key, pub, json.dumps(EXACT)), "quoted")


def test_utf16_bytes(key, pub):
    d = check(_wrong(key, pub, EXACT.encode("utf-16-le")), "message-encoding")  # C# Encoding.Unicode
    assert "UTF-16LE" in d.summary


def test_hashed_before_signing(key, pub):
    hexdigest = hashlib.sha256(EXACT.encode()).hexdigest()
    check(_wrong(key, pub, hexdigest), "prehashed")
    check(_wrong(key, pub, hashlib.sha256(EXACT.encode()).digest()), "prehashed")


def test_body_signed(key, pub):
    d = check(_wrong(key, pub, BODY, body=BODY), "body-signed")
    assert d.signed_message == BODY.decode()


def test_body_signed_without_the_body_given(key, pub):
    check(_wrong(key, pub, b'{"grantType":"client_credentials"}'), "body-signed")


def test_transactional_string_to_sign(key, pub):
    body_hash = hashlib.sha256(BODY).hexdigest()
    d = check(_wrong(key, pub, f"POST:/v1.0/access-token/b2b:{body_hash}:{TS}", body=BODY), "body-signed")
    assert "transactional" in d.summary


def test_pretty_printed_body_signed(key, pub):
    sent = json.dumps(json.loads(BODY), indent=2).encode()
    check(_wrong(key, pub, json.dumps(json.loads(BODY), separators=(",", ":")), body=sent), "body-signed")


# --- the timestamp --------------------------------------------------------------------------


def test_javascript_to_iso_string_for_the_signature(key, pub):
    signed_ts = NOW.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # new Date().toISOString()
    d = check(_wrong(key, pub, f"{CK}|{signed_ts}"), "timestamp-format")
    assert "same instant" in d.summary
    assert signed_ts in d.details and TS in d.details


@pytest.mark.parametrize(
    "signed_ts",
    [
        NOW.astimezone(JAKARTA).strftime("%Y-%m-%dT%H:%M:%S%z"),  # +0700 without a colon
        NOW.astimezone(JAKARTA).strftime("%Y-%m-%dT%H:%M:%S.000%z")[:-2] + ":00",  # Java .SSSXXX
        NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        str(int(NOW.timestamp())),
        NOW.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S"),  # str() of a naive local time
    ],
)
def test_timestamp_signed_in_another_format(key, pub, signed_ts):
    d = check(_wrong(key, pub, f"{CK}|{signed_ts}"), "timestamp-format")
    assert d.signed_message == f"{CK}|{signed_ts}"


def test_utc_clock_time_labelled_jakarta(key, pub):
    # datetime.utcnow().strftime(...) + "+07:00": the header is right, the signed text is 7 h early.
    signed_ts = NOW.strftime("%Y-%m-%dT%H:%M:%S") + "+07:00"
    d = check(_wrong(key, pub, f"{CK}|{signed_ts}"), "timestamp-format")
    assert "UTC clock time" in d.summary and "7 h" in d.summary


def test_a_second_timestamp_made_for_the_signature(key, pub):
    ticks = iter([NOW, NOW + timedelta(seconds=1)])
    clock = lambda: next(ticks)
    header_ts = make_timestamp(clock)
    signed_ts = make_timestamp(clock)
    d = check(diagnose(pub, CK, header_ts, sign(key, f"{CK}|{signed_ts}")), "timestamp-drift")
    assert "1 s later" in d.summary


def test_a_second_timestamp_minutes_later(key, pub):
    signed_ts = make_timestamp(NOW + timedelta(minutes=4, seconds=7))
    d = check(_wrong(key, pub, f"{CK}|{signed_ts}"), "timestamp-drift")
    assert "247 s earlier" in d.summary or "247 s later" in d.summary


def test_a_second_timestamp_with_milliseconds(key, pub):
    signed_ts = (NOW + timedelta(milliseconds=417)).astimezone(JAKARTA).isoformat(timespec="milliseconds")
    d = check(_wrong(key, pub, f"{CK}|{signed_ts}"), "timestamp-drift")
    assert "0.417 s later" in d.summary


# --- what nothing explains -------------------------------------------------------------------


def test_unknown_message(key, pub):
    d = check(_wrong(key, pub, "something else entirely"), "unknown-message")
    assert d.recovered_digest_hex == hashlib.sha256(b"something else entirely").hexdigest()
    assert d.expected_digest_hex == hashlib.sha256(EXACT.encode()).hexdigest()
    assert d.recovered_digest_hex in d.details
    # The search is bounded: the worst case stays well under a second.
    assert 1000 < d.candidates_tried < 30_000


def test_missing_header(pub):
    d = check(diagnose_request(pub, {"X-TIMESTAMP": TS, "X-CLIENT-KEY": CK}), "missing-header")
    assert "X-SIGNATURE" in d.summary


def test_header_with_underscores_is_missing(key, pub):
    headers = {"X-TIMESTAMP": TS, "X-CLIENT-KEY": CK, "X_SIGNATURE": sign(key, EXACT)}
    d = check(diagnose_request(pub, headers), "missing-header")
    assert "X_SIGNATURE" in d.details


# --- the result object ------------------------------------------------------------------------


def test_no_full_signature_anywhere(key, pub):
    sig = sign(key, f"{CK}:{TS}")
    d = diagnose(pub, CK, TS, sig)
    for text in (repr(d), d._repr_html_(), json.dumps(d.to_dict()), d.summary, d.details, d.fix):
        assert sig not in text
        assert sig[10:60] not in text
    assert d.signature_masked.startswith(sig[:6])


def test_html_table(key, pub):
    d = _wrong(key, pub, EXACT + "\n")
    page = d._repr_html_()
    assert page.startswith("<table") and "whitespace" in page and "✘" in page
    assert "&#x27;" in page or "&#39;" in page  # quotes escaped


def test_non_standard_header_timestamp_is_noted(key, pub):
    ts = NOW.isoformat(timespec="microseconds").replace("+00:00", "+0000")  # lenient-only extras
    d = diagnose(pub, CK, ts, sign(key, f"{CK}|{ts}"))
    assert d.ok
    assert any("strict" in n for n in d.notes)
    standard = NOW.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # the standard's .SSS and Z
    d = diagnose(pub, CK, standard, sign(key, f"{CK}|{standard}"))
    assert d.ok and not any("strict" in n for n in d.notes)


def test_public_key_in_every_form(key, pub, tmp_path):
    path = save_public_key(key, tmp_path / "public.pem")
    sig = sign(key, EXACT)
    for form in (pub, key, path, path.read_text(), path.read_bytes()):
        assert diagnose(form, CK, TS, sig).ok
    with pytest.raises(KeyFormatError):
        diagnose("not a key " * 30, CK, TS, sig)  # text: no file name is that long
    with pytest.raises(KeyFileError, match="not found"):
        diagnose("not a key", CK, TS, sig)  # short: read as the path of a key file


def test_a_pss_signature_is_not_accepted_by_cryptography_as_pkcs1(key, pub):
    raw = raw_sign(
        key, EXACT.encode(), pad=padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
    )
    with pytest.raises(InvalidSignature):
        pub.verify(raw, EXACT.encode(), padding.PKCS1v15(), hashes.SHA256())


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def public_pem(tmp_path, key):
    return str(save_public_key(key, tmp_path / "public.pem"))


def _doctor(public_pem, signature, *extra):
    return main(
        [
            "doctor",
            "--public-key",
            public_pem,
            "--client-key",
            CK,
            "--timestamp",
            TS,
            "--signature",
            signature,
            *extra,
        ]
    )


def test_cli_valid_exits_0(key, public_pem, capsys):
    assert _doctor(public_pem, sign(key, EXACT)) == 0
    out = capsys.readouterr().out
    assert out.startswith("Valid: the signature verifies for") and "valid (valid)" not in out


def test_cli_invalid_exits_1_with_the_diagnosis(key, public_pem, capsys):
    sig = sign(key, f"{CK}:{TS}")
    assert _doctor(public_pem, sig) == 1
    out = capsys.readouterr().out
    assert out.startswith("invalid (separator-colon)")
    assert "fix: " in out and sig not in out


def test_cli_json(key, public_pem, capsys):
    assert _doctor(public_pem, sign(key, BODY), "--body", BODY.decode(), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["cause"] == "body-signed" and data["ok"] is False


def test_cli_body_from_a_file(key, public_pem, tmp_path, capsys):
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    assert _doctor(public_pem, sign(key, BODY), "--body", str(body)) == 1
    assert "(body-signed)" in capsys.readouterr().out


def test_cli_unreadable_key_exits_2(tmp_path, capsys):
    assert _doctor(str(tmp_path / "missing.pem"), "AAAA") == 2
    err = capsys.readouterr().err
    assert err.startswith("snapbook: error: ") and "Traceback" not in err
