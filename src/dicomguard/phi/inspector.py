"""The PHI inspector: what in a DICOM header identifies someone, named by keyword, never shown.

    from dicomguard.dicomfile import read_header
    from dicomguard.phi.inspector import inspect
    result = inspect(read_header("image.dcm"))
    result.attributes          # {"PatientName": 1, "StudyDate": 1, "(0009,10,GEMS_IDEN_01)": 1}
    result.text_findings       # {("ImageComments", "name"): 1, ("StudyDescription", "address"): 1}
    result.flags               # RiskFlag.BURNED_IN_LIKELY | RiskFlag.PRIVATE_TAGS ...
    result.severity            # Severity.CRITICAL when a name, an ID or contact data is present
    inspect(hdr, detail=True, show_phi=True).hits   # per element: path, source, value

Every element is looked at, at every depth (sequence items) and in private blocks:

1. **Annex E** (PS3.15 Table E.1-1 through :mod:`.rules`): an element that carries a value and
   whose action is anything but ``K`` (X, Z, D, U, C and their combinations) is an *attribute
   carrying PHI*, put in a :class:`Category` (patient name, patient ID, contact, birth date,
   other person names, dates, UIDs (identifying by linkage), demographics, institution,
   device, free text, graphics, private, other). Empty values are not PHI and are not counted.
   Private data elements are named ``(gggg,ee,Creator)`` (``ee`` is the element byte within
   the creator's block) or ``(gggg,eeee)`` when the block has no creator. Private creator
   elements and group lengths are not counted: they hold vendor names and lengths.
2. **Free-text heuristics** (:mod:`.heuristics`) where the table does not reach: every element
   with a text VR (LO, LT, ST, UT, SH, UC, PN), public or private, at any depth, except the
   patient's own name and ID elements, is searched for the patient's name and IDs, dates,
   phone numbers, e-mail addresses and street addresses. A hit is reported as
   ``(keyword, detector)``; its category is the detector's (name: patient-name, ID: patient-id,
   date: date, phone/e-mail/address: contact).
3. **Risk flags** (:class:`RiskFlag`) about what the header cannot show: burned-in annotation
   (BurnedInAnnotation YES; or absent for US, SC, OT, XA, ES and secondary capture SOP
   classes, which usually carry it), overlays (60xx,3000), curves (50xx,xxxx), private tags
   present, and a recognisable face (:func:`face_risk`).

Values are never kept unless ``show_phi=True``; the default result holds keywords, counts,
categories and flags only, so printing it or writing it to JSON cannot leak a value.

Severity of a file (:func:`severity_for`), the worst of:

    CRITICAL  patient-name, patient-id or contact (in its attribute or found in free text)
    HIGH      birth-date, person-name (staff and other people), BURNED_IN, FACE
    MEDIUM    date, uid, demographic, institution, device, free-text, graphics, other,
              BURNED_IN_LIKELY, OVERLAY
    LOW       private, CURVE, PRIVATE_TAGS
    INFO      nothing identifying

Speed: the Annex E action, keyword, category and "scan as text" decision of every public tag is
computed once per (process, options); the per-element loop is a tuple unpack, a dict lookup and
a few set lookups; text is decoded only for the elements the heuristics look at, and only when
it has at least 3 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum
from functools import cache
from hashlib import blake2b
from typing import Any

from dicomguard.accel import accelerator
from dicomguard.dicomfile import Header, RawElement, decode_text, text_values
from dicomguard.dicomfile.dictionary import TAGS, keyword_for_tag
from dicomguard.models import Severity

from .heuristics import Detector, Identity, find_spans, scan_text
from .rules import OPTION_NAMES, table

__all__ = [
    "BURNED_IN_MODALITIES",
    "CATEGORY_SEVERITY",
    "DETECTOR_CATEGORY",
    "FLAG_SEVERITY",
    "SECONDARY_CAPTURE_SOP_CLASSES",
    "Category",
    "Inspection",
    "Inspector",
    "PhiHit",
    "RiskFlag",
    "face_risk",
    "inspect",
    "keyword_of",
    "path_str",
    "severity_for",
]


class Category(StrEnum):
    """What kind of identifying information an attribute carries."""

    PATIENT_NAME = "patient-name"
    PATIENT_ID = "patient-id"
    CONTACT = "contact"            # addresses, phone numbers, e-mail
    BIRTH_DATE = "birth-date"
    PERSON_NAME = "person-name"    # staff and other people: names, their addresses, phones
    DATE = "date"                  # dates and times
    UID = "uid"                    # identifying by linkage
    DEMOGRAPHIC = "demographic"    # age, sex, size, weight, ethnic group, ...
    INSTITUTION = "institution"
    DEVICE = "device"
    FREE_TEXT = "free-text"        # descriptions, comments, labels
    GRAPHICS = "graphics"          # overlays, curves, graphic annotations
    PRIVATE = "private"
    OTHER = "other"


class RiskFlag(IntFlag):
    """Risks the header points at but cannot show (pixels, overlays, private blocks)."""

    BURNED_IN = 1          # BurnedInAnnotation (0028,0301) is YES
    BURNED_IN_LIKELY = 2   # absent, for a modality / SOP class that usually burns text in
    OVERLAY = 4            # (60xx,3000) Overlay Data present
    CURVE = 8              # (50xx,xxxx) curve data present (retired, may hold annotations)
    PRIVATE_TAGS = 16      # private data elements present
    FACE = 32              # a head CT/MR volume (or RecognizableVisualFeatures YES)

    @property
    def label(self) -> str:
        return (self.name or "").lower().replace("_", "-")


CATEGORY_SEVERITY: Mapping[Category, Severity] = {
    Category.PATIENT_NAME: Severity.CRITICAL,
    Category.PATIENT_ID: Severity.CRITICAL,
    Category.CONTACT: Severity.CRITICAL,
    Category.BIRTH_DATE: Severity.HIGH,
    Category.PERSON_NAME: Severity.HIGH,
    Category.DATE: Severity.MEDIUM,
    Category.UID: Severity.MEDIUM,
    Category.DEMOGRAPHIC: Severity.MEDIUM,
    Category.INSTITUTION: Severity.MEDIUM,
    Category.DEVICE: Severity.MEDIUM,
    Category.FREE_TEXT: Severity.MEDIUM,
    Category.GRAPHICS: Severity.MEDIUM,
    Category.OTHER: Severity.MEDIUM,
    Category.PRIVATE: Severity.LOW,
}

FLAG_SEVERITY: Mapping[RiskFlag, Severity] = {
    RiskFlag.BURNED_IN: Severity.HIGH,
    RiskFlag.FACE: Severity.HIGH,
    RiskFlag.BURNED_IN_LIKELY: Severity.MEDIUM,
    RiskFlag.OVERLAY: Severity.MEDIUM,
    RiskFlag.CURVE: Severity.LOW,
    RiskFlag.PRIVATE_TAGS: Severity.LOW,
}

DETECTOR_CATEGORY: Mapping[Detector, Category] = {
    Detector.NAME: Category.PATIENT_NAME,
    Detector.PATIENT_ID: Category.PATIENT_ID,
    Detector.DATE: Category.DATE,
    Detector.PHONE: Category.CONTACT,
    Detector.EMAIL: Category.CONTACT,
    Detector.ADDRESS: Category.CONTACT,
}

_DETECTOR_ROWS = tuple((int(d), d.label, c) for d, c in DETECTOR_CATEGORY.items())
_BURNED_IN_FLAG, _BURNED_IN_LIKELY, _OVERLAY, _CURVE, _PRIVATE_TAGS, _FACE = (
    int(RiskFlag.BURNED_IN), int(RiskFlag.BURNED_IN_LIKELY), int(RiskFlag.OVERLAY),
    int(RiskFlag.CURVE), int(RiskFlag.PRIVATE_TAGS), int(RiskFlag.FACE))

#: Modalities whose images usually carry burned-in text when BurnedInAnnotation is absent.
BURNED_IN_MODALITIES = frozenset({"US", "SC", "OT", "XA", "ES"})
#: Secondary Capture Image Storage SOP classes (PS3.4 B.5): screenshots, scanned documents.
SECONDARY_CAPTURE_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})

# --- tags ------------------------------------------------------------------------------------
_PATIENT_NAME_TAGS = frozenset({0x00100010, 0x00101001, 0x00101005, 0x00101060})
_PATIENT_ID_TAGS = frozenset({0x00100020, 0x00101000, 0x00100021, 0x00101090, 0x00080050,
                              0x00380010, 0x00101050, 0x00120040, 0x00120042})
#: The patient's own address, phone numbers and telecom information.
_CONTACT_TAGS = frozenset({0x00101040, 0x00102154, 0x00102155})
#: Contact data of other people (referring physician, distribution list): person-name.
_OTHER_PERSON_TAGS = frozenset({0x00080092, 0x00080094, 0x4008011A})
_BIRTH_TAGS = frozenset({0x00100030, 0x00100032})
_DEMOGRAPHIC_TAGS = frozenset({0x00101010, 0x00101020, 0x00101030, 0x00100040, 0x00102160,
                               0x00102180, 0x001021A0, 0x001021C0, 0x00102203, 0x001021F0,
                               0x00101080, 0x00101081, 0x00102000, 0x00102110, 0x001021B0,
                               0x00104000, 0x00100101, 0x00100102, 0x00102150, 0x00102152})
_INSTITUTION_TAGS = frozenset({0x00080080, 0x00080081, 0x00080082, 0x00081040, 0x00081041,
                               0x00102299, 0x00120030, 0x00120031, 0x00120060, 0x00120081,
                               0x04000564})
_DEVICE_TAGS = frozenset({0x00081010, 0x00181000, 0x00181004, 0x00181005, 0x00181007,
                          0x00181008, 0x00181009, 0x0018100A, 0x0018700A, 0x00185011,
                          0x00080054, 0x00080055, 0x00081000, 0x300A00B2, 0x30080105,
                          0x00189367, 0x00189371, 0x3010002D, 0x30100043, 0x3010001B,
                          0x04000563, 0x00741234, 0x00741236, 0x21000070, 0x21000140})
#: The patient's own name and ID elements: the source of the identity, never text-scanned.
_IDENTITY_NAME_TAGS = frozenset({0x00100010, 0x00101001, 0x00101005})
_IDENTITY_ID_TAGS = frozenset({0x00100020, 0x00101000})
#: Text elements never scanned: the identity itself, version / vendor strings (dates and
#: addresses of software builds and standards bodies are not PHI), and coded entries (code
#: values and meanings come from coding schemes; about 4 per file, so skipping them matters).
_NO_SCAN_TAGS = _IDENTITY_NAME_TAGS | _IDENTITY_ID_TAGS | frozenset({
    0x00100021,   # IssuerOfPatientID
    0x00020013,   # ImplementationVersionName
    0x00181020,   # SoftwareVersions
    0x00080070,   # Manufacturer
    0x00081090,   # ManufacturerModelName
    0x00080115,   # CodingSchemeName
    0x00080116,   # CodingSchemeResponsibleOrganization
    0x00080103,   # CodingSchemeVersion
    0x00080102,   # CodingSchemeDesignator
    0x00080100,   # CodeValue (codes from a coding scheme, as are the next ones)
    0x00080104,   # CodeMeaning
    0x00080119,   # LongCodeValue
    0x00080120,   # URNCodeValue
    0x0008010F,   # ContextIdentifier
    0x00080105,   # MappingResource
    0x00080201,   # TimezoneOffsetFromUTC
})
#: Categories whose attributes are only searched for the patient's name and IDs: that an
#: institution or a physician has an address or a phone number is what the attribute says.
_NAME_ID_ONLY = frozenset({Category.INSTITUTION, Category.DEVICE, Category.PERSON_NAME,
                           Category.CONTACT})
_ALL_DETECTORS = int(Detector(63))
_NAME_ID = int(Detector.NAME | Detector.PATIENT_ID)


_SCAN_VRS = frozenset({"LO", "LT", "ST", "UT", "SH", "UC", "PN"})
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"})
_DATE_VRS = frozenset({"DA", "DT", "TM"})
_FREE_TEXT_WORDS = ("Description", "Comment", "Label", "Name", "Text", "Notes", "Narrative",
                    "Reason", "Impressions", "Keywords", "Title", "Subject", "Allergies",
                    "Alerts", "History", "Value")

# facts for risk flags
_MODALITY = 0x00080060
_SOP_CLASS = 0x00080016
_BURNED_IN = 0x00280301
_RECOGNISABLE = 0x00280302
_BODY_PART = 0x00180015
_STUDY_DESC = 0x00081030
_SERIES_DESC = 0x0008103E
_PROTOCOL = 0x00181030
_FRAMES = 0x00280008
_SLICE_THICKNESS = 0x00180050
_MR_ACQ_TYPE = 0x00180023
_IMAGE_TYPE = 0x00080008

#: Head words looked for (casefolded, as substrings) in BodyPartExamined and descriptions.
HEAD_WORDS = ("head", "brain", "skull", "crani", "face", "facial", "neuro", "orbit", "sinus",
              "kopf", "schaedel", "schädel", "cerebr", "tete", "tête", "cabeza", "cranio",
              "cervello", "hirn")
#: Thin slices: a stack of slices this thin (mm) or thinner renders a recognisable face.
FACE_MAX_SLICE_THICKNESS = 3.0
#: A multi-frame CT/MR object with this many frames or more is a volume.
FACE_MIN_FRAMES = 20


@dataclass(frozen=True, slots=True)
class PhiHit:
    """One element carrying PHI (``detail=True`` only). ``value`` is None unless show_phi."""

    keyword: str
    tag: int
    path: str                  # "OtherPatientIDsSequence[0].PatientID"
    category: Category
    source: str                # "annex-e" or "text:<detector>"
    action: str | None         # the Annex E action ("X", "Z/D", "U", ...) or None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one header holds, as keywords and counts (no values unless show_phi)."""

    attributes: Mapping[str, int]                    # keyword -> elements carrying a value
    attribute_categories: Mapping[str, Category]     # keyword -> its category
    text_findings: Mapping[tuple[str, str], int]     # (keyword, detector label) -> elements
    categories: frozenset[Category]
    flags: RiskFlag
    severity: Severity
    elements: int
    hits: tuple[PhiHit, ...] = ()
    private_creators: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_phi(self) -> bool:
        return bool(self.attributes or self.text_findings)


