"""Hostile input: a table of bad inputs, each answered by one named, typed error. Plus fuzzing.

The corpus covers every door input comes in by: keys, X-TIMESTAMPs, client keys, CLI
arguments, server answers (HTML, huge and endless bodies, deeply nested JSON, wrong types,
invalid UTF-8, a server that never answers or dribbles bytes) and widget fields. Each case
names the :class:`~snapbook.errors.SnapbookError` subclass it must raise; each must raise it
within a time bound, with a message that is short enough to read, has a hint, and leaks no
secret. Network cases talk only to 127.0.0.1 (tiny raw-socket servers in threads) or to an
``httpx.MockTransport``, with 0.5 s timeouts.

The second half is property-based: signing, verifying and every parser, over generated
input, may only ever succeed or raise their documented error; and raw bytes thrown at the
sandbox's socket never get a 5xx.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from snapbook import keys as K
from snapbook.cli import build_parser, main
from snapbook.client import TokenClient, parse_token_response
from snapbook.errors import (
    ClientKeyError,
    ConfigError,
    ConnectionFailedError,
    InvalidResponseError,
    KeyFileError,
    KeyFormatError,
    KeyKindError,
    KeyTypeError,
    PassphraseError,
    RequestTimeoutError,
    SignatureFormatError,
    SnapbookError,
    SnapResponseError,
    TimestampError,
    TokenFormatError,
    WeakKeyError,
)
from snapbook.leaks import find_leaks
from snapbook.signing import (
    decode_signature,
    make_timestamp,
    parse_timestamp,
    sign,
    string_to_sign,
    verify,
)

TS = "2020-12-18T10:55:00+07:00"
TIME_BUDGET = 3.0  # seconds any one case may take (network cases use 0.5 s timeouts)
MAX_MESSAGE = 1000  # characters: a message is for reading, not a dump of the input
pytestmark = pytest.mark.timeout(60)  # nothing here may hang: every test is bounded


class Usage(Exception):
    """Stands for an argparse usage error: exit 2 and one line, before any snapbook code runs."""


# --- materials ---------------------------------------------------------------------------------


class Materials:
    """Keys and files the cases need, made once per module."""

    def __init__(self, tmp, private_key: rsa.RSAPrivateKey) -> None:
        self.tmp = tmp
        self.key = private_key
        self.pem = K.private_key_bytes(private_key).decode()
        self.public_pem = K.public_key_bytes(private_key).decode()
        self.encrypted_pem = K.private_key_bytes(private_key, "pem", "correct horse").decode()
        self.private_path = K.save_private_key(private_key, tmp / "private.pem")
        self.public_path = K.save_public_key(private_key, tmp / "public.pem")
        self.encrypted_path = K.save_private_key(private_key, tmp / "encrypted.pem", "correct horse")
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.weak_pem = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode()
        self.ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        self.openssh_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
        self.junk_path = tmp / "junk.pem"
        self.junk_path.write_bytes(b"\x00\x01garbage\xff" * 100)
        self.secrets = [line for line in self.pem.splitlines()[1:-1]] + [sign(private_key, "x|" + TS)]

    def body(self) -> str:
        return "".join(self.pem.splitlines()[1:-1])


@pytest.fixture(scope="module")
def m(tmp_path_factory, private_key) -> Materials:
    return Materials(tmp_path_factory.mktemp("hostile"), private_key)


# --- tiny raw servers on 127.0.0.1 ---------------------------------------------------------------


class RawServer:
    """A one-thread TCP server whose every connection gets ``behaviour(conn, stop)``; bounded by ``stop``."""

    def __init__(self, behaviour: Callable[[socket.socket, threading.Event], None]) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1.0/access-token/b2b"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.conns: list[threading.Thread] = []

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            t.start()
            self.conns.append(t)

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            self.behaviour(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for t in self.conns:
            t.join(5)
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    deadline = time.monotonic() + 2
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Reads the request, never answers (until the test ends: at most 10 s)."""
    _read_request(conn)
    stop.wait(10)


def dribble(conn: socket.socket, stop: threading.Event) -> None:
    """Headers, then one body byte every 0.2 s: each read is within any 0.5 s timeout (for 3.5 s)."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    deadline = time.monotonic() + 3.5
    while not stop.is_set() and time.monotonic() < deadline:
        conn.sendall(b" ")
        stop.wait(0.2)


def endless(conn: socket.socket, stop: threading.Event) -> None:
    """Announces a 1 GB body and streams it as fast as the client reads (at most 64 MiB, 5 s)."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
    chunk = b'{"pad":"' + b"x" * 65536
    sent, deadline = 0, time.monotonic() + 5
    while not stop.is_set() and sent < 64 * 2**20 and time.monotonic() < deadline:
        try:
            conn.sendall(chunk)
        except OSError:
            return
        sent += len(chunk)


