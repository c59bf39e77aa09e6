"""DICOM-002: the server accepts an association from an unknown calling AE title."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-002",
    protocol="dicom",
    severity=Severity.HIGH,
    title="Association accepted from an unknown calling AE title",
    risk=(
        "Without an allow-list of calling AE titles (and their addresses) any device or "
        "attacker that knows or guesses the called AE title can use every service the server "
        "offers: query, retrieve, store. Under 1% of exposed servers enforce access control."
    ),
    remediation=(
        "Allow only known peers. Orthanc: list them in \"DicomModalities\" and set "
        "\"DicomAlwaysAllowEcho\", \"DicomAlwaysAllowFind\", \"DicomAlwaysAllowMove\", "
        "\"DicomAlwaysAllowGet\" and \"DicomAlwaysAllowStore\" to false, with "
        "\"DicomCheckModalityHost\": true. dcmtk dcmqrscp: name the peers of each AE in the "
        "AETable instead of ANY and list them in HostTable. dcm4chee-arc: set the accepted "
        "calling AE titles of the Network AE. Firewall the port to the modalities and viewers "
        "that need it."
    ),
    references=(
        "DICOM PS3.8 section 9.3.4 (A-ASSOCIATE-RJ reasons)",
        "https://orthanc.uclouvain.be/book/users/configuration.html",
        "https://support.dcmtk.org/docs/dcmqrcnf.html",
    ),
)


def evaluate(facts: DicomFacts) -> Outcome:
    if facts.random_calling_accepted is None:
        attempts = ([facts.wildcard] if facts.wildcard else []) + list(facts.known_ae_attempts)
        answered = [a for a in attempts if a.error is None]
        if any(a.calling_ae_refused for a in answered):
            refused = next(a for a in answered if a.calling_ae_refused)
            return Outcome(Status.PASS, {"reject": refused.reject_description})
        if answered and len(answered) == len(attempts) and any(
                a.called_ae_refused for a in answered):
            # No called AE title got us in; nothing shows the calling AE check either way.
            return Outcome(Status.UNKNOWN, {"reason": "no accepted called AE title found",
                                            "hint": "give the server's AE title with --aet"})
        return Outcome(Status.UNKNOWN, {"reason": "association not established"})
    if facts.random_calling_accepted:
        return Outcome(Status.FAIL, {"called_ae": facts.accepted_called_ae,
                                     "calling_ae": "random (never configured anywhere)"})
    return Outcome(Status.PASS, {"called_ae": facts.accepted_called_ae})
