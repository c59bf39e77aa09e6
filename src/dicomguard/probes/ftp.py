"""FTP probe: banner and product, FTPS offered, anonymous login, and a bounded walk of what an
anonymous user can read, sampled for DICOM exactly like every other share protocol.

    facts = await probe(endpoint, connector, FtpConfig(limits=ShareLimits(max_files=500)))

Steps, on one FTP session (two per-host slots: control + data, see net/ftp.py):

1. banner (product and version: vsftpd, ProFTPD, Pure-FTPd, FileZilla Server, Microsoft FTP
   Service, Serv-U, pyftpdlib; Synology and QNAP NAS banners name the device);
2. FEAT (before login); FTPS is "offered" when FEAT lists AUTH TLS/SSL, otherwise AUTH TLS is
   sent and its answer decides. A 234 means the server now expects a TLS handshake, so the
   session is closed and a fresh one used for the rest: nothing is upgraded;
3. anonymous login with `anonymous`, then `ftp` (a password that looks like an address);
4. when logged in: `walk_and_sample` through `FtpRemoteFS` (MLSD or LIST), which counts DICOM
   files, patients and studies by salted hash, and writable directories from the listing's
   permissions (Unix mode bits, MLSD perm facts): detected without writing;
5. only with `intrusive`: a write test (STOR of a tiny, clearly named text file into a
   directory the listing says is writable, or the root, then DELE).

`probe` never raises for what the peer does: every failure lands in `FtpFacts.error` (or the
walk's own errors), and the whole probe runs under `FtpConfig.deadline()`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from dicomguard import vulns
from dicomguard.audit.runner import AuditContext
from dicomguard.errors import ConnectivityError, DicomguardError, ProtocolError
from dicomguard.models import Endpoint
from dicomguard.net.connector import Connector
from dicomguard.net.ftp import (
    DataUnavailable,
    FtpClient,
    FtpReply,
    FtpReplyError,
    ftp_session,
    printable,
)
from dicomguard.probes.share_walk import RemoteEntry, ShareLimits, shorten, walk_and_sample

ANONYMOUS_USERS = ("anonymous", "ftp")
#: Attributes that identify the patient directly: with one of them in the sampled files, an
#: exposure of DICOM files is an exposure of identified patients.
IDENTIFYING = frozenset({"PatientName", "PatientID", "OtherPatientIDs",
                         "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName"})
ANONYMOUS_PASSWORD = "dicomguard@example.org"
WRITE_TEST_PREFIX = "dicomguard-write-test-"
WRITE_TEST_BODY = (b"Written by dicomguard's intrusive FTP write test (anonymous upload check).\n"
                   b"It deletes this file at once; if it is still here, delete it.\n")


@dataclass(frozen=True, slots=True)
class FtpConfig:
    timeout: float = 10.0                 # each reply / data read, seconds
    limits: ShareLimits = field(default_factory=ShareLimits)
    show_phi: bool = False                # full folder paths (overrides limits.show_phi)
    walk: bool = True                     # walk and sample when an anonymous login succeeds
    intrusive: bool = False               # write test (STOR + DELE)
    users: tuple[str, ...] = ANONYMOUS_USERS
    password: str = ANONYMOUS_PASSWORD
    audit: AuditContext | None = field(default=None, compare=False, repr=False)

    def deadline(self) -> float:
        """Backstop for the whole probe: login steps, the walk's budget, the write test."""
        return self.limits.time_budget + 12 * self.timeout + 5.0


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    user: str
    accepted: bool
    code: int | None = None
    message: str = ""                      # the server's text, sanitised and shortened
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WriteTest:
    directory: str                         # shortened unless show_phi
    stored: bool
    deleted: bool = False
    store_reply: int | None = None
    delete_reply: int | None = None
    left_behind: str | None = None         # the test file's path when DELE failed
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FtpFacts:
    endpoint: Endpoint
    reachable: bool = False
    is_ftp: bool = False                   # a 220 greeting was read
    banner: str | None = None              # greeting text, sanitised, first 200 characters
    product: str | None = None
    version: str | None = None
    device: str | None = None              # "Synology NAS", "QNAP NAS" when the banner says
    features: tuple[str, ...] = ()
    tls_offered: bool | None = None        # AUTH TLS/SSL accepted or listed; None: unknown
    tls_evidence: str | None = None        # "FEAT: AUTH TLS" or "AUTH TLS: 234 ..."
    logins: tuple[LoginAttempt, ...] = ()
    anonymous_user: str | None = None      # the anonymous user that was let in
    login_requires_tls: bool = False       # refused because the server wants TLS first
    listing_method: str | None = None      # "MLSD" or "LIST"
    walk: dict[str, Any] | None = None     # WalkResult.facts(), PHI-free
    walk_error: str | None = None          # why no walk happened although logged in
    writable_dirs: int = 0                 # directories the listing says anonymous may write
    writable_examples: tuple[str, ...] = ()   # a few of them, shortened unless show_phi
    write_test: WriteTest | None = None
    bytes_read: int = 0                    # payload bytes kept from data connections
    wire_bytes: int = 0                    # bytes that reached us on data connections
    data_connections: int = 0
    error: str | None = None
    seconds: float = 0.0

    @property
    def anonymous(self) -> bool | None:
        """True: an anonymous login succeeded; False: refused; None: not established."""
        if self.anonymous_user:
            return True
        if any(a.error is None and a.code is not None for a in self.logins):
            return False
        return None

    def summary(self) -> dict[str, Any]:
        """PHI-free facts for the store and reports."""
        out: dict[str, Any] = {
            "is_ftp": self.is_ftp, "banner": self.banner, "product": self.product,
            "version": self.version, "device": self.device, "tls_offered": self.tls_offered,
            "anonymous": self.anonymous, "anonymous_user": self.anonymous_user,
            "listing_method": self.listing_method, "writable_dirs": self.writable_dirs,
            "bytes_read": self.bytes_read, "wire_bytes": self.wire_bytes,
        }
        if self.walk is not None:
            out["walk"] = self.walk
        if self.walk_error:
            out["walk_error"] = self.walk_error
        if self.write_test is not None:
            out["write_test"] = {"stored": self.write_test.stored,
                                 "deleted": self.write_test.deleted}
        if self.error:
            out["error"] = self.error
        return out


