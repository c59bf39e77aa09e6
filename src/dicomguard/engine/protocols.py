"""Which probe answers which port, and how its facts become a service and findings.

A protocol is one `Handler` line in HANDLERS: its probe (network I/O only, never raises for
what the peer does), where its configuration lives in the ScanConfig, whether the facts show a
closed port, the PHI-free service summary, and its checks (checks.for_protocol). Ports not in
PORT_PROTOCOLS are probed as DICOM: DICOM is the protocol a user names odd ports for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomguard.engine.evaluate import dicom_service, evaluate_dicom, run_checks
from dicomguard.models import Endpoint, Finding, Service
from dicomguard.net.connector import Connector
from dicomguard.probes import dicom as dicom_probe
from dicomguard.probes import ftp as ftp_probe
from dicomguard.probes import http as http_probe
from dicomguard.probes import nfs as nfs_probe
from dicomguard.probes import smb as smb_probe
from dicomguard.probes.facts import DicomFacts

if TYPE_CHECKING:
    from dicomguard.engine.scan import ScanConfig

# Well-known ports of the other ways images leak (everything else is probed as DICOM).
PORT_PROTOCOLS: dict[int, str] = {
    21: "ftp",
    111: "nfs", 2049: "nfs",
    139: "smb", 445: "smb",
    **{port: "http" for port in http_probe.DEFAULT_HTTP_PORTS},
}


def protocol_for(port: int, overrides: Mapping[int, str] | None = None) -> str:
    """The protocol probed on `port`: the user's override, the well-known map, else DICOM."""
    if overrides and port in overrides:
        return overrides[port]
    return PORT_PROTOCOLS.get(port, "dicom")


@dataclass(frozen=True, slots=True)
class Handler:
    protocol: str
    probe: Callable[[Endpoint, Connector, Any], Awaitable[Any]]
    config: Callable[[ScanConfig], Any]
    closed: Callable[[Any], bool]               # nothing answered at all
    service: Callable[[Any, Endpoint], Service]
    findings: Callable[[Any, ScanConfig, Endpoint], list[Finding]]
    budget: Callable[[ScanConfig], float]       # hard ceiling for one endpoint, seconds


def _connect_failed(error: str | None) -> bool:
    text = (error or "").lower()
    return any(w in text for w in ("refused", "connect timed out", "unreachable"))


# -- DICOM -----------------------------------------------------------------------------------

def _dicom_closed(facts: DicomFacts) -> bool:
    attempt = facts.wildcard
    return (not facts.is_dicom and attempt is not None and _connect_failed(attempt.error)
            and (facts.tls is None or not facts.tls.handshake))


# -- FTP -------------------------------------------------------------------------------------

def _ftp_service(facts: ftp_probe.FtpFacts, endpoint: Endpoint) -> Service:
    proto = "ftp" if facts.is_ftp else "unknown"
    return Service(_with_protocol(endpoint, proto), facts.product, facts.version,
                   facts.summary())


def _ftp_findings(facts: ftp_probe.FtpFacts, cfg: ScanConfig, endpoint: Endpoint
                  ) -> list[Finding]:
    if not facts.is_ftp:
        return []
    return run_checks("ftp", facts, _with_protocol(endpoint, "ftp"), intrusive=cfg.intrusive)


# -- NFS -------------------------------------------------------------------------------------

def _nfs_closed(facts: nfs_probe.NfsFacts) -> bool:
    return not (facts.portmapper or facts.exports_listed or facts.nfs_versions) and (
        facts.error is None or _connect_failed(facts.error)) and all(
        _connect_failed(e) for e in facts.errors)


def _nfs_duplicate(facts: nfs_probe.NfsFacts, endpoint: Endpoint) -> bool:
    """Probed from 2049 while the portmapper answered on 111: port 111's result covers it."""
    return endpoint.port != facts.portmapper_port and facts.portmapper


def _nfs_service(facts: nfs_probe.NfsFacts, endpoint: Endpoint) -> Service:
    speaks = facts.portmapper or facts.exports_listed or bool(facts.nfs_versions)
    summary = facts.summary()
    if _nfs_duplicate(facts, endpoint):
        summary = {"see": f"port {facts.portmapper_port}", "nfs_versions": summary[
            "nfs_versions"]}
    return Service(_with_protocol(endpoint, "nfs" if speaks else "unknown"), None, None,
                   summary)


