"""A small, bounded, asynchronous FTP client (RFC 959, 2389, 2428, 3659) over Connector streams.

What it does, and only that: read the banner, FEAT, probe AUTH TLS, log in, list directories
(MLSD, falling back to LIST in Unix or Windows/IIS format), read the first N bytes of a file
(RETR, then reset the data connection; ABOR only for a server that does not answer the reset
by itself), and, for the opt-in write test, STOR and DELE.

Sampling many files costs one round trip per file in the steady state: the reset transfer's
own final reply (426/226) is awaited instead of ABOR + NOOP, the next EPSV travels with the
reset (with RETR itself for vsftpd), and `retr_prefix(path, n, next_path)` starts the next
file's RETR before returning, so the server opens it while the caller audits the sample. Still
one data connection at a time.

Safety properties:

- every read of the control connection and of a data connection runs under a timeout; a
  silent peer (tarpit) gives `ReadTimeout`, a peer that answers something that is not FTP
  gives `ProtocolError`; neither ever hangs the caller;
- replies are bounded in lines and line length, listings in bytes and entries (a server that
  sends a million entries gets its listing truncated, and the listing says so);
- a data connection reads at most what was asked for: its socket's receive buffer is set small
  before connecting, so the server cannot push much more than the prefix into our socket
  before we close it;
- names are decoded as UTF-8, falling back to latin-1 per name; the raw bytes are remembered so
  a latin-1 name is sent back to the server exactly as it was listed;
- the passive address the server announces (PASV) is ignored: data connections go to the
  control connection's address (a server behind NAT announces private addresses, and a
  hostile one could name a host outside the scan scope).

Connection slots. A transfer needs two connections to the same host (control + data), so
`FtpSession` takes TWO per-host slots of the Connector before it connects: one for the control
connection (`Connector.open`) and one held for the data connections (`Connector.slot`), opened
one at a time inside that held slot. Both are taken under a lock per (connector, host), so two
FTP sessions on the same host never each hold one slot while waiting for a second (which would
deadlock them until their timeouts); everything else in dicomguard holds at most one slot at a
time, so the lock is enough. The per-host cap stays exact. With a per-host cap of 1 a session
can log in but cannot transfer: `FtpSession.data_available` is False and listing raises
`DataUnavailable`, which the probe reports.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import struct
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass

from dicomguard.errors import (
    ConnectivityError,
    ConnectTimeout,
    DicomguardError,
    ProtocolError,
    ReadTimeout,
)
from dicomguard.net.connector import Connector

PROTOCOL = "ftp"
MAX_LINE = 4096                  # bytes in one reply or listing line
MAX_REPLY_LINES = 200            # lines in one (multi-line) reply
MAX_LISTING_BYTES = 8 << 20      # bytes of one directory listing
MAX_LISTING_ENTRIES = 100_000    # entries kept from one directory listing
#: Receive buffer of a data socket for a file prefix (the kernel doubles it): the server can
#: push at most about twice this beyond the bytes we keep before the reset. Measured on
#: loopback: 8 KiB costs little time against 16-32 KiB and keeps the overshoot at ~8 KiB.
SAMPLE_RCVBUF = 8192
LISTING_RCVBUF = 262144          # listings: throughput matters more than overshoot
#: Shortest wait for a transfer's final reply after its data connection was reset, before
#: ABOR is sent instead (see FtpClient._after_reset).
RESET_WAIT_MIN = 0.25

#: Final replies of a transfer; one of them in answer to EPSV is a late one for the last
#: reset transfer.
_STALE_FINAL = frozenset({225, 226, 250, 426, 451})
_PASV = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")


class FtpReplyError(ProtocolError):
    """The server answered a command with a negative reply (4xx or 5xx)."""

    def __init__(self, command: str, reply: FtpReply, *, address: str = "", port: int = 0):
        self.reply = reply
        self.command = command
        super().__init__(f"{command}: {reply.code} {reply.message[:120]}",
                         address=address, port=port, protocol=PROTOCOL)


class DataUnavailable(ProtocolError):
    """No data connection can be opened (per-host cap of 1, or no passive mode)."""


@dataclass(frozen=True, slots=True)
class FtpReply:
    code: int
    lines: tuple[str, ...]

    @property
    def message(self) -> str:
        """The text of the reply without the codes, lines joined by spaces."""
        parts = [re.sub(r"^\d{3}[ -]?", "", line).strip() for line in self.lines]
        return " ".join(p for p in parts if p)

    @property
    def positive(self) -> bool:
        return 100 <= self.code < 400


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One entry of a directory listing."""

    name: str
    is_dir: bool
    size: int | None = None
    writable: bool | None = None      # from permission bits / MLSD perm facts, when given
    is_link: bool = False
    raw: bytes | None = None          # the name's bytes when they were not UTF-8 (latin-1)


