"""Known vulnerabilities by product and version (rules as data: data/cves.json).

Shared by every protocol: a DICOM fingerprint and an HTTP /system answer look up the same table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dicomguard.models import Severity


@dataclass(frozen=True, slots=True)
class Vulnerability:
    product: str
    cve: str
    fixed_in: str
    severity: Severity
    cvss: float | None
    summary: str
    references: tuple[str, ...]
    introduced_in: str | None = None   # first affected version (None: every older one)


_VERSION = re.compile(r"(\d+(?:\.\d+)*)([a-z](?![a-z]))?(?:-?rc(\d+))?", re.IGNORECASE)


def parse_version(text: str) -> tuple[int, ...] | None:
    """A comparable version: '1.10.1' -> (1, 10, 1); a patch letter is a fourth number
    ('1.3.5a' -> (1, 3, 5, 1), ProFTPD style); a release candidate sorts before its release
    ('1.3.6rc2' -> (1, 3, 5, 999)). None when the text carries no dotted number."""
    m = _VERSION.search(text)
    if not m:
        return None
    parts = [int(p) for p in m.group(1).split(".")]
    letter, rc = m.group(2), m.group(3)
    if rc is not None:
        while parts and parts[-1] == 0:
            parts.pop()
        if parts:
            parts[-1] -= 1
            parts.append(999)
        return tuple(parts)
    if letter:
        parts.append(ord(letter.lower()) - ord("a") + 1)
    return tuple(parts)


def _normalise(product: str) -> str:
    return product.strip().lower()


@cache
def table() -> tuple[Vulnerability, ...]:
    raw = json.loads(resources.files("dicomguard.data").joinpath("cves.json").read_text())
    return tuple(
        Vulnerability(product=e["product"], cve=e["cve"], fixed_in=e["fixed_in"],
                      severity=Severity.parse(e["severity"]), cvss=e.get("cvss"),
                      summary=e["summary"], references=tuple(e.get("references", ())),
                      introduced_in=e.get("introduced_in"))
        for e in raw["entries"])


def lookup(product: str | None, version: str | None) -> list[Vulnerability]:
    """Vulnerabilities whose fixed_in is newer than the given version of the product."""
    if not product or not version:
        return []
    current = parse_version(version)
    if current is None:
        return []
    name = _normalise(product)
    found = []
    for vuln in table():
        if _normalise(vuln.product) != name:
            continue
        fixed = parse_version(vuln.fixed_in)
        first = parse_version(vuln.introduced_in) if vuln.introduced_in else None
        if fixed is not None and current < fixed and (first is None or current >= first):
            found.append(vuln)
    return found


def evidence(found: list[Vulnerability]) -> list[dict[str, str]]:
    """The PHI-free evidence list every version check shows."""
    return [{"cve": v.cve, "fixed_in": v.fixed_in, "severity": v.severity.label(),
             "summary": v.summary} for v in found]
