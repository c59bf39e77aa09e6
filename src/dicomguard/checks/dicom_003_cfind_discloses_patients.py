"""DICOM-003: C-FIND with universal matching returns patient and study records."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-003",
    protocol="dicom",
    severity=Severity.CRITICAL,
    title="C-FIND discloses patient records to an unknown AE",
    risk=(
        "Anyone who can reach the port can list patients' names, IDs, birth dates and studies; "
        "this is how 24 million study records were found open in 2019. C-MOVE or C-GET then "
        "usually pull the images themselves."
    ),
    remediation=(
        "Refuse queries from unknown peers. Orthanc: \"DicomAlwaysAllowFind\": false and the "
        "querying devices listed in \"DicomModalities\" (with \"AllowFind\"), "
        "\"DicomCheckCalledAet\": true. dcmtk dcmqrscp: per-AE peer lists in the AETable. "
        "Take the server off any network reachable from the internet, office or guest networks."
    ),
    references=(
        "DICOM PS3.4 Annex C (Query/Retrieve Service Class)",
        "Greenbone, Information Disclosure Report on PACS (2019)",
    ),
)


def evaluate(facts: DicomFacts) -> Outcome:
    find = facts.find
    if find is None:
        if not facts.associated:
            return Outcome(Status.PASS, {"reason": "no association for an unknown AE"})
        return Outcome(Status.PASS, {"reason": "no Query/Retrieve FIND context accepted"})
    if find.refused and not find.records and not find.error:
        return Outcome(Status.PASS, {"refused": find.refused})
    if find.error and not find.records:
        return Outcome(Status.ERROR, {"levels": list(find.levels)}, error=find.error)
    evidence = {
        "studies": find.studies,
        "patients": find.patients,
        "records": find.records,
        "truncated": find.truncated,
        "levels": list(find.levels),
        "information_models": list(find.information_models),
        "attributes_returned": list(find.attributes_returned),
    }
    if find.worklist_items is not None:
        evidence["worklist_items"] = find.worklist_items
    if find.phi_sample:
        evidence["phi_sample"] = list(find.phi_sample)
    if find.discloses:
        return Outcome(Status.FAIL, evidence)
    return Outcome(Status.PASS, evidence)
