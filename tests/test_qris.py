"""snapbook.qris: the EMVCo MPM payload of a QRIS code, its CRC, the dynamic builder and the reader."""

from __future__ import annotations

import binascii
import re
import string
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import snapbook
from snapbook.errors import QrisError, SnapbookError
from snapbook.qris import (
    MAX_PAYLOAD_LENGTH,
    DataObject,
    QrisPayload,
    build_dynamic,
    crc16_ccitt_false,
    emv_amount,
    encode,
    parse,
)

# Public samples with a valid CRC (checked independently with binascii.crc_hqx below).
# 1. The README of the Go library github.com/sunary/qris (README.md, "Sample"): a dynamic code
#    with a tag 26 merchant template and a tag 62 purpose of transaction.
SUNARY_README = (
    "00020101021226380016ID.CO.SHOPEE.WWW010201020815863724530336054061440005802ID"
    "5921PT. SHOPPEE INDONESIA6007JAKARTA62180814gen by go-qris63049635"
)
# 2. A printed static QRIS (LinkAja acquirer plus the national tag 51 with NMID and criteria),
#    quoted in the blog post "Format checksum yang dipakai di QRIS",
#    https://lcat.dev/post.php?id=f9eb654d-6169-400a-87b3-e8ff609017ed
LINKAJA_STATIC = (
    "00020101021126660014ID.LINKAJA.WWW011893600911000093000502151912131509300050303UME"
    "51440014ID.CO.QRIS.WWW0215ID20190139612790303UME5204839853033605802ID"
    "5924Infak Sinergi Foundation6007BANDUNG61054017362070703A01630458E0"
)

VALID = dict(
    amount="10000.00",
    merchant_name="WARUNG SNAPBOOK",
    merchant_city="JAKARTA",
    merchant_pan="9360000812345678901",
    merchant_id="ID1020304050607",
)


def independent_crc(text: str) -> str:
    """The standard library's CRC-CCITT (XModem table) started at 0xFFFF is CRC-16/CCITT-FALSE."""
    return f"{binascii.crc_hqx(text.encode('utf-8'), 0xFFFF):04X}"


def independent_tlv(text: str, nested: frozenset[str] = frozenset({"51", "62"})) -> list:
    """A second, minimal TLV reader: [(tag, value or [children])], written apart from snapbook."""
    out, i = [], 0
    while i < len(text):
        tag, size = text[i : i + 2], int(text[i + 2 : i + 4])
        value = text[i + 4 : i + 4 + size]
        assert len(value) == size, f"truncated at {i}"
        out.append((tag, independent_tlv(value, frozenset()) if tag in nested else value))
        i += 4 + size
    return out


# --- CRC --------------------------------------------------------------------------------------


def test_crc_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF  # init, no xorout


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_crc_agrees_with_the_standard_library(data: bytes):
    assert crc16_ccitt_false(data) == binascii.crc_hqx(data, 0xFFFF)


@pytest.mark.parametrize("sample", [SUNARY_README, LINKAJA_STATIC])
def test_published_samples_have_the_crc_we_compute(sample: str):
    assert independent_crc(sample[:-4]) == sample[-4:]
    assert f"{crc16_ccitt_false(sample[:-4].encode()):04X}" == sample[-4:]


# --- building ---------------------------------------------------------------------------------


def test_build_dynamic_writes_the_documented_objects_in_order():
    payload = build_dynamic(
        **VALID, postal_code="12190", bill_number="INV-001", terminal_label="A01", mcc="5411", criteria="UME"
    )
    assert payload.startswith("000201" "010212")
    assert independent_tlv(payload) == [
        ("00", "01"),
        ("01", "12"),
        (
            "51",
            [
                ("00", "ID.CO.QRIS.WWW"),
                ("01", "9360000812345678901"),
                ("02", "ID1020304050607"),
                ("03", "UME"),
            ],
        ),
        ("52", "5411"),
        ("53", "360"),
        ("54", "10000"),
        ("58", "ID"),
        ("59", "WARUNG SNAPBOOK"),
        ("60", "JAKARTA"),
        ("61", "12190"),
        ("62", [("01", "INV-001"), ("07", "A01")]),
        ("63", independent_crc(payload[:-4])),
    ]
    assert payload[-8:-4] == "6304"


def test_build_dynamic_leaves_out_absent_optional_objects():
    tags = [tag for tag, _ in independent_tlv(build_dynamic(**VALID))]
    assert tags == ["00", "01", "51", "52", "53", "54", "58", "59", "60", "63"]
    only_terminal = dict(independent_tlv(build_dynamic(**VALID, terminal_label="K1")))
    assert only_terminal["62"] == [("07", "K1")]


