"""DICOM-004: query/retrieve and storage services negotiated with an unknown AE."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes import sop_catalogue
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-004",
    protocol="dicom",
    severity=Severity.MEDIUM,
    title="Query/Retrieve services offered to an unknown AE",
    risk=(
        "The server agreed to query and retrieve (or serve its worklist) for a caller it has "
        "never seen and did not refuse the query. Even when the archive is empty today, the "
        "door is open for the data it will hold. (Storage offered to strangers is DICOM-007.)"
    ),
    remediation=(
        "Restrict who may associate (DICOM-001, DICOM-002); in Orthanc set the "
        "\"DicomAlwaysAllow*\" options to false and grant rights per modality in "
        "\"DicomModalities\"; in dcmqrscp give each AE read-only access (Access R) and a peer list."
    ),
    references=("DICOM PS3.4 Annex B and C", "DICOM PS3.8 section 9.3.3.2"),
)


def evaluate(facts: DicomFacts) -> Outcome:
    if facts.accepted_sop_classes is None:
        if not facts.associated:
            return Outcome(Status.PASS, {"reason": "no association for an unknown AE"})
        return Outcome(Status.UNKNOWN, {"reason": "presentation contexts not negotiated"})
    groups = sop_catalogue.group_names(facts.accepted_sop_classes)
    risky = {k: v for k, v in groups.items() if k != "verification"}
    evidence: dict[str, object] = {
        "accepted": {k: len(v) for k, v in groups.items()},
        "accepted_query_retrieve": sorted(risky.get("query_retrieve", [])),
        "accepted_worklist": sorted(risky.get("worklist", []))}
    find = facts.find
    if find is not None and find.refused and not find.records:
        # Negotiated, but the server refused the query itself: queries are not offered.
        evidence["query_refused"] = find.refused
        risky.pop("query_retrieve", None)
        risky.pop("worklist", None)
    if "query_retrieve" in risky or "worklist" in risky:
        return Outcome(Status.FAIL, evidence)
    if "storage" in risky and facts.intrusive is None:
        # Only storage negotiated: whether stores are accepted is DICOM-007's question.
        evidence["note"] = "storage contexts negotiated; run with --intrusive (DICOM-007)"
        return Outcome(Status.UNKNOWN, evidence)
    return Outcome(Status.PASS, evidence)
