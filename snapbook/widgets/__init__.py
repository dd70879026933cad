"""Forms for JupyterLab: keys, signatures, tokens and the request log, thin over the library.

Each form is an ipywidgets container that displays itself; the work is done by the library
functions it is given (``generate=``, ``explain=``, ``make_client=``, ...), so the forms hold no
business logic and tests can drive them without a browser: set ``.value`` on the inputs, call
``.click()`` on the buttons and read ``form.output.outputs``.

Secrets stay out of sight: passphrases, pasted keys and signatures go in password fields, and
every secret field is emptied as soon as its value is read, so the widget state that "Save
Widget State" or an HTML export writes into a file never holds one (the value is kept in the
kernel's memory only, for the next click). Everything the forms display masks signatures and
tokens (:func:`snapbook.masking.mask`). Errors are shown in the form with what they mean and
what to do, never as a traceback.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
import traitlets
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import keys as _keys
from .. import service_signing as _service_signing
from .. import signing as _signing
from ..errors import PassphraseError as _PassphraseError
from ..errors import SnapbookError, SnapResponseError
from ..masking import mask, mask_url, printable

__all__ = [
    "DoctorForm",
    "KeyForm",
    "LogView",
    "Notice",
    "PaymentForm",
    "ServiceSignatureForm",
    "SignatureForm",
    "TokenForm",
    "notice_for",
    "save_key_pair",
]


# --- how messages look ------------------------------------------------------------------

_COLORS = {"ok": "#1a7f37", "info": "#0969da", "warn": "#9a6700", "error": "#cf222e"}
_ICONS = {"ok": "✔", "info": "ℹ", "warn": "⚠", "error": "✖"}


@dataclass(frozen=True)
class Notice:
    """A message shown in a form: a level, a title, detail lines and a hint. Never a traceback."""

    level: str
    title: str
    details: tuple[str, ...] = ()
    hint: str = ""

    def __post_init__(self) -> None:
        # Titles and details often carry server text: escape control characters once, for every view.
        object.__setattr__(self, "title", printable(self.title))
        object.__setattr__(self, "details", tuple(printable(d) for d in self.details))
        object.__setattr__(self, "hint", printable(self.hint))

    def __repr__(self) -> str:
        lines = [f"{_ICONS.get(self.level, '')} {self.title}".strip()]
        lines += [f"  {d}" for d in self.details]
        if self.hint:
            lines.append(f"  Hint: {self.hint}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = _COLORS.get(self.level, "#57606a")
        parts = [f"<div style='border-left:4px solid {color};padding:2px 8px;margin:4px 0'>"]
        parts.append(f"<b style='color:{color}'>{_ICONS.get(self.level, '')} {html.escape(self.title)}</b>")
        for d in self.details:
            parts.append(f"<div>{html.escape(d)}</div>")
        if self.hint:
            parts.append(f"<div><i>Hint:</i> {html.escape(self.hint)}</div>")
        parts.append("</div>")
        return "".join(parts)


def notice_for(exc: BaseException) -> Notice:
    """How a form shows an error: what happened, what it means and what to do about it."""
    if isinstance(exc, SnapResponseError):
        code = exc.response_code or "no responseCode"
        title = f"Refused: {code}"
        if exc.response_message:
            title += f" {exc.response_message}"
        details: list[str] = []
        if exc.http_status is not None:
            details.append(f"HTTP status {exc.http_status}")
        if exc.meaning:
            details.append(f"Meaning: {exc.meaning}")
        if exc.response_code is None and exc.message:
            details.append(exc.message)  # no code to explain it: the message says what came back
        return Notice("error", title, tuple(details), exc.hint)
    if isinstance(exc, SnapbookError):
        return Notice("error", type(exc).__name__, (exc.message,), exc.hint)
    # Not ours: still no traceback, but say it is unexpected so it gets reported.
    return Notice(
        "error",
        f"Unexpected {type(exc).__name__}",
        (str(exc),) if str(exc) else (),
        "This is a snapbook bug or an environment problem; please report it with the steps that led here.",
    )


def _label(text: str) -> W.HTML:
    return W.HTML(f"<b>{html.escape(text)}</b>")


_WIDE = W.Layout(width="36em")
_AUTO = W.Layout(width="max-content")  # buttons as wide as their label
_DESC = {"description_width": "10em"}


class _Form(W.VBox):
    """Shared plumbing: one Output area, replaced as a whole, written without ``with out:``."""

    def __init__(self, children: Sequence[W.Widget], **kwargs: Any) -> None:
        self.output = W.Output()
        super().__init__([*children, self.output], **kwargs)

    def _show(self, *objects: Any) -> None:
        """Replace what the output area shows, in one update (no half-drawn results in the browser).

        Outputs are built as nbformat dicts, like ``Output.append_display_data`` does, not with
        ``with out:``, so nbval and headless tests see them too.
        """
        from IPython.core.interactiveshell import InteractiveShell

        fmt = InteractiveShell.instance().display_formatter.format
        outputs: list[dict[str, Any]] = []
        for obj in objects:
            if isinstance(obj, str):
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": obj if obj.endswith("\n") else obj + "\n"})
            else:
                data, metadata = fmt(obj)
                outputs.append({"output_type": "display_data", "data": data, "metadata": metadata})
        self.output.outputs = tuple(outputs)

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:
            self._show(notice_for(exc))
            return None

    @property
    def text(self) -> str:
        """Everything the output area shows, as plain text (for tests and quick checks)."""
        chunks = []
        for o in self.output.outputs:
            if o.get("output_type") == "stream":
                chunks.append(o.get("text", ""))
            else:
                chunks.append(str(o.get("data", {}).get("text/plain", "")))
        return "\n".join(chunks)


# --- keys -----------------------------------------------------------------------------


def save_key_pair(
    key: rsa.RSAPrivateKey, directory: str | os.PathLike[str], passphrase: str | None = None, *, overwrite: bool = False
) -> list[Path]:
    """Write ``private.pem`` (0600, encrypted when a passphrase is given) and ``public.pem``, both or neither."""
    return list(_keys.save_key_pair(key, directory, passphrase or None, overwrite=overwrite))


class _HeldSecret:
    """A secret read from a password field and kept only in the kernel: the field is emptied at once.

    Widget state (``embed_data``, "Save Widget State", HTML exports) holds every synced value, so a
    secret left in a field ends up in files. The field shows ``placeholder`` instead, masked.
    """

    def __init__(self, field: W.Password, describe: Callable[[str], str], *, strip: bool) -> None:
        self.field, self._describe, self._empty_placeholder = field, describe, field.placeholder
        self._strip = strip  # a signature pasted with a newline is the same signature; a passphrase is exact
        self.value: str | None = None

    def take(self) -> str | None:
        """The field's value if one was typed (it becomes the held one), else the held one."""
        typed = self.field.value
        if typed:
            self.value = (typed.strip() if self._strip else typed) or None
            self.field.value = ""
            self.field.placeholder = self._describe(self.value) if self.value else self._empty_placeholder
        return self.value

    def forget(self) -> None:
        self.value = None
        self.field.placeholder = self._empty_placeholder

    def hold(self, value: str) -> None:
        """Hold a secret given from code, without ever putting it in the (synced) field."""
        self.value = value
        self.field.placeholder = self._describe(value)


