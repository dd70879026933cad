"""The token client against hostile peers and careless input (issue 15 items 1-5, 13; issue 14 items 5, 11, 12).

Every server here is built by the test on 127.0.0.1 (raw sockets where HTTP itself is the
weapon); every loop stops at a deadline and a count.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapbook.cli import main
from snapbook.client import AsyncTokenClient, TokenClient, format_clock_offset
from snapbook.errors import ConfigError, InvalidResponseError, LogWriteError, RequestTimeoutError, SnapResponseError
from snapbook.keys import save_private_key
from snapbook.log import INVALID_RESPONSE, SUCCESS, LogRecord, RequestLog
from snapbook.masking import mask_url, printable
from snapbook.signing import JAKARTA

CLIENT = "MCP00000001"
PATH = "/v1.0/access-token/b2b"
# How long a hostile server keeps going at most: well past every deadline below, so a client
# without a working deadline is caught (it would wait this long), yet the test stays bounded.
HOSTILE_FOR = 12.0


@pytest.fixture
def key_file(tmp_path, private_key):
    return str(save_private_key(private_key, tmp_path / "private.pem"))


def _read_request(conn: socket.socket, limit: float = 3.0) -> bytes:
    """Read one HTTP request (headers + Content-Length body), bounded in time and size."""
    conn.settimeout(limit)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
        need = int(m.group(1)) if m else 0
        while len(body) < need:
            chunk = conn.recv(4096)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body
    except OSError:
        return data


@contextmanager
def raw_server(script: Callable[[socket.socket, bytes, threading.Event], None]) -> Iterator[str]:
    """A loopback server that runs ``script(conn, request, stop)`` per connection; yields its token URL."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                script(conn, _read_request(conn), stop)
            except OSError:
                pass  # the client gave up and closed: what we want

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            t = threading.Thread(target=serve, args=(conn,), daemon=True)
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{PATH}"
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for t in threads:
            t.join(2)


def dribble_status_line(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """Status line and headers, one byte every 0.2 s, headers never ending."""
    text = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: a\r\n" * 1000
    end = time.monotonic() + HOSTILE_FOR
    for byte in text:
        if stop.is_set() or time.monotonic() > end:
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


def endless_continue(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """``HTTP/1.1 100 Continue`` forever, every 0.1 s."""
    end = time.monotonic() + HOSTILE_FOR
    while not stop.is_set() and time.monotonic() < end:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.1)


def answer(status: int, body: bytes, headers: dict[str, str] | None = None):
    """A script that answers once with ``status``, ``headers`` and ``body`` (bytes as given)."""

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    return script


# --- item 1: the whole attempt is bounded, in the sync client too ---------------------------


@pytest.mark.parametrize("script", [dribble_status_line, endless_continue], ids=["dribbled-headers", "100-continue"])
def test_sync_client_deadline_bounds_headers(private_key, script):
    with raw_server(script) as url, TokenClient(url, CLIENT, private_key, timeout=0.5, retry=None) as client:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            client.request_token()
        elapsed = time.monotonic() - t0
    # deadline = connect + read timeout = 1.0 s; without it the client waits for the server (12 s)
    assert elapsed < 3.0, elapsed
    assert info.value.phase == "total" and "deadline" in info.value.message
    (row,) = client.log.records
    assert row.error_type == "RequestTimeoutError"


@pytest.mark.parametrize("script", [dribble_status_line, endless_continue], ids=["dribbled-headers", "100-continue"])
def test_async_client_deadline_bounds_headers(private_key, script):
    async def run() -> float:
        async with AsyncTokenClient(url, CLIENT, private_key, timeout=0.5, retry=None) as client:
            t0 = time.monotonic()
            with pytest.raises(RequestTimeoutError):
                await client.request_token()
            return time.monotonic() - t0

    with raw_server(script) as url:
        assert asyncio.run(run()) < 3.0


def test_cli_token_ends_near_its_documented_deadline(key_file):
    with raw_server(dribble_status_line) as url:
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "snapbook", "token", "--url", url, "--client-key", CLIENT, "--key", key_file,
             "--timeout", "1", "--no-retry"],
            capture_output=True, text=True, timeout=60,
        )
        elapsed = time.monotonic() - t0
    # --timeout 1: the attempt's deadline is 2 s (connect + read); the rest is Python starting up
    assert done.returncode == 3, done.stderr
    assert "RequestTimeoutError" in done.stderr and "deadline" in done.stderr
    assert elapsed < 8.0, elapsed


