"""Where to ask for a token: the vendor's URL table, a local sandbox, or any URL.

One name means the same thing in the library, the CLI (``--env payment-stage``) and the
widgets. :func:`resolve` turns a name, a URL or an :class:`Endpoint` into an
:class:`Endpoint`; nothing here touches the network.

| name | URL |
|---|---|
| ``payment-stage`` | https://kronos-stage.ifortepay.id/auth/merchants/v1.0/access-token/b2b |
| ``payment-production`` | https://kronos.ifortepay.id/auth/merchants/v1.0/access-token/b2b |
| ``disbursement-stage`` | https://api-stage.senmo.id/api/v1.0/access-token/b2b |
| ``disbursement-production`` | https://api.senmo.id/api/v1.0/access-token/b2b |
| ``sandbox`` (``sandbox-payment``, ``sandbox-disbursement``, ``sandbox-snap``) | a local :mod:`snapbook.sandbox` |

The ``sandbox`` names point at ``$SNAPBOOK_SANDBOX_URL`` when it is set, else at
``http://127.0.0.1:8765``, where ``snapbook sandbox`` listens by default.

The vendor's curl examples still show the older ``kronos-stage.mcpayment.id`` host; the table
above is the current one.

Service calls (QRIS, VA, Senmo disbursement) go to other hosts than Ifortepay's token
(:func:`resolve_service`, the same names):

| name | service calls | B2B token |
|---|---|---|
| ``payment-stage`` | https://api-stage.ifortepay.id | kronos-stage (above) |
| ``payment-production`` | https://api.ifortepay.id | kronos (above) |
| ``disbursement-stage`` | https://api-stage.senmo.id | the same host, ``/api/v1.0/access-token/b2b`` |
| ``disbursement-production`` | https://api.senmo.id | the same host, ``/api/v1.0/access-token/b2b`` |
| ``sandbox`` names | the sandbox's base URL | the sandbox's token route |
| a base URL | that URL | ``token_url``, else the base URL + ``/v1.0/access-token/b2b`` |
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_SANDBOX_URL",
    "ENDPOINTS",
    "SANDBOX_URL_ENV",
    "SERVICE_HOSTS",
    "TOKEN_PATHS",
    "Endpoint",
    "ServiceEndpoint",
    "check_url",
    "custom",
    "names",
    "resolve",
    "resolve_endpoint",
    "resolve_service",
    "sandbox",
]

Product = Literal["payment", "disbursement", "snap", "custom"]
Environment = Literal["stage", "production", "sandbox", "custom"]

#: The token path of each product; ``snap`` is the plain standard path.
TOKEN_PATHS: dict[str, str] = {
    "payment": "/auth/merchants/v1.0/access-token/b2b",
    "disbursement": "/api/v1.0/access-token/b2b",
    "snap": "/v1.0/access-token/b2b",
}

#: Where ``snapbook sandbox`` listens by default, and so where the ``sandbox`` names point.
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
#: The environment variable that points the ``sandbox`` names at another sandbox.
SANDBOX_URL_ENV = "SNAPBOOK_SANDBOX_URL"

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class Endpoint:
    """A token endpoint: a name, the product and environment it belongs to, and its full URL."""

    name: str
    product: str
    environment: str
    url: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_local(self) -> bool:
        return self.host in _LOOPBACK

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def _repr_html_(self) -> str:
        import html

        return (
            f"<b>{html.escape(self.name)}</b>: {html.escape(self.product)}, {html.escape(self.environment)}, "
            f"<code>POST {html.escape(self.url)}</code>"
        )


def _vendor(product: str, environment: str, host: str) -> Endpoint:
    return Endpoint(f"{product}-{environment}", product, environment, f"https://{host}{TOKEN_PATHS[product]}")


#: The vendor's table: Ifortepay Payment (kronos) and Senmo Disbursement, stage and production.
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        _vendor("payment", "stage", "kronos-stage.ifortepay.id"),
        _vendor("payment", "production", "kronos.ifortepay.id"),
        _vendor("disbursement", "stage", "api-stage.senmo.id"),
        _vendor("disbursement", "production", "api.senmo.id"),
    )
}

_SANDBOX_NAMES = {"sandbox": "payment", **{f"sandbox-{p}": p for p in TOKEN_PATHS}}
_ALIASES = {"prod": "production", "staging": "stage", "stg": "stage"}


def names() -> list[str]:
    """Every endpoint name :func:`resolve` accepts (``sandbox*`` ones point at a local sandbox)."""
    return [*ENDPOINTS, *_SANDBOX_NAMES]


def _normalize_name(name: str) -> str:
    parts = name.strip().lower().replace("_", "-").split("-")
    return "-".join(_ALIASES.get(p, p) for p in parts)


def check_url(url: str, *, allow_http: bool = False) -> str:
    """``url`` if it is an absolute http(s) URL; plain http only to loopback unless ``allow_http``."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "The endpoint URL is empty.", hint="Give a full URL such as https://host/v1.0/access-token/b2b."
        )
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{url!r} is not an absolute http(s) URL.",
            hint="Give the full token URL, scheme and host included, e.g. https://kronos-stage.ifortepay.id"
            + TOKEN_PATHS["payment"]
            + ", or an endpoint name: "
            + ", ".join(names())
            + ".",
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK and not allow_http:
        raise ConfigError(
            f"{url!r} uses plain http to a non-local host: the token would travel unencrypted.",
            hint="Use https; plain http is only for a sandbox on 127.0.0.1 (or pass allow_http=True knowingly).",
        )
    return url


