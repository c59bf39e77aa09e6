"""Product and version from what a DICOM peer announces (rules as data: data/fingerprints.json)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Orthanc announces dcmtk's identification; probes/orthanc_rest.py refines it from the REST API.
# Verified against Orthanc 1.10.1 (Debian) in tests/engine/test_scan_lab.py.
ORTHANC_VERIFIED = True


@dataclass(frozen=True, slots=True)
class FingerprintRule:
    product: str
    uid_prefix: str
    version_name_pattern: re.Pattern[str] | None
    version_format: str
    verified: bool
    note: str


@dataclass(frozen=True, slots=True)
class Fingerprint:
    product: str
    version: str | None
    verified: bool
    note: str


@cache
def rules() -> tuple[FingerprintRule, ...]:
    raw = json.loads(resources.files("dicomguard.data").joinpath("fingerprints.json").read_text())
    out = []
    for entry in raw["entries"]:
        pattern = entry.get("version_name_pattern") or ""
        out.append(FingerprintRule(
            product=entry["product"], uid_prefix=entry["uid_prefix"],
            version_name_pattern=re.compile(pattern) if pattern else None,
            version_format=entry.get("version_format", ""), verified=bool(entry["verified"]),
            note=entry.get("note", "")))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def identify(class_uid: str | None, version_name: str | None) -> Fingerprint | None:
    """The first rule whose UID prefix matches; the version from the version name when the
    rule's pattern matches it, else from the UID suffix for dcmtk-style UIDs."""
    if not class_uid:
        return None
    for rule in rules():
        if not class_uid.startswith(rule.uid_prefix):
            continue
        version = None
        if rule.version_name_pattern is not None and version_name:
            m = rule.version_name_pattern.search(version_name.strip())
            if m:
                version = rule.version_format.format(*m.groups())
        return Fingerprint(rule.product, version, rule.verified, rule.note)
    return None