def _held_passphrase(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda _: "(a passphrase is held in this session; type another to replace it)",
                       strip=False)


def _held_signature(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda sig: f"{mask(sig)} held; paste another to replace it", strip=True)


class KeyForm(_Form):
    """Generate an RSA-2048 key, or load one from a file, an upload or a paste.

    Shows the fingerprint and the public key PEM to send to Ifortepay, and saves the pair with
    safe permissions. The loaded key is ``form.key`` (observe the ``key`` trait to follow it).
    """

    key = traitlets.Any(None, allow_none=True)

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str] = "keys",
        generate: Callable[[], rsa.RSAPrivateKey] = _keys.generate_private_key,
        load: Callable[..., rsa.RSAPrivateKey] = _keys.load_private_key,
        describe: Callable[[Any], Any] = _keys.describe_key,
        save: Callable[..., Iterable[Path]] = save_key_pair,
    ) -> None:
        self._generate, self._load, self._describe, self._save = generate, load, describe, save
        self.generate_button = W.Button(description="Generate new key", icon="key", button_style="primary", layout=_AUTO)
        self.path = W.Text(placeholder="path/to/private.pem", description="Key file", style=_DESC, layout=_WIDE)
        self.load_button = W.Button(description="Load file")
        self.upload = W.FileUpload(accept=".pem,.der,.key,.p8,.txt", multiple=False, description="Upload key")
        self.paste = W.Password(
            placeholder="paste a PEM or base64 private key", description="Paste key", style=_DESC, layout=_WIDE
        )
        self.paste_button = W.Button(description="Load pasted")
        self.passphrase = W.Password(
            placeholder="optional", description="Passphrase", style=_DESC, layout=_WIDE,
            tooltip="Reads an encrypted key; encrypts the private key when saving.",
        )
        self.directory = W.Text(value=str(directory), description="Save to folder", style=_DESC, layout=_WIDE)
        self.overwrite = W.Checkbox(value=False, description="overwrite existing files", indent=False)
        self.save_button = W.Button(description="Save key pair", icon="save", disabled=True, layout=_AUTO)
        self._passphrase_held = _held_passphrase(self.passphrase)

        self.generate_button.on_click(lambda _: self._guard(self._on_generate))
        self.load_button.on_click(lambda _: self._guard(self._on_load_file))
        self.paste_button.on_click(lambda _: self._guard(self._on_paste))
        self.upload.observe(lambda _: self._guard(self._on_upload), names="value")
        self.save_button.on_click(lambda _: self._guard(self._on_save))

        super().__init__(
            [
                _label("1. Get a private key"),
                self.generate_button,
                W.HBox([self.path, self.load_button]),
                self.upload,
                W.HBox([self.paste, self.paste_button]),
                self.passphrase,
                _label("2. Save it (private.pem 0600, public.pem 0644)"),
                W.HBox([self.directory, self.overwrite]),
                self.save_button,
            ]
        )

    def __repr__(self) -> str:
        return f"KeyForm(fingerprint={self.fingerprint!r})"

    @property
    def fingerprint(self) -> str | None:
        return None if self.key is None else _keys.fingerprint(self.key)

    @property
    def public_key_pem(self) -> str | None:
        """The public key to send to Ifortepay, or None before a key is loaded."""
        return None if self.key is None else _keys.public_key_bytes(self.key).decode("ascii")

    def _passphrase(self) -> str | None:
        return self._passphrase_held.take()

    def _load_with_passphrase(self, data: Any) -> rsa.RSAPrivateKey:
        try:
            return self._load(data, self._passphrase())
        except _PassphraseError:
            self._passphrase_held.forget()  # a wrong one is not worth keeping
            raise

    def _use(self, key: rsa.RSAPrivateKey, source: str) -> None:
        self.key = key
        self.save_button.disabled = False
        self._show(
            Notice("ok", f"Private key {source}.", ("Keep it secret: it never leaves this machine.",)),
            self._describe(key),
            Notice(
                "info",
                "Send the public key above (public.pem) to Ifortepay, and keep the fingerprint to check "
                "later that the key you sign with is the one they have.",
            ),
        )

    def _on_generate(self) -> None:
        self._use(self._generate(), "generated (RSA-2048)")

    def _on_load_file(self) -> None:
        path = self.path.value.strip()
        if not path:
            self._show(Notice("warn", "No key file given.", hint="Type the path of your private key file."))
            return
        self._use(self._load_with_passphrase(_keys.read_key_file(path)), f"loaded from {path}")

    def _on_paste(self) -> None:
        text = self.paste.value
        if not text.strip():
            self._show(Notice("warn", "Nothing pasted.", hint="Paste the private key, BEGIN and END lines included."))
            return
        try:
            key = self._load_with_passphrase(text)
        finally:
            self.paste.value = ""  # never keep a pasted secret in the widget's state
        self._use(key, "loaded from the pasted text")

    def _on_upload(self) -> None:
        files = self.upload.value
        if not files:
            return
        item = files[0]
        try:
            key = self._load_with_passphrase(bytes(item["content"]))
        finally:
            self.upload.value = ()  # drop the uploaded bytes from the widget's state
        self._use(key, f"loaded from the upload {item.get('name', '')}".rstrip())

    def _on_save(self) -> None:
        if self.key is None:
            self._show(Notice("warn", "No key to save yet.", hint="Generate or load a key first."))
            return
        passphrase = self._passphrase()
        paths = list(self._save(self.key, self.directory.value, passphrase, overwrite=self.overwrite.value))
        details = [f"{p}  (mode {oct(p.stat().st_mode & 0o777)[2:]})" for p in paths]
        encrypted = "encrypted with the passphrase" if passphrase else "not encrypted (no passphrase)"
        self._show(
            Notice("ok", "Saved the key pair.", (*details, f"The private key is {encrypted}."),
                   "Send public.pem to Ifortepay; never commit or send private.pem."),
            self._describe(self.key),
        )


