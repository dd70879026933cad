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


def test_a_row_is_compact_and_still_a_frozen_dataclass():
    """Rows are kept by the hundred thousand: slots, no per-row __dict__; replace/asdict/pickle still work."""
    import dataclasses
    import pickle

    entry = JournalEntry(**{**ROW, "notes": ("a",), "doctor": None})
    assert not hasattr(entry, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.path = "/other"  # type: ignore[misc]
    assert dataclasses.replace(entry, path="/other").path == "/other"
    assert dataclasses.asdict(entry)["notes"] == ("a",)
    assert pickle.loads(pickle.dumps(entry)) == entry


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"path": "/caf\u00e9", "client_key": "\u043a\u043b\u044e\u0447", "signature": "abc\u2026def (344 chars)"},
        {"response_message": "\U0001f600 emoji", "notes": ("n\u00f6te", "plain")},
        {"client_key": 12345},  # not text: the careful path
    ],
)
def test_a_row_s_size_counts_each_text_as_sys_getsizeof_does(extra):
    """The size that bounds the journal's memory: every text field and note at sys.getsizeof's count."""
    import sys

    from snapbook.sandbox.journal import _DOCTOR_BYTES, _ROW_OVERHEAD, _TEXT_FIELDS

    entry = JournalEntry(**{**ROW, **extra})
    expected = (
        _ROW_OVERHEAD
        + sum(sys.getsizeof(getattr(entry, name)) for name in _TEXT_FIELDS)
        + sum(sys.getsizeof(n) for n in entry.notes)
        + (_DOCTOR_BYTES if entry.doctor is not None else 0)
    )
    assert entry.size() == expected
