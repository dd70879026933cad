"""/openapi.json is exact: a schema-driven fuzzer (schemathesis) finds nothing against the sandbox.

schemathesis reads the sandbox's own document and sends what it allows (positive) and what it
forbids (negative) to a loopback sandbox, with every check on: a schema-valid request must not
get a 400, an invalid one must be refused, every status, header, content type and body must be
documented. It runs four times: lenient and strict, unsigned (headers generated from their
patterns, so the patterns are what is tested) and signed (the vendor example's verifying
X-SIGNATURE and a real bearer token, so 200 bodies and the body schema are what is tested).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapbook.examples import load_vendor_example
from snapbook.sandbox import Sandbox, SandboxConfig, openapi_document
from snapbook.sandbox.openapi import timestamp_pattern
from snapbook.signing import parse_timestamp

# Small enough for < ~60 s in all on two busy cores; big enough that every phase runs.
MAX_EXAMPLES = 10
ST_CLI = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


def _run_schemathesis(sb: Sandbox, headers: dict[str, str], workdir: Path) -> tuple[int, str]:
    args = [sys.executable, "-c", ST_CLI, "run", sb.base_url + "/openapi.json", "--checks", "all"]
    args += ["--max-examples", str(MAX_EXAMPLES), "--seed", "14", "--no-color", "--workers", "1"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    # its own folder: schemathesis keeps a .schemathesis/ cache in the working directory
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=workdir)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_schemathesis_finds_no_failure(strict, signed, tmp_path):
    example = load_vendor_example()
    config = SandboxConfig(strict=strict, freshness_seconds=None, route_prefixes=("/openapi",))
    with Sandbox(config) as sb:
        sb.register(example.client_key, example.public_key)
        headers: dict[str, str] = {}
        if signed:
            signature = {
                "X-TIMESTAMP": example.timestamp,
                "X-CLIENT-KEY": example.client_key,
                "X-SIGNATURE": example.signature,
            }
            answer = httpx.post(
                sb.token_url("snap"), headers=signature, json={"grantType": "client_credentials"}
            )
            assert answer.status_code == 200, answer.text  # the document's example signature verifies
            headers = {**signature, "Authorization": "Bearer " + answer.json()["accessToken"]}
        before = len(sb.journal)
        code, output = _run_schemathesis(sb, headers, tmp_path)
        counts = sb.journal.counts()
        received = len(sb.journal) - before

    assert code == 0, output[-6000:]
    found = re.search(r"(\d+) generated, (\d+) passed", output)
    assert found, output[-3000:]
    generated, passed = int(found.group(1)), int(found.group(2))
    print(f"schemathesis: {generated} generated, {passed} passed, {received} received, {counts}")
    assert generated == passed and generated >= 100, output[-3000:]
    assert received >= generated  # they really reached the sandbox
    # 3 token routes + 3 under /openapi, validate GET/POST, QRIS generate/query, Senmo balance, pay
    assert "12 selected / 12 total" in output
    assert counts.get("rejected", 0) > 0
    if signed:
        assert counts.get("accepted", 0) > 20  # 200 answers (and their schema) were exercised


@pytest.mark.parametrize("profile", ["lenient", "snap", "ifortepay"])
def test_the_documented_timestamp_pattern_only_allows_what_the_profile_parses(profile):
    pattern = timestamp_pattern(profile)

    @settings(max_examples=300, deadline=None)
    @given(st.from_regex(pattern))
    def check(text: str) -> None:
        parse_timestamp(text.rstrip("\n"), profile=profile)  # type: ignore[arg-type]

    check()
    assert re.fullmatch(pattern[1:-1], "2020-12-18T10:55:00+07:00")
    assert re.fullmatch(pattern[1:-1], "2024-02-29T10:55:00+07:00")
    assert not re.fullmatch(pattern[1:-1], "2023-02-29T10:55:00+07:00")
    assert not re.fullmatch(pattern[1:-1], "2020-12-18T24:00:00+07:00")


def test_strict_and_lenient_patterns_differ_exactly_by_the_lenient_extras():
    snap, lenient = timestamp_pattern("snap")[1:-1], timestamp_pattern("lenient")[1:-1]
    for standard in ("2020-12-18T10:55:00.000+07:00", "2020-12-18T03:55:00Z", "2020-12-17T22:55:00-05:00"):
        assert re.fullmatch(snap, standard) and re.fullmatch(lenient, standard)
    for extra in (
        "2020-12-18T10:55:00+0700",
        "2020-12-18 10:55:00+07:00",
        "2020-12-18T10:55:00.1234+07:00",
        "2020-12-18T10:55:00.5+07:00",
        "2020-12-18T03:55:00.12Z",
    ):
        assert re.fullmatch(lenient, extra) and not re.fullmatch(snap, extra)


def test_document_headers_have_min_length_and_pattern():
    doc = openapi_document(SandboxConfig())
    for path in ("/v1.0/access-token/b2b", "/api/v1.0/access-token/b2b"):
        for parameter in doc["paths"][path]["post"]["parameters"]:
            assert parameter["schema"]["minLength"] == 1 and parameter["schema"]["pattern"], parameter
    assert "lenient" in doc["info"]["title"] and "strict" in openapi_document(SandboxConfig(strict=True))["info"]["title"]
