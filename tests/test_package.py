"""The package root: a sorted public API, lazily imported heavy dependencies."""

from __future__ import annotations

import subprocess
import sys

import snapbook

HEAVY = ["pandas", "httpx", "ipywidgets", "starlette", "uvicorn", "matplotlib", "jwt"]


def test_all_is_sorted_and_complete():
    assert snapbook.__all__ == sorted(snapbook.__all__)
    for name in snapbook.__all__:
        assert getattr(snapbook, name) is not None, name


def test_import_snapbook_does_not_import_heavy_dependencies():
    code = "import sys, snapbook; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"import snapbook pulled in: {out.strip()}"


def test_every_error_is_a_snapbook_error():
    from snapbook import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SnapbookError)


def test_py_typed_marker_ships():
    from importlib.resources import files

    assert files("snapbook").joinpath("py.typed").is_file()