# --- item 2: a compression bomb stops at the limit, while it inflates --------------------------


def _bomb(decoded: int) -> bytes:
    """``gzip(gzip(decoded zero bytes))``: a few KB on the wire."""
    inner = io.BytesIO()
    with gzip.GzipFile(fileobj=inner, mode="wb", compresslevel=9) as gz:
        block = bytes(1 << 20)
        for _ in range(decoded >> 20):
            gz.write(block)
    return gzip.compress(inner.getvalue(), compresslevel=9)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _bomb(256 << 20)  # 256 MiB decoded
    assert len(data) < 64 * 1024
    return data


def test_compression_bomb_is_refused_within_the_limit(private_key, bomb):
    headers = {"Content-Encoding": "gzip, gzip", "Content-Type": "application/json"}
    with raw_server(answer(200, bomb, headers)) as url, TokenClient(url, CLIENT, private_key, retry=None) as client:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidResponseError) as info:
                client.request_token()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The limit is 1 MiB; decoding in 64 KiB steps keeps the peak near it. Without bounded decoding
    # the first chunk alone inflates to 256 MiB.
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert "too large" in info.value.message and "gzip, gzip" in info.value.message
    (row,) = client.log.records
    assert row.outcome == INVALID_RESPONSE and row.error_type == "InvalidResponseError"


def test_compression_bomb_async(private_key, bomb):
    headers = {"Content-Encoding": "gzip, gzip"}

    async def run() -> None:
        async with AsyncTokenClient(url, CLIENT, private_key, retry=None) as client:
            with pytest.raises(InvalidResponseError):
                await client.request_token()

    with raw_server(answer(200, bomb, headers)) as url:
        tracemalloc.start()
        try:
            asyncio.run(run())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_compression_bomb_cli_exit_3(key_file, bomb, capsys):
    with raw_server(answer(200, bomb, {"Content-Encoding": "gzip, gzip"})) as url:
        code = main(["token", "--url", url, "--client-key", CLIENT, "--key", key_file, "--no-retry"])
    err = capsys.readouterr().err
    assert code == 3 and "InvalidResponseError" in err and "too large" in err


def test_a_small_gzip_answer_still_decodes(private_key):
    body = json.dumps({"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "t" * 40,
                       "tokenType": "Bearer", "expiresIn": "900"}).encode()
    with raw_server(answer(200, gzip.compress(body), {"Content-Encoding": "gzip", "X-CLIENT-KEY": CLIENT})) as url, \
            TokenClient(url, CLIENT, private_key, retry=None) as client:
        token = client.request_token()
    assert token.access_token == "t" * 40 and client.log.records[-1].response_bytes == len(body)


# --- item 3: terminal escapes from the network are escaped everywhere -------------------------

_EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x7f"
_RAW = ("\x1b", "\x07", "\x9b", "\x7f")


def _evil_success() -> bytes:
    return json.dumps(
        {"responseCode": "2007300" + _EVIL, "responseMessage": "ok" + _EVIL, "accessToken": "t" * 40,
         "tokenType": "Bearer" + _EVIL, "expiresIn": "900", "x" + _EVIL: 1},
        ensure_ascii=False,
    ).encode()


def _evil_refusal() -> bytes:
    return json.dumps({"responseCode": "4017300" + _EVIL, "responseMessage": "Unauthorized" + _EVIL},
                      ensure_ascii=False).encode()


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("status,body,code", [(200, _evil_success, 0), (401, _evil_refusal, 1)],
                         ids=["success", "refusal"])
def test_cli_escapes_control_characters_from_the_server(key_file, capsys, status, body, code, as_json):
    headers = {"Content-Type": "application/json", "X-TIMESTAMP": "2026-01-20T10:00:00" + _EVIL}
    with raw_server(answer(status, body(), headers)) as url:
        argv = ["token", "--url", url, "--client-key", CLIENT, "--key", key_file, "--no-retry"]
        assert main(argv + (["--json"] if as_json else [])) == code
    out, err = capsys.readouterr()
    for char in _RAW:
        assert char not in out and char not in err, (repr(char), out, err)
    assert "pwned" in out + err  # shown, escaped, not dropped
    if as_json:
        json.loads(out)  # escaping kept it valid JSON


