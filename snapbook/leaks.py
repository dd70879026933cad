"""Find secrets where they must not be: notebooks, logs, reprs, error messages, CLI output.

:func:`find_leaks` looks through a text for what snapbook promises never to show unless the
user asked: a PEM private-key block, the bare base64 body of a private key, a full RSA
signature (standard base64 of 256, 384 or 512 bytes), a full JWT, and any exact value the
caller names in ``known_secrets`` (a test's own key lines, signatures and tokens). Masked
values (``EzuNpR…cX4w== (344 chars)``) are not leaks, by construction: the ellipsis
breaks the base64 run.

Each :class:`Leak` says what was found and where, with a masked excerpt: a report of leaks
never becomes a leak itself. Pure text in, dataclasses out; ``scan_notebook`` and
``scan_paths`` only read files. ``python -m snapbook.leaks PATH ...`` runs it in CI (exit 1
on any leak).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .masking import mask

__all__ = [
    "KINDS",
    "MIN_SECRET_LENGTH",
    "SIGNATURE_LENGTHS",
    "TEXT_SUFFIXES",
    "Leak",
    "find_leaks",
    "scan_notebook",
    "scan_paths",
]

#: What :func:`find_leaks` reports, in the ``kind`` field of each :class:`Leak`.
KINDS = ("pem-private-key", "private-key-base64", "rsa-signature", "jwt", "known-secret")

#: Standard base64 lengths of RSA-2048, -3072 and -4096 signatures (256, 384 and 512 bytes).
SIGNATURE_LENGTHS = frozenset({344, 512, 684})

#: ``known_secrets`` shorter than this are ignored: they would match ordinary text by chance.
MIN_SECRET_LENGTH = 16

#: A bare base64 run this long or longer, starting ``MII``, is checked for a private key.
_KEY_BODY_MIN = 1000

_PEM_PRIVATE = re.compile(
    r"-----BEGIN ((?:RSA |ENCRYPTED |EC |DSA |OPENSSH )?PRIVATE KEY)-----"
)
# What may sit between the BEGIN line and the base64 body: line breaks (real, or escaped once or
# more: JSON, a repr of JSON), spaces, and the "Proc-Type:"/"DEK-Info:" headers of legacy PEM.
_PEM_GAP = re.compile(r"(?:\s|\\+[rn]|[A-Za-z-]+: [^\n\\]*)*")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=]{40,}")
_PEM_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")

# One line's worth of base64, long enough to be a signature or a key (standard and URL-safe
# alphabets together: a run holding '-' or '_' is not standard base64). The lookbehind keeps
# every scan linear: a match may only start where a run starts.
_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{300,}={0,2}")
# Lines of a wrapped base64 body: runs joined by real or JSON-escaped line breaks.
_WRAPPED = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?:(?:\r?\n|(?:\\+r)?\\+n)[A-Za-z0-9+/]+={0,2})+")
_LINE_BREAK = re.compile(r"\r?\n|(?:\\+r)?\\+n")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")

# Characters after a backslash that make a JSON (or Python) escape: "\neyJ..." is "\n" + "eyJ...".
_ESCAPES = "nrtbf"


@dataclass(frozen=True)
class Leak:
    """One secret found in a text: what kind, where, and a masked excerpt of it."""

    #: One of :data:`KINDS`.
    kind: str
    #: Offset of the secret's first character in the scanned text.
    position: int
    #: Length of the secret in characters.
    length: int
    #: 1-based line of ``position``.
    line: int
    #: The secret, masked (prefix, suffix and length): never the value itself.
    excerpt: str
    #: Where the text came from (a path, a notebook cell, ...), when known.
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:" if self.source else ""
        return f"{where}{self.line}: {self.kind} at offset {self.position}: {self.excerpt}"


def find_leaks(text: str, *, known_secrets: Iterable[str] = (), source: str = "") -> list[Leak]:
    """Every secret in ``text``, in order of position.

    ``known_secrets`` are exact values that must never appear whole (values shorter than
    :data:`MIN_SECRET_LENGTH` are ignored). Text that escapes ``/`` as ``\\/`` (some JSON
    writers do) is also scanned with the escapes removed.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise TypeError(f"find_leaks scans text (str or bytes), not {type(text).__name__}")
    secrets = sorted({s for s in known_secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH})
    leaks = _scan(text, secrets, source)
    if "\\/" in text:
        seen = {(leak.kind, leak.excerpt) for leak in leaks}
        leaks += [
            leak for leak in _scan(text.replace("\\/", "/"), secrets, source)
            if (leak.kind, leak.excerpt) not in seen
        ]
        leaks.sort(key=lambda leak: leak.position)
    return leaks


