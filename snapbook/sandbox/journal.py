"""The sandbox's journal: one row per request received, secrets masked.

Rows are appended from the server thread and read from yours, so :class:`Journal` is
thread-safe. :meth:`Journal.to_dataframe` imports pandas only when called. A row never holds
a full signature or token: both are stored already masked (:func:`snapbook.masking.mask`).

What came from the network is hostile: a row keeps at most a few KB of it (each text field and
note clipped), the journal as a whole at most ``max_bytes``, and every displayed field has its
control characters escaped (:func:`snapbook.masking.printable`), so a ``%0a`` in a path cannot
forge a console line and a ``%1b`` cannot drive the terminal.
"""

from __future__ import annotations

import html
import logging
import operator
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from ..masking import printable
from .frozen import fast_constructor

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["Journal", "JournalEntry", "JournalVerdict", "new_entry"]

#: accepted: a token (or a valid-token answer) was given; rejected: a check failed;
#: fault: an injected fault answered instead; error: the sandbox itself failed (a bug);
#: delivered / undelivered: one notification attempt the sandbox made, answered HTTP 200 or not.
JournalVerdict = Literal["accepted", "rejected", "fault", "error", "delivered", "undelivered"]

#: What a row keeps of each text field, of each note, and how many notes.
MAX_FIELD_CHARS = 512
MAX_NOTE_CHARS = 1000
MAX_NOTES = 16
#: What a pending doctor note may hold (see ``checks.DoctorNote.MAX_SIGNATURE``), counted as such.
_DOCTOR_BYTES = 8 * 1024
#: The fixed cost of a row: the dataclass, its datetime, float and tuple.
_ROW_OVERHEAD = 600
_TEXT_FIELDS = (
    "method", "path", "product", "client_key", "response_code", "response_message",
    "signature", "token", "jti", "service", "external_id", "partner_reference_no",
)  # fmt: skip


#: The text fields of a row as one tuple, read in C.
_texts = operator.attrgetter(*_TEXT_FIELDS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
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
    #: The SNAP service code of a service route ("47", "51", "11"; "52" for notifications).
    service: str = ""
    #: X-EXTERNAL-ID as received (service routes).
    external_id: str = ""
    #: partnerReferenceNo of the body (or originalPartnerReferenceNo of a query, a notification).
    partner_reference_no: str = ""
    #: A note still to be worked out (the signature doctor's reason), run when the row is read.
    doctor: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

    def resolved(self) -> JournalEntry:
        """This entry with its deferred doctor note worked out and added to ``notes``."""
        if self.doctor is None:
            return self
        summary = self.doctor()
        return replace(self, notes=(*self.notes, f"doctor: {summary}") if summary else self.notes, doctor=None)

    def bounded(self) -> JournalEntry:
        """This entry with each text field and note clipped (what :class:`Journal` stores)."""
        try:  # the usual row: every field a short str, found in one C-level pass
            short = max(map(len, _texts(self))) <= MAX_FIELD_CHARS
        except TypeError:  # a field that is not text: the careful path below
            short = False
        changes: dict[str, object] = {} if short else {
            name: _clip(value, MAX_FIELD_CHARS)
            for name in _TEXT_FIELDS
            if isinstance(value := getattr(self, name), str) and len(value) > MAX_FIELD_CHARS
        }
        if len(self.notes) > MAX_NOTES or any(len(n) > MAX_NOTE_CHARS for n in self.notes):
            notes = [_clip(str(n), MAX_NOTE_CHARS) for n in self.notes[:MAX_NOTES]]
            if len(self.notes) > MAX_NOTES:
                notes[-1] = f"… {len(self.notes) - MAX_NOTES + 1} more notes"
            changes["notes"] = tuple(notes)
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]

    def size(self) -> int:
        """About how many bytes of memory this row holds (what ``Journal(max_bytes=...)`` counts)."""
        return _size(_texts(self), self.notes, self.doctor)

    def line(self) -> str:
        """The entry as one log line: time, method, path, client, status, code, latency, notes.

        Every field has its control characters escaped: the line is safe for a terminal.
        """
        status = str(self.http_status) if self.http_status else "---"
        text = (
            f"{_time_text(self.time)} {self.method or '-'} "
            f"{self.path or '-'} client={self.client_key or '-'} "
            f"{status} {self.response_code or '-'} {self.latency_ms:.1f}ms {self.verdict}"
        )
        if self.service:
            text += f" service={self.service}"
        if self.external_id:
            text += f" external_id={self.external_id}"
        if self.partner_reference_no:
            text += f" partnerReferenceNo={self.partner_reference_no}"
        if self.notes:
            text += " | " + "; ".join(self.notes)
        # Escaped once, as a whole: the same characters as escaping each field (the text around
        # them is printable), in one C-level check for the usual, all-printable line.
        return printable(text)


