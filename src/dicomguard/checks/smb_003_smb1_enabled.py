"""SMB-003: the server still accepts SMB1 (NT LM 0.12 or older dialects)."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.smb import SmbFacts

META = CheckMeta(
    id="SMB-003",
    protocol="smb",
    severity=Severity.HIGH,
    title="SMB1 is enabled",
    risk=(
        "SMB1 has no pre-authentication integrity and weak signing, and was the door of "
        "EternalBlue (MS17-010, CVE-2017-0144) through which WannaCry and NotPetya stopped "
        "hospitals in 2017; old imaging workstations and NAS devices still offer it."
    ),
    remediation=(
        "Disable SMB1. Samba: \"server min protocol = SMB2_10\" (or higher). Windows: "
        "Set-SmbServerConfiguration -EnableSMB1Protocol $false, or remove the "
        "SMB 1.0/CIFS File Sharing Support feature. A device that only speaks SMB1 must be "
        "isolated on its own segment and replaced or patched (MS17-010)."
    ),
    references=(
        "Microsoft: Stop using SMB1 (2016); MS17-010",
        "MS-CIFS 2.2.4.52 (SMB_COM_NEGOTIATE)",
        "CVE-2017-0144",
    ),
)


def evaluate(facts: SmbFacts) -> Outcome:
    if facts.error:
        return Outcome(Status.ERROR, error=facts.error)
    if facts.smb1_enabled is None:
        return Outcome(Status.UNKNOWN, {"reason": "SMB1 negotiation not assessed"})
    evidence: dict[str, object] = {"smb1_enabled": facts.smb1_enabled,
                                   "transport": facts.transport}
    if facts.smb1_enabled:
        evidence["dialect"] = facts.smb1_dialect
        if facts.smb1_signing_required is not None:
            evidence["smb1_signing_required"] = facts.smb1_signing_required
        return Outcome(Status.FAIL, evidence)
    if facts.smb1_detail:
        evidence["detail"] = facts.smb1_detail
    return Outcome(Status.PASS, evidence)