def hang_up(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts the connection and closes it without reading or answering."""


def not_http(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def huge_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 300_000 + b"\r\n\r\n")


def html_page(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    body = b"<html><head><title>403 Forbidden</title></head><body>nginx</body></html>"
    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


RAW_BEHAVIOURS = {f.__name__: f for f in (silent, dribble, endless, hang_up, not_http, huge_headers, html_page)}


def via_raw(behaviour: str, m: Materials) -> Any:
    with RawServer(RAW_BEHAVIOURS[behaviour]) as server:
        with TokenClient(server.url, "MCP00000001", m.key, timeout=0.5, retry=None) as client:
            return client.request_token()


def via_mock(m: Materials, status: int, body: bytes | str, headers: dict | None = None) -> Any:
    content = body.encode("utf-8") if isinstance(body, str) else body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers or {"Content-Type": "application/json"})

    with TokenClient("http://127.0.0.1:9/v1.0/access-token/b2b", "MCP00000001", m.key,
                     transport=httpx.MockTransport(handler), timeout=0.5, retry=None) as client:
        return client.request_token()


def token_json(**overrides: Any) -> str:
    body = {"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "x" * 40,
            "tokenType": "Bearer", "expiresIn": "900"}
    body.update(overrides)
    return json.dumps(body)


# --- CLI and widgets -----------------------------------------------------------------------------


def cli(m: Materials, *argv: str, env: dict[str, str] | None = None) -> Any:
    """Run one CLI command's function directly, so the typed error it raises can be named."""
    import os

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        try:
            args = build_parser().parse_args([str(a) for a in argv])
        except SystemExit as exc:
            raise Usage(f"argparse exit {exc.code}") from None
        return args.func(args)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fifo(m: Materials) -> Any:
    import os

    path = m.tmp / "key.fifo"
    if not path.exists():
        os.mkfifo(path)  # nobody writes to it: reading it would block forever
    return path


def _big_file(m: Materials) -> Any:
    path = m.tmp / "big.pem"
    path.write_bytes(b"A" * 1_000_000)
    return path


def _dir_in_way(m: Materials) -> Any:
    (m.tmp / "in-the-way" / "private.pem").mkdir(parents=True, exist_ok=True)
    return m.tmp / "in-the-way"


def key_form(action: str, value: Any, passphrase: str = "") -> str:
    from snapbook.widgets import KeyForm

    form = KeyForm()
    form.passphrase.value = passphrase
    if action == "paste":
        form.paste.value = value
        form.paste_button.click()
        assert form.paste.value == ""  # a pasted secret never stays in the widget
    elif action == "file":
        form.path.value = str(value)
        form.load_button.click()
    elif action == "upload":
        form.upload.value = ({"name": "key.pem", "type": "", "size": len(value), "content": memoryview(value),
                              "last_modified": datetime(2024, 1, 1, tzinfo=timezone.utc)},)
    assert form.key is None
    return form.text


def signature_form(m: Materials, client_key: str, timestamp: str, compare: str = "") -> str:
    from snapbook.widgets import SignatureForm

    form = SignatureForm(m.key, client_key=client_key, timestamp=timestamp, public_key=m.key.public_key())
    form.compare.value = compare
    return form.text


def token_form(m: Materials, sandbox: Any = "http://127.0.0.1:9", **fields: Any) -> str:
    from snapbook.widgets import TokenForm

    fields.setdefault("client_key", "MCP00000001")
    fields.setdefault("private_key", m.key)
    form = TokenForm(sandbox=sandbox, client_options={"timeout": 0.5, "retry": None}, **fields)
    assert form.request() is None and form.token is None
    return form.text


def token_form_raw(m: Materials, behaviour: str) -> str:
    with RawServer(RAW_BEHAVIOURS[behaviour]) as server:
        return token_form(m, sandbox=f"http://127.0.0.1:{server.port}")


class ShownInForm(Exception):
    """A form (or the CLI) shows the error instead of raising: the case checks the class name shown."""


def in_form(expected: type[SnapbookError], text: str) -> None:
    assert "Traceback" not in text
    if expected.__name__ in text or (expected is KeyFormatError and "not found" in text):
        raise ShownInForm(expected.__name__)
    raise AssertionError(f"the form did not show {expected.__name__}: {text[:300]!r}")


# --- the corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    expected: type[BaseException]
    run: Callable[[Materials], Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: bytes, payload: bytes, sig: bytes = b"s" * 32) -> str:
    return f"{_b64url(header)}.{_b64url(payload)}.{_b64url(sig)}"


def _inspect(token: Any) -> Any:
    from snapbook.tokens import inspect_token

    return inspect_token(token)


CASES: list[Case] = [
    # --- keys: load_private_key / read_private_key ----------------------------------------------
    Case("key-empty", KeyFormatError, lambda m: K.load_private_key("")),
    Case("key-whitespace", KeyFormatError, lambda m: K.load_private_key(" \n\t\r\n ")),
    Case("key-prose", KeyFormatError, lambda m: K.load_private_key("my private key is in the vault")),
    Case("key-none", KeyFormatError, lambda m: K.load_private_key(None)),  # type: ignore[arg-type]
    Case("key-int", KeyFormatError, lambda m: K.load_private_key(42)),  # type: ignore[arg-type]
    Case("key-public-instead", KeyKindError, lambda m: K.load_private_key(m.public_pem)),
    Case("key-cut-at-end", KeyFormatError, lambda m: K.load_private_key(m.pem[: len(m.pem) // 2])),
    Case("key-cut-at-start", KeyFormatError, lambda m: K.load_private_key(m.pem[len(m.pem) // 2:])),
    Case("key-bad-base64-char", KeyFormatError, lambda m: K.load_private_key(m.pem.replace("M", "!", 3))),
    Case("key-body-not-multiple-of-4", KeyFormatError,
         lambda m: K.load_private_key(m.pem.replace("\n-----END", "A\n-----END"))),
    Case("key-labels-mismatch", KeyFormatError,
         lambda m: K.load_private_key(m.pem.replace("END PRIVATE KEY", "END RSA PRIVATE KEY"))),
    Case("key-ec", KeyTypeError, lambda m: K.load_private_key(m.ec_pem)),
    Case("key-1024-bits", WeakKeyError, lambda m: K.load_private_key(m.weak_pem)),
    Case("key-encrypted-no-passphrase", PassphraseError, lambda m: K.load_private_key(m.encrypted_pem)),
    Case("key-encrypted-wrong-passphrase", PassphraseError,
         lambda m: K.load_private_key(m.encrypted_pem, "wrong")),
    Case("key-openssh", KeyFormatError, lambda m: K.load_private_key(m.openssh_pem)),
    Case("key-binary-garbage", KeyFormatError, lambda m: K.load_private_key(b"\xff\xfe\x00garbage" * 50)),
    Case("key-der-garbage", KeyFormatError, lambda m: K.load_private_key(b"\x30\x82\x04\xbd" + b"\x00" * 1200)),
    Case("key-10mb-of-A", KeyFormatError, lambda m: K.load_private_key("A" * 10_000_000)),
    Case("key-pem-with-1mb-body", KeyFormatError,
         lambda m: K.load_private_key("-----BEGIN PRIVATE KEY-----\n" + "QUFB" * 262_144 + "\n-----END PRIVATE KEY-----")),
    Case("key-nul-bytes", KeyFormatError, lambda m: K.load_private_key("\x00" * 500)),
    Case("key-file-missing", KeyFileError, lambda m: K.read_private_key(m.tmp / "nope.pem")),
    Case("key-file-is-directory", KeyFileError, lambda m: K.read_private_key(m.tmp)),
    Case("key-file-fifo", KeyFileError, lambda m: K.read_private_key(_fifo(m))),
    Case("key-file-1mb", KeyFileError, lambda m: K.read_private_key(_big_file(m))),
    Case("key-file-nul-in-path", KeyFileError, lambda m: K.read_private_key("key\x00.pem")),
    Case("key-file-junk", KeyFormatError, lambda m: K.read_private_key(m.junk_path)),
    # --- timestamps: parse_timestamp ---------------------------------------------------------------
    Case("ts-empty", TimestampError, lambda m: parse_timestamp("")),
    Case("ts-none", TimestampError, lambda m: parse_timestamp(None)),  # type: ignore[arg-type]
    Case("ts-epoch", TimestampError, lambda m: parse_timestamp("1608263700")),
    Case("ts-date-only", TimestampError, lambda m: parse_timestamp("2020-12-18")),
    Case("ts-no-zone", TimestampError, lambda m: parse_timestamp("2020-12-18T10:55:00")),
    Case("ts-zone-without-colon", TimestampError, lambda m: parse_timestamp("2020-12-18T10:55:00+0700", strict=True)),  # lenient notes it
    Case("ts-impossible-date", TimestampError, lambda m: parse_timestamp("2020-13-45T25:61:61+07:00")),
    Case("ts-offset-24h", TimestampError, lambda m: parse_timestamp("2020-12-18T10:55:00+24:00")),
    Case("ts-year-zero", TimestampError, lambda m: parse_timestamp("0000-12-18T10:55:00+07:00")),
    Case("ts-lowercase-t", TimestampError, lambda m: parse_timestamp("2020-12-18t10:55:00+07:00")),
    Case("ts-1mb", TimestampError, lambda m: parse_timestamp("2020-12-18T10:55:00+07:00" + "9" * 1_000_000)),
    Case("ts-fullwidth-digits", TimestampError, lambda m: parse_timestamp("２０２０-１２-１８T１０:５５:００+０７:００")),
    Case("ts-trailing-newline", TimestampError, lambda m: parse_timestamp(TS + "\n")),
    Case("ts-in-sign-cli", TimestampError,
         lambda m: cli(m, "sign", "--key", m.private_path, "--client-key", "MCP", "--timestamp", "yesterday")),
    # --- client keys -------------------------------------------------------------------------------
    Case("ck-empty", ClientKeyError, lambda m: string_to_sign("", TS)),
    Case("ck-none", ClientKeyError, lambda m: string_to_sign(None, TS)),  # type: ignore[arg-type]
    Case("ck-newline", ClientKeyError, lambda m: string_to_sign("MCP\n00000001", TS)),
    Case("ck-header-injection", ClientKeyError, lambda m: string_to_sign("MCP\r\nX-Evil: 1", TS)),
    Case("ck-nul", ClientKeyError, lambda m: string_to_sign("MCP\x00", TS)),
    Case("ck-del", ClientKeyError, lambda m: string_to_sign("MCP\x7f", TS)),
    Case("ck-client-newline", ClientKeyError,
         lambda m: TokenClient("http://127.0.0.1:9/x", "MCP\n1", m.key)),
    Case("ck-client-non-ascii", ClientKeyError, lambda m: via_mock_ck(m, "MCPé00000001")),
    Case("ck-client-emoji", ClientKeyError, lambda m: via_mock_ck(m, "MCP\U0001F600")),
    # --- CLI arguments -----------------------------------------------------------------------------
    Case("cli-no-command", Usage, lambda m: cli(m)),
    Case("cli-unknown-command", Usage, lambda m: cli(m, "steal-keys")),
    Case("cli-sign-no-key", Usage, lambda m: cli(m, "sign", "--client-key", "MCP")),
    Case("cli-sign-missing-file", KeyFileError,
         lambda m: cli(m, "sign", "--key", m.tmp / "nope.pem", "--client-key", "MCP")),
    Case("cli-sign-public-key", KeyKindError,
         lambda m: cli(m, "sign", "--key", m.public_path, "--client-key", "MCP")),
    Case("cli-sign-empty-client-key", ClientKeyError,
         lambda m: cli(m, "sign", "--key", m.private_path, "--client-key", "")),
    Case("cli-sign-passphrase-env-unset", ConfigError,
         lambda m: cli(m, "sign", "--key", m.encrypted_path, "--client-key", "MCP", "--passphrase-env",
                       "SNAPBOOK_TEST_UNSET_VAR")),
    Case("cli-sign-encrypted-wrong", PassphraseError,
         lambda m: cli(m, "sign", "--key", m.encrypted_path, "--client-key", "MCP", "--passphrase-env", "PW",
                       env={"PW": "wrong"})),
    Case("cli-verify-not-base64", SignatureFormatError,
         lambda m: cli(m, "verify", "--public-key", m.public_path, "--client-key", "MCP", "--timestamp", TS,
                       "--signature", "not/a*signature")),
    Case("cli-verify-private-key", KeyKindError,
         lambda m: cli(m, "verify", "--public-key", m.private_path, "--client-key", "MCP", "--timestamp", TS,
                       "--signature", "AAAA")),
    Case("cli-keygen-512", WeakKeyError, lambda m: cli(m, "keygen", "--out", m.tmp / "weak", "--bits", "512")),
    Case("cli-keygen-bits-huge", ConfigError, lambda m: cli(m, "keygen", "--out", m.tmp / "huge", "--bits", "65536")),
    Case("cli-keygen-empty-passphrase", ConfigError,
         lambda m: cli(m, "keygen", "--out", m.tmp / "e", "--passphrase-env", "PW", env={"PW": ""})),
    Case("cli-keygen-private-pem-is-a-directory", KeyFileError, lambda m: cli(m, "keygen", "--out", _dir_in_way(m))),
    Case("cli-keygen-bits-not-int", Usage, lambda m: cli(m, "keygen", "--out", m.tmp / "x", "--bits", "many")),
    Case("cli-fingerprint-junk", KeyFormatError, lambda m: cli(m, "fingerprint", m.junk_path)),
    Case("cli-token-negative-timeout", ConfigError,
         lambda m: cli(m, "token", "--url", "http://127.0.0.1:9/x", "--client-key", "MCP", "--key", m.private_path,
                       "--timeout", "-1")),
    Case("cli-token-infinite-timeout", ConfigError,
         lambda m: cli(m, "token", "--url", "http://127.0.0.1:9/x", "--client-key", "MCP", "--key", m.private_path,
                       "--timeout", "inf")),
    Case("cli-token-ftp-url", ConfigError,
         lambda m: cli(m, "token", "--url", "ftp://127.0.0.1/x", "--client-key", "MCP", "--key", m.private_path)),
    Case("cli-token-unknown-env", ConfigError,
         lambda m: cli(m, "token", "--env", "payment-moon", "--client-key", "MCP", "--key", m.private_path)),
    Case("cli-token-env-and-url", Usage,
         lambda m: cli(m, "token", "--env", "sandbox", "--url", "http://127.0.0.1:9/x", "--client-key", "MCP",
                       "--key", m.private_path)),
    Case("cli-doctor-public-key-missing", KeyFileError,
         lambda m: cli(m, "doctor", "--public-key", m.tmp / "nope.pem", "--client-key", "MCP", "--timestamp", TS,
                       "--signature", "AAAA")),
    # --- server answers (the client) ----------------------------------------------------------------
    Case("answer-html-502", InvalidResponseError,
         lambda m: via_mock(m, 502, "<html><title>502 Bad Gateway</title></html>", {"Content-Type": "text/html"})),
    Case("answer-html-200", InvalidResponseError,
         lambda m: via_mock(m, 200, "<!DOCTYPE html><html><body>Welcome</body></html>", {"Content-Type": "text/html"})),
    Case("answer-html-20mb", InvalidResponseError,
         lambda m: via_mock(m, 200, "<html>" + "<p>spam</p>" * 2_000_000, {"Content-Type": "text/html"})),
    Case("answer-empty", InvalidResponseError, lambda m: via_mock(m, 200, "")),
    Case("answer-truncated-json", InvalidResponseError, lambda m: via_mock(m, 200, token_json()[:40])),
    Case("answer-json-array", InvalidResponseError, lambda m: via_mock(m, 200, "[1, 2, 3]")),
    Case("answer-json-string", InvalidResponseError, lambda m: via_mock(m, 200, '"token"')),
    Case("answer-json-null", InvalidResponseError, lambda m: via_mock(m, 200, "null")),
    Case("answer-deep-json-array", InvalidResponseError, lambda m: via_mock(m, 200, "[" * 100_000 + "]" * 100_000)),
    Case("answer-deep-json-object", InvalidResponseError,
         lambda m: via_mock(m, 200, '{"a":' * 50_000 + "1" + "}" * 50_000)),
    Case("answer-invalid-utf8", InvalidResponseError, lambda m: via_mock(m, 200, b'{"accessToken": "\xff\xfe"}')),
    Case("answer-token-is-number", InvalidResponseError, lambda m: via_mock(m, 200, token_json(accessToken=12345))),
    Case("answer-token-type-list", InvalidResponseError, lambda m: via_mock(m, 200, token_json(tokenType=["Bearer"]))),
    Case("answer-expires-in-words", InvalidResponseError, lambda m: via_mock(m, 200, token_json(expiresIn="soon"))),
    Case("answer-expires-in-negative", InvalidResponseError, lambda m: via_mock(m, 200, token_json(expiresIn=-900))),
    Case("answer-expires-in-bool", InvalidResponseError, lambda m: via_mock(m, 200, token_json(expiresIn=True))),
    Case("answer-expires-in-nan", InvalidResponseError,
         lambda m: via_mock(m, 200, token_json().replace('"900"', "NaN"))),
    Case("answer-expires-in-huge-number", InvalidResponseError,
         lambda m: via_mock(m, 200, token_json(expiresIn=10**30))),
    Case("answer-missing-token", InvalidResponseError, lambda m: via_mock(m, 200, token_json(accessToken=None))),
    Case("answer-200-with-failure-code", SnapResponseError,
         lambda m: via_mock(m, 200, json.dumps({"responseCode": "4017300", "responseMessage": "Unauthorized."}))),
    Case("answer-401-not-snap", SnapResponseError, lambda m: via_mock(m, 401, '{"error": "unauthorized"}')),
    Case("answer-redirect", InvalidResponseError,
         lambda m: via_mock(m, 302, "", {"Location": "https://127.0.0.1/login"})),
    Case("answer-bad-gzip", InvalidResponseError,
         lambda m: via_mock(m, 200, b"\x1f\x8bnot gzip at all", {"Content-Encoding": "gzip"})),
    Case("server-never-answers", RequestTimeoutError, lambda m: via_raw("silent", m)),
    Case("server-dribbles-bytes", RequestTimeoutError, lambda m: via_raw("dribble", m)),
    Case("server-endless-body", InvalidResponseError, lambda m: via_raw("endless", m)),
    Case("server-hangs-up", ConnectionFailedError, lambda m: via_raw("hang_up", m)),
    Case("server-not-http", ConnectionFailedError, lambda m: via_raw("not_http", m)),
    Case("server-huge-headers", ConnectionFailedError, lambda m: via_raw("huge_headers", m)),
    Case("cli-token-server-never-answers", ShownInForm, lambda m: cli_token_raw(m, "silent", RequestTimeoutError)),
    # --- tokens --------------------------------------------------------------------------------------
    Case("token-damaged-jwt", TokenFormatError, lambda m: _inspect("eyJhbGciOiJIUzI1NiJ9.e30")),  # opaque tokens are answered, not refused
    Case("token-none", TokenFormatError, lambda m: _inspect(None)),
    Case("token-header-not-json", TokenFormatError, lambda m: _inspect(_jwt(b"not json", b"{}"))),
    Case("token-deep-payload", TokenFormatError,
         lambda m: _inspect(_jwt(b'{"alg":"HS256"}', b"[" * 100_000 + b"]" * 100_000))),
    Case("token-10mb", TokenFormatError, lambda m: _inspect("x" * 10_000_000)),
    # --- signatures --------------------------------------------------------------------------------
    Case("sig-empty", SignatureFormatError, lambda m: decode_signature("")),
    Case("sig-urlsafe", SignatureFormatError, lambda m: decode_signature("-_-_" * 86)),
    Case("sig-unicode", SignatureFormatError, lambda m: decode_signature("é" * 344)),
    Case("sig-bad-padding", SignatureFormatError, lambda m: decode_signature("AAA=A===")),
    # --- widget fields -------------------------------------------------------------------------------
    Case("widget-paste-prose", ShownInForm, lambda m: in_form(KeyFormatError, key_form("paste", "hello"))),
    Case("widget-paste-public-key", ShownInForm, lambda m: in_form(KeyKindError, key_form("paste", m.public_pem))),
    Case("widget-paste-encrypted-wrong-passphrase", ShownInForm,
         lambda m: in_form(PassphraseError, key_form("paste", m.encrypted_pem, "wrong"))),
    Case("widget-upload-junk", ShownInForm,
         lambda m: in_form(KeyFormatError, key_form("upload", b"\x00\xff" * 1000))),
    Case("widget-file-missing", ShownInForm, lambda m: in_form(KeyFileError, key_form("file", m.tmp / "nope.pem"))),
    Case("widget-timestamp-garbage", ShownInForm,
         lambda m: in_form(TimestampError, signature_form(m, "MCP", "not a time"))),
    Case("widget-client-key-newline", ShownInForm,
         lambda m: in_form(ClientKeyError, signature_form(m, "MCP\n1", TS))),
    Case("widget-token-client-key-newline", ShownInForm,
         lambda m: in_form(ClientKeyError, token_form(m, client_key="MCP\n1"))),
    Case("widget-token-key-file-missing", ShownInForm,
         lambda m: in_form(KeyFileError, token_form(m, private_key=None, key_path=str(m.tmp / "nope.pem")))),
    Case("widget-token-encrypted-no-passphrase", ShownInForm,
         lambda m: in_form(PassphraseError, token_form(m, private_key=None, key_path=str(m.encrypted_path)))),
    Case("widget-token-no-sandbox", ShownInForm, lambda m: in_form(ConfigError, token_form(m, sandbox=None))),
    Case("widget-token-server-never-answers", ShownInForm,
         lambda m: in_form(RequestTimeoutError, token_form_raw(m, "silent"))),
    Case("widget-token-server-sends-html", ShownInForm,
         lambda m: in_form(InvalidResponseError, token_form_raw(m, "html_page"))),
]


def via_mock_ck(m: Materials, client_key: str) -> Any:
    """A client key that passes construction but cannot travel in an HTTP header."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=token_json())

    with TokenClient("http://127.0.0.1:9/v1.0/access-token/b2b", client_key, m.key,
                     transport=httpx.MockTransport(handler), timeout=0.5, retry=None) as client:
        return client.request_token()


def cli_token_raw(m: Materials, behaviour: str, expected: type[SnapbookError]) -> Any:
    """``snapbook token`` against a raw server: exit 3, and the typed error named on stderr."""
    import contextlib
    import io

    with RawServer(RAW_BEHAVIOURS[behaviour]) as server:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["token", "--url", server.url, "--client-key", "MCP", "--key", str(m.private_path),
                         "--timeout", "0.5", "--no-retry"])
    assert code == 3, (code, err.getvalue())
    if f"{expected.__name__}:" in err.getvalue():
        raise ShownInForm(expected.__name__)
    raise AssertionError(f"stderr does not name {expected.__name__}: {err.getvalue()!r}")


def test_corpus_is_large_and_covers_every_door():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    doors = {c.id.split("-")[0] for c in CASES}
    assert {"key", "ts", "ck", "cli", "answer", "server", "widget", "token", "sig"} <= doors


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_its_typed_error(case: Case, m: Materials):
    started = time.monotonic()
    with pytest.raises(BaseException) as info:
        case.run(m)
    elapsed = time.monotonic() - started
    exc = info.value
    assert type(exc) is case.expected or (
        isinstance(exc, case.expected) and case.expected is not BaseException
    ), f"{case.id}: expected {case.expected.__name__}, got {type(exc).__name__}: {str(exc)[:300]}"
    assert elapsed < TIME_BUDGET, f"{case.id} took {elapsed:.1f} s"
    if isinstance(exc, SnapbookError):
        text = str(exc)
        assert exc.message and exc.hint, f"{case.id}: a message and a hint"
        assert len(text) <= MAX_MESSAGE, f"{case.id}: a {len(text)}-character message"
        assert find_leaks(text, known_secrets=m.secrets) == []


def test_every_cli_usage_error_is_one_line_and_exit_2(m, capsys):
    """The same corpus through main(): never a traceback, always one line on stderr."""
    argvs = [
        [], ["steal-keys"], ["sign", "--client-key", "MCP"],
        ["sign", "--key", str(m.tmp / "nope.pem"), "--client-key", "MCP"],
        ["sign", "--key", str(m.private_path), "--client-key", "MCP", "--timestamp", "yesterday"],
        ["sign", "--key", str(m.private_path), "--client-key", ""],
        ["verify", "--public-key", str(m.public_path), "--client-key", "MCP", "--timestamp", TS, "--signature", "%%"],
        ["keygen", "--out", str(m.tmp / "weak"), "--bits", "512"],
        ["fingerprint", str(m.junk_path)],
        ["token", "--url", "ftp://127.0.0.1/x", "--client-key", "MCP", "--key", str(m.private_path)],
        ["token", "--url", "http://127.0.0.1:9/x", "--client-key", "MCP", "--key", str(m.private_path),
         "--timeout", "inf"],
    ]
    for argv in argvs:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (argv, code, err)
        assert len(lines) == 1 and "Traceback" not in err, (argv, err)
        assert "unexpected" not in err, f"{argv}: an untyped error reached the user: {err.strip()}"


# --- properties: signing and parsing never raise anything but their documented errors ---------------

PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CLIENT_KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
INSTANTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                        timezones=st.just(timezone.utc))
FUZZ_COUNTS: dict[str, int] = {}


def counted(name: str) -> None:
    FUZZ_COUNTS[name] = FUZZ_COUNTS.get(name, 0) + 1


@PROPS
@given(client_key=CLIENT_KEYS, instant=INSTANTS, flip=st.integers(0, 255))
def test_sign_verify_round_trip_and_any_flipped_byte_fails(private_key, client_key, instant, flip):
    counted("sign/verify")
    timestamp = make_timestamp(instant)
    assert parse_timestamp(timestamp, strict=True).value == instant.replace(microsecond=0)
    text = string_to_sign(client_key, timestamp)
    signature = sign(private_key, text)
    assert len(signature) == 344 and verify(private_key.public_key(), text, signature)
    raw = bytearray(base64.b64decode(signature))
    raw[flip] ^= 0x01
    assert not verify(private_key.public_key(), text, base64.b64encode(bytes(raw)).decode())
    assert not verify(private_key.public_key(), text + " ", signature)


@PROPS
@given(text=st.text(max_size=60) | st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?"))
def test_parse_timestamp_only_ever_raises_timestamp_error(text):
    counted("parse_timestamp")
    try:
        parsed = parse_timestamp(text)
    except TimestampError as exc:
        assert exc.hint
        return
    assert parsed.value.tzinfo is not None
    assert text.isascii() and "\n" not in text  # what parses can travel in a header


@PROPS
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | st.builds(lambda body: f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----",
                   st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n",
                           max_size=400)))
def test_load_private_key_only_ever_raises_key_format_errors(data):
    counted("load_private_key")
    with pytest.raises(KeyFormatError):
        K.load_private_key(data)


@PROPS
@given(text=st.text(max_size=400))
@example(text="A" * 344)
@example(text="=" * 8)
def test_decode_signature_only_ever_raises_signature_format_error(text):
    counted("decode_signature")
    try:
        raw = decode_signature(text)
    except SignatureFormatError:
        return
    assert base64.b64encode(raw).decode() == text.strip()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=15,
)
TOKEN_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "responseCode": st.sampled_from(["2007300", "4017300", "5007300", "200", ""]) | JSON_VALUES,
        "responseMessage": JSON_VALUES,
        "accessToken": st.text(max_size=50) | JSON_VALUES,
        "tokenType": st.sampled_from(["Bearer", "BearerToken", "Mac", ""]) | JSON_VALUES,
        "expiresIn": st.sampled_from(["900", "0", "-1", " 900 "]) | st.integers() | st.floats() | JSON_VALUES,
        "additionalInfo": JSON_VALUES,
    },
)


@PROPS
@given(status=st.sampled_from([200, 201, 204, 302, 400, 401, 429, 500, 503]) | st.integers(100, 599),
       body=TOKEN_BODIES.map(json.dumps) | JSON_VALUES.map(json.dumps) | st.binary(max_size=200),
       headers=st.dictionaries(st.sampled_from(["X-TIMESTAMP", "Content-Type", "Retry-After", "Location"]),
                               st.text(st.characters(codec="latin-1"), max_size=30), max_size=3))
@example(status=200, body=json.dumps({"accessToken": "t", "tokenType": "Bearer", "expiresIn": 10**30}), headers={})
@example(status=200, body="[" * 5000, headers={})
def test_parse_token_response_only_ever_raises_its_documented_errors(status, body, headers):
    counted("parse_token_response")
    try:
        token = parse_token_response(status, headers, body)
    except (SnapResponseError, InvalidResponseError) as exc:
        assert exc.hint is not None
        return
    assert 200 <= status < 300 and token.expires_in > 0 and token.access_token


@PROPS
@given(token=st.text(max_size=200)
       | st.builds(lambda h, p, s: f"{_b64url(h)}.{_b64url(p)}.{_b64url(s)}",
                   JSON_VALUES.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40),
                   JSON_VALUES.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40),
                   st.binary(max_size=40)))
def test_inspect_token_only_ever_raises_token_format_error(token):
    counted("inspect_token")
    try:
        _inspect(token)
    except TokenFormatError:
        pass


@PROPS
@given(signature=st.text(max_size=400) | st.binary(min_size=250, max_size=260).map(lambda b: base64.b64encode(b).decode()),
       client_key=st.text(max_size=20), timestamp=st.text(max_size=30))
def test_doctor_never_raises_on_any_signature(public_key, signature, client_key, timestamp):
    from snapbook.doctor import diagnose

    counted("doctor.diagnose")
    d = diagnose(public_key, client_key, timestamp, signature)
    assert d.ok is False and d.cause and d.summary
    # The client key and timestamp are shown on purpose; a "signature" that is a substring of
    # them (Hypothesis finds one) is not a secret that leaked.
    secret = len(signature) >= 16 and signature not in client_key + " " + timestamp
    assert find_leaks(repr(d) + d._repr_html_(), known_secrets=[signature] if secret else []) == []


# --- the sandbox, at the socket: raw bytes never get a 5xx -----------------------------------------

RAW_REQUESTS = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(
        lambda method, path, headers, body: (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode("latin-1") + headers + b"\r\n" + body
        ),
        st.sampled_from(["POST", "GET", "PUT", "FOO", "", "POST POST"]),
        st.sampled_from(["/v1.0/access-token/b2b", "/", "*", "//", "/%ff", "/v1.0/access-token/b2b?x=\x7f"]),
        st.lists(st.sampled_from([b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Content-Length: 99999999\r\n",
                                  b"Transfer-Encoding: chunked\r\n", b"X-TIMESTAMP: \xff\r\n", b"bad header\r\n",
                                  b"Content-Type: application/json\r\n", b"X-CLIENT-KEY: " + b"A" * 70000 + b"\r\n"]),
                 max_size=4).map(b"".join),
        st.binary(max_size=64),
    ),
)


@pytest.mark.timeout(120)
def test_raw_bytes_at_the_sandbox_socket_never_get_a_5xx(private_key):
    from snapbook.sandbox import Sandbox

    statuses: dict[str, int] = {}
    with Sandbox() as sb:
        sb.register("RAW", private_key.public_key())

        @settings(PROPS, max_examples=600)
        @given(raw=RAW_REQUESTS)
        def one(raw: bytes) -> None:
            counted("sandbox raw socket")
            with socket.create_connection(("127.0.0.1", sb.port), timeout=2) as s:
                try:
                    s.sendall(raw)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    return  # the server already closed: fine
                answer = b""
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    try:
                        chunk = s.recv(65536)
                    except (TimeoutError, socket.timeout, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    answer += chunk
            status = answer[9:12].decode("latin-1") if answer.startswith(b"HTTP/1.1 ") else "none"
            statuses[status] = statuses.get(status, 0) + 1
            assert not status.startswith("5"), (raw[:120], answer[:200])

        one()
        # And it still serves a real client afterwards.
        with TokenClient(sb.token_url("payment"), "RAW", private_key, timeout=5) as client:
            assert client.request_token().response_code == "2007300"
        assert not [e for e in sb.journal if e.verdict == "error"]
    print(f"\nraw socket statuses: {statuses}; fuzz counts: {FUZZ_COUNTS}")