# ---------------------------------------------------------------------------------------------
# products from banners

_VERSION = r"(\d+(?:\.\d+)+[a-z]?(?:rc\d+)?)"
_PRODUCTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("vsftpd", re.compile(r"\bvsftpd\b(?:\s+" + _VERSION + ")?", re.I)),
    ("ProFTPD", re.compile(r"\bProFTPD\b(?:\s+" + _VERSION + ")?", re.I)),
    ("Pure-FTPd", re.compile(r"\bPure-FTPd\b(?:\s+" + _VERSION + ")?", re.I)),
    ("FileZilla Server", re.compile(r"\bFileZilla Server\b(?:\s+(?:version\s+)?" + _VERSION
                                    + ")?", re.I)),
    ("Microsoft FTP Service", re.compile(r"\bMicrosoft FTP Service\b()", re.I)),
    ("Serv-U", re.compile(r"\bServ-U FTP Server\b(?:\s+v?" + _VERSION + ")?", re.I)),
    ("pyftpdlib", re.compile(r"\bpyftpdlib\b(?:\s+" + _VERSION + ")?", re.I)),
    ("wu-ftpd", re.compile(r"\bwu-" + _VERSION, re.I)),
)
# QNAP's ProFTPD build greets "NASFTPD Turbo station 1.3.5a Server (ProFTPD)".
_QNAP = re.compile(r"NASFTPD Turbo station\s+" + _VERSION + r"?", re.I)
_SYNOLOGY = re.compile(r"\bSynology\b|\bDiskStation\b", re.I)


def identify(banner: str) -> tuple[str | None, str | None, str | None]:
    """(product, version, device) from a greeting; None where the banner does not say."""
    device: str | None = None
    qnap = _QNAP.search(banner)
    if qnap:
        return "ProFTPD", qnap.group(1), "QNAP NAS"
    if _SYNOLOGY.search(banner):
        device = "Synology NAS"
    for product, pattern in _PRODUCTS:
        m = pattern.search(banner)
        if m:
            return product, (m.group(1) or None), device
    return None, None, device


def lookup_version(product: str | None, version: str | None) -> str | None:
    """The announced version as vulns.lookup compares it ('1.3.5a' -> '1.3.5.1',
    '1.3.6rc2' -> '1.3.5.999'): kept for the reports; vulns.parse_version does the work."""
    if not product or not version:
        return None
    parsed = vulns.parse_version(version)
    return ".".join(map(str, parsed)) if parsed is not None else version


# ---------------------------------------------------------------------------------------------
# the walker's view of an FTP session


