"""RequestLog: one row per token request attempt, as a table, a summary, a plot and a file.

Every attempt the client makes, successful or not, becomes one :class:`LogRecord`: when,
where, what came back, how long each phase took, and what went wrong. Records are plain
dataclasses; pandas and matplotlib are imported only when a table or plot is asked for.

With ``path=``, each record is also appended to a JSON-lines file and flushed as it is
written, so a crashed kernel loses nothing; :meth:`RequestLog.load` reads such a file back
and tolerates a last line cut off mid-write. Signatures and tokens are stored masked only.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .masking import mask

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
    #: Server clock minus client clock, in seconds (resolution about one second).
    clock_offset_s: float | None = None
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
_FLOAT = ("latency_ms", "connect_ms", "tls_ms", "wait_ms", "read_ms", "clock_offset_s")
_BOOL = ("will_retry",)


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
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = (
                self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            )
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:  # a previous writer died mid-line: never glue a new row onto it
                self._file.write("\n")
                self._file.flush()

    # --- writing ----------------------------------------------------------------------

    def append(self, record: LogRecord) -> None:
        """Add one row (and write it to the file, flushed, when the log has a path)."""
        line = None
        if self._file is not None:
            line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._records.append(record)
            if line is not None and self._file is not None:
                self._file.write(line)
                self._file.flush()
                if self.fsync:
                    os.fsync(self._file.fileno())

    def extend(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            self.append(record)

    def close(self) -> None:
        """Close the file (rows stay in memory). Appending after close keeps memory only."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

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
        data: dict[str, Any] = {}
        for name in _NAMES:
            values = list(map(attrgetter(name), rows))  # column-wise: no per-row dicts
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
            }
        )
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


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
