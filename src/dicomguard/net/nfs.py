"""NFS side-band RPC: the portmapper/rpcbind registry, mountd's export list, NFS NULL.

The calls a scanner needs to say what an NFS server exports and to whom, without mounting:

- portmapper v2 (RFC 1833) DUMP and GETPORT, rpcbind v3/v4 DUMP, on port 111;
- mountd (RFC 1813 appendix I, RFC 1094 for v1) EXPORT, procedure 5 in versions 1 to 3: every
  exported directory with its groups (who may mount it: "*", host names, networks, netgroups;
  an empty group list means everyone);
- the NFS NULL procedure (RFC 1813, RFC 7530), which says whether an NFS version is served.

All functions take an `RpcClient` on an open connection and decode strictly and boundedly.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomguard.net.onc_rpc import (
    NO_AUTH,
    Credential,
    RpcClient,
    XdrError,
    XdrReader,
    XdrWriter,
    printable,
)

PORTMAP_PROGRAM = 100000
NFS_PROGRAM = 100003
MOUNT_PROGRAM = 100005
PORTMAP_PORT = 111
NFS_PORT = 2049

PMAPPROC_GETPORT = 3
PMAPPROC_DUMP = 4
RPCBPROC_DUMP = 4
MOUNTPROC_EXPORT = 5

IPPROTO_TCP = 6
IPPROTO_UDP = 17

MNTPATHLEN = 1024      # RFC 1813: dirpath<MNTPATHLEN>
MNTNAMLEN = 255        # RFC 1813: name<MNTNAMLEN>
_NETID_MAX = 64
_UADDR_MAX = 128
_OWNER_MAX = 255

#: Names of the programs commonly registered beside NFS (rpcinfo's /etc/rpc names).
PROGRAM_NAMES = {
    100000: "portmapper", 100003: "nfs", 100005: "mountd", 100011: "rquotad",
    100021: "nlockmgr", 100024: "status", 100227: "nfs_acl", 100004: "ypserv",
    100007: "ypbind", 100009: "yppasswdd", 150001: "pcnfsd", 100001: "rstatd",
    100002: "rusersd", 100008: "walld", 100012: "sprayd", 100026: "bootparam",
    391002: "sgi_fam", 100083: "ttdbserverd", 100229: "metad", 100230: "metamhd",
    100232: "sadmind", 100249: "snmpXdmid", 300019: "amd", 1073741824: "fmproduct",
}


@dataclass(frozen=True, slots=True)
class RpcMapping:
    """One registration: program, version, transport ("tcp", "udp", "tcp6", ...), port."""

    program: int
    version: int
    netid: str
    port: int | None

    @property
    def name(self) -> str:
        return PROGRAM_NAMES.get(self.program, str(self.program))


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One exported directory and the groups allowed to mount it (empty: everyone)."""

    path: str
    groups: tuple[str, ...]
    groups_truncated: bool = False


@dataclass(frozen=True, slots=True)
class ExportList:
    entries: tuple[ExportEntry, ...]
    truncated: bool = False


def _netid(prot: int) -> str:
    return {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}.get(prot, f"proto{prot}")


def uaddr_port(uaddr: str) -> int | None:
    """The port of an RPC universal address ("h1.h2.h3.h4.p1.p2", "::1.p1.p2"), or None."""
    parts = uaddr.rsplit(".", 2)
    if len(parts) != 3:
        return None
    try:
        hi, lo = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if not (0 <= hi <= 255 and 0 <= lo <= 255):
        return None
    return hi * 256 + lo


def _port(value: int, what: str) -> int:
    if value > 0xFFFF:
        raise XdrError(f"{what}: {value} is not a port number")
    return value


async def pmap_dump(client: RpcClient, *, max_entries: int = 1024
                    ) -> tuple[list[RpcMapping], bool]:
    """Portmapper v2 DUMP: the registrations and whether the list was cut at max_entries."""
    r = await client.call(PORTMAP_PROGRAM, 2, PMAPPROC_DUMP)
    result: list[RpcMapping] = []
    while r.boolean("pmaplist follows"):
        if len(result) >= max_entries:
            return result, True
        prog, vers, prot = r.uint("program"), r.uint("version"), r.uint("protocol")
        port = _port(r.uint("port"), "pmap port")
        result.append(RpcMapping(prog, vers, _netid(prot), port))
    r.done("portmapper DUMP reply")
    return result, False


async def rpcb_dump(client: RpcClient, version: int = 3, *, max_entries: int = 1024
                    ) -> tuple[list[RpcMapping], bool]:
    """rpcbind v3/v4 DUMP: registrations with netids and universal addresses."""
    if version not in (3, 4):
        raise ValueError("rpcbind DUMP is defined for versions 3 and 4")
    r = await client.call(PORTMAP_PROGRAM, version, RPCBPROC_DUMP)
    result: list[RpcMapping] = []
    while r.boolean("rpcblist follows"):
        if len(result) >= max_entries:
            return result, True
        prog, vers = r.uint("program"), r.uint("version")
        netid = printable(r.string(_NETID_MAX, "netid"))
        addr = r.string(_UADDR_MAX, "universal address")
        r.string(_OWNER_MAX, "owner")
        result.append(RpcMapping(prog, vers, netid, uaddr_port(addr)))
    r.done("rpcbind DUMP reply")
    return result, False


async def pmap_getport(client: RpcClient, program: int, version: int,
                       prot: int = IPPROTO_TCP) -> int:
    """Portmapper v2 GETPORT: the port of (program, version, protocol); 0 when unregistered."""
    args = XdrWriter().uint(program).uint(version).uint(prot).uint(0).getvalue()
    r = await client.call(PORTMAP_PROGRAM, 2, PMAPPROC_GETPORT, args)
    port = _port(r.uint("port"), "GETPORT result")
    r.done("portmapper GETPORT reply")
    return port


def decode_exports(r: XdrReader, *, max_exports: int = 4096, max_groups: int = 256
                   ) -> ExportList:
    """Decode a mountd EXPORT result (the same `exports` type in versions 1, 2 and 3)."""
    entries: list[ExportEntry] = []
    while r.boolean("export follows"):
        if len(entries) >= max_exports:
            return ExportList(tuple(entries), truncated=True)
        path = r.string(MNTPATHLEN, "export path")
        groups: list[str] = []
        cut = False
        while r.boolean("group follows"):
            name = r.string(MNTNAMLEN, "group name")
            if len(groups) < max_groups:
                groups.append(name)
            else:
                cut = True
        entries.append(ExportEntry(path, tuple(groups), cut))
    r.done("mountd EXPORT reply")
    return ExportList(tuple(entries))


async def mount_export(client: RpcClient, version: int = 3, *, max_exports: int = 4096,
                       max_groups: int = 256, cred: Credential = NO_AUTH) -> ExportList:
    """mountd EXPORT (procedure 5): the exported directories and their groups."""
    if version not in (1, 2, 3):
        raise ValueError("mountd versions are 1 to 3")
    r = await client.call(MOUNT_PROGRAM, version, MOUNTPROC_EXPORT, cred=cred)
    return decode_exports(r, max_exports=max_exports, max_groups=max_groups)


async def nfs_null(client: RpcClient, version: int) -> None:
    """The NFS NULL procedure: returns when the server serves this version, raises
    RpcRejected("program version mismatch", low, high) when it serves others."""
    r = await client.call(NFS_PROGRAM, version, 0)
    r.done("NFS NULL reply")
