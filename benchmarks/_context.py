"""What every benchmark area shares: the run's size (quick or full), a scratch dir and one key."""

from __future__ import annotations

import functools
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT_KEY = "MCP00000001"


@dataclass
class Context:
    quick: bool
    tmp: Path
    #: Seconds each area may spend at most on one comparison (a bound, not a target).
    budget_s: float = 20.0

    def size(self, full: int, quick: int) -> int:
        """``full`` normally, ``quick`` under ``--quick``."""
        return quick if self.quick else full

    @functools.cached_property
    def private_key(self):
        """One RSA-2048 key for the whole run: parsed (here, generated) once, never per request."""
        from snapbook.keys import generate_private_key

        return generate_private_key()

    @functools.cached_property
    def public_pem(self) -> Path:
        from snapbook.keys import save_public_key

        path = self.tmp / "public.pem"
        if not path.exists():
            save_public_key(self.private_key, path)
        return path

    @functools.cached_property
    def private_pem(self) -> Path:
        from snapbook.keys import save_private_key

        path = self.tmp / "private.pem"
        if not path.exists():
            save_private_key(self.private_key, path)
        return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python() -> str:
    return sys.executable


def child_env() -> dict[str, str]:
    """The environment for server and import subprocesses: this venv, no proxies, no bytecode surprises."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONHASHSEED", "0")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env
