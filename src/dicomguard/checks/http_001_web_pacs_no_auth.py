"""HTTP-001: a web PACS answers its REST API without authentication."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-001",
    protocol="http",
    severity=Severity.CRITICAL,
    title="Web PACS REST API answers without authentication",
    risk=(
        "Anyone who reaches the port can list patients and studies, download every image and, "
        "on Orthanc, delete or modify data and change the server's configuration through the "
        "same API; the 2020 exposures included PACS web interfaces with blank logins."
    ),
    remediation=(
        "Orthanc: \"AuthenticationEnabled\": true with \"RegisteredUsers\" holding strong, "
        "unique passwords (or an authorization plugin), \"RemoteAccessAllowed\": false when "
        "only local clients need the API, and a TLS reverse proxy in front. dcm4chee-arc: "
        "deploy the secured archive (Keycloak, 'secure=all' build or the secured Docker "
        "images). Keep PACS web ports off networks reachable from the internet, office or "
        "guest networks."
    ),
    references=(
        "https://orthanc.uclouvain.be/book/faq/security.html",
        "https://github.com/dcm4che/dcm4chee-arc-light (README: secure=ui / secure=all builds)",
        "CWE-306: Missing Authentication for Critical Function",
    ),
)


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    exposed: list[dict[str, Any]] = []
    patients_served = False
    orthanc = facts.orthanc
    if orthanc is not None and not orthanc.authentication:
        entry: dict[str, Any] = {"product": "Orthanc", "path": "/system",
                                 "version": orthanc.version}
        for key in ("patients", "studies", "series", "instances"):
            value = getattr(orthanc, key)
            if value is not None:
                entry[key] = value
        exposed.append(entry)
        patients_served |= bool(orthanc.patients)
    for product in facts.products:
        if product.name == "dcm4chee-arc" and product.auth_required is False:
            exposed.append({"product": product.name, "path": product.path})
    if not exposed:
        protected = [p.name for p in facts.products if p.kind == "pacs" and p.auth_required]
        if protected:
            return Outcome(Status.PASS, {"authentication_required": protected})
        return Outcome(Status.PASS, {"reason": "no web PACS REST API found"})
    open_studies = sum(d.studies for d in facts.open_dicomweb)
    patients_served |= open_studies > 0
    evidence: dict[str, Any] = {"exposed": exposed, "patient_data_served": patients_served}
    if open_studies:
        evidence["dicomweb_studies"] = open_studies
    return Outcome(Status.FAIL, evidence,
                   severity=Severity.CRITICAL if patients_served else Severity.HIGH)
