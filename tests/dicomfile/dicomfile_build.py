"""Tiny encoders for synthetic test data (explicit/implicit VR little endian)."""

from __future__ import annotations

import struct

LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}
UNDEF = 0xFFFFFFFF


def el(tag: int, vr: str, value: bytes, *, implicit: bool = False,
       length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<L", n) + value
    if vr in LONG:
        return head + vr.encode() + b"\0\0" + struct.pack("<L", n) + value
    return head + vr.encode() + struct.pack("<H", n) + value


def item(body: bytes, *, undefined: bool = False) -> bytes:
    if undefined:
        return struct.pack("<HHL", 0xFFFE, 0xE000, UNDEF) + body + struct.pack(
            "<HHL", 0xFFFE, 0xE00D, 0)
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body


def seq(tag: int, items: list[bytes], *, undefined: bool = True, implicit: bool = False) -> bytes:
    body = b"".join(items)
    if undefined:
        return el(tag, "SQ", body + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0), implicit=implicit,
                  length=UNDEF)
    return el(tag, "SQ", body, implicit=implicit)


def txt(value: str) -> bytes:
    raw = value.encode("latin_1")
    return raw + b" " if len(raw) % 2 else raw


def uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def part10(body: bytes, ts: str = "1.2.840.10008.1.2.1") -> bytes:
    meta = (el(0x00020001, "OB", b"\0\1") + el(0x00020002, "UI", uid("1.2.3"))
            + el(0x00020003, "UI", uid("1.2.3.4")) + el(0x00020010, "UI", uid(ts)))
    meta = el(0x00020000, "UL", struct.pack("<L", len(meta))) + meta
    return b"\0" * 128 + b"DICM" + meta + body
