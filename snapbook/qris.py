"""QRIS payloads: build and read the EMVCo Merchant Presented Mode string behind a QRIS code.

A QRIS code is text made of TLV data objects, ``ID(2) LEN(2) VALUE``, some of them templates
whose value is itself TLV (26-51 merchant accounts, 62 additional data, 64 alternate language,
80-99 unreserved). The last object, tag 63, is a CRC-16/CCITT-FALSE over everything before it
including ``6304``. A SNAP ``qr-mpm-generate`` answer carries such a string in ``qrContent``
(<= 512 characters).

Pure: no I/O. :func:`build_dynamic` writes the dynamic QRIS a provider returns for one
payment, :func:`parse` reads any MPM payload (refusing malformed ones with the offset and tag),
:func:`encode` writes data objects, :func:`crc16_ccitt_false` is the checksum.

Amounts: SNAP writes ``"10000.00"``; EMVCo tag 54 is the amount with an optional ``.`` and at
most the currency's minor digits, <= 13 characters. For IDR, published QRIS codes carry whole
rupiah (``"10000"``), so :func:`build_dynamic` writes a whole amount without decimals and keeps
two decimals only when there are cents (``"10000.50"``). :attr:`QrisPayload.snap_amount` turns
tag 54 back into SNAP's form for comparison.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import QrisError

if TYPE_CHECKING:
    import segno

__all__ = [
    "MAX_PAYLOAD_LENGTH",
    "DataObject",
    "QrImage",
    "QrisPayload",
    "build_dynamic",
    "build_dynamic_qris",
    "crc16_ccitt_false",
    "emv_amount",
    "encode",
    "parse",
    "parse_qris",
]

#: SNAP's limit for ``qrContent``; also the bound :func:`parse` puts on untrusted input.
MAX_PAYLOAD_LENGTH = 512

#: The globally unique identifier of the national QRIS template (tag 51, sub 00).
QRIS_GUID = "ID.CO.QRIS.WWW"
#: The merchant criteria tag 51 sub 03 may carry (micro, medium, large business).
CRITERIA = ("UMI", "UME", "UBE")

_CRC_TAG = "63"
_CRC_HEADER = "6304"

# EMVCo names, top level; 26-51 and 80-99 are ranges handled in _name().
_NAMES: dict[str, str] = {
    "00": "Payload Format Indicator",
    "01": "Point of Initiation Method",
    "52": "Merchant Category Code",
    "53": "Transaction Currency",
    "54": "Transaction Amount",
    "55": "Tip or Convenience Indicator",
    "56": "Value of Convenience Fee Fixed",
    "57": "Value of Convenience Fee Percentage",
    "58": "Country Code",
    "59": "Merchant Name",
    "60": "Merchant City",
    "61": "Postal Code",
    "62": "Additional Data Field Template",
    "63": "CRC",
    "64": "Merchant Information - Language Template",
}
_MERCHANT_ACCOUNT_NAMES = {
    "00": "Globally Unique Identifier",
    "01": "Merchant PAN",
    "02": "Merchant ID",
    "03": "Merchant Criteria",
}
_ADDITIONAL_DATA_NAMES = {
    "01": "Bill Number",
    "02": "Mobile Number",
    "03": "Store Label",
    "04": "Loyalty Number",
    "05": "Reference Label",
    "06": "Customer Label",
    "07": "Terminal Label",
    "08": "Purpose of Transaction",
    "09": "Additional Consumer Data Request",
}
_LANGUAGE_NAMES = {
    "00": "Language Preference",
    "01": "Merchant Name - Alternate Language",
    "02": "Merchant City - Alternate Language",
}


def _is_template(tag: str) -> bool:
    """Whether an EMVCo top-level tag holds nested TLV objects."""
    n = int(tag)
    return 26 <= n <= 51 or n in (62, 64) or 80 <= n <= 99


def _name(tag: str, parent: str | None = None) -> str:
    """The EMVCo name of ``tag`` (inside template ``parent`` when given)."""
    if parent is None:
        n = int(tag)
        if tag == "51":
            return "Merchant Account Information (QRIS national)"
        if 26 <= n <= 51:
            return "Merchant Account Information"
        if 2 <= n <= 25:
            return "Merchant Account Information (card networks)"
        if 80 <= n <= 99:
            return "Unreserved Template"
        return _NAMES.get(tag, "Reserved for future use")
    p = int(parent)
    if 26 <= p <= 51 or 80 <= p <= 99:
        if parent == "51" and tag == "02":
            return "Merchant ID (NMID)"
        return _MERCHANT_ACCOUNT_NAMES.get(tag, "Merchant account data")
    if parent == "62":
        n = int(tag)
        if 50 <= n <= 99:
            return "Payment System specific template"
        return _ADDITIONAL_DATA_NAMES.get(tag, "Reserved for future use")
    if parent == "64":
        return _LANGUAGE_NAMES.get(tag, "Reserved for future use")
    return "Data object"


# --- CRC ------------------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0): QRIS tag 63.

    ``crc16_ccitt_false(b"123456789") == 0x29B1``. A payload's CRC covers everything before
    the CRC value, ``6304`` included, as UTF-8 bytes.
    """
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def _crc_hex(text: str) -> str:
    return f"{crc16_ccitt_false(text.encode('utf-8')):04X}"


