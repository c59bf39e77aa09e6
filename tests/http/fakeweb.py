"""A scriptable HTTP server on 127.0.0.1 for hostile and product-page tests, run in the test's
own event loop: `async with FakeWeb(routes) as web: ... web.port`.

A route maps a path (with or without its query string) to raw response bytes, or to a
coroutine `(writer, path, headers) -> None` that writes whatever it likes (garbage, a tarpit,
an endless body). Every connection is closed and every handler task cancelled on exit, so no
ResourceWarning escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Behaviour = Callable[[asyncio.StreamWriter, str, dict[str, str]], Awaitable[None]]
Route = bytes | Behaviour


def response(status: int = 200, body: bytes | str = b"", *, content_type: str = "text/html",
             headers: Mapping[str, str] | None = None, reason: str = "X") -> bytes:
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
             f"Content-Length: {len(data)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def json_response(doc: Any, status: int = 200, content_type: str = "application/json") -> bytes:
    return response(status, json.dumps(doc), content_type=content_type)


NOT_FOUND = response(404, "<html><title>404 Not Found</title></html>")


class FakeWeb:
    def __init__(self, routes: Mapping[str, Route] | None = None, *,
                 default: Route = NOT_FOUND, on_connect: Behaviour | None = None,
                 prefix_routes: Mapping[str, Route] | None = None) -> None:
        self.routes = dict(routes or {})
        self.prefix_routes = dict(prefix_routes or {})
        self.default = default
        self.on_connect = on_connect          # answers before reading the request
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> FakeWeb:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.on_connect is not None:
                await self.on_connect(writer, "", {})
                return
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            self.requests.append((path, headers))
            route = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
            if route is None:
                route = next((r for p, r in self.prefix_routes.items() if path.startswith(p)),
                             self.default)
            if isinstance(route, bytes):
                writer.write(route)
                await writer.drain()
            else:
                await route(writer, path, headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:   # shutdown: end quietly (asyncio logs cancelled
            pass                         # client-connected callbacks as errors)
        finally:
            writer.transport.abort()
            self._writers.discard(writer)
            self._tasks.discard(task)


# --- behaviours ------------------------------------------------------------------------------


async def tarpit(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
    await asyncio.sleep(3600)


def garbage(data: bytes) -> Behaviour:
    async def run(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(3600)
    return run


def drip(prefix: bytes, byte: bytes = b"a", interval: float = 0.05) -> Behaviour:
    async def run(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        writer.write(prefix)
        while True:
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(interval)
    return run


def endless(head: bytes, chunk: bytes, limit: int = 256 * 1024 * 1024) -> Behaviour:
    """Writes head, then chunk after chunk until the client goes away (or `limit`)."""
    sent = {"body": 0}

    async def run(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        writer.write(head)
        while sent["body"] < limit:
            writer.write(chunk)
            sent["body"] += len(chunk)
            await writer.drain()
    run.sent = sent  # type: ignore[attr-defined]
    return run


def slow(raw: bytes, delay: float) -> Behaviour:
    async def run(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        await asyncio.sleep(delay)
        writer.write(raw)
        await writer.drain()
    return run
