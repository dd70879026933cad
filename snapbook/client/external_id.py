"""X-EXTERNAL-ID: numeric, at most 36 digits, unique per partner per day, across processes and restarts.

A provider answers ``409xx00 Conflict`` to an X-EXTERNAL-ID it has seen that day, so a counter
kept in memory alone is not enough: it starts again at every restart. An id here is 36 digits:

    yyyyMMddHHmmss ffffff  pppppppp  rrrrrrrr
    Jakarta time   µs      pid (8)   random (8)

- the date and time are Asia/Jakarta's, the provider's day, so the day in the id is its day;
- within one process the time part is strictly increasing (a clock stepped back, or two calls in
  one microsecond, take the last value plus 1 µs), so no two ids of a process repeat;
- the pid separates processes running at the same time on one host; a later process that
  reuses a pid starts at a later time;
- the random digits separate hosts (or containers with the same pid) of one partner.

:func:`external_id` is pure (time, pid and random digits given); :class:`ExternalIdGenerator`
adds the clock, the pid and the random source, all injectable.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from ..errors import ConfigError
from ..signing import JAKARTA, Clock, system_clock

__all__ = ["MAX_EXTERNAL_ID_DIGITS", "ExternalIdGenerator", "check_external_id", "external_id"]

#: X-EXTERNAL-ID is String(36), numeric.
MAX_EXTERNAL_ID_DIGITS = 36

_PID_DIGITS = 8
_RANDOM_DIGITS = 8
_DIGITS = re.compile(r"[0-9]{1,36}")


def external_id(at: datetime, pid: int, random_digits: int) -> str:
    """The 36-digit id for Jakarta time ``at`` (to the microsecond), process ``pid`` and ``random_digits``."""
    t = at.astimezone(JAKARTA)
    # Integer formatting, not strftime: this runs once per request, and is several times faster.
    return (
        f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}{t.microsecond:06d}"
        f"{pid % 10**_PID_DIGITS:0{_PID_DIGITS}d}{random_digits % 10**_RANDOM_DIGITS:0{_RANDOM_DIGITS}d}"
    )


def check_external_id(value: str) -> str:
    """``value`` if it is a usable X-EXTERNAL-ID: 1 to 36 ASCII digits."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 60 else f"a value of {len(str(value))} chars"
        raise ConfigError(
            f"X-EXTERNAL-ID {shown} is not 1 to {MAX_EXTERNAL_ID_DIGITS} digits.",
            hint="X-EXTERNAL-ID is numeric, at most 36 digits, and new for every request of the day; "
            "leave it out and snapbook makes one.",
        )
    return value


class ExternalIdGenerator:
    """Makes X-EXTERNAL-IDs (see the module docstring for why they stay unique). Thread-safe.

    ``clock``, ``pid`` (a callable, so a forked child reads its own) and ``rng`` are injectable.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        pid: Callable[[], int] = os.getpid,
        rng: random.Random | None = None,
    ) -> None:
        self._clock: Clock = clock or system_clock
        self._pid = pid
        # Seeded from os.urandom; uniqueness, not secrecy, is the point (a forked child that shares
        # the state has another pid), and it saves a system call per id.
        self._rng = rng if rng is not None else random.Random()
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._last is not None and now <= self._last:
                now = self._last + timedelta(microseconds=1)
            self._last = now
        return external_id(now, self._pid(), self._rng.randrange(10**_RANDOM_DIGITS))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last={None if self._last is None else self._last.isoformat()!r})"
