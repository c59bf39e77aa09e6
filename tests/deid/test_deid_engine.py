"""The de-identification engine on the bundled files with synthetic PHI planted."""

from __future__ import annotations

import datetime as dt
import io
import warnings
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dicomguard.deid.codec import CodecError, parse, serialize
from dicomguard.deid.engine import Engine, EngineConfig
from dicomguard.deid.profile import ProfileSettings, attribute_type, iod_for, resolve
from dicomguard.deid.remap import Remapper, shift_date
from dicomguard.deid.verify import verify_bytes
from dicomguard.phi.heuristics import _PLACEHOLDER_NAMES

from .deid_corpus import (
    PATIENT_ID,
    PLANTED,
    STUDY_DATE,
    UID_ROOT,
    bundled,
    corpus_files,
    leftovers,
    planted_bytes,
)

KEY = bytes(range(32))
FULL_OPTIONS = frozenset({"retain-longitudinal-modified-dates", "clean-descriptors",
                          "clean-structured-content", "retain-patient-characteristics"})


def engine(options: frozenset[str] = frozenset(), key: bytes = KEY) -> Engine:
    return Engine(EngineConfig(key=key, settings=ProfileSettings(options=options)))


def read(data: bytes) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True)


def _planted_corpus() -> list[tuple[str, bytes]]:
    out = []
    for i, path in enumerate(corpus_files()):
        data = planted_bytes(path, i)
        if data is None:
            continue
        try:
            parse(data)
        except CodecError:
            continue
        out.append((path.name, data))
    return out


PLANTED_CORPUS = _planted_corpus()


def test_corpus_is_substantial() -> None:
    assert len(PLANTED_CORPUS) >= 100


@pytest.mark.parametrize("options", [frozenset(), FULL_OPTIONS], ids=["basic", "options"])
def test_no_planted_value_survives_anywhere(options: frozenset[str]) -> None:
    eng = engine(options)
    failures = {}
    for name, data in PLANTED_CORPUS:
        assert leftovers(data)  # planted for real
        out = eng.deidentify(data).data
        left = leftovers(out)
        if left:
            failures[name] = left
    assert not failures


def test_codec_round_trip_is_byte_identical() -> None:
    same = 0
    for path in corpus_files():
        data = path.read_bytes()
        try:
            pf = parse(data)
        except CodecError:
            continue
        if pf.deflated:
            continue
        out = serialize(pf)
        has_group_length = data[132:136] == b"\x02\x00\x00\x00"
        if has_group_length or pf.preamble is None:
            assert out == data, path.name
            same += 1
    assert same > 100


def test_profile_keeps_what_it_must() -> None:
    data = planted_bytes(bundled("CT_small.dcm"))
    assert data is not None
    before = read(data)
    after = read(engine().deidentify(data).data)
    for kw in ("Modality", "Rows", "Columns", "PixelSpacing", "SOPClassUID", "BitsStored",
               "ImageOrientationPatient", "SliceThickness"):
        assert after.get(kw) == before.get(kw), kw
    assert after["PixelData"].value == before["PixelData"].value
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    # the Basic Profile empties or removes patient characteristics ...
    assert not after.get("PatientSex")
    assert "PatientAge" not in after and "PatientWeight" not in after
    assert "PatientAddress" not in after and "OtherPatientIDs" not in after
    assert "ImageComments" not in after and "StudyDescription" not in after
    assert not [e for e in after.iterall() if e.tag.is_private]


