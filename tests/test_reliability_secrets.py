"""Secrets: no private key, full signature or full token anywhere a person or a file can see.

One realistic session against the sandbox (tokens, a refusal, faults, a bad key) produces
every artefact snapbook has: JSON-lines logs, DataFrames, the journal, reprs and notebook
HTML of each result object, exception messages, CLI output and widget output. Each is run
through :func:`snapbook.leaks.find_leaks`, given the session's own secrets as
``known_secrets`` (every PEM body line, every signature sent, every token received), so a
leak is caught even in a form the generic detectors would miss.

Only two outputs may show a secret, because the user asked for it: ``snapbook sign`` (its
whole purpose is to print an X-SIGNATURE) and ``snapbook token --show-token``.

Also here: private key files are 0600 whoever writes them, and an encrypted key works at
every entry point that accepts a key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from snapbook import keys as K
from snapbook.cli import main
from snapbook.client import AsyncTokenClient, RetryPolicy, TokenClient, build_token_request
from snapbook.errors import PassphraseError, SnapbookError
from snapbook.leaks import find_leaks, scan_notebook, scan_paths
from snapbook.log import RequestLog
from snapbook.sandbox import Faults, Sandbox
from snapbook.signing import explain_signature, sign, string_to_sign

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CLIENT, OTHER = "SECRET01", "SECRET02"
PASSPHRASE = "correct horse battery staple"
pytestmark = pytest.mark.timeout(60)  # nothing here may hang: every test is bounded


@dataclass
class Session:
    """What one session produced, and the secrets it handled."""

    sb: Sandbox
    key_path: Path
    encrypted_path: Path
    public_path: Path
    log_path: Path
    log: RequestLog
    key: object
    other_key: object
    tokens: list = field(default_factory=list)
    errors: list[SnapbookError] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    #: repr of a TokenClient holding a cached token, and of that token.
    client_repr: str = ""

    def learn(self, *values: str) -> None:
        self.secrets.update(v for v in values if v)

    def learn_log(self) -> None:
        """The exact signature of every attempt the log holds (PKCS#1 v1.5 is deterministic)."""
        for r in self.log.records:
            key = self.other_key if r.client_key == OTHER else self.key
            self.learn(sign(key, string_to_sign(r.client_key, r.timestamp)))


def assert_clean(text: str, s: Session, what: str) -> None:
    leaks = find_leaks(text, known_secrets=s.secrets)
    assert leaks == [], f"{what}: " + "; ".join(str(leak) for leak in leaks[:5])


@pytest.fixture(scope="module")
def s(private_key, other_private_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    with Sandbox() as sb:
        sb.register(CLIENT, private_key.public_key())
        sb.register(OTHER, private_key.public_key())  # OTHER signs with the wrong key: refused
        session = Session(
            sb=sb,
            key_path=K.save_private_key(private_key, tmp / "private.pem"),
            encrypted_path=K.save_private_key(private_key, tmp / "encrypted.pem", PASSPHRASE),
            public_path=K.save_public_key(private_key, tmp / "public.pem"),
            log_path=tmp / "requests.jsonl",
            log=RequestLog(tmp / "requests.jsonl"),
            key=private_key,
            other_key=other_private_key,
        )
        pem = K.private_key_bytes(private_key).decode()
        session.learn(*pem.splitlines()[1:-1], "".join(pem.splitlines()[1:-1]))
        session.learn(*K.private_key_bytes(private_key, "pem", PASSPHRASE).decode().splitlines()[1:-1])
        session.learn(base64.b64encode(K.private_key_bytes(private_key, "der")).decode())

        with TokenClient(sb.token_url("payment"), CLIENT, private_key, log=session.log, timeout=5) as client:
            session.tokens += [client.request_token() for _ in range(3)]
            session.client_repr = repr(client.get_token()) + repr(client)
        with TokenClient(sb.token_url("snap"), OTHER, other_private_key, log=session.log, timeout=5) as client:
            try:
                client.request_token()
            except SnapbookError as exc:
                session.errors.append(exc)
        for faults in (Faults(rate_429=1.0, retry_after=0), Faults(rate_503=1.0), Faults(rate_drop=1.0),
                       Faults(slow_seconds=1.0)):
            sb.faults = faults
            with TokenClient(sb.token_url("disbursement"), CLIENT, private_key, log=session.log, timeout=0.3,
                             retry=RetryPolicy(max_attempts=2, base_delay=0.01)) as client:
                try:
                    client.request_token()
                except SnapbookError as exc:
                    session.errors.append(exc)
        sb.faults = Faults()
        session.learn(*(t.access_token for t in session.tokens))
        session.learn_log()
        yield session
        session.log.close()


# --- logs, journal, reprs, errors -------------------------------------------------------------------


def test_the_session_produced_every_kind_of_row(s):
    outcomes = {r.outcome for r in s.log.records}
    assert outcomes == {"success", "refused", "transport-error"}
    assert len(s.errors) == 5 and len(s.tokens) == 3
    assert len(s.secrets) > 30


def test_request_log_file_dataframe_and_views_are_clean(s):
    assert_clean(s.log_path.read_text(encoding="utf-8"), s, "JSON-lines log")
    df = s.log.to_dataframe()
    assert_clean(df.to_csv(), s, "log DataFrame (csv)")
    assert_clean(df.to_json(date_format="iso"), s, "log DataFrame (json)")
    with __import__("pandas").option_context("display.max_colwidth", None, "display.width", 10_000):
        assert_clean(df.to_string(), s, "log DataFrame (string)")
    assert_clean(repr(s.log) + s.log._repr_html_() + s.log.summary().to_string(), s, "RequestLog views")
    assert_clean(RequestLog.load(s.log_path).to_dataframe().to_csv(), s, "reloaded log")
    # The rows do say which signature and token: masked, so two can still be told apart.
    assert all(r.signature and r.signature.endswith("chars)") for r in s.log.records)


def test_sandbox_journal_is_clean(s):
    journal = s.sb.journal
    assert len(journal) >= 10
    df = journal.to_dataframe()
    assert_clean(df.to_csv(), s, "journal DataFrame (csv)")
    assert_clean(repr(journal) + journal._repr_html_(), s, "journal views")
    assert_clean("\n".join(e.line() for e in journal), s, "journal lines")
    assert_clean(repr(s.sb) + s.sb._repr_html_(), s, "Sandbox views")


def test_result_object_reprs_are_clean(s):
    from snapbook.curl import as_curl
    from snapbook.doctor import diagnose
    from snapbook.tokens import inspect_token

    token = s.tokens[0]
    texts = {
        "AccessToken": repr(token) + token._repr_html_() + json.dumps(token.response_json()),
        "TokenClient": s.client_repr,
    }
    ts = s.log.records[0].timestamp
    steps = explain_signature(s.key, CLIENT, ts)
    s.learn(steps.signature)
    texts["SignatureSteps"] = repr(steps) + steps._repr_html_() + repr(steps.rows())
    good, bad = diagnose(s.key.public_key(), CLIENT, ts, steps.signature), diagnose(
        s.key.public_key(), CLIENT, ts, sign(s.other_key, string_to_sign(CLIENT, ts)))
    s.learn(sign(s.other_key, string_to_sign(CLIENT, ts)))
    assert good.ok and not bad.ok
    texts["Diagnosis"] = "".join(repr(d) + d._repr_html_() + json.dumps(d.to_dict()) for d in (good, bad))
    info = inspect_token(token.access_token, secret=s.sb.config.secret)
    texts["TokenInfo"] = repr(info) + info._repr_html_() + repr(info.rows())
    request = build_token_request(s.sb.token_url("payment"), CLIENT, s.key, timestamp=ts)
    texts["TokenRequest"] = repr(request) + as_curl((request.method, request.url, request.headers, request.body))
    texts["KeyInfo"] = repr(K.describe_key(s.key)) + K.describe_key(s.key)._repr_html_()
    for what, text in texts.items():
        assert_clean(text, s, what)


def test_exception_messages_and_hints_are_clean(s):
    assert {type(e).__name__ for e in s.errors} >= {"SnapResponseError", "ConnectionFailedError",
                                                    "RequestTimeoutError"}
    for exc in s.errors:
        assert_clean(f"{exc!s}\n{exc!r}\n{exc.hint}", s, type(exc).__name__)
    # Key errors never echo key material, whatever was wrong with it.
    pem = K.private_key_bytes(s.key).decode()
    for broken in (pem[:-40], pem.replace("M", "!", 1), pem.replace("BEGIN PRIVATE", "BEGIN PUBLIC"),
                   "".join(pem.splitlines()[1:-1])[:-3]):
        with pytest.raises(SnapbookError) as info:
            K.load_private_key(broken)
        assert_clean(str(info.value), s, f"KeyFormatError for {broken[:12]!r}")


@pytest.mark.parametrize("echo", ["signature", "short-jwt", "opaque-token"])
def test_a_server_echoing_secrets_does_not_leak_them_through_the_client(s, echo):
    """A gateway that echoes X-SIGNATURE (or the token) in responseMessage: snapbook must not show it whole.

    The client copies responseMessage into the exception message, the log row and AccessToken;
    cutting it to 200 characters hides a 344-character signature, but not a short token.
    """
    import jwt as pyjwt

    token = {
        "short-jwt": pyjwt.encode({"sub": CLIENT}, "k" * 32, algorithm="HS256"),  # about 120 characters
        "opaque-token": "tok_" + "7f3a9c" * 8,  # providers may issue opaque tokens
    }.get(echo, "")
    s.learn(token)

    def handler(request: httpx.Request) -> httpx.Response:
        s.learn(request.headers["X-SIGNATURE"])
        if echo == "signature":
            return httpx.Response(401, json={"responseCode": "4017300",
                                             "responseMessage": request.headers["X-SIGNATURE"]})
        return httpx.Response(200, json={"responseCode": "2007300", "responseMessage": f"issued {token}",
                                         "accessToken": token, "tokenType": "Bearer", "expiresIn": "900"})

    log = RequestLog()
    with TokenClient("http://127.0.0.1:9/v1.0/access-token/b2b", CLIENT, s.key, log=log, retry=None,
                     transport=httpx.MockTransport(handler)) as client:
        try:
            got = client.request_token()
            shown = repr(got) + got._repr_html_() + json.dumps(got.response_json())
        except SnapbookError as exc:
            shown = f"{exc}"
    assert_clean(shown, s, "what the user sees")
    assert_clean(json.dumps([r.to_json() for r in log.records]), s, "the log row")
    assert_clean(log.to_dataframe().to_csv(), s, "the log DataFrame")


# --- the CLI ----------------------------------------------------------------------------------------


def run_cli(capsys, *argv, env=None) -> tuple[int, str, str]:
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        code = main([str(a) for a in argv])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_sign_prints_the_signature_because_that_was_asked(s, capsys):
    ts = "2026-01-15T10:00:00+07:00"
    expected = sign(s.key, string_to_sign(CLIENT, ts))
    s.learn(expected)
    for extra in ([], ["--json"]):
        code, out, err = run_cli(capsys, "sign", "--key", s.key_path, "--client-key", CLIENT, "--timestamp", ts, *extra)
        assert code == 0 and expected in out
        # The one thing shown is the signature asked for: no key material, nothing on stderr.
        leaks = find_leaks(out, known_secrets=s.secrets)
        assert {leak.kind for leak in leaks} == {"rsa-signature"} and len(leaks) == 1
        assert err == ""


def test_cli_token_shows_the_token_only_with_show_token(s, capsys):
    url = s.sb.token_url("payment")
    for extra in ([], ["--json"]):
        code, out, err = run_cli(capsys, "token", "--url", url, "--client-key", CLIENT, "--key", s.key_path, *extra)
        assert code == 0
        s.learn_log()
        assert_clean(out + err, s, f"snapbook token {' '.join(extra)}")
        assert "chars)" in out  # the masked token is shown
    for extra in ([], ["--json"]):
        code, out, err = run_cli(capsys, "token", "--url", url, "--client-key", CLIENT, "--key", s.key_path,
                                 "--show-token", *extra)
        assert code == 0
        kinds = {leak.kind for leak in find_leaks(out)}
        assert kinds == {"jwt"}, "with --show-token the whole token is printed, and nothing else secret"


def test_cli_outputs_without_an_explicit_ask_are_clean(s, capsys, tmp_path):
    url = s.sb.token_url("payment")
    ts = s.log.records[0].timestamp
    good = sign(s.key, string_to_sign(CLIENT, ts))
    bad = sign(s.other_key, string_to_sign(CLIENT, ts))
    s.learn(good, bad)
    runs = {
        "keygen": ["keygen", "--out", tmp_path / "k"],
        "fingerprint private": ["fingerprint", s.key_path],
        "verify valid": ["verify", "--public-key", s.public_path, "--client-key", CLIENT, "--timestamp", ts,
                         "--signature", good],
        "verify invalid": ["verify", "--public-key", s.public_path, "--client-key", CLIENT, "--timestamp", ts,
                           "--signature", bad],
        "doctor valid": ["doctor", "--public-key", s.public_path, "--client-key", CLIENT, "--timestamp", ts,
                         "--signature", good],
        "doctor invalid": ["doctor", "--public-key", s.public_path, "--client-key", CLIENT, "--timestamp", ts,
                           "--signature", bad],
        "doctor json": ["doctor", "--public-key", s.public_path, "--client-key", CLIENT, "--timestamp", ts,
                        "--signature", bad, "--json"],
        "check": ["check", "--url", url, "--client-key", CLIENT, "--key", s.key_path],
        "check json": ["check", "--url", url, "--client-key", CLIENT, "--key", s.key_path, "--json"],
        "token refused": ["token", "--url", url, "--client-key", OTHER, "--key", s.key_path],
        "token refused json": ["token", "--url", url, "--client-key", OTHER, "--key", s.key_path, "--json"],
        "sign error": ["sign", "--key", s.public_path, "--client-key", CLIENT],
    }
    for what, argv in runs.items():
        code, out, err = run_cli(capsys, *argv)
        s.learn_log()
        assert code in (0, 1, 2), (what, code, err)
        assert_clean(out + "\n" + err, s, f"snapbook {what}")
    new_key = K.private_key_bytes(K.read_private_key(tmp_path / "k" / "private.pem")).decode()
    s.learn(*new_key.splitlines()[1:-1])
    code, out, err = run_cli(capsys, "fingerprint", tmp_path / "k" / "private.pem")
    assert_clean(out + err, s, "fingerprint of the new key")


# --- widgets ------------------------------------------------------------------------------------------


def all_outputs(form) -> str:
    parts = []
    for o in form.output.outputs:
        parts.append(str(o.get("text", "")))
        parts += [str(v) for v in o.get("data", {}).values()]
    return "\n".join(parts)


def test_widget_outputs_are_clean(s, tmp_path):
    widgets = pytest.importorskip("snapbook.widgets")
    pem = K.private_key_bytes(s.key).decode()
    form = widgets.KeyForm(directory=tmp_path / "keys")
    seen = []
    form.paste.value = pem
    form.paste_button.click()
    seen.append(all_outputs(form))
    assert form.paste.value == ""  # the pasted key does not stay in the widget's state
    form.passphrase.value = PASSPHRASE
    form.save_button.click()
    seen.append(all_outputs(form))
    form.generate_button.click()
    seen.append(all_outputs(form))
    s.learn(*K.private_key_bytes(form.key).decode().splitlines()[1:-1])
    ts = "2026-01-15T10:00:00+07:00"
    signature = sign(s.key, string_to_sign(CLIENT, ts))
    wrong = sign(s.other_key, string_to_sign(CLIENT, ts))
    s.learn(signature, wrong)
    sig_form = widgets.SignatureForm(s.key, client_key=CLIENT, timestamp=ts, public_key=s.key.public_key())
    seen.append(all_outputs(sig_form))
    for compare in (signature, wrong, "garbage"):
        sig_form.compare.value = compare
        seen.append(all_outputs(sig_form))
    seen += [repr(form), repr(sig_form)]
    for i, text in enumerate(seen):
        assert_clean(text, s, f"widget output #{i}")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "private.pem").st_mode) == 0o600


