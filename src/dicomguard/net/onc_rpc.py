"""A small ONC RPC (RFC 5531) client over TCP, on streams opened by the Connector.

Only what the NFS probe needs: record marking (RFC 5531 section 11), XDR (RFC 4506) packing
and strict unpacking of integers, booleans, opaques and strings, AUTH_NONE and AUTH_SYS
credentials, and a call/reply exchange with strict validation of every reply field.

Every read is bounded: a reply larger than `max_reply` bytes, more than `max_fragments`
record fragments, a string longer than its declared maximum, an unknown discriminant or
trailing bytes are a `ProtocolError`; a peer that does not answer within `timeout` seconds is a
`ReadTimeout`. Nothing else escapes `RpcClient.call` for what the peer sends.

    async with connector.open(address, 111, "rpc") as (reader, writer):
        client = RpcClient(reader, writer, address=address, port=111, timeout=5.0)
        body = await client.call(100000, 2, 4)        # an XdrReader over the results
"""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
from dataclasses import dataclass
from typing import Final

from dicomguard.errors import ProtocolError, ReadTimeout

RPC_VERSION: Final = 2
CALL: Final = 0
REPLY: Final = 1
MSG_ACCEPTED: Final = 0
MSG_DENIED: Final = 1

AUTH_NONE: Final = 0
AUTH_SYS: Final = 1
MAX_AUTH_BYTES: Final = 400          # RFC 5531: opaque_auth body<400>

#: accept_stat values (RFC 5531 section 9)
ACCEPT_STATUS: Final = {
    0: "success",
    1: "program unavailable",
    2: "program version mismatch",
    3: "procedure unavailable",
    4: "garbage arguments",
    5: "system error",
}
#: auth_stat values (RFC 5531 section 9, RFC 2203)
AUTH_STATUS: Final = {
    0: "ok",
    1: "bad credential (seal broken)",
    2: "client must begin new session",
    3: "bad verifier (seal broken)",
    4: "verifier expired or replayed",
    5: "rejected for security reasons",
    6: "bogus credential",
    7: "bogus verifier",
    8: "no credentials for the user",
    9: "problem with context",
    13: "RPCSEC_GSS credential problem",
    14: "RPCSEC_GSS context problem",
}

_LAST_FRAGMENT: Final = 0x8000_0000
_XID = itertools.count(int.from_bytes(os.urandom(4), "big") & 0x7FFF_FFFF)


# ---------------------------------------------------------------------------------------------
# XDR


