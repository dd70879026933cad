"""``snapbook sign-service`` and ``snapbook verify-notification``: the signatures after the token.

Secrets and tokens come only from environment variables (``--secret-env``, ``--token-env``), so
they never sit in the shell history or in ``ps``. Exit codes: 0 signed / valid; 1 invalid (with
the doctor's reason); 2 unusable input.
"""

from __future__ import annotations

import json
import os
import re
import sys

from ..errors import ConfigError
from ..service_signing import DEFAULT_VERSION, explain_service_signature, verify_notification
from ._common import add_passphrase_option, private_key_from_args, shown

__all__ = ["MAX_BODY_BYTES", "body_from_arg", "register", "value_from_env"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Largest body read from a file or stdin (SNAP bodies are a few KB; this bounds a mistaken pipe).
MAX_BODY_BYTES = 10 * 1024 * 1024


def value_from_env(var: str | None, option: str, what: str) -> str:
    """The value of environment variable ``var`` named by ``option``; a typed error when unset or empty."""
    if not var:
        raise ConfigError(f"{option} is required here.", hint=f"export VAR=<{what}> and pass {option} VAR.")
    if not _ENV_NAME.fullmatch(var):
        # Never echo it: a value that is not a variable name may be the secret itself.
        raise ConfigError(
            f"{option} takes the name of an environment variable, and this is not one (not shown, it may be a secret).",
            hint=f"export SNAP_SECRET=<{what}> and pass {option} SNAP_SECRET.",
        )
    value = os.environ.get(var)
    if value is None or value == "":
        raise ConfigError(
            f"{option} names {var}, but that environment variable is {'empty' if value == '' else 'not set'}.",
            hint=f"export {var}=<{what}> before running; it is never taken as an argument.",
        )
    return value


def body_from_arg(value: str | None) -> bytes | None:
    """The body bytes from ``FILE`` or ``-`` (stdin), read exactly as they are, at most MAX_BODY_BYTES."""
    if value is None:
        return None
    try:
        if value == "-":
            data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with open(value, "rb") as f:
                data = f.read(MAX_BODY_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the file name
        why = getattr(exc, "strerror", None) or "not a usable file name"
        raise ConfigError(
            f"Cannot read the body from {shown(value, 120)}: {why}.",
            hint="Pass a readable file, or '-' to read stdin.",
        ) from None
    if len(data) > MAX_BODY_BYTES:
        raise ConfigError(
            f"The body is larger than {MAX_BODY_BYTES} bytes.",
            hint="SNAP request bodies are a few KB; check the file.",
        )
    return data


def register(sub) -> None:
    # allow_abbrev=False: '--secret VALUE' must not pass as '--secret-env' (and echo a secret).
    p = sub.add_parser(
        "sign-service",
        allow_abbrev=False,
        help="print a service call's X-SIGNATURE (HMAC with --secret-env/--token-env, RSA with --key): exit 0, 2 unusable input",
    )
    p.add_argument("--method", required=True, metavar="M", help="HTTP method (upper-cased)")
    p.add_argument(
        "--path",
        required=True,
        metavar="PATH",
        help="relative URL as sent, with any provider prefix and the query string",
    )
    p.add_argument(
        "--body", metavar="FILE", help="the body bytes as sent: a file, or - for stdin (default: no body)"
    )
    p.add_argument("--timestamp", required=True, metavar="TS", help="X-TIMESTAMP, byte for byte")
    p.add_argument(
        "--no-query", action="store_true", help="sign the path without its query string (some providers)"
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--secret-env", metavar="VAR", help="environment variable holding the client secret (symmetric)"
    )
    how.add_argument("--key", metavar="FILE", help="private key file (asymmetric, no token)")
    p.add_argument(
        "--token-env", metavar="VAR", help="environment variable holding the access token (symmetric)"
    )
    add_passphrase_option(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print {method, path, minifiedBody, bodySha256, stringToSign (token masked), signature}",
    )
    p.set_defaults(func=sign_service_cmd)

    p = sub.add_parser(
        "verify-notification",
        allow_abbrev=False,
        help="check an Ifortepay notification's X-SIGNATURE: exit 0 valid, 1 invalid (with the reason), 2 unusable input",
    )
    p.add_argument(
        "--secret-env", required=True, metavar="VAR", help="environment variable holding the client secret"
    )
    p.add_argument("--url", required=True, metavar="NOTIFY_URL", help="the notification URL as registered")
    p.add_argument("--version", default=DEFAULT_VERSION, metavar="V", help="X-VERSION (default v1)")
    p.add_argument("--timestamp", required=True, metavar="TS", help="X-TIMESTAMP as received")
    p.add_argument("--signature", required=True, metavar="SIG", help="X-SIGNATURE as received")
    p.add_argument("--body", metavar="FILE", help="the body bytes as received: a file, or - for stdin")
    p.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="also refuse an X-TIMESTAMP further than this from now (default: not checked)",
    )
    p.set_defaults(func=verify_notification_cmd)


def sign_service_cmd(args) -> int:
    body = body_from_arg(args.body)
    common = {
        "method": args.method,
        "path": args.path,
        "body": body,
        "timestamp": args.timestamp,
        "include_query": not args.no_query,
    }
    if args.secret_env:
        if args.passphrase_env:
            raise ConfigError("--passphrase-env goes with --key, not --secret-env.", hint="Leave it out.")
        steps = explain_service_signature(
            **common,
            client_secret=value_from_env(args.secret_env, "--secret-env", "client secret"),
            access_token=value_from_env(args.token_env, "--token-env", "access token"),
        )
    else:
        if args.token_env:
            raise ConfigError(
                "--token-env goes with --secret-env: the asymmetric signature has no token.",
                hint="Leave --token-env out, or sign with --secret-env and --token-env.",
            )
        steps = explain_service_signature(**common, private_key=private_key_from_args(args))
    if args.json:
        print(json.dumps(steps.to_dict(), ensure_ascii=False))
    else:
        print(steps.signature)
    return 0


def verify_notification_cmd(args) -> int:
    from ..doctor import diagnose_notification

    secret = value_from_env(args.secret_env, "--secret-env", "client secret")
    body = body_from_arg(args.body)
    if args.max_age is not None and not args.max_age >= 0:
        raise ConfigError(f"--max-age must be >= 0 seconds, not {args.max_age:g}.", hint="For example 300.")
    result = verify_notification(
        secret, args.url, body, args.timestamp, args.signature, version=args.version, window=args.max_age
    )
    if result.ok:
        print(f"valid: {result.detail}")
        return 0
    if result.reason in ("timestamp-stale", "timestamp-future"):
        print(f"invalid ({result.reason}): {result.detail}", file=sys.stderr)
        return 1
    headers = {"X-TIMESTAMP": args.timestamp, "X-SIGNATURE": args.signature, "X-VERSION": args.version}
    d = diagnose_notification(args.url, headers, body, client_secret=secret)
    print(f"invalid ({d.cause}): {d.summary}", file=sys.stderr)
    if d.fix:
        print(f"fix: {d.fix}", file=sys.stderr)
    return 1
