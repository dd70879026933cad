"""Signatures interoperate with the real OpenSSL command line, both ways, for every key source."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from snapbook.cli import main as cli
from snapbook.keys import fingerprint, load_private_key, read_private_key, read_public_key
from snapbook.signing import sign, string_to_sign, verify

pytestmark = pytest.mark.openssl

OPENSSL = shutil.which("openssl")
PASS = "s3cret-passphrase"
CLIENT_KEY = "MCP00000001"
TIMESTAMP = "2020-12-18T10:55:00+07:00"


@pytest.fixture(scope="module", autouse=True)
def _require_openssl():
    assert OPENSSL, "the openssl binary is required for the interoperability tests (apt-get install openssl)"


def _run(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run([OPENSSL, *args], input=input, capture_output=True, check=True).stdout


def _make(kind: str, d: Path) -> tuple[Path, str | None]:
    """Make a private key the way merchants do; return its path and passphrase."""
    path = d / f"{kind}.pem"
    if kind == "snapbook-keygen":
        assert cli(["keygen", "--out", str(d / "kg")]) == 0
        return d / "kg" / "private.pem", None
    if kind == "snapbook-keygen-encrypted":
        import os

        os.environ["SNAPBOOK_TEST_PASS"] = PASS
        assert cli(["keygen", "--out", str(d / "kge"), "--passphrase-env", "SNAPBOOK_TEST_PASS"]) == 0
        return d / "kge" / "private.pem", PASS
    if kind == "genpkey-pkcs8":
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
        return path, None
    if kind == "genpkey-pkcs8-encrypted":
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-256-cbc",
             "-pass", f"pass:{PASS}", "-out", str(path))
        return path, PASS
    if kind == "genrsa-pkcs1":
        _run("genrsa", "-traditional", "-out", str(path), "2048")
        return path, None
    if kind == "genrsa-pkcs1-encrypted":
        _run("genrsa", "-traditional", "-aes256", "-passout", f"pass:{PASS}", "-out", str(path), "2048")
        return path, PASS
    if kind == "genrsa-pkcs8-der":
        pem = d / "tmp.pem"
        _run("genrsa", "-out", str(pem), "2048")
        _run("pkcs8", "-topk8", "-nocrypt", "-in", str(pem), "-outform", "DER", "-out", str(path))
        return path, None
    raise AssertionError(kind)


KINDS = [
    "snapbook-keygen",
    "snapbook-keygen-encrypted",
    "genpkey-pkcs8",
    "genpkey-pkcs8-encrypted",
    "genrsa-pkcs1",
    "genrsa-pkcs1-encrypted",
    "genrsa-pkcs8-der",
]


@pytest.mark.parametrize("kind", KINDS)
def test_interop_both_ways(tmp_path, kind):
    key_path, passphrase = _make(kind, tmp_path)
    head = key_path.read_bytes()[:40]
    if "pkcs1" in kind:
        assert b"BEGIN RSA PRIVATE KEY" in head
    if kind.endswith("encrypted") and "pkcs1" not in kind:
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in head
    passin = ["-passin", f"pass:{passphrase}"] if passphrase else []
    inform = ["-inform", "DER"] if kind.endswith("der") else []
    pub_path = tmp_path / "pub.pem"
    _run("pkey", "-in", str(key_path), *inform, *passin, "-pubout", "-out", str(pub_path))
    message = string_to_sign(CLIENT_KEY, TIMESTAMP).encode()

    # snapbook signs, OpenSSL verifies
    key = read_private_key(key_path, passphrase)
    sig = base64.b64decode(sign(key, message))
    sig_path = tmp_path / "sig.bin"
    sig_path.write_bytes(sig)
    out = _run("dgst", "-sha256", "-verify", str(pub_path), "-signature", str(sig_path), input=message)
    assert b"Verified OK" in out

    # OpenSSL signs, snapbook verifies (PKCS#1 v1.5 is deterministic: the same bytes)
    keyform = ["-keyform", "DER"] if inform else []
    openssl_sig = _run("dgst", "-sha256", "-sign", str(key_path), *keyform, *passin, input=message)
    assert openssl_sig == sig
    assert verify(read_public_key(pub_path), message, base64.b64encode(openssl_sig))

    # the fingerprint is the SHA-256 of the DER SubjectPublicKeyInfo, as OpenSSL writes it
    der = _run("pkey", "-pubin", "-in", str(pub_path), "-outform", "DER")
    assert fingerprint(key) == hashlib.sha256(der).hexdigest()


def test_openssl_rejects_a_tampered_snapbook_signature(tmp_path, private_key):
    from snapbook.keys import save_public_key

    pub_path = save_public_key(private_key, tmp_path / "pub.pem")
    message = string_to_sign(CLIENT_KEY, TIMESTAMP).encode()
    sig = bytearray(base64.b64decode(sign(private_key, message)))
    sig[10] ^= 0x01
    (tmp_path / "sig.bin").write_bytes(bytes(sig))
    result = subprocess.run(
        [OPENSSL, "dgst", "-sha256", "-verify", str(pub_path), "-signature", str(tmp_path / "sig.bin")],
        input=message,
        capture_output=True,
    )
    assert result.returncode == 1
    assert b"Verification failure" in result.stdout + result.stderr


def test_vendor_vector_matches_openssl(tmp_path, vectors):
    key_path = tmp_path / "vendor.pem"
    key_path.write_text(vectors["private_key_pem"])
    openssl_sig = _run("dgst", "-sha256", "-sign", str(key_path), input=vectors["string_to_sign"].encode())
    assert base64.b64encode(openssl_sig).decode() == vectors["signature_sha256withrsa_base64"]
    assert sign(load_private_key(vectors["private_key_pem"]), vectors["string_to_sign"]) == vectors[
        "signature_sha256withrsa_base64"
    ]
