"""The command line: wiring and exit codes only.

Exit codes: 0 nothing failed (or only INFO), 1 low, 2 medium, 3 high, 4 critical (worst failed
severity, see models.exit_code_for); 64 usage error (bad targets, bad options); 70 the tool
itself failed; 130 interrupted before anything was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dicomguard import __version__
from dicomguard.audit import command as audit_command
from dicomguard.deid import command as deid_command
from dicomguard.errors import DicomguardError, ScopeError
from dicomguard.models import Finding, ScanResult, Service, Target, exit_code_for

EXIT_USAGE = 64
EXIT_SOFTWARE = 70
EXIT_INTERRUPTED = 130

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Find where medical images leak, prove what leaks without leaking it, "
                       "and help fix it. Only for networks and data you are authorised to assess.")
lab_app = typer.Typer(no_args_is_help=True, help="The built-in demo hospital on loopback.")
app.add_typer(lab_app, name="lab")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _parse_ports(values: list[str]) -> tuple[int, ...]:
    ports: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                lo, _, hi = part.partition("-")
                if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                    raise _fail(f"bad port range {part!r}")
                ports.extend(range(int(lo), int(hi) + 1))
            elif part.isdigit():
                ports.append(int(part))
            else:
                raise _fail(f"bad port {part!r}")
    for p in ports:
        if not 0 < p < 65536:
            raise _fail(f"port {p} out of range")
    return tuple(dict.fromkeys(ports))


def _parse_protocols(values: list[str]) -> dict[int, str]:
    from dicomguard.engine.protocols import HANDLERS

    out: dict[int, str] = {}
    for value in values:
        port, sep, name = value.partition("=")
        name = name.strip().lower()
        if not sep or not port.strip().isdigit() or not 0 < int(port) < 65536:
            raise _fail(f"--proto {value!r}: expected PORT=PROTOCOL")
        if name not in HANDLERS:
            raise _fail(f"--proto {value!r}: protocol must be one of {', '.join(HANDLERS)}")
        out[int(port)] = name
    return out


class _CliObserver:
    """Progress bar plus incremental saving, so Ctrl-C keeps what was found."""

    def __init__(self, progress: Progress | None, store: Any, scan_id: str) -> None:
        self.progress = progress
        self.task = progress.add_task("probing", total=None) if progress else None
        self.store = store
        self.scan_id = scan_id
        self.services: list[Service] = []
        self.findings: list[Finding] = []
        self.done = 0
        self.open = 0
        self._pending_services: list[Service] = []
        self._pending_findings: list[Finding] = []
        self._last_flush = time.monotonic()

    def started(self, total: int | None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=total)

    def endpoint_done(self, result: Any) -> None:
        self.done += 1
        if result.service is not None:
            self.open += 1
            self.services.append(result.service)
            self._pending_services.append(result.service)
        self.findings.extend(result.findings)
        self._pending_findings.extend(result.findings)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=1,
                                 description=f"probing ({self.open} open)")
        if time.monotonic() - self._last_flush > 2.0 or len(self._pending_findings) > 500:
            self.flush()

    def flush(self) -> None:
        if self.store is not None and (self._pending_services or self._pending_findings):
            self.store.add_services(self.scan_id, self._pending_services)
            self.store.add_findings(self.scan_id, self._pending_findings)
        self._pending_services, self._pending_findings = [], []
        self._last_flush = time.monotonic()


def _new_scan_id() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def scan_config(*, ports: tuple[int, ...], rate: float, per_host: int,
                connect_timeout: float, read_timeout: float, known_aets: tuple[str, ...] = (),
                guess_aet: bool = False, max_records: int = 10_000, intrusive: bool = False,
                show_phi: bool = False, tls: bool = True, quick: bool = False,
                max_files: int = 5_000, max_depth: int = 8, sample_bytes: int = 65_536,
                share_time: float = 300.0, try_default_credentials: bool = False,
                port_protocols: dict[int, str] | None = None) -> Any:
    """The ScanConfig for the command line's options (one place for scan and demo)."""
    from dicomguard.audit.runner import AuditContext
    from dicomguard.engine.scan import ScanConfig
    from dicomguard.probes.dicom import DicomProbeConfig
    from dicomguard.probes.ftp import FtpConfig
    from dicomguard.probes.http import HttpConfig
    from dicomguard.probes.nfs import NfsConfig
    from dicomguard.probes.share_walk import ShareLimits
    from dicomguard.probes.smb import SmbConfig

    salt = secrets.token_bytes(16)   # one salt per scan: patients counted alike everywhere
    dicom = DicomProbeConfig(read_timeout=read_timeout, known_aets=known_aets,
                             guess_aet=guess_aet, max_records=max_records, intrusive=intrusive,
                             show_phi=show_phi, tls=tls and not quick, query=not quick,
                             negotiate_catalogue=not quick, salt=salt)
    limits = ShareLimits(max_depth=max_depth, max_files=max_files, sample_bytes=sample_bytes,
                         time_budget=share_time, show_phi=show_phi)
    audit = AuditContext(salt=salt, show_phi=show_phi)
    return ScanConfig(
        ports=ports, connect_timeout=connect_timeout, rate=rate, per_host=per_host,
        dicom=dicom,
        ftp=FtpConfig(timeout=read_timeout * 2, limits=limits, show_phi=show_phi,
                      intrusive=intrusive, audit=audit),
        smb=SmbConfig(timeout=read_timeout, budget=share_time + 60, limits=limits, audit=audit),
        nfs=NfsConfig(rpc_timeout=read_timeout, show_phi=show_phi),
        http=HttpConfig(timeout=read_timeout, budget=share_time + 60, limits=limits,
                        show_phi=show_phi, salt=salt,
                        try_default_credentials=try_default_credentials),
        port_protocols=dict(port_protocols or {}))