# --- precomputed tables ----------------------------------------------------------------------

_TagInfo = tuple[str, str, Category]   # keyword, action, category

_KEYWORDS: dict[int, str] = {}


def keyword_of(tag: int, creator: str | None = None) -> str:
    """The standard keyword of a public tag, ``(gggg,ee,Creator)`` for a private data element,
    ``(gggg,eeee)`` otherwise."""
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 1:
        if elem >= 0x1000 and creator:
            return f"({group:04X},{elem & 0xFF:02X},{creator})"
        return f"({group:04X},{elem:04X})"
    kw = _KEYWORDS.get(tag)
    if kw is None:
        kw = keyword_for_tag(tag) or f"({group:04X},{elem:04X})"
        if len(_KEYWORDS) < 100_000:
            _KEYWORDS[tag] = kw
    return kw


def _category(tag: int, keyword: str, vr: str) -> Category:
    if tag in _PATIENT_NAME_TAGS:
        return Category.PATIENT_NAME
    if tag in _PATIENT_ID_TAGS:
        return Category.PATIENT_ID
    if tag in _CONTACT_TAGS:
        return Category.CONTACT
    if tag in _BIRTH_TAGS:
        return Category.BIRTH_DATE
    if vr == "UI":
        return Category.UID
    if vr in _DATE_VRS:
        return Category.DATE
    if tag in _INSTITUTION_TAGS or "Institution" in keyword:
        return Category.INSTITUTION
    if vr == "PN" or tag in _OTHER_PERSON_TAGS or keyword.endswith(
            "IdentificationSequence") or keyword in (
            "InterpretationApproverSequence", "ROICreatorSequence", "ROIInterpreterSequence",
            "DistributionName", "ResponsiblePerson", "TopicAuthor", "CameraOwnerName"):
        return Category.PERSON_NAME
    if tag in _DEMOGRAPHIC_TAGS:
        return Category.DEMOGRAPHIC
    if tag in _DEVICE_TAGS or "Device" in keyword or "Serial" in keyword or (
            "Calibration" in keyword):
        return Category.DEVICE
    group = tag >> 16
    if 0x5000 <= group <= 0x60FF or keyword.startswith("Graphic"):
        return Category.GRAPHICS
    if vr in _SCAN_VRS and any(w in keyword for w in _FREE_TEXT_WORDS):
        return Category.FREE_TEXT
    return Category.OTHER