def custom(
    url: str, *, name: str = "custom", product: str | None = None, allow_http: bool = False
) -> Endpoint:
    """An :class:`Endpoint` for any full token URL; the product is read from the path when it is a known one."""
    url = check_url(url, allow_http=allow_http)
    if product is None:
        path = urlsplit(url).path.rstrip("/")
        product = next((p for p, tail in TOKEN_PATHS.items() if path.endswith(tail)), "custom")
    return Endpoint(name, product, "custom", url)


def sandbox(base_url: str, product: str = "payment") -> Endpoint:
    """The token endpoint of a running :mod:`snapbook.sandbox` at ``base_url`` for ``product``.

    A ``base_url`` that already ends in ``access-token/b2b`` is used as it is.
    """
    if product not in TOKEN_PATHS:
        raise ConfigError(
            f"Unknown sandbox product {product!r}.", hint="Use one of: " + ", ".join(TOKEN_PATHS) + "."
        )
    base = check_url(base_url).rstrip("/")
    url = base if base.endswith("/access-token/b2b") else base + TOKEN_PATHS[product]
    return Endpoint("sandbox" if product == "payment" else f"sandbox-{product}", product, "sandbox", url)


def resolve(
    target: str | Endpoint,
    *,
    sandbox_url: str | None = None,
    allow_http: bool = False,
) -> Endpoint:
    """An :class:`Endpoint` from a name (``payment-stage``), a full URL, or an Endpoint (returned as is).

    Names are case-insensitive; ``prod``/``staging`` and ``_`` for ``-`` are accepted. The
    ``sandbox`` names use ``sandbox_url`` (the base URL of a running sandbox), else
    ``$SNAPBOOK_SANDBOX_URL``, else :data:`DEFAULT_SANDBOX_URL` (``snapbook sandbox``'s address).
    """
    if isinstance(target, Endpoint):
        return target
    if not isinstance(target, str):
        raise ConfigError(
            f"An endpoint must be a name, a URL or an Endpoint, not {type(target).__name__}.",
            hint="Use one of: " + ", ".join(names()) + ", or a full https URL.",
        )
    if "://" in target:
        return custom(target, allow_http=allow_http)
    key = _normalize_name(target)
    if key in ENDPOINTS:
        return ENDPOINTS[key]
    if key in _SANDBOX_NAMES:
        if sandbox_url:
            return sandbox(sandbox_url, _SANDBOX_NAMES[key])
        from_env = os.environ.get(SANDBOX_URL_ENV, "").strip()
        if not from_env:
            return sandbox(DEFAULT_SANDBOX_URL, _SANDBOX_NAMES[key])
        try:
            return sandbox(from_env, _SANDBOX_NAMES[key])
        except ConfigError as exc:
            raise ConfigError(
                f"{SANDBOX_URL_ENV} is set to an unusable sandbox URL: {exc.message}",
                hint=f"Use the address 'snapbook sandbox' prints "
                f"(export {SANDBOX_URL_ENV}=http://127.0.0.1:PORT), or unset it for {DEFAULT_SANDBOX_URL}.",
            ) from None
    close = difflib.get_close_matches(key, names(), n=1)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Unknown endpoint {target!r}.{suggestion}",
        hint="Use one of: " + ", ".join(names()) + ", or a full https URL.",
    )


