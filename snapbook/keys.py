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
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from .errors import (
    ConfigError,
    KeyFileError,
    KeyFileExistsError,
    KeyFormatError,
    KeyKindError,
    KeyTypeError,
    PassphraseError,
    WeakKeyError,
)

__all__ = [
    "MAX_BITS",
    "MAX_KEY_FILE_BYTES",
    "MIN_BITS",
    "MIN_BITS_TO_INSPECT",
    "KeyInfo",
    "check_key_pair_target",
    "check_key_size",
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
    "save_key_pair",
    "save_private_key",
    "save_public_key",
]

#: SNAP and Ifortepay require RSA keys of at least 2048 bits.
MIN_BITS = 2048
#: The largest key :func:`generate_private_key` makes: already minutes of work, far beyond any provider's ask.
MAX_BITS = 16384
#: The most a key file may hold: a 16,384-bit private key in PEM is under 20 KB.
MAX_KEY_FILE_BYTES = 64 * 1024
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


def check_key_size(bits: object) -> int:
    """``bits`` if snapbook will make a key that size (:data:`MIN_BITS` to :data:`MAX_BITS`), else a typed error."""
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < MIN_BITS:
        raise WeakKeyError(
            f"Refusing to generate a {_shown_path(bits, 40)}-bit RSA key: SNAP requires at least {MIN_BITS} bits.",
            hint="Use --bits 2048 (the SNAP standard) or larger.",
        )
    if bits > MAX_BITS:
        size = f"a {bits}-bit RSA key" if bits < 10**6 else "an RSA key of over a million bits"
        raise ConfigError(
            f"Refusing to generate {size}: snapbook makes keys of at most "
            f"{MAX_BITS} bits (a larger one takes hours to make and no provider asks for it).",
            hint="Use --bits 2048 (the SNAP standard); 3072 or 4096 if you want a margin.",
        )
    return bits


def generate_private_key(bits: int = MIN_BITS) -> rsa.RSAPrivateKey:
    """A new RSA private key (public exponent 65537) of ``bits`` bits, 2048 by default."""
    return rsa.generate_private_key(public_exponent=65537, key_size=check_key_size(bits))


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


def _shown_path(path: object, limit: int = 160) -> str:
    """A path as a message may show it: control characters escaped, long ones cut (they came from a user)."""
    if isinstance(path, int) and abs(path).bit_length() > 64:
        return f"{'-' if path < 0 else ''}{abs(path).bit_length()}-bit-long number"
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        return f"{text[: limit // 2]}…{text[-limit // 4:]} ({len(text)} chars)"
    return text


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _usable_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or a :class:`KeyFileError` for what no file system accepts (a NUL character)."""
    text = os.fspath(path)
    if "\x00" in (text if isinstance(text, str) else os.fsdecode(text)):
        raise KeyFileError(f"{_shown_path(text)} is not a usable path: it contains a NUL character.",
                           hint="Check how the path was typed or pasted.")
    return Path(text).expanduser()


def _file_kind(mode: int) -> str:
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a key file, or a :class:`KeyFileError` saying why it cannot be read.

    Only a regular file of at most :data:`MAX_KEY_FILE_BYTES` is read: ``/dev/zero`` would
    exhaust memory and a FIFO would block forever, so both are refused before any read.
    """
    if not os.fspath(path):
        raise KeyFileError("No key file named: the path is empty.", hint="Name the key file, e.g. keys/private.pem.")
    p = _usable_path(path)
    shown = _shown_path(p)
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting forever.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise KeyFileError(f"Key file not found: {shown}.", hint="Check the path.") from None
    except PermissionError:
        raise KeyFileError(f"Cannot read key file {shown}: permission denied.",
                           hint="Check the file's owner and mode.") from None
    except OSError as exc:
        raise KeyFileError(f"Cannot open key file {shown}: {exc.strerror or type(exc).__name__}.",
                           hint="Check the path: name the key file itself.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(
                f"{shown} is {_file_kind(info.st_mode)}, not a key file.",
                hint="Name the key file itself (a regular file such as private.pem).",
            )
        too_big = KeyFileError(
            f"{shown} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB: not a key file "
            "(a 16,384-bit private key in PEM is under 20 KB).",
            hint="Name the key file itself (private.pem or public.pem), not another file.",
        )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_KEY_FILE_BYTES:  # a file that grows while read is still bounded
            chunk = os.read(fd, MAX_KEY_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_KEY_FILE_BYTES:
            raise too_big
        return b"".join(chunks)
    except IsADirectoryError:
        raise KeyFileError(f"{shown} is a directory, not a key file.", hint="Name the key file itself.") from None
    except OSError as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"Cannot read key file {shown}: {exc.strerror or type(exc).__name__}.",
                           hint="Check the file and the disk it is on.") from None
    finally:
        os.close(fd)


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


