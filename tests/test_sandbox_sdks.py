"""Third-party SDKs as they are: route prefixes, and the snap-bca-api SDK itself against the sandbox.

``snap-bca-api`` always posts to ``{host}/openapi/v1.0/access-token/b2b``. It pins
``cryptography==43.0.3`` and ``pyOpenSSL==24.2.1`` (whose ``crypto.sign`` it calls, and which does
not import with the cryptography snapbook uses), so it cannot share snapbook's environment: the
test installs it, pins and all, into a virtual environment of its own (cached between runs under
``$SNAPBOOK_SDK_VENVS``, default ``~/.cache/snapbook/sdk-venvs``) and drives it there, in a
subprocess, against a loopback sandbox.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import venv
from pathlib import Path

import httpx
import pytest

from snapbook.errors import ConfigError
from snapbook.keys import save_public_key
from snapbook.sandbox import Sandbox, SandboxConfig
from snapbook.signing import make_timestamp, signed_headers

CLIENT = "MCP00000001"
BODY = {"grantType": "client_credentials", "additionalInfo": {}}
SDK = "snap-bca-api==1.0.0"


def test_route_prefix_serves_every_token_route_under_it(private_key):
    config = SandboxConfig(route_prefixes=["/openapi", "/gateway/snap/"])
    assert config.route_prefixes == ("/openapi", "/gateway/snap")
    with Sandbox(config) as sb, Sandbox() as plain:
        for s in (sb, plain):
            s.register(CLIENT, private_key.public_key())
        for path in ("/openapi/v1.0/access-token/b2b", "/gateway/snap/api/v1.0/access-token/b2b",
                     "/openapi/auth/merchants/v1.0/access-token/b2b", "/v1.0/access-token/b2b"):
            headers = signed_headers(private_key, CLIENT, make_timestamp())
            r = httpx.post(sb.base_url + path, headers=headers, json=BODY)
            assert r.status_code == 200 and r.json()["responseCode"] == "2007300", (path, r.text)
        # today's behaviour without a prefix: the SDK's path is unknown
        headers = signed_headers(private_key, CLIENT, make_timestamp())
        r = httpx.post(plain.base_url + "/openapi/v1.0/access-token/b2b", headers=headers, json=BODY)
        assert (r.status_code, r.json()["responseCode"]) == (404, "4047300")
        rows = sb.journal.to_dataframe()
        assert set(rows["product"]) == {"snap", "disbursement", "payment"}
        doc = httpx.get(sb.base_url + "/openapi.json").json()
    assert "/openapi/v1.0/access-token/b2b" in doc["paths"]
    assert "route prefix /openapi" in doc["paths"]["/openapi/v1.0/access-token/b2b"]["post"]["summary"]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))  # operationIds stay unique


@pytest.mark.parametrize("bad", ["openapi", "/", "/a b", "/a//b", "/x?y"])
def test_a_bad_route_prefix_is_a_config_error(bad):
    with pytest.raises(ConfigError) as caught:
        SandboxConfig(route_prefixes=[bad])
    assert "/openapi" in caught.value.hint or "/openapi" in caught.value.message
    with pytest.raises(ConfigError):
        SandboxConfig(route_prefixes="/openapi")  # type: ignore[arg-type]  # a str, not a list of them


def test_cli_route_prefix_is_repeatable_and_printed(tmp_path, private_key):
    pem = tmp_path / "public.pem"
    save_public_key(private_key.public_key(), pem)
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapbook", "sandbox", "--port", "0", "--register", f"{CLIENT}={pem}",
         "--route-prefix", "/openapi", "--route-prefix", "/bank"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        banner = [proc.stdout.readline()]
        while "Press Ctrl+C" not in banner[-1]:
            banner.append(proc.stdout.readline())
            assert banner[-1], "".join(banner) + proc.stderr.read()
        base = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner[0]).group(1)
        headers = signed_headers(private_key, CLIENT, make_timestamp())
        r = httpx.post(base + "/bank/v1.0/access-token/b2b", headers=headers, json=BODY, timeout=5)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        watchdog.cancel()
    text = "".join(banner)
    assert f"POST {base}/openapi/v1.0/access-token/b2b" in text and f"POST {base}/bank/api/v1.0/access-token/b2b" in text
    assert "lenient" in banner[0]


def _sdk_python() -> Path:
    """A virtual environment with snap-bca-api and its own pins, made once and then reused."""
    root = Path(os.environ.get("SNAPBOOK_SDK_VENVS") or Path.home() / ".cache" / "snapbook" / "sdk-venvs")
    home = root / SDK.replace("==", "-")
    python = home / "bin" / "python"
    ready = home / "snapbook-ready"
    if not ready.exists():
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SDK],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pip install {SDK} into {home} failed (needs PyPI):\n{done.stderr[-2000:]}"
        ready.write_text(SDK)
    return python


# Runs inside the SDK's environment: the SDK's public API, exactly as its README shows it.
_DRIVER = """
import json, sys
from snap_bca_api.bca import BCA_SNAP
given = json.load(sys.stdin)
bca = BCA_SNAP(given["client_id"], "client-secret-for-the-service-call", given["private_key"], "95221",
               "PARTNER01", host=given["host"])
print(json.dumps({"answer": bca.getBalance("1234567890", "ref-0001")}))
"""


def _drive_sdk(host: str, private_key_pem: str) -> object:
    given = json.dumps({"client_id": CLIENT, "private_key": private_key_pem, "host": host})
    done = subprocess.run([str(_sdk_python()), "-c", _DRIVER], input=given, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["answer"]


def test_snap_bca_api_gets_a_token_from_the_sandbox_with_route_prefix_openapi(private_key):
    from cryptography.hazmat.primitives import serialization

    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    with Sandbox(SandboxConfig(route_prefixes=("/openapi",))) as sb, Sandbox() as plain:
        for s in (sb, plain):
            s.register(CLIENT, private_key.public_key())
        answer = _drive_sdk(sb.base_url, pem)
        without = _drive_sdk(plain.base_url, pem)
        rows = sb.journal.to_dataframe()
    token_row = rows[rows["path"] == "/openapi/v1.0/access-token/b2b"].iloc[0]
    assert (token_row["verdict"], token_row["http_status"], token_row["response_code"]) == ("accepted", 200, "2007300")
    assert token_row["product"] == "snap"
    # With the token, the SDK goes on to its balance inquiry, which the sandbox does not serve.
    assert list(rows["path"]) == ["/openapi/v1.0/access-token/b2b", "/openapi/v1.0/balance-inquiry"]
    assert isinstance(answer, str) and json.loads(answer)["responseCode"] == "4047300"
    # Without --route-prefix the SDK's token request itself is answered 404 (issue 14).
    assert without == {"responseCode": "4047300", "responseMessage": "Not Found. [Unknown path]"}
