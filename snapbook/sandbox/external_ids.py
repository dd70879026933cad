"""X-EXTERNAL-ID once per partner and Asia/Jakarta day: the sandbox's replay ledger (step 9)."""

from __future__ import annotations

import threading
from datetime import datetime

__all__ = ["ExternalIds"]

#: Asia/Jakarta is UTC+7 all year (no daylight saving): its calendar day from a POSIX time.
_JAKARTA_OFFSET = 7 * 3600


class ExternalIds:
    """X-EXTERNAL-IDs seen per partner and Asia/Jakarta day (a bounded, thread-safe set).

    Only today's and yesterday's days are kept (a request's day is that of the sandbox clock);
    at most ``max_ids`` in all, the oldest forgotten first.
    """

    def __init__(self, max_ids: int = 200_000) -> None:
        self.max_ids = max_ids
        self._seen: dict[tuple[int, str, str], None] = {}
        self._oldest_day = 2**62  # the day of the oldest entry kept (none yet)
        self._lock = threading.Lock()

    def claim(self, partner_id: str, external_id: str, now: datetime) -> bool:
        """True the first time ``external_id`` is used by ``partner_id`` on ``now``'s Jakarta day."""
        day = int(now.timestamp() + _JAKARTA_OFFSET) // 86400  # days since 1970 on Jakarta's calendar
        key = (day, partner_id, external_id)
        seen = self._seen
        with self._lock:
            if key in seen:
                return False
            seen[key] = None
            self._oldest_day = min(self._oldest_day, day)
            if len(seen) > self.max_ids or self._oldest_day < day - 1:
                while seen and (len(seen) > self.max_ids or next(iter(seen))[0] < day - 1):
                    del seen[next(iter(seen))]
                self._oldest_day = next(iter(seen))[0]
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
