"""The forms, driven headless: set values, click buttons, read the Output area.

ipywidgets runs observers and click handlers synchronously without a kernel, so these tests
exercise exactly what a person's clicks do in JupyterLab (see tests/browser for the real thing).
"""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from snapbook import keys as K
from snapbook.examples import load_vendor_example
from snapbook.masking import mask
from snapbook.widgets import KeyForm, Notice, SignatureForm, TokenForm, notice_for

FROZEN = datetime(2020, 12, 18, 3, 55, tzinfo=timezone.utc)  # 10:55 in Jakarta


@pytest.fixture(scope="module")
def vendor():
    return load_vendor_example()


def all_text(form) -> str:
    """Every string in the form's outputs, all MIME types: what could reach a screen or a file."""
    parts = []
    for o in form.output.outputs:
        parts.append(o.get("text", ""))
        for value in o.get("data", {}).values():
            parts.append(str(value))
    return "\n".join(parts)


def test_import_snapbook_does_not_import_ipywidgets():
    code = "import sys, snapbook; snapbook.__all__; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_vendor_example_matches_its_documented_facts(vendor, vectors):
    assert vendor.client_key == vectors["client_key"]
    assert vendor.string_to_sign == f"{vendor.client_key}|{vendor.timestamp}"
    assert K.keys_match(vendor.private_key, vendor.public_key)
    assert vendor.documented_signature_verifies is False
    assert vendor.signature not in repr(vendor) and vendor.documented_signature not in repr(vendor)


# --- KeyForm ------------------------------------------------------------------------------


def test_keyform_generate_shows_fingerprint_and_public_key(private_key):
    form = KeyForm(generate=lambda: private_key)
    assert form.key is None and form.save_button.disabled
    form.generate_button.click()
    assert form.key is private_key
    text = all_text(form)
    assert K.fingerprint(private_key) in text
    assert "BEGIN PUBLIC KEY" in text
    assert "PRIVATE KEY" not in text
    assert not form.save_button.disabled
    assert form.public_key_pem == K.public_key_bytes(private_key).decode()
    assert K.fingerprint(private_key) in repr(form)


def test_keyform_paste_loads_and_clears_the_field(private_key):
    form = KeyForm()
    form.paste.value = K.private_key_bytes(private_key).decode()
    form.paste_button.click()
    assert K.fingerprint(form.key) == K.fingerprint(private_key)
    assert form.paste.value == ""


def test_keyform_paste_one_line_as_a_password_field_delivers_it(private_key):
    # An <input type=password> drops line breaks: the key still loads.
    form = KeyForm()
    form.paste.value = K.private_key_bytes(private_key).decode().replace("\n", "")
    form.paste_button.click()
    assert form.key is not None


def test_keyform_bad_paste_is_a_notice_not_a_traceback():
    form = KeyForm()
    form.paste.value = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n"
    form.paste_button.click()
    assert form.key is None
    assert "KeyFormatError" in form.text and "Hint:" in form.text
    assert form.paste.value == ""
    assert "Traceback" not in form.text


def test_keyform_encrypted_file_needs_the_passphrase(tmp_path, private_key):
    path = tmp_path / "enc.pem"
    path.write_bytes(K.private_key_bytes(private_key, passphrase="s3cret-pass"))
    form = KeyForm()
    form.path.value = str(path)
    form.load_button.click()
    assert form.key is None and "PassphraseError" in form.text
    form.passphrase.value = "wrong"
    form.load_button.click()
    assert form.key is None and "passphrase is wrong" in form.text
    form.passphrase.value = "s3cret-pass"
    form.load_button.click()
    assert K.fingerprint(form.key) == K.fingerprint(private_key)
    assert "s3cret-pass" not in all_text(form)


def test_keyform_missing_file(tmp_path):
    form = KeyForm()
    form.path.value = str(tmp_path / "nope.pem")
    form.load_button.click()
    assert "not found" in form.text and form.key is None


def test_keyform_upload_loads_and_drops_the_bytes(private_key):
    form = KeyForm()
    form.upload.value = (
        {"name": "private.der", "type": "", "size": 1, "last_modified": datetime(2024, 1, 1, tzinfo=timezone.utc),
         "content": memoryview(K.private_key_bytes(private_key, "der"))},
    )
    assert K.fingerprint(form.key) == K.fingerprint(private_key)
    assert form.upload.value == ()
    assert "private.der" in form.text


