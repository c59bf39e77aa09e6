"""Synthetic patients for the lab: invented identities on pixel data bundled with pydicom.

Every study is built from scratch: only the pixel data and a short allow-list of technical,
non-identifying attributes (`_TECHNICAL`) are copied from the files pydicom ships
(CT_small.dcm, MR_small.dcm, examples_rgb_color.dcm, examples_palette.dcm). Names, IDs, UIDs,
dates, institution, devices, physicians and private tags are all invented, deterministically
from a seed, so nothing of the originals' identities survives and two runs with the same seed
produce byte-identical datasets.

Files are read from pydicom's installed `data/test_files` folder directly: never through
`get_testdata_file`, which may try to download.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundImageStorage,
)

#: Root of every UID the lab invents: 2.25.<decimal of a 128-bit hash> (PS3.5 B.2).
UID_ROOT = "2.25."
INSTITUTION = "Dicomguard Lab Hospital"
MANUFACTURER = "Dicomguard Lab"
PRIVATE_CREATOR = "DICOMGUARD LAB"
IMPLEMENTATION_VERSION_NAME = "DGUARD_LAB"

#: Family and given names that cannot be mistaken for real people.
_FAMILY = ("LABPATIENT", "SYNTHETIC", "FICTIVE", "INVENTED", "MADEUP", "PLACEHOLDER")
_GIVEN = ("ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL")

#: Source file (in pydicom's test_files), SOP class and body part by modality.
_SOURCES: dict[str, tuple[str, UID, str]] = {
    "CT": ("CT_small.dcm", CTImageStorage, "CHEST"),
    "MR": ("MR_small.dcm", MRImageStorage, "HEAD"),
    "US": ("examples_rgb_color.dcm", UltrasoundImageStorage, "ABDOMEN"),
    "US-PALETTE": ("examples_palette.dcm", UltrasoundImageStorage, "ABDOMEN"),
    "CR": ("MR_small.dcm", ComputedRadiographyImageStorage, "CHEST"),
}

#: The only attributes copied from a source file: image pixel description and acquisition
#: geometry. Nothing here can identify a person, a place or a device.
_TECHNICAL = (
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelSpacing",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "SliceThickness",
    "KVP", "RepetitionTime", "EchoTime", "ImagingFrequency", "MagneticFieldStrength",
    "FlipAngle", "ImageOrientationPatient", "PixelData",
)

#: The study plan: (patient index, source key, series, instances per series). Six patients,
#: nine studies, a CT/MR/US/CR mix. Counts are fixed; identities come from the seed.
STUDY_PLAN: tuple[tuple[int, str, int, int], ...] = (
    (0, "CT", 2, 3),
    (0, "CR", 1, 2),
    (1, "MR", 2, 2),
    (2, "US", 1, 2),
    (2, "CT", 1, 3),
    (3, "CR", 1, 1),
    (3, "MR", 1, 3),
    (4, "CT", 1, 2),
    (5, "US-PALETTE", 1, 1),
)


@dataclass(frozen=True, slots=True)
class SyntheticStudy:
    study_instance_uid: str
    accession_number: str
    modality: str
    study_date: str
    series: int
    instances: int


@dataclass(frozen=True, slots=True)
class SyntheticPatient:
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    studies: tuple[SyntheticStudy, ...]


@dataclass(frozen=True, slots=True)
class SyntheticData:
    """What `generate` wrote: the invented patients and the files, in writing order."""

    seed: int
    patients: tuple[SyntheticPatient, ...]
    files: tuple[Path, ...]

    @property
    def studies(self) -> int:
        return sum(len(p.studies) for p in self.patients)

    @property
    def series(self) -> int:
        return sum(s.series for p in self.patients for s in p.studies)

    @property
    def instances(self) -> int:
        return len(self.files)


def pydicom_test_files() -> Path:
    """The folder of test files installed with pydicom (no download)."""
    return Path(pydicom.data.__file__).parent / "test_files"


def source_files() -> tuple[Path, ...]:
    """The bundled files the lab copies pixel data from."""
    folder = pydicom_test_files()
    return tuple(sorted({folder / name for name, _, _ in _SOURCES.values()}))


def lab_uid(seed: int, *parts: object) -> UID:
    """A deterministic UID under 2.25 from the seed and a path of labels."""
    text = "/".join(["dicomguard-lab", str(seed), *map(str, parts)])
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return UID(f"{UID_ROOT}{value}")


def _date(rng: random.Random, first: date, last: date) -> str:
    days = (last - first).days
    return (first + timedelta(days=rng.randrange(days + 1))).strftime("%Y%m%d")


def _time(rng: random.Random) -> str:
    return f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"


def _copy_technical(source: Dataset, target: Dataset) -> None:
    for keyword in _TECHNICAL:
        if keyword in source:
            elem = source[keyword]
            target.add_new(elem.tag, elem.VR, elem.value)


def _load_sources() -> dict[str, Dataset]:
    folder = pydicom_test_files()
    loaded: dict[str, Dataset] = {}
    for key, (name, _, _) in _SOURCES.items():
        loaded[key] = pydicom.dcmread(folder / name)
    return loaded


def generate(out_dir: Path, seed: int = 7) -> SyntheticData:
    """Write the synthetic hospital's studies below `out_dir` and describe them.

    Layout: out_dir/<PatientID>/<study n>/<series n>/<instance n>.dcm, Explicit VR Little
    Endian. Deterministic for a given seed.
    """
    rng = random.Random(seed)
    sources = _load_sources()
    families = list(_FAMILY)
    givens = list(_GIVEN)
    rng.shuffle(families)
    rng.shuffle(givens)
    n_patients = 1 + max(p for p, _, _, _ in STUDY_PLAN)
    identities = []
    for index in range(n_patients):
        identities.append(
            (
                f"LAB{index + 1:04d}",
                f"{families[index % len(families)]}^{givens[index % len(givens)]}",
                _date(rng, date(1940, 1, 1), date(2010, 12, 31)),
                rng.choice(("F", "M")),
            )
        )

    files: list[Path] = []
    studies_of: dict[int, list[SyntheticStudy]] = {i: [] for i in range(n_patients)}
    for study_index, (patient_index, key, n_series, n_instances) in enumerate(STUDY_PLAN):
        patient_id = identities[patient_index][0]
        study_uid = lab_uid(seed, "study", study_index)
        accession = f"LABACC{rng.randrange(10**5):05d}"
        study_date = _date(rng, date(2019, 1, 1), date(2024, 12, 31))
        study_time = _time(rng)
        referring = f"LABDOCTOR^{rng.choice(_GIVEN)}"
        study_number = len(studies_of[patient_index]) + 1
        modality = key.split("-")[0]
        for series_index in range(n_series):
            series_uid = lab_uid(seed, "series", study_index, series_index)
            frame_uid = lab_uid(seed, "frame", study_index, series_index)
            for instance_index in range(n_instances):
                ds = _instance(
                    source=sources[key],
                    key=key,
                    seed=seed,
                    identity=identities[patient_index],
                    study=(study_uid, accession, study_date, study_time, referring, study_index),
                    series=(series_uid, frame_uid, series_index),
                    instance_index=instance_index,
                )
                path = (
                    out_dir / patient_id / f"study{study_number}"
                    / f"series{series_index + 1}" / f"{instance_index + 1}.dcm"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                files.append(path)
        studies_of[patient_index].append(
            SyntheticStudy(study_uid, accession, modality, study_date, n_series,
                           n_series * n_instances)
        )

    patients = tuple(
        SyntheticPatient(pid, pname, birth, sex, tuple(studies_of[i]))
        for i, (pid, pname, birth, sex) in enumerate(identities)
    )
    return SyntheticData(seed=seed, patients=patients, files=tuple(files))


def _instance(
    *,
    source: Dataset,
    key: str,
    seed: int,
    identity: tuple[str, str, str, str],
    study: tuple[str, str, str, str, str, int],
    series: tuple[str, str, int],
    instance_index: int,
) -> Dataset:
    patient_id, patient_name, birth_date, sex = identity
    study_uid, accession, study_date, study_time, referring, study_index = study
    series_uid, frame_uid, series_index = series
    _, sop_class, body_part = _SOURCES[key]
    modality = key.split("-")[0]
    sop_uid = lab_uid(seed, "instance", study_index, series_index, instance_index)

    ds = Dataset()
    _copy_technical(source, ds)
    if modality == "CR":  # a projection image: no slice geometry
        for keyword in ("ImageOrientationPatient", "SliceThickness", "RepetitionTime",
                        "EchoTime", "ImagingFrequency", "FlipAngle"):
            if keyword in ds:
                del ds[keyword]
        ds.ImagerPixelSpacing = ds.get("PixelSpacing", ["0.5", "0.5"])
        ds.ViewPosition = "PA"
        ds.PatientOrientation = ["L", "F"]
    elif modality == "US":
        ds.PatientOrientation = ""
    else:
        ds.ImagePositionPatient = ["0", "0", f"{instance_index * 5.0:.1f}"]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""

    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY"] + (["AXIAL"] if modality in ("CT", "MR") else [])
    ds.InstanceCreationDate = study_date
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study_time
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = "1 Loopback Street, Localhost"
    ds.ReferringPhysicianName = referring
    ds.StationName = f"LAB{modality}01"
    ds.StudyDescription = f"LAB {modality} {body_part}"
    ds.SeriesDescription = f"LAB {modality} SERIES {series_index + 1}"
    ds.OperatorsName = "LABOPERATOR^ONE"
    ds.ManufacturerModelName = f"LAB-{modality}-1000"
    ds.DeviceSerialNumber = f"LABSN{modality}0001"
    ds.SoftwareVersions = "dicomguard-lab"
    ds.BodyPartExamined = body_part
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = "DICOMGUARD LAB"
    ds.PatientBirthDate = birth_date
    ds.PatientSex = sex
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = f"S{study_index + 1:03d}"
    ds.SeriesNumber = series_index + 1
    ds.InstanceNumber = instance_index + 1
    # Invented data in a private block, so audits have a private tag carrying PHI to find.
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", f"LAB NOTE FOR {patient_id}")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = lab_uid(0, "implementation")
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    return ds


def identifying_values(paths: Sequence[Path]) -> set[str]:
    """Every non-empty text value of the person/place/device/ID attributes of `paths`,
    for tests that check the synthetic data share none of them with the originals."""
    keywords = (
        "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "InstitutionName",
        "InstitutionAddress", "ReferringPhysicianName", "OperatorsName",
        "NameOfPhysiciansReadingStudy", "PerformingPhysicianName", "StationName",
        "DeviceSerialNumber", "AccessionNumber", "StudyID", "StudyInstanceUID",
        "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "Manufacturer",
        "ManufacturerModelName", "InstanceCreatorUID", "StudyDate", "AdditionalPatientHistory",
        "ImageComments", "PatientAge", "PatientWeight", "PatientSize",
    )
    values: set[str] = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in keywords:
            value = ds.get(keyword)
            if value is None:
                continue
            items = value if isinstance(value, list | pydicom.multival.MultiValue) else [value]
            values.update(str(v).strip() for v in items if str(v).strip())
    return values
