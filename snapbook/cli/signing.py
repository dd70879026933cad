"""``snapbook sign`` and ``snapbook verify``."""

from __future__ import annotations

import json
import sys

from ..errors import ClientKeyError, SignatureFormatError, TimestampError
from ..keys import read_public_key
from ..signing import decode_signature, make_timestamp, parse_timestamp, sign, string_to_sign, verify
from ._common import add_passphrase_option, private_key_from_args, shown_repr, text_argument


def register(sub) -> None:
    p = sub.add_parser("sign", help="print the X-SIGNATURE for a client key and timestamp")
    p.add_argument("--key", required=True, metavar="FILE", help="private key file (PEM or DER)")
    p.add_argument("--client-key", required=True, metavar="ID", help="X-CLIENT-KEY (client_id)")
    p.add_argument("--timestamp", metavar="TS", help="X-TIMESTAMP to sign (default: now, +07:00, shown on stderr)")
    add_passphrase_option(p)
    p.add_argument("--json", action="store_true", help="print {stringToSign, timestamp, signature}")
    p.set_defaults(func=sign_cmd)

    p = sub.add_parser("verify", help="check an X-SIGNATURE: exit 0 valid, 1 invalid, 2 unusable input")
    p.add_argument("--public-key", required=True, metavar="FILE")
    p.add_argument("--client-key", required=True, metavar="ID")
    p.add_argument("--timestamp", required=True, metavar="TS")
    p.add_argument("--signature", required=True, metavar="SIG")
    p.set_defaults(func=verify_cmd)


def _check_text(args) -> None:
    text_argument(args.client_key, "--client-key", ClientKeyError)
    if args.timestamp is not None:
        text_argument(args.timestamp, "--timestamp", TimestampError)
    if getattr(args, "signature", None) is not None:
        text_argument(args.signature, "--signature", SignatureFormatError)


def sign_cmd(args) -> int:
    _check_text(args)
    key = private_key_from_args(args)
    timestamp = args.timestamp if args.timestamp is not None else make_timestamp()
    parse_timestamp(timestamp)  # refuse to sign a timestamp no server would accept
    text = string_to_sign(args.client_key, timestamp)
    signature = sign(key, text)
    if args.json:
        print(json.dumps({"stringToSign": text, "timestamp": timestamp, "signature": signature}))
        return 0
    if args.timestamp is None:
        # stdout stays the bare signature (for $(...)); the header needs this exact timestamp too.
        print(f"X-TIMESTAMP: {timestamp}", file=sys.stderr)
    print(signature)
    return 0


def verify_cmd(args) -> int:
    public_key = read_public_key(args.public_key)
    _check_text(args)
    text = string_to_sign(args.client_key, args.timestamp)
    raw = decode_signature(args.signature)
    if verify(public_key, text, args.signature):
        print(f"valid: the signature verifies for {shown_repr(text)}")
        return 0
    expected = public_key.key_size // 8
    if len(raw) != expected:
        reason = f"it is {len(raw)} bytes long, but an RSA-{public_key.key_size} signature is {expected}"
    else:
        reason = "not made with this key pair over this exact string (run `snapbook doctor` for why)"
    print(f"invalid: the signature does not verify for {shown_repr(text)}: {reason}", file=sys.stderr)
    return 1
