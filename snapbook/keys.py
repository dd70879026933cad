"""RSA keys for SNAP: generate, load from every form merchants hold, serialize, fingerprint.

Ifortepay asks for RSA-2048, the private key as PKCS#8 (PEM or DER); the merchant sends the
public key (SubjectPublicKeyInfo) and keeps the private one. In practice keys also arrive as
PKCS#1, on one line, without armor, with literal ``\\n`` escapes from an environment variable,
or inside a certificate: :func:`load_private_key` and :func:`load_public_key` read them all and
say precisely what is wrong with anything else, without ever echoing key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from .errors import (
    KeyFileExistsError,
    KeyFormatError,
    KeyKindError,
    KeyTypeError,
    PassphraseError,
    WeakKeyError,
)

__all__ = [
    "MIN_BITS",
    "MIN_BITS_TO_INSPECT",
    "KeyInfo",
    "describe_key",
    "fingerprint",
    "generate_private_key",
    "keys_match",
    "load_any_key",
    "load_private_key",
    "load_public_key",
    "private_key_bytes",
    "private_key_from",
    "public_key_bytes",
    "public_key_from",
    "read_key_file",
    "read_private_key",
    "read_public_key",
    "save_private_key",
    "save_public_key",
]

#: SNAP and Ifortepay require RSA keys of at least 2048 bits.
MIN_BITS = 2048
#: Tools that only inspect a key someone else holds (the doctor) accept down to this size and
#: report the weakness instead of refusing to look.
MIN_BITS_TO_INSPECT = 1024

KeyData = Union[str, bytes, bytearray, memoryview]
Passphrase = Union[str, bytes, None]
Encoding = Literal["pem", "der"]

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL
)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_PRIVATE_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}
_PUBLIC_LABELS = {"PUBLIC KEY", "RSA PUBLIC KEY"}
_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_FOREIGN_LABELS = {
    "EC PRIVATE KEY": "an EC private key",
    "DSA PRIVATE KEY": "a DSA private key",
    "EC PARAMETERS": "EC parameters",
    "CERTIFICATE REQUEST": "a certificate signing request",
    "NEW CERTIFICATE REQUEST": "a certificate signing request",
    "SSH2 PUBLIC KEY": "an SSH public key",
}

_HOW_TO_MAKE = "Generate a new pair with `snapbook keygen --out DIR` or `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`."


# --- generation -----------------------------------------------------------------------


def generate_private_key(bits: int = MIN_BITS) -> rsa.RSAPrivateKey:
    """A new RSA private key (public exponent 65537) of ``bits`` bits, 2048 by default."""
    if not isinstance(bits, int) or bits < MIN_BITS:
        raise WeakKeyError(
            f"Refusing to generate a {bits}-bit RSA key: SNAP requires at least {MIN_BITS} bits.",
            hint="Use --bits 2048 (the SNAP standard) or larger.",
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# --- loading --------------------------------------------------------------------------


def load_private_key(
    data: KeyData, passphrase: Passphrase = None, *, min_bits: int = MIN_BITS
) -> rsa.RSAPrivateKey:
    """Read an RSA private key from PEM, DER, bare base64 or escaped text.

    Accepts PKCS#8 and PKCS#1, encrypted PKCS#8 with ``passphrase``, one-line PEM, literal
    ``\\n`` escapes, CRLF and surrounding whitespace or quotes.
    """
    kind, key = _parse(data, passphrase)
    if kind != "private":
        raise KeyKindError(
            f"Expected a private key but found {_KIND_NAMES[kind]}.",
            hint="Signing needs the private key (BEGIN PRIVATE KEY); the public key is the one you send to Ifortepay.",
        )
    return _check_rsa(key, "private", min_bits)  # type: ignore[return-value]


def load_public_key(data: KeyData, *, min_bits: int = MIN_BITS) -> rsa.RSAPublicKey:
    """Read an RSA public key from SPKI or PKCS#1 (PEM or DER), bare base64, or a certificate."""
    kind, key = _parse(data, None)
    if kind == "private":
        raise KeyKindError(
            "Expected a public key but found a private key.",
            hint="Verification needs the public key; derive it with `snapbook keygen` output public.pem, "
            "or `openssl pkey -in private.pem -pubout`. Never send the private key to anyone.",
        )
    return _check_rsa(key, "public", min_bits)  # type: ignore[return-value]