def test_token_form_and_log_view_outputs_are_clean(s, tmp_path):
    widgets = pytest.importorskip("snapbook.widgets")
    if not hasattr(widgets, "TokenForm"):
        pytest.skip("snapbook.widgets has no TokenForm yet")
    log = RequestLog()
    seen = []
    form = widgets.TokenForm(sandbox=s.sb, client_key=CLIENT, private_key=s.key, log=log,
                             token_secret=s.sb.config.secret)
    assert form.request() is not None, form.text
    s.learn(form.token.access_token)
    seen += [all_outputs(form), repr(form)]
    # The encrypted key file, typed into the form with its passphrase: another key entry point.
    form = widgets.TokenForm(sandbox=s.sb, client_key=CLIENT, key_path=str(s.encrypted_path), log=log)
    form.passphrase.value = PASSPHRASE
    assert form.request() is not None, form.text
    s.learn(form.token.access_token)
    seen.append(all_outputs(form))
    assert form.passphrase.value == ""  # read once, then held in the kernel only
    form = widgets.TokenForm(sandbox=s.sb, client_key=CLIENT, key_path=str(s.encrypted_path), log=log)
    assert form.request() is None and "PassphraseError" in form.text  # no passphrase given
    refused = widgets.TokenForm(sandbox=s.sb, client_key=OTHER, private_key=s.other_key, log=log)
    assert refused.request() is None and "4017300" in refused.text
    seen.append(all_outputs(refused))
    for r in log.records:
        key = s.other_key if r.client_key == OTHER else s.key
        s.learn(sign(key, string_to_sign(r.client_key, r.timestamp)))
    if hasattr(widgets, "LogView"):
        view = widgets.LogView(log, csv_path=tmp_path / "log.csv", plot=False)
        seen += [all_outputs(view), repr(view)]
        view.export_button.click()
        seen.append((tmp_path / "log.csv").read_text(encoding="utf-8"))
    for i, text in enumerate(seen):
        assert_clean(text, s, f"token form / log view output #{i}")


