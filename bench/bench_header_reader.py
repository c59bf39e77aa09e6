"""Header reading speed: dicomguard.dicomfile.read_header against pydicom, same files, same run.

    .venv/bin/python bench/bench_header_reader.py [--repeat N] [PATH ...]

Default input: every file in pydicom's and pydicom-data's bundled test data that both readers
accept as DICOM. pydicom does dcmread(stop_before_pixels=True) and a full walk (every element
value converted); dicomguard does read_header and (second figure) decodes every text value.
Prints files/s per core for each and the ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from dicomguard.dicomfile import read_header
from dicomguard.dicomfile.values import TEXT_VRS, decode_text


def _default_files() -> list[Path]:
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for r in roots for p in r.rglob("*") if p.is_file())


def _pydicom_walk(path: Path) -> int:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    count = 0

    def visit(_ds: Dataset, elem: object) -> None:
        nonlocal count
        count += 1
        _ = elem.value  # type: ignore[attr-defined]

    ds.walk(visit)
    return count


def _ours(path: Path) -> int:
    return len(read_header(path).elements)


def _ours_text(path: Path) -> int:
    hdr = read_header(path)
    codecs = hdr.codecs
    for e in hdr.elements:
        if e.vr in TEXT_VRS:
            decode_text(e.value, e.vr, codecs)
    return len(hdr.elements)


def _rate(fn: object, files: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for f in files:
            fn(f)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return len(files) / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = args.paths or _default_files()
    usable = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            try:
                _pydicom_walk(f)
            except Exception:  # the peer's own failures just exclude the file
                continue
            if read_header(f).ok:
                usable.append(f)
        peer = _rate(_pydicom_walk, usable, args.repeat)
    ours = _rate(_ours, usable, args.repeat)
    ours_text = _rate(_ours_text, usable, args.repeat)
    print(f"files: {len(usable)} (bundled test data; both readers accept them)")
    print(f"pydicom dcmread(stop_before_pixels)+walk: {peer:9.0f} files/s")
    print(f"dicomguard read_header:                   {ours:9.0f} files/s  ({ours / peer:.1f}x)")
    print(f"dicomguard read_header + decode all text: {ours_text:9.0f} files/s  "
          f"({ours_text / peer:.1f}x)")


if __name__ == "__main__":
    main()