def _scan(text: str, secrets: Sequence[str], source: str) -> list[Leak]:
    found: list[Leak] = []
    taken: list[tuple[int, int]] = []  # spans already reported as a key block

    def add(kind: str, start: int, end: int, excerpt: str | None = None) -> None:
        found.append(
            Leak(kind, start, end - start, text.count("\n", 0, start) + 1,
                 excerpt if excerpt is not None else mask(text[start:end]), source)
        )

    for start, end, label in _pem_blocks(text):
        add("pem-private-key", start, end, f"-----BEGIN {label}----- block ({end - start} chars)")
        taken.append((start, end))

    for start, end in _key_bodies(text):
        if not any(a <= start < b for a, b in taken):
            add("private-key-base64", start, end)
            taken.append((start, end))

    for start, end in _signatures(text):
        if not any(a <= start < b for a, b in taken):
            add("rsa-signature", start, end)

    for start, end in _jwts(text):
        add("jwt", start, end)

    for secret in secrets:
        begin = text.find(secret)
        while begin != -1:
            if not any(a <= begin < b for a, b in taken):
                add("known-secret", begin, begin + len(secret))
            begin = text.find(secret, begin + 1)

    # The same span found twice (a known signature is also an rsa-signature): report it once.
    unique: dict[tuple[int, int], Leak] = {}
    for leak in found:
        unique.setdefault((leak.position, leak.length), leak)
    return sorted(unique.values(), key=lambda leak: (leak.position, KINDS.index(leak.kind)))


# --- detectors --------------------------------------------------------------------------


def _pem_blocks(text: str) -> Iterator[tuple[int, int, str]]:
    """BEGIN ... PRIVATE KEY lines followed by a base64 body (a bare BEGIN line in a hint is not a key)."""
    for m in _PEM_PRIVATE.finditer(text):
        gap = _PEM_GAP.match(text, m.end())
        body = _PEM_BODY.match(text, gap.end() if gap else m.end())
        if body is None:
            continue
        close = _PEM_END.search(text, body.end(), body.end() + 20_000)
        yield m.start(), close.end() if close else body.end(), m.group(1)


def _unescaped_start(text: str, start: int, run: str) -> int:
    """Skip the letter of a JSON escape glued to a run (``\\nEzuN...`` starts at ``E``)."""
    if start > 0 and text[start - 1] == "\\" and run[:1] in _ESCAPES:
        return 1
    return 0