def load_any_key(
    data: KeyData, passphrase: Passphrase = None, *, min_bits: int = MIN_BITS
) -> rsa.RSAPrivateKey | rsa.RSAPublicKey:
    """Read a private or a public RSA key, whichever ``data`` holds."""
    kind, key = _parse(data, passphrase)
    return _check_rsa(key, "private" if kind == "private" else "public", min_bits)


def read_private_key(
    path: str | os.PathLike[str], passphrase: Passphrase = None, *, min_bits: int = MIN_BITS
) -> rsa.RSAPrivateKey:
    """:func:`load_private_key` from a file."""
    return load_private_key(read_key_file(path), passphrase, min_bits=min_bits)


def read_public_key(path: str | os.PathLike[str], *, min_bits: int = MIN_BITS) -> rsa.RSAPublicKey:
    """:func:`load_public_key` from a file."""
    return load_public_key(read_key_file(path), min_bits=min_bits)


KeySource = Union[rsa.RSAPrivateKey, rsa.RSAPublicKey, KeyData, "os.PathLike[str]"]


def _is_path(source: object) -> bool:
    """A str names a file unless it holds key text: every RSA-2048 key is over 200 characters."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "-----" not in source and len(source.strip()) < 200


def private_key_from(
    source: KeySource, passphrase: Passphrase = None, *, min_bits: int = MIN_BITS
) -> rsa.RSAPrivateKey:
    """The private key in ``source``: a key object, a file path, or PEM/DER/base64 key data.

    The one place that turns "whatever the caller holds" into a key, for the client, the forms
    and the CLI; a path that does not exist says "Key file not found".
    """
    if isinstance(source, rsa.RSAPrivateKey):
        return _check_rsa(source, "private", min_bits)  # type: ignore[return-value]
    if isinstance(source, rsa.RSAPublicKey):
        raise KeyKindError(
            "Expected a private key but found a public key.",
            hint="Signing needs the private key (BEGIN PRIVATE KEY); the public key is the one you send to Ifortepay.",
        )
    if _is_path(source):
        return read_private_key(source, passphrase, min_bits=min_bits)  # type: ignore[arg-type]
    return load_private_key(source, passphrase, min_bits=min_bits)  # type: ignore[arg-type]


def public_key_from(source: KeySource, *, min_bits: int = MIN_BITS) -> rsa.RSAPublicKey:
    """The public key in ``source`` (a key object, a file path, or key data); the public half of a private key."""
    if isinstance(source, rsa.RSAPrivateKey):
        source = source.public_key()
    if isinstance(source, rsa.RSAPublicKey):
        return _check_rsa(source, "public", min_bits)  # type: ignore[return-value]
    data = read_key_file(source) if _is_path(source) else source  # type: ignore[arg-type]
    key = load_any_key(data, min_bits=min_bits)  # type: ignore[arg-type]
    return key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key


_KIND_NAMES = {
    "private": "a private key",
    "public": "a public key",
    "certificate": "a certificate",
}


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a key file, or a :class:`KeyFormatError` saying why it cannot be read."""
    p = Path(path).expanduser()
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise KeyFormatError(f"Key file not found: {p}.", hint="Check the path.") from None
    except IsADirectoryError:
        raise KeyFormatError(f"{p} is a directory, not a key file.", hint="Name the key file itself.") from None
    except PermissionError:
        raise KeyFormatError(f"Cannot read key file {p}: permission denied.", hint="Check the file's owner and mode.") from None


def _check_rsa(key: object, kind: str, min_bits: int) -> rsa.RSAPrivateKey | rsa.RSAPublicKey:
    if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        raise KeyTypeError(
            f"Found {_algorithm_name(key)} {kind} key, but SNAP signatures (SHA256withRSA) need an RSA key.",
            hint=_HOW_TO_MAKE,
        )
    if key.key_size < min_bits:
        raise WeakKeyError(
            f"Found a {key.key_size}-bit RSA {kind} key; SNAP requires at least {min_bits} bits.",
            hint=_HOW_TO_MAKE + " Then register the new public key with Ifortepay.",
        )
    return key


def _algorithm_name(key: object) -> str:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"an EC ({key.curve.name})"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "an Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "an Ed448"
    if isinstance(key, (x25519.X25519PrivateKey, x25519.X25519PublicKey)):
        return "an X25519"
    if isinstance(key, (x448.X448PrivateKey, x448.X448PublicKey)):
        return "an X448"
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return "a DSA"
    return f"a {type(key).__name__}"


