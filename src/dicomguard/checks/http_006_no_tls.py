"""HTTP-006: a web PACS or imaging viewer is served over plain HTTP."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-006",
    protocol="http",
    severity=Severity.MEDIUM,
    title="Web PACS or imaging viewer served over plain HTTP",
    risk=(
        "Patient data, images and the HTTP Basic credentials of every user cross the network "
        "in clear text; anyone on the path (Wi-Fi, a compromised workstation) can read them."
    ),
    remediation=(
        "Serve the application over HTTPS only: Orthanc \"SslEnabled\": true with "
        "\"SslCertificate\", or a TLS reverse proxy (nginx, Apache) in front of the PACS and "
        "the viewers, with plain HTTP closed or redirected."
    ),
    references=(
        "https://orthanc.uclouvain.be/book/faq/https.html",
        "CWE-319: Cleartext Transmission of Sensitive Information",
    ),
)


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    names = sorted({p.name for p in facts.products})
    if not names:
        return Outcome(Status.PASS, {"reason": "no web PACS or imaging viewer identified"})
    evidence = {"scheme": facts.scheme, "products": names,
                "credentials_in_clear": any(p.auth_required for p in facts.products)}
    if facts.scheme == "https":
        if facts.tls is not None:
            evidence["tls_protocol"] = facts.tls.protocol
        return Outcome(Status.PASS, evidence)
    return Outcome(Status.FAIL, evidence)
