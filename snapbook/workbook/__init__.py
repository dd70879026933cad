"""The workbook's notebooks, shipped inside the package so ``pip install snapbook`` users get them.

In a wheel the notebooks sit beside this module (``pyproject.toml`` force-includes
``notebooks/NN-*.ipynb`` here); in a source checkout (``pip install -e .``, ``dev.py``) they are
read from the repository's ``notebooks/`` folder. ``snapbook notebooks --out DIR`` copies them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, OutputExistsError, SnapbookError
from ..masking import printable

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["copy_notebooks", "notebook_files"]

_PATTERN = "[0-9][0-9]-*.ipynb"


def notebook_files() -> list[Traversable]:
    """The workbook's notebooks in order (``01-keys.ipynb`` ...), from the wheel or the checkout."""
    shipped = sorted(
        (f for f in files(__name__).iterdir() if f.name.endswith(".ipynb") and f.name[:2].isdigit()),
        key=lambda f: f.name,
    )
    if shipped:
        return list(shipped)
    checkout = Path(__file__).resolve().parents[2] / "notebooks"
    found = sorted(checkout.glob(_PATTERN))
    if not found:
        raise ConfigError(
            "This snapbook installation has no workbook notebooks (neither in the package nor in a "
            "source checkout).",
            hint="Reinstall snapbook (pip install --force-reinstall snapbook), or clone the repository.",
        )
    return list(found)


def copy_notebooks(out: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Write the notebooks into directory ``out`` (made if missing); the paths written.

    Refuses to replace an existing notebook (the user's edits and outputs live there) unless
    ``force``; it checks every name before writing any, so a refusal leaves ``out`` untouched.
    Never writes through a link: a symlink (dangling or not) or anything but a regular file where
    a notebook goes is refused, even with ``force``; each notebook is written to a temporary file
    in ``out`` and renamed into place, so a failure never leaves a half-written notebook.
    """
    out = Path(out)
    try:
        return _copy(out, force)
    except SnapbookError:  # OutputExistsError is an OSError too, and already says what to do
        raise
    except OSError as exc:  # a path too long, a parent that is a file, no permission, ...
        raise _unusable(out, exc) from None


def _copy(out: Path, force: bool) -> list[Path]:
    shown = printable(str(out), 200)
    if out.is_symlink() and not out.exists():
        raise OutputExistsError(f"{shown} is a dangling symbolic link.",
                                hint="Give --out a real directory (it is made if missing).")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{shown} is a file, not a directory.",
                          hint="Give --out a directory (it is made if missing).")
    sources = notebook_files()
    targets = [out / src.name for src in sources]
    existing = []
    for target in targets:
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise OutputExistsError(
                f"{printable(str(target), 200)} is {what}; snapbook never writes through it.",
                hint="Remove it, or choose another --out directory.",
            )
        existing.append(target)
    if existing and not force:
        names = ", ".join(t.name for t in existing)
        raise OutputExistsError(
            f"{shown} already holds {names}; refusing to overwrite notebooks you may have changed.",
            hint="Choose another --out directory, or add --force to replace them with fresh copies.",
        )
    out.mkdir(parents=True, exist_ok=True)
    for src, target in zip(sources, targets):
        fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".tmp", dir=out)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(src.read_bytes())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return targets


def _unusable(out: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or type(exc).__name__
    return ConfigError(
        f"cannot write the notebooks into {printable(str(out), 200)}: {reason}.",
        hint="Give --out a directory you can write to (it is made if missing).",
    )