_Entry = tuple[_TagInfo | None, int]   # (identifying info or None, text detectors)


@cache
def _public_table(options: frozenset[str]) -> dict[int, _Entry]:
    """tag -> (info, detectors) for every dictionary tag: info is (keyword, action, category)
    when the action is identifying, None when the tag is kept (K) or has no Annex E row;
    detectors are the free-text detectors that apply to it (when its VR is a text VR)."""
    rules = table()
    out: dict[int, _Entry] = {}
    for tag, (vr, keyword) in TAGS.items():
        out[tag] = _entry_for(rules.action_for(tag, options), tag, vr, keyword)
    return out


def _entry_for(action: str | None, tag: int, vr: str, keyword: str) -> _Entry:
    info: _TagInfo | None = None
    if action is not None and action != "K":
        keyword = keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        info = keyword, action, _category(tag, keyword, vr.split(" ")[0])
    if tag in _NO_SCAN_TAGS:
        return info, 0
    if info is not None and info[2] in _NAME_ID_ONLY:
        return info, _NAME_ID
    return info, _ALL_DETECTORS


def path_str(path: Sequence[tuple[int, int]], keyword: str) -> str:
    """``ReferencedStudySequence[0].ReferencedSOPInstanceUID`` (keywords and indexes only)."""
    if not path:
        return keyword
    parts = [f"{keyword_of(tag)}[{index}]" for tag, index in path]
    parts.append(keyword)
    return ".".join(parts)