def test_keyform_saves_with_safe_permissions(tmp_path, private_key):
    form = KeyForm(generate=lambda: private_key, directory=tmp_path / "k")
    form.generate_button.click()
    form.passphrase.value = "pw-for-file"
    form.save_button.click()
    priv, pub = tmp_path / "k" / "private.pem", tmp_path / "k" / "public.pem"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert b"ENCRYPTED PRIVATE KEY" in priv.read_bytes()
    assert K.fingerprint(K.read_private_key(priv, "pw-for-file")) == K.fingerprint(private_key)
    assert "Saved the key pair" in form.text and "600" in form.text
    # A second save refuses to overwrite, and says so in the form.
    form.save_button.click()
    assert "KeyFileExistsError" in form.text
    form.overwrite.value = True
    form.save_button.click()
    assert "Saved the key pair" in form.text
    assert "pw-for-file" not in all_text(form)


def test_keyform_unexpected_errors_are_shown_too():
    def broken():
        raise RuntimeError("disk on fire")

    form = KeyForm(generate=broken)
    form.generate_button.click()
    assert "Unexpected RuntimeError" in form.text and "disk on fire" in form.text


# --- SignatureForm ------------------------------------------------------------------------


def test_signatureform_reproduces_the_vendor_vector(vendor):
    form = SignatureForm(vendor.private_key, client_key=vendor.client_key, timestamp=vendor.timestamp)
    assert form.steps.signature == vendor.signature
    assert vendor.string_to_sign in form.text
    text = all_text(form)
    assert vendor.signature not in text  # shown masked only
    assert vendor.signature[:6] in text


def test_signatureform_updates_live(vendor):
    form = SignatureForm(vendor.private_key, client_key="A", timestamp=vendor.timestamp)
    first = form.steps.signature
    form.client_key.value = vendor.client_key
    assert form.steps.signature == vendor.signature != first
    form.timestamp.value = "2020-12-18T03:55:00Z"  # the standard's own TZD: no warning
    assert "Non-standard X-TIMESTAMP" not in form.text
    form.timestamp.value = "2020-12-18T10:55:00+0700"  # a lenient-only extra
    assert "Non-standard X-TIMESTAMP" in form.text
    form.timestamp.value = "2020-12-18 10:55:00"
    assert form.steps is None and "TimestampError" in form.text and "'T'" in form.text


def test_signatureform_now_uses_the_injected_clock(vendor):
    form = SignatureForm(vendor.private_key, client_key=vendor.client_key, clock=lambda: FROZEN)
    assert form.timestamp.value == "2020-12-18T10:55:00+07:00"
    form.timestamp.value = "2000-01-01T00:00:00+07:00"
    form.now_button.click()
    assert form.steps.signature == vendor.signature


def test_signatureform_compares_another_sdks_signature(vendor):
    form = SignatureForm(vendor.private_key, client_key=vendor.client_key, timestamp=vendor.timestamp,
                         public_key=vendor.public_key)
    form.compare.value = vendor.documented_signature
    assert "differs" in form.text and "verifies with the public key: False" in form.text
    assert vendor.documented_signature not in all_text(form)
    form.compare.value = vendor.signature
    assert "is the one computed here" in form.text
    form.compare.value = "not-base64!"
    assert "cannot be verified" in form.text


def test_signatureform_follows_a_keyform(vendor, private_key):
    keyform = KeyForm(generate=lambda: private_key)
    form = SignatureForm(key_form=keyform, client_key="C1", timestamp=vendor.timestamp)
    assert form.steps is None and "No private key" in form.text
    keyform.generate_button.click()
    assert form.steps.key_fingerprint == K.fingerprint(private_key)


def test_client_key_errors_are_notices(vendor):
    form = SignatureForm(vendor.private_key, client_key="", timestamp=vendor.timestamp)
    assert "ClientKeyError" in form.text and "Hint:" in form.text