def _to_bytes_passphrase(passphrase: Passphrase) -> bytes | None:
    if passphrase is None or passphrase == "" or passphrase == b"":
        return None
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def _parse(data: KeyData, passphrase: Passphrase) -> tuple[str, object]:
    """Return ``(kind, key)`` with kind ``private``, ``public`` or ``certificate``."""
    pw = _to_bytes_passphrase(passphrase)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return _parse_der(data, pw, "DER input")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyFormatError(
                "The input is neither PEM text nor DER: it is binary data that does not start "
                "with an ASN.1 SEQUENCE.",
                hint="Pass the key file's contents as they are (PEM or DER).",
            ) from None
    elif isinstance(data, str):
        text = data
    else:
        raise KeyFormatError(
            f"A key must be given as str or bytes, not {type(data).__name__}.",
            hint="Read the file first, or use read_private_key(path) / read_public_key(path).",
        )
    return _parse_text(_normalize_text(text), pw)


def _normalize_text(text: str) -> str:
    text = text.strip().strip("'\"").strip()
    # Keys kept in environment variables or JSON often carry literal "\n" escapes.
    text = text.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_text(text: str, pw: bytes | None) -> tuple[str, object]:
    if not text:
        raise KeyFormatError("The key is empty.", hint="Paste or load the whole key, including the BEGIN/END lines.")
    if "-----BEGIN" in text:
        return _parse_pem(text, pw)
    if "-----END" in text:
        raise KeyFormatError(
            "The key has an END line but no BEGIN line: it looks cut at the start.",
            hint="Copy the whole key, from -----BEGIN ... to -----END ...-----.",
        )
    if text.startswith(("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-")):
        raise KeyFormatError(
            "Found an OpenSSH public key line, not a PEM or DER key.",
            hint="Convert it: `ssh-keygen -f key.pub -e -m PKCS8` gives a PEM public key.",
        )
    # No armor: the bare base64 body of a DER key.
    body = re.sub(r"\s+", "", text)
    if len(body) < 200:  # the smallest RSA-2048 public key is 392 base64 characters
        raise KeyFormatError(
            f"The input is not a key: {len(body)} characters of text without PEM armor, "
            "far shorter than any RSA-2048 key.",
            hint="Pass a PEM key (-----BEGIN PRIVATE KEY----- ...), DER bytes, or the full base64 body of one.",
        )
    der = _b64decode_body(body, "The input")
    return _parse_der(der, pw, "the base64 body")


def _b64decode_body(body: str, where: str) -> bytes:
    if not body:
        raise KeyFormatError(f"{where} has no base64 body between its BEGIN and END lines.",
                             hint="Copy the whole key again.")
    if not _BASE64_CHARS.match(body):
        bad = sorted({c for c in body if not (c.isalnum() or c in "+/=")})
        shown = ", ".join(repr(c) for c in bad[:5])
        raise KeyFormatError(
            f"{where} is not a key: it contains characters that base64 never uses ({shown}).",
            hint="Pass a PEM key (-----BEGIN PRIVATE KEY----- ...), DER bytes, or the bare base64 body of one.",
        )
    if len(body) % 4:
        raise KeyFormatError(
            f"{where} is truncated: its base64 has {len(body)} characters, not a multiple of 4.",
            hint="The key was cut while copying; copy it again in full.",
        )
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise KeyFormatError(f"{where} is not valid base64 (misplaced '=' padding).",
                             hint="Copy the key again in full.") from None


