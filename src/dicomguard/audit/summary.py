"""The audit summary: per-file results folded into counts, mergeable, PHI-free.

A :class:`FileAudit` is what one file (local, or a prefix fetched from an FTP/SMB share) gives:
its status, size and :class:`~dicomguard.phi.inspector.Inspection`, plus the patient, study,
series, institution and device as **salted 64-bit hashes** (:class:`Hasher`; the salt is random
per run and never written anywhere, so a hash cannot be linked across runs or reversed by
trying names).

An :class:`AuditSummary` adds files up (:meth:`AuditSummary.add`) and merges with another
(:meth:`AuditSummary.merge`): a worker process summarises a chunk of paths and the parent
merges the partial summaries, a network probe summarises the samples of a share the same way.
Merging is associative and commutative, so ``merge`` of partial summaries equals one pass.

Memory is bounded by what is distinct, never by the number of files: the 64-bit hashes of
patients, studies, series, institutions and devices (and of patients per folder) are
:class:`~.hashset.HashSet` objects, which hold large counts at 8 bytes a hash (a million
distinct series is ~8 MB), and tables are capped at :data:`MAX_KEYS` entries (attribute
keywords, reasons) and :data:`MAX_FOLDERS` folders, overflowing into "(other)".

What the summary keeps that is PHI-ish, and how reports use it: the study date range is kept
as YYYYMMDD but shown as year-month unless ``--show-phi``; institution and device *names* are
only collected when the context says ``show_phi``; folder keys are shortened by the walker.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from dicomguard.dicomfile import Header, decode_text
from dicomguard.models import Severity
from dicomguard.phi.inspector import Category, Inspection, RiskFlag

from .hashset import HashSet

__all__ = [
    "MAX_FOLDERS",
    "MAX_KEYS",
    "OTHER",
    "AuditSummary",
    "FileAudit",
    "FileStatus",
    "Hasher",
    "file_facts",
]

MAX_KEYS = 10_000
MAX_FOLDERS = 100_000
OTHER = "(other)"


class FileStatus:
    """The three outcomes of reading a file (plain strings: cheap to pickle and compare)."""

    DICOM = "dicom"
    NON_DICOM = "non-dicom"
    UNREADABLE = "unreadable"


class Hasher:
    """Salted 64-bit keyed BLAKE2b hashes of identifying values (salt random per run)."""

    __slots__ = ("_keyed", "salt")

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = salt if salt is not None else os.urandom(16)
        # the keyed state, copied for each value (cheaper than keying again)
        self._keyed = hashlib.blake2b(digest_size=8, key=self.salt)

    def __call__(self, data: bytes) -> int:
        h = self._keyed.copy()
        h.update(data)
        return int.from_bytes(h.digest(), "little")

    def __getstate__(self) -> bytes:  # hash objects do not pickle; the salt is all there is
        return self.salt

    def __setstate__(self, salt: bytes) -> None:
        self.__init__(salt)  # type: ignore[misc]

    def __repr__(self) -> str:
        return "Hasher(<salt>)"


@dataclass(slots=True)
class FileAudit:
    """One file's audit result: status, size, inspection and salted hashes (no values)."""

    status: str
    size: int = 0
    reason: str | None = None          # why unreadable (a normalised message, no values)
    partial: bool = False              # only a prefix was read (remote sample)
    inspection: Inspection | None = None
    patient: int | None = None
    study: int | None = None
    series: int | None = None
    institution: int | None = None
    device: int | None = None
    modality: str | None = None
    study_date: str | None = None      # YYYYMMDD; reports show year-month unless show_phi
    institution_name: str | None = None  # only when show_phi
    device_name: str | None = None       # only when show_phi
    ocr_examined: bool = False           # --ocr: the pixels were searched for text
    ocr_text: bool = False               # text was found burned into the pixels
    ocr_matches: tuple[str, ...] = ()    # header keywords whose values appear in the pixels
    ocr_error: str | None = None         # why the search did not finish (a short reason)
    ocr_severity: Severity = Severity.INFO

    @property
    def severity(self) -> Severity:
        """The file's severity: its inspection's, raised by what OCR found in the pixels."""
        base = self.inspection.severity if self.inspection is not None else Severity.INFO
        return max(base, self.ocr_severity)

    def __repr__(self) -> str:  # never show the date or names
        return (f"FileAudit(status={self.status!r}, size={self.size}, reason={self.reason!r}, "
                f"partial={self.partial}, severity="
                f"{self.inspection.severity.name if self.inspection else None})")