# --- signatures ---------------------------------------------------------------------------


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


def _held_client_secret(field: W.Password) -> _HeldSecret:
    # Exact, like a passphrase: the library refuses whitespace around a secret and says so.
    held = "(a client secret is held in this session; type another to replace it)"
    return _HeldSecret(field, lambda _: held, strip=False)


def _held_token(field: W.Password) -> _HeldSecret:
    return _HeldSecret(field, lambda tok: f"{mask(tok)} held; paste another to replace it", strip=True)


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


# --- the signature doctor ----------------------------------------------------------------


def _default_diagnose(*args: Any, **kwargs: Any) -> Any:
    from ..doctor import diagnose

    return diagnose(*args, **kwargs)


class DoctorForm(_Form):
    """Paste what was sent (client key, timestamp, X-SIGNATURE) and see exactly why it fails.

    The public key is the one registered with the provider: ``public_key=``, or the public half
    of a :class:`KeyForm`'s key (``key_form=``), or a PEM pasted into the form. The signature goes
    in a password field and is shown masked; the work is :func:`snapbook.doctor.diagnose`.
    """

    def __init__(
        self,
        public_key: rsa.RSAPublicKey | None = None,
        *,
        key_form: KeyForm | None = None,
        client_key: str = "",
        timestamp: str = "",
        diagnose: Callable[..., Any] = _default_diagnose,
    ) -> None:
        self._diagnose = diagnose
        self._public_key = public_key
        self._key_form = key_form
        self.diagnosis: Any = None
        self.public_pem = W.Textarea(placeholder="optional: the registered public key (PEM), if not given above",
                                     description="Public key", style=_DESC, layout=_WIDE)
        self.client_key = W.Text(value=client_key, description="X-CLIENT-KEY", style=_DESC, layout=_WIDE)
        self.timestamp = W.Text(value=timestamp, description="X-TIMESTAMP", style=_DESC, layout=_WIDE)
        self.signature = W.Password(description="X-SIGNATURE", placeholder="the header value as sent",
                                    style=_DESC, layout=_WIDE)
        self._signature_held = _held_signature(self.signature)
        self.button = W.Button(description="Diagnose", icon="stethoscope", button_style="primary", layout=_AUTO)
        self.button.on_click(lambda _: self._guard(self._run))
        super().__init__([self.public_pem, self.client_key, self.timestamp, self.signature, self.button])

    def __repr__(self) -> str:
        verdict = "none" if self.diagnosis is None else self.diagnosis.cause
        return f"DoctorForm(client_key={self.client_key.value!r}, timestamp={self.timestamp.value!r}, diagnosis={verdict!r})"

    def _public(self) -> rsa.RSAPublicKey | str | None:
        if self.public_pem.value.strip():
            return self.public_pem.value  # the doctor reads it (and accepts keys it must report as weak)
        if self._public_key is not None:
            return self._public_key
        if self._key_form is not None and self._key_form.key is not None:
            return self._key_form.key.public_key()
        return None

    def _run(self) -> None:
        self.diagnosis = None
        signature = self._signature_held.take()
        public_key = self._public()
        if public_key is None:
            self._show(Notice("warn", "No public key yet.",
                              hint="Paste the public key you registered, or load the key pair in the key form."))
            return
        if not signature:
            self._show(Notice("warn", "No X-SIGNATURE to diagnose.", hint="Paste the header value as it was sent."))
            return
        self.diagnosis = self._diagnose(public_key, self.client_key.value, self.timestamp.value, signature)
        self._show(self.diagnosis)


