"""Kill -9 mid-run: the JSON-lines request log is complete up to the kill and loads.

A child process requests tokens from a sandbox (run here, in the parent, so it survives the
kill and keeps its journal) as fast as it can, logging to a RequestLog file. It is
SIGKILLed mid-run, with no chance to flush or close anything. Then: every complete line
parses, ``RequestLog.load`` returns exactly one row per complete line, at most a last partial
line is dropped, and every logged token is one the sandbox really issued.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from snapbook.keys import save_private_key
from snapbook.log import LogRecord, RequestLog
from snapbook.sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)  # nothing here may hang: every test is bounded

CHILD = textwrap.dedent(
    """
    import sys, time
    from snapbook.client import TokenClient
    from snapbook.log import RequestLog

    url, key_path, log_path = sys.argv[1:4]
    deadline = time.monotonic() + 60          # bounded even if nobody kills it
    log = RequestLog(log_path)
    with TokenClient(url, "KILLME01", key_path, log=log, timeout=5, retry=None) as client:
        for _ in range(100_000):
            if time.monotonic() > deadline:
                break
            client.request_token()
    """
)


def complete_lines(path: Path) -> tuple[list[str], str]:
    """(lines ending in a newline, the trailing partial line or '')."""
    text = path.read_text(encoding="utf-8")
    *whole, tail = text.split("\n")
    return [line for line in whole if line], tail


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "child exited"
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the child did not log {n} requests within {timeout} s")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("after", [40, 120])
def test_sigkill_mid_run_leaves_a_complete_loadable_log(tmp_path, private_key, after):
    key_path = save_private_key(private_key, tmp_path / "private.pem")
    log_path = tmp_path / "requests.jsonl"
    with Sandbox() as sb:
        sb.register("KILLME01", private_key.public_key())
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, sb.token_url("payment"), str(key_path), str(log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for_lines(log_path, after, proc)
            os.kill(proc.pid, signal.SIGKILL)  # mid-run: no flush, no close, no atexit
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.2)  # let the sandbox journal the request that was in flight
        journal = sb.journal.entries()

    lines, tail = complete_lines(log_path)
    assert len(lines) >= after
    for line in lines:  # every complete line is a whole record
        LogRecord.from_json(json.loads(line))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dropped *inner* line would warn: there must be none
        loaded = RequestLog.load(log_path)
    assert len(loaded) == len(lines)  # only a partial last line (tail) may be dropped
    if tail:
        with pytest.raises(ValueError):
            json.loads(tail)
    assert all(r.ok and r.client_key == "KILLME01" for r in loaded)
    # Nothing was logged that did not happen, and at most the request in flight is missing.
    issued = {e.token for e in journal if e.verdict == "accepted"}
    assert {r.token for r in loaded} <= issued
    assert len(journal) - len(loaded) in (0, 1, 2)


def test_a_partial_last_line_is_dropped_and_appending_resumes_cleanly(tmp_path):
    """The crash case made deterministic: a line cut mid-write, then a new writer on the same file."""
    path = tmp_path / "log.jsonl"
    rows = [LogRecord(time=datetime(2026, 1, 1, tzinfo=timezone.utc),
                      environment="sandbox", product="payment", endpoint="sandbox", url="http://127.0.0.1:1/x",
                      attempt=1, outcome="success", latency_ms=float(i)) for i in range(5)]
    with RequestLog(path) as log:
        log.extend(rows)
    whole = path.read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
    path.write_bytes(whole[: len(whole) - len(last) // 2 - 1])  # cut the last line in half
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r.latency_ms for r in RequestLog.load(path)] == [0.0, 1.0, 2.0, 3.0]
    with RequestLog(path) as log:  # a new writer must not glue its row onto the partial line
        log.append(rows[4])
    with pytest.warns(UserWarning, match=r"log.jsonl:5: skipped an unreadable log line"):
        loaded = RequestLog.load(path)  # the cut line is now an inner line: skipped, and said so
    assert [r.latency_ms for r in loaded] == [0.0, 1.0, 2.0, 3.0, 4.0]