_INSTITUTION = 0x00080080
#: The top-level attributes the facts come from, in the order file_facts unpacks them:
#: PatientID, IssuerOfPatientID, PatientName, PatientBirthDate, StudyInstanceUID,
#: SeriesInstanceUID, Modality, StudyDate, InstitutionName, Manufacturer,
#: ManufacturerModelName, DeviceSerialNumber, StationName.
_FACT_TAGS = (0x00100020, 0x00100021, 0x00100010, 0x00100030, 0x0020000D, 0x0020000E,
              0x00080060, 0x00080020, _INSTITUTION, 0x00080070, 0x00081090, 0x00181000,
              0x00081010)


def file_facts(header: Header, audit: FileAudit, hasher: Hasher, show_phi: bool) -> None:
    """Fill the hashes, modality, study date (and names with show_phi) from a header."""
    (pid, issuer, name, birth, study, series, modality, date, inst, manufacturer, model,
     serial, station) = header.stripped_values(_FACT_TAGS)
    if pid:
        audit.patient = hasher(b"id\x00" + pid + b"\x00" + issuer)
    elif name:
        audit.patient = hasher(b"name\x00" + name.upper() + b"\x00" + birth)
    if study:
        audit.study = hasher(study)
    if series:
        audit.series = hasher(series)
    if modality:
        text = modality.decode("latin_1").upper()
        audit.modality = text if len(text) <= 16 and text.isprintable() else "(invalid)"
    if len(date) >= 8:
        text = date[:10].decode("latin_1").replace(".", "")[:8]
        if text.isdigit():
            audit.study_date = text
    if inst:
        audit.institution = hasher(inst.upper())
    device_parts = (manufacturer, model, serial or station)
    if any(device_parts):
        audit.device = hasher(b"\x00".join(device_parts).upper())
    if show_phi:
        codecs = header.codecs
        if inst:
            audit.institution_name = header.text(_INSTITUTION)
        if any(device_parts):
            audit.device_name = " / ".join(decode_text(p, "LO", codecs) for p in device_parts
                                           if p)


#: enum member -> its value / name (the enum properties are slow in a per-file loop)
_CATEGORY_VALUE: dict[Category, str] = {c: c.value for c in Category}
_SEVERITY_NAME: dict[Severity, str] = {s: s.name for s in Severity}


@cache
def _flag_labels(flags: int) -> tuple[str, ...]:
    """The labels of the flags set in ``flags``, in RiskFlag order."""
    return tuple(f.label for f in RiskFlag if flags & f)


def _capped_update(counter: Counter[str], keys: Iterable[str]) -> None:
    if len(counter) < MAX_KEYS:
        counter.update(keys)
        return
    for key in keys:
        if key in counter:
            counter[key] += 1
        else:
            counter[OTHER] += 1


