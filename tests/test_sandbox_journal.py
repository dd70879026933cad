"""Journal.append's one-pass bounds and size (the per-request path) give the rows and sizes the careful path gives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from snapbook.sandbox.journal import MAX_FIELD_CHARS, MAX_NOTES, Journal, JournalEntry

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


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"notes": ("a", "b"), "signature": "abc…", "token": "eyJ…", "jti": "j", "service": "11"},
        {"doctor": lambda: "why", "external_id": "123", "partner_reference_no": "ref"},
    ],
)
def test_of_makes_the_entry_the_generated_init_makes(extra):
    """JournalEntry.of fills the frozen entry in one step: equal fields, defaults and type to __init__'s."""
    values = {**ROW, **extra}
    fast, slow = JournalEntry.of(values), JournalEntry(**values)
    assert type(fast) is JournalEntry and fast == slow and vars(fast) == vars(slow)
    assert fast.doctor is slow.doctor and hash(fast.notes) == hash(slow.notes)
    with pytest.raises(AttributeError):  # still frozen
        fast.path = "/other"  # type: ignore[misc]
    values["path"] = "/changed"  # the entry keeps its own fields, not the caller's dict
    assert fast.path == ROW["path"]


def test_of_refuses_unknown_and_missing_fields_as_init_does():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        JournalEntry.of({**ROW, "colour": "red"})
    without_verdict = {k: v for k, v in ROW.items() if k != "verdict"}
    with pytest.raises(TypeError, match="verdict"):
        JournalEntry.of(without_verdict)