def _parse_pem(text: str, pw: bytes | None) -> tuple[str, object]:
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise KeyFormatError(
            "The key has a BEGIN line but no matching END line: it looks cut at the end.",
            hint="Copy the whole key, including the final -----END ...----- line.",
        )
    label, body, end_label = match.group(1).strip(), match.group(2), match.group(3).strip()
    if label != end_label:
        raise KeyFormatError(
            f"The PEM block begins as '{label}' but ends as '{end_label}'.",
            hint="The BEGIN and END lines must name the same type; copy the key again.",
        )
    if label in _FOREIGN_LABELS:
        raise KeyTypeError(
            f"Found {_FOREIGN_LABELS[label]} (BEGIN {label}); SNAP needs an RSA key in PKCS#8 or PKCS#1 form.",
            hint=_HOW_TO_MAKE,
        )
    if label == "OPENSSH PRIVATE KEY":
        raise KeyFormatError(
            "Found an OpenSSH-format private key (BEGIN OPENSSH PRIVATE KEY); SNAP tools expect PKCS#8 or PKCS#1.",
            hint="Convert a copy: `ssh-keygen -p -m PKCS8 -f COPY_OF_KEY` rewrites it as PKCS#8 PEM.",
        )
    if label not in _PRIVATE_LABELS | _PUBLIC_LABELS | _CERT_LABELS:
        raise KeyFormatError(
            f"Found a PEM block of type '{label}', which is not a key.",
            hint="Pass a PRIVATE KEY, RSA PRIVATE KEY, PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block.",
        )
    if "Proc-Type:" in body:
        # Legacy OpenSSL-encrypted PKCS#1 keeps header lines: hand the block over as it is.
        pem = match.group(0).encode("ascii")
        return _load_legacy_pem(pem, pw)
    der = _b64decode_body(re.sub(r"\s+", "", body), f"The {label} block")
    if label in _CERT_LABELS:
        return _load_certificate(der)
    if label == "ENCRYPTED PRIVATE KEY" and pw is None:
        raise PassphraseError(
            "The private key is encrypted (BEGIN ENCRYPTED PRIVATE KEY) and no passphrase was given.",
            hint="Give its passphrase (in the CLI through --passphrase-env VAR).",
        )
    if label in _PUBLIC_LABELS:  # SPKI or PKCS#1: cryptography's DER loader reads both
        try:
            return "public", serialization.load_der_public_key(der)
        except (ValueError, TypeError):
            raise _corrupt(f"The {label} block") from None
    return _load_der_private(der, pw, f"The {label} block")


def _corrupt(where: str) -> KeyFormatError:
    return KeyFormatError(
        f"{where} is valid base64 but not a complete key (truncated or corrupted DER).",
        hint="Copy the key again in full, or export it again from where it was made.",
    )


def _load_legacy_pem(pem: bytes, pw: bytes | None) -> tuple[str, object]:
    if pw is None:
        raise PassphraseError(
            "The private key is encrypted (Proc-Type: 4,ENCRYPTED) and no passphrase was given.",
            hint="Give its passphrase (in the CLI through --passphrase-env VAR).",
        )
    try:
        return "private", serialization.load_pem_private_key(pem, pw)
    except ValueError:
        raise PassphraseError(
            "Could not decrypt the private key: the passphrase is wrong.",
            hint="Check the passphrase; the key itself was not changed.",
        ) from None
    except TypeError:
        raise _corrupt("The RSA PRIVATE KEY block") from None


def _load_certificate(der: bytes) -> tuple[str, object]:
    # Imported here: cryptography.x509 is about a third of `import snapbook`, and only certificates need it.
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        return "certificate", cert.public_key()
    except ValueError:
        raise _corrupt("The certificate") from None


def _load_der_private(der: bytes, pw: bytes | None, where: str) -> tuple[str, object]:
    try:
        return "private", serialization.load_der_private_key(der, pw)
    except TypeError as exc:
        text = str(exc)
        if "not encrypted" in text:  # a passphrase given for a plain key: use the key as it is
            return "private", serialization.load_der_private_key(der, None)
        if "encrypted" in text:
            raise PassphraseError(
                "The private key is encrypted and no passphrase was given.",
                hint="Give its passphrase (in the CLI through --passphrase-env VAR).",
            ) from None
        raise _corrupt(where) from None
    except ValueError as exc:
        text = str(exc).lower()
        if "password" in text or "decrypt" in text:
            raise PassphraseError(
                "Could not decrypt the private key: the passphrase is wrong.",
                hint="Check the passphrase; the key itself was not changed.",
            ) from None
        raise _corrupt(where) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm for exotic PBE schemes
        raise _corrupt(where) from None


def _parse_der(der: bytes, pw: bytes | None, where: str) -> tuple[str, object]:
    """DER of unknown type: try private (PKCS#8, PKCS#1), then public, then certificate."""
    try:
        return _load_der_private(der, pw, where)
    except PassphraseError:
        raise
    except KeyFormatError:
        pass
    try:
        return "public", serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        pass
    try:
        return _load_certificate(der)
    except KeyFormatError:
        pass
    raise KeyFormatError(
        f"{where[0].upper()}{where[1:]} is not a key: it is not PKCS#8, PKCS#1, "
        "SubjectPublicKeyInfo or an X.509 certificate (truncated or corrupted?).",
        hint="Pass the key as PEM (-----BEGIN PRIVATE KEY----- ...) or as the DER bytes of one.",
    )