def test_reprs_errors_and_widget_output_escape_server_text(private_key):
    from snapbook.widgets import Notice, notice_for

    def handler(request: httpx.Request) -> httpx.Response:
        evil = ("x" + _EVIL).encode("latin-1")
        return httpx.Response(200, content=_evil_success(), headers=[(b"X-TIMESTAMP", evil), (b"X-CLIENT-KEY", evil)])

    client = TokenClient(f"http://127.0.0.1:9{PATH}", CLIENT, private_key, transport=httpx.MockTransport(handler),
                         retry=None)
    token = client.request_token()
    shown = [repr(token), token._repr_html_(), *token.notes, token.response_message, repr(Notice("ok", _EVIL))]
    refusal = httpx.MockTransport(lambda r: httpx.Response(401, content=_evil_refusal()))
    with pytest.raises(SnapResponseError) as info:
        TokenClient(f"http://127.0.0.1:9{PATH}", CLIENT, private_key, transport=refusal, retry=None).request_token()
    notice = notice_for(info.value)
    shown += [str(info.value), repr(notice), notice._repr_html_()]
    shown += [str(v) for row in client.log.records for v in row.to_json().values()]
    for text in shown:
        for char in _RAW:
            assert char not in text, (repr(char), text)


def test_printable_escapes_and_clips():
    assert printable("a\x1b[2Jb\x9b\u202ec\n") == "a\\x1b[2Jb\\x9b\\u202ec\\x0a"
    assert printable("é ok") == "é ok"
    assert printable("x" * 10_000_000, 80) == "x" * 79 + "…"
    assert len(printable("\x00" * 1000, 50)) == 50


# --- item 4: userinfo and echoed signatures are masked -----------------------------------------


def test_userinfo_is_masked_in_output_errors_and_log(key_file, private_key, capsys):
    secret = "S3cr3tPassw0rd"
    ok = json.dumps({"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "t" * 40,
                     "tokenType": "Bearer", "expiresIn": "900"}).encode()
    with raw_server(answer(200, ok, {"X-CLIENT-KEY": CLIENT})) as url:
        with_password = url.replace("http://", f"http://merchant:{secret}@")
        for extra in ([], ["--json"]):
            assert main(["token", "--url", with_password, "--client-key", CLIENT, "--key", key_file,
                         "--no-retry", *extra]) == 0
        with TokenClient(with_password, CLIENT, private_key, retry=None) as client:
            token = client.request_token()
        shown = [repr(client), repr(token), token._repr_html_()]
    with TokenClient(with_password, CLIENT, private_key, retry=None) as client:  # the server is gone now
        with pytest.raises(Exception) as info:
            client.request_token()
    assert main(["token", "--url", with_password, "--client-key", CLIENT, "--key", key_file, "--no-retry"]) == 3
    out, err = capsys.readouterr()
    df = client.log.to_dataframe()
    shown += [out, err, str(info.value), df.to_csv(), *map(str, client.log.records)]
    for text in shown:
        assert secret not in text, text
    assert "***@127.0.0.1" in out and df["url"].str.contains(r"\*\*\*@").all()
    assert mask_url("https://u:p@h/x?y=1") == "https://***@h/x?y=1"


def test_a_redirect_echoing_the_signature_is_masked(private_key):
    seen: dict[str, str] = {}

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        m = re.search(rb"x-signature:\s*(\S+)", request, re.IGNORECASE)
        signature = m.group(1).decode()
        seen["signature"] = signature
        location = f"http://127.0.0.1/callback/{signature}?sig={signature}#{signature}"
        answer(302, b"", {"Location": location})(conn, request, stop)

    with raw_server(script) as url, TokenClient(url, CLIENT, private_key, retry=None) as client:
        with pytest.raises(InvalidResponseError) as info:
            client.request_token()
    signature = seen["signature"]
    assert len(signature) == 344
    texts = [str(info.value), *(json.dumps(r.to_json()) for r in client.log.records)]
    for text in texts:
        for i in range(0, len(signature) - 24):
            assert signature[i:i + 24] not in text, text