def face_risk(header: Header) -> bool:
    """Whether the header describes pixels from which a face can be reconstructed.

    Rule: RecognizableVisualFeatures (0028,0302) is YES; or all of
    - Modality is CT or MR,
    - the head: BodyPartExamined, StudyDescription, SeriesDescription or ProtocolName contains
      one of :data:`HEAD_WORDS` (head, brain, skull, crani..., face, neuro, orbit, sinus, ...),
    - a volume: a multi-frame object with at least :data:`FACE_MIN_FRAMES` frames, or
      SliceThickness <= :data:`FACE_MAX_SLICE_THICKNESS` mm, or MRAcquisitionType 3D,
    - not a localizer/scout (ImageType).
    A single thin slice is flagged because a series of them is the volume; the audit counts
    files, and the series they belong to are what a reviewer should look at.
    """
    if _upper(header, _RECOGNISABLE) == "YES":
        return True
    if _upper(header, _MODALITY) not in ("CT", "MR"):
        return False
    text = " ".join(filter(None, (header.text(t) for t in (_BODY_PART, _STUDY_DESC,
                                                            _SERIES_DESC, _PROTOCOL))))
    low = text.casefold()
    if not any(w in low for w in HEAD_WORDS):
        return False
    image_type = (header.text(_IMAGE_TYPE) or "").upper()
    if "LOCALIZER" in image_type or "SCOUT" in image_type:
        return False
    frames = header.numbers(_FRAMES) if _FRAMES in header else []
    if frames and frames[0] >= FACE_MIN_FRAMES:
        return True
    if _upper(header, _MR_ACQ_TYPE) == "3D":
        return True
    thickness = header.numbers(_SLICE_THICKNESS) if _SLICE_THICKNESS in header else []
    return bool(thickness) and 0 < thickness[0] <= FACE_MAX_SLICE_THICKNESS