# --- serialization --------------------------------------------------------------------


def private_key_bytes(
    key: rsa.RSAPrivateKey, encoding: Encoding = "pem", passphrase: Passphrase = None
) -> bytes:
    """The private key as PKCS#8 PEM or DER, encrypted (best available scheme) with ``passphrase``."""
    pw = _to_bytes_passphrase(passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption(),
    )


def public_key_bytes(key: rsa.RSAPublicKey | rsa.RSAPrivateKey, encoding: Encoding = "pem") -> bytes:
    """The public key as SubjectPublicKeyInfo PEM or DER: what a merchant sends to Ifortepay."""
    if isinstance(key, rsa.RSAPrivateKey):
        key = key.public_key()
    return key.public_bytes(
        serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def fingerprint(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as lowercase hex: which public key this is.

    Equal to ``openssl pkey -pubin -in public.pem -outform DER | sha256sum``.
    """
    return hashlib.sha256(public_key_bytes(key, "der")).hexdigest()


def keys_match(private_key: rsa.RSAPrivateKey, public_key: rsa.RSAPublicKey) -> bool:
    """True when ``public_key`` is the public half of ``private_key``."""
    return private_key.public_key().public_numbers() == public_key.public_numbers()


def _write_new(path: Path, data: bytes, mode: int, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise KeyFileExistsError(
            f"{path} already exists; refusing to overwrite a key file.",
            hint="Choose another path, or pass overwrite=True (--force) if you really mean to replace it.",
        )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    if not overwrite:
        flags |= os.O_EXCL
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # an existing file keeps its mode on O_TRUNC: set it
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def save_private_key(
    key: rsa.RSAPrivateKey,
    path: str | os.PathLike[str],
    passphrase: Passphrase = None,
    *,
    encoding: Encoding = "pem",
    overwrite: bool = False,
) -> Path:
    """Write the private key as PKCS#8 to a new file of mode 0600 (owner only)."""
    return _write_new(Path(path), private_key_bytes(key, encoding, passphrase), 0o600, overwrite)


def save_public_key(
    key: rsa.RSAPublicKey | rsa.RSAPrivateKey,
    path: str | os.PathLike[str],
    *,
    encoding: Encoding = "pem",
    overwrite: bool = False,
) -> Path:
    """Write the public key (SPKI) to a file of mode 0644: the one to send to Ifortepay."""
    return _write_new(Path(path), public_key_bytes(key, encoding), 0o644, overwrite)


# --- teaching -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """What a key is, without its secret: for notebooks, the CLI and the doctor."""

    kind: Literal["private", "public"]
    bits: int
    public_exponent: int
    fingerprint: str
    public_key_pem: str

    def __repr__(self) -> str:
        return (
            f"KeyInfo(kind={self.kind!r}, algorithm='RSA', bits={self.bits}, "
            f"fingerprint={self.fingerprint!r})"
        )

    def _repr_html_(self) -> str:
        import html

        return (
            "<table><tr><th style='text-align:left'>kind</th><td>RSA "
            f"{self.kind} key</td></tr><tr><th style='text-align:left'>bits</th><td>{self.bits}</td></tr>"
            f"<tr><th style='text-align:left'>public exponent</th><td>{self.public_exponent}</td></tr>"
            f"<tr><th style='text-align:left'>fingerprint (SHA-256 of SPKI)</th><td><code>{self.fingerprint}</code></td></tr>"
            f"<tr><th style='text-align:left'>public key to send</th><td><pre>{html.escape(self.public_key_pem)}</pre></td></tr>"
            "</table>"
        )


def describe_key(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> KeyInfo:
    """A :class:`KeyInfo` for ``key``: size, exponent, fingerprint and the public PEM."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return KeyInfo(
        kind="private" if isinstance(key, rsa.RSAPrivateKey) else "public",
        bits=key.key_size,
        public_exponent=public.public_numbers().e,
        fingerprint=fingerprint(key),
        public_key_pem=public_key_bytes(public).decode("ascii"),
    )
