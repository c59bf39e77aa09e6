"""A fast, bounded DICOM header reader: everything before the pixel data, nothing more.

``read_header(source)`` reads the preamble, "DICM" and the File Meta Information (group 0002,
explicit VR little endian), then the data set in implicit VR LE, explicit VR LE, explicit VR big
endian or deflated explicit VR LE, and stops at the top-level Pixel Data (7FE0,0010) (or Float /
Double Float Pixel Data) without reading a pixel byte. Files without preamble and "DICM" are
recognised by content (the first elements must look like a data set starting in group 0008, or a
meta group 0002), never by name.

What you get (:class:`Header`) is a flat list of :class:`Element` records in file order. Each
keeps its raw value bytes and VR; decoding is on demand (:meth:`Header.text`,
:meth:`Header.values`, :meth:`Header.numbers`, or the functions in :mod:`.values`). A record's
``path`` says where it lives: ``()`` at the top level, ``((0x00081115, 0),)`` inside item 0 of
ReferencedSeriesSequence, and so on. Private data elements carry the name of their private
creator from the same data set level.

Bad input never raises out of :func:`read_header` (unless ``strict=True``): the result has
``error`` set (a clear message with the offset) and keeps the elements read before the problem;
a source that ends early gives ``truncated=True``. Work is bounded: at most ``max_elements``
elements, nesting at most :data:`MAX_DEPTH`, and never more bytes than the source holds (or
``max_bytes``); every step moves forward, so no structure can make it loop.

Speed: one pass with ``struct.unpack_from`` over a bytes buffer grown on demand from an 8 KiB
first read; a record is a tuple (NamedTuple); the tag -> VR table for implicit VR comes from
the project's generated data dictionary (:mod:`.dictionary`), so pydicom is never imported.
"""

from __future__ import annotations

import datetime
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from dicomguard.accel import accelerator
from dicomguard.errors import DicomFileError

from .dictionary import REPEATERS, TAGS
from .sources import ByteSource, SourceLike, as_source
from .values import (
    DEFAULT_CODECS,
    codecs_for_charset,
    decode_date,
    decode_numbers,
    decode_text,
    text_values,
)

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VRS",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "MAX_DEPTH",
    "PIXEL_DATA_TAGS",
    "UNDEFINED_LENGTH",
    "Element",
    "Header",
    "PixelInfo",
    "RawElement",
    "implicit_vr_fallback",
    "raw_records",
    "read_header",
]

UNDEFINED_LENGTH = 0xFFFFFFFF
MAX_DEPTH = 64
DEFAULT_MAX_ELEMENTS = 1_000_000
INITIAL_READ = 8 * 1024
#: Read well-formed data sets with _FastParser (tests switch it off to compare the two).
_FAST_PATH = True
#: Upper bound of the inflated size of a deflated data set read for its header.
MAX_INFLATED = 64 * 1024 * 1024

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD

# encoding modes
_IMPLICIT, _EXPLICIT_LE, _EXPLICIT_BE = 0, 1, 2

_VRS = ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
        "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
        "UR", "US", "UT", "UV")
_VR_OF_BYTES: dict[bytes, str] = {v.encode("ascii"): v for v in _VRS}
# VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2)
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV",
                       "UV"})
_LONG_VR_BYTES = frozenset(v.encode("ascii") for v in _LONG_VRS)


def _build_implicit_vrs() -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    """tag -> VR from the data dictionary; ambiguous VRs get the value-agnostic choice
    (resolved later for US/SS), repeaters become (mask, value, vr)."""
    ambiguous = {"OB or OW": "OW", "US or SS or OW": "OW", "US or OW": "OW",
                 "US or SS": "US or SS"}
    table: dict[int, str] = {}
    for tag, (vr, _keyword) in TAGS.items():
        table[tag] = ambiguous.get(vr, vr)
    repeaters = tuple((mask, value, ambiguous.get(vr, vr)) for mask, value, vr, _kw in REPEATERS)
    return table, repeaters


IMPLICIT_VRS, _REPEATERS = _build_implicit_vrs()
"""tag -> VR for implicit VR data sets, from the data dictionary (ambiguous VRs resolved to the
value-agnostic choice, "US or SS" left for the reader to resolve)."""


def implicit_vr_fallback(tag: int) -> str:
    """The implicit VR of a tag that is not in :data:`IMPLICIT_VRS`: private creators LO,
    other private elements UN, group lengths UL, repeating groups from the dictionary."""
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 1:
        return "LO" if 0x0010 <= elem <= 0x00FF else "UN"
    if elem == 0:
        return "UL"
    for mask, value, vr in _REPEATERS:
        if tag & mask == value:
            return vr
    return "UN"


