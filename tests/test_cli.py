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


# --- keygen: atomic, refused early, clear about what is in the way (issue 15, items 10, 12, 13) ------


def test_keygen_force_that_fails_leaves_the_old_pair(tmp_path, capsys, monkeypatch):
    """A full disk while public.pem is written: before, the old private key was already replaced."""
    import errno

    assert main(["keygen", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    before = {name: (tmp_path / name).read_bytes() for name in ("private.pem", "public.pem")}
    real_write = os.write

    def write(fd, data):  # the disk fills up exactly when the public key is written
        if bytes(data[:21]) == b"-----BEGIN PUBLIC KEY":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    assert main(["keygen", "--out", str(tmp_path), "--force"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left" in line and "unexpected" not in line
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private.pem", "public.pem"]
    assert stat.S_IMODE(os.stat(tmp_path / "private.pem").st_mode) == 0o600


@pytest.mark.parametrize(
    "argv, env, fragment",
    [
        (["--bits", "1024"], {}, "at least 2048"),
        (["--bits", "16385"], {}, "at most 16384"),
        (["--bits", "99999999999999999999999999"], {}, "at most 16384"),
        (["--passphrase-env", "SNAPBOOK_EMPTY_PW"], {"SNAPBOOK_EMPTY_PW": ""}, "is empty"),
        (["--passphrase-env", "SNAPBOOK_UNSET_PW"], {}, "not set"),
        (["--out", " "], {}, "--out is empty"),
    ],
    ids=["bits-1024", "bits-16385", "bits-huge", "empty-passphrase", "unset-passphrase", "empty-out"],
)
def test_a_refused_keygen_writes_nothing(tmp_path, capsys, monkeypatch, argv, env, fragment):
    monkeypatch.delenv("SNAPBOOK_UNSET_PW", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "new" / "keys"
    assert main(["keygen", "--out", str(out), *argv]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert fragment in line and "unexpected" not in line
    assert not (tmp_path / "new").exists(), "a refused keygen leaves no new folder behind"


def test_an_empty_passphrase_variable_is_refused_everywhere(keypair, capsys, monkeypatch):
    """`PW= snapbook keygen --passphrase-env PW` wrote a plain key with exit 0."""
    priv, _ = keypair
    monkeypatch.setenv("PW", "")
    assert main(["sign", "--key", str(priv), "--client-key", "C", "--timestamp", TS, "--passphrase-env", "PW"]) == 2
    assert "PW" in _one_error_line(capsys.readouterr().err)
    assert main(["fingerprint", str(priv), "--passphrase-env", "PW"]) == 2
    assert "empty" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("obstacle", ["symlink", "dangling-symlink", "directory", "out-is-a-file",
                                      "out-is-a-dangling-symlink"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_keygen_into_something_in_the_way_is_a_clear_error(tmp_path, capsys, obstacle, force):
    out = tmp_path / "keys"
    victim = tmp_path / "victim.pem"
    victim.write_text("someone else's file")
    if obstacle.startswith("out-"):
        if obstacle == "out-is-a-file":
            out.write_text("a file")
        else:
            out.symlink_to(tmp_path / "nowhere")
    else:
        out.mkdir()
        private = out / "private.pem"
        if obstacle == "symlink":
            private.symlink_to(victim)
        elif obstacle == "dangling-symlink":
            private.symlink_to(tmp_path / "nowhere.pem")
        else:
            private.mkdir()
    assert main(["keygen", "--out", str(out), *(["--force"] if force else [])]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "unexpected" not in line and "Hint:" in line
    message = line.replace(str(tmp_path), "TMP")  # the words must come from the message, not the path
    assert any(w in message for w in ("is a symbolic link", "is a directory", "is a dangling symbolic link",
                                      "is not a directory")), line
    assert victim.read_text() == "someone else's file"
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "nowhere.pem").exists()


def test_keygen_into_a_symlinked_directory_works(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert main(["keygen", "--out", str(tmp_path / "link")]) == 0
    assert (tmp_path / "real" / "private.pem").is_file()


# --- sign shows the timestamp it signed (issue 14, item 9) -------------------------------------------


def test_sign_without_timestamp_shows_the_timestamp_on_stderr(keypair, capsys):
    priv, pub = keypair
    assert main(["sign", "--key", str(priv), "--client-key", "ABC"]) == 0
    captured = capsys.readouterr()
    signature = captured.out.strip()
    assert len(captured.out.splitlines()) == 1, "stdout stays the bare signature"
    stamps = [line.split(": ", 1)[1] for line in captured.err.splitlines() if line.startswith("X-TIMESTAMP: ")]
    assert len(stamps) == 1, captured.err
    parse_timestamp(stamps[0], strict=True)
    assert verify(read_public_key(pub), f"ABC|{stamps[0]}", signature)
    # Given explicitly, it is not repeated; --json keeps both on stdout and nothing on stderr.
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--timestamp", TS]) == 0
    assert capsys.readouterr().err == ""
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and {"timestamp", "signature"} <= set(json.loads(captured.out))


# --- doctor: say "valid" once; a missing key file is its own error (issue 14, item 12) -----------------


def test_doctor_says_valid_once(keypair, capsys):
    priv, pub = keypair
    assert main(["sign", "--key", str(priv), "--client-key", "ABC", "--timestamp", TS]) == 0
    sig = capsys.readouterr().out.strip()
    assert main(["doctor", "--public-key", str(pub), "--client-key", "ABC", "--timestamp", TS,
                 "--signature", sig]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.lower().count("valid") == 1, first
    assert first.startswith("Valid: the signature verifies for 'ABC|")
    assert main(["doctor", "--public-key", str(pub), "--client-key", "ABD", "--timestamp", TS,
                 "--signature", sig]) == 1
    assert capsys.readouterr().out.startswith("invalid (")


def test_a_missing_key_file_is_a_key_file_error_in_the_cli(tmp_path, capsys):
    for argv in (["fingerprint", str(tmp_path / "nope.pem")],
                 ["sign", "--key", str(tmp_path / "nope.pem"), "--client-key", "C", "--timestamp", TS],
                 ["doctor", "--public-key", str(tmp_path / "nope.pem"), "--client-key", "C", "--timestamp", TS,
                  "--signature", "AAAA"]):
        from snapbook.cli import build_parser

        args = build_parser().parse_args(argv)
        with pytest.raises(Exception) as info:
            args.func(args)
        assert type(info.value).__name__ == "KeyFileError", (argv, repr(info.value))


# --- key files read with bounds, in every command (issue 15, item 11) -----------------------------------


def _bounded_key_argvs(path: str, pub: str) -> dict[str, list[str]]:
    return {
        "fingerprint": ["fingerprint", path],
        "sign": ["sign", "--key", path, "--client-key", "C", "--timestamp", TS],
        "verify": ["verify", "--public-key", path, "--client-key", "C", "--timestamp", TS, "--signature", "AAAA"],
        "doctor": ["doctor", "--public-key", path, "--client-key", "C", "--timestamp", TS, "--signature", "AAAA"],
        "check": ["check", "--url", "http://127.0.0.1:9/x", "--client-key", "C", "--key", path, "--no-retry",
                  "--timeout", "1"],
    }


def _limit_memory() -> None:
    """In the child: 1 GiB of address space, so a regression reading /dev/zero dies alone, not the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "directory", "big-file"])
def test_not_a_key_file_is_refused_by_every_command(tmp_path, keypair, kind):
    """Each in its own process with a deadline: a regression hangs (FIFO) or runs out of memory."""
    if kind == "fifo":
        path = tmp_path / "key.fifo"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path
    elif kind == "big-file":
        path = tmp_path / "big.pem"
        path.write_bytes(b"A" * (1 << 20))
    else:
        path = kind
    _, pub = keypair
    for name, argv in _bounded_key_argvs(str(path), str(pub)).items():
        r = subprocess.run([sys.executable, "-m", "snapbook", *argv], capture_output=True, text=True, timeout=20,
                           preexec_fn=_limit_memory)
        assert "unexpected" not in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        if name == "check":  # check reports a key that does not load as a failed check (exit 1), then stops
            assert r.returncode == 1 and "key loads" in r.stdout and "not a key file" in r.stdout, (r.stdout, r.stderr)
        else:
            assert r.returncode == 2, (name, r.returncode, r.stderr)
            line = _one_error_line(r.stderr)
            assert "not a key file" in line and len(line) < 1000, line