def run_scan(targets: Iterable[Target], specs: tuple[str, ...], scope: Any, *, cfg: Any,
             db: str | None, json_path: Path | None, progress: bool, total: int | None,
             workers: int = 1) -> ScanResult:
    """Run a scan to completion or Ctrl-C, saving as it goes; returns what was found."""
    from dicomguard.engine.scan import new_event_loop, scan_async
    from dicomguard.store.db import Store

    probe_cfg = cfg.dicom
    ports, rate, per_host = cfg.ports, cfg.rate, cfg.per_host
    connect_timeout = cfg.connect_timeout
    scan_id = _new_scan_id()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    options = {
        "ports": list(ports), "rate": rate, "per_host": per_host,
        "connect_timeout": connect_timeout, "read_timeout": probe_cfg.read_timeout,
        "intrusive": probe_cfg.intrusive, "show_phi": probe_cfg.show_phi,
        "max_records": probe_cfg.max_records, "guess_aet": probe_cfg.guess_aet,
        "known_aets": list(probe_cfg.known_aets), "tls": probe_cfg.tls,
        "max_files": cfg.ftp.limits.max_files, "max_depth": cfg.ftp.limits.max_depth,
        "sample_bytes": cfg.ftp.limits.sample_bytes, "workers": workers,
        "try_default_credentials": cfg.http.try_default_credentials,
    }
    store = Store(db) if db != "none" else None
    if store is not None:
        store.begin_scan(scan_id, started_at=started, targets=list(specs), options=options)
    interrupted = False
    t0 = time.monotonic()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, transient=True) if progress else None
    observer = _CliObserver(bar, store, scan_id)
    if workers > 1:
        from dicomguard.engine.workers import scan_parallel

        if bar is not None:
            bar.start()
        try:
            scan_parallel(targets, cfg, guard=scope, workers=workers, observer=observer,
                          total=total)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if bar is not None:
                bar.stop()
    else:
        loop = new_event_loop()
        try:
            main = loop.create_task(scan_async(targets, cfg, guard=scope, observer=observer,
                                               total=total))
            with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix loops
                loop.add_signal_handler(signal.SIGINT, main.cancel)
            if bar is not None:
                bar.start()
            try:
                loop.run_until_complete(main)
            except asyncio.CancelledError:
                interrupted = True
            finally:
                if bar is not None:
                    bar.stop()
        finally:
            loop.close()
    observer.flush()
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    stats = {"endpoints": total, "endpoints_probed": observer.done, "open_endpoints": observer.open,
             "seconds": round(time.monotonic() - t0, 3)}
    result = ScanResult(scan_id, started, finished, specs, options, tuple(observer.services),
                        tuple(observer.findings), interrupted, stats)
    if store is not None:
        store.finish_scan(scan_id, interrupted=interrupted, finished_at=finished, stats=stats)
        store.close()
    if json_path is not None:
        from dicomguard.report.json_report import write_json
        write_json(result, json_path)
    return result


