#!/usr/bin/env python3
"""The two quickstart commands, needing only python3 and git on a fresh machine.

    python3 dev.py lab        open the workbook: JupyterLab on notebooks/ (embedded sandbox)
    python3 dev.py demo       the one-click demo locally: Voila renders the payment notebook as an app
    python3 dev.py test       run the whole test suite: unit tests, notebooks (nbval), real browser
    python3 dev.py notebooks  re-execute the notebooks in place, saving outputs and widget state

Each first makes ``.venv/`` and installs snapbook into it (only again when pyproject.toml or
binder/requirements.txt change, or when it needs extras the last install did not have).
Standard library only: this file runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# The notebook the README's "one-click demo" badge opens on Binder, rendered by Voila.
DEMO_NOTEBOOK = "notebooks/07-first-payment.ipynb"

# Each suite is its own pytest invocation (unit tests and notebook tests are kept apart).
SUITES = {
    "unit": ["tests", "--ignore=tests/browser", "--ignore=tests/binder", "-p", "no:nbval"],
    # The nbval plumbing lives in tests/notebooks/, out of the folder the workbook opens on.
    "notebooks": [
        "notebooks",
        "-p", "tests.notebooks.nbval_plugin",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        "tests/notebooks/nbval-sanitize.cfg",
        "-p", "no:cacheprovider",
    ],
    "browser": ["tests/browser", "-p", "no:nbval"],
    # Rebuilds the Binder environment in a fresh venv from binder/ and runs the notebooks there.
    "binder": ["tests/binder", "-p", "no:nbval"],
}


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def parse_extras(extras: str) -> frozenset[str]:
    return frozenset(e.strip() for e in extras.split(",") if e.strip())


def install_is_current(stamp: str | None, extras: str, inputs_digest: str) -> bool:
    """Whether the install recorded in ``stamp`` serves ``extras``: same inputs, a superset of extras.

    ``dev.py test`` installs ``test,lab``; ``dev.py lab`` then needs only ``lab``, which is there.
    """
    if not stamp:
        return False
    try:
        recorded = json.loads(stamp)
        return recorded["inputs"] == inputs_digest and parse_extras(extras) <= set(recorded["extras"])
    except (ValueError, KeyError, TypeError):
        return False  # a stamp from an older dev.py, or damaged: install again


def stamp_after_install(stamp: str | None, extras: str, inputs_digest: str) -> str:
    """The stamp to write once ``extras`` are installed; earlier extras count while the inputs are unchanged."""
    have = set(parse_extras(extras))
    try:
        recorded = json.loads(stamp or "")
        if recorded["inputs"] == inputs_digest:
            have |= set(recorded["extras"])
    except (ValueError, KeyError, TypeError):
        pass
    return json.dumps({"inputs": inputs_digest, "extras": sorted(have)})


def ensure_venv(extras: str) -> None:
    """Create .venv and install snapbook[extras] unless an install serving them is already there."""
    inputs = [ROOT / "pyproject.toml", ROOT / "binder" / "requirements.txt"]
    digest = hashlib.sha256()
    for path in inputs:
        if path.exists():
            digest.update(path.read_bytes())
    stamp_path = VENV / ".installed"
    stamp = stamp_path.read_text() if stamp_path.exists() else None
    if PY.exists() and install_is_current(stamp, extras, digest.hexdigest()):
        return
    if not PY.exists():
        say(f"creating {VENV.relative_to(ROOT)}/ with {sys.executable} ({sys.version.split()[0]})")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        stamp = None
    say(f"installing snapbook[{extras}] into .venv (first run takes a minute or two)")
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-U", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f".[{extras}]"], check=True, cwd=ROOT)
    stamp_path.write_text(stamp_after_install(stamp, extras, digest.hexdigest()))


def ensure_chromium() -> None:
    """The browser test drives Debian's Chromium; install it when we can (root with apt)."""
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Debian's chromium for the browser test (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        return
    sys.exit(
        f"[dev] the browser test needs Chromium at {CHROMIUM}: run `sudo apt-get install chromium`, "
        "or skip that suite with `python3 dev.py test --suite unit --suite notebooks`."
    )


