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


# --- to_dataframe: the same frame as the column-by-column build it replaced -------------------


def _dataframe_column_by_column(rows: list[LogRecord]) -> pd.DataFrame:
    """``RequestLog.to_dataframe`` as it was up to 987d9c7 (one pass over the rows per column), kept as the reference."""
    from operator import attrgetter

    import numpy as np

    from snapbook.log import _BOOL, _CATEGORY, _FLOAT, _INT, _NAMES

    data = {}
    for name in _NAMES:
        values = list(map(attrgetter(name), rows))
        if name == "time":
            data[name] = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
        elif name in _CATEGORY:
            data[name] = pd.Categorical(values)
        elif name in _INT:
            data[name] = pd.array(values, dtype="Int64")
        elif name in _FLOAT:
            data[name] = np.array(values, dtype="float64")
        elif name in _BOOL:
            data[name] = np.array(values, dtype=bool)
        else:
            data[name] = pd.array(values, dtype="string")
    if not rows:
        data["time"] = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
    return pd.DataFrame(data, copy=False)


def assert_same_frame(new: pd.DataFrame, old: pd.DataFrame) -> None:
    """Same columns in the same order, same dtypes (categories' own dtype included), same values and missing values."""
    pd.testing.assert_frame_equal(new, old, check_exact=True, check_categorical=True, check_column_type=True)
    assert list(new.columns) == list(old.columns)
    for name in old.columns:
        assert repr(new[name].dtype) == repr(old[name].dtype), name
        assert new[name].isna().tolist() == old[name].isna().tolist(), name
        if isinstance(old[name].dtype, pd.CategoricalDtype):
            # CategoricalDtype equality ignores the categories' dtype (float64 vs object when all are None).
            pd.testing.assert_index_equal(new[name].cat.categories, old[name].cat.categories, exact=True)
            assert new[name].cat.codes.tolist() == old[name].cat.codes.tolist(), name


def mixed_rows() -> list[LogRecord]:
    """Token and service rows, every outcome, retries, missing phases, non-UTC and non-finite values."""
    wib = timezone(timedelta(hours=7))
    return [
        record(0),
        record(1, outcome=REFUSED, http_status=401, response_code="4017300", response_message="Unauthorized. Invalid signature", token=None),
        record(
            2, outcome=TRANSPORT_ERROR, latency_ms=None, http_status=None, response_code=None, response_message=None,
            connect_ms=None, wait_ms=None, read_ms=None, response_bytes=None, server_timestamp=None, clock_offset_s=None,
            error_type="ConnectionFailedError", error="connection refused", will_retry=True, token=None, attempt=1,
        ),
        record(3, attempt=2, time=datetime(2026, 1, 20, 10, 0, 3, 123456, tzinfo=wib), tls_ms=12.5),
        record(4, outcome=INVALID_RESPONSE, http_status=200, response_code=None, error_type="InvalidResponseError",
               error="not JSON: '<html>\\x1b[31m'", token=None, latency_ms=float("inf"), clock_offset_s=float("nan")),
        record(5, product="senmo", endpoint="senmo-stage", url="https://senmo-stage.example/v1.0/balance-inquiry",
               response_code="2001100", service_code="11", method="POST", path="/v1.0/balance-inquiry",
               external_id="41807553358950093184", clock_offset_uncertainty_s=0.503, token=None),
        record(6, product="payment", endpoint="payment-stage", service_code="47", method="POST",
               path="/v1.0/qr/qr-mpm-generate?x=1", external_id="1", response_code="4044701", outcome=REFUSED,
               http_status=404, error_type="SnapRefusal", error="Transaction Not Found"),
        record(7, environment="production", endpoint="payment-production", request_bytes=None, response_bytes=0,
               latency_ms=0.0, connect_ms=-0.0, client_key=None, timestamp=None, signature=None, token=None),
    ]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(mixed_rows(), id="mixed"),
        pytest.param([record(i) for i in range(5)], id="successes-only"),  # error_type all None
        pytest.param(mixed_rows()[2:3], id="one-transport-error"),
        pytest.param(mixed_rows()[5:6], id="one-service-row"),
        pytest.param([], id="empty"),
    ],
)
def test_dataframe_is_the_same_as_the_column_by_column_build(rows):
    log = RequestLog()
    log.extend(rows)
    assert_same_frame(log.to_dataframe(), _dataframe_column_by_column(rows))


def test_dataframe_matches_the_column_by_column_build_on_generated_rows():
    """Any mix of present and missing values, of the types LogRecord declares, gives the same frame."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from snapbook.log import OUTCOMES

    text = st.text(max_size=12)
    maybe_text = st.none() | text
    maybe_float = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)
    maybe_int = st.none() | st.integers(0, 2**62)
    times = st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5, minutes=-30))]),
    )
    rows = st.builds(
        LogRecord,
        time=times,
        environment=st.sampled_from(["stage", "production", "sandbox"]),
        product=st.sampled_from(["payment", "senmo"]),
        endpoint=text,
        url=text,
        attempt=st.integers(1, 5),
        outcome=st.sampled_from(OUTCOMES),
        latency_ms=maybe_float,
        http_status=maybe_int,
        response_code=maybe_text,
        response_message=maybe_text,
        connect_ms=maybe_float,
        tls_ms=maybe_float,
        wait_ms=maybe_float,
        read_ms=maybe_float,
        request_bytes=maybe_int,
        response_bytes=maybe_int,
        server_timestamp=maybe_text,
        clock_offset_s=maybe_float,
        clock_offset_uncertainty_s=maybe_float,
        error_type=st.none() | st.sampled_from(["ConnectionFailedError", "DeadlineExceeded"]),
        error=maybe_text,
        will_retry=st.booleans(),
        client_key=maybe_text,
        timestamp=maybe_text,
        signature=maybe_text,
        token=maybe_text,
        service_code=maybe_text,
        method=st.none() | st.sampled_from(["GET", "POST"]),
        path=maybe_text,
        external_id=maybe_text,
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(rows, max_size=6))
    def check(generated):
        log = RequestLog()
        log.extend(generated)
        assert_same_frame(log.to_dataframe(), _dataframe_column_by_column(generated))

    check()
