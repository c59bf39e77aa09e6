"""The sweep fast path against real and hostile peers: it must agree with the full client."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import uvloop

from dicomguard.errors import ConnectionRefused, OutOfScopeError, ProtocolError, ReadTimeout
from dicomguard.net import pdu
from dicomguard.net.connector import Connector
from dicomguard.net.dicom_sweep import SweepResult, echo_sweep
from dicomguard.scope import build_scope

from ._servers import LOOPBACK, minimal_scp, pynetdicom_scp, read_pdu, serve


def sweep(port: int, *, called: str = "ANYTHING", timeout: float = 2.0,
          connector: Connector | None = None, loop: str = "asyncio") -> SweepResult:
    async def run() -> SweepResult:
        conn = connector or Connector(None, rate=0, connect_timeout=2.0)
        return await echo_sweep(conn, LOOPBACK, port, called_ae=called, calling_ae="DGTEST",
                                read_timeout=timeout)
    if loop == "uvloop":
        return uvloop.run(run())
    return asyncio.run(run())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_pynetdicom_accepts_echoes_and_releases(loop: str) -> None:
    with pynetdicom_scp() as scp:
        res = sweep(scp["port"], loop=loop)
    assert res.error is None
    assert res.accept is not None
    assert res.accept.implementation_version_name == "PYNETDICOM_304"
    assert res.echo_status == 0
    assert res.released is True


def test_pynetdicom_rejects_wrong_called_ae() -> None:
    with pynetdicom_scp(ae_title="RIGHTAE", require_called=True) as scp:
        res = sweep(scp["port"], called="WRONGAE")
    assert res.accept is None and res.reject is not None
    assert (res.reject.result, res.reject.source, res.reject.reason) == (1, 1, 7)
    assert res.error is None


def test_minimal_scp() -> None:
    async def run() -> SweepResult:
        async with serve(minimal_scp()) as port:
            conn = Connector(None, rate=0)
            return await echo_sweep(conn, LOOPBACK, port, called_ae="X", calling_ae="Y",
                                    read_timeout=2)
    res = asyncio.run(run())
    assert res.echo_status == 0 and res.released


@pytest.mark.parametrize("reply", [
    os.urandom(64).replace(b"\x02", b"\x09"),
    b"\x02" + os.urandom(40),
    b"\x02\x00\x00\x00\x00\x10" + bytes(16),
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
])
def test_garbage_is_not_dicom(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_pdu(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(1)

    async def run() -> SweepResult:
        async with serve(handler) as port:
            return await echo_sweep(Connector(None, rate=0), LOOPBACK, port, called_ae="X",
                                    calling_ae="Y", read_timeout=2)
    start = time.monotonic()
    res = asyncio.run(run())
    assert res.accept is None and res.reject is None
    assert isinstance(res.failure, ProtocolError)
    assert time.monotonic() - start < 1.5


def test_tarpit_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def run() -> SweepResult:
        async with serve(handler) as port:
            return await echo_sweep(Connector(None, rate=0), LOOPBACK, port, called_ae="X",
                                    calling_ae="Y", read_timeout=0.5)
    start = time.monotonic()
    res = asyncio.run(run())
    assert isinstance(res.failure, ReadTimeout)
    assert time.monotonic() - start < 1.5


def test_silence_after_accept_is_an_error_after_the_accept() -> None:
    async def nothing(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def run() -> SweepResult:
        async with serve(minimal_scp(after_accept=nothing)) as port:
            return await echo_sweep(Connector(None, rate=0), LOOPBACK, port, called_ae="X",
                                    calling_ae="Y", read_timeout=0.5)
    res = asyncio.run(run())
    assert res.accept is not None  # it is DICOM: the AC was valid
    assert res.echo_status is None and isinstance(res.failure, ReadTimeout)


def test_abort_instead_of_ac() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_pdu(reader)
        writer.write(pdu.encode_abort(2, 0))
        await writer.drain()

    async def run() -> SweepResult:
        async with serve(handler) as port:
            return await echo_sweep(Connector(None, rate=0), LOOPBACK, port, called_ae="X",
                                    calling_ae="Y", read_timeout=2)
    res = asyncio.run(run())
    assert res.accept is None and res.reject is None and res.failure is not None


def test_refused_and_out_of_scope() -> None:
    with pytest.raises(ConnectionRefused):
        sweep(1)
    scope = build_scope(["127.0.0.2"])
    conn = Connector(scope, rate=0)
    with pytest.raises(OutOfScopeError):
        sweep(104, connector=conn)
    assert conn.attempts == 0


def test_per_host_slots_are_given_back() -> None:
    with pynetdicom_scp() as scp:
        async def run() -> None:
            conn = Connector(None, rate=0, per_host=1)
            for _ in range(5):
                await echo_sweep(conn, LOOPBACK, scp["port"], called_ae="X", calling_ae="Y",
                                 read_timeout=2)
            assert conn._host_slots == {} and conn._host_users == {}
        asyncio.run(asyncio.wait_for(run(), 20))
