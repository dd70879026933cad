"""The doctor form: paste what was sent and see why the provider refuses the token signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from cryptography.hazmat.primitives.asymmetric import rsa

from .base import _AUTO, _DESC, _WIDE, Notice, _Form, _held_signature

if TYPE_CHECKING:
    from .keys import KeyForm


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
