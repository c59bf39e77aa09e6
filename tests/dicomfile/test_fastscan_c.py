"""The optional C accelerator of the reader's fast path (``_fastscan.c``) against the
pure-Python fast path: the same Header, field by field.

The C loop reads the top-level elements it can and hands the rest to the Python loop at a
top-level element boundary, so read_header must give exactly the same result with it and
without it: on every bundled file, on prefixes of them cut at many points, with small element
budgets and on mutated files. Under CI=true the extension must have been built; elsewhere
these tests are skipped when it was not (the reader then always uses the Python loop).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dicomfile_build import el, item, part10, seq
from dicomfile_corpus import corpus_files, corpus_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dicomfile_fastpath import _assert_same
from test_dicomfile_fuzz import mutated

from dicomguard.accel import pure_python
from dicomguard.dicomfile import BytesSource, Header, read_header
from dicomguard.dicomfile import reader as reader_module

FILES = corpus_files()
_SCAN = reader_module._SCAN
_PURE = pure_python()


def _extension_built() -> bool:
    try:
        importlib.import_module("dicomguard.dicomfile._fastscan")
    except ImportError:
        return False
    return True


def test_extension_built_under_ci() -> None:
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only required under CI=true")
    assert _extension_built(), ("the C accelerator dicomguard.dicomfile._fastscan was not built "
                                "(pip install -e . needs a C compiler and the Python headers)")


needs_c = pytest.mark.skipif(
    _SCAN is None and not (os.environ.get("CI", "").lower() == "true" and not _PURE),
    reason="C accelerator not built (or DICOMGUARD_PURE_PYTHON set): nothing to compare")


_C_NAMES = ("_SCAN", "_META")
_C_FUNCTIONS = {name: getattr(reader_module, name) for name in _C_NAMES}


@contextmanager
def _use(functions: dict[str, object]) -> Iterator[None]:
    saved = {name: getattr(reader_module, name) for name in _C_NAMES}
    for name, fn in functions.items():
        setattr(reader_module, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(reader_module, name, fn)


def _pure_python() -> contextlib.AbstractContextManager[None]:
    return _use(dict.fromkeys(_C_NAMES))


def _both(data: bytes, total: int | None = None, **kw: int) -> tuple[Header, Header]:
    assert all(_C_FUNCTIONS.values()), "C accelerator not loaded"
    with _use(_C_FUNCTIONS):
        accelerated = read_header(BytesSource(data, total_size=total), **kw)  # type: ignore[arg-type]
    with _pure_python():
        pure = read_header(BytesSource(data, total_size=total), **kw)  # type: ignore[arg-type]
    return accelerated, pure


@needs_c
@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_same_header_as_pure_python(path: Path) -> None:
    data = path.read_bytes()
    accelerated, pure = _both(data)
    _assert_same(accelerated, pure, corpus_id(path))
    stop = max(pure.end_offset, 132)
    cuts = {0, 8, 131, 132, 140, 300, 1000, 4096, len(data) // 2, len(data) - 1}
    cuts.update(range(132, min(stop + 16, 1500), 7))  # through the meta and first elements
    cuts.update(stop * k // 37 for k in range(38))   # spread over the whole header
    cuts.update(range(max(0, stop - 24), stop + 24))  # around the pixel data element
    for cut in sorted(cuts):
        if 0 <= cut < len(data):
            accelerated, pure = _both(data[:cut], total=len(data))
            _assert_same(accelerated, pure, f"{corpus_id(path)} cut at {cut}")
            accelerated, pure = _both(data[:cut])
            _assert_same(accelerated, pure, f"{corpus_id(path)} cut at {cut} (whole)")
    for budget in (0, 1, 2, 5, 13, 40, 100):
        accelerated, pure = _both(data, max_elements=budget)
        _assert_same(accelerated, pure, f"{corpus_id(path)} max_elements={budget}")
    for limit in (stop // 3, stop // 2, stop - 1):
        accelerated, pure = _both(data, max_bytes=limit)
        _assert_same(accelerated, pure, f"{corpus_id(path)} max_bytes={limit}")


@needs_c
@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_files_same_as_pure_python(case: tuple[bytes, int | None]) -> None:
    data, total = case
    accelerated, pure = _both(data, total)
    _assert_same(accelerated, pure, "mutated")


@needs_c
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated(), st.integers(0, 64))
def test_mutated_files_small_budget_same_as_pure_python(
        case: tuple[bytes, int | None], budget: int) -> None:
    data, total = case
    accelerated, pure = _both(data, total, max_elements=budget)
    _assert_same(accelerated, pure, f"mutated, max_elements={budget}")


_CREATOR_NAME = st.builds(
    lambda pad1, name, pad2: pad1 + name + pad2,
    st.sampled_from([b"", b" ", b"\0", b" \0 "]), st.sampled_from([b"ACME", b"A B", b""]),
    st.sampled_from([b"", b" ", b"\0", b"\0\0 "]))


@st.composite
def _level(draw: st.DrawFn, implicit: bool, depth: int) -> bytes:
    """The elements of one data set level: public, private creators (padded names) and their
    elements, PixelRepresentation and US-or-SS values, sequences of either length (implicit:
    also undefined-length private UN), nested."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "creator", "private", "pixrep", "usss", "seq",
                                     "un"] if depth < 3 else ["text", "creator", "private"]))
        group = draw(st.sampled_from([0x0009, 0x0029]))
        block = draw(st.sampled_from([0x10, 0x11]))
        if kind == "text":
            out.append(el(0x00100010, "PN", draw(st.sampled_from([b"", b"DOE^J", b"A "])),
                          implicit=implicit))
        elif kind == "creator":
            out.append(el(group << 16 | block, "LO", draw(_CREATOR_NAME), implicit=implicit))
        elif kind == "private":
            out.append(el(group << 16 | block << 8 | draw(st.integers(0, 3)), "LO", b"XY",
                          implicit=implicit))
        elif kind == "pixrep":
            out.append(el(0x00280103, "US", draw(st.sampled_from(
                [b"\1\0", b"\0\0", b"\0\1", b"\1", b""])), implicit=implicit))
        elif kind == "usss":
            out.append(el(0x00280106, "US", b"\2\0", implicit=implicit))
        else:
            tag = (0x00081115 if draw(st.booleans()) else group << 16 | block << 8 | 0x20)
            items = [item(draw(_level(implicit, depth + 1)), undefined=draw(st.booleans()))
                     for _ in range(draw(st.integers(0, 3)))]
            if kind == "un" and implicit:
                tag = group << 16 | block << 8 | 0x30
            out.append(seq(tag, items, undefined=kind == "un" or draw(st.booleans()),
                           implicit=implicit))
    return b"".join(out)


