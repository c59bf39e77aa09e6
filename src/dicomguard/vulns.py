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


def parse_version(text: str) -> tuple[int, ...] | None:
    """'1.10.1' -> (1, 10, 1); None when the text carries no dotted number."""
    m = re.search(r"\d+(?:\.\d+)*", text)
    if not m:
        return None
    return tuple(int(p) for p in m.group(0).split("."))


def _normalise(product: str) -> str:
    return product.strip().lower()


@cache
def table() -> tuple[Vulnerability, ...]:
    raw = json.loads(resources.files("dicomguard.data").joinpath("cves.json").read_text())
    return tuple(
        Vulnerability(product=e["product"], cve=e["cve"], fixed_in=e["fixed_in"],
                      severity=Severity.parse(e["severity"]), cvss=e.get("cvss"),
                      summary=e["summary"], references=tuple(e.get("references", ())))
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
        fixed = parse_version(vuln.fixed_in)
        if _normalise(vuln.product) == name and fixed is not None and current < fixed:
            found.append(vuln)
    return found
