"""Run the registered checks over probe facts, turning each outcome into a Finding.

One broken check never aborts the others, and a crash is reported as ERROR, never as a pass.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dicomguard import checks
from dicomguard.models import Endpoint, Finding, Service, Status
from dicomguard.probes import sop_catalogue
from dicomguard.probes.facts import DicomFacts


def run_checks(protocol: str, facts: Any, endpoint: Endpoint, *, intrusive: bool
               ) -> list[Finding]:
    """Every check of `protocol` on `facts`; intrusive ones only when enabled. A crashing
    check is ERROR, never a pass."""
    out: list[Finding] = []
    for check in checks.for_protocol(protocol):
        meta = check.meta
        if meta.intrusive and not intrusive:
            continue
        try:
            outcome = check.evaluate(facts)
        except Exception as exc:  # a check bug must not end the scan
            out.append(Finding(meta.id, meta.title, endpoint, Status.ERROR, meta.severity, {},
                               meta.intrusive, f"check crashed: {type(exc).__name__}: {exc}"))
            continue
        severity = outcome.severity if outcome.severity is not None else meta.severity
        out.append(Finding(meta.id, meta.title, endpoint, outcome.status, severity,
                           dict(outcome.evidence), meta.intrusive, outcome.error))
    return out


def evaluate_dicom(facts: DicomFacts, *, intrusive: bool) -> list[Finding]:
    """Findings for one DICOM endpoint; nothing for a port that is not DICOM."""
    if not facts.is_dicom:
        return []
    return run_checks("dicom", facts, facts.endpoint, intrusive=intrusive)


def dicom_service(facts: DicomFacts) -> Service:
    """A PHI-free summary of what the probe saw on the endpoint."""
    summary: dict[str, Any] = {"dicom": facts.is_dicom}
    if facts.error:
        summary["error"] = facts.error
    if facts.wildcard is not None:
        summary["unknown_called_ae"] = facts.wildcard.summary()
    if facts.known_ae_attempts:
        summary["known_ae_attempts"] = [a.summary() for a in facts.known_ae_attempts]
    if facts.accepted_called_ae is not None:
        summary["accepted_called_ae"] = facts.accepted_called_ae
    if facts.implementation_class_uid:
        summary["implementation_class_uid"] = facts.implementation_class_uid
        summary["implementation_version_name"] = facts.implementation_version_name
        summary["max_pdu_length"] = facts.max_pdu_length
        summary["fingerprint_verified"] = facts.fingerprint_verified
    if facts.echo_status is not None:
        summary["c_echo_status"] = facts.echo_status
    if facts.accepted_sop_classes is not None:
        summary["accepted_sop_classes"] = {
            k: len(v) for k, v in sop_catalogue.group_names(facts.accepted_sop_classes).items()}
    if facts.find is not None:
        find = asdict(facts.find)
        find.pop("phi_sample", None)
        summary["c_find"] = find
    for key, tls in (("tls", facts.tls), ("tls_alt", facts.tls_alt)):
        if tls is not None:
            summary[key] = {k: v for k, v in asdict(tls).items() if v is not None}
    for key, value in facts.extra.items():
        if not key.startswith("_"):
            summary[key] = value
    if facts.intrusive is not None:
        summary["intrusive"] = {k: v for k, v in asdict(facts.intrusive).items()
                                if v is not None}
    protocol = "dicom" if facts.is_dicom else (
        "tls" if facts.tls is not None and facts.tls.handshake else "unknown")
    endpoint = facts.endpoint if facts.endpoint.protocol == protocol else type(facts.endpoint)(
        facts.endpoint.address, facts.endpoint.port, protocol, facts.endpoint.hostname)
    return Service(endpoint, facts.product, facts.version, summary)