# --- item 5: a full disk does not cost the caller a token ---------------------------------------


def test_full_disk_still_returns_the_issued_token(sb, private_key):
    log = RequestLog("/dev/full")  # every write fails with ENOSPC, like a full filesystem
    with TokenClient(f"{sb.base_url}{PATH}", CLIENT, private_key, log=log) as client, \
            pytest.warns(LogWriteError) as caught:
        tokens = [client.request_token() for _ in range(3)]
    assert all(sb.validate_token(t.access_token) for t in tokens)
    assert len(log.records) == 3 and all(r.outcome == SUCCESS for r in log.records)
    assert log.pending == 3
    message = str(caught[-1].message)
    assert "/dev/full" in message and "3 request-log row(s)" in message and "memory" in message
    with pytest.warns(LogWriteError):
        assert log.flush() is False


class _FlakyFile:
    """A raw file whose writes fail with ENOSPC ``failures`` times, then write at most ``step`` bytes at once."""

    def __init__(self, failures: int, step: int) -> None:
        self.buffer = io.BytesIO()
        self.failures, self.step = failures, step

    def write(self, data: bytes) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(self.step, len(data))
        self.buffer.write(data[:n])
        return n

    def close(self) -> None:
        pass


def _record(i: int) -> LogRecord:
    return LogRecord(time=datetime(2026, 1, 20, 3, 0, i, tzinfo=JAKARTA), environment="sandbox", product="payment",
                     endpoint="sandbox", url="http://127.0.0.1/x", attempt=1, outcome=SUCCESS, latency_ms=1.0)


def test_rows_kept_in_memory_are_written_once_space_returns(tmp_path):
    log = RequestLog(tmp_path / "log.jsonl")
    log._file.close()
    log._file = flaky = _FlakyFile(failures=4, step=37)  # 4 refusals, then short writes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(6):
            log.append(_record(i))
    assert sum(isinstance(w.message, LogWriteError) for w in caught) == 4
    assert log.pending == 0 and len(log) == 6
    lines = flaky.buffer.getvalue().decode().splitlines()
    assert [LogRecord.from_json(json.loads(x)).time.second for x in lines] == list(range(6))  # in order, once each


# --- item 13: unusable input is exit 2, before any network; nothing "unexpected" ---------------


@pytest.mark.parametrize(
    "url,extra,fragment",
    [
        ("http://127.0.0.1:99999/v1.0/access-token/b2b", [], "port"),
        ("http://127.0.0.1:8765/v1.0/access\r-token/b2b", [], "control character"),
        ("http://127.0.0.1:8765/v1.0/acc ess-token/b2b", [], "space"),
        ("http://127.0.0.1:8765/v1.0/access-token/b2b", ["--timeout", "1e300"], "--timeout"),
        ("http://127.0.0.1:8765/v1.0/access-token/b2b", ["--timeout", "nan"], "--timeout"),
    ],
    ids=["port-99999", "CR", "space", "timeout-1e300", "timeout-nan"],
)
@pytest.mark.parametrize("command", ["token", "check"])
def test_unusable_input_is_exit_2_without_network(key_file, capsys, monkeypatch, url, extra, fragment, command):
    def no_network(*args, **kwargs):
        raise AssertionError("a network attempt was made")

    monkeypatch.setattr(httpx.Client, "send", no_network)
    assert main([command, "--url", url, "--client-key", CLIENT, "--key", key_file, *extra]) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err and fragment in err and err.count("\n") == 1 and len(err) < 1000


def test_library_refuses_the_same_input(private_key):
    for url in ("http://127.0.0.1:99999/x", "http://127.0.0.1/a\rb", "http://127.0.0.1:0/x"):
        with pytest.raises(ConfigError):
            TokenClient(url, CLIENT, private_key)
    for timeout in (1e300, float("inf"), -1, 0):
        with pytest.raises(ConfigError):
            TokenClient(f"http://127.0.0.1:1{PATH}", CLIENT, private_key, timeout=timeout)
    with pytest.raises(ConfigError):
        TokenClient(f"http://127.0.0.1:1{PATH}", CLIENT, private_key, deadline=1e300)


