"""snapbook.endpoints: names, the vendor table, the sandbox and custom URLs. Nothing here touches the network."""

from __future__ import annotations

import pytest

from snapbook.endpoints import (
    DEFAULT_SANDBOX_URL,
    ENDPOINTS,
    SANDBOX_URL_ENV,
    TOKEN_PATHS,
    Endpoint,
    custom,
    names,
    resolve,
    resolve_endpoint,
    sandbox,
)
from snapbook.errors import ConfigError

VENDOR = {
    "payment-stage": "https://kronos-stage.ifortepay.id/auth/merchants/v1.0/access-token/b2b",
    "payment-production": "https://kronos.ifortepay.id/auth/merchants/v1.0/access-token/b2b",
    "disbursement-stage": "https://api-stage.senmo.id/api/v1.0/access-token/b2b",
    "disbursement-production": "https://api.senmo.id/api/v1.0/access-token/b2b",
}


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_vendor_table(name):
    endpoint = resolve(name)
    assert endpoint.url == VENDOR[name]
    assert endpoint.name == name
    product, environment = name.split("-")
    assert (endpoint.product, endpoint.environment) == (product, environment)
    assert endpoint.is_production == (environment == "production")
    assert not endpoint.is_local


def test_table_is_exactly_the_vendor_table():
    assert {name: e.url for name, e in ENDPOINTS.items()} == VENDOR
    assert names()[:4] == list(VENDOR) and "sandbox" in names()


@pytest.mark.parametrize(
    "alias, name",
    [
        ("PAYMENT-STAGE", "payment-stage"),
        ("payment_stage", "payment-stage"),
        (" payment-prod ", "payment-production"),
        ("disbursement-staging", "disbursement-stage"),
        ("Disbursement_Prod", "disbursement-production"),
    ],
)
def test_names_are_forgiving(alias, name):
    assert resolve(alias) is ENDPOINTS[name]


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError) as info:
        resolve("paymnet-stage")
    assert "Did you mean 'payment-stage'" in str(info.value)
    assert "disbursement-production" in info.value.hint


def test_sandbox_names_default_to_the_cli_sandbox_address(monkeypatch):
    """Issue 14 item 10: --env sandbox next to a plain `snapbook sandbox` (port 8765) just works."""
    monkeypatch.delenv(SANDBOX_URL_ENV, raising=False)
    assert DEFAULT_SANDBOX_URL == "http://127.0.0.1:8765"
    for name, product in (("sandbox", "payment"), ("sandbox-disbursement", "disbursement")):
        endpoint = resolve(name)
        assert endpoint.url == DEFAULT_SANDBOX_URL + TOKEN_PATHS[product] and endpoint.environment == "sandbox"
    monkeypatch.setenv(SANDBOX_URL_ENV, "  ")  # blank counts as unset
    assert resolve("sandbox").url.startswith(DEFAULT_SANDBOX_URL + "/")


def test_sandbox_names_follow_the_environment_variable(monkeypatch):
    monkeypatch.setenv(SANDBOX_URL_ENV, "http://127.0.0.1:9001")
    assert resolve("sandbox-snap").url == "http://127.0.0.1:9001" + TOKEN_PATHS["snap"]
    assert resolve("sandbox", sandbox_url="http://127.0.0.1:1").url.startswith("http://127.0.0.1:1/")
    monkeypatch.setenv(SANDBOX_URL_ENV, "127.0.0.1:9001")  # no scheme
    with pytest.raises(ConfigError) as info:
        resolve("sandbox")
    assert SANDBOX_URL_ENV in info.value.message and "export SNAPBOOK_SANDBOX_URL=" in info.value.hint
    assert "sandbox_url=" not in info.value.hint  # the hint speaks shell, not library API


@pytest.mark.parametrize("product", sorted(TOKEN_PATHS))
def test_sandbox_products(product):
    base = "http://127.0.0.1:8765"
    name = "sandbox" if product == "payment" else f"sandbox-{product}"
    endpoint = resolve(f"sandbox-{product}", sandbox_url=base + "/")
    assert endpoint == sandbox(base, product)
    assert endpoint.url == base + TOKEN_PATHS[product]
    assert endpoint.environment == "sandbox" and endpoint.product == product and endpoint.name == name
    assert endpoint.is_local


def test_plain_sandbox_is_payment_and_full_urls_are_kept():
    assert resolve("sandbox", sandbox_url="http://127.0.0.1:1").product == "payment"
    full = "http://127.0.0.1:1/api/v1.0/access-token/b2b"
    assert sandbox(full).url == full
    with pytest.raises(ConfigError):
        sandbox("http://127.0.0.1:1", "loans")


def test_custom_urls():
    endpoint = resolve("https://example.test/auth/merchants/v1.0/access-token/b2b")
    assert endpoint == Endpoint(
        "custom", "payment", "custom", "https://example.test/auth/merchants/v1.0/access-token/b2b"
    )
    assert resolve("https://example.test/api/v1.0/access-token/b2b").product == "disbursement"
    assert resolve("https://example.test/x/v1.0/access-token/b2b").product == "snap"
    assert resolve("https://example.test/token").product == "custom"
    assert custom("https://example.test/token", name="mine", product="payment").name == "mine"
    assert resolve("http://localhost:9/v1.0/access-token/b2b").is_local


