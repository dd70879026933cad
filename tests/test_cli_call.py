"""The CLI contract of ``snapbook call``: a token from the sandbox, one signed call to a loopback endpoint.

Exit codes: 0 a 2xx responseCode, 1 refused, 2 unusable input, 3 transport failure or invalid answer.
The endpoint (tests/_service_server.py) checks each signature with hmac/hashlib on its own.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from _service_server import CHANNEL, GENERATE, PARTNER, SECRET, ServiceServer

from snapbook.cli import main
from snapbook.keys import save_private_key

CLIENT = "MCP00000001"


@pytest.fixture
def key_file(tmp_path, private_key):
    return str(save_private_key(private_key, tmp_path / "private.pem"))


@pytest.fixture
def server():
    with ServiceServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("SNAP_SECRET", SECRET)


@pytest.fixture
def body_file(tmp_path):
    path = tmp_path / "body.json"
    path.write_bytes(b'{"partnerReferenceNo":"INV-1","amount":{"value":"10000.00","currency":"IDR"}}')
    return str(path)


def call_args(base: str, token_url: str, key: str, *extra: str, method: str = "POST", path: str = GENERATE) -> list[str]:
    return [
        "call", "--url", base, "--token-url", token_url, "--client-key", CLIENT, "--key", key,
        "--secret-env", "SNAP_SECRET", "--partner-id", PARTNER, "--channel-id", CHANNEL, *extra, method, path,
    ]


def test_success_prints_the_answer_and_exits_0(sb, server, key_file, body_file, capsys):
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", body_file))
    out = capsys.readouterr()
    assert code == 0, out.err
    seen = server.seen[-1]
    assert seen.signature_ok and seen.body == open(body_file, "rb").read()
    assert f"X-EXTERNAL-ID {seen.headers['X-EXTERNAL-ID']}" in out.out
    assert "responseCode 2004700" in out.out and '"qrContent"' in out.out
    assert SECRET not in out.out + out.err and seen.token not in out.out + out.err


def test_json_output(sb, server, key_file, body_file, capsys):
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", body_file,
                          "--external-id", "42", "--json"))
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["ok"] is True
    assert data["responseCode"] == "2004700" and data["serviceCode"] == "47" and data["externalId"] == "42"
    assert data["response"]["responseMessage"] == "Successful"
    assert server.seen[-1].headers["X-EXTERNAL-ID"] == "42"


def test_body_from_stdin_and_no_body(sb, server, key_file, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"a":"/\xc3\xa9"}')))
    assert main(call_args(server.base_url, sb.token_url(), key_file, "--body", "-")) == 0
    assert server.seen[-1].body == b'{"a":"/\xc3\xa9"}' and server.seen[-1].signature_ok
    assert main(call_args(server.base_url, sb.token_url(), key_file, method="GET", path="/v1.0/status?x=1")) == 0
    assert server.seen[-1].body == b"" and server.seen[-1].signature_ok


def test_refusal_exits_1_with_meaning_and_hint(sb, server, key_file, body_file, capsys):
    server.plans.append(("code", 409, "4094700", "Conflict\x1b[31m"))
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", body_file))
    err = capsys.readouterr().err
    assert code == 1
    assert "4094700" in err and "X-EXTERNAL-ID" in err and "\x1b" not in err


def test_a_wrong_secret_is_refused_with_the_service_signature_hint(sb, server, key_file, body_file, capsys, monkeypatch):
    monkeypatch.setenv("SNAP_SECRET", "another-secret")
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", body_file))
    err = capsys.readouterr().err
    assert code == 1 and "4014700" in err and "HMAC-SHA512" in err
    assert "another-secret" not in err


def test_transport_failure_exits_3(sb, key_file, body_file, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(call_args(f"http://127.0.0.1:{port}", sb.token_url(), key_file, "--body", body_file))
    assert code == 3 and "ConnectionFailedError" in capsys.readouterr().err


def test_an_invalid_answer_exits_3(sb, server, key_file, body_file, capsys):
    server.plans.append(("raw", 200, "text/html", b"<html><title>Login</title></html>"))
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", body_file))
    assert code == 3 and "HTML" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, env, fragment",
    [
        (["--external-id", "12ab"], {}, "X-EXTERNAL-ID"),
        (["--external-id", "1" * 37], {}, "X-EXTERNAL-ID"),
        (["--body", "/no/such/file.json"], {}, "Cannot read the body"),
        ([], {"SNAP_SECRET": ""}, "empty"),
        (["--timeout", "nan"], {}, "--timeout"),
    ],
)
def test_unusable_input_exits_2_before_any_network(sb, server, key_file, extra, env, fragment, monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(call_args(server.base_url, sb.token_url(), key_file, *extra))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and server.seen == []


def test_a_body_that_cannot_be_signed_exits_2(sb, server, key_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"amount = 10000 IDR")
    code = main(call_args(server.base_url, sb.token_url(), key_file, "--body", str(bad)))
    assert code == 2 and "JSON" in capsys.readouterr().err and server.seen == []


def test_bad_path_and_method_exit_2(sb, server, key_file, capsys):
    assert main(call_args(server.base_url, sb.token_url(), key_file, path="v1.0/no-slash")) == 2
    assert main(call_args(server.base_url, sb.token_url(), key_file, method="PO/ST")) == 2
    assert server.seen == []


def test_secret_is_never_an_argument(key_file, capsys):
    args = call_args("http://127.0.0.1:9", "http://127.0.0.1:9/v1.0/access-token/b2b", key_file)
    args[args.index("--secret-env")] = "--secret"  # no abbreviation of --secret-env
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2


def test_env_sandbox_uses_the_sandbox_address(sb, key_file, body_file, monkeypatch, capsys):
    """--env sandbox: the service calls and the token both go to the sandbox's address."""
    monkeypatch.setenv("SNAPBOOK_SANDBOX_URL", sb.base_url)
    args = call_args("", "", key_file, "--body", body_file)
    args[1:5] = ["--env", "sandbox"]  # replaces --url ... --token-url ...
    before = len(sb.journal)
    code = main(args)
    err = capsys.readouterr().err
    # The token came from the sandbox and the call reached it there (whatever it answers on a service
    # path: exit 0 or 1, never 2 or 3).
    assert code in (0, 1), err
    paths = [e.path for e in sb.journal.entries(diagnose=False)[before:]]
    assert paths == ["/auth/merchants/v1.0/access-token/b2b", GENERATE]