@pytest.mark.parametrize(
    ("snap", "tag54"),
    [
        ("10000.00", "10000"),
        ("10000.50", "10000.50"),
        ("0.01", "0.01"),
        ("000123.00", "123"),
        ("1.10", "1.10"),
    ],
)
def test_amount_is_written_as_emvco_wants_it(snap: str, tag54: str):
    assert emv_amount(snap) == tag54
    assert parse(build_dynamic(**{**VALID, "amount": snap})).amount == tag54
    assert parse(build_dynamic(**{**VALID, "amount": snap})).snap_amount == f"{Decimal(snap):.2f}"


ANS_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def ans(max_size: int) -> st.SearchStrategy[str]:
    return st.text(ANS_CHARS, min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


valid_inputs = st.fixed_dictionaries(
    {
        "amount": st.builds(
            lambda rupiah, cents: f"{rupiah}.{cents:02d}",
            st.integers(min_value=0, max_value=10**10 - 1),  # tag 54 holds 13 characters
            st.integers(min_value=0, max_value=99),
        ).filter(lambda a: Decimal(a) > 0),
        "merchant_name": ans(25),
        "merchant_city": ans(15),
        "merchant_pan": st.from_regex(r"9360[0-9]{12,15}", fullmatch=True),
        "merchant_id": st.from_regex(r"[A-Za-z0-9]{1,15}", fullmatch=True),
        "criteria": st.sampled_from(["UMI", "UME", "UBE"]),
        "mcc": st.from_regex(r"[0-9]{4}", fullmatch=True),
    },
    optional={
        "postal_code": st.from_regex(r"[0-9]{5}", fullmatch=True),
        "bill_number": ans(25),
        "terminal_label": ans(25),
    },
)


@settings(max_examples=150, deadline=None)
@given(valid_inputs)
def test_round_trip_build_then_parse(inputs: dict):
    payload = build_dynamic(**inputs)
    assert len(payload) <= MAX_PAYLOAD_LENGTH
    read = parse(payload, strict=True)
    assert read.crc_ok and read.crc_read == independent_crc(payload[:-4])
    assert read.is_dynamic
    assert read.snap_amount == inputs["amount"]
    assert (read.currency, read.country) == ("360", "ID")
    assert read.merchant_name == inputs["merchant_name"]
    assert read.merchant_city == inputs["merchant_city"]
    assert read.merchant_pan == inputs["merchant_pan"]
    assert read.nmid == inputs["merchant_id"]
    assert read.criteria == inputs["criteria"]
    assert read.value("52") == inputs["mcc"]
    assert read.value("51.00") == "ID.CO.QRIS.WWW"
    assert read.postal_code == inputs.get("postal_code")
    assert read.bill_number == inputs.get("bill_number")
    assert read.terminal_label == inputs.get("terminal_label")
    # The second reader sees the same tags and values, nested ones included.
    ours = [
        (o.tag, [(c.tag, c.value) for c in o.children] if o.tag in ("51", "62") else o.value)
        for o in read.objects
    ]
    assert independent_tlv(payload) == ours
    # Re-encoding what was read gives the payload back.
    assert encode(read.objects[:-1]) == payload


BAD_INPUTS = [
    ({"amount": "10000"}, "amount", "54", "SNAP amount"),
    ({"amount": "10,000.00"}, "amount", "54", "SNAP amount"),
    ({"amount": "10000.5"}, "amount", "54", "SNAP amount"),
    ({"amount": 10000}, "amount", "54", "SNAP amount"),
    ({"amount": "0.00"}, "amount", "54", "not positive"),
    ({"amount": "12345678901234.00"}, "amount", "54", "at most 13"),
    ({"amount": "10000000000.01"}, "amount", "54", "at most 13"),
    ({"merchant_name": "A" * 26}, "merchant_name", "59", "26 characters"),
    ({"merchant_name": ""}, "merchant_name", "59", "0 characters"),
    ({"merchant_name": "   "}, "merchant_name", "59", "only spaces"),
    ({"merchant_name": "Café Kopi"}, "merchant_name", "59", "'é'"),
    ({"merchant_name": "WARUNG\nKOPI"}, "merchant_name", "59", "'\\n'"),
    ({"merchant_city": "KOTA JAKARTA SELATAN"}, "merchant_city", "60", "20 characters"),
    ({"merchant_pan": "9360000812345"}, "merchant_pan", "51.01", "13 characters"),
    ({"merchant_pan": "93600008123456789X"}, "merchant_pan", "51.01", "'X'"),
    ({"merchant_pan": "1234000812345678901"}, "merchant_pan", "51.01", "'9360'"),
    ({"merchant_id": "ID-1020304050"}, "merchant_id", "51.02", "'-'"),
    ({"merchant_id": "ID10203040506070"}, "merchant_id", "51.02", "16 characters"),
    ({"criteria": "umi"}, "criteria", "51.03", "UMI, UME, UBE"),
    ({"mcc": "581"}, "mcc", "52", "exactly 4"),
    ({"mcc": "58a2"}, "mcc", "52", "'a'"),
    ({"postal_code": "1219"}, "postal_code", "61", "exactly 5"),
    ({"postal_code": "1219O"}, "postal_code", "61", "'O'"),
    ({"bill_number": "B" * 26}, "bill_number", "62.01", "26 characters"),
    ({"bill_number": ""}, "bill_number", "62.01", "0 characters"),
    ({"terminal_label": "T\x00"}, "terminal_label", "62.07", "'\\x00'"),
    ({"terminal_label": 7}, "terminal_label", "62.07", "must be a string"),
]


@pytest.mark.parametrize(("change", "field", "tag", "says"), BAD_INPUTS)
def test_each_bad_input_gets_a_typed_error_naming_field_and_tag(change, field, tag, says):
    with pytest.raises(QrisError) as caught:
        build_dynamic(**{**VALID, **change})
    err = caught.value
    assert isinstance(err, SnapbookError) and isinstance(err, ValueError)
    assert (err.field, err.tag) == (field, tag)
    assert field in err.message and says in err.message
    assert err.hint and err.hint in str(err)


# --- reading ----------------------------------------------------------------------------------


def test_reads_the_go_library_sample():
    read = parse(SUNARY_README, strict=True)
    assert read.crc_ok and read.is_dynamic
    assert read.amount == "144000" and read.snap_amount == "144000.00"
    assert read.merchant_name == "PT. SHOPPEE INDONESIA" and read.merchant_city == "JAKARTA"
    assert read.value("26.00") == "ID.CO.SHOPEE.WWW" and read.value("26.02") == "15863724"
    assert read.value("62.08") == "gen by go-qris"
    assert read.get("62.08").name == "Purpose of Transaction"
    assert read.nmid is None and read.fields.get("51") is None


def test_reads_a_printed_static_qris():
    read = parse(LINKAJA_STATIC, strict=True)
    assert read.crc_ok and not read.is_dynamic and read.amount is None and read.snap_amount is None
    assert read.merchant_name == "Infak Sinergi Foundation" and read.merchant_city == "BANDUNG"
    assert read.nmid == "ID2019013961279" and read.criteria == "UME"
    assert read.value("26.00") == "ID.LINKAJA.WWW"
    # Tag 51 has no PAN here, so the first merchant template's PAN is the merchant's.
    assert read.merchant_pan == "936009110000930005"
    assert read.postal_code == "40173" and read.terminal_label == "A01"
    assert [r[0] for r in read.rows()][:8] == ["00", "01", "26", "26.00", "26.01", "26.02", "26.03", "51"]
    assert read["59"] == "Infak Sinergi Foundation"
    with pytest.raises(KeyError):
        read["54"]


def _with_crc(body: str) -> str:
    body += "6304"
    return body + independent_crc(body)


GOOD = build_dynamic(**VALID, bill_number="INV-001")
GOOD_BODY = GOOD[:-8]  # everything before "6304"
AT_51 = 12  # offset of the tag 51 template, after 000201 010212
AT_CRC = len(GOOD) - 8


def _replace_51(template: str) -> str:
    """GOOD's body with its tag 51 template replaced by ``template``."""
    return GOOD_BODY[:AT_51] + template + GOOD_BODY[GOOD_BODY.index("5204") :]

MALFORMED = [
    # (payload, offset, tag, words in the message)
    # cut short: the 62 template loses its tail and the CRC
    (GOOD[:-10], AT_CRC - 15, "62", "says 11 characters but only 9 follow"),
    ("000201010", 6, "01", "Truncated"),
    ("000201" "0112" "12", 6, "01", "says 12 characters but only 2 follow"),
    ("000201" "A1" + GOOD[8:], 6, None, "Bad data object ID"),
    ("000201" "01X212", 6, "01", "non-digit length"),
    ("000201" "0100" + GOOD[10:], 6, "01", "length 00"),
    (_with_crc("010212" "000201" + GOOD_BODY[12:]), 0, "01", "00 (Payload Format Indicator) first"),
    (_with_crc("000202" + GOOD_BODY[6:]), 4, "00", "'01'"),
    (GOOD_BODY, len(GOOD_BODY) - len("62110107INV-001"), "63", "missing"),
    (GOOD + "6502AB", len(GOOD), "63", "not last (followed by 65)"),
    (GOOD[:-4] + "ZZ12", AT_CRC, "63", "four hex digits"),
    (GOOD[:-8] + "630212", AT_CRC, "63", "four hex digits"),
    (_with_crc(GOOD_BODY + "5802ID"), len(GOOD_BODY), "58", "twice"),
    (_with_crc(_replace_51("51060014AB")), AT_51 + 4, "51.00", "only 2"),
    (_with_crc(_replace_51("51040102")), AT_51 + 4, "51.01", "only 0"),
    (GOOD + "\n", len(GOOD), None, "Control"),
    ("\u200b" + GOOD, 0, None, "invisible"),
    ("0" * (MAX_PAYLOAD_LENGTH + 1), MAX_PAYLOAD_LENGTH, None, "at most 512"),
    ("", 0, None, "empty"),
]


@pytest.mark.parametrize(("payload", "offset", "tag", "says"), MALFORMED)
def test_malformed_payloads_are_refused_with_offset_and_tag(payload, offset, tag, says):
    with pytest.raises(QrisError) as caught:
        parse(payload)
    err = caught.value
    assert says in err.message
    assert (err.offset, err.tag) == (offset, tag)
    assert err.hint


def test_the_fixture_offsets_are_what_they_claim():
    assert GOOD[AT_51 : AT_51 + 2] == "51" and GOOD[AT_CRC:].startswith("6304")
    assert GOOD[AT_CRC - 15 : AT_CRC] == "62110107INV-001"


def test_malformed_offsets_point_where_the_text_says():
    # The truncated template's own children are reported at their position in the whole payload.
    payload = _with_crc(_replace_51("51060014AB"))
    with pytest.raises(QrisError) as caught:
        parse(payload)
    assert payload[caught.value.offset : caught.value.offset + 4] == "0014"


def test_bytes_are_refused_with_a_hint():
    with pytest.raises(QrisError, match="decode"):
        parse(GOOD.encode())  # type: ignore[arg-type]


def test_a_wrong_crc_is_reported_and_strict_raises():
    tampered = GOOD.replace("5405" "10000", "5405" "90000")
    read = parse(tampered)
    assert read.crc_ok is False
    assert read.crc_read == GOOD[-4:] and read.crc_computed == independent_crc(tampered[:-4])
    assert "BAD" in repr(read) and "computed" in read._repr_html_()
    with pytest.raises(QrisError) as caught:
        parse(tampered, strict=True)
    assert (caught.value.tag, caught.value.offset) == ("63", len(GOOD) - 4)
    assert read.crc_read in caught.value.message and read.crc_computed in caught.value.message


def test_lower_case_crc_is_read_as_hex():
    assert parse(GOOD[:-4] + GOOD[-4:].lower()).crc_ok


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=MAX_PAYLOAD_LENGTH + 20),
        st.text(string.digits + "ABC .", max_size=120),
        st.builds(
            lambda cut, insert, at: GOOD[:at] + insert + GOOD[at + cut :],
            st.integers(0, 6),
            st.text(string.digits + "AZ", max_size=6),
            st.integers(0, len(GOOD)),
        ),
    )
)
def test_parse_never_fails_with_anything_but_a_qris_error(text: str):
    try:
        read = parse(text)
    except QrisError as err:
        assert err.hint
    else:
        assert isinstance(read, QrisPayload)
        assert read.objects[0].tag == "00" and read.objects[-1].tag == "63"
        repr(read), read._repr_html_(), read.rows()