ODD_ARGUMENTS = [
    ["--url", ""],
    ["--url", "http://[::1"],
    ["--url", "http://127.0.0.1:-1/x"],
    ["--url", "http://127.0.0.1:65536/x"],
    ["--url", "http://\x00/x"],
    ["--url", "http://127.0.0.1:1/x", "--origin", "a\nb"],
    ["--url", "http://127.0.0.1:1/x", "--timeout", "-0"],
    ["--url", "http://127.0.0.1:1/x", "--timeout", "1e-320"],
    ["--env", "sandbox"],
    ["--env", "nowhere\x1b[2J"],
]


@pytest.mark.parametrize("args", ODD_ARGUMENTS, ids=range(len(ODD_ARGUMENTS)))
@pytest.mark.parametrize("command", ["token", "check"])
def test_no_unexpected_error_from_odd_input(key_file, capsys, monkeypatch, args, command):
    monkeypatch.delenv("SNAPBOOK_SANDBOX_URL", raising=False)
    code = main([command, *args, "--client-key", CLIENT, "--key", key_file, "--no-retry"])
    out, err = capsys.readouterr()
    assert code in (1, 2, 3) and "error: unexpected" not in out + err and "\x1b" not in out + err, out + err


# --- issue 14: X-CLIENT-KEY, clock offsets with their resolution, one zone ----------------------


def _ok(headers: dict[str, str]) -> httpx.MockTransport:
    body = {"responseCode": "2007300", "responseMessage": "Successful", "accessToken": "t" * 40,
            "tokenType": "Bearer", "expiresIn": "900"}
    return httpx.MockTransport(lambda r: httpx.Response(200, json=body, headers=headers))


@pytest.mark.parametrize(
    "headers,note",
    [
        ({"X-TIMESTAMP": "2026-01-20T10:00:00+07:00"}, "no X-CLIENT-KEY response header"),
        ({"X-TIMESTAMP": "2026-01-20T10:00:00+07:00", "X-CLIENT-KEY": "SOMEONE-ELSE"}, "differs"),
        ({"X-TIMESTAMP": "2026-01-20T10:00:00+07:00", "X-CLIENT-KEY": CLIENT}, None),
    ],
    ids=["missing", "different", "same"],
)
def test_the_response_client_key_is_checked(private_key, headers, note):
    clock = lambda: datetime(2026, 1, 20, 10, 0, 0, tzinfo=JAKARTA)  # noqa: E731
    token = TokenClient(f"http://127.0.0.1:1{PATH}", CLIENT, private_key, transport=_ok(headers), clock=clock,
                        retry=None).request_token()
    notes = [n for n in token.notes if "X-CLIENT-KEY" in n]
    assert (notes == []) if note is None else (len(notes) == 1 and note in notes[0]), token.notes


def test_a_whole_second_timestamp_gives_an_offset_with_its_resolution(private_key, key_file):
    # Our clock is 0.7 s past the server's whole second: on one host, the raw offset reads -0.7 s.
    clock = lambda: datetime(2026, 1, 20, 10, 0, 0, 700000, tzinfo=JAKARTA)  # noqa: E731
    headers = {"X-TIMESTAMP": "2026-01-20T10:00:00+07:00", "X-CLIENT-KEY": CLIENT}
    token = TokenClient(f"http://127.0.0.1:1{PATH}", CLIENT, private_key, transport=_ok(headers), clock=clock,
                        retry=None).request_token()
    assert token.clock_offset.total_seconds() == pytest.approx(-0.7, abs=0.05)
    assert token.clock_offset_text == "0 s ± 1 s"
    assert "0 s ± 1 s" in repr(token) and "0 s ± 1 s" in token._repr_html_()
    assert format_clock_offset(-30.2, 0.5) == "-30 s ± 1 s"
    assert format_clock_offset(0.0123, 0.004) == "+0.012 s ± 0.004 s"


def test_log_summary_reports_offsets_with_their_resolution():
    log = RequestLog()
    for i in range(3):
        rec = _record(i)
        rec.clock_offset_s, rec.clock_offset_uncertainty_s = -0.7, 0.5
        log.append(rec)
    summary = log.summary()
    assert summary.loc["sandbox", "clock_offset"] == "0 s ± 1 s"
    assert summary.loc["sandbox", "clock_offset_uncertainty_s"] == 0.5


