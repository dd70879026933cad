"""The README's first ten minutes, as a new user on a fresh clone meets them."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n#", start + len(title) + 2)
    return README[start:end if end > 0 else None]


def test_quickstart_says_how_to_run_the_snapbook_command():
    """dev.py installs into .venv/, which is not on PATH: the README says how to reach the command."""
    quickstart = _section("## Quickstart")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "snapbook" in scripts
    dev = (ROOT / "dev.py").read_text()
    assert 'VENV = ROOT / ".venv"' in dev and '"Scripts" if os.name == "nt" else "bin"' in dev
    assert "`.venv/bin/snapbook ...`" in quickstart
    assert "`source .venv/bin/activate`" in quickstart


def test_quickstart_tells_pip_users_where_the_workbook_is():
    quickstart = _section("## Quickstart")
    assert "snapbook notebooks --out" in quickstart
    assert "| `snapbook notebooks --out DIR [--force]` | 0 written, 2 error" in README


def test_the_library_snippet_runs_on_the_keys_the_shell_session_made(tmp_path):
    """``snapbook keygen --out keys`` then the README's Python snippet, in one fresh folder."""
    shell = _section("### Command line (a stable contract)")
    keygen = re.search(r"^snapbook keygen --out (\S+)$", shell, re.MULTILINE)
    assert keygen, "the shell session starts with keygen"
    r = subprocess.run([sys.executable, "-m", "snapbook", "keygen", "--out", keygen.group(1)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr

    library = _section("### Library")
    snippet = re.search(r"```python\n(.*?)```", library, re.DOTALL)
    assert snippet
    check = "assert token.response_code == '2007300' and len(log) == 1, (token, len(log))"
    code = f"{snippet.group(1)}\n{check}\nprint('snippet ok')\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0 and "snippet ok" in r.stdout, r.stderr[-2000:]


def test_the_quickstart_block_holds_exactly_two_commands_lab_and_test():
    """The team's promise: one command opens the workbook, one runs the whole suite; nothing else there."""
    quickstart = _section("## Quickstart")
    block = quickstart.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]
    assert commands == ["python3 dev.py lab", "python3 dev.py test"]
