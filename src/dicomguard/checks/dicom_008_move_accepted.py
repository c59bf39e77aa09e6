"""DICOM-008 (intrusive): C-MOVE to an unknown destination is not refused."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome, intrusive_gate
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

MOVE_DESTINATION_UNKNOWN = 0xA801

META = CheckMeta(
    id="DICOM-008",
    protocol="dicom",
    severity=Severity.MEDIUM,
    title="C-MOVE accepted for an unknown destination",
    risk=(
        "A server that starts a move to a destination it does not know (or resolves "
        "destinations loosely) can be made to push studies to an attacker's AE."
    ),
    remediation=(
        "Only move to configured destinations (Orthanc: \"DicomModalities\"; dcmqrscp: "
        "HostTable), refuse unknown ones with status A801, and restrict who may ask "
        "(Orthanc: \"DicomAlwaysAllowMove\": false)."
    ),
    references=("DICOM PS3.4 C.4.2 (C-MOVE), status A801 Move Destination Unknown",),
    intrusive=True,
)


def evaluate(facts: DicomFacts) -> Outcome:
    intr = facts.intrusive
    gate = intrusive_gate(intr, intr.move_refused if intr is not None else None)
    if gate is not None:
        return gate
    assert intr is not None
    if intr.move_status is None:
        return Outcome(Status.ERROR, {}, error=intr.move_error or "no C-MOVE response")
    evidence = {"status": f"0x{intr.move_status:04X}", "destination": "made-up AE title"}
    # A801 destination unknown; Axxx/Cxxx failures and 0122/0124/0211 refusals all refuse.
    if intr.move_status == MOVE_DESTINATION_UNKNOWN or (intr.move_status & 0xF000) in (
            0xA000, 0xC000) or intr.move_status in (0x0122, 0x0124, 0x0211):
        return Outcome(Status.PASS, evidence)
    return Outcome(Status.FAIL, evidence)
