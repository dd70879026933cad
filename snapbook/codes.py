"""SNAP response codes: what ``4017300`` means and what to check.

A ``responseCode`` is seven digits: the HTTP status (3), the service code (2) and the case
code (2). ``4017300`` is HTTP 401, service 73 (Access Token B2B), case 00 (Unauthorized).
Providers word ``responseMessage`` differently (``Unauthorized. [Signature]``,
``Unauthorized. [Unknown client]``), so match on the code and read the message for the reason.

:func:`parse_code` never raises: an unknown service, an unknown case or a value that is not a
code at all still gives a :class:`ResponseCode` that says what is known about it.

Two codes are the snapbook sandbox's own, outside the standard's table (:data:`SANDBOX_CODES`):
``4047300 Not Found. [Unknown path]`` (the standard's 404xx00 is "Invalid Transaction Status")
and ``5037300 Service Unavailable`` (the standard has no 503 row). :func:`parse_code` presents
them as sandbox codes (``origin == "sandbox"``), unless the ``message`` shows a real provider's
meaning.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "SANDBOX_CODES",
    "SERVICES",
    "TOKEN_SERVICE",
    "ResponseCode",
    "describe_status",
    "parse_code",
]

#: The service code of Access Token B2B.
TOKEN_SERVICE = "73"

#: Service codes snapbook knows by name: every service of the standard's table (01-81). Source:
#: the "Informasi Umum" box (Service Code, Name, Path) of each API page of ASPI's SNAP Developer
#: Site ("API Services"; read from its markdown copy in github.com/mseptiaan/snap-aspi-go,
#: aspi/*.md). Names are the site's, without its "API " prefix; a group in parentheses tells
#: apart names the site uses twice. 11, 16, 18, 47, 51, 52, 73 and 74 keep snapbook's earlier
#: wording (same services).
SERVICES: dict[str, str] = {
    # Registrasi (card and account registration)
    "01": "Card Registration",
    "02": "Card Registration - Set Limit",
    "03": "Card Registration Inquiry",
    "04": "Verify OTP (Direct Integration)",
    "05": "Card Registration Unbinding",
    "06": "Account Creation",
    "07": "Account Binding",
    "08": "Account Binding Inquiry",
    "09": "Account Unbinding",
    "10": "Get OAuth URL",
    # Informasi Saldo, Riwayat Transaksi
    "11": "Balance Inquiry",
    "12": "Transaction History List",
    "13": "Transaction History Detail",
    "14": "Bank Statement",
    # Transfer Kredit: bank
    "15": "Internal Account Inquiry",
    "16": "External Account Inquiry",
    "17": "Intrabank Transfer",
    "18": "Transfer Interbank",
    "19": "Request for Payment",
    "20": "Interbank Bulk Transfer",
    "21": "Interbank Bulk Transfer - Notification",
    "22": "Transfer RTGS",
    "23": "Transfer SKNBI",
    "24": "Virtual Account - Inquiry",
    "25": "Virtual Account - Payment",
    "26": "Virtual Account - Inquiry Status",
    "27": "Virtual Account - Create VA",
    "28": "Virtual Account - Update VA",
    "29": "Virtual Account - Update Status VA",
    "30": "Virtual Account - Inquiry VA",
    "31": "Virtual Account - Delete VA",
    "32": "Virtual Account - Inquiry Payment to VA from Intra Bank",
    "33": "Virtual Account - Payment to VA from Intra Bank",
    "34": "Virtual Account - Notification for Payment to VA from Intra Bank",
    "35": "Virtual Account - Get Report",
    "36": "Transaction Status Inquiry (transfer)",
    # Transfer Kredit: non-bank (e-money)
    "37": "Account Inquiry - Customer Top Up",
    "38": "Customer Top Up",
    "39": "Customer Top Up Inquiry Status",
    "40": "Submit Bulk Cash In",
    "41": "Notify Bulk Cash In",
    "42": "Transfer to Bank - Account Inquiry",
    "43": "Transfer to Bank - Payment Transaction",
    "44": "Transfer to OTC - Create Payment",
    "45": "Transfer to OTC - Transfer Status",
    "46": "Transfer to OTC - Cancel Payment",
    "47": "Generate QR MPM (QRIS)",
    "48": "Decode QR MPM (QRIS)",
    "49": "Payment Redirect - Apply OTT (QR MPM)",
    "50": "Payment - Host to Host (QR MPM)",
    "51": "Query Payment QR MPM (QRIS)",
    "52": "Notify Payment QR MPM (QRIS)",
    "53": "Transaction Status Inquiry (non-bank, QR MPM)",
    # Transfer Debit
    "54": "Direct Debit Payment",
    "55": "Direct Debit Payment Status",
    "56": "Direct Debit Payment Notification",
    "57": "Direct Debit Payment Cancel",
    "58": "Direct Debit Payment Refund",
    "59": "Generate QR CPM",
    "60": "CPM Payment",
    "61": "Query Payment (QR CPM)",
    "62": "Cancel Payment (QR CPM)",
    "63": "Auth Payment",
    "64": "Payment Query (Auth Payment)",
    "65": "Capture (Auth Payment)",
    "66": "Capture Query (Auth Payment)",
    "67": "Void (Auth Payment)",
    "68": "Void Query (Auth Payment)",
    "69": "Refund (Auth Payment)",
    "70": "Registrasi e-Mandate (Direct Debit BI-FAST)",
    "71": "Trigger Direct Debit Transfer (BI-FAST)",
    "72": "Notify (Direct Debit BI-FAST)",
    # Keamanan: access tokens
    "73": "Access Token B2B",
    "74": "Access Token B2B2C",
    # Listed on the site beside their groups (transfers, QR MPM, QR CPM, registration)
    "75": "SKNBI - Notification",
    "76": "RTGS - Notification",
    "77": "Cancel Payment (QR MPM)",
    "78": "Refund Payment (QR MPM)",
    "79": "Payment Notification (QR CPM)",
    "80": "Refund Payment (QR CPM)",
    "81": "OTP",
}

#: Codes the snapbook sandbox answers that are not in the SNAP table: code -> (responseMessage,
#: meaning, hint). Only the sandbox gives them this meaning; a provider's 404xx00 is the
#: standard's "Invalid Transaction Status".
SANDBOX_CODES: dict[str, tuple[str, str, str]] = {
    "4047300": (
        "Not Found. [Unknown path]",
        "snapbook sandbox code (not in the SNAP table): nothing is served at this path. "
        "The standard's 404xx00 is 'Invalid Transaction Status', which the sandbox never means.",
        "Check the token URL for this product: /auth/merchants/v1.0/access-token/b2b (Payment), "
        "/api/v1.0/access-token/b2b (Disbursement), /v1.0/access-token/b2b (plain SNAP); an SDK with "
        "its own prefix needs `snapbook sandbox --route-prefix PREFIX`.",
    ),
    "5037300": (
        "Service Unavailable",
        "snapbook sandbox code (not in the SNAP table, which has no 503 row): an injected "
        "'service unavailable' fault.",
        "Retry with backoff, honouring Retry-After; real providers may answer 503 without a SNAP body.",
    ),
}
# The service routes (issue 12): the "not served by this sandbox" answer to a service path under
# /v1.x/ or /api/v1.x/ (404 + service + 00; 00 when the service is unknown). A provider's 404xx00
# "Invalid Transaction Status" still reads as such (parse_code looks at the message).
for _service in ("00", "16", "18", "77", "78"):
    SANDBOX_CODES[f"404{_service}00"] = (
        "Not Found. [Not served by this sandbox]",
        "snapbook sandbox code: this service path is not served by the sandbox (additionalInfo.served "
        "lists what is). A provider's 404xx00 is 'Invalid Transaction Status'.",
        "Use a served route: POST /v1.0/qr/qr-mpm-generate, /v1.0/qr/qr-mpm-query, "
        "/api/v1.0/balance-inquiry.",
    )

# (HTTP status, case code) -> standard message. The generic table of the SNAP standard.
_CASES: dict[tuple[int, str], str] = {
    (200, "00"): "Successful",
    (202, "00"): "Request In Progress",
    (400, "00"): "Bad Request",
    (400, "01"): "Invalid Field Format {field name}",
    (400, "02"): "Invalid Mandatory Field {field name}",
    (401, "00"): "Unauthorized. [reason]",
    (401, "01"): "Invalid Token (B2B)",
    (401, "02"): "Invalid Customer Token",
    (401, "03"): "Token Not Found (B2B)",
    (401, "04"): "Customer Token Not Found",
    (403, "00"): "Transaction Expired",
    (403, "01"): "Feature Not Allowed [reason]",
    (403, "02"): "Exceeds Transaction Amount Limit",
    (403, "03"): "Suspected Fraud",
    (403, "04"): "Activity Count Limit Exceeded",
    (403, "05"): "Do Not Honor",
    (403, "06"): "Feature Not Allowed At This Time [reason]",
    (403, "14"): "Insufficient Funds",
    (403, "15"): "Transaction Not Permitted [reason]",
    (404, "00"): "Invalid Transaction Status",
    (404, "01"): "Transaction Not Found",
    (404, "08"): "Invalid Merchant",
    (404, "16"): "Partner Not Found",
    (404, "18"): "Inconsistent Request",
    (405, "00"): "Requested Function Is Not Supported",
    (405, "01"): "Requested Operation Is Not Allowed",
    (409, "00"): "Conflict",
    (409, "01"): "Duplicate partnerReferenceNo",
    (429, "00"): "Too Many Requests",
    (500, "00"): "General Error",
    (500, "01"): "Internal Server Error",
    (500, "02"): "External Server Error",
    (504, "00"): "Timeout",
}

# Plain-language meaning and what to check, for any service.
_GENERIC: dict[tuple[int, str], tuple[str, str]] = {
    (200, "00"): ("The request succeeded.", "Nothing to fix."),
    (202, "00"): (
        "The provider accepted the request and is still processing it.",
        "Query the status later instead of sending the request again.",
    ),
    (400, "00"): (
        "The provider could not read the request at all (often a body that is not valid JSON).",
        "Send Content-Type: application/json and a JSON body; compare it byte for byte with the documented example.",
    ),
    (400, "01"): (
        "A field has the wrong format; responseMessage usually names it.",
        "Check the field named in responseMessage against the specification (length, characters, date format).",
    ),
    (400, "02"): (
        "A mandatory field or header is missing or empty; responseMessage usually names it.",
        "Add the field named in responseMessage; check header names for typos.",
    ),
    (401, "00"): (
        "The provider did not accept who you are: signature, client key or key registration.",
        "Check the signature, the client key and that your public key is registered with the provider.",
    ),
    (401, "01"): (
        "The access token is invalid or expired.",
        "Request a new B2B token, send it as 'Authorization: Bearer <token>', and refresh before expiresIn runs out.",
    ),
    (401, "02"): ("The customer token is invalid or expired.", "Obtain a new customer (B2B2C) token."),
    (401, "03"): (
        "No B2B access token was sent, or the provider does not know it.",
        "Send 'Authorization: Bearer <token>' with a token from this environment (stage and production tokens differ).",
    ),
    (401, "04"): ("No customer token was sent or it is unknown.", "Send the customer token (B2B2C)."),
    (403, "00"): ("The transaction expired.", "Start a new transaction."),
    (403, "01"): (
        "Your account is not allowed to use this feature.",
        "Ask the provider to enable the feature for your client key.",
    ),
    (404, "00"): (
        "The transaction's status does not allow this request (Invalid Transaction Status).",
        "Query the transaction's status first; a token request never gets this from a provider.",
    ),
    (404, "01"): (
        "The provider has no transaction with these references.",
        "Check originalReferenceNo / originalPartnerReferenceNo and the environment (stage vs production).",
    ),
    (404, "08"): (
        "The provider does not know this merchant.",
        "Check X-PARTNER-ID and the environment (stage vs production).",
    ),
    (404, "18"): (
        "The request does not match the original transaction (Inconsistent Request).",
        "Send the same references and amount as the original transaction.",
    ),
    (404, "16"): (
        "The provider does not know your partner id.",
        "Check X-PARTNER-ID / X-CLIENT-KEY and the environment (stage vs production).",
    ),
    (405, "00"): (
        "The provider does not support this function at this URL.",
        "Check the URL path and the HTTP method (token requests are POST).",
    ),
    (405, "01"): (
        "The provider does not allow this operation (for this transaction, account or state).",
        "Check which operations your account may use and the transaction's current status.",
    ),
    (409, "00"): (
        "The request conflicts with an earlier one (for example the same X-EXTERNAL-ID twice in a day).",
        "Use a fresh X-EXTERNAL-ID for every request.",
    ),
    (409, "01"): (
        "A transaction with this partnerReferenceNo already exists.",
        "Use a new partnerReferenceNo for every new transaction; query the existing one instead of resending.",
    ),
    (429, "00"): (
        "You sent too many requests; the provider is throttling you.",
        "Slow down, honour Retry-After, and reuse tokens instead of requesting one per call.",
    ),
    (500, "00"): (
        "The provider failed with a general error.",
        "Retry later; if it persists, send the provider the time, your client key and the X-TIMESTAMP.",
    ),
    (500, "01"): (
        "The provider had an internal error.",
        "Retry later; if it persists, send the provider the time, your client key and the X-TIMESTAMP.",
    ),
    (500, "02"): (
        "A system behind the provider failed.",
        "Retry later; if it persists, contact the provider.",
    ),
    (503, "00"): (
        "The provider is temporarily unavailable (HTTP 503 has no row in the SNAP table; some providers use it).",
        "Retry with backoff, honouring Retry-After; if it persists, contact the provider.",
    ),
    (504, "00"): (
        "The provider timed out while processing the request.",
        "Retry with backoff; if it persists, contact the provider.",
    ),
}

# Token-specific advice (service 73): the places a token request usually goes wrong.
_TOKEN: dict[tuple[int, str], tuple[str, str]] = {
    (200, "00"): (
        "The provider issued an access token.",
        "Cache it and reuse it until shortly before expiresIn runs out.",
    ),
    (400, "00"): (
        "The provider could not read the token request.",
        'Send Content-Type: application/json and the body {"grantType":"client_credentials","additionalInfo":{}}.',
    ),
    (400, "01"): (
        "A field of the token request has the wrong format, most often X-TIMESTAMP.",
        "Send X-TIMESTAMP as yyyy-MM-ddTHH:mm:ss+07:00 (snapbook.make_timestamp()); check the field responseMessage names.",
    ),
    (400, "02"): (
        "A mandatory header or field is missing: X-TIMESTAMP, X-CLIENT-KEY, X-SIGNATURE, Content-Type or grantType.",
        "Send all four headers and grantType=client_credentials (spelled grantType, not grant_type).",
    ),
    (401, "00"): (
        "The provider rejected the signature, the client key or the timestamp.",
        (
            "Sign exactly client_key + '|' + X-TIMESTAMP with the private key whose public key you registered, "
            "for this environment; use the same timestamp string in the header; keep your clock within a few "
            "minutes (run `snapbook doctor` to see which part is wrong)."
        ),
    ),
    (401, "01"): (
        "The provider considers the token request unauthorized (invalid token).",
        "Check the client key and the key registered for this environment.",
    ),
    (409, "00"): (
        "The provider saw a conflicting request.",
        "Wait a second and request the token again with a new X-TIMESTAMP.",
    ),
    (429, "00"): (
        "You requested tokens too often.",
        "A B2B token lives 15 minutes: cache it (TokenClient.get_token) instead of requesting one per call; honour Retry-After.",
    ),
    (500, "00"): (
        "The token service failed with a general error.",
        "Retry later; if it persists, send the provider the time, your client key and the X-TIMESTAMP you sent.",
    ),
    (504, "00"): (
        "The token service timed out.",
        "Retry with backoff; if it persists, contact the provider.",
    ),
}

# Service-call advice (every service but the tokens): what goes wrong after the token.
_SERVICE_CALL: dict[tuple[int, str], tuple[str, str]] = {
    (400, "02"): (
        "A mandatory field or header is missing or empty; responseMessage usually names it.",
        "A service call needs Authorization, X-TIMESTAMP, X-SIGNATURE, X-PARTNER-ID, X-EXTERNAL-ID, CHANNEL-ID "
        "and Content-Type: application/json (snapbook.ServiceClient sends them all); add the field named in "
        "responseMessage.",
    ),
    (401, "00"): (
        "The provider rejected the service call's signature, timestamp or partner.",
        "Sign METHOD:path-as-sent:accessToken:lowercase(hex(sha256(minified body))):X-TIMESTAMP with "
        "HMAC-SHA512 and the client secret, base64; sign the exact bytes you send (run "
        "`snapbook doctor service` to see which part differs).",
    ),
    (401, "01"): (
        "The access token is invalid or expired.",
        "Request a new B2B token and sign again (snapbook.ServiceClient does this once by itself); "
        "use a token from the same environment as the call.",
    ),
    (409, "00"): (
        "The provider has already seen this X-EXTERNAL-ID today (Conflict).",
        "Send a new X-EXTERNAL-ID (numeric, at most 36 digits) with every request of the day; let "
        "snapbook.ServiceClient make them, never reuse one from an earlier call.",
    ),
    (500, "00"): (
        "The provider failed with a general error; it may or may not have processed the call.",
        "Do not resend a payment or transfer blindly: query its status (by partnerReferenceNo) first, "
        "then retry with a new X-EXTERNAL-ID if it was not processed.",
    ),
    (504, "00"): (
        "The provider timed out; it may or may not have processed the call.",
        "Query the transaction's status (by partnerReferenceNo) before sending it again.",
    ),
}

# responseMessage reasons for service calls: the token's advice (client_key|timestamp) would mislead.
_SERVICE_REASONS: dict[str, str] = {
    "signature": _SERVICE_CALL[(401, "00")][1],
    "x-signature": _SERVICE_CALL[(401, "00")][1],
    "timestamp": "Check X-TIMESTAMP: yyyy-MM-ddTHH:mm:ss+07:00, made fresh for every request, within a few minutes "
    "of the provider's clock, and signed exactly as sent.",
    "x-timestamp": "Check X-TIMESTAMP: yyyy-MM-ddTHH:mm:ss+07:00, made fresh for every request, within a few minutes "
    "of the provider's clock, and signed exactly as sent.",
    "x-external-id": "Send X-EXTERNAL-ID: digits only, at most 36, new for every request of the day.",
    "x-partner-id": "Send X-PARTNER-ID: the merchant id Ifortepay gave you (e.g. MCP2021110228).",
    "channel-id": "Send CHANNEL-ID from the provider's appendix (QR004 QRIS, VA001 VA, api on Senmo).",
}

# responseMessage reasons, "Unauthorized. [Signature]": sharper advice for the usual ones.
_REASONS: dict[str, str] = {
    "signature": "The signature did not verify: sign client_key + '|' + X-TIMESTAMP (the exact header string) with "
    "the private key matching the registered public key (run `snapbook doctor`).",
    "unknown client": "The provider does not know this X-CLIENT-KEY in this environment: check it, and that you "
    "use the stage client key on stage and the production one on production.",
    "key not found": "No public key is registered for this client key: send your public key (public.pem) to the provider.",
    "timestamp": "Check X-TIMESTAMP: format yyyy-MM-ddTHH:mm:ss+07:00 and a clock within a few minutes of the provider's.",
    "x-timestamp": "Check X-TIMESTAMP: format yyyy-MM-ddTHH:mm:ss+07:00 and a clock within a few minutes of the provider's.",
    "x-timestamp out of range": "Your X-TIMESTAMP is too far from the provider's clock (usually more than 5 minutes): "
    "sync your clock with NTP and make a fresh timestamp for every request, never reuse an old one.",
    "content-type": "Send the header Content-Type: application/json.",
    "x-signature": "Send X-SIGNATURE: the standard base64 of SHA256withRSA(private key, client_key + '|' + X-TIMESTAMP).",
    "x-client-key": "Send X-CLIENT-KEY: the client_id the provider gave you at registration.",
    "granttype": 'Send grantType (camelCase) with the value "client_credentials".',
}

_CLASS_MEANING = {
    2: ("Success.", "Nothing to fix."),
    4: (
        "The provider refused the request (a client-side problem).",
        "Read responseMessage; fix the request before retrying.",
    ),
    5: (
        "The provider failed (a server-side problem).",
        "Retry later with backoff; contact the provider if it persists.",
    ),
}

_CODE = re.compile(r"^(\d{3})(\d{2})(\d{2})$")
_REASON = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class ResponseCode:
    """A parsed ``responseCode``: its parts, the standard message, its meaning and a hint."""

    code: str
    http_status: int | None
    service_code: str | None
    case_code: str | None
    #: The service's name ("Access Token B2B"), or "service NN" when unknown.
    service: str
    #: The standard's message for this case, or "" when the case is not in the table.
    standard_message: str
    meaning: str
    hint: str
    #: False when the service or the case is not in snapbook's tables (the meaning is then generic).
    known: bool
    #: False when the value is not seven digits at all.
    valid: bool = True
    #: The reason in brackets from responseMessage ("Signature"), when one was given.
    reason: str | None = None
    #: "standard" (the SNAP table), "sandbox" (a snapbook sandbox code, :data:`SANDBOX_CODES`)
    #: or "unknown" (a case outside both tables, or not a code).
    origin: Literal["standard", "sandbox", "unknown"] = "standard"
    #: For a sandbox code, the sandbox's responseMessage ("Not Found. [Unknown path]").
    sandbox_message: str = ""

    @property
    def is_success(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    def __str__(self) -> str:
        if self.origin == "sandbox":
            title = f"snapbook sandbox code: {self.sandbox_message}"
        else:
            title = self.standard_message or "unknown case"
        return f"{self.code} ({self.service}: {title}): {self.meaning}"

    def _repr_html_(self) -> str:
        rows = [
            ("responseCode", self.code),
            ("HTTP status", "" if self.http_status is None else str(self.http_status)),
            ("service", f"{self.service_code or '?'} ({self.service})"),
            ("case", f"{self.case_code or '?'} ({self._case_title()})"),
            ("meaning", self.meaning),
            ("what to check", self.hint),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"

    def _case_title(self) -> str:
        if self.origin == "sandbox":
            return f"snapbook sandbox code, not in the SNAP table: {self.sandbox_message}"
        return self.standard_message or "not in the standard table"


def parse_code(code: str | int | None, message: str | None = None) -> ResponseCode:
    """Explain a ``responseCode`` such as ``"4017300"``; ``message`` (responseMessage) sharpens the hint.

    A snapbook sandbox code (:data:`SANDBOX_CODES`) is explained as the sandbox means it, unless
    ``message`` carries the standard's text for that case (then a provider sent it: the standard applies).
    Never raises: unknown services and cases get the meaning of their HTTP status class, and a
    value that is not seven digits is reported as such (``valid=False``).
    """
    text = "" if code is None else str(code).strip()
    reason = _reason(message)
    m = _CODE.match(text)
    if m is None:
        return ResponseCode(
            code=text,
            http_status=None,
            service_code=None,
            case_code=None,
            service="unknown service",
            standard_message="",
            meaning=f"{(text if len(text) <= 20 else text[:19] + '…')!r} is not a SNAP responseCode "
            "(seven digits: HTTP status, service, case)."
            if text
            else "No responseCode was given.",
            hint="Read the HTTP status and the body; the provider (or a proxy in front of it) did not answer in SNAP form.",
            known=False,
            valid=False,
            reason=reason,
            origin="unknown",
        )
    status, service_code, case = int(m.group(1)), m.group(2), m.group(3)
    sandbox = SANDBOX_CODES.get(text)
    if sandbox is not None:
        standard_text = _CASES.get((status, case), "")
        if not (message and standard_text and standard_text.lower() in message.lower()):
            return _sandbox_code(text, sandbox, reason)
    service = SERVICES.get(service_code, f"service {service_code}")
    standard = _CASES.get((status, case), "")
    is_token = service_code in (TOKEN_SERVICE, "74")
    explained = (
        _TOKEN.get((status, case)) if service_code == TOKEN_SERVICE else None
    ) or (None if is_token else _SERVICE_CALL.get((status, case))) or _GENERIC.get((status, case))
    if explained is None:
        meaning, hint = _CLASS_MEANING.get(
            status // 100, ("An unexpected HTTP status class.", "Read responseMessage.")
        )
        meaning = f"HTTP {status}, case {case}, is not in the standard table. {meaning}"
    else:
        meaning, hint = explained
    if reason and status // 100 == 4:
        specific = (_REASONS if is_token else _SERVICE_REASONS).get(reason.lower())
        if specific:
            hint = specific
    return ResponseCode(
        code=text,
        http_status=status,
        service_code=service_code,
        case_code=case,
        service=service,
        standard_message=standard,
        meaning=meaning,
        hint=hint,
        known=service_code in SERVICES and bool(standard),
        reason=reason,
        origin="standard" if standard else "unknown",
    )


def _sandbox_code(code: str, entry: tuple[str, str, str], reason: str | None) -> ResponseCode:
    message, meaning, hint = entry
    return ResponseCode(
        code=code,
        http_status=int(code[:3]),
        service_code=code[3:5],
        case_code=code[5:],
        service=SERVICES.get(code[3:5], f"service {code[3:5]}"),
        standard_message="",
        meaning=meaning,
        hint=hint,
        known=True,
        reason=reason,
        origin="sandbox",
        sandbox_message=message,
    )


def _reason(message: str | None) -> str | None:
    if not message:
        return None
    m = _REASON.search(message)
    return m.group(1).strip() if m else None


def describe_status(status: int) -> tuple[str, str]:
    """Meaning and hint for a bare HTTP status (an answer without a responseCode)."""
    if status == 404:
        return (
            "Nothing answers at this URL (HTTP 404).",
            "Check the token URL path for this product and environment.",
        )
    if status == 405:
        return (
            "The URL does not accept this method (HTTP 405).",
            "Token requests are POST; check the URL path.",
        )
    if status in (301, 302, 303, 307, 308):
        return (
            "The URL redirects elsewhere.",
            "Use the final URL (https, exact path) as the token endpoint.",
        )
    return _CLASS_MEANING.get(status // 100, (f"HTTP {status}.", "Read the body the provider sent."))