def _upper(header: Header, tag: int) -> str:
    value = header.value(tag)
    if not value:
        return ""
    return value.decode("latin_1").strip(" \x00").upper()


def severity_for(categories: Iterable[Category], flags: RiskFlag | int) -> Severity:
    """The worst severity of the categories and flags (INFO when none)."""
    worst = Severity.INFO
    for cat in categories:
        sev = CATEGORY_SEVERITY[cat]
        if sev > worst:
            worst = sev
    bits = int(flags)
    if bits:
        for flag, sev in _FLAG_ROWS:
            if bits & flag and sev > worst:
                worst = sev
    return worst


#: The attributes _flags reads: BurnedInAnnotation, Modality, SOPClassUID,
#: RecognizableVisualFeatures.
_FLAG_TAGS = (_BURNED_IN, _MODALITY, _SOP_CLASS, _RECOGNISABLE)
#: Padding bytes of text values (as ints: bytes index to ints).
_PAD = frozenset(b" \x00")
#: Identities cached per inspector (see Inspector._identity).
_IDENTITY_CACHE_ENTRIES = 4096
_FLAG_ROWS = tuple((int(f), s) for f, s in FLAG_SEVERITY.items())
#: RiskFlag of every combination of the six flags (enum arithmetic is slow in a hot loop).
_RISK_FLAGS = tuple(RiskFlag(i) for i in range(64))


