"""Start-up: ``import snapbook`` against ``import httpx, cryptography``, each in a fresh interpreter.

Each round starts two new Python processes (alternating which goes first); inside, the import
alone is timed with ``perf_counter_ns``, so interpreter start-up does not dilute the ratio.
The child also reports which heavy modules the import pulled in: pandas, ipywidgets and the
server (starlette, uvicorn) must load only when used.

The notebook suite's wall time under nbval is measured once (it takes tens of seconds), only
with ``--only notebooks`` or in a full run when ``notebooks/`` exists.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time

from ._context import ROOT, Context, child_env, python
from ._harness import Row, compare, single

AREA = "start-up"
HEAVY = ("pandas", "numpy", "ipywidgets", "matplotlib", "starlette", "uvicorn", "httpx", "jwt", "IPython")

_PROBE = """
import time
t0 = time.perf_counter_ns()
import {modules}
t1 = time.perf_counter_ns()
import json, sys
print(json.dumps({{"ns": t1 - t0, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _probe(modules: str) -> dict:
    out = subprocess.run(
        [python(), "-c", _PROBE.format(modules=modules, heavy=HEAVY)],
        capture_output=True, text=True, check=True, env=child_env(), cwd=ROOT, timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Row]:
    seen: dict[str, list[str]] = {}

    def batch(modules: str):
        def go() -> float:
            result = _probe(modules)
            seen[modules] = result["heavy"]
            return result["ns"] / 1e9

        return go

    row = compare(
        AREA, "import time in a fresh interpreter",
        batch("snapbook"), batch("httpx, cryptography"),
        a_label="import snapbook", b_label="import httpx, cryptography",
        rounds=ctx.size(15, 5), warmup=2, budget_s=ctx.budget_s,
    ).check("<= 1.5")
    heavy = seen.get("snapbook", [])
    lazy = Row(AREA, "heavy modules loaded by `import snapbook` (pandas, ipywidgets, server, httpx, ...)",
               a_label=", ".join(heavy) or "none", target="none", met=not heavy)
    return [row, lazy]


def run_notebooks(ctx: Context) -> list[Row]:
    """The notebook suite under nbval, timed once (it is long; a ratio would need a second suite)."""
    nb = ROOT / "notebooks"
    if not any(nb.glob("*.ipynb")):
        return [Row(AREA, "notebook suite under nbval", note="skipped: no notebooks/ yet")]
    # The same arguments as `python3 dev.py test --suite notebooks` (one definition: dev.SUITES).
    spec = importlib.util.spec_from_file_location("snapbook_dev", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", *dev.SUITES["notebooks"], "-q"]
    t0 = time.perf_counter_ns()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=600,
                          check=False)
    wall = (time.perf_counter_ns() - t0) / 1e9
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    count = len(list(nb.glob("*.ipynb")))
    row = single(AREA, f"notebook suite under nbval ({count} notebooks, one run)", [wall],
                 label="pytest --nbval-lax notebooks", note=tail + ("" if proc.returncode == 0 else " (FAILED)"))
    return [row]
