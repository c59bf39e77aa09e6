"""DICOM-009 (intrusive): C-GET hands images to an unknown AE."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome, intrusive_gate
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
    gate = intrusive_gate(intr, intr.get_refused if intr is not None else None)
    if gate is not None:
        return gate
    assert intr is not None
    if intr.get_instances > 0:
        return Outcome(Status.FAIL, {
            "instances_received": intr.get_instances, "kept": False,
            "status": None if intr.get_status is None else f"0x{intr.get_status:04X}"})
    if intr.get_error:
        return Outcome(Status.ERROR, {}, error=intr.get_error)
    if intr.get_status is None:
        return Outcome(Status.PASS, {"reason": "nothing known to retrieve (no study found)"})
    return Outcome(Status.PASS, {"instances_received": 0,
                                 "status": f"0x{intr.get_status:04X}"})