def _runs(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _RUN.finditer(text):
        run = m.group(0)
        skip = _unescaped_start(text, m.start(), run)
        if skip:
            run = run[skip:]
        yield m.start() + skip, m.end(), run


def _wrapped(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """Blocks of base64 lines (real or JSON-escaped line breaks): (start, end, lines)."""
    for m in _WRAPPED.finditer(text):
        block = m.group(0)
        skip = _unescaped_start(text, m.start(), block)
        yield m.start() + skip, m.end(), _LINE_BREAK.split(block[skip:])


_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")


def _signatures(text: str) -> Iterator[tuple[int, int]]:
    for start, end, run in _runs(text):
        # Hex is not base64, though its letters are: a 512-digit hex run is a 256-byte value
        # printed in hex (the doctor's recovered block s^e mod n, public by nature).
        if len(run) in SIGNATURE_LENGTHS and "-" not in run and "_" not in run and not _HEX.fullmatch(run):
            yield start, end
    # A signature wrapped at 64 or 76 columns (openssl base64, MIME) is still the whole value.
    for start, end, lines in _wrapped(text):
        width = len(lines[0])
        if width in (64, 76) and all(len(x) == width for x in lines[:-1]) and 0 < len(lines[-1]) <= width:
            if sum(map(len, lines)) in SIGNATURE_LENGTHS:
                yield start, end


def _key_bodies(text: str) -> Iterator[tuple[int, int]]:
    """Bare base64 of a private key (PKCS#8, PKCS#1 or encrypted PKCS#8), one line or wrapped."""
    spans = [(s, e, r) for s, e, r in _runs(text) if len(r) >= _KEY_BODY_MIN]
    spans += [(s, e, "".join(lines)) for s, e, lines in _wrapped(text)]
    reported: list[tuple[int, int]] = []
    for start, end, run in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if len(run) < _KEY_BODY_MIN or not run.startswith("MII"):
            continue
        if any(a <= start < b for a, b in reported):
            continue
        kind = _der_kind(run)
        if kind == "private" or (kind == "unknown" and run.startswith("MIIE")):
            reported.append((start, end))
            yield start, end


# DER prefixes after the outer SEQUENCE header (30 82 LL LL).
_VERSION_0 = bytes.fromhex("020100")  # PKCS#8 PrivateKeyInfo and PKCS#1 RSAPrivateKey: version 0
_PBES = bytes.fromhex("2a864886f70d0105")  # 1.2.840.113549.1.5: PBES1/PBES2 (encrypted PKCS#8)
_PKCS12_PBE = bytes.fromhex("2a864886f70d010c01")  # 1.2.840.113549.1.12.1: PKCS#12 PBE
_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # SubjectPublicKeyInfo of an RSA key


def _der_kind(run: str) -> str:
    """'private', 'public', 'certificate' or 'unknown', from the first bytes of base64 DER."""
    try:
        head = base64.b64decode(run[:64], validate=True)
    except (binascii.Error, ValueError):
        return "unknown"
    if len(head) < 20 or head[:2] != b"\x30\x82":
        return "unknown"
    inner = head[4:]
    if inner.startswith(_VERSION_0):
        return "private"
    if _PBES in inner[:16] or _PKCS12_PBE in inner[:16]:
        return "private"
    if _RSA_ENCRYPTION in inner[:16]:
        return "public"
    if inner[:2] == b"\x30\x82" and inner[4:9] == bytes.fromhex("a003020102"):
        return "certificate"
    return "unknown"


def _jwts(text: str) -> Iterator[tuple[int, int]]:
    for m in _JWT.finditer(text):
        start, candidate = m.start(), m.group(0)
        skip = _unescaped_start(text, start, candidate)
        header, _, signature = candidate[skip:].split(".", 2)
        alg = _jwt_alg(header)
        if alg is not None and _complete_signature(alg, len(signature)):
            yield start + skip, m.end()


# base64url lengths of a JWT signature per algorithm: a token whose signature is cut short (a
# test fixture, a truncated display) can never verify, so it is not a usable secret.
_RSA_SIG = frozenset({342, 512, 683})
_JWT_SIG_LENGTHS = {
    "HS256": frozenset({43}), "HS384": frozenset({64}), "HS512": frozenset({86}),
    "ES256": frozenset({86}), "ES384": frozenset({128}), "ES512": frozenset({176}),
    "EdDSA": frozenset({86, 152}),
    **{f"{family}{bits}": _RSA_SIG for family in ("RS", "PS") for bits in (256, 384, 512)},
}


def _complete_signature(alg: str, length: int) -> bool:
    if alg.lower() == "none":  # an unsigned token is whole without a signature
        return True
    expected = _JWT_SIG_LENGTHS.get(alg)
    return length in expected if expected is not None else length >= 16


def _jwt_alg(segment: str) -> str | None:
    """The ``alg`` of a JWT header segment, or None when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or "alg" not in data:
        return None
    return str(data["alg"])


# --- files ------------------------------------------------------------------------------

#: MIME types whose values are binary payloads, not text a secret could be written in.
_BINARY_MIME = ("image/png", "image/jpeg", "image/gif", "application/pdf")


def scan_notebook(path: str | os.PathLike[str], *, known_secrets: Iterable[str] = ()) -> list[Leak]:
    """Leaks in a saved notebook: cell sources, every output, and metadata (saved widget state).

    Each leak's ``source`` names the path and the place, e.g. ``01-keys.ipynb:cell 4:outputs[0].text``.
    """
    p = Path(path)
    secrets = tuple(known_secrets)
    try:
        nb = json.loads(p.read_text(encoding="utf-8", errors="replace"))
    except ValueError:  # not JSON (a broken save): scan it as plain text
        return find_leaks(p.read_text(encoding="utf-8", errors="replace"), known_secrets=secrets, source=str(p))
    leaks: list[Leak] = []
    for where, text in _strings(nb, ""):
        label = re.sub(r"^cells\[(\d+)\]\.?", lambda m: f"cell {int(m.group(1)) + 1}:", where)
        leaks += find_leaks(text, known_secrets=secrets, source=f"{p}:{label}")
    return leaks


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON tree with its path; nbformat's lists of lines are joined first."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, list):
        if node and all(isinstance(x, str) for x in node):
            yield where, "".join(node)
        else:
            for i, item in enumerate(node):
                yield from _strings(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _BINARY_MIME:
                continue
            yield from _strings(value, f"{where}.{key}" if where else str(key))


#: What :func:`scan_paths` reads in a directory (other files are skipped).
TEXT_SUFFIXES = (".ipynb", ".json", ".jsonl", ".log", ".txt", ".md", ".csv", ".html", ".py", ".cfg", ".toml", ".yml", ".yaml")
_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".hypothesis", ".pytest_cache", "node_modules"}


def scan_paths(
    *paths: str | os.PathLike[str],
    known_secrets: Iterable[str] = (),
    suffixes: Sequence[str] = TEXT_SUFFIXES,
    exclude: Iterable[str | os.PathLike[str]] = (),
    max_files: int = 10_000,
) -> list[Leak]:
    """Leaks in files and directories (walked, skipping ``.git``, ``.venv`` and caches).

    A file named directly is always scanned; in a directory only files ending in one of
    ``suffixes`` are. ``exclude`` names files or directories to leave out (e.g. committed test
    fixtures holding the vendor's published example key). At most ``max_files`` files are read.
    """
    secrets = tuple(known_secrets)
    skipped = {Path(x).resolve() for x in exclude}
    leaks: list[Leak] = []
    for count, path in enumerate(_files(paths, tuple(suffixes), skipped)):
        if count >= max_files:
            raise RuntimeError(f"scan_paths stopped after {max_files} files; name fewer paths or raise max_files.")
        if path.suffix == ".ipynb":
            leaks += scan_notebook(path, known_secrets=secrets)
        else:
            leaks += find_leaks(path.read_text(encoding="utf-8", errors="replace"), known_secrets=secrets, source=str(path))
    return leaks


def _files(paths: Sequence[str | os.PathLike[str]], suffixes: tuple[str, ...], skipped: set[Path]) -> Iterator[Path]:
    for item in paths:
        root = Path(item)
        if root.resolve() in skipped:
            continue
        if root.is_file():
            yield root
            continue
        if not root.is_dir():  # a misspelt path must not pass as "nothing leaked"
            raise FileNotFoundError(f"nothing to scan at {root}: no such file or folder")
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and (Path(folder) / d).resolve() not in skipped)
            for name in sorted(names):
                path = Path(folder) / name
                if name.endswith(suffixes) and path.resolve() not in skipped:
                    yield path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m snapbook.leaks PATH ... [--exclude PATH]``: print leaks, exit 1 if any."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m snapbook.leaks", description=main.__doc__)
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATH")
    args = parser.parse_args(argv)
    try:
        leaks = scan_paths(*args.paths, exclude=args.exclude)
    except FileNotFoundError as exc:
        print(f"snapbook.leaks: error: {exc}", file=sys.stderr)
        return 2
    for leak in leaks:
        print(leak)
    print(f"{len(leaks)} leak(s) found", file=sys.stderr)
    return 1 if leaks else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