# --- data objects and encoding ------------------------------------------------------------------


def test_encode_appends_the_crc_and_refuses_one_given():
    objects = [DataObject("00", "01"), DataObject.template("62", [DataObject("07", "A01")])]
    text = encode(objects)
    assert text == "000201" "62070703A01" "6304" + independent_crc("00020162070703A016304")
    assert encode(objects, crc=False) == "00020162070703A01"
    with pytest.raises(QrisError, match="already contain the CRC"):
        encode([*objects, DataObject("63", "ABCD")])


def test_encode_refuses_more_than_qrcontent_holds():
    many = [DataObject(f"{80 + i}", "X" * 99) for i in range(5)]  # 5 * 103 characters
    with pytest.raises(QrisError, match="at most 512"):
        encode(many)


@pytest.mark.parametrize(
    ("tag", "value", "says"),
    [
        ("5", "x", "two digits"),
        ("A1", "x", "two digits"),
        ("59", "", "1 to 99"),
        ("59", "x" * 100, "1 to 99"),
    ],
)
def test_a_data_object_checks_its_tag_and_length(tag, value, says):
    with pytest.raises(QrisError, match=says):
        DataObject(tag, value)


def test_repr_and_html_are_readable_and_escaped():
    read = parse(build_dynamic(**{**VALID, "merchant_name": "A<b>&C"}))
    text = repr(read)
    assert text.startswith("QrisPayload(dynamic, amount='10000'") and "'A<b>&C'" in text and "ok" in text
    page = read._repr_html_()
    assert "A&lt;b&gt;&amp;C" in page and "A<b>&C" not in page
    assert page.count("<tr>") == len(read.rows()) + 1  # header + one row per object
    assert "Merchant PAN" in page and "✔ ok" in page


