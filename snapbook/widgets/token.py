"""The token form: request a B2B access token and show the answer, its claims and its time left."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import keys as _keys
from .. import signing as _signing
from ..errors import PassphraseError as _PassphraseError
from ..errors import SnapbookError
from ..masking import mask, mask_url
from .base import _AUTO, _DESC, _WIDE, Notice, _Form, _held_passphrase, _Table, notice_for

if TYPE_CHECKING:
    from .keys import KeyForm


def _default_client(endpoint: Any, client_key: str, private_key: rsa.RSAPrivateKey, **options: Any) -> Any:
    from ..client import TokenClient

    return TokenClient(endpoint, client_key, private_key, **options)


def _default_inspect(token: str, **options: Any) -> Any:
    from ..tokens import inspect_token

    return inspect_token(token, **options)


def _environments() -> list[str]:
    from ..endpoints import ENDPOINTS

    return ["sandbox", *ENDPOINTS]


class TokenForm(_Form):
    """Environment, client key and private key in; a "Request token" button; the answer out.

    Shows the response (token masked), the token's decoded claims and the time it has left.
    A refusal shows its responseCode, meaning and hint; a failure to connect says so: never a
    traceback. The key comes from ``private_key=``, a :class:`KeyForm` (``key_form=``) or the
    key file typed in the form. ``sandbox`` (a running :class:`~snapbook.sandbox.Sandbox` or
    its base URL) is where the ``sandbox`` environment points. Every attempt is appended to
    ``log`` (a :class:`~snapbook.log.RequestLog`, kept as ``form.request_log``), which a
    :class:`LogView` can show.
    """

    def __init__(
        self,
        *,
        environment: str = "sandbox",
        environments: Sequence[str] | None = None,
        client_key: str = "",
        private_key: rsa.RSAPrivateKey | None = None,
        key_form: KeyForm | None = None,
        key_path: str = "",
        sandbox: Any = None,
        log: Any = None,
        clock: _signing.Clock | None = None,
        make_client: Callable[..., Any] = _default_client,
        inspect: Callable[..., Any] | None = _default_inspect,
        token_secret: str | bytes | None = None,
        client_options: dict[str, Any] | None = None,
        on_done: Callable[[], Any] | None = None,
    ) -> None:
        if log is None:
            from ..log import RequestLog

            log = RequestLog()
        self.request_log = log
        self._key = private_key
        self._key_form = key_form
        self._sandbox = sandbox
        self._clock = clock
        self._make_client, self._inspect, self._secret = make_client, inspect, token_secret
        self._client_options = dict(client_options or {})
        self._on_done = on_done
        #: The last token received (an AccessToken), or None.
        self.token: Any = None
        #: The last error shown, or None.
        self.error: BaseException | None = None
        options = list(environments) if environments is not None else _environments()
        if environment not in options:
            options.insert(0, environment)
        self.environment = W.Dropdown(options=options, value=environment, description="Environment",
                                      style=_DESC, layout=_WIDE)
        self.client_key = W.Text(value=client_key, description="X-CLIENT-KEY", placeholder="e.g. MCP00000001",
                                 style=_DESC, layout=_WIDE)
        self.key_path = W.Text(value=key_path, description="Private key file",
                               placeholder="empty: use the key given to the form" if (private_key or key_form) else "path/to/private.pem",
                               style=_DESC, layout=_WIDE)
        self.passphrase = W.Password(description="Passphrase", placeholder="if the key file is encrypted",
                                     style=_DESC, layout=_WIDE)
        self._passphrase_held = _held_passphrase(self.passphrase)
        self.request_button = W.Button(description="Request token", button_style="primary", icon="paper-plane",
                                        layout=_AUTO)
        self.request_button.on_click(lambda _: self.request())
        super().__init__([self.environment, self.client_key, self.key_path, self.passphrase, self.request_button])

    def __repr__(self) -> str:
        token = "none" if self.token is None else mask(self.token.access_token)
        return f"TokenForm(environment={self.environment.value!r}, client_key={self.client_key.value!r}, token={token!r})"

    # -- what the request is made of --

    def _private_key(self) -> rsa.RSAPrivateKey | None:
        path = self.key_path.value.strip()
        if path:
            try:
                return _keys.read_private_key(Path(path).expanduser(), self._passphrase_held.take())
            except _PassphraseError:
                self._passphrase_held.forget()  # a wrong one is not worth keeping
                raise
        if self._key_form is not None and self._key_form.key is not None:
            return self._key_form.key
        return self._key

    def _endpoint(self) -> Any:
        from ..endpoints import resolve

        name = self.environment.value
        sandbox_url = None
        if name.startswith("sandbox"):
            sb = self._sandbox
            if sb is None:
                from ..errors import ConfigError

                raise ConfigError(
                    "The sandbox environment needs a running sandbox, and this form was given none.",
                    hint="Start one (sb = Sandbox().start()) and pass TokenForm(sandbox=sb).",
                )
            sandbox_url = sb if isinstance(sb, str) else sb.base_url
        return resolve(name, sandbox_url=sandbox_url)

    # -- the action --

    def request(self) -> Any:
        """Do what the button does: request a token and show the result; returns the token or None."""
        self.request_button.disabled = True
        try:
            self._show(Notice("info", "Requesting a token…"))
            return self._guard(self._request)
        finally:
            self.request_button.disabled = False
            if self._on_done is not None:
                self._guard_quiet(self._on_done)

    def _guard_quiet(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception:
            pass

    def _guard(self, action: Callable[[], Any]) -> Any:
        self.error = None
        try:
            return action()
        except Exception as exc:
            self.error = exc
            self.token = None
            self._show(*self._failure(exc))
            return None

    def _failure(self, exc: BaseException) -> list[Any]:
        return [notice_for(exc)]

    def _request(self) -> Any:
        client_key = self.client_key.value.strip()
        if not client_key:
            self._show(Notice("warn", "No client key.", hint="Type the X-CLIENT-KEY (client_id) Ifortepay gave you."))
            return None
        key = self._private_key()
        if key is None:
            self._show(Notice("warn", "No private key.",
                              hint="Type the path of your private key file, or load a key in the key form."))
            return None
        endpoint = self._endpoint()
        options = {"log": self.request_log, **self._client_options}
        if self._clock is not None:
            options["clock"] = self._clock
        client = self._make_client(endpoint, client_key, key, **options)
        try:
            token = client.request_token()
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self.token = token
        self._show(*self._success(endpoint, token))
        return token

    def _success(self, endpoint: Any, token: Any) -> list[Any]:
        code = token.response_code or "(no responseCode)"
        title = f"{code} {token.response_message or ''}".strip()
        shown: list[Any] = [
            Notice("ok", title, (f"from {endpoint.name}: POST {mask_url(endpoint.url)}",)),
            _Table("Response body (accessToken masked)", token.response_json().items()),
        ]
        now = (self._clock or _signing.system_clock)()
        remaining = int(token.remaining(now).total_seconds())
        shown.append(Notice(
            "info", f"Time left: {remaining} s (until {token.expires_at.astimezone(_signing.JAKARTA).isoformat()})",
            (f"Authorization: {token.scheme} {token.masked}",),
            "Reuse the token until shortly before it expires (TokenClient.get_token caches it); "
            "a new token per call is a common cause of 429 Too Many Requests.",
        ))
        if self._inspect is not None:
            options: dict[str, Any] = {}
            if self._clock is not None:
                options["clock"] = self._clock
            if self._secret is not None and endpoint.environment == "sandbox":  # only the sandbox shares its secret
                options["secret"] = self._secret
            try:
                shown.append(self._inspect(token.access_token, **options))
            except SnapbookError as exc:  # not a JWT: still a usable token, just opaque
                shown.append(Notice("info", "The token is not a JWT, so it has no readable claims.",
                                    (exc.message,)))
        for note in token.notes:
            shown.append(Notice("warn", f"Non-standard answer: {note}."))
        return shown
