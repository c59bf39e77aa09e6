"""DICOM-007 (intrusive): C-STORE from an unknown AE is accepted."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome, intrusive_gate
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-007",
    protocol="dicom",
    severity=Severity.HIGH,
    title="C-STORE accepted from an unknown AE",
    risk=(
        "Anyone can add images to the archive: planted or altered studies reach clinicians, "
        "storage fills up, and a crafted file reaches every parser downstream."
    ),
    remediation=(
        "Accept storage only from known modalities. Orthanc: \"DicomAlwaysAllowStore\": false "
        "and \"AllowStore\" per entry of \"DicomModalities\". dcmqrscp: Access R (not RW) for "
        "AEs that peers should only read, peer lists per AE. The test instance dicomguard "
        "stored is labelled 'DICOMGUARD^SECURITY TEST' and can be deleted."
    ),
    references=("DICOM PS3.4 Annex B (Storage Service Class)",),
    intrusive=True,
)


def evaluate(facts: DicomFacts) -> Outcome:
    intr = facts.intrusive
    gate = intrusive_gate(intr, intr.store_refused if intr is not None else None)
    if gate is not None:
        return gate
    assert intr is not None
    if intr.store_status is None:
        return Outcome(Status.ERROR, {}, error=intr.store_error or "no C-STORE response")
    evidence = {"status": f"0x{intr.store_status:04X}"}
    # 0x0000 success, 0xB000/0xB007/0xB006 warnings: the instance was stored.
    if intr.store_status == 0 or (intr.store_status & 0xF000) == 0xB000:
        return Outcome(Status.FAIL, evidence)
    return Outcome(Status.PASS, evidence)