def test_cli_token_uses_one_zone_and_shows_the_resolution(sb, key_file, capsys):
    assert main(["token", "--url", f"{sb.base_url}{PATH}", "--client-key", CLIENT, "--key", key_file]) == 0
    out = capsys.readouterr().out
    expires = next(line for line in out.splitlines() if line.startswith("expires at"))
    offset = next(line for line in out.splitlines() if "clock offset" in line)
    assert "+07:00" in expires and "+00:00" not in out
    assert re.search(r"clock offset \(server - local\) [-+]?\d+ s ± \d+ s$", offset), offset
    assert main(["check", "--url", f"{sb.base_url}{PATH}", "--client-key", CLIENT, "--key", key_file]) == 0
    assert re.search(r"clock offset\s+PASS\s+[-+]?\d+ s ± \d+ s", capsys.readouterr().out)


def test_cli_token_json_reports_the_uncertainty(sb, key_file, capsys):
    assert main(["token", "--url", f"{sb.base_url}{PATH}", "--client-key", CLIENT, "--key", key_file, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["expiresAt"].endswith("+07:00")
    assert 0.5 <= data["clockOffsetUncertaintySeconds"] < 1.5 and data["clockOffset"].endswith("s ± 1 s")


def test_an_uncertainty_is_recorded_in_the_log(sb, private_key):
    with TokenClient(f"{sb.base_url}{PATH}", CLIENT, private_key) as client:
        token = client.request_token()
    row = client.log.records[-1]
    assert row.clock_offset_uncertainty_s == pytest.approx(token.clock_offset_uncertainty.total_seconds())
    assert 0.5 <= row.clock_offset_uncertainty_s < 1.5
    assert isinstance(token.clock_offset_uncertainty, timedelta)


def test_the_deadline_backend_is_installed_also_for_environment_proxies(private_key, monkeypatch):
    from snapbook.client.limits import DeadlineBackend

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # still honoured, as before: and bounded too
    client = TokenClient(f"https://127.0.0.1:1{PATH}", CLIENT, private_key)
    http = client._client()
    pools = [http._transport._pool, *(t._pool for t in http._mounts.values() if t is not None)]
    assert len(pools) >= 2 and all(isinstance(p._network_backend, DeadlineBackend) for p in pools)
    client.close()


def test_userinfo_is_masked_in_errors_about_the_url(key_file, capsys, private_key):
    url = "http://merchant:S3cr3tPassw0rd@example.com/v1.0/access-token/b2b"  # plain http to a remote host
    assert main(["token", "--url", url, "--client-key", CLIENT, "--key", key_file]) == 2
    err = capsys.readouterr().err
    assert "S3cr3tPassw0rd" not in err and "***@example.com" in err
    with pytest.raises(ConfigError) as info:
        TokenClient(url, CLIENT, private_key)
    assert "S3cr3tPassw0rd" not in str(info.value)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=st.one_of(st.text(max_size=60), st.builds("http{}://{}".format, st.sampled_from(["", "s"]), st.text(max_size=40))),
       timeout=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["1e300", "-0", "0x10", "nan"])),
       command=st.sampled_from(["token", "check"]))
def test_no_input_reaches_an_unexpected_error(key_file, capsys, monkeypatch, url, timeout, command):
    def unreachable(*args, **kwargs):  # never the real network: every send fails as a refused connection
        raise httpx.ConnectError("All connection attempts failed")

    monkeypatch.setattr(httpx.Client, "send", unreachable)
    monkeypatch.delenv("SNAPBOOK_SANDBOX_URL", raising=False)
    if "\x00" in url:  # the OS refuses NUL in argv: not an input a user can give
        url = url.replace("\x00", "")
    try:
        code = main([command, "--url", url, "--client-key", CLIENT, "--key", key_file, "--timeout", str(timeout),
                     "--no-retry"])
    except SystemExit as exc:  # argparse's own usage error: one line, exit 2
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (1, 2, 3) and "error: unexpected" not in err, err
    assert not any(c in out + err for c in _RAW), (out, err)
