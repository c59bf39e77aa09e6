"""NFS probe: what a server exports and to whom, from the portmapper and mountd, no mount.

    facts = await probe(Endpoint("10.0.0.5", 111, "nfs"), connector, NfsConfig())

One connection at a time, in this order (each through the Connector, each call bounded by
`rpc_timeout`, the whole probe by `time_budget`):

1. the portmapper/rpcbind (port 111): DUMP (v2, else rpcbind v3/v4) lists the registered RPC
   programs; mountd's TCP port comes from it (or from GETPORT when DUMP is refused);
2. mountd: EXPORT (procedure 5, version 3, else 1 or 2) lists every exported directory with
   its groups: who may mount it. A directory whose group list is empty, "*", "everyone" or a
   /0 network is world-exported: any host may mount it (`NfsExport.world`);
3. the NFS port (2049): NULL calls say which NFS versions are served.

Mounting is never attempted: the facts say what a client could mount. Export paths in
hospitals carry department and patient names, so they are shortened like folder paths
(first `path_levels` levels) unless `show_phi`.

Dispatch: the probe gives the same facts whether it is handed port 111 or 2049 (it finds the
other one itself), so one probe per host is enough.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from dicomguard.errors import (
    ConnectionRefused,
    ConnectivityError,
    DicomguardError,
    ProtocolError,
)
from dicomguard.models import Endpoint
from dicomguard.net import nfs as rpc_nfs
from dicomguard.net.connector import Connector
from dicomguard.net.nfs import ExportList, RpcMapping
from dicomguard.net.onc_rpc import NO_AUTH, RpcClient, RpcRejected, auth_sys, printable
from dicomguard.probes.share_walk import shorten

#: Group names meaning "any host" (Linux exportfs "*", Solaris/showmount "(everyone)", ...).
WORLD_GROUPS = frozenset({"*", "everyone", "(everyone)", "world", "*.*", "0.0.0.0"})


@dataclass(frozen=True, slots=True)
class NfsConfig:
    rpc_timeout: float = 5.0             # seconds for each RPC reply
    time_budget: float = 30.0            # seconds for the whole probe
    max_reply_bytes: int = 1 << 20       # one RPC reply, all fragments
    max_exports: int = 4096
    max_groups: int = 256                # groups kept per export
    max_registrations: int = 1024        # portmapper entries kept
    portmapper_port: int = rpc_nfs.PORTMAP_PORT
    nfs_port: int = rpc_nfs.NFS_PORT
    probe_nfs: bool = True               # NULL calls on the NFS port
    show_phi: bool = False               # full export paths
    path_levels: int = 2


@dataclass(frozen=True, slots=True)
class NfsExport:
    path: str                            # shortened unless show_phi
    groups: tuple[str, ...]              # who may mount it, as mountd says; empty: everyone
    world: bool                          # any host may mount it
    world_reason: str | None = None
    groups_truncated: bool = False


@dataclass(frozen=True, slots=True)
class NfsFacts:
    address: str
    portmapper_port: int
    portmapper: bool = False             # a portmapper/rpcbind answered
    portmapper_versions: tuple[int, ...] = ()
    registrations: tuple[RpcMapping, ...] = ()
    registrations_truncated: bool = False
    mountd_port: int | None = None
    mountd_version: int | None = None
    exports_listed: bool = False         # mountd answered EXPORT
    exports: tuple[NfsExport, ...] = ()
    exports_truncated: bool = False
    exports_refused: str | None = None   # a well-formed refusal of EXPORT
    nfs_port: int | None = None
    nfs_versions: tuple[int, ...] = ()   # versions whose NULL call succeeded
    paths_shortened: bool = True
    error: str | None = None             # what kept the export list from being read
    errors: tuple[str, ...] = ()         # every stage's failure, "stage: reason"
    seconds: float = 0.0

    @property
    def programs(self) -> tuple[str, ...]:
        return tuple(sorted({m.name for m in self.registrations}))

    @property
    def world_exports(self) -> tuple[NfsExport, ...]:
        return tuple(e for e in self.exports if e.world)

    @property
    def nfs_served(self) -> bool:
        return bool(self.nfs_versions) or any(
            m.program == rpc_nfs.NFS_PROGRAM for m in self.registrations)

    def mountable_by_anyone(self) -> list[str]:
        """What any client could mount: `mount -t nfs <address>:<path>` for each world
        export (paths shortened unless show_phi)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return [f"{host}:{e.path}" for e in self.world_exports]

    def summary(self) -> dict[str, Any]:
        """PHI-free facts for the store and the reports."""
        return {
            "portmapper": self.portmapper,
            "portmapper_versions": list(self.portmapper_versions),
            "programs": list(self.programs),
            "mountd_port": self.mountd_port,
            "mountd_version": self.mountd_version,
            "exports_listed": self.exports_listed,
            "exports": [{"path": e.path, "groups": list(e.groups), "world": e.world}
                        for e in self.exports],
            "exports_truncated": self.exports_truncated,
            "exports_refused": self.exports_refused,
            "world_exports": len(self.world_exports),
            "mountable_by_anyone": self.mountable_by_anyone(),
            "nfs_port": self.nfs_port,
            "nfs_versions": list(self.nfs_versions),
            "paths_shortened": self.paths_shortened,
            "error": self.error,
            "errors": list(self.errors),
            "seconds": round(self.seconds, 3),
        }


