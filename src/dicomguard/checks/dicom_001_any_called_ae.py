"""DICOM-001: the server accepts an association whatever called AE title it is given."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-001",
    protocol="dicom",
    severity=Severity.HIGH,
    title="Association accepted for any called AE title",
    risk=(
        "The called AE title is the first gate of a DICOM server. When any title is accepted, "
        "a stranger needs no knowledge of the site to start querying or sending images; "
        "99.56% of internet-exposed DICOM servers behave this way (2025 Shodan data)."
    ),
    remediation=(
        "Make the server check the called AE title. Orthanc: \"DicomCheckCalledAet\": true and "
        "a non-default \"DicomAet\". dcmtk dcmqrscp: answer only the AE titles of the AETable "
        "(do not run with --disable-called-AE-check-style options or storescp without "
        "--aetitle checks). dcm4chee-arc: keep only the configured Network AEs. Then restrict "
        "calling AE titles and hosts (see DICOM-002) and segment the imaging network."
    ),
    references=(
        "DICOM PS3.8 section 9.3.4 (A-ASSOCIATE-RJ reasons)",
        "https://orthanc.uclouvain.be/book/users/configuration.html",
    ),
)


def evaluate(facts: DicomFacts) -> Outcome:
    attempt = facts.wildcard
    if attempt is None or attempt.error:
        return Outcome(Status.UNKNOWN, {"reason": attempt.error if attempt else "not attempted"})
    if attempt.accepted:
        return Outcome(Status.FAIL, {"called_ae_sent": attempt.called_ae, "accepted": True})
    if attempt.calling_ae_refused:
        # The server stopped at the calling AE; whether it checks the called AE is not shown.
        return Outcome(Status.UNKNOWN, {"reject": attempt.reject_description})
    return Outcome(Status.PASS, {"called_ae_sent": attempt.called_ae,
                                 "reject": attempt.reject_description})
