"""The CLI contract for ``snapbook token`` and ``snapbook check``, against the sandbox over loopback.

Exit codes of ``token``: 0 token, 1 refused, 2 unusable input, 3 transport failure or invalid answer.
``check``: 0 only when every check passes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from snapbook.cli import main
from snapbook.keys import save_private_key

CLIENT = "MCP00000001"


@pytest.fixture
def key_file(tmp_path, private_key):
    return str(save_private_key(private_key, tmp_path / "private.pem"))


@pytest.fixture
def other_key_file(tmp_path, other_private_key):
    return str(save_private_key(other_private_key, tmp_path / "other.pem"))


def token_args(url: str, key: str, *extra: str) -> list[str]:
    return ["token", "--url", url, "--client-key", CLIENT, "--key", key, *extra]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1.0/access-token/b2b"


@pytest.fixture
def html_server():
    """A loopback web server that answers every POST with an HTML error page."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1.0/access-token/b2b"
    server.shutdown()
    server.server_close()


# --- snapbook token -----------------------------------------------------------------------


def test_token_prints_the_response_masked(sb, key_file, capsys):
    assert main(token_args(sb.token_url("payment"), key_file)) == 0
    out = capsys.readouterr().out
    assert f"POST {sb.token_url('payment')}" in out
    assert '"responseCode": "2007300"' in out and '"tokenType": "Bearer"' in out
    assert "chars)" in out  # the masked token
    issued = sb.journal.to_dataframe()["token"].iloc[-1]  # the sandbox's own masked copy
    assert issued.split("…")[0] in out
    assert "clock offset" in out and "expires at" in out


