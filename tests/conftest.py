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


#: The client key the shared sandbox knows (the vendor example's).
SANDBOX_CLIENT = "MCP00000001"


@pytest.fixture(scope="module")
def running_sandbox(private_key):
    """A sandbox on loopback, one per test module, that knows ``private_key`` as MCP00000001."""
    from snapbook.sandbox import Sandbox

    with Sandbox() as sandbox:
        sandbox.register(SANDBOX_CLIENT, private_key.public_key())
        yield sandbox


@pytest.fixture
def sb(running_sandbox):
    """``running_sandbox`` with its faults reset around each test (test_sandbox.py has its own ``sb``)."""
    from snapbook.sandbox import Faults

    running_sandbox.faults = Faults()
    yield running_sandbox
    running_sandbox.faults = Faults()
