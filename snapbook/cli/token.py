"""``snapbook token`` and ``snapbook check``.

Exit codes of ``token``: 0 a token; 1 the provider refused (code, meaning and hint are
printed); 2 unusable input; 3 a transport failure or an answer that is not a token response.
``check`` prints a pass/fail table and exits 0 only when every check passes, else 1.

Everything that came from the network is printed with control characters escaped
(:func:`snapbook.masking.printable`), URLs with their userinfo masked, times in +07:00.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from ..endpoints import names
from ..errors import ConfigError, InvalidResponseError, SnapbookError, SnapResponseError, TransportError
from ..masking import mask_url, printable
from ._common import add_passphrase_option, passphrase_from_env

#: Environment variable naming a running sandbox's base URL, for ``--env sandbox``.
SANDBOX_URL_ENV = "SNAPBOOK_SANDBOX_URL"

EXIT_OK, EXIT_REFUSED, EXIT_INPUT, EXIT_TRANSPORT = 0, 1, 2, 3


def _add_target(p) -> None:
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--env",
        metavar="NAME",
        help=f"endpoint name: {', '.join(names())} (sandbox names read ${SANDBOX_URL_ENV})",
    )
    target.add_argument("--url", metavar="URL", help="full URL of a token endpoint")
    p.add_argument("--client-key", required=True, metavar="ID", help="X-CLIENT-KEY (client_id)")
    p.add_argument("--key", required=True, metavar="FILE", help="private key file (PEM or DER)")
    add_passphrase_option(p)
    p.add_argument(
        "--origin", metavar="DOMAIN", help="optional ORIGIN header (the domain registered with the provider)"
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="timeout of each network operation: connect, each read (default 10, at most 86400); "
        "the whole attempt (connect, headers, body) is bounded by twice this"
    )
    p.add_argument(
        "--no-retry", action="store_true", help="one attempt only (no retries of transient failures)"
    )


def register(sub) -> None:
    p = sub.add_parser(
        "token",
        help="request a B2B access token: exit 0 token, 1 refused, 2 unusable input, 3 transport failure or invalid answer",
    )
    _add_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--show-token", action="store_true", help="print the whole access token (masked by default)"
    )
    p.set_defaults(func=token_cmd)

    p = sub.add_parser(
        "check", help="onboarding self-check: key, signature, token, clock offset, latency (exit 0 all pass)"
    )
    _add_target(p)
    p.add_argument(
        "--max-offset",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="largest acceptable clock offset to the server (default 60)",
    )
    p.add_argument(
        "--max-latency",
        type=float,
        default=3000.0,
        metavar="MS",
        help="largest acceptable latency in milliseconds (default 3000)",
    )
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    p.set_defaults(func=check_cmd)


def _check_args(args) -> Any:
    """The endpoint, after every option is checked: unusable input is a ConfigError (exit 2), before any network."""
    from ..client import MAX_TIMEOUT
    from ..client.exchange import resolve_target

    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT):
        raise ConfigError(
            f"--timeout must be a finite number of seconds > 0 and <= {MAX_TIMEOUT:g}, not {args.timeout:g}.",
            hint="The default is 10.",
        )
    for name in ("max_offset", "max_latency"):
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(
                f"--{name.replace('_', '-')} must be a finite number >= 0, not {value:g}.",
                hint="Leave it out to use the default.",
            )
    if args.url:
        return resolve_target(args.url)
    return resolve_target(args.env)  # sandbox names read $SNAPBOOK_SANDBOX_URL, else the CLI sandbox default


def _client(args, key):
    from ..client import TokenClient

    endpoint = _check_args(args)
    options: dict[str, Any] = {"timeout": args.timeout, "origin": args.origin}
    if args.no_retry:
        options["retry"] = None
    return TokenClient(endpoint, args.client_key, key, **options)


def _say(text: str, file: Any = None) -> None:
    """Print one line, control characters escaped: servers and URLs can hold anything."""
    print(printable(text), file=file or sys.stdout)


def _dumps(data: Any, indent: int | None = None) -> str:
    """JSON text with every non-printable character (DEL, C1, bidi overrides, ...) \\u-escaped: still valid JSON."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    if text.replace("\n", "").isprintable():
        return text
    return "".join(c if c == "\n" or c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _error_json(exc: SnapbookError) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, SnapResponseError):
        out.update(
            httpStatus=exc.http_status,
            responseCode=exc.response_code,
            responseMessage=exc.response_message,
            meaning=exc.meaning,
        )
    return out


