"""DICOM-009 (intrusive): C-GET hands images to an unknown AE."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-009",
    protocol="dicom",
    severity=Severity.CRITICAL,
    title="C-GET returns images to an unknown AE",
    risk=(
        "The images themselves, with every identifier in their headers and often burned into "
        "the pixels, can be downloaded by anyone who reaches the port."
    ),
    remediation=(
        "Refuse retrieval from unknown peers. Orthanc: \"DicomAlwaysAllowGet\": false and "
        "\"AllowGet\" only for known entries of \"DicomModalities\"; dcmqrscp: peer lists per "
        "AE. dicomguard received one instance and discarded it without writing it anywhere."
    ),
    references=("DICOM PS3.4 C.4.3 (C-GET)",),
    intrusive=True,
)


def evaluate(facts: DicomFacts) -> Outcome:
    intr = facts.intrusive
    if intr is None:
        return Outcome(Status.UNKNOWN, {"reason": "intrusive tests not enabled (--intrusive)"})
    if intr.get_status is None and intr.get_instances == 0:
        if intr.get_error is None:
            return Outcome(Status.PASS, {"reason": "no C-GET context or nothing to retrieve"})
        return Outcome(Status.ERROR, {}, error=intr.get_error)
    evidence = {"instances_received": intr.get_instances,
                "status": None if intr.get_status is None else f"0x{intr.get_status:04X}",
                "kept": False}
    return Outcome(Status.FAIL if intr.get_instances > 0 else Status.PASS, evidence)
