"""User overrides of the profile, from a small TOML file (they win over every Annex E rule).

    # overrides.toml
    keep = ["PatientAge", "(0018,1030)"]        # keep these unchanged (K)
    remove = ["Manufacturer", "00081090"]       # remove these (X)
    [replace]                                   # replace with a fixed ASCII value
    InstitutionName = "RESEARCH SITE"
    StudyDescription = "RESEARCH EXPORT"

An attribute is named by its standard keyword, ``(gggg,eeee)`` or ``ggggeeee``. Overrides apply
to public attributes at every depth. ``keep`` is the user's own decision to keep a value that
the profile would remove: the run reports the kept keywords so the decision is visible.
A name in two lists, an unknown keyword, a private tag, or a non-ASCII replacement is an error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

__all__ = ["OverrideError", "load_overrides", "parse_overrides", "parse_tag"]

_TAG_RE = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")


class OverrideError(ValueError):
    """The overrides file is invalid; the message names the entry."""


def parse_tag(name: str) -> int:
    """A keyword, ``(gggg,eeee)`` or ``ggggeeee`` as a 32-bit tag."""
    name = name.strip()
    m = _TAG_RE.match(name)
    if m is not None:
        tag = int(m[1] + m[2], 16)
    else:
        found = tag_for_keyword(name)
        if found is None:
            raise OverrideError(f"overrides: unknown keyword {name!r}")
        tag = found
    if (tag >> 16) & 1:
        raise OverrideError(f"overrides: {name!r} is private; private attributes follow the "
                            "retain-safe-private option, not overrides")
    return tag


def parse_overrides(doc: Mapping[str, Any]) -> dict[int, tuple[str, str]]:
    unknown = set(doc) - {"keep", "remove", "replace"}
    if unknown:
        raise OverrideError(f"overrides: unknown sections {sorted(unknown)}; "
                            "use keep, remove, replace")
    out: dict[int, tuple[str, str]] = {}

    def add(tag: int, entry: tuple[str, str], name: str) -> None:
        if tag in out:
            raise OverrideError(f"overrides: {name!r} appears more than once")
        out[tag] = entry

    for section, action in (("keep", "K"), ("remove", "X")):
        names = doc.get(section, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise OverrideError(f"overrides: {section} must be a list of names")
        for name in names:
            add(parse_tag(name), (action, ""), name)
    replace = doc.get("replace", {})
    if not isinstance(replace, dict):
        raise OverrideError("overrides: replace must be a table of name = value")
    for name, value in replace.items():
        if not isinstance(value, str) or not value.isascii() or "\\" in value:
            raise OverrideError(f"overrides: replacement for {name!r} must be ASCII text "
                                "without backslashes")
        add(parse_tag(name), ("R", value), name)
    return out


def load_overrides(path: Path) -> dict[int, tuple[str, str]]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise OverrideError(f"overrides: cannot read {path} ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise OverrideError(f"overrides: {path} is not valid TOML: {exc}") from None
    return parse_overrides(doc)


def describe(overrides: Mapping[int, tuple[str, str]]) -> list[str]:
    """``keep PatientAge``-style lines (keywords only, never replacement values)."""
    names = {"K": "keep", "X": "remove", "R": "replace"}
    out = []
    for tag, (action, _value) in sorted(overrides.items()):
        kw = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        out.append(f"{names[action]} {kw}")
    return out