@dataclass(frozen=True, slots=True)
class Listing:
    entries: tuple[ListEntry, ...]
    method: str                       # "MLSD" or "LIST"
    truncated: bool = False           # bytes or entries cut at the bounds
    unparsed: int = 0                 # lines that were neither Unix, Windows nor MLSD


def decode_name(raw: bytes) -> str:
    return _decode(raw)[0]


def _decode(raw: bytes) -> tuple[str, bytes | None]:
    """(text, raw bytes if they were not UTF-8 and latin-1 was used, else None)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("latin-1"), raw


def printable(text: str, limit: int = 200) -> str:
    """A peer-supplied string made safe to show: control characters replaced, truncated."""
    out = "".join(ch if ch.isprintable() else "?" for ch in text)
    return out[:limit]


# ---------------------------------------------------------------------------------------------
# listing parsers

_UNIX = re.compile(
    rb"^(?P<perm>[-dlbcpsDn?][-rwxsStTlL?]{9})[+@.]?\s+\d+\s+(?P<owner>\S+)\s+(?:(?P<group>\S+)\s+)?"
    rb"(?P<size>\d+)\s+(?P<date>\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(?P<name>.+)$")
_WINDOWS = re.compile(
    rb"^(?P<date>\d{2}-\d{2}-\d{2,4})\s+(?P<time>\d{1,2}:\d{2}(?:[AaPp][Mm])?)\s+"
    rb"(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)$")

#: Accounts an anonymous session runs as on common servers (vsftpd, ProFTPD, Pure-FTPd).
ANONYMOUS_OWNERS = frozenset({"ftp", "anonymous", "nobody", "anon", "ftpuser", "guest"})


def _unix_writable(perm: str, owner: str, group: str | None) -> bool:
    if perm[8] == "w":                                   # others may write
        return True
    if owner.lower() in ANONYMOUS_OWNERS and perm[2] == "w":
        return True
    return bool(group and group.lower() in ANONYMOUS_OWNERS and perm[5] == "w")


def parse_list_line(line: bytes) -> ListEntry | None:
    """One line of a LIST answer (Unix `ls -l` style or Windows/IIS style); None if neither."""
    line = line.rstrip(b"\r\n")
    m = _UNIX.match(line)
    if m:
        perm = m.group("perm").decode("ascii", "replace")
        name = m.group("name")
        is_link = perm[0] == "l"
        if is_link and b" -> " in name:
            name = name.split(b" -> ", 1)[0]
        owner = decode_name(m.group("owner"))
        group = decode_name(m.group("group")) if m.group("group") else None
        is_dir = perm[0] == "d"
        text, raw = _decode(name)
        return ListEntry(text, is_dir, None if is_dir else int(m.group("size")),
                         _unix_writable(perm, owner, group) if is_dir else None, is_link, raw)
    m = _WINDOWS.match(line)
    if m:
        is_dir = m.group("dir") is not None
        size = None if is_dir else int(m.group("size"))
        text, raw = _decode(m.group("name"))
        return ListEntry(text, is_dir, size, raw=raw)
    return None


def parse_mlsd_line(line: bytes) -> ListEntry | None:
    """One line of an MLSD answer: `fact=value;fact=value; name`. cdir/pdir give None."""
    line = line.rstrip(b"\r\n")
    facts_part, sep, name = line.partition(b" ")
    if not sep or not name:
        return None
    facts: dict[str, str] = {}
    for item in facts_part.split(b";"):
        key, eq, value = item.partition(b"=")
        if eq:
            facts[key.decode("ascii", "replace").lower()] = value.decode("latin-1")
    kind = facts.get("type", "").lower()
    if not kind or kind in ("cdir", "pdir"):
        return None
    is_link = "symlink" in kind or "slink" in kind
    is_dir = kind == "dir"
    size: int | None = None
    raw_size = facts.get("size", "")
    if not is_dir and raw_size.isdigit():
        size = int(raw_size)
    writable: bool | None = None
    if is_dir and "perm" in facts:
        perm = facts["perm"].lower()
        writable = "c" in perm or "m" in perm
    text, raw = _decode(name)
    return ListEntry(text, is_dir, size, writable, is_link, raw)


# ---------------------------------------------------------------------------------------------
# the client


def _line_buffered(reader: asyncio.StreamReader) -> bool:
    """True when a whole line already waits in the reader's buffer (CPython's StreamReader
    keeps it in `_buffer`; without that attribute, False: the caller just sets a timer)."""
    buffer = getattr(reader, "_buffer", None)
    return isinstance(buffer, bytearray) and b"\n" in buffer


class FtpClient:
    """One control connection. Commands are sent one at a time; each reply is awaited under
    `timeout`. Data connections are opened by `open_data(port)` (see FtpSession)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 address: str, port: int, timeout: float = 10.0,
                 open_data: _DataOpener | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.port = port
        self.timeout = timeout
        self._open_data = open_data
        self._raw_names: dict[str, bytes] = {}
        self._mlsd: bool | None = None      # None: not tried yet
        self._epsv: bool | None = None
        self.broken: str | None = None       # why the control connection is unusable
        self.bytes_received = 0              # payload bytes kept from data connections
        self.wire_bytes = 0                  # bytes that reached this host on them (tcp_info)
        self.wire_by_command: Counter[str] = Counter()   # the same, by RETR / MLSD / LIST
        self.utf8 = False
        self._abor_needed = False           # the server does not answer a reset transfer
        self._rtt = 0.0                     # longest control round trip seen (EPSV/PASV)
        self._reset_answered = False        # a reset transfer got its final reply in time
        self._pasv_pending = False          # an EPSV was sent ahead, its reply not read yet
        self._ahead: tuple[str, DataConnection] | None = None   # a RETR started ahead
        self._sequential = False            # the server reads no command during a transfer

    @property
    def data_available(self) -> bool:
        return self._open_data is not None

    @property
    def data_connections(self) -> int:
        return self._open_data.opened if self._open_data is not None else 0

    # -- low level ------------------------------------------------------------------------
    def _error(self, message: str) -> ProtocolError:
        return ProtocolError(message, address=self.address, port=self.port, protocol=PROTOCOL)

    async def _readline(self, timeout: float | None = None) -> bytes:
        try:
            if _line_buffered(self.reader):      # returns at once: no timer needed
                line = await self.reader.readuntil(b"\n")
            else:
                async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                    line = await self.reader.readuntil(b"\n")
        except TimeoutError as exc:
            raise ReadTimeout(self.address, self.port, PROTOCOL, "no reply in time") from exc
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise self._error("connection closed in the middle of a reply") from exc
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    "connection closed by the server") from exc
        except asyncio.LimitOverrunError as exc:
            raise self._error("reply line too long") from exc
        except OSError as exc:
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    exc.strerror or str(exc)) from exc
        if len(line) > MAX_LINE:
            raise self._error("reply line too long")
        return line

    async def read_reply(self, timeout: float | None = None, *,
                         first: bytes | None = None) -> FtpReply:
        """One complete reply (single or multi-line); ProtocolError if it is not FTP.

        After a timeout or garbage the conversation is out of step: the client is marked
        broken and every later command fails at once instead of reading stale replies."""
        try:
            return await self._read_reply(timeout, first)
        except BaseException as exc:
            self.broken = type(exc).__name__
            raise

    async def _read_reply(self, timeout: float | None, first: bytes | None) -> FtpReply:
        if first is None:
            first = await self._readline(timeout)
        if len(first) < 4 or not first[:3].isdigit() or first[3:4] not in (b" ", b"-", b"\r",
                                                                            b"\n"):
            raise self._error("not an FTP reply")
        code = int(first[:3])
        if not 100 <= code < 600:
            raise self._error("reply code out of range")
        lines = [decode_name(first.rstrip(b"\r\n"))]
        if first[3:4] == b"-":
            end = first[:3] + b" "
            while True:
                line = await self._readline(timeout)
                lines.append(decode_name(line.rstrip(b"\r\n")))
                if line.startswith(end) or line.rstrip(b"\r\n") == first[:3]:
                    break
                if len(lines) > MAX_REPLY_LINES:
                    raise self._error("multi-line reply too long")
        return FtpReply(code, tuple(lines))

    def encode_path(self, path: str) -> bytes:
        parts = path.split("/")
        raw = [self._raw_names.get(p) or p.encode("utf-8", "surrogateescape") for p in parts]
        return b"/".join(raw)

    def send(self, command: str, argument: bytes | str | None = None, *,
             then: str | None = None) -> None:
        """Write one command (and `then`, a second one without argument, in the same
        segment)."""
        if self.broken is not None:
            raise self._error(f"session unusable after an earlier {self.broken}")
        data = command.encode("ascii")
        if argument is not None:
            arg = argument if isinstance(argument, bytes) else argument.encode("utf-8")
            if b"\r" in arg or b"\n" in arg:
                raise ValueError("FTP arguments cannot contain CR or LF")
            data += b" " + arg
        data += b"\r\n"
        if then is not None:
            data += then.encode("ascii") + b"\r\n"
        self.writer.write(data)

    async def command(self, command: str, argument: bytes | str | None = None, *,
                      timeout: float | None = None) -> FtpReply:
        if self._ahead is not None:
            await self._cancel_ahead()
        if self._pasv_pending:
            await self._drop_pending()
        self.send(command, argument)
        try:
            await self.writer.drain()
        except OSError as exc:
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    exc.strerror or str(exc)) from exc
        return await self.read_reply(timeout)

    async def expect(self, command: str, argument: bytes | str | None = None) -> FtpReply:
        reply = await self.command(command, argument)
        if not reply.positive:
            raise FtpReplyError(command, reply, address=self.address, port=self.port)
        return reply

    # -- session steps --------------------------------------------------------------------
    async def banner(self) -> FtpReply:
        reply = await self.read_reply()
        while reply.code // 100 == 1:         # "120 service ready in n minutes": wait once more
            reply = await self.read_reply()
        # vsftpd reads the next command only once a transfer is over (during one it reacts to
        # nothing but an urgent-data ABOR, which we never send), so the EPSV for the next
        # transfer can travel with RETR. Other servers (pyftpdlib answers EPSV at once and
        # closes the running transfer) get it after the reset.
        self._sequential = "vsftpd" in " ".join(reply.lines).lower()
        return reply

    async def features(self) -> tuple[str, ...]:
        """FEAT lines (upper-cased keywords with their arguments); () when unsupported."""
        reply = await self.command("FEAT")
        if reply.code != 211:
            return ()
        feats = tuple(line.strip().upper() for line in reply.lines[1:-1] if line.strip())
        if any(f.split()[0] == "UTF8" for f in feats):
            opts = await self.command("OPTS", "UTF8 ON")
            self.utf8 = opts.positive
        if any(f.split()[0] == "MLSD" or f.startswith("MLST") for f in feats):
            self._mlsd = True
        return feats

    async def login(self, user: str, password: str) -> FtpReply:
        """USER then PASS when asked: the final reply (230/202 logged in; 530 refused...)."""
        reply = await self.command("USER", user)
        if reply.code == 331 or reply.code == 332:
            reply = await self.command("PASS", password)
        return reply

    async def binary(self) -> None:
        await self.expect("TYPE", "I")

    async def quit(self) -> None:
        try:
            if self._ahead is not None:
                await self._cancel_ahead()
            await self._drop_pending()
            self.send("QUIT")
            async with asyncio.timeout(min(self.timeout, 2.0)):
                await self.writer.drain()
                await self.read_reply()
        except (TimeoutError, OSError, DicomguardError):
            pass

    # -- data connections -----------------------------------------------------------------
    async def _passive(self, rcvbuf: int) -> DataConnection:
        if self._open_data is None:
            raise DataUnavailable("no data connection available (per-host cap of 1)",
                                  address=self.address, port=self.port, protocol=PROTOCOL)
        port: int | None = None
        if self._epsv is not False:
            if self._pasv_pending:           # sent after the last reset (see _after_reset)
                self._pasv_pending = False
                reply = await self.read_reply()
            else:
                sent = time.monotonic()
                reply = await self.command("EPSV")
                self._rtt = max(self._rtt, time.monotonic() - sent)
            if reply.code in _STALE_FINAL:
                # a second final reply for a transfer that was reset (426 then 226, without
                # ABOR): the EPSV's own answer comes next
                reply = await self.read_reply()
            m = _EPSV.search(reply.lines[-1].encode("latin-1")) if reply.code == 229 else None
            if m:
                self._epsv = True
                port = int(m.group(2))
            elif self._epsv is None:
                self._epsv = False
            else:
                raise FtpReplyError("EPSV", reply, address=self.address, port=self.port)
        if port is None:
            reply = await self.command("PASV")
            m = _PASV.search(" ".join(reply.lines).encode("latin-1")) if reply.code == 227 \
                else None
            if not m:
                raise FtpReplyError("PASV", reply, address=self.address, port=self.port)
            # The announced host (groups 1-4) is ignored: see the module docstring.
            port = int(m.group(5)) * 256 + int(m.group(6))
        if not 0 < port < 65536:
            raise self._error("passive port out of range")
        return await self._open_data(port, rcvbuf)

    async def _drop_pending(self) -> None:
        """Read (and forget) the answer to an EPSV sent ahead when something else comes next."""
        if self._pasv_pending:
            self._pasv_pending = False
            await self.read_reply()

    async def _start_transfer(self, command: str, argument: bytes | None,
                              rcvbuf: int = SAMPLE_RCVBUF) -> DataConnection:
        conn = await self._send_transfer(command, argument, rcvbuf)
        await self._confirm_transfer(conn)
        return conn

    async def _send_transfer(self, command: str, argument: bytes | None,
                             rcvbuf: int) -> DataConnection:
        """Passive data connection, then the transfer command sent (its reply not read)."""
        if self._ahead is not None:
            await self._cancel_ahead()
        conn = await self._passive(rcvbuf)
        conn.command = command
        conn.epsv_queued = (command == "RETR" and self._sequential and self._reset_answered
                            and self._epsv is True and not self._abor_needed)
        try:
            self.send(command, argument, then="EPSV" if conn.epsv_queued else None)
            await self.writer.drain()
        except OSError as exc:
            self._close_data(conn, reset=True)
            self.broken = type(exc).__name__
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    exc.strerror or str(exc)) from exc
        except BaseException:
            self._close_data(conn, reset=True)
            raise
        return conn

    async def _confirm_transfer(self, conn: DataConnection) -> None:
        """The transfer command's preliminary reply (1xx), else FtpReplyError."""
        try:
            reply = await self.read_reply()
            if reply.code // 100 != 1:
                self._pasv_pending = conn.epsv_queued      # its answer follows this one
                raise FtpReplyError(conn.command, reply, address=self.address, port=self.port)
        except BaseException:
            self._close_data(conn, reset=True)
            raise

    def discard_ahead(self) -> None:
        """Close a transfer started ahead without a word to the server (session ending)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._close_data(ahead[1], reset=True)

    async def _cancel_ahead(self) -> None:
        """The transfer started ahead is not wanted after all: take its reply, reset it."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        _, conn = ahead
        try:
            await self._confirm_transfer(conn)
        except FtpReplyError:
            return                            # refused: nothing runs, in step
        self._close_data(conn, reset=True)
        await self._after_reset(conn.command, conn.epsv_queued)

    def _close_data(self, conn: DataConnection, *, reset: bool) -> None:
        wire = conn.close(reset=reset)
        self.wire_bytes += wire
        self.wire_by_command[conn.command] += wire

    async def _receive(self, command: str, argument: bytes | None, limit: int,
                       rcvbuf: int) -> tuple[bytes, bool]:
        """Run a transfer towards us and keep at most `limit` bytes: (data, complete)."""
        conn = await self._start_transfer(command, argument, rcvbuf)
        return await self._take(conn, limit)

    async def _take(self, conn: DataConnection, limit: int) -> tuple[bytes, bool]:
        """Read up to `limit` bytes of a confirmed transfer, then end it in step."""
        command = conn.command
        try:
            data, eof = await conn.read(limit, self.timeout)
        except BaseException as exc:
            self._close_data(conn, reset=True)
            self.broken = type(exc).__name__   # a transfer reply is pending: out of step
            raise
        self.bytes_received += len(data)
        if eof:
            self._close_data(conn, reset=False)
            self._pasv_pending = conn.epsv_queued    # its answer follows the final reply
            await self._finish(command)
        else:
            # `limit` bytes read: the file may be longer (or exactly that long: the abort
            # copes with a server that had finished).
            self._close_data(conn, reset=True)     # RST: the server stops sending at once
            await self._after_reset(command, conn.epsv_queued)
        return data, eof

    def _reset_wait(self) -> float:
        """How long to wait for a transfer's own final reply after resetting its data
        connection, before falling back to ABOR: a few control round trips, at least
        RESET_WAIT_MIN, at most the session's timeout."""
        return min(self.timeout, max(RESET_WAIT_MIN, 8 * self._rtt))

    async def _after_reset(self, command: str, epsv_queued: bool = False) -> None:
        """Back in step after resetting a transfer's data connection, in one round trip.

        Most servers notice the reset when their next write fails and answer the transfer
        (426/451), or had already handed the whole file to their socket and answered 226: that
        one final reply puts the session back in step, no ABOR needed. A server whose reply
        does not come within `_reset_wait()` gets ABOR + NOOP (`_abort`, which copes with a
        late reply in any order), and the session uses ABOR for every later reset.

        Once a server has answered a reset in time, the EPSV of the next transfer is sent
        together with the reset, or was queued behind RETR (`epsv_queued`, vsftpd): one round
        trip less per file; its reply, which follows the transfer's, is read by the next
        `_passive`. Anything else than a final reply first turns that off and resynchronises
        with ABOR + NOOP."""
        if not self._abor_needed:
            ahead = epsv_queued or (self._reset_answered and self._epsv is True)
            if ahead and not epsv_queued:
                self.send("EPSV")
            reply = await self._reply_within(self._reset_wait())
            if reply is not None and reply.code >= 200 and reply.code != 229:
                self._reset_answered = True
                self._pasv_pending = ahead
                return
            # No final reply in time (or something else first): from now on, always ABOR.
            self._abor_needed = True
        await self._abort()

    async def _reply_within(self, wait: float) -> FtpReply | None:
        """A reply whose first line arrives within `wait` seconds, else None and still in step
        (an interrupted readuntil consumes nothing; the rest of a multi-line reply gets the
        full timeout)."""
        try:
            first = await self._readline(wait)
        except ReadTimeout:
            return None
        except BaseException as exc:
            self.broken = type(exc).__name__
            raise
        return await self.read_reply(first=first)

    async def _finish(self, command: str) -> None:
        reply = await self.read_reply()
        if not reply.positive:
            raise FtpReplyError(command, reply, address=self.address, port=self.port)

    async def _abort(self) -> None:
        """After closing the data connection early: ABOR, and resynchronise with NOOP.

        Servers answer the interrupted transfer and the ABOR in different ways: 426 then 226,
        226 then 225/226, a single 226, 225 "no transfer to abort"... The NOOP's own 200 is
        the first reply we can be sure of, so read everything up to it."""
        self.send("ABOR")
        self.send("NOOP")
        try:
            await self.writer.drain()
        except OSError as exc:
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    exc.strerror or str(exc)) from exc
        for _ in range(6):
            reply = await self.read_reply()
            if reply.code == 200:
                return
        raise self._error("no NOOP answer after ABOR")

    async def retr_prefix(self, path: str, size: int, next_path: str | None = None) -> bytes:
        """The first `size` bytes of a file (fewer if it is shorter), then the transfer is
        aborted: the data connection is reset at once (and ABOR sent when the server does
        not answer the reset by itself).

        With `next_path`, the transfer of that file is started before returning (passive
        connection made, RETR sent): the server opens it while the caller looks at this
        sample. The next `retr_prefix(next_path, ...)` takes it over; any other command first
        resets it (still one data connection at a time)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == path:
            conn = ahead[1]
            await self._confirm_transfer(conn)
            data, _ = await self._take(conn, size)
        else:
            self._ahead = ahead
            data, _ = await self._receive("RETR", self.encode_path(path), size, SAMPLE_RCVBUF)
        if next_path is not None and self.broken is None:
            try:
                conn = await self._send_transfer("RETR", self.encode_path(next_path),
                                                 SAMPLE_RCVBUF)
            except (DicomguardError, OSError):
                pass          # the next retr_prefix starts afresh (or reports the broken session)
            else:
                self._ahead = (next_path, conn)
        return data

    async def listing(self, path: str, *, max_bytes: int = MAX_LISTING_BYTES,
                      max_entries: int = MAX_LISTING_ENTRIES) -> Listing:
        """Entries of a directory: MLSD when the server has it, else LIST (Unix or IIS)."""
        raw = self.encode_path(path)
        if self._mlsd is not False:
            try:
                lines, truncated = await self._list_lines("MLSD", raw, max_bytes)
            except FtpReplyError as exc:
                if self._mlsd is None and exc.reply.code in (500, 501, 502, 504):
                    self._mlsd = False
                else:
                    raise
            else:
                self._mlsd = True
                return self._parse(lines, parse_mlsd_line, "MLSD", truncated, max_entries)
        # LIST takes options and glob patterns on many servers: change directory instead.
        await self.expect("CWD", raw)
        lines, truncated = await self._list_lines("LIST", None, max_bytes)
        return self._parse(lines, parse_list_line, "LIST", truncated, max_entries)

    def _parse(self, lines: list[bytes], parser: _Parser, method: str, truncated: bool,
               max_entries: int) -> Listing:
        entries: list[ListEntry] = []
        unparsed = 0
        for line in lines:
            if not line.strip() or line.startswith(b"total "):
                continue
            entry = parser(line)
            if entry is None:
                unparsed += 1
                continue
            if entry.name in (".", "..") or "/" in entry.name:
                continue
            if len(entries) >= max_entries:
                truncated = True
                break
            if entry.raw is not None and len(self._raw_names) < MAX_LISTING_ENTRIES:
                self._raw_names.setdefault(entry.name, entry.raw)
            entries.append(entry)
        return Listing(tuple(entries), method, truncated, unparsed)

    async def _list_lines(self, command: str, argument: bytes | None,
                          max_bytes: int) -> tuple[list[bytes], bool]:
        data, complete = await self._receive(command, argument, max_bytes, LISTING_RCVBUF)
        lines = data.split(b"\n")
        if not complete:
            lines = lines[:-1]                # the last line may be cut
        return [line for line in lines if len(line) <= MAX_LINE], not complete

    async def store(self, path: str, data: bytes) -> FtpReply:
        """STOR a small file (the intrusive write test only). Returns the final reply."""
        conn = await self._start_transfer("STOR", self.encode_path(path))
        try:
            await conn.write(data, self.timeout)
        except BaseException:
            self._close_data(conn, reset=True)
            raise
        self._close_data(conn, reset=False)
        return await self.read_reply()

    async def delete(self, path: str) -> FtpReply:
        return await self.command("DELE", self.encode_path(path))


def _tcp_bytes_received(sock: socket.socket) -> int | None:
    """Bytes that arrived on the socket, read by us or not (Linux tcp_info), else None."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 256)
    except OSError:
        return None
    if len(info) < _TCPI_BYTES_RECEIVED + 8:
        return None
    return int(struct.unpack_from("=Q", info, _TCPI_BYTES_RECEIVED)[0])