# --- data objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataObject:
    """One TLV data object: ``tag`` (two digits), ``value``, its EMVCo ``name``.

    A template's ``value`` is the encoding of its ``children``; build one with
    :meth:`template` so the two agree.
    """

    tag: str
    value: str
    name: str = ""
    children: tuple[DataObject, ...] = ()

    def __post_init__(self) -> None:
        where = f"data object {self.tag!r}"
        tag = self.tag
        tag_ok = isinstance(tag, str) and len(tag) == 2 and tag.isdigit() and tag.isascii()
        if not tag_ok:
            raise QrisError(
                f"{where}: a tag is two digits, 00 to 99.",
                hint="Write the tag as a two-digit string, e.g. '54'.",
                tag=str(self.tag),
            )
        if not isinstance(self.value, str) or not 1 <= len(self.value) <= 99:
            size = len(self.value) if isinstance(self.value, str) else type(self.value).__name__
            raise QrisError(
                f"{where}: the value must be 1 to 99 characters, got {size}.",
                hint="EMVCo lengths are two digits; omit an empty object and shorten a long one.",
                tag=self.tag,
            )

    @classmethod
    def template(cls, tag: str, children: Iterable[DataObject], name: str = "") -> DataObject:
        """A template object whose value is the TLV encoding of ``children``."""
        kids = tuple(children)
        return cls(tag, encode(kids, crc=False), name or _name(tag), kids)

    @property
    def length(self) -> int:
        return len(self.value)

    def encode(self) -> str:
        """``ID LEN VALUE``."""
        return f"{self.tag}{len(self.value):02d}{self.value}"

    def child(self, tag: str) -> DataObject | None:
        """The nested object with ``tag``, or None."""
        return next((c for c in self.children if c.tag == tag), None)


def _obj(tag: str, value: str, parent: str | None = None) -> DataObject:
    return DataObject(tag, value, _name(tag, parent))