#: (quiet tags, scan VRs, text VRs, public table, slow lookup, private keywords, private
#: keyword lookup, identity name tags, identity ID tags, all detectors, private action,
#: private category): see walk_records.
WalkContext = tuple[Any, ...]
#: (attributes, attribute categories, categories, candidates, names, ids, creators,
#: annex hits or None): the containers walk_records adds to.
WalkOutput = tuple[Any, ...]


def walk_records(ctx: WalkContext, records: list[RawElement], data: bytes,
                 out: WalkOutput) -> tuple[int, bool]:
    """The inspector's pass over one segment's raw records (the reference; the optional C
    accelerator ``_fastinspect.walk`` does exactly this). Adds to the containers of ``out``;
    returns (overlay/curve flags, whether a private data element was seen)."""
    (quiet, scan_vrs, text_vrs, public, slow, private_kw, private_keyword, name_tags,
     id_tags, all_detectors, private_action, private_category) = ctx
    attributes, attr_cat, categories, candidates, names, ids, creators, hits = out
    public_get = public.get
    flags = 0
    private_present = False
    # skipped: no value (a sequence, or empty), or nothing to look at
    selected = [r for r in records if r[3] != r[4] and (r[1] not in quiet or r[2] in scan_vrs)]
    for rec in selected:
        _path, tag, vr, start, stop, _length, creator = rec
        group = tag >> 16
        if group & 1:
            if tag & 0xFFFF < 0x1000:
                continue
            private_present = True
            kw = private_kw.get((tag, creator))
            if kw is None:
                kw = private_keyword(tag, creator)
            if creator:
                creators.add(creator)
            if vr in scan_vrs:
                value = data[start:stop]
                if value[0] in _PAD and not value.strip(b" \x00"):
                    continue
                if stop - start >= 3:
                    candidates.append((rec, value, all_detectors))
            attributes[kw] = attributes.get(kw, 0) + 1
            if hits is not None:
                hits.append((rec, data[start:stop], kw, private_action, private_category))
            continue
        entry = public_get(tag)
        if entry is None:
            entry = slow(tag)
        info, detectors = entry
        if vr in scan_vrs:
            if detectors:
                if stop - start >= 3:
                    candidates.append((rec, data[start:stop], detectors))
            elif tag in name_tags:
                names.append((data[start:stop], vr))
            elif tag in id_tags:
                ids.append((data[start:stop], vr))
        if info is None:
            continue
        # padding only is no value (only a value that starts with padding can be)
        if vr in text_vrs and data[start] in _PAD and not data[start:stop].strip(b" \x00"):
            continue
        kw, action, cat = info
        attributes[kw] = attributes.get(kw, 0) + 1
        attr_cat[kw] = cat
        categories.add(cat)
        if 0x5000 <= group <= 0x60FF:
            if group >= 0x6000:
                if tag & 0xFFFF == 0x3000:
                    flags |= _OVERLAY
            elif group <= 0x501E:
                flags |= _CURVE
        if hits is not None:
            hits.append((rec, data[start:stop], kw, action, cat))
    return flags, private_present


#: The C accelerator of walk_records (``_fastinspect.c``), or None (pure Python; tests
#: switch it).
_WALK: Callable[[WalkContext, list[RawElement], bytes, WalkOutput], tuple[int, bool]] | None = (
    accelerator("dicomguard.phi._fastinspect", "walk"))