@dataclass(slots=True)
class AuditSummary:
    """Counts over many files; add files, merge summaries; holds no PHI value by default."""

    files_seen: int = 0
    dicom_files: int = 0
    non_dicom: int = 0
    unreadable: int = 0
    unreadable_reasons: Counter[str] = field(default_factory=Counter)
    unreadable_dicom: int = 0          # recognised as DICOM, then failed: partially inspected
    partial_files: int = 0             # only a prefix was read (remote samples)
    bytes_seen: int = 0
    bytes_dicom: int = 0
    phi_files: int = 0                 # DICOM files with at least one PHI attribute/finding
    patients: HashSet = field(default_factory=HashSet)
    studies: HashSet = field(default_factory=HashSet)
    series: HashSet = field(default_factory=HashSet)
    institutions: HashSet = field(default_factory=HashSet)
    devices: HashSet = field(default_factory=HashSet)
    files_without_patient: int = 0
    modalities: Counter[str] = field(default_factory=Counter)
    study_date_min: str | None = None
    study_date_max: str | None = None
    attributes: Counter[str] = field(default_factory=Counter)        # keyword -> files
    attribute_categories: dict[str, str] = field(default_factory=dict)
    text_findings: Counter[str] = field(default_factory=Counter)     # "kw\tdetector" -> files
    categories: Counter[str] = field(default_factory=Counter)        # category -> files
    flags: Counter[str] = field(default_factory=Counter)             # flag label -> files
    severities: Counter[str] = field(default_factory=Counter)        # severity name -> files
    folders: dict[str, HashSet] = field(default_factory=dict)        # folder -> patients
    folder_files: Counter[str] = field(default_factory=Counter)      # folder -> DICOM files
    walk_errors: Counter[str] = field(default_factory=Counter)
    institution_names: Counter[str] = field(default_factory=Counter)  # show_phi only
    device_names: Counter[str] = field(default_factory=Counter)       # show_phi only
    ocr_files: int = 0                                                # --ocr: searched
    ocr_text_files: int = 0                                           # text found
    ocr_matches: Counter[str] = field(default_factory=Counter)        # keyword -> files
    ocr_errors: Counter[str] = field(default_factory=Counter)

    # -- adding ----------------------------------------------------------------------------
    def add(self, fa: FileAudit, folder: str | None = None) -> None:
        """Count one file. ``folder`` groups files for the "top folders" table."""
        self.files_seen += 1
        self.bytes_seen += fa.size
        status = fa.status
        if status == FileStatus.NON_DICOM:
            self.non_dicom += 1
            return
        if status == FileStatus.UNREADABLE:
            self.unreadable += 1
            reasons = self.unreadable_reasons
            reason = fa.reason or "unknown"
            if reason in reasons or len(reasons) < 100:
                reasons[reason] += 1
            else:
                reasons[OTHER] += 1
            if fa.inspection is None:
                return
            self.unreadable_dicom += 1
        else:
            self.dicom_files += 1
            self.bytes_dicom += fa.size
        if fa.partial:
            self.partial_files += 1
        if fa.patient is not None:
            self.patients.add(fa.patient)
        else:
            self.files_without_patient += 1
        if fa.study is not None:
            self.studies.add(fa.study)
        if fa.series is not None:
            self.series.add(fa.series)
        if fa.institution is not None:
            self.institutions.add(fa.institution)
        if fa.device is not None:
            self.devices.add(fa.device)
        self.modalities[fa.modality or "(none)"] += 1
        date = fa.study_date
        if date is not None:
            if self.study_date_min is None or date < self.study_date_min:
                self.study_date_min = date
            if self.study_date_max is None or date > self.study_date_max:
                self.study_date_max = date
        if fa.institution_name:
            _capped_update(self.institution_names, (fa.institution_name,))
        if fa.device_name:
            _capped_update(self.device_names, (fa.device_name,))
        ins = fa.inspection
        if ins is not None:
            if ins.attributes or ins.text_findings:
                self.phi_files += 1
            attrs = ins.attributes
            _capped_update(self.attributes, attrs.keys())
            cats = self.attribute_categories
            # usually every keyword is known already: one C-level subset test
            if len(cats) < MAX_KEYS and not ins.attribute_categories.keys() <= cats.keys():
                for kw, cat in ins.attribute_categories.items():
                    if kw not in cats:
                        cats[kw] = cat.value
            if ins.text_findings:
                _capped_update(self.text_findings,
                               [f"{kw}\t{det}" for kw, det in ins.text_findings])
            self.categories.update([_CATEGORY_VALUE[c] for c in ins.categories])
            if ins.flags:
                self.flags.update(_flag_labels(ins.flags))
            self.severities[_SEVERITY_NAME[fa.severity]] += 1
        if fa.ocr_examined:
            self.ocr_files += 1
            self.ocr_text_files += fa.ocr_text
            self.ocr_matches.update(fa.ocr_matches)
            if fa.ocr_error:
                self.ocr_errors[fa.ocr_error] += 1
        if folder is not None:
            self._add_folder(folder, fa.patient)

    def _add_folder(self, folder: str, patient: int | None) -> None:
        folders = self.folders
        patients = folders.get(folder)
        if patients is None:
            if len(folders) >= MAX_FOLDERS:
                folder = OTHER
                patients = folders.setdefault(OTHER, HashSet())
            else:
                patients = folders[folder] = HashSet()
        self.folder_files[folder] += 1
        if patient is not None:
            patients.add(patient)

    def add_walk_error(self, reason: str) -> None:
        if reason in self.walk_errors or len(self.walk_errors) < 100:
            self.walk_errors[reason] += 1
        else:
            self.walk_errors[OTHER] += 1

    # -- merging ---------------------------------------------------------------------------
    def merge(self, other: AuditSummary) -> AuditSummary:
        """Add ``other`` into this summary (in place) and return self."""
        for name in ("files_seen", "dicom_files", "non_dicom", "unreadable", "unreadable_dicom",
                     "partial_files", "bytes_seen", "bytes_dicom", "phi_files",
                     "files_without_patient", "ocr_files", "ocr_text_files"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.patients |= other.patients
        self.studies |= other.studies
        self.series |= other.series
        self.institutions |= other.institutions
        self.devices |= other.devices
        for name in ("unreadable_reasons", "modalities", "categories", "flags", "severities",
                     "walk_errors", "ocr_matches", "ocr_errors"):
            getattr(self, name).update(getattr(other, name))
        for name in ("attributes", "text_findings", "institution_names", "device_names"):
            mine: Counter[str] = getattr(self, name)
            theirs: Counter[str] = getattr(other, name)
            if len(mine) + len(theirs) <= MAX_KEYS:
                mine.update(theirs)
            else:
                for key, n in theirs.items():
                    if key in mine or len(mine) < MAX_KEYS:
                        mine[key] += n
                    else:
                        mine[OTHER] += n
        for kw, cat in other.attribute_categories.items():
            if kw not in self.attribute_categories and len(self.attribute_categories) < MAX_KEYS:
                self.attribute_categories[kw] = cat
        for date in (other.study_date_min, other.study_date_max):
            if date is None:
                continue
            if self.study_date_min is None or date < self.study_date_min:
                self.study_date_min = date
            if self.study_date_max is None or date > self.study_date_max:
                self.study_date_max = date
        for folder, patients in other.folders.items():
            key = folder
            if key not in self.folders and len(self.folders) >= MAX_FOLDERS:
                key = OTHER
            self.folders.setdefault(key, HashSet()).update(patients)
            self.folder_files[key] += other.folder_files.get(folder, 0)
        return self

    # -- reading ---------------------------------------------------------------------------
    @property
    def worst_severity(self) -> Severity:
        """The worst severity of any DICOM file (INFO when none, or no DICOM at all)."""
        worst = Severity.INFO
        for name, n in self.severities.items():
            if n and Severity[name] > worst:
                worst = Severity[name]
        return worst

    def top_folders(self, n: int = 10) -> list[tuple[str, int, int]]:
        """(folder, patients, DICOM files), most patients first."""
        rows = [(f, len(p), self.folder_files.get(f, 0)) for f, p in self.folders.items()]
        rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return rows[:n]

    def __repr__(self) -> str:
        return (f"AuditSummary(files_seen={self.files_seen}, dicom_files={self.dicom_files}, "
                f"non_dicom={self.non_dicom}, unreadable={self.unreadable}, "
                f"patients={len(self.patients)}, studies={len(self.studies)}, "
                f"series={len(self.series)})")