def encode(objects: Iterable[DataObject], *, crc: bool = True) -> str:
    """The TLV text of ``objects``, in order; with ``crc`` (default) tag 63 is appended.

    Raises :class:`QrisError` when ``objects`` already holds tag 63 and ``crc`` is set, or when
    the result passes :data:`MAX_PAYLOAD_LENGTH`.
    """
    objects = tuple(objects)
    if crc and any(o.tag == _CRC_TAG for o in objects):
        raise QrisError(
            "The objects already contain the CRC (tag 63) and encode() appends it.",
            hint="Leave tag 63 out, or call encode(objects, crc=False) to write them as they are.",
            tag=_CRC_TAG,
        )
    body = "".join(o.encode() for o in objects)
    text = body + _CRC_HEADER + _crc_hex(body + _CRC_HEADER) if crc else body
    if len(text) > MAX_PAYLOAD_LENGTH:
        raise QrisError(
            f"The payload is {len(text)} characters; SNAP's qrContent holds at most {MAX_PAYLOAD_LENGTH}.",
            hint="Drop optional objects or shorten their values.",
        )
    return text


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class QrImage:
    """A QRIS payload drawn as a QR code: shows itself in a notebook, saves as PNG or SVG.

    ``code`` is segno's ``QRCode`` (``code.version``, ``code.error``, ``code.designator``,
    ``code.mode``); ``payload`` is the exact text it encodes.
    """

    payload: str
    code: segno.QRCode
    scale: int = 4
    border: int = 4

    def png(self) -> bytes:
        """PNG bytes, ``scale`` pixels per module, ``border`` modules of quiet zone."""
        import io

        out = io.BytesIO()
        self.code.save(out, kind="png", scale=self.scale, border=self.border)
        return out.getvalue()

    def svg(self) -> str:
        """An inline ``<svg>`` element (no XML declaration), for HTML."""
        return str(self.code.svg_inline(scale=self.scale, border=self.border, title="QRIS"))

    def save(self, path: str, **options: object) -> None:
        """Write a file whose kind follows the extension (``.png``, ``.svg``, ``.pdf``, ...)."""
        self.code.save(path, **{"scale": self.scale, "border": self.border, **options})

    def _repr_png_(self) -> bytes:
        return self.png()

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return (
            f"QrImage(QR {self.code.designator}, {self.code.mode} mode, "
            f"{self.code.symbol_size(scale=1, border=0)[0]} modules, {len(self.payload)} characters)"
        )


