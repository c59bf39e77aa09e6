"""Running an audit: one file (path or byte source), or whole trees, serially or in processes.

    fa = audit_file("/data/img.dcm")                                   # a FileAudit
    fa = audit_file(BytesSource(first_64k, total_size=remote_size))    # a remote sample
    result = run_audit(["/data/pacs"], AuditOptions(jobs=4))           # an AuditResult
    result.summary.dicom_files, len(result.summary.patients), result.interrupted

Parallel runs (``jobs > 1``) hand chunks of paths (:data:`CHUNK_SIZE`) to ``jobs - 1`` worker
processes (forked when this process runs no other thread, else started by a ``forkserver``
or ``spawn``: see :func:`_mp_context`) and audit chunks in the
parent too whenever the workers' queues are full; each worker returns one partial
:class:`~.summary.AuditSummary` per chunk, which the parent merges. At most
``2 * (jobs - 1)`` chunks are in flight, and the walk is a generator, so memory does not grow
with the number of files.
The per-run salt goes to the workers with their initial arguments, so every process hashes
alike.

Ctrl-C (KeyboardInterrupt in the parent; the workers ignore SIGINT) stops the walk, lets the
chunks already running finish, merges them and returns the summary with ``interrupted=True``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from dicomguard.dicomfile import ByteSource, FileSource, read_header
from dicomguard.models import Severity
from dicomguard.phi.inspector import Inspector, RiskFlag

from .summary import AuditSummary, FileAudit, FileStatus, Hasher, file_facts
from .walk import iter_files

__all__ = [
    "CHUNK_SIZE",
    "AuditContext",
    "AuditOptions",
    "AuditResult",
    "audit_file",
    "ocr_unavailable_reason",
    "reason_key",
    "run_audit",
]

CHUNK_SIZE = 128
#: Chunk size with --ocr (seconds a file instead of a tenth of a millisecond).
OCR_CHUNK_SIZE = 4
#: Identifier keywords which, found burned into the pixels by OCR, make a file critical.
_OCR_CRITICAL = frozenset({"PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames",
                           "PatientBirthName", "AccessionNumber", "PatientAddress"})


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """What the user asked for."""

    jobs: int = 1
    show_phi: bool = False
    max_files: int | None = None
    follow_symlinks: bool = False
    ocr: bool = False
    annex_options: tuple[str, ...] = ()
    chunk_size: int = CHUNK_SIZE
    folder_depth: int | None = 2     # None: full folders (--show-phi)


class AuditContext:
    """Per-process state of an audit: the inspector, the salted hasher and the settings."""

    def __init__(self, *, salt: bytes | None = None, show_phi: bool = False, ocr: bool = False,
                 annex_options: Iterable[str] = ()) -> None:
        self.hasher = Hasher(salt)
        self.show_phi = show_phi
        self.ocr = ocr
        self.inspector = Inspector(options=annex_options)

    def __repr__(self) -> str:
        return f"AuditContext(show_phi={self.show_phi}, ocr={self.ocr})"


_NUMBER = re.compile(r"\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)|\b\d+\b")
_BYTES_LITERAL = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*\"""")


def reason_key(message: str) -> str:
    """A reason for counting: the message without offsets, byte literals and numbers (tags
    stay), so equal causes count together and no value bytes from the file are carried."""
    text = message.split(" at offset ", 1)[0]
    text = _BYTES_LITERAL.sub("?", text)
    text = _NUMBER.sub(lambda m: m.group(0) if m.group(0)[0] == "(" else "N", text)
    return text[:120]


def ocr_unavailable_reason() -> str | None:
    """Why --ocr cannot run here (None when it can)."""
    try:
        from dicomguard.phi import pixel_text
    except ImportError as exc:  # the module or one of its dependencies is missing
        return f"ocr: burned-in text detection is not available ({exc.name or exc})"
    return pixel_text.tesseract_unavailable_reason()


_default_context: AuditContext | None = None