def test_widget_state_is_clean(s, tmp_path):
    """What "Save Widget State" and an HTML export write: the synced state of every widget, after use.

    Before, the passphrase (KeyForm, TokenForm) and the full X-SIGNATURE (SignatureForm.compare,
    DoctorForm.signature) stayed in their password fields' state, so they ended up in files.
    """
    widgets = pytest.importorskip("snapbook.widgets")
    from ipywidgets.embed import embed_data

    s.learn(PASSPHRASE)
    ts = "2026-01-15T10:00:00+07:00"
    signature = sign(s.key, string_to_sign(CLIENT, ts))
    wrong = sign(s.other_key, string_to_sign(CLIENT, ts))
    s.learn(signature, wrong)
    pem = K.private_key_bytes(s.key, "pem", PASSPHRASE)
    key_form = widgets.KeyForm(directory=tmp_path / "keys")
    key_form.passphrase.value = PASSPHRASE
    key_form.paste.value = pem.decode()
    key_form.paste_button.click()
    key_form.save_button.click()
    key_form.passphrase.value = PASSPHRASE
    key_form.path.value = str(s.encrypted_path)
    key_form.load_button.click()
    assert key_form.key is not None and "Saved" not in key_form.text
    sig_form = widgets.SignatureForm(s.key, client_key=CLIENT, timestamp=ts, public_key=s.key.public_key())
    sig_form.compare.value = wrong
    assert "differs" in sig_form.text
    doctor = widgets.DoctorForm(s.key.public_key(), client_key=CLIENT, timestamp=ts)
    doctor.signature.value = wrong
    doctor.button.click()
    assert doctor.diagnosis is not None and not doctor.diagnosis.ok
    token_form = widgets.TokenForm(sandbox=s.sb, client_key=CLIENT, key_path=str(s.encrypted_path),
                                   log=RequestLog())
    token_form.passphrase.value = PASSPHRASE
    assert token_form.request() is not None, token_form.text
    s.learn(token_form.token.access_token)
    for r in token_form.request_log.records:
        s.learn(sign(s.key, string_to_sign(r.client_key, r.timestamp)))
    view = widgets.LogView(token_form.request_log, plot=False, csv_path=tmp_path / "log.csv")
    forms = [key_form, sig_form, doctor, token_form, view]
    # Every widget alive in this process (the forms above and those of the other tests), as saved.
    state = json.dumps(embed_data(views=forms))
    assert PASSPHRASE not in state and wrong not in state
    assert_clean(state, s, "widget state (embed_data)")