# --- snapbook token ---------------------------------------------------------------------


def token_cmd(args) -> int:
    from ..keys import read_private_key

    _check_args(args)
    key = read_private_key(args.key, passphrase_from_env(args.passphrase_env))
    with _client(args, key) as client:
        try:
            token = client.request_token()
        except SnapResponseError as exc:
            _print_failure(args, exc)
            return EXIT_REFUSED
        except (TransportError, InvalidResponseError) as exc:
            _print_failure(args, exc)
            return EXIT_TRANSPORT
        endpoint = client.endpoint
    from ..signing import JAKARTA

    offset = None if token.clock_offset is None else round(token.clock_offset.total_seconds(), 3)
    uncertainty = token.clock_offset_uncertainty
    url = mask_url(endpoint.url)
    expires_at = token.expires_at.astimezone(JAKARTA).isoformat()  # one zone, +07:00 like X-TIMESTAMP
    if args.json:
        print(
            _dumps(
                {
                    "ok": True,
                    "endpoint": endpoint.name,
                    "url": url,
                    "httpStatus": token.http_status,
                    "response": token.response_json(show_token=args.show_token),
                    "tokenType": token.token_type,
                    "expiresIn": token.expires_in,
                    "expiresAt": expires_at,
                    "serverTimestamp": token.server_timestamp,
                    "clockOffsetSeconds": offset,
                    "clockOffsetUncertaintySeconds": None
                    if uncertainty is None
                    else round(uncertainty.total_seconds(), 3),
                    "clockOffset": token.clock_offset_text or None,
                    "latencyMs": None if token.latency_ms is None else round(token.latency_ms, 2),
                    "attempt": token.attempt,
                    "notes": list(token.notes),
                }
            )
        )
        return EXIT_OK
    _say(f"POST {url} ({endpoint.name})")
    latency = "" if token.latency_ms is None else f", {token.latency_ms:.1f} ms"
    _say(f"HTTP {token.http_status}{latency}, attempt {token.attempt}")
    print(_dumps(token.response_json(show_token=args.show_token), indent=2))
    _say(f"expires at {expires_at} (in {token.expires_in} s)")
    if token.server_timestamp:
        _say(
            f"server X-TIMESTAMP {token.server_timestamp}, clock offset (server - local) {token.clock_offset_text}"
            if offset is not None
            else f"server X-TIMESTAMP {token.server_timestamp} (unreadable)"
        )
    for note in token.notes:
        _say(f"note: {note}")
    return EXIT_OK


def _print_failure(args, exc: SnapbookError) -> None:
    if args.json:
        print(_dumps(_error_json(exc)))
        return
    if isinstance(exc, SnapResponseError):
        code = printable(exc.response_code or "(none)", 32)
        text = exc.response_message or ""
        message = f" {(text if len(text) <= 200 else text[:199] + '…')!r}" if text else ""
        _say(f"refused: HTTP {exc.http_status}, responseCode {code}{message}", sys.stderr)
        _say(f"meaning: {exc.meaning}", sys.stderr)
        _say(f"hint: {exc.hint}", sys.stderr)
    else:
        _say(f"snapbook: error: {type(exc).__name__}: {exc}", sys.stderr)


# --- snapbook check ---------------------------------------------------------------------

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


def check_cmd(args) -> int:
    _check_args(args)
    rows: list[tuple[str, str, str]] = []
    _run_checks(args, rows)
    ok = all(result == PASS for _, result, _ in rows)
    if args.json:
        print(_dumps({"ok": ok, "checks": [{"check": c, "result": r, "detail": d} for c, r, d in rows]}))
    else:
        width = max(len(c) for c, _, _ in rows)
        print(f"{'check'.ljust(width)}  result  detail")
        for check, result, detail in rows:
            _say(f"{check.ljust(width)}  {result.ljust(6)}  {detail}")
        print("all checks passed" if ok else "some checks failed")
    return EXIT_OK if ok else EXIT_REFUSED


