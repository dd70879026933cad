"""as_curl: a signed request as the vendor page's curl command, secrets masked unless asked."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys

import httpx
import pytest

from snapbook.curl import as_curl
from snapbook.signing import signed_headers

URL = "https://kronos-stage.ifortepay.id/auth/merchants/v1.0/access-token/b2b"
TS = "2020-12-18T10:55:00+07:00"
CK = "MCP00000001"
BODY = '{\n"grantType": "client_credentials",\n"additionalInfo": {}\n}'


@pytest.fixture(scope="module")
def headers(private_key):
    h = signed_headers(private_key, CK, TS)
    return {
        "X-TIMESTAMP": h["X-TIMESTAMP"],
        "X-CLIENT-KEY": CK,
        "X-SIGNATURE": h["X-SIGNATURE"],
        "Content-Type": "application/json",
    }  # the vendor page's order


def parse(command: str) -> tuple[list[str], dict[str, str], str | None]:
    """Split the command as a POSIX shell would: (words, headers, body).

    shlex.split keeps each line continuation's escaped newline at the start of the next option
    word, where a shell drops it; quoted values come back exactly.
    """
    words = [word.lstrip("\n") for word in shlex.split(command)]
    assert words[0] == "curl"
    found: dict[str, str] = {}
    body = None
    for option, value in itertools.pairwise(words):
        if option == "--header":
            name, _, val = value.partition(": ")
            found[name] = val
        elif option in ("--data", "--data-raw"):
            body = value
    return words, found, body


def test_looks_like_the_vendor_page(headers):
    command = as_curl(("POST", URL, headers, BODY), show_secrets=True)
    lines = command.splitlines()
    assert lines[0] == f"curl --location '{URL}' \\"
    assert lines[1] == f"--header 'X-TIMESTAMP: {TS}' \\"
    assert lines[2] == f"--header 'X-CLIENT-KEY: {CK}' \\"
    assert lines[3] == f"--header 'X-SIGNATURE: {headers['X-SIGNATURE']}' \\"
    assert lines[4] == "--header 'Content-Type: application/json' \\"
    assert lines[5:] == ["--data '{", '"grantType": "client_credentials",', '"additionalInfo": {}', "}'"]


def test_show_secrets_round_trips_through_the_shell(headers):
    words, found, body = parse(as_curl(("POST", URL, headers, BODY), show_secrets=True))
    assert words[1:3] == ["--location", URL]
    assert found == headers
    assert body == BODY


def test_secrets_are_masked_by_default(headers):
    command = as_curl(("POST", URL, {**headers, "Authorization": "Bearer " + "t" * 200}, BODY))
    assert headers["X-SIGNATURE"] not in command
    assert "t" * 50 not in command
    _, found, _ = parse(command)
    assert found["X-SIGNATURE"].startswith(headers["X-SIGNATURE"][:6]) and "chars)" in found["X-SIGNATURE"]
    assert found["Authorization"].startswith("Bearer ") and "(200 chars)" in found["Authorization"]
    assert found["X-CLIENT-KEY"] == CK and found["X-TIMESTAMP"] == TS  # not secrets


def test_an_httpx_request(headers):
    request = httpx.Request("POST", URL, headers=headers, content=BODY.encode())
    _, found, body = parse(as_curl(request, show_secrets=True))
    assert found == headers  # original case, no Host or Content-Length
    assert body == BODY


def test_a_client_built_request_drops_what_curl_sets_itself(headers):
    with httpx.Client() as client:
        request = client.build_request("POST", URL, headers=headers, json={"grantType": "client_credentials"})
    command = as_curl(request, show_secrets=True)
    _, found, body = parse(command)
    lowered = {k.lower() for k in found}
    assert not lowered & {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}
    assert found["X-SIGNATURE"] == headers["X-SIGNATURE"]
    assert body == '{"grantType":"client_credentials"}'


@pytest.mark.parametrize(
    "value",
    ["it's", "'", "''", "a'b'c", '$HOME `id` \\ " ! *', "tab\there", "line1\nline2"],
)
def test_shell_quoting_is_exact(value):
    _, found, body = parse(as_curl(("POST", URL, {"X-Note": value}, value), show_secrets=True))
    assert found["X-Note"] == value
    assert body == value


def test_a_real_shell_passes_the_exact_arguments(headers):
    command = as_curl(("POST", URL, {**headers, "X-Note": "it's $HOME"}, BODY + "\\"), show_secrets=True)
    echo_argv = f"{shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))'"
    script = f'curl() {{ {echo_argv} "$@"; }}\n{command}\n'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    argv = json.loads(out)
    assert argv[:2] == ["--location", URL]
    assert f"X-SIGNATURE: {headers['X-SIGNATURE']}" in argv
    assert "X-Note: it's $HOME" in argv
    assert argv[-2:] == ["--data", BODY + "\\"]


def test_get_without_body_and_other_methods():
    assert (
        as_curl(("GET", "https://example.test/a?b=1", {})) == "curl --location 'https://example.test/a?b=1'"
    )
    put = as_curl(("PUT", "https://example.test/", {}, "{}"))
    assert put.splitlines()[0] == "curl --location --request PUT 'https://example.test/' \\"
    assert as_curl(("post", "https://example.test/", {})).startswith("curl --location --request POST ")


def test_a_body_starting_with_at_is_not_a_file_name():
    command = as_curl(("POST", URL, {}, "@/etc/passwd"))
    assert "--data-raw '@/etc/passwd'" in command
    assert "--data '" not in command


def test_a_dict_body_is_sent_as_minified_json():
    _, _, body = parse(as_curl(("POST", URL, {}, {"grantType": "client_credentials"})))
    assert body == '{"grantType":"client_credentials"}'


def test_binary_body_uses_ansi_c_quoting():
    command = as_curl(("POST", URL, {}, b"\xff\x00'a"))
    assert command.endswith("--data-binary $'\\xff\\x00\\x27a'")


def test_rejects_other_objects():
    with pytest.raises(TypeError):
        as_curl("curl me")
    with pytest.raises(TypeError):
        as_curl(("GET",))


def test_token_request_is_accepted_directly(private_key):
    from snapbook.client import build_token_request

    from datetime import datetime

    from snapbook.signing import JAKARTA

    frozen = datetime(2020, 12, 18, 10, 55, tzinfo=JAKARTA)
    request = build_token_request("http://127.0.0.1:9/v1.0/access-token/b2b", "MCP00000001", private_key,
                                  clock=lambda: frozen)
    text = as_curl(request)
    assert text == as_curl((request.method, request.url, request.headers, request.body))
    assert "X-TIMESTAMP: 2020-12-18T10:55:00+07:00" in text and request.signature not in text
