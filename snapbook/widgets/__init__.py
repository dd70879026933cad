"""Forms for JupyterLab: keys, signatures, tokens, the request log and a payment, thin over the library.

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

One module per form, named for the library module it is thin over:

- :mod:`~snapbook.widgets.base`: :class:`Notice`, :func:`notice_for`, the output area every form
  shares, and how secrets are held in the kernel instead of in widget state.
- :mod:`~snapbook.widgets.keys`: :class:`KeyForm`, :func:`save_key_pair`.
- :mod:`~snapbook.widgets.signatures`: :class:`SignatureForm` (the token's X-SIGNATURE) and
  :class:`ServiceSignatureForm` (the service calls').
- :mod:`~snapbook.widgets.doctor`: :class:`DoctorForm`.
- :mod:`~snapbook.widgets.token`: :class:`TokenForm`.
- :mod:`~snapbook.widgets.log`: :class:`LogView`.
- :mod:`~snapbook.widgets.payment`: :class:`PaymentForm`.
"""

from __future__ import annotations

from .base import Notice, notice_for
from .doctor import DoctorForm
from .keys import KeyForm, save_key_pair
from .log import LogView
from .payment import PaymentForm
from .signatures import (
    SERVICE_METHODS as SERVICE_METHODS,  # importable here as before the split; not in __all__
)
from .signatures import ServiceSignatureForm, SignatureForm
from .token import TokenForm

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
