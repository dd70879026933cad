"""The CLI contract for keygen, sign, verify and fingerprint: names, options, output, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from snapbook.cli import main
from snapbook.keys import fingerprint, read_private_key, read_public_key, save_private_key, save_public_key
from snapbook.signing import parse_timestamp, verify

TS = "2020-12-18T10:55:00+07:00"


@pytest.fixture
def keypair(tmp_path, private_key):
    priv = save_private_key(private_key, tmp_path / "private.pem")
    pub = save_public_key(private_key, tmp_path / "public.pem")
    return priv, pub


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith("snapbook: error: ")
    return lines[0]


def test_keygen_writes_a_pair(tmp_path, capsys):
    out_dir = tmp_path / "keys"
    assert main(["keygen", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    priv, pub = out_dir / "private.pem", out_dir / "public.pem"
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert priv.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    key = read_private_key(priv)
    assert key.key_size == 2048
    assert fingerprint(key) in printed
    assert "BEGIN PRIVATE KEY" not in printed


def test_keygen_refuses_to_overwrite_without_force(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path)]) == 0
    first = fingerprint(read_private_key(tmp_path / "private.pem"))
    capsys.readouterr()
    assert main(["keygen", "--out", str(tmp_path)]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)
    assert fingerprint(read_private_key(tmp_path / "private.pem")) == first
    assert main(["keygen", "--out", str(tmp_path), "--force"]) == 0
    assert fingerprint(read_private_key(tmp_path / "private.pem")) != first
    assert stat.S_IMODE(os.stat(tmp_path / "private.pem").st_mode) == 0o600


def test_keygen_bits(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "a"), "--bits", "1024"]) == 2
    assert "2048" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "a" / "private.pem").exists()
    assert main(["keygen", "--out", str(tmp_path / "b"), "--bits", "3072"]) == 0
    assert read_private_key(tmp_path / "b" / "private.pem").key_size == 3072


def test_keygen_encrypted_with_passphrase_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KEY_PASS", "hunter2-but-longer")
    assert main(["keygen", "--out", str(tmp_path), "--passphrase-env", "KEY_PASS"]) == 0
    assert (tmp_path / "private.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "hunter2" not in capsys.readouterr().out
    # sign needs the same variable
    assert main(["sign", "--key", str(tmp_path / "private.pem"), "--client-key", "C", "--timestamp", TS]) == 2
    assert "no passphrase" in _one_error_line(capsys.readouterr().err)
    assert main(["sign", "--key", str(tmp_path / "private.pem"), "--client-key", "C", "--timestamp", TS,
                 "--passphrase-env", "KEY_PASS"]) == 0


def test_passphrase_env_must_be_set(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    assert main(["keygen", "--out", str(tmp_path), "--passphrase-env", "NOPE_NOT_SET"]) == 2
    assert "NOPE_NOT_SET" in _one_error_line(capsys.readouterr().err)


def test_sign_matches_vendor_vector(tmp_path, capsys, vectors):
    key = tmp_path / "vendor.pem"
    key.write_text(vectors["private_key_pem"])
    assert main(["sign", "--key", str(key), "--client-key", vectors["client_key"],
                 "--timestamp", vectors["timestamp"]]) == 0
    assert capsys.readouterr().out.strip() == vectors["signature_sha256withrsa_base64"]
    assert main(["sign", "--key", str(key), "--client-key", vectors["client_key"],
                 "--timestamp", vectors["timestamp"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "stringToSign": vectors["string_to_sign"],
        "timestamp": vectors["timestamp"],
        "signature": vectors["signature_sha256withrsa_base64"],
    }


def test_sign_without_timestamp_uses_now_in_jakarta(keypair, capsys):
    priv, pub = keypair
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    parsed = parse_timestamp(doc["timestamp"], strict=True)
    assert doc["timestamp"].endswith("+07:00")
    import datetime as dt

    assert abs((dt.datetime.now(dt.timezone.utc) - parsed.value).total_seconds()) < 5
    assert verify(read_public_key(pub), doc["stringToSign"], doc["signature"])


def test_sign_refuses_a_malformed_timestamp(keypair, capsys):
    priv, _ = keypair
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--timestamp", "2020-12-18 10:55:00"]) == 2
    assert "separates date and time" in _one_error_line(capsys.readouterr().err)


def test_sign_with_a_public_key_is_exit_2(keypair, capsys):
    _, pub = keypair
    assert main(["sign", "--key", str(pub), "--client-key", "ABC", "--timestamp", TS]) == 2
    assert "Expected a private key" in _one_error_line(capsys.readouterr().err)


def test_verify_exit_codes(keypair, capsys):
    priv, pub = keypair
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--timestamp", TS]) == 0
    sig = capsys.readouterr().out.strip()
    base = ["verify", "--public-key", str(pub), "--timestamp", TS]
    assert main([*base, "--client-key", "ABC", "--signature", sig]) == 0
    assert "valid" in capsys.readouterr().out
    assert main([*base, "--client-key", "ABD", "--signature", sig]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid" in err
    assert main([*base, "--client-key", "ABC", "--signature", "not base64!"]) == 2
    assert "not base64" in _one_error_line(capsys.readouterr().err)
    assert main(["verify", "--public-key", str(priv), "--timestamp", TS, "--client-key", "ABC",
                 "--signature", sig]) == 2
    assert "Expected a public key" in _one_error_line(capsys.readouterr().err)
    assert main([*base, "--client-key", "ABC", "--signature", "AAAA" * 32]) == 1
    assert "96 bytes" in capsys.readouterr().err


def test_fingerprint_of_private_and_public_agree(keypair, capsys, private_key):
    priv, pub = keypair
    assert main(["fingerprint", str(priv)]) == 0
    a = capsys.readouterr().out.strip()
    assert main(["fingerprint", str(pub)]) == 0
    b = capsys.readouterr().out.strip()
    assert a == b == fingerprint(private_key)


def test_fingerprint_of_a_missing_file(tmp_path, capsys):
    assert main(["fingerprint", str(tmp_path / "missing.pem")]) == 2
    assert "not found" in _one_error_line(capsys.readouterr().err)


def test_usage_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sign", "--client-key", "X"])
    assert info.value.code == 2
    _one_error_line(capsys.readouterr().err)


def test_console_script_runs_as_a_process(tmp_path):
    """The installed entry point, end to end: keygen, sign, verify in separate processes."""
    exe = [sys.executable, "-m", "snapbook"]
    run = lambda *a: subprocess.run([*exe, *a], capture_output=True, text=True, timeout=60)  # noqa: E731
    r = run("keygen", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    r = run("sign", "--key", str(tmp_path / "private.pem"), "--client-key", "MCP1", "--timestamp", TS)
    assert r.returncode == 0, r.stderr
    r = run("verify", "--public-key", str(tmp_path / "public.pem"), "--client-key", "MCP1",
            "--timestamp", TS, "--signature", r.stdout.strip())
    assert r.returncode == 0, r.stderr
    r = run("verify", "--public-key", str(tmp_path / "nope.pem"), "--client-key", "MCP1",
            "--timestamp", TS, "--signature", "AAAA")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
