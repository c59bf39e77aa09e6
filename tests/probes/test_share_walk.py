"""The bounded remote walker on an in-memory tree of real DICOM files (bundled with pydicom)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydicom

from dicomguard.audit.runner import AuditContext
from dicomguard.probes.share_walk import (
    RemoteEntry,
    ShareLimits,
    WalkResult,
    shorten,
    walk_and_sample,
)

DATA = Path(pydicom.__file__).parent / "data" / "test_files"


class MemoryFS:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.reads: list[tuple[str, int]] = []

    async def list_dir(self, path: str) -> list[RemoteEntry]:
        prefix = path.rstrip("/") + "/"
        names: dict[str, RemoteEntry] = {}
        for full, data in self.files.items():
            if not full.startswith(prefix):
                continue
            rest = full[len(prefix):]
            head, sep, _ = rest.partition("/")
            names[head] = RemoteEntry(head, bool(sep), None if sep else len(data))
        return sorted(names.values(), key=lambda e: e.name)

    async def read_prefix(self, path: str, size: int) -> bytes:
        self.reads.append((path, size))
        return self.files[path][:size]


def tree() -> dict[str, bytes]:
    ct = (DATA / "CT_small.dcm").read_bytes()
    mr = (DATA / "MR_small.dcm").read_bytes()
    return {
        "/PACS/2021/DOE_JOHN/ct1": ct,           # no extension: found by content
        "/PACS/2021/DOE_JOHN/mr.txt": mr,        # wrong extension
        "/PACS/2021/notes.dcm": b"not dicom at all" * 20,
        "/PACS/readme.txt": b"hello" * 100,
        "/tiny": b"x",
    }


def walk(fs: MemoryFS, limits: ShareLimits) -> WalkResult:
    return asyncio.run(walk_and_sample(fs, limits, AuditContext()))


def test_dicom_found_by_content_with_bounded_reads() -> None:
    fs = MemoryFS(tree())
    res = walk(fs, ShareLimits(sample_bytes=4096))
    assert res.summary.dicom_files == 2
    assert res.summary.non_dicom == 2
    assert len(res.summary.patients) == 2
    assert res.summary.modalities == {"CT": 1, "MR": 1}
    assert all(size == 4096 for _, size in fs.reads)
    assert "/tiny" not in [p for p, _ in fs.reads]  # too small to be DICOM: never read
    assert res.bytes_read <= 4 * 4096
    facts = res.facts()
    assert facts["dicom_files"] == 2 and facts["patients"] == 2
    assert "PatientName" in facts["phi_attributes"]
    assert res.limits_reached == []


def test_paths_shortened_unless_show_phi() -> None:
    res = walk(MemoryFS(tree()), ShareLimits())
    folders = {f["folder"] for f in res.facts()["top_folders"]}
    assert folders == {"/PACS/2021/…"}
    assert "DOE_JOHN" not in str(res.facts())
    full = walk(MemoryFS(tree()), ShareLimits(show_phi=True))
    assert {f["folder"] for f in full.facts()["top_folders"]} == {"/PACS/2021/DOE_JOHN"}
    assert shorten("/a", 2) == "/a"


def test_limits_are_reported() -> None:
    res = walk(MemoryFS(tree()), ShareLimits(max_files=1))
    assert res.files_sampled == 1 and "max_files" in res.limits_reached
    res = walk(MemoryFS(tree()), ShareLimits(max_depth=1))
    assert "max_depth" in res.limits_reached and res.summary.dicom_files == 0
    res = walk(MemoryFS(tree()), ShareLimits(max_entries=2))
    assert "max_entries" in res.limits_reached


def test_listing_errors_are_counted_not_raised() -> None:
    class Broken(MemoryFS):
        async def list_dir(self, path: str) -> list[RemoteEntry]:
            if path != "/":
                raise OSError("permission denied")
            return await super().list_dir(path)

    res = walk(Broken(tree()), ShareLimits())
    assert res.errors == {"list: OSError": 1}
