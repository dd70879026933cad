#!/usr/bin/env python3
"""Run snapbook's benchmarks, print one table, and write it to a file.

    .venv/bin/python benchmarks/run.py                      # full run (about 3 minutes)
    .venv/bin/python benchmarks/run.py --quick              # smaller samples, for a smoke check
    .venv/bin/python benchmarks/run.py --only signing,log   # some areas

Every figure is a ratio of two things measured in the same run, alternating, repeated, with
medians (see benchmarks/_harness.py). Results go to benchmarks/out/results.md and .json
(git-ignored); the table of record lives in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, sys.path[0] is benchmarks/; import it as a package from the repo root instead.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._context import Context
from benchmarks._harness import Row, format_table

#: area -> (module, function). Order is the table's order.
AREAS: dict[str, tuple[str, str]] = {
    "signing": ("benchmarks.bench_signing", "run"),
    "service-signing": ("benchmarks.bench_service_signing", "run"),
    "sandbox": ("benchmarks.bench_sandbox", "run"),
    "client": ("benchmarks.bench_client", "run"),
    "service-client": ("benchmarks.bench_service_client", "run"),
    "log": ("benchmarks.bench_log", "run"),
    "startup": ("benchmarks.bench_startup", "run"),
    "notebooks": ("benchmarks.bench_startup", "run_notebooks"),
}


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    import ssl

    import cryptography
    from cryptography.hazmat.backends.openssl import backend

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cryptography": f"{cryptography.__version__} ({backend.openssl_version_text()})",
        "python ssl": ssl.OPENSSL_VERSION,
    }


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                             timeout=10, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT,
                               timeout=10, check=False)
        return out.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report(rows: list[Row], meta: dict) -> str:
    lines = [
        f"Date: {meta['date']}  ",
        f"Command: `{meta['command']}`  ",
        f"Commit: {meta['commit']}  ",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in meta["machine"].items()) + "  ",
        (f"Load average (1 min) at start / end: {meta['load_start']} / {meta['load_end']} on "
         f"{meta['machine']['cores']} cores (the run itself keeps at most about 2 busy; more means other "
         "work competed for the CPUs)  "),
        f"Total run time: {meta['seconds']:.0f} s",
        "",
        format_table(rows),
        "",
        ("A and B alternate in every round (AB, BA, ...); each side's figure is its median over rounds "
         "(over single calls for the µs-scale rows); A/B = median(A) / median(B), which decides the verdict; "
         "the next column is the median and interquartile range of the per-round paired ratios A_i/B_i: "
         "when it disagrees with A/B, the machine was noisy during that comparison."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples (a smoke check, not a measurement)")
    parser.add_argument("--only", default="", help=f"comma-separated areas: {','.join(AREAS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out",
                        help="directory for results.md and results.json (default benchmarks/out/)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds one comparison may take at most (default 20, 5 with --quick)")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(AREAS)
    unknown = [n for n in names if n not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {', '.join(unknown)}; choose from {', '.join(AREAS)}")

    started = time.monotonic()
    load_start = f"{os.getloadavg()[0]:.2f}"
    rows: list[Row] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="snapbook-bench-") as tmp:
        ctx = Context(quick=args.quick, tmp=Path(tmp),
                      budget_s=args.budget if args.budget is not None else (5.0 if args.quick else 20.0))
        for name in names:
            module, func = AREAS[name]
            t0 = time.monotonic()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            try:
                area_rows = getattr(importlib.import_module(module), func)(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken area must not hide the others' results
                traceback.print_exc()
                failed.append(name)
                area_rows = [Row(name, "(area failed)", note=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])]
            rows.extend(area_rows)
            print(f"[bench] {name} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "commit": git_rev(),
        "machine": machine(),
        "quick": args.quick,
        "seconds": time.monotonic() - started,
        "load_start": load_start,
        "load_end": f"{os.getloadavg()[0]:.2f}",
        "failed_areas": failed,
    }
    text = report(rows, meta)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "rows": [r.to_json() for r in rows]}, indent=1, default=str), encoding="utf-8"
    )
    print(f"[bench] wrote {args.out / 'results.md'} and results.json", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
