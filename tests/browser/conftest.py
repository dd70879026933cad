"""A real JupyterLab on 127.0.0.1 and Debian's Chromium driven by Playwright.

The same server renders notebooks as apps with Voila (``/voila/render/...``, the server extension
the ``lab`` and ``test`` extras install), as Binder's one-click demo does.

Playwright cannot download its own browsers here, so this uses ``/usr/bin/chromium``
(``apt-get install chromium``; override with ``SNAPBOOK_CHROMIUM``). JupyterLab runs from this
interpreter's environment on a free port with a random token, in a temporary copy of
``notebooks/``, with its settings, workspaces and runtime files in temporary folders; it is
stopped (its whole process group) when the tests end, whatever happened.
"""

from __future__ import annotations

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
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("SNAPBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",  # the network is closed: no update or sync pings
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def page_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?token={self.token}&reset"

    def voila_url(self, notebook: str) -> str:
        """The notebook rendered by Voila: a fresh kernel runs it, the page shows outputs, no code."""
        return f"{self.url}/voila/render/{notebook}?token={self.token}"

    #: True once the notebook's kernel is connected and idle (run-all finished, or nothing running).
    KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

    def wait_for_kernel_idle(self, page: Any, timeout_ms: int) -> None:
        page.wait_for_function(self.KERNEL_IDLE, timeout=timeout_ms)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, token: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200 and "started" in json.loads(r.read()):
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, root)
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "browser-jupyterlab.log"
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "would you like news?" toast over the page, and no fetching it.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "SNAPBOOK_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        MPLCONFIGDIR=str(base / "mpl"),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--expose-app-in-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:  # CI runs as root
        cmd.append("--ServerApp.allow_root=True")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, token, proc, log)
        yield Lab(url, token, root, log)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set SNAPBOOK_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")


def assert_no_secret_on(page: Any, known_secrets: Iterable[str] = ()) -> None:
    """No private key, full signature, full token or long base64 run in the page's text or HTML.

    JupyterLab's own icons are inline base64 SVGs (data URIs): those are taken out of the HTML first.
    """
    from snapbook.leaks import find_leaks

    known = list(known_secrets)
    text = page.inner_text("body")
    html = DATA_URI.sub("", page.content())
    for where, content in (("page text", text), ("page HTML", html)):
        assert "PRIVATE KEY-----" not in content, f"{where}: a PEM private key"
        assert not JWT.search(content), f"{where}: a full JWT"
        assert not LONG_BASE64.search(content), f"{where}: a long base64 run (a signature or key)"
        # ...and the project's own scanner, with the caller's secrets named.
        leaks = find_leaks(content, known_secrets=known)
        assert leaks == [], f"{where}: " + "; ".join(map(str, leaks))


@pytest.fixture
def no_secret_on_page() -> Callable[..., None]:
    """``no_secret_on_page(page, known_secrets=...)`` fails the test on any secret the page shows."""
    return assert_no_secret_on