#: Offset of tcpi_bytes_received in Linux's struct tcp_info (since Linux 4.1).
_TCPI_BYTES_RECEIVED = 128


class DataConnection:
    """A passive-mode data connection on a plain non-blocking socket.

    No stream buffer sits between the kernel and us: a StreamReader would keep reading from
    the socket ahead of what we asked for, and the small receive buffer set before connecting
    would no longer limit what the server can push. Reading `n` bytes takes `n` bytes from
    the kernel, the rest waits in the server (a window of at most the receive buffer)."""

    def __init__(self, sock: socket.socket, address: str, port: int) -> None:
        self.sock = sock
        self.address = address
        self.port = port
        self.received = 0
        self.command = ""
        self.epsv_queued = False       # an EPSV went out with the command (see _send_transfer)

    async def read(self, limit: int, timeout: float) -> tuple[bytes, bool]:
        """Up to `limit` bytes; (data, eof) where eof says the server finished sending."""
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        got = 0
        while got < limit:
            try:                                   # what already arrived: no timer needed
                chunk = self.sock.recv(min(65536, limit - got))
            except (BlockingIOError, InterruptedError):
                async with self._guard(timeout):
                    chunk = await loop.sock_recv(self.sock, min(65536, limit - got))
            except OSError as exc:
                raise ConnectivityError(self.address, self.port, PROTOCOL,
                                        exc.strerror or str(exc)) from exc
            if not chunk:
                self.received += got
                return b"".join(chunks), True
            chunks.append(chunk)
            got += len(chunk)
        self.received += got
        return b"".join(chunks), False

    async def write(self, data: bytes, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        async with self._guard(timeout):
            await loop.sock_sendall(self.sock, data)

    @asynccontextmanager
    async def _guard(self, timeout: float) -> AsyncIterator[None]:
        """One socket operation under `timeout`, its errors translated."""
        try:
            async with asyncio.timeout(timeout):
                yield
        except TimeoutError as exc:
            raise ReadTimeout(self.address, self.port, PROTOCOL,
                              "data connection stalled") from exc
        except OSError as exc:
            raise ConnectivityError(self.address, self.port, PROTOCOL,
                                    exc.strerror or str(exc)) from exc

    def close(self, *, reset: bool) -> int:
        """Close (with a TCP reset when `reset`); returns the bytes that reached this host."""
        wire = _tcp_bytes_received(self.sock)
        if reset:
            with suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
        self.sock.close()
        return wire if wire is not None else self.received


def _connect_now(sock: socket.socket, address: tuple[str, int]) -> bool:
    """Start a non-blocking connect; True when it is already complete (a nearby host answers
    the handshake before connect() returns), False when it is still in progress. A refusal
    raises OSError, as loop.sock_connect would."""
    err = sock.connect_ex(address)
    if err == 0:
        return True
    if err not in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, errno.EINTR):
        raise OSError(err, os.strerror(err))
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))
    try:
        sock.getpeername()
    except OSError:
        return False                     # not connected yet: wait for it
    return True


