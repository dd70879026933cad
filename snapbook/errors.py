"""The one error hierarchy of snapbook.

Every error a user can meet is a :class:`SnapbookError`. Each message says what was
wrong and each carries a ``hint`` that says what to do about it. No message ever echoes
key material, a full signature or a full token.
"""

from __future__ import annotations

__all__ = [
    "ClientKeyError",
    "BodyFormatError",
    "ConfigError",
    "ConnectionFailedError",
    "DNSError",
    "InvalidResponseError",
    "KeyFileError",
    "KeyFileExistsError",
    "KeyFormatError",
    "KeyKindError",
    "KeyTypeError",
    "LogWriteError",
    "NotificationTimeoutError",
    "OutputExistsError",
    "PassphraseError",
    "PaymentInputError",
    "QrisError",
    "RequestTimeoutError",
    "ServiceSignatureInputError",
    "SignatureFormatError",
    "SnapResponseError",
    "SnapbookError",
    "TLSError",
    "TimestampError",
    "TokenFormatError",
    "TransportError",
    "WeakKeyError",
]


class SnapbookError(Exception):
    """Root of every snapbook error: catch this to handle them all."""

    #: A short, actionable sentence: what the user should do about it.
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} Hint: {self.hint}"
        return self.message


# --- keys -----------------------------------------------------------------------------


class KeyFormatError(SnapbookError, ValueError):
    """The input is not a readable key (not PEM, not DER, truncated base64, ...)."""


class KeyKindError(KeyFormatError):
    """A public key where a private key is needed, or the reverse."""


class KeyTypeError(KeyFormatError):
    """A key of another algorithm (EC, Ed25519, DSA, ...): SNAP needs RSA."""


class WeakKeyError(KeyFormatError):
    """An RSA key smaller than the 2048 bits SNAP requires."""


class PassphraseError(KeyFormatError):
    """An encrypted key without a passphrase, with a wrong one, or a passphrase for a plain key."""


class KeyFileExistsError(SnapbookError, FileExistsError):
    """Saving would overwrite an existing key file."""


class KeyFileError(SnapbookError, OSError):
    """A key file that cannot be read or written: missing, not a regular file, too large, a link, a full disk.

    Not a :class:`KeyFormatError`: the file is the problem, not what is in it.
    """


# --- signing --------------------------------------------------------------------------


class TimestampError(SnapbookError, ValueError):
    """An X-TIMESTAMP that is not ``yyyy-MM-ddTHH:mm:ssTZD``."""


class SignatureFormatError(SnapbookError, ValueError):
    """An X-SIGNATURE that is not standard base64 or has the wrong length."""


class ServiceSignatureInputError(SnapbookError, ValueError):
    """A service-call or notification signature input that cannot be signed as given.

    A lower-case or odd METHOD, an absolute URL where the relative path is meant, ``Bearer `` in
    the access token, an empty client secret, a non-absolute NotifyURL (snapbook.service_signing).
    """


class BodyFormatError(SnapbookError, ValueError):
    """A body with whitespace to minify that is not JSON, so which spaces to drop is unknowable."""


# --- configuration and the network ----------------------------------------------------


class ConfigError(SnapbookError, ValueError):
    """An unknown environment name, a bad URL or a missing credential."""


class SnapResponseError(SnapbookError):
    """The provider answered and refused: it carries the HTTP status and responseCode."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        http_status: int | None = None,
        response_code: str | None = None,
        response_message: str | None = None,
        meaning: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.http_status = http_status
        self.response_code = response_code
        self.response_message = response_message
        self.meaning = meaning


class TransportError(SnapbookError):
    """No answer at all: timeout, connection refused, TLS or DNS failure."""


class InvalidResponseError(SnapbookError):
    """An answer that is not a SNAP token response: HTML, non-JSON, missing fields."""


class ClientKeyError(SnapbookError, ValueError):
    """A client key (X-CLIENT-KEY) that is empty or cannot travel in an HTTP header."""


# --- transport failures, by cause (raised by snapbook.client) --------------------------


class RequestTimeoutError(TransportError):
    """No complete answer in time; ``phase`` says where: connect, write, read, pool, or total (the deadline)."""

    phase: str = ""


class ConnectionFailedError(TransportError):
    """The connection was refused, reset or dropped before an answer arrived."""


class TLSError(TransportError):
    """The TLS handshake failed: certificate not trusted, wrong host name, protocol mismatch."""


class DNSError(TransportError):
    """The host name did not resolve."""


# --- tokens ---------------------------------------------------------------------------


class TokenFormatError(SnapbookError, ValueError):
    """An access token that is not a JWT (three base64url parts: header, claims, signature)."""


# --- QRIS payloads (raised by snapbook.qris) --------------------------------------------


class QrisError(SnapbookError, ValueError):
    """A QRIS (EMVCo MPM) payload that cannot be built or read.

    ``field`` names the builder argument at fault, ``tag`` the data object ("51.01") and
    ``offset`` the character position in the payload where reading stopped, when known.
    """

    hint = "Check the value against the QRIS / EMVCo MPM rules for that tag."

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        tag: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.tag = tag
        self.offset = offset


# --- files written for the user -------------------------------------------------------


class OutputExistsError(SnapbookError, FileExistsError):
    """Writing would overwrite a file the user may have changed (a notebook copied earlier)."""


# --- the request log ------------------------------------------------------------------


class LogWriteError(SnapbookError, UserWarning):
    """Rows of a :class:`~snapbook.log.RequestLog` could not be written to its file (disk full, ...).

    Issued as a *warning* (``warnings.warn``), never raised by ``append``: the request it records
    succeeded or failed on its own, and a token that was issued is still returned. The rows stay
    in memory and are written, in order, on the next append or :meth:`~snapbook.log.RequestLog.flush`.
    """


# --- the notification receiver --------------------------------------------------------


class NotificationTimeoutError(SnapbookError, TimeoutError):
    """:meth:`~snapbook.receiver.NotificationReceiver.wait` saw no matching notification in time."""


# --- the payment form's input (raised by snapbook.payment) ----------------------------


class PaymentInputError(SnapbookError, ValueError):
    """An amount, partnerReferenceNo or validity a QRIS payment cannot be made with; ``field`` names it."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field