def _is_encrypted_pkcs8(der: bytes) -> bool:
    try:
        serialization.load_der_private_key(der, None)
    except TypeError as exc:
        return "encrypted" in str(exc) and "not encrypted" not in str(exc)
    except Exception:
        return False
    return False


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
        # A wrong passphrase usually fails the padding check ("Incorrect password"), but about one in
        # 256 decrypts to valid padding around garbage DER: still a wrong passphrase, not a broken key.
        if "password" in text or "decrypt" in text or (pw is not None and _is_encrypted_pkcs8(der)):
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


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to write a key file where it would follow a link, fill a directory's name or clobber a key."""
    shown = _shown_path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KeyFileError(f"Cannot check {shown}: {exc.strerror or type(exc).__name__}.",
                           hint="Check the path and the permissions of its directory.") from None
    if stat.S_ISLNK(info.st_mode):
        dangling = "" if path.exists() else " (dangling: its target does not exist)"
        raise KeyFileError(
            f"{shown} is a symbolic link{dangling}; refusing to write a key file through or over a link.",
            hint="Remove the link, or write the keys somewhere else (another --out directory).",
        )
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(
            f"{shown} is {_file_kind(info.st_mode)}; a key file cannot be written there.",
            hint="Remove or rename it, or write the keys somewhere else (another --out directory).",
        )
    if not overwrite:
        raise KeyFileExistsError(
            f"{shown} already exists; refusing to overwrite a key file.",
            hint="Choose another path, or pass overwrite=True (--force) if you really mean to replace it.",
        )


def _missing_directories(folder: Path) -> list[Path]:
    """The directories to create for ``folder`` (deepest first), or a :class:`KeyFileError` for what is in the way."""
    missing: list[Path] = []
    current = folder
    try:
        while not current.is_dir():
            if os.path.lexists(current):
                what = "a dangling symbolic link" if current.is_symlink() else "not a directory"
                raise KeyFileError(
                    f"{_shown_path(current)} is {what}; cannot write key files into it.",
                    hint="Name a directory (it is created if it does not exist), or remove what is in the way.",
                )
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
    except OSError as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"Cannot use {_shown_path(folder)} as a directory: {exc.strerror or exc}.",
                           hint="Check the path (each name at most 255 bytes) and your permissions.") from None
    return missing


def _make_directory(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created (deepest last), to undo on failure."""
    missing = _missing_directories(folder)
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
    except OSError as exc:
        _remove_directories(created)
        raise KeyFileError(f"Cannot create the directory {_shown_path(folder)}: {exc.strerror or exc}.",
                           hint="Check the path and your permissions there.") from None
    return created


def _remove_directories(created: list[Path]) -> None:
    for directory in reversed(created):
        try:
            directory.rmdir()  # only ever empty: nothing else was written there
        except OSError:
            pass


def _write_temporary(folder: Path, name: str, data: bytes, mode: int) -> Path:
    """``data`` in a new hidden file beside ``name`` (same file system, so the rename is atomic), synced."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")  # O_EXCL, mode 0600
    try:
        os.fchmod(fd, mode)  # the mode is exact whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def _sync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)  # the renames themselves survive a crash
    except OSError:
        pass
    finally:
        os.close(fd)