# --- saved notebooks and the repository ---------------------------------------------------------------


def vendor_secrets() -> list[str]:
    from snapbook.examples import load_vendor_example

    ex = load_vendor_example()
    pem = K.private_key_bytes(ex.private_key).decode()
    return [*pem.splitlines()[1:-1], ex.signature, ex.documented_signature, ex.documented_access_token]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_notebooks_are_clean(path):
    leaks = scan_notebook(path, known_secrets=vendor_secrets())
    assert leaks == [], "\n".join(map(str, leaks[:10]))


def test_repository_is_clean_except_the_vendors_published_example():
    """What CI runs: ``python -m snapbook.leaks . --exclude ...`` over every committed text file.

    The two fixture files hold the vendor page's *published* example key pair, signature and
    token (the same everywhere, useless as credentials); ``stranger_key.json`` is notebook 5's
    fixed demo key, registered nowhere and published here; nothing else may hold a secret.
    """
    allowed = [ROOT / "tests" / "data" / "vectors.json", ROOT / "snapbook" / "data" / "vendor_vectors.json",
               ROOT / "snapbook" / "data" / "stranger_key.json",
               ROOT / "test-artifacts", ROOT / "build", ROOT / "dist"]
    leaks = scan_paths(ROOT, exclude=allowed)
    assert leaks == [], "\n".join(map(str, leaks[:10]))


