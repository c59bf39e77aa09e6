"""Decoding helpers for raw element values (only decode what you need, when you need it).

- text VRs: :func:`decode_text` and :func:`text_values`, with Python codecs chosen from the
  Specific Character Set (0008,0005) by :func:`codecs_for_charset`; undecodable bytes become
  U+FFFD (errors="replace"), never an exception;
- binary numbers (US SS UL SL FL FD SV UV OB-free): :func:`decode_numbers`; AT: :func:`decode_tags`;
- IS/DS: :func:`decode_numbers` parses the text; dates: :func:`decode_date`.

Code extensions (ISO 2022 escape sequences, e.g. "ISO 2022 IR 87") are decoded with the closest
Python codec (iso2022_jp_2 for the Japanese sets, iso2022_kr for Korean); this is "practical",
not a full PS3.5 6.1.2.5 implementation.
"""

from __future__ import annotations

import datetime as _dt
import re
import struct
from functools import lru_cache

__all__ = [
    "BINARY_NUMBER_VRS",
    "DEFAULT_CODECS",
    "TEXT_VRS",
    "codecs_for_charset",
    "decode_date",
    "decode_numbers",
    "decode_tags",
    "decode_text",
    "text_values",
]

#: VRs whose values are character strings.
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UI", "UR", "UT"})
#: Text VRs affected by the Specific Character Set; the others use the default repertoire.
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
#: Text VRs that hold a single value (a backslash is just a character).
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
#: Text VRs whose leading spaces are padding too.
_STRIP_BOTH_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})

BINARY_NUMBER_VRS: dict[str, str] = {
    "US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q",
    "OW": "H", "OL": "L", "OF": "f", "OD": "d", "OV": "Q",
}

DEFAULT_CODECS: tuple[str, ...] = ("latin_1",)

# PS3.3 C.12.1.1.2 defined terms -> Python codec names.
_CHARSETS: dict[str, str] = {
    "": "latin_1",  # default repertoire is ASCII; latin-1 never fails and agrees on ASCII
    "ISO_IR 6": "latin_1", "ISO 2022 IR 6": "latin_1",
    "ISO_IR 100": "latin_1", "ISO 2022 IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2", "ISO 2022 IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3", "ISO 2022 IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO 2022 IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5", "ISO 2022 IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6", "ISO 2022 IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7", "ISO 2022 IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8", "ISO 2022 IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9", "ISO 2022 IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15", "ISO 2022 IR 203": "iso8859_15",
    "ISO_IR 13": "shift_jis", "ISO 2022 IR 13": "shift_jis",
    "ISO_IR 166": "iso8859_11", "ISO 2022 IR 166": "iso8859_11",
    "ISO 2022 IR 87": "iso2022_jp_2", "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "iso2022_kr", "ISO 2022 IR 58": "gb2312",
    "ISO_IR 192": "utf_8", "GB18030": "gb18030", "GBK": "gbk",
}


@lru_cache(maxsize=256)  # a few distinct values in a whole archive
def codecs_for_charset(value: str | bytes | None) -> tuple[str, ...]:
    """Python codecs for a Specific Character Set value (multi-valued: one codec each).

    Unknown terms fall back to latin-1 (never fails); an empty value means the default.
    """
    if value is None:
        return DEFAULT_CODECS
    if isinstance(value, bytes):
        value = value.decode("latin_1")
    terms = [t.strip(" \x00") for t in value.split("\\")]
    codecs: list[str] = []
    for term in terms:
        codec = _CHARSETS.get(term.upper(), "latin_1")
        if codec not in codecs:
            codecs.append(codec)
    return tuple(codecs) or DEFAULT_CODECS


def _decode(raw: bytes, codecs: tuple[str, ...]) -> str:
    if raw.isascii():
        return raw.decode("ascii")
    if b"\x1b" in raw:  # ISO 2022 escape sequences: try a codec that understands them
        for codec in ("iso2022_jp_2", "iso2022_kr"):
            if codec in codecs:
                try:
                    return raw.decode(codec)
                except (UnicodeDecodeError, LookupError):
                    break
    # the last codec is the most specific one actually named (first is often the default set)
    for codec in reversed(codecs):
        try:
            return raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return raw.decode("utf_8")
    except UnicodeDecodeError:
        return raw.decode(codecs[-1] if codecs else "latin_1", errors="replace")


def decode_text(raw: bytes | memoryview, vr: str = "LO",
                codecs: tuple[str, ...] = DEFAULT_CODECS) -> str:
    """The whole value as one string, padding removed (trailing spaces/NULs, leading too for
    code-like VRs); the character set applies only to the VRs the standard says it does."""
    data = bytes(raw)
    text = _decode(data, codecs) if vr in _CHARSET_VRS else data.decode("latin_1")
    if vr in _STRIP_BOTH_VRS:
        return text.strip(" \x00")
    return text.rstrip(" \x00")


def text_values(raw: bytes | memoryview, vr: str = "LO",
                codecs: tuple[str, ...] = DEFAULT_CODECS) -> list[str]:
    """The values of a (possibly multi-valued) text element; [] when empty."""
    text = decode_text(raw, vr, codecs)
    if not text:
        return []
    if vr in _SINGLE_VALUE_VRS:
        return [text]
    parts = text.split("\\")
    if vr in _STRIP_BOTH_VRS:
        return [p.strip(" \x00") for p in parts]
    return [p.rstrip(" \x00") for p in parts]


def decode_numbers(raw: bytes | memoryview, vr: str, *,
                   little_endian: bool = True) -> list[int] | list[float]:
    """Numbers of a binary numeric VR, or of IS/DS text. Bad text values are skipped; a
    trailing partial binary value is ignored."""
    if vr in ("IS", "DS"):
        out: list[float] = []
        for part in text_values(raw, vr):
            try:
                out.append(int(part) if vr == "IS" else float(part))
            except ValueError:
                try:
                    out.append(float(part))
                except ValueError:
                    continue
        return out
    code = BINARY_NUMBER_VRS.get(vr)
    if code is None:
        raise ValueError(f"VR {vr} is not numeric")
    size = struct.calcsize("<" + code)
    count = len(raw) // size
    if not count:
        return []
    fmt = f"{'<' if little_endian else '>'}{count}{code}"
    return list(struct.unpack_from(fmt, raw, 0))


def decode_tags(raw: bytes | memoryview, *, little_endian: bool = True) -> list[int]:
    """AT values as 32-bit tags (group << 16 | element)."""
    count = len(raw) // 4
    fmt = f"{'<' if little_endian else '>'}{count * 2}H"
    pairs = struct.unpack_from(fmt, raw, 0) if count else ()
    return [pairs[i] << 16 | pairs[i + 1] for i in range(0, len(pairs), 2)]


_DATE_RE = re.compile(r"^(\d{4})(?:[.\-]?(\d{2})(?:[.\-]?(\d{2}))?)?")


def decode_date(text: str | bytes) -> _dt.date | None:
    """A DA value (or the date part of a DT) as a date; None when empty or invalid.
    Accepts YYYYMMDD, the old YYYY.MM.DD form, and partial YYYY / YYYYMM (first day)."""
    if isinstance(text, bytes):
        text = text.decode("latin_1")
    match = _DATE_RE.match(text.strip(" \x00"))
    if match is None:
        return None
    year, month, day = match.group(1), match.group(2) or "01", match.group(3) or "01"
    try:
        return _dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
