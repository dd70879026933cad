"""The OpenAPI 3.1 description of the sandbox, written by hand in this one place.

It documents what the sandbox does, which is what a strict SNAP provider does: the three token
routes, the token-validation route, every answer's SNAP body and its two response headers.
"""

from __future__ import annotations

from typing import Any

from ..endpoints import TOKEN_PATHS
from .checks import MAX_MESSAGE
from .config import SandboxConfig

__all__ = ["openapi_document"]

_PRODUCT_TITLES = {
    "payment": "Ifortepay Payment",
    "disbursement": "Senmo Disbursement",
    "snap": "plain SNAP standard path",
}

_RESPONSE_HEADERS = {
    "X-TIMESTAMP": {
        "description": "The sandbox's time when it answered, yyyy-MM-ddTHH:mm:ss+07:00.",
        "schema": {"type": "string"},
        "required": True,
    },
    "X-CLIENT-KEY": {
        "description": "The request's X-CLIENT-KEY, echoed (empty when none was sent).",
        "schema": {"type": "string"},
        "required": True,
    },
}


def _error(description: str, codes: list[str], extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description + " responseCode: " + ", ".join(codes) + ".",
        "headers": {**_RESPONSE_HEADERS, **(extra_headers or {})},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SnapError"}}},
    }


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    }


def openapi_document(config: SandboxConfig | None = None, base_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document for a sandbox with ``config``, served from ``base_url``."""
    config = config or SandboxConfig()
    lifetime = config.token_lifetime
    expires_in: dict[str, Any] = (
        {"type": "integer", "example": lifetime}
        if config.expires_in_as_number
        else {"type": "string", "pattern": "^[0-9]+$", "example": str(lifetime)}
    )
    window = "off" if config.freshness_seconds is None else f"±{config.freshness_seconds:g} s"
    token_operation = {
        "summary": "Access Token B2B (service 73)",
        "description": (
            "Checks, in order: body size, the four mandatory headers, Content-Type, X-TIMESTAMP format, "
            f"X-TIMESTAMP freshness ({window}), client key, signature (SHA256withRSA over "
            "client_key + '|' + X-TIMESTAMP), JSON body, grantType, additionalInfo. "
            + (
                "Strict mode: only the letter of the standard is accepted."
                if config.strict
                else 'Lenient mode: Z/-00:00 zones, fractional seconds, grant_type and additionalInfo "" are '
                "accepted and noted in the journal."
            )
        ),
        "parameters": [
            _header("Content-Type", "application/json", "application/json"),
            _header(
                "X-TIMESTAMP", "Client's local time, yyyy-MM-ddTHH:mm:ssTZD.", "2020-12-18T10:55:00+07:00"
            ),
            _header("X-CLIENT-KEY", "The client id given at registration.", "MCP00000001"),
            _header(
                "X-SIGNATURE",
                "base64(SHA256withRSA(private key, client_key + '|' + X-TIMESTAMP)).",
                "PKiS0Gh2OLs+ibZaL9oWbYAAFRjMjJiS0MCmMbmFImoI...==",
            ),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}},
        },
        "responses": {
            "200": {
                "description": "A token was issued. responseCode: 2007300.",
                "headers": _RESPONSE_HEADERS,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}},
            },
            "400": _error(
                "Missing or invalid field, unreadable or oversized body.", ["4007300", "4007301", "4007302"]
            ),
            "401": _error("Stale timestamp, unknown client or bad signature.", ["4017300"]),
            "405": _error("Not POST.", ["4057300"], {"Allow": {"schema": {"type": "string"}}}),
            "429": _error(
                "Injected fault: throttled.",
                ["4297300"],
                {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
            ),
            "500": _error("Injected fault (or a sandbox bug: 5007301).", ["5007300", "5007301"]),
            "503": _error("Injected fault; 5037300 is not in the SNAP table.", ["5037300"]),
            "504": _error("Injected fault.", ["5047300"]),
        },
    }
    paths: dict[str, Any] = {}
    for product, path in TOKEN_PATHS.items():
        operation = dict(token_operation)
        operation["summary"] = f"Access Token B2B: {_PRODUCT_TITLES.get(product, product)}"
        operation["operationId"] = f"accessTokenB2B_{product}"
        operation["tags"] = ["access token"]
        paths[path] = {"post": operation}

    validate = {
        "summary": "Is this sandbox token valid now?",
        "description": "Send the token as 'Authorization: Bearer <token>'.",
        "tags": ["sandbox"],
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "example": "Bearer eyJhbGciOiJIUzUxMiJ9...",
            }
        ],
        "responses": {
            "200": {
                "description": "Valid. responseCode: 2007300; the claims are in additionalInfo.",
                "headers": _RESPONSE_HEADERS,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenInfo"}}},
            },
            "401": _error(
                "Invalid or expired (4017301), or no token sent (4017303).", ["4017301", "4017303"]
            ),
        },
    }
    paths["/sandbox/v1.0/token/validate"] = {
        "get": {**validate, "operationId": "validateTokenGet"},
        "post": {**validate, "operationId": "validateTokenPost"},
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document.",
            "operationId": "openapi",
            "tags": ["sandbox"],
            "responses": {"200": {"description": "The OpenAPI document.", "headers": _RESPONSE_HEADERS}},
        }
    }

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "snapbook SNAP sandbox",
            "version": "1.0",
            "description": (
                "A local, strict, well-documented SNAP (Bank Indonesia) B2B access-token provider. "
                "Every answer is SNAP JSON with X-TIMESTAMP and X-CLIENT-KEY headers; the HTTP status "
                "is the first three digits of responseCode. Unknown paths: 404 4047300 (no standard code)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {
                "TokenRequest": {
                    "type": "object",
                    "required": ["grantType"],
                    "properties": {
                        "grantType": {"type": "string", "enum": ["client_credentials"]},
                        "additionalInfo": {"type": "object"},
                    },
                    "example": {"grantType": "client_credentials", "additionalInfo": {}},
                },
                "TokenResponse": {
                    "type": "object",
                    "required": ["responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn"],
                    "properties": {
                        "responseCode": {"type": "string", "const": "2007300"},
                        "responseMessage": {"type": "string", "example": "Successful"},
                        "accessToken": {
                            "type": "string",
                            "maxLength": 2048,
                            "description": "An HS512 JWT: sub (client key), iat, exp, jti, iss.",
                        },
                        "tokenType": {"type": "string", "const": "Bearer"},
                        "expiresIn": expires_in,
                    },
                },
                "SnapError": {
                    "type": "object",
                    "required": ["responseCode", "responseMessage"],
                    "properties": {
                        "responseCode": {"type": "string", "pattern": "^[0-9]{7}$"},
                        "responseMessage": {"type": "string", "maxLength": MAX_MESSAGE},
                    },
                },
                "TokenInfo": {
                    "type": "object",
                    "required": ["responseCode", "responseMessage", "additionalInfo"],
                    "properties": {
                        "responseCode": {"type": "string", "const": "2007300"},
                        "responseMessage": {"type": "string"},
                        "additionalInfo": {
                            "type": "object",
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
            }
        },
    }
    if base_url:
        doc["servers"] = [{"url": base_url, "description": "this sandbox"}]
    return doc
