"""Binder launches JupyterLab with snapbook installed, the notebooks run there, and Voila serves the demo.

repo2docker reads ``binder/``: ``runtime.txt`` picks Python, ``requirements.txt`` is installed
from the repository root, ``postBuild`` runs last. Docker is not needed to check that: this
builds the same environment once, in a fresh virtualenv from a copy of the repository, runs
``postBuild``, runs every notebook there under nbval (checked outputs compared), and serves the
README's one-click demo (``/voila/render/notebooks/07-first-payment.ipynb``) from it. It
downloads packages, so it is its own suite: ``pytest tests/binder``.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from snapbook.leaks import find_leaks

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"
DEMO = "notebooks/07-first-payment.ipynb"
DEMO_URLPATH = f"voila/render/{DEMO}"
BADGE = re.compile(r"\]\((https://mybinder\.org/v2/gh/([^/)\s]+/[^/)\s]+)/HEAD\?urlpath=([^)\s]+))\)")

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


def test_readme_links_the_one_click_demo_to_voila_on_the_payment_notebook():
    """A second badge, same repository as the first, opening notebook 07 rendered by Voila."""
    readme = (ROOT / "README.md").read_text()
    badges = {urlpath: repo for _, repo, urlpath in BADGE.findall(readme)}
    assert "lab/tree/notebooks/01-keys.ipynb" in badges, badges
    assert DEMO_URLPATH in badges, f"no badge opening urlpath={DEMO_URLPATH}: {badges}"
    assert badges[DEMO_URLPATH] == badges["lab/tree/notebooks/01-keys.ipynb"], "both badges: the same repository"
    assert "[![one-click demo]" in readme
    assert (ROOT / DEMO).is_file(), "the badge opens a notebook the repository has"
    # Binder installs what requirements.txt names: the extra that brings Voila must be that one.
    extras = re.search(r"-e \.\[([\w,]+)\]", (BINDER / "requirements.txt").read_text())
    assert extras, "requirements.txt installs snapbook with an extra"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("voila") for extra in extras.group(1).split(",") for dep in pyproject[extra])


def _env_without_this_machines_jupyter(bindir: Path, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith(("JUPYTER", "SNAPBOOK_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        # Nothing from this machine's Jupyter setup leaks in: only what the environment has.
        JUPYTER_CONFIG_DIR=str(scratch / "jupyter-config"),
        JUPYTER_DATA_DIR=str(scratch / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(scratch / "jupyter-runtime"),
        MPLCONFIGDIR=str(scratch / "mpl"),
    )
    return env


def test_postbuild_fails_early_when_voilas_server_extension_is_off(tmp_path):
    """Without the extension the demo badge would answer 404: the build stops and says why."""
    bindir = Path(sys.executable).parent  # this environment has the lab extra (dev.py installs test,lab)
    env = _env_without_this_machines_jupyter(bindir, tmp_path)
    config = Path(env["JUPYTER_CONFIG_DIR"])
    config.mkdir()

    ok = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr

    # A user-level config that switches it off, and the user level taking precedence, as it can.
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"voila.server_extension": False}}})
    )
    env["JUPYTER_PREFER_ENV_PATH"] = "0"
    off = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert off.returncode == 1
    assert "postBuild: Voila's Jupyter server extension is not enabled" in off.stderr
    assert "voila/render/notebooks/07-first-payment.ipynb" in off.stderr
    assert "jupyter server extension enable" in off.stderr  # how to fix it


def _python_for_runtime() -> str:
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        pytest.fail(f"binder/runtime.txt asks for Python {version}, which is not on this machine")
    return found


@dataclass(frozen=True)
class BinderEnv:
    """The rebuilt Binder environment: a copy of the repository and a virtualenv built from binder/."""

    repo: Path
    bindir: Path
    env: dict[str, str]
    scratch: Path
    run: Callable[..., str]


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory: pytest.TempPathFactory) -> BinderEnv:
    tmp_path = tmp_path_factory.mktemp("binder")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=_IGNORE)
    venv = tmp_path / "venv"
    subprocess.run([_python_for_runtime(), "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    env = _env_without_this_machines_jupyter(bindir, tmp_path)
    env["VIRTUAL_ENV"] = str(venv)

    def run(*cmd: str, timeout: int = 900) -> str:
        r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r.stdout + r.stderr

    # What repo2docker does, in its order: requirements.txt from the repo root, then postBuild.
    run(str(bindir / "python"), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt")
    if (repo / "binder" / "postBuild").exists():
        run("bash", "binder/postBuild")
    return BinderEnv(repo, bindir, env, tmp_path, run)


def test_binder_environment_builds_and_runs_every_notebook(binder_env):
    repo, bindir, run = binder_env.repo, binder_env.bindir, binder_env.run

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def binder_server(binder_env: BinderEnv) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab from the Binder environment, as Binder starts it: server root = repository root."""
    port, token = _free_port(), secrets.token_hex(16)
    log = binder_env.scratch / "binder-server.log"
    cmd = [
        str(binder_env.bindir / "jupyter"), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={binder_env.repo}", f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:  # CI runs as root
        cmd.append("--ServerApp.allow_root=True")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=binder_env.repo, env=binder_env.env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the Binder server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the Binder server did not answer within 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url, token, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernel Voila started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def test_binder_environment_serves_the_one_click_demo(binder_env, binder_server):
    """The README's demo badge URL, on the rebuilt environment: Voila runs 07 to the end, form and all."""
    url, token, log = binder_server
    cells = json.loads((binder_env.repo / DEMO).read_text())["cells"]
    try:
        # Voila executes the notebook while it streams the page: the read ends when the last cell has run.
        with urllib.request.urlopen(f"{url}/{DEMO_URLPATH}?token={token}", timeout=240) as r:
            status, page = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        pytest.fail(f"GET /{DEMO_URLPATH}: {e.code}\n{log.read_text()[-3000:]}")
    assert status == 200

    # Every cell was reached (Voila numbers them as it goes), and none failed: Voila turns an
    # error into a stderr output saying so (and stops there), and drops warnings.
    reached = [(int(k), int(n)) for k, n in re.findall(r"voila_process\((\d+), (\d+)\)", page)]
    assert reached and reached[-1] == (len(cells), len(cells)), f"stopped at {reached[-1:]} of {len(cells)} cells"
    assert "There was an error when executing cell" not in page
    assert "Cell execution timed out" not in page
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in page
    assert "Traceback" not in page

    # The payment form is there as a widget view, for the browser to render once it connects.
    outputs = [json.loads(html.unescape(m)) for m in re.findall(
        r'<script type="application/vnd\.voila\.cell-output\+json">\s*(.*?)\s*</script>', page, re.DOTALL)]
    forms = [o["data"] for o in outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
             and o["data"].get("text/plain", "").startswith("PaymentForm(")]
    assert forms, "no PaymentForm widget view among the page's outputs"

    # An app, not a notebook: no code cell shows its source.
    code_cells = re.findall(r'class="(jp-Cell jp-CodeCell[^"]*)"', page)
    assert code_cells and all("jp-mod-noInput" in c for c in code_cells)
    assert not re.search(r'class="[^"]*jp-InputArea-editor', page)

    leaks = find_leaks(page)
    assert leaks == [], "; ".join(map(str, leaks))