def _nfs_findings(facts: nfs_probe.NfsFacts, cfg: ScanConfig, endpoint: Endpoint
                  ) -> list[Finding]:
    if not (facts.portmapper or facts.exports_listed) or _nfs_duplicate(facts, endpoint):
        return []
    return run_checks("nfs", facts, _with_protocol(endpoint, "nfs"), intrusive=cfg.intrusive)


# -- SMB -------------------------------------------------------------------------------------

def _smb_closed(facts: smb_probe.SmbFacts) -> bool:
    return not facts.speaks_smb and _connect_failed(facts.error)


def _smb_summary(facts: smb_probe.SmbFacts) -> dict[str, Any]:
    return {
        "smb": facts.speaks_smb, "transport": facts.transport,
        "smb1_enabled": facts.smb1_enabled, "smb1_dialect": facts.smb1_dialect,
        "smb2": facts.smb2, "smb2_dialect": facts.smb2_dialect,
        "signing_required": facts.signing_required,
        "sessions": [{"identity": s.identity, "accepted": s.accepted, "usable": s.usable}
                     for s in facts.sessions],
        "shares": [{"name": sh.name, "readable_by": list(sh.readable_by),
                    "dicom_files": (sh.walk or {}).get("dicom_files"),
                    "patients": (sh.walk or {}).get("patients")} for sh in facts.shares],
        "totals": dict(facts.totals), "error": facts.error, "errors": list(facts.errors),
        "seconds": facts.seconds,
    }


def _smb_service(facts: smb_probe.SmbFacts, endpoint: Endpoint) -> Service:
    return Service(_with_protocol(endpoint, "smb" if facts.speaks_smb else "unknown"),
                   "SMB" if facts.speaks_smb else None,
                   facts.smb2_dialect or facts.smb1_dialect, _smb_summary(facts))


def _smb_findings(facts: smb_probe.SmbFacts, cfg: ScanConfig, endpoint: Endpoint
                  ) -> list[Finding]:
    if not facts.speaks_smb:
        return []
    return run_checks("smb", facts, _with_protocol(endpoint, "smb"), intrusive=cfg.intrusive)


# -- HTTP ------------------------------------------------------------------------------------

def _http_closed(facts: http_probe.HttpFacts) -> bool:
    return not facts.reachable and _connect_failed(facts.error)


def _http_service(facts: http_probe.HttpFacts, endpoint: Endpoint) -> Service:
    proto = (facts.scheme or "http") if facts.is_http else "unknown"
    return Service(_with_protocol(endpoint, proto), facts.product, facts.version,
                   facts.summary())


def _http_findings(facts: http_probe.HttpFacts, cfg: ScanConfig, endpoint: Endpoint
                   ) -> list[Finding]:
    if not facts.is_http:
        return []
    # The default-credentials check is intrusive; --try-default-credentials opts in to it.
    return run_checks("http", facts, _with_protocol(endpoint, "http"),
                      intrusive=cfg.intrusive or cfg.http.try_default_credentials)


def _with_protocol(endpoint: Endpoint, protocol: str) -> Endpoint:
    if endpoint.protocol == protocol:
        return endpoint
    return Endpoint(endpoint.address, endpoint.port, protocol, endpoint.hostname)


HANDLERS: dict[str, Handler] = {
    "dicom": Handler(
        "dicom", dicom_probe.probe, lambda cfg: cfg.dicom, _dicom_closed,
        lambda facts, endpoint: dicom_service(facts),
        lambda facts, cfg, endpoint: evaluate_dicom(facts, intrusive=cfg.intrusive),
        lambda cfg: cfg.endpoint_budget),
    "ftp": Handler(
        "ftp", ftp_probe.probe, lambda cfg: cfg.ftp,
        lambda facts: not facts.reachable, _ftp_service, _ftp_findings,
        lambda cfg: cfg.ftp.deadline() + 5),
    "nfs": Handler(
        "nfs", nfs_probe.probe, lambda cfg: cfg.nfs, _nfs_closed, _nfs_service,
        _nfs_findings, lambda cfg: cfg.nfs.time_budget + 5),
    "http": Handler(
        "http", http_probe.probe, lambda cfg: cfg.http, _http_closed, _http_service,
        _http_findings, lambda cfg: cfg.http.budget + 5),
    "smb": Handler(
        "smb", smb_probe.probe, lambda cfg: cfg.smb, _smb_closed, _smb_service,
        _smb_findings, lambda cfg: cfg.smb.budget + 5),
}