class FtpRemoteFS:
    """RemoteFS over a logged-in FtpClient; remembers writable directories it lists."""

    def __init__(self, client: FtpClient, *, show_phi: bool, path_levels: int,
                 max_listing_entries: int) -> None:
        self.client = client
        self.show_phi = show_phi
        self.path_levels = path_levels
        self.max_listing_entries = max_listing_entries
        self.method: str | None = None
        self.writable: list[str] = []          # full paths (kept internal), first few
        self.truncated_listings = 0

    async def list_dir(self, path: str) -> list[RemoteEntry]:
        listing = await self.client.listing(path, max_entries=self.max_listing_entries)
        self.method = listing.method
        if listing.truncated:
            self.truncated_listings += 1
        out = []
        for e in listing.entries:
            if e.is_link:                      # never follow links: loops, other trees
                continue
            out.append(RemoteEntry(e.name, e.is_dir, e.size, e.writable))
            if e.is_dir and e.writable and len(self.writable) < 5:
                self.writable.append(path.rstrip("/") + "/" + e.name)
        return out

    async def read_prefix(self, path: str, size: int) -> bytes:
        return await self.client.retr_prefix(path, size)

    async def read_prefix_then(self, path: str, size: int, next_path: str | None) -> bytes:
        """read_prefix, then the next file's transfer started while this one is audited."""
        return await self.client.retr_prefix(path, size, next_path)

    def show(self, path: str) -> str:
        return path if self.show_phi else shorten(path, self.path_levels)


# ---------------------------------------------------------------------------------------------
# the probe


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return printable(text, 200)


class _Prober:
    def __init__(self, endpoint: Endpoint, connector: Connector, cfg: FtpConfig) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.cfg = cfg
        self.limits = replace(cfg.limits, show_phi=cfg.show_phi or cfg.limits.show_phi)
        self.facts: dict[str, Any] = {"endpoint": endpoint}
        self.logins: list[LoginAttempt] = []
        self.bytes_read = 0
        self.wire_bytes = 0
        self.data_connections = 0

    def session(self) -> Any:
        return ftp_session(self.connector, self.endpoint.address, self.endpoint.port,
                           timeout=self.cfg.timeout)

    def _account(self, client: FtpClient) -> None:
        self.bytes_read += client.bytes_received
        self.wire_bytes += client.wire_bytes
        self.data_connections += client.data_connections

    async def _greet(self, client: FtpClient) -> bool:
        reply = await client.banner()
        if self.facts.get("banner") is None:
            text = printable(reply.message)
            self.facts["banner"] = text
            product, version, device = identify(" ".join(reply.lines))
            self.facts.update(product=product, version=version, device=device)
        if reply.code != 220:
            self.facts["is_ftp"] = reply.code in (120, 421)
            self.facts["error"] = f"greeting {reply.code}: {printable(reply.message, 120)}"
            return False
        self.facts["is_ftp"] = True
        return True

    async def run(self) -> None:
        reconnect = False
        async with self.session() as client:
            self.facts["reachable"] = True
            try:
                if not await self._greet(client):
                    return
                feats = await client.features()
                self.facts["features"] = feats
                reconnect = await self._tls(client, feats)
                if not reconnect:
                    await self._logins_and_walk(client)
                    await client.quit()
            finally:
                self._account(client)
        if reconnect:
            async with self.session() as client:
                try:
                    if await self._greet(client):
                        await client.features()
                        await self._logins_and_walk(client)
                        await client.quit()
                finally:
                    self._account(client)

    async def _tls(self, client: FtpClient, feats: tuple[str, ...]) -> bool:
        """Is FTPS offered? Returns True when the session must be replaced (AUTH accepted)."""
        for feat in feats:
            words = feat.split()
            if words[0] == "AUTH" and any(w.startswith(("TLS", "SSL")) for w in words[1:]):
                self.facts.update(tls_offered=True, tls_evidence=f"FEAT: {printable(feat, 60)}")
                return False
        reply = await client.command("AUTH", "TLS")
        evidence = f"AUTH TLS: {reply.code} {printable(reply.message, 80)}"
        if reply.code == 234:
            self.facts.update(tls_offered=True, tls_evidence=evidence)
            return True                  # the server waits for a handshake: start afresh
        self.facts.update(tls_offered=False, tls_evidence=evidence)
        return False

    async def _logins_and_walk(self, client: FtpClient) -> None:
        for user in self.cfg.users:
            try:
                reply = await client.login(user, self.cfg.password)
            except (ConnectivityError, ProtocolError) as exc:
                self.logins.append(LoginAttempt(user, False, error=_describe(exc)))
                return                    # the connection is gone or confused: stop here
            accepted = reply.code in (230, 202)
            self.logins.append(LoginAttempt(user, accepted, reply.code,
                                            printable(reply.message, 120)))
            if accepted:
                self.facts["anonymous_user"] = user
                break
            if _wants_tls(reply):
                self.facts["login_requires_tls"] = True
            if reply.code == 421:
                return
        if not self.facts.get("anonymous_user"):
            return
        await self._walk(client)
        if self.cfg.intrusive:
            await self._write_test(client)

    async def _walk(self, client: FtpClient) -> None:
        fs = FtpRemoteFS(client, show_phi=self.limits.show_phi,
                         path_levels=self.limits.path_levels,
                         max_listing_entries=self.limits.max_entries)
        self._fs = fs
        if not self.cfg.walk:
            self.facts["walk_error"] = "walk disabled"
            return
        if not client.data_available:
            self.facts["walk_error"] = ("per-host cap of 1: an FTP transfer needs two "
                                        "connections (control and data)")
            return
        try:
            await client.binary()
        except (ConnectivityError, ProtocolError) as exc:
            self.facts["walk_error"] = f"TYPE I: {_describe(exc)}"
            return
        ctx = self.cfg.audit or AuditContext(show_phi=self.limits.show_phi)
        result = await walk_and_sample(fs, self.limits, ctx)
        walk = result.facts()
        # facts() keeps the 15 most common attributes; identifiability needs them all.
        walk["identifying_attributes"] = sorted(IDENTIFYING & set(result.summary.attributes))
        if fs.truncated_listings:
            walk["truncated_listings"] = fs.truncated_listings
            if "listing_size" not in walk["limits_reached"]:
                walk["limits_reached"].append("listing_size")
        self.facts.update(walk=walk, listing_method=fs.method,
                          writable_dirs=result.writable_dirs,
                          writable_examples=tuple(fs.show(p) for p in fs.writable))
        if result.directories == 0 and result.errors:
            self.facts["walk_error"] = "the root directory could not be listed: " + ", ".join(
                sorted(result.errors))

    async def _write_test(self, client: FtpClient) -> None:
        fs: FtpRemoteFS | None = getattr(self, "_fs", None)
        candidates = [*(fs.writable[:3] if fs else []), "/"]
        name = WRITE_TEST_PREFIX + secrets.token_hex(4) + ".txt"
        last: WriteTest | None = None
        for directory in candidates:
            path = directory.rstrip("/") + "/" + name
            shown = fs.show(directory) if fs else directory
            try:
                reply = await client.store(path, WRITE_TEST_BODY)
            except FtpReplyError as exc:
                last = WriteTest(shown, False, store_reply=exc.reply.code)
                continue
            except (ConnectivityError, ProtocolError) as exc:
                last = WriteTest(shown, False, error=_describe(exc))
                break
            if reply.code not in (226, 250):
                last = WriteTest(shown, False, store_reply=reply.code)
                continue
            deleted: FtpReply | None = None
            error = None
            try:
                deleted = await client.delete(path)
            except (ConnectivityError, ProtocolError) as exc:
                error = _describe(exc)
            ok = deleted is not None and deleted.code == 250
            last = WriteTest(shown, True, ok, reply.code, deleted.code if deleted else None,
                             None if ok else (fs.show(path) if fs else path), error)
            break
        self.facts["write_test"] = last


