"""Scan with several worker processes on one machine (`--workers N`).

One asyncio process saturates one core at a few thousand associations per second; beyond that
the targets are split over processes. Targets are partitioned by address, so every host belongs
to exactly one worker and the per-host cap stays exact; the global rate limit is divided
between the workers. Each worker runs the same `scan_async` a distributed worker would run
and streams its results back over a pipe as they complete, so progress, incremental saving and
Ctrl-C behave as with one process.

Workers are forked (cheap, no re-import) before any thread is started by the caller.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import zlib
from collections.abc import Iterable
from dataclasses import replace
from multiprocessing.connection import Connection

from dicomguard.engine.scan import EndpointResult, NullObserver, Observer, ScanConfig, scan_batch
from dicomguard.models import Target
from dicomguard.net.connector import Guard

_DONE = "done"


def shard_of(address: str, workers: int) -> int:
    """Stable partition by address (every port of a host goes to the same worker)."""
    return zlib.crc32(address.encode()) % workers


class _PipeObserver:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def started(self, total: int | None) -> None:
        pass

    def endpoint_done(self, result: EndpointResult) -> None:
        self.conn.send(result)


def _worker(targets: list[Target], cfg: ScanConfig, guard: Guard | None,
            conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        scan_batch(targets, cfg, guard=guard, observer=_PipeObserver(conn))
        conn.send(_DONE)
    except BaseException as exc:  # reported to the parent, which fails the scan
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class WorkerError(RuntimeError):
    pass


def scan_parallel(targets: Iterable[Target], cfg: ScanConfig, *, guard: Guard | None,
                  workers: int, observer: Observer | None = None,
                  total: int | None = None) -> list[EndpointResult]:
    """Like scan_batch, over `workers` forked processes. KeyboardInterrupt stops the workers
    and re-raises; results already delivered to the observer are the caller's to keep."""
    observer = observer or NullObserver()
    if workers <= 1:
        return scan_batch(targets, cfg, guard=guard, observer=observer, total=total)
    shards: list[list[Target]] = [[] for _ in range(workers)]
    for target in targets:
        if guard is not None and not guard.allows(target.address):
            from dicomguard.errors import OutOfScopeError
            raise OutOfScopeError(target.address)
        shards[shard_of(target.address, workers)].append(target)
    shard_cfg = replace(cfg, rate=cfg.rate / workers if cfg.rate > 0 else 0,
                        max_in_flight=max(1, cfg.max_in_flight // workers))
    ctx = multiprocessing.get_context("fork")
    procs: list[multiprocessing.context.ForkProcess] = []
    conns: list[Connection] = []
    observer.started(total)
    for shard in shards:
        if not shard:
            continue
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(shard, shard_cfg, guard, child), daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        conns.append(parent)
    results: list[EndpointResult] = []
    errors: list[str] = []
    try:
        open_conns = list(conns)
        while open_conns:
            for ready in multiprocessing.connection.wait(open_conns):
                assert isinstance(ready, Connection)
                try:
                    item = ready.recv()
                except EOFError:
                    open_conns.remove(ready)
                    continue
                if item == _DONE:
                    open_conns.remove(ready)
                elif isinstance(item, tuple):
                    errors.append(item[1])
                    open_conns.remove(ready)
                else:
                    if item.open:
                        results.append(item)
                    observer.endpoint_done(item)
    finally:
        for proc in procs:
            if proc.is_alive():
                assert proc.pid is not None
                os.kill(proc.pid, signal.SIGTERM)
            proc.join(5)
        for conn in conns:
            conn.close()
    if errors:
        raise WorkerError("; ".join(errors))
    return results
