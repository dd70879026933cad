"""The OpenAPI 3.1 description of the sandbox, written by hand in this one place.

It is a contract tools consume, so it is exact for the sandbox's configuration: every route
(the token routes, any ``route_prefixes`` copies, token validation, this document), every
header with the pattern the checks accept, every body, every status each route can answer
with its responseCodes, and the response headers. A request the schema allows is never
answered 400; ``tests/test_openapi_fuzz.py`` keeps it so with schemathesis.
"""

from __future__ import annotations

from typing import Any

from ..endpoints import TOKEN_PATHS
from ..examples import load_vendor_example
from .checks import MAX_MESSAGE
from .config import SandboxConfig

__all__ = ["openapi_document", "timestamp_pattern"]

_PRODUCT_TITLES = {
    "payment": "Ifortepay Payment",
    "disbursement": "Senmo Disbursement",
    "snap": "plain SNAP standard path",
}

# X-TIMESTAMP grammar, piece by piece, so that every string the pattern allows is a real instant
# (no 30 February, no hour 24) and the sandbox never answers a schema-valid timestamp with 400.
_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_MONTH_DAY = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_OFFSET_HOURS = "(?:[01][0-9]|2[0-3])"


def timestamp_pattern(profile: str) -> str:
    """The X-TIMESTAMP pattern a sandbox accepts: profile ``snap`` (strict), ``lenient`` or ``ifortepay``."""
    if profile == "ifortepay":
        return f"^{_DATE}T{_TIME}\\+07:00$"
    if profile == "snap":  # -00:00 is RFC 3339's "unknown offset": lenient only
        negative = "-(?:(?:0[1-9]|1[0-9]|2[0-3]):[0-5][0-9]|00:(?:0[1-9]|[1-5][0-9]))"
        return f"^{_DATE}T{_TIME}(?:\\.[0-9]{{3}})?(?:Z|\\+{_OFFSET_HOURS}:[0-5][0-9]|{negative})$"
    return f"^{_DATE}[T ]{_TIME}(?:\\.[0-9]{{1,9}})?(?:Z|[+-]{_OFFSET_HOURS}:?[0-5][0-9])$"


# Printable ASCII without surrounding spaces: what survives a header and the sandbox's strip().
_HEADER_TEXT = "^[!-~](?:[ -~]*[!-~])?$"

_RESPONSE_HEADERS = {
    "X-TIMESTAMP": {
        "description": "The sandbox's time when it answered, yyyy-MM-ddTHH:mm:ss+07:00.",
        "schema": {"type": "string", "pattern": timestamp_pattern("ifortepay")},
        "required": True,
    },
    "X-CLIENT-KEY": {
        "description": "The request's X-CLIENT-KEY, echoed (empty when none was sent).",
        "schema": {"type": "string"},
        "required": True,
    },
}


def _snap_error(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["responseCode", "responseMessage"],
        "properties": {
            "responseCode": {"type": "string", "enum": codes},
            "responseMessage": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE},
        },
    }


def _error(description: str, codes: list[str], extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description + " responseCode: " + ", ".join(codes) + ".",
        "headers": {**_RESPONSE_HEADERS, **(extra_headers or {})},
        "content": {"application/json": {"schema": _snap_error(codes)}},
    }


def _header(name: str, description: str, example: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "pattern": pattern},
        "example": example,
    }


def _token_request_schema(strict: bool) -> dict[str, Any]:
    info: dict[str, Any] = (
        {"type": "object"}
        if strict
        else {
            "anyOf": [{"type": "object"}, {"type": "null"}, {"const": ""}],
            "description": 'An object; lenient mode also accepts "" and null (noted in the journal).',
        }
    )
    return {
        "type": "object",
        "required": ["grantType"],
        "properties": {
            "grantType": {"type": "string", "const": "client_credentials"},
            "additionalInfo": info,
        },
        "description": "Other fields are ignored (and noted)."
        + ("" if strict else " Lenient mode also reads grant_type / granttype when grantType is absent."),
        "example": {"grantType": "client_credentials", "additionalInfo": {}},
    }