def test_notice_for_plain_and_html():
    from snapbook.errors import SnapResponseError

    exc = SnapResponseError("The server refused.", hint="Fix the signature.", http_status=401,
                            response_code="4017300", response_message="Unauthorized. [Signature]",
                            meaning="The signature did not verify.")
    n = notice_for(exc)
    assert isinstance(n, Notice)
    assert "4017300" in repr(n) and "HTTP status 401" in repr(n) and "Fix the signature." in repr(n)
    assert "<b" in n._repr_html_() and "&lt;" not in n._repr_html_()
    assert "<script>" not in Notice("error", "<script>")._repr_html_()


def test_forms_repr_hides_secrets(vendor):
    form = KeyForm()
    form.passphrase.value = "topsecret"
    assert "topsecret" not in repr(form) and "topsecret" not in str(form._repr_mimebundle_())
    sig = SignatureForm(vendor.private_key, client_key=vendor.client_key, timestamp=vendor.timestamp)
    sig.compare.value = vendor.documented_signature
    assert vendor.documented_signature not in repr(sig)


# --- TokenForm and LogView ----------------------------------------------------------------

SECRET = "widgets-test-sandbox-secret-" + "s" * 48


@pytest.fixture(scope="module")
def sandbox(vendor):
    from snapbook.sandbox import Sandbox, SandboxConfig

    sb = Sandbox(SandboxConfig(clock=lambda: FROZEN, secret=SECRET)).start()
    sb.register(vendor.client_key, vendor.public_key)
    yield sb
    sb.stop()


def token_form(vendor, sandbox, **kw):
    from snapbook.widgets import TokenForm

    options = {"client_key": vendor.client_key, "private_key": vendor.private_key, "sandbox": sandbox,
               "clock": lambda: FROZEN, "token_secret": SECRET}
    options.update(kw)
    return TokenForm(**options)


def test_tokenform_success_shows_response_claims_and_time_left(vendor, sandbox):
    form = token_form(vendor, sandbox)
    assert form.environment.value == "sandbox"
    assert {"sandbox", "payment-stage", "payment-production", "disbursement-stage"} <= set(form.environment.options)
    assert form.output.outputs == ()
    form.request_button.click()
    text = form.text
    assert "2007300 Successful" in text
    assert "Time left: 900 s" in text
    assert '"sub": "MCP00000001"' in text and "signature verified: yes (HS512)" in text
    token = form.token.access_token
    assert token not in all_text(form) and token[:6] in text
    assert form.error is None and not form.request_button.disabled
    assert len(form.request_log) == 1 and form.request_log[0].outcome == "success"
    assert token not in repr(form)


def test_tokenform_refusal_has_meaning_and_hint(vendor, sandbox):
    form = token_form(vendor, sandbox, client_key="NOT-REGISTERED")
    form.request_button.click()
    text = form.text
    assert "4017300" in text and "Unknown client" in text
    assert "Meaning:" in text and "Hint:" in text and "Traceback" not in text
    assert form.token is None and form.error.response_code == "4017300"


def test_tokenform_key_from_keyform_and_from_a_file(vendor, sandbox, tmp_path):
    keyform = KeyForm(generate=lambda: vendor.private_key)
    form = token_form(vendor, sandbox, private_key=None, key_form=keyform)
    form.request_button.click()
    assert "No private key" in form.text
    keyform.generate_button.click()
    form.request_button.click()
    assert "2007300" in form.text

    path = tmp_path / "private.pem"
    K.save_private_key(vendor.private_key, path, "file-pass")
    form = token_form(vendor, sandbox, private_key=None)
    form.key_path.value = str(path)
    form.request_button.click()
    assert "PassphraseError" in form.text
    form.passphrase.value = "file-pass"
    form.request_button.click()
    assert "2007300" in form.text and "file-pass" not in all_text(form)


def test_tokenform_needs_a_client_key_and_a_sandbox(vendor, sandbox):
    form = token_form(vendor, sandbox, client_key="")
    form.request_button.click()
    assert "No client key" in form.text
    form = token_form(vendor, None)
    form.request_button.click()
    assert "ConfigError" in form.text and "needs a running sandbox" in form.text


