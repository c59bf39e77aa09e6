"""HTTP-005: a web PACS announces a version with known vulnerabilities."""

from __future__ import annotations

from typing import Any

from dicomguard import vulns
from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-005",
    protocol="http",
    severity=Severity.HIGH,
    title="Web PACS version with known vulnerabilities",
    risk=(
        "Published flaws in imaging servers' web APIs give file writes and code execution "
        "(Orthanc before 1.12.0: CVE-2023-33466); such servers stay unpatched for years."
    ),
    remediation=(
        "Upgrade to a fixed release (each CVE names the first one), or confirm with the vendor "
        "or distribution that the fix is backported; until then keep the API behind "
        "authentication and off reachable networks. Orthanc: 1.12.0 or later."
    ),
    references=("data/cves.json (each entry links its advisory)",),
)


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    versioned = [p for p in facts.products if p.version]
    if not versioned:
        names = sorted({p.name for p in facts.products})
        return Outcome(Status.UNKNOWN, {"products": names, "reason": "no product version seen"})
    products: list[dict[str, Any]] = []
    worst: Severity | None = None
    for product in versioned:
        found = vulns.lookup(product.name, product.version)
        entry: dict[str, Any] = {"product": product.name, "version": product.version,
                                 "seen_at": product.path}
        if found:
            entry["cves"] = vulns.evidence(found)
            top = max(v.severity for v in found)
            worst = top if worst is None else max(worst, top)
        products.append(entry)
    evidence: dict[str, Any] = {"products": products}
    if worst is None:
        return Outcome(Status.PASS, evidence)
    evidence["caveat"] = "matched by announced version; distributions may backport fixes"
    return Outcome(Status.FAIL, evidence, severity=worst)