@dataclass(frozen=True)
class QrisPayload:
    """A parsed QRIS / EMVCo MPM payload: its data objects, the usual fields, the CRC verdict."""

    payload: str = field(repr=False)
    objects: tuple[DataObject, ...] = field(repr=False)
    #: The CRC written in tag 63 (as read, upper-cased).
    crc_read: str
    #: The CRC computed over the payload up to and including ``6304``.
    crc_computed: str

    @property
    def crc_ok(self) -> bool:
        return self.crc_read == self.crc_computed

    @property
    def fields(self) -> Mapping[str, DataObject]:
        """Top-level objects by tag (read-only)."""
        return MappingProxyType({o.tag: o for o in self.objects})

    def get(self, path: str) -> DataObject | None:
        """The object at ``path``: a tag (``"54"``) or tag.sub-tag (``"51.01"``); None if absent."""
        tag, _, sub = path.partition(".")
        top = self.fields.get(tag)
        if top is None or not sub:
            return top
        return top.child(sub)

    def value(self, path: str) -> str | None:
        """The value at ``path`` (see :meth:`get`), or None if absent."""
        found = self.get(path)
        return None if found is None else found.value

    def __getitem__(self, path: str) -> str:
        found = self.value(path)
        if found is None:
            raise KeyError(path)
        return found

    @property
    def is_dynamic(self) -> bool:
        """Tag 01 is "12": a one-payment code with its amount (static codes say "11")."""
        return self.value("01") == "12"

    @property
    def amount(self) -> str | None:
        """Tag 54 as written (``"10000"``), None on a static code without amount."""
        return self.value("54")

    @property
    def snap_amount(self) -> str | None:
        """Tag 54 in SNAP's form (``"10000.00"``), None when absent or not a plain number."""
        raw = self.amount
        if raw is None or not _EMV_AMOUNT.fullmatch(raw):
            return None
        return f"{Decimal(raw):.2f}"

    @property
    def currency(self) -> str | None:
        return self.value("53")

    @property
    def country(self) -> str | None:
        return self.value("58")

    @property
    def merchant_name(self) -> str | None:
        return self.value("59")

    @property
    def merchant_city(self) -> str | None:
        return self.value("60")

    @property
    def postal_code(self) -> str | None:
        return self.value("61")

    @property
    def merchant_pan(self) -> str | None:
        """Tag 51's merchant PAN, else the first merchant account template's."""
        for path in ["51.01", *(f"{o.tag}.01" for o in self.objects if 26 <= int(o.tag) <= 50)]:
            found = self.value(path)
            if found is not None:
                return found
        return None

    @property
    def nmid(self) -> str | None:
        """The national merchant id (tag 51, sub 02)."""
        return self.value("51.02")

    @property
    def criteria(self) -> str | None:
        return self.value("51.03")

    @property
    def bill_number(self) -> str | None:
        return self.value("62.01")

    @property
    def terminal_label(self) -> str | None:
        return self.value("62.07")

    def rows(self) -> list[tuple[str, str, int, str]]:
        """(tag, name, length, value) per object, nested ones as ``"51.01"`` after their template."""
        out: list[tuple[str, str, int, str]] = []
        for o in self.objects:
            out.append((o.tag, o.name, o.length, o.value))
            out.extend((f"{o.tag}.{c.tag}", c.name, c.length, c.value) for c in o.children)
        return out

    def image(self, *, scale: int = 4, border: int = 4, error: str = "m") -> QrImage:
        """The QR code of this payload, to show or save (drawn by segno).

        In a notebook it displays itself (``_repr_png_``, ``_repr_svg_``); ``.svg()`` gives
        inline SVG, ``.png()`` PNG bytes and ``.save("qr.png")`` a file. The payload text is encoded
        as is, in byte mode, ``error`` level M at least (segno raises it when the symbol has
        room to spare); a scanner reads back exactly :attr:`payload`. ``scale`` is the pixels
        (PNG) or units (SVG) per module, ``border`` the quiet zone in modules (4 per ISO 18004).
        """
        for name, value, upper in (("scale", scale, 64), ("border", border, 16)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not (name == "border" or value >= 1)
                or not 0 <= value <= upper
            ):
                raise QrisError(
                    f"{name} must be a whole number up to {upper}, not {value!r}.",
                    hint="image(scale=4, border=4) suits a notebook; raise scale for print.",
                )
        if error not in ("l", "m", "q", "h", "L", "M", "Q", "H"):
            raise QrisError(
                f"error must be one of L, M, Q, H, not {error!r}.", hint="M is what QRIS codes use."
            )
        import segno  # only when drawn: import snapbook.qris stays pure and cheap

        # micro=False: a QRIS scanner reads full-size QR codes only; mode="byte" keeps the text as is.
        code = segno.make_qr(self.payload, error=error, mode="byte", encoding="utf-8")
        return QrImage(self.payload, code, scale, border)

    def __repr__(self) -> str:
        kind = {"11": "static", "12": "dynamic"}.get(self.value("01") or "", f"method {self.value('01')!r}")
        crc = "ok" if self.crc_ok else f"BAD, computed {self.crc_computed}"
        return (
            f"QrisPayload({kind}, amount={self.amount!r}, currency={self.currency!r}, "
            f"merchant={self.merchant_name!r}, city={self.merchant_city!r}, nmid={self.nmid!r}, "
            f"crc={self.crc_read} {crc}, {len(self.objects)} objects, {len(self.payload)} chars)"
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("tag", "name", "length", "value"))
        body = []
        for tag, name, length, value in self.rows():
            nested = "." in tag
            style = "text-align:left;padding-left:1.5em" if nested else "text-align:left"
            shown = html.escape(value)
            if tag == _CRC_TAG:
                ok = self.crc_ok
                colour, verdict = ("green", "✔ ok") if ok else ("red", f"✘ computed {self.crc_computed}")
                shown += f" <b style='color:{colour}'>{html.escape(verdict)}</b>"
            body.append(
                f"<tr><td style='text-align:left'><code>{html.escape(tag)}</code></td>"
                f"<td style='{style}'>{html.escape(name)}</td>"
                f"<td style='text-align:right'>{length}</td>"
                f"<td style='text-align:left'><code>{shown}</code></td></tr>"
            )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        try:
            svg = self.image(scale=3).svg()
        except Exception:  # segno missing or the text not encodable: the table alone still teaches
            return table
        return (
            "<div style='display:flex;gap:1.5em;align-items:flex-start'>"
            f"<div class='snapbook-qris-image'>{svg}</div>{table}</div>"
        )


