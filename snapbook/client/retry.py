"""When to try again: :class:`RetryPolicy` (transient failures only) and ``Retry-After``."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ..errors import ConfigError
from ..signing import system_clock

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again. Only transient failures are retried.

    Transient means: the connection failed or was dropped, a connect timeout, or HTTP
    429/502/503/504. A read timeout is not retried (the provider may be overloaded and the
    wait would multiply), nor is a refusal, DNS or TLS failure: retrying cannot fix those.
    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))``, times a random factor in
    [0.5, 1] with ``jitter``; a ``Retry-After`` header is honoured exactly, up to
    ``max_retry_after`` seconds (beyond that the client gives up). Each retry is signed again.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: bool = True
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(
                f"RetryPolicy.max_attempts must be an integer >= 1, not {self.max_attempts!r}.",
                hint="Use max_attempts=1 (or retry=None) to switch retries off.",
            )
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigError("RetryPolicy delays must not be negative.", hint="Use seconds >= 0.")
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    @classmethod
    def off(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.max_delay, self.base_delay * (2 ** max(0, retry - 1)))
        if self.jitter:
            delay *= 0.5 + (rng or random).random() / 2
        return delay


#: Three attempts, 0.5 s then 1 s (with jitter), Retry-After honoured up to 60 s.
DEFAULT_RETRY = RetryPolicy()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or system_clock())).total_seconds())
