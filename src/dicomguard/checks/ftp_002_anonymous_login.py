"""FTP-002: the FTP server lets anonymous users log in."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.ftp import FtpFacts

META = CheckMeta(
    id="FTP-002",
    protocol="ftp",
    severity=Severity.MEDIUM,
    title="Anonymous FTP login allowed",
    risk=(
        "Anyone who reaches the server can list and download what the anonymous account can "
        "read, and on NAS devices often upload; in a hospital such shares end up holding "
        "exported studies and reports."
    ),
    remediation=(
        "Disable anonymous logins unless the server deliberately publishes public files. "
        "vsftpd: anonymous_enable=NO. ProFTPD: remove the <Anonymous> block. Pure-FTPd: "
        "NoAnonymous yes. IIS: disable Anonymous Authentication on the FTP site. Synology/"
        "QNAP: untick anonymous FTP in the file services settings."
    ),
    references=("RFC 1635 (How to use anonymous FTP)", "CWE-287: Improper Authentication"),
)


def evaluate(facts: FtpFacts) -> Outcome:
    attempts = [{"user": a.user, "accepted": a.accepted, "reply": a.code}
                for a in facts.logins]
    anonymous = facts.anonymous
    if anonymous is True:
        return Outcome(Status.FAIL, {"user": facts.anonymous_user, "attempts": attempts,
                                     "listing_method": facts.listing_method})
    if anonymous is False:
        evidence: dict[str, Any] = {"attempts": attempts}
        if facts.login_requires_tls:
            evidence["note"] = "refused over plain FTP because the server wants TLS first"
        return Outcome(Status.PASS, evidence)
    if facts.error:
        return Outcome(Status.ERROR, {"attempts": attempts}, error=facts.error)
    return Outcome(Status.UNKNOWN, {"reason": "no login was attempted"})
