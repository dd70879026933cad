"""A clock for tests that moves only when told to: what the sandbox, the clients and the receiver take as ``clock``."""

from __future__ import annotations

from datetime import datetime, timedelta


class HandClock:
    """Reads ``now``; a test sets it, or moves it with :meth:`advance`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