def audit_file(source: str | os.PathLike[str] | ByteSource,
               ctx: AuditContext | None = None) -> FileAudit:
    """Audit one file: a path, or a byte source (e.g. ``BytesSource(prefix, total_size=n)``
    for the first N KB of a remote file, which then counts as ``partial``). Never raises for
    a bad file: it comes back as non-DICOM or unreadable with a reason."""
    global _default_context
    if ctx is None:
        if _default_context is None:
            _default_context = AuditContext()
        ctx = _default_context
    if isinstance(source, (str, os.PathLike)):
        # the open file's fstat gives the size (no separate stat of the path)
        try:
            src = FileSource(source)
        except OSError as exc:
            try:
                size = os.stat(source).st_size
            except OSError as exc2:
                return FileAudit(FileStatus.UNREADABLE,
                                 reason=f"cannot open: {(exc2.strerror or type(exc2).__name__)}")
            return FileAudit(FileStatus.UNREADABLE, size,
                             reason_key(f"cannot open: {exc.strerror or exc}"))
        try:
            size = src.size or 0
            header = read_header(src)
        finally:
            src.close()
        if header.error is not None and header.error.startswith(("cannot open", "read failed")):
            return FileAudit(FileStatus.UNREADABLE, size, reason_key(header.error))
        available: int | None = size
        total: int | None = size
    else:
        total = source.size
        available = source.available
        size = total if total is not None else (available or 0)
        header = read_header(source)
    if not header.is_dicom:
        if header.error is not None:
            return FileAudit(FileStatus.UNREADABLE, size, reason_key(header.error))
        return FileAudit(FileStatus.NON_DICOM, size)
    inspection = ctx.inspector.inspect(header)
    partial = header.truncated and available is not None and total is not None and (
        available < total)
    if header.error is not None:
        fa = FileAudit(FileStatus.UNREADABLE, size, reason_key(header.error), partial,
                       inspection)
    else:
        fa = FileAudit(FileStatus.DICOM, size, None, partial, inspection)
    file_facts(header, fa, ctx.hasher, ctx.show_phi)
    if ctx.ocr and isinstance(source, (str, os.PathLike)) and header.pixel is not None and (
            inspection.flags & (RiskFlag.BURNED_IN | RiskFlag.BURNED_IN_LIKELY)):
        _ocr(os.fspath(source), fa)
    return fa


def _ocr(path: str, fa: FileAudit) -> None:
    from dicomguard.phi.pixel_text import detect_burned_in_text

    result = detect_burned_in_text(path)
    fa.ocr_examined = True
    if result.error is not None:
        fa.ocr_error = result.error.split(":", 1)[0].strip()[:60] or "error"
    fa.ocr_text = result.has_text
    fa.ocr_matches = tuple(sorted(result.matches))
    if _OCR_CRITICAL.intersection(result.matches):
        fa.ocr_severity = Severity.CRITICAL
    elif result.matches:
        fa.ocr_severity = Severity.HIGH


def audit_paths(paths: Iterable[tuple[str, str]], ctx: AuditContext) -> AuditSummary:
    """Audit (path, folder) pairs into one summary (what a worker does with a chunk)."""
    summary = AuditSummary()
    for path, folder in paths:
        summary.add(audit_file(path, ctx), folder)
    return summary


# --- whole trees ------------------------------------------------------------------------------


@dataclass(slots=True)
class AuditResult:
    """A finished (or interrupted) audit."""

    summary: AuditSummary
    roots: tuple[str, ...]
    options: AuditOptions
    started_at: float
    elapsed: float
    interrupted: bool = False
    stopped_at_max_files: bool = False
    notes: list[str] = field(default_factory=list)


Progress = Callable[[AuditSummary], None]

_worker_ctx: AuditContext | None = None


def _run_context(opts: AuditOptions, salt: bytes) -> AuditContext:
    """The per-process context of a run (every process of it hashes with the same salt)."""
    return AuditContext(salt=salt, show_phi=opts.show_phi, ocr=opts.ocr,
                        annex_options=opts.annex_options)


def _init_worker(opts: AuditOptions, salt: bytes) -> None:
    global _worker_ctx
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_ctx = _run_context(opts, salt)


def _work(chunk: list[tuple[str, str]]) -> AuditSummary:
    assert _worker_ctx is not None
    return audit_paths(chunk, _worker_ctx)


