"""The de-identification engine: Annex E actions applied to a parsed file, at every depth.

    engine = Engine(EngineConfig(key=key, settings=ProfileSettings(options=frozenset(...))))
    result = engine.deidentify(data)          # bytes in, DeidResult (bytes out + facts) back
    ds2 = engine.deidentify_dataset(ds)       # the same for a pydicom Dataset

What happens to each element (after :mod:`.profile` resolved its action):

- ``X``: removed. Overlay groups (60xx) go whole when their Overlay Data is removed, so no
  dangling overlay attributes remain; data set group lengths go (they would be wrong).
- ``Z``: emptied (a sequence loses its items), except the patient's ID and name, accession
  number and study ID, which get keyed pseudonyms (PS3.15 allows a dummy for Z) so that
  studies stay linkable with the key and nothing else.
- ``D``: a dummy value valid for the VR (pseudonyms for the identifiers above); a Type 1 code
  sequence gets one dummy code item; other sequences are kept and their contents processed.
- ``U``: every UID remapped with :class:`~.remap.Remapper`; a sequence is kept and processed.
- ``K``: kept; text is still swept for the patient's (and staff's) names and IDs.
- ``C``: dates and date-times shifted by the patient's offset (longitudinal modified dates),
  times kept; text cleaned of everything the heuristics find; sequences kept and processed.
- private elements: removed (basic), or with retain-safe-private only those of numeric VRs are
  kept (no safe-private list ships; text, binary and unknown VRs are not provably safe).
- not in the table: kept, with the same name/ID sweep as ``K``.

Then the markers (:mod:`.markers`) and the file meta group: MediaStorageSOPInstanceUID is the
new SOPInstanceUID, the source/sending/receiving AE titles and private meta information are
removed, and the implementation UID and version name are dicomguard's.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import encode_string

from dicomguard import __version__
from dicomguard.dicomfile.values import codecs_for_charset, decode_text

from .adapters import BURNED_IN_MODALITIES, SECONDARY_CAPTURE_SOP_CLASSES, Cleaner, identity_from
from .codec import Elem, ParsedFile, parse, serialize
from .markers import MarkerState, apply_markers
from .profile import Profile, ProfileSettings
from .remap import Remapper, shift_date

__all__ = ["IMPLEMENTATION_CLASS_UID", "DeidResult", "Engine", "EngineConfig"]

#: dicomguard's implementation class UID (a 2.25 UUID-derived UID, fixed).
IMPLEMENTATION_CLASS_UID = b"2.25.171937265431709383291739128458391062855"
IMPLEMENTATION_VERSION = ("DICOMGUARD_" + __version__.replace(".", ""))[:16].encode("ascii")

_TEXT_VRS = frozenset({"LO", "LT", "ST", "UT", "SH", "UC", "PN"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "DS", "IS"})
_DUMMY: dict[str, bytes] = {
    "PN": b"ANONYMOUS", "LO": b"ANONYMOUS", "SH": b"ANONYMOUS", "LT": b"ANONYMOUS",
    "ST": b"ANONYMOUS", "UT": b"ANONYMOUS", "UC": b"ANONYMOUS", "CS": b"ANONYMOUS",
    "AE": b"ANONYMOUS", "DA": b"19000101", "TM": b"000000", "DT": b"19000101000000",
    "AS": b"000Y", "DS": b"0", "IS": b"0", "UR": b"", "AT": b"\0\0\0\0",
    "US": b"\0\0", "SS": b"\0\0", "UL": b"\0" * 4, "SL": b"\0" * 4, "FL": b"\0" * 4,
    "FD": b"\0" * 8, "SV": b"\0" * 8, "UV": b"\0" * 8,
}

# Tags handled by name.
_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_PSEUDONYM_KIND = {
    0x00100020: "patient-id", 0x00080050: "accession", 0x00200010: "study-id",
    0x00101000: "patient-id",
}
_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018
_STUDY_UID = 0x0020000D
_SERIES_UID = 0x0020000E
_CHARSET = 0x00080005
_MODALITY = 0x00080060
_BURNED_IN = 0x00280301
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_CODE_VALUE = 0x00080100
_LONG_CODE_VALUE = 0x00080119
#: Identity sources for the text sweep: names (PN anywhere is added too) and identifiers.
_ID_SOURCE_TAGS = frozenset({0x00100020, 0x00101000, 0x00080050, 0x00200010, 0x00101002,
                             0x00380010, 0x00101050, 0x00120040, 0x00120042, 0x00100021,
                             0x00401001, 0x00400009, 0x00181000, 0x00400253, 0x00102154,
                             0x00102155})
_NAME_SOURCE_TAGS = frozenset({0x00080080, 0x00080081, 0x00101040, 0x00081040, 0x00081010})


def _pad(value: bytes, vr: str) -> bytes:
    if len(value) & 1:
        return value + (b"\0" if vr == "UI" else b" ")
    return value


@dataclass(frozen=True, slots=True)
class EngineConfig:
    key: bytes = field(repr=False)
    settings: ProfileSettings = field(default_factory=ProfileSettings)
    record_mapping: bool = False


@dataclass(slots=True)
class DeidResult:
    """Output bytes and what the caller needs to name, report and mark the file."""

    data: bytes
    sop_class_uid: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    burned_in_risk: bool
    pixels_present: bool
    patient_identity_removed: bool
    notes: list[str] = field(default_factory=list)


class _Ctx:
    """Per-file state of one walk."""

    __slots__ = ("codecs", "date_offset", "deferred", "id_values", "name_values", "remapper")

    def __init__(self, remapper: Remapper, codecs: tuple[str, ...], date_offset: int) -> None:
        self.remapper = remapper
        self.codecs = codecs
        self.date_offset = date_offset
        self.deferred: list[tuple[Elem, bool]] = []      # (elem, full clean?) text to clean
        self.name_values: list[str] = []
        self.id_values: list[str] = []


def _text(value: bytes | memoryview, vr: str = "LO",
          codecs: tuple[str, ...] = ("latin_1",)) -> str:
    return decode_text(bytes(value), vr, codecs)


def _top(elems: list[Elem], tag: int) -> Elem | None:
    for e in elems:
        if e.tag == tag:
            return e
        if e.tag > tag:
            return None
    return None


def _ascii(e: Elem | None) -> str:
    if e is None or e.items is not None:
        return ""
    return bytes(e.value).rstrip(b"\x00 ").lstrip(b" ").decode("ascii", "replace")


class Engine:
    """Build once per run (per process); :meth:`deidentify` per file."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.settings = config.settings
        self.options = config.settings.options
        self.profile = Profile(config.settings)
        self.remapper = Remapper(config.key, record=config.record_mapping)
        self.modified_dates = ("retain-longitudinal-modified-dates" in self.options
                               and "retain-longitudinal-full-dates" not in self.options)
        self.safe_private = "retain-safe-private" in self.options
        self._overlay_removed = self.profile.raw_action(0x60003000) not in ("K",)

    # --- public API ---------------------------------------------------------------------

    def deidentify(self, data: bytes, *, pixels_cleaned: bool = False,
                   burned_in_policy: str = "warn") -> DeidResult:
        """De-identify one file held in memory. Raises CodecError for unreadable input."""
        pf = parse(data)
        return self.deidentify_parsed(pf, pixels_cleaned=pixels_cleaned,
                                      burned_in_policy=burned_in_policy)

    def deidentify_parsed(self, pf: ParsedFile, *, pixels_cleaned: bool = False,
                          burned_in_policy: str = "warn") -> DeidResult:
        ds = pf.dataset
        sop_class = _ascii(_top(ds, _SOP_CLASS))
        acts = self.profile.for_sop_class(sop_class)
        charset = _top(ds, _CHARSET)
        codecs = codecs_for_charset(bytes(charset.value) if charset is not None and
                                    charset.items is None else None)
        pid_e = _top(ds, _PATIENT_ID)
        name_e = _top(ds, _PATIENT_NAME)
        pid = _text(pid_e.value, "LO", codecs).strip() if pid_e and pid_e.items is None else ""
        pname = (_text(name_e.value, "PN", codecs).strip()
                 if name_e and name_e.items is None else "")
        patient_key = pid or pname
        offset = self.remapper.date_offset(patient_key) if self.modified_dates else 0
        ctx = _Ctx(self.remapper, codecs, offset)
        pixels_present = any(e.tag in _PIXEL_TAGS for e in ds)
        modality = _ascii(_top(ds, _MODALITY)).upper()
        burned = _ascii(_top(ds, _BURNED_IN)).upper()
        risk = pixels_present and not pixels_cleaned and (
            burned == "YES" or (burned != "NO" and (
                modality in BURNED_IN_MODALITIES or sop_class in SECONDARY_CAPTURE_SOP_CLASSES)))

        new_ds = self._walk(ds, 0, acts.action, ctx, pid, pname, depth=0)
        self._sweep(ctx)
        pf.dataset = new_ds

        state = MarkerState(
            options=self.options, pixels_cleaned=pixels_cleaned, pixels_present=pixels_present,
            burned_in_risk=risk, burned_in_input=burned,
            modified_dates=self.modified_dates)
        identity_removed = apply_markers(pf.dataset, state)
        sop_uid = _ascii(_top(pf.dataset, _SOP_INSTANCE))
        self._fix_meta(pf, sop_uid)
        out = serialize(pf)
        return DeidResult(
            data=out, sop_class_uid=sop_class, study_uid=_ascii(_top(pf.dataset, _STUDY_UID)),
            series_uid=_ascii(_top(pf.dataset, _SERIES_UID)), sop_instance_uid=sop_uid,
            burned_in_risk=risk, pixels_present=pixels_present,
            patient_identity_removed=identity_removed, notes=list(pf.notes))

    def deidentify_dataset(self, ds: Any, **kwargs: Any) -> Any:
        """De-identify a pydicom Dataset (written to bytes, processed, read back)."""
        import pydicom

        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
        result = self.deidentify(buf.getvalue(), **kwargs)
        return pydicom.dcmread(io.BytesIO(result.data), force=True)

    # --- the walk ----------------------------------------------------------------------

    def _walk(self, elems: list[Elem], parent: int,
              action: Callable[[int, int], str | None], ctx: _Ctx, pid: str, pname: str,
              depth: int) -> list[Elem]:
        out: list[Elem] = []
        append = out.append
        remapper = ctx.remapper
        overlay_removed = self._overlay_removed
        for e in elems:
            tag = e.tag
            group = tag >> 16
            if group & 1:
                if self.safe_private and self._keep_private(e):
                    append(e)
                continue
            if tag & 0xFFFF == 0 and group != 2:
                continue  # group length: would be wrong after editing
            if overlay_removed and 0x6000 <= group <= 0x601E:
                continue
            act = action(parent, tag)
            vr = e.vr
            items = e.items
            if vr == "PN" and items is None and e.value:
                ctx.name_values.append(_text(e.value, "PN", ctx.codecs))
            elif (tag in _ID_SOURCE_TAGS or tag in _NAME_SOURCE_TAGS) and items is None \
                    and e.value:
                text = _text(e.value, vr, ctx.codecs)
                (ctx.id_values if tag in _ID_SOURCE_TAGS else ctx.name_values).append(text)
            if act is None or act == "K":
                if items is not None:
                    e.items = self._items(items, tag, action, ctx, pid, pname, depth)
                elif vr in _TEXT_VRS and len(e.value) >= 3:
                    ctx.deferred.append((e, False))
                append(e)
                continue
            if act == "X":
                continue
            kind = _PSEUDONYM_KIND.get(tag)
            if (kind is not None or tag == _PATIENT_NAME) and act in ("Z", "D") \
                    and items is None:
                original = _text(e.value, vr, ctx.codecs).strip()
                if original:
                    if tag == _PATIENT_NAME:
                        new = remapper.pseudonym("patient-id", pid) if pid else \
                            remapper.pseudonym("patient-name", original)
                    elif kind == "patient-id":
                        new = remapper.pseudonym(kind, original)
                    else:
                        new = remapper.pseudonym(kind or "", original)
                    e.value = _pad(new.encode("ascii"), vr)
                elif act == "D":
                    e.value = _pad(_DUMMY.get(vr, b""), vr)
                append(e)
                continue
            if act == "Z":
                if items is not None:
                    e.items = []
                else:
                    e.value = b""
                append(e)
                continue
            if act == "U" or (act == "D" and vr == "UI"):
                if items is not None:
                    e.items = self._items(items, tag, action, ctx, pid, pname, depth)
                elif vr == "UI":
                    if e.value:
                        e.value = _pad(remapper.uids(bytes(e.value)), "UI")
                else:
                    e.value = _pad(_DUMMY.get(vr, b""), vr)
                append(e)
                continue
            if act == "D":
                if items is not None:
                    if items and any(x.tag in (_CODE_VALUE, _LONG_CODE_VALUE) for x in items[0]):
                        e.items = [_dummy_code_item()]
                    else:
                        e.items = self._items(items, tag, action, ctx, pid, pname, depth)
                else:
                    e.value = _pad(_DUMMY.get(vr, b""), vr)
                append(e)
                continue
            if act == "C":
                if items is not None:
                    e.items = self._items(items, tag, action, ctx, pid, pname, depth)
                elif vr in ("DA", "DT"):
                    if self.modified_dates:
                        shifted = shift_date(bytes(e.value), ctx.date_offset, vr)
                        if shifted is None:
                            e.value = b""  # not a date: nothing safe to keep
                        else:
                            e.value = _pad(shifted, vr)
                    # (C on a date without the modified-dates option does not occur)
                elif vr in _TEXT_VRS:
                    ctx.deferred.append((e, True))
                elif vr in ("OB", "OW", "UN") or 0x5000 <= group <= 0x60FF:
                    continue  # graphics and opaque bytes cannot be cleaned: removed
                append(e)
                continue
            if act == "R":
                over = self.settings.overrides.get(tag)
                value = (over[1] if over else "").encode("ascii", "replace")
                if items is None:
                    e.value = _pad(value, vr)
                append(e)
                continue
            # unknown primitive: be safe
            continue
        return out

    def _items(self, items: list[list[Elem]], tag: int,
               action: Callable[[int, int], str | None], ctx: _Ctx, pid: str, pname: str,
               depth: int) -> list[list[Elem]]:
        return [self._walk(i, tag, action, ctx, pid, pname, depth + 1) for i in items]

    def _keep_private(self, e: Elem) -> bool:
        elem = e.tag & 0xFFFF
        if elem == 0:
            return False
        if 0x0010 <= elem <= 0x00FF:
            return True  # private creator: a vendor name
        return e.items is None and e.vr in _NUMERIC_VRS

    def _sweep(self, ctx: _Ctx) -> None:
        """Clean deferred text elements with everything identifying seen in the file."""
        if not ctx.deferred:
            return
        identity = identity_from(ctx.name_values, ctx.id_values)
        cleaner = Cleaner(identity)
        codecs = ctx.codecs
        for e, full in ctx.deferred:
            text = _text(e.value, e.vr, codecs)
            if not full and not identity:
                continue
            if not cleaner.needs_cleaning(text, full=full):
                continue
            cleaned = cleaner.clean(text, full=full)
            if not cleaned:  # nothing left: a dummy keeps a Type 1 attribute valid
                cleaned = "ANONYMOUS" if e.vr == "PN" else "REMOVED"
            try:
                raw = encode_string(cleaned, list(codecs))
            except (UnicodeError, LookupError, ValueError):
                raw = cleaned.encode("ascii", "replace")
            e.value = _pad(raw, e.vr)

    def _fix_meta(self, pf: ParsedFile, sop_uid: str) -> None:
        if not pf.meta:
            return
        drop = {0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102}
        meta: list[Elem] = []
        for e in pf.meta:
            if e.tag in drop:
                continue
            if e.tag == 0x00020003:
                if sop_uid:
                    e.value = _pad(sop_uid.encode("ascii"), "UI")
                elif e.value and "retain-uids" not in self.options:
                    e.value = _pad(self.remapper.uids(bytes(e.value)), "UI")
            elif e.tag == 0x00020012:
                e.value = _pad(IMPLEMENTATION_CLASS_UID, "UI")
            elif e.tag == 0x00020013:
                e.value = _pad(IMPLEMENTATION_VERSION, "SH")
            meta.append(e)
        if not any(e.tag == 0x00020013 for e in meta):
            meta.append(Elem(0x00020013, "SH", _pad(IMPLEMENTATION_VERSION, "SH")))
            meta.sort(key=lambda x: x.tag)
        pf.meta = meta


def _dummy_code_item() -> list[Elem]:
    return [Elem(0x00080100, "SH", b"0 "),
            Elem(0x00080102, "SH", b"99DCMGUARD"),
            Elem(0x00080104, "LO", b"REMOVED ")]