def _mock_client(handler):
    import httpx

    from snapbook.client import TokenClient

    def make(endpoint, client_key, key, **options):
        return TokenClient(endpoint, client_key, key, transport=httpx.MockTransport(handler), retry=None, **options)

    return make


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("connect", "ConnectionFailedError"),
        ("html", "InvalidResponseError"),
        ("503", "Refused: 5037300"),
        ("opaque", "not a JWT"),
    ],
)
def test_tokenform_shows_every_kind_of_failure(vendor, answer, expected):
    import httpx

    from snapbook.widgets import TokenForm

    def handler(request):
        if answer == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if answer == "html":
            return httpx.Response(502, html="<html><title>Bad Gateway</title></html>")
        if answer == "503":
            return httpx.Response(503, json={"responseCode": "5037300", "responseMessage": "Service Unavailable"})
        return httpx.Response(200, headers={"X-TIMESTAMP": "2020-12-18T10:55:00+07:00"},
                              json={"responseCode": "2007300", "responseMessage": "Successful",
                                    "accessToken": "opaque-" + "z" * 60, "tokenType": "Bearer", "expiresIn": "900"})

    form = TokenForm(environment="payment-stage", client_key=vendor.client_key, private_key=vendor.private_key,
                     clock=lambda: FROZEN, make_client=_mock_client(handler))
    form.request_button.click()
    assert expected in form.text
    assert "Traceback" not in form.text
    assert ("z" * 60) not in all_text(form)


def test_tokenform_calls_on_done_and_logview_follows(vendor, sandbox, tmp_path):
    from snapbook.widgets import LogView

    view = None
    form = token_form(vendor, sandbox, on_done=lambda: view.refresh())
    view = LogView(form.request_log, csv_path=tmp_path / "out" / "log.csv")
    assert "No requests logged yet" in view.text
    form.request_button.click()
    form.client_key.value = "NOT-REGISTERED"
    form.request_button.click()
    assert "2 attempts, 1 successful" in view.text
    kinds = [o.get("data", {}) for o in view.output.outputs]
    assert any("image/png" in d for d in kinds), "the latency plot"
    assert any("text/html" in d and "latency_p50_ms" in d["text/html"] for d in kinds), "the summary"
    view.export_button.click()
    csv = (tmp_path / "out" / "log.csv").read_text()
    assert "Exported 2 rows" in view.text
    assert csv.count("\n") == 3 and "4017300" in csv
    assert form.request_log[0].token in csv  # masked form only
    view.csv_path.value = str(tmp_path / "out")  # a directory: an error in the form, not a traceback
    view.export_button.click()
    assert "Unexpected" in view.text or "Error" in view.text


# --- the doctor form ---------------------------------------------------------------------------


def test_doctorform_names_the_vendor_signature_a_different_key(vendor):
    from snapbook.widgets import DoctorForm

    form = DoctorForm(vendor.public_key, client_key=vendor.client_key, timestamp=vendor.timestamp)
    form.signature.value = vendor.documented_signature
    form.button.click()
    assert form.diagnosis.cause == "different-key" and not form.diagnosis.ok
    assert vendor.documented_signature not in form.text + repr(form)
    form.signature.value = vendor.signature
    form.button.click()
    assert form.diagnosis.ok


def test_doctorform_finds_the_colon_mistake_with_a_pasted_public_key(vendor):
    from snapbook.signing import sign
    from snapbook.widgets import DoctorForm

    form = DoctorForm(client_key=vendor.client_key, timestamp=vendor.timestamp)
    form.button.click()
    assert "No public key yet" in form.text and form.diagnosis is None
    form.public_pem.value = K.public_key_bytes(vendor.private_key).decode()
    form.signature.value = sign(vendor.private_key, f"{vendor.client_key}:{vendor.timestamp}")
    form.button.click()
    assert form.diagnosis.cause == "separator-colon"
    assert "':'" in form.text


def test_doctorform_follows_a_keyform_and_shows_errors_as_notices(private_key):
    from snapbook.widgets import DoctorForm

    key_form = KeyForm(generate=lambda: private_key)
    form = DoctorForm(key_form=key_form, client_key="MCP1", timestamp="2020-12-18T10:55:00+07:00")
    form.signature.value = "AAAA"
    form.button.click()
    assert "No public key yet" in form.text
    key_form.generate_button.click()
    form.signature.value = "not base64 at all!"
    form.button.click()
    assert form.diagnosis.cause == "not-base64"
    form.public_pem.value = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    form.button.click()
    assert "KeyFormatError" in form.text and "Traceback" not in form.text


# --- secrets never stay in the widget state (issue 15, item 14) --------------------------------------


