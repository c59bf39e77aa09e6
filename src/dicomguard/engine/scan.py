"""The scan orchestrator.

`scan_batch(targets, config)` is a plain function from a batch of targets and a configuration to
a list of results, with no global state: the CLI calls it for a whole scope, and a distributed
worker can call it for one batch. Inside, asyncio holds thousands of endpoints in flight;
every connection passes the Connector (scope guard, rate limit, per-host cap, timeouts).

Discovery and identification are one step for DICOM ports: the first A-ASSOCIATE-RQ is the
connection that finds the port open, so a closed port costs one refused connect and an open
one costs no extra round trip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dicomguard import checks
from dicomguard.engine.protocols import HANDLERS, protocol_for
from dicomguard.errors import OutOfScopeError
from dicomguard.models import Endpoint, Finding, Service, Status, Target
from dicomguard.net.connector import Connector, Guard
from dicomguard.probes import dicom as dicom_probe
from dicomguard.probes.ftp import FtpConfig
from dicomguard.probes.http import DEFAULT_HTTP_PORTS, HttpConfig
from dicomguard.probes.nfs import NfsConfig
from dicomguard.probes.smb import SmbConfig

# DICOM: 104, 11112 (IANA), 4242 (Orthanc), 2761/2762 (ISCL/TLS). Where images also leak: FTP 21,
# SMB 139/445, NFS 111/2049 (see engine/protocols.py for the port -> protocol map).
DICOM_PORTS: tuple[int, ...] = (104, 11112, 4242, 2761, 2762)
SHARE_PORTS: tuple[int, ...] = (21, 139, 445, 111, 2049)
DEFAULT_PORTS: tuple[int, ...] = DICOM_PORTS + SHARE_PORTS + DEFAULT_HTTP_PORTS


@dataclass(frozen=True, slots=True)
class ScanConfig:
    ports: tuple[int, ...] = DEFAULT_PORTS
    connect_timeout: float = 3.0
    rate: float = 500.0            # new connections per second, whole scan
    per_host: int = 2              # simultaneous connections per address
    max_in_flight: int = 1024      # endpoints probed at once
    endpoint_budget: float = 120.0  # hard ceiling on the time spent on one endpoint
    dicom: dicom_probe.DicomProbeConfig = field(default_factory=dicom_probe.DicomProbeConfig)
    ftp: FtpConfig = field(default_factory=FtpConfig)
    smb: SmbConfig = field(default_factory=SmbConfig)
    nfs: NfsConfig = field(default_factory=NfsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    port_protocols: Mapping[int, str] = field(default_factory=dict)   # --proto 4445=smb

    @property
    def intrusive(self) -> bool:
        """Tests that write to or pull from devices were enabled (they are opt-in per probe
        configuration; the CLI's --intrusive sets them all)."""
        return self.dicom.intrusive or self.ftp.intrusive


@dataclass(frozen=True, slots=True)
class EndpointResult:
    """What one endpoint gave: closed (no service), or a service with its findings."""

    endpoint: Endpoint
    open: bool
    service: Service | None = None
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    seconds: float = 0.0


class Observer(Protocol):
    """Progress hooks: the CLI implements them for the Rich progress bar and incremental saves."""

    def started(self, total: int | None) -> None:
        """total: endpoints to probe when known."""

    def endpoint_done(self, result: EndpointResult) -> None:
        """Called once per endpoint, in completion order."""


class NullObserver:
    def started(self, total: int | None) -> None:
        pass

    def endpoint_done(self, result: EndpointResult) -> None:
        pass


def endpoints_of(targets: Iterable[Target], ports: tuple[int, ...],
                 overrides: Mapping[int, str] | None = None) -> Iterator[Endpoint]:
    for target in targets:
        for port in (target.ports or ports):
            yield Endpoint(target.address, port, protocol_for(port, overrides), target.host)


async def probe_endpoint(endpoint: Endpoint, connector: Connector,
                         cfg: ScanConfig) -> EndpointResult:
    handler = HANDLERS[endpoint.protocol]
    budget = handler.budget(cfg)
    start = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            facts = await handler.probe(endpoint, connector, handler.config(cfg))
    except TimeoutError:
        return _failed(endpoint, cfg, f"endpoint budget of {budget:g} s exhausted",
                       time.monotonic() - start)
    except OutOfScopeError:
        raise
    except Exception as exc:  # a probe bug must not end the scan; reported as ERROR
        return _failed(endpoint, cfg, f"probe crashed: {type(exc).__name__}: {exc}",
                       time.monotonic() - start)
    seconds = time.monotonic() - start
    error = getattr(facts, "error", None)
    if handler.closed(facts):
        return EndpointResult(endpoint, False, error=error, seconds=seconds)
    try:
        service = handler.service(facts, endpoint)
        findings = tuple(handler.findings(facts, cfg, endpoint))
    except Exception as exc:  # summarising bug: the endpoint is still reported, as ERROR
        return _failed(endpoint, cfg, f"evaluation crashed: {type(exc).__name__}: {exc}",
                       seconds)
    return EndpointResult(endpoint, True, service, findings, error, seconds)


def _failed(endpoint: Endpoint, cfg: ScanConfig, reason: str, seconds: float) -> EndpointResult:
    """A probe that could not finish: every check is ERROR (never a silent pass)."""
    findings = tuple(
        Finding(c.meta.id, c.meta.title, endpoint, Status.ERROR, c.meta.severity, {},
                c.meta.intrusive, reason)
        for c in checks.for_protocol(endpoint.protocol)
        if cfg.intrusive or not c.meta.intrusive)
    service = Service(endpoint, None, None, {"error": reason})
    return EndpointResult(endpoint, True, service, findings, reason, seconds)


async def scan_async(targets: Iterable[Target], cfg: ScanConfig, *, guard: Guard | None,
                     observer: Observer | None = None, total: int | None = None,
                     connector: Connector | None = None) -> list[EndpointResult]:
    """Probe every (target, port); returns the results of open endpoints, in completion order.

    Cancellation (Ctrl-C) stops the scan: results already delivered to the observer are kept
    by the caller; pending probes are cancelled and their sockets closed.
    """
    observer = observer or NullObserver()
    connector = connector or Connector(guard, rate=cfg.rate, per_host=cfg.per_host,
                                       connect_timeout=cfg.connect_timeout)
    observer.started(total)
    results: list[EndpointResult] = []
    slots = asyncio.Semaphore(cfg.max_in_flight)
    tasks: set[asyncio.Task[EndpointResult]] = set()

    def done(task: asyncio.Task[EndpointResult]) -> None:
        tasks.discard(task)
        slots.release()
        if task.cancelled():
            return
        result = task.result()  # probe_endpoint never raises
        if result.open:
            results.append(result)
        observer.endpoint_done(result)

    try:
        for endpoint in endpoints_of(targets, cfg.ports, cfg.port_protocols):
            # Fail the whole scan before any packet when a target escaped the scope; the
            # connector checks again on every connection.
            connector.check_scope(endpoint.address, endpoint.port)
            await slots.acquire()
            task = asyncio.create_task(probe_endpoint(endpoint, connector, cfg))
            tasks.add(task)
            task.add_done_callback(done)
        while tasks:
            await asyncio.wait(set(tasks))
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return results


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (faster sockets), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def scan_batch(targets: Iterable[Target], cfg: ScanConfig, *, guard: Guard | None,
               observer: Observer | None = None, total: int | None = None
               ) -> list[EndpointResult]:
    """Synchronous entry point: one batch of targets, one configuration, a list of results."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(
            scan_async(targets, cfg, guard=guard, observer=observer, total=total))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

