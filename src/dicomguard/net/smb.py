"""SMB client side: raw negotiations over the Connector, library sessions, share file systems.

Three layers, each bounded in time:

- **Raw negotiations** (our own bytes, over `Connector.open`, bounded reads): an SMB1 NEGOTIATE
  offering only SMB1 dialects tells whether SMB1 is still enabled (MS-CIFS 2.2.4.52) and, for
  NT LM 0.12, whether SMB1 signing is required; a multi-protocol NEGOTIATE offering
  "SMB 2.002" and "SMB 2.???" is answered by an SMB2 server with an SMB2 NEGOTIATE response
  (MS-SMB2 3.3.5.3.1) carrying its SecurityMode (signing required or not). On the NetBIOS
  session service (port 139) both are preceded by a NetBIOS SESSION REQUEST (RFC 1002 4.3.2).
  These also prove the peer speaks SMB before any library is handed the socket: a port that
  answers garbage is never given to smbprotocol (whose reader trusts the 4-byte length).
- **Library sessions** (blocking, run in `asyncio.to_thread` inside `Connector.slot`):
  smbprotocol negotiates SMB2/3 (highest dialect) and opens the guest session ("guest", empty
  password); impacket opens the null session (smbprotocol cannot authenticate anonymously) and
  enumerates shares through SRVSVC NetrShareEnum. Every library call has its own socket
  timeout; a watchdog closes the connection when an operation overruns, which wakes the
  library's waiting thread, so no thread is left blocked on a tarpit.
- **Share file systems**: `RemoteFS` adapters over a tree connection (smbprotocol for guest,
  impacket for null) that list directories and read at most N bytes from the start of a file,
  for `probes.share_walk.walk_and_sample`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dicomguard.errors import ConnectivityError, ProtocolError, ReadTimeout
from dicomguard.net.connector import Connector
from dicomguard.probes.share_walk import RemoteEntry

T = TypeVar("T")
PROTOCOL = "smb"

#: SMB1 dialects, oldest first (MS-CIFS 2.2.4.52.1); the server answers with the index of the
#: one it selects.
SMB1_DIALECTS = (
    "PC NETWORK PROGRAM 1.0", "LANMAN1.0", "Windows for Workgroups 3.1a", "LM1.2X002",
    "LANMAN2.1", "NT LM 0.12",
)
#: Offered in an SMB1 NEGOTIATE to reach an SMB2 server (MS-SMB2 3.3.5.3.1).
SMB2_UPGRADE_DIALECTS = ("NT LM 0.12", "SMB 2.002", "SMB 2.???")

SMB2_DIALECT_NAMES = {
    0x0202: "2.0.2", 0x0210: "2.1", 0x0222: "2.2.2", 0x0224: "2.2.4", 0x0300: "3.0",
    0x0302: "3.0.2", 0x0310: "3.1", 0x0311: "3.1.1", 0x02FF: "2.???",
}

#: Largest negotiate response accepted (they are a few hundred bytes; SPNEGO blobs included).
MAX_NEGOTIATE_BYTES = 65_536
#: Most entries taken from one directory listing (the walker's own limits apply on top).
MAX_DIR_ENTRIES = 100_000

_SMB1_NEGOTIATE = 0x72
_SMB1_FLAGS = 0x18           # case-insensitive, canonicalised paths
_SMB1_FLAGS2 = 0xC801        # unicode, NT status, extended security, long names
_NBSS_MESSAGE = 0x00
_NBSS_REQUEST = 0x81
_NBSS_POSITIVE = 0x82
_NBSS_NEGATIVE = 0x83
_NBSS_RETARGET = 0x84
_NBSS_KEEPALIVE = 0x85

log = logging.getLogger(__name__)

# The libraries log per packet at INFO/DEBUG (paths included): keep them quiet.
for _name in ("smbprotocol", "spnego", "impacket"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------
# raw negotiations


@dataclass(frozen=True, slots=True)
class Smb1Negotiation:
    """The answer to an SMB1-only NEGOTIATE."""

    enabled: bool                        # an SMB1 dialect was selected
    dialect: str | None = None           # e.g. "NT LM 0.12"
    signing_required: bool | None = None  # NT LM 0.12 SecurityMode bit 0x08
    signing_enabled: bool | None = None   # bit 0x04
    detail: str = ""                     # how the server said no ("no dialect", "closed")


@dataclass(frozen=True, slots=True)
class Smb2Negotiation:
    """The SMB2 NEGOTIATE response to a multi-protocol NEGOTIATE (or None when SMB1 answered)."""

    smb2: bool                           # the server answered in SMB2
    dialect: str | None = None           # "2.0.2" or "2.???" (the wildcard: SMB 2.1 and later)
    signing_required: bool | None = None  # SecurityMode 0x02
    signing_enabled: bool | None = None   # SecurityMode 0x01


def netbios_name(name: str, suffix: int) -> bytes:
    """First-level encoding of a NetBIOS name (RFC 1001 14.1), as a length-prefixed label."""
    raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    encoded = bytearray()
    for byte in raw:
        encoded += bytes([0x41 + (byte >> 4), 0x41 + (byte & 0x0F)])
    return bytes([32]) + bytes(encoded) + b"\x00"


def netbios_session_request(called: str = "*SMBSERVER", calling: str = "DICOMGUARD") -> bytes:
    body = netbios_name(called, 0x20) + netbios_name(calling, 0x00)
    return struct.pack(">BBH", _NBSS_REQUEST, 0, len(body)) + body


def smb1_negotiate_request(dialects: tuple[str, ...]) -> bytes:
    """An SMB1 NEGOTIATE (MS-CIFS 2.2.4.52.1) framed for direct TCP / NBSS."""
    header = struct.pack(
        "<4sBIBHH8sHHHHH", b"\xffSMB", _SMB1_NEGOTIATE, 0, _SMB1_FLAGS, _SMB1_FLAGS2,
        0, b"\x00" * 8, 0, 0xFFFF, 0xFEFF, 0, 0,
    )
    data = b"".join(b"\x02" + d.encode("ascii") + b"\x00" for d in dialects)
    message = header + b"\x00" + struct.pack("<H", len(data)) + data
    return struct.pack(">I", len(message)) + message


async def _read_frame(reader: asyncio.StreamReader, what: str, where: tuple[str, int]) -> bytes:
    """One NBSS / direct-TCP frame (keepalives skipped); bounded in size."""
    while True:
        try:
            head = await reader.readexactly(4)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ConnectionResetError(f"{what}: connection closed without an answer") \
                    from exc
            raise ProtocolError(f"{what}: truncated frame header", address=where[0],
                                port=where[1], protocol=PROTOCOL) from exc
        kind = head[0]
        length = int.from_bytes(head[1:], "big")
        if kind == _NBSS_KEEPALIVE and length == 0:
            continue
        if length > MAX_NEGOTIATE_BYTES:
            raise ProtocolError(f"{what}: frame of {length} bytes is not an SMB answer",
                                address=where[0], port=where[1], protocol=PROTOCOL)
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(f"{what}: truncated frame", address=where[0], port=where[1],
                                protocol=PROTOCOL) from exc
        if kind not in (_NBSS_MESSAGE, _NBSS_POSITIVE, _NBSS_NEGATIVE, _NBSS_RETARGET):
            raise ProtocolError(f"{what}: unexpected frame type {kind:#04x}", address=where[0],
                                port=where[1], protocol=PROTOCOL)
        return bytes([kind]) + body


def parse_negotiate_response(frame: bytes, offered: tuple[str, ...]
                             ) -> Smb1Negotiation | Smb2Negotiation:
    """Parse the answer to an SMB1 NEGOTIATE: an SMB1 response, or an SMB2 one (upgrade)."""
    if frame[0] != _NBSS_MESSAGE:
        raise ProtocolError(f"negotiate: NetBIOS frame type {frame[0]:#04x}", protocol=PROTOCOL)
    msg = frame[1:]
    if msg[:4] == b"\xfeSMB":
        if len(msg) < 64 + 6 or struct.unpack_from("<H", msg, 4)[0] != 64:
            raise ProtocolError("negotiate: short SMB2 header", protocol=PROTOCOL)
        status, command = struct.unpack_from("<IH", msg, 8)
        if command != 0:
            raise ProtocolError(f"negotiate: SMB2 command {command} in answer",
                                protocol=PROTOCOL)
        if status != 0:
            raise ProtocolError(f"negotiate: SMB2 status {status:#010x}", protocol=PROTOCOL)
        size, mode, dialect = struct.unpack_from("<HHH", msg, 64)
        if size != 65:
            raise ProtocolError("negotiate: not an SMB2 NEGOTIATE response", protocol=PROTOCOL)
        return Smb2Negotiation(True, SMB2_DIALECT_NAMES.get(dialect, f"{dialect:#06x}"),
                               bool(mode & 0x02), bool(mode & 0x01))
    if msg[:4] != b"\xffSMB" or len(msg) < 35:
        raise ProtocolError("negotiate: the answer is not SMB", protocol=PROTOCOL)
    if msg[4] != _SMB1_NEGOTIATE:
        raise ProtocolError(f"negotiate: SMB1 command {msg[4]:#04x} in answer",
                            protocol=PROTOCOL)
    status = struct.unpack_from("<I", msg, 5)[0]
    words = msg[32]
    if status != 0 and words == 0:
        return Smb1Negotiation(False, detail=f"refused with status {status:#010x}")
    if words < 1 or len(msg) < 33 + 2 * words:
        raise ProtocolError("negotiate: malformed SMB1 NEGOTIATE response", protocol=PROTOCOL)
    index = struct.unpack_from("<H", msg, 33)[0]
    if index == 0xFFFF:
        return Smb1Negotiation(False, detail="no dialect selected")
    if index >= len(offered):
        raise ProtocolError(f"negotiate: dialect index {index} was not offered",
                            protocol=PROTOCOL)
    dialect = offered[index]
    if words == 17:
        mode = msg[35]
        return Smb1Negotiation(True, dialect, bool(mode & 0x08), bool(mode & 0x04))
    return Smb1Negotiation(True, dialect)


async def _negotiate(connector: Connector, address: str, port: int, offered: tuple[str, ...], *,
                     netbios: bool, timeout: float) -> Smb1Negotiation | Smb2Negotiation | None:
    """Send an SMB1 NEGOTIATE; None when the server closed the connection without answering."""
    where = (address, port)
    try:
        async with asyncio.timeout(timeout):
            async with connector.open(address, port, PROTOCOL) as (reader, writer):
                if netbios:
                    writer.write(netbios_session_request())
                    await writer.drain()
                    answer = await _read_frame(reader, "NetBIOS session request", where)
                    if answer[0] != _NBSS_POSITIVE:
                        detail = answer[1:2].hex() if answer[0] == _NBSS_NEGATIVE else ""
                        raise ProtocolError(
                            f"NetBIOS session request refused (type {answer[0]:#04x} {detail})",
                            address=address, port=port, protocol=PROTOCOL)
                writer.write(smb1_negotiate_request(offered))
                await writer.drain()
                try:
                    frame = await _read_frame(reader, "negotiate", where)
                except (ConnectionResetError, BrokenPipeError):
                    return None
    except TimeoutError as exc:
        raise ReadTimeout(address, port, PROTOCOL, "no SMB answer in time") from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        if netbios:
            raise ProtocolError("connection closed during the NetBIOS session request",
                                address=address, port=port, protocol=PROTOCOL) from exc
        return None
    except OSError as exc:
        raise ConnectivityError(address, port, PROTOCOL, exc.strerror or str(exc)) from exc
    try:
        return parse_negotiate_response(frame, offered)
    except (ProtocolError, struct.error, IndexError) as exc:
        raise ProtocolError(str(exc), address=address, port=port, protocol=PROTOCOL) from exc


async def negotiate_smb1(connector: Connector, address: str, port: int, *, netbios: bool = False,
                         timeout: float = 5.0) -> Smb1Negotiation:
    """Is SMB1 enabled? An SMB1-only NEGOTIATE; a closed connection counts as 'no'."""
    answer = await _negotiate(connector, address, port, SMB1_DIALECTS, netbios=netbios,
                              timeout=timeout)
    if answer is None:
        return Smb1Negotiation(False, detail="connection closed on an SMB1-only negotiate")
    if isinstance(answer, Smb2Negotiation):
        raise ProtocolError("SMB2 answer to an SMB1-only negotiate", address=address, port=port,
                            protocol=PROTOCOL)
    return answer


async def negotiate_smb2(connector: Connector, address: str, port: int, *, netbios: bool = False,
                         timeout: float = 5.0) -> Smb2Negotiation:
    """Does the server speak SMB2, and does it require signing? (multi-protocol negotiate)"""
    answer = await _negotiate(connector, address, port, SMB2_UPGRADE_DIALECTS, netbios=netbios,
                              timeout=timeout)
    if answer is None:
        raise ProtocolError("connection closed on a multi-protocol negotiate", address=address,
                            port=port, protocol=PROTOCOL)
    if isinstance(answer, Smb1Negotiation):
        return Smb2Negotiation(False)
    return answer


# ---------------------------------------------------------------------------------------------
# running blocking library calls


class Watchdog:
    """Closes a library connection when an operation overruns its deadline (waking the thread
    blocked on it); also used to close it at the end."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close
        self._lock = threading.Lock()
        self.fired = False

    def fire(self) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
        with contextlib.suppress(Exception):
            self._close()