def _run_checks(args, rows: list[tuple[str, str, str]]) -> None:
    from ..keys import MIN_BITS, describe_key, read_private_key
    from ..log import format_clock_offset
    from ..signing import make_timestamp, sign, string_to_sign, verify

    later = [
        "key strength",
        "fingerprint",
        "sign and verify locally",
        "token request",
        "clock offset",
        "latency",
    ]

    def skip_rest(names_: list[str], why: str) -> None:
        rows.extend((n, SKIP, why) for n in names_)

    try:
        key = read_private_key(args.key, passphrase_from_env(args.passphrase_env), min_bits=0)
    except SnapbookError as exc:
        rows.append(("key loads", FAIL, str(exc)))
        skip_rest(later, "the key did not load")
        return
    info = describe_key(key)
    rows.append(("key loads", PASS, f"RSA private key from {args.key}"))
    if info.bits >= MIN_BITS and info.public_exponent == 65537:
        rows.append(("key strength", PASS, f"{info.bits} bits, e={info.public_exponent}"))
    else:
        rows.append(
            (
                "key strength",
                FAIL,
                f"{info.bits} bits, e={info.public_exponent}: SNAP needs RSA >= {MIN_BITS} bits "
                + "(generate a new pair with `snapbook keygen`)",
            )
        )
    rows.append(("fingerprint", PASS, f"{info.fingerprint} (SHA-256 of the public key you registered)"))
    try:
        timestamp = make_timestamp()
        text = string_to_sign(args.client_key, timestamp)
        good = verify(key.public_key(), text, sign(key, text))
        rows.append(
            (
                "sign and verify locally",
                PASS if good else FAIL,
                f"SHA256withRSA over {text!r}" + ("" if good else " did not verify"),
            )
        )
    except SnapbookError as exc:
        rows.append(("sign and verify locally", FAIL, str(exc)))
        skip_rest(later[3:], "cannot sign")
        return

    try:
        client = _client(args, key)
    except SnapbookError as exc:
        rows.append(("token request", FAIL, str(exc)))
        skip_rest(later[4:], "no request was sent")
        return
    with client:
        try:
            token = client.request_token()
            detail = (
                f"HTTP {token.http_status} {token.response_code or ''} {token.response_message or ''}".rstrip()
                + f", {token.token_type} {token.masked}, expiresIn {token.expires_in}"
            )
            rows.append(("token request", PASS, f"{client.endpoint.name}: {detail}"))
        except SnapResponseError as exc:
            rows.append(("token request", FAIL, f"{exc.message} Hint: {exc.hint}"))
        except (TransportError, InvalidResponseError) as exc:
            rows.append(("token request", FAIL, f"{type(exc).__name__}: {exc}"))
        last = client.log.records[-1] if len(client.log) else None

    if last is None or last.http_status is None:
        skip_rest(later[4:], "no answer from the server")
        return
    if last.clock_offset_s is None:
        rows.append(
            (
                "clock offset",
                FAIL,
                "the server sent no readable X-TIMESTAMP (a mandatory header); offset unknown",
            )
        )
    elif abs(last.clock_offset_s) <= args.max_offset:
        shown = format_clock_offset(last.clock_offset_s, last.clock_offset_uncertainty_s)
        rows.append(("clock offset", PASS, f"{shown} (server - local)"))
    else:
        shown = format_clock_offset(last.clock_offset_s, last.clock_offset_uncertainty_s)
        rows.append(
            (
                "clock offset",
                FAIL,
                f"{shown} exceeds {args.max_offset:g} s: synchronise your clock (NTP); "
                + "providers refuse stale timestamps",
            )
        )
    if last.latency_ms is not None and last.latency_ms <= args.max_latency:
        rows.append(("latency", PASS, f"{last.latency_ms:.1f} ms (limit {args.max_latency:g} ms)"))
    elif last.latency_ms is not None:
        rows.append(("latency", FAIL, f"{last.latency_ms:.1f} ms exceeds {args.max_latency:g} ms"))
    else:
        rows.append(("latency", FAIL, "not measured"))
