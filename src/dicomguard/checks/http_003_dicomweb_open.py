"""HTTP-003: DICOMweb QIDO-RS answers queries without credentials."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-003",
    protocol="http",
    severity=Severity.CRITICAL,
    title="DICOMweb answers queries without credentials",
    risk=(
        "QIDO-RS lists every study with the patient's name, ID, birth date and accession "
        "number, and WADO-RS on the same root hands out the images: a browser is enough."
    ),
    remediation=(
        "Require authentication on the DICOMweb root: Orthanc's DICOMweb plugin is covered "
        "by Orthanc's \"AuthenticationEnabled\" / authorization plugin; dcm4chee-arc needs the "
        "secured archive (Keycloak) for its RESTful services, not only its UI. Serve it over "
        "TLS and only to the viewers that need it (reverse proxy allow-list)."
    ),
    references=(
        "DICOM PS3.18 (Web Services): QIDO-RS, WADO-RS",
        "https://orthanc.uclouvain.be/book/plugins/dicomweb.html",
        "CWE-306: Missing Authentication for Critical Function",
    ),
)


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    open_roots = facts.open_dicomweb
    if not open_roots:
        protected = [d.root for d in facts.dicomweb if d.auth_required]
        if protected:
            return Outcome(Status.PASS, {"authentication_required": protected})
        return Outcome(Status.PASS, {"reason": "no DICOMweb root answered"})
    roots = []
    for d in open_roots:
        entry = {"root": d.root, "studies": d.studies, "patients": d.patients,
                 "truncated": d.truncated, "attributes_returned": list(d.attributes_returned)}
        if d.error:
            entry["error"] = d.error
        if d.phi_sample:
            entry["phi_sample"] = list(d.phi_sample)
        roots.append(entry)
    studies = sum(d.studies for d in open_roots)
    evidence = {"roots": roots, "studies": studies,
                "patients": max(d.patients for d in open_roots)}
    return Outcome(Status.FAIL, evidence,
                   severity=Severity.CRITICAL if studies > 0 else Severity.HIGH)