async def call(fn: Callable[[], T], timeout: float, watchdog: Watchdog | None,
               address: str, port: int) -> T:
    """Run a blocking library call in a thread, bounded by `timeout`; on overrun the watchdog
    closes the connection (so the thread ends) and ReadTimeout is raised."""
    if watchdog is not None and watchdog.fired:
        raise ConnectivityError(address, port, PROTOCOL, "connection closed after a timeout")
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(task)
    except TimeoutError as exc:
        if watchdog is not None:
            await asyncio.to_thread(watchdog.fire)
        # give the woken thread a moment to finish so nothing is left running
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(2.0):
                await task
        raise ReadTimeout(address, port, PROTOCOL, "SMB operation timed out") from exc


def library_error(exc: BaseException) -> str:
    """A short, value-free reason for a library exception (no paths, no names)."""
    text = str(exc)
    for marker in ("STATUS_", "0xc0"):
        pos = text.find(marker)
        if pos >= 0:
            return f"{type(exc).__name__}: {text[pos:pos + 40].split()[0].rstrip(':,.')}"
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# smbprotocol: SMB2/3 negotiate and the guest session


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    identity: str                        # "null" or "guest"
    accepted: bool
    usable: bool                         # the client can go on (tree connects) with it
    as_guest: bool | None = None         # the server mapped it to guest / anonymous
    detail: str = ""


