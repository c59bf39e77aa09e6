"""The walker's read-ahead hook (read_prefix_then), as the FTP adapter uses it: each read
names the next file the walker will sample in the same folder, and a RemoteFS without the
hook is read as before."""

from __future__ import annotations

import asyncio

from dicomguard.audit.runner import AuditContext
from dicomguard.probes.share_walk import RemoteEntry, ShareLimits, walk_and_sample

TREE = {
    "/": [RemoteEntry("a", True), RemoteEntry("f1", False, 5000), RemoteEntry("tiny", False, 10),
          RemoteEntry("f2", False, None), RemoteEntry("b", True), RemoteEntry("f3", False, 900)],
    "/a": [RemoteEntry("g1", False, 5000), RemoteEntry("g2", False, 5000)],
    "/b": [],
}


class PlainFS:
    def __init__(self) -> None:
        self.reads: list[str] = []

    async def list_dir(self, path: str) -> list[RemoteEntry]:
        return TREE[path]

    async def read_prefix(self, path: str, size: int) -> bytes:
        self.reads.append(path)
        return b"\0" * min(size, 300)


class AheadFS(PlainFS):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str | None]] = []

    async def read_prefix_then(self, path: str, size: int, next_path: str | None) -> bytes:
        self.calls.append((path, next_path))
        return await self.read_prefix(path, size)


def test_read_ahead_names_the_next_sampled_file_of_the_folder() -> None:
    fs = AheadFS()
    result = asyncio.run(walk_and_sample(fs, ShareLimits(), AuditContext()))
    assert fs.calls == [("/f1", "/f2"), ("/f2", "/f3"), ("/f3", None),
                        ("/a/g1", "/a/g2"), ("/a/g2", None)]
    assert result.files_sampled == 5
    plain = PlainFS()
    again = asyncio.run(walk_and_sample(plain, ShareLimits(), AuditContext()))
    assert plain.reads == fs.reads and again.files_sampled == 5


def test_read_ahead_hint_may_go_unused_when_a_limit_stops_the_walk() -> None:
    fs = AheadFS()
    result = asyncio.run(walk_and_sample(fs, ShareLimits(max_files=2), AuditContext()))
    assert fs.calls == [("/f1", "/f2"), ("/f2", "/f3")]     # /f3 hinted, never read
    assert "max_files" in result.limits_reached
