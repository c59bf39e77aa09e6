"""Burned-in text: real frames of pydicom's examples, real Tesseract, no mocks.

The tokens asserted below were read by eye from the decoded frames (saved as PNG and looked at):
examples_rgb_color / examples_jpeg2k show "BAPTIST MED CTR", "+2:09:04", "MSCSKEL", "LYMPH NODE";
examples_palette shows "PHILIPS", "Philips Healthcare", "5/25/2011", "2:56:22 PM",
"11-05-25-142825"; examples_ybr_color shows "PLA", "Gen THI" and a status bar in 6-pixel type;
gdcm-US-ALOKA-16 shows "*WESTWAY MEDICAL*", "ULTRASOUND", "24-MAY-02", ":M 11:24:20",
"3:PELVIS". Only tokens that OCR reads reliably are asserted.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomguard.phi.pixel_text import (
    TESSERACT_MISSING,
    OcrOptions,
    OcrResult,
    TextBox,
    TextKind,
    classify_text,
    detect_burned_in_text,
    header_identifiers,
    match_identifiers,
    tesseract_unavailable_reason,
)
from dicomguard.phi.pixels import (
    PixelDecodeError,
    decode_frame,
    frame_count,
    iter_display_frames,
    sample_frame_indices,
)

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DATA_STORE_FILES = Path(data_store.__file__).parent / "data"


def sample(name: str) -> Path:
    for folder in (PYDICOM_FILES, DATA_STORE_FILES):
        if (folder / name).is_file():
            return folder / name
    pytest.fail(f"test file {name} is not installed (pydicom / pydicom-data)")


def read(name: str) -> Dataset:
    return pydicom.dcmread(sample(name), force=True)


@pytest.fixture(scope="module")
def tesseract() -> None:
    """Real Tesseract: skip without it, but under CI=true its absence fails the test."""
    reason = tesseract_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"tesseract is required under CI=true: {reason}")
        pytest.skip(reason)


def words(result: OcrResult, frame: int | None = None) -> set[str]:
    """Upper-case letters/digits of every box (OCR adds stray '*', '+' and the like)."""
    return {re.sub(r"[^0-9A-Z:/\-]", "", b.text.upper()) for b in result.boxes
            if frame is None or b.frame == frame}


# ------------------------------------------------------------------------------------------
# Frames with burned-in text

POSITIVE = {
    "examples_rgb_color.dcm": {"BAPTIST", "MED", "CTR", "LYMPH", "NODE"},
    "examples_jpeg2k.dcm": {"BAPTIST", "MED", "CTR", "MSCSKEL", "LYMPH", "NODE"},
    "examples_palette.dcm": {"PHILIPS", "HEALTHCARE", "5/25/2011", "2:56:22", "11-05-25-142825"},
    "examples_ybr_color.dcm": {"PLA"},
    "gdcm-US-ALOKA-16.dcm": {"ULTRASOUND", "11:24:20"},
}


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_finds_burned_in_text(tesseract: None, name: str) -> None:
    result = detect_burned_in_text(sample(name))
    assert result.error is None
    assert result.has_text
    assert POSITIVE[name] <= words(result, frame=0)
    ds = read(name)
    rows, columns = int(ds.Rows), int(ds.Columns)
    for box in result.boxes:
        assert 0 <= box.left < box.right <= columns
        assert 0 <= box.top < box.bottom <= rows
        assert box.confidence >= OcrOptions().min_confidence_structured


def test_boxes_are_in_original_pixel_coordinates(tesseract: None) -> None:
    # ALOKA 640x480: the clock is drawn at the top right, about x 565-640, y 12-24.
    result = detect_burned_in_text(sample("gdcm-US-ALOKA-16.dcm"))
    [clock] = [b for b in result.boxes if "11:24:20" in b.text]
    assert clock.left >= 540 and clock.right <= 640
    assert clock.top >= 8 and clock.bottom <= 28
    assert clock.kind is TextKind.TIME
    # Palette 800x350: "Healthcare" in the blue banner, right of "Philips", about x 415-510.
    result = detect_burned_in_text(sample("examples_palette.dcm"))
    [banner] = [b for b in result.boxes if b.text == "Healthcare"]
    assert banner.left >= 400 and banner.right <= 520
    assert banner.top >= 30 and banner.bottom <= 56


def test_multi_frame_is_sampled(tesseract: None) -> None:
    # 30 YBR_FULL_422 JPEG frames: 10 examined by default, first, middle and last among them.
    result = detect_burned_in_text(sample("examples_ybr_color.dcm"))
    assert result.frames_total == 30
    assert result.frames_examined == len(sample_frame_indices(30, 10)) <= 10
    frames = {b.frame for b in result.boxes}
    assert {0, 15, 29} <= frames
    few = detect_burned_in_text(sample("examples_ybr_color.dcm"), options=OcrOptions(max_frames=3))
    assert few.frames_examined == 3
    assert {b.frame for b in few.boxes} == {0, 15, 29}


# ------------------------------------------------------------------------------------------
# Plain slices: no text

NEGATIVE = [
    "CT_small.dcm",           # CT, signed 16-bit
    "MR_small.dcm",           # MR with a window
    "emri_small.dcm",         # 10-frame MR
    "MR2_UNCI.dcm",           # 1024x1024 MR
    "examples_overlay.dcm",   # MR (the overlay plane is not pixel data)
    "JPEG2000.dcm",           # NM, JPEG 2000
    "OT-PAL-8-face.dcm",      # a palette photograph of a face
]


@pytest.mark.parametrize("name", NEGATIVE)
def test_no_text_on_plain_images(tesseract: None, name: str) -> None:
    result = detect_burned_in_text(sample(name))
    assert result.error is None
    assert result.frames_examined >= 1
    assert result.boxes == ()
    assert not result.has_text
    assert result.matches == {}


# ------------------------------------------------------------------------------------------
# Matching the header against the pixels


def test_invented_header_identifiers_found_in_pixels(tesseract: None) -> None:
    ds = copy.deepcopy(read("examples_palette.dcm"))
    ds.PatientName = "Doe^Jane"                  # not in the pixels
    ds.PatientID = "142825"                      # inside "11-05-25-142825"
    ds.InstitutionName = "PHILIPS HEALTHCARE"    # "Philips Healthcare" in the banner
    ds.StudyDate = "20110525"                    # "5/25/2011" (and "11-05-25")
    ds.StudyTime = "145622"                      # "2:56:22 PM"
    ds.AccessionNumber = "A7731"                 # not in the pixels
    result = detect_burned_in_text(ds)
    assert result.error is None
    assert {"PatientID", "InstitutionName", "StudyDate", "StudyTime"} <= set(result.matches)
    assert "PatientName" not in result.matches
    assert "AccessionNumber" not in result.matches
    assert result.matches["InstitutionName"] == 2  # "Philips" + "Healthcare", not "PHILIPS"

    aloka = copy.deepcopy(read("gdcm-US-ALOKA-16.dcm"))
    aloka.StudyDate = "20020524"                 # drawn as "24-MAY-02"
    aloka.StudyTime = "112420"                   # drawn as "11:24:20"
    aloka.PatientName = "Ultrasound^Jo"          # an invented name equal to a drawn word
    aloka.PatientBirthDate = "20020525"          # one day off: must not match
    result = detect_burned_in_text(aloka)
    assert {"StudyDate", "StudyTime", "PatientName"} <= set(result.matches)
    assert "PatientBirthDate" not in result.matches


def box(text: str, left: int = 0, top: int = 0, frame: int = 0) -> TextBox:
    return TextBox(frame, left, top, 10 * len(text), 12, text, 90.0)


@pytest.mark.parametrize("drawn", [
    "2001-02-03", "03/02/2001", "02/03/2001", "03.02.2001", "03-Feb-2001", "03-FEB-01",
    "3 February 2001", "Feb 3, 2001", "2/3/01", "20010203", "O3.O2.2OO1", "03-Fcb-2001",
])
def test_date_renderings(drawn: str) -> None:
    boxes = [box("Date:"), box(drawn, left=80)]
    assert match_identifiers(boxes, {"StudyDate": "20010203"}) == {"StudyDate": (1,)}


@pytest.mark.parametrize(
    "drawn", ["2001-02-04", "03/03/2001", "03-Mar-2001", "04-Feb-2001", "2001", "03.02"])
def test_other_dates_do_not_match(drawn: str) -> None:
    assert match_identifiers([box(drawn)], {"StudyDate": "20010203"}) == {}


def test_names_ids_and_phrases() -> None:
    boxes = [
        box("SMITH,", 0, 0), box("John", 70, 0),         # a name, surname first
        box("ID:", 0, 40), box("12345678", 40, 40),      # an ID
        box("St.", 0, 80), box("Jude", 40, 80), box("Hospita1", 90, 80),  # OCR slip: 1 for l
        box("Dr", 0, 120), box("Hause", 30, 120),        # fuzzy: Hause ~ House
        box("9876", 0, 160),
    ]
    found = match_identifiers(boxes, {
        "PatientName": "Smith^John^^Dr.",
        "PatientID": "12345678",
        "InstitutionName": "St Jude Hospital",
        "ReferringPhysicianName": "House^Gregory",
        "OtherPatientIDs": "12345",          # a prefix of the ID is not the ID
        "AccessionNumber": "98",             # too short to compare
        "StationName": None,
    })
    assert found == {
        "PatientName": (0, 1, 7),            # "Dr" matches the prefix component, as drawn
        "PatientID": (3,),
        "InstitutionName": (4, 5, 6),
        "ReferringPhysicianName": (8,),
    }


def test_matching_stays_on_one_line_and_frame() -> None:
    # "BAPTIST" and "MED CTR" on different lines (or frames) are not the phrase.
    apart = [box("BAPTIST", 0, 0), box("MED", 0, 100), box("CTR", 50, 100)]
    assert match_identifiers(apart, {"InstitutionName": "Baptist Med Ctr"}) == {}
    frames = [box("BAPTIST", 0, 0, frame=0), box("MED", 80, 0, frame=1),
              box("CTR", 130, 0, frame=1)]
    assert match_identifiers(frames, {"InstitutionName": "Baptist Med Ctr"}) == {}
    joined = [box("BAPTISTMED", 0, 0), box("CTR", 120, 0), box("3cm", 160, 0)]
    assert match_identifiers(joined, {"InstitutionName": "Baptist Med Ctr"}) == {
        "InstitutionName": (0, 1)}


@pytest.mark.parametrize(("text", "kind"), [
    ("24-MAY-O2", TextKind.DATE), ("5/25/2011", TextKind.DATE), ("20020524", TextKind.DATE),
    ("Feb 3, 2001", TextKind.DATE), ("11:24:20", TextKind.TIME), ("2:56", TextKind.TIME),
    ("1234567", TextKind.ID), ("Healthcare", TextKind.NAME), ("BAPTIST", TextKind.NAME),
    ("Smith^John", TextKind.NAME), ("3cm3cm", TextKind.OTHER), ("MI=0.8", TextKind.OTHER),
    ("1.06", TextKind.OTHER),
])
def test_classify_text(text: str, kind: TextKind) -> None:
    assert classify_text(text) is kind


def test_text_stays_out_of_repr() -> None:
    secret = TextBox(0, 1, 2, 3, 4, "DOE^JANE", 99.0)
    assert "DOE" not in repr(secret)
    result = OcrResult(1, 1, (secret,), {"PatientName": 1})
    assert "DOE" not in repr(result)


def test_header_identifiers() -> None:
    ids = header_identifiers(read("examples_rgb_color.dcm"))
    assert ids["InstitutionName"] == "BAPTIST MED CTR"
    assert ids["StudyDate"] == "20040826"
    assert "Rows" not in ids


# ------------------------------------------------------------------------------------------
# Failures are reported, never raised


def test_undecodable_pixel_data_is_an_error() -> None:
    # 12-bit JPEG Extended that no installed plugin decodes.
    result = detect_burned_in_text(sample("JPEG-lossy.dcm"))
    assert result.error is not None
    assert result.error.startswith("pixels: frame 0 of JPEG Extended")
    assert result.boxes == () and result.frames_examined == 0


def test_transfer_syntax_without_decoder_is_an_error() -> None:
    ds = read("CT_small.dcm")
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: no decoder
    result = detect_burned_in_text(ds)
    assert result.error is not None
    assert "no decoder for transfer syntax" in result.error


def test_not_dicom_and_no_pixels(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00\x01not a dicom file" * 10)
    assert detect_burned_in_text(junk).error is not None
    missing = detect_burned_in_text(tmp_path / "absent.dcm")
    assert missing.error is not None and missing.error.startswith("read:")
    plan = detect_burned_in_text(sample("rtplan.dcm"))
    assert plan.error == "pixels: the dataset has no pixel data"


def test_missing_tesseract_is_reported() -> None:
    opts = OcrOptions(tesseract_cmd="/nonexistent/tesseract")
    assert tesseract_unavailable_reason(opts) == TESSERACT_MISSING
    result = detect_burned_in_text(sample("examples_rgb_color.dcm"), options=opts)
    assert result.error == TESSERACT_MISSING
    assert result.frames_total == 1 and result.frames_examined == 0 and not result.has_text


def test_missing_language_is_reported(tesseract: None) -> None:
    reason = tesseract_unavailable_reason(OcrOptions(language="xx_nonexistent"))
    assert reason is not None and "xx_nonexistent" in reason


# ------------------------------------------------------------------------------------------
# Decoding to display images


def display(name: str, index: int = 0) -> np.ndarray:
    ds = read(name)
    [(_, image)] = list(iter_display_frames(ds, [index]))
    return image


def test_display_conversions() -> None:
    assert display("examples_palette.dcm").shape == (350, 800, 3)       # PALETTE COLOR, 8 bit
    aloka = display("gdcm-US-ALOKA-16.dcm")                               # PALETTE COLOR, 16 bit
    assert aloka.shape == (480, 640, 3) and aloka.dtype == np.uint8 and aloka.max() > 200
    big_endian = display("gdcm-US-ALOKA-16_big.dcm")
    assert np.array_equal(aloka, big_endian)
    ybr = display("examples_ybr_color.dcm", 29)                           # YBR_FULL_422 JPEG
    assert ybr.shape == (240, 320, 3)
    # Native YBR_FULL converts to (nearly) the same RGB as the RGB original.
    rgb = display("SC_rgb.dcm").astype(int)
    from_ybr = display("SC_ybr_full_uncompressed.dcm").astype(int)
    assert np.abs(rgb - from_ybr).max() <= 8  # YCbCr rounding
    assert display("SC_rgb_16bit.dcm").dtype == np.uint8
    ct = display("CT_small.dcm")                                          # 16-bit signed, min/max
    assert ct.dtype == np.uint8 and ct.min() == 0 and ct.max() == 255
    seg = display("liver.dcm")                                            # 1 bit
    assert set(np.unique(seg)) <= {0, 255} and seg.max() == 255


def test_monochrome1_is_inverted() -> None:
    ds = read("CT_small.dcm")
    as_mono2 = next(iter_display_frames(ds, [0]))[1]
    ds.PhotometricInterpretation = "MONOCHROME1"
    as_mono1 = next(iter_display_frames(ds, [0]))[1]
    assert np.array_equal(as_mono1, 255 - as_mono2)


def test_voi_window_is_applied() -> None:
    ds = read("MR_small.dcm")
    raw, _ = decode_frame(ds, 0)
    windowed = display("MR_small.dcm")
    # A window narrower than the data saturates: more pixels at the extremes than min/max gives.
    saturated = np.count_nonzero((windowed == 0) | (windowed == 255))
    assert saturated > np.count_nonzero((raw == raw.min()) | (raw == raw.max()))


def test_frame_sampling() -> None:
    assert sample_frame_indices(0) == []
    assert sample_frame_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = sample_frame_indices(120, 10)
    assert picked[0] == 0 and picked[-1] == 119 and 60 in picked and len(picked) <= 10
    assert picked == sorted(set(picked))
    assert sample_frame_indices(100, 1) == [0]
    assert frame_count(read("emri_small.dcm")) == 10
    assert frame_count(read("CT_small.dcm")) == 1


def test_decode_error_type() -> None:
    with pytest.raises(PixelDecodeError):
        decode_frame(read("JPEG-lossy.dcm"), 0)

