"""Binder launches JupyterLab with snapbook installed and the notebooks run there.

repo2docker reads ``binder/``: ``runtime.txt`` picks Python, ``requirements.txt`` is installed
from the repository root, ``postBuild`` runs last. Docker is not needed to check that: this
builds the same environment in a fresh virtualenv from a copy of the repository, runs
``postBuild``, and runs every notebook there under nbval (checked outputs compared). It
downloads packages, so it is its own suite: ``pytest tests/binder``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"

pytestmark = pytest.mark.binder

_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "test-artifacts", "__pycache__", ".pytest_cache", "*.egg-info",
    ".ipynb_checkpoints", ".hypothesis", "build", "dist",
)


def test_binder_config_is_what_repo2docker_reads():
    assert not (BINDER / "environment.yml").exists(), "environment.yml would win over requirements.txt"
    reqs = [line.split("#")[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    assert any(re.fullmatch(r"-e \.(\[[\w,]+\])?", r) for r in reqs), "snapbook itself: -e . from the repo root"
    assert re.fullmatch(r"python-3\.(1[0-9])", (BINDER / "runtime.txt").read_text().strip())
    post = BINDER / "postBuild"
    if post.exists():
        assert os.access(post, os.X_OK) and "set -e" in post.read_text()
    start = BINDER / "start"
    if start.exists():
        assert 'exec "$@"' in start.read_text()


def test_readme_links_binder_to_the_first_notebook():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"https://mybinder\.org/v2/gh/[^)\s]+\?urlpath=lab/tree/notebooks/01-keys\.ipynb", readme)


def _python_for_runtime() -> str:
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        pytest.fail(f"binder/runtime.txt asks for Python {version}, which is not on this machine")
    return found


def test_binder_environment_builds_and_runs_every_notebook(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=_IGNORE)
    venv = tmp_path / "venv"
    subprocess.run([_python_for_runtime(), "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith(("JUPYTER", "SNAPBOOK_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        # Nothing from this machine's Jupyter setup leaks in: only what the venv has.
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        MPLCONFIGDIR=str(tmp_path / "mpl"),
    )

    def run(*cmd: str, timeout: int = 900) -> str:
        r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r.stdout + r.stderr

    # What repo2docker does, in its order: requirements.txt from the repo root, then postBuild.
    run(str(bindir / "python"), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt")
    if (repo / "binder" / "postBuild").exists():
        run("bash", "binder/postBuild")

    # JupyterLab is there, with the widgets extension, and the kernel is this environment's.
    run(str(bindir / "jupyter"), "lab", "--version")
    specs = run(str(bindir / "jupyter"), "kernelspec", "list", "--json")
    assert '"python3"' in specs
    where = run(str(bindir / "python"), "-c", "import snapbook, sys; print(snapbook.__file__)")
    assert str(repo / "snapbook") in where

    # The notebooks run there, top to bottom, with their checked outputs compared. pytest and
    # nbval are test tools, installed after the Binder environment is complete.
    run(str(bindir / "python"), "-m", "pip", "install", "-q", "pytest", "pytest-timeout", "nbval")
    out = run(
        str(bindir / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q",
        "-p", "tests.notebooks.nbval_plugin",
        "--nbval-lax", "--nbval-sanitize-with", "tests/notebooks/nbval-sanitize.cfg",
        "--nbval-kernel-name", "python3", "notebooks",
        timeout=600,
    )
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out[-3000:]
