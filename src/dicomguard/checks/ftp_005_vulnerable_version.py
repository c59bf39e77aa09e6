"""FTP-005: the FTP server's announced product version has known vulnerabilities."""

from __future__ import annotations

from typing import Any

from dicomguard import vulns
from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.ftp import FtpFacts

META = CheckMeta(
    id="FTP-005",
    protocol="ftp",
    severity=Severity.HIGH,
    title="FTP server version with known vulnerabilities",
    risk=(
        "FTP daemons on NAS devices and imaging workstations stay unpatched for years; "
        "published flaws (ProFTPD mod_copy, Telnet IAC overflows) give unauthenticated file "
        "copies or code execution."
    ),
    remediation=(
        "Upgrade the FTP server (each CVE names the first fixed release) or confirm the "
        "vendor backported the fix; on NAS devices install the current firmware. ProFTPD: "
        "remove mod_copy (LoadModule) if it is not needed."
    ),
    references=("data/cves.json (each entry links its advisory)",),
)


def evaluate(facts: FtpFacts) -> Outcome:
    if not facts.is_ftp or not facts.product:
        if facts.error and not facts.is_ftp:
            return Outcome(Status.ERROR, {}, error=facts.error)
        return Outcome(Status.UNKNOWN, {"reason": "product not identified"})
    if not facts.version:
        return Outcome(Status.UNKNOWN, {"product": facts.product, "reason": "version unknown"})
    found = vulns.lookup(facts.product, facts.version)
    evidence: dict[str, Any] = {"product": facts.product, "version": facts.version,
                                "banner": facts.banner}
    if facts.device:
        evidence["device"] = facts.device
    if not found:
        return Outcome(Status.PASS, evidence)
    evidence["cves"] = vulns.evidence(found)
    evidence["caveat"] = "matched by the banner's version; distributions may backport fixes"
    return Outcome(Status.FAIL, evidence, severity=max(v.severity for v in found))
