"""Hand-made RPC peers for the tests: well-formed replies built with the client's own XDR
writer, and hostile servers (garbage, tarpits, oversized records) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from dicomguard.net.onc_rpc import XdrReader, XdrWriter

HOST = "127.0.0.97"   # nothing else listens here: the probe's NFS stage (2049) is refused


@dataclass(frozen=True)
class Call:
    xid: int
    program: int
    version: int
    procedure: int
    cred_flavor: int


def parse_call(record: bytes) -> Call:
    r = XdrReader(record)
    xid, _, _ = r.uint(), r.uint(), r.uint()
    program, version, procedure = r.uint(), r.uint(), r.uint()
    flavor = r.uint()
    r.opaque(400)
    return Call(xid, program, version, procedure, flavor)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", 0x8000_0000 | len(body)) + body


def accepted(xid: int, results: bytes = b"", accept_stat: int = 0) -> bytes:
    """A MSG_ACCEPTED reply body (no record mark)."""
    return XdrWriter().uint(xid).uint(1).uint(0).uint(0).uint(0).uint(accept_stat).raw(
        results).getvalue()


def denied_auth(xid: int, auth_stat: int = 1) -> bytes:
    return XdrWriter().uint(xid).uint(1).uint(1).uint(1).uint(auth_stat).getvalue()


def exports_xdr(exports: list[tuple[bytes, list[bytes]]]) -> bytes:
    w = XdrWriter()
    for path, groups in exports:
        w.boolean(True).opaque(path)
        for g in groups:
            w.boolean(True).opaque(g)
        w.boolean(False)
    w.boolean(False)
    return w.getvalue()


def pmap_xdr(entries: list[tuple[int, int, int, int]]) -> bytes:
    w = XdrWriter()
    for prog, vers, prot, port in entries:
        w.boolean(True).uint(prog).uint(vers).uint(prot).uint(port)
    w.boolean(False)
    return w.getvalue()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler, host: str = HOST) -> AsyncIterator[int]:
    """Run `handler` for each connection on host:<free port>; yields the port."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(wrapped, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_call(reader: asyncio.StreamReader) -> Call:
    header = struct.unpack(">I", await reader.readexactly(4))[0]
    return parse_call(await reader.readexactly(header & 0x7FFF_FFFF))


def rpc_server(reply: Callable[[Call], bytes | None]) -> Handler:
    """A server answering each call with reply(call) (framed here); None: close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            call = await read_call(reader)
            body = reply(call)
            if body is None:
                return
            writer.write(frame(body))
            await writer.drain()

    return handle


def raw_server(data: bytes, *, then_wait: bool = False) -> Handler:
    """Answer any first bytes with `data`; then close, or keep the connection open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(data)
        await writer.drain()
        if then_wait:
            await asyncio.sleep(3600)

    return handle


async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def endless_fragments(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    while True:
        writer.write(struct.pack(">I", 8) + b"\0" * 8)   # never the last fragment
        await writer.drain()
        await asyncio.sleep(0)


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.write(struct.pack(">I", 0x8000_0000 | 1000))
    while True:
        writer.write(b"\0")
        await writer.drain()
        await asyncio.sleep(0.05)
