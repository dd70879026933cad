"""The sandbox's journal: one row per request received, secrets masked.

Rows are appended from the server thread and read from yours, so :class:`Journal` is
thread-safe. :meth:`Journal.to_dataframe` imports pandas only when called. A row never holds
a full signature or token: both are stored already masked (:func:`snapbook.masking.mask`).
"""

from __future__ import annotations

import html
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["Journal", "JournalEntry", "JournalVerdict"]

#: accepted: a token (or a valid-token answer) was given; rejected: a check failed;
#: fault: an injected fault answered instead; error: the sandbox itself failed (a bug).
JournalVerdict = Literal["accepted", "rejected", "fault", "error"]


@dataclass(frozen=True)
class JournalEntry:
    """One request the sandbox received and how it answered."""

    time: datetime
    method: str
    path: str
    #: "payment", "disbursement" or "snap" for the token routes; "" for the others.
    product: str
    client_key: str
    verdict: JournalVerdict
    #: The HTTP status sent, or 0 when the connection was dropped without an answer.
    http_status: int
    response_code: str
    response_message: str
    latency_ms: float
    #: Non-standard details seen and reasons for a rejection, one sentence each.
    notes: tuple[str, ...] = ()
    #: X-SIGNATURE as received, masked.
    signature: str = ""
    #: The issued (or presented) token, masked.
    token: str = ""
    #: The JWT id of the issued (or presented and valid) token.
    jti: str = ""
    #: A note still to be worked out (the signature doctor's reason), run when the row is read.
    doctor: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

    def resolved(self) -> JournalEntry:
        """This entry with its deferred doctor note worked out and added to ``notes``."""
        if self.doctor is None:
            return self
        summary = self.doctor()
        return replace(self, notes=(*self.notes, f"doctor: {summary}") if summary else self.notes, doctor=None)

    def line(self) -> str:
        """The entry as one log line: time, method, path, client, status, code, latency, notes."""
        status = str(self.http_status) if self.http_status else "---"
        code = self.response_code or "-"
        client = self.client_key or "-"
        text = (
            f"{self.time.isoformat(timespec='seconds')} {self.method or '-'} {self.path or '-'} client={client} "
            f"{status} {code} {self.latency_ms:.1f}ms {self.verdict}"
        )
        if self.notes:
            text += " | " + "; ".join(self.notes)
        return text


class Journal:
    """Every request the sandbox received, oldest first (at most ``maxlen`` rows are kept)."""

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._rows: deque[JournalEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        # Replaced (copy on write), never mutated: append reads it without copying.
        self._listeners: tuple[Callable[[JournalEntry], None], ...] = ()

    def append(self, entry: JournalEntry) -> None:
        with self._lock:
            self._rows.append(entry)
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(entry)
            except Exception:
                logging.getLogger("snapbook.sandbox").exception("journal listener %r failed", listener)

    def subscribe(self, listener: Callable[[JournalEntry], None]) -> Callable[[], None]:
        """Call ``listener(entry)`` for each new entry (from the server thread); returns an unsubscribe function."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    listeners = list(self._listeners)
                    listeners.remove(listener)
                    self._listeners = tuple(listeners)

        return unsubscribe

    def entries(self, *, diagnose: bool = True) -> list[JournalEntry]:
        """A snapshot of the rows, each with its doctor note worked out (once per row).

        The doctor costs about 0.2-100 ms per refused signature; pass ``diagnose=False`` to
        read a large journal of refusals quickly (their notes then lack the ``doctor:`` line).
        """
        with self._lock:
            rows = list(self._rows)
        return [row.resolved() for row in rows] if diagnose else rows

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries())

    def __getitem__(self, index: int) -> JournalEntry:
        with self._lock:
            row = self._rows[index]
        return row.resolved()

    def counts(self) -> dict[str, int]:
        """How many rows per verdict: ``{"accepted": 3, "rejected": 1}``."""
        out: dict[str, int] = {}
        for row in self.entries(diagnose=False):  # a count needs no diagnosis
            out[row.verdict] = out.get(row.verdict, 0) + 1
        return out

    def to_dataframe(self, *, diagnose: bool = True) -> pandas.DataFrame:
        """The rows as a pandas DataFrame, one column per :class:`JournalEntry` field.

        ``notes`` is joined into one ``"; "``-separated string, so it can be searched with
        ``df.notes.str.contains(...)``. ``diagnose`` as for :meth:`entries`.
        """
        import pandas

        columns = [f.name for f in fields(JournalEntry) if f.name != "doctor"]
        records = []
        for row in self.entries(diagnose=diagnose):
            record = asdict(row)
            del record["doctor"]
            record["notes"] = "; ".join(row.notes)
            records.append(record)
        return pandas.DataFrame.from_records(records, columns=columns)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts().items())) or "empty"
        return f"<Journal: {len(self)} requests ({counts})>"

    def _repr_html_(self) -> str:
        with self._lock:
            rows = list(self._rows)[-50:]
        rows = [row.resolved() for row in rows]  # diagnose only what is shown, outside the lock
        head = ("time", "method", "path", "client", "status", "responseCode", "ms", "verdict", "notes")
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align:left'>{html.escape(str(v))}</td>"
                for v in (
                    r.time.isoformat(timespec="seconds"),
                    r.method,
                    r.path,
                    r.client_key,
                    r.http_status or "---",
                    r.response_code,
                    f"{r.latency_ms:.1f}",
                    r.verdict,
                    "; ".join(r.notes),
                )
            )
            + "</tr>"
            for r in rows
        )
        header = "".join(f"<th style='text-align:left'>{h}</th>" for h in head)
        caption = html.escape(repr(self)) + (" (last 50 shown)" if len(self) > 50 else "")
        return f"<table><caption>{caption}</caption><tr>{header}</tr>{body}</table>"
