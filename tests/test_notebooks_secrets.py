"""Saved notebooks carry no private key material, no full signature and no full token.

The notebooks are saved with their outputs (they are the tutorial, and nbval checks them), so
whatever a cell printed is committed. This scans every string in every notebook: sources,
outputs of every MIME type except images, and all metadata (widget state included).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from snapbook.examples import load_vendor_example
from snapbook.keys import load_any_key

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

PRIVATE_ARMOR = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|PRIVATE KEY-----")
# A JWT: three base64url segments, the first two JSON objects ('eyJ' is base64 of '{"').
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# One unbroken base64 run this long is a signature, a key body or a token, never prose.
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
PEM_LIKE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
BASE64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
IMAGE_MIME = re.compile(r"^image/")


def strings(node: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a notebook's JSON, with where it is; multi-line lists joined."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, list):
        if node and all(isinstance(x, str) for x in node):
            yield path, "".join(node)
        else:
            for i, x in enumerate(node):
                yield from strings(x, f"{path}[{i}]")
    elif isinstance(node, dict):
        for k, v in node.items():
            if IMAGE_MIME.match(str(k)):
                continue  # PNG bytes are base64 by nature; images cannot carry text we print
            yield from strings(v, f"{path}.{k}")


def _known_secrets() -> dict[str, str]:
    ex = load_vendor_example()
    from snapbook.keys import private_key_bytes

    body = "".join(private_key_bytes(ex.private_key).decode().splitlines()[1:-1])
    secrets = {
        "the vendor example's signature": ex.signature,
        "the vendor page's documented signature": ex.documented_signature,
        "the vendor page's documented token": ex.documented_access_token,
    }
    # Any 48-character stretch of the private key's base64 body (PEM lines are 64 wide).
    for i in range(0, len(body) - 48, 24):
        secrets[f"vendor private key body @{i}"] = body[i : i + 48]
    return secrets


KNOWN = _known_secrets()


def base64_blocks(text: str) -> list[str]:
    """Runs of consecutive lines that are all base64 (a key body without its armor)."""
    blocks, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 16 and BASE64_LINE.fullmatch(line):
            current.append(line)
            continue
        if len(current) >= 4:
            blocks.append("".join(current))
        current = []
    if len(current) >= 4:
        blocks.append("".join(current))
    return blocks


def find_secrets(text: str) -> list[str]:
    """What in ``text`` looks like private key material, a full signature or a full token."""
    found = []
    if PRIVATE_ARMOR.search(text):
        found.append("private key PEM armor")
    for name, secret in KNOWN.items():
        if secret and secret in text:
            found.append(name)
    for m in JWT.finditer(text):
        found.append(f"a full JWT ({m.group(0)[:8]}…, {len(m.group(0))} chars)")
    for m in LONG_BASE64.finditer(text):
        found.append(f"an unbroken base64 run of {len(m.group(0))} chars ({m.group(0)[:6]}…)")
    # Any PEM block or bare base64 that actually parses as a private key, whatever its armor.
    candidates = [m.group(0) for m in PEM_LIKE.finditer(text)]
    candidates += [m.group(0) for m in LONG_BASE64.finditer(text)]
    candidates += base64_blocks(text)
    for block in candidates:
        try:
            key = load_any_key(block, min_bits=512)
        except Exception:  # noqa: BLE001, S112 - not a key: that is the good case
            continue
        if hasattr(key, "private_numbers"):
            found.append("a loadable private key")
    return found


def scan_notebook(path: Path) -> list[str]:
    nb = json.loads(path.read_text("utf-8"))
    problems = []
    for where, text in strings(nb):
        for what in find_secrets(text):
            problems.append(f"{path.name}{where}: {what}")
    return problems


def test_there_are_notebooks_to_scan():
    assert [p.name for p in NOTEBOOKS][:2] == ["01-keys.ipynb", "02-signatures.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_notebook_has_no_secrets(path):
    assert scan_notebook(path) == []


# --- the scanner must catch what it is for ----------------------------------------------------


def _notebook_with_output(text: str, mime: str = "text/plain") -> dict:
    return {
        "cells": [{"cell_type": "code", "source": "x", "metadata": {}, "execution_count": 1,
                   "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                "data": {mime: text}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }


@pytest.fixture
def scan(tmp_path):
    def run(text: str, mime: str = "text/plain") -> list[str]:
        path = tmp_path / "planted.ipynb"
        path.write_text(json.dumps(_notebook_with_output(text, mime)))
        return scan_notebook(path)

    return run


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_scanner_catches_private_keys_in_any_form(scan, private_key):
    from snapbook.keys import private_key_bytes

    pem = private_key_bytes(private_key).decode()
    assert any("armor" in p for p in scan(pem))
    body = "\n".join(pem.splitlines()[1:-1])  # bare base64, no armor
    assert any("loadable private key" in p for p in scan(body))
    assert scan(pem.replace("\n", "\\n"))  # one line with escapes: armor and a long run
    pkcs1 = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert scan(_b64(pkcs1))  # PKCS#1 DER as one base64 line


def test_scanner_catches_vendor_key_fragments(scan):
    some = list(KNOWN.values())[5]
    assert scan(f"look: {some} ...")


def test_scanner_catches_full_signatures_and_tokens(scan, private_key):
    from snapbook.signing import sign

    sig = sign(private_key, "MCP00000001|2020-12-18T10:55:00+07:00")
    assert any("base64 run" in p for p in scan(f"X-SIGNATURE: {sig}"))
    ex = load_vendor_example()
    assert scan(ex.documented_access_token, "text/html")
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"sub":"MCP00000001","exp":1700000900}').rstrip(b"=").decode()
    assert any("JWT" in p for p in scan(f"{header}.{claims}.{'A' * 43}"))


def test_scanner_accepts_masked_values_public_keys_and_images(scan, private_key):
    from snapbook.keys import public_key_bytes
    from snapbook.masking import mask
    from snapbook.signing import sign

    sig = sign(private_key, "x")
    assert scan(f"X-SIGNATURE: {mask(sig)}\nfingerprint: {'ab' * 32}") == []
    assert scan(public_key_bytes(private_key).decode()) == []
    assert scan(_b64(b"\x89PNG" + bytes(4000)), "image/png") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_notebook_passes_the_library_leak_scanner_too(path):
    """A second, independent opinion: snapbook.leaks, which CI can also run on any file."""
    from snapbook.leaks import scan_notebook as library_scan

    ex = load_vendor_example()
    leaks = library_scan(path, known_secrets=[ex.signature, ex.documented_signature, ex.documented_access_token])
    assert [str(leak) for leak in leaks] == []


# --- demo secrets written in a cell stay in that cell -----------------------------------------

# `DEMO_CLIENT_SECRET = "..."`, `SANDBOX_SECRET = "..."`, `earlier_token = "..."`: public example
# values a notebook may spell out in its source, which its outputs must still only show masked.
DEMO_LITERAL = re.compile(r"""^\s*(\w*(?:SECRET|TOKEN|secret|token)\w*)\s*=\s*["']([^"'\n]{16,})["']""", re.MULTILINE)


def _demo_literals(nb: dict) -> dict[str, str]:
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            found.update({m.group(1): m.group(2) for m in DEMO_LITERAL.finditer(src)})
    return found


def test_the_service_notebook_spells_out_its_public_example_values():
    nb = json.loads((ROOT / "notebooks" / "06-service-signature.ipynb").read_text("utf-8"))
    assert _demo_literals(nb)["DEMO_CLIENT_SECRET"] == "o7sWnn0oGXF7y7JBGf18!"  # the portal's public example
    assert {"DEMO_ACCESS_TOKEN", "earlier_token"} <= set(_demo_literals(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_demo_secrets_in_a_cell_never_reach_outputs_or_widget_state(path):
    nb = json.loads(path.read_text("utf-8"))
    saved = json.dumps([c.get("outputs", []) for c in nb["cells"]]) + json.dumps(nb["metadata"])
    shown = {name: value for name, value in _demo_literals(nb).items()
             if value in saved or value.replace("/", "\\/") in saved}
    assert shown == {}, f"printed or saved in widget state unmasked: {sorted(shown)}"
