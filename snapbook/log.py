"""RequestLog: one row per request attempt (token or service call), as a table, a summary, a plot and a file.

Every attempt the client makes, successful or not, becomes one :class:`LogRecord`: when,
where, what came back, how long each phase took, and what went wrong. Records are plain
dataclasses; pandas and matplotlib are imported only when a table or plot is asked for.

With ``path=``, each record is also appended to a JSON-lines file and flushed as it is
written, so a crashed kernel loses nothing; :meth:`RequestLog.load` reads such a file back
and tolerates a last line cut off mid-write. Signatures and tokens are stored masked only.

When the file cannot be written (a full disk), ``append`` still keeps the row in memory and
issues a :class:`~snapbook.errors.LogWriteError` warning saying how many rows wait and where;
the waiting rows are written, in order and exactly once, on the next append or :meth:`flush`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LogWriteError
from .masking import mask, printable

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside snapbook, for the frame that calls ``warnings.warn``.

    A LogWriteError then points at the user's ``get_token()`` / ``request_token()`` / ``flush()``
    line, not at snapbook's internals (Python 3.12's ``skip_file_prefixes`` does this natively).
    """
    frame = sys._getframe(1)  # our caller, the frame that calls warnings.warn: its stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 3

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "INVALID_RESPONSE",
    "OUTCOMES",
    "REFUSED",
    "SUCCESS",
    "TRANSPORT_ERROR",
    "LogRecord",
    "RequestLog",
    "format_clock_offset",
]

SUCCESS = "success"
#: The provider answered with a SNAP refusal (4xx/5xx responseCode).
REFUSED = "refused"
#: No answer: timeout, refused or dropped connection, TLS, DNS.
TRANSPORT_ERROR = "transport-error"
#: An answer that is not a SNAP token response: HTML, non-JSON, missing fields.
INVALID_RESPONSE = "invalid-response"
OUTCOMES = (SUCCESS, REFUSED, TRANSPORT_ERROR, INVALID_RESPONSE)

_MASKED_SUFFIX = " chars)"


@dataclass(slots=True)
class LogRecord:
    """One attempt at a token request. Times are UTC; durations are milliseconds.

    ``signature`` and ``token`` hold masked values only: a raw value given here is masked on
    construction. Phase durations are ``None`` when the phase did not happen (a reused
    connection has no connect or TLS phase) or could not be observed (a mock transport).
    """

    #: When the attempt started (UTC).
    time: datetime
    environment: str
    product: str
    endpoint: str
    url: str
    #: 1 for the first try, 2 for the first retry, ...
    attempt: int
    #: One of :data:`OUTCOMES`.
    outcome: str
    #: From just before sending to the last byte read (or the failure); signing excluded.
    latency_ms: float | None
    http_status: int | None = None
    response_code: str | None = None
    response_message: str | None = None
    #: TCP connect.
    connect_ms: float | None = None
    #: TLS handshake.
    tls_ms: float | None = None
    #: From sending the request to the response headers: the server's think time plus one round trip.
    wait_ms: float | None = None
    #: Reading the response body.
    read_ms: float | None = None
    #: Size of the request body in bytes.
    request_bytes: int | None = None
    #: Size of the response body in bytes.
    response_bytes: int | None = None
    #: The server's X-TIMESTAMP response header, as sent.
    server_timestamp: str | None = None
    #: Server clock minus client clock, in seconds, against the request's midpoint (as measured).
    clock_offset_s: float | None = None
    #: How far ``clock_offset_s`` can be off: the X-TIMESTAMP's resolution (usually 1 s) plus half the round trip.
    clock_offset_uncertainty_s: float | None = None
    #: The snapbook error class name when the attempt failed.
    error_type: str | None = None
    error: str | None = None
    #: True when the client retried after this attempt.
    will_retry: bool = False
    client_key: str | None = None
    #: The X-TIMESTAMP sent.
    timestamp: str | None = None
    #: The X-SIGNATURE sent, masked.
    signature: str | None = None
    #: The access token received, masked.
    token: str | None = None
    #: The SNAP service code (two digits: "73" token, "47" QRIS generate), from the answer's
    #: responseCode, else from the call (its path).
    service_code: str | None = None
    #: The HTTP method sent.
    method: str | None = None
    #: The path sent, query included.
    path: str | None = None
    #: The X-EXTERNAL-ID sent (service calls).
    external_id: str | None = None

    def __post_init__(self) -> None:
        # Cheap guard so no caller can put a whole secret in a row, a file or a DataFrame.
        if self.signature and not self.signature.endswith(_MASKED_SUFFIX):
            self.signature = mask(self.signature)
        if self.token and not self.token.endswith(_MASKED_SUFFIX):
            self.token = mask(self.token)

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCESS

    def to_json(self) -> dict[str, Any]:
        """This record as a JSON-ready dict (time as ISO-8601 UTC)."""
        out = {name: getattr(self, name) for name in _NAMES}
        out["time"] = self.time.astimezone(timezone.utc).isoformat()
        for name in _FLOAT:
            value = out[name]
            if value is not None and not math.isfinite(value):
                out[name] = None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogRecord:
        """The inverse of :meth:`to_json`; unknown keys (from newer versions) are ignored."""
        values = {k: v for k, v in data.items() if k in _NAME_SET}
        values["time"] = datetime.fromisoformat(values["time"])
        return cls(**values)


