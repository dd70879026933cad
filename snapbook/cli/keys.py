"""``snapbook keygen`` and ``snapbook fingerprint``."""

from __future__ import annotations

from pathlib import Path

from ..errors import KeyFileExistsError
from ..keys import (
    fingerprint,
    generate_private_key,
    load_any_key,
    read_key_file,
    save_private_key,
    save_public_key,
)
from ._common import add_passphrase_option, passphrase_from_env


def register(sub) -> None:
    p = sub.add_parser("keygen", help="generate an RSA key pair (private.pem 0600, public.pem)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for private.pem and public.pem")
    p.add_argument("--bits", type=int, default=2048, metavar="N", help="key size (default 2048, the minimum)")
    add_passphrase_option(p)
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.set_defaults(func=keygen)

    p = sub.add_parser("fingerprint", help="SHA-256 fingerprint of a public or private key file")
    p.add_argument("file", metavar="FILE")
    add_passphrase_option(p)
    p.set_defaults(func=fingerprint_cmd)


def keygen(args) -> int:
    passphrase = passphrase_from_env(args.passphrase_env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / "private.pem", out / "public.pem"
    if not args.force:
        for path in (private_path, public_path):
            if path.exists():
                raise KeyFileExistsError(
                    f"{path} already exists; refusing to overwrite a key file.",
                    hint="Choose another --out directory, or add --force to replace the pair.",
                )
    key = generate_private_key(args.bits)
    save_private_key(key, private_path, passphrase, overwrite=args.force)
    save_public_key(key, public_path, overwrite=args.force)
    print(f"private key: {private_path} (PKCS#8{', encrypted' if passphrase else ''}, mode 0600)")
    print(f"public key:  {public_path} (SubjectPublicKeyInfo; send this one to Ifortepay)")
    print(f"fingerprint: {fingerprint(key)}")
    return 0


def fingerprint_cmd(args) -> int:
    key = load_any_key(read_key_file(args.file), passphrase_from_env(args.passphrase_env))
    print(fingerprint(key))
    return 0