def test_as_a_subprocess(sb, server, key_file, body_file):
    env = {**os.environ, "SNAP_SECRET": SECRET, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "snapbook", *call_args(server.base_url, sb.token_url(), key_file, "--body", body_file)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2004700" in proc.stdout and server.seen[-1].signature_ok


# --- hostile arguments: the contract holds for every one ---------------------------------------

HOSTILE_VALUES = {
    "empty": "",
    "space": " ",
    "dash": "-",
    "120k": "A" * 120_000,
    "escapes": "\x1b[2J\x1b]0;pwned\x07" * 1000,
    "csi-c1": "\x9b2J\x9b31mred",
    "newlines": "line1\nline2\r\nline3",
    "nul": "ab\x00cd",
    "surrogate": "key\udcff\udcfe.pem",
    "non-ascii": "kunci-é-😀",
    "format": "%s%n{0}{}",
}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_hostile_arguments_keep_the_cli_contract(sb, server, key_file, body_file, capsys, monkeypatch):
    good = {
        "--url": server.base_url, "--token-url": sb.token_url(), "--client-key": CLIENT, "--key": key_file,
        "--secret-env": "SNAP_SECRET", "--partner-id": PARTNER, "--channel-id": CHANNEL, "--body": body_file,
        "--external-id": "42", "METHOD": "POST", "PATH": GENERATE,
    }
    monkeypatch.setattr(sys, "stdin", open(body_file))  # "--body -" reads a real body
    failures = []
    for slot in good:
        for label, value in HOSTILE_VALUES.items():
            args = dict(good, **{slot: value})
            argv = ["call"]
            for name, arg in args.items():
                if name not in ("METHOD", "PATH"):
                    argv += [name, arg]
            argv += ["--", args["METHOD"], args["PATH"]]
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
            out, err = capsys.readouterr()
            problems = []
            if code not in (0, 1, 2, 3):
                problems.append(f"exit {code}")
            if code == 2 and (len(err.splitlines()) != 1 or not err.startswith("snapbook: error: ")):
                problems.append(f"{len(err.splitlines())} stderr lines")
            if "unexpected" in err or "Traceback" in err:
                problems.append("untyped error")
            if max((len(line) for line in (out + err).splitlines()), default=0) >= 1000:
                problems.append("a line of 1,000 characters or more")
            if CONTROL.search(out + err.replace("\n", "")):
                problems.append("a control character reached the terminal")
            if SECRET in out + err:
                problems.append("the secret was printed")
            if problems:
                failures.append(f"{slot}={label}: {', '.join(problems)}: {err[:160]!r}")
    assert not failures, "\n".join(failures)
