"""DICOM-005: DICOM served in clear text, without TLS."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.facts import DicomFacts

META = CheckMeta(
    id="DICOM-005",
    protocol="dicom",
    severity=Severity.MEDIUM,
    title="DICOM service without TLS",
    risk=(
        "Names, IDs and images cross the network in clear text and the peers are not "
        "authenticated; only 0.14% of exposed DICOM servers use TLS."
    ),
    remediation=(
        "Offer DICOM over TLS (port 2762, PS3.15 Annex B) with certificates for known peers and "
        "close the clear-text port. Orthanc: \"DicomTlsEnabled\": true with "
        "\"DicomTlsCertificate\", \"DicomTlsPrivateKey\", \"DicomTlsTrustedCertificates\" and "
        "\"DicomTlsRemoteCertificateRequired\": true. dcmtk: build with OpenSSL and run "
        "dcmqrscp/storescp with +tls. Where devices cannot do TLS, tunnel them (VPN, stunnel) "
        "inside a segmented imaging VLAN."
    ),
    references=("DICOM PS3.15 Annex B (Secure Transport Connection Profiles)",),
)


def evaluate(facts: DicomFacts) -> Outcome:
    if facts.tls is not None and facts.tls.handshake:
        return Outcome(Status.PASS, {"port": facts.tls.port, "tls": facts.tls.protocol,
                                     "certificate_subject": facts.tls.certificate_subject})
    if not facts.is_dicom:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "not DICOM"})
    evidence: dict[str, object] = {"clear_text_port": facts.endpoint.port}
    if facts.tls_alt is not None:
        evidence["tls_port"] = facts.tls_alt.port
        evidence["tls_port_handshake"] = facts.tls_alt.handshake
        if facts.tls_alt.protocol:
            evidence["tls_port_protocol"] = facts.tls_alt.protocol
    return Outcome(Status.FAIL, evidence)