@st.composite
def _synthetic(draw: st.DrawFn) -> tuple[bytes, int | None]:
    implicit = draw(st.booleans())
    body = draw(_level(implicit, 0))
    if draw(st.booleans()):
        body += el(0x7FE00010, "OW", b"\0" * 8, implicit=implicit)
    data = part10(body, "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    cut = draw(st.integers(0, len(data)))
    total = None if draw(st.booleans()) else len(data)
    return data[:cut] if draw(st.booleans()) else data, total


@needs_c
@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_synthetic(), st.sampled_from([0, 3, 10, 10**6]))
def test_synthetic_data_sets_same_as_pure_python(case: tuple[bytes, int | None],
                                                 budget: int) -> None:
    data, total = case
    accelerated, pure = _both(data, total, max_elements=budget)
    _assert_same(accelerated, pure, f"synthetic, max_elements={budget}")


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([0, 1, 2]), st.integers(0, 40))
def test_random_bytes_do_not_crash_the_scanner(data: bytes, mode: int, pos: int) -> None:
    # straight into the C loop (no DICM checks in front): it must never read past the buffer
    class Buf:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def need(self, end: int) -> bool:
            return end <= len(self.data)

    assert _SCAN is not None
    elements: list[object] = []
    stop, _signed, _pixel = _SCAN(Buf(data), pos, mode, elements, {}, 1000, False, (),
                                  reader_module._PLAIN_IMPLICIT_VRS, reader_module.IMPLICIT_VRS,
                                  reader_module.implicit_vr_fallback)
    assert stop == pos or pos <= stop <= len(data)


@needs_c
def test_the_c_loop_does_the_work() -> None:
    # a plain file is read by the C loop up to its pixel data (the Python loop only starts)
    path = next(p for p in FILES if corpus_id(p) == "pydicom/CT_small.dcm")
    buf = reader_module._Buffer(BytesSource(path.read_bytes()), None)
    header = read_header(path)
    mode = 0 if header.implicit_vr else (1 if header.little_endian else 2)
    elements: list[object] = []
    assert _SCAN is not None
    stop, _signed, pixel = _SCAN(buf, header.dataset_offset, mode, elements, {}, 10**6, False, (),
                                 reader_module._PLAIN_IMPLICIT_VRS, reader_module.IMPLICIT_VRS,
                                 reader_module.implicit_vr_fallback)
    assert header.pixel is not None and pixel is not None
    assert pixel[0] == header.pixel.tag and stop == header.pixel.offset
    assert elements == header.raw_elements()[0]


def test_pure_python_switch() -> None:
    # DICOMGUARD_PURE_PYTHON=1 makes the reader use its Python loop only
    code = ("from dicomguard.dicomfile import reader; "
            "print(reader._SCAN is None and reader._META is None)")
    env = {**os.environ, "DICOMGUARD_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"


def _python_meta(data: bytes, pos: int, max_elements: int) -> object:
    buf = reader_module._Buffer(BytesSource(data), None)
    with _pure_python():
        return reader_module._fast_meta(buf, pos, max_elements)


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x0002, 0x0002, 0x0002, 0x0008]),
                          st.integers(0, 0xFFFF),
                          st.sampled_from([b"UL", b"OB", b"UI", b"SQ", b"UN", b"ZZ", b"ui"]),
                          st.binary(max_size=24)), max_size=8),
       st.integers(0, 12), st.integers(0, 40))
def test_meta_same_as_python(parts: list[tuple[int, int, bytes, bytes]], max_elements: int,
                             cut: int) -> None:
    # the C meta() against _fast_meta on meta groups with odd VRs, wrong groups, cut short
    out = b""
    for group, elem, vr, value in parts:
        if vr in (b"OB", b"SQ", b"UN"):
            out += struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
        else:
            out += struct.pack("<HH2sH", group, elem, vr, len(value)) + value
    data = b"\0" * 128 + b"DICM" + out[:max(0, len(out) - cut)]
    meta_c = _C_FUNCTIONS["_META"]
    assert callable(meta_c)
    expected = _python_meta(data, 132, max_elements)
    got = meta_c(data, 132, max_elements, reader_module.Element)
    assert got == expected
    if got is not None:
        assert all(type(e) is reader_module.Element for e in got[0])
