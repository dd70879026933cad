"""Fault injection: the sandbox misbehaving on purpose, the way real providers sometimes do.

:class:`Faults` says what to inject; :class:`FaultInjector` draws one :class:`FaultDecision`
per token request from a seeded random generator, so the same seed and the same sequence of
requests give the same faults every time (tests and notebooks stay repeatable).

Each request draws, in this order: the added delay (``latency`` plus a uniform share of
``jitter``, plus ``slow_seconds``), then one outcome: a 429 (with ``Retry-After``), a 500,
a 503, a 504, a dropped connection, or none (the request is then checked and answered
normally). The rates are shares of requests in [0, 1] and may add up to at most 1.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

__all__ = ["FAULT_KINDS", "FaultDecision", "FaultInjector", "Faults"]

FaultKind = Literal["429", "500", "503", "504", "drop"]

#: The outcomes a fault can replace an answer with, in the order the rates are drawn.
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "500", "503", "504", "drop")


@dataclass(frozen=True)
class Faults:
    """What the sandbox should get wrong on purpose (all off by default).

    ``latency`` and ``jitter`` add ``latency + uniform(0, jitter)`` seconds to every token
    answer; ``slow_seconds`` adds a further fixed delay, meant to exceed a client's timeout.
    ``rate_*`` are the shares of token requests answered with that failure instead of being
    checked; ``rate_drop`` closes the connection without any answer. ``seed`` makes the
    sequence repeatable.
    """

    latency: float = 0.0
    jitter: float = 0.0
    rate_429: float = 0.0
    retry_after: int = 1
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_504: float = 0.0
    rate_drop: float = 0.0
    slow_seconds: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latency", "jitter", "slow_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
                raise ConfigError(
                    f"Faults.{name} must be a number of seconds from 0 to 3600, not {value!r}.",
                    hint="Use 0 to turn it off, e.g. Faults(latency=0.2, jitter=0.1).",
                )
        for name in self._rate_names():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"Faults.{name} must be a share between 0 and 1, not {value!r}.",
                    hint="0.1 means one request in ten, on average.",
                )
        total = sum(getattr(self, name) for name in self._rate_names())
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"The fault rates add up to {total:g}, more than 1.",
                hint="Each request gets at most one fault; lower some rates.",
            )
        if (
            not isinstance(self.retry_after, int)
            or isinstance(self.retry_after, bool)
            or not 0 <= self.retry_after <= 86_400
        ):
            raise ConfigError(
                f"Faults.retry_after must be a whole number of seconds from 0 to 86400, "
                f"not {self.retry_after!r}.",
                hint="Retry-After is sent as an integer number of seconds.",
            )

    @staticmethod
    def _rate_names() -> tuple[str, ...]:
        return ("rate_429", "rate_500", "rate_503", "rate_504", "rate_drop")

    @property
    def active(self) -> bool:
        """True when any fault or delay is configured."""
        return any(getattr(self, n) for n in (*self._rate_names(), "latency", "jitter", "slow_seconds"))

    def describe(self) -> str:
        """One line for people: ``latency 0.2 s ±0.1 s, 429 10% (Retry-After 1 s), seed 0``."""
        parts: list[str] = []
        if self.latency or self.jitter:
            parts.append(f"latency {self.latency:g} s" + (f" +0..{self.jitter:g} s" if self.jitter else ""))
        if self.slow_seconds:
            parts.append(f"slow answers +{self.slow_seconds:g} s")
        for kind, name in zip(FAULT_KINDS, self._rate_names()):
            rate = getattr(self, name)
            if rate:
                label = "dropped connections" if kind == "drop" else kind
                extra = f" (Retry-After {self.retry_after} s)" if kind == "429" else ""
                parts.append(f"{label} {rate:.0%}{extra}")
        if not parts:
            return "no faults"
        return ", ".join(parts) + f", seed {self.seed}"


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: wait ``delay`` seconds, then answer normally or with ``kind``."""

    delay: float = 0.0
    kind: FaultKind | None = None
    #: True when ``delay`` includes ``slow_seconds`` (the answer is meant to be too late).
    slow: bool = False


class FaultInjector:
    """Draws a :class:`FaultDecision` per request from ``faults``, with its own seeded generator."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        # (faults, faults.active), worked out again only if ``faults`` is replaced (it is frozen).
        self._active_for: tuple[Faults | None, bool] = (None, False)

    def decide(self) -> FaultDecision:
        f = self.faults
        checked = self._active_for
        if checked[0] is not f:
            checked = self._active_for = (f, f.active)
        if not checked[1]:
            return _NO_FAULT
        with self._lock:
            # Always draw both numbers, so changing one rate does not shift the other draws.
            jitter_draw = self._rng.random()
            outcome_draw = self._rng.random()
        delay = f.latency + f.jitter * jitter_draw + f.slow_seconds
        kind: FaultKind | None = None
        edge = 0.0
        for candidate, name in zip(FAULT_KINDS, Faults._rate_names()):
            edge += getattr(f, name)
            if outcome_draw < edge:
                kind = candidate
                break
        return FaultDecision(delay=delay, kind=kind, slow=f.slow_seconds > 0)


#: The decision when no fault is configured (frozen, so one instance serves every request).
_NO_FAULT = FaultDecision()