# --- private key files are 0600 -------------------------------------------------------------------------


@pytest.fixture
def umask_zero():
    old = os.umask(0)  # the most permissive umask: the code itself must restrict the mode
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_private_key_files_are_0600_whoever_writes_them(private_key, tmp_path, umask_zero, capsys):
    assert mode(K.save_private_key(private_key, tmp_path / "a.pem")) == 0o600
    assert mode(K.save_private_key(private_key, tmp_path / "b.der", "pw", encoding="der")) == 0o600
    loose = tmp_path / "loose.pem"
    loose.write_text("old")
    loose.chmod(0o644)
    assert mode(K.save_private_key(private_key, loose, overwrite=True)) == 0o600  # overwriting tightens
    assert main(["keygen", "--out", str(tmp_path / "cli")]) == 0
    assert mode(tmp_path / "cli" / "private.pem") == 0o600
    assert mode(tmp_path / "cli" / "public.pem") == 0o644
    os.environ["SNAPBOOK_TEST_PW"] = "pw"
    try:
        assert main(["keygen", "--out", str(tmp_path / "enc"), "--passphrase-env", "SNAPBOOK_TEST_PW"]) == 0
    finally:
        del os.environ["SNAPBOOK_TEST_PW"]
    assert mode(tmp_path / "enc" / "private.pem") == 0o600
    capsys.readouterr()
    widgets = pytest.importorskip("snapbook.widgets")
    paths = widgets.save_key_pair(private_key, tmp_path / "w")
    assert [mode(p) for p in paths] == [0o600, 0o644]


