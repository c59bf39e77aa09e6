"""An NFS server for the lab and the tests: NFS-Ganesha in user space, on one loopback address.

    lab = start_nfs_lab(state_dir)                 # address 127.0.0.1 unless told otherwise
    ... showmount -e 127.0.0.1 ...
    stop_nfs_lab(state_dir)

What runs:

- rpcbind (port 111), unless one already answers on the address (then it is reused and left
  running). rpcbind has no option to bind TCP to one address (`-h` is for UDP only, and
  rpcbind 1.2.6 crashes with a double free on `-h 127.0.0.1`), so it runs under the lab's
  LD_PRELOAD bind shim (loopback.py), which turns its wildcard binds into binds to the lab
  address and refuses IPv6 wildcards. No `-w` (warm start): the lab wants an empty registry,
  not the state a previous run left in /run/rpcbind.
- ganesha.nfsd -F with its own configuration, log, pid file and recovery directory under
  state_dir, NFS_Core_Param Bind_addr = the lab address, NFSv3 + NFSv4 on 2049, mountd on a
  port Ganesha chooses and registers with rpcbind (through /run/rpcbind.sock).

Exports (directories under state_dir/exports, synthetic DICOM studies in the world one):

    radiology   Clients = *            any host: world-exported (NFS-001 fails)
    cardiology  Clients = 127.0.0.99   one client; Ganesha does not even list it to others
    oncology    Clients = 127.0.0.0/8  a network: listed, not world
    ward7/...   no CLIENT block, Access_Type = RO at export level: listed with an empty
                group list, i.e. everyone (NFS-001 fails)

Only one such lab can run on a machine at a time: rpcbind's port 111, its registry of mountd
and NFS, and 2049 are machine-wide. start_nfs_lab therefore takes an exclusive lock
(`LOCK_PATH`) and waits for it (another test session's NFS lab), and holds it until
stop_nfs_lab. Ganesha needs root (open_by_handle_at); `nfs_lab_unavailable()` says why the lab
cannot run here, for a skip (or a failure under CI=true).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomguard.errors import DicomguardError
from dicomguard.lab import synthetic
from dicomguard.lab.loopback import ShimUnavailable, build_shim, confined_env
from dicomguard.lab.servers import (
    LabError,
    _alive,
    _Launcher,
    _read_pidfile,
    _tail,
    port_answers,
    stop_lab,
)
from dicomguard.net.nfs import MOUNT_PROGRAM, NFS_PORT, PORTMAP_PORT, PORTMAP_PROGRAM
from dicomguard.net.onc_rpc import XdrWriter, parse_reply

LOCK_PATH = Path(os.environ.get("DICOMGUARD_NFS_LAB_LOCK", "/tmp/dicomguard-nfs-lab.lock"))
RESTRICTED_CLIENT = "127.0.0.99"
INVENTED_PATIENT_DIR = "SYNTHETIC_BRAVO"   # an export named after an (invented) patient

_LOCKS: dict[Path, IO[str]] = {}


@dataclass(frozen=True, slots=True)
class NfsLabExport:
    name: str
    path: str              # the exported directory, absolute
    clients: str           # as configured ("*", an address, a network, "" for none)
    world: bool            # any host may mount it
    listed_to_others: bool  # Ganesha lists it to a client that is not allowed to mount it


@dataclass(frozen=True, slots=True)
class NfsLab:
    address: str
    state_dir: Path
    exports: tuple[NfsLabExport, ...]
    dicom_files: int       # synthetic DICOM files in the world export
    patients: int
    rpcbind_started: bool  # False when an rpcbind already running was reused
    portmapper_port: int = PORTMAP_PORT
    nfs_port: int = NFS_PORT

    def export(self, name: str) -> NfsLabExport:
        for e in self.exports:
            if e.name == name:
                return e
        raise KeyError(name)


def nfs_lab_unavailable() -> str | None:
    """Why the NFS lab cannot run on this machine, or None when it can."""
    if shutil.which("ganesha.nfsd") is None:
        return "ganesha.nfsd not found (Debian packages nfs-ganesha, nfs-ganesha-vfs)"
    if not any(Path(d, "libfsalvfs.so").exists() for d in _fsal_dirs()):
        return "the Ganesha VFS FSAL is missing (Debian package nfs-ganesha-vfs)"
    if shutil.which("rpcbind") is None and not Path("/run/rpcbind.sock").exists():
        return "rpcbind not found (Debian package rpcbind)"
    if os.geteuid() != 0:
        return "NFS-Ganesha needs root (open_by_handle_at) and rpcbind port 111"
    return None


def _fsal_dirs() -> list[str]:
    return ["/usr/lib/x86_64-linux-gnu/ganesha", "/usr/lib/aarch64-linux-gnu/ganesha",
            "/usr/lib/ganesha", "/usr/lib64/ganesha"]


def _fsal_dir() -> str:
    for d in _fsal_dirs():
        if Path(d, "libfsalvfs.so").exists():
            return d
    return _fsal_dirs()[0]


def _export_block(export_id: int, path: Path, pseudo: str, clients: str | None) -> str:
    client = (f"    Access_Type = None;\n    CLIENT {{ Clients = {clients}; Access_Type = RO; }}\n"
              if clients is not None else "    Access_Type = RO;\n")
    return (
        "EXPORT {\n"
        f"    Export_Id = {export_id};\n    Path = \"{path}\";\n    Pseudo = \"{pseudo}\";\n"
        "    Squash = root_squash;\n    SecType = sys;\n    Protocols = 3, 4;\n"
        "    Transports = TCP;\n"
        f"{client}"
        "    FSAL { Name = VFS; }\n"
        "}\n"
    )


def ganesha_config(address: str, recovery: Path, exports: list[tuple[Path, str, str | None]]
                   ) -> str:
    """The lab's ganesha.conf: bound to `address`, NFSv3 and v4 over TCP, no NLM/RQUOTA."""
    blocks = [_export_block(i + 1, path, pseudo, clients)
              for i, (path, pseudo, clients) in enumerate(exports)]
    return (
        "NFS_CORE_PARAM {\n"
        f"    Bind_addr = {address};\n    NFS_Port = {NFS_PORT};\n    Protocols = 3, 4;\n"
        "    Enable_NLM = false;\n    Enable_RQUOTA = false;\n    Enable_UDP = false;\n"
        f"    Plugins_Dir = \"{_fsal_dir()}\";\n"
        "}\n"
        f"NFSV4 {{\n    Graceless = true;\n    RecoveryBackend = fs;\n"
        f"    RecoveryRoot = \"{recovery}\";\n}}\n"
        "NFS_KRB5 { Active_krb5 = false; }\n"
        + "".join(blocks)
    )