def _chunks(items: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _mp_context() -> multiprocessing.context.BaseContext:
    """How the worker processes start. ``fork`` when this process runs no other thread: the
    workers then start in milliseconds with everything already imported. With another
    thread alive (a progress bar's refresher, an embedding application's), a fork can copy a
    lock that thread holds, and the child would wait on it forever: then ``forkserver``
    (workers forked from a clean server that preloads the audit code, ~0.2 s to start), or
    ``spawn`` where there is no forkserver."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["dicomguard.audit.runner"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_audit(roots: Sequence[str | os.PathLike[str]], options: AuditOptions | None = None,
              *, progress: Progress | None = None, salt: bytes | None = None) -> AuditResult:
    """Audit every file under ``roots``; returns the summary even when interrupted (Ctrl-C)."""
    opts = options or AuditOptions()
    salt = salt if salt is not None else os.urandom(16)
    summary = AuditSummary()
    result = AuditResult(summary, tuple(os.fspath(r) for r in roots), opts, time.time(), 0.0)
    start = time.monotonic()
    walk = iter_files(result.roots, follow_symlinks=opts.follow_symlinks,
                      folder_depth=None if opts.show_phi else opts.folder_depth,
                      errors=summary.add_walk_error)
    limited = _limit(walk, opts.max_files, result)
    try:
        if opts.jobs <= 1:
            _run_serial(limited, opts, salt, summary, progress)
        else:
            _run_parallel(limited, opts, salt, summary, progress)
    except KeyboardInterrupt:
        result.interrupted = True
    result.elapsed = time.monotonic() - start
    return result


def _limit(walk: Iterator[tuple[str, str]], max_files: int | None,
           result: AuditResult) -> Iterator[tuple[str, str]]:
    if max_files is None:
        yield from walk
        return
    for n, item in enumerate(walk):
        if n >= max_files:
            result.stopped_at_max_files = True
            return
        yield item


def _run_serial(items: Iterator[tuple[str, str]], opts: AuditOptions, salt: bytes,
                summary: AuditSummary, progress: Progress | None) -> None:
    ctx = _run_context(opts, salt)
    last = time.monotonic()
    for path, folder in items:
        summary.add(audit_file(path, ctx), folder)
        if progress is not None:
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                progress(summary)
    if progress is not None:
        progress(summary)


def _merge_done(pending: set[Future[AuditSummary]], summary: AuditSummary,
                block: bool) -> set[Future[AuditSummary]]:
    """Merge the finished chunks (waiting for at least one when ``block``); returns those
    still pending."""
    done, rest = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
    for fut in done:
        summary.merge(fut.result())
    return rest


def _run_parallel(items: Iterator[tuple[str, str]], opts: AuditOptions, salt: bytes,
                  summary: AuditSummary, progress: Progress | None) -> None:
    """``jobs`` processes audit: ``jobs - 1`` workers, and this process, which walks, keeps
    the workers' queues filled, audits a chunk itself whenever they are, and merges. So no
    CPU idles while the workers start (a fresh interpreter and the imports: ~0.15 s), and
    the walking and merging run beside the auditing instead of on a CPU of their own."""
    executor = ProcessPoolExecutor(
        max_workers=opts.jobs - 1, mp_context=_mp_context(), initializer=_init_worker,
        initargs=(opts, salt))
    ctx = _run_context(opts, salt)
    pending: set[Future[AuditSummary]] = set()
    max_pending = 2 * (opts.jobs - 1)
    # with OCR a file takes up to seconds: small chunks keep the work balanced and the
    # progress display (updated as chunks finish) moving
    chunks = _chunks(items, max(1, min(opts.chunk_size, OCR_CHUNK_SIZE) if opts.ocr
                                else opts.chunk_size))
    interrupted = False
    try:
        for chunk in chunks:
            if len(pending) < max_pending:
                pending.add(executor.submit(_work, chunk))
                continue
            for path, folder in chunk:
                summary.add(audit_file(path, ctx), folder)
            pending = _merge_done(pending, summary, block=False)
            if progress is not None:
                progress(summary)
        while pending:
            pending = _merge_done(pending, summary, block=True)
            if progress is not None:
                progress(summary)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # let running chunks finish (seconds at most), drop the queued ones, keep what is done
        executor.shutdown(wait=True, cancel_futures=True)
        for fut in pending:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                summary.merge(fut.result())
    if interrupted:
        raise KeyboardInterrupt
