"""DICOM file header reading: fast, bounded, stops before pixel data, never crashes on bad bytes.

    from dicomguard.dicomfile import read_header
    hdr = read_header("image.dcm")            # or bytes, or BytesSource(prefix, total_size=n)
    if hdr.is_dicom:
        for e in hdr.elements:                # flat, in file order
            e.path, e.tag, e.vr, e.value, e.private_creator
        hdr.text(0x00100010)                  # PatientName, decoded with the character set
        hdr.pixel                             # PixelInfo or None; pixel bytes are never read
        hdr.truncated, hdr.error
"""

from .reader import (
    DEFAULT_MAX_ELEMENTS,
    MAX_DEPTH,
    PIXEL_DATA_TAGS,
    UNDEFINED_LENGTH,
    Element,
    Header,
    PixelInfo,
    RawElement,
    raw_records,
    read_header,
)
from .sources import ByteSource, BytesSource, FileSource, as_source
from .values import (
    codecs_for_charset,
    decode_date,
    decode_numbers,
    decode_tags,
    decode_text,
    text_values,
)

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "MAX_DEPTH",
    "PIXEL_DATA_TAGS",
    "UNDEFINED_LENGTH",
    "ByteSource",
    "BytesSource",
    "Element",
    "FileSource",
    "Header",
    "PixelInfo",
    "RawElement",
    "as_source",
    "codecs_for_charset",
    "decode_date",
    "decode_numbers",
    "decode_tags",
    "decode_text",
    "raw_records",
    "read_header",
    "text_values",
]