def test_show_token_prints_the_whole_token(sb, key_file, capsys):
    assert main(token_args(sb.token_url("disbursement"), key_file, "--show-token", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["endpoint"] == "custom"
    assert sb.validate_token(data["response"]["accessToken"])


def test_token_json_is_one_object(sb, key_file, capsys):
    assert main(token_args(sb.token_url("snap"), key_file, "--json")) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    assert data["httpStatus"] == 200 and data["response"]["responseCode"] == "2007300"
    assert data["response"]["accessToken"].endswith("chars)")
    assert data["expiresIn"] == 900 and data["attempt"] == 1 and data["latencyMs"] > 0
    assert abs(data["clockOffsetSeconds"]) < 2.5


def test_env_sandbox_reads_the_url_from_the_environment(sb, key_file, capsys, monkeypatch):
    monkeypatch.setenv("SNAPBOOK_SANDBOX_URL", sb.base_url)
    assert (
        main(["token", "--env", "sandbox-disbursement", "--client-key", CLIENT, "--key", key_file, "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint"] == "sandbox-disbursement" and data["url"] == sb.token_url("disbursement")


def test_encrypted_key_with_passphrase_env(sb, tmp_path, private_key, capsys, monkeypatch):
    path = save_private_key(private_key, tmp_path / "enc.pem", "s3cret")
    monkeypatch.setenv("KEY_PASS", "s3cret")
    assert main(token_args(sb.token_url(), str(path), "--passphrase-env", "KEY_PASS")) == 0


def test_refused_is_exit_1_with_code_meaning_and_hint(sb, other_key_file, capsys):
    assert main(token_args(sb.token_url(), other_key_file)) == 1
    captured = capsys.readouterr()
    assert "refused: HTTP 401, responseCode 4017300" in captured.err
    assert "meaning: " in captured.err and "hint: " in captured.err and "snapbook doctor" in captured.err
    assert "Traceback" not in captured.err


def test_refused_json(sb, other_key_file, capsys):
    assert main(token_args(sb.token_url(), other_key_file, "--json")) == 1
    data = json.loads(capsys.readouterr().out)
    assert data == {
        **data,
        "ok": False,
        "error": "SnapResponseError",
        "httpStatus": 401,
        "responseCode": "4017300",
    }
    assert data["meaning"] and data["hint"]


def test_transport_failure_is_exit_3(key_file, capsys):
    assert main(token_args(closed_port_url(), key_file, "--no-retry")) == 3
    err = capsys.readouterr().err
    assert "ConnectionFailedError" in err and "refused" in err and "Traceback" not in err


def test_timeout_is_exit_3(sb, key_file, capsys):
    from snapbook.sandbox import Faults

    sb.faults = Faults(slow_seconds=2.0)
    assert main(token_args(sb.token_url(), key_file, "--timeout", "0.3", "--json")) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["error"] == "RequestTimeoutError" and "read timeout" in data["message"]


def test_invalid_answer_is_exit_3(html_server, key_file, capsys):
    assert main(token_args(html_server, key_file, "--no-retry")) == 3
    err = capsys.readouterr().err
    assert "InvalidResponseError" in err and "HTML page (title '502 Bad Gateway')" in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--env", "paymnet-stage"], "Did you mean 'payment-stage'"),
        (["--env", "sandboxx"], "Did you mean 'sandbox'"),
        (["--url", "http://example.test/v1.0/access-token/b2b"], "unencrypted"),
        (["--url", "ftp://127.0.0.1/x"], "not an absolute http(s) URL"),
        (["--url", "http://127.0.0.1:1/x", "--timeout", "0"], "--timeout"),
        (["--url", "http://127.0.0.1:1/x", "--timeout", "inf"], "--timeout"),
        (["--url", "http://127.0.0.1:1/x", "--origin", "tokó.example"], "ORIGIN"),
    ],
)
def test_unusable_input_is_exit_2(key_file, capsys, monkeypatch, args, fragment):
    monkeypatch.delenv("SNAPBOOK_SANDBOX_URL", raising=False)
    assert main(["token", *args, "--client-key", CLIENT, "--key", key_file]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snapbook: error: ") and fragment in err


def test_missing_key_and_passphrase_are_exit_2(tmp_path, capsys, monkeypatch):
    url = "http://127.0.0.1:1/v1.0/access-token/b2b"
    assert main(token_args(url, str(tmp_path / "missing.pem"))) == 2
    assert "not found" in capsys.readouterr().err
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    assert main(token_args(url, str(tmp_path / "missing.pem"), "--passphrase-env", "NO_SUCH_VAR")) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--client-key", CLIENT, "--key", "k.pem"],  # neither --env nor --url
        [
            "token",
            "--env",
            "payment-stage",
            "--url",
            "http://127.0.0.1/x",
            "--client-key",
            CLIENT,
            "--key",
            "k",
        ],
        ["token", "--env", "payment-stage", "--key", "k.pem"],  # no --client-key
    ],
)
def test_usage_errors_are_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_commands_are_listed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "token" in out and "check" in out


def test_token_as_a_process(sb, key_file):
    result = subprocess.run(
        [sys.executable, "-m", "snapbook", *token_args(sb.token_url(), key_file, "--json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["response"]["responseCode"] == "2007300"


# --- snapbook check -----------------------------------------------------------------------

CHECKS = [
    "key loads",
    "key strength",
    "fingerprint",
    "sign and verify locally",
    "token request",
    "clock offset",
    "latency",
]


def run_check(capsys, *argv: str) -> tuple[int, dict[str, tuple[str, str]]]:
    code = main(["check", *argv, "--json"])
    data = json.loads(capsys.readouterr().out)
    rows = {c["check"]: (c["result"], c["detail"]) for c in data["checks"]}
    assert list(rows) == CHECKS
    assert data["ok"] == (code == 0)
    return code, rows


def test_check_all_pass(sb, key_file, private_key, capsys):
    from snapbook.keys import fingerprint

    code, rows = run_check(capsys, "--url", sb.token_url(), "--client-key", CLIENT, "--key", key_file)
    assert code == 0, rows
    assert all(result == "PASS" for result, _ in rows.values())
    assert fingerprint(private_key) in rows["fingerprint"][1]
    assert "2007300" in rows["token request"][1]
    assert rows["latency"][1].endswith("(limit 3000 ms)")


def test_check_table(sb, key_file, capsys):
    assert main(["check", "--url", sb.token_url(), "--client-key", CLIENT, "--key", key_file]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["check", "result", "detail"]
    for name in CHECKS:
        assert any(line.startswith(name) and "PASS" in line for line in lines), name
    assert lines[-1] == "all checks passed"


def test_check_refused_still_measures_the_clock(sb, other_key_file, capsys):
    code, rows = run_check(capsys, "--url", sb.token_url(), "--client-key", CLIENT, "--key", other_key_file)
    assert code == 1
    assert rows["token request"][0] == "FAIL" and "4017300" in rows["token request"][1]
    assert rows["clock offset"][0] == "PASS" and rows["latency"][0] == "PASS"


def test_check_with_nothing_listening(key_file, capsys):
    code, rows = run_check(
        capsys, "--url", closed_port_url(), "--client-key", CLIENT, "--key", key_file, "--no-retry"
    )
    assert code == 1
    assert rows["sign and verify locally"][0] == "PASS"
    assert rows["token request"][0] == "FAIL" and "ConnectionFailedError" in rows["token request"][1]
    assert rows["clock offset"][0] == rows["latency"][0] == "SKIP"


def test_check_with_a_missing_key(tmp_path, capsys):
    code, rows = run_check(
        capsys, "--url", closed_port_url(), "--client-key", CLIENT, "--key", str(tmp_path / "missing.pem")
    )
    assert code == 1
    assert rows["key loads"][0] == "FAIL"
    assert all(result == "SKIP" for name, (result, _) in rows.items() if name != "key loads")


def test_check_flags_a_weak_key(sb, tmp_path, capsys):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "weak.pem"
    path.write_bytes(
        weak.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    code, rows = run_check(capsys, "--url", sb.token_url(), "--client-key", CLIENT, "--key", str(path))
    assert code == 1
    assert rows["key loads"][0] == "PASS" and rows["key strength"][0] == "FAIL"
    assert "1024 bits" in rows["key strength"][1]


def test_check_flags_a_large_clock_offset_and_latency(private_key, key_file, capsys):
    from datetime import datetime, timedelta, timezone

    from snapbook.sandbox import Faults, Sandbox, SandboxConfig

    ahead = SandboxConfig(
        clock=lambda: datetime.now(timezone.utc) + timedelta(minutes=10),
        freshness_seconds=None,
        faults=Faults(latency=0.05),
    )
    with Sandbox(ahead) as skewed:
        skewed.register(CLIENT, private_key.public_key())
        code, rows = run_check(
            capsys,
            "--url",
            skewed.token_url(),
            "--client-key",
            CLIENT,
            "--key",
            key_file,
            "--max-latency",
            "10",
        )
    assert code == 1
    assert rows["token request"][0] == "PASS"
    assert rows["clock offset"][0] == "FAIL" and "NTP" in rows["clock offset"][1]
    assert rows["clock offset"][1].startswith("+59") or rows["clock offset"][1].startswith("+60")
    assert rows["latency"][0] == "FAIL" and "exceeds 10 ms" in rows["latency"][1]