def run_suite(name: str, extra: list[str]) -> dict[str, int]:
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / f"junit-{name}.xml"
    junit.unlink(missing_ok=True)
    cmd = [str(PY), "-m", "pytest", *SUITES[name], f"--junitxml={junit}", "-q", *extra]
    say(f"suite {name}: {' '.join(cmd[2:])}")
    code = subprocess.run(cmd, cwd=ROOT).returncode
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if junit.exists():
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    counts["code"] = code
    return counts


def cmd_test(args: argparse.Namespace) -> int:
    ensure_venv("test,lab")
    suites = args.suite or list(SUITES)
    if "browser" in suites:
        ensure_chromium()
    results = {name: run_suite(name, args.pytest_args) for name in suites}
    passed = failed = skipped = 0
    ok = True
    for name, c in results.items():
        s_failed = c["failures"] + c["errors"]
        s_passed = c["tests"] - s_failed - c["skipped"]
        passed, failed, skipped = passed + s_passed, failed + s_failed, skipped + c["skipped"]
        problem = ""
        if c["tests"] == 0:
            problem = "ran no test"
        elif c["code"] != 0:
            problem = f"pytest exited {c['code']}"
        elif c["skipped"]:
            problem = "skipped tests count as not passing"
        ok = ok and not problem
        say(f"{name:10s} {s_passed} passed, {s_failed} failed, {c['skipped']} skipped  {problem}")
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if ok else 1


def cmd_lab(args: argparse.Namespace) -> int:
    ensure_venv("lab")
    cmd = [
        str(BIN / "jupyter"), "lab",
        f"--ServerApp.root_dir={ROOT / 'notebooks'}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
        "--LabApp.default_url=/lab/tree/01-keys.ipynb",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers, Binder-like boxes, CI machines
        cmd.append("--ServerApp.allow_root=True")
    say("starting JupyterLab on notebooks/ (the notebooks start their own local SNAP sandbox)")
    os.execv(cmd[0], cmd)


def demo_command(ip: str, port: int, *, open_browser: bool) -> list[str]:
    """Voila on the payment notebook: what Binder's one-click demo shows, forms and QR, no code."""
    cmd = [
        str(BIN / "voila"), DEMO_NOTEBOOK,
        f"--Voila.ip={ip}",
        f"--Voila.port={port}",  # taken? Voila tries the next ports and prints the URL it serves
    ]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def cmd_demo(args: argparse.Namespace) -> int:
    ensure_venv("lab")
    cmd = demo_command(args.ip, args.port, open_browser=not args.no_browser)
    say(f"starting Voila on {DEMO_NOTEBOOK} (code hidden; the notebook starts its own local SNAP sandbox)")
    os.chdir(ROOT)
    os.execv(cmd[0], cmd)


def cmd_notebooks(args: argparse.Namespace) -> int:
    ensure_venv("test,lab")
    cmd = [str(PY), str(ROOT / "tests" / "notebooks" / "execute.py"), *args.names]
    say("re-executing notebooks in place (outputs and widget state saved, per-run noise stripped)")
    return subprocess.run(cmd, cwd=ROOT).returncode


def main() -> int:
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lab", help="open the workbook in JupyterLab")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)
    p = sub.add_parser("demo", help="open the one-click demo (Voila, the payment notebook) locally")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8866)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("test", help="run the whole test suite")
    p.add_argument("--suite", action="append", choices=list(SUITES), help="run only these suites")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("notebooks", help="re-execute notebooks in place, saving outputs and widget state")
    p.add_argument("names", nargs="*", help="notebooks to run, e.g. 01-keys (default: all)")
    p.set_defaults(func=cmd_notebooks)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
