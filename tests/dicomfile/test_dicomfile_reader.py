"""Header reader behaviour on synthetic data: structure, private creators, limits, sources."""

from __future__ import annotations

import datetime
import struct
import zlib

import pytest
from dicomfile_build import el, item, part10, seq, txt, uid

from dicomguard.dicomfile import (
    MAX_DEPTH,
    UNDEFINED_LENGTH,
    BytesSource,
    Header,
    codecs_for_charset,
    decode_tags,
    decode_text,
    read_header,
    text_values,
)
from dicomguard.errors import DicomFileError

PATIENT = el(0x00100010, "PN", txt("Doe^Jane")) + el(0x00100020, "LO", txt("ID42"))
SOP = el(0x00080016, "UI", uid("1.2.840.10008.5.1.4.1.1.2")) + el(0x00080060, "CS", txt("CT"))


def test_flat_elements_with_paths() -> None:
    inner = seq(0x0040A730, [item(el(0x0040A160, "UT", txt("nested text")))], undefined=False)
    items = [item(el(0x0020000E, "UI", uid("1.2.5")) + inner),
             item(el(0x0020000E, "UI", uid("1.2.6")), undefined=True)]
    body = SOP + seq(0x00081115, items) + PATIENT
    hdr = read_header(part10(body))
    assert hdr.ok and not hdr.truncated and hdr.pixel is None
    tags = [(e.path, e.tag, e.vr) for e in hdr.elements]
    assert tags == [
        ((), 0x00080016, "UI"), ((), 0x00080060, "CS"),
        ((), 0x00081115, "SQ"),
        (((0x00081115, 0),), 0x0020000E, "UI"),
        (((0x00081115, 0),), 0x0040A730, "SQ"),
        (((0x00081115, 0), (0x0040A730, 0)), 0x0040A160, "UT"),
        (((0x00081115, 1),), 0x0020000E, "UI"),
        ((), 0x00100010, "PN"), ((), 0x00100020, "LO"),
    ]
    assert hdr.elements[2].length == UNDEFINED_LENGTH
    assert hdr.text(0x00100010) == "Doe^Jane"
    assert hdr.text(hdr.elements[5]) == "nested text"
    assert hdr.transfer_syntax == "1.2.840.10008.1.2.1"
    assert hdr.get(0x00020010) is not None and 0x00100020 in hdr


def test_private_creators_per_level() -> None:
    nested = item(el(0x00290010, "LO", txt("INNER")) + el(0x00291001, "LO", txt("in")))
    body = (SOP + el(0x00090010, "LO", txt("ACME 1.0")) + el(0x00090011, "LO", txt("OTHER"))
            + el(0x00091001, "LO", txt("a")) + el(0x00091102, "SH", txt("b"))
            + el(0x00091201, "SH", txt("orphan"))
            + seq(0x00291020, [nested]))
    hdr = read_header(part10(body))
    creators = {(e.path, e.tag): e.private_creator for e in hdr.elements}
    assert creators[((), 0x00091001)] == "ACME 1.0"
    assert creators[((), 0x00091102)] == "OTHER"
    assert creators[((), 0x00091201)] is None  # no creator (0009,0012)
    assert creators[((), 0x00090010)] is None  # a creator element itself
    assert creators[(((0x00291020, 0),), 0x00291001)] == "INNER"
    assert creators[((), 0x00291020)] is None  # (0029,0010) is not at the top level


def test_stops_at_pixel_data_without_reading_it() -> None:
    pixels = b"\x55" * (4 * 1024 * 1024)
    body = SOP + el(0x00280008, "IS", txt("12")) + el(0x7FE00010, "OW", pixels)
    data = part10(body)

    reads: list[tuple[int, int]] = []

    class Spy(BytesSource):
        def read(self, offset: int, size: int) -> bytes:
            reads.append((offset, size))
            return super().read(offset, size)

    hdr = read_header(Spy(data))
    assert hdr.ok and hdr.pixel is not None
    assert hdr.pixel.length == len(pixels) and hdr.pixel.number_of_frames == 12
    assert not hdr.pixel.encapsulated and hdr.pixel.vr == "OW"
    assert hdr.bytes_read <= 64 * 1024
    assert max(o + s for o, s in reads) <= 64 * 1024
    assert data[hdr.pixel.offset:hdr.pixel.offset + 4] == b"\x55" * 4


def test_encapsulated_pixel_data() -> None:
    frag = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    body = SOP + el(0x7FE00010, "OB", frag, length=UNDEFINED_LENGTH)
    hdr = read_header(part10(body, "1.2.840.10008.1.2.4.50"))
    assert hdr.pixel is not None and hdr.pixel.encapsulated
    assert hdr.pixel.transfer_syntax == "1.2.840.10008.1.2.4.50"


def test_nested_icon_pixel_data_is_an_element() -> None:
    icon = item(el(0x00280010, "US", b"\x01\x00") + el(0x7FE00010, "OB", b"\x01\x02"))
    hdr = read_header(part10(SOP + seq(0x00880200, [icon]) + PATIENT))
    assert hdr.pixel is None and hdr.ok
    assert [e.tag for e in hdr.elements if e.path][-1] == 0x7FE00010


