"""snapbook.codes: any responseCode, known or not, parses into parts, a meaning and a hint."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapbook.codes import SERVICES, ResponseCode, describe_status, parse_code

# Every token-service (73) code the reference lists.
TOKEN_CODES = {
    "2007300": (200, "Successful"),
    "4007300": (400, "Bad Request"),
    "4007301": (400, "Invalid Field Format {field name}"),
    "4007302": (400, "Invalid Mandatory Field {field name}"),
    "4017300": (401, "Unauthorized. [reason]"),
    "4017301": (401, "Invalid Token (B2B)"),
    "4097300": (409, "Conflict"),
    "4297300": (429, "Too Many Requests"),
    "5007300": (500, "General Error"),
    "5007301": (500, "Internal Server Error"),
    "5007302": (500, "External Server Error"),
    "5047300": (504, "Timeout"),
}


@pytest.mark.parametrize("code", sorted(TOKEN_CODES))
def test_every_token_code_is_known(code):
    status, message = TOKEN_CODES[code]
    parsed = parse_code(code)
    assert parsed.valid and parsed.known
    assert parsed.http_status == status
    assert parsed.service_code == "73" and parsed.service == "Access Token B2B"
    assert parsed.case_code == code[-2:]
    assert parsed.standard_message == message
    assert parsed.meaning and parsed.hint
    assert parsed.is_success == (status == 200)


def test_success_and_unauthorized_say_what_to_do():
    assert "Cache" in parse_code("2007300").hint
    hint = parse_code("4017300").hint
    assert "client_key + '|' + X-TIMESTAMP" in hint and "snapbook doctor" in hint


def test_int_input_and_whitespace():
    assert parse_code(4017300).code == "4017300"
    assert parse_code(" 2007300 ").http_status == 200


def test_generic_table_for_other_services():
    parsed = parse_code("4019900")
    assert parsed.service == "service 99" and parsed.service_code == "99"
    assert parsed.standard_message == "Unauthorized. [reason]"
    assert not parsed.known  # service 99 is not in the standard's table, the case is
    assert "signature" in parsed.meaning.lower()
    assert parse_code("2007400").service == "Access Token B2B2C"


def test_unknown_case_is_graceful():
    parsed = parse_code("4017399")
    assert parsed.valid and not parsed.known
    assert parsed.http_status == 401 and parsed.case_code == "99"
    assert "not in the standard table" in parsed.meaning
    assert parsed.hint
    assert "not in the standard table" in parse_code("5997300").meaning


def test_503_has_a_meaning_though_the_standard_has_no_row():
    parsed = parse_code("5037300")
    assert parsed.origin == "sandbox" and parsed.standard_message == ""
    assert "unavailable" in parsed.meaning.lower() and "Retry" in parsed.hint
    assert "503 without" in parsed.hint
    assert parse_code("5031100").origin == "unknown" and not parse_code("5031100").known


# Issue 14 item 2: 4047300 is the sandbox's "unknown path", not the standard's 404xx00.
def test_sandbox_unknown_path_is_presented_as_a_sandbox_code():
    parsed = parse_code("4047300")
    assert parsed.origin == "sandbox" and parsed.sandbox_message == "Not Found. [Unknown path]"
    assert parsed.standard_message == ""
    assert "Invalid Transaction Status" not in str(parsed).split(":", 2)[1]  # not its title
    assert str(parsed).startswith("4047300 (Access Token B2B: snapbook sandbox code: Not Found. [Unknown path])")
    assert "snapbook sandbox code, not in the SNAP table" in parsed._repr_html_()
    assert "--route-prefix" in parsed.hint
    same = parse_code("4047300", "Not Found. [Unknown path]")
    assert same.origin == "sandbox" and same.reason == "Unknown path"


def test_a_provider_404xx00_keeps_the_standard_meaning():
    parsed = parse_code("4047300", "Invalid Transaction Status")
    assert parsed.origin == "standard" and parsed.standard_message == "Invalid Transaction Status"
    assert "status" in parsed.meaning.lower()
    other = parse_code("4042500")
    assert other.origin == "standard" and other.standard_message == "Invalid Transaction Status"


# Issue 14 item 6: the standard's 405xx01 and 409xx01, and its services by name.
@pytest.mark.parametrize(
    "code, service, message",
    [
        ("4051801", "Transfer Interbank", "Requested Operation Is Not Allowed"),
        ("4094701", "Generate QR MPM (QRIS)", "Duplicate partnerReferenceNo"),
        ("4041818", "Transfer Interbank", "Inconsistent Request"),
        ("2001100", "Balance Inquiry", "Successful"),
        ("4001601", "External Account Inquiry", "Invalid Field Format {field name}"),
        ("2005100", "Query Payment QR MPM (QRIS)", "Successful"),
        ("2005200", "Notify Payment QR MPM (QRIS)", "Successful"),
    ],
)
def test_standard_cases_and_services_by_name(code, service, message):
    parsed = parse_code(code)
    assert parsed.known and parsed.origin == "standard"
    assert parsed.service == service and parsed.standard_message == message
    assert "not in the standard table" not in parsed.meaning


# Review of issue 14.6: services beyond the first eight resolve by name (ASPI SNAP Developer Site).
@pytest.mark.parametrize(
    "code, service",
    [
        ("2002400", "Virtual Account - Inquiry"),
        ("4042501", "Virtual Account - Payment"),
        ("2001500", "Internal Account Inquiry"),
        ("2001700", "Intrabank Transfer"),
        ("4035414", "Direct Debit Payment"),
        ("2004800", "Decode QR MPM (QRIS)"),
        ("2005300", "Transaction Status Inquiry (non-bank, QR MPM)"),
        ("2003600", "Transaction Status Inquiry (transfer)"),
        ("2000100", "Card Registration"),
        ("2008100", "OTP"),
    ],
)
def test_more_services_of_the_standard_resolve_by_name(code, service):
    parsed = parse_code(code)
    assert parsed.service == service and parsed.service_code == code[3:5]
    assert parsed.known and parsed.origin == "standard"


def test_every_service_entry_is_two_digits_with_a_name():
    assert len(SERVICES) > 8
    for code, name in SERVICES.items():
        assert re.fullmatch(r"\d{2}", code), code
        assert isinstance(name, str) and name.strip() == name and len(name) >= 3, (code, name)
        assert not name.startswith("API "), name  # the site's "API " prefix is dropped
    assert len(set(SERVICES.values())) == len(SERVICES)  # no two services share a name
    assert SERVICES["73"] == "Access Token B2B" and SERVICES["74"] == "Access Token B2B2C"


def test_duplicate_partner_reference_says_what_to_do():
    parsed = parse_code("4094701")
    assert "partnerReferenceNo" in parsed.meaning and "new partnerReferenceNo" in parsed.hint
    assert "not allow" in parse_code("4051801").meaning


@pytest.mark.parametrize("value", [None, "", "abc", "123456", "12345678", "40173OO", "4017300\n1"])
def test_not_a_code(value):
    parsed = parse_code(value)
    assert not parsed.valid and not parsed.known
    assert parsed.http_status is None and parsed.service_code is None
    assert parsed.meaning and parsed.hint
    assert not parsed.is_success


@pytest.mark.parametrize(
    "message, fragment",
    [
        ("Unauthorized. [Signature]", "signature did not verify"),
        ("Unauthorized. [Unknown client]", "does not know this X-CLIENT-KEY"),
        ("Unauthorized. [Key not found]", "public key"),
        ("Invalid Field Format [X-TIMESTAMP]", "yyyy-MM-ddTHH:mm:ss+07:00"),
    ],
)
def test_reason_in_brackets_sharpens_the_hint(message, fragment):
    code = "4007301" if "Format" in message else "4017300"
    parsed = parse_code(code, message)
    assert parsed.reason == message[message.index("[") + 1 : -1]
    assert fragment in parsed.hint


def test_unknown_reason_keeps_the_code_hint():
    assert parse_code("4017300", "Unauthorized. [Something else]").hint == parse_code("4017300").hint


def test_display():
    parsed = parse_code("4017300")
    assert str(parsed).startswith("4017300 (Access Token B2B: Unauthorized")
    html = parsed._repr_html_()
    assert "4017300" in html and "<table>" in html
    assert isinstance(parsed, ResponseCode)


def test_describe_status():
    assert "path" in describe_status(404)[1]
    assert "POST" in describe_status(405)[1]
    assert "Retry" in describe_status(502)[1]


@given(st.from_regex(r"\A[0-9]{7}\Z"))
def test_any_seven_digits_parse_into_their_parts(code):
    parsed = parse_code(code)
    assert parsed.valid
    assert f"{parsed.http_status:03d}{parsed.service_code}{parsed.case_code}" == code
    assert parsed.meaning and parsed.hint


@given(st.one_of(st.none(), st.text(max_size=20), st.integers()), st.one_of(st.none(), st.text(max_size=40)))
def test_never_raises(code, message):
    parsed = parse_code(code, message)
    assert isinstance(parsed, ResponseCode) and parsed.hint


def test_codes_and_endpoints_are_pure():
    code = (
        "import sys, snapbook.codes, snapbook.endpoints; "
        "print(','.join(m for m in ('httpx', 'pandas', 'httpcore', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.mark.parametrize(
    "code, message, fragment",
    [
        ("4017300", "Unauthorized. [X-TIMESTAMP out of range]", "NTP"),
        ("4007301", "Invalid Field Format [Content-Type]", "application/json"),
        ("4007302", "Invalid Mandatory Field [X-SIGNATURE]", "base64"),
        ("4007302", "Invalid Mandatory Field [grantType]", "client_credentials"),
        ("4047300", "Not Found", "/auth/merchants/v1.0/access-token/b2b"),
    ],
)
def test_sandbox_reasons_get_specific_hints(code, message, fragment):
    assert fragment in parse_code(code, message).hint
