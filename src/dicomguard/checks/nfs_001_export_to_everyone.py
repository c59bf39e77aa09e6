"""NFS-001: an NFS export any host may mount."""

from __future__ import annotations

from typing import Any

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.nfs import NfsFacts

META = CheckMeta(
    id="NFS-001",
    protocol="nfs",
    severity=Severity.HIGH,
    title="NFS export that any host may mount",
    risk=(
        "Any machine that reaches the server can mount the directory and read it, with AUTH_SYS "
        "claiming any user id it likes (root squashing only protects root's own files). Most of "
        "the 45 million images found open in 2020 sat on such NAS shares."
    ),
    remediation=(
        "Export to the hosts or networks that need the data only, never to '*' or with an "
        "empty client list. Linux /etc/exports: replace '/srv/images *(ro)' with "
        "'/srv/images 10.20.30.0/24(ro,root_squash)' and run 'exportfs -ra'. NFS-Ganesha: "
        "EXPORT { Access_Type = None; CLIENT { Clients = 10.20.30.0/24; Access_Type = RO; } }. "
        "NAS appliances: set the allowed hosts of every NFS permission rule. Prefer NFSv4 "
        "with sec=krb5p for patient data, and block ports 111, 2049 and mountd at the network "
        "edge of the imaging VLAN."
    ),
    references=(
        "RFC 1813 Appendix I (MOUNT protocol, EXPORT procedure)",
        "exports(5): machine name formats",
        "CybelAngel, Full Body Exposure (2020)",
    ),
)

MAX_LISTED = 50


def evaluate(facts: NfsFacts) -> Outcome:
    if not facts.exports_listed:
        if facts.error:
            return Outcome(Status.ERROR, {"errors": list(facts.errors)}, error=facts.error)
        reason = facts.exports_refused and f"mountd refused EXPORT: {facts.exports_refused}"
        return Outcome(Status.UNKNOWN, {
            "reason": reason or "no mountd to ask for the export list",
            "portmapper": facts.portmapper, "nfs_versions": list(facts.nfs_versions),
            "errors": list(facts.errors)})
    world = facts.world_exports
    evidence: dict[str, Any] = {
        "exports_listed": len(facts.exports),
        "world_exports": len(world),
        "mountd_port": facts.mountd_port,
        "nfs_versions": list(facts.nfs_versions),
        "paths_shortened": facts.paths_shortened,
    }
    if facts.exports_truncated:
        evidence["exports_truncated"] = True
    if not world:
        return Outcome(Status.PASS, evidence)
    evidence["exports"] = [
        {"path": e.path, "groups": list(e.groups), "reason": e.world_reason}
        for e in world[:MAX_LISTED]
    ]
    evidence["mountable_by_anyone"] = facts.mountable_by_anyone()[:MAX_LISTED]
    return Outcome(Status.FAIL, evidence)