# --- encrypted keys work everywhere a key is accepted ---------------------------------------------------


def encrypted_forms(private_key) -> dict[str, bytes | str]:
    pw = PASSPHRASE.encode()
    legacy = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.BestAvailableEncryption(pw))
    der = K.private_key_bytes(private_key, "der", PASSPHRASE)
    pem = K.private_key_bytes(private_key, "pem", PASSPHRASE).decode()
    return {
        "pkcs8-pem": pem,
        "pkcs8-der": der,
        "pkcs8-base64": base64.b64encode(der).decode(),
        "pkcs8-one-line-escaped": pem.replace("\n", "\\n"),
        "pkcs1-legacy-pem": legacy.decode(),
    }


def test_encrypted_keys_load_in_every_form(private_key):
    for name, data in encrypted_forms(private_key).items():
        assert K.fingerprint(K.load_private_key(data, PASSPHRASE)) == K.fingerprint(private_key), name
        assert K.fingerprint(K.load_private_key(data, PASSPHRASE.encode())) == K.fingerprint(private_key), name
        with pytest.raises(PassphraseError):
            K.load_private_key(data)
        with pytest.raises(PassphraseError):
            K.load_private_key(data, "wrong")


def test_encrypted_key_in_every_cli_command(s, capsys):
    env = {"SNAPBOOK_TEST_PW": PASSPHRASE}
    url = s.sb.token_url("payment")
    with_pw = ["--passphrase-env", "SNAPBOOK_TEST_PW"]
    code, out, _ = run_cli(capsys, "sign", "--key", s.encrypted_path, "--client-key", CLIENT,
                           "--timestamp", "2026-01-15T10:00:00+07:00", *with_pw, env=env)
    assert code == 0 and out.strip() == sign(s.key, string_to_sign(CLIENT, "2026-01-15T10:00:00+07:00"))
    code, out, _ = run_cli(capsys, "fingerprint", s.encrypted_path, *with_pw, env=env)
    assert code == 0 and out.strip() == K.fingerprint(s.key)
    code, out, err = run_cli(capsys, "token", "--url", url, "--client-key", CLIENT, "--key", s.encrypted_path,
                             *with_pw, "--json", env=env)
    assert code == 0 and json.loads(out)["ok"] is True, err
    code, out, err = run_cli(capsys, "check", "--url", url, "--client-key", CLIENT, "--key", s.encrypted_path,
                             *with_pw, "--json", env=env)
    assert code == 0 and json.loads(out)["ok"] is True, out
    s.learn_log()
    # Without the passphrase: a clear error (exit 2, or a failed 'key loads' check), never a traceback.
    for argv in (["sign", "--key", s.encrypted_path, "--client-key", CLIENT],
                 ["fingerprint", s.encrypted_path],
                 ["token", "--url", url, "--client-key", CLIENT, "--key", s.encrypted_path]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and "encrypted" in err and "Traceback" not in err, (argv, err)
    code, out, err = run_cli(capsys, "check", "--url", url, "--client-key", CLIENT, "--key", s.encrypted_path)
    assert code == 1 and "encrypted" in out


def test_encrypted_key_in_the_token_clients(s):
    url = s.sb.token_url("snap")
    pem = K.private_key_bytes(s.key, "pem", PASSPHRASE)
    for key in (s.encrypted_path, str(s.encrypted_path), pem, pem.decode()):
        with TokenClient(url, CLIENT, key, passphrase=PASSPHRASE, timeout=5) as client:
            token = client.request_token()
        assert s.sb.validate_token(token.access_token)["sub"] == CLIENT
        s.learn(token.access_token)
    with pytest.raises(PassphraseError):
        TokenClient(url, CLIENT, s.encrypted_path)

    async def run():
        async with AsyncTokenClient(url, CLIENT, s.encrypted_path, passphrase=PASSPHRASE, timeout=5) as client:
            return await client.request_token()

    token = asyncio.run(run())
    s.learn(token.access_token)
    assert s.sb.validate_token(token.access_token)["sub"] == CLIENT


def test_encrypted_key_in_the_key_form(s):
    widgets = pytest.importorskip("snapbook.widgets")
    from datetime import datetime, timezone

    pem = K.private_key_bytes(s.key, "pem", PASSPHRASE)
    for how in ("file", "paste", "upload"):
        form = widgets.KeyForm()
        form.passphrase.value = PASSPHRASE
        if how == "file":
            form.path.value = str(s.encrypted_path)
            form.load_button.click()
        elif how == "paste":
            form.paste.value = pem.decode()
            form.paste_button.click()
        else:
            form.upload.value = ({"name": "encrypted.pem", "type": "", "size": len(pem), "content": memoryview(pem),
                                  "last_modified": datetime(2024, 1, 1, tzinfo=timezone.utc)},)
        assert form.key is not None and K.fingerprint(form.key) == K.fingerprint(s.key), (how, form.text)
        assert_clean(all_outputs(form), s, f"KeyForm {how}")
    form = widgets.KeyForm()
    form.paste.value = pem.decode()
    form.paste_button.click()  # no passphrase: shown as an error in the form, not raised
    assert form.key is None and "PassphraseError" in form.text
