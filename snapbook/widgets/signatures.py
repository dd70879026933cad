"""The signature forms: the token's asymmetric X-SIGNATURE and the service calls' symmetric one.

Both show each signing step from the inputs; they live together because a reader comparing the
two signatures of SNAP compares these two forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import service_signing as _service_signing
from .. import signing as _signing
from ..errors import SnapbookError
from ..masking import mask, printable
from .base import (
    _AUTO,
    _DESC,
    _WIDE,
    Notice,
    _Form,
    _held_client_secret,
    _held_signature,
    _held_token,
    _Table,
    notice_for,
)

if TYPE_CHECKING:
    from .keys import KeyForm
    from .token import TokenForm


class SignatureForm(_Form):
    """Client key and timestamp in, each signing step out, recomputed as the inputs change.

    The private key comes from ``private_key=`` or follows a :class:`KeyForm` (``key_form=``).
    "Now" reads ``clock``; pass a fixed one to freeze it. An optional X-SIGNATURE from another
    SDK is compared with the one computed here (and verified with ``public_key`` if given).
    """

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | None = None,
        *,
        key_form: KeyForm | None = None,
        client_key: str = "",
        timestamp: str | None = None,
        public_key: rsa.RSAPublicKey | None = None,
        clock: _signing.Clock = _signing.system_clock,
        explain: Callable[..., Any] = _signing.explain_signature,
        make_timestamp: Callable[..., str] = _signing.make_timestamp,
        check_timestamp: Callable[[str], Any] = _signing.parse_timestamp,
        verify: Callable[..., bool] = _signing.verify,
    ) -> None:
        self._explain, self._make_timestamp, self._check_timestamp = explain, make_timestamp, check_timestamp
        self._verify, self._clock = verify, clock
        self._key = private_key
        self._public_key = public_key
        self.steps: Any = None
        self.client_key = W.Text(value=client_key, description="X-CLIENT-KEY", style=_DESC, layout=_WIDE,
                                 continuous_update=True)
        self.timestamp = W.Text(
            value=timestamp if timestamp is not None else make_timestamp(clock),
            description="X-TIMESTAMP", style=_DESC, layout=_WIDE, continuous_update=True,
        )
        self.now_button = W.Button(description="Now", icon="clock-o", tooltip="Set the timestamp to the current time (+07:00)")
        self.compare = W.Password(description="Compare with", placeholder="optional: an X-SIGNATURE from another SDK",
                                  style=_DESC, layout=_WIDE)
        self._compare_held = _held_signature(self.compare)
        for w in (self.client_key, self.timestamp):
            w.observe(lambda _: self.refresh(), names="value")
        self.compare.observe(self._on_compare, names="value")
        self.now_button.on_click(lambda _: self._guard(self._on_now))
        if key_form is not None:
            key_form.observe(self._on_key_form, names="key")
            if key_form.key is not None:
                self._key = key_form.key
        super().__init__([self.client_key, W.HBox([self.timestamp, self.now_button]), self.compare])
        self.refresh()

    def __repr__(self) -> str:
        return f"SignatureForm(client_key={self.client_key.value!r}, timestamp={self.timestamp.value!r})"

    @property
    def private_key(self) -> rsa.RSAPrivateKey | None:
        return self._key

    @private_key.setter
    def private_key(self, key: rsa.RSAPrivateKey | None) -> None:
        self._key = key
        self.refresh()

    def _on_key_form(self, change: dict[str, Any]) -> None:
        self.private_key = change["new"]

    def _on_now(self) -> None:
        self.timestamp.value = self._make_timestamp(self._clock)

    def _on_compare(self, change: dict[str, Any]) -> None:
        if change["new"]:  # not the field being emptied below
            self._compare_held.take()
            self.refresh()

    @property
    def compared_signature(self) -> str | None:
        """The X-SIGNATURE pasted to compare (kept here, not in the widget's state), or None."""
        return self._compare_held.value

    @compared_signature.setter
    def compared_signature(self, value: str | None) -> None:
        if value:
            self.compare.value = value  # read, held and cleared like a paste
        else:
            self._compare_held.forget()
            self.refresh()

    def refresh(self) -> None:
        """Recompute every step from the current inputs."""
        self._guard(self._refresh)

    def _refresh(self) -> None:
        self.steps = None
        if self._key is None:
            self._show(Notice("warn", "No private key yet.", hint="Generate or load one in the key form above."))
            return
        notices: list[Any] = []
        try:
            parsed = self._check_timestamp(self.timestamp.value)
        except SnapbookError as exc:
            self._show(notice_for(exc))
            return
        for note in getattr(parsed, "notes", ()):
            notices.append(Notice("warn", f"Non-standard X-TIMESTAMP: {note}.",
                                  hint="Strict providers reject it; send yyyy-MM-ddTHH:mm:ss+07:00."))
        steps = self._explain(self._key, self.client_key.value, self.timestamp.value)
        self.steps = steps
        compare = self._compare_held.value
        if compare:
            notices.append(self._comparison(steps, compare))
        self._show(steps, *notices)

    def _comparison(self, steps: Any, other: str) -> Notice:
        if other == steps.signature:
            return Notice("ok", f"The X-SIGNATURE to compare ({mask(other)}) is the one computed here.")
        details = [f"computed: {mask(steps.signature)}", f"given:    {mask(other)}"]
        if self._public_key is not None:
            try:
                details.append(f"verifies with the public key: {self._verify(self._public_key, steps.string_to_sign, other)}")
            except SnapbookError as exc:  # not base64, wrong length: say so next to the steps
                details.append(f"cannot be verified: {exc.message}")
        return Notice(
            "error", "The X-SIGNATURE to compare differs from the one computed here.", tuple(details),
            "PKCS#1 v1.5 signatures are deterministic: a different value means another key, another "
            "client key or timestamp, or another string to sign (snapbook.doctor.diagnose says which).",
        )


# --- service-call signatures (after the token) -------------------------------------------------


def _escaped(notice: Notice) -> Notice:
    """``notice`` with control characters escaped: its text may quote what was typed or pasted."""
    return Notice(notice.level, printable(notice.title), tuple(printable(d) for d in notice.details),
                  printable(notice.hint))


#: The methods offered; the library upper-cases and checks whatever it is given.
SERVICE_METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")


class ServiceSignatureForm(_Form):
    """Method, path, body, client secret and access token in; each step of the symmetric X-SIGNATURE out.

    The signature of every call after the token (QRIS, Virtual Account, Senmo): "Sign" runs
    :func:`snapbook.service_signing.explain_service_signature` and shows each step with the token,
    the secret and the signature masked. The client secret comes from ``client_secret=`` or the
    password field, which is emptied as soon as it is read (the value stays in the kernel only).
    The access token is one pasted into the token field (it wins once pasted), else the last token
    a :class:`TokenForm` received (``token_form=``), else ``token=`` (an
    :class:`~snapbook.client.AccessToken` or the token string). "Now" reads ``clock``; pass a fixed
    one to freeze it. The full values of the last signing are in :attr:`steps`, never in a widget.
    """

    def __init__(
        self,
        *,
        method: str = "POST",
        path: str = "",
        body: str = "",
        client_secret: str | None = None,
        token: Any = None,
        token_form: TokenForm | None = None,
        timestamp: str | None = None,
        include_query: bool = True,
        clock: _signing.Clock = _signing.system_clock,
        explain: Callable[..., Any] = _service_signing.explain_service_signature,
        make_timestamp: Callable[..., str] = _signing.make_timestamp,
    ) -> None:
        self._explain, self._make_timestamp, self._clock = explain, make_timestamp, clock
        self._token_form = token_form
        self._given_token = token
        #: The last signing's steps (:class:`~snapbook.service_signing.ServiceSignatureSteps`), or None.
        self.steps: Any = None
        options = list(SERVICE_METHODS) if method in SERVICE_METHODS else [method, *SERVICE_METHODS]
        self.method = W.Dropdown(options=options, value=method, description="METHOD", style=_DESC,
                                 layout=_WIDE)
        self.path = W.Text(value=path, description="EndpointUrl", style=_DESC, layout=_WIDE,
                           placeholder="the relative path as sent, e.g. /api/v1.0/balance-inquiry")
        self.include_query = W.Checkbox(
            value=include_query, indent=False,
            description="sign the query string too (SNAP's rule; untick if the provider signs the path only)",
        )
        self.body = W.Textarea(value=body, description="Body (as sent)", style=_DESC,
                               placeholder="the exact JSON bytes you send; empty: no body",
                               layout=W.Layout(width="36em", height="8em"))
        self.client_secret = W.Password(description="Client secret", style=_DESC, layout=_WIDE,
                                        placeholder="the secret registered with Ifortepay",
                                        continuous_update=False)
        self._secret_held = _held_client_secret(self.client_secret)
        if client_secret:
            self._secret_held.hold(client_secret)  # never through the field: its value syncs to the browser
        self.token = W.Password(description="Access token", style=_DESC, layout=_WIDE,
                                placeholder="optional: a token without 'Bearer ' (else the token form's)",
                                continuous_update=False)
        self._token_held = _held_token(self.token)
        for field in (self.client_secret, self.token):
            # Take a secret as soon as it arrives (Enter or leaving the field), not only on "Sign":
            # widget state saved before a click must not hold it either.
            field.observe(self._on_secret_typed, names="value")
        self.timestamp = W.Text(
            value=timestamp if timestamp is not None else make_timestamp(clock),
            description="X-TIMESTAMP", style=_DESC, layout=_WIDE,
        )
        self.now_button = W.Button(description="Now", icon="clock-o",
                                   tooltip="Set the timestamp to the current time (+07:00)")
        self.now_button.on_click(lambda _: self._guard(self._on_now))
        self.sign_button = W.Button(description="Sign", icon="pencil", button_style="primary", layout=_AUTO)
        self.sign_button.on_click(lambda _: self.sign())
        super().__init__([
            self.method, self.path, self.include_query, self.body, self.client_secret, self.token,
            W.HBox([self.timestamp, self.now_button]), self.sign_button,
        ])

    def __repr__(self) -> str:
        signature = "none" if self.steps is None else mask(self.steps.signature)
        path = printable(self.path.value, 80)
        return f"ServiceSignatureForm(method={self.method.value!r}, path={path!r}, signature={signature!r})"

    @property
    def signature(self) -> str | None:
        """The last X-SIGNATURE made (full value, kernel only), or None."""
        return None if self.steps is None else self.steps.signature

    def _on_secret_typed(self, change: dict[str, Any]) -> None:
        if change["new"]:  # not the field being emptied by take()
            (self._secret_held if change["owner"] is self.client_secret else self._token_held).take()

    def _on_now(self) -> None:
        self.timestamp.value = self._make_timestamp(self._clock)

    def _access_token(self) -> str | None:
        typed = self._token_held.take()
        if typed:
            return typed
        for source in (getattr(self._token_form, "token", None), self._given_token):
            if source is not None:
                return source if isinstance(source, str) else source.access_token
        return None

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:
            self.steps = None
            self._show(_escaped(notice_for(exc)))
            return None

    def sign(self) -> Any:
        """Do what "Sign" does: sign the inputs and show each step; returns the steps or None."""
        return self._guard(self._sign)

    def _sign(self) -> Any:
        self.steps = None
        secret = self._secret_held.take()
        if not secret:
            self._show(Notice(
                "warn", "No client secret.",
                hint="Type the client secret registered with Ifortepay (stage and production differ).",
            ))
            return None
        token = self._access_token()
        if not token:
            self._show(Notice("warn", "No access token.",
                              hint="Request one in the token form, or paste one into the token field."))
            return None
        steps = self._explain(
            method=self.method.value, path=self.path.value, body=self.body.value or None,
            timestamp=self.timestamp.value, access_token=token, client_secret=secret,
            include_query=self.include_query.value,
        )
        self.steps = steps
        self._show(
            _Table("The service signature, step by step (token, secret and signature masked)",
                   [(name, printable(value)) for name, value in steps.rows()]),
            Notice("ok", f"X-SIGNATURE: {mask(steps.signature)}",
                   (f"Authorization: Bearer {mask(token)}", f"X-TIMESTAMP: {steps.timestamp}"),
                   "Send exactly the body of step 3 and this X-TIMESTAMP: the provider hashes the bytes it "
                   "receives and signs with the header's timestamp."),
        )
        return steps