#: :func:`resolve` under the name the package root exports.
resolve_endpoint = resolve


# --- service calls ----------------------------------------------------------------------

#: Where each vendor endpoint name sends its service calls (scheme and host; paths are the call's).
SERVICE_HOSTS: dict[str, str] = {
    "payment-stage": "https://api-stage.ifortepay.id",
    "payment-production": "https://api.ifortepay.id",
    "disbursement-stage": "https://api-stage.senmo.id",
    "disbursement-production": "https://api.senmo.id",
}


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where service calls go (``base_url``) and where their B2B token comes from (``token``).

    Ifortepay's token lives on ``kronos*`` while its services live on ``api*``; Senmo serves both
    from one host. :meth:`endpoint_for` gives the :class:`Endpoint` of one call (what a log row names).
    """

    name: str
    product: str
    environment: str
    base_url: str
    token: Endpoint

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` (``/v1.0/qr/qr-mpm-generate``, query included) on this host."""
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            raise ConfigError(
                f"The service path {path!r:.80} must start with a single '/'.",
                hint="Give the path as the provider documents it, e.g. /v1.0/qr/qr-mpm-generate or "
                "/api/v1.0/balance-inquiry.",
            )
        return self.base_url + path

    def endpoint_for(self, path: str) -> Endpoint:
        return Endpoint(self.name, self.product, self.environment, self.url_for(path))

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url}, token from {self.token.url})"


def _base(url: str, allow_http: bool) -> str:
    url = check_url(url, allow_http=allow_http)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigError(
            f"The service base URL {url!r:.120} has a query or a fragment.",
            hint="Give scheme, host and any path prefix only (https://api-stage.ifortepay.id); the path goes with each call.",
        )
    return url.rstrip("/")


def resolve_service(
    target: str | ServiceEndpoint,
    *,
    token_url: str | None = None,
    sandbox_url: str | None = None,
    allow_http: bool = False,
) -> ServiceEndpoint:
    """A :class:`ServiceEndpoint` from a name (``payment-stage``, ``sandbox``) or a base URL.

    ``token_url`` overrides where the token comes from (a name or a full token URL). For a base URL
    without ``token_url`` the token is asked at the base URL + the standard's ``/v1.0/access-token/b2b``.
    """
    if isinstance(target, ServiceEndpoint):
        if token_url is None:
            return target
        token = resolve(token_url, sandbox_url=sandbox_url, allow_http=allow_http)
        return ServiceEndpoint(target.name, target.product, target.environment, target.base_url, token)
    if not isinstance(target, str):
        raise ConfigError(
            f"A service endpoint must be a name or a base URL, not {type(target).__name__}.",
            hint="Use one of: " + ", ".join(names()) + ", or a base URL such as https://api-stage.ifortepay.id.",
        )
    if "://" in target:
        base = _base(target, allow_http)
        token = (
            resolve(token_url, sandbox_url=sandbox_url, allow_http=allow_http)
            if token_url
            else custom(base + TOKEN_PATHS["snap"], allow_http=allow_http)
        )
        return ServiceEndpoint("custom", token.product if token_url else "custom", "custom", base, token)
    named = resolve(target, sandbox_url=sandbox_url, allow_http=allow_http)  # the name's checks and hints
    if named.environment == "sandbox":
        tail = TOKEN_PATHS[named.product]
        parts = urlsplit(named.url)
        base = named.url[: -len(tail)] if named.url.endswith(tail) else f"{parts.scheme}://{parts.netloc}"
    else:
        base = SERVICE_HOSTS[named.name]
    token = resolve(token_url, sandbox_url=sandbox_url, allow_http=allow_http) if token_url else named
    return ServiceEndpoint(named.name, named.product, named.environment, base, token)
