"""Small pieces every CLI command shares: passphrases from the environment, reading keys."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ConfigError
from ..keys import read_private_key


def add_passphrase_option(parser) -> None:
    parser.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="name of an environment variable holding the key's passphrase (never pass it as an argument)",
    )


def passphrase_from_env(var: str | None) -> str | None:
    """The passphrase held in environment variable ``var`` (None when no variable is named)."""
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise ConfigError(
            f"--passphrase-env names {var}, but that environment variable is not set.",
            hint=f"export {var}=... before running, or leave --passphrase-env out for a plain key.",
        )
    return value


def private_key_from_args(args) -> rsa.RSAPrivateKey:
    return read_private_key(args.key, passphrase_from_env(getattr(args, "passphrase_env", None)))
