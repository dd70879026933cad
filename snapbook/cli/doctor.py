"""``snapbook doctor``: why a signature does not verify."""

from __future__ import annotations

import json
from pathlib import Path

from ..doctor import diagnose
from ..errors import ClientKeyError, ConfigError, SignatureFormatError, TimestampError
from ..keys import MIN_BITS_TO_INSPECT, read_public_key
from ._common import MAX_MESSAGE_CHARS, shown, text_argument


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="say exactly why an X-SIGNATURE does not verify: exit 0 valid, 1 invalid, 2 unusable input",
    )
    p.add_argument(
        "--public-key", required=True, metavar="FILE", help="the public key the server verifies with"
    )
    p.add_argument("--client-key", required=True, metavar="ID", help="X-CLIENT-KEY as sent")
    p.add_argument("--timestamp", required=True, metavar="TS", help="X-TIMESTAMP as sent")
    p.add_argument("--signature", required=True, metavar="SIG", help="X-SIGNATURE as sent")
    p.add_argument(
        "--body", metavar="FILE_OR_JSON", help="the request body (a file, or the JSON text itself)"
    )
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.set_defaults(func=doctor_cmd)


#: The largest request body the doctor reads from a file (the sandbox itself refuses over 16 KiB).
MAX_BODY_BYTES = 1024 * 1024


def _body(value: str | None) -> bytes | None:
    """``--body``: a regular file's bytes (bounded), else the text itself."""
    if value is None:
        return None
    path = Path(value)
    try:
        is_file = len(value) < 4096 and path.is_file()
    except (OSError, ValueError):
        is_file = False
    if is_file:
        try:
            with path.open("rb") as f:
                data = f.read(MAX_BODY_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"Cannot read the --body file {shown(value)}: {exc.strerror or exc}.",
                              hint="Check the path, or pass the JSON body itself.") from None
        if len(data) > MAX_BODY_BYTES:
            raise ConfigError(f"The --body file {shown(value)} is larger than {MAX_BODY_BYTES // 1024} KiB.",
                              hint="Pass the request body as it was sent (SNAP token bodies are tiny).")
        return data
    return text_argument(value, "--body", ConfigError).encode("utf-8")


def _say(line: str) -> None:
    """One line of the diagnosis: control characters escaped and bounded (it echoes the arguments)."""
    print(shown(line, MAX_MESSAGE_CHARS - 100))


def _json_for_terminals(doc: dict) -> str:
    # json escapes C0 controls; C1 controls (U+0080-U+009F, e.g. CSI) would reach the terminal raw.
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    return "".join(f"\\u{ord(c):04x}" if 0x80 <= ord(c) <= 0x9F else c for c in text)


def doctor_cmd(args) -> int:
    public_key = read_public_key(args.public_key, min_bits=MIN_BITS_TO_INSPECT)
    text_argument(args.client_key, "--client-key", ClientKeyError)
    text_argument(args.timestamp, "--timestamp", TimestampError)
    text_argument(args.signature, "--signature", SignatureFormatError)
    d = diagnose(public_key, args.client_key, args.timestamp, args.signature, body=_body(args.body))
    if args.json:
        print(_json_for_terminals(d.to_dict()))
        return 0 if d.ok else 1
    # The summary already says "Valid: ..." when it is; an invalid one gets its verdict and cause in front.
    _say(d.summary if d.ok else f"{d.verdict} ({d.cause}): {d.summary}")
    if not d.ok:
        if d.details:
            _say(f"why: {d.details}")
        if d.fix:
            _say(f"fix: {d.fix}")
    for note in d.notes:
        _say(f"note: {note}")
    return 0 if d.ok else 1
