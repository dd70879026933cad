"""The journal's per-request shortcuts (entry_from, append's one-pass bounds) give the rows the slow paths give."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime, timezone

import pytest

from snapbook.sandbox.journal import MAX_FIELD_CHARS, MAX_NOTES, Journal, JournalEntry, entry_from

ROW = {
    "time": datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc),
    "method": "POST",
    "path": "/api/v1.0/balance-inquiry",
    "product": "",
    "client_key": "MCP00000001",
    "verdict": "accepted",
    "http_status": 200,
    "response_code": "2001100",
    "response_message": "Successful",
    "latency_ms": 0.05,
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"notes": ("a note",), "service": "11", "external_id": "1000000000000001", "token": "eyJh…abcd"},
        {"doctor": lambda: "why", "signature": "AAAA…AAAA"},
    ],
)
def test_entry_from_makes_the_row_init_makes(extra):
    values = {**ROW, **extra}
    fast, slow = entry_from(values), JournalEntry(**values)
    assert fast == slow and type(fast) is JournalEntry
    assert asdict(fast) == asdict(slow)
    assert all(getattr(fast, f.name) == getattr(slow, f.name) for f in fields(JournalEntry))
    with pytest.raises(AttributeError):  # still frozen
        fast.path = "/other"  # type: ignore[misc]


def test_entry_from_refuses_what_init_refuses():
    with pytest.raises(TypeError, match="unexpected keyword"):
        entry_from({**ROW, "no_such_field": 1})
    missing = dict(ROW)
    del missing["path"]
    with pytest.raises(TypeError, match="path"):
        entry_from(missing)


@pytest.mark.parametrize(
    "extra",
    [
        {},  # the usual row: the one-pass path
        {"path": "/" + "p" * (2 * MAX_FIELD_CHARS)},  # a long field: clipped
        {"notes": tuple(f"note {i}" for i in range(MAX_NOTES + 3))},  # too many notes
        {"notes": ("n" * 5000,)},  # a long note
        {"client_key": 12345},  # not text: the careful path
    ],
)
def test_append_stores_the_bounded_row_and_counts_its_size(extra):
    entry = JournalEntry(**{**ROW, **extra})
    journal = Journal()
    journal.append(entry)
    stored = journal.entries(diagnose=False)[0]
    assert stored == entry.bounded()
    assert journal.nbytes == entry.bounded().size()
