"""SMB-002: a null or guest session is allowed and opens shares."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.smb import SmbFacts

META = CheckMeta(
    id="SMB-002",
    protocol="smb",
    severity=Severity.MEDIUM,
    title="SMB server lets anonymous or guest sessions open shares",
    risk=(
        "Without any account, a client can list and read what the shares hold; files added "
        "later (an export folder, a backup) are exposed as soon as they land. Guest sessions "
        "cannot be signed, so their traffic can also be tampered with."
    ),
    remediation=(
        "Refuse guest and anonymous logons. Samba: \"map to guest = never\", "
        "\"restrict anonymous = 2\", no \"guest ok = yes\" share. Windows: keep the Guest "
        "account disabled, \"RestrictNullSessAccess\" = 1, \"NullSessionShares\" empty, "
        "\"AllowInsecureGuestAuth\" = 0."
    ),
    references=(
        "MS-SMB2 3.3.5.5.3 (guest and anonymous sessions)",
        "Microsoft: Guest access in SMB2 and SMB3 disabled by default in Windows",
        "Samba smb.conf(5): map to guest, restrict anonymous",
    ),
)


def evaluate(facts: SmbFacts) -> Outcome:
    if facts.error:
        return Outcome(Status.ERROR, error=facts.error)
    if not facts.sessions_assessed:
        return Outcome(Status.UNKNOWN, {"reason": "; ".join(facts.notes) or "not assessed"})
    sessions = {s.identity: {"accepted": s.accepted, "usable": s.usable,
                             **({"detail": s.detail} if s.detail else {})}
                for s in facts.sessions}
    by_identity: dict[str, list[str]] = {}
    for share in facts.shares:
        for identity in share.readable_by:
            by_identity.setdefault(identity, []).append(share.name)
    evidence = {"sessions": sessions, "readable_shares": by_identity,
                "shares_enumerated": facts.shares_enumerated}
    if by_identity:
        return Outcome(Status.FAIL, evidence)
    if not any(s.accepted for s in facts.sessions):
        return Outcome(Status.PASS, evidence)
    if not facts.shares_enumerated and not facts.shares:
        return Outcome(Status.UNKNOWN, {**evidence, "reason": facts.share_enum_error
                                        or "shares could not be enumerated"})
    return Outcome(Status.PASS, evidence)