def _getport(address: str, program: int, version: int, timeout: float = 1.0) -> int:
    """Portmapper GETPORT over TCP, synchronously (the lab runs outside any event loop);
    0 when unregistered or unreachable."""
    xid = int.from_bytes(os.urandom(4), "big")
    args = XdrWriter().uint(program).uint(version).uint(6).uint(0).getvalue()
    body = (XdrWriter().uint(xid).uint(0).uint(2).uint(PORTMAP_PROGRAM).uint(2).uint(3)
            .uint(0).uint(0).uint(0).uint(0).raw(args).getvalue())
    try:
        with socket.create_connection((address, PORTMAP_PORT), timeout=timeout) as sock:
            sock.sendall(struct.pack(">I", 0x8000_0000 | len(body)) + body)
            data = b""
            while len(data) < 4 or len(data) < 4 + (struct.unpack(">I", data[:4])[0]
                                                    & 0x7FFF_FFFF):
                chunk = sock.recv(4096)
                if not chunk:
                    return 0
                data += chunk
        reader = parse_reply(data[4:], xid)
        return reader.uint()
    except (OSError, DicomguardError):
        return 0


def _lock(state_dir: Path, wait: float) -> None:
    handle = LOCK_PATH.open("a+")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise LabError(f"another NFS lab holds {LOCK_PATH} (one per machine: port 111 "
                               "and rpcbind's registry are machine-wide)") from None
            time.sleep(0.2)
    _LOCKS[state_dir] = handle


def _unlock(state_dir: Path) -> None:
    handle = _LOCKS.pop(state_dir, None)
    if handle is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def start_nfs_lab(state_dir: Path, *, address: str = "127.0.0.1", seed: int = 7,
                  timeout: float = 30.0, lock_wait: float = 120.0) -> NfsLab:
    """Start rpcbind (when none answers on address:111) and Ganesha; return once mountd is
    registered and 2049 answers. Everything started is stopped again if start-up fails."""
    problem = nfs_lab_unavailable()
    if problem:
        raise LabError(problem)
    if not address.startswith("127."):
        raise LabError(f"the NFS lab binds loopback addresses only, not {address!r}")
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    _lock(state_dir, lock_wait)
    try:
        return _start(state_dir, address, seed, time.monotonic() + timeout)
    except BaseException:
        stop_nfs_lab(state_dir)
        raise


