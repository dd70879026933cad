"""snapbook.log: rows, DataFrame dtypes, summary, plot, JSON-lines persistence that survives crashes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from snapbook.log import INVALID_RESPONSE, REFUSED, SUCCESS, TRANSPORT_ERROR, LogRecord, RequestLog

T0 = datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)
SIGNATURE = "PKiS0Gh2OLs+ibZaL9oWbYAAFRjMjJiS0MCmMbmFImoItuPZwicceUOhidRiNMt1PDH2fDHKFDkrJ+LQzNSukDU4gn9G=="
TOKEN = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJNQzIwMjYwMTYwNTgiLCJpYXQiOjE3Njg5NjU3MzcsImV4cCI6MTc2ODk2NjYzN30.whW6B-b_hkkPP7pJ"


def record(i: int = 0, **overrides) -> LogRecord:
    values = dict(  # noqa: C408 - keyword form mirrors LogRecord's fields
        time=T0 + timedelta(seconds=i),
        environment="stage",
        product="payment",
        endpoint="payment-stage",
        url="https://kronos-stage.ifortepay.id/auth/merchants/v1.0/access-token/b2b",
        attempt=1,
        outcome=SUCCESS,
        latency_ms=10.0 + i,
        http_status=200,
        response_code="2007300",
        response_message="Successful",
        connect_ms=1.5,
        wait_ms=7.25,
        read_ms=0.5,
        request_bytes=54,
        response_bytes=240,
        server_timestamp="2026-01-20T10:00:00+07:00",
        clock_offset_s=0.25,
        client_key="MCP00000001",
        timestamp="2026-01-20T10:00:00+07:00",
        signature=SIGNATURE,
        token=TOKEN,
    )
    values.update(overrides)
    return LogRecord(**values)


def test_secrets_are_masked_on_construction():
    r = record()
    assert r.signature.endswith("chars)") and SIGNATURE not in r.signature
    assert r.token.endswith("chars)") and TOKEN not in r.token
    assert record(signature=r.signature).signature == r.signature  # masking is idempotent
    assert r.ok and not record(outcome=REFUSED).ok


def test_append_and_read_back():
    log = RequestLog()
    for i in range(3):
        log.append(record(i))
    assert len(log) == 3 and log[0].latency_ms == 10.0
    copy = log.records
    copy.clear()
    assert len(log) == 3
    assert [r.latency_ms for r in log] == [10.0, 11.0, 12.0]
    assert repr(log) == "RequestLog(3 attempts, 3 successful)"
    log.clear()
    assert len(log) == 0


EXPECTED_DTYPES = {
    "time": "datetime64[ns, UTC]",
    "environment": "category",
    "product": "category",
    "endpoint": "category",
    "outcome": "category",
    "error_type": "category",
    "attempt": "Int64",
    "http_status": "Int64",
    "request_bytes": "Int64",
    "response_bytes": "Int64",
    "latency_ms": "float64",
    "connect_ms": "float64",
    "tls_ms": "float64",
    "wait_ms": "float64",
    "read_ms": "float64",
    "clock_offset_s": "float64",
    "will_retry": "bool",
    "url": "string",
    "response_code": "string",
    "signature": "string",
    "token": "string",
}


@pytest.mark.parametrize("rows", [0, 2])
def test_dataframe_dtypes(rows):
    log = RequestLog()
    log.append(record(0))
    log.append(
        record(
            1,
            outcome=TRANSPORT_ERROR,
            http_status=None,
            response_code=None,
            latency_ms=None,
            error_type="ConnectionFailedError",
            will_retry=True,
            token=None,
        )
    )
    if rows == 0:
        log.clear()
    df = log.to_dataframe()
    assert len(df) == rows
    for column, dtype in EXPECTED_DTYPES.items():
        assert str(df[column].dtype) == dtype, column
    assert list(df.columns)[:3] == ["time", "environment", "product"]
    if rows:
        assert df["time"].iloc[1] == pd.Timestamp(T0 + timedelta(seconds=1))
        assert df["http_status"].isna().tolist() == [False, True]
        assert df["latency_ms"].isna().tolist() == [False, True]
        assert df["tls_ms"].isna().all()
        assert df["will_retry"].tolist() == [False, True]
        assert df["error_type"].iloc[1] == "ConnectionFailedError"


def test_summary_per_environment():
    log = RequestLog()
    for i in range(100):  # latencies 1..100 ms on stage, every tenth one failed
        log.append(record(i, latency_ms=float(i + 1), outcome=SUCCESS if i % 10 else REFUSED))
    for i in range(4):
        log.append(record(i, environment="sandbox", endpoint="sandbox", latency_ms=2.0, clock_offset_s=-1.0))
    summary = log.summary()
    assert list(summary.index) == ["sandbox", "stage"]
    stage = summary.loc["stage"]
    assert stage["attempts"] == 100 and stage["successes"] == 90
    assert stage["success_rate"] == pytest.approx(0.9)
    # linear interpolation between order statistics, as numpy and pandas do
    assert stage["latency_p50_ms"] == pytest.approx(50.5)
    assert stage["latency_p90_ms"] == pytest.approx(90.1)
    assert stage["latency_p99_ms"] == pytest.approx(99.01)
    assert summary.loc["sandbox", "clock_offset_s"] == -1.0
    assert summary.loc["sandbox", "success_rate"] == 1.0
    assert list(log.summary(by="endpoint").index) == ["payment-stage", "sandbox"]
    assert log.summary(by=["environment", "outcome"]).loc[("stage", REFUSED), "attempts"] == 10


def test_summary_of_an_empty_log():
    summary = RequestLog().summary()
    assert summary.empty and "latency_p99_ms" in summary.columns


def test_plot_returns_a_figure_without_pyplot():
    from matplotlib.figure import Figure

    log = RequestLog()
    for i in range(20):
        log.append(record(i, outcome=SUCCESS if i % 5 else INVALID_RESPONSE))
    log.append(record(30, environment="sandbox", latency_ms=3.0))
    fig = log.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_title() == "latency per attempt"
    assert isinstance(RequestLog().plot(), Figure)  # an empty log plots too


def test_html_view_has_summary_and_rows_without_secrets():
    log = RequestLog()
    log.append(record(0))
    html = log._repr_html_()
    assert "latency_p50_ms" in html and "2007300" in html
    assert SIGNATURE not in html and TOKEN not in html
    assert "0 attempts" in RequestLog()._repr_html_()


# --- JSON lines ---------------------------------------------------------------------------


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "logs" / "requests.jsonl"
    rows = [
        record(0),
        record(
            1,
            outcome=REFUSED,
            http_status=401,
            response_code="4017300",
            token=None,
            error_type="SnapResponseError",
            error="refused",
        ),
        record(2, tls_ms=3.125),
    ]
    with RequestLog(path) as log:
        log.extend(rows)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    loaded = RequestLog.load(path)
    assert loaded.records == rows
    assert loaded.path is None  # a loaded log does not write back


def test_each_row_is_on_disk_as_soon_as_it_is_appended(tmp_path):
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path, fsync=True)
    log.append(record(0))
    assert len(path.read_text().splitlines()) == 1  # before any close
    log.append(record(1))
    assert len(RequestLog.load(path)) == 2
    log.close()
    log.append(record(2))  # after close: memory only
    assert len(log) == 3 and len(RequestLog.load(path)) == 2


def test_a_crashed_writer_loses_nothing(tmp_path):
    path = tmp_path / "requests.jsonl"
    script = f"""
