"""asyncio servers in a background thread, for tests that drive the synchronous engine.

`ThreadedServers` starts a loop in a thread, serves handlers on loopback ports, and on exit
closes the servers, cancels every connection task and closes its transport, so nothing leaks
(pytest runs with warnings as errors, ResourceWarning included).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def free_ports(address: str, count: int) -> list[int]:
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind((address, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class ThreadedServers:
    def __init__(self, listeners: list[tuple[Handler, str, int]]) -> None:
        self.listeners = listeners
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _wrap(self, handler: Handler) -> Handler:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)  # type: ignore[arg-type]
            self._writers.add(writer)
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                self._writers.discard(writer)
                self._tasks.discard(task)  # type: ignore[arg-type]
        return run

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            for handler, address, port in self.listeners:
                self._servers.append(
                    await asyncio.start_server(self._wrap(handler), address, port))
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0.05)
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0)

        self.loop.run_until_complete(shutdown())
        self.loop.close()

    def __enter__(self) -> ThreadedServers:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
