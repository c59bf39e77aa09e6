"""De-identification markers written into every output (PS3.15 E.1.1, PS3.3 C.7.1.1).

- PatientIdentityRemoved (0012,0062): ``YES`` only when the pixels are known clean: there are
  none, BurnedInAnnotation was ``NO``, the burned-in text was redacted, or the file is not at
  burned-in risk (the PHI inspector's rule: BurnedInAnnotation absent for a modality or SOP
  class that does not usually burn text in, i.e. not US/SC/OT/XA/ES/secondary capture).
  Otherwise ``NO``, and BurnedInAnnotation (0028,0301) is set ``YES`` (the run reports it).
- DeidentificationMethod (0012,0063): "dicomguard <version>" and the profile and options, one
  value each (LO values of at most 64 characters).
- DeidentificationMethodCodeSequence (0012,0064): CID 7050 codes, DCM scheme: 113100 for the
  Basic Profile, 113101 when pixels were cleaned, and one per option applied (113104-113112).
- LongitudinalTemporalInformationModified (0028,0303): MODIFIED (dates shifted), UNMODIFIED
  (full dates retained) or REMOVED.
- BurnedInAnnotation (0028,0301): ``NO`` after redaction.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from dicomguard import __version__

from .codec import Elem
from .profile import option_codes

__all__ = ["MarkerState", "apply_markers", "method_values"]

PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
DEIDENTIFICATION_METHOD_CODES = 0x00120064
BURNED_IN_ANNOTATION = 0x00280301
LONGITUDINAL_MODIFIED = 0x00280303


@dataclass(frozen=True, slots=True)
class MarkerState:
    options: frozenset[str]
    pixels_cleaned: bool
    pixels_present: bool
    burned_in_risk: bool
    burned_in_input: str
    modified_dates: bool


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b" " if len(raw) & 1 else raw


def method_values(options: Iterable[str], pixels_cleaned: bool) -> list[str]:
    values = [f"dicomguard {__version__}"[:64]]
    values.extend(meaning[:64] for _code, meaning in option_codes(options,
                                                                  pixels_cleaned=pixels_cleaned))
    return values


def _set(ds: list[Elem], elem: Elem) -> None:
    tags = [e.tag for e in ds]
    i = bisect.bisect_left(tags, elem.tag)
    if i < len(ds) and ds[i].tag == elem.tag:
        ds[i] = elem
    else:
        ds.insert(i, elem)


def apply_markers(ds: list[Elem], state: MarkerState) -> bool:
    """Write the markers into the top-level data set; return PatientIdentityRemoved."""
    if state.pixels_cleaned:
        clean = True
        _set(ds, Elem(BURNED_IN_ANNOTATION, "CS", _text("NO")))
    elif not state.pixels_present:
        clean = True
    else:
        clean = not state.burned_in_risk
        if state.burned_in_risk:
            _set(ds, Elem(BURNED_IN_ANNOTATION, "CS", _text("YES")))
    _set(ds, Elem(PATIENT_IDENTITY_REMOVED, "CS", _text("YES" if clean else "NO")))
    values = method_values(state.options, state.pixels_cleaned)
    _set(ds, Elem(DEIDENTIFICATION_METHOD, "LO", _text("\\".join(values))))
    items = []
    for code, meaning in option_codes(state.options, pixels_cleaned=state.pixels_cleaned):
        items.append([Elem(0x00080100, "SH", _text(code)),
                      Elem(0x00080102, "SH", _text("DCM")),
                      Elem(0x00080104, "LO", _text(meaning[:64]))])
    _set(ds, Elem(DEIDENTIFICATION_METHOD_CODES, "SQ", items=items))
    if "retain-longitudinal-full-dates" in state.options:
        longitudinal = "UNMODIFIED"
    elif state.modified_dates:
        longitudinal = "MODIFIED"
    else:
        longitudinal = "REMOVED"
    _set(ds, Elem(LONGITUDINAL_MODIFIED, "CS", _text(longitudinal)))
    return clean
