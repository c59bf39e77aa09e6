"""SMB-004: the server does not require message signing."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.smb import SmbFacts

META = CheckMeta(
    id="SMB-004",
    protocol="smb",
    severity=Severity.MEDIUM,
    title="SMB signing is not required",
    risk=(
        "Without required signing, an attacker on the network path can relay NTLM "
        "authentications to this server (SMB relay) and tamper with files in transit, "
        "images and reports included."
    ),
    remediation=(
        "Require signing. Samba: \"server signing = mandatory\". Windows: Group Policy "
        "\"Microsoft network server: Digitally sign communications (always)\" = Enabled "
        "(RequireSecuritySignature = 1). Prefer SMB 3.1.1 with encryption for shares holding "
        "patient data."
    ),
    references=(
        "MS-SMB2 2.2.4 (SecurityMode: SMB2_NEGOTIATE_SIGNING_REQUIRED)",
        "MS-CIFS 2.2.4.52.2 (NEGOTIATE_SECURITY_SIGNATURES_REQUIRED)",
        "Microsoft: Overview of Server Message Block signing",
    ),
)


def evaluate(facts: SmbFacts) -> Outcome:
    if facts.error:
        return Outcome(Status.ERROR, error=facts.error)
    required = facts.signing_required
    evidence: dict[str, object] = {}
    if facts.smb2:
        evidence["smb2_dialect"] = facts.smb2_dialect
        evidence["smb2_signing_required"] = facts.smb2_signing_required
    if facts.smb1_enabled:
        evidence["smb1_signing_required"] = facts.smb1_signing_required
    if required is None:
        return Outcome(Status.UNKNOWN, {**evidence, "reason": "signing mode not learned"})
    return Outcome(Status.PASS if required else Status.FAIL, evidence)
