"""A Samba `smbd` for the lab and the tests: a guest-readable share of synthetic DICOM studies
and a share only a named user may open, on one loopback address.

    lab = start_smb(state_dir, address="127.0.0.60", port=4445, smb1=False, signing="auto")
    ...
    stop_smb(state_dir)

Everything smbd keeps lives under `state_dir` (its own smb.conf, private, lock, state, cache,
pid, ncalrpc and log directories); it binds only `address` (`interfaces = <address>/8`,
`bind interfaces only = yes`) on a non-default port, runs in the foreground in its own
session, and `stop_smb` kills that whole process group (smbd's per-connection children and
samba-dcerpcd included).

Shares:

- `images` (guest ok, unless started with guest=False): the synthetic hospital of
  `dicomguard.lab.synthetic` nested under `Radiology/2024/<PatientID>/<study>/<series>/`,
  some files renamed without or with a wrong extension, plus non-DICOM files (a DICOM
  walker must find them by content);
- `clinical` (valid users = the lab user, password in the returned `SmbLab`): more synthetic
  studies that a guest or anonymous scan must never see.

Samba needs a Unix account behind its user: the lab maps its Samba user onto an existing
system account (`daemon` by default) in its own passdb; the shares use `force user = root` so
files under a private temporary directory stay readable. Nothing outside `state_dir` changes.
"""

from __future__ import annotations

import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dicomguard.lab import synthetic
from dicomguard.lab.servers import LabError, _Launcher, _wait_ready, in_ci, stop_lab

SMBD = "smbd"
SMBPASSWD = "smbpasswd"
DCERPCD = "/usr/libexec/samba/samba-dcerpcd"
DEFAULT_ADDRESS = "127.0.0.60"
DEFAULT_PORT = 4445
GUEST_SHARE = "images"
USER_SHARE = "clinical"
SIGNING = ("auto", "mandatory", "disabled")
_ACCOUNTS = ("daemon", "bin", "sys")


@dataclass(frozen=True, slots=True)
class SmbLab:
    address: str
    port: int
    netbios_port: int | None
    pid: int
    state_dir: Path
    conf: Path
    log: Path
    guest: bool                             # guest/anonymous access to guest_share enabled
    guest_share: str
    user_share: str
    user: str
    password: str
    smb1: bool
    signing: str
    guest_data: synthetic.SyntheticData     # what the guest share holds
    user_data: synthetic.SyntheticData      # what only the user may read
    non_dicom_files: int
    largest_file: int                       # bytes (sampling tests read far less)


def smbd_missing() -> str | None:
    """Why the lab cannot run smbd here (None when it can)."""
    for tool in (SMBD, SMBPASSWD):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} not installed (Debian package samba)"
    if not Path(DCERPCD).exists():
        return f"{DCERPCD} not installed (Debian package samba)"
    if _account() is None:
        return "no system account to map the lab's Samba user onto"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _account() -> str | None:
    for name in _ACCOUNTS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def _config(root: Path, address: str, ports: list[int], smb1: bool, signing: str,
            user: str, log_level: int, guest: bool) -> str:
    d = {name: root / name for name in ("private", "lock", "state", "cache", "pid", "ncalrpc",
                                        "logs")}
    for path in d.values():
        path.mkdir(parents=True, exist_ok=True)
    return "\n".join([
        "[global]",
        "  workgroup = DGLAB",
        "  netbios name = DGLABSMB",
        "  server string = dicomguard lab",
        "  server role = standalone server",
        f"  interfaces = {address}/8",
        "  bind interfaces only = yes",
        f"  smb ports = {' '.join(str(p) for p in ports)}",
        "  disable netbios = yes",
        f"  private dir = {d['private']}",
        f"  lock directory = {d['lock']}",
        f"  state directory = {d['state']}",
        f"  cache directory = {d['cache']}",
        f"  pid directory = {d['pid']}",
        f"  ncalrpc dir = {d['ncalrpc']}",
        f"  binddns dir = {d['private']}/bind-dns",
        f"  passdb backend = tdbsam:{d['private']}/passdb.tdb",
        f"  log file = {d['logs']}/smbd.log",
        f"  log level = {log_level}",
        "  max log size = 0",
        f"  map to guest = {'bad user' if guest else 'never'}",
        "  guest account = nobody",
        f"  restrict anonymous = {0 if guest else 2}",
        f"  server min protocol = {'NT1' if smb1 else 'SMB2_02'}",
        f"  server signing = {signing}",
        "  load printers = no",
        "  printing = bsd",
        "  printcap name = /dev/null",
        "  disable spoolss = yes",
        "  usershare path =",
        "  rpc start on demand helpers = no",
        "",
        f"[{GUEST_SHARE}]",
        f"  path = {root / 'shares' / GUEST_SHARE}",
        f"  guest ok = {'yes' if guest else 'no'}",
        "  read only = yes",
        "  browseable = yes",
        "  force user = root",
        "",
        f"[{USER_SHARE}]",
        f"  path = {root / 'shares' / USER_SHARE}",
        f"  valid users = {user}",
        "  guest ok = no",
        "  read only = yes",
        "  force user = root",
        "",
    ])