def _token_operation(config: SandboxConfig) -> dict[str, Any]:
    window = "off" if config.freshness_seconds is None else f"±{config.freshness_seconds:g} s"
    example = load_vendor_example()
    faults = "Only with fault injection (snapbook sandbox --rate-...)."
    mode = (
        "Strict mode: X-TIMESTAMP in the SNAP form yyyy-MM-ddTHH:mm:ss(.SSS)TZD (TZD = Z, +hh:mm or -hh:mm), "
        'grantType spelled so, additionalInfo an object; anything else is refused.'
        if config.strict
        else "Lenient mode (the default): the SNAP form, plus -00:00, +hhmm, a space for T and a fraction of "
        'other than three digits in X-TIMESTAMP, grant_type/granttype and additionalInfo "" or null, each '
        "accepted and noted in the journal; --strict refuses them."
    )
    return {
        "description": (
            "Checks, in order: body size (at most "
            f"{config.max_body_bytes} bytes), the mandatory headers (Content-Type: application/json, "
            "X-TIMESTAMP, X-CLIENT-KEY, X-SIGNATURE), X-TIMESTAMP format, X-TIMESTAMP freshness "
            f"({window}, snapbook's default window: the standard names none), client key, signature "
            "(SHA256withRSA over client_key + '|' + X-TIMESTAMP), JSON body, grantType, additionalInfo. "
            + mode
        ),
        "parameters": [
            _header(
                "X-TIMESTAMP",
                "Client's local time, yyyy-MM-ddTHH:mm:ss(.SSS)TZD; the string signed, byte for byte.",
                example.timestamp,
                timestamp_pattern("snap" if config.strict else "lenient"),
            ),
            _header("X-CLIENT-KEY", "The client id given at registration.", example.client_key, _HEADER_TEXT),
            _header(
                "X-SIGNATURE",
                "base64(SHA256withRSA(private key, client_key + '|' + X-TIMESTAMP)). The example is the "
                "vendor page's example key signing its example client key and timestamp; it verifies.",
                example.signature,
                "^[A-Za-z0-9+/]+={0,2}$",
            ),
        ],
        "requestBody": {
            "required": True,
            "description": "Sent with Content-Type: application/json (any charset parameter).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}},
        },
        "responses": {
            "200": {
                "description": "A token was issued. responseCode: 2007300.",
                "headers": _RESPONSE_HEADERS,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}},
            },
            "400": _error(
                "Missing or invalid header or field, unreadable or oversized body.",
                ["4007300", "4007301", "4007302"],
            ),
            "401": _error("Stale timestamp, unknown client or bad signature.", ["4017300"]),
            "429": _error(
                "Throttled. " + faults,
                ["4297300"],
                {
                    "Retry-After": {
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        "description": "Seconds to wait.",
                        "required": True,
                    }
                },
            ),
            "500": _error(
                "5007300: injected general error (" + faults + ") 5007301: a sandbox bug.",
                ["5007300", "5007301"],
            ),
            "503": _error(
                "Service unavailable; 5037300 is a sandbox code (no 503 row in SNAP). " + faults, ["5037300"]
            ),
            "504": _error("Timeout. " + faults, ["5047300"]),
        },
    }


