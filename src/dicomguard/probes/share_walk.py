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

import asyncio
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
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


#: A walk audits its first samples inline; past this many it hands them to a worker process
#: (when the machine has a spare CPU), so the next transfers do not wait for the audit.
POOL_AFTER = 256
POOL_BATCH = 64                      # samples per task handed to the worker
POOL_MAX_PENDING_BYTES = 64 << 20    # sample bytes queued for the worker at most

#: (prefix, total size, name, folder) of one sample
_Sample = tuple[bytes, int, str, str]

_sample_ctx: AuditContext | None = None


def _init_sample_worker(salt: bytes, show_phi: bool, ocr: bool,
                        annex_options: tuple[str, ...]) -> None:
    global _sample_ctx
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _sample_ctx = AuditContext(salt=salt, show_phi=show_phi, ocr=ocr,
                               annex_options=annex_options)


def _audit_samples(batch: list[_Sample]) -> AuditSummary:
    """In the worker: the partial summary of a batch of samples (no values leave it)."""
    assert _sample_ctx is not None
    summary = AuditSummary()
    for data, total, name, folder in batch:
        summary.add(audit_file(BytesSource(data, total_size=total, name=name), _sample_ctx),
                    folder)
    return summary


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver (a clean server with the audit code preloaded) where available, else spawn;
    never plain fork from a process that may run threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["dicomguard.probes.share_walk"])
        return ctx
    return multiprocessing.get_context("spawn")


class _Auditor:
    """Audits the samples of one walk into `summary`: inline, or, once the walk has sampled
    more than `pool_after` files, in batches in one worker process (same salt and settings,
    so hashes agree), merged as they come back. The queue to the worker is bounded in bytes;
    `finish` waits for the rest, `close` drops the worker."""

    def __init__(self, ctx: AuditContext, summary: AuditSummary, workers: int | None) -> None:
        self.ctx = ctx
        self.summary = summary
        if workers is None:
            workers = 1 if (os.cpu_count() or 1) > 1 else 0
        self.workers = workers
        self.pool_after = POOL_AFTER if workers else -1
        self.seen = 0
        self.batch: list[_Sample] = []
        self.batch_bytes = 0
        self.pending: deque[tuple[asyncio.Future[AuditSummary], int, list[_Sample]]] = deque()
        self.pending_bytes = 0
        self.executor: ProcessPoolExecutor | None = None
        self.failed = False

    async def add(self, data: bytes, total: int, name: str, folder: str) -> None:
        self.seen += 1
        if self.pool_after < 0 or self.seen <= self.pool_after:
            self.summary.add(audit_file(BytesSource(data, total_size=total, name=name),
                                        self.ctx), folder)
            return
        self.batch.append((data, total, name, folder))
        self.batch_bytes += len(data)
        if len(self.batch) >= POOL_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        batch, size = self.batch, self.batch_bytes
        self.batch, self.batch_bytes = [], 0
        if not batch:
            return
        while self.pending and (self.pending_bytes + size > POOL_MAX_PENDING_BYTES
                                or self.pending[0][0].done()):
            await self._merge_oldest()
        if self.failed:
            self._inline(batch)
            return
        loop = asyncio.get_running_loop()
        try:
            if self.executor is None:
                self.executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=_mp_context(),
                    initializer=_init_sample_worker,
                    initargs=(self.ctx.hasher.salt, self.ctx.show_phi, self.ctx.ocr,
                              tuple(sorted(self.ctx.inspector.options))))
            fut = loop.run_in_executor(self.executor, _audit_samples, batch)
        except (OSError, RuntimeError):
            self.failed = True                   # no worker here: audit in this process
            self._inline(batch)
            return
        self.pending.append((fut, size, batch))
        self.pending_bytes += size

    def _inline(self, batch: list[_Sample]) -> None:
        for data, total, name, folder in batch:
            self.summary.add(audit_file(BytesSource(data, total_size=total, name=name),
                                        self.ctx), folder)

    async def _merge_oldest(self) -> None:
        fut, size, batch = self.pending.popleft()
        self.pending_bytes -= size
        try:
            part = await fut
        except (OSError, RuntimeError, EOFError):  # the worker died: audit here instead
            self.failed = True
            self._inline(batch)
            return
        self.summary.merge(part)

    async def finish(self) -> None:
        await self._flush()
        while self.pending:
            await self._merge_oldest()
        if self.executor is not None:            # idle now: let the worker exit cleanly
            self.executor.shutdown(wait=True)
            self.executor = None

    def close(self) -> None:
        for fut, _, _ in self.pending:
            fut.cancel()
        self.pending.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


def shorten(path: str, levels: int) -> str:
    parts = [p for p in path.split("/") if p]
    if len(parts) <= levels:
        return "/" + "/".join(parts)
    return "/" + "/".join(parts[:levels]) + "/…"


def _join(base: str, name: str) -> str:
    return (base.rstrip("/") + "/" + name) if base != "/" else "/" + name


async def walk_and_sample(fs: RemoteFS, limits: ShareLimits, ctx: AuditContext, *,
                          root: str = "/", audit_workers: int | None = 0) -> WalkResult:
    """Walk breadth-first from `root`, sampling files; never raises for what the server does.

    `audit_workers`: 0 audits every sample in this process, between reads; n > 0 hands the
    samples after the first POOL_AFTER to n worker processes, so reading goes on while they
    are audited; None: one worker when the machine has more than one CPU."""
    start = time.monotonic()
    result = WalkResult(AuditSummary())
    auditor = _Auditor(ctx, result.summary, audit_workers)
    try:
        await _walk(fs, limits, result, auditor, root, start)
        await auditor.finish()
    finally:
        auditor.close()
    result.seconds = time.monotonic() - start
    return result


async def _walk(fs: RemoteFS, limits: ShareLimits, result: WalkResult, auditor: _Auditor,
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
            await auditor.add(data, total if total is not None else len(data), entry.name,
                              folder)