class XdrError(ProtocolError):
    """Bytes that do not decode as the XDR the protocol prescribes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, protocol="rpc")


class XdrWriter:
    """Packs XDR items into a buffer (big-endian, 4-byte aligned)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uint(self, value: int) -> XdrWriter:
        self._parts.append(struct.pack(">I", value))
        return self

    def int32(self, value: int) -> XdrWriter:
        self._parts.append(struct.pack(">i", value))
        return self

    def boolean(self, value: bool) -> XdrWriter:
        return self.uint(1 if value else 0)

    def opaque(self, data: bytes) -> XdrWriter:
        """Variable-length opaque: length, bytes, zero padding to a multiple of 4."""
        self.uint(len(data))
        self._parts.append(data + b"\0" * (-len(data) % 4))
        return self

    def string(self, text: str) -> XdrWriter:
        return self.opaque(text.encode("utf-8"))

    def raw(self, data: bytes) -> XdrWriter:
        self._parts.append(data)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class XdrReader:
    """Strict XDR decoding of a complete reply body; every overrun is an XdrError."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.remaining:
            raise XdrError(f"truncated reply: {what} needs {n} bytes, {self.remaining} left")
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def uint(self, what: str = "unsigned int") -> int:
        value: int = struct.unpack(">I", self._take(4, what))[0]
        return value

    def int32(self, what: str = "int") -> int:
        value: int = struct.unpack(">i", self._take(4, what))[0]
        return value

    def boolean(self, what: str = "bool") -> bool:
        value = self.uint(what)
        if value > 1:
            raise XdrError(f"{what}: {value} is not an XDR boolean")
        return value == 1

    def opaque(self, max_len: int, what: str = "opaque") -> bytes:
        length = self.uint(f"{what} length")
        if length > max_len:
            raise XdrError(f"{what}: {length} bytes exceeds the maximum of {max_len}")
        data = bytes(self._take(length, what))
        pad = self._take(-length % 4, f"{what} padding")
        if any(pad):
            raise XdrError(f"{what}: non-zero padding")
        return data

    def string(self, max_len: int, what: str = "string") -> str:
        """An XDR string; bytes that are not UTF-8 are kept as surrogate escapes (paths on
        old servers are often Latin-1) rather than refused."""
        return self.opaque(max_len, what).decode("utf-8", "surrogateescape")

    def done(self, what: str = "reply") -> None:
        if self.remaining:
            raise XdrError(f"{what}: {self.remaining} unexpected trailing bytes")


def printable(text: str) -> str:
    """A string from the wire made safe to show: surrogate escapes and control characters
    replaced (a hostile server must not write escape sequences into a report)."""
    raw = text.encode("utf-8", "surrogateescape") if _has_surrogates(text) else None
    cleaned = raw.decode("utf-8", "backslashreplace") if raw is not None else text
    return "".join(c if c.isprintable() else "\ufffd" for c in cleaned)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


# ---------------------------------------------------------------------------------------------
# credentials


@dataclass(frozen=True, slots=True)
class Credential:
    flavor: int
    body: bytes = b""

    def pack(self, w: XdrWriter) -> None:
        w.uint(self.flavor).opaque(self.body)


NO_AUTH: Final = Credential(AUTH_NONE)


def auth_sys(machine: str = "dicomguard", uid: int = 65534, gid: int = 65534,
             gids: tuple[int, ...] = (), stamp: int = 0) -> Credential:
    """An AUTH_SYS (AUTH_UNIX) credential; the default is the unprivileged nobody/nogroup."""
    if len(gids) > 16:
        raise ValueError("AUTH_SYS allows at most 16 supplementary groups")
    w = XdrWriter().uint(stamp).string(machine[:255]).uint(uid).uint(gid).uint(len(gids))
    for g in gids:
        w.uint(g)
    return Credential(AUTH_SYS, w.getvalue())


# ---------------------------------------------------------------------------------------------
# errors the peer can answer with


class RpcRejected(ProtocolError):
    """A well-formed reply refusing the call: an accept_stat other than SUCCESS, or
    MSG_DENIED (RPC version mismatch, authentication error)."""

    def __init__(self, kind: str, detail: str, *, low: int | None = None,
                 high: int | None = None, auth_stat: int | None = None) -> None:
        self.kind = kind              # "program unavailable", "authentication error", ...
        self.low = low                # supported versions for the mismatch kinds
        self.high = high
        self.auth_stat = auth_stat
        super().__init__(detail, protocol="rpc")


# ---------------------------------------------------------------------------------------------
# the client


class RpcClient:
    """Calls over one TCP connection, one at a time, each bounded in time and size."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 address: str = "", port: int = 0, timeout: float = 5.0,
                 max_reply: int = 1 << 20, max_fragments: int = 64,
                 protocol: str = "rpc") -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.port = port
        self.timeout = timeout
        self.max_reply = max_reply
        self.max_fragments = max_fragments
        self.protocol = protocol
        self._broken = False

    def _error(self, message: str) -> ProtocolError:
        return ProtocolError(message, address=self.address, port=self.port,
                             protocol=self.protocol)

    async def call(self, program: int, version: int, procedure: int, args: bytes = b"", *,
                   cred: Credential = NO_AUTH) -> XdrReader:
        """Send one call and return a reader positioned on the procedure's results.

        Raises RpcRejected for a well-formed refusal, ProtocolError for anything malformed,
        ReadTimeout when no complete reply arrives in time.
        """
        if self._broken:
            raise self._error("the connection is unusable after an earlier failed call")
        xid = next(_XID) & 0xFFFF_FFFF
        w = XdrWriter().uint(xid).uint(CALL).uint(RPC_VERSION)
        w.uint(program).uint(version).uint(procedure)
        cred.pack(w)
        NO_AUTH.pack(w)          # verifier
        w.raw(args)
        message = w.getvalue()
        self._broken = True      # until a complete reply has been read
        try:
            async with asyncio.timeout(self.timeout):
                self.writer.write(struct.pack(">I", _LAST_FRAGMENT | len(message)) + message)
                await self.writer.drain()
                record = await self._read_record()
        except TimeoutError as exc:
            raise ReadTimeout(self.address, self.port, self.protocol,
                              f"no RPC reply within {self.timeout:g} s") from exc
        except asyncio.IncompleteReadError as exc:
            got = len(exc.partial)
            raise self._error("connection closed before a complete RPC reply"
                              + (f" ({got} bytes of a fragment)" if got else "")) from exc
        except (ConnectionError, OSError) as exc:
            raise self._error(f"connection failed during the RPC call: {exc}") from exc
        try:
            body = parse_reply(record, xid)
        except ProtocolError as exc:
            exc.address, exc.port, exc.protocol = self.address, self.port, self.protocol
            if isinstance(exc, RpcRejected):
                self._broken = False  # a complete, well-formed reply: the stream is in step
            raise
        self._broken = False
        return body

    async def _read_record(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        for _ in range(self.max_fragments):
            header = struct.unpack(">I", await self.reader.readexactly(4))[0]
            length = header & ~_LAST_FRAGMENT
            total += length
            if total > self.max_reply:
                raise self._error(f"RPC reply larger than {self.max_reply} bytes")
            if length:
                parts.append(await self.reader.readexactly(length))
            if header & _LAST_FRAGMENT:
                return b"".join(parts)
        raise self._error(f"RPC reply in more than {self.max_fragments} fragments")


def parse_reply(record: bytes, xid: int) -> XdrReader:
    """Validate the RPC reply header of `record` for call `xid`; returns a reader on the
    results. Raises RpcRejected or ProtocolError (XdrError)."""
    r = XdrReader(record)
    got_xid = r.uint("xid")
    if got_xid != xid:
        raise XdrError(f"reply xid {got_xid:#x} does not match the call's {xid:#x}")
    mtype = r.uint("message type")
    if mtype != REPLY:
        raise XdrError(f"message type {mtype} where a REPLY (1) was expected")
    stat = r.uint("reply status")
    if stat == MSG_ACCEPTED:
        r.uint("verifier flavor")
        r.opaque(MAX_AUTH_BYTES, "verifier")
        accept = r.uint("accept status")
        if accept == 0:
            return r
        if accept == 2:
            raise _mismatch(r, "program version mismatch")
        if accept in ACCEPT_STATUS:
            r.done()
            raise RpcRejected(ACCEPT_STATUS[accept], ACCEPT_STATUS[accept])
        raise XdrError(f"unknown accept status {accept}")
    if stat == MSG_DENIED:
        reject = r.uint("reject status")
        if reject == 0:
            raise _mismatch(r, "rpc version mismatch")
        if reject == 1:
            auth = r.uint("auth status")
            r.done()
            text = AUTH_STATUS.get(auth, f"auth status {auth}")
            raise RpcRejected("authentication error", f"authentication error: {text}",
                              auth_stat=auth)
        raise XdrError(f"unknown reject status {reject}")
    raise XdrError(f"unknown reply status {stat}")


def _mismatch(r: XdrReader, kind: str) -> RpcRejected:
    low, high = r.uint(f"{kind}: lowest version"), r.uint(f"{kind}: highest version")
    r.done()
    return RpcRejected(kind, f"{kind} (server supports {low}-{high})", low=low, high=high)