@app.command()
def scan(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Targets: addresses, CIDR, ranges (10.0.0.1-50), names, host:port")] = None,
    input_list: Annotated[list[Path] | None, typer.Option(
        "-iL", "--input-list", help="File of targets, one or more per line")] = None,
    from_nmap: Annotated[list[Path] | None, typer.Option(
        "--from-nmap", help="nmap -oX (or -oG) output: up hosts and their open ports")] = None,
    from_masscan: Annotated[list[Path] | None, typer.Option(
        "--from-masscan", help="masscan -oL/-oJ/-oX output")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude")] = None,
    exclude_file: Annotated[list[Path] | None, typer.Option("--exclude-file")] = None,
    allow_large: Annotated[bool, typer.Option(
        "--allow-large", help="Allow more than 65,536 addresses")] = False,
    ports: Annotated[list[str] | None, typer.Option(
        "--ports", "-p", help="Extra ports, added to the imaging defaults (e.g. 5104,11113)")
    ] = None,
    proto: Annotated[list[str] | None, typer.Option(
        "--proto", help="Protocol of a non-standard port, PORT=PROTOCOL (dicom, ftp, smb, nfs, "
                        "http), e.g. --proto 4445=smb --proto 8888=http")] = None,
    only_ports: Annotated[str | None, typer.Option(
        "--only-ports", help="Replace the default port list")] = None,
    aet: Annotated[list[str] | None, typer.Option(
        "--aet", help="Called AE title(s) the site uses, tried when an unknown one is refused")
    ] = None,
    guess_aet: Annotated[bool, typer.Option(
        "--guess-aet", help="Also try a short list of vendor default AE titles (one each)")
    ] = False,
    max_records: Annotated[int, typer.Option(
        "--max-records", help="Stop C-FIND after this many records (C-CANCEL)")] = 10_000,
    try_default_credentials: Annotated[bool, typer.Option(
        "--try-default-credentials", help="Try each identified product's documented default "
                                          "login once (intrusive; never a dictionary)")] = False,
    intrusive: Annotated[bool, typer.Option(
        "--intrusive", help="C-STORE a labelled test instance, C-MOVE to a made-up AE, C-GET "
                            "one instance (discarded). Writes to the device.")] = False,
    show_phi: Annotated[bool, typer.Option(
        "--show-phi", help="Show and store a few raw patient values as evidence")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here")
                        ] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="Database URL (default: SQLite in the user data dir; 'none' to skip)")
    ] = None,
    rate: Annotated[float, typer.Option(
        "--rate", help="New connections per second for the whole scan (0: no limit)")] = 200.0,
    per_host: Annotated[int, typer.Option("--per-host", help="Connections per host at once")
                        ] = 2,
    connect_timeout: Annotated[float, typer.Option("--connect-timeout")] = 3.0,
    read_timeout: Annotated[float, typer.Option("--read-timeout")] = 5.0,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="Skip TLS handshakes")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Association + C-ECHO + fingerprint + release only: no SOP class "
                        "catalogue, no C-FIND, no TLS (discovery sweeps of large ranges)")
    ] = False,
    show_pass: Annotated[bool, typer.Option("--show-pass", help="List passed checks too")
                         ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    max_files: Annotated[int, typer.Option(
        "--max-files", help="Files sampled per share / FTP server / listing")] = 5_000,
    max_depth: Annotated[int, typer.Option("--max-depth", help="Folder depth walked")] = 8,
    sample_bytes: Annotated[int, typer.Option(
        "--sample-bytes", help="Bytes read from the start of each remote file")] = 65_536,
    workers: Annotated[int, typer.Option(
        "--workers", help="Worker processes (hosts are split between them; per-host cap "
                          "and total rate unchanged)")] = 1,
) -> None:
    """Scan targets for exposed DICOM services and prove what they leak."""
    from dicomguard.engine.scan import DEFAULT_PORTS
    from dicomguard.scope import build_scope

    specs = list(targets or [])
    if not (specs or input_list or from_nmap or from_masscan):
        raise _fail("no targets: give addresses, -iL FILE, --from-nmap or --from-masscan")
    try:
        scope = build_scope(specs, exclude=exclude or (), target_files=input_list or (),
                            exclude_files=exclude_file or (), nmap_xml=from_nmap or (),
                            masscan=from_masscan or (), allow_large=allow_large)
    except ScopeError as exc:
        raise _fail(str(exc)) from exc
    overrides = _parse_protocols(proto or [])
    port_list = _parse_ports([only_ports]) if only_ports else tuple(
        dict.fromkeys(DEFAULT_PORTS + _parse_ports(ports or []) + tuple(overrides)))
    for title in aet or ():
        if not (0 < len(title.strip()) <= 16 and title.isprintable() and "\\" not in title):
            raise _fail(f"--aet {title!r}: an AE title has 1 to 16 printable characters")
    if workers < 1:
        raise _fail("--workers must be >= 1")
    if per_host < 1 or rate < 0 or connect_timeout <= 0 or read_timeout <= 0:
        raise _fail("--per-host must be >= 1; --rate >= 0; timeouts > 0")
    if max_files < 1 or max_depth < 0 or sample_bytes < 132:
        raise _fail("--max-files must be >= 1, --max-depth >= 0, --sample-bytes >= 132")
    cfg = scan_config(ports=port_list, rate=rate, per_host=per_host,
                      connect_timeout=connect_timeout, read_timeout=read_timeout,
                      known_aets=tuple(aet or ()), guess_aet=guess_aet, max_records=max_records,
                      intrusive=intrusive, show_phi=show_phi, tls=not no_tls, quick=quick,
                      max_files=max_files, max_depth=max_depth, sample_bytes=sample_bytes,
                      try_default_credentials=try_default_credentials,
                      port_protocols=overrides)
    err.print(f"dicomguard {__version__}: scope {scope.describe()}; ports "
              f"{','.join(map(str, port_list))}"
              + ("; [bold yellow]INTRUSIVE tests enabled[/]" if intrusive else "")
              + ("; [bold yellow]default credentials will be tried once each[/]"
                 if try_default_credentials else ""))
    all_specs = tuple(specs) + tuple(f"-iL {p}" for p in input_list or ()) + tuple(
        f"--from-nmap {p}" for p in from_nmap or ()) + tuple(
        f"--from-masscan {p}" for p in from_masscan or ())
    total = _endpoint_total(scope, port_list)
    try:
        result = run_scan(scope.targets(), all_specs, scope, cfg=cfg, db=db,
                          json_path=json_out, progress=not no_progress, total=total,
                          workers=workers)
    except DicomguardError as exc:
        raise _fail(str(exc), EXIT_SOFTWARE) from exc
    _print_result(result, show_pass=show_pass, json_out=json_out)
    raise typer.Exit(_exit_code(result))


