"""De-identification: dicomguard against dicognito, dicom-anonymizer and pydicom/deid.

    .venv/bin/python bench/bench_deid.py [--files N] [--tools dicomguard,dicognito,...]

Corpus: bundled pydicom test files (small, every transfer syntax family), copied to N files
with synthetic PHI planted (tests/deid/deid_corpus.py: names, IDs, birth date, address, phone,
institution, physicians, accession number, dates, UIDs incl. references in nested sequences,
free text repeating the name, a private block holding name and ID). Every tool reads each file
from disk and writes its output to disk, single process (dicomguard also with 2 processes).
Prints files/s, files/s per core, the ratio to dicognito, and how many planted values each
tool leaves behind (searched as case-insensitive bytes in every output file).

Peers (benchmark only, not runtime dependencies): ``pip install dicognito dicom-anonymizer
deid``. A peer that is not installed is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.deid.deid_corpus import PLANTED, bundled, leftovers, planted_bytes  # noqa: E402

from dicomguard.deid.profile import ProfileSettings  # noqa: E402
from dicomguard.deid.runner import RunConfig, run  # noqa: E402

SOURCES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm",
           "rtstruct.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "ExplVR_BigEnd.dcm",
           "MR_small_bigendian.dcm", "emri_small.dcm")
KEY = bytes(range(32))


def make_corpus(folder: Path, n: int) -> list[Path]:
    templates = []
    for name in SOURCES:
        try:
            templates.append(bundled(name))
        except FileNotFoundError:
            continue
    paths = []
    for i in range(n):
        data = planted_bytes(templates[i % len(templates)], i)
        if data is None or data[128:132] != b"DICM":
            continue  # every peer needs a Part 10 file
        path = folder / f"f{i:05d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _per_file(fn: Callable[[Path, Path], None]) -> Callable[[list[Path], Path], None]:
    def go(paths: list[Path], out: Path) -> None:
        for p in paths:
            fn(p, out / p.name)
    return go


def pydicom_floor(src: Path, dst: Path) -> None:
    ds = pydicom.dcmread(src)
    ds.save_as(dst)


def tool_dicognito() -> Callable[[list[Path], Path], None]:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()

    def one(src: Path, dst: Path) -> None:
        ds = pydicom.dcmread(src)
        anonymizer.anonymize(ds)
        ds.save_as(dst)
    return _per_file(one)


def tool_dicom_anonymizer() -> Callable[[list[Path], Path], None]:
    from dicomanonymizer import anonymize_dataset

    def one(src: Path, dst: Path) -> None:
        ds = pydicom.dcmread(src)
        anonymize_dataset(ds, delete_private_tags=True)
        ds.save_as(dst)
    return _per_file(one)


def tool_deid() -> Callable[[list[Path], Path], None]:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    logging.getLogger("deid").setLevel(logging.ERROR)
    recipe = DeidRecipe()

    def go(paths: list[Path], out: Path) -> None:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
                contextlib.redirect_stderr(devnull):
            replace_identifiers(dicom_files=[str(p) for p in paths], deid=recipe, save=True,
                                output_folder=str(out), overwrite=True)
    return go


def tool_dicomguard(jobs: int) -> Callable[[list[Path], Path], None]:
    def go(paths: list[Path], out: Path) -> None:
        shutil.rmtree(out, ignore_errors=True)
        summary = run(RunConfig(input=paths[0].parent, output=out, key=KEY, jobs=jobs,
                                settings=ProfileSettings()))
        if summary.errors:
            raise RuntimeError(f"dicomguard: {len(summary.errors)} errors")
    return go


def measure(label: str, go: Callable[[list[Path], Path], None], paths: list[Path],
            work: Path, cores: int, repeat: int) -> tuple[float, int, int] | None:
    best = float("inf")
    out = work / label.replace(" ", "_")
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        start = time.perf_counter()
        try:
            go(paths, out)
        except ImportError as exc:
            print(f"{label:28s} not installed ({exc.name}); pip install it to compare")
            return None
        best = min(best, time.perf_counter() - start)
    outputs = [p for p in out.rglob("*") if p.is_file() and ".dicomguard-deid" not in p.parts]
    left = sum(len(leftovers(p.read_bytes(), PLANTED)) for p in outputs)
    files_with = sum(1 for p in outputs if leftovers(p.read_bytes(), PLANTED))
    rate = len(paths) / best
    return rate / cores, left, files_with


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tools", default="floor,dicomguard,dicomguard2,dicognito,"
                                           "dicom-anonymizer,deid")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    wanted = args.tools.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-deid-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        corpus.mkdir()
        paths = make_corpus(corpus, args.files)
        print(f"corpus: {len(paths)} files with {len(PLANTED)} planted values each "
              f"({sum(p.stat().st_size for p in paths) // 1024} KiB), sources: "
              f"{', '.join(SOURCES)}")
        tools: list[tuple[str, str, Callable[[], Callable[[list[Path], Path], None]], int]] = [
            ("floor", "pydicom read+write", lambda: _per_file(pydicom_floor), 1),
            ("dicomguard", "dicomguard (1 job)", lambda: tool_dicomguard(1), 1),
            ("dicomguard2", "dicomguard (2 jobs)", lambda: tool_dicomguard(2), 2),
            ("dicognito", "dicognito", tool_dicognito, 1),
            ("dicom-anonymizer", "dicom-anonymizer", tool_dicom_anonymizer, 1),
            ("deid", "pydicom/deid (default)", tool_deid, 1),
        ]
        results: dict[str, tuple[float, int, int]] = {}
        print(f"{'tool':28s} {'files/s/core':>12s} {'planted left':>13s} {'files':>6s}")
        for key, label, factory, cores in tools:
            if key not in wanted:
                continue
            try:
                go = factory()
            except ImportError as exc:
                print(f"{label:28s} not installed ({exc.name}); pip install it to compare")
                continue
            res = measure(label, go, paths, work, cores, args.repeat)
            if res is None:
                continue
            results[key] = res
            print(f"{label:28s} {res[0]:12.0f} {res[1]:13d} {res[2]:6d}")
        base = results.get("dicognito")
        if base:
            print("\nratios (files/s per core) against dicognito:")
            for key, (rate, _left, _f) in results.items():
                print(f"  {key:20s} {rate / base[0]:6.2f}x")
        if "dicomguard" in results and "dicomguard2" in results:
            one, two = results["dicomguard"][0], results["dicomguard2"][0]
            print(f"\ndicomguard scaling 1 -> 2 jobs: {2 * two / one:.2f}x "
                  f"({two / one:.0%} per-core efficiency; {os.cpu_count()} CPUs here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
