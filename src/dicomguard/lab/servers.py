"""Start, stop and inspect the lab: a small synthetic hospital on loopback addresses.

    manifest = start_lab(state_dir)        # returns once every service accepts connections
    lab_status(state_dir)                  # pid alive + port answering, per service
    stop_lab(state_dir)                    # kills the process groups; idempotent

Each service runs as its own process in its own session (so `dicomguard lab up` can exit and
leave the lab running) with a pid file under `<state_dir>/pids/`; the manifest
(`<state_dir>/manifest.json`) says what runs where and what a scan must find there.

Layout (offset from the base address, default 127.0.0.10):

    +0 orthanc-open         Orthanc, DICOM 4242 + REST 8042, wide open, synthetic studies
    +1 orthanc-locked       Orthanc, called AE checked, unknown AEs may only C-ECHO, REST auth
    +2 dcmqrscp-open        dcmtk dcmqrscp 11112, any calling AE, synthetic studies
    +3 dcmqrscp-restricted  dcmtk dcmqrscp 11112, only calling AE LABVIEWER
    +4 storescp             dcmtk storescp 11112, accepts and discards C-STORE
    +5 echo-scp             pynetdicom Verification SCP on a non-standard port (11113)
    +6 hostile-random       answers random bytes
    +7 hostile-bogus-ac     answers 0x02 then garbage
    +8 hostile-tarpit       accepts TCP, never answers
    +9 closed               nothing listens (a closed port)

Orthanc and dcmtk listen on every interface and have no option against it: the lab confines
them to their loopback address with an LD_PRELOAD bind shim (see loopback.py).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from dicomguard.errors import DicomguardError
from dicomguard.lab import synthetic
from dicomguard.lab.loopback import ShimUnavailable, build_shim, confined_env
from dicomguard.lab.manifest import MANIFEST_NAME, LabManifest, PatientSpec, ServiceSpec

DEFAULT_BASE_ADDRESS = "127.0.0.10"
DEFAULT_SEED = 7
KNOWN_CALLING_AE = "LABVIEWER"
ORTHANC_EXPECTED_VERSION = "1.10.1"
DCMTK_EXPECTED_VERSION = "3.6.7"
DICOM_PORT = 11112
ORTHANC_DICOM_PORT = 4242
ORTHANC_REST_PORT = 8042
ECHO_PORT = 11113
ORTHANC_LOCKED_USER = "labadmin"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
# What Debian's Orthanc 1.10.1 (built on the system dcmtk) and dcmtk 3.6.7 send in their
# A-ASSOCIATE-AC: the same identifiers (observed; tests/lab/test_lab.py checks them).
DCMTK_367_IMPLEMENTATION_UID = "1.2.276.0.7230010.3.0.3.6.7"
DCMTK_367_VERSION_NAME = "OFFIS_DCMTK_367"
# A-ASSOCIATE-RJ (result, source, reason): rejected-permanent, service-user, and
# 7 called-AE-title-not-recognized / 3 calling-AE-title-not-recognized.
REJECT_CALLED_AE = (1, 1, 7)
REJECT_CALLING_AE = (1, 1, 3)


class LabError(DicomguardError):
    """The lab could not be started, or a product it needs is missing under CI."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Whether a lab service is up: its process alive and its port answering.

    `ok` is what the manifest expects (a closed port is ok when nothing answers).
    """

    name: str
    product: str
    address: str
    port: int
    pid: int | None
    running: bool
    answering: bool
    ok: bool
    detail: str = ""


# ---------------------------------------------------------------------------------------------
# small helpers


def default_state_dir() -> Path:
    """Where `dicomguard lab up` keeps its state unless told otherwise."""
    import platformdirs

    return Path(platformdirs.user_data_dir("dicomguard")) / "lab"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _addresses(base_address: str, count: int) -> list[str]:
    try:
        base = ipaddress.IPv4Address(base_address)
    except ValueError as exc:
        raise LabError(f"base address {base_address!r} is not an IPv4 address") from exc
    last = base + (count - 1)
    if base not in ipaddress.IPv4Network("127.0.0.0/8") or last not in ipaddress.IPv4Network(
        "127.0.0.0/8"
    ) or int(last) & 0xFF in (0, 255):
        raise LabError(
            f"base address {base_address}: the lab needs {count} consecutive loopback addresses "
            "inside 127.0.0.0/8 (e.g. 127.0.0.10)"
        )
    return [str(base + i) for i in range(count)]


def port_answers(address: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to address:port is accepted."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of pid (guards against killing a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start_time: str | None) -> bool:
    current = _proc_start_time(pid)
    if current is None:
        return False
    if start_time is not None and current != start_time:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        state = state[state.rfind(")") + 2:].split()[0]
    except OSError:
        return False
    return state != "Z"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _version(argv: Sequence[str], pattern: str) -> str | None:
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, out)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------
# process handling


@dataclass(frozen=True, slots=True)
class _Started:
    name: str
    pid: int
    log: Path
    ports: tuple[tuple[str, int], ...]


#: Children started by this interpreter, kept so that stop_lab can reap them (no zombies, no
#: "subprocess still running" ResourceWarning) when the lab is stopped by the same process.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class _Launcher:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pid_dir = state_dir / "pids"
        self.log_dir = state_dir / "logs"
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[_Started] = []

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ports: Iterable[tuple[str, int]],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> _Started:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=cwd or self.state_dir, env=env, start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        start_time = _proc_start_time(proc.pid) or ""
        (self.pid_dir / f"{name}.pid").write_text(f"{proc.pid} {start_time}\n")
        started = _Started(name, proc.pid, log, tuple(ports))
        self.started.append(started)
        return started


def _wait_ready(started: Sequence[_Started], deadline: float) -> None:
    pending = {(s.name, addr, port): s for s in started for addr, port in s.ports}
    while pending:
        for key, item in list(pending.items()):
            _, address, port = key
            if not _alive(item.pid, None):
                raise LabError(
                    f"lab service {item.name} exited during start-up; its log says:\n"
                    f"{_tail(item.log)}"
                )
            if port_answers(address, port, timeout=0.5):
                del pending[key]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = sorted({f"{n} ({a}:{p})" for n, a, p in pending})
            raise LabError(f"lab services not answering in time: {', '.join(names)}")
        time.sleep(0.05)


def _read_pidfile(path: Path) -> tuple[int, str | None] | None:
    try:
        parts = path.read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 and parts[1] else None)
    except (OSError, ValueError, IndexError):
        return None


def stop_lab(state_dir: Path, *, grace: float = 1.0) -> None:
    """Stop every lab process recorded under state_dir (whole process groups). Idempotent.

    SIGTERM first; what still runs after `grace` seconds (Orthanc takes about 3 s to shut down
    cleanly, and the lab's state is rebuilt at every start) gets SIGKILL.
    """
    pid_dir = Path(state_dir) / "pids"
    if not pid_dir.is_dir():
        return
    victims: list[tuple[Path, int, str | None]] = []
    for pidfile in sorted(pid_dir.glob("*.pid")):
        entry = _read_pidfile(pidfile)
        if entry is None or not _alive(*entry):
            pidfile.unlink(missing_ok=True)
            if entry is not None:
                _reap(entry[0])
            continue
        victims.append((pidfile, *entry))
    for _, pid, _ in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)  # each service leads its own session and group
    deadline = time.monotonic() + grace
    for pidfile, pid, start in victims:
        while _alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the rest of the group (forked children), if any
        while _alive(pid, start) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        pidfile.unlink(missing_ok=True)
    for _, pid, _ in victims:
        _reap(pid)


def _reap(pid: int) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2.0)


def lab_status(state_dir: Path, *, timeout: float = 1.0) -> list[ServiceStatus]:
    """Per service of the manifest: is its process alive, does its port answer.

    An empty list when no lab was ever started from state_dir.
    """
    state_dir = Path(state_dir)
    if not (state_dir / MANIFEST_NAME).exists():
        return []
    try:
        manifest = LabManifest.load(state_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"unreadable lab manifest in {state_dir}: {exc}") from exc
    pids = {}
    for pidfile in (state_dir / "pids").glob("*.pid"):
        entry = _read_pidfile(pidfile)
        if entry is not None:
            pids[entry[0]] = entry
    result = []
    for svc in manifest.services:
        if svc.protocol == "none":
            answering = port_answers(svc.address, svc.port, timeout)
            result.append(ServiceStatus(svc.name, svc.product, svc.address, svc.port, None,
                                        False, answering, not answering,
                                        "closed port" if not answering else "unexpectedly open"))
            continue
        entry = pids.get(svc.pid) if svc.pid is not None else None
        running = entry is not None and _alive(*entry)
        answering = all(port_answers(svc.address, p, timeout) for p in svc.ports)
        detail = "up" if running and answering else ("not running" if not running else
                                                     "running but not answering")
        result.append(ServiceStatus(svc.name, svc.product, svc.address, svc.port,
                                    entry[0] if entry else None, running, answering,
                                    running and answering, detail))
    return result


# ---------------------------------------------------------------------------------------------
# product configurations


def _orthanc_config(
    work: Path, *, name: str, ae_title: str, locked: bool, password: str | None,
    dicomweb: bool,
) -> dict[str, object]:
    modality = {"AET": KNOWN_CALLING_AE, "Host": "127.0.0.1", "Port": 11119}
    config: dict[str, object] = {
        "Name": name,
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "storage"),
        "StorageCompression": False,
        "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb else [],
        "LuaScripts": [],
        "HttpServerEnabled": True,
        "HttpPort": ORTHANC_REST_PORT,
        "HttpDescribeErrors": True,
        "DicomServerEnabled": True,
        "DicomAet": ae_title,
        "DicomPort": ORTHANC_DICOM_PORT,
        "DicomCheckCalledAet": locked,
        "DicomCheckModalityHost": False,
        "DicomModalities": {"labviewer": modality},
        "DicomModalitiesInDatabase": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": not locked,
        "DicomAlwaysAllowFind": not locked,
        "DicomAlwaysAllowFindWorklist": not locked,
        "DicomAlwaysAllowGet": not locked,
        "DicomAlwaysAllowMove": not locked,
        "DicomScpTimeout": 30,
        "UnknownSopClassAccepted": False,
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": locked,
        "RegisteredUsers": {ORTHANC_LOCKED_USER: password} if locked and password else {},
        "SslEnabled": False,
        "DicomTlsEnabled": False,
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 8,
        "StableAge": 2,
        "OverwriteInstances": False,
        "ExecuteLuaEnabled": False,
        "CheckRevisions": False,
    }
    if dicomweb:
        config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
    return config


def _dcmqrscp_config(storage: Path, ae_title: str, peers: str) -> str:
    # HostTable: symbolic name = (AE title, host, port); a group is a list of names.
    # AETable: AE title, storage area, access, (max studies, max bytes per study), peers.
    return (
        f"NetworkTCPPort  = {DICOM_PORT}\n"
        "MaxPDUSize      = 16384\n"
        "MaxAssociations = 16\n"
        "\n"
        "HostTable BEGIN\n"
        f"labviewer_ip   = ({KNOWN_CALLING_AE}, 127.0.0.1, 11119)\n"
        f"labviewer_name = ({KNOWN_CALLING_AE}, localhost, 11119)\n"
        "labviewers     = labviewer_ip, labviewer_name\n"
        "HostTable END\n"
        "\n"
        "VendorTable BEGIN\n"
        "VendorTable END\n"
        "\n"
        "AETable BEGIN\n"
        f"{ae_title}  {storage}  RW  (200, 1024mb)  {peers}\n"
        "AETable END\n"
    )


def _http(method: str, url: str, *, body: bytes | None = None, auth: tuple[str, str] | None = None,
          timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/dicom")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _orthanc_wait_rest(base_url: str, auth: tuple[str, str] | None, deadline: float) -> None:
    while True:
        try:
            status, _ = _http("GET", f"{base_url}/system", auth=auth, timeout=2.0)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"Orthanc REST API at {base_url} not ready in time")
        time.sleep(0.05)


def _orthanc_load(base_url: str, files: Sequence[Path], auth: tuple[str, str] | None) -> None:
    for path in files:
        status, body = _http("POST", f"{base_url}/instances", body=path.read_bytes(), auth=auth)
        if status != 200:
            raise LabError(
                f"Orthanc at {base_url} refused {path.name}: HTTP {status} {body[:200]!r}"
            )


# ---------------------------------------------------------------------------------------------
# start


NAMES = (
    "orthanc-open", "orthanc-locked", "dcmqrscp-open", "dcmqrscp-restricted", "storescp",
    "echo-scp", "hostile-random", "hostile-bogus-ac", "hostile-tarpit", "closed",
)


def start_lab(
    state_dir: Path,
    *,
    base_address: str = DEFAULT_BASE_ADDRESS,
    seed: int = DEFAULT_SEED,
    timeout: float = 60.0,
    use_products: bool = True,
) -> LabManifest:
    """Generate the synthetic studies, start every service, load the data, write the manifest.

    Returns once every service accepts TCP connections and Orthanc holds its studies. Missing
    Orthanc or dcmtk (or no C compiler for the loopback bind shim) raises LabError under CI=true;
    otherwise pynetdicom SCPs stand in and the manifest's `skipped` says why.
    `use_products=False` starts only the pure-Python services (stand-ins included).
    On any failure everything already started is stopped before the error propagates.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    running = [
        p.stem for p in sorted((state_dir / "pids").glob("*.pid"))
        if (entry := _read_pidfile(p)) is not None and _alive(*entry)
    ]
    if running:
        raise LabError(
            f"a lab is already running from {state_dir} ({', '.join(running)}); stop it first"
        )
    stop_lab(state_dir)  # stale pid files of a crashed lab
    addresses = dict(zip(NAMES, _addresses(base_address, len(NAMES)), strict=True))
    busy = [f"{a}:{p}" for a, p in _all_ports(addresses) if port_answers(a, p, 0.3)]
    if busy:
        raise LabError(f"lab addresses already in use: {', '.join(busy)}")
    deadline = time.monotonic() + timeout
    launcher = _Launcher(state_dir)
    try:
        return _start(state_dir, addresses, seed, deadline, launcher, use_products)
    except BaseException:
        stop_lab(state_dir)
        raise


class _Counts(TypedDict):
    patients: int
    studies: int
    series: int
    instances: int


def _all_ports(addresses: dict[str, str]) -> list[tuple[str, int]]:
    ports = {
        "orthanc-open": (ORTHANC_DICOM_PORT, ORTHANC_REST_PORT),
        "orthanc-locked": (ORTHANC_DICOM_PORT, ORTHANC_REST_PORT),
        "echo-scp": (ECHO_PORT,),
    }
    return [(addr, p) for name, addr in addresses.items() for p in ports.get(name, (DICOM_PORT,))]


def _start(
    state_dir: Path,
    addresses: dict[str, str],
    seed: int,
    deadline: float,
    launcher: _Launcher,
    use_products: bool,
) -> LabManifest:
    for leftover in ("data", "config", *NAMES):  # a lab always starts from a clean state
        if (state_dir / leftover).is_dir():
            shutil.rmtree(state_dir / leftover)
    data_dir = state_dir / "data"
    data = synthetic.generate(data_dir, seed)
    counts = _Counts(patients=len(data.patients), studies=data.studies, series=data.series,
                     instances=data.instances)
    skipped: list[tuple[str, str]] = []
    orthanc = shutil.which("Orthanc")
    dcmtk = {p: shutil.which(p) for p in ("dcmqrscp", "dcmqridx", "storescp")}
    shim: Path | None = None
    shim_problem = ""
    if use_products and (orthanc or any(dcmtk.values())):
        try:
            shim = build_shim(state_dir / "shim")
        except ShimUnavailable as exc:
            shim_problem = str(exc)
    missing = []
    if not use_products:
        missing.append("products disabled (use_products=False)")
    else:
        if orthanc is None:
            missing.append("Orthanc not found on PATH (Debian package orthanc)")
        if not all(dcmtk.values()):
            missing.append("dcmtk (dcmqrscp, dcmqridx, storescp) not found (Debian package dcmtk)")
        if shim_problem:
            missing.append(shim_problem)
    if missing and in_ci() and use_products:
        raise LabError("CI=true and the lab cannot run its real servers: " + "; ".join(missing))

    py = [sys.executable, "-m", "dicomguard.lab.pyservers"]
    specs: list[ServiceSpec] = []
    rest_loads: list[tuple[str, tuple[str, str] | None]] = []
    use_orthanc = orthanc is not None and shim is not None
    use_dcmtk = all(dcmtk.values()) and shim is not None

    def pyserver(name: str, config: dict[str, object], ports: list[tuple[str, int]]) -> int:
        path = state_dir / "config" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))
        return launcher.spawn(name, [*py, str(path)], ports=ports).pid

    def standin(name: str, product: str, role: str, ae_title: str, restricted: bool,
                port: int) -> ServiceSpec:
        address = addresses[name]
        config: dict[str, object] = {
            "kind": "find", "address": address, "port": port, "ae_title": ae_title,
            "data_dir": str(data_dir), "require_called_aet": restricted,
            "allowed_calling_aes": [KNOWN_CALLING_AE] if restricted else [],
        }
        pid = pyserver(name, config, [(address, port)])
        skipped.append((name, f"{product} replaced by a pynetdicom stand-in: {'; '.join(missing)}"))
        return ServiceSpec(
            name=name, role=role + " (pynetdicom stand-in)", product="pynetdicom",
            address=address, port=port, program="python", ae_title=ae_title,
            accepts_any_called_ae=not restricted, accepts_any_calling_ae=not restricted,
            allows_echo=not restricted, allows_find=not restricted, allows_store=False,
            known_calling_aes=(KNOWN_CALLING_AE,) if restricted else (), **counts,
            stands_in_for=product, pid=pid, **_pynetdicom_fingerprint(),
            reject_wrong_called_ae=REJECT_CALLED_AE if restricted else None,
            reject_unknown_calling_ae=REJECT_CALLING_AE if restricted else None,
            holds_connection_after_reject=False if restricted else None,
        )

    env = dict(os.environ)

    # --- Orthanc ------------------------------------------------------------------------------
    orthanc_version = (
        _version([orthanc, "--version"], r"Orthanc\s+([0-9][\w.]*)") if orthanc else None
    )
    for name, locked in (("orthanc-open", False), ("orthanc-locked", True)):
        ae_title = "LOCKEDPACS" if locked else "ORTHANC"
        role = (
            "Orthanc PACS with called-AE check, unknown AEs limited to C-ECHO, REST API with "
            "authentication" if locked else
            "wide-open Orthanc PACS: any called/calling AE may echo, find, get, move and "
            "store; REST API without authentication"
        )
        if not use_orthanc:
            specs.append(standin(name, "Orthanc", role, ae_title, locked, ORTHANC_DICOM_PORT))
            continue
        assert orthanc is not None and shim is not None
        address = addresses[name]
        work = state_dir / name
        work.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(12) if locked else None
        dicomweb = DICOMWEB_PLUGIN.exists() and not locked
        config = _orthanc_config(
            work, name=f"Dicomguard Lab {'Locked' if locked else 'Open'} PACS",
            ae_title=ae_title, locked=locked, password=password, dicomweb=dicomweb,
        )
        config_path = work / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        started = launcher.spawn(
            name, [orthanc, "--no-jobs", str(config_path)],
            ports=[(address, ORTHANC_DICOM_PORT), (address, ORTHANC_REST_PORT)],
            env=confined_env(env, shim, address), cwd=work,
        )
        auth = (ORTHANC_LOCKED_USER, password) if password else None
        rest_loads.append((f"http://{address}:{ORTHANC_REST_PORT}", auth))
        specs.append(ServiceSpec(
            name=name, role=role, product="Orthanc", address=address, port=ORTHANC_DICOM_PORT,
            program="Orthanc", expected_version=ORTHANC_EXPECTED_VERSION,
            version=orthanc_version, ae_title=ae_title,
            accepts_any_called_ae=not locked, accepts_any_calling_ae=True,
            allows_echo=True, allows_find=not locked, allows_store=not locked,
            known_calling_aes=(KNOWN_CALLING_AE,), **counts,
            rest_port=ORTHANC_REST_PORT, rest_auth_required=locked,
            rest_username=ORTHANC_LOCKED_USER if locked else None, rest_password=password,
            dicomweb_path="/dicom-web/" if dicomweb else None, pid=started.pid,
            **_dcmtk_fingerprint(orthanc_version == ORTHANC_EXPECTED_VERSION),
            reject_wrong_called_ae=REJECT_CALLED_AE if locked else None,
            holds_connection_after_reject=True if locked else None,
            notes=(
                "unknown calling AEs are associated (Orthanc has no calling-AE allow-list at "
                "association time) but C-FIND/C-MOVE/C-GET/C-STORE are refused"
                if locked else ""
            ),
        ))

    # --- dcmtk --------------------------------------------------------------------------------
    dcmtk_version = (
        _version([dcmtk["dcmqrscp"] or "dcmqrscp", "--version"], r"v(\d+\.\d+\.\d+)")
        if use_dcmtk else None
    )
    for name, restricted in (("dcmqrscp-open", False), ("dcmqrscp-restricted", True)):
        ae_title = "RESTRICTQR" if restricted else "DCMQRSCP"
        role = (
            f"dcmtk archive that only serves calling AE {KNOWN_CALLING_AE} from 127.0.0.1"
            if restricted else "dcmtk archive serving any calling AE (called AE must match)"
        )
        if not use_dcmtk:
            specs.append(standin(name, "dcmtk", role, ae_title, restricted, DICOM_PORT))
            continue
        assert shim is not None
        address = addresses[name]
        work = state_dir / name
        storage = work / "db"
        if any(c.isspace() for c in str(storage)):
            raise LabError(f"dcmqrscp cannot use a storage path with spaces: {storage}")
        storage.mkdir(parents=True, exist_ok=True)
        copies = []
        for index, path in enumerate(data.files):
            target = storage / f"{index:04d}.dcm"
            shutil.copyfile(path, target)
            copies.append(str(target))
        proc = subprocess.run(
            [dcmtk["dcmqridx"] or "dcmqridx", str(storage), *copies],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"dcmqridx failed for {name}: {proc.stderr.strip()}")
        config_path = work / "dcmqrscp.cfg"
        config_path.write_text(
            _dcmqrscp_config(storage, ae_title, "labviewers" if restricted else "ANY")
        )
        started = launcher.spawn(
            name, [dcmtk["dcmqrscp"] or "dcmqrscp", "-c", str(config_path), str(DICOM_PORT)],
            ports=[(address, DICOM_PORT)], env=confined_env(env, shim, address), cwd=work,
        )
        specs.append(ServiceSpec(
            name=name, role=role, product="dcmtk", address=address, port=DICOM_PORT,
            program="dcmqrscp", expected_version=DCMTK_EXPECTED_VERSION, version=dcmtk_version,
            ae_title=ae_title, accepts_any_called_ae=False,
            accepts_any_calling_ae=not restricted, allows_echo=not restricted,
            allows_find=not restricted, allows_store=not restricted,
            known_calling_aes=(KNOWN_CALLING_AE,), **counts, pid=started.pid,
            **_dcmtk_fingerprint(dcmtk_version == DCMTK_EXPECTED_VERSION),
            reject_wrong_called_ae=REJECT_CALLED_AE,
            # dcmqrscp 3.6.7 rejects an unlisted calling AE with reason 7 as well
            reject_unknown_calling_ae=REJECT_CALLED_AE if restricted else None,
            holds_connection_after_reject=False,
        ))

    # storescp
    name = "storescp"
    address = addresses[name]
    if use_dcmtk:
        assert shim is not None
        started = launcher.spawn(
            name, [dcmtk["storescp"] or "storescp", "--ignore", "-aet", "STORESCP",
                   str(DICOM_PORT)],
            ports=[(address, DICOM_PORT)], env=confined_env(env, shim, address),
        )
        specs.append(ServiceSpec(
            name=name, role="dcmtk storescp: accepts C-ECHO and C-STORE (discarded), no query",
            product="dcmtk", address=address, port=DICOM_PORT, program="storescp",
            expected_version=DCMTK_EXPECTED_VERSION, version=dcmtk_version,
            ae_title="STORESCP", accepts_any_called_ae=True, accepts_any_calling_ae=True,
            allows_echo=True, allows_find=False, allows_store=True, pid=started.pid,
            **_dcmtk_fingerprint(dcmtk_version == DCMTK_EXPECTED_VERSION),
        ))
    else:
        pid = pyserver(name, {"kind": "store", "address": address, "port": DICOM_PORT,
                              "ae_title": "STORESCP"}, [(address, DICOM_PORT)])
        skipped.append((name, "storescp replaced by a pynetdicom stand-in: " + "; ".join(missing)))
        specs.append(ServiceSpec(
            name=name, role="storage SCP (pynetdicom stand-in for dcmtk storescp)",
            product="pynetdicom", address=address, port=DICOM_PORT, program="python",
            ae_title="STORESCP", accepts_any_called_ae=True, accepts_any_calling_ae=True,
            allows_echo=True, allows_find=False, allows_store=True, stands_in_for="dcmtk",
            pid=pid, **_pynetdicom_fingerprint(),
        ))

    # --- pure Python --------------------------------------------------------------------------
    name = "echo-scp"
    address = addresses[name]
    pid = pyserver(name, {"kind": "verification", "address": address, "port": ECHO_PORT,
                          "ae_title": "ECHOSCP"}, [(address, ECHO_PORT)])
    specs.append(ServiceSpec(
        name=name, role="pynetdicom Verification-only SCP on a non-standard port",
        product="pynetdicom", address=address, port=ECHO_PORT, program="python",
        version=_pynetdicom_version(), ae_title="ECHOSCP", accepts_any_called_ae=True,
        accepts_any_calling_ae=True, allows_echo=True, allows_find=False, allows_store=False,
        pid=pid, **_pynetdicom_fingerprint(),
    ))

    hostile = {
        "hostile-random": ("random-bytes", "answers random bytes that are not a DICOM PDU"),
        "hostile-bogus-ac": ("bogus-associate-ac", "answers 0x02 (A-ASSOCIATE-AC type) and "
                                                   "garbage"),
        "hostile-tarpit": ("tarpit", "accepts TCP connections and never answers"),
    }
    listeners = [{"address": addresses[n], "port": DICOM_PORT, "behaviour": b}
                 for n, (b, _) in hostile.items()]
    pid = pyserver("hostile", {"kind": "hostile", "listeners": listeners, "seed": seed},
                   [(addresses[n], DICOM_PORT) for n in hostile])
    for n, (behaviour, role) in hostile.items():
        specs.append(ServiceSpec(
            name=n, role=role, product="hostile", address=addresses[n], port=DICOM_PORT,
            protocol="tcp", program="python", behaviour=behaviour, pid=pid,
        ))
    specs.append(ServiceSpec(
        name="closed", role="nothing listens: the connection is refused", product="hostile",
        address=addresses["closed"], port=DICOM_PORT, protocol="none", behaviour="closed",
    ))

    _wait_ready(launcher.started, deadline)
    for base_url, auth in rest_loads:
        _orthanc_wait_rest(base_url, auth, deadline)
        _orthanc_load(base_url, data.files, auth)
    if port_answers(addresses["closed"], DICOM_PORT, 0.3):
        raise LabError(f"the closed port {addresses['closed']}:{DICOM_PORT} answers")

    manifest = LabManifest(
        state_dir=str(state_dir), base_address=addresses[NAMES[0]], seed=seed,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"), services=tuple(specs),
        patients=tuple(
            PatientSpec(p.patient_id, p.patient_name, p.birth_date, p.sex,
                        tuple(s.study_instance_uid for s in p.studies),
                        tuple(s.modality for s in p.studies))
            for p in data.patients
        ),
        data_dir=str(data_dir), skipped=tuple(skipped),
        extra={"known_calling_ae": KNOWN_CALLING_AE, "series": data.series,
               "instances": data.instances},
    )
    manifest.save(state_dir)
    return manifest


class _Fingerprint(TypedDict):
    implementation_class_uid: str | None
    implementation_version_name: str | None


def _dcmtk_fingerprint(known: bool) -> _Fingerprint:
    """dcmtk 3.6.7's AC identifiers when the version is the one observed, else unknown."""
    return _Fingerprint(
        implementation_class_uid=DCMTK_367_IMPLEMENTATION_UID if known else None,
        implementation_version_name=DCMTK_367_VERSION_NAME if known else None,
    )


def _pynetdicom_fingerprint() -> _Fingerprint:
    import pynetdicom

    return _Fingerprint(
        implementation_class_uid=str(pynetdicom.PYNETDICOM_IMPLEMENTATION_UID),
        implementation_version_name=str(pynetdicom.PYNETDICOM_IMPLEMENTATION_VERSION),
    )


def _pynetdicom_version() -> str | None:
    try:
        import pynetdicom

        return str(pynetdicom.__version__)
    except (ImportError, AttributeError):
        return None