class GuestClient:
    """A blocking smbprotocol connection with a guest ("guest", empty password) session."""

    def __init__(self, address: str, port: int, timeout: float,
                 username: str = "guest", password: str = "") -> None:
        self.address = address
        self.port = port
        self.timeout = timeout
        self.username = username
        self.password = password
        self.connection: Any = None
        self.session: Any = None
        self.dialect: str | None = None
        self.signing_required: bool | None = None
        self.trees: dict[str, Any] = {}
        self.watchdog = Watchdog(self._abort)

    def _abort(self) -> None:
        if self.connection is not None:
            self.connection.disconnect(close=False)

    def negotiate(self) -> None:
        from smbprotocol.connection import Connection

        self.connection = Connection(uuid.uuid4(), self.address, self.port,
                                     require_signing=False)
        try:
            self.connection.connect(timeout=max(1, int(self.timeout)))
        except ValueError as exc:  # smbprotocol's "Failed to connect" for socket errors
            raise ConnectionRefusedError(str(exc)) from exc
        dialect = self.connection.dialect
        self.dialect = SMB2_DIALECT_NAMES.get(dialect, f"{dialect:#06x}")
        self.signing_required = bool((self.connection.server_security_mode or 0) & 0x02)

    def login(self) -> SessionOutcome:
        from smbprotocol.exceptions import (
            SMBAuthenticationError,
            SMBException,
            SMBResponseException,
        )
        from smbprotocol.session import Session

        session = Session(self.connection, username=self.username, password=self.password,
                          require_encryption=False, auth_protocol="ntlm")
        try:
            session.connect()
        except SMBResponseException as exc:
            return SessionOutcome("guest", False, False, detail=library_error(exc))
        except SMBAuthenticationError as exc:
            return SessionOutcome("guest", False, False, detail=library_error(exc))
        except SMBException as exc:
            if "guest" in str(exc):
                return SessionOutcome("guest", True, False, True,
                                      "accepted as guest, unusable: the server requires signing")
            return SessionOutcome("guest", False, False, detail=library_error(exc))
        self.session = session
        return SessionOutcome("guest", True, True, session.session_key is None)

    def tree(self, share: str) -> Any:
        from smbprotocol.tree import TreeConnect

        tree = self.trees.get(share)
        if tree is None:
            tree = TreeConnect(self.session, rf"\\{self.address}\{share}")
            tree.connect(require_secure_negotiate=False)  # guest sessions cannot sign
            self.trees[share] = tree
        return tree

    def list_dir(self, share: str, path: str, limit: int = MAX_DIR_ENTRIES) -> list[RemoteEntry]:
        from smbprotocol.exceptions import SMBResponseException
        from smbprotocol.file_info import FileInformationClass
        from smbprotocol.header import NtStatus

        handle = self._open(share, path, directory=True)
        entries: list[RemoteEntry] = []
        try:
            while len(entries) < limit:
                try:
                    batch = handle.query_directory(
                        "*", FileInformationClass.FILE_DIRECTORY_INFORMATION)
                except SMBResponseException as exc:
                    if exc.status == NtStatus.STATUS_NO_MORE_FILES:
                        break
                    raise
                if not batch:
                    break
                for item in batch:
                    name = item["file_name"].get_value().decode("utf-16-le", "replace")
                    if name in (".", "..") or not name:
                        continue
                    attributes = item["file_attributes"].get_value()
                    is_dir = bool(attributes & 0x10)
                    readonly = bool(attributes & 0x01)
                    size = None if is_dir else int(item["end_of_file"].get_value())
                    entries.append(RemoteEntry(name, is_dir, size,
                                               None if not readonly else False))
        finally:
            with contextlib.suppress(Exception):
                handle.close()
        return entries[:limit]

    def _open(self, share: str, path: str, *, directory: bool) -> Any:
        """Open a directory (to list) or a file (to read) read-only, sharing everything."""
        from smbprotocol.open import (
            CreateDisposition,
            CreateOptions,
            DirectoryAccessMask,
            FileAttributes,
            FilePipePrinterAccessMask,
            ImpersonationLevel,
            Open,
            ShareAccess,
        )

        handle = Open(self.tree(share), _smb_path(path))
        if directory:
            access = DirectoryAccessMask.FILE_LIST_DIRECTORY \
                | DirectoryAccessMask.FILE_READ_ATTRIBUTES
            attributes, options = (FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
                                   CreateOptions.FILE_DIRECTORY_FILE)
        else:
            access = FilePipePrinterAccessMask.FILE_READ_DATA \
                | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
            attributes, options = (FileAttributes.FILE_ATTRIBUTE_NORMAL,
                                   CreateOptions.FILE_NON_DIRECTORY_FILE)
        handle.create(
            ImpersonationLevel.Impersonation, access, attributes,
            ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
            | ShareAccess.FILE_SHARE_DELETE,
            CreateDisposition.FILE_OPEN, options)
        return handle

    def read_prefix(self, share: str, path: str, size: int) -> bytes:
        handle = self._open(share, path, directory=False)
        chunks: list[bytes] = []
        try:
            want = min(size, int(handle.end_of_file or 0))
            got = 0
            max_read = int(self.connection.max_read_size or 65_536)
            while got < want:
                data = handle.read(got, min(want - got, max_read))
                if not data:
                    break
                chunks.append(data[:want - got])
                got += len(chunks[-1])
        finally:
            with contextlib.suppress(Exception):
                handle.close()
        return b"".join(chunks)

    def close(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.disconnect(close=self.session is not None and not self.watchdog.fired)
        except Exception:
            with contextlib.suppress(Exception):
                self.connection.disconnect(close=False)


def _smb_path(path: str) -> str:
    return path.strip("/").replace("/", "\\")


# ---------------------------------------------------------------------------------------------
# impacket: null session, share enumeration (SRVSVC NetrShareEnum)


@dataclass(frozen=True, slots=True)
class ShareInfo:
    name: str
    kind: str          # "disk", "printer", "device", "ipc"
    hidden: bool       # STYPE_SPECIAL (administrative shares such as C$)


_SHARE_KINDS = {0: "disk", 1: "printer", 2: "device", 3: "ipc"}


class NullClient:
    """A blocking impacket connection with a null (anonymous) or guest session."""

    def __init__(self, address: str, port: int, timeout: float, username: str = "",
                 password: str = "") -> None:
        self.address = address
        self.port = port
        self.timeout = timeout
        self.username = username
        self.password = password
        self.conn: Any = None
        self.trees: dict[str, Any] = {}
        self.watchdog = Watchdog(self._abort)

    def _abort(self) -> None:
        if self.conn is not None:
            sock = self.conn.getSMBServer().get_socket()
            with contextlib.suppress(OSError):
                sock.shutdown(2)

    def login(self) -> SessionOutcome:
        from impacket.smbconnection import SessionError, SMBConnection

        identity = "null" if not self.username else "guest"
        try:
            self.conn = SMBConnection(self.address, self.address, sess_port=self.port,
                                      timeout=max(1, int(self.timeout)))
        except OSError as exc:
            raise ConnectivityError(self.address, self.port, PROTOCOL, str(exc)) from exc
        try:
            self.conn.login(self.username, self.password)
        except SessionError as exc:
            return SessionOutcome(identity, False, False, detail=library_error(exc))
        guest = bool(self.conn.isGuestSession()) or identity == "null"
        return SessionOutcome(identity, True, True, guest)

    def shares(self, limit: int = 1000) -> list[ShareInfo]:
        result = []
        for item in self.conn.listShares()[:limit]:
            name = str(item["shi1_netname"]).rstrip("\x00")
            kind = int(item["shi1_type"])
            result.append(ShareInfo(name, _SHARE_KINDS.get(kind & 0xFF, "other"),
                                    bool(kind & 0x80000000)))
        return result

    def tree(self, share: str) -> Any:
        tid = self.trees.get(share)
        if tid is None:
            tid = self.trees[share] = self.conn.connectTree(share)
        return tid

    def list_dir(self, share: str, path: str, limit: int = MAX_DIR_ENTRIES) -> list[RemoteEntry]:
        self.tree(share)
        pattern = "\\" + _smb_path(path) + ("\\*" if path.strip("/") else "*")
        entries = []
        for item in self.conn.listPath(share, pattern)[: limit + 2]:
            name = item.get_longname()
            if name in (".", "..") or not name:
                continue
            is_dir = bool(item.is_directory())
            entries.append(RemoteEntry(name, is_dir, None if is_dir else int(item.get_filesize()),
                                       False if item.is_readonly() else None))
        return entries[:limit]

    def read_prefix(self, share: str, path: str, size: int) -> bytes:
        from impacket.smb3structs import FILE_READ_DATA, FILE_SHARE_READ, FILE_SHARE_WRITE

        tid = self.tree(share)
        fid = self.conn.openFile(tid, "\\" + _smb_path(path), desiredAccess=FILE_READ_DATA,
                                 shareMode=FILE_SHARE_READ | FILE_SHARE_WRITE)
        try:
            data = self.conn.readFile(tid, fid, 0, size, singleCall=False)
        finally:
            with contextlib.suppress(Exception):
                self.conn.closeFile(tid, fid)
        return bytes(data[:size])

    def close(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(Exception):
            if not self.watchdog.fired:
                self.conn.logoff()
        with contextlib.suppress(Exception):
            self.conn.close()


# ---------------------------------------------------------------------------------------------
# the RemoteFS adapter for the walker


class ShareFS:
    """A share as a RemoteFS: each operation a bounded blocking call on the client's thread."""

    def __init__(self, client: GuestClient | NullClient, share: str, op_timeout: float,
                 sample_limit: int) -> None:
        self.client = client
        self.share = share
        self.op_timeout = op_timeout
        self.sample_limit = sample_limit
        self.bytes_read = 0
        self.max_read = 0      # the most bytes read from one file
        self.reads = 0

    async def list_dir(self, path: str) -> list[RemoteEntry]:
        return await self._run(lambda: self.client.list_dir(self.share, path))

    async def read_prefix(self, path: str, size: int) -> bytes:
        size = min(size, self.sample_limit)
        data = await self._run(lambda: self.client.read_prefix(self.share, path, size))
        self.reads += 1
        self.bytes_read += len(data)
        self.max_read = max(self.max_read, len(data))
        return data

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await call(fn, self.op_timeout, self.client.watchdog, self.client.address,
                              self.client.port)
        except (ReadTimeout, ConnectivityError):
            raise
        except Exception as exc:  # library errors (access denied, bad replies) per entry
            raise ProtocolError(library_error(exc), address=self.client.address,
                                port=self.client.port, protocol=PROTOCOL) from exc