def test_patient_characteristics_kept_under_their_option() -> None:
    ds = read(planted_bytes(bundled("CT_small.dcm")) or b"")
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "057Y", "61.5"
    buf = io.BytesIO()
    ds.save_as(buf)
    after = read(engine(frozenset({"retain-patient-characteristics"})).deidentify(
        buf.getvalue()).data)
    assert (after.PatientSex, after.PatientAge, str(after.PatientWeight)) == ("F", "057Y", "61.5")
    codes = [i.CodeValue for i in after.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113108"]


def test_markers() -> None:
    data = planted_bytes(bundled("CT_small.dcm"))
    assert data is not None
    after = read(engine(FULL_OPTIONS).deidentify(data).data)
    assert after.PatientIdentityRemoved == "YES"
    assert after.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {i.CodeValue for i in after.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113104", "113105", "113107", "113108"}
    assert all(i.CodingSchemeDesignator == "DCM" for i in after.DeidentificationMethodCodeSequence)
    assert "Basic Application Confidentiality Profile" in after.DeidentificationMethod
    basic = read(engine().deidentify(data).data)
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_burned_in_risk_is_not_marked_clean() -> None:
    data = planted_bytes(bundled("US1_UNCR.dcm"))
    assert data is not None
    result = engine().deidentify(data)
    after = read(result.data)
    assert result.burned_in_risk
    assert after.PatientIdentityRemoved == "NO" and after.BurnedInAnnotation == "YES"


def test_clean_descriptors_keeps_the_rest_of_the_text() -> None:
    data = planted_bytes(bundled("CT_small.dcm"))
    assert data is not None
    after = read(engine(FULL_OPTIONS).deidentify(data).data)
    assert after.StudyDescription == "CT for"
    assert "seen" in after.ImageComments and "Patient" in after.ImageComments
    nested = after.RequestAttributesSequence[0]
    assert nested.RequestedProcedureDescription == "Knee for"
    assert "ReferencedStudySequence" not in nested  # X/Z, Type 3 inside it: X


def test_uids_consistent_across_files_runs_and_references() -> None:
    a = planted_bytes(bundled("CT_small.dcm"), 1)
    b = planted_bytes(bundled("MR_small.dcm"), 2)
    assert a is not None and b is not None
    out_a = read(engine().deidentify(a).data)
    out_b = read(engine().deidentify(b).data)       # another engine: another "run"
    assert out_a.StudyInstanceUID == out_b.StudyInstanceUID
    assert out_a.StudyInstanceUID.startswith("2.25.")
    assert len(out_a.StudyInstanceUID) <= 64
    assert out_a.SOPInstanceUID != out_b.SOPInstanceUID
    remapper = Remapper(KEY)
    assert "ReferencedStudySequence" not in out_a  # X/Z, Type 3 in the CT IOD: removed
    series = out_a.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == out_a.SeriesInstanceUID == out_b.SeriesInstanceUID
    ref = series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert ref == out_b.SOPInstanceUID  # file 1 references file 2: the reference still holds
    assert ref == remapper.uid(f"{UID_ROOT}.3.2".encode()).decode()
    # a UID referenced in one file and carried by another maps to the same value
    assert remapper.uid(f"{UID_ROOT}.3.1".encode()).decode() == out_a.SOPInstanceUID
    other_key = read(engine(key=bytes(32)).deidentify(a).data)
    assert other_key.StudyInstanceUID != out_a.StudyInstanceUID
    assert out_a.PatientID == out_b.PatientID != PATIENT_ID
    assert out_a.SOPClassUID == read(a).SOPClassUID  # well-known UIDs are not remapped


def test_dates_keep_their_intervals_under_modified_dates() -> None:
    data = planted_bytes(bundled("CT_small.dcm"))
    assert data is not None
    ds = read(data)
    ds.ContentDate = "20190620"
    ds.AcquisitionDateTime = "20190613101500.25+0100"
    buf = io.BytesIO()
    ds.save_as(buf)
    opts = frozenset({"retain-longitudinal-modified-dates"})
    after = read(engine(opts).deidentify(buf.getvalue()).data)
    other = read(engine(opts).deidentify(planted_bytes(bundled("MR_small.dcm")) or b"").data)

    def day(value: str) -> dt.date:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()

    assert after.StudyDate != STUDY_DATE
    assert (day(after.ContentDate) - day(after.StudyDate)).days == 6
    assert (day(after.StudyDate) - day(after.AcquisitionDateTime)).days == 1
    assert after.AcquisitionDateTime[8:] == "101500.25+0100"  # time of day and zone kept
    assert other.StudyDate == after.StudyDate               # same patient, same offset
    assert 1 <= (day(STUDY_DATE) - day(after.StudyDate)).days <= 3652


def test_shift_date_forms() -> None:
    assert shift_date(b"20200301", -1) == b"20200229"
    assert shift_date(b"20200301-20200302", -1) == b"20200229-20200301"
    assert shift_date(b"20200301120000-0500", 1, "DT") == b"20200302120000-0500"
    assert shift_date(b"not a date", 1) is None


def test_type_resolution_from_the_iod() -> None:
    ct = iod_for("1.2.840.10008.5.1.4.1.1.2")
    assert ct == "ct-image"
    assert attribute_type(ct, 0, 0x00080023) == 2          # ContentDate, Type 2 in CT
    assert resolve("Z/D", 2) == "Z" and resolve("Z/D", 1) == "D"
    assert resolve("X/Z/U*", 3) == "U" and resolve("X/Z/U*", 1) == "U"
    assert resolve("X/D", 2) == "Z" and resolve("X/D", 3) == "X"
    assert attribute_type(ct, 0, 0x00081140) == 3          # ReferencedImageSequence: Type 3
    assert attribute_type(None, 0, 0x00081140) == 1        # unknown IOD: the strongest
    assert attribute_type(ct, 0x00100026 >> 0, 0x00100020) == 1   # nested PatientID


def test_pixel_data_bit_identical_for_every_file_not_redacted() -> None:
    eng = engine()
    checked = 0
    for name, data in PLANTED_CORPUS[:60]:
        before, after = parse(data), parse(eng.deidentify(data).data)
        pix_b = [bytes(e.value) for e in before.dataset if e.tag == 0x7FE00010]
        pix_a = [bytes(e.value) for e in after.dataset if e.tag == 0x7FE00010]
        assert pix_a == pix_b, name
        checked += bool(pix_b)
    assert checked > 30


def test_output_verifies_clean() -> None:
    eng = engine(FULL_OPTIONS)
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "emri_small.dcm"):
        data = planted_bytes(bundled(name))
        assert data is not None
        verdict = verify_bytes(eng.deidentify(data).data, name)
        assert verdict.ok, (name, verdict.issues, verdict.error)


def test_verify_catches_a_surviving_value() -> None:
    data = planted_bytes(bundled("CT_small.dcm"))
    assert data is not None
    ds = read(engine().deidentify(data).data)
    ds.ImageComments = "left behind"
    buf = io.BytesIO()
    ds.save_as(buf)
    verdict = verify_bytes(buf.getvalue())
    assert not verdict.ok
    assert any(kw == "ImageComments" for kw, _ in verdict.issues)
    assert all("left behind" not in reason for _, reason in verdict.issues)


def test_overrides_win(tmp_path: Path) -> None:
    from dicomguard.deid.overrides import OverrideError, load_overrides

    toml = tmp_path / "o.toml"
    toml.write_text('keep = ["PatientAge"]\nremove = ["Manufacturer"]\n'
                    '[replace]\nInstitutionName = "RESEARCH SITE"\n')
    over = load_overrides(toml)
    ds = read(planted_bytes(bundled("CT_small.dcm")) or b"")
    ds.PatientAge = "033Y"
    buf = io.BytesIO()
    ds.save_as(buf)
    eng = Engine(EngineConfig(key=KEY, settings=ProfileSettings(overrides=over)))
    after = read(eng.deidentify(buf.getvalue()).data)
    assert after.PatientAge == "033Y"
    assert "Manufacturer" not in after
    assert after.InstitutionName == "RESEARCH SITE"
    toml.write_text('keep = ["NoSuchKeyword"]\n')
    with pytest.raises(OverrideError):
        load_overrides(toml)


_TEXT_TARGETS = ("ImageComments", "StudyDescription", "SeriesDescription", "Manufacturer",
                 "ProtocolName", "OperatorsName", "PerformedProcedureStepDescription",
                 "DerivationDescription", "InstitutionalDepartmentName", "StationName",
                 "ManufacturerModelName", "AdditionalPatientHistory", "ReasonForStudy",
                 "RequestedProcedureDescription", "ContrastBolusAgent", "PatientComments")
_BASE = planted_bytes(bundled("CT_small.dcm")) or b""
_OPTION_SETS = (frozenset(), FULL_OPTIONS, frozenset({"retain-device-identity"}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
                    min_size=5, max_size=14),
       target=st.sampled_from(_TEXT_TARGETS),
       context=st.sampled_from(("{}", "seen by {} today", "{}, follow-up", "Mr {}")),
       options=st.sampled_from(_OPTION_SETS))
def test_property_planted_name_never_survives(word: str, target: str, context: str,
                                              options: frozenset[str]) -> None:
    eng = engine(options)
    baseline = eng.deidentify(_BASE).data.lower()
    assume(word.lower().encode() not in baseline)
    # placeholder words (anonymous, anonymised, removed, ...) identify nobody: not names
    assume(word.lower() not in _PLACEHOLDER_NAMES)
    ds = read(_BASE)
    ds.PatientName = f"Zyxwvort^Quorbin^{word}"
    setattr(ds, target, context.format(word)[:16] if target in (
        "StationName", "OperatorsName") else context.format(word))
    buf = io.BytesIO()
    ds.save_as(buf)
    out = eng.deidentify(buf.getvalue()).data
    assert word.lower().encode() not in out.lower()
    assert not leftovers(out, PLANTED)