#: ``JournalEntry(...)`` at the speed of a plain dataclass (a row is made per request; see
#: :mod:`snapbook.sandbox.frozen`): the same frozen row.
new_entry = fast_constructor(JournalEntry)


def _size(texts: tuple[str, ...], notes: tuple[str, ...], doctor: object) -> int:
    """:meth:`JournalEntry.size` of a row with these text fields, notes and doctor."""
    try:  # str.__sizeof__ is sys.getsizeof for a str (not a GC object: no header added), a quarter the cost
        text_bytes = sum(map(_str_sizeof, texts)) + sum(map(_str_sizeof, notes))
    except TypeError:  # a field that is not a str
        text_bytes = sum(map(sys.getsizeof, texts)) + sum(map(sys.getsizeof, notes))
    return _ROW_OVERHEAD + text_bytes + (_DOCTOR_BYTES if doctor is not None else 0)


_str_sizeof = str.__sizeof__


def _time_text(time: datetime) -> str:
    """``time.isoformat(timespec="seconds")``, made once per second of rows (about 1 µs each, on every line)."""
    global _last_time_text
    key = (time.second, time.minute, time.hour, time.day, time.month, time.year, time.fold, time.tzinfo)
    last = _last_time_text
    if last[0] == key:
        return last[1]
    text = time.isoformat(timespec="seconds")
    _last_time_text = (key, text)  # one tuple, replaced: safe across threads
    return text


_last_time_text: tuple[tuple[object, ...], str] = ((), "")


class Journal:
    """Every request the sandbox received, oldest first.

    At most ``maxlen`` rows and about ``max_bytes`` of memory are kept (``None``: no limit);
    the oldest rows go first. Each row is clipped (:meth:`JournalEntry.bounded`) on the way in.
    """

    def __init__(self, maxlen: int | None = 100_000, max_bytes: int | None = 64 * 1024 * 1024) -> None:
        from ..errors import ConfigError

        for name, value in (("maxlen", maxlen), ("max_bytes", max_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"Journal {name} must be a positive whole number or None, not {value!r}.",
                    hint="Journal(maxlen=100_000, max_bytes=64 * 1024 * 1024) are the defaults.",
                )
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self._rows: deque[JournalEntry] = deque()
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        # Replaced (copy on write), never mutated: append reads it without copying.
        self._listeners: tuple[Callable[[JournalEntry], None], ...] = ()

    @property
    def nbytes(self) -> int:
        """About how many bytes the kept rows hold (the sum of :meth:`JournalEntry.size`)."""
        with self._lock:
            return self._bytes

    def append(self, entry: JournalEntry) -> None:
        texts = _texts(entry)  # read once for both the bounds and the size (this runs per request)
        notes = entry.notes
        try:
            usual = (
                max(map(len, texts)) <= MAX_FIELD_CHARS
                and len(notes) <= MAX_NOTES
                and (not notes or max(map(len, notes)) <= MAX_NOTE_CHARS)
            )
        except TypeError:  # a field that is not text: bounded() takes the careful path
            usual = False
        if usual:  # nothing to clip: bounded() would return the entry itself
            size = _size(texts, notes, entry.doctor)
        else:
            entry = entry.bounded()
            size = entry.size()
        with self._lock:
            self._rows.append(entry)
            self._sizes.append(size)
            self._bytes += size
            while len(self._rows) > 1 and (
                (self.maxlen is not None and len(self._rows) > self.maxlen)
                or (self.max_bytes is not None and self._bytes > self.max_bytes)
            ):
                self._rows.popleft()
                self._bytes -= self._sizes.popleft()
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
            self._sizes.clear()
            self._bytes = 0

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
                f"<td style='text-align:left'>{html.escape(printable(str(v)))}</td>"
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