def test_rows_list_every_object_with_its_length():
    read = parse(GOOD)
    rows = read.rows()
    assert all(length == len(value) for _, _, length, value in rows)
    assert ("51.02", "Merchant ID (NMID)", 15, "ID1020304050607") in rows
    assert ("62.01", "Bill Number", 7, "INV-001") in rows
    assert rows[-1] == ("63", "CRC", 4, read.crc_read)
    assert not any(re.search(r"[\x00-\x1f]", value) for *_, value in rows)


def test_root_exports_are_lazy_aliases():
    from snapbook import qris

    assert snapbook.parse_qris is qris.parse and snapbook.build_dynamic_qris is qris.build_dynamic
    assert snapbook.QrisPayload is QrisPayload
    assert "QrisError" in snapbook.errors.__all__


# --- the QR image (segno) ---------------------------------------------------------------------


def _decode_png(png: bytes) -> list[str]:
    """Read the QR codes in a PNG with zxing-cpp, a decoder written apart from segno."""
    import io

    import zxingcpp
    from PIL import Image

    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


@pytest.mark.parametrize(
    "extra", [{}, {"postal_code": "12190", "bill_number": "INV-001", "terminal_label": "A01"}]
)
def test_the_png_decodes_back_to_the_exact_payload(extra):
    read = parse(build_dynamic(**VALID, **extra))
    assert _decode_png(read.image().png()) == [read.payload]


