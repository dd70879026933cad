"""Signing: snapbook's request-signing path against a bare ``cryptography`` sign of the same bytes.

The key is parsed once, before any timing: snapbook's client and sandbox hold parsed key
objects too, and parsing a private key costs many signatures (see the last row).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from snapbook import signing
from snapbook.keys import load_private_key, private_key_bytes

from ._context import CLIENT_KEY, Context
from ._harness import Row, compare, compare_ops, paired_row, per_op

AREA = "signing"
TIMESTAMP = "2020-12-18T10:55:00+07:00"


def run(ctx: Context) -> list[Row]:
    key = ctx.private_key
    public = key.public_key()
    message = signing.string_to_sign(CLIENT_KEY, TIMESTAMP).encode("utf-8")
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    rounds = ctx.size(10, 3)
    n_sign = ctx.size(200, 40)
    n_verify = ctx.size(1500, 300)

    def bare_sign() -> bytes:
        return key.sign(message, pkcs1, sha256)

    signature = signing.sign(key, message)

    rows = [
        compare_ops(
            AREA, "signed request headers (string to sign + sign + base64)",
            lambda: signing.signed_headers(key, CLIENT_KEY, TIMESTAMP),
            bare_sign,
            a_label="signed_headers", b_label="key.sign", n=n_sign, rounds=rounds, budget_s=ctx.budget_s,
        ).check("<= 1.05"),
        compare_ops(
            AREA, "sign() of the same bytes",
            lambda: signing.sign(key, message),
            bare_sign,
            a_label="signing.sign", b_label="key.sign", n=n_sign, rounds=rounds, budget_s=ctx.budget_s,
        ).check("<= 1.05"),
        compare_ops(
            AREA, "verify() of a base64 X-SIGNATURE (the sandbox's check)",
            lambda: signing.verify(public, message, signature),
            # Any server must decode the base64 header first, so the bare side does too.
            lambda: public.verify(base64.b64decode(signature), message, pkcs1, sha256),
            a_label="signing.verify", b_label="b64decode + public_key.verify", n=n_verify, rounds=rounds, budget_s=ctx.budget_s,
        ).check("<= 1.05"),
    ]
    # Why keys are parsed once: one parse (OpenSSL checks the key's consistency) vs one signature.
    pem = private_key_bytes(key)
    n_parse = ctx.size(20, 5)
    parse = compare(
        AREA, "load_private_key(PEM) per call, vs one signature (so: parse once, reuse)",
        per_op(lambda: load_private_key(pem), n_parse),
        per_op(bare_sign, n_parse),
        a_label="load_private_key", b_label="key.sign", rounds=ctx.size(7, 3), budget_s=ctx.budget_s,
    )
    parse.note = "informative"
    rows.append(parse)
    rows.extend(_openssl_floor(ctx, key, message))
    return rows


def _openssl_speed() -> tuple[float, float]:
    """Seconds per RSA-2048 sign and verify, from ``openssl speed`` (CPU time, machine-readable output)."""
    out = subprocess.run(["openssl", "speed", "-seconds", "1", "-mr", "rsa2048"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for line in out.splitlines():
        if line.startswith("+F2:"):
            _, _, _, sign_per_s, verify_per_s = line.split(":")[:5]
            return 1 / float(sign_per_s), 1 / float(verify_per_s)
    raise RuntimeError("unexpected `openssl speed -mr` output")


def _openssl_floor(ctx: Context, key, message: bytes) -> list[Row]:
    """The C floor on this machine: the bare binding against the openssl CLI, both in CPU time."""
    if shutil.which("openssl") is None:
        return [Row(AREA, "bare binding vs openssl speed", note="skipped: no openssl command")]
    public = key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    signature = key.sign(message, pkcs1, sha256)
    n_sign, n_verify = ctx.size(300, 50), ctx.size(3000, 500)

    def binding() -> tuple[float, float]:
        t0 = time.process_time()
        for _ in range(n_sign):
            key.sign(message, pkcs1, sha256)
        t1 = time.process_time()
        for _ in range(n_verify):
            public.verify(signature, message, pkcs1, sha256)
        t2 = time.process_time()
        return (t1 - t0) / n_sign, (t2 - t1) / n_verify

    py_sign, py_verify, c_sign, c_verify = [], [], [], []
    for i in range(ctx.size(3, 1)):
        first, second = (binding, _openssl_speed) if i % 2 == 0 else (_openssl_speed, binding)
        x, y = first(), second()
        (ps, pv), (cs, cv) = (x, y) if first is binding else (y, x)
        py_sign.append(ps), py_verify.append(pv), c_sign.append(cs), c_verify.append(cv)
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False).stdout.split()[:2]
    rows = [
        paired_row(AREA, "floor: bare key.sign vs `openssl speed rsa2048` sign (CPU time)", py_sign, c_sign,
                   a_label="key.sign", b_label=" ".join(version)),
        paired_row(AREA, "floor: bare public_key.verify vs `openssl speed rsa2048` verify (CPU time)", py_verify,
                   c_verify, a_label="public_key.verify", b_label=" ".join(version)),
    ]
    for row in rows:
        row.note = "informative; cryptography bundles its own OpenSSL"
    return rows
