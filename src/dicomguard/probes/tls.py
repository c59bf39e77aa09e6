"""TLS handshake probe: does a port complete a handshake, with which version and certificate.

Used for DICOM over TLS (PS3.15 Annex B, port 2762) and reusable by any protocol. Certificates
are not verified on purpose: the question is whether TLS is offered, not whether we trust it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from dicomguard.errors import DicomguardError
from dicomguard.net.connector import Connector
from dicomguard.probes.facts import TlsFacts


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Old devices speak old TLS; we want to see them, not fail on them.
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def certificate_subject(der: bytes | None) -> str | None:
    if not der:
        return None
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - cryptography is a dependency
        return None
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return None


async def probe_tls(connector: Connector, address: str, port: int, *,
                    timeout: float) -> TlsFacts:
    """One TLS handshake within `timeout`; never raises for network or TLS failures."""
    try:
        async with connector.open(address, port, "tls") as (_reader, writer):
            try:
                await asyncio.wait_for(
                    writer.start_tls(client_context(), server_hostname=None), timeout)
            except TimeoutError:
                return TlsFacts(port=port, handshake=False, error="handshake timed out")
            except (ssl.SSLError, OSError, ConnectionError) as exc:
                return TlsFacts(port=port, handshake=False,
                                error=f"handshake failed: {type(exc).__name__}")
            sslobj = writer.get_extra_info("ssl_object")
            if sslobj is None:
                return TlsFacts(port=port, handshake=False, error="no TLS session")
            try:
                cipher = sslobj.cipher()
                version = sslobj.version()
                der = sslobj.getpeercert(binary_form=True)
            except ValueError:
                # The peer tore the session down right after the handshake (e.g. TLS 1.3 with
                # a client certificate demanded): what was negotiated may be unreadable.
                cipher, version, der = None, None, None
            return TlsFacts(port=port, handshake=True, protocol=version,
                            cipher=cipher[0] if cipher else None,
                            certificate_subject=certificate_subject(der))
    except DicomguardError as exc:
        return TlsFacts(port=port, handshake=False, error=str(exc))
