"""``snapbook keygen`` and ``snapbook fingerprint``."""

from __future__ import annotations

from ..errors import ConfigError
from ..keys import (
    MAX_BITS,
    check_key_pair_target,
    check_key_size,
    fingerprint,
    generate_private_key,
    load_any_key,
    read_key_file,
    save_key_pair,
)
from ._common import add_passphrase_option, passphrase_from_env, shown


def register(sub) -> None:
    p = sub.add_parser("keygen", help="generate an RSA key pair (private.pem 0600, public.pem)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for private.pem and public.pem")
    p.add_argument("--bits", type=int, default=2048, metavar="N", help=f"key size (default 2048, the minimum; at most {MAX_BITS})")
    add_passphrase_option(p)
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.set_defaults(func=keygen)

    p = sub.add_parser("fingerprint", help="SHA-256 fingerprint of a public or private key file")
    p.add_argument("file", metavar="FILE")
    add_passphrase_option(p)
    p.set_defaults(func=fingerprint_cmd)


def keygen(args) -> int:
    if not args.out.strip():
        raise ConfigError("--out is empty.", hint="Name the directory for the key pair, e.g. --out keys.")
    passphrase = passphrase_from_env(args.passphrase_env)
    # Everything that can be refused is refused before any key is made or any directory created.
    check_key_size(args.bits)
    check_key_pair_target(args.out, overwrite=args.force)
    key = generate_private_key(args.bits)
    private_path, public_path = save_key_pair(key, args.out, passphrase, overwrite=args.force)
    print(f"private key: {shown(str(private_path))} (PKCS#8{', encrypted' if passphrase else ''}, mode 0600)")
    print(f"public key:  {shown(str(public_path))} (SubjectPublicKeyInfo; send this one to Ifortepay)")
    print(f"fingerprint: {fingerprint(key)}")
    return 0


def fingerprint_cmd(args) -> int:
    key = load_any_key(read_key_file(args.file), passphrase_from_env(args.passphrase_env))
    print(fingerprint(key))
    return 0
