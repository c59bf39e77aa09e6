"""The FTP client and probe against scripted fakes: listing formats, ABOR reply orders, AUTH
TLS answers, garbage and tarpits (bounded by the timeouts), product identification."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from dicomguard import vulns
from dicomguard.checks import (
    ftp_001_anonymous_dicom,
    ftp_002_anonymous_login,
    ftp_003_no_tls,
    ftp_004_anonymous_writable,
    ftp_005_vulnerable_version,
)
from dicomguard.errors import ProtocolError, ReadTimeout
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net.connector import Connector
from dicomguard.net.ftp import (
    RESET_WAIT_MIN,
    FtpClient,
    FtpReplyError,
    ftp_session,
    parse_list_line,
    parse_mlsd_line,
)
from dicomguard.probes.ftp import FtpConfig, FtpFacts, identify, lookup_version, probe
from dicomguard.probes.share_walk import ShareLimits

from .fakeftp import FakeFtp, Script, hostile

CHECKS = (ftp_001_anonymous_dicom, ftp_002_anonymous_login, ftp_003_no_tls,
          ftp_004_anonymous_writable, ftp_005_vulnerable_version)


@contextlib.asynccontextmanager
async def _anonymous(address: str, script: Script, *,
                     timeout: float) -> AsyncIterator[FtpClient]:
    """A FakeFtp serving `script`, and a client logged in to it anonymously."""
    async with FakeFtp(address, script) as srv:
        conn = Connector(None, rate=0, per_host=2)
        async with ftp_session(conn, address, srv.port, timeout=timeout) as client:
            await client.banner()
            await client.login("anonymous", "x@y")
            yield client


# -- parsers ----------------------------------------------------------------------------------

def test_unix_list_lines() -> None:
    e = parse_list_line(b"drwxrwxrwx    2 0        0            4096 Nov 28 19:27 upload\r\n")
    assert e is not None and e.is_dir and e.writable and e.name == "upload"
    e = parse_list_line(b"drwxr-xr-x    2 ftp      ftp          4096 Jan  1  2021 in box")
    assert e is not None and e.name == "in box" and e.writable    # owned by the ftp account
    e = parse_list_line(b"drwxr-xr-x    2 root     root         4096 Jan  1  2021 pub")
    assert e is not None and e.writable is False
    e = parse_list_line(b"-rw-r--r--    1 0        0          282886 Mar 04 12:00 IM 0001")
    assert e is not None and not e.is_dir and e.size == 282886 and e.name == "IM 0001"
    e = parse_list_line(b"lrwxrwxrwx    1 0        0               4 Mar 04 12:00 cur -> /etc")
    assert e is not None and e.is_link and e.name == "cur"
    e = parse_list_line(b"-rw-r--r--    1 0        0              10 Mar 04 12:00 caf\xe9.dcm")
    assert e is not None and e.name == "café.dcm" and e.raw == b"caf\xe9.dcm"   # latin-1
    e = parse_list_line("-rw-r--r-- 1 0 0 10 Mar 04 12:00 café.dcm".encode())
    assert e is not None and e.name == "café.dcm" and e.raw is None             # UTF-8
    assert parse_list_line(b"total 12") is None
    assert parse_list_line(b"\x00\xff garbage") is None


def test_windows_iis_list_lines() -> None:
    e = parse_list_line(b"01-15-21  09:12AM       <DIR>          Radiology Exports")
    assert e is not None and e.is_dir and e.name == "Radiology Exports"
    e = parse_list_line(b"01-15-2021  21:12                524288 IM000001")
    assert e is not None and not e.is_dir and e.size == 524288 and e.name == "IM000001"


def test_mlsd_lines() -> None:
    e = parse_mlsd_line(b"type=dir;modify=20210101120000;perm=flcdmpe; incoming\r\n")
    assert e is not None and e.is_dir and e.writable and e.name == "incoming"
    e = parse_mlsd_line(b"type=dir;perm=el; pub")
    assert e is not None and e.writable is False
    e = parse_mlsd_line(b"type=file;size=1234;perm=r; a b.dcm")
    assert e is not None and e.size == 1234 and e.name == "a b.dcm"
    assert parse_mlsd_line(b"type=cdir;perm=el; /") is None
    assert parse_mlsd_line(b"nonsense") is None


# -- products ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("banner", "expected"), [
    ("220 (vsFTPd 3.0.3)", ("vsftpd", "3.0.3", None)),
    ("220 (vsFTPd 2.3.4)", ("vsftpd", "2.3.4", None)),
    ("220 ProFTPD 1.3.5a Server (Debian) [::ffff:10.0.0.5]", ("ProFTPD", "1.3.5a", None)),
    ("220 ProFTPD Server (ProFTPD Default Installation) [10.0.0.5]", ("ProFTPD", None, None)),
    ("220 NASFTPD Turbo station 1.3.5a Server (ProFTPD)", ("ProFTPD", "1.3.5a", "QNAP NAS")),
    ("220 DiskStation FTP server ready.", (None, None, "Synology NAS")),
    ("220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------", ("Pure-FTPd", None, None)),
    ("220-FileZilla Server 0.9.60 beta", ("FileZilla Server", "0.9.60", None)),
    ("220-FileZilla Server version 0.9.41 beta", ("FileZilla Server", "0.9.41", None)),
    ("220 Microsoft FTP Service", ("Microsoft FTP Service", None, None)),
    ("220 Serv-U FTP Server v15.1 ready...", ("Serv-U", "15.1", None)),
    ("220 hello", (None, None, None)),
])
def test_identify(banner: str, expected: tuple[str | None, str | None, str | None]) -> None:
    assert identify(banner) == expected


def test_lookup_version_forms() -> None:
    assert lookup_version("ProFTPD", "1.3.5a") == "1.3.5.1"
    assert lookup_version("ProFTPD", "1.3.5") == "1.3.5"
    assert lookup_version("ProFTPD", "1.3.6rc2") == "1.3.5.999"
    assert vulns.parse_version("1.3.5.1") > vulns.parse_version("1.3.5")  # type: ignore[operator]


def test_version_check_with_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = (
        vulns.Vulnerability("ProFTPD", "CVE-2015-3306", "1.3.5.1", Severity.CRITICAL, 10.0,
                            "mod_copy", ()),
    )
    monkeypatch.setattr(vulns, "table", lambda: table)
    ep = Endpoint("127.0.0.1", 21, "ftp")
    old = FtpFacts(ep, True, True, "ProFTPD 1.3.5 Server", "ProFTPD", "1.3.5")
    out = ftp_005_vulnerable_version.evaluate(old)
    assert out.status is Status.FAIL and out.severity is Severity.CRITICAL
    patched = FtpFacts(ep, True, True, "ProFTPD 1.3.5a Server", "ProFTPD", "1.3.5a")
    assert ftp_005_vulnerable_version.evaluate(patched).status is Status.PASS
    unknown = FtpFacts(ep, True, True, "Microsoft FTP Service", "Microsoft FTP Service")
    assert ftp_005_vulnerable_version.evaluate(unknown).status is Status.UNKNOWN


# -- the client against scripted servers ------------------------------------------------------

BIG = b"\x00" * 128 + b"DICM" + bytes(range(256)) * 16384          # 4 MiB


@pytest.mark.parametrize("abort_replies", [
    b"426 Connection closed; transfer aborted.\r\n226 ABOR command successful\r\n",
    b"226 Transfer complete\r\n225 ABOR command successful\r\n",
    b"226 Closing data connection\r\n",                       # one reply for both
    b"451 Write error\r\n500 Unknown command\r\n",
])
def test_retr_prefix_abort_orders(fake_address: str, abort_replies: bytes) -> None:
    script = Script(files={"/big.dcm": BIG, "/small": b"tiny file"},
                    abort_replies=abort_replies)

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            for _ in range(3):                 # stays in step after every abort
                data = await client.retr_prefix("/big.dcm", 4096)
                assert data == BIG[:4096]
            assert await client.retr_prefix("/small", 4096) == b"tiny file"
            assert client.wire_by_command["RETR"] < 3 * 4096 + 3 * 64 * 1024
            await client.quit()

    asyncio.run(run())
    assert script.commands.count("ABOR") == 3


@pytest.mark.parametrize("reset_reply", [
    b"426 Failure writing network stream.\r\n",
    b"226 Transfer complete.\r\n",                  # the file was already in its socket
    b"451-Transfer aborted\r\n451 (data connection reset)\r\n",
    b"426 Connection closed.\r\n226 Closing data connection.\r\n",   # two, no ABOR
])
@pytest.mark.parametrize("banner", [b"220 Fake FTP ready\r\n", b"220 (vsFTPd 3.0.3)\r\n"])
def test_reset_answered_by_the_server_needs_no_abor(fake_address: str, reset_reply: bytes,
                                                     banner: bytes) -> None:
    """The server answers a reset transfer by itself: one reply, no ABOR, and the next
    transfer's EPSV goes out with the reset (with RETR itself for vsftpd, which reads no
    command during a transfer); the session stays in step through a listing."""
    listing = b"-rw-r--r--    1 0        0            1000 Mar 04 12:00 big.dcm\r\n"
    script = Script(files={"/big.dcm": BIG, "/small": b"tiny file"}, listing=listing,
                    reset_reply=reset_reply, banner=banner)

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            start = time.monotonic()
            for _ in range(5):
                assert await client.retr_prefix("/big.dcm", 4096) == BIG[:4096]
            assert time.monotonic() - start < RESET_WAIT_MIN   # never waited for it
            assert await client.retr_prefix("/small", 4096) == b"tiny file"
            got = await client.listing("/")                  # CWD after an EPSV ahead
            assert [e.name for e in got.entries] == ["big.dcm"]
            assert await client.retr_prefix("/big.dcm", 100) == BIG[:100]
            assert client.data_connections == 9
            await client.quit()

    asyncio.run(run())
    assert "ABOR" not in script.commands and "NOOP" not in script.commands
    assert script.commands.count("EPSV") == 10       # one spare, sent ahead after the last reset
    assert script.commands[-1] == "QUIT"


def test_next_transfer_started_ahead_taken_over_or_cancelled(fake_address: str) -> None:
    """retr_prefix(path, size, next_path) starts the next RETR before returning: the next
    call takes it over; a refused one (550) is reported by that call; one that is not wanted
    is reset before any other command, and the session stays in step."""
    listing = b"-rw-r--r--    1 0        0            1000 Mar 04 12:00 big.dcm\r\n"
    script = Script(files={"/big.dcm": BIG, "/b2": BIG, "/small": b"tiny file"},
                    listing=listing, reset_reply=b"426 Failure writing network stream.\r\n")

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            assert await client.retr_prefix("/big.dcm", 4096, "/b2") == BIG[:4096]
            assert await client.retr_prefix("/b2", 4096, "/small") == BIG[:4096]
            assert await client.retr_prefix("/small", 4096, "/missing") == b"tiny file"
            with pytest.raises(FtpReplyError, match="550"):
                await client.retr_prefix("/missing", 4096, None)
            # started ahead, then not wanted: reset before the listing
            assert await client.retr_prefix("/big.dcm", 100, "/b2") == BIG[:100]
            got = await client.listing("/")
            assert [e.name for e in got.entries] == ["big.dcm"]
            assert await client.retr_prefix("/big.dcm", 100, "/b2") == BIG[:100]
            assert client.broken is None
            await client.quit()                  # the last one ahead is reset first
            assert client.data_connections == 10     # 8 RETR, MLSD tried, LIST

    asyncio.run(run())
    retrs = [c for c in script.commands if c.startswith("RETR")]
    assert retrs == ["RETR /big.dcm", "RETR /b2", "RETR /small", "RETR /missing",
                     "RETR /big.dcm", "RETR /b2", "RETR /big.dcm", "RETR /b2"]
    assert "ABOR" not in script.commands and script.commands[-1] == "QUIT"


def test_late_reset_reply_falls_back_to_abor_and_stays_in_step(fake_address: str) -> None:
    """The final reply comes only after the client gave up waiting: ABOR + NOOP, the late
    426 read in any order, and ABOR straight away for every later reset."""
    script = Script(files={"/big.dcm": BIG, "/small": b"tiny file"},
                    reset_reply=b"426 Connection closed; transfer aborted.\r\n",
                    reset_delay=RESET_WAIT_MIN * 2)

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            for _ in range(3):
                assert await client.retr_prefix("/big.dcm", 4096) == BIG[:4096]
            assert await client.retr_prefix("/small", 4096) == b"tiny file"
            assert client.broken is None
            await client.quit()

    asyncio.run(run())
    assert script.commands.count("ABOR") == 3 and script.commands.count("NOOP") == 3
    assert script.commands.count("EPSV") == 4               # never sent ahead


def test_windows_listing_and_pasv_address_ignored(fake_address: str) -> None:
    listing = (b"01-15-21  09:12AM       <DIR>          Exports\r\n"
               b"01-15-21  09:12AM                  300 IM000001\r\n")
    script = Script(epsv=False, listing=listing, files={"/IM000001": b"x" * 300})

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            got = await client.listing("/")
            assert got.method == "LIST"
            assert [(e.name, e.is_dir, e.size) for e in got.entries] == [
                ("Exports", True, None), ("IM000001", False, 300)]
            # PASV announced 10.9.8.7: the client connected to the control address
            assert await client.retr_prefix("/IM000001", 100) == b"x" * 100

    asyncio.run(run())
    assert "MLSD /" in script.commands and "CWD /" in script.commands


def test_huge_listing_is_truncated_and_session_stays_usable(fake_address: str) -> None:
    line = b"-rw-r--r--    1 0        0            1000 Mar 04 12:00 IM%07d\r\n"
    listing = b"".join(line % i for i in range(60_000))            # ~4 MB
    script = Script(listing=listing, files={"/small": b"tiny file"})

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=3) as client:
            got = await client.listing("/", max_bytes=200_000, max_entries=1000)
            assert got.truncated and len(got.entries) == 1000
            assert await client.retr_prefix("/small", 100) == b"tiny file"

    asyncio.run(run())


def test_stalled_data_connection_times_out_and_breaks_the_session(fake_address: str) -> None:
    script = Script(files={"/a": b"x" * 1000}, stall_data=True)

    async def run() -> None:
        async with _anonymous(fake_address, script, timeout=0.5) as client:
            start = time.monotonic()
            with pytest.raises(ReadTimeout):
                await client.retr_prefix("/a", 100)
            assert time.monotonic() - start < 2
            with pytest.raises(ProtocolError, match="unusable"):   # no stale replies
                await client.retr_prefix("/a", 100)

    asyncio.run(run())


def _probe(address: str, port: int, **cfg: object) -> FtpFacts:
    config = FtpConfig(timeout=1.0, limits=ShareLimits(time_budget=5.0), **cfg)  # type: ignore[arg-type]
    return asyncio.run(probe(Endpoint(address, port, "ftp"),
                             Connector(None, rate=0, per_host=2, connect_timeout=1.0), config))


def test_auth_tls_from_feat_and_from_234(fake_address: str) -> None:
    async def run(script: Script) -> FtpFacts:
        async with FakeFtp(fake_address, script) as srv:
            return await probe(Endpoint(fake_address, srv.port, "ftp"),
                               Connector(None, rate=0, per_host=2),
                               FtpConfig(timeout=2.0, walk=False))

    feat = Script(feat=b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n",
                  login=b"530 Login incorrect\r\n")
    facts = asyncio.run(run(feat))
    assert facts.tls_offered is True and "FEAT" in (facts.tls_evidence or "")
    assert "AUTH TLS" not in feat.commands                    # never sent: FEAT said it
    assert ftp_003_no_tls.evaluate(facts).status is Status.PASS
    assert ftp_002_anonymous_login.evaluate(facts).status is Status.PASS

    auth = Script(auth=b"234 Proceed with negotiation\r\n", login=b"530 Login incorrect\r\n")
    facts = asyncio.run(run(auth))
    assert facts.tls_offered is True and facts.error is None
    assert auth.commands.count("FEAT") == 2                   # a fresh session after 234
    assert auth.commands[-1] == "QUIT"

    wants_tls = Script(login=b"530 Non-anonymous sessions must use encryption.\r\n")
    facts = asyncio.run(run(wants_tls))
    assert facts.login_requires_tls and facts.anonymous is False


@pytest.mark.parametrize("behaviour", ["garbage", "tarpit"])
def test_hostile_ports_fail_cleanly_in_time(fake_address: str, behaviour: str) -> None:
    async def run() -> tuple[FtpFacts, float]:
        server = await hostile(fake_address, behaviour)
        try:
            port = server.sockets[0].getsockname()[1]
            start = time.monotonic()
            facts = await probe(Endpoint(fake_address, port, "ftp"),
                                Connector(None, rate=0, per_host=2, connect_timeout=1.0),
                                FtpConfig(timeout=1.0))
            return facts, time.monotonic() - start
        finally:
            server.close()
            await server.wait_closed()

    facts, seconds = asyncio.run(run())
    assert seconds < 3.0
    assert facts.reachable and not facts.is_ftp and facts.error
    assert ("not an FTP reply" if behaviour == "garbage" else "no reply in time") in facts.error
    for check in CHECKS:
        assert check.evaluate(facts).status in (Status.ERROR, Status.UNKNOWN), check.META.id


def test_closed_port(fake_address: str) -> None:
    facts = _probe(fake_address, 1)
    assert not facts.reachable and facts.error and "refused" in facts.error
    assert ftp_001_anonymous_dicom.evaluate(facts).status is Status.ERROR
