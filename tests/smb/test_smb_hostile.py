"""Garbage, tarpits, closed ports and odd negotiate answers: clean errors within the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import pytest

from dicomguard.checks import (
    smb_001_guest_share_dicom,
    smb_002_guest_access,
    smb_003_smb1_enabled,
    smb_004_signing_not_required,
)
from dicomguard.errors import OutOfScopeError, ProtocolError
from dicomguard.models import Endpoint, Status
from dicomguard.net import smb as smbnet
from dicomguard.net.connector import Connector
from dicomguard.probes.smb import SmbConfig, SmbFacts, probe

HOST = "127.0.0.1"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve_and_probe(handler: Handler, timeout: float) -> tuple[SmbFacts, float]:
    server = await asyncio.start_server(handler, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        start = time.monotonic()
        facts = await probe(Endpoint(HOST, port, "smb"), Connector(None, connect_timeout=1.0),
                            SmbConfig(timeout=timeout, budget=10 * timeout))
        return facts, time.monotonic() - start
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.2)  # the handlers see the client's close and close their side


def _closing(body: Handler) -> Handler:
    """Run the handler's behaviour, then close the connection and wait until it is closed."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await body(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return handler


@_closing
async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(os.urandom(1) + b"\xff\xff\xff" + os.urandom(200))
    await writer.drain()
    await reader.read()


@_closing
async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    await writer.drain()


@_closing
async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up


@_closing
async def _silent_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)


@pytest.mark.parametrize("handler", [_garbage, _http, _tarpit, _silent_close])
def test_hostile_peer_fails_cleanly_within_timeout(handler: Handler) -> None:
    facts, seconds = asyncio.run(_serve_and_probe(handler, timeout=1.0))
    assert facts.error and not facts.speaks_smb
    assert seconds < 3.0
    for check in (smb_001_guest_share_dicom, smb_002_guest_access, smb_003_smb1_enabled,
                  smb_004_signing_not_required):
        outcome = check.evaluate(facts)
        assert outcome.status is Status.ERROR and outcome.error


def test_closed_port() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    facts = asyncio.run(probe(Endpoint(HOST, port, "smb"), Connector(None), SmbConfig()))
    assert facts.error and "ConnectionRefused" in facts.error


def test_out_of_scope_raises_before_any_packet() -> None:
    class Nothing:
        def allows(self, address: str) -> bool:
            return False

    connector = Connector(Nothing())
    with pytest.raises(OutOfScopeError):
        asyncio.run(probe(Endpoint(HOST, 445, "smb"), connector, SmbConfig()))
    assert connector.attempts == 0


def _smb1_response(index: int, words: int = 17, mode: int = 0x0F) -> bytes:
    header = struct.pack("<4sBIBHH8sHHHHH", b"\xffSMB", 0x72, 0, 0x98, 0xC801, 0, b"\0" * 8,
                         0, 0, 0, 0, 0)
    params = struct.pack("<HB", index, mode) + b"\0" * (2 * words - 3) if words else b""
    msg = header + bytes([words]) + params + b"\0\0"
    return b"\x00" + msg


def test_parse_smb1_answers() -> None:
    offered = smbnet.SMB1_DIALECTS
    nt = offered.index("NT LM 0.12")
    answer = smbnet.parse_negotiate_response(_smb1_response(nt), offered)
    assert answer == smbnet.Smb1Negotiation(True, "NT LM 0.12", True, True)
    answer = smbnet.parse_negotiate_response(_smb1_response(nt, mode=0x03), offered)
    assert isinstance(answer, smbnet.Smb1Negotiation) and answer.signing_required is False
    none = smbnet.parse_negotiate_response(_smb1_response(0xFFFF, words=1), offered)
    assert isinstance(none, smbnet.Smb1Negotiation) and not none.enabled
    with pytest.raises(ProtocolError):
        smbnet.parse_negotiate_response(_smb1_response(40), offered)
    with pytest.raises(ProtocolError):
        smbnet.parse_negotiate_response(b"\x00\xffSMB" + b"\0" * 10, offered)


def test_parse_smb2_answer() -> None:
    header = b"\xfeSMB" + struct.pack("<H", 64) + b"\0" * 58
    body = struct.pack("<HHH", 65, 0x03, 0x02FF) + b"\0" * 58
    answer = smbnet.parse_negotiate_response(b"\x00" + header + body,
                                             smbnet.SMB2_UPGRADE_DIALECTS)
    assert answer == smbnet.Smb2Negotiation(True, "2.???", True, True)


def test_netbios_name_encoding() -> None:
    # RFC 1001 14.1: "*SMBSERVER" padded with spaces, suffix 0x20, two letters a nibble
    encoded = smbnet.netbios_name("*SMBSERVER", 0x20)
    assert encoded[0] == 32 and encoded[-1] == 0 and len(encoded) == 34
    assert encoded[1:3] == b"CK"  # '*' = 0x2A
    assert encoded[-3:-1] == b"CA"  # suffix 0x20