def widget_state(*forms) -> str:
    """What "Save Widget State" and an HTML export write into a file: every widget's synced state."""
    import json

    from ipywidgets.embed import embed_data

    return json.dumps(embed_data(views=list(forms))["manager_state"])


def test_keyform_passphrase_leaves_the_widget_state_once_used(tmp_path, private_key):
    path = tmp_path / "enc.pem"
    path.write_bytes(K.private_key_bytes(private_key, passphrase="kf-passphrase-used-once"))
    form = KeyForm(directory=tmp_path / "saved")
    form.passphrase.value = "kf-passphrase-used-once"
    form.path.value = str(path)
    form.load_button.click()
    assert K.fingerprint(form.key) == K.fingerprint(private_key)
    assert form.passphrase.value == "" and "kf-passphrase-used-once" not in widget_state(form)
    assert "held" in form.passphrase.placeholder
    form.save_button.click()  # the passphrase typed for loading still encrypts the saved copy
    assert (tmp_path / "saved" / "private.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    assert K.read_private_key(tmp_path / "saved" / "private.pem", "kf-passphrase-used-once")
    form.passphrase.value = "a-new-passphrase-for-saving"
    form.overwrite.value = True
    form.save_button.click()
    assert K.read_private_key(tmp_path / "saved" / "private.pem", "a-new-passphrase-for-saving")
    assert "a-new-passphrase-for-saving" not in widget_state(form)


def test_tokenform_passphrase_leaves_the_widget_state_once_used(vendor, tmp_path):
    path = tmp_path / "enc.pem"
    path.write_bytes(K.private_key_bytes(vendor.private_key, passphrase="tf-passphrase-used-once"))
    form = TokenForm(sandbox="http://127.0.0.1:9", client_key="MCP1", key_path=str(path),
                     client_options={"timeout": 0.5, "retry": None})
    form.passphrase.value = "tf-passphrase-used-once"
    assert form.request() is None and "ConnectionFailedError" in form.text  # the key loaded; nobody listens
    assert form.passphrase.value == "" and "tf-passphrase-used-once" not in widget_state(form)
    assert form.request() is None and "ConnectionFailedError" in form.text, "the held passphrase still works"
    form.passphrase.value = "wrong"
    assert form.request() is None and "PassphraseError" in form.text
    assert form.request() is None and "PassphraseError" in form.text, "a wrong passphrase is not kept"


def test_signatures_leave_the_widget_state_once_used(vendor):
    from snapbook.widgets import DoctorForm

    sig = SignatureForm(vendor.private_key, client_key=vendor.client_key, timestamp=vendor.timestamp,
                        public_key=vendor.public_key)
    sig.compare.value = vendor.documented_signature
    assert "differs" in sig.text and sig.compare.value == ""
    assert sig.compared_signature == vendor.documented_signature
    sig.timestamp.value = "2020-12-18T10:55:01+07:00"  # still compared as the inputs change
    assert "differs" in sig.text
    sig.compared_signature = None
    assert "differs" not in sig.text
    doctor = DoctorForm(vendor.public_key, client_key=vendor.client_key, timestamp=vendor.timestamp)
    doctor.signature.value = vendor.documented_signature
    doctor.button.click()
    assert doctor.diagnosis.cause == "different-key" and doctor.signature.value == ""
    doctor.button.click()  # the held signature is diagnosed again
    assert doctor.diagnosis.cause == "different-key"
    state = widget_state(sig, doctor)
    for secret in (vendor.documented_signature, vendor.signature):
        assert secret not in state
    assert "PKiS0G" in state or vendor.documented_signature[:6] in state  # the masked form says what is held


def test_a_held_passphrase_is_kept_exactly(tmp_path, private_key):
    """Spaces are part of a passphrase: holding it must not strip them."""
    path = tmp_path / "enc.pem"
    path.write_bytes(K.private_key_bytes(private_key, passphrase=" padded passphrase "))
    form = KeyForm()
    form.passphrase.value = " padded passphrase "
    form.path.value = str(path)
    form.load_button.click()
    assert form.key is not None, form.text


# --- ServiceSignatureForm (issue 13: the service-signature form) --------------------------------

SERVICE_SECRET = "o7sWnn0oGXF7y7JBGf18!"  # the portal's public example secret
SERVICE_TOKEN = "svcTokenForTheFormTest-0123456789abcdefghijklmnopqrstuvwxyz"
SERVICE_TS = "2020-12-18T10:55:00+07:00"
SERVICE_PATH = "/api/v1.0/balance-inquiry?lang=id"
SERVICE_BODY = '{\n  "accountNo": "1234567890",\n  "note": "Jalan Sudirman №1 / Jakarta",\n  "zeta": null\n}'


def service_form(**kw):
    from snapbook.widgets import ServiceSignatureForm

    kw.setdefault("path", SERVICE_PATH)
    kw.setdefault("body", SERVICE_BODY)
    kw.setdefault("timestamp", SERVICE_TS)
    return ServiceSignatureForm(**kw)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_serviceform_signs_exactly_like_sign_symmetric(method):
    from snapbook.service_signing import sign_symmetric

    form = service_form(token=SERVICE_TOKEN)
    form.method.value = method
    form.client_secret.value = SERVICE_SECRET
    form.sign_button.click()
    expected = sign_symmetric(SERVICE_SECRET, method, SERVICE_PATH, SERVICE_TOKEN, SERVICE_BODY, SERVICE_TS)
    assert form.signature == expected, form.text
    assert form.steps.string_to_sign.startswith(f"{method}:{SERVICE_PATH}:{SERVICE_TOKEN}:")
    text = all_text(form)
    for secret in (SERVICE_SECRET, SERVICE_TOKEN, expected):
        assert secret not in text
    assert mask(expected) in text and mask(SERVICE_TOKEN) in text
    # each step is shown: the minified body, its lowercase hex hash, the masked string to sign
    assert '{"accountNo":"1234567890","note":"Jalan Sudirman №1 / Jakarta","zeta":null}' in form.text
    assert form.steps.body_sha256 in form.text and form.steps.string_to_sign_masked in form.text
    form.include_query.value = False
    form.sign()
    assert form.signature == sign_symmetric(SERVICE_SECRET, method, SERVICE_PATH, SERVICE_TOKEN, SERVICE_BODY,
                                            SERVICE_TS, include_query=False)


def test_serviceform_takes_the_token_from_a_tokenform_or_a_paste(vendor):
    from snapbook.service_signing import sign_symmetric

    class FakeTokenForm:  # what the service form reads: TokenForm.token, an AccessToken or None
        token = None

    token_form = FakeTokenForm()
    form = service_form(client_secret=SERVICE_SECRET, token_form=token_form)
    assert form.sign() is None and "No access token" in form.text
    token_form.token = type("AccessTokenLike", (), {"access_token": SERVICE_TOKEN})()
    form.sign()
    assert form.signature == sign_symmetric(SERVICE_SECRET, "POST", SERVICE_PATH, SERVICE_TOKEN, SERVICE_BODY,
                                            SERVICE_TS)
    other = "pastedTokenWinsOnceTyped-0123456789abcdefghijklmnop"
    form.token.value = other
    assert form.token.value == "" and mask(other) in form.token.placeholder
    form.sign()
    assert form.steps.access_token == other
    assert form.signature == sign_symmetric(SERVICE_SECRET, "POST", SERVICE_PATH, other, SERVICE_BODY, SERVICE_TS)


def test_serviceform_clears_the_secret_and_keeps_it_out_of_the_widget_state():
    from snapbook.leaks import find_leaks

    form = service_form()
    form.client_secret.value = SERVICE_SECRET  # as a person types it: taken at once, before any click
    form.token.value = SERVICE_TOKEN
    assert form.client_secret.value == "" and form.token.value == ""
    assert "held" in form.client_secret.placeholder
    state = widget_state(form)
    assert SERVICE_SECRET not in state and SERVICE_TOKEN not in state
    form.sign_button.click()
    assert form.signature, form.text
    form.sign_button.click()  # the held secret and token sign again
    assert form.signature and "No client secret" not in form.text
    state = widget_state(form)
    for secret in (SERVICE_SECRET, SERVICE_TOKEN, form.signature):
        assert secret not in state
    known = [SERVICE_SECRET, SERVICE_TOKEN, form.signature]
    assert [str(leak) for leak in find_leaks(state, known_secrets=known, source="embed_data")] == []
    for secret in known:
        assert secret not in repr(form)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"client_secret": None}, "No client secret"),
        ({"token": None}, "No access token"),
        ({"path": "https://api.senmo.id/api/v1.0/balance-inquiry"}, "is an absolute URL"),
        ({"path": "api/v1.0/balance-inquiry"}, "does not start with '/'"),
        ({"token": f"Bearer {SERVICE_TOKEN}"}, "starts with 'Bearer '"),
        ({"body": "accountNo = 1234567890"}, "BodyFormatError"),
        ({"timestamp": "2020-12-18 10:55:00"}, "TimestampError"),
        ({"client_secret": SERVICE_SECRET + "\n"}, "whitespace around it"),
    ],
)
def test_serviceform_bad_input_is_a_notice_not_a_traceback(change, expected):
    kw = {"client_secret": SERVICE_SECRET, "token": SERVICE_TOKEN, **change}
    form = service_form(**{k: v for k, v in kw.items() if v is not None})
    assert form.sign() is None and form.steps is None
    assert expected in form.text and "Traceback" not in all_text(form)
    assert "Hint:" in form.text
    assert SERVICE_SECRET not in all_text(form)