@pytest.mark.parametrize("url", ["ftp://example.test/token", "https://", "example.test/token", "", "   "])
def test_bad_urls(url):
    with pytest.raises(ConfigError):
        custom(url)


def test_plain_http_only_to_loopback():
    with pytest.raises(ConfigError, match="unencrypted"):
        resolve("http://example.test/v1.0/access-token/b2b")
    assert resolve("http://example.test/v1.0/access-token/b2b", allow_http=True).host == "example.test"


def test_endpoint_passes_through_and_wrong_types_fail():
    endpoint = ENDPOINTS["payment-stage"]
    assert resolve(endpoint) is endpoint
    assert resolve_endpoint is resolve
    with pytest.raises(ConfigError):
        resolve(42)  # type: ignore[arg-type]


def test_display():
    endpoint = ENDPOINTS["disbursement-stage"]
    assert str(endpoint) == f"disbursement-stage ({VENDOR['disbursement-stage']})"
    assert "POST" in endpoint._repr_html_()


# --- service hosts (issue 11) ------------------------------------------------------------

from snapbook.endpoints import SERVICE_HOSTS, ServiceEndpoint, resolve_service  # noqa: E402

SERVICE_TABLE = {
    "payment-stage": ("https://api-stage.ifortepay.id", VENDOR["payment-stage"]),
    "payment-production": ("https://api.ifortepay.id", VENDOR["payment-production"]),
    "disbursement-stage": ("https://api-stage.senmo.id", "https://api-stage.senmo.id/api/v1.0/access-token/b2b"),
    "disbursement-production": ("https://api.senmo.id", "https://api.senmo.id/api/v1.0/access-token/b2b"),
}


@pytest.mark.parametrize("name", sorted(SERVICE_TABLE))
def test_service_hosts_and_their_token_endpoints(name):
    service = resolve_service(name)
    base, token = SERVICE_TABLE[name]
    assert (service.name, service.base_url, service.token.url) == (name, base, token)
    assert service.is_production == name.endswith("production")
    assert service.url_for("/v1.0/qr/qr-mpm-generate") == base + "/v1.0/qr/qr-mpm-generate"
    assert service.endpoint_for("/x?y=1").url == base + "/x?y=1" and service.endpoint_for("/x").name == name


def test_service_table_matches_the_reference():
    assert SERVICE_HOSTS == {name: base for name, (base, _) in SERVICE_TABLE.items()}
    # Ifortepay's token stays on kronos; Senmo's token is on the service host itself.
    assert resolve_service("payment-stage").token.host == "kronos-stage.ifortepay.id"
    assert resolve_service("disbursement-stage").token.host == resolve_service("disbursement-stage").host


def test_service_names_are_forgiving_like_token_names():
    assert resolve_service("PAYMENT_prod").base_url == "https://api.ifortepay.id"


def test_sandbox_service_endpoint(monkeypatch):
    monkeypatch.delenv(SANDBOX_URL_ENV, raising=False)
    service = resolve_service("sandbox")
    assert service.base_url == DEFAULT_SANDBOX_URL and service.environment == "sandbox"
    assert service.token.url == DEFAULT_SANDBOX_URL + TOKEN_PATHS["payment"]
    assert resolve_service("sandbox-disbursement").token.url == DEFAULT_SANDBOX_URL + TOKEN_PATHS["disbursement"]
    monkeypatch.setenv(SANDBOX_URL_ENV, "http://127.0.0.1:9999")
    assert resolve_service("sandbox").base_url == "http://127.0.0.1:9999"
    assert resolve_service("sandbox", sandbox_url="http://127.0.0.1:7/").base_url == "http://127.0.0.1:7"


def test_custom_base_url_and_token_url():
    service = resolve_service("http://127.0.0.1:8000/prefix/")
    assert service.base_url == "http://127.0.0.1:8000/prefix" and service.environment == "custom"
    assert service.token.url == "http://127.0.0.1:8000/prefix" + TOKEN_PATHS["snap"]
    mixed = resolve_service("https://gw.example", token_url="payment-stage")
    assert mixed.token.url == VENDOR["payment-stage"] and mixed.base_url == "https://gw.example"
    override = resolve_service("payment-stage", token_url="https://tok.example/v1.0/access-token/b2b")
    assert override.base_url == "https://api-stage.ifortepay.id" and override.token.host == "tok.example"
    assert resolve_service(override) is override
    assert isinstance(override, ServiceEndpoint)


@pytest.mark.parametrize(
    "target", ["http://api.example", "ftp://x.example", "https://x.example/?a=1", "no-such-env", ""]
)
def test_unusable_service_targets(target):
    with pytest.raises(ConfigError) as info:
        resolve_service(target)
    assert info.value.hint


@pytest.mark.parametrize("path", ["v1.0/x", "//evil.example/x", "", None])
def test_service_paths_start_with_one_slash(path):
    with pytest.raises(ConfigError):
        resolve_service("payment-stage").url_for(path)  # type: ignore[arg-type]