class Element(NamedTuple):
    """One data element as read: raw value bytes and VR, nothing decoded.

    ``path``: ((sequence tag, item index), ...) from the top level down; () at the top.
    ``value``: raw bytes (b"" for a sequence; for an undefined-length non-sequence value, the
    encapsulated items up to, not including, the sequence delimiter).
    ``offset``: where the value starts in the data stream (file offset, or offset in the
    inflated stream for deflated files). ``length``: the declared length
    (:data:`UNDEFINED_LENGTH` for undefined). ``private_creator``: for a private data element
    (odd group, element >= 0x1000) the value of its creator (gggg,00xx) at the same level.
    """

    path: tuple[tuple[int, int], ...]
    tag: int
    vr: str
    value: bytes
    offset: int
    length: int
    private_creator: str | None

    @property
    def group(self) -> int:
        return self.tag >> 16

    @property
    def is_private(self) -> bool:
        return bool((self.tag >> 16) & 1)

    @property
    def depth(self) -> int:
        return len(self.path)

    def tag_str(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


_new_element = tuple.__new__


class PixelInfo(NamedTuple):
    """The top-level pixel data element, seen but not read."""

    tag: int
    vr: str
    offset: int                   # start of the value in the stream
    length: int | None            # None: undefined length (encapsulated)
    number_of_frames: int | None  # NumberOfFrames (0028,0008), when present
    transfer_syntax: str | None

    @property
    def encapsulated(self) -> bool:
        return self.length is None


#: An element as the fast path records it, value not yet cut out of the data:
#: (path, tag, VR, start, stop, declared length, private creator); the value is
#: ``data[start:stop]`` of the buffer it came with (see :meth:`Header.raw_elements`).
RawElement = tuple[tuple[tuple[int, int], ...], int, str, int, int, int, str | None]


def _element_of(raw: RawElement, data: bytes) -> Element:
    path, tag, vr, start, stop, length, creator = raw
    return _new_element(Element, (path, tag, vr, data[start:stop], start, length, creator))


def raw_records(elements: list[Element]) -> tuple[list[RawElement], bytes]:
    """:data:`RawElement` records of Elements, their values laid end to end in new bytes."""
    raw: list[RawElement] = []
    values: list[bytes] = []
    pos = 0
    for path, tag, vr, value, _offset, length, creator in elements:
        stop = pos + len(value)
        raw.append((path, tag, vr, pos, stop, length, creator))
        values.append(value)
        pos = stop
    return raw, b"".join(values)


class Header:
    """What :func:`read_header` read. ``error`` is None when everything read was well formed;
    ``truncated`` is True when the source ended (or ``max_bytes`` was reached) before the data
    set did.

    ``elements`` is built on first use: the reader keeps raw records and the bytes they point
    into (:meth:`raw_elements`), so code that looks at a few values (the PHI inspector, the
    audit) never makes an :class:`Element` or a value for the others."""

    __slots__ = ("_codecs", "_data", "_elements", "_meta_raw", "_raw", "_top", "bytes_read",
                 "dataset_offset", "deflated", "end_offset", "error", "has_preamble",
                 "implicit_vr", "is_dicom", "little_endian", "meta", "name", "notes", "pixel",
                 "transfer_syntax", "truncated")

    def __init__(self, name: str = "", is_dicom: bool = False, has_preamble: bool = False,
                 meta: list[Element] | None = None, elements: list[Element] | None = None,
                 transfer_syntax: str | None = None, implicit_vr: bool = False,
                 little_endian: bool = True, deflated: bool = False,
                 pixel: PixelInfo | None = None, truncated: bool = False,
                 error: str | None = None, bytes_read: int = 0, dataset_offset: int = 0,
                 end_offset: int = 0, notes: list[str] | None = None) -> None:
        self.name = name
        self.is_dicom = is_dicom
        self.has_preamble = has_preamble
        self.meta: list[Element] = [] if meta is None else meta
        #: the meta group as raw records, when the reader made them (it sets both)
        self._meta_raw: tuple[list[Element], list[RawElement], bytes] | None = None
        self._elements: list[Element] | None = [] if elements is None else elements
        self._raw: list[RawElement] | None = None
        self._data = b""
        self.transfer_syntax = transfer_syntax
        self.implicit_vr = implicit_vr
        self.little_endian = little_endian
        self.deflated = deflated
        self.pixel = pixel
        self.truncated = truncated
        self.error = error
        self.bytes_read = bytes_read
        self.dataset_offset = dataset_offset   # where the data set (after the meta) starts
        self.end_offset = end_offset  # where reading stopped: pixel data element, or last byte
        self.notes: list[str] = [] if notes is None else notes
        self._top: dict[int, Element | RawElement] | None = None
        self._codecs: tuple[str, ...] | None = None

    def __repr__(self) -> str:  # counts only: values may identify someone
        return (f"Header(name={self.name!r}, is_dicom={self.is_dicom}, "
                f"transfer_syntax={self.transfer_syntax!r}, meta={len(self.meta)}, "
                f"elements={len(self._raw if self._raw is not None else self.elements)}, "
                f"pixel={self.pixel!r}, "
                f"truncated={self.truncated}, error={self.error!r})")

    @property
    def elements(self) -> list[Element]:
        """The data set's elements, flat, in file order (see the module docstring)."""
        elements = self._elements
        if elements is None:
            data = self._data
            elements = self._elements = [
                _new_element(Element, (path, tag, vr, data[start:stop], start, length, creator))
                for path, tag, vr, start, stop, length, creator in self._raw or ()]
            self._raw = None
            self._data = b""
            self._top = None  # it may hold raw records
        return elements

    @elements.setter
    def elements(self, elements: list[Element]) -> None:
        self._elements = elements
        self._raw = None
        self._data = b""
        self._top = None

    def _set_raw(self, raw: list[RawElement], data: bytes) -> None:
        self._elements = None
        self._raw = raw
        self._data = data
        self._top = None

    def raw_meta(self) -> tuple[list[RawElement], bytes]:
        """The meta group as raw records (see :meth:`raw_elements`)."""
        kept = self._meta_raw
        meta = self.meta
        if kept is None or kept[0] is not meta or len(kept[1]) != len(meta):
            return raw_records(meta)  # none kept, or meta was changed since
        return kept[1], kept[2]

    def raw_elements(self) -> tuple[list[RawElement], bytes]:
        """The data set's elements as raw records and the bytes their values are in (a
        record's value is ``data[start:stop]``). Made from ``elements`` when those exist."""
        raw = self._raw
        if raw is None:
            raw, data = raw_records(self.elements)
            return raw, data
        return raw, self._data

    @property
    def ok(self) -> bool:
        return self.is_dicom and self.error is None

    def _index(self) -> dict[int, Element | RawElement]:
        """tag -> element (or raw record) of the top level: the first one of a tag, and the
        meta group's (its last one of a tag) before the data set's. Built once."""
        top = self._top
        if top is None:
            # reversed: the first of a tag is written last
            raw = self._raw
            top = {}
            if raw is not None:
                top.update({r[1]: r for r in reversed(raw) if not r[0]})
            else:
                top.update({e[1]: e for e in reversed(self.elements) if not e[0]})
            for e in self.meta:
                top[e[1]] = e
            self._top = top
        return top

    def get(self, tag: int) -> Element | None:
        """The top-level (or meta) element with this tag, or None."""
        top = self._index()
        found = top.get(tag)
        if found is None or isinstance(found, Element):
            return found
        elem = top[tag] = _element_of(found, self._data)
        return elem

    def value(self, tag: int) -> bytes | None:
        """The raw value of the top-level (or meta) element with this tag, or None; like
        ``get(tag).value`` without making the Element."""
        top = self._top
        found = (self._index() if top is None else top).get(tag)
        if found is None:
            return None
        if isinstance(found, Element):
            return found[3]
        return self._data[found[3]:found[4]]

    def stripped_values(self, tags: tuple[int, ...]) -> list[bytes]:
        """The raw values of these top-level (or meta) tags with padding (spaces, NULs)
        stripped from both ends, b"" for absent ones: ``value(tag)`` for many tags at once."""
        top = self._top
        if top is None:
            top = self._index()
        data = self._data
        out: list[bytes] = []
        for tag in tags:
            found = top.get(tag)
            if found is None:
                out.append(b"")
            elif isinstance(found, Element):
                out.append(found[3].strip(b" \x00"))
            else:
                out.append(data[found[3]:found[4]].strip(b" \x00"))
        return out

    def __contains__(self, tag: int) -> bool:
        return tag in self._index()

    def top_level(self) -> Iterator[Element]:
        return (e for e in self.elements if not e.path)

    @property
    def codecs(self) -> tuple[str, ...]:
        """Python codecs from the top-level Specific Character Set (0008,0005)."""
        if self._codecs is None:
            cs = self.value(0x00080005)
            self._codecs = codecs_for_charset(cs) if cs is not None else DEFAULT_CODECS
        return self._codecs

    def _elem(self, item: int | Element) -> Element | None:
        return self.get(item) if isinstance(item, int) else item

    def text(self, item: int | Element) -> str | None:
        """The value as one string (padding stripped), or None when absent. Text VRs use the
        character set; any other VR is shown as latin-1 text, which is rarely what you want."""
        elem = self._elem(item)
        if elem is None:
            return None
        return decode_text(elem.value, elem.vr, self.codecs)

    def values(self, item: int | Element) -> list[str]:
        """The values of a multi-valued text element; [] when absent or empty."""
        elem = self._elem(item)
        if elem is None:
            return []
        return text_values(elem.value, elem.vr, self.codecs)

    def numbers(self, item: int | Element) -> list[int] | list[float]:
        """Numbers of a binary numeric VR or of IS/DS; [] when absent."""
        elem = self._elem(item)
        if elem is None:
            return []
        little = self.little_endian or elem.tag >> 16 == 2
        return decode_numbers(elem.value, elem.vr, little_endian=little)

    def date(self, item: int | Element) -> datetime.date | None:
        """A DA (or DT) value as datetime.date, or None."""
        elem = self._elem(item)
        return None if elem is None else decode_date(elem.value)


class _Truncated(Exception):
    """Internal: the data ran out."""


class _Bad(Exception):
    """Internal: malformed data (message says where)."""


class _Buffer:
    """The raw bytes read so far from a source, grown on demand, never past the source."""

    __slots__ = ("data", "limit", "source", "total")

    def __init__(self, source: ByteSource, max_bytes: int | None) -> None:
        self.source = source
        avail = source.available
        limit = avail if avail is not None else (1 << 62)
        if max_bytes is not None:
            limit = min(limit, max_bytes)
        self.limit = limit
        self.total = source.size
        self.data = source.read(0, min(INITIAL_READ, limit))

    def need(self, end: int) -> bool:
        """Make ``end`` bytes available if the source has them; False when it does not."""
        data = self.data
        have = len(data)
        if end <= have:
            return True
        if end > self.limit or have >= self.limit:
            return False
        target = min(max(end, have * 2), self.limit)
        more = self.source.read(have, target - have)
        if more:
            self.data = data = data + more
        if len(data) < target:  # the source ended early: nothing more will come
            self.limit = len(data)
        return len(data) >= end

    @property
    def is_prefix(self) -> bool:
        """True when the object is larger than what we may read (a cut source / max_bytes)."""
        return self.total is None or self.total > self.limit


class _Inflated:
    """The inflated stream of a deflated data set, produced on demand from a _Buffer."""

    __slots__ = ("_done", "_in_pos", "_raw", "_z", "data", "limit")

    def __init__(self, raw: _Buffer, start: int, max_bytes: int | None) -> None:
        self._raw = raw
        self._in_pos = start
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self.data = b""
        self._done = False
        self.limit = MAX_INFLATED if max_bytes is None else min(MAX_INFLATED, max_bytes)

    def need(self, end: int) -> bool:
        if end <= len(self.data):
            return True
        if end > self.limit:
            return False
        chunks = [self.data]
        have = len(self.data)
        want = min(max(end, have * 2, INITIAL_READ), self.limit)
        z = self._z
        try:
            while have < want and not self._done:
                room = want - have
                if z.unconsumed_tail:
                    out = z.decompress(z.unconsumed_tail, room)
                else:
                    raw = self._raw
                    if not raw.need(self._in_pos + 1):
                        self._done = True
                        break
                    chunk_end = min(len(raw.data), self._in_pos + 65536)
                    if chunk_end <= self._in_pos:
                        raw.need(self._in_pos + 65536)
                        chunk_end = min(len(raw.data), self._in_pos + 65536)
                    chunk = raw.data[self._in_pos:chunk_end]
                    self._in_pos = chunk_end
                    out = z.decompress(chunk, room)
                if z.eof:
                    self._done = True
                chunks.append(out)
                have += len(out)
        except zlib.error as exc:
            self._done = True
            self.data = b"".join(chunks)
            raise _Bad(f"deflated data set is corrupt: {exc}") from None
        self.data = b"".join(chunks)
        return have >= end

    @property
    def is_prefix(self) -> bool:
        return not self._done or self._raw.is_prefix


def _creator_name(raw: bytes) -> str:
    return raw.decode("latin_1").strip(" \x00")


class _Parser:
    """One pass over one data stream. Raises _Truncated / _Bad; ``elements`` keeps what was
    read before either."""

    def __init__(self, buf: _Buffer | _Inflated, max_elements: int, *, probe: bool = False) -> None:
        self.buf = buf
        self.elements: list[Element] = []
        self.max_elements = max_elements
        self.probe = probe  # sniffing: require ascending tags at the top level
        self.pixel: tuple[int, str, int, int] | None = None
        self.signed_pixels = False
        self.stop = 0

    # -- helpers -------------------------------------------------------------------------
    def _need(self, end: int) -> bytes:
        if not self.buf.need(end):
            raise _Truncated
        return self.buf.data

    def _bad(self, msg: str, pos: int) -> _Bad:
        return _Bad(f"{msg} at offset {pos}")

    # -- data sets -----------------------------------------------------------------------
    def dataset(self, pos: int, end: int | None, path: tuple[tuple[int, int], ...], depth: int,
                mode: int, kind: int, creators: dict[int, str] | None = None) -> int:
        """Read a data set from ``pos``. kind 0: top level (to the end of the stream or pixel
        data), 1: defined-length item (to ``end``), 2: undefined-length item (to its
        delimitation item, never past ``end`` when given). Returns the position after it.
        ``creators``: the private creators already read at this level (when resuming)."""
        buf = self.buf
        data = buf.data
        size = len(data)
        elements = self.elements
        append = elements.append
        if creators is None:
            creators = {}
        little = mode != _EXPLICIT_BE
        head_fmt = "<HHL" if mode == _IMPLICIT else ("<HH2sH" if little else ">HH2sH")
        long_fmt = "<L" if little else ">L"
        implicit = mode == _IMPLICIT
        vr_of = _VR_OF_BYTES
        long_vrs = _LONG_VR_BYTES
        implicit_vrs = IMPLICIT_VRS
        unpack = struct.unpack_from
        prev_tag = -1
        top = kind == 0
        max_elements = self.max_elements
        while True:
            if end is not None and pos >= end:
                if pos > end:
                    raise self._bad("element runs past the end of its item", pos)
                if kind == 2:
                    raise self._bad("item without delimitation item", pos)
                return pos
            if pos + 12 > size:
                if not buf.need(pos + 12) and not buf.need(pos + 8):
                    if top and len(buf.data) == pos and not buf.is_prefix:
                        return pos  # clean end of the stream
                    raise _Truncated
                data = buf.data
                size = len(data)
            if implicit:
                group, elem, length = unpack(head_fmt, data, pos)
                vrb = b""
            else:
                group, elem, vrb, length = unpack(head_fmt, data, pos)
            tag = group << 16 | elem
            if group == 0xFFFE:
                if tag == _ITEM_DELIM and kind == 2:
                    return pos + 8
                raise self._bad(f"unexpected delimiter or item tag ({group:04X},{elem:04X})", pos)
            if top:
                if tag <= prev_tag and self.probe:
                    raise self._bad("tags not ascending", pos)
                prev_tag = tag
                if tag in PIXEL_DATA_TAGS:
                    if implicit:
                        vrname = "OW" if tag == 0x7FE00010 else implicit_vrs.get(tag, "OW")
                        pos += 8
                    else:
                        vrname = vr_of.get(vrb, "OB")
                        data = self._need(pos + 12)
                        length = unpack(long_fmt, data, pos + 8)[0]
                        pos += 12
                    self.pixel = (tag, vrname, pos, length)
                    self.stop = pos
                    return pos
            if implicit:
                vr = implicit_vrs.get(tag)
                if vr is None:
                    vr = implicit_vr_fallback(tag)
                elif vr == "US or SS":
                    vr = "SS" if self.signed_pixels else "US"
                start = pos + 8
            else:
                vr = vr_of.get(vrb)
                if vr is None:
                    raise self._bad(f"invalid VR {vrb!r} for ({group:04X},{elem:04X})", pos)
                if vrb in long_vrs:
                    if pos + 12 > size:
                        data = self._need(pos + 12)
                        size = len(data)
                    length = unpack(long_fmt, data, pos + 8)[0]
                    start = pos + 12
                else:
                    start = pos + 8
            if len(elements) >= max_elements:
                raise self._bad(f"more than {max_elements} elements", pos)
            creator = None
            if group & 1 and elem >= 0x1000:
                creator = creators.get(group << 8 | elem >> 8)
            if length == UNDEFINED_LENGTH:
                if vr == "SQ":
                    sub_mode = mode
                elif vr == "UN":
                    # an undefined-length UN holds a sequence in implicit VR LE (PS3.5 6.2.2);
                    # in implicit VR, an unknown tag with undefined length is a sequence too
                    sub_mode = _IMPLICIT
                    vr = "SQ"
                else:
                    value, pos = self._encapsulated(start, end, little)
                    append(_new_element(Element, (path, tag, vr, value, start,
                                                  UNDEFINED_LENGTH, creator)))
                    data = buf.data
                    size = len(data)
                    continue
                append(_new_element(Element, (path, tag, vr, b"", start, UNDEFINED_LENGTH,
                                              creator)))
                pos = self.sequence(start, end, path, tag, depth + 1, sub_mode, undefined=True)
                data = buf.data
                size = len(data)
                continue
            stop = start + length
            if end is not None and stop > end:
                raise self._bad(f"length {length} of ({group:04X},{elem:04X}) runs past the "
                                f"end of its item", pos)
            if vr == "SQ":
                append(_new_element(Element, (path, tag, vr, b"", start, length, creator)))
                self.sequence(start, stop, path, tag, depth + 1, mode)
                data = buf.data
                size = len(data)
                pos = stop
                continue
            if stop > size:
                data = self._need(stop)
                size = len(data)
            value = data[start:stop]
            append(_new_element(Element, (path, tag, vr, value, start, length, creator)))
            if group & 1:
                if 0x0010 <= elem <= 0x00FF:
                    creators[group << 8 | elem] = _creator_name(value)
            elif tag == 0x00280103 and top:
                self.signed_pixels = value[:2] in (b"\x01\x00", b"\x00\x01")
            pos = stop

    def sequence(self, pos: int, end: int | None, path: tuple[tuple[int, int], ...], tag: int,
                 depth: int, mode: int, undefined: bool = False) -> int:
        """Read the items of a sequence; returns the position after it. A defined-length
        sequence ends at ``end``; an ``undefined``-length one at its delimitation item, or at
        ``end`` (the end of the item it is in) when that comes first, as the fast paths read
        it."""
        if depth > MAX_DEPTH:
            raise self._bad(f"sequences nested deeper than {MAX_DEPTH}", pos)
        fmt = "<HHL" if mode != _EXPLICIT_BE else ">HHL"
        index = 0
        while True:
            if end is not None and pos >= end:
                if pos > end:
                    raise self._bad("item runs past the end of its sequence", pos)
                return pos  # undefined length: its delimiter is missing; the item ends here
            data = self._need(pos + 8)
            group, elem, length = struct.unpack_from(fmt, data, pos)
            item = group << 16 | elem
            if item == _ITEM:
                sub = (*path, (tag, index))
                if length == UNDEFINED_LENGTH:
                    pos = self.dataset(pos + 8, end, sub, depth, mode, 2)
                else:
                    stop = pos + 8 + length
                    if end is not None and stop > end:
                        raise self._bad("item length runs past the end of its sequence", pos)
                    self.dataset(pos + 8, stop, sub, depth, mode, 1)
                    pos = stop
                index += 1
            elif item == _SEQ_DELIM and (undefined or end is None):
                return pos + 8
            else:
                raise self._bad(f"expected an item, found ({group:04X},{elem:04X})", pos)

    def _encapsulated(self, start: int, end: int | None, little: bool) -> tuple[bytes, int]:
        """Walk the items of an undefined-length non-sequence value to its delimiter."""
        fmt = "<HHL" if little else ">HHL"
        pos = start
        while True:
            if end is not None and pos + 8 > end:
                raise self._bad("encapsulated value runs past the end of its item", pos)
            data = self._need(pos + 8)
            group, elem, length = struct.unpack_from(fmt, data, pos)
            item = group << 16 | elem
            if item == _SEQ_DELIM:
                return data[start:pos], pos + 8
            if item != _ITEM or length == UNDEFINED_LENGTH:
                raise self._bad(f"expected a fragment item, found ({group:04X},{elem:04X})", pos)
            pos += 8 + length
            self._need(pos)

    def meta(self, pos: int) -> int:
        """Read group 0002 (explicit VR LE, or implicit when the writer got it wrong)."""
        buf = self.buf
        while True:
            if not buf.need(pos + 8):
                if len(buf.data) == pos and not buf.is_prefix:
                    return pos
                raise _Truncated
            data = buf.data
            group = struct.unpack_from("<H", data, pos)[0]
            if group != 0x0002:
                return pos
            mode = _EXPLICIT_LE if data[pos + 4:pos + 6] in _VR_OF_BYTES else _IMPLICIT
            # read exactly one element with the general code, bounded to group 0002
            if len(self.elements) >= self.max_elements:
                raise self._bad(f"more than {self.max_elements} elements", pos)
            pos = self._one(pos, mode)

    def _one(self, pos: int, mode: int) -> int:
        """Read one top-level non-sequence element (used for the meta group)."""
        data = self._need(pos + 8)
        group, elem = struct.unpack_from("<HH", data, pos)
        tag = group << 16 | elem
        if mode == _EXPLICIT_LE:
            vrb = data[pos + 4:pos + 6]
            vr = _VR_OF_BYTES[vrb]
            if vrb in _LONG_VR_BYTES:
                data = self._need(pos + 12)
                length = struct.unpack_from("<L", data, pos + 8)[0]
                start = pos + 12
            else:
                length = struct.unpack_from("<H", data, pos + 6)[0]
                start = pos + 8
        else:
            vr = IMPLICIT_VRS.get(tag) or implicit_vr_fallback(tag)
            length = struct.unpack_from("<L", data, pos + 4)[0]
            start = pos + 8
        if length == UNDEFINED_LENGTH or vr == "SQ":
            raise self._bad(f"sequence or undefined length in the meta group ({tag:08X})", pos)
        data = self._need(start + length)
        self.elements.append(_new_element(Element, ((), tag, vr, data[start:start + length],
                                                    start, length, None)))
        return start + length


# -- the fast path -----------------------------------------------------------------------------
# Most files are well formed: explicit VR (little or big endian) or implicit VR little endian,
# values of defined length, sequences and items of either length. _FastParser reads exactly
# those, with fewer checks per element than _Parser; on anything else (a malformed or cut
# structure, an encapsulated value inside the data set, an explicit-VR UN of undefined length,
# too many elements or too deep) it raises _Fallback and _Parser reads the data set again from
# its start. Every check that decides what is *read* is the same as in _Parser (and it asks the
# buffer for the same byte counts at the same points), so when the fast path finishes, its
# elements are exactly _Parser's; tests/dicomfile/test_dicomfile_fastpath.py compares the two
# on every bundled file, every prefix of them and mutated files.


class _Fallback(Exception):
    """Internal: leave this data set to the general parser."""


_SHORT_VR_OF: dict[bytes, str] = {b: v for b, v in _VR_OF_BYTES.items() if v not in _LONG_VRS}
_LONG_VR_OF: dict[bytes, str] = {b: v for b, v in _VR_OF_BYTES.items() if v in _LONG_VRS}
_HEAD_LE = struct.Struct("<HH2sH").unpack_from
_HEAD_BE = struct.Struct(">HH2sH").unpack_from
_HEAD_IMPLICIT = struct.Struct("<HHL").unpack_from
_ITEM_LE = _HEAD_IMPLICIT
_ITEM_BE = struct.Struct(">HHL").unpack_from
_U32_LE = struct.Struct("<L").unpack_from
_U32_BE = struct.Struct(">L").unpack_from
_SIGNED = (b"\x01\x00", b"\x00\x01")
_NO_END = 1 << 62
#: IMPLICIT_VRS without the ambiguous "US or SS" entries (looked up a second time).
_PLAIN_IMPLICIT_VRS = {t: v for t, v in IMPLICIT_VRS.items() if v != "US or SS"}

_Path = tuple[tuple[int, int], ...]


_C_MODULE = "dicomguard.dicomfile._fastscan"
#: The C accelerator of _FastParser's loop: it reads top-level elements exactly as
#: _FastParser does and returns where the Python loop goes on (see the C file); None: pure
#: Python (tests set it to None).
_SCAN: Callable[..., tuple[int, bool, tuple[int, str, int, int] | None]] | None = (
    accelerator(_C_MODULE, "scan"))
#: The C twin of _fast_meta, or None.
_META: Callable[..., tuple[list[Element], list[RawElement], int] | None] | None = (
    accelerator(_C_MODULE, "meta"))


class _FastParser:
    """The well-formed common case (see above); same attributes as _Parser after a read.

    Per element, one comparison (``pos > safe``) stands for the three checks _Parser makes at
    every element start: the end of the item, the bytes in the buffer and the element budget.
    ``safe`` is the last position at which all three are known to pass: at most 12 bytes
    before the end of the buffer, before the end of the item, and 8 bytes per element of the
    remaining budget (every element takes at least 8 bytes, so the budget cannot run out
    before the position passes ``safe``). Past it, the slow branch makes _Parser's checks and
    computes ``safe`` again (``safe = -1`` forces that after the buffer or the budget changed).
    """

    __slots__ = ("buf", "elements", "head", "implicit_vr", "item_head", "max_elements", "mode",
                 "pixel", "resume", "signed_pixels", "stop", "u32")

    def __init__(self, buf: _Buffer, max_elements: int, mode: int) -> None:
        self.buf = buf
        self.elements: list[RawElement] = []
        self.max_elements = max_elements
        self.pixel: tuple[int, str, int, int] | None = None
        self.signed_pixels = False
        self.stop = 0
        #: after a _Fallback: where the top-level element being read started, and the private
        #: creators of the top level before it (_Parser goes on from there)
        self.resume: tuple[int, dict[int, str]] = (0, {})
        big = mode == _EXPLICIT_BE
        self.head = _HEAD_BE if big else _HEAD_LE
        self.u32 = _U32_BE if big else _U32_LE
        self.item_head = _ITEM_BE if big else _ITEM_LE
        # (not a bound method in an attribute: that is a reference cycle, and the buffer
        # would live until the garbage collector ran)
        self.implicit_vr = mode == _IMPLICIT
        self.mode = mode

    def dataset(self, pos: int, end: int | None, path: _Path, depth: int, kind: int) -> int:
        """A data set in the parser's encoding (see :meth:`_Parser.dataset`). At the top
        level, the C accelerator (when built) reads the elements it can first; the loop
        below goes on from the top-level element where it stopped, with its private
        creators and signed-pixel state, so the result is the same either way."""
        creators: dict[int, str] = {}
        scan = _SCAN
        if scan is not None and kind == 0 and end is None:
            pos, self.signed_pixels, pixel = scan(
                self.buf, pos, self.mode, self.elements, creators, self.max_elements,
                self.signed_pixels, path, _PLAIN_IMPLICIT_VRS, IMPLICIT_VRS,
                implicit_vr_fallback)
            if pixel is not None:
                self.pixel = pixel
                self.stop = pos
                return pos
        if self.implicit_vr:
            return self.implicit(pos, end, path, depth, kind, creators)
        return self.explicit(pos, end, path, depth, kind, creators)

    def _checkpoint(self, pos: int, lim: int, kind: int, explicit: bool) -> int:
        """_Parser's checks at the start of an element at ``pos`` (end of the item, bytes in
        the buffer, element budget), with the same requests to the buffer. Returns the new
        ``safe`` (see the class docstring), or -1 where the data set ends (return ``pos``)."""
        if pos >= lim:
            if pos > lim or kind == 2:
                raise _Fallback
            return -1
        buf = self.buf
        if pos + 12 > len(buf.data) and not buf.need(pos + 12) and not buf.need(pos + 8):
            if kind == 0 and len(buf.data) == pos and not buf.is_prefix:
                return -1  # clean end of the stream
            raise _Fallback
        room = self.max_elements - len(self.elements)
        if room <= 0:
            raise _Fallback
        data = buf.data
        safe = min(len(data) - 12, lim - 1, pos + 8 * room - 8)
        if safe < pos:  # 8 to 11 bytes left: the last element header in the buffer
            if explicit and data[pos + 4:pos + 6] not in _SHORT_VR_OF:
                raise _Fallback  # only a short explicit element fits
            safe = pos
        return safe

    def explicit(self, pos: int, end: int | None, path: _Path, depth: int, kind: int,
                 creators: dict[int, str] | None = None) -> int:
        """Explicit VR data set; ``kind`` as in :meth:`_Parser.dataset`; ``creators``: the
        private creators already read at this level.

        Sequences and items are read in this one loop, with a stack instead of calls (an
        item cost a call to sequence() and one to this method before): the state of the
        data set an SQ element is in is pushed while its items are read, and the state of
        the sequence while one of its items is read, so every step is the one the recursive
        _Parser makes, in the same order."""
        buf = self.buf
        data = buf.data
        size = len(data)
        elements = self.elements
        append = elements.append
        head = self.head
        u32 = self.u32
        item_head = self.item_head
        short_vr = _SHORT_VR_OF.get
        long_vr = _LONG_VR_OF.get
        if creators is None:
            creators = {}
        top = kind == 0
        checkpoint = self._checkpoint
        max_elements = self.max_elements
        lim = _NO_END if end is None else end
        vlim = size if size < lim else lim
        safe = -1
        here = pos
        # the sequence being read: its end (None: to its delimiter), where reading goes on
        # after it (defined length), its tag, the next item's index, its data set's path
        # and its depth
        s_end: int | None = None
        s_cont: int | None = None
        s_tag = s_index = s_depth = 0
        s_path: _Path = ()
        item = False
        stack: list[Any] = []
        try:
            while True:
                ended = False  # the item being read ended (else: a sequence starts)
                while True:
                    here = pos
                    if pos > safe:
                        if pos >= lim:  # the end of an item
                            if pos > lim or kind == 2:
                                raise _Fallback
                            ended = True
                            break
                        # checkpoint()'s result when the buffer and the budget have room
                        safe = min(size - 12, lim - 1,
                                   pos + 8 * (max_elements - len(elements)) - 8)
                        if safe < pos:
                            safe = checkpoint(pos, lim, kind, True)
                            if safe < 0:  # (only at the top level: items end above)
                                if kind:
                                    raise _Fallback
                                return pos
                            data = buf.data
                            size = len(data)
                            vlim = size if size < lim else lim
                    group, elem, vrb, length = head(data, pos)
                    if group >= 0x7FE0:
                        if group == 0xFFFE:
                            if elem == 0xE00D and kind == 2:
                                pos += 8
                                ended = True
                                break
                            raise _Fallback
                        tag = group << 16 | elem
                        if top and tag in PIXEL_DATA_TAGS:
                            if pos + 12 > size:
                                raise _Fallback
                            self.pixel = (tag, _VR_OF_BYTES.get(vrb, "OB"), pos + 12,
                                          u32(data, pos + 8)[0])
                            self.stop = pos + 12
                            return pos + 12
                    vr = short_vr(vrb)
                    if vr is not None:
                        start = pos + 8
                    else:
                        vr = long_vr(vrb)
                        if vr is None:
                            raise _Fallback
                        length = u32(data, pos + 8)[0]
                        start = pos + 12
                        if vr == "SQ":
                            tag = group << 16 | elem
                            append((path, tag, vr, start, start, length, creators.get(
                                group << 8 | elem >> 8) if group & 1 and elem >= 0x1000
                                else None))
                            if depth + 1 > MAX_DEPTH:
                                raise _Fallback
                            stack.append((end, lim, kind, path, creators, depth, here))
                            if length == UNDEFINED_LENGTH:
                                s_end = end
                                s_cont = None
                            else:
                                s_end = s_cont = start + length
                                if s_end > lim:
                                    raise _Fallback
                            s_tag = tag
                            s_index = 0
                            s_path = path
                            s_depth = depth + 1
                            pos = start
                            break
                        if length == UNDEFINED_LENGTH:
                            raise _Fallback
                    pos = start + length
                    if pos > vlim:
                        if pos > lim or not buf.need(pos):
                            raise _Fallback
                        data = buf.data
                        size = len(data)
                        vlim = size if size < lim else lim
                        safe = -1
                    if group & 1:
                        if elem >= 0x1000:
                            append((path, group << 16 | elem, vr, start, pos, length,
                                    creators.get(group << 8 | elem >> 8)))
                        else:
                            append((path, group << 16 | elem, vr, start, pos, length, None))
                            if elem >= 0x0010 and elem <= 0x00FF:
                                creators[group << 8 | elem] = _creator_name(data[start:pos])
                    else:
                        append((path, group << 16 | elem, vr, start, pos, length, None))
                if ended:  # back in the item's sequence
                    s_end, s_cont, s_tag, s_index, s_path, s_depth = stack.pop()
                    s_index += 1
                # the sequence: its next item, or its end
                while True:
                    if s_end is not None and pos >= s_end:
                        if pos > s_end:
                            raise _Fallback
                        item = False
                        break
                    if pos + 8 > len(buf.data) and not buf.need(pos + 8):
                        raise _Fallback
                    group, elem, length = item_head(buf.data, pos)
                    if group != 0xFFFE:
                        raise _Fallback
                    if elem == 0xE000:
                        item = True
                        break
                    if elem == 0xE0DD and s_end is None:
                        pos += 8
                        item = False
                        break
                    raise _Fallback
                if item:  # read the item as a data set
                    stack.append((s_end, s_cont, s_tag, s_index, s_path, s_depth))
                    path = (*s_path, (s_tag, s_index))
                    if length == UNDEFINED_LENGTH:
                        end = s_end
                        kind = 2
                    else:
                        end = pos + 8 + length
                        if s_end is not None and end > s_end:
                            raise _Fallback
                        kind = 1
                    pos += 8
                    depth = s_depth
                    creators = {}
                    top = False
                else:  # the sequence ended: back in its data set
                    end, lim, kind, path, creators, depth, here = stack.pop()
                    top = kind == 0
                    if s_cont is not None:
                        pos = s_cont
                lim = _NO_END if end is None else end
                data = buf.data
                size = len(data)
                vlim = size if size < lim else lim
                safe = -1
        except _Fallback:
            if stack:  # _Parser goes on from the top-level element this one is in
                here, creators = stack[0][6], stack[0][4]
                top = stack[0][2] == 0
            if top:
                self.resume = (here, creators)
            raise

    def implicit(self, pos: int, end: int | None, path: _Path, depth: int, kind: int,
                 creators: dict[int, str] | None = None) -> int:
        """Implicit VR little endian data set; ``kind`` as in :meth:`_Parser.dataset`;
        ``creators``: the private creators already read at this level."""
        buf = self.buf
        data = buf.data
        size = len(data)
        elements = self.elements
        append = elements.append
        head = _HEAD_IMPLICIT
        plain_vr = _PLAIN_IMPLICIT_VRS.get
        if creators is None:
            creators = {}
        top = kind == 0
        checkpoint = self._checkpoint
        max_elements = self.max_elements
        lim = _NO_END if end is None else end
        vlim = size if size < lim else lim
        safe = -1
        here = pos
        try:
            while True:
                here = pos
                if pos > safe:
                    if pos >= lim:  # the end of an item (checkpoint() does it too, slower)
                        if pos > lim or kind == 2:
                            raise _Fallback
                        return pos
                    # checkpoint()'s result when the buffer and the budget have room
                    safe = min(size - 12, lim - 1, pos + 8 * (max_elements - len(elements)) - 8)
                    if safe < pos:
                        safe = checkpoint(pos, lim, kind, False)
                        if safe < 0:
                            return pos
                        data = buf.data
                        size = len(data)
                        vlim = size if size < lim else lim
                group, elem, length = head(data, pos)
                tag = group << 16 | elem
                if group >= 0x7FE0:
                    if group == 0xFFFE:
                        if elem == 0xE00D and kind == 2:
                            return pos + 8
                        raise _Fallback
                    if top and tag in PIXEL_DATA_TAGS:
                        vrname = "OW" if tag == 0x7FE00010 else IMPLICIT_VRS.get(tag, "OW")
                        self.pixel = (tag, vrname, pos + 8, length)
                        self.stop = pos + 8
                        return pos + 8
                vr = plain_vr(tag)
                if vr is None:
                    vr = IMPLICIT_VRS.get(tag)
                    if vr is None:
                        vr = implicit_vr_fallback(tag)
                    elif vr == "US or SS":
                        vr = "SS" if self.signed_pixels else "US"
                start = pos + 8
                if vr == "SQ" or length == UNDEFINED_LENGTH:
                    if length == UNDEFINED_LENGTH:
                        if vr != "SQ" and vr != "UN":
                            raise _Fallback
                        vr = "SQ"
                    append((path, tag, vr, start, start, length, creators.get(
                        group << 8 | elem >> 8) if group & 1 and elem >= 0x1000 else None))
                    if length == UNDEFINED_LENGTH:
                        pos = self.sequence(start, end, path, tag, depth + 1)
                    else:
                        pos = start + length
                        if pos > lim:
                            raise _Fallback
                        self.sequence(start, pos, path, tag, depth + 1)
                    data = buf.data
                    size = len(data)
                    vlim = size if size < lim else lim
                    safe = -1
                    continue
                pos = start + length
                if pos > vlim:
                    if pos > lim or not buf.need(pos):
                        raise _Fallback
                    data = buf.data
                    size = len(data)
                    vlim = size if size < lim else lim
                    safe = -1
                if group & 1:
                    if elem >= 0x1000:
                        append((path, tag, vr, start, pos, length,
                                creators.get(group << 8 | elem >> 8)))
                    else:
                        append((path, tag, vr, start, pos, length, None))
                        if elem >= 0x0010 and elem <= 0x00FF:
                            creators[group << 8 | elem] = _creator_name(data[start:pos])
                else:
                    append((path, tag, vr, start, pos, length, None))
                    if tag == 0x00280103 and top:
                        # the value's own first two bytes (never the next element's)
                        self.signed_pixels = length >= 2 and data[start:start + 2] in _SIGNED
        except _Fallback:
            if top:  # _Parser goes on from the start of this top-level element
                self.resume = (here, creators)
            raise

    def sequence(self, pos: int, end: int | None, path: _Path, tag: int, depth: int) -> int:
        """The items of a sequence; returns the position after it."""
        if depth > MAX_DEPTH:
            raise _Fallback
        buf = self.buf
        item_head = self.item_head
        dataset = self.implicit  # explicit VR reads its sequences itself
        index = 0
        while True:
            if end is not None and pos >= end:
                if pos > end:
                    raise _Fallback
                return pos
            if pos + 8 > len(buf.data) and not buf.need(pos + 8):
                raise _Fallback
            group, elem, length = item_head(buf.data, pos)
            if group != 0xFFFE:
                raise _Fallback
            if elem == 0xE000:
                sub = (*path, (tag, index))
                if length == UNDEFINED_LENGTH:
                    pos = dataset(pos + 8, end, sub, depth, 2)
                else:
                    stop = pos + 8 + length
                    if end is not None and stop > end:
                        raise _Fallback
                    dataset(pos + 8, stop, sub, depth, 1)
                    pos = stop
                index += 1
            elif elem == 0xE0DD and end is None:
                return pos + 8
            else:
                raise _Fallback


def _fast_meta(buf: _Buffer, pos: int, max_elements: int
               ) -> tuple[list[Element], list[RawElement], int] | None:
    """The meta group (as Elements and as raw records into ``buf.data``) when it is plain
    explicit VR LE with everything in the buffer, else None (then _Parser.meta reads it)."""
    data = buf.data
    meta_c = _META
    if meta_c is not None:
        return meta_c(data, pos, max_elements, Element)
    size = len(data)
    out: list[Element] = []
    raw: list[RawElement] = []
    head = _HEAD_LE
    while True:
        if pos + 8 > size:
            return None
        group, elem, vrb, length = head(data, pos)
        if group != 0x0002:
            return out, raw, pos
        if len(out) >= max_elements:
            return None
        vr = _SHORT_VR_OF.get(vrb)
        if vr is None:
            vr = _LONG_VR_OF.get(vrb)
            if vr is None or vr == "SQ" or pos + 12 > size:
                return None
            length = _U32_LE(data, pos + 8)[0]
            start = pos + 12
        else:
            start = pos + 8
        pos = start + length
        if pos > size:
            return None
        out.append(_new_element(Element, ((), 0x00020000 | elem, vr, data[start:pos], start,
                                          length, None)))
        raw.append(((), 0x00020000 | elem, vr, start, pos, length, None))


def _mode_for(ts: str | None) -> tuple[int, bool]:
    """(mode, deflated) for a transfer syntax UID; unknown ones are explicit VR LE (all
    encapsulated syntaxes are)."""
    if ts == IMPLICIT_VR_LITTLE_ENDIAN:
        return _IMPLICIT, False
    if ts == EXPLICIT_VR_BIG_ENDIAN:
        return _EXPLICIT_BE, False
    if ts in (DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1.99.1"):
        return _EXPLICIT_LE, True
    return _EXPLICIT_LE, False


def _looks_explicit(data: bytes, pos: int) -> bool | None:
    """Whether the element at ``pos`` has an explicit VR; None when there is no data."""
    if len(data) < pos + 6:
        return None
    return data[pos + 4:pos + 6] in _VR_OF_BYTES


def _probe(buf: _Buffer | _Inflated, pos: int, mode: int,
           first_groups: tuple[int, ...] | None) -> bool:
    """A cautious check that a data set in ``mode`` starts at ``pos`` (used without DICM)."""
    parser = _Parser(buf, 8, probe=True)
    try:
        parser.dataset(pos, None, (), 0, mode, 0)
    except _Truncated:
        pass
    except _Bad as exc:
        if "more than" not in str(exc):
            return False
    elems = parser.elements
    if not elems or (first_groups is not None and elems[0].tag >> 16 not in first_groups):
        return False
    if mode == _IMPLICIT:
        # every probed public tag must be a known attribute (or a group length)
        for e in elems:
            if not e.tag >> 16 & 1 and e.tag & 0xFFFF and e.tag not in IMPLICIT_VRS:
                return False
    return len(elems) >= 2 or len(buf.data) <= pos + 8 + len(elems[0].value) + 8


def read_header(source: SourceLike, *, max_bytes: int | None = None,
                max_elements: int = DEFAULT_MAX_ELEMENTS, strict: bool = False) -> Header:
    """Read the header (everything before the pixel data) of a DICOM file.

    ``source``: a path, bytes (a whole file, or a prefix: see :class:`.sources.BytesSource`),
    or any :class:`.sources.ByteSource`. ``max_bytes``: read at most this many bytes of the
    source (the result is ``truncated`` if the header needs more). ``strict``: raise
    :class:`~dicomguard.errors.DicomFileError` instead of returning a header with ``error``.
    A file that is not DICOM gives ``is_dicom=False`` and no error.
    """
    header = Header()
    try:
        src = as_source(source)
    except OSError as exc:
        header.name = str(source) if isinstance(source, str) else ""
        header.error = f"cannot open: {exc.strerror or exc}"
        if strict:
            raise DicomFileError(header.error) from exc
        return header
    header.name = src.name
    try:
        _read(src, header, max_bytes, max_elements)
    except OSError as exc:
        header.error = f"read failed: {exc.strerror or exc}"
    finally:
        if src is not source:  # we opened it
            src.close()
    if strict and header.error is not None:
        raise DicomFileError(f"{header.name}: {header.error}")
    return header


def _read(src: ByteSource, header: Header, max_bytes: int | None, max_elements: int) -> None:
    buf = _Buffer(src, max_bytes)
    try:
        _read_buffer(buf, header, max_elements)
    finally:
        header.bytes_read = len(buf.data)


def _read_buffer(buf: _Buffer, header: Header, max_elements: int) -> None:
    buf.need(132)
    data = buf.data
    pos = 0
    meta_parser = _Parser(buf, max_elements)
    dataset_mode: int | None = None
    if data[128:132] == b"DICM":
        header.has_preamble = True
        pos = 132
    elif len(data) >= 8 and struct.unpack_from("<H", data, 0)[0] == 0x0002 and (
            data[4:6] in _VR_OF_BYTES):
        pos = 0  # meta group without preamble
    else:
        for mode in (_EXPLICIT_LE, _IMPLICIT, _EXPLICIT_BE):
            if _probe(buf, 0, mode, (0x0008,)):
                dataset_mode = mode
                header.notes.append("no preamble or DICM prefix: data set recognised by content")
                break
        else:
            header.truncated = len(buf.data) < 132 and buf.is_prefix
            return
    header.is_dicom = True
    if dataset_mode is None:
        fast_meta = _fast_meta(buf, pos, max_elements) if _FAST_PATH else None
        try:
            if fast_meta is not None:
                meta_parser.elements, meta_raw, pos = fast_meta
                header._meta_raw = (meta_parser.elements, meta_raw, buf.data)
            else:
                pos = meta_parser.meta(pos)
        except _Truncated:
            header.meta = meta_parser.elements
            header.truncated = True
            _note_end_of_data(header, buf, pos)
            return
        except _Bad as exc:
            header.meta = meta_parser.elements
            header.error = f"file meta information: {exc}"
            return
        header.meta = meta_parser.elements
        for e in header.meta:
            if e.tag == 0x00020010:
                header.transfer_syntax = e.value.decode("latin_1").strip(" \x00") or None
        mode, deflated = _mode_for(header.transfer_syntax)
    else:
        mode, deflated = dataset_mode, False
    header.dataset_offset = pos
    stream: _Buffer | _Inflated = buf
    if deflated:
        header.deflated = True
        stream = _Inflated(buf, pos, None)
        pos = 0
    try:
        stream.need(pos + 8)
    except _Bad as exc:
        header.error = str(exc)
        return
    sniff = _looks_explicit(stream.data, pos)
    if sniff is not None and dataset_mode is None and not deflated:
        if mode != _IMPLICIT and not sniff and _probe(stream, pos, _IMPLICIT, (0x0008,)):
            header.notes.append("transfer syntax says explicit VR but the data set is implicit")
            mode = _IMPLICIT
        elif mode == _IMPLICIT and sniff and _probe(stream, pos, _EXPLICIT_LE, (0x0008,)):
            header.notes.append("transfer syntax says implicit VR but the data set is explicit")
            mode = _EXPLICIT_LE
        elif header.transfer_syntax is None and not sniff and _probe(
                stream, pos, _IMPLICIT, None):
            mode = _IMPLICIT
    header.implicit_vr = mode == _IMPLICIT
    header.little_endian = mode != _EXPLICIT_BE
    budget = max(0, max_elements - len(header.meta))
    parser: _Parser | _FastParser
    creators: dict[int, str] | None = None
    elements: list[Element] = []
    signed_pixels = False
    if _FAST_PATH and not deflated:
        fast = _FastParser(buf, budget, mode)
        try:
            header.end_offset = fast.dataset(pos, None, (), 0, 0)
        except _Fallback:
            # _Parser reads on from the top-level element the fast path gave up in, with the
            # state a reading from the start would have there (the buffer is the same: the
            # fast path asked it for the same byte counts)
            pos, creators = fast.resume
            raw = fast.elements
            while raw and raw[-1][3] > pos:  # offsets of this element and its items
                raw.pop()
            data = buf.data
            elements = [_element_of(r, data) for r in raw]
            signed_pixels = fast.signed_pixels
        else:
            _finish(header, fast)
            return
    parser = _Parser(stream, budget)
    parser.elements = elements
    parser.signed_pixels = signed_pixels
    try:
        header.end_offset = parser.dataset(pos, None, (), 0, mode, 0, creators)
    except _Truncated:
        header.truncated = True
        _note_end_of_data(header, stream, pos)
    except _Bad as exc:
        header.error = str(exc)
    except RecursionError:  # defensive: MAX_DEPTH keeps us far below the interpreter's limit
        header.error = "sequences nested too deeply"
    _finish(header, parser)


def _finish(header: Header, parser: _Parser | _FastParser) -> None:
    if isinstance(parser, _FastParser):
        header._set_raw(parser.elements, parser.buf.data)
    else:
        header.elements = parser.elements
    if parser.pixel is not None:
        tag, vr, offset, length = parser.pixel
        frames = None
        nof = header.get(0x00280008)
        if nof is not None:
            nums = decode_numbers(nof.value, "IS")
            frames = int(nums[0]) if nums else None
        header.pixel = PixelInfo(tag, vr, offset, None if length == UNDEFINED_LENGTH else length,
                                 frames, header.transfer_syntax)
        header.end_offset = parser.stop


def _note_end_of_data(header: Header, stream: _Buffer | _Inflated, pos: int) -> None:
    """Truncated: say so as an error too when the whole source was read (a cut file or a
    length pointing past its end), not when we only had a prefix."""
    header.end_offset = len(stream.data)
    if not stream.is_prefix:
        header.error = (f"data ends inside an element (file cut short, or a length that runs "
                        f"past the end) after {len(stream.data)} bytes")
