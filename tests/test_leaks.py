"""The secrets scanner itself: it finds every form of secret it must, and nothing else.

A scanner that cries wolf gets switched off, and one that misses a JSON-escaped key is worse
than none; so both directions are tested, including the masked values snapbook prints on
purpose (``EzuNpR…cX4w== (344 chars)``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snapbook
from snapbook import keys as K
from snapbook.leaks import (
    KINDS,
    MIN_SECRET_LENGTH,
    Leak,
    find_leaks,
    main,
    scan_notebook,
    scan_paths,
)
from snapbook.masking import mask, mask_headers
from snapbook.signing import sign


def kinds(text: str, **kw) -> list[str]:
    return [leak.kind for leak in find_leaks(text, **kw)]


def no_secret_in_report(leaks: list[Leak], *secrets: str) -> None:
    for leak in leaks:
        for secret in secrets:
            assert secret not in repr(leak) and secret not in str(leak)


@pytest.fixture(scope="module")
def key_3072():
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@pytest.fixture(scope="module")
def key_4096():
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


def _pem(key, fmt=serialization.PrivateFormat.PKCS8, enc=None) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, fmt, enc or serialization.NoEncryption()
    ).decode()


def _der_b64(key, fmt=serialization.PrivateFormat.PKCS8, enc=None) -> str:
    der = key.private_bytes(serialization.Encoding.DER, fmt, enc or serialization.NoEncryption())
    return base64.b64encode(der).decode()


# --- private keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    ["pkcs8", "pkcs1", "encrypted", "legacy-encrypted", "one-line-escaped", "json", "repr-of-json", "crlf",
     "indented"],
)
def test_finds_pem_private_key_blocks(private_key, form):
    pkcs8 = _pem(private_key)
    text = {
        "pkcs8": pkcs8,
        "pkcs1": _pem(private_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "encrypted": _pem(private_key, enc=serialization.BestAvailableEncryption(b"pw")),
        "legacy-encrypted": _pem(
            private_key, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw")
        ),
        "one-line-escaped": "SNAP_KEY=" + pkcs8.replace("\n", "\\n"),
        "json": json.dumps({"private_key": pkcs8}),
        "repr-of-json": repr(json.dumps({"private_key": pkcs8})),  # escaped twice: \\n
        "crlf": pkcs8.replace("\n", "\r\n"),
        "indented": "\n".join("    " + line for line in pkcs8.splitlines()),
    }[form]
    found = find_leaks(f"some output\n{text}\nmore output")
    assert [leak.kind for leak in found] == ["pem-private-key"], found
    assert found[0].line == 2
    no_secret_in_report(found, *pkcs8.splitlines()[1:-1])


def test_finds_ec_and_openssh_private_key_blocks():
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    assert "BEGIN EC PRIVATE KEY" in ec_pem
    assert kinds(ec_pem) == ["pem-private-key"]
    openssh = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    assert "BEGIN OPENSSH PRIVATE KEY" in openssh
    assert kinds(openssh) == ["pem-private-key"]


@pytest.mark.parametrize("fmt", ["pkcs8", "pkcs1", "encrypted-pkcs8"])
@pytest.mark.parametrize("layout", ["one-line", "wrapped-64", "json-escaped-lines", "repr-of-json", "after-equals"])
def test_finds_bare_base64_private_key_bodies(private_key, fmt, layout):
    body = {
        "pkcs8": lambda: _der_b64(private_key),
        "pkcs1": lambda: _der_b64(private_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "encrypted-pkcs8": lambda: _der_b64(private_key, enc=serialization.BestAvailableEncryption(b"pw")),
    }[fmt]()
    assert body.startswith("MII") and len(body) > 1000
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = {
        "one-line": f"key: {body}",
        "wrapped-64": "key:\n" + "\n".join(lines),
        "json-escaped-lines": json.dumps({"key": "\n".join(lines) + "\n"}),
        "repr-of-json": repr(json.dumps({"key": "\n".join(lines) + "\n"})),
        "after-equals": f"SNAP_PRIVATE_KEY={body}",
    }[layout]
    found = find_leaks(text)
    assert [leak.kind for leak in found] == ["private-key-base64"], found
    no_secret_in_report(found, body, *lines)


def test_bare_4096_bit_key_body_is_found(key_4096):
    body = _der_b64(key_4096)
    assert not body.startswith("MIIE")  # MIIJ...: found by its DER structure, not the prefix
    assert kinds(body) == ["private-key-base64"]


def test_public_keys_and_certificates_are_not_private_key_leaks(private_key, key_4096):
    pub_pem = K.public_key_bytes(private_key).decode()
    assert find_leaks(pub_pem) == []
    assert find_leaks(base64.b64encode(K.public_key_bytes(key_4096, "der")).decode()) == []
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "snapbook test " + "x" * 40)])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key_4096.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key_4096, hashes.SHA256())
    )
    cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    assert len(cert_b64) > 1000 and cert_b64.startswith("MII")
    assert find_leaks(cert_b64) == []
    assert find_leaks(cert.public_bytes(serialization.Encoding.PEM).decode()) == []


def test_a_hint_naming_the_pem_header_is_not_a_key():
    hint = "Pass a PEM key (-----BEGIN PRIVATE KEY----- ...), DER bytes, or the bare base64 body of one."
    assert find_leaks(hint) == []
    assert find_leaks("-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----") == []


# --- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_finds_full_signatures_of_each_rsa_size(private_key, key_3072, key_4096, bits):
    key = {2048: private_key, 3072: key_3072, 4096: key_4096}[bits]
    sig = sign(key, "MCP00000001|2020-12-18T10:55:00+07:00")
    assert len(sig) == {2048: 344, 3072: 512, 4096: 684}[bits]
    for text in (
        sig,
        f"X-SIGNATURE: {sig}",
        f"snapbook verify --signature={sig} --timestamp x",
        json.dumps({"signature": sig}),
        json.dumps({"stdout": f"line one\n{sig}\n"}),  # JSON-escaped newline glued to the run
        f"-H 'X-SIGNATURE: {sig}'",
        f"<td><code>{sig}</code></td>",
    ):
        found = find_leaks(text)
        assert [leak.kind for leak in found] == ["rsa-signature"], text[:40]
        assert found[0].length == len(sig)
        no_secret_in_report(found, sig)


def test_finds_signatures_wrapped_or_with_escaped_slashes(private_key):
    sig = sign(private_key, "x")
    for width in (64, 76):
        wrapped = "\n".join(sig[i : i + width] for i in range(0, len(sig), width))
        assert kinds(f"sig:\n{wrapped}\n") == ["rsa-signature"]
    slashed = sign(private_key, "find one with a slash")
    n = 0
    while "/" not in slashed:  # a 344-char signature almost always has one; make sure
        n += 1
        slashed = sign(private_key, f"find one with a slash {n}")
    assert kinds(json.dumps({"s": slashed}).replace("/", "\\/")) == ["rsa-signature"]


def test_masked_values_are_not_leaks(private_key, key_4096):
    sig, big_sig = sign(private_key, "x"), sign(key_4096, "x")
    token = pyjwt.encode({"sub": "MCP00000001"}, "k" * 32, algorithm="HS256")
    masked = [mask(sig), mask(big_sig), mask(token), "EzuNpR…cX4w== (344 chars)"]
    headers = mask_headers({"X-SIGNATURE": sig, "Authorization": f"Bearer {token}", "X-CLIENT-KEY": "MCP00000001"})
    text = "\n".join([*masked, json.dumps(headers), repr(headers), json.dumps(masked)])
    assert find_leaks(text) == []


@pytest.mark.parametrize("n", [340, 343, 345, 348, 511, 513, 683, 685, 1000])
def test_base64_runs_of_other_lengths_are_not_signatures(n):
    run = (base64.b64encode(bytes(range(256)) * 8).decode() * 2)[:n]
    assert "rsa-signature" not in kinds(f"data: {run} end")


def test_hex_of_signature_length_is_not_a_signature():
    block = bytes(range(256)).hex()  # the doctor shows the recovered block s^e mod n in hex: public
    assert len(block) == 512
    assert find_leaks(f"recovered block: {block}") == []
    assert find_leaks(block.upper()[:344]) == []


def test_ordinary_text_is_not_a_leak():
    text = "\n".join(
        [
            "fingerprint: " + "ab" * 32,  # SHA-256 hex
            "snapbook.leaks.find_leaks and a.b.c and v1.0.2",
            "https://api-stage.ifortepay.id/v1.0/access-token/b2b?x=1",
            "123e4567-e89b-12d3-a456-426614174000",
            "X-TIMESTAMP: 2020-12-18T10:55:00+07:00",
            "responseCode 4017300 Unauthorized. [Signature]",
            "A" * 300 + " " + "-" * 400,
            "eyJhbGciOiJIUzI1NiJ9",  # a JWT header alone
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0",  # header.payload: not the whole token
        ]
    )
    assert find_leaks(text) == []


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS512", "RS256", "none"])
def test_finds_full_jwts(private_key, alg):
    key = private_key if alg == "RS256" else (None if alg == "none" else "k" * 64)
    token = pyjwt.encode({"sub": "MCP00000001", "exp": 1_700_000_900}, key, algorithm=alg)
    for text in (token, f"Authorization: Bearer {token}", json.dumps({"accessToken": token}),
                 json.dumps({"out": f"\n{token}\n"})):
        found = find_leaks(text)
        assert [leak.kind for leak in found] == ["jwt"], (alg, text[:30])
        assert found[0].length == len(token)
        no_secret_in_report(found, token)


def test_only_complete_jwts_count(key_3072):
    hs512 = pyjwt.encode({"sub": "x"}, "k" * 64, algorithm="HS512")
    header, payload, signature = hs512.split(".")
    assert len(signature) == 86
    assert find_leaks(f"{header}.{payload}.") == []  # a token split across two string literals
    assert find_leaks(f"{header}.{payload}.{signature[:16]}") == []  # a truncated fixture: cannot verify
    assert kinds(pyjwt.encode({"sub": "x"}, key_3072, algorithm="RS256")) == ["jwt"]  # 512-char signature
    assert kinds(pyjwt.encode({"sub": "x"}, key_3072, algorithm="PS384")) == ["jwt"]
    odd = base64.urlsafe_b64encode(b'{"alg":"XY1"}').rstrip(b"=").decode()
    assert kinds(f"{odd}.{payload}.{'Q' * 20}") == ["jwt"]  # an unknown algorithm: any real signature


def test_three_dotted_segments_that_are_not_a_jwt_are_ignored():
    fake_header = base64.urlsafe_b64encode(b'{"typ":"JWT"}').rstrip(b"=").decode()  # no "alg"
    assert find_leaks(f"{fake_header}.eyJzdWIiOiJ4In0.c2ln") == []
    assert find_leaks("snapbook.sandbox.server and tests.test_leaks.kinds") == []


# --- known secrets ---------------------------------------------------------------------------


def test_finds_known_secrets_whole_only():
    secret = "s3cr3t-client-secret-0123456789"
    found = find_leaks(f"a {secret} b {secret}", known_secrets=[secret])
    assert [(leak.kind, leak.position) for leak in found] == [("known-secret", 2), ("known-secret", 36)]
    no_secret_in_report(found, secret)
    assert find_leaks(secret[:-1], known_secrets=[secret]) == []  # a prefix is not the whole value


def test_short_known_secrets_are_ignored():
    assert MIN_SECRET_LENGTH >= 8
    assert find_leaks("the word password appears", known_secrets=["password", ""]) == []


def test_known_pem_line_inside_a_block_is_reported_once_as_the_block(private_key):
    pem = _pem(private_key)
    found = find_leaks(pem, known_secrets=pem.splitlines()[1:-1])
    assert [leak.kind for leak in found] == ["pem-private-key"]
    line = pem.splitlines()[3]
    assert kinds(f"one line of it: {line}", known_secrets=[line]) == ["known-secret"]


def test_a_known_signature_is_reported_once(private_key):
    sig = sign(private_key, "x")
    assert kinds(sig, known_secrets=[sig]) == ["rsa-signature"]


# --- the report ------------------------------------------------------------------------------


def test_leak_fields_and_str(private_key):
    sig = sign(private_key, "x")
    leak = find_leaks(f"ok\nok\nsig {sig}", source="out.txt")[0]
    assert leak.kind in KINDS
    assert (leak.position, leak.length, leak.line, leak.source) == (10, 344, 3, "out.txt")
    assert leak.excerpt == mask(sig)
    assert str(leak).startswith("out.txt:3: rsa-signature at offset 10:")


def test_bytes_are_scanned_and_other_types_refused(private_key):
    sig = sign(private_key, "x")
    assert kinds(sig.encode()) == ["rsa-signature"]
    assert kinds(b"\xff\xfe" + sig.encode() + b"\x80") == ["rsa-signature"]
    with pytest.raises(TypeError):
        find_leaks(None)  # type: ignore[arg-type]


def test_package_root_exposes_find_leaks_lazily():
    assert snapbook.find_leaks is find_leaks
    assert "find_leaks" in snapbook.__all__


@pytest.mark.timeout(30)
def test_scanning_is_linear_on_hostile_text():
    texts = ["A" * 2_000_000, "a.b.c " * 200_000, ("QUJD" * 16 + "\n") * 20_000, "eyJ" * 300_000,
             "-----BEGIN PRIVATE KEY-----" * 30_000]
    start = time.monotonic()
    for text in texts:
        find_leaks(text)
    assert time.monotonic() - start < 15


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_scans_without_error(text):
    for leak in find_leaks(text):
        assert leak.kind in KINDS and 0 <= leak.position < max(len(text), 1)


_SEP = st.sampled_from([" ", "\n", "\t", '"', "'", ":", ",", "(", "=", "<", ">", "\\n"])


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(min_size=256, max_size=256), before=_SEP, after=_SEP,
       prefix=st.text(alphabet=" abc:\n", max_size=20))
def test_every_256_byte_signature_is_found_and_its_mask_is_not(raw, before, after, prefix):
    sig = base64.b64encode(raw).decode()
    found = find_leaks(f"{prefix}{before}{sig}{after}")
    assert [leak.kind for leak in found] == ["rsa-signature"]
    assert find_leaks(f"{prefix}{before}{mask(sig)}{after}") == []


# --- files -----------------------------------------------------------------------------------


def _notebook(source: str, output: dict, metadata: dict | None = None) -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# title\n", "text"]},
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": source.splitlines(True),
             "outputs": [output]},
        ],
        "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5,
    }


def test_scan_notebook_reads_sources_outputs_and_widget_state(tmp_path, private_key):
    sig = sign(private_key, "x")
    token = pyjwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")
    pem = _pem(private_key)
    nb = _notebook(
        f"sig = {sig!r}\n",
        {"output_type": "stream", "name": "stdout", "text": [f"{token}\n"]},
        {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"m1": {"state": {"value": pem}}}}}},
    )
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    found = scan_notebook(path)
    assert sorted(leak.kind for leak in found) == ["jwt", "pem-private-key", "rsa-signature"]
    by_kind = {leak.kind: leak.source for leak in found}
    assert by_kind["rsa-signature"] == f"{path}:cell 2:source"
    assert by_kind["jwt"] == f"{path}:cell 2:outputs[0].text"
    assert "metadata.widgets" in by_kind["pem-private-key"]
    no_secret_in_report(found, sig, token)


def test_scan_notebook_skips_images_and_accepts_clean_notebooks(tmp_path, private_key):
    blob = _der_b64(private_key)  # would be a leak as text; as PNG bytes it is an image
    nb = _notebook("print(mask(sig))\n", {"output_type": "display_data", "metadata": {},
                                          "data": {"image/png": blob, "text/plain": "<Figure>"}})
    path = tmp_path / "clean.ipynb"
    path.write_text(json.dumps(nb))
    assert scan_notebook(path) == []
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [' + json.dumps(_pem(private_key)))
    assert [leak.kind for leak in scan_notebook(broken)] == ["pem-private-key"]


def test_scan_paths_walks_directories_and_honours_exclude(tmp_path, private_key):
    sig = sign(private_key, "x")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.jsonl").write_text(json.dumps({"signature": sig}) + "\n")
    (tmp_path / "logs" / "ok.jsonl").write_text(json.dumps({"signature": mask(sig)}) + "\n")
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "vendor.json").write_text(json.dumps({"k": _pem(private_key)}))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "leaky.txt").write_text(sig)
    (tmp_path / "binary.bin").write_bytes(sig.encode())  # not a text suffix: skipped in a walk
    found = scan_paths(tmp_path, exclude=[tmp_path / "fixtures"])
    assert [(leak.kind, leak.source) for leak in found] == [("rsa-signature", str(tmp_path / "logs" / "run.jsonl"))]
    assert len(scan_paths(tmp_path)) == 2
    assert [leak.kind for leak in scan_paths(tmp_path / "binary.bin")] == ["rsa-signature"]  # named: scanned
    with pytest.raises(RuntimeError, match="stopped after 1 files"):
        scan_paths(tmp_path, max_files=1)


def test_main_exit_codes(tmp_path, private_key, capsys):
    clean = tmp_path / "clean.txt"
    clean.write_text("nothing here")
    assert main([str(clean)]) == 0
    leaky = tmp_path / "leaky.txt"
    sig = sign(private_key, "x")
    leaky.write_text(sig)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "rsa-signature" in out.out and sig not in out.out and "1 leak(s)" in out.err
    assert main([str(tmp_path), "--exclude", str(leaky)]) == 0


def test_cli_refuses_a_path_that_does_not_exist(tmp_path, capsys):
    from snapbook.leaks import main

    assert main([str(tmp_path / "no-such-folder")]) == 2
    assert "nothing to scan" in capsys.readouterr().err
    (tmp_path / "clean.txt").write_text("nothing secret here")
    assert main([str(tmp_path)]) == 0
