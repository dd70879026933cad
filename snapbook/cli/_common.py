"""Small pieces every CLI command shares: passphrases from the environment, reading keys, echoing input."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ConfigError, SnapbookError
from ..keys import _shown_path, read_private_key

#: The longest message the CLI prints on one line (the reliability notes promise under 1,000 characters).
MAX_MESSAGE_CHARS = 1000


def shown(value: object, limit: int = 160) -> str:
    """A user's argument as the CLI echoes it: control characters escaped, a long one shortened."""
    return _shown_path(value, limit)


def shown_repr(text: str, limit: int = 200) -> str:
    """``repr(text)`` (quotes, escapes), with a long one shortened in the middle."""
    quoted = repr(text)
    if len(quoted) <= limit:
        return quoted
    return f"{quoted[: limit // 2]}…{quoted[-limit // 4:]} ({len(text)} chars)"


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
            f"--passphrase-env names {shown(var, 80)}, but that environment variable is not set.",
            hint=f"export {shown(var, 80)}=... before running, or leave --passphrase-env out for a plain key.",
        )
    if value == "":
        # An empty passphrase would silently mean "no encryption": say so instead.
        raise ConfigError(
            f"--passphrase-env names {shown(var, 80)}, but that environment variable is empty.",
            hint="Put the passphrase in it, or leave --passphrase-env out for a key without one.",
        )
    return value


def text_argument(value: str, option: str, error: type[SnapbookError]) -> str:
    """``value`` if it is text that can be encoded; a file name's undecodable bytes (lone surrogates) are not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{option} holds bytes that are not UTF-8 text: {shown(value, 80)}.",
            hint=f"Type {option} again as plain text (check the terminal's encoding).",
        ) from None
    return value


def private_key_from_args(args) -> rsa.RSAPrivateKey:
    return read_private_key(args.key, passphrase_from_env(getattr(args, "passphrase_env", None)))
