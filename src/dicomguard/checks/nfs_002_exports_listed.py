"""NFS-002: mountd hands its export list, with the clients allowed, to an unknown host.

Severity LOW, not INFO: in a hospital the list is a map for an attacker (directory names carry
departments and sometimes patient names; the client lists say which addresses and host names
to impersonate, since AUTH_SYS trusts the client's address and claimed user id), and it is
given to anyone. Not MEDIUM: the list alone reads no image, every NFSv3 server answers EXPORT
by default (Linux mountd cannot be told not to), and the real exposure, a directory anyone may
mount, is NFS-001 (HIGH).
"""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.nfs import NfsFacts

META = CheckMeta(
    id="NFS-002",
    protocol="nfs",
    severity=Severity.LOW,
    title="mountd discloses its export list to an unknown host",
    risk=(
        "Anyone who reaches the server learns every exported directory (names of departments, "
        "modalities, sometimes patients) and which hosts or networks may mount each: the "
        "addresses and names an attacker would then impersonate."
    ),
    remediation=(
        "Only clients that mount should reach the portmapper (111) and mountd: filter them at "
        "the host firewall or the imaging VLAN edge. Where only NFSv4 is needed, disable "
        "NFSv3 so no MOUNT protocol is served (Linux /etc/nfs.conf: [nfsd] vers3=n, then "
        "rpcbind can be stopped; NFS-Ganesha: NFS_CORE_PARAM { Protocols = 4; })."
    ),
    references=(
        "RFC 1813 Appendix I (MOUNT protocol, EXPORT procedure)",
        "RFC 7530 section 7 (NFSv4 pseudo file system, no MOUNT protocol)",
    ),
)

MAX_LISTED = 50


def evaluate(facts: NfsFacts) -> Outcome:
    if not facts.exports_listed:
        if facts.exports_refused:
            return Outcome(Status.PASS, {"refused": facts.exports_refused})
        if facts.error:
            return Outcome(Status.ERROR, {"errors": list(facts.errors)}, error=facts.error)
        return Outcome(Status.UNKNOWN, {"reason": "no mountd to ask for the export list",
                                        "portmapper": facts.portmapper})
    evidence: dict[str, Any] = {
        "exports": len(facts.exports),
        "mountd_port": facts.mountd_port,
        "mountd_version": facts.mountd_version,
        "paths_shortened": facts.paths_shortened,
    }
    if not facts.exports:
        return Outcome(Status.PASS, evidence)
    evidence["listed"] = [{"path": e.path, "groups": list(e.groups)}
                          for e in facts.exports[:MAX_LISTED]]
    if facts.exports_truncated:
        evidence["exports_truncated"] = True
    return Outcome(Status.FAIL, evidence)
