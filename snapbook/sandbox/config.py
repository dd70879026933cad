"""How the sandbox behaves: freshness window, token lifetime, strictness, limits, clock, faults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import ConfigError
from ..signing import Clock, system_clock
from .faults import Faults

__all__ = ["DEFAULT_MAX_BODY_BYTES", "SandboxConfig"]

#: A token request body is about 60 bytes; 16 KiB leaves room for any additionalInfo.
DEFAULT_MAX_BODY_BYTES = 16 * 1024
#: Upper bounds: beyond them a value is a typo, and some (a lifetime past year 9999) would break.
MAX_BODY_BYTES_LIMIT = 16 * 1024 * 1024
MAX_SECONDS = 366 * 24 * 3600
MAX_CONNECTIONS_LIMIT = 65_536


def _seconds(name: str, value: object, *, upper: float, hint: str) -> None:
    """Refuse anything but a number of seconds in (0, upper]; nan and inf fail the comparison."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= upper:
        raise ConfigError(
            f"{name} must be a number of seconds above 0, at most {upper:g}, not {value!r}.", hint=hint
        )


# A route prefix: one or more "/segment" of URL-safe characters, no trailing slash.
_ROUTE_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True)
class SandboxConfig:
    """The sandbox's settings; the defaults are lenient, like many SNAP providers in practice.

    - ``freshness_seconds``: how far X-TIMESTAMP may be from the sandbox clock, either way
      (``None`` turns the check off). 300 s is snapbook's default: the standard names no window.
    - ``token_lifetime``: seconds a token lives; sent as ``expiresIn``.
    - ``strict``: reject what real clients send outside the letter of the standard (``-00:00``,
      ``+0700``, a space for ``T``, a fraction of other than three digits, ``grant_type``,
      ``additionalInfo: ""``) instead of accepting it with a note. ``Z``, ``+hh:mm``/``-hh:mm``
      and ``.SSS`` are the standard's own forms: both modes accept them.
    - ``expires_in_as_number``: send ``expiresIn`` as a JSON number (900) instead of the
      standard string ("900").
    - ``max_body_bytes``: larger request bodies are refused (400, 4007300).
    - ``secret``: the HS512 key tokens are signed with; random per sandbox when ``None``, so
      tokens from one sandbox are invalid in another.
    - ``clock``: a callable returning an aware datetime (the system clock when ``None``);
      freeze it for exact ``iat``/``exp`` in tests.
    - ``faults``: what to get wrong on purpose (:class:`Faults`).
    - ``route_prefixes``: the token routes are also served under each prefix, for SDKs that
      hard-code their provider's path (``("/openapi",)`` serves ``/openapi/v1.0/access-token/b2b``).
    - ``request_timeout``: seconds a client has, from the first byte of a request, to send all
      of it (headers and body); a slower one is disconnected (nginx's client_header_timeout),
      within one sweep after it (a server checks its connections every tenth of
      ``request_timeout``, 0.05 s to 1 s).
    - ``keep_alive_timeout``: seconds a connection may sit idle, before its first request or
      between two; then it is closed.
    - ``max_connections``: open connections at most; beyond it, the oldest one that has not sent
      a whole request yet is closed to make room (or the new one, when none is idle). Also kept
      below the process's file-descriptor limit.
    - ``allow_remote_callbacks``: deliver QRIS notifications to hosts other than loopback. Off by
      default, so a sandbox never posts signed payloads across the network by accident.
    - ``notify_timeout``: seconds one notification attempt may take, connection to answer.
    - ``notify_retries``: further attempts after the first until the receiver answers HTTP 200.
    - ``notify_backoff``: seconds before the first retry, doubled before each next one.
    """

    freshness_seconds: float | None = 300
    token_lifetime: int = 900
    strict: bool = False
    expires_in_as_number: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    secret: bytes | str | None = field(default=None, repr=False)
    clock: Clock | None = field(default=None, repr=False)
    faults: Faults = field(default_factory=Faults)
    route_prefixes: tuple[str, ...] = ()
    request_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 512
    allow_remote_callbacks: bool = False
    notify_timeout: float = 5.0
    notify_retries: int = 3
    notify_backoff: float = 0.5

    def __post_init__(self) -> None:
        prefixes = self.route_prefixes
        if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
            raise ConfigError(
                f"route_prefixes must be a sequence of path prefixes, not {prefixes!r}.",
                hint='For example route_prefixes=("/openapi",).',
            )
        cleaned = tuple(dict.fromkeys(p.rstrip("/") for p in prefixes))
        for prefix in cleaned:
            if not _ROUTE_PREFIX.fullmatch(prefix):
                raise ConfigError(
                    f"route prefix {prefix!r} is not a path prefix like /openapi.",
                    hint="Start with '/', use letters, digits and . _ ~ - between slashes, no trailing '/'.",
                )
            if any(segment in (".", "..") for segment in prefix.split("/")):
                # Clients resolve dot segments before sending (RFC 3986 5.2.4), so no request
                # could ever reach a route served under such a prefix.
                raise ConfigError(
                    f"route prefix {prefix!r} has a '.' or '..' segment, which no client sends "
                    "(they resolve dot segments first), so its routes would be unreachable.",
                    hint="Name real path segments, e.g. /openapi or /gateway/snap.",
                )
        object.__setattr__(self, "route_prefixes", cleaned)
        f = self.freshness_seconds
        if f is not None and (
            isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= MAX_SECONDS
        ):
            raise ConfigError(
                f"freshness_seconds must be a positive number of seconds (at most {MAX_SECONDS}) or None, "
                f"not {f!r}.",
                hint="300 (five minutes either way) is snapbook's default (SNAP names no window); "
                "None turns the check off.",
            )
        t = self.token_lifetime
        if isinstance(t, bool) or not isinstance(t, int) or not 0 < t <= MAX_SECONDS:
            raise ConfigError(
                f"token_lifetime must be a whole number of seconds from 1 to {MAX_SECONDS}, not {t!r}.",
                hint="SNAP tokens usually live 900 seconds (15 minutes).",
            )
        m = self.max_body_bytes
        if isinstance(m, bool) or not isinstance(m, int) or not 64 <= m <= MAX_BODY_BYTES_LIMIT:
            raise ConfigError(
                f"max_body_bytes must be a whole number from 64 to {MAX_BODY_BYTES_LIMIT}, not {m!r}.",
                hint="A token request body is about 60 bytes; the default is 16384.",
            )
        _seconds(
            "request_timeout", self.request_timeout, upper=3600, hint="10 s is plenty for a token request."
        )
        _seconds(
            "keep_alive_timeout", self.keep_alive_timeout, upper=3600, hint="5 s is what uvicorn uses."
        )
        c = self.max_connections
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_CONNECTIONS_LIMIT:
            raise ConfigError(
                f"max_connections must be a whole number from 1 to {MAX_CONNECTIONS_LIMIT}, not {c!r}.",
                hint="The default 512 stays well below the usual limit of 1024 open files.",
            )
        if self.secret is not None and not (isinstance(self.secret, (bytes, str)) and len(self.secret) >= 32):
            raise ConfigError(
                "secret must be a str or bytes of at least 32 characters (or None for a random one).",
                hint="HS512 wants a long random key: secrets.token_bytes(64).",
            )
        if self.clock is not None and not callable(self.clock):
            raise ConfigError(
                "clock must be a callable returning an aware datetime.",
                hint="For a frozen clock: clock=lambda: datetime(2026, 1, 1, 10, 0, tzinfo=JAKARTA).",
            )
        if not isinstance(self.allow_remote_callbacks, bool):
            raise ConfigError(
                f"allow_remote_callbacks must be True or False, not {self.allow_remote_callbacks!r}.",
                hint="Leave it False unless the callback receiver runs on another machine.",
            )
        _seconds("notify_timeout", self.notify_timeout, upper=300, hint="5 s is plenty for a local receiver.")
        _seconds("notify_backoff", self.notify_backoff, upper=60, hint="0.5 s, doubled before each retry.")
        r = self.notify_retries
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= 10:
            raise ConfigError(
                f"notify_retries must be a whole number from 0 to 10, not {r!r}.",
                hint="Ifortepay retries a notification up to 3 times (the default).",
            )
        if not isinstance(self.faults, Faults):
            raise ConfigError("faults must be a snapbook.sandbox.Faults.", hint="faults=Faults(rate_429=0.1)")

    def token_paths(self) -> dict[str, str]:
        """Every path a token route answers on -> its product: the products' paths, then each prefixed."""
        from ..endpoints import TOKEN_PATHS

        paths = {path: product for product, path in TOKEN_PATHS.items()}
        for prefix in self.route_prefixes:
            for product, path in TOKEN_PATHS.items():
                paths.setdefault(prefix + path, product)
        return paths

    def now(self) -> datetime:
        """The sandbox's current time, from ``clock``; always aware."""
        value = (self.clock or system_clock)()
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(
                "The sandbox clock returned something other than an aware datetime.",
                hint="Return e.g. datetime.now(timezone.utc) from the clock callable.",
            )
        return value
