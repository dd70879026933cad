"""``snapbook sandbox``: run the local SNAP provider in the foreground, one line per request."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..endpoints import DEFAULT_SANDBOX_URL, SANDBOX_URL_ENV
from ..errors import ConfigError, KeyFileError
from ..masking import printable

#: The console runs the signature doctor on refused signatures with at most this share of one
#: core (after a burst of _DOCTOR_BURST seconds), so a flood of bad requests cannot slow the
#: server; the lines it skips say so. The journal (Python API) can always diagnose every row.
_DOCTOR_SHARE = 0.05
_DOCTOR_BURST = 0.25
#: After printing a batch, the console sleeps this long so that lines gather (see printer()).
#: Each wake-up under load costs a fight for the interpreter lock with the busy event loop: the
#: waiting thread is signalled at every lock release of the loop (3 system calls per request)
#: for up to the switch interval (5 ms), about 36 futex calls per wake-up measured with
#: `perf trace`. At 0.02 s that was 0.72 futex calls and 0.9 context switches per request at
#: 3,000 req/s; at 0.1 s, 0.09 and 0.2, and the console thread's CPU per request halves. A
#: line after an idle moment is still printed at once (the console waits on `wake` first).
_CONSOLE_PAUSE = 0.1


def _number(kind: type[int | float], low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` within [low, high], else a one-line usage error (exit 2)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{printable(text, 40)} is not {what}")
        return value

    parse.__name__ = what  # what argparse names in "invalid ... value"
    return parse


_PORT = _number(int, 0, 65535, "a port from 0 to 65535")
_FRESHNESS = _number(float, 0, 366 * 24 * 3600, "a number of seconds from 0 to 31622400 (0: off)")
_LIFETIME = _number(int, 1, 366 * 24 * 3600, "a whole number of seconds from 1 to 31622400")
_BODY = _number(int, 64, 16 * 1024 * 1024, "a number of bytes from 64 to 16777216")
_DELAY = _number(float, 0, 3600, "a number of seconds from 0 to 3600")
_SHARE = _number(float, 0, 1, "a share between 0 and 1")
_RETRY_AFTER = _number(int, 0, 86_400, "a whole number of seconds from 0 to 86400")
_SEED = _number(int, 0, 2**63 - 1, "a whole number from 0 to 2**63-1")


def register(sub) -> None:
    p = sub.add_parser(
        "sandbox",
        help="run a local SNAP token provider (Ctrl+C to stop), printing one line per request",
        description="A well-documented SNAP provider on loopback: the Payment, Disbursement and plain "
        "SNAP token routes, /sandbox/v1.0/token/validate and /openapi.json. By default it is lenient: it "
        "accepts the standard's forms plus what real clients also send (-00:00, +0700, a space for T, a "
        'fraction of other than three digits, grant_type, additionalInfo "") and notes each; --strict refuses those.',
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)"
    )
    p.add_argument("--port", type=_PORT, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="CLIENT_KEY=PUBLIC_KEY_FILE",
        help="accept this client key, signed by the private half of this public key (repeatable)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse what the default (lenient) accepts with a note: X-TIMESTAMP with -00:00, +0700, a space "
        'for T or a fraction of other than 3 digits; grant_type; additionalInfo "" (Z, +hh:mm and .SSS stay accepted: '
        "they are the standard's)",
    )
    p.add_argument(
        "--route-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="also serve the token routes under PREFIX, for SDKs that hard-code a path (repeatable); "
        "--route-prefix /openapi serves /openapi/v1.0/access-token/b2b",
    )
    p.add_argument(
        "--freshness",
        type=_FRESHNESS,
        default=300,
        metavar="SECONDS",
        help="X-TIMESTAMP window either way (default 300, snapbook's choice: SNAP names none; 0 turns it off)",
    )
    p.add_argument(
        "--token-lifetime",
        type=_LIFETIME,
        default=900,
        metavar="SECONDS",
        help="token lifetime (default 900)",
    )
    p.add_argument(
        "--expires-in-number", action="store_true", help="send expiresIn as a JSON number, not a string"
    )
    p.add_argument(
        "--max-body-bytes",
        type=_BODY,
        default=16 * 1024,
        metavar="N",
        help="largest body accepted (default 16384)",
    )
    p.add_argument(
        "--secret-env",
        metavar="VAR",
        help="environment variable holding the HS512 token secret (default: random per run)",
    )
    p.add_argument(
        "--client-secret",
        action="append",
        default=[],
        metavar="CLIENT_KEY=ENV_VAR",
        help="the client secret of a registered client's service calls and notifications, read from the "
        "environment variable ENV_VAR (never from the command line; repeatable)",
    )
    p.add_argument(
        "--partner-id",
        action="append",
        default=[],
        metavar="CLIENT_KEY=PARTNER_ID",
        help="the X-PARTNER-ID of a registered client's service calls (default: its client key; repeatable)",
    )
    p.add_argument(
        "--allow-remote-callbacks",
        action="store_true",
        help="deliver QRIS notifications to callback hosts other than loopback (off: refused at generate)",
    )
    f = p.add_argument_group("fault injection (token and service routes; seeded, repeatable)")
    f.add_argument("--latency", type=_DELAY, default=0.0, metavar="S", help="added delay per answer")
    f.add_argument("--jitter", type=_DELAY, default=0.0, metavar="S", help="plus a random 0..S seconds")
    f.add_argument(
        "--slow", type=_DELAY, default=0.0, metavar="S", help="a further delay, to exceed a client's timeout"
    )
    f.add_argument("--rate-429", type=_SHARE, default=0.0, metavar="P", help="share of 429 Too Many Requests")
    f.add_argument(
        "--retry-after", type=_RETRY_AFTER, default=1, metavar="S", help="Retry-After of the 429s (default 1)"
    )
    f.add_argument("--rate-500", type=_SHARE, default=0.0, metavar="P", help="share of 500 General Error")
    f.add_argument(
        "--rate-503", type=_SHARE, default=0.0, metavar="P", help="share of 503 Service Unavailable"
    )
    f.add_argument("--rate-504", type=_SHARE, default=0.0, metavar="P", help="share of 504 Timeout")
    f.add_argument(
        "--rate-drop", type=_SHARE, default=0.0, metavar="P", help="share of connections closed unanswered"
    )
    f.add_argument("--seed", type=_SEED, default=0, help="random seed of the faults (default 0)")
    p.set_defaults(func=sandbox_cmd)

    pay = sub.add_parser(
        "sandbox-pay",
        help="pay a QR generated on a running sandbox and show how its notification was delivered",
        description="Marks the QR REFERENCE_NO paid on a running `snapbook sandbox` "
        "(POST /sandbox/v1.0/qr/pay), which then posts the signed notification to the QR's "
        "callbackUrl. Exit 0 when the callback answered HTTP 200, 1 when it did not (or the QR is "
        "unknown, expired or paid), 3 when the sandbox is unreachable.",
    )
    pay.add_argument("reference_no", metavar="REFERENCE_NO", help="the referenceNo qr-mpm-generate answered")
    pay.add_argument(
        "--url", default=None, help=f"the sandbox (default ${SANDBOX_URL_ENV}, else {DEFAULT_SANDBOX_URL})"
    )
    pay.add_argument("--issuer", default=None, help="the paying issuer's name (default SANDBOXPAY)")
    pay.set_defaults(func=sandbox_pay_cmd)


def _clients(pairs: list[str]) -> dict[str, str]:
    clients: dict[str, str] = {}
    for pair in pairs:
        client_key, sep, path = pair.partition("=")
        if not sep or not client_key.strip() or not path.strip():
            raise ConfigError(
                f"--register {printable(repr(pair), 200)} is not CLIENT_KEY=PUBLIC_KEY_FILE.",
                hint="For example: --register MCP00000001=keys/public.pem",
            )
        clients[client_key.strip()] = path.strip()
    return clients


def _pairs(option: str, pairs: list[str], what: str, known: dict[str, str]) -> dict[str, str]:
    """``CLIENT_KEY=VALUE`` options for clients registered with --register."""
    out: dict[str, str] = {}
    for pair in pairs:
        client_key, sep, value = pair.partition("=")
        client_key, value = client_key.strip(), value.strip()
        if not sep or not client_key or not value:
            raise ConfigError(
                f"{option} {printable(repr(pair), 200)} is not CLIENT_KEY={what}.",
                hint=f"For example: {option} MCP00000001="
                + ("SNAP_CLIENT_SECRET" if what == "ENV_VAR" else "MCP2021110228"),
            )
        if client_key not in known:
            raise ConfigError(
                f"{option} names client {printable(client_key, 100)}, which is not registered.",
                hint="Register it first: --register CLIENT_KEY=PUBLIC_KEY_FILE.",
            )
        out[client_key] = value
    return out


def _secrets(pairs: list[str], known: dict[str, str]) -> dict[str, str]:
    """Client secrets from the environment variables --client-secret names (never from argv)."""
    out: dict[str, str] = {}
    for client_key, name in _pairs("--client-secret", pairs, "ENV_VAR", known).items():
        try:
            value = os.environ.get(name)
        except ValueError:  # a name with NUL or '=' cannot be a variable
            value = None
        if not value:
            raise ConfigError(
                f"--client-secret {printable(client_key, 100)}: the environment variable "
                f"{printable(name, 100)} is not set (or empty).",
                hint=f"export {printable(name, 100)}=... with the client secret; "
                "it is never given on the command line.",
            )
        out[client_key] = value
    return out


def _write(text: str) -> bool:
    """Print ``text`` to stdout whatever its encoding; False when stdout is closed."""
    try:
        try:
            print(text, flush=True)
        except UnicodeEncodeError:  # a terminal that is not UTF-8: escape what it cannot show
            encoding = getattr(sys.stdout, "encoding", None) or "ascii"
            print(text.encode(encoding, "backslashreplace").decode(encoding), flush=True)
    except (BrokenPipeError, ValueError, OSError):
        return False
    return True


def sandbox_cmd(args) -> int:
    from pathlib import Path

    from ..keys import fingerprint, read_public_key
    from ..sandbox import Faults, Sandbox, SandboxConfig
    from ..sandbox.app import OPENAPI_PATH, VALIDATE_PATH
    from ..sandbox.service_routes import served_routes

    secret = None
    if args.secret_env is not None:  # an empty name is a mistake, not "no secret"
        name = printable(args.secret_env, 100) or "''"
        try:
            secret = os.environ.get(args.secret_env)
        except ValueError:  # a name with NUL or '=' cannot be a variable
            secret = None
        if secret is None:
            raise ConfigError(
                f"--secret-env names {name}, but that environment variable is not set.",
                hint=f"export {name}=... (32 characters or more), or leave --secret-env out.",
            )
    faults = Faults(
        latency=args.latency,
        jitter=args.jitter,
        slow_seconds=args.slow,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        rate_504=args.rate_504,
        rate_drop=args.rate_drop,
        seed=args.seed,
    )
    config = SandboxConfig(
        freshness_seconds=args.freshness or None,  # 0 turns the check off; the type refused the rest
        token_lifetime=args.token_lifetime,
        strict=args.strict,
        expires_in_as_number=args.expires_in_number,
        max_body_bytes=args.max_body_bytes,
        secret=secret,
        faults=faults,
        route_prefixes=tuple(args.route_prefix),
        allow_remote_callbacks=args.allow_remote_callbacks,
    )
    keys = {}
    for client_key, path in _clients(args.register).items():
        try:
            keys[client_key] = read_public_key(Path(path))
        except KeyFileError as exc:  # already says what is wrong with the file, and how to fix it
            raise ConfigError(f"--register {printable(client_key, 100)}: {exc.message}", hint=exc.hint) from None
        except OSError as exc:  # not a directory, permission denied, ...: the option, not a bug
            raise ConfigError(
                f"--register {printable(client_key, 100)}: cannot read {printable(path, 200)}: "
                f"{exc.strerror or type(exc).__name__}.",
                hint="Give the path of the client's public key file (PEM or DER), e.g. keys/public.pem.",
            ) from None
    paths = _clients(args.register)
    client_secrets = _secrets(args.client_secret, paths)
    secret_names = _pairs("--client-secret", args.client_secret, "ENV_VAR", paths)
    partners = _pairs("--partner-id", args.partner_id, "PARTNER_ID", paths)
    sandbox = Sandbox(config, host=args.host, port=args.port)
    for client_key, key in keys.items():
        sandbox.register(
            client_key, key, secret=client_secrets.get(client_key), partner_id=partners.get(client_key)
        )

    # Lines are printed by their own thread: working out a refused signature's doctor note takes
    # up to tens of ms and must not hold up the server; a CPU budget keeps it from competing.
    # The hand-over runs on the server's event loop for every request, so it is a deque append
    # (atomic, no lock) and an Event set only when the console sleeps: a queue.Queue.put took a
    # lock and notified a condition each time (about 1.5 us of the loop thread per request).
    lines: deque = deque()
    wake = threading.Event()

    def show(entry) -> None:
        lines.append(entry)
        if not wake.is_set():
            wake.set()

    unsubscribe = sandbox.journal.subscribe(show)

    def printer() -> None:
        spent, last = 0.0, time.monotonic()
        done = False
        while not done:
            wake.wait()
            wake.clear()  # before draining: an entry appended after this sets it again
            batch = [lines.popleft() for _ in range(len(lines))]  # what is there now, however busy
            out = []
            for entry in batch:
                if entry is None:
                    done = True
                    break
                if entry.doctor is not None:
                    # The budget decays with time; read the clock only here (a row without a
                    # pending doctor note costs nothing to it: the decay adds up the same).
                    now = time.monotonic()
                    spent, last = max(0.0, spent - (now - last) * _DOCTOR_SHARE), now
                    if spent < _DOCTOR_BURST:
                        entry = entry.resolved()
                        spent += time.monotonic() - now
                    else:
                        entry = replace(entry, doctor=None, notes=(*entry.notes, "doctor: skipped while busy"))
                out.append(entry.line())
            if out and not _write("\n".join(out)):
                unsubscribe()  # stdout is gone (a closed pipe): no more rows queued for nobody
                lines.clear()
                return  # the server keeps serving, silently
            if out:
                time.sleep(_CONSOLE_PAUSE)  # lines gather: one wake-up and one write per batch

    printing = threading.Thread(target=printer, name="snapbook-sandbox-console", daemon=True)
    printing.start()

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox.start()
        mode = "strict" if config.strict else "lenient"
        window = "off" if config.freshness_seconds is None else f"±{config.freshness_seconds:g} s"
        print(
            f"snapbook sandbox listening on {sandbox.base_url} ({mode}, freshness {window}, "
            f"tokens {config.token_lifetime} s)",
            flush=True,
        )
        for path, product in config.token_paths().items():
            print(f"  {product:<13} POST {sandbox.base_url}{path}")
        for method, path, what in served_routes():
            print(f"  {'service':<13} {method} {sandbox.base_url}{path}  ({what})")
        print(f"  {'validate':<13} GET|POST {sandbox.base_url}{VALIDATE_PATH}  (Authorization: Bearer ...)")
        print(f"  {'openapi':<13} GET {sandbox.base_url}{OPENAPI_PATH}")
        where = "the default" if sandbox.base_url == DEFAULT_SANDBOX_URL else "needed"
        print(f"  export {SANDBOX_URL_ENV}={sandbox.base_url}  (for --env sandbox elsewhere; {where})")
        for client_key, key in keys.items():
            partner = partners.get(client_key, client_key)
            secret_from = (
                f"client secret from ${printable(secret_names[client_key], 60)}"
                if client_key in client_secrets
                else "no client secret (service calls refused: --client-secret)"
            )
            print(
                f"  client {printable(client_key, 100)}: public key {fingerprint(key)}, "
                f"partner {printable(partner, 40)}, {secret_from}"
            )
        if not keys:
            print(
                "  no clients registered (--register CLIENT_KEY=PUBLIC_KEY_FILE): every request gets Unknown client"
            )
        if faults.active:
            print(f"  faults: {faults.describe()}")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"snapbook: warning: listening on {printable(args.host, 100)}, reachable from other machines",
                file=sys.stderr,
            )
        print("Press Ctrl+C to stop.", flush=True)
        while not stop.wait(0.5):
            if not sandbox.running:
                print("snapbook: error: the sandbox server stopped unexpectedly", file=sys.stderr)
                return 2
    finally:
        sandbox.stop()
        show(None)
        printing.join(timeout=5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counts = sandbox.journal.counts()
    detail = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    print(f"stopped after {len(sandbox.journal)} request(s)" + (f": {detail}" if detail else ""), flush=True)
    return 0


def sandbox_pay_cmd(args) -> int:
    import httpx

    from ..endpoints import TOKEN_PATHS, resolve
    from ..sandbox.service_routes import PAY_PATH

    token_url = resolve("sandbox", sandbox_url=args.url).url  # the same rules as --env sandbox
    base = token_url.removesuffix(TOKEN_PATHS["payment"]).rstrip("/")
    body: dict[str, str] = {"referenceNo": args.reference_no}
    if args.issuer is not None:
        body["issuer"] = args.issuer
    try:
        with httpx.Client(trust_env=False, timeout=120) as client:
            answer = client.post(base + PAY_PATH, json=body)
        data = answer.json()
    except httpx.HTTPError as exc:
        where = printable(base, 200)
        print(f"snapbook: error: cannot reach the sandbox at {where}: {type(exc).__name__}", file=sys.stderr)
        return 3
    except ValueError:
        where = printable(base, 200)
        print(f"snapbook: error: {where} did not answer JSON (is it a snapbook sandbox?)", file=sys.stderr)
        return 3
    if not isinstance(data, dict):
        print("snapbook: error: the sandbox's answer is not a JSON object", file=sys.stderr)
        return 3
    code = printable(str(data.get("responseCode", "")), 16)
    message = printable(str(data.get("responseMessage", "")), 160)
    if answer.status_code != 200:
        print(f"refused: {answer.status_code} {code} {message}")
        return 1
    reference = printable(str(data.get("referenceNo")), 80)
    paid_time = printable(str(data.get("paidTime")), 40)
    print(f"paid: {reference} at {paid_time}")
    notification = data.get("notification") if isinstance(data.get("notification"), dict) else {}
    print(f"notification to {printable(str(notification.get('callbackUrl', '')), 200)}")
    for attempt in notification.get("attempts", []) or []:
        if isinstance(attempt, dict):
            status = attempt.get("httpStatus") or "---"
            error = printable(str(attempt.get("error") or ""), 160)
            number = printable(str(attempt.get("attempt")), 4)
            code = printable(str(attempt.get("responseCode") or ""), 16)
            latency = printable(str(attempt.get("latencyMs")), 12)
            print(
                f"  attempt {number}: HTTP {printable(str(status), 4)} {code} {latency} ms"
                + (f" ({error})" if error else "")
            )
    if notification.get("refused"):
        print(f"  not sent: {printable(str(notification['refused']), 300)}")
    delivered = notification.get("delivered") is True
    print("delivered" if delivered else "not delivered")
    return 0 if delivered else 1
