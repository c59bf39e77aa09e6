"""Bounded walk of a readable remote file tree, sampling file prefixes for DICOM content.

One walker serves every share protocol (FTP, SMB, HTTP directory listings): a protocol gives a
`RemoteFS` (list a directory, read the first N bytes of a file), the walker does the rest:

- breadth-first, bounded by depth, directory entries, files sampled, bytes read and time; every
  limit that was reached is reported (a bounded walk must say it was bounded);
- DICOM is recognised by content from a partial read (`--sample-bytes`), never by extension;
- each sample is audited by the same reader and inspector as a local file (`audit_file` on a
  `BytesSource(prefix, total_size=size)`), into a mergeable `AuditSummary`: patients, studies
  and series as per-scan salted hashes, modalities, PHI attributes; no value is kept;
- folder paths are shown shortened to their first two levels unless --show-phi (paths in
  hospitals carry patient names).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dicomguard.audit.runner import AuditContext, audit_file
from dicomguard.audit.summary import AuditSummary
from dicomguard.dicomfile import BytesSource
from dicomguard.errors import DicomguardError


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    name: str
    is_dir: bool
    size: int | None = None          # bytes, when the listing says
    writable: bool | None = None     # from permissions in the listing, when it says


class RemoteFS(Protocol):
    """What a protocol client offers the walker. Paths are "/"-separated, rooted at "/"."""

    async def list_dir(self, path: str) -> list[RemoteEntry]: ...

    async def read_prefix(self, path: str, size: int) -> bytes:
        """At most `size` bytes from the start of the file (the transfer is then aborted)."""
        ...


@dataclass(frozen=True, slots=True)
class ShareLimits:
    max_depth: int = 8
    max_entries: int = 50_000        # directory entries listed, in all
    max_files: int = 5_000           # files sampled
    sample_bytes: int = 65_536       # bytes read from the start of each file
    max_bytes: int = 256 * 1024 * 1024   # bytes read in all
    time_budget: float = 300.0       # seconds for the whole walk
    min_file_bytes: int = 132        # smaller files cannot be DICOM with a preamble
    show_phi: bool = False
    path_levels: int = 2             # folder levels shown without --show-phi


@dataclass
class WalkResult:
    summary: AuditSummary
    directories: int = 0
    entries: int = 0
    files_sampled: int = 0
    bytes_read: int = 0
    writable_dirs: int = 0
    limits_reached: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)     # reason -> count
    seconds: float = 0.0

    def facts(self) -> dict[str, Any]:
        """A PHI-free summary for findings and the store."""
        s = self.summary
        top = sorted(s.folders.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:5]
        return {
            "directories": self.directories, "entries": self.entries,
            "files_sampled": self.files_sampled, "bytes_read": self.bytes_read,
            "dicom_files": s.dicom_files, "patients": len(s.patients),
            "studies": len(s.studies), "series": len(s.series),
            "modalities": dict(s.modalities), "phi_attributes": dict(s.attributes.most_common(15)),
            "top_folders": [{"folder": k, "patients": len(v)} for k, v in top],
            "writable_dirs": self.writable_dirs, "limits_reached": list(self.limits_reached),
            "errors": dict(self.errors), "seconds": round(self.seconds, 3),
        }


def shorten(path: str, levels: int) -> str:
    parts = [p for p in path.split("/") if p]
    if len(parts) <= levels:
        return "/" + "/".join(parts)
    return "/" + "/".join(parts[:levels]) + "/…"


def _join(base: str, name: str) -> str:
    return (base.rstrip("/") + "/" + name) if base != "/" else "/" + name


async def walk_and_sample(fs: RemoteFS, limits: ShareLimits, ctx: AuditContext, *,
                          root: str = "/") -> WalkResult:
    """Walk breadth-first from `root`, sampling files; never raises for what the server does."""
    start = time.monotonic()
    result = WalkResult(AuditSummary())
    await _walk(fs, limits, result, ctx, root, start)
    result.seconds = time.monotonic() - start
    return result


async def _walk(fs: RemoteFS, limits: ShareLimits, result: WalkResult, ctx: AuditContext,
                root: str, start: float) -> None:
    queue: deque[tuple[str, int]] = deque([(root, 0)])
    seen_dirs: set[str] = set()

    def reached(what: str) -> None:
        if what not in result.limits_reached:
            result.limits_reached.append(what)

    def error(reason: str) -> None:
        result.errors[reason] = result.errors.get(reason, 0) + 1

    while queue:
        if time.monotonic() - start > limits.time_budget:
            reached("time_budget")
            break
        path, depth = queue.popleft()
        if path in seen_dirs:
            continue
        seen_dirs.add(path)
        try:
            entries = await fs.list_dir(path)
        except (TimeoutError, DicomguardError, OSError) as exc:
            error(f"list: {type(exc).__name__}")
            continue
        result.directories += 1
        folder = path if limits.show_phi else shorten(path, limits.path_levels)
        # a RemoteFS that can start the next read while this sample is audited says so
        # with read_prefix_then(path, size, next_path)
        ahead: Callable[[str, int, str | None], Awaitable[bytes]] | None = \
            getattr(fs, "read_prefix_then", None)
        upcoming: deque[str] = deque()
        if ahead is not None:
            upcoming.extend(_join(path, e.name) for e in entries if not e.is_dir and (
                e.size is None or e.size >= limits.min_file_bytes))
        for entry in entries:
            if result.entries >= limits.max_entries:
                reached("max_entries")
                queue.clear()
                break
            result.entries += 1
            child = _join(path, entry.name)
            if entry.is_dir:
                if entry.writable:
                    result.writable_dirs += 1
                if depth + 1 > limits.max_depth:
                    reached("max_depth")
                else:
                    queue.append((child, depth + 1))
                continue
            if entry.size is not None and entry.size < limits.min_file_bytes:
                continue
            if result.files_sampled >= limits.max_files:
                reached("max_files")
                continue
            if result.bytes_read + limits.sample_bytes > limits.max_bytes:
                reached("max_bytes")
                continue
            if time.monotonic() - start > limits.time_budget:
                reached("time_budget")
                break
            try:
                if ahead is not None:
                    while upcoming and upcoming.popleft() != child:
                        pass
                    data = await ahead(child, limits.sample_bytes,
                                       upcoming[0] if upcoming else None)
                else:
                    data = await fs.read_prefix(child, limits.sample_bytes)
            except (TimeoutError, DicomguardError, OSError) as exc:
                error(f"read: {type(exc).__name__}")
                continue
            result.files_sampled += 1
            result.bytes_read += len(data)
            total = entry.size if entry.size is not None and entry.size >= len(data) else None
            if total is None and len(data) >= limits.sample_bytes:
                total = len(data) + 1  # more follows: a prefix, whatever the size
            source = BytesSource(data, total_size=total if total is not None else len(data),
                                 name=entry.name)
            result.summary.add(audit_file(source, ctx), folder)
