"""The package's public demo data: the vendor example and the fixed "stranger" key of notebook 5."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from snapbook.examples import load_stranger_key, load_vendor_example


def test_the_stranger_key_is_a_fixed_rsa_2048_key_other_than_the_vendors():
    key = load_stranger_key()
    example = load_vendor_example()
    assert key.key_size == 2048
    assert key.public_key().public_numbers() != example.public_key.public_numbers()
    assert load_stranger_key.__wrapped__().private_numbers() == key.private_numbers()  # read, not generated


def test_its_signature_is_refused_as_not_verifying_the_same_way_every_run():
    """Notebook 5's checked output relies on this: below the registered modulus, so "does not verify"."""
    example = load_vendor_example()
    signature = load_stranger_key().sign(example.string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert int.from_bytes(signature, "big") < example.public_key.public_numbers().n
