"""DICOM-006: the product version announced by the server has known vulnerabilities."""

from __future__ import annotations

from dicomguard import vulns
from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-006",
    protocol="dicom",
    severity=Severity.HIGH,
    title="Product version with known vulnerabilities",
    risk=(
        "Imaging servers run for years unpatched; published flaws in the DICOM service or its "
        "web interface give attackers file writes, code execution or denial of service."
    ),
    remediation=(
        "Upgrade to a fixed release (each CVE below names the first one), or confirm with the "
        "vendor or distribution that the fix is backported; until then keep the device off "
        "reachable networks. Orthanc: upgrade to 1.12.0 or later and keep the REST API behind "
        "authentication. dcmtk: 3.6.8 or later."
    ),
    references=("data/cves.json (each entry links its advisory)",),
)


def evaluate(facts: DicomFacts) -> Outcome:
    if not facts.is_dicom or not facts.product:
        return Outcome(Status.UNKNOWN, {"reason": "product not identified"})
    if not facts.version:
        return Outcome(Status.UNKNOWN, {"product": facts.product, "reason": "version unknown"})
    found = vulns.lookup(facts.product, facts.version)
    evidence = {"product": facts.product, "version": facts.version,
                "fingerprint_verified": facts.fingerprint_verified}
    if not found:
        return Outcome(Status.PASS, evidence)
    evidence["cves"] = vulns.evidence(found)
    evidence["caveat"] = "matched by announced version; distributions may backport fixes"
    return Outcome(Status.FAIL, evidence, severity=max(v.severity for v in found))
