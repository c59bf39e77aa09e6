"""Synthetic PHI planted into copies of the bundled pydicom / pydicom-data files.

Every planted value is invented. ``plant(ds)`` writes them into a pydicom Dataset (top level,
nested sequences and a private block); ``PLANTED`` lists the values that must not survive, as
they appear in bytes.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
try:
    import data_store

    DATA_STORE_FILES: Path | None = Path(data_store.__file__).parent / "data"
except ImportError:  # pragma: no cover - pydicom-data is a test dependency
    DATA_STORE_FILES = None

NAME = "Zyxwvort^Quorbin"
PATIENT_ID = "QX-938271"
BIRTH_DATE = "19610317"
STUDY_DATE = "20190614"
ADDRESS = "42 Wexmoor Lane Plimsby"
PHONE = "+44 20 7946 0321"
INSTITUTION = "Grelvon Memorial Hospital"
REFERRING = "Vantrask^Odella"
ACCESSION = "ACC77341902"
OTHER_ID = "OPID55122"
UID_ROOT = "1.2.826.0.1.3680043.99.777"

#: Values whose bytes (ASCII, case-insensitive) must appear nowhere in an output file.
PLANTED: tuple[str, ...] = (
    "Zyxwvort", "Quorbin", PATIENT_ID, BIRTH_DATE, STUDY_DATE, "Wexmoor", "Plimsby",
    "7946 0321", "Grelvon", "Vantrask", "Odella", ACCESSION, OTHER_ID, UID_ROOT,
)


def corpus_files() -> list[Path]:
    roots = [PYDICOM_FILES] + ([DATA_STORE_FILES] if DATA_STORE_FILES else [])
    return sorted(p for root in roots for p in root.rglob("*.dcm") if p.is_file())


def bundled(name: str) -> Path:
    for root in (PYDICOM_FILES, DATA_STORE_FILES):
        if root is not None and (root / name).is_file():
            return root / name
    raise FileNotFoundError(name)


def plant(ds: Dataset, index: int = 0, *, patient_id: str = PATIENT_ID) -> Dataset:
    """Write the synthetic PHI into ``ds`` (in place) and return it."""
    ds.PatientName = NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = BIRTH_DATE
    ds.PatientAddress = ADDRESS
    ds.PatientTelephoneNumbers = PHONE
    ds.OtherPatientIDs = OTHER_ID
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = ADDRESS
    ds.ReferringPhysicianName = REFERRING
    ds.PerformingPhysicianName = REFERRING
    ds.AccessionNumber = ACCESSION
    ds.StudyDate = STUDY_DATE
    ds.SeriesDate = STUDY_DATE
    ds.StudyDescription = f"CT for Quorbin Zyxwvort {PATIENT_ID}"
    ds.ImageComments = f"Patient Quorbin Zyxwvort seen, call {PHONE}"
    ds.StudyInstanceUID = f"{UID_ROOT}.1"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2"
    ds.SOPInstanceUID = f"{UID_ROOT}.3.{index}"
    if hasattr(ds, "file_meta") and ds.file_meta is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = f"{UID_ROOT}.9"
    ds.ReferencedStudySequence = Sequence([ref])
    req = Dataset()
    req.RequestedProcedureDescription = "Knee for Zyxwvort"
    req.RequestedProcedureID = OTHER_ID
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = f"{UID_ROOT}.10"
    req.ReferencedStudySequence = Sequence([inner])
    ds.RequestAttributesSequence = Sequence([req])
    # references kept by the profile (not in Table E.1-1), their UIDs remapped: two levels
    inst = Dataset()
    inst.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inst.ReferencedSOPInstanceUID = f"{UID_ROOT}.3.{index + 1}"
    series = Dataset()
    series.SeriesInstanceUID = f"{UID_ROOT}.2"
    series.ReferencedInstanceSequence = Sequence([inst])
    ds.ReferencedSeriesSequence = Sequence([series])
    block = ds.private_block(0x0011, "ACME SYNTHETIC", create=True)
    block.add_new(0x10, "LO", NAME.replace("^", " "))
    block.add_new(0x11, "LO", PATIENT_ID)
    return ds


def planted_bytes(path: Path, index: int = 0, **kw: str) -> bytes | None:
    """The file with PHI planted, as bytes; None when pydicom cannot rewrite it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" in ds and not hasattr(ds, "file_meta"):
                return None
            plant(ds, index, **kw)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=False)
        except Exception:
            return None
    return buf.getvalue()


def leftovers(data: bytes, values: tuple[str, ...] = PLANTED) -> list[str]:
    low = data.lower()
    return [v for v in values if v.lower().encode("ascii") in low]
