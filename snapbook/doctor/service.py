"""Why a service call's or a notification's X-SIGNATURE does not verify: the service doctor.

A provider answers ``401xx00 Unauthorized. [Signature]`` and nothing more. Given what it
received (method, path, headers, body bytes) and the secret (HMAC) or the public key (RSA), the
doctor rebuilds the string each usual mistake produces (a re-serialised body, an upper-case or
base64 hash, a path without its prefix, ``Bearer `` in the string, another timestamp, ...) and
checks which one the signature covers. It never guesses: a cause is named only when the
signature proves it. For RSA it recovers the signed SHA-256 digest once (``s^e mod n``) and then
only hashes candidates.

Bounded: about 1,300-1,700 candidate strings for a usual call (most are other timestamps), never
more than :data:`MAX_CANDIDATES`; each costs one HMAC-SHA512 (or one SHA-256) of a string about
as long as the path. The body is parsed once and re-serialised about ten ways; at most 8 prefix
candidates and :data:`MAX_KNOWN` known tokens and secrets. Measured on 2 loaded cores: 10-40 ms
for a usual call, 114 ms for an 8 KB path with a 60 KB pretty-printed body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta, tzinfo
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import BodyFormatError, TimestampError
from ..keys import fingerprint
from ..masking import mask
from ..service_signing import DEFAULT_VERSION, Body, minify
from ..service_signing import _body_bytes as body_bytes
from ..signing import parse_timestamp
from .token import (
    _ZONES,
    Diagnosis,
    PublicKeyLike,
    _describe_timestamp,
    _public_key,
    _read_timestamp,
    _renderings,
    _shift,
)

__all__ = ["MAX_CANDIDATES", "SERVICE_CAUSES", "diagnose_notification", "diagnose_service"]

#: Every cause the service doctor can report: stable code -> short title.
SERVICE_CAUSES: dict[str, str] = {
    "valid": "valid signature",
    "missing-header": "a signature header is missing",
    "not-base64": "not standard base64",
    "signature-hex": "the HMAC in hex instead of base64",
    "hmac-sha256": "HMAC-SHA256 instead of HMAC-SHA512",
    "different-key": "made with a different key pair",
    "body-not-json": "the body has spaces but is not JSON",
    "body-not-minified": "the body hashed without minifying it",
    "body-separators": "the body re-serialised with other separators",
    "body-slash-escaped": "the body re-serialised with '/' escaped as '\\/'",
    "body-ascii-escaped": "the body re-serialised with non-ASCII escaped as \\uXXXX",
    "body-sorted-keys": "the body re-serialised with sorted keys",
    "body-str-dict": "str(dict) hashed instead of the JSON body",
    "body-empty": "the empty body hashed, or a body hashed for an empty one",
    "hash-uppercase": "the body hash in upper-case hex",
    "hash-base64": "the body hash in base64 instead of hex",
    "method-case": "METHOD not in upper case",
    "path-prefix-dropped": "the path without its provider prefix",
    "path-absolute": "the full URL (scheme and host) instead of the path",
    "query-dropped": "the query string left out of EndpointUrl",
    "query-added": "the query string put in EndpointUrl (this provider signs the path only)",
    "token-bearer": "'Bearer ' inside the string to sign",
    "token-empty": "an empty access token ('::')",
    "token-other": "another access token than the one sent",
    "asymmetric-empty-token": "'::' (an empty token) in the asymmetric string",
    "asymmetric-with-token": "the access token in the asymmetric string",
    "timestamp-other": "another timestamp than the X-TIMESTAMP header",
    "secret-other": "another client secret",
    "notify-url": "another form of the NotifyURL than the one registered",
    "version-missing": "X-VERSION left out of the notification string",
    "version-other": "another X-VERSION than the header's",
    "unidentified": "no usual mistake matches",
}

_FIXES: dict[str, str] = {
    "valid": "",
    "missing-header": "Send X-TIMESTAMP and X-SIGNATURE (and Authorization: Bearer <token> for the symmetric form).",
    "not-base64": "Send base64.b64encode(hmac.digest(secret, string_to_sign, 'sha512')): standard base64, one line.",
    "signature-hex": "Encode the HMAC with base64, not hex: Ifortepay and Senmo read X-SIGNATURE as base64.",
    "hmac-sha256": "Use HMAC-SHA512 (hashlib.sha512 / Java HmacSHA512 / Node createHmac('sha512')).",
    "different-key": "Sign with SHA256withRSA using the private key whose public key is registered.",
    "body-not-json": "Send a JSON body; SNAP's minify is defined on JSON only.",
    "body-not-minified": "Hash minify(body): the JSON without whitespace outside strings (snapbook.service_signing.minify).",
    "body-separators": "Serialise the body once, sign those bytes and send those same bytes "
    "(Python: content=data, not json=obj; Java: one ObjectMapper string).",
    "body-slash-escaped": "Hash the bytes you send: if you send '/' unescaped, do not hash a '\\/' copy "
    "(PHP: JSON_UNESCAPED_SLASHES on both).",
    "body-ascii-escaped": "Hash the bytes you send: serialise once (ensure_ascii=False / JSON_UNESCAPED_UNICODE on both).",
    "body-sorted-keys": "Keep the key order of the body you send; never re-serialise for the hash.",
    "body-str-dict": "Hash the JSON bytes you send, not str(dict) (Python's repr uses ' and True/None).",
    "body-empty": "Hash exactly the bytes sent: the empty string only when there is no body at all.",
    "hash-uppercase": "Write the SHA-256 in lower-case hex (hexdigest(), not .upper(); Java: toLowerCase()).",
    "hash-base64": "Write the SHA-256 in lower-case hex, not base64 (hexdigest(), not b64encode(digest())).",
    "method-case": "Write METHOD in upper case: POST, GET.",
    "path-prefix-dropped": "Sign the whole relative path as sent, prefix included (e.g. /api/v1.0/balance-inquiry on Senmo).",
    "path-absolute": "Sign the relative path only (/v1.0/...), without scheme and host.",
    "query-dropped": "Sign the relative URL with its query string (?a=1), as sent.",
    "query-added": "This provider signs the path without the query string: leave '?...' out (include_query=False).",
    "token-bearer": "Put the token alone in the string to sign; 'Bearer ' belongs in the Authorization header only.",
    "token-empty": "Put the access token between the path and the body hash (symmetric signature).",
    "token-other": "Sign with the token you send: after a token refresh, sign again with the new one.",
    "asymmetric-empty-token": "The asymmetric string has no token part: METHOD:EndpointUrl:hash:timestamp (one ':').",
    "asymmetric-with-token": "The asymmetric string has no token: METHOD:EndpointUrl:hash:timestamp.",
    "timestamp-other": "Make the timestamp once and use that one string for X-TIMESTAMP and the string to sign.",
    "secret-other": "Sign with the client secret registered for this merchant and environment.",
    "notify-url": "Use the NotifyURL exactly as registered with Ifortepay: scheme, host and path, as is.",
    "version-missing": "The notification string is NotifyURL:X-VERSION:hash:timestamp (X-VERSION default v1).",
    "version-other": "Use the X-VERSION header's value in the string to sign.",
    "unidentified": "Print the exact string you sign and compare it with the expected one above; check the client "
    "secret (stage and production differ).",
}

#: At most this many ``known_tokens`` and ``known_secrets`` are tried.
MAX_KNOWN = 32

#: Upper bound on the candidate strings one diagnosis tries (the timestamp variants are most of them).
MAX_CANDIDATES = 6000

# Hosts a signer may have put in front of the path.
_PROVIDER_HOSTS = ("api-stage.ifortepay.id", "api.ifortepay.id", "api-stage.senmo.id", "api.senmo.id")

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class _Cand(NamedTuple):
    cause: str
    what: str
    text: str


class _Target(NamedTuple):
    """What the signature is checked against: a predicate over candidate strings."""

    matches: Callable[[str], bool]
    ok: bool  # the signature itself was readable (else only the "not-base64" family applies)


# --- entry points -------------------------------------------------------------------------


def diagnose_service(
    method: str,
    path: str,
    headers: Any,
    body: Body = None,
    *,
    client_secret: str | bytes | None = None,
    public_key: PublicKeyLike | None = None,
    include_query: bool = True,
    known_tokens: Iterable[str] = (),
    known_secrets: Iterable[str | bytes] = (),
) -> Diagnosis:
    """Say whether a received service call's X-SIGNATURE holds and, if not, which mistake made it.

    ``method``, ``path`` (relative, with the query as received) and ``body`` (the bytes received)
    come from the request; ``headers`` is any mapping or list of pairs (X-TIMESTAMP, X-SIGNATURE,
    Authorization, Host). With ``client_secret`` the symmetric form is checked, with ``public_key``
    the asymmetric one. ``known_tokens`` (tokens issued earlier) and ``known_secrets`` (other
    secrets, e.g. the other environment's) let the doctor name those two mistakes.
    """
    found = _headers(headers)
    missing = [h for h in ("X-TIMESTAMP", "X-SIGNATURE") if not found.get(h.lower(), "").strip()]
    token = _bearer(found.get("authorization", ""))
    if client_secret is not None and public_key is None and token is None:
        missing.append("Authorization")
    if missing:
        return _missing(missing)
    ts, sig = found["x-timestamp"], found["x-signature"]
    hashes = _BodyHashes.of(body)
    if isinstance(hashes, Diagnosis):
        return hashes
    m = method.upper()
    expected_path = path if include_query else path.partition("?")[0]
    tokens_to_mask = [t for t in (token, *known_tokens) if t]

    if public_key is not None:
        key = _public_key(public_key)
        target, fail = _rsa_target(key, sig)
        if fail is not None:
            return fail
        parts = [m, expected_path, hashes.right, ts]
        extra = {"key_bits": key.key_size, "key_fingerprint": fingerprint(key)}
        cands = _service_candidates(
            method, path, expected_path, include_query, None, hashes, ts, found, token, ()
        )
    else:
        if client_secret is None:
            raise TypeError("diagnose_service needs client_secret (symmetric) or public_key (asymmetric)")
        secret = client_secret.encode() if isinstance(client_secret, str) else bytes(client_secret)
        assert token is not None
        parts = [m, expected_path, token, hashes.right, ts]
        extra = {}
        hmac_fail = _hmac_shape(secret, ":".join(parts), sig, tokens_to_mask, ts)
        if hmac_fail is not None:
            return hmac_fail
        target = _hmac_target(secret, sig)
        cands = _service_candidates(
            method, path, expected_path, include_query, token, hashes, ts, found, token, tuple(known_tokens)
        )
        cands = _chain(_secret_candidates(":".join(parts), secret, tuple(known_secrets), sig), cands)
    return _search(":".join(parts), cands, target, ts, sig, tokens_to_mask, hashes, extra)


def diagnose_notification(
    notify_url: str,
    headers: Any,
    body: Body = None,
    *,
    client_secret: str | bytes,
    known_secrets: Iterable[str | bytes] = (),
) -> Diagnosis:
    """Say whether a notification's X-SIGNATURE holds for ``notify_url`` (as registered) and why not.

    X-VERSION is read from ``headers`` (default ``v1`` when absent).
    """
    found = _headers(headers)
    missing = [h for h in ("X-TIMESTAMP", "X-SIGNATURE") if not found.get(h.lower(), "").strip()]
    if missing:
        return _missing(missing)
    ts, sig = found["x-timestamp"], found["x-signature"]
    version = found.get("x-version") or DEFAULT_VERSION
    hashes = _BodyHashes.of(body)
    if isinstance(hashes, Diagnosis):
        return hashes
    secret = client_secret.encode() if isinstance(client_secret, str) else bytes(client_secret)
    expected = f"{notify_url}:{version}:{hashes.right}:{ts}"
    fail = _hmac_shape(secret, expected, sig, [], ts)
    if fail is not None:
        return fail
    cands = _chain(
        _secret_candidates(expected, secret, tuple(known_secrets), sig),
        _notification_candidates(notify_url, version, hashes, ts),
    )
    return _search(expected, cands, _hmac_target(secret, sig), ts, sig, [], hashes, {})


# --- reading the request ------------------------------------------------------------------


def _headers(headers: Any) -> dict[str, str]:
    if hasattr(headers, "headers") and not hasattr(headers, "items"):
        headers = headers.headers
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _missing(missing: list[str]) -> Diagnosis:
    shown = ", ".join(missing)
    return Diagnosis(
        ok=False,
        cause="missing-header",
        summary=f"Missing or empty header{'s' if len(missing) > 1 else ''}: {shown}.",
        fix=_FIXES["missing-header"],
    )


class _BodyHashes(NamedTuple):
    """The body's right hash and the hashes of its usual wrong forms, each with its cause."""

    right: str
    digest: bytes
    wrong: list[tuple[str, str, str]]  # (cause, what, hex or other text that was hashed-in)

    @classmethod
    def of(cls, body: Body) -> _BodyHashes | Diagnosis:
        try:
            sent = body_bytes(
                body
            )  # a dict is refused (BodyFormatError): the doctor needs the bytes received
        except BodyFormatError as exc:
            return Diagnosis(ok=False, cause="body-not-json", summary=exc.message, fix=exc.hint)
        try:
            minified = minify(sent)
        except BodyFormatError as exc:
            return Diagnosis(
                ok=False, cause="body-not-json", summary=exc.message, fix=_FIXES["body-not-json"]
            )
        digest = hashlib.sha256(minified).digest()
        right = digest.hex()
        wrong: list[tuple[str, str, str]] = []
        seen = {right}

        def add(cause: str, what: str, data: bytes) -> None:
            h = hashlib.sha256(data).hexdigest()
            if h not in seen:
                seen.add(h)
                wrong.append((cause, what, h))

        if minified != sent:
            add("body-not-minified", "the hash of the body as sent, not minified", sent)
        try:
            obj = json.loads(minified.decode("utf-8")) if minified else None
        except (ValueError, RecursionError):  # not JSON (hashed as sent), or hostile nesting
            obj = None
        if obj is not None:
            compact = {"separators": (",", ":"), "ensure_ascii": False}
            add(
                "body-separators",
                "json.dumps(obj) with default separators ', ' and ': '",
                json.dumps(obj).encode(),
            )
            add(
                "body-separators",
                "json.dumps(obj, indent=2)",
                json.dumps(obj, indent=2, ensure_ascii=False).encode(),
            )
            add(
                "body-separators",
                "json.dumps(obj) with default separators, non-ASCII kept",
                json.dumps(obj, ensure_ascii=False).encode(),
            )
            add(
                "body-ascii-escaped",
                "the body with non-ASCII escaped as \\uXXXX (ensure_ascii=True)",
                json.dumps(obj, separators=(",", ":")).encode(),
            )
            plain = json.dumps(obj, **compact)  # type: ignore[arg-type]
            add(
                "body-slash-escaped",
                "the body with '/' escaped as '\\/' (PHP json_encode)",
                plain.replace("/", "\\/").encode(),
            )
            add(
                "body-slash-escaped",
                "the body with '/' as '\\/' and non-ASCII as \\uXXXX (PHP json_encode defaults)",
                json.dumps(obj, separators=(",", ":")).replace("/", "\\/").encode(),
            )
            add(
                "body-sorted-keys",
                "the body re-serialised with sorted keys",
                json.dumps(obj, sort_keys=True, **compact).encode(),
            )  # type: ignore[arg-type]
            add(
                "body-sorted-keys",
                "the body re-serialised with sorted keys and default separators",
                json.dumps(obj, sort_keys=True).encode(),
            )
            add("body-str-dict", "str(obj), Python's repr of the parsed body", str(obj).encode())
        if minified:
            add("body-empty", "the hash of the empty string (as if there were no body)", b"")
        else:
            for data in (b"{}", b"null", b'""'):
                add("body-empty", f"the hash of {data.decode()!r} for a call without a body", data)
        return cls(right, digest, wrong)

    def hash_variants(self) -> Iterator[tuple[str, str, str]]:
        yield from self.wrong
        yield "hash-uppercase", "the SHA-256 in upper-case hex", self.right.upper()
        yield "hash-base64", "the SHA-256 in base64", base64.b64encode(self.digest).decode()
        yield "hash-base64", "the SHA-256 in URL-safe base64", base64.urlsafe_b64encode(self.digest).decode()


# --- the signature, read ------------------------------------------------------------------


def _decode(sig: str) -> bytes | None:
    try:
        return base64.b64decode(sig.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hmac_target(secret: bytes, sig: str) -> _Target:
    raw = _decode(sig) or b""
    return _Target(
        lambda text: hmac.compare_digest(raw, hmac.digest(secret, text.encode("utf-8"), "sha512")), True
    )


def _hmac_shape(secret: bytes, expected: str, sig: str, tokens: list[str], ts: str) -> Diagnosis | None:
    """Diagnoses that depend on the signature's encoding, not on the string signed."""
    raw = _decode(sig)
    data = expected.encode("utf-8")
    right = hmac.digest(secret, data, "sha512")
    base = {
        "timestamp": ts,
        "expected_message": _masked(expected, tokens),
        "signature_masked": mask(sig.strip()),
    }
    if re.fullmatch(r"[0-9a-fA-F]{128}", sig.strip()) and bytes.fromhex(sig.strip()) == right:
        return Diagnosis(
            ok=False,
            cause="signature-hex",
            signature_bytes=64,
            fix=_FIXES["signature-hex"],
            summary="X-SIGNATURE is the right HMAC-SHA512, written in hex instead of base64.",
            **base,
        )
    if raw is None:
        return Diagnosis(
            ok=False,
            cause="not-base64",
            fix=_FIXES["not-base64"],
            summary="X-SIGNATURE is not standard base64, so no provider can read it.",
            **base,
        )
    if len(raw) == 32 and hmac.compare_digest(raw, hmac.digest(secret, data, "sha256")):
        return Diagnosis(
            ok=False,
            cause="hmac-sha256",
            signature_bytes=32,
            fix=_FIXES["hmac-sha256"],
            summary="X-SIGNATURE is HMAC-SHA256 of the right string; SNAP's symmetric signature is HMAC-SHA512.",
            **base,
        )
    return None


def _rsa_target(key: rsa.RSAPublicKey, sig: str) -> tuple[_Target, Diagnosis | None]:
    raw = _decode(sig)
    k = (key.key_size + 7) // 8
    base = {
        "signature_masked": mask(sig.strip()),
        "key_bits": key.key_size,
        "key_fingerprint": fingerprint(key),
    }
    if raw is None:
        return _Target(lambda _t: False, False), Diagnosis(
            ok=False,
            cause="not-base64",
            fix=_FIXES["not-base64"],
            summary="X-SIGNATURE is not standard base64.",
            **base,
        )
    n, e = key.public_numbers().n, key.public_numbers().e
    s = int.from_bytes(raw, "big")
    if len(raw) != k or s >= n:
        return _Target(lambda _t: False, False), Diagnosis(
            ok=False,
            cause="different-key",
            signature_bytes=len(raw),
            fix=_FIXES["different-key"],
            summary=f"X-SIGNATURE is {len(raw)} bytes; an RSA-{key.key_size} signature is {k}.",
            **base,
        )
    block = pow(s, e, n).to_bytes(k, "big")
    prefix = b"\x00\x01" + b"\xff" * (k - 3 - len(_SHA256_DIGEST_INFO) - 32) + b"\x00" + _SHA256_DIGEST_INFO
    if block[:-32] != prefix:
        return _Target(lambda _t: False, False), Diagnosis(
            ok=False,
            cause="different-key",
            signature_bytes=len(raw),
            fix=_FIXES["different-key"],
            summary="X-SIGNATURE is not a SHA256withRSA signature by this public key's private key "
            "(another key pair, another hash, or PSS padding; `snapbook doctor` on a token signature says which).",
            **base,
        )
    digest = block[-32:]
    return _Target(lambda text: hashlib.sha256(text.encode("utf-8")).digest() == digest, True), None


# --- candidates ---------------------------------------------------------------------------


def _chain(*its: Iterable[_Cand]) -> Iterator[_Cand]:
    for it in its:
        yield from it


def _service_candidates(
    method: str,
    path: str,
    expected_path: str,
    include_query: bool,
    token: str | None,
    hashes: _BodyHashes,
    ts: str,
    found: Mapping[str, str],
    header_token: str | None,
    known_tokens: tuple[str, ...],
) -> Iterator[_Cand]:
    m, h = method.upper(), hashes.right

    def s(meth: str = m, p: str = expected_path, tok: str | None = token, hh: str = h, t: str = ts) -> str:
        return ":".join([meth, p] + ([tok] if tok is not None else []) + [hh, t])

    yield _Cand("valid", "the expected string to sign", s())
    for cause, what, hh in hashes.hash_variants():
        yield _Cand(cause, what, s(hh=hh))
    if token is not None:
        yield _Cand("token-bearer", "'Bearer ' + token in the token part", s(tok=f"Bearer {token}"))
        yield _Cand("token-bearer", "'bearer ' + token in the token part", s(tok=f"bearer {token}"))
        yield _Cand("token-empty", "an empty token part", s(tok=""))
        for other in known_tokens[:MAX_KNOWN]:
            if other and other != token:
                yield _Cand(
                    "token-other",
                    f"the token {mask(other)} instead of the one sent ({mask(token)})",
                    s(tok=other),
                )
    else:
        yield _Cand(
            "asymmetric-empty-token", "an empty token part, as if symmetric", f"{m}:{expected_path}::{h}:{ts}"
        )
        if header_token:
            yield _Cand("asymmetric-with-token", "the Authorization token in the string", s(tok=header_token))
    for meth in (method.lower(), method.capitalize()):
        if meth != m:
            yield _Cand("method-case", f"METHOD written {meth!r}", s(meth=meth))
    # The path: without a leading prefix, absolute, with or without its query.
    bare, _, query = path.partition("?")
    if include_query and query:
        yield _Cand("query-dropped", f"{bare!r} without '?{query}'", s(p=bare))
    if not include_query and query:
        yield _Cand("query-added", f"{path!r} with its query string", s(p=path))
    # Provider prefixes are a few segments (/api/v1.0): the first 8 slashes bound this loop.
    slashes = [i for i, c in enumerate(bare[:256]) if c == "/" and 0 < i < len(bare) - 1][:8]
    for i in slashes:
        short = expected_path[i:]
        yield _Cand("path-prefix-dropped", f"{short!r} without the prefix {bare[:i]!r}", s(p=short))
    hosts = [found.get("host", "")] + list(_PROVIDER_HOSTS)
    for host in dict.fromkeys(x for x in hosts if x):
        for scheme in ("https", "http"):
            yield _Cand(
                "path-absolute",
                f"the full URL {scheme}://{host}{expected_path}",
                s(p=f"{scheme}://{host}{expected_path}"),
            )
    for text in _timestamps(ts):
        yield _Cand("timestamp-other", text, s(t=text))


def _notification_candidates(url: str, version: str, hashes: _BodyHashes, ts: str) -> Iterator[_Cand]:
    h = hashes.right

    def s(u: str = url, v: str | None = version, hh: str = h, t: str = ts) -> str:
        return ":".join([u] + ([v] if v is not None else []) + [hh, t])

    yield _Cand("valid", "the expected string to sign", s())
    for cause, what, hh in hashes.hash_variants():
        yield _Cand(cause, what, s(hh=hh))
    yield _Cand("version-missing", "no X-VERSION part", s(v=None))
    for v in dict.fromkeys(["v1", "V1", "1", "v1.0", "1.0", "v2", ""]):
        if v != version:
            yield _Cand("version-other", f"X-VERSION {v!r} instead of {version!r}", s(v=v))
    parts = urlsplit(url)
    rel = parts.path + (f"?{parts.query}" if parts.query else "")
    variants = [
        (rel or "/", "the path only, without scheme and host"),
        (url.rstrip("/") if url.endswith("/") else url + "/", "the trailing '/' toggled"),
        (
            url.replace(f"{parts.scheme}://", "https://" if parts.scheme == "http" else "http://", 1),
            "the other scheme",
        ),
        (f"{parts.scheme}://{parts.netloc}", "scheme and host only"),
        (f"{parts.scheme}://{parts.netloc}{parts.path}", "without the query string"),
        (parts.netloc + rel, "without the scheme"),
    ]
    for u, what in variants:
        if u != url:
            yield _Cand("notify-url", f"NotifyURL {u!r} ({what})", s(u=u))
    for text in _timestamps(ts):
        yield _Cand("timestamp-other", text, s(t=text))


def _timestamps(ts: str) -> Iterator[str]:
    """Other timestamp texts a signer may have used: the same instant written otherwise, or a second clock reading."""
    parsed = _read_timestamp(ts)
    if parsed is None:
        return
    zones: list[tzinfo] = []
    for z in (parsed.instant.tzinfo, *_ZONES):
        if z is not None and all(z.utcoffset(None) != y.utcoffset(None) for y in zones):
            zones.append(z)
    seen = {ts}

    def new(text: str) -> bool:
        if text in seen:
            return False
        seen.add(text)
        return True

    for text, _ in _renderings(parsed.instant, zones):
        if new(text):
            yield text
    for delta in (1, -1, 2, -2, 3, -3, 4, -4, 5, -5):
        if new(text := _shift(parsed, delta)):
            yield text
    for delta in range(6, 301):
        for d in (delta, -delta):
            if new(text := _shift(parsed, d)):
                yield text
    for delta in (1, -1, 2, -2):
        for text, _ in _renderings(parsed.instant + timedelta(seconds=delta), zones):
            if new(text):
                yield text


def _secret_candidates(
    expected: str, secret: bytes, known: tuple[str | bytes, ...], sig: str
) -> Iterator[_Cand]:
    """Secret mistakes are checked by their own HMAC, so they are yielded as pre-decided markers."""
    raw = _decode(sig) or b""
    data = expected.encode("utf-8")
    variants: list[tuple[bytes, str]] = [
        (secret + w, f"the secret with a trailing {n}")
        for w, n in ((b"\n", "newline"), (b"\r\n", "CRLF"), (b" ", "space"))
    ]
    variants += [
        ((k.encode() if isinstance(k, str) else bytes(k)), "another registered secret")
        for k in known[:MAX_KNOWN]
    ]
    for other, what in variants:
        if other != secret and hmac.compare_digest(raw, hmac.digest(other, data, "sha512")):
            yield _Cand("secret-other", f"{what} ({mask(other)})", _SECRET_MARK)
            return


_SECRET_MARK = "\x00secret"  # a candidate string no signer signs: marks a secret already proven


# --- the search ---------------------------------------------------------------------------


def _masked(text: str, tokens: list[str]) -> str:
    for t in tokens:
        text = text.replace(t, mask(t))
    return text


def _search(
    expected: str,
    cands: Iterator[_Cand],
    target: _Target,
    ts: str,
    sig: str,
    tokens: list[str],
    hashes: _BodyHashes,
    extra: dict[str, Any],
) -> Diagnosis:
    tried = 0
    hit: _Cand | None = None
    for c in cands:
        if tried >= MAX_CANDIDATES:
            break
        tried += 1
        if c.text == _SECRET_MARK or target.matches(c.text):
            hit = c
            break
    raw = _decode(sig)
    base: dict[str, Any] = {
        "timestamp": ts,
        "expected_message": _masked(expected, tokens),
        "signature_masked": mask(sig.strip()),
        "signature_bytes": len(raw) if raw is not None else None,
        "candidates_tried": tried,
        "notes": _notes(ts),
        **extra,
    }
    if hit is None:
        return Diagnosis(
            ok=False,
            cause="unidentified",
            fix=_FIXES["unidentified"],
            summary=f"The signature matches neither the expected string nor {tried - 1} usual mistakes.",
            details="With an HMAC this usually means another client secret (stage and production differ; pass "
            "known_secrets to check), or a string to sign outside the usual mistakes.",
            **base,
        )
    if hit.cause == "valid":
        return Diagnosis(
            ok=True,
            cause="valid",
            summary="The signature is valid for the expected string to sign.",
            signed_message=base["expected_message"],
            **base,
        )
    if hit.cause == "timestamp-other":
        what = _describe_timestamp(ts, hit.what)
        summary = (
            f"The signature covers the timestamp {hit.what!r}, not the X-TIMESTAMP header {ts!r}: {what}."
        )
    else:
        summary = f"The signature covers {hit.what}: {SERVICE_CAUSES[hit.cause]}."
    signed = None if hit.text == _SECRET_MARK else _masked(hit.text, tokens)
    return Diagnosis(
        ok=False,
        cause=hit.cause,
        summary=summary,
        fix=_FIXES[hit.cause],
        signed_message=signed,
        details=f"Found among {tried} candidate strings; the body's right hash is {hashes.right}.",
        **base,
    )


def _notes(ts: str) -> tuple[str, ...]:
    try:
        parse_timestamp(ts, strict=True)
    except TimestampError as exc:
        return (f"Apart from the signature: {exc.message}",)
    return ()
