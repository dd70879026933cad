"""``snapbook call``: get a B2B token, make one signed service call, print the answer.

Exit codes: 0 a 2xx responseCode; 1 the provider refused (code, meaning and hint printed);
2 unusable input; 3 a transport failure or an answer that is not a SNAP answer. The client
secret and the key's passphrase come only from environment variables. The answer is printed
with the token and signature masked wherever it echoes them, control characters escaped.
"""

from __future__ import annotations

import math
from typing import Any

from ..endpoints import DEFAULT_SANDBOX_URL, SANDBOX_URL_ENV, names
from ..errors import ConfigError, InvalidResponseError, SnapResponseError, TransportError
from ..masking import mask_url
from ._common import add_passphrase_option, passphrase_from_env
from .service import body_from_arg, value_from_env
from .token import EXIT_OK, EXIT_REFUSED, EXIT_TRANSPORT, _dumps, _print_failure, _say

__all__ = ["register"]


def register(sub) -> None:
    # allow_abbrev=False: '--secret VALUE' must not pass as '--secret-env' (and echo a secret).
    p = sub.add_parser(
        "call",
        allow_abbrev=False,
        help="one signed service call (token first): exit 0 2xx responseCode, 1 refused, 2 unusable input, "
        "3 transport failure or invalid answer",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--env",
        metavar="NAME",
        help=f"service endpoint name: {', '.join(names())} (sandbox names read ${SANDBOX_URL_ENV}, "
        f"else {DEFAULT_SANDBOX_URL})",
    )
    target.add_argument("--url", metavar="BASE_URL", help="base URL of the service host, e.g. https://api-stage.ifortepay.id")
    p.add_argument(
        "--token-url", metavar="URL", help="where the B2B token comes from (a name or a URL; default: the --env's)"
    )
    p.add_argument("--client-key", required=True, metavar="ID", help="X-CLIENT-KEY of the token request")
    p.add_argument("--key", required=True, metavar="FILE", help="private key file (PEM or DER) for the token")
    add_passphrase_option(p)
    p.add_argument(
        "--secret-env", required=True, metavar="VAR", help="environment variable holding the client secret"
    )
    p.add_argument("--partner-id", required=True, metavar="ID", help="X-PARTNER-ID (the merchant id)")
    p.add_argument("--channel-id", required=True, metavar="ID", help="CHANNEL-ID (QR004, VA001, api, ...)")
    p.add_argument("--origin", metavar="DOMAIN", help="optional ORIGIN header")
    p.add_argument(
        "--body", metavar="FILE", help="the JSON body as sent: a file, or - for stdin (default: no body)"
    )
    p.add_argument(
        "--external-id", metavar="N", help="X-EXTERNAL-ID to send (digits, at most 36; default: a new unique one)"
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS",
        help="timeout of each network operation (default 10); the whole attempt is bounded by twice this",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("method", metavar="METHOD", help="HTTP method, e.g. POST")
    p.add_argument("path", metavar="PATH", help="the path as the provider documents it, e.g. /v1.0/qr/qr-mpm-generate")
    p.set_defaults(func=call_cmd)


def call_cmd(args) -> int:
    from ..client import MAX_TIMEOUT, ServiceClient
    from ..client.external_id import check_external_id
    from ..keys import read_private_key

    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT):
        raise ConfigError(
            f"--timeout must be a finite number of seconds > 0 and <= {MAX_TIMEOUT:g}.", hint="The default is 10."
        )
    if args.external_id is not None:
        check_external_id(args.external_id)
    secret = value_from_env(args.secret_env, "--secret-env", "client secret")
    body = body_from_arg(args.body)
    key = read_private_key(args.key, passphrase_from_env(args.passphrase_env))
    client = ServiceClient(
        args.url or args.env,
        args.client_key,
        key,
        secret,
        partner_id=args.partner_id,
        channel_id=args.channel_id,
        token_url=args.token_url,
        origin=args.origin,
        timeout=args.timeout,
    )
    with client:
        # Unusable input (a body snapbook cannot sign, a bad path) is found here, before any network.
        client.prepare(args.method, args.path, body, access_token="input-check", external_id=args.external_id)
        try:
            answer = client.call(args.method, args.path, body, external_id=args.external_id)
        except SnapResponseError as exc:
            _print_failure(args, exc)
            return EXIT_REFUSED
        except (TransportError, InvalidResponseError) as exc:
            _print_failure(args, exc)
            return EXIT_TRANSPORT
        endpoint = client.endpoint
    url = mask_url(endpoint.base_url + args.path)
    if args.json:
        out: dict[str, Any] = {
            "ok": True,
            "endpoint": endpoint.name,
            "url": url,
            "method": answer.method,
            "path": answer.path,
            "externalId": answer.external_id,
            "serviceCode": answer.service_code,
            "httpStatus": answer.http_status,
            "responseCode": answer.response_code,
            "response": answer.response_json(),
            "latencyMs": None if answer.latency_ms is None else round(answer.latency_ms, 2),
            "attempt": answer.attempt,
        }
        print(_dumps(out))
        return EXIT_OK
    _say(f"{answer.method} {url} ({endpoint.name}), X-EXTERNAL-ID {answer.external_id}")
    latency = "" if answer.latency_ms is None else f", {answer.latency_ms:.1f} ms"
    _say(f"HTTP {answer.http_status}, responseCode {answer.response_code}{latency}, attempt {answer.attempt}")
    print(_dumps(answer.response_json(), indent=2))
    return EXIT_OK
