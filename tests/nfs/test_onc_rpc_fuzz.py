"""The RPC reply decoder under random and mutated input: it decodes, or raises a clean
ProtocolError (XdrError, RpcRejected); never another exception, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomguard.errors import ProtocolError, ReadTimeout
from dicomguard.net.nfs import ExportEntry, decode_exports, uaddr_port
from dicomguard.net.onc_rpc import (
    RpcClient,
    RpcRejected,
    XdrReader,
    XdrWriter,
    auth_sys,
    parse_reply,
)

from .rpcfake import accepted, denied_auth, exports_xdr, frame, parse_call, pmap_xdr

XID = 0x1234_5678
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

names = st.binary(min_size=0, max_size=40)
export_lists = st.lists(st.tuples(names, st.lists(names, max_size=5)), max_size=8)


def decode(record: bytes) -> object:
    r = parse_reply(record, XID)
    return decode_exports(r, max_exports=64, max_groups=8)


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in ops:
        if not buf:
            buf.extend(bytes([value]))
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] = value
        elif kind == 1:
            del buf[i:]
        elif kind == 2:
            buf[i:i] = bytes([value]) * (1 + value % 7)
        else:
            buf[i:i + 4] = struct.pack(">I", (value << 24) | value)
    return bytes(buf)


@FUZZ
@given(st.binary(max_size=600))
def test_random_replies(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data)


@FUZZ
@given(st.binary(max_size=400))
def test_random_results_after_a_valid_header(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(accepted(XID, data))


@FUZZ
@given(export_lists)
def test_valid_export_lists_round_trip(exports: list[tuple[bytes, list[bytes]]]) -> None:
    result = decode(accepted(XID, exports_xdr(exports)))
    expected = tuple(
        ExportEntry(p.decode("utf-8", "surrogateescape"),
                    tuple(g.decode("utf-8", "surrogateescape") for g in groups))
        for p, groups in exports)
    assert result.entries == expected  # type: ignore[attr-defined]


@FUZZ
@given(export_lists, st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000),
                                        st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_export_replies(exports: list[tuple[bytes, list[bytes]]],
                                ops: list[tuple[int, int, int]]) -> None:
    with contextlib.suppress(ProtocolError):
        decode(mutate(accepted(XID, exports_xdr(exports)), ops))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                          st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=6),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255)),
                max_size=4))
def test_mutated_portmapper_replies(entries: list[tuple[int, int, int, int]],
                                    ops: list[tuple[int, int, int]]) -> None:
    from dicomguard.net import nfs

    record = mutate(accepted(XID, pmap_xdr(entries)), ops)

    async def go() -> None:
        client = fake_client(lambda xid: frame(record.replace(
            struct.pack(">I", XID), struct.pack(">I", xid), 1)))
        await nfs.pmap_dump(client)

    with contextlib.suppress(ProtocolError):
        asyncio.run(go())


def test_rejections_are_typed() -> None:
    with pytest.raises(RpcRejected) as info:
        parse_reply(accepted(XID, struct.pack(">II", 3, 4), accept_stat=2), XID)
    assert (info.value.kind, info.value.low, info.value.high) == (
        "program version mismatch", 3, 4)
    with pytest.raises(RpcRejected) as info:
        parse_reply(denied_auth(XID, 5), XID)
    assert info.value.auth_stat == 5
    with pytest.raises(ProtocolError, match="xid"):
        parse_reply(accepted(XID + 1), XID)
    with pytest.raises(ProtocolError, match="trailing"):
        parse_reply(accepted(XID, b"", accept_stat=1) + b"\0\0\0\0", XID)


def test_xdr_strictness() -> None:
    with pytest.raises(ProtocolError, match="boolean"):
        XdrReader(struct.pack(">I", 2)).boolean()
    with pytest.raises(ProtocolError, match="padding"):
        XdrReader(struct.pack(">I", 1) + b"a\0\0\1").opaque(10)
    with pytest.raises(ProtocolError, match="maximum"):
        XdrReader(struct.pack(">I", 11) + b"a" * 12).opaque(10)
    assert XdrReader(XdrWriter().string("héllo").getvalue()).string(10) == "héllo"
    assert uaddr_port("127.0.0.1.8.1") == 2049
    assert uaddr_port("::1.0.111") == 111
    assert uaddr_port("/run/rpcbind.sock") is None
    assert uaddr_port("1.2.3.4.999.1") is None


# ---------------------------------------------------------------------------------------------
# stream level: RpcClient over fed bytes


class FakeWriter:
    """Answers each written call with respond(xid) fed to the reader (None: nothing)."""

    def __init__(self, reader: asyncio.StreamReader, respond: object, eof: bool) -> None:
        self.reader = reader
        self.respond = respond
        self.eof = eof
        self.calls: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.calls.append(data)
        xid = parse_call(data[4:]).xid
        reply = self.respond(xid)  # type: ignore[operator]
        if reply:
            self.reader.feed_data(reply)
        if self.eof:
            self.reader.feed_eof()

    async def drain(self) -> None:
        return None


def fake_client(respond: object, *, eof: bool = True, timeout: float = 0.3,
                max_reply: int = 1 << 16) -> RpcClient:
    reader = asyncio.StreamReader()
    writer = FakeWriter(reader, respond, eof)
    return RpcClient(reader, writer, address="127.0.0.97", port=111,  # type: ignore[arg-type]
                     timeout=timeout, max_reply=max_reply, max_fragments=8)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_random_streams_end_cleanly(data: bytes, eof: bool) -> None:
    async def go() -> None:
        client = fake_client(lambda xid: data, eof=eof, timeout=0.05)
        await client.call(100005, 3, 5)

    with contextlib.suppress(ProtocolError, ReadTimeout):
        asyncio.run(go())


@FUZZ
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=12), st.booleans())
def test_fragmented_replies(chunks: list[bytes], last_marked: bool) -> None:
    """Valid replies split into fragments decode; too many fragments are refused."""
    body_template = accepted(XID, b"".join(XdrWriter().opaque(c).getvalue() for c in chunks))

    def respond(xid: int) -> bytes:
        body = body_template.replace(struct.pack(">I", XID), struct.pack(">I", xid), 1)
        parts = [body[i:i + 16] for i in range(0, len(body), 16)]
        out = b""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1 and last_marked
            out += struct.pack(">I", (0x8000_0000 if last else 0) | len(part)) + part
        return out

    async def go() -> list[bytes]:
        client = fake_client(respond, timeout=0.2)
        r = await client.call(1, 1, 1)
        return [r.opaque(100) for _ in chunks]

    n_parts = -(-len(body_template) // 16)
    if last_marked and n_parts <= 8:
        assert asyncio.run(go()) == chunks
    else:
        with pytest.raises(ProtocolError):
            asyncio.run(go())


def test_auth_sys_credential_encodes() -> None:
    cred = auth_sys("scanner", 65534, 65534, (1, 2))
    r = XdrReader(cred.body)
    assert (r.uint(), r.string(255), r.uint(), r.uint(), r.uint(), r.uint(), r.uint()) == (
        0, "scanner", 65534, 65534, 2, 1, 2)
    with pytest.raises(ValueError):
        auth_sys(gids=tuple(range(17)))


def test_unusable_after_a_broken_reply() -> None:
    async def go() -> None:
        client = fake_client(lambda xid: b"\x80\x00\x00\x08" + b"\0" * 8, eof=False)
        with pytest.raises(ProtocolError):
            await client.call(1, 1, 1)
        with pytest.raises(ProtocolError, match="unusable"):
            await client.call(1, 1, 1)

    asyncio.run(go())