def openapi_document(config: SandboxConfig | None = None, base_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document for a sandbox with ``config``, served from ``base_url``."""
    config = config or SandboxConfig()
    lifetime = config.token_lifetime
    expires_in: dict[str, Any] = (
        {"type": "integer", "const": lifetime}
        if config.expires_in_as_number
        else {"type": "string", "const": str(lifetime)}
    )
    paths: dict[str, Any] = {}
    operation = _token_operation(config)
    for path, product in config.token_paths().items():
        prefix = path[: -len(TOKEN_PATHS[product])]
        title = _PRODUCT_TITLES.get(product, product)
        suffix = "".join(c if c.isalnum() else "_" for c in prefix).strip("_")
        paths[path] = {
            "post": {
                **operation,
                "summary": f"Access Token B2B (service 73): {title}"
                + (f", under route prefix {prefix} (for SDKs that hard-code it)" if prefix else ""),
                "operationId": f"accessTokenB2B_{product}" + (f"_{suffix}" if suffix else ""),
                "tags": ["access token"],
            }
        }

    validate = {
        "summary": "Is this sandbox token valid now? (a sandbox route, not SNAP)",
        "description": "Send the token as 'Authorization: Bearer <token>'.",
        "tags": ["sandbox"],
        "security": [{"bearer": []}],
        "responses": {
            "200": {
                "description": "Valid. responseCode: 2007300; the claims are in additionalInfo.",
                "headers": _RESPONSE_HEADERS,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenInfo"}}},
            },
            "401": _error(
                "Invalid or expired, or not 'Bearer <token>' (4017301), or no token sent (4017303).",
                ["4017301", "4017303"],
            ),
        },
    }
    from .openapi_services import service_paths, service_schemas

    paths.update(service_paths(config, _error, _RESPONSE_HEADERS, timestamp_pattern("snap")))
    paths["/sandbox/v1.0/token/validate"] = {
        "get": {**validate, "operationId": "validateTokenGet"},
        "post": {**validate, "operationId": "validateTokenPost"},
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document.",
            "operationId": "openapi",
            "tags": ["sandbox"],
            "responses": {
                "200": {
                    "description": "The OpenAPI document.",
                    "headers": _RESPONSE_HEADERS,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["openapi", "info", "paths"]}
                        }
                    },
                }
            },
        }
    }

    mode = "strict" if config.strict else "lenient (the default)"
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"snapbook SNAP sandbox ({'strict' if config.strict else 'lenient'})",
            "version": "1.0",
            "description": (
                f"A local SNAP (Bank Indonesia) B2B access-token provider, {mode} mode. Lenient accepts "
                "the SNAP forms plus what real clients also send (-00:00, +hhmm, a space for T, long "
                'fractions, grant_type, additionalInfo "") and notes each; strict (--strict) refuses '
                "those. Every answer is SNAP JSON with X-TIMESTAMP and X-CLIENT-KEY headers; the HTTP "
                "status is the first three digits of responseCode. On any path: an unknown path is "
                "404 4047300 'Not Found. [Unknown path]' (a sandbox code: the standard's 404xx00 is "
                "'Invalid Transaction Status'); a method a route does not serve is 405 4057300 "
                "'Requested Function Is Not Supported' with an Allow header; a request that is not "
                "HTTP/1.1 is 400 4007300. Service routes (QRIS generate 47 and query 51, Senmo balance "
                "inquiry 11) follow the token and the service signature; another service path under "
                "/v1.x/ or /api/v1.x/ is 404 404SS00 'Not Found. [Not served by this sandbox]' (SS its "
                "service code, 00 when unknown) with additionalInfo.served listing what is served."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token this sandbox issued."}
            },
            "schemas": {
                **service_schemas(),
                "TokenRequest": _token_request_schema(config.strict),
                "TokenResponse": {
                    "type": "object",
                    "required": ["responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn"],
                    "properties": {
                        "responseCode": {"type": "string", "const": "2007300"},
                        "responseMessage": {"type": "string", "const": "Successful"},
                        "accessToken": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 2048,
                            "description": "The standard's accessToken is opaque (String(2048)); this "
                            "sandbox, like Ifortepay, issues an HS512 JWT: sub (client key), iat, exp, jti, "
                            "iss (snapbook-sandbox).",
                        },
                        "tokenType": {"type": "string", "const": "Bearer"},
                        "expiresIn": expires_in,
                    },
                },
                "TokenInfo": {
                    "type": "object",
                    "required": ["responseCode", "responseMessage", "additionalInfo"],
                    "properties": {
                        "responseCode": {"type": "string", "const": "2007300"},
                        "responseMessage": {"type": "string", "const": "Successful"},
                        "additionalInfo": {
                            "type": "object",
                            "required": ["clientKey", "jti", "iat", "exp", "expiresIn"],
                            "properties": {
                                "clientKey": {"type": "string"},
                                "jti": {"type": "string"},
                                "iat": {"type": "integer"},
                                "exp": {"type": "integer"},
                                "expiresIn": {"type": "integer", "description": "Seconds left."},
                            },
                        },
                    },
                },
            },
        },
    }
    if base_url:
        doc["servers"] = [{"url": base_url, "description": "this sandbox"}]
    return doc