def test_serviceform_escapes_control_characters_in_what_it_shows():
    def hostile(**_):
        raise ValueError("bad \x1b[2J\x9b31m input\r\nforged line")

    form = service_form(client_secret=SERVICE_SECRET, token=SERVICE_TOKEN, explain=hostile)
    form.sign()
    text = all_text(form)
    assert "\x1b" not in text and "\x9b" not in text and "\r" not in text
    assert "\\x1b[2J" in text and "forged line" in text
    # a body with a raw control character is shown escaped in the steps
    form = service_form(client_secret=SERVICE_SECRET, token=SERVICE_TOKEN, body='{"a":"\x1b[31m"}')
    form.sign()
    assert form.steps is not None and "\x1b" not in all_text(form) and "\\x1b[31m" in form.text


def test_serviceform_now_uses_the_injected_clock():
    form = service_form(clock=lambda: FROZEN, timestamp="2020-01-01T00:00:00+07:00")
    form.now_button.click()
    assert form.timestamp.value == "2020-12-18T10:55:00+07:00"
    assert service_form(clock=lambda: FROZEN, timestamp=None).timestamp.value == "2020-12-18T10:55:00+07:00"


def test_serviceform_secret_given_from_code_never_enters_a_widget():
    form = service_form(client_secret=SERVICE_SECRET, token=SERVICE_TOKEN)
    assert form.client_secret.value == "" and "held" in form.client_secret.placeholder
    assert SERVICE_SECRET not in widget_state(form)
    assert form.sign() is not None and SERVICE_SECRET not in widget_state(form)


