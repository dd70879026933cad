"""Journal.append's one-pass bounds and size (the per-request path) give the rows and sizes the careful path gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from snapbook.sandbox.journal import MAX_FIELD_CHARS, MAX_NOTES, Journal, JournalEntry, new_entry

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


@pytest.mark.parametrize(
    "extra",
    [
        {},  # every optional field left to its default
        {"notes": ("a", "b"), "signature": "abcdef… (344 chars)", "token": "eyJhbG… (300 chars)", "jti": "j" * 32,
         "service": "47", "external_id": "123", "partner_reference_no": "P1", "doctor": lambda: "why"},
    ],
)
def test_new_entry_makes_the_same_frozen_row_as_the_constructor(extra):
    """The per-request constructor (a not-frozen twin whose class is swapped) gives a JournalEntry in every respect."""
    import dataclasses
    import pickle

    made, usual = new_entry(**ROW, **extra), JournalEntry(**ROW, **extra)
    assert type(made) is JournalEntry
    assert made == usual and hash(made) == hash(usual) and repr(made) == repr(usual)
    assert all(getattr(made, f.name) is getattr(usual, f.name) for f in dataclasses.fields(JournalEntry))
    assert not hasattr(made, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.path = "/other"  # type: ignore[misc]
    assert dataclasses.replace(made, path="/other").path == "/other"
    if "doctor" not in extra:
        assert pickle.loads(pickle.dumps(made)) == usual


def test_new_entry_refuses_what_the_constructor_refuses():
    with pytest.raises(TypeError):
        new_entry(**{k: v for k, v in ROW.items() if k != "path"})  # a field without a default missing
    with pytest.raises(TypeError):
        new_entry(**ROW, colour="blue")  # not a field


def test_a_line_starts_with_its_own_second():
    """The line's time text is made once per second and kept: a row that differs only in its year, day,
    zone or fold (each right after the one before it) never reuses the text of another second."""
    utc, wib = timezone.utc, timezone(timedelta(hours=7))
    times = [
        datetime(2026, 11, 30, 5, 0, 0, 1, tzinfo=utc),
        datetime(2026, 11, 30, 5, 0, 0, 999_999, tzinfo=utc),  # the same second: the same text
        datetime(2026, 11, 30, 5, 0, 0, 5, tzinfo=wib),  # only the zone differs
        datetime(2026, 11, 30, 5, 0, 0, 5),  # naive
        datetime(2026, 11, 30, 5, 0, 0, 5, fold=1),
        datetime(2025, 11, 30, 5, 0, 0, tzinfo=wib),  # only the year differs
        datetime(2025, 11, 29, 5, 0, 0, tzinfo=wib),  # the day
        datetime(2025, 10, 29, 5, 0, 0, tzinfo=wib),  # the month
        datetime(2025, 10, 29, 6, 0, 0, tzinfo=wib),  # the hour
        datetime(2025, 10, 29, 6, 1, 0, tzinfo=wib),  # the minute
        datetime(2025, 10, 29, 6, 1, 1, tzinfo=wib),  # the second
    ]
    for when in times:
        assert JournalEntry(**{**ROW, "time": when}).line().startswith(when.isoformat(timespec="seconds") + " POST ")
