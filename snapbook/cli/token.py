"""``snapbook token`` and ``snapbook check``.

Exit codes of ``token``: 0 a token; 1 the provider refused (code, meaning and hint are
printed); 2 unusable input; 3 a transport failure or an answer that is not a token response.
``check`` prints a pass/fail table and exits 0 only when every check passes, else 1.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from ..endpoints import names
from ..errors import ConfigError, InvalidResponseError, SnapbookError, SnapResponseError, TransportError
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
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="timeout of each network operation: connect, each read (default 10); "
        "reading an answer is bounded by twice this"
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


def _client(args, key):
    from ..client import TokenClient
    from ..endpoints import resolve

    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ConfigError(
            f"--timeout must be a finite number of seconds > 0, not {args.timeout:g}.",
            hint="The default is 10.",
        )
    endpoint = resolve(args.url) if args.url else resolve(args.env)  # sandbox names read $SNAPBOOK_SANDBOX_URL
    options: dict[str, Any] = {"timeout": args.timeout, "origin": args.origin}
    if args.no_retry:
        options["retry"] = None
    return TokenClient(endpoint, args.client_key, key, **options)


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
    offset = None if token.clock_offset is None else round(token.clock_offset.total_seconds(), 3)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "endpoint": endpoint.name,
                    "url": endpoint.url,
                    "httpStatus": token.http_status,
                    "response": token.response_json(show_token=args.show_token),
                    "tokenType": token.token_type,
                    "expiresIn": token.expires_in,
                    "expiresAt": token.expires_at.isoformat(),
                    "serverTimestamp": token.server_timestamp,
                    "clockOffsetSeconds": offset,
                    "latencyMs": None if token.latency_ms is None else round(token.latency_ms, 2),
                    "attempt": token.attempt,
                    "notes": list(token.notes),
                },
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    print(f"POST {endpoint.url} ({endpoint.name})")
    latency = "" if token.latency_ms is None else f", {token.latency_ms:.1f} ms"
    print(f"HTTP {token.http_status}{latency}, attempt {token.attempt}")
    print(json.dumps(token.response_json(show_token=args.show_token), indent=2, ensure_ascii=False))
    print(f"expires at {token.expires_at.isoformat()} (in {token.expires_in} s)")
    if token.server_timestamp:
        print(
            f"server X-TIMESTAMP {token.server_timestamp}, clock offset (server - local) {offset:+.1f} s"
            if offset is not None
            else f"server X-TIMESTAMP {token.server_timestamp} (unreadable)"
        )
    for note in token.notes:
        print(f"note: {note}")
    return EXIT_OK


def _print_failure(args, exc: SnapbookError) -> None:
    if args.json:
        print(json.dumps(_error_json(exc), ensure_ascii=False))
        return
    if isinstance(exc, SnapResponseError):
        code = (exc.response_code or "(none)")[:32]
        text = exc.response_message or ""
        message = f" {(text if len(text) <= 200 else text[:199] + '…')!r}" if text else ""
        print(f"refused: HTTP {exc.http_status}, responseCode {code}{message}", file=sys.stderr)
        print(f"meaning: {exc.meaning}", file=sys.stderr)
        print(f"hint: {exc.hint}", file=sys.stderr)
    else:
        print(f"snapbook: error: {type(exc).__name__}: {exc}", file=sys.stderr)


# --- snapbook check ---------------------------------------------------------------------

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


def check_cmd(args) -> int:
    rows: list[tuple[str, str, str]] = []
    _run_checks(args, rows)
    ok = all(result == PASS for _, result, _ in rows)
    if args.json:
        print(
            json.dumps(
                {"ok": ok, "checks": [{"check": c, "result": r, "detail": d} for c, r, d in rows]},
                ensure_ascii=False,
            )
        )
    else:
        width = max(len(c) for c, _, _ in rows)
        print(f"{'check'.ljust(width)}  result  detail")
        for check, result, detail in rows:
            print(f"{check.ljust(width)}  {result.ljust(6)}  {detail}")
        print("all checks passed" if ok else "some checks failed")
    return EXIT_OK if ok else EXIT_REFUSED


def _run_checks(args, rows: list[tuple[str, str, str]]) -> None:
    from ..keys import MIN_BITS, describe_key, read_private_key
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
        rows.append(
            ("clock offset", PASS, f"{last.clock_offset_s:+.1f} s (server - local; resolution about 1 s)")
        )
    else:
        rows.append(
            (
                "clock offset",
                FAIL,
                f"{last.clock_offset_s:+.1f} s exceeds {args.max_offset:g} s: synchronise your clock (NTP); "
                + "providers refuse stale timestamps",
            )
        )
    if last.latency_ms is not None and last.latency_ms <= args.max_latency:
        rows.append(("latency", PASS, f"{last.latency_ms:.1f} ms (limit {args.max_latency:g} ms)"))
    elif last.latency_ms is not None:
        rows.append(("latency", FAIL, f"{last.latency_ms:.1f} ms exceeds {args.max_latency:g} ms"))
    else:
        rows.append(("latency", FAIL, "not measured"))
