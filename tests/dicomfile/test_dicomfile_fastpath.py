"""The reader's fast path against its general parser: the same Header, field by field.

read_header reads well-formed data sets with a specialised loop and hands everything else to
the general parser (reader._FastParser / reader._Parser). These tests read the same bytes with
the fast path on and off and require identical results: on every bundled file, on prefixes
of them (remote samples), with small element budgets, and on mutated files.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dicomfile_corpus import corpus_files, corpus_id
from hypothesis import HealthCheck, given, settings
from test_dicomfile_fuzz import mutated

from dicomguard.dicomfile import BytesSource, Header, read_header
from dicomguard.dicomfile import reader as reader_module

FILES = corpus_files()

_FIELDS = ("name", "is_dicom", "has_preamble", "meta", "elements", "transfer_syntax",
           "implicit_vr", "little_endian", "deflated", "pixel", "truncated", "error",
           "bytes_read", "dataset_offset", "end_offset", "notes")


@contextmanager
def _general_only() -> Iterator[None]:
    saved = reader_module._FAST_PATH
    reader_module._FAST_PATH = False
    try:
        yield
    finally:
        reader_module._FAST_PATH = saved


def _both(data: bytes, total: int | None = None, **kw: int) -> tuple[Header, Header]:
    fast = read_header(BytesSource(data, total_size=total), **kw)  # type: ignore[arg-type]
    with _general_only():
        general = read_header(BytesSource(data, total_size=total), **kw)  # type: ignore[arg-type]
    return fast, general


def _assert_same(fast: Header, general: Header, what: str) -> None:
    def same_top_level() -> None:
        for tag in {*fast._index(), *general._index()}:
            assert fast.get(tag) == general.get(tag), f"{what}: top-level {tag:08X} differs"

    same_top_level()  # before the elements are made (the fast path keeps raw records)
    raw, data = fast.raw_elements()
    assert [(p, t, v, data[a:b], n, c) for p, t, v, a, b, n, c in raw] == [
        (e.path, e.tag, e.vr, e.value, e.length, e.private_creator) for e in general.elements]
    meta_raw, meta_data = fast.raw_meta()
    assert [(p, t, v, meta_data[a:b], n, c) for p, t, v, a, b, n, c in meta_raw] == [
        (e.path, e.tag, e.vr, e.value, e.length, e.private_creator) for e in general.meta]
    for name in _FIELDS:
        assert getattr(fast, name) == getattr(general, name), f"{what}: {name} differs"
    same_top_level()


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_same_header_as_general_parser(path: Path) -> None:
    data = path.read_bytes()
    fast, general = _both(data)
    _assert_same(fast, general, corpus_id(path))
    stop = max(general.end_offset, 132)
    for cut in sorted({0, 8, 131, 140, 300, 1000, 4096, stop // 2, stop - 3, stop - 1, stop,
                       stop + 1, len(data) // 2}):
        if 0 <= cut < len(data):
            fast, general = _both(data[:cut], total=len(data))
            _assert_same(fast, general, f"{corpus_id(path)} cut at {cut}")
            fast, general = _both(data[:cut])
            _assert_same(fast, general, f"{corpus_id(path)} cut at {cut} (whole)")
    for budget in (0, 1, 5, 40):
        fast, general = _both(data, max_elements=budget)
        _assert_same(fast, general, f"{corpus_id(path)} max_elements={budget}")
    fast, general = _both(data, max_bytes=stop // 2)
    _assert_same(fast, general, f"{corpus_id(path)} max_bytes")


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_files_same_as_general_parser(case: tuple[bytes, int | None]) -> None:
    data, total = case
    fast, general = _both(data, total)
    _assert_same(fast, general, "mutated")


def test_reading_leaves_no_reference_cycles() -> None:
    # a cycle (e.g. a bound method kept on the parser) would keep every buffer read until the
    # garbage collector runs: the audit's peak memory grew with big headers
    paths = [p for p in FILES if corpus_id(p).endswith(("CT_small.dcm", "MR_small_implicit.dcm",
                                                        "test-SR.dcm"))]
    assert paths
    gc.collect()
    gc.disable()
    try:
        for path in paths:
            read_header(path)
        assert gc.collect() == 0
    finally:
        gc.enable()
