"""The whole demo hospital: the DICOM lab plus the other ways images leak.

    DICOM lab (servers.py)   base+0..9    Orthanc open/locked (+ REST 8042), dcmqrscp open/
                                          restricted, storescp, pynetdicom echo, hostile ports
    web lab (web.py)         base+10..13  nginx autoindex over DICOM files, a plain page, TLS,
                                          Orthanc with orthanc/orthanc
    SMB (smb.py)             base+14:4445 Samba with a guest share of DICOM files
    FTP (ftp.py)             base+15:2121 vsftpd with anonymous read
                             base+16:2121 pyftpdlib with a password
    NFS (nfs.py)             127.0.0.1:111/2049, only where the NFS lab can run (root,
                             Ganesha): ports 111/2049 are machine-wide

Every part has its own state directory under `state_dir`; a part that cannot run here (a
product not installed outside CI) is skipped with its reason. `endpoints` lists what a scan
should cover, with the protocol of each non-standard port.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from dicomguard.lab.manifest import LabManifest
from dicomguard.lab.servers import LabError, in_ci, start_lab, stop_lab

FTP_PORT = 2121
SMB_PORT = 4445


@dataclass(frozen=True, slots=True)
class LabEndpoint:
    name: str
    address: str
    port: int
    protocol: str          # what the engine should probe there
    role: str


@dataclass
class Hospital:
    dicom: LabManifest
    endpoints: list[LabEndpoint] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def port_protocols(self) -> dict[int, str]:
        """Non-standard ports and their protocols (for ScanConfig.port_protocols)."""
        return {e.port: e.protocol for e in self.endpoints if e.port in (FTP_PORT, SMB_PORT)}


def _addr(base: str, offset: int) -> str:
    return str(ipaddress.IPv4Address(base) + offset)


def start_hospital(state_dir: Path, *, base_address: str = "127.0.0.10",
                   nfs: bool = True) -> Hospital:
    """Start every part; on failure of a required part stop everything started and raise."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    manifest = start_lab(state_dir / "dicom", base_address=base_address)
    hospital = Hospital(manifest)
    for s in manifest.services:
        proto = {"dicom": "dicom", "tcp": "dicom", "none": "dicom"}[s.protocol]
        hospital.endpoints.append(LabEndpoint(s.name, s.address, s.port, proto, s.role))
        if s.rest_port:
            hospital.endpoints.append(LabEndpoint(f"{s.name}-rest", s.address, s.rest_port,
                                                  "http", f"REST API of {s.name}"))
    try:
        _start_web(hospital, state_dir, base_address)
        _start_smb(hospital, state_dir, base_address)
        _start_ftp(hospital, state_dir, base_address)
        if nfs:
            _start_nfs(hospital, state_dir)
    except BaseException:
        stop_hospital(state_dir)
        raise
    (state_dir / "hospital.json").write_text(json.dumps(
        {"endpoints": [_as_dict(e) for e in hospital.endpoints],
         "skipped": hospital.skipped}, indent=1))
    return hospital


def _as_dict(e: LabEndpoint) -> dict[str, object]:
    return {"name": e.name, "address": e.address, "port": e.port, "protocol": e.protocol,
            "role": e.role}


def _optional(hospital: Hospital, name: str, exc: Exception) -> None:
    """A part that cannot run: fatal under CI, skipped with its reason elsewhere."""
    if in_ci():
        raise exc
    hospital.skipped.append((name, str(exc)))


def _start_web(hospital: Hospital, state_dir: Path, base: str) -> None:
    from dicomguard.lab.web import start_web_lab

    try:
        web = start_web_lab(state_dir / "web", base_address=_addr(base, 10))
    except LabError as exc:
        _optional(hospital, "web", exc)
        return
    for srv in web.servers:
        role = ("directory listing of DICOM files" if srv.autoindex else
                "Orthanc with the default login orthanc/orthanc" if srv.kind == "orthanc"
                else "plain web page" + (" over TLS" if srv.tls else ""))
        hospital.endpoints.append(LabEndpoint(srv.name, srv.address, srv.port, "http", role))


def _start_smb(hospital: Hospital, state_dir: Path, base: str) -> None:
    from dicomguard.lab.smb import start_smb

    try:
        smb = start_smb(state_dir / "smb", address=_addr(base, 14), port=SMB_PORT)
    except LabError as exc:
        _optional(hospital, "smb", exc)
        return
    hospital.endpoints.append(LabEndpoint("smb-guest", smb.address, smb.port, "smb",
                                          f"Samba, guest-readable share {smb.guest_share!r}"))


def _start_ftp(hospital: Hospital, state_dir: Path, base: str) -> None:
    from dicomguard.lab.ftp import build_dicom_tree, start_pyftpdlib, start_vsftpd

    root = state_dir / "ftp-tree"
    try:
        build_dicom_tree(root)
        anon = start_vsftpd(state_dir / "ftp", _addr(base, 15), FTP_PORT, root, writable=False)
        locked = start_pyftpdlib(state_dir / "ftp", _addr(base, 16), FTP_PORT, root)
    except LabError as exc:
        _optional(hospital, "ftp", exc)
        return
    hospital.endpoints.append(LabEndpoint(anon.name, anon.address, anon.port, "ftp",
                                          "vsftpd with anonymous read access"))
    hospital.endpoints.append(LabEndpoint(locked.name, locked.address, locked.port, "ftp",
                                          "FTP requiring a password"))


def _start_nfs(hospital: Hospital, state_dir: Path) -> None:
    from dicomguard.lab.nfs import nfs_lab_unavailable, start_nfs_lab

    problem = nfs_lab_unavailable()
    if problem:
        hospital.skipped.append(("nfs", problem))
        return
    try:
        lab = start_nfs_lab(state_dir / "nfs", lock_wait=5.0)
    except LabError as exc:
        hospital.skipped.append(("nfs", str(exc)))  # machine-wide ports: never fatal
        return
    hospital.endpoints.append(LabEndpoint("nfs", lab.address, lab.portmapper_port, "nfs",
                                          "NFS-Ganesha exporting DICOM files to everyone"))


def stop_hospital(state_dir: Path) -> None:
    """Stop every part (idempotent)."""
    from dicomguard.lab.nfs import stop_nfs_lab

    state_dir = Path(state_dir)
    for part in ("web", "smb", "ftp"):
        if (state_dir / part).exists():
            stop_lab(state_dir / part)
    if (state_dir / "nfs").exists():
        stop_nfs_lab(state_dir / "nfs")
    if (state_dir / "dicom").exists():
        stop_lab(state_dir / "dicom")


def hospital_endpoints(state_dir: Path) -> list[LabEndpoint]:
    path = Path(state_dir) / "hospital.json"
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    return [LabEndpoint(**e) for e in doc["endpoints"]]

