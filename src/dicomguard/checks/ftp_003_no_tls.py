"""FTP-003: the FTP server does not offer TLS (AUTH TLS): logins and files travel in clear."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.ftp import FtpFacts

META = CheckMeta(
    id="FTP-003",
    protocol="ftp",
    severity=Severity.MEDIUM,
    title="FTP without TLS (AUTH TLS not offered)",
    risk=(
        "Passwords and every transferred image cross the network in clear text: anyone on "
        "the path reads credentials and patient data."
    ),
    remediation=(
        "Offer and require FTPS (RFC 4217) or replace FTP with SFTP. vsftpd: ssl_enable=YES, "
        "force_local_logins_ssl=YES, force_local_data_ssl=YES with rsa_cert_file. ProFTPD: "
        "mod_tls with TLSEngine on and TLSRequired on. Pure-FTPd: TLS 2. IIS: FTP SSL "
        "Settings > Require SSL connections. Synology/QNAP: enable FTPS (explicit TLS)."
    ),
    references=("RFC 4217 (Securing FTP with TLS)", "CWE-319: Cleartext Transmission"),
)


def evaluate(facts: FtpFacts) -> Outcome:
    evidence = {"evidence": facts.tls_evidence} if facts.tls_evidence else {}
    if facts.tls_offered is True:
        return Outcome(Status.PASS, evidence)
    if facts.tls_offered is False:
        return Outcome(Status.FAIL, evidence)
    if facts.error:
        return Outcome(Status.ERROR, evidence, error=facts.error)
    return Outcome(Status.UNKNOWN, {"reason": "TLS support not determined"})