def world_reason(groups: tuple[str, ...]) -> str | None:
    """Why an export with these groups may be mounted by any host, or None."""
    if not groups:
        return "no client restriction (empty group list)"
    for group in groups:
        name = group.strip().lower()
        if name in WORLD_GROUPS:
            return f"group {group!r} matches every host"
        try:
            net = ipaddress.ip_network(name, strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            return f"network {group!r} contains every address"
    return None


@dataclass
class _State:
    address: str
    portmapper_port: int
    portmapper: bool = False
    versions: list[int] = field(default_factory=list)
    registrations: list[RpcMapping] = field(default_factory=list)
    registrations_truncated: bool = False
    mountd_port: int | None = None
    mountd_version: int | None = None
    exports: ExportList | None = None
    exports_refused: str | None = None
    nfs_port: int | None = None
    nfs_versions: list[int] = field(default_factory=list)
    error: str | None = None
    errors: list[str] = field(default_factory=list)

    def fail(self, stage: str, exc: BaseException | str, *, fatal: bool = True) -> None:
        text = f"{stage}: {_reason(exc)}"
        self.errors.append(text)
        if fatal and self.error is None:
            self.error = text


def _reason(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    if isinstance(exc, ConnectivityError):
        return exc.reason
    return printable(str(exc)) or type(exc).__name__


async def probe(endpoint: Endpoint, connector: Connector, cfg: NfsConfig) -> NfsFacts:
    """List what the NFS server at endpoint.address exports; never raises for what the peer
    does (errors land in the facts), bounded by cfg.time_budget."""
    start = time.monotonic()
    if endpoint.port == cfg.nfs_port:
        pm_port, nfs_port = cfg.portmapper_port, endpoint.port
    else:
        pm_port, nfs_port = endpoint.port, 0
    state = _State(endpoint.address, pm_port)
    try:
        async with asyncio.timeout(cfg.time_budget):
            await _portmapper(state, connector, cfg)
            if state.mountd_port:
                await _mountd(state, connector, cfg)
            if cfg.probe_nfs:
                await _nfs(state, connector, cfg, nfs_port or _registered_nfs_port(state, cfg))
    except TimeoutError:
        state.fail("probe", f"time budget of {cfg.time_budget:g} s exhausted")
    except DicomguardError as exc:  # e.g. the scope guard: reported, never raised
        state.fail("probe", exc)
    return _freeze(state, cfg, time.monotonic() - start)


def _client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str,
            port: int, cfg: NfsConfig) -> RpcClient:
    return RpcClient(reader, writer, address=address, port=port, timeout=cfg.rpc_timeout,
                     max_reply=cfg.max_reply_bytes, protocol="nfs")


async def _portmapper(state: _State, connector: Connector, cfg: NfsConfig) -> None:
    address, port = state.address, state.portmapper_port
    try:
        async with connector.open(address, port, "rpc") as (reader, writer):
            client = _client(reader, writer, address, port, cfg)
            dumped = False
            for version in (2, 4, 3):
                try:
                    if version == 2:
                        regs, cut = await rpc_nfs.pmap_dump(
                            client, max_entries=cfg.max_registrations)
                    else:
                        regs, cut = await rpc_nfs.rpcb_dump(
                            client, version, max_entries=cfg.max_registrations)
                except RpcRejected as exc:
                    if exc.kind == "program version mismatch":
                        state.portmapper = True   # the portmapper, other versions
                    state.fail(f"portmapper DUMP v{version}", exc, fatal=False)
                    if exc.kind == "program unavailable":
                        break                     # an RPC server, not a portmapper
                    continue
                state.portmapper = True
                state.versions.append(version)
                state.registrations, state.registrations_truncated = regs, cut
                dumped = True
                break
            state.mountd_port, state.mountd_version = _registered_mountd(state.registrations)
            if not dumped and state.portmapper:
                await _getport_mountd(state, client)
    except ConnectionRefused as exc:  # no portmapper: a fact (NFSv4-only servers), no error
        state.fail("portmapper", exc, fatal=False)
        return
    except (ConnectivityError, ProtocolError) as exc:
        state.fail("portmapper", exc)
        return
    if state.registrations:
        state.versions = sorted(set(state.versions) | {
            m.version for m in state.registrations if m.program == rpc_nfs.PORTMAP_PROGRAM})
    if state.mountd_port is None:
        state.fail("portmapper", "mountd is not registered over TCP", fatal=False)


async def _getport_mountd(state: _State, client: RpcClient) -> None:
    for version in (3, 1, 2):
        try:
            port = await rpc_nfs.pmap_getport(client, rpc_nfs.MOUNT_PROGRAM, version)
        except RpcRejected as exc:
            state.fail("portmapper GETPORT", exc, fatal=False)
            return
        state.versions = sorted(set(state.versions) | {2})
        if port:
            state.mountd_port, state.mountd_version = port, version
            return


def _registered_mountd(regs: list[RpcMapping]) -> tuple[int | None, int | None]:
    tcp = {m.version: m.port for m in regs
           if m.program == rpc_nfs.MOUNT_PROGRAM and m.netid in ("tcp", "tcp6") and m.port}
    for version in (3, 1, 2):
        if tcp.get(version):
            return tcp[version], version
    return None, None


def _registered_nfs_port(state: _State, cfg: NfsConfig) -> int:
    ports = sorted({m.port for m in state.registrations if m.program == rpc_nfs.NFS_PROGRAM
                    and m.netid in ("tcp", "tcp6") and m.port})
    return ports[0] if ports else cfg.nfs_port


async def _mountd(state: _State, connector: Connector, cfg: NfsConfig) -> None:
    address, port = state.address, state.mountd_port or 0
    version = state.mountd_version or 3
    tried: set[int] = set()
    cred = NO_AUTH
    try:
        async with connector.open(address, port, "rpc") as (reader, writer):
            client = _client(reader, writer, address, port, cfg)
            while True:
                tried.add(version)
                try:
                    state.exports = await rpc_nfs.mount_export(
                        client, version, max_exports=cfg.max_exports,
                        max_groups=cfg.max_groups, cred=cred)
                    state.mountd_version = version
                    return
                except RpcRejected as exc:
                    if exc.kind == "authentication error" and cred is NO_AUTH:
                        cred = auth_sys()  # some servers want AUTH_SYS even for EXPORT
                        tried.discard(version)
                        continue
                    if exc.kind == "program version mismatch" and exc.low is not None:
                        others = [v for v in (3, 1, 2) if v not in tried
                                  and exc.low <= v <= (exc.high or v)]
                        if others:
                            version = others[0]
                            continue
                    state.exports_refused = _reason(exc)
                    return
    except (ConnectivityError, ProtocolError) as exc:
        state.fail("mountd", exc)


async def _nfs(state: _State, connector: Connector, cfg: NfsConfig, port: int) -> None:
    address = state.address
    try:
        async with connector.open(address, port, "rpc") as (reader, writer):
            client = _client(reader, writer, address, port, cfg)
            state.nfs_port = port
            pending = [3, 4]
            tried: set[int] = set()
            while pending:
                version = pending.pop(0)
                tried.add(version)
                try:
                    await rpc_nfs.nfs_null(client, version)
                    state.nfs_versions.append(version)
                except RpcRejected as exc:
                    if exc.kind != "program version mismatch" or exc.low is None:
                        state.fail("nfs NULL", exc, fatal=False)
                        return
                    high = exc.high if exc.high is not None else exc.low
                    pending.extend(v for v in (2, 3, 4)
                                   if exc.low <= v <= high and v not in tried
                                   and v not in pending)
    except (ConnectivityError, ProtocolError) as exc:
        if not state.nfs_versions:
            state.nfs_port = None
        state.fail("nfs", exc, fatal=False)
    state.nfs_versions.sort()


def _freeze(state: _State, cfg: NfsConfig, seconds: float) -> NfsFacts:
    exports: list[NfsExport] = []
    listing = state.exports
    if listing is not None:
        for entry in listing.entries:
            path = printable(entry.path)
            if not cfg.show_phi:
                path = shorten(path, cfg.path_levels)
            groups = tuple(printable(g) for g in entry.groups)
            reason = world_reason(entry.groups)
            exports.append(NfsExport(path, groups, reason is not None, reason,
                                     entry.groups_truncated))
    return NfsFacts(
        address=state.address,
        portmapper_port=state.portmapper_port,
        portmapper=state.portmapper,
        portmapper_versions=tuple(sorted(set(state.versions))),
        registrations=tuple(state.registrations),
        registrations_truncated=state.registrations_truncated,
        mountd_port=state.mountd_port,
        mountd_version=state.mountd_version,
        exports_listed=listing is not None,
        exports=tuple(exports),
        exports_truncated=bool(listing and listing.truncated),
        exports_refused=state.exports_refused,
        nfs_port=state.nfs_port,
        nfs_versions=tuple(state.nfs_versions),
        paths_shortened=not cfg.show_phi,
        error=state.error if listing is None and state.exports_refused is None else None,
        errors=tuple(state.errors),
        seconds=seconds,
    )
