"""The benchmark code works: the harness's arithmetic, and one quick run of two areas end to end.

No timing assertions: these machines are noisy, and figures belong in benchmarks/README.md.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _harness():
    spec = importlib.util.spec_from_file_location("snapbook_bench_harness", ROOT / "benchmarks" / "_harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_compare_alternates_and_takes_the_ratio_of_medians():
    h = _harness()
    calls: list[str] = []
    a_values = iter([9.0, 2.0, 2.0, 2.0, 100.0, 2.0])  # warm-up 9.0 is dropped; 100.0 is an outlier
    b_values = iter([9.0, 1.0, 1.0, 1.0, 1.0, 1.0])

    def a() -> float:
        calls.append("A")
        return next(a_values)

    def b() -> float:
        calls.append("B")
        return next(b_values)

    row = h.compare("area", "figure", a, b, a_label="a", b_label="b", rounds=5, warmup=1)
    # Warm-up, then rounds whose order flips: AB, BA, AB, BA, AB.
    assert calls == ["A", "B", "A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
    assert row.a.median == 2.0 and row.b.median == 1.0 and row.ratio == 2.0
    assert row.ratio_q1 == 2.0 and row.a.n == 5
    assert row.check("<= 1.5").met is False and row.check(">= 1.5").met is True
    table = h.format_table([row])
    assert "| area | figure |" in table and "**2.000x**" in table


def test_compare_ops_interleaves_single_calls():
    h = _harness()
    calls: list[str] = []
    row = h.compare_ops("area", "figure", lambda: calls.append("A"), lambda: calls.append("B"),
                        a_label="a", b_label="b", n=4, rounds=2)
    assert calls.count("A") == calls.count("B") == 1 + 4 * 2
    assert calls[2:6] == ["A", "B", "B", "A"]
    assert row.extra["calls_per_side"] == 8 and len(row.extra["round_ratios"]) == 2
    assert row.ratio > 0 and math.isfinite(row.ratio)


def test_quick_run_writes_the_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "signing,log", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "results.md").read_text()
    assert result["meta"]["quick"] is True and result["meta"]["machine"]["python"]
    rows = result["rows"]
    areas = {r["area"] for r in rows}
    assert areas == {"signing", "log"}
    figures = [r["figure"] for r in rows]
    for expected in ("signed request headers", "verify()", "load_private_key", "append 10,000 rows", "JSON-lines"):
        assert any(expected in f for f in figures), (expected, figures)
    measured = [r for r in rows if not r["note"].startswith("skipped")]  # e.g. no openssl command
    assert len(measured) >= 7
    for r in measured:
        assert r["ratio"] is not None and math.isfinite(r["ratio"]) and r["ratio"] > 0, r
        assert r["a"]["median"] > 0 and r["b"]["median"] > 0
    targeted = [r for r in rows if r["target"]]
    assert {r["target"] for r in targeted} == {"<= 1.05", "<= 1.5"}
    assert all(r["met"] in (True, False) for r in targeted)  # a verdict, whichever it is
    assert markdown.count("\n| signing |") == sum(r["area"] == "signing" for r in rows)
    assert "Machine:" in markdown and "Command:" in markdown and "Date:" in markdown
    assert "results.md" in proc.stderr


def test_instructions_reads_the_totals_of_a_callgrind_dump(tmp_path):
    """benchmarks/instructions.py needs valgrind to run; its reading of a dump is checked here."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.instructions import _totals
    finally:
        sys.path.remove(str(ROOT))
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\ncmd: python\nevents: Ir Dr Dw\nfn=(1) main\n0 5 1 1\nsummary: 1200 300 40\n")
    assert _totals(str(dump)) == {"Ir": 1200, "Dr": 300, "Dw": 40}
    dump.write_text("events: Ir\ntotals: 77\n")
    assert _totals(str(dump)) == {"Ir": 77}
    dump.write_text("events: Ir\n")  # cut short: no totals
    assert _totals(str(dump)) == {}