def _populate(root: Path, seed: int) -> tuple[synthetic.SyntheticData, synthetic.SyntheticData,
                                               int, int]:
    guest_root = root / "shares" / GUEST_SHARE
    user_root = root / "shares" / USER_SHARE
    for folder in (guest_root, user_root):
        if folder.exists():
            shutil.rmtree(folder)
    guest = synthetic.generate(guest_root / "Radiology" / "2024", seed=seed)
    user = synthetic.generate(user_root / "Cardiology", seed=seed + 1)
    # DICOM is recognised by content: some files lose or change their extension
    renamed = []
    for index, path in enumerate(guest.files):
        if index % 5 == 1:
            target = path.with_suffix("")
        elif index % 5 == 3:
            target = path.with_suffix(".bin")
        else:
            renamed.append(path)
            continue
        path.rename(target)
        renamed.append(target)
    guest = synthetic.SyntheticData(guest.seed, guest.patients, tuple(renamed))
    extras = {
        guest_root / "README.txt": b"Scanner export folder. Do not delete.\n" * 10,
        guest_root / "Radiology" / "index.html": b"<html><body>export</body></html>\n" * 10,
        guest_root / "Radiology" / "2024" / "notes.dcm": b"not a dicom file at all\n" * 40,
    }
    for path, data in extras.items():
        path.write_bytes(data)
    largest = max(p.stat().st_size for p in guest.files)
    return guest, user, len(extras), largest


def start_smb(state_dir: Path, *, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT,
              netbios_port: int | None = None, smb1: bool = False, signing: str = "auto",
              seed: int = 7,
              guest: bool = True, log_level: int = 1, timeout: float = 20.0) -> SmbLab:
    """Start smbd (returns once its ports answer). Raises LabError when it cannot."""
    if signing not in SIGNING:
        raise LabError(f"signing must be one of {SIGNING}")
    missing = smbd_missing()
    if missing:
        raise LabError(f"smb lab: {missing}")
    root = Path(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    stop_lab(root)  # a previous run from the same directory
    user = _account()
    assert user is not None
    password = "Lab-" + secrets.token_hex(8)
    ports = [port] + ([netbios_port] if netbios_port else [])
    conf = root / "smb.conf"
    conf.write_text(_config(root, address, ports, smb1, signing, user, log_level, guest))
    guest_data, user_data, extras, largest = _populate(root, seed)
    try:
        done = subprocess.run(
            [_tool(SMBPASSWD), "-c", str(conf), "-a", "-s", user],
            input=f"{password}\n{password}\n", capture_output=True, text=True, timeout=20,
            check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"smbpasswd failed: {exc}") from exc
    if done.returncode != 0:
        raise LabError(f"smbpasswd failed: {done.stdout} {done.stderr}".strip())
    launcher = _Launcher(root)
    # samba-dcerpcd (SRVSVC for share enumeration) runs as our own foreground child: started
    # on demand by smbd it would daemonise and outlive the lab's process group.
    rpc = launcher.spawn(
        "samba-dcerpcd",
        [DCERPCD, "--foreground", "--no-process-group", "--libexec-rpcds",
         f"--configfile={conf}"], ports=[])
    started = launcher.spawn(
        "smbd",
        [_tool(SMBD), "--foreground", "--no-process-group", f"--configfile={conf}"],
        ports=[(address, p) for p in ports])
    try:
        _wait_ready([rpc, started], time.monotonic() + timeout)
        _wait_rpc(root / "ncalrpc", time.monotonic() + timeout)
    except LabError:
        stop_lab(root)
        raise
    return SmbLab(address, port, netbios_port, started.pid, root, conf,
                  root / "logs" / "smbd.log", guest, GUEST_SHARE, USER_SHARE, user, password, smb1,
                  signing, guest_data, user_data, extras, largest)


def _wait_rpc(ncalrpc: Path, deadline: float) -> None:
    """Wait until samba-dcerpcd has created its endpoints (share enumeration needs SRVSVC)."""
    while time.monotonic() < deadline:
        if (ncalrpc / "np" / "srvsvc").exists():
            return
        time.sleep(0.05)
    raise LabError("samba-dcerpcd did not create its SRVSVC endpoint in time")


def stop_smb(state_dir: Path) -> None:
    """Stop the smbd started from state_dir (its whole process group). Idempotent."""
    stop_lab(Path(state_dir))


def require_smbd() -> str | None:
    """For tests: the reason to skip (None when smbd is there). Under CI=true a missing smbd
    is an error, never a skip."""
    missing = smbd_missing()
    if missing and in_ci():
        raise LabError(f"CI=true and {missing}")
    return missing
