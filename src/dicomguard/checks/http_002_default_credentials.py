"""HTTP-002: a web PACS accepts its product's documented default login."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-002",
    protocol="http",
    severity=Severity.CRITICAL,
    title="Web PACS accepts its documented default credentials",
    risk=(
        "The default login is published in the product's own documentation: anyone can use it "
        "to read every patient's images and, through the REST API, modify the archive or (on "
        "Orthanc before 1.12.0, CVE-2023-33466) run code on the server."
    ),
    remediation=(
        "Replace the default account: Orthanc \"RegisteredUsers\" with strong, unique "
        "passwords (declared explicitly, so Orthanc creates no default user), or an "
        "authorization plugin with per-user accounts. Rotate "
        "any password that was ever the default, and put the service behind TLS."
    ),
    references=(
        "https://orthanc.uclouvain.be/book/users/docker.html",
        "https://orthanc.uclouvain.be/book/faq/security.html",
        "CWE-1392: Use of Default Credentials",
    ),
    intrusive=True,
)


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.credentials_tried:
        return Outcome(Status.UNKNOWN, {"reason": "default credentials not tried "
                                                  "(--try-default-credentials)"})
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    attempts = [{"product": c.product, "path": c.path, "username": c.username,
                 "accepted": c.accepted, "status": c.status, "documented_in": c.reference}
                for c in facts.credentials]
    accepted = [a for a in attempts if a["accepted"]]
    if accepted:
        evidence: dict[str, Any] = {"accepted": accepted}
        orthanc = facts.orthanc
        if orthanc is not None and orthanc.via_default_credentials:
            evidence["opened"] = {k: getattr(orthanc, k) for k in
                                  ("version", "patients", "studies", "instances")
                                  if getattr(orthanc, k) is not None}
        return Outcome(Status.FAIL, evidence)
    errors = [c.error for c in facts.credentials if c.error]
    if errors and len(errors) == len(facts.credentials):
        return Outcome(Status.ERROR, {"attempts": attempts}, error="; ".join(errors))
    if not attempts:
        return Outcome(Status.PASS, {"reason": "no product with a documented default login "
                                               "asked for credentials"})
    return Outcome(Status.PASS, {"refused": attempts})