def _wants_tls(reply: FtpReply) -> bool:
    if reply.code in (534, 522):
        return True
    text = reply.message.lower()
    return reply.code == 530 and any(w in text for w in ("tls", "ssl", "encrypt", "secure"))


async def probe(endpoint: Endpoint, connector: Connector, cfg: FtpConfig | None = None
                ) -> FtpFacts:
    """Gather FTP facts from one endpoint; never raises for what the peer does."""
    cfg = cfg or FtpConfig()
    prober = _Prober(endpoint, connector, cfg)
    start = time.monotonic()
    try:
        async with asyncio.timeout(cfg.deadline()):
            await prober.run()
    except TimeoutError:
        prober.facts["error"] = "probe deadline reached"
    except DataUnavailable as exc:
        prober.facts["error"] = _describe(exc)
    except (DicomguardError, OSError, ValueError) as exc:
        prober.facts["error"] = _describe(exc)
    f = prober.facts
    return FtpFacts(
        endpoint=endpoint, reachable=bool(f.get("reachable")), is_ftp=bool(f.get("is_ftp")),
        banner=f.get("banner"), product=f.get("product"), version=f.get("version"),
        device=f.get("device"), features=tuple(f.get("features", ())),
        tls_offered=f.get("tls_offered"), tls_evidence=f.get("tls_evidence"),
        logins=tuple(prober.logins), anonymous_user=f.get("anonymous_user"),
        login_requires_tls=bool(f.get("login_requires_tls")),
        listing_method=f.get("listing_method"), walk=f.get("walk"),
        walk_error=f.get("walk_error"), writable_dirs=int(f.get("writable_dirs", 0)),
        writable_examples=tuple(f.get("writable_examples", ())),
        write_test=f.get("write_test"), bytes_read=prober.bytes_read,
        wire_bytes=prober.wire_bytes, data_connections=prober.data_connections,
        error=f.get("error"), seconds=round(time.monotonic() - start, 3))