def _endpoint_total(scope: Any, ports: tuple[int, ...]) -> int:
    return sum(len(t.ports or ports) for t in scope.targets())


def _exit_code(result: ScanResult) -> int:
    code = exit_code_for(list(result.findings))
    if result.interrupted and not result.findings:
        return EXIT_INTERRUPTED
    return code


def _print_result(result: ScanResult, *, show_pass: bool, json_out: Path | None) -> None:
    from dicomguard.report.console import render_scan

    render_scan(console, result, show_pass=show_pass)
    if result.interrupted:
        err.print("[yellow]interrupted: the results above are what was found before Ctrl-C[/]")
    err.print(f"scan id {result.scan_id}" + (f"; JSON report: {json_out}" if json_out else ""))


@app.command("checks")
def list_checks() -> None:
    """The catalogue of checks: ID, severity, title."""
    from dicomguard import checks as registry

    table = Table(title="dicomguard checks")
    for col in ("ID", "Severity", "Protocol", "Title", "Intrusive"):
        table.add_column(col)
    for c in registry.CHECKS:
        table.add_row(c.meta.id, c.meta.severity.label(), c.meta.protocol, c.meta.title,
                      "yes" if c.meta.intrusive else "")
    console.print(table)


@app.command("scans")
def list_scans(
    db: Annotated[str | None, typer.Option("--db")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
) -> None:
    """Earlier scans from the local database."""
    from dicomguard.store.db import Store

    with Store(db) as store:
        rows = store.list_scans(limit)
    table = Table(title="scans")
    for col in ("Scan ID", "Started", "State", "Targets", "Services", "Failed", "Worst"):
        table.add_column(col)
    for s in rows:
        worst = s.counts.worst_severity
        table.add_row(s.scan_id, s.started_at, s.state, " ".join(s.targets)[:40],
                      str(s.services), str(s.counts.by_status.get("fail", 0)),
                      worst.label() if worst is not None else "-")
    console.print(table)


@app.command("show")
def show_scan(
    scan_id: Annotated[str, typer.Argument(help="Scan ID or a unique prefix")],
    db: Annotated[str | None, typer.Option("--db")] = None,
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
    show_pass: Annotated[bool, typer.Option("--show-pass")] = False,
) -> None:
    """Show an earlier scan from the local database."""
    from dicomguard.store.db import Store

    try:
        with Store(db) as store:
            result = store.load_scan(scan_id)
    except DicomguardError as exc:
        raise _fail(str(exc)) from exc
    if json_out is not None:
        from dicomguard.report.json_report import write_json
        write_json(result, json_out)
    _print_result(result, show_pass=show_pass, json_out=json_out)
    raise typer.Exit(_exit_code(result))


def _default_lab_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_data_dir("dicomguard")) / "lab"