# --- tokens -------------------------------------------------------------------------------


def _default_client(endpoint: Any, client_key: str, private_key: rsa.RSAPrivateKey, **options: Any) -> Any:
    from ..client import TokenClient

    return TokenClient(endpoint, client_key, private_key, **options)


def _default_inspect(token: str, **options: Any) -> Any:
    from ..tokens import inspect_token

    return inspect_token(token, **options)


def _environments() -> list[str]:
    from ..endpoints import ENDPOINTS

    return ["sandbox", *ENDPOINTS]


class _Table:
    """(name, value) rows shown as an HTML table and as aligned text."""

    def __init__(self, title: str, rows: Iterable[tuple[str, Any]]) -> None:
        # Rows may be a server's JSON (field names included): control characters escaped.
        self.title, self.rows = title, [(printable(str(k)), printable(str(v))) for k, v in rows]

    def __repr__(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        return "\n".join([self.title, *(f"  {k:<{width}}  {v}" for k, v in self.rows)])

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'><code>"
            f"{html.escape(v)}</code></td></tr>"
            for k, v in self.rows
        )
        return f"<b>{html.escape(self.title)}</b><table>{body}</table>"


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


# --- the request log ------------------------------------------------------------------------


_LOG_COLUMNS = ("time", "environment", "attempt", "outcome", "http_status", "response_code", "latency_ms",
                "error_type")