def test_depth_limit() -> None:
    def nest(n: int) -> bytes:
        body = el(0x00100010, "PN", txt("deep"))
        for _ in range(n):
            body = seq(0x0040A730, [item(body, undefined=True)])
        return body

    ok = read_header(part10(SOP + nest(MAX_DEPTH)))
    assert ok.ok and max(e.depth for e in ok.elements) == MAX_DEPTH
    bad = read_header(part10(SOP + nest(MAX_DEPTH + 1)))
    assert bad.error is not None and "nested deeper" in bad.error
    with pytest.raises(DicomFileError, match="nested deeper"):
        read_header(part10(SOP + nest(200)), strict=True)


@pytest.mark.parametrize(("body", "message"), [
    (SOP + el(0x00100010, "UT", b"", length=0x7FFFFFF0), "data ends inside an element"),
    (SOP + el(0x00100010, "PN", b"", length=0xFFF0), "data ends inside an element"),
    (SOP + b"\x10\x00\x10\x00ZZ\x04\x00abcd", "invalid VR"),
    (SOP + struct.pack("<HHL", 0xFFFE, 0xE00D, 0), "unexpected delimiter"),
    (SOP + seq(0x00081115, [item(el(0x00100010, "PN", b"x" * 40, length=64))],
               undefined=False), "runs past the end"),
    (SOP + el(0x00081115, "SQ", el(0x00100010, "PN", b"ab")), "expected an item"),
])
def test_bad_bytes_give_an_error(body: bytes, message: str) -> None:
    hdr = read_header(part10(body))
    assert hdr.is_dicom and hdr.error is not None and message in hdr.error
    assert [e.tag for e in hdr.elements][:2] == [0x00080016, 0x00080060]


def test_max_elements() -> None:
    body = SOP + b"".join(el(0x00110000 | 0x1000 + i, "LO", b"ab") for i in range(100))
    hdr = read_header(part10(body), max_elements=50)
    assert hdr.error is not None and "more than" in hdr.error


def test_prefix_and_max_bytes() -> None:
    data = part10(SOP + PATIENT + el(0x7FE00010, "OW", b"\0" * 100))
    full = read_header(data)
    cut = full.elements[-1].offset - 3
    part = read_header(BytesSource(data[:cut], total_size=len(data)))
    assert part.truncated and part.error is None
    assert part.elements == full.elements[:len(part.elements)] and len(part.elements) >= 2
    capped = read_header(data, max_bytes=cut)
    assert capped.truncated and capped.error is None and capped.elements == part.elements
    # a whole file cut short is truncated and says so
    short = read_header(data[:cut])
    assert short.truncated and short.error is not None


