"""Paired measurement for noisy machines: alternate A and B, repeat, take medians.

Every figure in the table is ``median(A) / median(B)`` of two things measured in the same
run, in alternating rounds (AB, BA, AB, ...: the order flips each round so neither side
always runs first, on a warmer cache or a quieter neighbour). We also keep the per-round
paired ratios ``A_i / B_i`` and report their interquartile range: when that range is wide,
the machine was noisy and the ratio should be read with care.

Times are ``time.perf_counter_ns``; values are stored in base units (seconds per operation,
or requests per second) and formatted only when the table is printed.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

__all__ = [
    "Row",
    "Stat",
    "compare",
    "compare_ops",
    "format_table",
    "per_op",
    "single",
    "timed",
]

#: One batch of work: runs it and returns the value measured for that batch.
Batch = Callable[[], float]


@dataclass(frozen=True)
class Stat:
    """A sample summarised: median, quartiles, min, count, and the unit of the values."""

    median: float
    q1: float
    q3: float
    min: float
    n: int
    unit: str  # "s" (seconds, per operation) or "req/s" or "count" or "x"

    @classmethod
    def of(cls, values: Iterable[float], unit: str) -> Stat:
        v = sorted(values)
        if not v:
            raise ValueError("no values")
        q1, q3 = _quartiles(v)
        return cls(statistics.median(v), q1, q3, v[0], len(v), unit)


def _quartiles(v: list[float]) -> tuple[float, float]:
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


@dataclass
class Row:
    """One line of the results table."""

    area: str
    figure: str
    a_label: str = ""
    b_label: str = ""
    a: Stat | None = None
    b: Stat | None = None
    #: median(A) / median(B).
    ratio: float | None = None
    #: Median and interquartile range of the per-round paired ratios A_i / B_i.
    ratio_paired: float | None = None
    ratio_q1: float | None = None
    ratio_q3: float | None = None
    #: "<= 1.05", ">= 0.8", "< 50 us", or "" for an informative figure.
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    def check(self, target: str) -> Row:
        """Set ``target`` (``<= x`` / ``>= x`` on the ratio) and whether it is met."""
        self.target = target
        op, _, value = target.partition(" ")
        if self.ratio is None or not math.isfinite(self.ratio):
            self.met = None
        elif op == "<=":
            self.met = self.ratio <= float(value)
        elif op == ">=":
            self.met = self.ratio >= float(value)
        return self


def compare(
    area: str,
    figure: str,
    a: Batch,
    b: Batch,
    *,
    a_label: str,
    b_label: str,
    unit: str = "s",
    rounds: int = 9,
    warmup: int = 1,
    budget_s: float = 20.0,
    min_rounds: int = 3,
) -> Row:
    """Run ``a`` and ``b`` alternately for ``rounds`` rounds (after ``warmup`` unrecorded ones).

    Stops early, after at least ``min_rounds``, once ``budget_s`` seconds have passed, so a
    slow machine cannot make a run unbounded.
    """
    for i in range(warmup):
        a()
        b()
    av: list[float] = []
    bv: list[float] = []
    start = time.monotonic()
    for i in range(rounds):
        if i % 2 == 0:
            x = a()
            y = b()
        else:
            y = b()
            x = a()
        av.append(x)
        bv.append(y)
        if i + 1 >= min_rounds and time.monotonic() - start > budget_s:
            break
    return paired_row(area, figure, av, bv, a_label=a_label, b_label=b_label, unit=unit)


def compare_ops(
    area: str,
    figure: str,
    a: Callable[[], object],
    b: Callable[[], object],
    *,
    a_label: str,
    b_label: str,
    n: int,
    rounds: int = 9,
    budget_s: float = 20.0,
    min_rounds: int = 3,
) -> Row:
    """Interleave single calls, A B B A A B ..., timing each; for fast operations on noisy machines.

    A burst of noise then hits both sides alike and only a few samples, which the median
    ignores. Each side's figure is the median of all its per-call times; the paired ratios
    (for the IQR) are per round, median(A in round) / median(B in round). Both sides carry the
    same timer overhead (tens of ns), which pulls the ratio very slightly towards 1.
    """
    clock = time.perf_counter_ns
    a(), b()  # warm up
    all_a: list[int] = []
    all_b: list[int] = []
    pairs: list[float] = []
    start = time.monotonic()
    for r in range(rounds):
        gc.collect()
        ra: list[int] = []
        rb: list[int] = []
        for i in range(n):
            if (i + r) % 2 == 0:
                t0 = clock(); a(); t1 = clock(); b(); t2 = clock()
                ra.append(t1 - t0)
                rb.append(t2 - t1)
            else:
                t0 = clock(); b(); t1 = clock(); a(); t2 = clock()
                rb.append(t1 - t0)
                ra.append(t2 - t1)
        all_a += ra
        all_b += rb
        pairs.append(statistics.median(ra) / statistics.median(rb))
        if r + 1 >= min_rounds and time.monotonic() - start > budget_s:
            break
    sa = Stat.of((x / 1e9 for x in all_a), "s")
    sb = Stat.of((x / 1e9 for x in all_b), "s")
    q1, q3 = _quartiles(sorted(pairs))
    return Row(
        area=area,
        figure=figure,
        a_label=a_label,
        b_label=b_label,
        a=sa,
        b=sb,
        ratio=sa.median / sb.median,
        ratio_paired=statistics.median(pairs),
        ratio_q1=q1,
        ratio_q3=q3,
        extra={"rounds": len(pairs), "calls_per_side": len(all_a), "round_ratios": pairs},
    )


def paired_row(
    area: str, figure: str, av: list[float], bv: list[float], *, a_label: str, b_label: str, unit: str = "s"
) -> Row:
    """A row from already measured paired samples (A_i and B_i from the same round)."""
    sa, sb = Stat.of(av, unit), Stat.of(bv, unit)
    pairs = sorted(x / y for x, y in zip(av, bv) if y)
    q1, q3 = _quartiles(pairs) if pairs else (None, None)
    return Row(
        area=area,
        figure=figure,
        a_label=a_label,
        b_label=b_label,
        a=sa,
        b=sb,
        ratio=sa.median / sb.median if sb.median else None,
        ratio_paired=statistics.median(pairs) if pairs else None,
        ratio_q1=q1,
        ratio_q3=q3,
        extra={"a_values": av, "b_values": bv},
    )


def single(area: str, figure: str, values: list[float], *, label: str, unit: str = "s", note: str = "") -> Row:
    """A row with one measured side and no ratio (an absolute figure such as a per-row cost)."""
    return Row(area=area, figure=figure, a_label=label, a=Stat.of(values, unit), note=note,
               extra={"a_values": values})


def per_op(fn: Callable[[], object], n: int, *, collect: bool = True) -> Batch:
    """A batch that calls ``fn`` ``n`` times and returns seconds per call.

    The garbage collector is run before (not during) each batch, so one side does not pay
    for the other's garbage.
    """

    def batch() -> float:
        if collect:
            gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        return (time.perf_counter_ns() - t0) / n / 1e9

    return batch


def timed(fn: Callable[[], object], *, collect: bool = True) -> Batch:
    """A batch that calls ``fn`` once and returns its wall time in seconds."""
    return per_op(fn, 1, collect=collect)


# --- formatting -------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "s":
        if value >= 1:
            return f"{value:.2f} s"
        if value >= 1e-3:
            return f"{value * 1e3:.3g} ms" if value < 0.1 else f"{value * 1e3:.0f} ms"
        if value >= 1e-6:
            return f"{value * 1e6:.3g} µs"
        return f"{value * 1e9:.3g} ns"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.3g} {unit}"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "—"
    return f"**{row.ratio:.3f}x**"


def _spread(row: Row) -> str:
    if row.ratio_q1 is None or row.ratio_q3 is None or row.ratio_paired is None:
        if row.a is not None and row.b is None and row.a.n > 1:
            return f"IQR {fmt(row.a.q1, row.a.unit)}–{fmt(row.a.q3, row.a.unit)}"
        return ""
    return f"{row.ratio_paired:.3f} [{row.ratio_q1:.3f}–{row.ratio_q3:.3f}]"


def _verdict(row: Row) -> str:
    if not row.target:
        return ""
    return {True: "met", False: "**missed**", None: "n/a"}[row.met]


def _side(label: str, stat: Stat | None) -> str:
    if stat is None:
        return label
    return f"{label}: {fmt(stat.median, stat.unit)}" if label else fmt(stat.median, stat.unit)


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table (medians; ratio = median A / median B; paired ratios' median [IQR])."""
    head = "| area | figure | A (median) | B (median) | A/B | per-round A/B: median [IQR] | target | verdict |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [
            r.area,
            r.figure + (f" — {r.note}" if r.note else ""),
            _side(r.a_label, r.a),
            _side(r.b_label, r.b),
            _ratio(r),
            _spread(r),
            r.target,
            _verdict(r),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