def _read_tlv(text: str, base: int, parent: str | None) -> list[DataObject]:
    """The TLV objects of ``text``; ``base`` is its offset in the payload, for error messages."""
    where = "" if parent is None else f" inside template {parent}"
    found: list[DataObject] = []
    seen: set[str] = set()
    i = 0
    while i < len(text):
        at = base + i
        head = text[i : i + 4]
        tag = head[:2]
        label = tag if parent is None else f"{parent}.{tag}"
        if len(head) < 4:
            raise QrisError(
                f"Truncated data object at offset {at}{where}: {len(head)} characters left, "
                "an ID and a length need 4.",
                hint="The payload was cut short or has stray characters; copy the whole QR text.",
                offset=at,
                tag=label if len(tag) == 2 else None,
            )
        if not (tag.isdigit() and tag.isascii()):
            raise QrisError(
                f"Bad data object ID {tag!r} at offset {at}{where}: an ID is two digits.",
                hint="A length or value before this point is wrong, so reading went out of step.",
                offset=at,
            )
        length = head[2:]
        if not (length.isdigit() and length.isascii()):
            raise QrisError(
                f"Data object {label} at offset {at}{where} has a non-digit length {length!r}.",
                hint="Lengths are two digits (01-99) counting the value's characters.",
                offset=at,
                tag=label,
            )
        size = int(length)
        if size == 0:
            raise QrisError(
                f"Data object {label} at offset {at}{where} has length 00.",
                hint="EMVCo lengths are 01-99; an empty object is left out altogether.",
                offset=at,
                tag=label,
            )
        value = text[i + 4 : i + 4 + size]
        if len(value) < size:
            raise QrisError(
                f"Data object {label} at offset {at}{where} says {size} characters but only "
                f"{len(value)} follow.",
                hint="The payload was cut short, or this object's length is wrong.",
                offset=at,
                tag=label,
            )
        if tag in seen:
            raise QrisError(
                f"Data object {label} appears twice{where} (again at offset {at}).",
                hint="Each ID appears once per level in an EMVCo payload.",
                offset=at,
                tag=label,
            )
        seen.add(tag)
        if parent is None and _is_template(tag):
            children = tuple(_read_tlv(value, at + 4, tag))
            found.append(DataObject(tag, value, _name(tag), children))
        else:
            found.append(DataObject(tag, value, _name(tag, parent)))
        i += 4 + size
    return found


def parse(payload: str, *, strict: bool = False) -> QrisPayload:
    """Read a QRIS / EMVCo MPM payload (e.g. a SNAP ``qrContent``).

    Refuses, with :class:`QrisError` naming the offset and tag: more than
    :data:`MAX_PAYLOAD_LENGTH` characters, control characters, a truncated object, a non-digit
    ID or length, ``00`` not first (or not ``"01"``), ``63`` not last or not four hex digits,
    a repeated ID. A wrong CRC is reported by :attr:`QrisPayload.crc_ok`; with ``strict=True``
    it raises too.
    """
    if not isinstance(payload, str):
        raise QrisError(
            f"A QRIS payload is text, got {type(payload).__name__}.",
            hint="Decode bytes first, e.g. payload.decode('utf-8').",
        )
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise QrisError(
            f"The payload is {len(payload)} characters; a QRIS qrContent holds at most {MAX_PAYLOAD_LENGTH}.",
            hint="This is not a single QRIS payload; check what was passed.",
            offset=MAX_PAYLOAD_LENGTH,
        )
    if not payload:
        raise QrisError("The payload is empty.", hint="Pass the QR code's text (qrContent).", offset=0)
    bad = next((i for i, ch in enumerate(payload) if not ch.isprintable()), None)
    if bad is not None:
        raise QrisError(
            f"Control or invisible character {payload[bad]!r} at offset {bad}.",
            hint="EMVCo values are printable characters; strip newlines or whitespace around the payload.",
            offset=bad,
        )
    objects = _read_tlv(payload, 0, None)
    first = objects[0]
    if first.tag != "00":
        raise QrisError(
            f"The payload starts with data object {first.tag}; EMVCo requires 00 "
            "(Payload Format Indicator) first.",
            hint="A QRIS payload begins with '000201'.",
            offset=0,
            tag=first.tag,
        )
    if first.value != "01":
        raise QrisError(
            f"Payload Format Indicator (00) is {first.value!r}; the only EMVCo version is '01'.",
            hint="A QRIS payload begins with '000201'.",
            offset=4,
            tag="00",
        )
    last = objects[-1]
    if last.tag != _CRC_TAG:
        where = next((i for i, o in enumerate(objects) if o.tag == _CRC_TAG), None)
        detail = "is missing" if where is None else f"is not last (followed by {objects[where + 1].tag})"
        raise QrisError(
            f"The CRC (tag 63) {detail}; EMVCo requires it as the last data object.",
            hint="End the payload with '6304' and the four hex digits of the CRC.",
            offset=len(payload) - len(last.encode()),
            tag=_CRC_TAG,
        )
    if last.length != 4 or not re.fullmatch(r"[0-9A-Fa-f]{4}", last.value):
        raise QrisError(
            f"The CRC (tag 63) at offset {len(payload) - len(last.encode())} is {last.value!r}; it must be "
            "four hex digits.",
            hint="Write the CRC as 6304 followed by 4 upper-case hex digits.",
            offset=len(payload) - len(last.encode()),
            tag=_CRC_TAG,
        )
    result = QrisPayload(
        payload=payload,
        objects=tuple(objects),
        crc_read=last.value.upper(),
        crc_computed=_crc_hex(payload[:-4]),
    )
    if strict and not result.crc_ok:
        raise QrisError(
            f"CRC mismatch: tag 63 says {result.crc_read}, the payload's CRC-16/CCITT-FALSE is "
            f"{result.crc_computed}.",
            hint="The payload was altered or mistyped after its CRC was written; re-read the QR code.",
            offset=len(payload) - 4,
            tag=_CRC_TAG,
        )
    return result