import os
from datetime import datetime, timezone
from snapbook.log import RequestLog, LogRecord
log = RequestLog({str(path)!r})
for i in range(5):
    log.append(LogRecord(time=datetime.now(timezone.utc), environment="stage", product="payment",
                         endpoint="payment-stage", url="https://x.test/t", attempt=1, outcome="success", latency_ms=float(i)))
os._exit(1)  # a kernel dying: no close, no atexit, no buffer flush
"""
    subprocess.run([sys.executable, "-c", script], check=False)
    loaded = RequestLog.load(path)
    assert [r.latency_ms for r in loaded] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_truncated_last_line_is_skipped_silently(tmp_path):
    path = tmp_path / "requests.jsonl"
    with RequestLog(path) as log:
        log.extend([record(0), record(1)])
    full = json.dumps(record(2).to_json())
    with open(path, "a") as fh:
        fh.write(full[: len(full) // 2])  # cut mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = RequestLog.load(path)
    assert len(loaded) == 2
    # a new writer starts on a fresh line instead of gluing onto the broken one
    with RequestLog(path) as log:
        log.append(record(3))
    with pytest.warns(UserWarning, match="requests.jsonl:3"):  # the cut line is now in the middle
        assert [r.latency_ms for r in RequestLog.load(path)] == [10.0, 11.0, 13.0]


def test_a_broken_middle_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text(
        json.dumps(record(0).to_json()) + "\n{broken\n\n" + json.dumps(record(1).to_json()) + "\n"
    )
    with pytest.warns(UserWarning, match=r"requests.jsonl:2"):
        loaded = RequestLog.load(path)
    assert len(loaded) == 2


def test_unknown_keys_from_newer_versions_are_ignored(tmp_path):
    path = tmp_path / "requests.jsonl"
    data = record(0).to_json() | {"added_in_v2": 1}
    path.write_text(json.dumps(data) + "\n")
    assert RequestLog.load(path).records == [record(0)]


def test_non_finite_floats_are_written_as_null(tmp_path):
    path = tmp_path / "requests.jsonl"
    with RequestLog(path) as log:
        log.append(record(0, latency_ms=float("nan")))
    assert json.loads(path.read_text())["latency_ms"] is None


def test_no_secret_reaches_the_file_or_the_dataframe(tmp_path):
    path = tmp_path / "requests.jsonl"
    with RequestLog(path) as log:
        log.append(record(0))
        df = log.to_dataframe()
    with pd.option_context("display.max_colwidth", None, "display.width", 10_000):
        shown = repr(df) + df.to_string() + df.to_html()
    for text in (path.read_text(), shown):
        assert SIGNATURE not in text and TOKEN not in text
        assert SIGNATURE[:6] in text  # the masked prefix is there


def test_concurrent_appends(tmp_path):
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path)

    def work(n):
        for i in range(300):
            log.append(record(i, attempt=n))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(log) == 2400
    assert len(RequestLog.load(path)) == 2400
