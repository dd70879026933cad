"""The vendor page's worked example, as data: a fixed, public key pair to learn with.

Ifortepay's "Access Token B2B" page publishes an example private key, public key, client key,
timestamp and curl request. They are public, so notebooks and tests can use them to show stable,
checkable output. They are shipped as package data (``snapbook/data/vendor_vectors.json``)
and read at run time, so no notebook ever has to contain the private key's text.

Never register the example key with a real provider: everyone has its private half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from .keys import load_private_key, load_public_key
from .masking import mask

__all__ = ["VendorExample", "load_stranger_key", "load_vendor_example"]


@dataclass(frozen=True)
class VendorExample:
    """The vendor page's example request, parsed. Secrets are masked in ``repr``."""

    client_key: str
    timestamp: str
    string_to_sign: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    public_key: rsa.RSAPublicKey = field(repr=False)
    #: The one correct SHA256withRSA signature of ``string_to_sign`` with ``private_key``.
    signature: str = field(repr=False)
    #: The X-SIGNATURE printed in the vendor's curl example (it does not verify).
    documented_signature: str = field(repr=False)
    documented_signature_verifies: bool = False
    #: The accessToken printed in the vendor's example response (an HS512 JWT).
    documented_access_token: str = field(repr=False, default="")
    documented_access_token_claims: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"VendorExample(client_key={self.client_key!r}, timestamp={self.timestamp!r}, "
            f"signature={mask(self.signature)!r}, documented_signature={mask(self.documented_signature)!r})"
        )


def _raw() -> dict[str, Any]:
    text = resources.files("snapbook").joinpath("data/vendor_vectors.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def load_vendor_example() -> VendorExample:
    """The vendor page's example key pair, request and signatures, read from package data."""
    raw = _raw()
    return VendorExample(
        client_key=raw["client_key"],
        timestamp=raw["timestamp"],
        string_to_sign=raw["string_to_sign"],
        private_key=load_private_key(raw["private_key_pem"]),
        public_key=load_public_key(raw["public_key_pem"]),
        signature=raw["signature_sha256withrsa_base64"],
        documented_signature=raw["documented_signature_base64"],
        documented_signature_verifies=bool(raw["documented_signature_verifies"]),
        documented_access_token=raw.get("documented_access_token", ""),
        documented_access_token_claims=dict(raw.get("documented_access_token_claims", {})),
        notes={k: v for k, v in raw.items() if k.endswith("note") or k == "source"},
    )


@lru_cache(maxsize=1)
def load_stranger_key() -> rsa.RSAPrivateKey:
    """A fixed RSA-2048 key registered nowhere (public demo data): "signed with another key", same output every run.

    A freshly generated key would do, but its signature is larger than the registered key's modulus
    about half the time, and the sandbox words that case differently, so notebook outputs would vary.
    """
    text = resources.files("snapbook").joinpath("data/stranger_key.json").read_text("utf-8")
    return load_private_key(json.loads(text)["private_key_pem"])