def _figure_png(fig: Any) -> Any:
    """A matplotlib Figure as a PNG display object (works without a pyplot backend)."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return Image(data=buf.getvalue(), format="png")


class LogView(_Form):
    """The request log as a table, a summary and a latency plot, with Refresh and Export CSV.

    ``log`` is a :class:`~snapbook.log.RequestLog` (anything with ``to_dataframe()``,
    ``summary()`` and ``plot()``). Rows hold masked signatures and tokens only.
    """

    def __init__(self, log: Any, *, csv_path: str | os.PathLike[str] = "request-log.csv", last: int = 10,
                 plot: bool = True) -> None:
        self.request_log = log
        self._last = last
        self._plot = plot
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.csv_path = W.Text(value=str(csv_path), description="CSV file", style=_DESC, layout=_WIDE)
        self.export_button = W.Button(description="Export CSV", icon="download")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.export_button.on_click(lambda _: self._guard(self._export))
        super().__init__([W.HBox([self.refresh_button]), W.HBox([self.csv_path, self.export_button])])
        self.refresh()

    def __repr__(self) -> str:
        return f"LogView({len(self.request_log)} rows)"

    def refresh(self) -> None:
        """Redraw the table, the summary and the plot from the log as it is now."""
        self._guard(self._refresh)

    def _refresh(self) -> None:
        df = self.request_log.to_dataframe()
        if df.empty:
            self._show(Notice("info", "No requests logged yet.", hint="Request a token, then click Refresh."))
            return
        summary = self.request_log.summary()
        last = df[[c for c in _LOG_COLUMNS if c in df.columns]].tail(self._last).copy()
        if "time" in last:
            last["time"] = last["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
        shown: list[Any] = [
            Notice("info", f"{len(df)} attempts, {int((df['outcome'] == 'success').sum())} successful."),
            _Caption("Summary per environment (latency in ms)"),
            summary.round({c: (3 if c == "success_rate" else 1) for c in summary.columns if summary[c].dtype.kind == "f"}),
            _Caption(f"Last {min(self._last, len(df))} attempts"),
            last.round(1).astype(object).where(last.notna(), ""),
        ]
        if self._plot:
            shown.append(_figure_png(self.request_log.plot()))
        self._show(*shown)

    def _export(self) -> None:
        path = Path(self.csv_path.value).expanduser()
        df = self.request_log.to_dataframe()
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        self.refresh()
        self.output.append_display_data(
            Notice("ok", f"Exported {len(df)} rows to {path}.", ("Signatures and tokens are masked in the file.",))
        )


class _Caption:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(self.text)}</b>"


# --- the first payment ------------------------------------------------------------------------


def _html_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(printable(k, 80))}</th>"
        f"<td style='text-align:left'><code>{html.escape(printable(v, 200))}</code></td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def _status_html(text: str, colour: str) -> str:
    # The text comes first in the element (no icon before it): "Success…" is what a reader and a
    # browser test see at the start of .snapbook-payment-status.
    return f"<span style='color:{colour};font-weight:bold'>{html.escape(text)}</span>"


_STATUS_COLOURS = {"Success": _COLORS["ok"], "Initiated": _COLORS["info"], "Not found": _COLORS["warn"]}


class PaymentForm(_Form):
    """Amount, reference and validity in; a QRIS out, paid in the sandbox, and its verified notification.

    "Generate QR" sends qr-mpm-generate through ``client`` (a :class:`~snapbook.client.ServiceClient`,
    whose RequestLog gets every attempt) with ``callbackUrl`` = ``callback_url`` or the
    ``receiver``'s URL, and shows the QR code (inline SVG in ``.snapbook-qr``) with a summary.
    "Pay in the sandbox" (enabled with a ``sandbox`` and an open QR) pays it there and waits up to
    ``notification_timeout`` s for the notification; "Check status" sends qr-mpm-query. The status
    line (``.snapbook-payment-status``) reads "Initiated: waiting for payment" and turns to
    "Success…" when the receiver gets the *verified* notification of this QR; the verdict line
    says "verified" or why the notification was refused. The receiver calls back on its own
    thread: the form chains its ``on_notification`` and updates under a lock, whichever thread
    gets there first. No secret reaches a widget: the client holds them.
    """

    def __init__(
        self,
        client: Any,
        receiver: Any = None,
        *,
        sandbox: Any = None,
        callback_url: str | None = None,
        amount: str = "10000.00",
        reference: str | None = None,
        validity: int = 15,
        clock: _signing.Clock | None = None,
        new_reference: Callable[[], str] | None = None,
        notification_timeout: float = 10.0,
    ) -> None:
        import threading

        from .. import payment as _payment

        if receiver is None and not callback_url:
            from ..errors import ConfigError

            raise ConfigError(
                "The payment form needs a callback URL for the notification.",
                hint="Pass receiver=NotificationReceiver(secret).start(), or callback_url= the URL "
                "the provider should notify.",
            )
        validity = _payment.check_validity(validity)  # a typed error, not the bounded field's silent clamp
        self._payment = _payment
        self.client, self.receiver, self.sandbox = client, receiver, sandbox
        self.request_log = getattr(client, "log", None)
        self._callback_url = callback_url
        self._clock: _signing.Clock = clock or _signing.system_clock
        self._new_reference = new_reference or (lambda: _payment.new_partner_reference(self._clock))
        self._timeout = notification_timeout
        self._lock = threading.RLock()  # the receiver's thread and the kernel's both update the widgets
        #: The QR the form follows (:class:`~snapbook.payment.OpenQr`), or None before "Generate QR".
        self.open_qr: Any = None
        #: The verified notification of the open QR (a ReceivedNotification), or None.
        self.notification: Any = None
        #: The last error shown, or None.
        self.error: BaseException | None = None
        self._handled: list[Any] = []  # records already shown (the pay wait and the callback both see one)
        self._paid = False
        self._closed = False  # expired or unknown to the provider: nothing to pay any more
        self._pay_notice: Notice | None = None  # the last pay's delivery outcome, shown with the verdict
        self._verdict_shown: list[Any] = []  # what the last notification put in the output area

        wide = {"description_width": "12em"}  # "partnerReferenceNo" in full
        self.amount = W.Text(value=amount, description="Amount (IDR)", placeholder="10000.00",
                             style=wide, layout=_WIDE)
        self.reference = W.Text(value=reference or self._new_reference(), description="partnerReferenceNo",
                                placeholder="letters and digits, new for each QR", style=wide, layout=_WIDE)
        self.validity = W.BoundedIntText(value=validity, min=_payment.MIN_VALIDITY_MINUTES,
                                         max=_payment.MAX_VALIDITY_MINUTES, description="Valid (minutes)",
                                         style=wide, layout=W.Layout(width="18em"))
        self.generate_button = W.Button(description="Generate QR", icon="qrcode", button_style="primary",
                                        layout=_AUTO)
        self.pay_button = W.Button(description="Pay in the sandbox", icon="credit-card", disabled=True,
                                   layout=_AUTO,
                                   tooltip="The sandbox's own route: marks the QR paid and sends the notification")
        self.status_button = W.Button(description="Check status", icon="refresh", disabled=True, layout=_AUTO)
        self.status = W.HTML(_status_html("No QR yet: click Generate QR", "#57606a"))
        self.status.add_class("snapbook-payment-status")
        self.qr = W.HTML("")
        self.qr.add_class("snapbook-qr")
        self.verdict = W.HTML("")
        self.verdict.add_class("snapbook-payment-verdict")
        self.generate_button.on_click(lambda _: self.generate())
        self.pay_button.on_click(lambda _: self.pay())
        self.status_button.on_click(lambda _: self.check_status())
        if receiver is not None:
            previous = receiver.on_notification

            def chained(record: Any) -> None:
                try:
                    self._on_notification(record)
                finally:
                    if previous is not None:
                        previous(record)

            receiver.on_notification = chained
        super().__init__([
            self.amount, self.reference, self.validity,
            W.HBox([self.generate_button, self.pay_button, self.status_button]),
            self.status, self.qr, self.verdict,
        ])

    def __repr__(self) -> str:
        ref = "none" if self.open_qr is None else self.open_qr.reference_no
        return f"PaymentForm(referenceNo={ref!r}, status={self.status_text!r})"

    @property
    def status_text(self) -> str:
        """The status line as plain text ("Initiated: waiting for payment", "Success: …")."""
        return html.unescape(re.sub(r"<[^>]*>", "", self.status.value))

    @property
    def verdict_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]*>", "", self.verdict.value))

    @property
    def callback_url(self) -> str:
        return self._callback_url or self.receiver.url

    # -- state, always changed under the lock --

    def _set_status(self, text: str) -> None:
        colour = next((c for prefix, c in _STATUS_COLOURS.items() if text.startswith(prefix)), "#57606a")
        self.status.value = _status_html(text, colour)

    def _sync_buttons(self) -> None:
        is_open = self.open_qr is not None and not self._paid and not self._closed
        self.pay_button.disabled = not (self.sandbox is not None and is_open)
        self.status_button.disabled = self.open_qr is None

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self.error = exc
            self._show(notice_for(exc))

    # -- the actions (what the buttons do) --

    def generate(self) -> Any:
        """Send qr-mpm-generate with the form's inputs; show the QR. Returns the ServiceResponse or None."""
        self.error = None
        self.generate_button.disabled = True
        try:
            now = self._clock()
            body = self._payment.generate_body(self.amount.value, self.reference.value, self.callback_url,
                                               validity_minutes=self.validity.value, now=now)
            answer = self.client.post(self._payment.GENERATE_PATH, body)
            qr = self._payment.OpenQr.from_answer(answer.data, body, now=now)
            from ..qris import parse as parse_qris

            svg = parse_qris(qr.qr_content).image(scale=4).svg()
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            self._fail(exc)
            return None
        finally:
            self.generate_button.disabled = False
        with self._lock:
            self.open_qr, self.notification, self._paid, self._handled = qr, None, False, []
            self._closed = False
            self._pay_notice, self._verdict_shown = None, []
            self.qr.value = (
                "<div style='display:flex;gap:1.5em;align-items:center'>"
                f"<div>{svg}</div>{_html_table(qr.summary())}</div>"
            )
            self._set_status(self._payment.status_line("01"))
            self.verdict.value = "<i>No notification yet.</i>"
            self.reference.value = self._new_reference()  # the next QR gets a new one; typing an old one replays
            self._sync_buttons()
            self._show(
                Notice("ok", f"{answer.response_code} {answer.response_message or ''}".strip(),
                       (f"POST {answer.path}, X-EXTERNAL-ID {answer.external_id}",),
                       "Show the QR to the payer; the notification comes to "
                       f"{mask_url(self.callback_url)} when it is paid."),
                _Table("Response body", answer.response_json().items()),
            )
        return answer

    def pay(self) -> Any:
        """Pay the open QR in the sandbox, then wait for its notification. Returns the pay answer or None."""
        self.error = None
        qr = self.open_qr
        if self.sandbox is None or qr is None:
            with self._lock:
                self._show(Notice("warn", "Nothing to pay in the sandbox.",
                                  hint="Generate a QR first; outside the sandbox, pay it with a QRIS app."))
            return None
        self.pay_button.disabled = True
        try:
            answer = self.sandbox.pay(qr.reference_no)
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            with self._lock:
                if self.open_qr is qr and str(getattr(exc, "response_code", "") or "").startswith("404"):
                    self._closed = True  # expired, unknown or already paid: the button would only fail again
                self._sync_buttons()
            self._fail(exc)
            return None
        delivery = answer.get("notification") or {}
        attempts = delivery.get("attempts") or []
        shown = Notice(
            "ok" if delivery.get("delivered") else "warn",
            f"Paid in the sandbox: {answer.get('responseCode', '')} {answer.get('responseMessage', '')}".strip(),
            tuple(f"notification attempt {i}: HTTP {a.get('httpStatus')} {a.get('responseCode') or a.get('error') or ''}"
                  .rstrip() for i, a in enumerate(attempts, 1)),
            "" if delivery.get("delivered") else (
                "The receiver answered but refused the notification: see why below."
                if any(a.get("httpStatus") for a in attempts)
                else "The callback never answered: is the receiver running at the callbackUrl?"),
        )
        with self._lock:
            self._paid = True
            self._pay_notice = shown
            self._sync_buttons()
            self._show(shown, *self._verdict_shown)  # the callback's thread may have shown a verdict already
        record = None
        if self.receiver is not None:
            try:
                record = self.receiver.wait(self._timeout, predicate=lambda n: self._is_for(n, qr))
            except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
                self._fail(exc)
                return answer
            self._on_notification(record)  # the callback may not have run yet: same update, once
        return answer

    def check_status(self) -> Any:
        """Send qr-mpm-query for the open QR and show its latestTransactionStatus. Returns the answer or None."""
        self.error = None
        qr = self.open_qr
        if qr is None:
            with self._lock:
                self._show(Notice("warn", "No QR to check yet.", hint="Click Generate QR first."))
            return None
        try:
            answer = self.client.post(self._payment.QUERY_PATH,
                                      self._payment.query_body(qr.reference_no, qr.partner_reference_no))
        except Exception as exc:  # noqa: BLE001 - any failure is shown as a notice, never a traceback
            self._fail(exc)
            return None
        data = answer.data
        status = data.get("latestTransactionStatus")
        line = self._payment.status_line(status, data.get("transactionStatusDesc"), paid_time=data.get("paidTime"))
        with self._lock:
            if self.open_qr is qr:  # a new QR generated meanwhile keeps its own status
                # A payment never goes back to Initiated: after a verified notification (or a 00), an
                # older 01 answer, crossing it on the way, does not undo the Success line.
                stale = status == "01" and self._paid
                if status == "00":
                    self._paid = True
                elif status == "07":
                    self._closed = True
                notified_success = self.notification is not None and self.notification.latest_transaction_status == "00"
                if not stale and (status != "00" or not notified_success):  # keep the notification's time
                    self._set_status(line)
                self._sync_buttons()
            self._show(
                Notice("info", f"{answer.response_code} {answer.response_message or ''}: {line}".strip(),
                       (f"POST {answer.path}, X-EXTERNAL-ID {answer.external_id}",)),
                _Table("Response body", answer.response_json().items()),
            )
        return answer

    # -- the notification (called on the receiver's thread) --

    @staticmethod
    def _is_for(record: Any, qr: Any) -> bool:
        return qr is not None and record.original_reference_no == qr.reference_no

    def _on_notification(self, record: Any) -> None:
        """Show a notification of the open QR: Success when verified, the reason when refused. Thread-safe."""
        with self._lock:
            qr = self.open_qr
            if not self._is_for(record, qr) or any(r is record for r in self._handled):
                return  # another QR's (an older one), or already shown
            self._handled.append(record)
            if record.verified:
                if self._paid and self.notification is not None:
                    return  # a verified repeat after Success: the first one decided
                self.notification = record
                status = record.latest_transaction_status
                # Verified says who sent it, not that it was paid: only latestTransactionStatus 00 is Success.
                if status == "00":
                    self._paid = True
                    self._set_status("Success: paid, notification verified at "
                                     f"{record.time.astimezone(_signing.JAKARTA).isoformat()}")
                else:
                    self._set_status(self._payment.status_line(status, record.transaction_status_desc))
                self.verdict.value = (
                    f"<span style='color:{_COLORS['ok']}'>Notification <b>verified</b>: signature OK, "
                    f"X-TIMESTAMP fresh, fields well-formed; status {html.escape(printable(status or '', 8))}.</span>"
                )
                self._sync_buttons()
                self._show_verdict(
                    Notice("ok", "Notification verified", (
                        f"originalReferenceNo {record.original_reference_no}, "
                        f"latestTransactionStatus {record.latest_transaction_status}, "
                        f"amount {record.amount or ''} {record.currency or ''}".rstrip(),
                        f"answered HTTP {record.http_status} {record.response_code}",
                    ), "Only a verified notification proves who sent it; its latestTransactionStatus says "
                       "whether it was paid (00). Confirm with Check status if in doubt."),
                    record,
                )
                return
            fix = record.diagnosis.fix if record.diagnosis is not None else ""
            refused = Notice("error", f"Notification refused: {record.reason}",
                             (record.detail, f"answered HTTP {record.http_status} {record.response_code}"),
                             fix or "Check the client secret and that the callback URL is exactly the one registered.")
            if self.notification is not None:
                # A forged or broken one after the verified one: list it, keep the verified verdict.
                self._show_verdict(*self._verdict_shown, refused, record)
                return
            self.verdict.value = (
                f"<span style='color:{_COLORS['error']}'>Notification <b>refused</b> "
                f"({html.escape(record.reason)}): {html.escape(printable(record.detail, 300))}</span>"
            )
            self._show_verdict(refused, record)

    def _show_verdict(self, *objects: Any) -> None:
        """The notification's verdict below the pay outcome (called under the lock)."""
        self._verdict_shown = list(objects)
        self._show(*([self._pay_notice] if self._pay_notice is not None else []), *objects)