LabDir = Annotated[Path | None, typer.Option("--state-dir", help="Where the lab keeps its state")]
LabBase = Annotated[str, typer.Option(
    "--base-address", help="First loopback address of the lab (127.0.0.0/8 only)")]


def _start_lab(state_dir: Path, base_address: str, *, nfs: bool = True) -> Any:
    from dicomguard.lab.hospital import start_hospital

    try:
        return start_hospital(state_dir, base_address=base_address, nfs=nfs)
    except DicomguardError as exc:
        raise _fail(f"lab: {exc}", EXIT_SOFTWARE) from exc


@lab_app.command("up")
def lab_up(state_dir: LabDir = None, base_address: LabBase = "127.0.0.10",
           no_nfs: Annotated[bool, typer.Option("--no-nfs", help="Leave NFS out")] = False,
           ) -> None:
    """Start the built-in lab (synthetic hospital on loopback) in the background."""
    _print_hospital(_start_lab(state_dir or _default_lab_dir(), base_address, nfs=not no_nfs))


@lab_app.command("down")
def lab_down(state_dir: LabDir = None) -> None:
    """Stop the built-in lab."""
    from dicomguard.lab.hospital import stop_hospital

    stop_hospital(state_dir or _default_lab_dir())
    err.print("lab stopped")


@lab_app.command("status")
def lab_status_cmd(state_dir: LabDir = None) -> None:
    """Which lab services run and answer."""
    from dicomguard.lab.hospital import hospital_endpoints
    from dicomguard.lab.servers import port_answers

    table = Table(title="lab")
    rows = hospital_endpoints(state_dir or _default_lab_dir())
    for col in ("Service", "Endpoint", "Protocol", "Answering"):
        table.add_column(col)
    answering = 0
    for e in rows:
        ok = e.name != "closed" and port_answers(e.address, e.port, 0.5)
        answering += ok
        table.add_row(e.name, f"{e.address}:{e.port}", e.protocol, "yes" if ok else "no")
    console.print(table)
    if not answering:
        err.print("the lab is not running (dicomguard lab up)")


def _print_hospital(hospital: Any) -> None:
    table = Table(title="dicomguard lab: a synthetic hospital on loopback")
    for col in ("Service", "Endpoint", "Protocol", "What it is"):
        table.add_column(col)
    for e in hospital.endpoints:
        table.add_row(e.name, f"{e.address}:{e.port}", e.protocol, e.role)
    err.print(table)
    for name, reason in hospital.skipped:
        err.print(f"[yellow]not started[/]: {name}: {reason}")


@app.command()
def demo(
    state_dir: LabDir = None,
    base_address: LabBase = "127.0.0.10",
    json_out: Annotated[Path, typer.Option("--json")] = Path("dicomguard-demo.json"),
    keep_lab: Annotated[bool, typer.Option("--keep-lab", help="Leave the lab running")] = False,
    db: Annotated[str | None, typer.Option("--db")] = None,
) -> None:
    """Start the built-in lab, scan it, print the findings and where the JSON report is."""
    from dicomguard.lab.hospital import stop_hospital
    from dicomguard.scope import build_scope

    lab_dir = state_dir or _default_lab_dir()
    err.print("[bold]dicomguard demo[/]: starting the built-in lab on loopback ...")
    hospital = _start_lab(lab_dir, base_address)
    try:
        _print_hospital(hospital)
        # Every lab endpoint, hostile and closed ones included: they must not show up.
        specs = [f"{e.address}:{e.port}" for e in hospital.endpoints]
        scope = build_scope(specs)
        known = tuple(dict.fromkeys(s.ae_title for s in hospital.dicom.services if s.ae_title))
        ports = tuple(sorted({e.port for e in hospital.endpoints}))
        cfg = scan_config(ports=ports, rate=200.0, per_host=2, connect_timeout=2.0,
                          read_timeout=3.0, known_aets=known,
                          port_protocols=hospital.port_protocols())
        total = _endpoint_total(scope, ports)
        result = run_scan(scope.targets(), tuple(specs), scope, cfg=cfg, db=db,
                          json_path=json_out, progress=True, total=total)
    finally:
        if not keep_lab:
            stop_hospital(lab_dir)
    _print_result(result, show_pass=False, json_out=json_out)
    err.print(f"[bold]JSON report:[/] {json_out.resolve()}")
    raise typer.Exit(_exit_code(result))


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"dicomguard {__version__}")


# Commands that live beside their feature: each module's register(app) adds its commands.
audit_command.register(app)
deid_command.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a scan
        err.print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