def test_the_published_static_sample_round_trips_through_the_image():
    assert _decode_png(parse(LINKAJA_STATIC).image(scale=3).png()) == [LINKAJA_STATIC]


def test_the_image_is_a_full_size_byte_mode_qr_of_the_payload_at_level_m_or_better():
    read = parse(GOOD)
    image = read.image(scale=5, border=4)
    assert image.payload == read.payload
    assert image.code.mode == "byte" and not image.code.is_micro
    assert image.code.error in ("M", "Q", "H")
    assert image.code.designator == f"{image.code.version}-{image.code.error}"
    png = image._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import io

    from PIL import Image

    modules = image.code.symbol_size(scale=1, border=0)[0]
    assert Image.open(io.BytesIO(png)).size == ((modules + 8) * 5,) * 2
    assert repr(image) == (
        f"QrImage(QR {image.code.designator}, byte mode, {modules} modules, {len(read.payload)} characters)"
    )


def test_the_svg_is_inline_svg_of_the_same_symbol():
    import xml.etree.ElementTree as ET

    image = parse(GOOD).image(scale=2, border=4)
    svg = image._repr_svg_()
    assert svg.startswith("<svg") and "<?xml" not in svg
    root = ET.fromstring(svg)
    side = (image.code.symbol_size(scale=1, border=0)[0] + 8) * 2
    assert root.get("width") == root.get("height") == str(side)


def test_the_html_view_shows_the_qr_beside_the_table():
    page = parse(GOOD)._repr_html_()
    assert page.count("<svg") == 1 and "<table>" in page and "Merchant PAN" in page


def test_image_arguments_are_checked():
    read = parse(GOOD)
    for kwargs in ({"scale": 0}, {"scale": 1000}, {"border": -1}, {"scale": 2.5}, {"error": "x"}):
        with pytest.raises(QrisError) as caught:
            read.image(**kwargs)
        assert caught.value.hint


def test_saving_the_image_writes_a_png(tmp_path):
    target = tmp_path / "qris.png"
    parse(GOOD).image().save(str(target))
    assert _decode_png(target.read_bytes()) == [GOOD]


def test_import_snapbook_qris_does_not_import_segno():
    import subprocess
    import sys

    code = "import sys, snapbook.qris; print('segno' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
