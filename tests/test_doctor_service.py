"""The service doctor: each diagnosis comes from really making that mistake, signed by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from snapbook.doctor import SERVICE_CAUSES, Diagnosis, diagnose_notification, diagnose_service
from snapbook.doctor.service import MAX_CANDIDATES
from snapbook.service_signing import service_headers
from snapbook.signing import sign as rsa_sign

TS = "2020-12-18T10:55:00+07:00"
SECRET = "o7sWnn0oGXF7y7JBGf18!"
STAGE_SECRET = "stageSecret#2024^x"
TOKEN = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a"
OLD_TOKEN = "oldTokenBeforeRefresh0123456789abcdefghijklmnopqrst"
PATH = "/api/v1.0/balance-inquiry?lang=id"
HOST = "api-stage.senmo.id"
OBJ = {
    "partnerReferenceNo": "2020102900000000000001",
    "accountNo": "1234567890",
    "balanceType": "cash",
    "callbackUrl": "https://merchant.com/cb",
    "note": "Jalan Sudirman №1",
    "zeta": None,
    "alpha": 1,
}
# What httpx's json= and most clients send: compact, UTF-8, keys in insertion order.
SENT = json.dumps(OBJ, separators=(",", ":"), ensure_ascii=False).encode()
NOTIFY_URL = "https://merchant.com/callback"


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def hmac_b64(secret: str, text: str, algo=hashlib.sha512) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), algo).digest()).decode()


def received(signature: str, token: str = TOKEN) -> dict[str, str]:
    return {
        "Host": HOST,
        "Authorization": f"Bearer {token}",
        "X-TIMESTAMP": TS,
        "X-SIGNATURE": signature,
        "Content-Type": "application/json",
    }


def doctor(signature: str, body: bytes = SENT, **kw) -> Diagnosis:
    kw.setdefault("client_secret", SECRET)
    return diagnose_service("POST", PATH, received(signature), body, **kw)


def check(d: Diagnosis, cause: str) -> None:
    assert d.cause == cause, d
    assert d.ok is (cause == "valid")
    assert cause in SERVICE_CAUSES and d.title == SERVICE_CAUSES[cause]
    assert d.summary and (d.ok or d.fix)
    shown = repr(d) + d._repr_html_() + json.dumps(d.to_dict(), ensure_ascii=False)
    for secret in (TOKEN, OLD_TOKEN, SECRET, STAGE_SECRET):
        assert secret not in shown  # masked everywhere
    assert 0 <= d.candidates_tried <= MAX_CANDIDATES


def test_valid_symmetric_from_the_library_signer():
    headers = service_headers("POST", PATH, SENT, timestamp=TS, access_token=TOKEN, client_secret=SECRET)
    d = diagnose_service("POST", PATH, headers, SENT, client_secret=SECRET)
    check(d, "valid")
    assert d.candidates_tried == 1


# --- the body, re-serialised ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cause,hashed",
    [
        ("body-separators", json.dumps(OBJ)),  # Python's default ', ' and ': '
        ("body-separators", json.dumps(OBJ, indent=2, ensure_ascii=False)),
        (
            "body-slash-escaped",
            SENT.decode().replace("/", "\\/"),
        ),  # PHP json_encode without UNESCAPED_SLASHES
        ("body-slash-escaped", json.dumps(OBJ, separators=(",", ":")).replace("/", "\\/")),  # PHP's defaults
        ("body-ascii-escaped", json.dumps(OBJ, separators=(",", ":"))),  # ensure_ascii=True
        ("body-sorted-keys", json.dumps(OBJ, sort_keys=True, separators=(",", ":"), ensure_ascii=False)),
        ("body-str-dict", str(OBJ)),  # DOKU's Python SDK
        ("body-empty", ""),
    ],
)
def test_body_reserialised_for_the_hash(cause, hashed):
    sig = hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(hashed)}:{TS}")
    d = doctor(sig)
    check(d, cause)
    assert d.signed_message is not None and sha(hashed) in d.signed_message


def test_body_hashed_without_minify():
    pretty = json.dumps(OBJ, indent=2, ensure_ascii=False).encode()  # what was sent
    sig = hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(pretty)}:{TS}")
    check(doctor(sig, body=pretty), "body-not-minified")


def test_a_body_hashed_for_a_call_without_body():
    sig = hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha('{}')}:{TS}")
    check(doctor(sig, body=b""), "body-empty")


def test_body_with_spaces_that_is_not_json():
    check(doctor(hmac_b64(SECRET, "x"), body=b"a = 1"), "body-not-json")


# --- the hash's encoding -------------------------------------------------------------------


def test_hash_upper_case():
    check(doctor(hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(SENT).upper()}:{TS}")), "hash-uppercase")


def test_hash_base64():  # DOKU's Node SDK
    b64 = base64.b64encode(hashlib.sha256(SENT).digest()).decode()
    check(doctor(hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{b64}:{TS}")), "hash-base64")


# --- method and path -----------------------------------------------------------------------


def test_method_lower_case():
    check(doctor(hmac_b64(SECRET, f"post:{PATH}:{TOKEN}:{sha(SENT)}:{TS}")), "method-case")


def test_path_without_its_prefix():
    d = doctor(hmac_b64(SECRET, f"POST:/v1.0/balance-inquiry?lang=id:{TOKEN}:{sha(SENT)}:{TS}"))
    check(d, "path-prefix-dropped")
    assert "'/api'" in d.summary


@pytest.mark.parametrize(
    "url", [f"https://{HOST}{PATH}", f"http://{HOST}{PATH}", f"https://api.senmo.id{PATH}"]
)
def test_path_with_scheme_and_host(url):
    check(doctor(hmac_b64(SECRET, f"POST:{url}:{TOKEN}:{sha(SENT)}:{TS}")), "path-absolute")


def test_query_string_dropped():
    check(
        doctor(hmac_b64(SECRET, f"POST:/api/v1.0/balance-inquiry:{TOKEN}:{sha(SENT)}:{TS}")), "query-dropped"
    )


def test_query_string_added_for_a_provider_that_signs_the_path_only():
    sig = hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}")
    check(doctor(sig, include_query=False), "query-added")
    check(
        doctor(
            hmac_b64(SECRET, f"POST:/api/v1.0/balance-inquiry:{TOKEN}:{sha(SENT)}:{TS}"), include_query=False
        ),
        "valid",
    )


# --- token, timestamp, secret --------------------------------------------------------------


def test_bearer_inside_the_string():
    check(doctor(hmac_b64(SECRET, f"POST:{PATH}:Bearer {TOKEN}:{sha(SENT)}:{TS}")), "token-bearer")


def test_empty_token_double_colon():  # snapapi's METHOD:path::hash:ts
    check(doctor(hmac_b64(SECRET, f"POST:{PATH}::{sha(SENT)}:{TS}")), "token-empty")


def test_another_token_than_the_one_sent():
    # Signed with the token cached before a refresh; the header carries the new one.
    sig = hmac_b64(SECRET, f"POST:{PATH}:{OLD_TOKEN}:{sha(SENT)}:{TS}")
    check(doctor(sig, known_tokens=[OLD_TOKEN, TOKEN]), "token-other")
    check(doctor(sig), "unidentified")  # without the earlier tokens, it cannot be proven


@pytest.mark.parametrize(
    "signed_ts,words",
    [
        ("2020-12-18T10:55:01+07:00", "1 s later"),
        ("2020-12-18T03:55:00Z", "same instant"),
        ("2020-12-18T10:54:00+07:00", "60 s earlier"),
    ],
)
def test_another_timestamp(signed_ts, words):
    d = doctor(hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{signed_ts}"))
    check(d, "timestamp-other")
    assert signed_ts in d.summary and words in d.summary


@pytest.mark.parametrize("used", [STAGE_SECRET, SECRET + "\n"])
def test_another_secret(used):
    sig = hmac_b64(used, f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}")
    check(doctor(sig, known_secrets=[STAGE_SECRET]), "secret-other")


def test_unknown_secret_is_unidentified_and_bounded():
    d = doctor(hmac_b64("neverRegistered1", f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}"))
    check(d, "unidentified")
    assert "secret" in d.details and d.candidates_tried > 500


def test_hostile_path_stays_within_the_bound():
    short = diagnose_service("POST", "/a", received(hmac_b64(SECRET, "x")), SENT, client_secret=SECRET)
    path = "/a" * 20000
    d = diagnose_service("POST", path, received(hmac_b64(SECRET, "x")), SENT, client_secret=SECRET)
    assert d.cause == "unidentified" and d.candidates_tried <= MAX_CANDIDATES
    # A path of 20,000 segments adds at most 8 prefix candidates.
    assert d.candidates_tried - short.candidates_tried <= 8


# --- the signature's own form --------------------------------------------------------------


def test_hmac_in_hex():
    raw = hmac.new(
        SECRET.encode(), f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}".encode(), hashlib.sha512
    ).hexdigest()
    check(doctor(raw), "signature-hex")


def test_hmac_sha256():
    check(doctor(hmac_b64(SECRET, f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}", hashlib.sha256)), "hmac-sha256")


def test_not_base64_and_missing_headers():
    check(doctor("***"), "not-base64")
    d = diagnose_service("POST", PATH, {"X-TIMESTAMP": TS, "X-SIGNATURE": "abc"}, SENT, client_secret=SECRET)
    check(d, "missing-header")
    assert "Authorization" in d.summary


# --- asymmetric ---------------------------------------------------------------------------------


def test_asymmetric_valid_and_double_colon(private_key):
    pub = private_key.public_key()
    good = rsa_sign(private_key, f"POST:{PATH}:{sha(SENT)}:{TS}")
    d = diagnose_service("POST", PATH, received(good), SENT, public_key=pub)
    check(d, "valid")
    assert d.key_bits == 2048
    bad = rsa_sign(private_key, f"POST:{PATH}::{sha(SENT)}:{TS}")
    check(diagnose_service("POST", PATH, received(bad), SENT, public_key=pub), "asymmetric-empty-token")


def test_asymmetric_with_the_token_and_other_mistakes(private_key):
    pub = private_key.public_key()
    with_token = rsa_sign(private_key, f"POST:{PATH}:{TOKEN}:{sha(SENT)}:{TS}")
    check(diagnose_service("POST", PATH, received(with_token), SENT, public_key=pub), "asymmetric-with-token")
    sorted_body = rsa_sign(private_key, f"POST:{PATH}:{sha(json.dumps(OBJ, sort_keys=True))}:{TS}")
    check(diagnose_service("POST", PATH, received(sorted_body), SENT, public_key=pub), "body-sorted-keys")
    absolute = rsa_sign(private_key, f"POST:https://{HOST}{PATH}:{sha(SENT)}:{TS}")
    check(diagnose_service("POST", PATH, received(absolute), SENT, public_key=pub), "path-absolute")


def test_asymmetric_with_another_key(private_key, other_private_key):
    sig = rsa_sign(other_private_key, f"POST:{PATH}:{sha(SENT)}:{TS}")
    check(
        diagnose_service("POST", PATH, received(sig), SENT, public_key=private_key.public_key()),
        "different-key",
    )


# --- notifications ----------------------------------------------------------------------------

NOTE = json.dumps(
    {
        "originalReferenceNo": "A1",
        "latestTransactionStatus": "00",
        "amount": {"value": "10000.00", "currency": "IDR"},
    },
    separators=(",", ":"),
).encode()


def notified(signature: str, version: str | None = "v1") -> dict[str, str]:
    headers = {"X-TIMESTAMP": TS, "X-SIGNATURE": signature}
    if version is not None:
        headers["X-VERSION"] = version
    return headers


def test_notification_valid_and_default_version():
    sig = hmac_b64(SECRET, f"{NOTIFY_URL}:v1:{sha(NOTE)}:{TS}")
    check(diagnose_notification(NOTIFY_URL, notified(sig), NOTE, client_secret=SECRET), "valid")
    check(diagnose_notification(NOTIFY_URL, notified(sig, None), NOTE, client_secret=SECRET), "valid")


@pytest.mark.parametrize(
    "url", ["/callback", NOTIFY_URL + "/", "http://merchant.com/callback", "merchant.com/callback"]
)
def test_notification_url_variants(url):
    sig = hmac_b64(SECRET, f"{url}:v1:{sha(NOTE)}:{TS}")
    check(diagnose_notification(NOTIFY_URL, notified(sig), NOTE, client_secret=SECRET), "notify-url")


def test_notification_version_missing_or_other():
    missing = hmac_b64(SECRET, f"{NOTIFY_URL}:{sha(NOTE)}:{TS}")
    check(diagnose_notification(NOTIFY_URL, notified(missing), NOTE, client_secret=SECRET), "version-missing")
    other = hmac_b64(SECRET, f"{NOTIFY_URL}:1:{sha(NOTE)}:{TS}")
    check(diagnose_notification(NOTIFY_URL, notified(other), NOTE, client_secret=SECRET), "version-other")


def test_notification_body_timestamp_and_secret_mistakes():
    obj = json.loads(NOTE)
    cases = [
        ("body-separators", hmac_b64(SECRET, f"{NOTIFY_URL}:v1:{sha(json.dumps(obj))}:{TS}"), ()),
        ("hash-uppercase", hmac_b64(SECRET, f"{NOTIFY_URL}:v1:{sha(NOTE).upper()}:{TS}"), ()),
        ("timestamp-other", hmac_b64(SECRET, f"{NOTIFY_URL}:v1:{sha(NOTE)}:2020-12-18T10:54:58+07:00"), ()),
        ("secret-other", hmac_b64(STAGE_SECRET, f"{NOTIFY_URL}:v1:{sha(NOTE)}:{TS}"), (STAGE_SECRET,)),
    ]
    for cause, sig, known in cases:
        check(
            diagnose_notification(NOTIFY_URL, notified(sig), NOTE, client_secret=SECRET, known_secrets=known),
            cause,
        )


def test_the_package_keeps_the_token_doctor_names():
    from snapbook import doctor
    from snapbook.doctor.token import diagnose as token_diagnose

    assert doctor.diagnose is token_diagnose
    assert {"CAUSES", "Diagnosis", "diagnose", "diagnose_request"} <= set(doctor.__all__)


def test_a_dict_body_is_named_not_crashed_on():
    d = doctor(hmac_b64(SECRET, "x"), body=OBJ)  # type: ignore[arg-type]
    check(d, "body-not-json")
    assert "bytes" in d.summary


def test_hostile_bodies_get_a_diagnosis():
    deep = b"[" * 100_000 + b"]" * 100_000  # compact, so minify leaves it alone; json.loads would recurse
    check(doctor(hmac_b64(SECRET, "x"), body=deep), "unidentified")
    check(doctor(hmac_b64(SECRET, "x"), body=b"[ " * 100_000 + b"]" * 100_000), "body-not-json")