def _start(state_dir: Path, address: str, seed: int, deadline: float) -> NfsLab:
    stop_nfs_lab(state_dir, unlock=False)  # stale pid files of a crashed run
    if port_answers(address, NFS_PORT, 0.3):
        raise LabError(f"{address}:{NFS_PORT} is already in use (another NFS server)")
    for leftover in ("exports", "ganesha"):
        if (state_dir / leftover).exists():
            shutil.rmtree(state_dir / leftover)
    exports_dir = state_dir / "exports"
    world = exports_dir / "radiology"
    data = synthetic.generate(world, seed)
    restricted = exports_dir / "cardiology"
    network = exports_dir / "oncology"
    unrestricted = exports_dir / "ward7" / INVENTED_PATIENT_DIR
    for d in (restricted, network, unrestricted):
        d.mkdir(parents=True)
        (d / "README.txt").write_text("synthetic lab export\n")

    rpcbind_started = False
    if not port_answers(address, PORTMAP_PORT, 0.5):
        rpcbind = shutil.which("rpcbind")
        if rpcbind is None:
            raise LabError("rpcbind not found (Debian package rpcbind)")
        try:
            shim = build_shim(state_dir / "shim")
        except ShimUnavailable as exc:
            raise LabError(f"rpcbind cannot be confined to {address}: {exc}") from exc
        env = confined_env(dict(os.environ), shim, address)
        launcher = _Launcher(state_dir / "rpcbind")
        started = launcher.spawn("rpcbind", [rpcbind, "-f"], ports=[(address, PORTMAP_PORT)],
                                 env=env)
        rpcbind_started = True
        _wait(lambda: port_answers(address, PORTMAP_PORT, 0.3), started.pid, started.log,
              deadline, "rpcbind on port 111")

    gdir = state_dir / "ganesha"
    (gdir / "recovery").mkdir(parents=True)
    conf = gdir / "ganesha.conf"
    layout = [(world, "/radiology", "*"), (restricted, "/cardiology", RESTRICTED_CLIENT),
              (network, "/oncology", "127.0.0.0/8"), (unrestricted, "/ward7", None)]
    conf.write_text(ganesha_config(address, gdir / "recovery", layout))
    launcher = _Launcher(gdir)
    log = gdir / "ganesha.log"
    started = launcher.spawn(
        "ganesha",
        ["ganesha.nfsd", "-F", "-f", str(conf), "-L", str(log), "-p", str(gdir / "ganesha.pid")],
        ports=[(address, NFS_PORT)])
    _wait(lambda: port_answers(address, NFS_PORT, 0.3)
          and _getport(address, MOUNT_PROGRAM, 3) != 0, started.pid, log, deadline,
          f"Ganesha on {address}:{NFS_PORT} with mountd registered")
    exports = (
        NfsLabExport("radiology", str(world), "*", world=True, listed_to_others=True),
        NfsLabExport("cardiology", str(restricted), RESTRICTED_CLIENT, world=False,
                     listed_to_others=False),
        NfsLabExport("oncology", str(network), "127.0.0.0/8", world=False,
                     listed_to_others=True),
        NfsLabExport("ward7", str(unrestricted), "", world=True, listed_to_others=True),
    )
    return NfsLab(address, state_dir, exports, len(data.files), len(data.patients),
                  rpcbind_started)


def _wait(ready: Callable[[], bool], pid: int, log: Path, deadline: float, what: str) -> None:
    while not ready():
        if not _alive(pid, None):
            raise LabError(f"{what}: the process exited during start-up; its log says:\n"
                           f"{_tail(log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not ready in time; log:\n{_tail(log)}")
        time.sleep(0.1)


def stop_nfs_lab(state_dir: Path, *, unlock: bool = True) -> None:
    """Stop Ganesha (SIGTERM: it unregisters from rpcbind, ~2 s), then the rpcbind the lab
    started, whole process groups, SIGKILL for what remains; release the lock. Idempotent."""
    state_dir = Path(state_dir).resolve()
    try:
        stop_lab(state_dir / "ganesha", grace=5.0)
        stop_lab(state_dir / "rpcbind", grace=2.0)
    finally:
        if unlock:
            _unlock(state_dir)


def nfs_lab_running(state_dir: Path) -> bool:
    """True while a Ganesha started from state_dir is alive."""
    entry = _read_pidfile(Path(state_dir) / "ganesha" / "pids" / "ganesha.pid")
    return entry is not None and _alive(*entry)
