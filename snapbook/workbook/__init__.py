"""The workbook's notebooks, shipped inside the package so ``pip install snapbook`` users get them.

In a wheel the notebooks sit beside this module (``pyproject.toml`` force-includes
``notebooks/NN-*.ipynb`` here); in a source checkout (``pip install -e .``, ``dev.py``) they are
read from the repository's ``notebooks/`` folder. ``snapbook notebooks --out DIR`` copies them.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, OutputExistsError

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
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a directory.",
                          hint="Give --out a directory (it is made if missing).")
    sources = notebook_files()
    targets = [out / src.name for src in sources]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        names = ", ".join(t.name for t in existing)
        raise OutputExistsError(
            f"{out} already holds {names}; refusing to overwrite notebooks you may have changed.",
            hint="Choose another --out directory, or add --force to replace them with fresh copies.",
        )
    out.mkdir(parents=True, exist_ok=True)
    for src, target in zip(sources, targets):
        target.write_bytes(src.read_bytes())
    return targets