_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LogRecord))
_NAME_SET = frozenset(_NAMES)
_CATEGORY = ("environment", "product", "endpoint", "outcome", "error_type")
_INT = ("attempt", "http_status", "request_bytes", "response_bytes")
_FLOAT = ("latency_ms", "connect_ms", "tls_ms", "wait_ms", "read_ms", "clock_offset_s", "clock_offset_uncertainty_s")
_BOOL = ("will_retry",)
#: One row's values in column order, as a tuple (one C call per row).
_ROW_VALUES = attrgetter(*_NAMES)


class RequestLog:
    """A thread-safe, append-only log of token request attempts.

    ``RequestLog()`` keeps rows in memory; ``RequestLog(path)`` also appends each row to a
    JSON-lines file, flushed per row (``fsync=True`` also survives a power cut, at a cost).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, fsync: bool = False) -> None:
        self._records: list[LogRecord] = []
        self._lock = threading.Lock()
        self.path = Path(path) if path is not None else None
        self.fsync = fsync
        self._file: Any = None
        # Encoded lines not yet (completely) in the file; the first may be partly written.
        self._pending: deque[bytes] = deque()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = (
                self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            )
            # Unbuffered: each row is one write() we can account for, so a failed write is retried
            # exactly where it stopped (no row lost, none doubled).
            self._file = open(self.path, "ab", buffering=0)
            if needs_newline:  # a previous writer died mid-line: never glue a new row onto it
                self._pending.append(b"\n")

    # --- writing ----------------------------------------------------------------------

    def append(self, record: LogRecord) -> None:
        """Add one row (and write it to the file when the log has a path).

        A row that cannot be written (``OSError``: disk full, quota, I/O error) stays in memory and
        in :attr:`pending`; a :class:`~snapbook.errors.LogWriteError` warning says so. Never raises
        for a write failure: the caller's request already happened.
        """
        line = None
        if self._file is not None:
            line = (json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._records.append(record)
            if line is not None and self._file is not None:
                self._pending.append(line)
                failure = self._drain()
        if line is not None and failure is not None:
            self._warn(failure)

    @property
    def pending(self) -> int:
        """Rows kept in memory that are not (completely) in the file yet."""
        with self._lock:
            return sum(1 for line in self._pending if line != b"\n")

    def flush(self) -> bool:
        """Write the rows still waiting (after a failed write); True when none is left.

        Warns :class:`~snapbook.errors.LogWriteError` again when the file still cannot be written.
        """
        with self._lock:
            failure = self._drain() if self._file is not None else None
        if failure is not None:
            self._warn(failure)
        return failure is None and not self._pending

    def _drain(self) -> OSError | None:
        """Write pending lines in order, resuming a partly written one; the error that stopped it, if any."""
        try:
            while self._pending:
                line = self._pending[0]
                written = self._file.write(line)
                if written is None:  # a non-blocking file that would block: try again later
                    return OSError("the log file is not ready for writing")
                if written < len(line):
                    self._pending[0] = line[written:]
                    continue
                self._pending.popleft()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            return exc
        return None

    def _warn(self, exc: OSError) -> None:
        waiting = self.pending
        reason = printable(exc.strerror or str(exc) or type(exc).__name__, 120)
        warnings.warn(
            LogWriteError(
                f"Could not write {waiting} request-log row(s) to {self.path} ({reason}); "
                "they are kept in memory and will be written, in order, on the next append or flush().",
                hint="Free disk space (or fix the file's permissions), then call log.flush(); "
                "log.records holds every row meanwhile.",
            ),
            stacklevel=_caller_stacklevel(),
        )

    def extend(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            self.append(record)

    def close(self) -> None:
        """Close the file (rows stay in memory). Appending after close keeps memory only.

        Rows still waiting to be written are tried once more; a failure warns
        :class:`~snapbook.errors.LogWriteError` (the rows remain in :attr:`records`).
        """
        with self._lock:
            failure = self._drain() if self._file is not None else None
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    failure = failure or exc
                self._file = None
        if failure is not None:
            self._warn(failure)

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RequestLog:
        """A log holding the rows of a JSON-lines file (in memory; the file is not reopened).

        A last line cut off mid-write (a crash) is skipped silently; any other unreadable
        line is skipped with a warning naming its line number.
        """
        log = cls()
        p = Path(path)
        lines = p.read_text(encoding="utf-8").split("\n")
        last = max((i for i, text in enumerate(lines) if text.strip()), default=-1)
        for number, text in enumerate(lines):
            if not text.strip():
                continue
            try:
                record = LogRecord.from_json(json.loads(text))
            except (ValueError, TypeError, KeyError) as exc:
                if number != last:
                    warnings.warn(f"{p}:{number + 1}: skipped an unreadable log line ({exc}).", stacklevel=2)
                continue
            log._records.append(record)
        return log

    @property
    def records(self) -> list[LogRecord]:
        """A copy of the rows, oldest first."""
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> LogRecord:
        return self._records[index]

    def clear(self) -> None:
        """Forget the rows in memory (the file, if any, keeps them)."""
        with self._lock:
            self._records.clear()

    # --- tables -----------------------------------------------------------------------

    def to_dataframe(self) -> pd.DataFrame:
        """All rows as a DataFrame with proper dtypes: datetime64[ns, UTC], Int64, float64, category, string."""
        import numpy as np
        import pandas as pd

        rows = self.records
        # One pass over the rows into an (n, columns) object matrix: reading every row once is
        # about 4x faster than one pass per column, which walks 100,000 scattered objects 31 times.
        matrix = np.fromiter(
            chain.from_iterable(map(_ROW_VALUES, rows)), dtype=object, count=len(rows) * len(_NAMES)
        ).reshape(len(rows), len(_NAMES))
        data: dict[str, Any] = {}
        for index, name in enumerate(_NAMES):
            values = matrix[:, index]  # a view; each conversion below makes its own array
            if name == "time":
                data[name] = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
            elif name in _CATEGORY:
                # A list, as before: pandas infers a category's dtype from a list differently
                # than from an object array (all None gives float64 categories, not object).
                data[name] = pd.Categorical(values.tolist())
            elif name in _INT:
                # A list too: without None, numpy reads it straight into int64 (4x faster).
                data[name] = pd.array(values.tolist(), dtype="Int64")
            elif name in _FLOAT:
                data[name] = values.astype("float64")
            elif name in _BOOL:
                data[name] = values.astype(bool)
            else:
                data[name] = pd.array(values, dtype="string")
        if not rows:
            data["time"] = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
        return pd.DataFrame(data, copy=False)

    def summary(self, by: str | list[str] = "environment") -> pd.DataFrame:
        """Per environment (or ``by`` any other column, e.g. ``"endpoint"``): attempts, successes,
        success rate, p50/p90/p99 latency in ms over all attempts, and the median clock offset."""
        import pandas as pd

        keys = [by] if isinstance(by, str) else list(by)
        columns = [
            "attempts",
            "successes",
            "success_rate",
            "latency_p50_ms",
            "latency_p90_ms",
            "latency_p99_ms",
            "clock_offset_s",
            "clock_offset_uncertainty_s",
            "clock_offset",
        ]
        df = self.to_dataframe()
        if df.empty:
            index = (
                pd.MultiIndex.from_arrays([[]] * len(keys), names=keys)
                if len(keys) > 1
                else pd.Index([], name=keys[0])
            )
            return pd.DataFrame(columns=columns, index=index)
        df["_ok"] = df["outcome"] == SUCCESS
        grouped = df.groupby(keys if len(keys) > 1 else keys[0], observed=True)
        latency = grouped["latency_ms"]
        out = pd.DataFrame(
            {
                "attempts": grouped.size(),
                "successes": grouped["_ok"].sum(),
                "success_rate": grouped["_ok"].mean(),
                "latency_p50_ms": latency.quantile(0.50),
                "latency_p90_ms": latency.quantile(0.90),
                "latency_p99_ms": latency.quantile(0.99),
                "clock_offset_s": grouped["clock_offset_s"].median(),
                "clock_offset_uncertainty_s": grouped["clock_offset_uncertainty_s"].max(),
            }
        )
        # As text with its resolution ("0 s ± 1 s"): a whole-second X-TIMESTAMP makes -0.7 s mean nothing.
        out["clock_offset"] = [
            format_clock_offset(None if pd.isna(o) else o, None if pd.isna(u) else u)
            for o, u in zip(out["clock_offset_s"], out["clock_offset_uncertainty_s"])
        ]
        if len(keys) == 1:
            out.index = pd.Index(out.index.astype(str), name=keys[0])
        return out[columns]

    # --- plots ------------------------------------------------------------------------

    def plot(self, *, bins: int = 30) -> Figure:
        """Latency over time (failures marked x) and its distribution, per environment.

        Returns a matplotlib Figure built without pyplot, so it works headless and never
        opens a window; Jupyter displays it inline.
        """
        from matplotlib.figure import Figure

        df = self.to_dataframe()
        fig = Figure(figsize=(11, 4), layout="constrained")
        over_time, distribution = fig.subplots(1, 2, width_ratios=[3, 2])
        if df.empty:
            for ax in (over_time, distribution):
                ax.text(0.5, 0.5, "no requests logged yet", ha="center", va="center", transform=ax.transAxes)
        for env, group in df.groupby("environment", observed=True):
            ok = group["outcome"] == SUCCESS
            line = over_time.plot(group["time"][ok], group["latency_ms"][ok], "o", ms=3, label=str(env))[0]
            if (~ok).any():
                over_time.plot(
                    group["time"][~ok],
                    group["latency_ms"][~ok].fillna(0),
                    "x",
                    color=line.get_color(),
                    ms=6,
                    label=f"{env} (failed)",
                )
            values = group["latency_ms"].dropna()
            if len(values):
                distribution.hist(values, bins=bins, alpha=0.6, color=line.get_color(), label=str(env))
        over_time.set_title("latency per attempt")
        over_time.set_ylabel("ms")
        over_time.tick_params(axis="x", labelrotation=30)
        distribution.set_title("latency distribution")
        distribution.set_xlabel("ms")
        distribution.set_ylabel("attempts")
        if not df.empty:
            over_time.legend(fontsize="small")
        return fig

    # --- display ----------------------------------------------------------------------

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        ok = sum(1 for r in self._records if r.outcome == SUCCESS)
        return f"RequestLog({len(self)} attempts, {ok} successful{where})"

    def _repr_html_(self) -> str:
        import html

        head = f"<p><b>{html.escape(repr(self))}</b></p>"
        if not self._records:
            return head
        shown = [
            "time",
            "environment",
            "attempt",
            "outcome",
            "http_status",
            "response_code",
            "latency_ms",
            "error_type",
        ]
        tail = self.to_dataframe()[shown].tail(10)
        return (
            head
            + self.summary().to_html(float_format="{:.1f}".format)
            + "<p>last attempts</p>"
            + tail.to_html(index=False, na_rep="", float_format="{:.1f}".format)
        )


def format_clock_offset(offset: timedelta | float | None, uncertainty: timedelta | float | None) -> str:
    """``"0 s ± 1 s"``: a clock offset with the resolution it really has (empty when unknown).

    ``uncertainty`` is half the width of the possible range (half the X-TIMESTAMP resolution plus
    half the round trip; 0.5 s assumed when None). A whole-second X-TIMESTAMP is truncated, so
    the raw offset is up to 1 s too low: the centre of the range is shown, rounded to whole
    seconds, and -0.7 s measured on one host reads ``0 s ± 1 s``, not a false ``-0.7 s``.
    """
    if offset is None:
        return ""
    seconds = offset.total_seconds() if isinstance(offset, timedelta) else float(offset)
    spread = 0.5 if uncertainty is None else (
        uncertainty.total_seconds() if isinstance(uncertainty, timedelta) else float(uncertainty)
    )
    if not (math.isfinite(seconds) and math.isfinite(spread)) or abs(seconds) > 1e12 or spread > 1e12:
        return ""
    if spread >= 0.5:  # a whole-second timestamp
        centre = round(seconds + 0.5)
        return f"{'0' if centre == 0 else f'{centre:+d}'} s ± {max(1, math.ceil(spread - 1e-9))} s"
    return f"{seconds:+.3f} s ± {spread:.3f} s"


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
