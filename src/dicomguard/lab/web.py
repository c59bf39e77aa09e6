"""Web servers for the lab: nginx (directory listings, plain pages, TLS) and an Orthanc whose
REST API takes Orthanc's documented default login (orthanc/orthanc).

    web = start_web_lab(state_dir, base_address="127.0.0.140")   # WebLab, all answering
    web.server("nginx-autoindex").access_log                     # $bytes_sent per request
    stop_web_lab(state_dir)                                      # kills the process groups

Each server has its own configuration, logs and temporary directories under `state_dir`, binds
only its given loopback address, and runs in its own session (killed as a group by
`stop_web_lab`, which is the lab's `stop_lab` on this state directory). nginx is started as
`nginx -p <dir> -e <dir>/error.log -c <conf> -g 'daemon off;'`; its access log records, per
request, `$status $bytes_sent $body_bytes_sent "$http_range"` so tests can assert how many
bytes a sampling walk really pulled. Orthanc listens on every interface and is confined to its
address by the lab's LD_PRELOAD bind shim (see loopback.py).

Layout (offset from the base address):

    +0 nginx-autoindex   autoindex over a tree of the synthetic studies (files nested three
                         levels, some without extension or with a wrong one) plus non-DICOM files
    +1 nginx-plain       a plain "welcome" page, no listing
    +2 nginx-tls         the plain page over HTTPS (self-signed certificate, known subject)
    +3 orthanc-default   Orthanc with REST authentication and the user orthanc/orthanc, loaded
                         with the synthetic studies
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dicomguard.lab import synthetic
from dicomguard.lab.loopback import ShimUnavailable, build_shim, confined_env
from dicomguard.lab.servers import (
    LabError,
    _Launcher,
    _orthanc_config,
    _orthanc_load,
    _orthanc_wait_rest,
    _wait_ready,
    in_ci,
    port_answers,
    stop_lab,
)

DEFAULT_WEB_BASE = "127.0.0.140"
NGINX_PORT = 8080
NGINX_TLS_PORT = 8443
ORTHANC_REST_PORT = 8042
ORTHANC_DICOM_PORT = 4242
DEFAULT_USER = ("orthanc", "orthanc")
CERT_SUBJECT_CN = "dicomguard-lab-web"
WEB_NAMES = ("nginx-autoindex", "nginx-plain", "nginx-tls", "orthanc-default")
PLAIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n"
    "<body><h1>Welcome</h1><p>Nothing to see here.</p></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class WebServer:
    name: str
    kind: str                        # "nginx" | "orthanc"
    address: str
    port: int
    pid: int
    tls: bool = False
    root: str | None = None          # nginx document root
    autoindex: bool = False
    access_log: str | None = None    # nginx access log (see AccessRecord)
    username: str | None = None      # Orthanc REST login
    password: str | None = None
    dicom_port: int | None = None


@dataclass(frozen=True, slots=True)
class TreeSpec:
    """What build_dicom_tree wrote: the truth a walk must find."""

    dicom_files: int
    other_files: int
    patients: int
    studies: int
    max_file_size: int


@dataclass(frozen=True, slots=True)
class WebLab:
    state_dir: str
    servers: tuple[WebServer, ...]
    tree: TreeSpec
    data: synthetic.SyntheticData

    def server(self, name: str) -> WebServer:
        for srv in self.servers:
            if srv.name == name:
                return srv
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class AccessRecord:
    path: str
    status: int
    bytes_sent: int
    body_bytes_sent: int
    range: str


_LOG_FORMAT = '"$request_uri" $status $bytes_sent $body_bytes_sent "$http_range"'
_LOG_LINE = re.compile(r'^"([^"]*)" (\d+) (\d+) (\d+) "([^"]*)"$')


def read_access_log(path: str | Path) -> list[AccessRecord]:
    records = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m:
            records.append(AccessRecord(m.group(1), int(m.group(2)), int(m.group(3)),
                                        int(m.group(4)), m.group(5)))
    return records


def _loopback(address: str) -> str:
    if ipaddress.ip_address(address) not in ipaddress.ip_network("127.0.0.0/8"):
        raise LabError(f"web lab servers bind loopback addresses only, not {address}")
    return address


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)


def build_dicom_tree(root: Path, data: synthetic.SyntheticData) -> TreeSpec:
    """Copy the synthetic files into a tree nested three levels (patient IDs in folder names,
    like real archives), names without extension, with `.dcm` and with a wrong `.jpg`; add
    non-DICOM files (text, HTML, a fake PDF, a tiny file)."""
    root.mkdir(parents=True, exist_ok=True)
    biggest = 0
    for index, path in enumerate(data.files):
        pid = path.parts[-4]   # synthetic layout: <PatientID>/<study>/<series>/<n>.dcm
        year = 2019 + index % 3
        folder = root / "archive" / str(year) / pid
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ("", ".dcm", ".jpg")[index % 3]
        target = folder / f"IMG{index:04d}{suffix}"
        shutil.copyfile(path, target)
        biggest = max(biggest, target.stat().st_size)
    others = {
        "README.txt": b"Scanned archive export. Do not delete.\n" * 20,
        "archive/index notes.html": b"<html><body>notes</body></html>\n" * 10,
        "archive/2019/report.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 8,
        "archive/2020/tiny.dcm": b"DICM",
    }
    for rel, content in others.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return TreeSpec(dicom_files=len(data.files), other_files=len(others),
                    patients=len(data.patients), studies=data.studies, max_file_size=biggest)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_SUBJECT_CN),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dicomguard Lab")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _nginx_conf(work: Path, address: str, port: int, root: Path, autoindex: bool,
                tls: tuple[Path, Path] | None) -> str:
    temp = work / "tmp"
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / sub).mkdir(parents=True, exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    ssl = ""
    if tls is not None:
        ssl = (f"    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};\n"
               "    ssl_protocols TLSv1.2 TLSv1.3;\n")
    return (
        f"{user}worker_processes 1;\n"
        f"pid {work}/nginx.pid;\n"
        f"error_log {work}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  types { text/html html; text/plain txt; application/pdf pdf; }\n"
        "  default_type application/octet-stream;\n"
        f"  log_format dicomguard '{_LOG_FORMAT}';\n"
        f"  access_log {work}/access.log dicomguard;\n"
        f"  client_body_temp_path {temp}/client;\n"
        f"  proxy_temp_path {temp}/proxy;\n"
        f"  fastcgi_temp_path {temp}/fastcgi;\n"
        f"  uwsgi_temp_path {temp}/uwsgi;\n"
        f"  scgi_temp_path {temp}/scgi;\n"
        "  sendfile off;\n"
        "  server_tokens on;\n"
        "  server {\n"
        f"    listen {address}:{port}{' ssl' if tls else ''};\n"
        f"{ssl}"
        f"    root {root};\n"
        "    index index.html;\n"
        f"    autoindex {'on' if autoindex else 'off'};\n"
        "  }\n"
        "}\n"
    )


def _spawn_nginx(launcher: _Launcher, state_dir: Path, name: str, address: str, port: int,
                 root: Path, *, autoindex: bool, tls: bool) -> WebServer:
    binary = nginx_binary()
    if binary is None:
        raise LabError("nginx not found (Debian package nginx)")
    work = state_dir / name
    work.mkdir(parents=True, exist_ok=True)
    pair = _self_signed(work) if tls else None
    conf = work / "nginx.conf"
    conf.write_text(_nginx_conf(work, _loopback(address), port, root, autoindex, pair))
    started = launcher.spawn(
        name, [binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf),
               "-g", "daemon off;"], ports=[(address, port)], cwd=work)
    return WebServer(name, "nginx", address, port, started.pid, tls=tls, root=str(root),
                     autoindex=autoindex, access_log=str(work / "access.log"))


def start_web_lab(state_dir: Path, *, base_address: str = DEFAULT_WEB_BASE, seed: int = 7,
                  timeout: float = 60.0, orthanc: bool = True) -> WebLab:
    """Start the four web servers (see the module docstring); returns once they answer.

    Raises LabError when nginx (or, with `orthanc`, Orthanc or the bind shim) is missing;
    on any failure what was started is stopped again."""
    import time

    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stop_lab(state_dir)
    base = ipaddress.IPv4Address(base_address)
    addresses = {name: _loopback(str(base + i)) for i, name in enumerate(WEB_NAMES)}
    ports = {"nginx-autoindex": NGINX_PORT, "nginx-plain": NGINX_PORT,
             "nginx-tls": NGINX_TLS_PORT, "orthanc-default": ORTHANC_REST_PORT}
    busy = [f"{addresses[n]}:{p}" for n, p in ports.items() if port_answers(addresses[n], p, 0.3)]
    if busy:
        raise LabError(f"web lab addresses already in use: {', '.join(busy)}")
    for leftover in ("data", "www", *WEB_NAMES):
        if (state_dir / leftover).is_dir():
            shutil.rmtree(state_dir / leftover)
    deadline = time.monotonic() + timeout
    launcher = _Launcher(state_dir)
    try:
        data = synthetic.generate(state_dir / "data", seed)
        tree_root = state_dir / "www" / "tree"
        tree = build_dicom_tree(tree_root, data)
        plain_root = state_dir / "www" / "plain"
        plain_root.mkdir(parents=True, exist_ok=True)
        (plain_root / "index.html").write_text(PLAIN_PAGE)
        servers = [
            _spawn_nginx(launcher, state_dir, "nginx-autoindex", addresses["nginx-autoindex"],
                         NGINX_PORT, tree_root, autoindex=True, tls=False),
            _spawn_nginx(launcher, state_dir, "nginx-plain", addresses["nginx-plain"],
                         NGINX_PORT, plain_root, autoindex=False, tls=False),
            _spawn_nginx(launcher, state_dir, "nginx-tls", addresses["nginx-tls"],
                         NGINX_TLS_PORT, plain_root, autoindex=False, tls=True),
        ]
        if orthanc:
            servers.append(_start_orthanc_default(launcher, state_dir,
                                                  addresses["orthanc-default"]))
        _wait_ready(launcher.started, deadline)
        for srv in servers:
            if srv.kind == "orthanc":
                url = f"http://{srv.address}:{srv.port}"
                _orthanc_wait_rest(url, DEFAULT_USER, deadline)
                _orthanc_load(url, data.files, DEFAULT_USER)
        return WebLab(str(state_dir), tuple(servers), tree, data)
    except BaseException:
        stop_lab(state_dir)
        raise


def _start_orthanc_default(launcher: _Launcher, state_dir: Path, address: str) -> WebServer:
    binary = shutil.which("Orthanc")
    if binary is None:
        raise LabError("Orthanc not found on PATH (Debian package orthanc)")
    try:
        shim = build_shim(state_dir / "shim")
    except ShimUnavailable as exc:
        raise LabError(str(exc)) from exc
    work = state_dir / "orthanc-default"
    work.mkdir(parents=True, exist_ok=True)
    config = _orthanc_config(work, name="Dicomguard Lab Default-Login PACS",
                             ae_title="DEFAULTPACS", locked=True, password=None, dicomweb=False)
    config["RegisteredUsers"] = {DEFAULT_USER[0]: DEFAULT_USER[1]}
    config["HttpPort"] = ORTHANC_REST_PORT
    config["DicomPort"] = ORTHANC_DICOM_PORT
    path = work / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    started = launcher.spawn(
        "orthanc-default", [binary, "--no-jobs", str(path)],
        ports=[(address, ORTHANC_REST_PORT), (address, ORTHANC_DICOM_PORT)],
        env=confined_env(dict(os.environ), shim, address), cwd=work)
    return WebServer("orthanc-default", "orthanc", address, ORTHANC_REST_PORT, started.pid,
                     username=DEFAULT_USER[0], password=DEFAULT_USER[1],
                     dicom_port=ORTHANC_DICOM_PORT)


def stop_web_lab(state_dir: Path) -> None:
    """Stop every web lab process started from state_dir (idempotent)."""
    stop_lab(Path(state_dir))


def missing_products(orthanc: bool = True) -> list[str]:
    """What the web lab needs and this machine lacks (for skip reasons; fatal under CI)."""
    missing = []
    if nginx_binary() is None:
        missing.append("nginx (Debian package nginx)")
    if orthanc and shutil.which("Orthanc") is None:
        missing.append("Orthanc (Debian package orthanc)")
    return missing


__all__ = [
    "DEFAULT_WEB_BASE", "AccessRecord", "TreeSpec", "WebLab", "WebServer", "build_dicom_tree",
    "in_ci", "missing_products", "read_access_log", "start_web_lab", "stop_web_lab",
]
