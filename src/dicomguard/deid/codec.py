"""A small, fast DICOM Part 10 codec for de-identification: bytes -> element tree -> bytes.

Why not pydicom here: de-identification changes a few dozen header elements and copies the rest,
pixel data above all, unchanged. pydicom's full read/write round trip costs more than everything
else the de-identifier does, so the header-only path parses the file into a tree of raw elements
(tag, VR, raw value bytes or sequence items), lets the engine edit it, and writes it back. Values
are never decoded here; pixel data stays a ``memoryview`` slice of the input and is written back
byte for byte, so pixel data of every file not redacted is bit-identical.

Supported: Part 10 files (preamble + "DICM" + meta) and headerless data sets, in implicit VR
little endian, explicit VR little endian (and every encapsulated transfer syntax, which are
explicit LE), explicit VR big endian, and deflated explicit VR little endian. Sequences and
items of defined or undefined length (kept as read), UN with undefined length (a sequence in
implicit VR LE, PS3.5 6.2.2), encapsulated pixel data. Anything malformed raises
:class:`CodecError` with the reason; the caller skips the file and reports it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dicomguard.dicomfile.reader import IMPLICIT_VRS as _IMPLICIT_VRS
from dicomguard.dicomfile.reader import implicit_vr_fallback as _implicit_vr_slow
from dicomguard.errors import DicomFileError

__all__ = [
    "DEFLATED",
    "EXPLICIT_BE",
    "EXPLICIT_LE",
    "IMPLICIT_LE",
    "CodecError",
    "Elem",
    "ParsedFile",
    "implicit_vr",
    "parse",
    "serialize",
]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQ_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
MAX_DEPTH = 64

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV",
                       "UV"})
_VALID_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                        "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                        "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"})


class CodecError(DicomFileError):
    """The bytes are not a DICOM file this codec can rewrite; the message says why."""


class Elem:
    """One data element: raw value bytes, or sequence items (lists of Elem).

    ``undefined``: read with undefined length (sequences, items, encapsulated pixel data) and
    written the same way. ``implicit_items``: a UN sequence whose items are implicit VR LE.
    """

    __slots__ = ("implicit_items", "items", "tag", "undefined", "value", "vr")

    def __init__(self, tag: int, vr: str, value: bytes | memoryview = b"",
                 items: list[list[Elem]] | None = None, undefined: bool = False,
                 implicit_items: bool = False) -> None:
        self.tag = tag
        self.vr = vr
        self.value = value
        self.items = items
        self.undefined = undefined
        self.implicit_items = implicit_items

    def __repr__(self) -> str:  # never the value: it may be PHI
        n = len(self.items) if self.items is not None else len(self.value)
        return f"Elem(({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {self.vr} <{n}>)"


@dataclass(slots=True)
class ParsedFile:
    """A parsed file: preamble (None when headerless), meta group, data set, encoding."""

    preamble: bytes | None
    meta: list[Elem]
    dataset: list[Elem]
    transfer_syntax: str
    implicit: bool
    little: bool
    deflated: bool
    notes: list[str] = field(default_factory=list)


def implicit_vr(tag: int) -> str:
    """The VR of ``tag`` from the data dictionary (the header reader's table), UN unknown."""
    vr = _IMPLICIT_VRS.get(tag)
    return vr if vr is not None else _implicit_vr_slow(tag)


class _Reader:
    __slots__ = ("data", "end", "little", "mv", "u16", "u32")

    def __init__(self, data: bytes, little: bool) -> None:
        self.data = data
        self.mv = memoryview(data)
        self.end = len(data)
        self.little = little
        self.u16 = struct.Struct("<H" if little else ">H").unpack_from
        self.u32 = struct.Struct("<I" if little else ">I").unpack_from

    def tag_at(self, pos: int) -> int:
        g = self.u16(self.data, pos)[0]
        e = self.u16(self.data, pos + 2)[0]
        return (g << 16) | e

    def dataset(self, pos: int, end: int, implicit: bool, depth: int,
                stop_at_item_end: bool = False) -> tuple[list[Elem], int]:
        """Parse elements from pos to end (or to an item delimiter); return (elems, new pos)."""
        if depth > MAX_DEPTH:
            raise CodecError("sequences nested too deep")
        data = self.data
        out: list[Elem] = []
        append = out.append
        u32 = self.u32
        while pos < end:
            if pos + 8 > end:
                # trailing zero padding after the last element is tolerated at the top level
                if depth == 0 and not data[pos:end].strip(b"\x00"):
                    return out, end
                raise CodecError(f"truncated element header at byte {pos}")
            tag = self.tag_at(pos)
            if tag == ITEM_END:
                if stop_at_item_end:
                    return out, pos + 8
                raise CodecError(f"unexpected item delimiter at byte {pos}")
            if tag in (ITEM, SEQ_END):
                raise CodecError(f"unexpected item tag at byte {pos}")
            if implicit:
                vr = implicit_vr(tag)
                length = u32(data, pos + 4)[0]
                pos += 8
            else:
                vrb = data[pos + 4:pos + 6]
                try:
                    vr = vrb.decode("ascii")
                except UnicodeDecodeError:
                    vr = ""
                if vr not in _VALID_VRS:
                    if depth == 0 and not data[pos:end].strip(b"\x00"):
                        return out, end
                    raise CodecError(f"invalid VR at byte {pos}")
                if vr in _LONG_VRS:
                    if pos + 12 > end:
                        raise CodecError(f"truncated element header at byte {pos}")
                    length = u32(data, pos + 8)[0]
                    pos += 12
                else:
                    length = self.u16(data, pos + 6)[0]
                    pos += 8
            if length == UNDEFINED:
                if tag == PIXEL_DATA or (vr in ("OB", "OW") and not implicit):
                    stop = self._encapsulated_end(pos, end)
                    append(Elem(tag, vr, self.mv[pos:stop - 8], undefined=True))
                    pos = stop
                    continue
                if vr == "SQ" or implicit:
                    items, pos = self.sequence(pos, None, end, implicit, depth)
                    append(Elem(tag, "SQ", items=items, undefined=True))
                    continue
                if vr == "UN":
                    items, pos = self.sequence(pos, None, end, True, depth)
                    append(Elem(tag, "UN", items=items, undefined=True, implicit_items=True))
                    continue
                raise CodecError(f"undefined length for VR {vr} at byte {pos}")
            stop = pos + length
            if stop > end:
                raise CodecError(f"element value runs past the end at byte {pos}")
            if vr == "SQ":
                items, _ = self.sequence(pos, stop, stop, implicit, depth)
                append(Elem(tag, "SQ", items=items))
            else:
                append(Elem(tag, vr, self.mv[pos:stop] if length > 256 else data[pos:stop]))
            pos = stop
        if stop_at_item_end:
            raise CodecError("item without delimiter")
        return out, pos

    def sequence(self, pos: int, stop: int | None, end: int, implicit: bool,
                 depth: int) -> tuple[list[list[Elem]], int]:
        items: list[list[Elem]] = []
        limit = end if stop is None else stop
        while pos < limit:
            if pos + 8 > limit:
                raise CodecError(f"truncated item at byte {pos}")
            tag = self.tag_at(pos)
            length = self.u32(self.data, pos + 4)[0]
            pos += 8
            if tag == SEQ_END:
                if stop is None:
                    return items, pos
                continue  # a stray delimiter in a defined-length sequence: tolerated
            if tag != ITEM:
                raise CodecError(f"expected an item at byte {pos - 8}")
            if length == UNDEFINED:
                elems, pos = self.dataset(pos, limit, implicit, depth + 1, stop_at_item_end=True)
            else:
                if pos + length > limit:
                    raise CodecError(f"item runs past its sequence at byte {pos}")
                elems, _ = self.dataset(pos, pos + length, implicit, depth + 1)
                pos += length
            items.append(elems)
        if stop is None:
            raise CodecError("sequence without delimiter")
        return items, pos

    def _encapsulated_end(self, pos: int, end: int) -> int:
        """Position after the sequence delimiter of encapsulated pixel data."""
        u32 = self.u32
        while pos + 8 <= end:
            tag = self.tag_at(pos)
            length = u32(self.data, pos + 4)[0]
            if tag == SEQ_END:
                return pos + 8
            if tag != ITEM or length == UNDEFINED:
                raise CodecError(f"bad fragment in encapsulated pixel data at byte {pos}")
            pos += 8 + length
        raise CodecError("encapsulated pixel data without sequence delimiter")


def _looks_implicit(data: bytes, pos: int) -> bool:
    vr = data[pos + 4:pos + 6]
    return not (len(vr) == 2 and vr.isalpha() and vr.isupper())


def parse(data: bytes) -> ParsedFile:
    """Parse a whole file held in memory."""
    preamble: bytes | None = None
    pos = 0
    if len(data) >= 132 and data[128:132] == b"DICM":
        preamble = data[:128]
        pos = 132
    meta: list[Elem] = []
    reader = _Reader(data, True)
    if preamble is not None or (len(data) >= 8 and data[0:2] == b"\x02\x00"):
        end = len(data)
        while pos + 8 <= end and data[pos:pos + 2] == b"\x02\x00":
            one, pos2 = reader.dataset(pos, min(end, pos + _meta_elem_len(data, pos)), False, 1)
            meta.extend(one)
            pos = pos2
    ts = ""
    for e in meta:
        if e.tag == 0x00020010:
            ts = bytes(e.value).rstrip(b"\x00 ").decode("ascii", "replace")
    notes: list[str] = []
    deflated = ts == DEFLATED
    body = data
    if deflated:
        try:
            body = data[:pos] + zlib.decompress(data[pos:], -15)
        except zlib.error as exc:
            raise CodecError(f"deflated data set cannot be inflated: {exc}") from None
        reader = _Reader(body, True)
    if not ts:
        if pos + 8 > len(body):
            raise CodecError("no data set")
        implicit = _looks_implicit(body, pos)
        little = True
        ts = IMPLICIT_LE if implicit else EXPLICIT_LE
        notes.append("no transfer syntax in the file meta: guessed from the data")
    else:
        implicit = ts == IMPLICIT_LE
        little = ts != EXPLICIT_BE
    if not little:
        reader = _Reader(body, False)
    if pos >= len(body):
        raise CodecError("empty data set")
    dataset, _ = reader.dataset(pos, len(body), implicit, 0)
    if not dataset:
        raise CodecError("empty data set")
    return ParsedFile(preamble, meta, dataset, ts, implicit, little, deflated, notes)


def _meta_elem_len(data: bytes, pos: int) -> int:
    vr = data[pos + 4:pos + 6].decode("ascii", "replace")
    if vr in _LONG_VRS:
        return 12 + struct.unpack_from("<I", data, pos + 8)[0]
    return 8 + struct.unpack_from("<H", data, pos + 6)[0]


# --- writing ----------------------------------------------------------------------------------


def _long_head(out: list[bytes | memoryview], head_i: Callable[..., bytes],
               head_l: Callable[..., bytes], implicit: bool, g: int, el: int, vr: str,
               length: int) -> int:
    """Append an element header with a 4-byte length; return its size."""
    if implicit:
        out.append(head_i(g, el, length))
        return 8
    out.append(head_l(g, el, vr.encode("ascii"), length))
    return 12


def _write(elems: list[Elem], out: list[bytes | memoryview], implicit: bool,
           little: bool) -> int:
    """Append the encoding of elems to out; return the number of bytes appended."""
    end = "<" if little else ">"
    head_i = struct.Struct(end + "HHI").pack
    head_s = struct.Struct(end + "HH2sH").pack
    head_l = struct.Struct(end + "HH2s2xI").pack
    total = 0
    for e in elems:
        tag = e.tag
        g, el = tag >> 16, tag & 0xFFFF
        if e.items is not None:
            body: list[bytes | memoryview] = []
            n = 0
            item_implicit = implicit or e.implicit_items
            for item in e.items:
                inner: list[bytes | memoryview] = []
                m = _write(item, inner, item_implicit, little)
                if e.undefined:
                    body.append(head_i(0xFFFE, 0xE000, UNDEFINED))
                    body.extend(inner)
                    body.append(head_i(0xFFFE, 0xE00D, 0))
                    n += m + 16
                else:
                    body.append(head_i(0xFFFE, 0xE000, m))
                    body.extend(inner)
                    n += m + 8
            if e.undefined:
                body.append(head_i(0xFFFE, 0xE0DD, 0))
                n += 8
            total += _long_head(out, head_i, head_l, implicit, g, el, e.vr,
                                UNDEFINED if e.undefined else n)
            out.extend(body)
            total += n
            continue
        value = e.value
        n = len(value)
        if e.undefined:  # encapsulated pixel data: fragments then a sequence delimiter
            total += _long_head(out, head_i, head_l, implicit, g, el, e.vr, UNDEFINED)
            out.append(value)
            out.append(head_i(0xFFFE, 0xE0DD, 0))
            total += n + 8
            continue
        if implicit:
            out.append(head_i(g, el, n))
            total += 8
        elif e.vr in _LONG_VRS:
            out.append(head_l(g, el, e.vr.encode("ascii"), n))
            total += 12
        else:
            if n > 0xFFFF:
                # too long for a short-length VR: store it as UN (PS3.5 6.2.2)
                out.append(head_l(g, el, b"UN", n))
                total += 12
            else:
                out.append(head_s(g, el, e.vr.encode("ascii"), n))
                total += 8
        out.append(value)
        total += n
    return total


def serialize(pf: ParsedFile) -> bytes:
    """Encode a parsed (and edited) file. The meta group length is recomputed."""
    out: list[bytes | memoryview] = []
    if pf.preamble is not None:
        out.append(pf.preamble)
        out.append(b"DICM")
    if pf.meta:
        meta = [e for e in pf.meta if e.tag != 0x00020000]
        body: list[bytes | memoryview] = []
        n = _write(meta, body, False, True)
        _write([Elem(0x00020000, "UL", struct.pack("<I", n))], out, False, True)
        out.extend(body)
    data: list[bytes | memoryview] = []
    _write(pf.dataset, data, pf.implicit, pf.little)
    if pf.deflated:
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        chunks = [comp.compress(bytes(b)) for b in data]
        chunks.append(comp.flush())
        out.extend(chunks)
    else:
        out.extend(data)
    return b"".join(out)
