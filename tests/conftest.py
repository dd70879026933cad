"""Fixtures shared by the whole suite: keys are made once per session (RSA keygen is slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapbook.keys import generate_private_key

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict:
    """The vendor page's facts (a copy of shared/reference/vectors.json)."""
    return json.loads((DATA / "vectors.json").read_text())


@pytest.fixture(scope="session")
def private_key():
    """A fresh RSA-2048 private key, shared by the session."""
    return generate_private_key()


@pytest.fixture(scope="session")
def other_private_key():
    """A second, unrelated RSA-2048 private key."""
    return generate_private_key()


@pytest.fixture(scope="session")
def public_key(private_key):
    return private_key.public_key()
