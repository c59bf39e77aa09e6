"""The SMB probe: network I/O only, returns `SmbFacts`.

What it does to an endpoint, in order (one connection at a time, each bounded in time):

1. An SMB1-only NEGOTIATE (raw): is SMB1 still enabled, with which dialect, signing required?
2. A multi-protocol NEGOTIATE (raw): does the server answer in SMB2, does it require signing?
   A peer that answers neither in SMB stops the probe here (`error`): nothing else is tried.
3. impacket, null session (empty user, empty password): accepted? Share enumeration through
   SRVSVC NetrShareEnum (guest as a fallback), then for each disk share: tree connect and a
   listing of its root (readable by the null session?).
4. smbprotocol: SMB2/3 negotiate (highest dialect), guest session ("guest", empty password):
   accepted, mapped to guest, usable? Each disk share: readable by guest? Readable shares
   are walked and sampled with `walk_and_sample` (bounded by the ShareLimits, shared by all
   shares of the endpoint: files, bytes and time budgets are for the endpoint, not per share).
5. impacket again for shares only the null session can read.

On the NetBIOS session service (139, or any port in `netbios_ports`) only steps 1 and 2 run
(after a NetBIOS SESSION REQUEST): sessions and shares are assessed on 445, where the
libraries speak direct TCP. The facts say so (`sessions_assessed=False` with the reason).

Nothing is written; files are opened read-only and only their first `sample_bytes` are read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from dicomguard.audit.runner import AuditContext
from dicomguard.audit.summary import AuditSummary
from dicomguard.errors import ConnectivityError, DicomguardError, OutOfScopeError, ProtocolError
from dicomguard.models import Endpoint
from dicomguard.net import smb as smbnet
from dicomguard.net.connector import Connector
from dicomguard.probes.share_walk import ShareLimits, walk_and_sample

NETBIOS_PORT = 139
T = TypeVar("T")

#: Attributes whose presence makes the patients of a sample identifiable.
IDENTIFYING = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "OtherPatientNames",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MedicalRecordLocator",
})


@dataclass(frozen=True, slots=True)
class SmbConfig:
    timeout: float = 5.0                 # each network operation (connect, negotiate, request)
    budget: float = 600.0                # the whole probe of one endpoint, walks included
    limits: ShareLimits = field(default_factory=ShareLimits)
    max_shares: int = 32                 # disk shares checked for access
    walk: bool = True                    # walk and sample readable shares
    try_null: bool = True
    try_guest: bool = True
    netbios_ports: frozenset[int] = frozenset({NETBIOS_PORT})
    extra_shares: tuple[str, ...] = ()   # names to try too (when enumeration is refused)
    audit: AuditContext | None = field(default=None, compare=False)  # shared salt, if given

    @property
    def show_phi(self) -> bool:
        return self.limits.show_phi


@dataclass(frozen=True, slots=True)
class SmbSession:
    identity: str                        # "null" or "guest"
    accepted: bool
    usable: bool
    as_guest: bool | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SmbShare:
    name: str                            # share names are not PHI; folder paths inside are
    kind: str                            # "disk", "ipc", "printer", "device", "other"
    hidden: bool = False
    readable_by: tuple[str, ...] = ()    # identities that listed its root
    walked_as: str | None = None
    walk: Mapping[str, Any] | None = None   # WalkResult.facts() + phi_files, max_read_bytes
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SmbFacts:
    endpoint: Endpoint
    speaks_smb: bool = False
    transport: str = "direct"            # "direct" (445) or "netbios" (139)
    smb1_enabled: bool | None = None
    smb1_dialect: str | None = None
    smb1_signing_required: bool | None = None
    smb1_detail: str = ""
    smb2: bool | None = None
    smb2_dialect: str | None = None      # highest negotiated by smbprotocol, e.g. "3.1.1"
    smb2_signing_required: bool | None = None
    sessions_assessed: bool = False
    sessions: tuple[SmbSession, ...] = ()
    shares_enumerated: bool = False
    share_enum_error: str | None = None
    shares: tuple[SmbShare, ...] = ()
    totals: Mapping[str, Any] = field(default_factory=dict)   # across walked shares
    limits: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None             # the probe could not talk SMB at all
    errors: tuple[str, ...] = ()         # steps that failed (the rest went on)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def signing_required(self) -> bool | None:
        """Is every enabled dialect family signing-required? None when unknown."""
        values = []
        if self.smb2:
            values.append(self.smb2_signing_required)
        if self.smb1_enabled:
            values.append(self.smb1_signing_required)
        if not values or any(v is None for v in values):
            return None
        return all(bool(v) for v in values)

    def session(self, identity: str) -> SmbSession | None:
        return next((s for s in self.sessions if s.identity == identity), None)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def op(self, timeout: float) -> float:
        left = self.left()
        if left <= 0:
            raise TimeoutError("probe budget spent")
        return min(timeout, left)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectivityError):
        return f"{type(exc).__name__}: {exc.reason}"
    if isinstance(exc, DicomguardError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return smbnet.library_error(exc)


async def probe(endpoint: Endpoint, connector: Connector, cfg: SmbConfig) -> SmbFacts:
    """Assess one SMB endpoint. Never raises for what the peer does: errors land in the facts.
    (An address outside the scope raises OutOfScopeError: that is the caller's mistake.)"""
    state = _Probe(endpoint, connector, cfg)
    try:
        await state.run()
    except OutOfScopeError:
        raise
    except (DicomguardError, OSError, TimeoutError) as exc:
        state.fatal(_reason(exc))
    return state.facts()


class _Probe:
    def __init__(self, endpoint: Endpoint, connector: Connector, cfg: SmbConfig) -> None:
        self.ep = endpoint
        self.connector = connector
        self.cfg = cfg
        self.deadline = _Deadline(cfg.budget)
        self.start = time.monotonic()
        self.netbios = endpoint.port in cfg.netbios_ports
        self.values: dict[str, Any] = {"transport": "netbios" if self.netbios else "direct"}
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.sessions: dict[str, SmbSession] = {}
        self.shares: dict[str, SmbShare] = {}
        self.share_order: list[str] = []
        self.summary = AuditSummary()
        self.ctx = cfg.audit or AuditContext(show_phi=cfg.show_phi)
        self.files_left = cfg.limits.max_files
        self.bytes_left = cfg.limits.max_bytes
        self.limits_reached: list[str] = []

    def fatal(self, reason: str) -> None:
        self.values["error"] = reason

    def facts(self) -> SmbFacts:
        shares = tuple(self.shares[n] for n in self.share_order)
        walked = [s for s in shares if s.walk is not None]
        totals: dict[str, Any] = {}
        if walked:
            s = self.summary
            totals = {
                "shares_walked": len(walked),
                "dicom_files": s.dicom_files, "patients": len(s.patients),
                "studies": len(s.studies), "series": len(s.series), "phi_files": s.phi_files,
                "modalities": dict(s.modalities),
                "phi_attributes": dict(s.attributes.most_common(15)),
                "files_sampled": sum(int(x.walk["files_sampled"]) for x in walked if x.walk),
                "bytes_read": sum(int(x.walk["bytes_read"]) for x in walked if x.walk),
                "limits_reached": list(self.limits_reached),
                "identifiable": _identifiable(s),
            }
        lim = self.cfg.limits
        return SmbFacts(
            endpoint=self.ep, sessions=tuple(self.sessions.values()), shares=shares,
            totals=totals,
            limits={"max_depth": lim.max_depth, "max_entries": lim.max_entries,
                    "max_files": lim.max_files, "sample_bytes": lim.sample_bytes,
                    "max_bytes": lim.max_bytes, "time_budget": lim.time_budget},
            errors=tuple(self.errors), notes=tuple(self.notes),
            seconds=round(time.monotonic() - self.start, 3), **self.values)

    async def run(self) -> None:
        t = self.cfg.timeout
        addr, port = self.ep.address, self.ep.port
        # 1. SMB1
        smb1_answered = False
        try:
            smb1 = await smbnet.negotiate_smb1(self.connector, addr, port, netbios=self.netbios,
                                               timeout=self.deadline.op(t))
        except (ProtocolError, ConnectivityError):
            raise  # not SMB, or not reachable: stop here
        self.values.update(smb1_enabled=smb1.enabled, smb1_dialect=smb1.dialect,
                           smb1_signing_required=smb1.signing_required, smb1_detail=smb1.detail)
        smb1_answered = smb1.enabled or smb1.detail != \
            "connection closed on an SMB1-only negotiate"
        # 2. SMB2 by the multi-protocol negotiate
        try:
            smb2 = await smbnet.negotiate_smb2(self.connector, addr, port, netbios=self.netbios,
                                               timeout=self.deadline.op(t))
        except (ProtocolError, ConnectivityError) as exc:
            if not smb1_answered:
                raise
            self.errors.append(f"smb2 negotiate: {_reason(exc)}")
            smb2 = smbnet.Smb2Negotiation(False)
        self.values.update(speaks_smb=True, smb2=smb2.smb2)
        if smb2.smb2:
            self.values.update(smb2_signing_required=smb2.signing_required,
                               smb2_dialect=smb2.dialect)
        if self.netbios:
            self.notes.append("NetBIOS session service: sessions and shares are assessed on the "
                              "direct SMB port (445)")
            return
        if not smb2.smb2:
            self.notes.append("SMB1 only: sessions and shares are assessed over SMB2/3 only")
            return
        self.values["sessions_assessed"] = True
        # 3. null session through impacket: share enumeration and null access
        for name in self.cfg.extra_shares:
            self._add_share(smbnet.ShareInfo(name, "disk", name.endswith("$")))
        if self.cfg.try_null:
            await self._null_phase()
        # 4. guest session through smbprotocol
        if self.cfg.try_guest:
            await self._guest_phase()
        # 5. walk what only the null session can read
        null = self.sessions.get("null")
        if null is not None and null.accepted:
            await self._null_walks()

    # -- phases ------------------------------------------------------------------------------

    def _add_share(self, info: smbnet.ShareInfo) -> None:
        if info.name not in self.shares:
            self.shares[info.name] = SmbShare(info.name, info.kind, info.hidden)
            self.share_order.append(info.name)

    def _disk_shares(self) -> list[str]:
        names = [n for n in self.share_order if self.shares[n].kind == "disk"]
        if len(names) > self.cfg.max_shares:
            self._reached("max_shares")
        return names[: self.cfg.max_shares]

    def _reached(self, what: str) -> None:
        if what not in self.limits_reached:
            self.limits_reached.append(what)

    def _readable(self, name: str, identity: str) -> None:
        share = self.shares[name]
        self.shares[name] = replace(share, readable_by=(*share.readable_by, identity))

    async def _null_phase(self) -> None:
        """Null session: share enumeration (guest as a fallback) and null access per share."""
        addr, port = self.ep.address, self.ep.port
        for username in ("", "guest"):
            identity = "null" if not username else "guest"
            client = smbnet.NullClient(addr, port, self.cfg.timeout, username)
            async with self.connector.slot(addr, port):
                try:
                    outcome = await self._call(client, client.login)
                    if identity == "null":
                        self.sessions["null"] = SmbSession(
                            "null", outcome.accepted, outcome.usable, outcome.as_guest,
                            outcome.detail)
                    if not outcome.accepted:
                        continue
                    try:
                        infos = await self._call(client, client.shares)
                        self.values["shares_enumerated"] = True
                        self.values.pop("share_enum_error", None)
                        for info in infos:
                            self._add_share(info)
                    except (ConnectivityError, OutOfScopeError):
                        raise
                    except Exception as exc:
                        self.values["share_enum_error"] = f"{identity}: {_reason(exc)}"
                    if identity == "null":
                        for name in self._disk_shares():
                            if await self._can_list(client, name):
                                self._readable(name, "null")
                except OutOfScopeError:
                    raise
                except Exception as exc:
                    self.errors.append(f"{identity} session (impacket): {_reason(exc)}")
                finally:
                    await smbnet.call(client.close, 5.0, None, addr, port)
            if self.values.get("shares_enumerated"):
                break
        if not self.values.get("shares_enumerated") and "share_enum_error" not in self.values:
            self.values["share_enum_error"] = "no session allowed share enumeration"

    async def _call(self, client: smbnet.GuestClient | smbnet.NullClient,
                    fn: Callable[[], T]) -> T:
        return await smbnet.call(fn, self.deadline.op(self.cfg.timeout), client.watchdog,
                                 self.ep.address, self.ep.port)

    async def _can_list(self, client: smbnet.GuestClient | smbnet.NullClient, name: str) -> bool:
        addr, port = self.ep.address, self.ep.port
        try:
            await smbnet.call(lambda: client.list_dir(name, "/", limit=1),
                              self.deadline.op(self.cfg.timeout), client.watchdog, addr, port)
            return True
        except OutOfScopeError:
            raise
        except Exception as exc:
            if isinstance(exc, ConnectivityError):
                raise
            return False

    async def _guest_phase(self) -> None:
        addr, port = self.ep.address, self.ep.port
        client = smbnet.GuestClient(addr, port, self.cfg.timeout)
        async with self.connector.slot(addr, port):
            try:
                await self._call(client, client.negotiate)
                self.values["smb2_dialect"] = client.dialect
                if client.signing_required is not None:
                    self.values["smb2_signing_required"] = client.signing_required
                outcome = await self._call(client, client.login)
                self.sessions["guest"] = SmbSession("guest", outcome.accepted, outcome.usable,
                                                    outcome.as_guest, outcome.detail)
                if not outcome.usable:
                    return
                for name in self._disk_shares():
                    if await self._can_list(client, name):
                        self._readable(name, "guest")
                        if self.cfg.walk:
                            await self._walk(client, name, "guest")
            except OutOfScopeError:
                raise
            except Exception as exc:
                self.errors.append(f"guest session: {_reason(exc)}")
            finally:
                await smbnet.call(client.close, 5.0, None, addr, port)

    async def _null_walks(self) -> None:
        if not self.cfg.walk:
            return
        todo = [n for n in self._disk_shares()
                if "null" in self.shares[n].readable_by and self.shares[n].walk is None]
        if not todo:
            return
        addr, port = self.ep.address, self.ep.port
        client = smbnet.NullClient(addr, port, self.cfg.timeout)
        async with self.connector.slot(addr, port):
            try:
                outcome = await self._call(client, client.login)
                if not outcome.accepted:
                    self.errors.append(f"null session refused on a second connection: "
                                       f"{outcome.detail}")
                    return
                for name in todo:
                    await self._walk(client, name, "null")
            except OutOfScopeError:
                raise
            except Exception as exc:
                self.errors.append(f"null session walk: {_reason(exc)}")
            finally:
                await smbnet.call(client.close, 5.0, None, addr, port)

    async def _walk(self, client: smbnet.GuestClient | smbnet.NullClient, name: str,
                    identity: str) -> None:
        limits = self.cfg.limits
        left = self.deadline.left()
        if self.files_left <= 0 or self.bytes_left < limits.sample_bytes or left <= 1:
            self._reached("max_files" if self.files_left <= 0 else
                          "max_bytes" if self.bytes_left < limits.sample_bytes else "time_budget")
            self.shares[name] = replace(self.shares[name], error="not walked: limits reached")
            return
        share_limits = replace(limits, max_files=self.files_left, max_bytes=self.bytes_left,
                               time_budget=min(limits.time_budget, left - 1))
        fs = smbnet.ShareFS(client, name, self.cfg.timeout, limits.sample_bytes)
        result = await walk_and_sample(fs, share_limits, self.ctx)
        self.files_left -= result.files_sampled
        self.bytes_left -= result.bytes_read
        for what in result.limits_reached:
            self._reached(what)
        self.summary.merge(result.summary)
        facts = result.facts()
        facts["phi_files"] = result.summary.phi_files
        facts["identifiable"] = _identifiable(result.summary)
        facts["max_read_bytes"] = fs.max_read
        self.shares[name] = replace(self.shares[name], walked_as=identity, walk=facts)


def _identifiable(summary: AuditSummary) -> bool:
    """Do the sampled DICOM files identify patients (an identifying attribute present)?"""
    return summary.dicom_files > 0 and any(summary.attributes.get(a) for a in IDENTIFYING)