# --- the package: one module per form, the same names as before the split ----------------------


MODULE_OF = {
    "DoctorForm": "doctor", "KeyForm": "keys", "LogView": "log", "Notice": "base", "PaymentForm": "payment",
    "ServiceSignatureForm": "signatures", "SignatureForm": "signatures", "TokenForm": "token",
    "notice_for": "base", "save_key_pair": "keys",
}


def test_snapbook_widgets_exports_every_form_from_its_own_module():
    import snapbook
    import snapbook.widgets as widgets

    assert widgets.__all__ == sorted(MODULE_OF)
    for name, module in MODULE_OF.items():
        exported = getattr(widgets, name)
        assert exported.__module__ == f"snapbook.widgets.{module}", name
        if name.endswith(("Form", "View")):  # snapbook.KeyForm etc.: lazy root exports of the same object
            assert getattr(snapbook, name) is exported, name
    assert widgets.SERVICE_METHODS == ("POST", "GET", "PUT", "PATCH", "DELETE")


def test_import_snapbook_widgets_leaves_the_network_data_and_payment_modules_unloaded():
    """Only ipywidgets and the pure signing modules: a form imports the rest when it is used."""
    unloaded = ["pandas", "httpx", "jwt", "matplotlib", "starlette", "uvicorn", "segno", "snapbook.client",
                "snapbook.log", "snapbook.tokens", "snapbook.doctor", "snapbook.endpoints", "snapbook.payment",
                "snapbook.qris", "snapbook.receiver", "snapbook.sandbox"]
    code = "import sys, snapbook.widgets; print(','.join(m for m in %r if m in sys.modules))" % (unloaded,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "", f"import snapbook.widgets pulled in: {out.stdout.strip()}"
