"""The ``snapbook`` command line: a thin layer over the library, with a stable contract.

Exit codes: 0 success; 1 a negative answer (signature invalid, server refused); 2 unusable
input or any other error (one line on stderr, never a traceback); 3 transport failure or an
invalid answer from a server.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import SnapbookError

__all__ = ["build_parser", "main"]

# One module per group of commands; each has ``register(subparsers)``.
_COMMAND_MODULES = ["keys", "signing", "token", "doctor", "sandbox", "service", "call", "notebooks"]


def _one_line(message: str) -> str:
    """An error as the CLI prints it: one line, control characters escaped, under 1,000 characters."""
    from ._common import MAX_MESSAGE_CHARS, shown

    return shown(message, MAX_MESSAGE_CHARS - 40)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"snapbook: error: {_one_line(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="snapbook", description="Keys, signatures and tokens for Bank Indonesia SNAP.")
    parser.add_argument("--version", action="version", version=f"snapbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SnapbookError as exc:
        print(f"snapbook: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snapbook: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the contract: one line, no traceback
        if os.environ.get("SNAPBOOK_DEBUG"):
            raise
        print(
            f"snapbook: error: unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(set SNAPBOOK_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
