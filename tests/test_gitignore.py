"""A new user's files stay out of git: keys, key files and the request logs the notebooks write.

The README's shell session starts with ``snapbook keygen --out keys`` from the repository root;
before .gitignore knew about keys, ``git status`` then offered ``?? keys/`` for committing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _git(cwd: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _files_the_notebooks_write() -> set[str]:
    """File names the notebooks pass to RequestLog(...) or as a csv_path (in code or markdown)."""
    names: set[str] = set()
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb_path.read_text("utf-8"))["cells"]:
            text = "".join(cell["source"])
            names.update(re.findall(r'RequestLog\(\s*"([^"/]+)"', text))
            names.update(re.findall(r'csv_path=[^\n]*?"([^"/]+\.csv)"', text))
    return names


def test_the_notebooks_name_the_files_they_write():
    # The scan above must see something, or the ignore test below proves nothing about logs.
    assert {"token-log.jsonl", "token-requests.csv"} <= _files_the_notebooks_write()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh repository with this .gitignore, the test fixtures and the notebooks' folder."""
    repo = tmp_path / "clone"
    repo.mkdir()
    _git(repo, "init", "-q")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    shutil.copytree(ROOT / "tests" / "data", repo / "tests" / "data")
    (repo / "notebooks").mkdir()
    return repo


def test_the_readme_keygen_leaves_nothing_for_git_to_offer(clone: Path):
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "snapbook keygen --out keys\n" in readme, "the README's shell session changed: update this test"
    r = subprocess.run([sys.executable, "-m", "snapbook", "keygen", "--out", "keys"], cwd=clone,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert (clone / "keys" / "private.pem").exists()
    # Key files anywhere, in every form, and the request logs the notebooks and README write.
    for name in ("elsewhere/merchant.pem", "merchant.der", "notebooks/client.key", "notebooks/private.pem"):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("x")
    for name in _files_the_notebooks_write() | {"requests.jsonl"}:
        (clone / name).write_text("{}\n")
        (clone / "notebooks" / name).write_text("{}\n")

    status = _git(clone, "status", "--porcelain", "--untracked-files=all")
    offered = sorted(line[3:] for line in status.splitlines())
    assert offered == [".gitignore", "tests/data/vectors.json"]


def test_no_tracked_file_is_ignored():
    """The repository's own fixtures (tests/data, keys used by tests) stay tracked."""
    if not (ROOT / ".git").exists():
        pytest.fail("not a git checkout")
    ignored = _git(ROOT, "ls-files", "--cached", "--ignored", "--exclude-standard")
    assert ignored == ""
