"""A small asynchronous HTTP/1.1 client for probes (GET/HEAD only), over the guarded Connector.

Why not a general HTTP library: probes need exactly what the Connector gives (scope guard, rate
limit, per-host cap, explicit timeouts), bounded response sizes (a hostile server must not make
us read gigabytes), partial body reads (the first N bytes of a file in an open directory), and
no redirects followed off the endpoint. One request per connection (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field

from dicomguard.errors import ProtocolError, ReadTimeout
from dicomguard.net.connector import Connector

MAX_HEADER_BYTES = 64 * 1024
USER_AGENT = "dicomguard (authorised security assessment)"


class TlsHandshakeError(ProtocolError):
    """The TCP connection was made but no TLS session came up (a plain-text port, or a TLS
    configuration we cannot talk to)."""


@dataclass(frozen=True, slots=True)
class TlsSession:
    """The negotiated TLS session of an HTTPS request (the certificate is not verified)."""

    version: str | None
    cipher: str | None
    certificate_der: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names, last value wins
    body: bytes = b""
    truncated: bool = False     # body cut at max_body
    content_length: int | None = None
    tls: TlsSession | None = None   # what the TLS handshake negotiated (HTTPS only)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    try:
        text = raw.decode("iso-8859-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - iso-8859-1 decodes any byte
        raise ProtocolError("undecodable HTTP header") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP response: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError("malformed HTTP header line")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, bool]:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("bad chunk size in HTTP response") from exc
        if size < 0:
            raise ProtocolError("bad chunk size in HTTP response")
        if size == 0:
            return bytes(out), False
        want = min(size, max_body - len(out))
        out += await reader.readexactly(want)
        if len(out) >= max_body:
            return bytes(out), True
        await reader.readexactly(size - want + 2)


async def _read_to_eof(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, bool]:
    """A body delimited by the end of the connection, cut at max_body."""
    out = bytearray()
    while len(out) < max_body:
        chunk = await reader.read(max_body - len(out))
        if not chunk:
            return bytes(out), False
        out += chunk
    return bytes(out), True


def _not_http(first: bytes) -> str:
    if first[:1] in (b"\x15", b"\x16") and first[1:2] == b"\x03":
        return "TLS record in answer to plain HTTP (the port speaks TLS)"
    return f"not an HTTP response: {first!r}"


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def request(connector: Connector, address: str, port: int, path: str, *,
                  method: str = "GET", host: str | None = None, tls: bool = False,
                  headers: dict[str, str] | None = None, timeout: float = 5.0,
                  max_body: int = 1 << 20, ssl_context: ssl.SSLContext | None = None,
                  server_hostname: str | None = None) -> HttpResponse:
    """One request; reads at most `max_body` bytes of body. Raises ConnectivityError,
    ReadTimeout or ProtocolError; never follows redirects.

    A body longer than `max_body` is cut (`truncated`) and the connection closed: a partial
    read of a large file costs `max_body` bytes plus what the kernel buffers held. Ask for a
    byte range (`headers={"Range": "bytes=0-N"}`) so the server sends no more than that.
    With `tls`, the certificate is not verified (the question is what is exposed, not whom to
    trust); `ssl_context` overrides the default context (e.g. one accepting old protocols)."""
    if method not in ("GET", "HEAD"):
        raise ValueError("probes only read: GET or HEAD")
    if not path.startswith("/") or any(c.isspace() or ord(c) < 0x20 or ord(c) > 0x7E
                                       for c in path):
        raise ValueError("request path must be an absolute, percent-encoded ASCII path")
    protocol = "https" if tls else "http"
    async with connector.open(address, port, protocol) as (reader, writer):
        try:
            async with asyncio.timeout(timeout):
                session: TlsSession | None = None
                if tls:
                    try:
                        await writer.start_tls(ssl_context or _tls_context(),
                                               server_hostname=server_hostname)
                    except (OSError, asyncio.IncompleteReadError) as exc:
                        raise TlsHandshakeError(
                            f"TLS handshake failed: {type(exc).__name__}", address=address,
                            port=port, protocol=protocol) from exc
                    sslobj = writer.get_extra_info("ssl_object")
                    if sslobj is not None:
                        cipher = sslobj.cipher()
                        session = TlsSession(sslobj.version(), cipher[0] if cipher else None,
                                             sslobj.getpeercert(binary_form=True))
                host_header = host or (f"[{address}]" if ":" in address else address)
                lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}:{port}",
                         f"User-Agent: {USER_AGENT}", "Accept: */*", "Connection: close"]
                lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                await writer.drain()
                first = await reader.readexactly(5)
                if first != b"HTTP/":
                    raise ProtocolError(_not_http(first), address=address, port=port,
                                        protocol=protocol)
                try:
                    head = first + await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError as exc:
                    raise ProtocolError("HTTP header too long", address=address, port=port,
                                        protocol=protocol) from exc
                if len(head) > MAX_HEADER_BYTES:
                    raise ProtocolError("HTTP header too long")
                status, reason, hdrs = _parse_head(head[:-4])
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    return HttpResponse(status, reason, hdrs, tls=session)
                length_text = hdrs.get("content-length")
                length = int(length_text) if length_text and length_text.isdigit() else None
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    body, truncated = await _read_chunked(reader, max_body)
                elif length is not None:
                    body = await reader.readexactly(min(length, max_body))
                    truncated = length > max_body
                else:
                    body, truncated = await _read_to_eof(reader, max_body)
                return HttpResponse(status, reason, hdrs, body, truncated, length, session)
        except TimeoutError as exc:
            writer.transport.abort()   # no polite TLS close with a peer that does not answer
            raise ReadTimeout(address, port, protocol, f"no HTTP answer within {timeout:g} s"
                              ) from exc
        except ProtocolError:
            writer.transport.abort()
            raise
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            writer.transport.abort()
            raise ProtocolError(f"HTTP response cut short: {type(exc).__name__}",
                                address=address, port=port, protocol=protocol) from exc
