"""The PHI inspector on bundled files and on copies with planted PHI (pydicom writes them)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomguard.dicomfile import BytesSource, read_header
from dicomguard.models import Severity
from dicomguard.phi.inspector import (
    Category,
    Inspector,
    RiskFlag,
    face_risk,
    inspect,
    severity_for,
)

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
try:
    import data_store

    DATA_STORE: Path | None = Path(data_store.__file__).parent / "data"
except ImportError:  # pragma: no cover - pydicom-data is a test extra
    DATA_STORE = None

CT_SMALL = TEST_FILES / "CT_small.dcm"
# values that must never appear in default output (CT_small.dcm)
CT_VALUES = ("CompressedSamples", "1CT1", "JFK IMAGING", "20040119", "ABCD1234", "CT01_OC0")


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _ct() -> Dataset:
    return pydicom.dcmread(CT_SMALL)


def test_ct_small_keywords_and_no_values() -> None:
    result = inspect(read_header(CT_SMALL))
    for kw in ("PatientName", "PatientID", "StudyDate", "InstitutionName", "SOPInstanceUID",
               "StudyInstanceUID", "(0009,01,GEMS_IDEN_01)"):
        assert kw in result.attributes, kw
    assert result.attributes["PatientID"] == 3   # top level + two OtherPatientIDsSequence items
    assert result.attribute_categories["PatientName"] is Category.PATIENT_NAME
    assert result.attribute_categories["SOPInstanceUID"] is Category.UID
    assert result.attribute_categories["(0009,01,GEMS_IDEN_01)"] is Category.PRIVATE
    assert "PatientBirthDate" not in result.attributes  # empty values are not PHI
    assert result.flags & RiskFlag.PRIVATE_TAGS
    assert result.severity is Severity.CRITICAL
    assert result.hits == ()
    text = repr(result)
    for value in CT_VALUES:
        assert value not in text


def test_detail_without_show_phi_has_paths_not_values() -> None:
    result = Inspector(detail=True).inspect(read_header(CT_SMALL))
    paths = {h.path for h in result.hits}
    assert "OtherPatientIDsSequence[1].PatientID" in paths
    assert all(h.value is None for h in result.hits)
    shown = Inspector(show_phi=True).inspect(read_header(CT_SMALL))
    values = {h.path: h.value for h in shown.hits}
    assert values["PatientName"] == "CompressedSamples^CT1"
    assert values["OtherPatientIDsSequence[0].PatientID"] == "ABCD1234"


def _planted() -> Dataset:
    ds = _ct()
    ds.PatientName = "Smithson^Eleanor"
    ds.PatientID = "MRN778899"
    ds.ImageComments = "Eleanor seen, call 555-867-5309 or eleanor.s@example.org"
    ds.StudyDescription = "CT chest; home 42 Wallaby Way"
    block = ds.private_block(0x0041, "ACME HOSPITAL 1.0", create=True)
    block.add_new(0x10, "LO", "SMITHSON ELEANOR")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    item.ContentDescription = "prior exam of smithson"   # nested free text
    ds.ReferencedImageSequence = Sequence([item])
    return ds


def test_planted_phi_in_free_text_private_and_nested() -> None:
    header = read_header(_bytes(_planted()))
    result = Inspector(detail=True).inspect(header)
    tf = result.text_findings
    assert ("ImageComments", "name") in tf
    assert ("ImageComments", "phone") in tf
    assert ("ImageComments", "email") in tf
    assert ("StudyDescription", "address") in tf
    assert ("(0041,10,ACME HOSPITAL 1.0)", "name") in tf
    assert ("ContentDescription", "name") in tf
    paths = {(h.path, h.source) for h in result.hits}
    assert ("ReferencedImageSequence[0].ContentDescription", "text:name") in paths
    assert ("(0041,10,ACME HOSPITAL 1.0)", "text:name") in paths
    assert Category.CONTACT in result.categories
    blob = repr(result)
    for value in ("Smithson", "SMITHSON", "Eleanor", "555-867", "example.org", "Wallaby",
                  "MRN778899"):
        assert value not in blob


def test_planted_values_shown_only_with_show_phi() -> None:
    header = read_header(_bytes(_planted()))
    hits = Inspector(show_phi=True).inspect(header).hits
    by = {(h.path, h.source): h.value for h in hits}
    assert by[("ImageComments", "text:phone")] == "555-867-5309"
    assert by[("ImageComments", "text:email")] == "eleanor.s@example.org"
    assert by[("ImageComments", "text:name")] == "Eleanor"


def test_prefix_source_is_inspected() -> None:
    data = _bytes(_planted())
    header = read_header(BytesSource(data[:2048], total_size=len(data)))
    assert header.truncated
    assert "PatientName" in inspect(header).attributes


@pytest.mark.skipif(DATA_STORE is None, reason="pydicom-data not installed")
@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"])
def test_ultrasound_without_burned_in_attribute_is_likely(name: str) -> None:
    assert DATA_STORE is not None
    flags = inspect(read_header(DATA_STORE / name)).flags
    assert flags & RiskFlag.BURNED_IN_LIKELY
    assert not flags & RiskFlag.BURNED_IN


def test_burned_in_yes_no_and_secondary_capture() -> None:
    ds = _ct()
    ds.BurnedInAnnotation = "YES"
    assert inspect(read_header(_bytes(ds))).flags & RiskFlag.BURNED_IN
    ds.Modality = "US"
    ds.BurnedInAnnotation = "NO"
    assert not inspect(read_header(_bytes(ds))).flags & (RiskFlag.BURNED_IN
                                                         | RiskFlag.BURNED_IN_LIKELY)
    del ds.BurnedInAnnotation
    ds.Modality = "OT"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    assert inspect(read_header(_bytes(ds))).flags & RiskFlag.BURNED_IN_LIKELY
    assert not inspect(read_header(CT_SMALL)).flags & RiskFlag.BURNED_IN_LIKELY


def test_overlay_and_curve_flags() -> None:
    ds = _ct()
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)
    ds.add_new(0x50000005, "US", 1)
    result = inspect(read_header(_bytes(ds)))
    assert result.flags & RiskFlag.OVERLAY
    assert result.flags & RiskFlag.CURVE
    assert "OverlayData" in result.attributes


@pytest.mark.parametrize(("modality", "body", "thickness", "desc", "expected"), [
    ("CT", "HEAD", "1.0", None, True),
    ("MR", "BRAIN", "3.0", None, True),
    ("CT", "HEAD", "5.0", None, False),       # thick slices: no usable volume
    ("CT", "CHEST", "1.0", None, False),
    ("CT", None, "0.625", "CT BRAIN W/O", True),
    ("US", "HEAD", "1.0", None, False),
])
def test_face_risk_rule(modality: str, body: str | None, thickness: str, desc: str | None,
                        expected: bool) -> None:
    ds = _ct()
    ds.Modality = modality
    if body is not None:
        ds.BodyPartExamined = body
    ds.SliceThickness = thickness
    ds.StudyDescription = desc or "exam"
    header = read_header(_bytes(ds))
    assert face_risk(header) is expected
    assert bool(inspect(header).flags & RiskFlag.FACE) is expected


def test_face_risk_localizer_and_recognisable_features() -> None:
    ds = _ct()
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = "1.0"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    assert not face_risk(read_header(_bytes(ds)))
    ds.RecognizableVisualFeatures = "YES"
    assert face_risk(read_header(_bytes(ds)))


def test_options_change_actions() -> None:
    header = read_header(CT_SMALL)
    kept = Inspector(options=["retain-uids"]).inspect(header)
    assert "SOPInstanceUID" not in kept.attributes
    with pytest.raises(ValueError, match="unknown"):
        Inspector(options=["no-such-option"])


def test_severity_mapping() -> None:
    assert severity_for([Category.UID, Category.DATE], RiskFlag(0)) is Severity.MEDIUM
    assert severity_for([Category.PRIVATE], RiskFlag.PRIVATE_TAGS) is Severity.LOW
    assert severity_for([Category.UID], RiskFlag.BURNED_IN) is Severity.HIGH
    assert severity_for([Category.PATIENT_ID], RiskFlag(0)) is Severity.CRITICAL
    assert severity_for([], RiskFlag(0)) is Severity.INFO


def test_every_bundled_file_inspects_without_error() -> None:
    files = sorted(TEST_FILES.glob("*.dcm"))
    if DATA_STORE is not None:
        files += sorted(DATA_STORE.glob("*.dcm"))
    for path in files:
        header = read_header(path)
        if header.is_dicom:
            inspect(header)
            Inspector(show_phi=True).inspect(header)


# --- property: PHI planted into any text element is flagged ------------------------------------

_TEXT_TARGETS = [
    ("ImageComments", None), ("StudyDescription", None), ("SeriesDescription", None),
    ("AdditionalPatientHistory", None), ("ProtocolName", None), ("DerivationDescription", None),
    ("private", None), ("nested", None),
]
_word = st.text(alphabet="bcdfghjklmnpqrstvwxz", min_size=4, max_size=9)


@st.composite
def _plant(draw: st.DrawFn) -> tuple[str, str, str]:
    family = draw(_word)
    kind = draw(st.sampled_from(["name", "phone", "email", "date", "address"]))
    if kind == "name":
        value = family.upper()
    elif kind == "phone":
        value = f"+{draw(st.integers(1, 99))} {draw(st.integers(100, 999))} " \
                f"{draw(st.integers(100, 999))} {draw(st.integers(1000, 9999))}"
    elif kind == "email":
        value = f"{draw(_word)}@{draw(_word)}.net"
    elif kind == "date":
        value = draw(st.dates()).replace(year=draw(st.integers(1930, 2030))).strftime("%d/%m/%Y")
    else:
        value = f"{draw(st.integers(1, 999))} {draw(_word).title()} Road"
    target = draw(st.sampled_from([t for t, _ in _TEXT_TARGETS]))
    return family, kind, f"{target}|note {value} end"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_plant())
def test_planted_phi_in_any_text_element_is_flagged(case: tuple[str, str, str]) -> None:
    family, kind, spec = case
    target, _, text = spec.partition("|")
    ds = _ct()
    ds.PatientName = f"{family}^Qxw"
    if target == "private":
        ds.private_block(0x0043, "ACME PROP", create=True).add_new(0x20, "LT", text)
        keyword = "(0043,20,ACME PROP)"
    elif target == "nested":
        item = Dataset()
        item.ValueType = "TEXT"
        item.TextValue = text
        ds.ContentSequence = Sequence([item])
        keyword = "TextValue"
    else:
        setattr(ds, target, text)
        keyword = target
    result = inspect(read_header(_bytes(ds)))
    assert (keyword, kind) in result.text_findings