def _set_aside(target: Path) -> Path:
    """A second name for an existing file, so a failed replacement can put it back."""
    backup = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
    try:
        os.link(target, backup)  # the old file stays in place meanwhile
    except OSError:
        os.replace(target, backup)  # a file system without hard links: move it aside instead
    return backup


def _place(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name was taken meanwhile: never clobber a key
    except FileExistsError:
        raise KeyFileExistsError(
            f"{_shown_path(target)} appeared while the keys were written; refusing to overwrite it.",
            hint="Check what else writes there, then try again.",
        ) from None
    except OSError:
        if os.path.lexists(target):
            raise
        os.replace(tmp, target)  # a file system without hard links


def _write_files(folder: Path, files: list[tuple[str, bytes, int]], overwrite: bool) -> list[Path]:
    """Write every ``(name, data, mode)`` in ``folder``, all or none.

    Each file is first written to a temporary file in the same folder; only when all are complete
    are they moved into place. Should any step fail, files already moved are put back as they
    were, an existing key file is left untouched, and directories created here are removed.
    """
    targets = [folder / name for name, _, _ in files]
    for target in targets:
        _check_target(target, overwrite)
    created = _make_directory(folder)
    temporaries: list[Path] = []
    backups: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for name, data, mode in files:
            temporaries.append(_write_temporary(folder, name, data, mode))
        for tmp, target in zip(temporaries, targets):
            if overwrite and os.path.lexists(target):
                backups[target] = _set_aside(target)
            _place(tmp, target, overwrite)
            placed.append(target)
        _sync_directory(folder)
    except BaseException as exc:
        for target in reversed(targets):  # undo: every name as it was before
            try:
                if target in backups:
                    os.replace(backups.pop(target), target)
                elif target in placed:
                    os.unlink(target)
            except OSError:
                pass
        placed.clear()
        if isinstance(exc, OSError) and not isinstance(exc, (KeyFileError, KeyFileExistsError)):
            raise KeyFileError(
                f"Could not write the key files in {_shown_path(folder)}: "
                f"{exc.strerror or type(exc).__name__}. Nothing was changed there.",
                hint="Free some space or fix the permissions, then try again.",
            ) from None
        raise
    finally:
        for leftover in [*temporaries, *backups.values()]:
            try:
                os.unlink(leftover)
            except OSError:
                pass
        if not placed:
            _remove_directories(created)
    return targets


def _write_new(path: Path, data: bytes, mode: int, overwrite: bool) -> Path:
    path = _usable_path(path)
    return _write_files(path.parent, [(path.name, data, mode)], overwrite)[0]


def check_key_pair_target(directory: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Raise now if :func:`save_key_pair` could not write into ``directory``: before minutes of key generation."""
    folder = _usable_path(directory)
    _missing_directories(folder)
    for name in ("private.pem", "public.pem"):
        _check_target(folder / name, overwrite)


def save_key_pair(
    key: rsa.RSAPrivateKey,
    directory: str | os.PathLike[str],
    passphrase: Passphrase = None,
    *,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``private.pem`` (PKCS#8, 0600, encrypted with ``passphrase``) and ``public.pem`` (SPKI, 0644).

    Both or neither: when writing fails (a full disk, a permission), an existing pair stays as it
    was and a directory created for it is removed again.
    """
    folder = _usable_path(directory)
    private, public = _write_files(
        folder,
        [("private.pem", private_key_bytes(key, "pem", passphrase), 0o600),
         ("public.pem", public_key_bytes(key, "pem"), 0o644)],
        overwrite,
    )
    return private, public


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
