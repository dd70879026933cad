#!/usr/bin/env python3
"""Re-execute notebooks in place, the way they are committed: ``python3 dev.py notebooks [NAME ...]``.

Each notebook runs top to bottom on a fresh ``python3`` kernel in ``notebooks/`` (no
``SNAPBOOK_*`` variables, so it aims at the embedded sandbox), and is saved with its outputs and
its widget state (``metadata.widgets``), so forms and finished progress bars render on GitHub,
nbviewer, Binder and in a fresh JupyterLab before anything runs. Then nbstripout removes the
per-run noise (timings, execution metadata) while keeping outputs, counts and the widget state.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: nbstripout as the notebooks are committed (tests/test_notebooks.py verifies with the same flags).
STRIP_FLAGS = ["--keep-output", "--keep-count", "--keep-metadata-keys", "metadata.widgets"]


def notebook_paths(names: list[str]) -> list[Path]:
    """The notebooks named (``01-keys``, ``01-keys.ipynb`` or a path), or all of them."""
    if not names:
        return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    paths = []
    for name in names:
        path = Path(name)
        if not path.suffix:
            path = path.with_suffix(".ipynb")
        if not path.exists():
            path = NOTEBOOKS / path.name
        if not path.exists():
            raise SystemExit(f"execute.py: no notebook {name!r} in {NOTEBOOKS}")
        paths.append(path.resolve())
    return paths


def execute_in_place(path: Path, timeout: int = 600) -> None:
    """Run ``path`` on a fresh kernel and save it with outputs and widget state."""
    nb = nbformat.read(path, as_version=4)
    # Saved outputs must not depend on who ran them: drop credentials aimed at a real provider.
    saved_env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SNAPBOOK_")}
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        os.environ.update(saved_env)
    finish_bar_fallbacks(nb)
    nbformat.write(stable_model_ids(nb, path.stem), path)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def finished_bar_text(state: dict, model_id: str) -> str | None:
    """tqdm's text line for a finished notebook bar (an HBox: label, progress, counts), else None."""
    box = state.get(model_id, {})
    children = [c.removeprefix("IPY_MODEL_") for c in box.get("state", {}).get("children", [])]
    if box.get("model_name") != "HBoxModel" or len(children) != 3:
        return None
    left, bar, right = (state.get(c, {}) for c in children)
    if bar.get("model_name") not in ("FloatProgressModel", "IntProgressModel"):
        return None
    if bar["state"].get("value", 0) != bar["state"].get("max", 100):
        return None

    def text(model: dict) -> str:
        return html.unescape(model.get("state", {}).get("value", "")).replace("\u2007", " ")

    return f"{text(left)}|{'█' * 10}|{text(right)}"


def finish_bar_fallbacks(nb: nbformat.NotebookNode) -> None:
    """Replace the ``0%|  | 0/200`` text a tqdm bar was displayed with by its finished line.

    Viewers without widgets (GitHub, a terminal, nbconvert to text) show that text instead of the
    bar; displayed at the start, it reads like a hang.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            line = view and finished_bar_text(state, view["model_id"])
            if line:
                out["data"]["text/plain"] = line


def stable_model_ids(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Widget model ids are random per run: renumber them so a re-run diffs only what changed.

    Models are numbered in a fixed walk: each displayed view in cell order, then (depth first)
    the models it references; models no view reaches come last, in an order set by their content.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if not state:
        return nb
    order: list[str] = []

    def visit(model_id: str) -> None:
        if model_id in order or model_id not in state:
            return
        order.append(model_id)
        for ref in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state[model_id], sort_keys=True)):
            visit(ref)

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view:
                visit(view["model_id"])

    def content(model_id: str) -> str:
        return re.sub(r"[0-9a-f]{32}", "", json.dumps(state[model_id], sort_keys=True))

    for model_id in sorted((m for m in state if m not in order), key=content):
        visit(model_id)
    new = {old: hashlib.sha256(f"{name}:{i}".encode()).hexdigest()[:32] for i, old in enumerate(order)}
    text = re.sub("|".join(new), lambda m: new[m.group(0)], nbformat.writes(nb))
    return nbformat.reads(text, as_version=4)  # nbformat saves keys sorted: the new ids fix the order


def strip_noise(path: Path) -> None:
    nbstripout = Path(sys.executable).with_name("nbstripout")
    subprocess.run([str(nbstripout), *STRIP_FLAGS, str(path)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run, e.g. 01-keys (default: all)")
    args = parser.parse_args(argv)
    for path in notebook_paths(args.names):
        print(f"[notebooks] executing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
              flush=True)
        execute_in_place(path)
        strip_noise(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
