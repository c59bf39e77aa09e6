"""Many minimal DICOM Verification SCPs on loopback addresses, for the scale benchmark.

One asyncio process serves every address: it answers an A-ASSOCIATE-RQ with an -AC that accepts
Verification (Implicit VR Little Endian) and refuses every other context, a C-ECHO-RQ with a
Success C-ECHO-RSP, and an A-RELEASE-RQ with an -RP (PS3.8 section 9.3, PS3.7 section 9.3.5).
The PDUs are built here from the standard, not from dicomguard, so the benchmark peer is
independent of the code it measures.

    python bench/listeners.py --first 127.1.0.1 --count 1000 --port 11112
prints "ready" on stdout once every socket listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import struct
import sys

VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_LE = b"1.2.840.10008.1.2"
APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPL_UID = b"1.2.826.0.1.3680043.9.9999.1"
IMPL_NAME = b"BENCH_SCP"


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def _element(group: int, elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", group, elem, len(value)) + value


def build_ac(rq: bytes) -> bytes:
    """A-ASSOCIATE-AC for the A-ASSOCIATE-RQ body `rq` (the bytes after the 6-byte header)."""
    called, calling = rq[4:20], rq[20:36]
    contexts = []
    pos = 68
    while pos + 4 <= len(rq):
        item_type, length = rq[pos], struct.unpack_from(">H", rq, pos + 2)[0]
        body = rq[pos + 4:pos + 4 + length]
        if item_type == 0x20:
            ctx_id = body[0]
            sub = 4
            abstract = b""
            while sub + 4 <= len(body):
                st, sl = body[sub], struct.unpack_from(">H", body, sub + 2)[0]
                if st == 0x30:
                    abstract = body[sub + 4:sub + 4 + sl].rstrip(b"\x00")
                sub += 4 + sl
            result = 0 if abstract == VERIFICATION else 3
            contexts.append(_item(0x21, bytes([ctx_id, 0, result, 0]) + _item(0x40, IMPLICIT_LE)))
        pos += 4 + length
    user = _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, IMPL_UID)
                 + _item(0x55, IMPL_NAME))
    body = (struct.pack(">HH", 1, 0) + called + calling + bytes(32) + _item(0x10, APP_CONTEXT)
            + b"".join(contexts) + user)
    return struct.pack(">BBI", 0x02, 0, len(body)) + body


def build_echo_rsp(ctx_id: int, message_id: int) -> bytes:
    elements = (_element(0, 0x0002, VERIFICATION) + _element(0, 0x0100, struct.pack("<H", 0x8030))
                + _element(0, 0x0120, struct.pack("<H", message_id))
                + _element(0, 0x0800, struct.pack("<H", 0x0101))
                + _element(0, 0x0900, struct.pack("<H", 0)))
    command = _element(0, 0x0000, struct.pack("<I", len(elements))) + elements
    pdv = struct.pack(">IBB", len(command) + 2, ctx_id, 0x03) + command
    return struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv


def _message_id(command: bytes) -> int:
    pos = 0
    while pos + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHI", command, pos)
        if (group, elem) == (0, 0x0110):
            return int(struct.unpack_from("<H", command, pos + 8)[0])
        pos += 8 + length
    return 1


RELEASE_RP = struct.pack(">BBI", 0x06, 0, 4) + bytes(4)


async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            header = await reader.readexactly(6)
            pdu_type, length = header[0], struct.unpack_from(">I", header, 2)[0]
            body = await reader.readexactly(length)
            if pdu_type == 0x01:
                writer.write(build_ac(body))
            elif pdu_type == 0x04:
                pdv_len, ctx_id = struct.unpack_from(">IB", body, 0)
                writer.write(build_echo_rsp(ctx_id, _message_id(body[6:4 + pdv_len])))
            elif pdu_type == 0x05:
                writer.write(RELEASE_RP)
                await writer.drain()
                break
            else:
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main_async(first: str, count: int, port: int) -> None:
    base = ipaddress.IPv4Address(first)
    servers = []
    for i in range(count):
        servers.append(await asyncio.start_server(serve_one, str(base + i), port, backlog=512))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", default="127.1.0.1")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--port", type=int, default=11112)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.run(main_async(args.first, args.count, args.port))
    except ImportError:
        asyncio.run(main_async(args.first, args.count, args.port))


if __name__ == "__main__":
    main()
