"""inspect_token: a JWT's header, claims and expiry, verified when the secret is given."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from snapbook.errors import SnapbookError, TokenFormatError
from snapbook.tokens import OPAQUE_NOTE, TokenInfo, inspect_token

SECRET = "s" * 64  # HS512 wants at least 64 bytes
IAT = 1768965737


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(IAT + seconds, timezone.utc)


def make(claims=None, secret=SECRET, algorithm="HS512", **kw) -> str:
    claims = {"sub": "MC2026016058", "iat": IAT, "exp": IAT + 900} if claims is None else claims
    return jwt.encode(claims, secret, algorithm=algorithm, **kw)


def test_the_vendor_token(vectors):
    info = inspect_token(vectors["documented_access_token"], clock=at(0))
    assert isinstance(info, TokenInfo)
    assert info.header == vectors["documented_access_token_header"]
    assert info.claims == vectors["documented_access_token_claims"]
    assert info.algorithm == "HS512" and info.subject == "MC2026016058"
    assert info.lifetime_seconds == 900
    assert info.seconds_left == 900 and info.expired is False
    assert info.verified is None  # no secret given
    assert info.issued_at == datetime(2026, 1, 21, 10, 22, 17, tzinfo=timezone(timedelta(hours=7)))
    assert info.issued_at.utcoffset() == timedelta(hours=7)
    assert info.expires_at - info.issued_at == timedelta(seconds=900)


def test_seconds_left_follows_the_clock(vectors):
    token = vectors["documented_access_token"]
    assert inspect_token(token, clock=at(100)).seconds_left == 800
    assert inspect_token(token, clock=lambda: at(899.5)).seconds_left == 0
    late = inspect_token(token, clock=at(1000))
    assert late.seconds_left == -100 and late.expired is True
    assert "expired" in repr(late)


def test_other_time_zones(vectors):
    info = inspect_token(vectors["documented_access_token"], clock=at(0), tz="UTC")
    assert info.issued_at.utcoffset() == timedelta(0)
    assert info.issued_at.isoformat() == "2026-01-21T03:22:17+00:00"
    assert inspect_token(
        vectors["documented_access_token"], tz="Asia/Makassar"
    ).expires_at.utcoffset() == timedelta(hours=8)


def test_verifies_with_the_secret():
    token = make()
    assert inspect_token(token, secret=SECRET, clock=at(0)).verified is True
    wrong = inspect_token(token, secret="t" * 64, clock=at(0))
    assert wrong.verified is False and "does not match" in wrong.problem
    assert "NO:" in repr(wrong)


def test_an_expired_token_still_verifies():
    info = inspect_token(make(), secret=SECRET, clock=at(3600))
    assert info.verified is True and info.expired is True


def test_the_vendor_token_does_not_verify_with_a_guess(vectors):
    info = inspect_token(vectors["documented_access_token"], secret=SECRET)
    assert info.verified is False


def test_a_weak_secret_is_noted_not_warned():
    weak = "only-20-bytes-secret"
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT warns when signing with it
        token = make(secret=weak)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inspect_token turns the warning into a note
        info = inspect_token(token, secret=weak, clock=at(0))
    assert info.verified is True
    assert any("Weak secret" in n and "20 bytes" in n for n in info.notes)


def test_unsigned_token_is_not_verified():
    token = jwt.encode({"sub": "x"}, None, algorithm="none")
    info = inspect_token(token, secret=SECRET)
    assert info.verified is False and "unsigned" in info.problem


def test_bearer_prefix_and_quotes_are_removed():
    token = make()
    info = inspect_token(f'"Bearer {token}"', clock=at(0))
    assert info.token == token
    assert any("Bearer" in n for n in info.notes)


def test_no_exp_claim():
    info = inspect_token(make({"sub": "x", "iat": IAT}), clock=at(0))
    assert info.seconds_left is None and info.expires_at is None and info.expired is None
    assert any("never expires" in n for n in info.notes)


def test_non_numeric_times_are_noted():
    info = inspect_token(make({"sub": "x", "exp": "tomorrow"}), clock=at(0))
    assert info.expires_at is None
    assert any("'tomorrow'" in n for n in info.notes)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("eyJhbGciOiJIUzUxMiJ9", "cut short"),
        ("eyJhbGciOiJIUzUxMiJ9.e30", "2 dot-separated parts"),
        ("abc.def.ghi", "not a readable JWT"),
        ("x" * 70_000, "far beyond SNAP's 2048"),
    ],
)
def test_no_token_or_a_damaged_jwt_is_an_error(text, words):
    with pytest.raises(TokenFormatError) as caught:
        inspect_token(text)
    assert words in str(caught.value)
    assert isinstance(caught.value, SnapbookError) and isinstance(caught.value, ValueError)


# Issue 14 item 3: a JWT is Ifortepay's choice; the standard's accessToken is opaque.
@pytest.mark.parametrize(
    "text",
    ["opaque-token-without-dots", "2YotnFZFEjr1zCsicMWpAA", "a.b", "!!!.???.***", "a.b.c.d.e", "Bearer 8f4e2a"],
)
def test_an_opaque_token_gets_a_clear_answer_not_an_error(text):
    info = inspect_token(text, clock=at(0))
    assert info.is_jwt is False
    assert info.notes[0] == OPAQUE_NOTE and OPAQUE_NOTE.startswith("not a JWT: opaque token")
    assert "Ifortepay's choice, not the standard's" in OPAQUE_NOTE
    assert info.header == {} and info.claims == {} and info.expires_at is None and info.expired is None
    shown = repr(info)
    assert "kind: not a JWT: opaque token" in shown and "opaque token" in info._repr_html_()
    if len(text) > 12:
        assert text not in shown  # masked like any token


def test_a_jwe_is_opaque_to_the_client():
    info = inspect_token("a.b.c.d.e")
    assert not info.is_jwt and any("JWE" in n for n in info.notes)


def test_an_overlong_opaque_token_is_noted():
    info = inspect_token("t" * 3000)
    assert not info.is_jwt and any("SNAP allows 2048" in n for n in info.notes)


def test_a_jwt_says_it_is_one(vectors):
    info = inspect_token(vectors["documented_access_token"], clock=at(0))
    assert info.is_jwt and ("kind", "JWT (HS512)") in info.rows()


def test_a_long_bad_token_is_masked_in_the_error():
    bad = "eyJ" + "x" * 60 + "." + "y" * 60
    with pytest.raises(TokenFormatError) as caught:
        inspect_token(bad)
    assert bad not in str(caught.value)


def test_repr_and_html_mask_the_token(vectors):
    token = vectors["documented_access_token"]
    info = inspect_token(token, clock=at(0))
    for text in (repr(info), info._repr_html_()):
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature part
        assert "MC2026016058" in text
    assert info.token_masked.startswith(token[:6])
    assert "900 s (15 min 0 s)" in repr(info)


def test_claims_are_plain_json(vectors):
    info = inspect_token(vectors["documented_access_token"], clock=at(0))
    assert json.loads(json.dumps(info.claims)) == info.claims
