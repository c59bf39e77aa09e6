"""The header reader against pydicom on every file bundled with pydicom and pydicom-data.

Comparison (exact): for every element pydicom reads with dcmread(stop_before_pixels=True)
(force=True only for files without preamble), keyed by (path, tag) where path is the chain of
(sequence tag, item index):
- pydicom's still-raw elements (RawDataElement): our raw value bytes equal theirs byte for byte,
  and our VR equals the VR read from the file (explicit VR) or, for implicit VR, the dictionary
  VR of public tags with an unambiguous VR;
- sequences: pydicom's parsed items give the paths; both sides must have the same set of keys;
- elements pydicom has already converted while reading (the meta group, SpecificCharacterSet):
  our decoded value (values.text_values / decode_numbers) equals pydicom's value.
Deviations are listed in DEVIATIONS / NOT_DICOM with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dicomfile_corpus import (
    corpus_files,
    corpus_id,
    iter_dictionary_vr,
    our_elements,
    pydicom_elements,
    pydicom_read,
)

from dicomguard.dicomfile import BytesSource, Element, Header, read_header
from dicomguard.dicomfile.values import TEXT_VRS, decode_numbers, text_values

FILES = corpus_files()

# Files that pydicom reads only with force=True, producing garbage, which we (rightly) do not
# take for DICOM.
NOT_DICOM = {
    "pydicom/README.txt": "text",
    "pydicom/dicomdirtests/README.txt": "text",
    "pydicom/dicomdirtests/TINY_ALPHA/README": "text",
    "pydicom/crayons.icc": "ICC profile",
    "pydicom/test1.json": "DICOM JSON, not a DICOM file",
    "pydicom/test_PN.json": "DICOM JSON, not a DICOM file",
    "pydicom/rtplan.dump": "text dump",
    "pydicom/rtstruct.dump": "text dump",
    "pydicom/zipMR.gz": "gzip",
    # Begins with one stray byte (0x20) before an explicit VR LE data set; pydicom with force
    # reads it as one implicit element (0820,0500) of 173 MB. Nothing at offset 0 is a data set.
    "pydicom/no_meta.dcm": "stray first byte: no data set at offset 0",
}

# Files where our result differs from pydicom's on purpose; each entry says how.
DEVIATIONS = {
    # The last item of the Directory Record Sequence declares 24 bytes more than the file has.
    # pydicom reads to the end of the file leniently; we stop at the bad item with an error and
    # keep everything read before it.
    "pydicom/dicomdirtests/DICOMDIR-nooffset": "error",
    # Cut in the middle of a nested value. pydicom keeps the element with its short value; we
    # report truncated=True (and an error, as the whole file was read) and leave out the
    # incomplete element.
    "pydicom/rtplan_truncated.dcm": "truncated",
}


def _decoded(vr: str | None, our_vr: str, raw: bytes) -> object:
    vr = vr if our_vr == "UN" and vr else our_vr
    if vr in TEXT_VRS:
        return text_values(raw, vr)
    try:
        return decode_numbers(raw, vr)
    except ValueError:
        return raw


def _differences(header: Header, path: Path, *, force: bool) -> list[str]:
    ds = pydicom_read(path, force=force)
    assert ds is not None
    theirs = pydicom_elements(ds)
    ours = our_elements(header)
    problems: list[str] = []
    for key, (vr, value) in theirs.items():
        if key not in ours:
            problems.append(f"missing {key}")
            continue
        our_vr, our_value = ours[key]
        if isinstance(value, list):
            if _decoded(vr, our_vr, our_value) != value:
                problems.append(f"converted value differs {key}: {value!r}")
        elif value != our_value:
            problems.append(f"value differs {key}")
        elif vr is not None and vr != our_vr:
            problems.append(f"VR differs {key}: {vr} != {our_vr}")
        elif vr is None and header.implicit_vr:
            expected = list(iter_dictionary_vr(key[1]))
            if expected and expected[0] != our_vr and not (expected[0] == "SQ" and our_vr == "SQ"):
                problems.append(f"implicit VR differs {key}: {expected[0]} != {our_vr}")
    problems.extend(f"extra {key}" for key in ours if key not in theirs)
    return problems


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_same_elements_as_pydicom(path: Path) -> None:
    name = corpus_id(path)
    header = read_header(path)
    if name in NOT_DICOM:
        assert not header.is_dicom, NOT_DICOM[name]
        assert header.elements == []
        return
    assert header.is_dicom, f"{name} not recognised as DICOM"
    force = not header.has_preamble and not header.meta
    if pydicom_read(path, force=False) is None:
        assert force, "pydicom needs force=True, but the file has a preamble or meta group"
    problems = _differences(header, path, force=force)
    deviation = DEVIATIONS.get(name)
    if deviation == "error":
        assert header.error is not None and not header.truncated
        assert problems and all(p.startswith("missing") for p in problems)
    elif deviation == "truncated":
        assert header.truncated and header.error is not None
        assert len(problems) == 1 and problems[0].startswith("missing")
    else:
        assert header.error is None, header.error
        assert not header.truncated
        assert problems == []


def _flat(header: Header) -> list[Element]:
    return [*header.meta, *header.elements]


DICOM_FILES = [p for p in FILES if corpus_id(p) not in NOT_DICOM]


@pytest.mark.parametrize("path", DICOM_FILES, ids=corpus_id)
def test_truncated_prefixes(path: Path) -> None:
    data = path.read_bytes()
    full = read_header(data)
    full_elements = _flat(full)
    stop = full.end_offset if not full.deflated else len(data)
    cuts = {0, 1, 7, 100, 131, 132, 133, 140, 200, 333, 1000, 4096, len(data) // 3,
            len(data) // 2, stop - 1, stop - 7, len(data) - 1}
    for cut in sorted(c for c in cuts if 0 <= c < len(data)):
        part = read_header(BytesSource(data[:cut], total_size=len(data)))
        got = _flat(part)
        assert got == full_elements[:len(got)], f"cut at {cut}: not a prefix"
        if full.deflated or full.error is not None:
            continue  # only the prefix property: where the data ends is not known exactly
        if cut < stop:
            assert part.truncated, f"cut at {cut} < {stop} not reported truncated"
            # a cut source is not an error in itself
            assert part.error is None or part.error == full.error, part.error
        else:
            assert got == full_elements and not part.truncated


def test_corpus_covers_the_encodings() -> None:
    by_name = {corpus_id(p): p for p in FILES}
    dfl = read_header(by_name["pydicom/image_dfl.dcm"])
    assert dfl.deflated and dfl.ok and dfl.pixel is not None and len(dfl.elements) > 10
    be = read_header(by_name["pydicom/MR_small_bigendian.dcm"])
    assert not be.little_endian and be.ok and be.text(0x00100010) == "CompressedSamples^MR1"
    assert be.numbers(0x00280010) == [64]
    imp = read_header(by_name["pydicom/MR_small_implicit.dcm"])
    assert imp.implicit_vr and imp.ok
    headerless = read_header(by_name["pydicom/rtstruct.dcm"])
    assert headerless.is_dicom and not headerless.has_preamble and headerless.implicit_vr
    nested = read_header(by_name["pydicom/test-SR.dcm"])
    assert max(e.depth for e in nested.elements) >= 5

