"""The contract of ``snapbook sign-service`` and ``snapbook verify-notification``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys

import pytest

from snapbook.cli import main
from snapbook.keys import save_private_key
from snapbook.service_signing import sign_asymmetric, sign_notification, sign_symmetric, verify_asymmetric

TS = "2020-12-18T10:55:00+07:00"
SECRET = "o7sWnn0oGXF7y7JBGf18!"
TOKEN = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a"
PATH = "/api/v1.0/balance-inquiry?lang=id"
BODY = json.dumps(
    {"accountNo": "1234567890", "url": "https://m.id/a", "note": "é"}, indent=2, ensure_ascii=False
).encode()
NOTIFY_URL = "https://merchant.com/callback"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("SB_SECRET", SECRET)
    monkeypatch.setenv("SB_TOKEN", TOKEN)


@pytest.fixture
def body_file(tmp_path):
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    for secret in (SECRET, TOKEN):
        assert secret not in out and secret not in err
    return code, out, err


def sign_args(body_file: str, *extra: str) -> list[str]:
    return [
        "sign-service",
        "--method",
        "POST",
        "--path",
        PATH,
        "--body",
        body_file,
        "--timestamp",
        TS,
        *extra,
    ]


def test_sign_service_symmetric_prints_the_signature(capsys, env, body_file):
    code, out, _ = run(capsys, *sign_args(body_file, "--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN"))
    assert code == 0
    assert out.strip() == sign_symmetric(SECRET, "POST", PATH, TOKEN, BODY, TS)


def test_sign_service_json_shows_each_part_with_the_token_masked(capsys, env, body_file):
    code, out, _ = run(
        capsys, *sign_args(body_file, "--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN", "--json")
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"method", "path", "minifiedBody", "bodySha256", "stringToSign", "signature"}
    minified = '{"accountNo":"1234567890","url":"https://m.id/a","note":"é"}'
    assert doc["method"] == "POST" and doc["path"] == PATH and doc["minifiedBody"] == minified
    assert doc["bodySha256"] == hashlib.sha256(minified.encode()).hexdigest()
    assert doc["stringToSign"].startswith(f"POST:{PATH}:") and doc["stringToSign"].endswith(
        f":{doc['bodySha256']}:{TS}"
    )
    assert doc["signature"] == sign_symmetric(SECRET, "POST", PATH, TOKEN, BODY, TS)


def test_sign_service_no_query_switch(capsys, env):
    code, out, _ = run(
        capsys,
        "sign-service",
        "--method",
        "GET",
        "--path",
        PATH,
        "--timestamp",
        TS,
        "--no-query",
        "--secret-env",
        "SB_SECRET",
        "--token-env",
        "SB_TOKEN",
    )
    assert code == 0
    assert out.strip() == sign_symmetric(SECRET, "GET", "/api/v1.0/balance-inquiry", TOKEN, None, TS)


def test_sign_service_asymmetric_with_an_encrypted_key(capsys, tmp_path, monkeypatch, private_key, body_file):
    key_path = tmp_path / "private.pem"
    save_private_key(private_key, key_path, passphrase="pass phrase 1")
    monkeypatch.setenv("SB_PASS", "pass phrase 1")
    code, out, _ = run(capsys, *sign_args(body_file, "--key", str(key_path), "--passphrase-env", "SB_PASS"))
    assert code == 0
    assert out.strip() == sign_asymmetric(private_key, "POST", PATH, BODY, TS)
    assert verify_asymmetric(private_key.public_key(), "POST", PATH, BODY, TS, out.strip(), window=None)


def test_sign_service_reads_the_body_from_stdin_exactly(env):
    # The real entry point, as a user runs it: the body piped on stdin.
    argv = [
        sys.executable,
        "-m",
        "snapbook",
        "sign-service",
        "--method",
        "POST",
        "--path",
        PATH,
        "--body",
        "-",
        "--timestamp",
        TS,
        "--secret-env",
        "SB_SECRET",
        "--token-env",
        "SB_TOKEN",
    ]
    done = subprocess.run(argv, check=False, input=BODY, capture_output=True, timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == sign_symmetric(SECRET, "POST", PATH, TOKEN, BODY, TS)
    assert (
        SECRET.encode() not in done.stdout + done.stderr and TOKEN.encode() not in done.stdout + done.stderr
    )


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--secret-env", "SB_SECRET"], "--token-env"),  # symmetric without a token
        (["--secret-env", "SB_UNSET", "--token-env", "SB_TOKEN"], "SB_UNSET"),
        (["--secret-env", "SB_SECRET", "--token-env", "SB_BEARER"], "Bearer"),
        (
            ["--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN", "--timestamp", "2020-12-18 10:55:00"],
            "X-TIMESTAMP",
        ),
        (
            ["--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN", "--path", "https://api.senmo.id" + PATH],
            "absolute",
        ),
        (["--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN", "--body", "NOTJSON"], "not JSON"),
        (
            ["--secret-env", "SB_SECRET", "--token-env", "SB_TOKEN", "--body", "/nonexistent/body.json"],
            "Cannot read",
        ),
    ],
)
def test_sign_service_unusable_input_exits_2(capsys, env, monkeypatch, tmp_path, argv, words):
    monkeypatch.setenv("SB_BEARER", f"Bearer {TOKEN}")
    (tmp_path / "NOTJSON").write_bytes(b"a = 1")
    monkeypatch.chdir(tmp_path)
    base = ["sign-service", "--method", "POST", "--path", PATH, "--timestamp", TS]
    code, out, err = run(capsys, *base, *argv)
    assert code == 2 and out == ""
    assert words in err and "Hint:" in err and len(err.strip().splitlines()) == 1


def test_sign_service_takes_secrets_only_from_the_environment(capsys, env, tmp_path):
    for argv in (
        ["--secret", SECRET],
        ["--token", TOKEN],
        ["--secret-env", "SB_SECRET", "--key", str(tmp_path)],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["sign-service", "--method", "POST", "--path", PATH, "--timestamp", TS, *argv])
        assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and TOKEN not in out + err
    # A secret passed where the variable's name goes is refused without being echoed.
    code, out, err = run(
        capsys,
        "sign-service",
        "--method",
        "POST",
        "--path",
        PATH,
        "--timestamp",
        TS,
        "--secret-env",
        SECRET,
        "--token-env",
        "SB_TOKEN",
    )
    assert code == 2 and "not shown" in err


# --- verify-notification ------------------------------------------------------------------


def note_args(signature: str, body_file: str, *extra: str) -> list[str]:
    return [
        "verify-notification",
        "--secret-env",
        "SB_SECRET",
        "--url",
        NOTIFY_URL,
        "--timestamp",
        TS,
        "--signature",
        signature,
        "--body",
        body_file,
        *extra,
    ]


def test_verify_notification_valid(capsys, env, body_file):
    sig = sign_notification(SECRET, NOTIFY_URL, BODY, TS)
    code, out, _ = run(capsys, *note_args(sig, body_file))
    assert code == 0 and out.startswith("valid")
    sig2 = sign_notification(SECRET, NOTIFY_URL, BODY, TS, version="v2")
    assert run(capsys, *note_args(sig2, body_file, "--version", "v2"))[0] == 0


def test_verify_notification_invalid_says_the_doctors_reason(capsys, env, body_file):
    # Signed with the path only instead of the registered URL.
    compact = json.dumps(json.loads(BODY), separators=(",", ":"), ensure_ascii=False).encode()
    text = f"/callback:v1:{hashlib.sha256(compact).hexdigest()}:{TS}"
    sig = base64.b64encode(hmac.new(SECRET.encode(), text.encode(), hashlib.sha512).digest()).decode()
    code, out, err = run(capsys, *note_args(sig, body_file))
    assert code == 1 and out == ""
    assert err.startswith("invalid (notify-url)") and "fix:" in err
    code, _, err = run(capsys, *note_args("%%%", body_file))
    assert code == 1 and "not-base64" in err


def test_verify_notification_freshness_is_opt_in(capsys, env, body_file):
    sig = sign_notification(SECRET, NOTIFY_URL, BODY, TS)
    code, _, err = run(capsys, *note_args(sig, body_file, "--max-age", "300"))
    assert code == 1 and "timestamp-stale" in err  # TS is in 2020


@pytest.mark.parametrize(
    "change,words",
    [
        ({"--secret-env": "SB_UNSET"}, "SB_UNSET"),
        ({"--timestamp": "yesterday"}, "X-TIMESTAMP"),
        ({"--url": "/callback"}, "NotifyURL"),
        ({"--max-age": "-1"}, "--max-age"),
    ],
)
def test_verify_notification_unusable_input_exits_2(capsys, env, body_file, change, words):
    argv = note_args(sign_notification(SECRET, NOTIFY_URL, BODY, TS), body_file)
    for option, value in change.items():
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and words in err
