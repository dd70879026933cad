"""The notebooks as files: numbered, saved executed top to bottom, checked by nbval for real.

The notebooks themselves run under nbval in their own pytest invocation:
``python -m pytest -p tests.notebooks.nbval_plugin --nbval-lax --nbval-current-env
--nbval-sanitize-with tests/notebooks/nbval-sanitize.cfg notebooks/``.
These tests make sure that run means something: checked cells exist, their saved outputs are
there to compare, and a changed output in a checked cell does fail it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
PLUMBING = ROOT / "tests" / "notebooks"  # nbval's plugin and sanitizer, outside the learner's folder
EXPECTED = ["01-keys", "02-signatures", "03-token", "04-log-and-latency", "05-troubleshooting",
            "06-service-signature", "07-first-payment"]
CHECK = "# NBVAL_CHECK_OUTPUT"
#: nbstripout's flags for the saved notebooks (the same as tests/notebooks/execute.py uses).
STRIP_FLAGS = ["--keep-output", "--keep-count", "--keep-metadata-keys", "metadata.widgets"]


def load(name: str) -> dict:
    return json.loads((NB_DIR / f"{name}.ipynb").read_text("utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def present() -> list[str]:
    return [n for n in EXPECTED if (NB_DIR / f"{n}.ipynb").exists()]


def test_the_notebooks_are_numbered_one_concept_each():
    names = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
    assert names == EXPECTED


@pytest.mark.parametrize("name", present())
def test_saved_executed_in_order_on_a_fresh_kernel(name):
    cells = code_cells(load(name))
    counts = [c["execution_count"] for c in cells if source(c).strip()]
    assert counts == list(range(1, len(counts) + 1)), "re-run the notebook top to bottom, then save"
    for c in cells:
        for out in c["outputs"]:
            assert out["output_type"] != "error", f"saved with an error: {source(c)[:60]!r}"
            assert "Traceback" not in "".join(out.get("text", "")), f"a traceback in {source(c)[:60]!r}"


@pytest.mark.parametrize("name", present())
def test_has_checked_cells_with_saved_outputs(name):
    checked = [c for c in code_cells(load(name)) if CHECK in source(c).splitlines()]
    assert len(checked) >= 3, "each notebook checks its deterministic outputs"
    for c in checked:
        assert c["outputs"], f"a checked cell saved without output: {source(c)[:80]!r}"


@pytest.mark.parametrize("name", present())
def test_first_cell_explains_and_markdown_separates_steps(name):
    nb = load(name)
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert source(nb["cells"][0]).startswith(f"# {int(name[:2])}. ")
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds.count("markdown") >= len(kinds) // 3


@pytest.mark.parametrize("name", present())
def test_metadata_is_stripped(name):
    """Saved as ``python3 dev.py notebooks`` leaves them: widget state kept, no timings or per-run noise."""
    nb = load(name)
    assert set(nb["metadata"]) <= {"kernelspec", "language_info", "widgets"}
    assert set(nb["metadata"].get("widgets", {})) <= {WIDGET_STATE}
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for c in nb["cells"]:
        assert set(c["metadata"]) <= {"tags"}, c["metadata"]


def test_nbstripout_keep_output_is_clean():
    nbstripout = Path(sys.executable).with_name("nbstripout")
    if not nbstripout.exists():
        pytest.fail("nbstripout is not installed (it is in the test extra)")
    files = [str(NB_DIR / f"{n}.ipynb") for n in present()]
    r = subprocess.run([str(nbstripout), *STRIP_FLAGS, "--verify", *files],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


# --- saved widget state: forms and finished progress bars render before anything runs -------

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FORMS = ("KeyForm", "SignatureForm", "TokenForm", "LogView", "DoctorForm", "ServiceSignatureForm", "PaymentForm")
RUN_NOTE = "Run the cell to use it."


def _widget_cells(nb: dict) -> list[dict]:
    """Code cells that display a form or a progress bar."""
    return [c for c in code_cells(nb)
            if any(f"{form}(" in source(c) for form in FORMS) or "tqdm(" in source(c)]


def _views(cell: dict) -> list[str]:
    return [o["data"][WIDGET_VIEW]["model_id"] for o in cell["outputs"] if WIDGET_VIEW in o.get("data", {})]


def _descendants(state: dict, model_id: str) -> set[str]:
    """The model and every model it references (children, layout, style...): what a view needs."""
    seen, todo = set(), [model_id]
    while todo:
        mid = todo.pop()
        if mid in seen:
            continue
        seen.add(mid)
        refs = re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state.get(mid, {}).get("state", {})))
        todo.extend(refs)
    return seen


WITH_WIDGETS = [n for n in present() if _widget_cells(load(n))]


def test_the_workbook_has_forms_and_progress_bars_to_save():
    assert {"01-keys", "04-log-and-latency"} <= set(WITH_WIDGETS)


@pytest.mark.parametrize("name", WITH_WIDGETS)
def test_widget_state_is_saved_so_forms_and_bars_render_unrun(name):
    """Without saved state, GitHub/nbviewer/Binder show blank forms and bars stuck at 0 %."""
    nb = load(name)
    widgets = nb["metadata"].get("widgets", {})
    assert WIDGET_STATE in widgets, f"re-run with `python3 dev.py notebooks {name}` to save the widget state"
    state = widgets[WIDGET_STATE]["state"]
    for cell in _widget_cells(nb):
        views = _views(cell)
        assert views, f"no widget view saved for {source(cell)[:60]!r}"
        for model_id in views:
            missing = {m for m in _descendants(state, model_id) if m not in state}
            assert model_id in state and not missing, f"{source(cell)[:60]!r}: models not saved: {missing}"
        if "tqdm(" in source(cell):
            bars = [state[m] for v in views for m in _descendants(state, v)
                    if state[m]["model_name"] in ("FloatProgressModel", "IntProgressModel")]
            assert bars, f"no progress bar saved for {source(cell)[:60]!r}"
            for bar in bars:
                assert bar["state"].get("value", 0) == bar["state"].get("max", 100), "a bar saved unfinished"
            # Viewers without widgets (GitHub) show the text fallback: the finished line, not "0%|".
            for out in cell["outputs"]:
                if WIDGET_VIEW in out.get("data", {}):
                    fallback = "".join(out["data"].get("text/plain", ""))
                    assert re.search(r"100%\|█+\| *(\d+)/\1 ", fallback), fallback


@pytest.mark.parametrize("name", WITH_WIDGETS)
def test_each_form_says_run_the_cell_to_use_it(name):
    cells = load(name)["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and any(f"{form}(" in source(cell) for form in FORMS):
            assert cells[i - 1]["cell_type"] == "markdown" and RUN_NOTE in source(cells[i - 1]), (
                f"the markdown above {source(cell)[:40]!r} should say {RUN_NOTE!r}"
            )


@pytest.mark.parametrize("name", WITH_WIDGETS)
def test_saved_widget_state_holds_no_secret(name):
    from snapbook.examples import load_vendor_example
    from snapbook.leaks import find_leaks

    nb = load(name)
    text = json.dumps(nb["metadata"].get("widgets", {}))
    ex = load_vendor_example()
    secrets = [ex.signature, ex.documented_signature, ex.documented_access_token]
    assert [str(leak) for leak in find_leaks(text, known_secrets=secrets, source=name)] == []
    for model in nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}).values():
        if model["model_name"] == "PasswordModel":
            assert model["state"].get("value", "") == "", "a passphrase saved in a password field"


# --- nbval really compares -------------------------------------------------------------


def _run_nbval(workdir: Path, *notebooks: str) -> dict[str, list[str]]:
    """Run nbval (lax, as CI does) on notebooks in ``workdir``: failing cell names per file."""
    (workdir / "pytest.ini").write_text("[pytest]\n")  # keep the repo's addopts out
    junit = workdir / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "nbval_plugin", "--nbval-lax", "--nbval-current-env",
           "--nbval-sanitize-with", "nbval-sanitize.cfg", "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", *notebooks]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPBOOK_")}
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert junit.exists(), r.stdout + r.stderr
    result: dict[str, list[str]] = {nb: [] for nb in notebooks}
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            for nb in notebooks:
                if nb.replace(".ipynb", "") in (case.get("classname", "") + case.get("file", "")):
                    result[nb].append(case.get("name", ""))
    result["_output"] = [r.stdout[-3000:]]
    return result


def test_a_changed_output_in_a_checked_cell_fails_nbval(tmp_path):
    shutil.copy(PLUMBING / "nbval-sanitize.cfg", tmp_path)
    shutil.copy(PLUMBING / "nbval_plugin.py", tmp_path)
    nb = load("02-signatures")
    (tmp_path / "original.ipynb").write_text(json.dumps(nb))
    altered = 0
    for c in code_cells(nb):
        if CHECK in source(c) and "same as OpenSSL" in source(c):
            for out in c["outputs"]:
                if out["output_type"] == "stream":
                    text = "".join(out["text"])
                    assert "same as OpenSSL's: True" in text
                    out["text"] = text.replace("same as OpenSSL's: True", "same as OpenSSL's: False")
                    altered += 1
    assert altered == 1
    (tmp_path / "altered.ipynb").write_text(json.dumps(nb))

    result = _run_nbval(tmp_path, "original.ipynb", "altered.ipynb")
    assert result["original.ipynb"] == [], result["_output"]
    assert len(result["altered.ipynb"]) == 1, result["_output"]


# --- the parameters cell aims the token notebook elsewhere (papermill) ---------------------


def test_papermill_aims_the_token_notebook_at_another_provider(tmp_path, monkeypatch):
    """Run 03-token as papermill would against "stage": here a separate local SNAP server at a
    URL, with credentials only in environment variables and the real clock."""
    import papermill as pm

    from snapbook.keys import generate_private_key, save_private_key
    from snapbook.sandbox import Sandbox

    key = generate_private_key()
    key_path = save_private_key(key, tmp_path / "private.pem", "env-passphrase")
    with Sandbox() as provider:
        provider.register("MCP12345678", key.public_key())
        monkeypatch.setenv("SNAPBOOK_CLIENT_KEY", "MCP12345678")
        monkeypatch.setenv("SNAPBOOK_PRIVATE_KEY_PATH", str(key_path))
        monkeypatch.setenv("SNAPBOOK_PASSPHRASE", "env-passphrase")
        out = tmp_path / "out.ipynb"
        pm.execute_notebook(
            str(NB_DIR / "03-token.ipynb"), str(out), parameters={"environment": provider.token_url("payment")},
            kernel_name="python3", cwd=str(tmp_path), progress_bar=False, log_output=False,
        )
        assert provider.journal.counts() == {"accepted": 1}, "one real request, then the cache"
    nb = json.loads(out.read_text())
    text = json.dumps(nb)
    assert "responseCode: 2007300" in text and "MCP12345678" in text
    assert "env-passphrase" not in text
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1


def test_papermill_without_credentials_stops_with_a_clear_error(tmp_path, monkeypatch):
    import papermill as pm
    for var in ("SNAPBOOK_CLIENT_KEY", "SNAPBOOK_PRIVATE_KEY_PATH", "SNAPBOOK_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(NB_DIR / "03-token.ipynb"), str(tmp_path / "out.ipynb"), parameters={"environment": "payment-stage"},
            kernel_name="python3", cwd=str(tmp_path), progress_bar=False, log_output=False,
        )
    assert info.value.ename == "ConfigError"
    assert "SNAPBOOK_CLIENT_KEY" in info.value.evalue


def _execute_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_execute", PLUMBING / "execute.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", WITH_WIDGETS)
def test_saved_by_the_tool_with_stable_widget_ids(name):
    """Model ids renumbered by ``dev.py notebooks`` (a re-run then diffs only what changed)."""
    import nbformat

    tool = _execute_tool()
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    assert nbformat.writes(tool.stable_model_ids(nb, name)) == nbformat.writes(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    expected = {tool.hashlib.sha256(f"{name}:{i}".encode()).hexdigest()[:32] for i in range(len(state))}
    assert set(state) == expected
