"""Action resolution: PS3.15 Table E.1-1 + options + the instance's IOD -> one primitive action.

The rule table (:mod:`dicomguard.phi.rules`) gives each tag an action that may be combined
(``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``). PS3.15 E.1.1 resolves them by the
attribute's Type in the IOD: a Type 1 attribute needs a value (D, or for ``X/Z/U*`` sequences:
keep them and replace the UIDs inside, U; we keep them at every Type, see :func:`resolve`),
a Type 2 one must stay present (Z), a Type 3 one may
go (X). The Types come from ``dicomguard/data/attribute_types.json`` (generated from highdicom's
copy of the standard by ``tools/gen_attribute_types.py``; 200 kB, because only the 49 attributes
with a combined action need a Type, so the runtime needs neither highdicom nor its 23 MB of
tables). The Type of an attribute depends on where it is: at the top level of the IOD, or inside
a given sequence; the table is keyed by (enclosing sequence, tag). An attribute that the IOD does
not list at that place is Type 3 (so X). An unknown SOP class uses the strongest Type any IOD
gives at that place (keeping a dummy is always conformant).

Primitive actions: ``X`` remove, ``Z`` empty (or a pseudonym, see the engine), ``D`` dummy,
``U`` UIDs remapped, ``K`` keep, ``C`` clean. :class:`Profile` precomputes, per SOP class, a
dict ``tag -> action`` for the top level and caches nested lookups, so the engine's per-element
work is one dict lookup.

User overrides (:mod:`.overrides`) come last and win: ``keep`` -> K, ``remove`` -> X,
``replace`` -> a fixed value (action ``R``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from dicomguard.phi.rules import OPTION_NAMES, table

__all__ = [
    "CODES",
    "Profile",
    "ProfileSettings",
    "attribute_type",
    "resolve",
]

#: PS3.16 CID 7050 (De-identification Method) codes for the profile and each option.
CODES: Mapping[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean-pixel-data": ("113101", "Clean Pixel Data Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "retain-longitudinal-full-dates": ("113106",
                                       "Retain Longitudinal Temporal Information Full Dates "
                                       "Option"),
    "retain-longitudinal-modified-dates": ("113107",
                                           "Retain Longitudinal Temporal Information Modified "
                                           "Dates Option"),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
}

_TOP = 0


@cache
def _types() -> dict[str, Any]:
    text = (resources.files("dicomguard") / "data" / "attribute_types.json").read_text(
        encoding="utf-8")
    raw = json.loads(text)
    if raw.get("schema") != 1:
        raise ValueError("attribute_types.json: unsupported schema")
    return raw


@cache
def _iod_map(iod: str | None) -> dict[int, int]:
    """(parent << 32 | tag) -> Type for one IOD (None: strongest over all IODs)."""
    raw = _types()
    src = raw["any"] if iod is None else raw["iods"].get(iod, raw["any"])
    out: dict[int, int] = {}
    for key, typ in src.items():
        parent, tag = key.split("/")
        out[(int(parent, 16) << 32) | int(tag, 16)] = int(typ)
    return out


def iod_for(sop_class_uid: str | None) -> str | None:
    """The IOD name (highdicom's key, e.g. "ct-image") of a SOP class, None when unknown."""
    if not sop_class_uid:
        return None
    iod: str | None = _types()["sop_classes"].get(sop_class_uid)
    return iod


def attribute_type(iod: str | None, parent: int, tag: int) -> int:
    """Type (1, 2 or 3) of ``tag`` inside sequence ``parent`` (0: top level) in ``iod``."""
    return _iod_map(iod).get((parent << 32) | tag, 3)


def resolve(action: str, typ: int) -> str:
    """Turn a (possibly combined) Annex E action into a primitive one for a Type."""
    if "/" not in action:
        return action
    if action == "X/Z":
        return "Z" if typ <= 2 else "X"
    if action == "X/D":
        # The table gives X/D to some Type 2 attributes (RTPlanDate in the RT Plan IOD):
        # removing them breaks conformance, a zero-length value is as private: Z.
        return "D" if typ == 1 else ("Z" if typ == 2 else "X")
    if action == "Z/D":
        return "D" if typ == 1 else "Z"
    if action == "X/Z/D":
        return "D" if typ == 1 else ("Z" if typ == 2 else "X")
    if action == "X/Z/U*":
        # Sequences of references (SOP class + instance UIDs). Keeping them with every UID
        # remapped (U) discloses nothing (other contents follow their own rows) and keeps the
        # links between de-identified instances, and the Common Instance Reference module
        # consistent (removal leaves ReferencedSeriesSequence pointing at nothing): always U.
        return "U"
    raise ValueError(f"unknown combined action {action!r}")


@dataclass(frozen=True, slots=True)
class ProfileSettings:
    """What the user chose: Annex E options and overrides (tag -> ("K"|"X"|"R", value))."""

    options: frozenset[str] = frozenset()
    overrides: Mapping[int, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = self.options.difference(OPTION_NAMES)
        if unknown:
            raise ValueError(f"unknown Annex E options: {sorted(unknown)}; "
                             f"known: {', '.join(OPTION_NAMES)}")


class Profile:
    """Primitive actions for one settings object; build once, use for many files."""

    def __init__(self, settings: ProfileSettings) -> None:
        self.settings = settings
        self.options = settings.options
        self._rules = table()
        self._raw: dict[int, str | None] = {}
        self._per_iod: dict[str | None, _IodActions] = {}
        self.private_action = self._resolve_private()

    def _resolve_private(self) -> str:
        act = self._rules.action_for(0x00091010, self.options) or "X"
        return act

    def raw_action(self, tag: int) -> str | None:
        """The table's (possibly combined) action for a public tag with options, or None."""
        try:
            return self._raw[tag]
        except KeyError:
            pass
        act = self._rules.action_for(tag, self.options)
        if len(self._raw) < 100_000:
            self._raw[tag] = act
        return act

    def for_sop_class(self, sop_class_uid: str | None) -> _IodActions:
        iod = iod_for(sop_class_uid)
        acts = self._per_iod.get(iod)
        if acts is None:
            acts = _IodActions(self, iod)
            self._per_iod[iod] = acts
        return acts


class _IodActions:
    """Resolved actions for one IOD: ``action(parent, tag)`` -> primitive action or None."""

    __slots__ = ("_cache", "iod", "overrides", "profile")

    def __init__(self, profile: Profile, iod: str | None) -> None:
        self.profile = profile
        self.iod = iod
        self.overrides = profile.settings.overrides
        self._cache: dict[int, str | None] = {}

    def action(self, parent: int, tag: int) -> str | None:
        key = (parent << 32) | tag
        try:
            return self._cache[key]
        except KeyError:
            pass
        over = self.overrides.get(tag)
        act: str | None
        if over is not None:
            act = over[0]
        else:
            raw = self.profile.raw_action(tag)
            act = None if raw is None else resolve(raw, attribute_type(self.iod, parent, tag))
        if len(self._cache) < 200_000:
            self._cache[key] = act
        return act


def option_codes(options: Iterable[str], *, pixels_cleaned: bool) -> list[tuple[str, str]]:
    """CID 7050 (code value, meaning) pairs for a run: the profile, then options, in order."""
    out = [CODES["basic"]]
    if pixels_cleaned:
        out.append(CODES["clean-pixel-data"])
    opts = set(options)
    # Both longitudinal options given: full dates win (see phi.rules), only that one applies.
    if "retain-longitudinal-full-dates" in opts:
        opts.discard("retain-longitudinal-modified-dates")
    # Graphics are removed, not cleaned: the Clean Graphics Option is not claimed.
    opts.discard("clean-graphics")
    for name in OPTION_NAMES:
        if name in opts and name in CODES:
            out.append(CODES[name])
    return out
