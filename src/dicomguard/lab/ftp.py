"""FTP servers for the lab and the tests: real vsftpd with anonymous access to synthetic DICOM
files, and a pyftpdlib server that requires a password.

    tree = build_dicom_tree(root)                              # what a scan must find there
    anon = start_vsftpd(state_dir, "127.0.0.61", 2121, root)   # anonymous, read + upload/
    locked = start_pyftpdlib(state_dir, "127.0.0.62", 2121, root, user="labuser")
    ...
    stop_ftp(state_dir)                                        # kills the process groups

vsftpd runs in the foreground (background=NO) with its own configuration file, binding only
the given address (listen_address; passive data sockets on the same address and a port
range of their own), logging every transfer to `xferlog` in the standard format. It needs
root (it chroots into the anonymous root and drops to the `ftp` account). The anonymous root
belongs to root and is not writable (vsftpd refuses a writable chroot); `upload/` below it is
world-writable with anonymous uploads enabled, so an anonymous-write finding is real there.

pyftpdlib (`python -m dicomguard.lab.ftp <config.json>`) serves the same kind of tree to one
user with a password, anonymous refused, MLSD available.

Only invented patients (synthetic.py), only 127.0.0.0/8; or, for vsftpd in a network namespace
of the caller's (`netns=`, the FTP benchmark's shaped link), an RFC 2544 benchmark address
(198.18.0.0/15) inside it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import secrets
import shutil
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from dicomguard.lab import synthetic
from dicomguard.lab.servers import (
    DEFAULT_SEED,
    LabError,
    _alive,
    _Launcher,
    _Started,
    _tail,
    _wait_ready,
    in_ci,
    stop_lab,
)

UPLOAD_DIR = "upload"
#: vsftpd's passive ports in a namespace of the caller's (nothing else listens there).
NETNS_PASV = (40000, 40019)
BENCHMARK_NET = ipaddress.ip_network("198.18.0.0/15")     # RFC 2544


@dataclass(frozen=True, slots=True)
class FtpTree:
    """What was written below an FTP root, i.e. what a walk must count."""

    root: Path
    dicom_files: int
    patients: int
    studies: int
    modalities: dict[str, int]
    non_dicom: int                 # files of at least 132 bytes that are not DICOM
    tiny: int                      # files too small to be DICOM (never read)
    writable_dirs: int
    largest: int                   # bytes of the largest file
    files: tuple[str, ...] = field(default=(), repr=False)   # FTP paths of the DICOM files


@dataclass(frozen=True, slots=True)
class FtpServer:
    name: str
    product: str                   # "vsftpd" or "pyftpdlib"
    address: str
    port: int
    root: Path
    pid: int
    anonymous: bool
    user: str | None = None
    password: str | None = None
    xferlog: Path | None = None


def _check_address(address: str, netns: str | None = None) -> None:
    if netns is not None:
        if ipaddress.ip_address(address) not in BENCHMARK_NET:
            raise LabError(f"in a namespace, lab FTP servers bind RFC 2544 benchmark addresses "
                           f"(198.18.0.0/15) only, not {address!r}")
    elif not address.startswith("127."):
        raise LabError(f"lab FTP servers bind loopback addresses only, not {address!r}")


def build_dicom_tree(root: Path, seed: int = DEFAULT_SEED, *,
                     upload_dir: bool = True) -> FtpTree:
    """Synthetic studies nested three levels deep (PACS/<year>/<patient>_<study>/file), files
    without or with a wrong extension, plus non-DICOM files and a writable upload directory."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root.parent / (root.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    data = synthetic.generate(staging, seed)
    names = ("IM{:04d}", "{:04d}.dcm", "{:04d}.jpg", "IMG{:04d}.DCM", "{:04d}.txt")
    ftp_paths: list[str] = []
    modalities: Counter[str] = Counter()
    for patient in data.patients:
        for study in patient.studies:
            modalities[study.modality] += study.instances
    for n, src in enumerate(data.files):
        patient_id, study_dir = src.parts[-4], src.parts[-3]
        year = pydicom.dcmread(src, stop_before_pixels=True).StudyDate[:4]
        # PACS/<year>/<patient>_<study>/file: the patient is below the two levels shown
        rel = Path("PACS") / year / f"{patient_id}_{study_dir}" / names[n % len(names)].format(
            n + 1)
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dest)
        ftp_paths.append("/" + rel.as_posix())
    shutil.rmtree(staging)
    non_dicom = {
        "README.txt": b"Synthetic lab FTP server for dicomguard tests.\n" * 8,
        "PACS/index.html": b"<html><body>" + b"<p>archive index</p>" * 20 + b"</body></html>",
        "PACS/notes.dcm": b"this file is named .dcm but is not DICOM\n" * 10,
        "pub/logo.jpg": b"\xff\xd8\xff\xe0" + secrets.token_bytes(3000),
    }
    for rel_name, body in non_dicom.items():
        path = root / rel_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (root / "pub" / "empty.txt").write_bytes(b"x")             # too small: never read
    writable = 0
    if upload_dir:
        (root / UPLOAD_DIR).mkdir(exist_ok=True)
        writable = 1
    for dirpath, _subdirs, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    if upload_dir:
        os.chmod(root / UPLOAD_DIR, 0o777)
    largest = max(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return FtpTree(root=root, dicom_files=len(data.files), patients=len(data.patients),
                   studies=data.studies, modalities=dict(modalities),
                   non_dicom=len(non_dicom), tiny=1, writable_dirs=writable, largest=largest,
                   files=tuple(ftp_paths))


def vsftpd_missing() -> str | None:
    """Why vsftpd cannot run here (None when it can)."""
    if shutil.which("vsftpd") is None:
        return "vsftpd not found on PATH (Debian package vsftpd)"
    if os.geteuid() != 0:
        return "vsftpd needs root (it chroots into the anonymous root)"
    return None


def _free_port_range(address: str, count: int, start: int = 40000) -> tuple[int, int]:
    """`count` consecutive ports free on `address` (for vsftpd's passive range)."""
    base = start + (int.from_bytes(secrets.token_bytes(2), "big") % 15000)
    for first in range(base, 64000 - count, count):
        socks = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                socks.append(s)
                s.bind((address, port))
            return first, first + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise LabError(f"no free passive port range on {address}")


def _vsftpd_config(name_dir: Path, address: str, port: int, root: Path,
                   pasv: tuple[int, int], writable: bool, ftp_user: str) -> str:
    empty = name_dir / "empty"
    empty.mkdir(exist_ok=True)
    os.chmod(empty, 0o755)
    lines = {
        "listen": "YES", "listen_ipv6": "NO", "listen_address": address,
        "listen_port": str(port), "background": "NO",
        "anonymous_enable": "YES", "local_enable": "NO", "no_anon_password": "YES",
        "anon_root": str(root), "ftp_username": ftp_user,
        "write_enable": "YES" if writable else "NO",
        "anon_upload_enable": "YES" if writable else "NO",
        "anon_other_write_enable": "YES" if writable else "NO",
        "anon_mkdir_write_enable": "NO",
        "pasv_enable": "YES", "pasv_address": address, "pasv_addr_resolve": "NO",
        "pasv_min_port": str(pasv[0]), "pasv_max_port": str(pasv[1]),
        "port_enable": "NO", "connect_from_port_20": "NO",
        "secure_chroot_dir": str(empty),
        "xferlog_enable": "YES", "xferlog_std_format": "YES",
        "xferlog_file": str(name_dir / "xferlog"),
        "vsftpd_log_file": str(name_dir / "vsftpd.log"),
        "seccomp_sandbox": "NO", "isolate": "NO", "isolate_network": "NO",
        "ssl_enable": "NO", "hide_ids": "NO", "max_clients": "50",
        "idle_session_timeout": "120", "data_connection_timeout": "60",
        "pam_service_name": "vsftpd",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def start_vsftpd(state_dir: Path, address: str, port: int, root: Path, *,
                 name: str = "ftp-anon", writable: bool = True, timeout: float = 15.0,
                 netns: str | None = None) -> FtpServer:
    """vsftpd with anonymous read access to `root` (and anonymous upload to root/upload when
    `writable`). Raises LabError when vsftpd cannot run (see vsftpd_missing).

    With `netns`, vsftpd runs in that network namespace (`ip netns exec`, which becomes
    vsftpd: same pid, stopped alike) on `address`, an RFC 2544 address of the namespace; the
    namespace is the caller's to create and delete, and no connection from this one is made
    to it (readiness is read from the namespace's own socket table)."""
    _check_address(address, netns)
    problem = vsftpd_missing()
    if problem:
        raise LabError(problem)
    try:
        ftp_user = pwd.getpwnam("ftp").pw_name
    except KeyError:
        ftp_user = "nobody"
    state_dir = Path(state_dir).resolve()
    name_dir = state_dir / name
    name_dir.mkdir(parents=True, exist_ok=True)
    root = Path(root).resolve()
    os.chmod(root, 0o755)
    pasv = _free_port_range(address, 20) if netns is None else NETNS_PASV
    conf = name_dir / "vsftpd.conf"
    conf.write_text(_vsftpd_config(name_dir, address, port, root, pasv, writable, ftp_user))
    os.chmod(conf, 0o600)
    launcher = _Launcher(state_dir)
    argv = ["vsftpd", str(conf)]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    started = launcher.spawn(name, argv, ports=[(address, port)] if netns is None else [],
                             cwd=name_dir)
    try:
        if netns is None:
            _wait_ready([started], time.monotonic() + timeout)
        else:
            _wait_listening(started, address, port, time.monotonic() + timeout)
    except BaseException:
        stop_lab(state_dir)
        raise
    return FtpServer(name, "vsftpd", address, port, root, started.pid, True,
                     xferlog=name_dir / "xferlog")


def _wait_listening(started: _Started, address: str, port: int, deadline: float) -> None:
    """Until `started` listens on address:port, read from /proc/<pid>/net/tcp: the socket
    table of the process's own network namespace, which a connection from here cannot reach."""
    local = f"{int.from_bytes(socket.inet_aton(address), sys.byteorder):08X}:{port:04X}"
    table = Path(f"/proc/{started.pid}/net/tcp")
    while True:
        try:
            rows = [line.split() for line in table.read_text().splitlines()[1:]]
        except OSError:
            rows = []
        if any(row[1] == local and row[3] == "0A" for row in rows):      # 0A: LISTEN
            return
        if not _alive(started.pid, None):
            raise LabError(f"lab service {started.name} exited during start-up; its log says:"
                           f"\n{_tail(started.log)}")
        if time.monotonic() > deadline:
            raise LabError(f"lab service {started.name} not listening on {address}:{port} "
                           f"in its namespace in time")
        time.sleep(0.05)


def start_pyftpdlib(state_dir: Path, address: str, port: int, root: Path, *,
                    name: str = "ftp-password", user: str = "labuser",
                    password: str | None = None, timeout: float = 15.0) -> FtpServer:
    """pyftpdlib serving `root` to one user with a password; anonymous logins refused."""
    _check_address(address)
    try:
        import pyftpdlib  # noqa: F401
    except ImportError as exc:
        raise LabError("pyftpdlib is not installed (pip install pyftpdlib)") from exc
    state_dir = Path(state_dir).resolve()
    name_dir = state_dir / name
    name_dir.mkdir(parents=True, exist_ok=True)
    password = password or secrets.token_urlsafe(12)
    config = name_dir / "config.json"
    config.write_text(json.dumps({"address": address, "port": port, "root": str(root),
                                  "user": user, "password": password}))
    os.chmod(config, 0o600)
    launcher = _Launcher(state_dir)
    started = launcher.spawn(name, [sys.executable, "-m", "dicomguard.lab.ftp", str(config)],
                             ports=[(address, port)], cwd=name_dir)
    try:
        _wait_ready([started], time.monotonic() + timeout)
    except BaseException:
        stop_lab(state_dir)
        raise
    return FtpServer(name, "pyftpdlib", address, port, Path(root), started.pid, False,
                     user=user, password=password)


def stop_ftp(state_dir: Path) -> None:
    """Stop every FTP server started under state_dir (idempotent)."""
    stop_lab(state_dir)


def require_vsftpd() -> str | None:
    """The reason to skip a vsftpd test, or None; under CI=true a missing vsftpd raises."""
    problem = vsftpd_missing()
    if problem and in_ci():
        raise LabError(f"CI=true and vsftpd cannot run: {problem}")
    return problem


def read_xferlog(path: Path) -> list[tuple[str, int, str]]:
    """(file path, bytes, completion 'c'/'i') per line of a standard-format xferlog."""
    out: list[tuple[str, int, str]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 18 and fields[7].isdigit():
            out.append((fields[8], int(fields[7]), fields[-1]))
    return out


def _serve(config_path: str) -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    cfg = json.loads(Path(config_path).read_text())
    _check_address(cfg["address"])
    authorizer = DummyAuthorizer()
    authorizer.add_user(cfg["user"], cfg["password"], cfg["root"], perm="elr")
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.auth_failed_timeout = 0.1
    handler.masquerade_address = cfg["address"]
    server = FTPServer((cfg["address"], cfg["port"]), handler)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    _serve(sys.argv[1])
