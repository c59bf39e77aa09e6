"""FTP-004: anonymous FTP users can write (from the listing's permissions, or the write test)."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.ftp import FtpFacts

META = CheckMeta(
    id="FTP-004",
    protocol="ftp",
    severity=Severity.HIGH,
    title="Anonymous FTP users can write",
    risk=(
        "Anyone can upload: the server becomes a drop box for malware and illegal content, "
        "can be filled up, and on imaging NAS devices planted files reach clinical systems."
    ),
    remediation=(
        "Remove anonymous write access. vsftpd: anon_upload_enable=NO, anon_mkdir_write_enable"
        "=NO, anon_other_write_enable=NO (or write_enable=NO). ProFTPD: <Limit WRITE> DenyAll "
        "</Limit> in the <Anonymous> block. Pure-FTPd: AnonymousCantUpload yes. Also remove "
        "world-writable modes (chmod o-w) on directories below the anonymous root."
    ),
    references=("CWE-732: Incorrect Permission Assignment for Critical Resource",
                "RFC 3659 section 7.5.5 (MLSx perm fact)"),
)


def evaluate(facts: FtpFacts) -> Outcome:
    test = facts.write_test
    listing: dict[str, Any] = {"writable_dirs": facts.writable_dirs,
                               "examples": list(facts.writable_examples)}
    if test is not None:
        evidence: dict[str, Any] = {"source": "write test", "directory": test.directory,
                                    "stored": test.stored, "deleted": test.deleted,
                                    "store_reply": test.store_reply, "listing": listing}
        if test.left_behind:
            evidence["left_behind"] = test.left_behind
        if test.stored:
            return Outcome(Status.FAIL, evidence)
        if test.error:
            return Outcome(Status.ERROR, evidence, error=test.error)
        return Outcome(Status.PASS, evidence)
    if facts.anonymous is False:
        return Outcome(Status.PASS, {"reason": "anonymous login refused"})
    if facts.writable_dirs > 0:
        return Outcome(Status.FAIL, {"source": "listing permissions", **listing,
                                     "note": "confirm with --intrusive (writes and deletes "
                                             "one small test file)"})
    if facts.walk is not None:
        return Outcome(Status.PASS, {"source": "listing permissions", **listing})
    if facts.error:
        return Outcome(Status.ERROR, {}, error=facts.error)
    return Outcome(Status.UNKNOWN, {"reason": facts.walk_error or "nothing was listed"})
