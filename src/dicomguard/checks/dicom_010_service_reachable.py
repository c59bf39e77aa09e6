"""DICOM-010: a DICOM service is reachable from where the scan ran (segmentation)."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-010",
    protocol="dicom",
    severity=Severity.INFO,
    title="DICOM service reachable from the scanning host",
    risk=(
        "Imaging devices should be reachable only from the imaging network and the systems "
        "that need them. If the scanner sits on an office, guest or public network, this "
        "service is reachable from there."
    ),
    remediation=(
        "Segment: put modalities and PACS in their own VLAN/zone, allow DICOM (104, 11112, "
        "2762) only between known devices, and block it at the perimeter and from office and "
        "guest networks."
    ),
    references=("NIST SP 1800-24 (Securing PACS)", "DICOM PS3.15 Annex B"),
)


def evaluate(facts: DicomFacts) -> Outcome:
    if not facts.is_dicom:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "not DICOM"})
    evidence: dict[str, object] = {"port": facts.endpoint.port}
    if facts.product:
        evidence["product"] = facts.product
    if facts.echo_status is not None:
        evidence["c_echo_status"] = f"0x{facts.echo_status:04X}"
    return Outcome(Status.FAIL, evidence)