# --- building -------------------------------------------------------------------------------

_SNAP_AMOUNT = re.compile(r"\d{1,16}\.\d{2}")
_EMV_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
# EMVCo's "ans": the printable ASCII characters.
_ANS = re.compile(r"[\x20-\x7e]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_DIGITS = re.compile(r"[0-9]+")


def _check(value: object, field_name: str, tag: str, *, max_len: int, kind: str, min_len: int = 1) -> str:
    """``value`` if it is a str of ``min_len``-``max_len`` characters of ``kind``; else QrisError."""
    if not isinstance(value, str):
        raise QrisError(
            f"{field_name} (tag {tag}) must be a string, got {type(value).__name__}.",
            hint=f"Pass {field_name} as text, e.g. {field_name}='...'.",
            field=field_name,
            tag=tag,
        )
    pattern, described = {
        "ans": (_ANS, "printable ASCII (letters, digits, spaces and punctuation)"),
        "digits": (_DIGITS, "digits only"),
        "alnum": (_ALNUM, "letters and digits only"),
    }[kind]
    if not min_len <= len(value) <= max_len:
        size = f"exactly {max_len}" if min_len == max_len else f"{min_len} to {max_len}"
        raise QrisError(
            f"{field_name} (tag {tag}) has {len(value)} characters; QRIS allows {size}.",
            hint=f"Give {field_name} {size} characters ({described}).",
            field=field_name,
            tag=tag,
        )
    if not pattern.fullmatch(value):
        offender = next(ch for ch in value if not pattern.fullmatch(ch))
        raise QrisError(
            f"{field_name} (tag {tag}) contains {offender!r}; QRIS allows {described} here.",
            hint=f"Remove or transliterate the character in {field_name}.",
            field=field_name,
            tag=tag,
        )
    if kind == "ans" and not value.strip():
        raise QrisError(
            f"{field_name} (tag {tag}) is only spaces.",
            hint=f"Give {field_name} a visible value.",
            field=field_name,
            tag=tag,
        )
    return value


def emv_amount(amount: str) -> str:
    """SNAP's ``"10000.00"`` as QRIS tag 54: ``"10000"`` (whole rupiah) or ``"10000.50"``."""
    if not isinstance(amount, str) or not _SNAP_AMOUNT.fullmatch(amount):
        raise QrisError(
            f"amount {amount!r} is not a SNAP amount value.",
            hint="Write it as SNAP does: digits, a dot and two decimals, e.g. amount='10000.00'.",
            field="amount",
            tag="54",
        )
    value = Decimal(amount)
    if value <= 0:
        raise QrisError(
            f"amount {amount!r} is not positive; a dynamic QRIS carries the amount to pay.",
            hint="Give an amount above zero, e.g. '10000.00'.",
            field="amount",
            tag="54",
        )
    text = f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"
    if len(text) > 13:
        raise QrisError(
            f"amount {amount!r} is written {text!r}, {len(text)} characters; EMVCo tag 54 holds at most 13.",
            hint="Tag 54 fits 13 digits of whole rupiah, or 10 digits with cents.",
            field="amount",
            tag="54",
        )
    return text


def build_dynamic(
    *,
    amount: str,
    merchant_name: str,
    merchant_city: str,
    merchant_pan: str,
    merchant_id: str,
    criteria: str = "UMI",
    mcc: str = "5812",
    postal_code: str | None = None,
    bill_number: str | None = None,
    terminal_label: str | None = None,
) -> str:
    """A dynamic QRIS payload (what ``qr-mpm-generate`` returns in ``qrContent``) for one payment.

    ``amount`` is SNAP's ``"10000.00"`` (written to tag 54 as :func:`emv_amount` says);
    ``merchant_pan`` is 16-19 digits starting with ``9360`` (the acquirer's national prefix);
    ``merchant_id`` is the NMID (letters and digits, <= 15); ``merchant_name`` <= 25 and
    ``merchant_city`` <= 15 printable ASCII characters; ``postal_code`` 5 digits. Every value is
    checked, and a :class:`QrisError` names the argument, the tag and the fix.
    """
    tag54 = emv_amount(amount)
    _check(merchant_name, "merchant_name", "59", max_len=25, kind="ans")
    _check(merchant_city, "merchant_city", "60", max_len=15, kind="ans")
    _check(merchant_pan, "merchant_pan", "51.01", min_len=16, max_len=19, kind="digits")
    if not merchant_pan.startswith("9360"):
        raise QrisError(
            f"merchant_pan (tag 51.01) starts with {merchant_pan[:4]!r}; a QRIS merchant PAN starts with "
            "'9360' followed by the acquirer's code.",
            hint="Use the merchant PAN your acquirer assigned (9360 + acquirer code + merchant number).",
            field="merchant_pan",
            tag="51.01",
        )
    _check(merchant_id, "merchant_id", "51.02", max_len=15, kind="alnum")
    if criteria not in CRITERIA:
        raise QrisError(
            f"criteria (tag 51.03) is {criteria!r}; QRIS merchant criteria are {', '.join(CRITERIA)}.",
            hint="UMI for a micro business, UME medium, UBE large.",
            field="criteria",
            tag="51.03",
        )
    _check(mcc, "mcc", "52", min_len=4, max_len=4, kind="digits")
    if postal_code is not None:
        _check(postal_code, "postal_code", "61", min_len=5, max_len=5, kind="digits")
    if bill_number is not None:
        _check(bill_number, "bill_number", "62.01", max_len=25, kind="ans")
    if terminal_label is not None:
        _check(terminal_label, "terminal_label", "62.07", max_len=25, kind="ans")

    objects = [
        _obj("00", "01"),
        _obj("01", "12"),
        DataObject.template(
            "51",
            [
                _obj("00", QRIS_GUID, "51"),
                _obj("01", merchant_pan, "51"),
                _obj("02", merchant_id, "51"),
                _obj("03", criteria, "51"),
            ],
        ),
        _obj("52", mcc),
        _obj("53", "360"),
        _obj("54", tag54),
        _obj("58", "ID"),
        _obj("59", merchant_name),
        _obj("60", merchant_city),
    ]
    if postal_code is not None:
        objects.append(_obj("61", postal_code))
    extra = [_obj(t, v, "62") for t, v in (("01", bill_number), ("07", terminal_label)) if v is not None]
    if extra:
        objects.append(DataObject.template("62", extra))
    return encode(objects)


# The package root re-exports these under names that say what they build and read.
parse_qris = parse
build_dynamic_qris = build_dynamic
