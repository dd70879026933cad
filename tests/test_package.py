"""The package root: a sorted public API, lazily imported heavy dependencies."""

from __future__ import annotations

import os
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


# --- the wheel: what `pip install snapbook` users get ------------------------------------------


def test_the_wheel_ships_the_notebooks_and_snapbook_notebooks_writes_them(tmp_path):
    """Build the wheel offline, install it into a throwaway venv, run its ``snapbook notebooks``."""
    import sysconfig
    import venv
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert len(notebooks) == 7
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(root)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("snapbook-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for nb in notebooks:
            assert zf.read(f"snapbook/workbook/{nb.name}") == nb.read_bytes()
    assert not [n for n in names if "conftest" in n or "checkpoint" in n or n.endswith(".cfg")]

    # A venv without pip (fast); the wheel installed with this pip, dependencies borrowed from here.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    py = bindir / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(bindir / "snapbook"), *a], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
        check=False,
    )
    where = subprocess.run([str(py), "-c", "import snapbook; print(snapbook.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert where.startswith(site), f"not the installed wheel: {where}"
    out = tmp_path / "workbook"
    r = run("notebooks", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [nb.name for nb in notebooks]
    for nb in notebooks:
        assert (out / nb.name).read_bytes() == nb.read_bytes()
    r = run("notebooks", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert run("notebooks", "--out", str(out), "--force").returncode == 0
