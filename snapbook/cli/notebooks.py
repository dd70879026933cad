"""``snapbook notebooks``: write the workbook's notebooks for ``pip install`` users."""

from __future__ import annotations

import argparse

from ..masking import printable
from ..workbook import copy_notebooks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notebooks",
        help="write the workbook's Jupyter notebooks into a directory: exit 0 written, 2 error "
        "(refuses to overwrite without --force)",
    )
    p.add_argument("--out", required=True, metavar="DIR",
                   help="directory for the notebooks (made if missing)")
    p.add_argument("--force", action="store_true", help="replace notebooks already in DIR")
    p.set_defaults(func=notebooks_cmd)


def notebooks_cmd(args: argparse.Namespace) -> int:
    written = copy_notebooks(args.out, force=args.force)
    for path in written:
        print(f"wrote {printable(str(path))}")
    print(f"open them with: jupyter lab {printable(str(args.out))}   (needs the lab extra: pip install 'snapbook[lab]')")
    return 0
