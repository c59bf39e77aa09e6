"""FTP-001: anonymous FTP exposes DICOM images (critical when patients are identifiable)."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.ftp import FtpFacts

META = CheckMeta(
    id="FTP-001",
    protocol="ftp",
    severity=Severity.CRITICAL,
    title="Anonymous FTP exposes DICOM images",
    risk=(
        "Anyone who can reach the server downloads medical images without a password; most of "
        "the 45 million images found open in 2020 sat on NAS and FTP servers like this. With "
        "patient names and IDs in the headers every file identifies a patient."
    ),
    remediation=(
        "Turn anonymous access off and use accounts with strong passwords over FTPS or SFTP. "
        "vsftpd: anonymous_enable=NO. ProFTPD: remove the <Anonymous> section. Pure-FTPd: "
        "NoAnonymous yes. FileZilla Server / IIS: disable the anonymous user / Anonymous "
        "Authentication. Synology DSM: Control Panel > File Services > FTP, untick anonymous; "
        "QNAP: Control Panel > Network & File Services > FTP, disable anonymous. Move the "
        "images off the share if they are not needed there and keep the device off networks "
        "reachable from the internet, office or guest networks."
    ),
    references=(
        "CybelAngel, Full Body Exposure (2020): medical images on unprotected FTP/SMB/NAS",
        "RFC 1635 (How to use anonymous FTP)",
    ),
)

def walk_evidence(facts: FtpFacts, walk: dict[str, Any]) -> dict[str, Any]:
    return {
        "anonymous_user": facts.anonymous_user,
        "dicom_files": walk.get("dicom_files", 0),
        "files_sampled": walk.get("files_sampled", 0),
        "patients": walk.get("patients", 0),
        "studies": walk.get("studies", 0),
        "modalities": dict(walk.get("modalities", {})),
        "phi_attributes": dict(walk.get("phi_attributes", {})),
        "top_folders": list(walk.get("top_folders", [])),
        "limits_reached": list(walk.get("limits_reached", [])),
        "bytes_read": walk.get("bytes_read", 0),
    }


def evaluate(facts: FtpFacts) -> Outcome:
    anonymous = facts.anonymous
    if anonymous is False:
        return Outcome(Status.PASS, {"reason": "anonymous login refused"})
    if anonymous is None:
        if facts.error:
            return Outcome(Status.ERROR, {}, error=facts.error)
        return Outcome(Status.UNKNOWN, {"reason": "anonymous login not attempted"})
    walk = facts.walk
    if walk is None:
        reason = facts.walk_error or facts.error or "the share was not walked"
        return Outcome(Status.UNKNOWN, {"anonymous_user": facts.anonymous_user,
                                        "reason": reason})
    evidence = walk_evidence(facts, walk)
    if walk.get("dicom_files", 0) <= 0:
        errors = walk.get("errors", {})
        if errors and not walk.get("files_sampled") and not walk.get("directories"):
            return Outcome(Status.ERROR, evidence,
                           error="walk failed: " + ", ".join(sorted(errors)))
        if errors:
            evidence["errors"] = dict(errors)
        return Outcome(Status.PASS, evidence)
    identifying = list(walk.get("identifying_attributes", ()))
    identifiable = walk.get("patients", 0) > 0 and bool(identifying)
    evidence["patients_identifiable"] = identifiable
    evidence["identifying_attributes"] = identifying
    return Outcome(Status.FAIL, evidence,
                   severity=Severity.CRITICAL if identifiable else Severity.HIGH)