class Inspector:
    """Inspects headers with fixed settings; build once, call :meth:`inspect` per file.

    ``options``: Annex E option names (:data:`.rules.OPTION_NAMES`), e.g. "retain-uids" makes
    UIDs K, so they are no longer reported. ``detail``: build :class:`PhiHit` records (paths);
    ``show_phi``: put the values into them (implies detail).
    """

    def __init__(self, *, options: Iterable[str] = (), detail: bool = False,
                 show_phi: bool = False) -> None:
        opts = frozenset(options)
        unknown = opts.difference(OPTION_NAMES)
        if unknown:
            raise ValueError(f"unknown Annex E options: {sorted(unknown)}")
        self.options = opts
        self.show_phi = show_phi
        self.detail = detail or show_phi
        self._public = dict(_public_table(opts))  # private copy: grows with unknown tags
        self._rules = table()
        self._private_action = self._rules.action_for(0x00090010 | 0x1000, opts) or "X"
        self._private_kw: dict[tuple[int, str | None], str] = {}
        #: public tags without an identifying action: an element of one of them matters only
        #: when its VR is one the heuristics scan (grows with _public)
        self._quiet = {tag for tag, (info, _detectors) in self._public.items() if info is None}
        self._identities: dict[bytes, Identity] = {}
        #: what walk_records needs besides the records (one tuple: one argument to pass)
        self._walk_context: WalkContext = (
            self._quiet, _SCAN_VRS, _TEXT_VRS, self._public, self._slow_public,
            self._private_kw, self._private_keyword, _IDENTITY_NAME_TAGS, _IDENTITY_ID_TAGS,
            _ALL_DETECTORS, self._private_action, Category.PRIVATE)

    def _slow_public(self, tag: int) -> _Entry:
        """Tags not in the dictionary table (repeating groups, unknown): computed and cached."""
        group = tag >> 16
        vr = "OW" if 0x5000 <= group <= 0x60FF else ""
        entry = _entry_for(self._rules.action_for(tag, self.options), tag, vr, keyword_of(tag))
        if len(self._public) < 200_000:
            self._public[tag] = entry
            if entry[0] is None:
                self._quiet.add(tag)
        return entry

    def inspect(self, header: Header) -> Inspection:
        detail = self.detail
        attributes: dict[str, int] = {}
        attr_cat: dict[str, Category] = {}
        categories: set[Category] = set()
        # (element, value, detectors); values are cut out of the data only where needed
        candidates: list[tuple[RawElement, bytes, int]] = []
        annex_hits: list[tuple[RawElement, bytes, str, str, Category]] = []
        names: list[tuple[bytes, str]] = []
        ids: list[tuple[bytes, str]] = []
        creators: set[str] = set()
        out = (attributes, attr_cat, categories, candidates, names, ids, creators,
               annex_hits if detail else None)
        raw, raw_data = header.raw_elements()
        segments = [(raw, raw_data)]
        if header.meta:
            segments.insert(0, header.raw_meta())
        walk = _WALK if _WALK is not None else walk_records
        flags = 0
        private_present = False
        for records, data in segments:
            seg_flags, seg_private = walk(self._walk_context, records, data, out)
            flags |= seg_flags
            private_present = private_present or seg_private
        if private_present:
            flags |= _PRIVATE_TAGS
            categories.add(Category.PRIVATE)
            for kw in attributes:
                if kw[0] == "(" and kw not in attr_cat:
                    attr_cat[kw] = Category.PRIVATE

        # the identity (the patient's own name and IDs) is looked for in the candidates only
        codecs = header.codecs if candidates else ()
        identity = None
        if candidates and (names or ids):
            identity = self._identity(names, ids, codecs)
        text_findings: dict[tuple[str, str], int] = {}
        text_hits: list[tuple[RawElement, str, Detector, str]] = []
        for rec, value, detectors in candidates:
            text = decode_text(value, rec[2], codecs)
            found = int(scan_text(text, identity, detectors=detectors))
            if not found:
                continue
            kw = self._keyword(rec[1], rec[6])
            for bit, label, cat in _DETECTOR_ROWS:
                if found & bit:
                    key2 = (kw, label)
                    text_findings[key2] = text_findings.get(key2, 0) + 1
                    categories.add(cat)
                    if detail:
                        text_hits.append((rec, kw, Detector(bit), text))

        flags |= self._flags(header)
        risk = _RISK_FLAGS[flags] if flags < 64 else RiskFlag(flags)
        hits: tuple[PhiHit, ...] = ()
        if detail:
            hits = self._hits(header, annex_hits, text_hits, identity)
        return Inspection(attributes=attributes, attribute_categories=attr_cat,
                          text_findings=text_findings, categories=frozenset(categories),
                          flags=risk, severity=severity_for(categories, risk),
                          elements=sum(len(records) for records, _data in segments),
                          hits=hits, private_creators=frozenset(creators))

    def _identity(self, names: list[tuple[bytes, str]], ids: list[tuple[bytes, str]],
                  codecs: tuple[str, ...]) -> Identity:
        """The patient's own identity from the raw name and ID values, cached per distinct
        values: the files of a series repeat them. Keyed by a BLAKE2b digest (no value is
        kept as a key); the cache is emptied at _IDENTITY_CACHE_ENTRIES."""
        h = blake2b(digest_size=16, person=b"identity")
        for value, vr in names:
            h.update(b"n%d:%s:" % (len(value), vr.encode()))
            h.update(value)
        for value, vr in ids:
            h.update(b"i%d:%s:" % (len(value), vr.encode()))
            h.update(value)
        h.update("\\".join(codecs).encode())
        key = h.digest()
        cache = self._identities
        identity = cache.get(key)
        if identity is None:
            identity = Identity.from_values(
                names=[v for value, vr in names for v in text_values(value, vr, codecs)],
                ids=[v for value, vr in ids for v in text_values(value, vr, codecs)])
            if len(cache) >= _IDENTITY_CACHE_ENTRIES:
                cache.clear()
            cache[key] = identity
        return identity

    def _private_keyword(self, tag: int, creator: str | None) -> str:
        """The keyword of a private element, cached per (tag, creator) (bounded)."""
        kw = keyword_of(tag, creator)
        if len(self._private_kw) < 100_000:
            self._private_kw[(tag, creator)] = kw
        return kw

    def _keyword(self, tag: int, creator: str | None) -> str:
        if tag >> 16 & 1:
            return self._private_kw.get((tag, creator)) or keyword_of(tag, creator)
        return keyword_of(tag)

    @staticmethod
    def _flags(header: Header) -> int:
        flags = 0
        burned, modality, sop_class, recognisable = (
            v.decode("latin_1").upper() for v in header.stripped_values(_FLAG_TAGS))
        if burned == "YES":
            flags |= _BURNED_IN_FLAG
        elif not burned and (modality in BURNED_IN_MODALITIES or
                             sop_class in SECONDARY_CAPTURE_SOP_CLASSES):
            flags |= _BURNED_IN_LIKELY
        # face_risk needs CT/MR or RecognizableVisualFeatures YES: most files stop here
        if (modality in ("CT", "MR") or recognisable == "YES") and face_risk(header):
            flags |= _FACE
        return flags

    def _hits(self, header: Header,
              annex_hits: list[tuple[RawElement, bytes, str, str, Category]],
              text_hits: list[tuple[RawElement, str, Detector, str]],
              identity: Identity | None) -> tuple[PhiHit, ...]:
        show = self.show_phi
        codecs = header.codecs
        out: list[PhiHit] = []
        for rec, value, kw, action, cat in annex_hits:
            shown = _display_value(rec[2], value, codecs) if show else None
            out.append(PhiHit(kw, rec[1], path_str(rec[0], kw), cat, "annex-e", action, shown))
        for rec, kw, det, text in text_hits:
            shown = None
            if show:
                spans = [s for d, s in find_spans(text, identity) if d == det]
                shown = "; ".join(dict.fromkeys(spans)) or text
            out.append(PhiHit(kw, rec[1], path_str(rec[0], kw), DETECTOR_CATEGORY[det],
                              f"text:{det.label}", None, shown))
        return tuple(out)


def _display_value(vr: str, value: bytes, codecs: tuple[str, ...]) -> str:
    if vr in _TEXT_VRS:
        return decode_text(value, vr, codecs)
    if len(value) > 32:
        return f"<{len(value)} bytes>"
    return value.hex(" ")


@cache
def _default_inspector(options: frozenset[str], detail: bool, show_phi: bool) -> Inspector:
    return Inspector(options=options, detail=detail, show_phi=show_phi)


def inspect(header: Header, *, options: Iterable[str] = (), detail: bool = False,
            show_phi: bool = False) -> Inspection:
    """Inspect one header (see :class:`Inspector`; inspectors are cached per settings)."""
    return _default_inspector(frozenset(options), detail, show_phi).inspect(header)
