"""The key form: generate or load an RSA private key, show what to send to Ifortepay, save the pair."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ipywidgets as W
import traitlets
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import keys as _keys
from ..errors import PassphraseError as _PassphraseError
from .base import _AUTO, _DESC, _WIDE, Notice, _Form, _held_passphrase, _label


def save_key_pair(
    key: rsa.RSAPrivateKey, directory: str | os.PathLike[str], passphrase: str | None = None, *, overwrite: bool = False
) -> list[Path]:
    """Write ``private.pem`` (0600, encrypted when a passphrase is given) and ``public.pem``, both or neither."""
    return list(_keys.save_key_pair(key, directory, passphrase or None, overwrite=overwrite))


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
