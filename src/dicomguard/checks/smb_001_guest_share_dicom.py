"""SMB-001: a share readable by a guest or null session holds DICOM files."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.smb import SmbFacts

META = CheckMeta(
    id="SMB-001",
    protocol="smb",
    severity=Severity.CRITICAL,
    title="Guest or anonymous SMB share exposes DICOM images",
    risk=(
        "Anyone who can reach the port can copy the images, and the patient names, IDs and "
        "birth dates in their headers, without a password: this is how NAS devices and "
        "modality export folders leaked millions of images in 2020. CRITICAL when the sampled "
        "files identify patients, HIGH otherwise."
    ),
    remediation=(
        "Remove guest access from the share and require an account. Samba: \"guest ok = no\" "
        "on the share, \"map to guest = never\" and \"restrict anonymous = 2\" in [global]. "
        "Windows: disable the Guest account, remove Everyone/ANONYMOUS LOGON from the share and "
        "NTFS permissions, set \"Network access: Restrict anonymous access to Named Pipes and "
        "Shares\" and AllowInsecureGuestAuth = 0. NAS: turn off guest/public access for the "
        "folder. Move imaging exports off file shares reachable from office or guest networks."
    ),
    references=(
        "CybelAngel, Full Body Exposure (2020): medical images on unprotected NAS (SMB, FTP)",
        "MS-SMB2 3.3.5.5.3 (guest and anonymous sessions)",
        "Samba smb.conf(5): guest ok, map to guest, restrict anonymous",
    ),
)


def evaluate(facts: SmbFacts) -> Outcome:
    if facts.error:
        return Outcome(Status.ERROR, error=facts.error)
    if not facts.sessions_assessed:
        return Outcome(Status.UNKNOWN, {"reason": "; ".join(facts.notes) or "not assessed"})
    if not any(s.usable for s in facts.sessions):
        return Outcome(Status.PASS, {"reason": "no null or guest session usable",
                                     "sessions": {s.identity: s.accepted for s in facts.sessions}})
    exposed: list[dict[str, Any]] = []
    for share in facts.shares:
        walk = share.walk
        if not walk or not walk.get("dicom_files"):
            continue
        exposed.append({
            "share": share.name,
            "readable_by": list(share.readable_by),
            "dicom_files": walk["dicom_files"],
            "patients": walk["patients"],
            "studies": walk["studies"],
            "modalities": dict(walk["modalities"]),
            "phi_attributes": dict(walk["phi_attributes"]),
            "top_folders": list(walk["top_folders"]),
            "files_sampled": walk["files_sampled"],
            "bytes_read": walk["bytes_read"],
            "limits_reached": list(walk["limits_reached"]),
            "identifiable": bool(walk.get("identifiable")),
        })
    readable = [s.name for s in facts.shares if s.readable_by]
    if not exposed:
        if any(s.readable_by and s.walk is None for s in facts.shares):
            return Outcome(Status.UNKNOWN, {"readable_shares": readable,
                                            "reason": "readable shares were not walked"})
        if not facts.shares_enumerated and not facts.shares:
            return Outcome(Status.UNKNOWN, {"reason": facts.share_enum_error
                                            or "shares could not be enumerated"})
        return Outcome(Status.PASS, {"readable_shares": readable,
                                     "shares_walked": facts.totals.get("shares_walked", 0)})
    totals = facts.totals
    evidence = {
        "shares": exposed,
        "dicom_files": totals.get("dicom_files"),
        "patients": totals.get("patients"),
        "studies": totals.get("studies"),
        "modalities": dict(totals.get("modalities", {})),
        "phi_attributes": dict(totals.get("phi_attributes", {})),
        "limits_reached": list(totals.get("limits_reached", [])),
        "sample_bytes": facts.limits.get("sample_bytes"),
    }
    identifiable = any(e["identifiable"] for e in exposed)
    return Outcome(Status.FAIL, evidence,
                   severity=Severity.CRITICAL if identifiable else Severity.HIGH)
