"""The optional C accelerator of the inspector's record pass (``_fastinspect.c``) against the
Python reference ``walk_records``: the same Inspection on every bundled file (summary and
detail modes), and the same containers, flags and callbacks on random records. Under CI=true
the extension must have been built; elsewhere the comparisons are skipped without it."""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomguard.accel import pure_python
from dicomguard.dicomfile import BytesSource, read_header
from dicomguard.phi import inspector as inspector_module
from dicomguard.phi.inspector import Inspector, RiskFlag, walk_records

_C_WALK = inspector_module._WALK
_CI = os.environ.get("CI", "").lower() == "true"
_PURE = pure_python()


def _files() -> list[Path]:
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for root in roots for p in root.rglob("*")
                  if p.is_file() and p.stat().st_size < 4_000_000)


FILES = _files()


def test_extension_built_under_ci() -> None:
    if not _CI:
        pytest.skip("only required under CI=true")
    importlib.import_module("dicomguard.phi._fastinspect")  # raises when it was not built


needs_c = pytest.mark.skipif(_C_WALK is None and not (_CI and not _PURE),
                             reason="C accelerator not built (or DICOMGUARD_PURE_PYTHON set)")


@contextmanager
def _walk(fn: Any) -> Iterator[None]:
    saved = inspector_module._WALK
    inspector_module._WALK = fn
    try:
        yield
    finally:
        inspector_module._WALK = saved


def _both(data: bytes, **kw: Any) -> tuple[Any, Any]:
    assert _C_WALK is not None, "C accelerator not loaded"
    header = read_header(BytesSource(data))
    with _walk(_C_WALK):
        accelerated = Inspector(**kw).inspect(header)
    with _walk(None):
        pure = Inspector(**kw).inspect(header)
    return accelerated, pure


@needs_c
def test_every_bundled_file_inspects_the_same() -> None:
    compared = 0
    for path in FILES:
        data = path.read_bytes()
        if not read_header(BytesSource(data)).is_dicom:
            continue
        for kw in ({}, {"detail": True}, {"show_phi": True},
                   {"options": ("retain-uids", "retain-safe-private")}):
            accelerated, pure = _both(data, **kw)
            assert accelerated == pure, (path.name, kw)
            assert list(accelerated.attributes) == list(pure.attributes), path.name  # order
        compared += 1
    assert compared > 100


_TAGS = [0x00100010, 0x00100020, 0x00101000, 0x00080080, 0x00081030, 0x00204000, 0x00080060,
         0x00280010, 0x60003000, 0x60020022, 0x50000005, 0x501E0010, 0x00091010, 0x00091001,
         0x00291010, 0x00190010, 0x7FE10010, 0x00080001, 0x12340056, 0x00320012]
_VRS = ["PN", "LO", "LT", "SH", "CS", "US", "OB", "UN", "DA", "UT"]


@st.composite
def _records(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], bytes]:
    values = draw(st.lists(st.sampled_from([b"", b" ", b"\x00 ", b"AB", b"Smith^Jo",
                                            b"call 555-123-4567 at 12 Oak Street",
                                            b"20190301", b"  x", b"\x00\x00\x00"]),
                           min_size=1, max_size=12))
    data = b""
    records = []
    for value in values:
        start = len(data)
        data += value
        path = draw(st.sampled_from([(), ((0x00081110, 0),)]))
        records.append((path, draw(st.sampled_from(_TAGS)), draw(st.sampled_from(_VRS)),
                        start, len(data), len(value),
                        draw(st.sampled_from([None, "ACME 1.0", ""]))))
    return records, data


def _run(fn: Any, records: list[tuple[Any, ...]], data: bytes, detail: bool,
         options: tuple[str, ...]) -> tuple[Any, ...]:
    inspector = Inspector(options=options)
    calls: list[tuple[str, int]] = []
    ctx = list(inspector._walk_context)
    slow, private_keyword = ctx[4], ctx[6]
    ctx[4] = lambda tag: (calls.append(("slow", tag)), slow(tag))[1]
    ctx[6] = lambda tag, creator: (calls.append(("private", tag)),
                                   private_keyword(tag, creator))[1]
    out = ({}, {}, set(), [], [], [], set(), [] if detail else None)
    result = fn(tuple(ctx), records, data, out)
    return result, out, calls, sorted(inspector._quiet - Inspector()._quiet)


@needs_c
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(), st.booleans(), st.sampled_from([(), ("retain-uids",), ("clean-graphics",)]))
def test_random_records_walk_the_same(case: tuple[list[tuple[Any, ...]], bytes], detail: bool,
                                      options: tuple[str, ...]) -> None:
    records, data = case
    expected = _run(walk_records, records, data, detail, options)
    got = _run(_C_WALK, records, data, detail, options)
    assert got == expected
    assert list(got[1][0]) == list(expected[1][0])  # attribute order


@needs_c
def test_overlay_and_curve_flags_match_riskflag() -> None:
    data = b"\x01\x02\x03\x04"
    records = [((), 0x60003000, "OW", 0, 2, 2, None), ((), 0x50000005, "US", 2, 4, 2, None)]
    for fn in (walk_records, _C_WALK):
        flags, _private = _run(fn, records, data, False, ())[0]
        assert flags == int(RiskFlag.OVERLAY | RiskFlag.CURVE)


@needs_c
def test_bad_records_raise_clean_errors() -> None:
    assert _C_WALK is not None
    ctx = Inspector()._walk_context
    out = ({}, {}, set(), [], [], [], set(), None)
    with pytest.raises(ValueError, match="outside the data"):
        _C_WALK(ctx, [((), 0x00100010, "PN", 0, 99, 99, None)], b"abc", out)
    with pytest.raises(TypeError):
        _C_WALK(ctx, [("not a record",)], b"abc", out)
    with pytest.raises(TypeError):
        _C_WALK(ctx, [], "not bytes", out)


@needs_c
def test_random_garbage_headers_inspect_the_same() -> None:
    rng = random.Random(7)
    base = (Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm").read_bytes()
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 12)):
            i = rng.randrange(132, min(len(data), 2000))
            data[i] = rng.randrange(256)
        accelerated, pure = _both(bytes(data), detail=True)
        assert accelerated == pure


def test_pure_python_switch() -> None:
    import subprocess
    import sys

    code = "from dicomguard.phi import inspector; print(inspector._WALK is None)"
    env = {**os.environ, "DICOMGUARD_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"
