"""dev.py, the quickstart script: installs only when needed, runs nbval with plumbing outside notebooks/."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib only, and main() is guarded
    return module


def test_an_install_of_more_extras_serves_fewer(dev):
    after_test = dev.stamp_after_install(None, "test,lab", "digest-1")
    assert dev.install_is_current(after_test, "lab", "digest-1")
    assert dev.install_is_current(after_test, "test,lab", "digest-1")
    assert dev.install_is_current(after_test, "lab,test", "digest-1")


def test_missing_extras_or_changed_inputs_install_again(dev):
    after_lab = dev.stamp_after_install(None, "lab", "digest-1")
    assert not dev.install_is_current(after_lab, "test,lab", "digest-1")
    assert not dev.install_is_current(after_lab, "lab", "digest-2")
    assert not dev.install_is_current(None, "lab", "digest-1")
    assert not dev.install_is_current("5f3a...", "lab", "digest-1")  # a stamp from the old dev.py


def test_the_stamp_remembers_earlier_extras_only_for_the_same_inputs(dev):
    after_lab = dev.stamp_after_install(None, "lab", "digest-1")
    both = dev.stamp_after_install(after_lab, "test", "digest-1")
    assert dev.install_is_current(both, "test,lab", "digest-1")
    changed = dev.stamp_after_install(after_lab, "test", "digest-2")
    assert not dev.install_is_current(changed, "lab", "digest-2")


def test_lab_after_test_does_not_reinstall(dev, tmp_path, monkeypatch):
    """The user's sequence: ``dev.py test`` then ``dev.py lab`` runs pip once, not twice."""
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setattr(dev, "VENV", venv)
    monkeypatch.setattr(dev, "PY", venv / "bin" / "python")
    pip_calls: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        pip_calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    dev.ensure_venv("test,lab")
    assert any("-e" in c and ".[test,lab]" in c for c in pip_calls)
    pip_calls.clear()
    dev.ensure_venv("lab")
    assert pip_calls == []
    dev.ensure_venv("test,lab")
    assert pip_calls == []


def test_the_notebooks_suite_keeps_test_plumbing_out_of_the_workbook_folder(dev):
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir() if not p.name.startswith(".")) == sorted(
        [p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")] + ["README.md"]
    )
    suite = dev.SUITES["notebooks"]
    plugin = suite[suite.index("-p") + 1]
    assert (ROOT / (plugin.replace(".", "/") + ".py")).is_file()
    sanitize = suite[suite.index("--nbval-sanitize-with") + 1]
    assert (ROOT / sanitize).is_file() and not sanitize.startswith("notebooks/")


def test_demo_runs_voila_on_the_notebook_the_readme_badge_opens(dev):
    """``dev.py demo`` is Binder's one-click demo at home: same notebook, Voila, loopback only."""
    readme = (ROOT / "README.md").read_text()
    badge = re.search(r"https://mybinder\.org/v2/gh/[^)\s]+\?urlpath=voila/render/([^)\s]+)", readme)
    assert badge, "the README's one-click demo badge"
    assert dev.DEMO_NOTEBOOK == badge.group(1)
    assert (ROOT / dev.DEMO_NOTEBOOK).is_file()

    cmd = dev.demo_command("127.0.0.1", 8866, open_browser=False)
    assert Path(cmd[0]).name == "voila" and Path(cmd[0]).parent == dev.BIN
    assert cmd[1] == dev.DEMO_NOTEBOOK
    assert {"--Voila.ip=127.0.0.1", "--Voila.port=8866", "--no-browser"} <= set(cmd)
    assert "--no-browser" not in dev.demo_command("127.0.0.1", 8866, open_browser=True)


def test_demo_is_a_subcommand(dev):
    help_text = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "demo", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--port" in help_text and "--no-browser" in help_text


def test_demo_command_serves_the_payment_form(dev, tmp_path):
    """The command ``dev.py demo`` runs, with this environment's Voila: the page runs 07 and holds the form."""
    port = _free_port()
    cmd = dev.demo_command("127.0.0.1", port, open_browser=False)
    cmd[0] = str(Path(sys.executable).parent / "voila")
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "SNAPBOOK_"))}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    log = tmp_path / "voila.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page, deadline = None, time.monotonic() + 120
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                # Voila runs the notebook while it answers: the read ends after the last cell.
                with urllib.request.urlopen(url, timeout=110) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.25)
        assert page is not None, log.read_text()[-3000:]
        assert "There was an error when executing cell" not in page, log.read_text()[-3000:]
        assert "PaymentForm(" in page  # the form's widget view, for the browser to draw
        assert re.search(r'class="jp-Cell jp-CodeCell[^"]*jp-mod-noInput', page)  # code hidden
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # Voila and the kernel it started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