def test_undefined_length_un_is_an_implicit_sequence() -> None:
    inner = el(0x00100010, "PN", txt("Hidden^Name"), implicit=True)
    un = (el(0x00091010, "UN", b"", length=UNDEFINED_LENGTH) + item(inner, undefined=True)
          + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
    hdr = read_header(part10(SOP + el(0x00090010, "LO", txt("ACME")) + un))
    assert hdr.ok
    names = [e for e in hdr.elements if e.tag == 0x00100010]
    assert names and names[0].path == ((0x00091010, 0),) and names[0].vr == "PN"
    assert hdr.text(names[0]) == "Hidden^Name"


def test_implicit_and_headerless() -> None:
    body = (el(0x00080005, "CS", txt("ISO_IR 100"), implicit=True)
            + el(0x00080016, "UI", uid("1.2.840.10008.5.1.4.1.1.2"), implicit=True)
            + el(0x00100010, "PN", txt("Müller^Anna"), implicit=True)
            + el(0x00280103, "US", b"\x01\x00", implicit=True)
            + el(0x00280106, "US", b"\xff\xff", implicit=True))
    hdr = read_header(body)
    assert hdr.is_dicom and hdr.implicit_vr and not hdr.has_preamble and hdr.ok
    assert hdr.text(0x00100010) == "Müller^Anna"
    assert hdr.get(0x00280106).vr == "SS"  # type: ignore[union-attr]
    assert hdr.numbers(0x00280106) == [-1]
    with_meta = read_header(part10(body, "1.2.840.10008.1.2"))
    assert [e[:4] for e in with_meta.elements] == [e[:4] for e in hdr.elements]


@pytest.mark.parametrize("data", [
    b"", b"DICM", b"\0" * 200, b"hello world" * 30, b"\x08\x00\x05\x00" + b"\xff" * 60,
    b"%PDF-1.4\n" + b"\0" * 300,
])
def test_not_dicom(data: bytes) -> None:
    hdr = read_header(data)
    assert not hdr.is_dicom and hdr.elements == [] and hdr.error is None


def test_deflated() -> None:
    body = SOP + PATIENT + el(0x7FE00010, "OW", b"\0" * 1000)
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed = z.compress(body) + z.flush()
    hdr = read_header(part10(packed, "1.2.840.10008.1.2.1.99"))
    assert hdr.ok and hdr.deflated and hdr.text(0x00100020) == "ID42" and hdr.pixel is not None
    broken = read_header(part10(packed[:10] + b"\xff" * 40, "1.2.840.10008.1.2.1.99"))
    assert broken.error is not None or broken.truncated


def test_missing_file() -> None:
    hdr = read_header("/nonexistent/file.dcm")
    assert not hdr.is_dicom and hdr.error is not None and "cannot open" in hdr.error
    with pytest.raises(DicomFileError):
        read_header("/nonexistent/file.dcm", strict=True)


def test_value_helpers() -> None:
    assert codecs_for_charset("ISO_IR 192") == ("utf_8",)
    assert codecs_for_charset("\\ISO 2022 IR 87") == ("latin_1", "iso2022_jp_2")
    assert decode_text("Ærø^Å ".encode(), "PN", ("utf_8",)) == "Ærø^Å"
    assert decode_text(b"\xe9t\xe9", "LO", ("utf_8",)) == "\ufffdt\ufffd"
    assert text_values(b"A\\B \\", "CS") == ["A", "B", ""]
    assert text_values(b"a\\b", "LT") == ["a\\b"]
    assert decode_tags(b"\x10\x00\x10\x00") == [0x00100010]
    hdr = Header(elements=[], meta=[])
    assert hdr.text(0x00100010) is None and hdr.values(0x00100010) == []
    raw = read_header(part10(SOP + el(0x00100030, "DA", txt("19700402"))))
    assert raw.date(0x00100030) == datetime.date(1970, 4, 2)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("implicit", [False, True])
def test_undefined_length_sequence_inside_defined_length_item(fast: bool, implicit: bool,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    # (0008,1110)[defined item: (0008,1199)[undefined SQ, delimiter], PatientName], PatientID:
    # the inner sequence ends at its delimiter, not at the end of the item around it
    import io

    import pydicom
    from dicomfile_corpus import our_elements, pydicom_elements

    from dicomguard.dicomfile import reader

    monkeypatch.setattr(reader, "_FAST_PATH", fast)
    inner = seq(0x00081199, [item(el(0x00081155, "UI", uid("1.2.3"), implicit=implicit))],
                undefined=True, implicit=implicit)
    outer_item = item(inner + el(0x00100010, "PN", txt("Doe^Jo"), implicit=implicit))
    body = (el(0x00080060, "CS", txt("CT"), implicit=implicit)
            + seq(0x00081110, [outer_item], undefined=False, implicit=implicit)
            + el(0x00100020, "LO", txt("ID1"), implicit=implicit))
    data = part10(body, "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    header = read_header(BytesSource(data))
    assert header.error is None
    ours = our_elements(header)
    assert set(ours) == set(pydicom_elements(pydicom.dcmread(io.BytesIO(data))))
    assert any(len(key[0]) == 2 for key in ours)  # the nested UID was read


def test_undefined_length_sequence_missing_its_delimiter_ends_with_its_item() -> None:
    inner = seq(0x00081199, [item(el(0x00081155, "UI", uid("1.2.3")))], undefined=True)
    inner = inner[:-8]  # drop the sequence delimitation item
    body = seq(0x00081110, [item(inner)], undefined=False) + el(0x00100020, "LO", txt("ID1"))
    for fast in (True, False):
        from dicomguard.dicomfile import reader

        saved, reader._FAST_PATH = reader._FAST_PATH, fast
        try:
            header = read_header(BytesSource(part10(body)))
        finally:
            reader._FAST_PATH = saved
        assert header.error is None
        assert [(len(e.path), e.tag) for e in header.elements] == [
            (0, 0x00081110), (1, 0x00081199), (2, 0x00081155), (0, 0x00100020)]


@pytest.mark.parametrize("path", ["exact", "fast-python", "fast-c"])
def test_short_pixel_representation_does_not_read_the_next_element(
        path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # implicit VR: PixelRepresentation with a 1-byte value followed by bytes that would read
    # as 1 (signed); a later "US or SS" element must stay US, on every path
    from dicomguard.dicomfile import reader

    if path == "fast-c" and reader._SCAN is None:
        pytest.skip("C accelerator not built")  # test_fastscan_c requires it under CI
    monkeypatch.setattr(reader, "_FAST_PATH", path != "exact")
    if path == "fast-python":
        monkeypatch.setattr(reader, "_SCAN", None)
    # a 1-byte 0x01, then (0400,0005), whose first byte is 0x00: "01 00" would mean signed
    body = (el(0x00280103, "US", b"\x01", implicit=True)
            + el(0x04000005, "US", b"\x05\x00", implicit=True)
            + el(0x00280106, "US", b"\x01\x00", implicit=True))   # SmallestImagePixelValue
    header = read_header(BytesSource(part10(body, "1.2.840.10008.1.2")))
    assert header.error is None
    vrs = {e.tag: e.vr for e in header.elements}
    assert vrs[0x00280106] == "US"