class _DataOpener:
    """Opens data connections to one host, inside a slot the session holds."""

    def __init__(self, connector: Connector, address: str, timeout: float) -> None:
        self.connector = connector
        self.address = address
        self.timeout = timeout
        self.opened = 0

    async def __call__(self, port: int, rcvbuf: int) -> DataConnection:
        self.connector.check_scope(self.address, port)
        if self.connector.limiter is not None:
            await self.connector.limiter.acquire()
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            if not _connect_now(sock, (self.address, port)):
                loop = asyncio.get_running_loop()
                async with asyncio.timeout(self.timeout):
                    await loop.sock_connect(sock, (self.address, port))
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeout(self.address, port, PROTOCOL,
                                 "data connection timed out") from exc
        except OSError as exc:
            sock.close()
            raise ConnectivityError(self.address, port, PROTOCOL,
                                    "data connection failed: " + (exc.strerror or str(exc))
                                    ) from exc
        except BaseException:
            sock.close()
            raise
        self.opened += 1
        return DataConnection(sock, self.address, port)


_Parser = Callable[[bytes], ListEntry | None]

class _PairLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


#: Per (connector, host) lock under which an FTP session takes its two slots.
_PAIR_LOCKS: weakref.WeakKeyDictionary[Connector, dict[str, _PairLock]] = \
    weakref.WeakKeyDictionary()


