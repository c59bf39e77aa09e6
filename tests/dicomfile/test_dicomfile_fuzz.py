"""Property tests: random and mutated bytes never raise and never take long."""

from __future__ import annotations

import struct
import time

import pytest
from dicomfile_corpus import PYDICOM_FILES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomguard.dicomfile import BytesSource, Header, read_header
from dicomguard.errors import DicomFileError

TIME_LIMIT = 2.0  # seconds for one file; real files take well under a millisecond

SEEDS = {name: (PYDICOM_FILES / name).read_bytes() for name in (
    "CT_small.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "rtstruct.dcm",
    "nested_priv_SQ.dcm", "test-SR.dcm", "MR_small_implicit.dcm", "UN_sequence.dcm",
)}

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(data: bytes, *, total: int | None = None) -> Header:
    start = time.perf_counter()
    source = BytesSource(data, total_size=total)
    hdr = read_header(source)
    assert time.perf_counter() - start < TIME_LIMIT
    assert isinstance(hdr, Header)
    assert hdr.bytes_read <= len(data)
    if hdr.error is not None:
        with pytest.raises(DicomFileError):
            read_header(BytesSource(data, total_size=total), strict=True)
    return hdr


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([
    b"", b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2\x00\x00",
    b"\x02\x00\x10\x00UI\x16\x001.2.840.10008.1.2.2\x00",
    b"\x02\x00\x10\x00UI\x16\x001.2.840.10008.1.2.1\x00",
    b"\x02\x00\x10\x00UI\x18\x001.2.840.10008.1.2.1.99",
]))
def test_random_data_set_after_dicm(body: bytes, meta: bytes) -> None:
    _check(b"\0" * 128 + b"DICM" + meta + body)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, int | None]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    head = min(len(data), 8192)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "length", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, min(head, len(data)) - 5)))
        if kind == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "length" or kind == "flip":
            value = draw(st.sampled_from([0, 1, 3, 0x7FFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF,
                                          len(data), len(data) * 4]))
            data[pos:pos + 4] = struct.pack("<L", value)
        elif kind == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    total = None if draw(st.booleans()) else len(data) + draw(st.integers(0, 1 << 20))
    return bytes(data), total


@FUZZ
@given(mutated())
def test_mutated_files(case: tuple[bytes, int | None]) -> None:
    data, total = case
    _check(data, total=total)


def test_self_referential_lengths_do_not_loop() -> None:
    # an item whose length points back to itself, a sequence of zero-length items, huge counts
    base = SEEDS["CT_small.dcm"][:400]
    loops = [
        base + b"\x08\x00\x15\x11SQ\0\0" + struct.pack("<L", 0xFFFFFFFF)
        + b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * 20000,
        base + b"\x08\x00\x15\x11SQ\0\0" + struct.pack("<L", 8)
        + b"\xfe\xff\x00\xe0" + struct.pack("<L", 0xFFFFFFF8),
        base + (b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff") * 500,
    ]
    for data in loops:
        hdr = _check(data)
        assert hdr.error is not None or hdr.truncated