@asynccontextmanager
async def _pair_lock(connector: Connector, address: str) -> AsyncIterator[None]:
    locks = _PAIR_LOCKS.setdefault(connector, {})
    entry = locks.setdefault(address, _PairLock())
    entry.users += 1
    try:
        async with entry.lock:
            yield
    finally:
        entry.users -= 1
        if not entry.users:          # nobody holds or waits: keep the table bounded
            del locks[address]


@asynccontextmanager
async def ftp_session(connector: Connector, address: str, port: int, *,
                      timeout: float = 10.0, data: bool = True) -> AsyncIterator[FtpClient]:
    """An FtpClient on a new control connection (banner not read yet).

    With `data` (and a per-host cap of at least 2) a second per-host slot is held for the
    session's data connections; see the module docstring."""
    async with AsyncExitStack() as stack:
        opener: _DataOpener | None = None
        want_data = data and connector.per_host >= 2
        async with _pair_lock(connector, address):
            if want_data:
                await stack.enter_async_context(connector.slot(address, port))
                opener = _DataOpener(connector, address, connector.connect_timeout)
            reader, writer = await stack.enter_async_context(
                connector.open(address, port, PROTOCOL))
        client = FtpClient(reader, writer, address=address, port=port, timeout=timeout,
                           open_data=opener)
        try:
            yield client
        finally:
            client.discard_ahead()
