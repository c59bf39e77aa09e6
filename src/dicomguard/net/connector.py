"""The one door every outgoing TCP connection goes through.

A `Connector` enforces, in this order: the scope guard (no packet to an address outside the
expanded scope), the global rate limit (new connections per second), the per-host cap on
simultaneous connections, and an explicit connect timeout. Protocol clients in net/ receive
the (reader, writer) pair and never open sockets themselves.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Protocol, TypeVar

from dicomguard.errors import ConnectionRefused, ConnectivityError, ConnectTimeout, OutOfScopeError

T = TypeVar("T")
P = TypeVar("P", bound=asyncio.BaseProtocol)


class Guard(Protocol):
    """What the connector asks of a scope: is this address in it?"""

    def allows(self, address: str) -> bool: ...


class RateLimiter:
    """Token bucket: at most `rate` acquisitions per second, bursts up to `burst`.

    rate <= 0 disables the limit.
    """

    def __init__(self, rate: float, burst: int | None = None) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, int(rate // 10) or 1))
        self._tokens = self.burst
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


class Connector:
    """Opens guarded, rate-limited, per-host-capped TCP connections with timeouts."""

    def __init__(
        self,
        guard: Guard | None,
        *,
        rate: float = 500.0,
        per_host: int = 2,
        connect_timeout: float = 3.0,
    ) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.guard = guard
        self.limiter = RateLimiter(rate, burst=max(1, int(rate // 20) or 1)) if rate > 0 else None
        self.per_host = per_host
        self.connect_timeout = connect_timeout
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._host_users: dict[str, int] = {}
        self.attempts = 0  # connections attempted (after the guard), for statistics and tests
        self._in_scope: set[str] = set()

    def _slot(self, address: str) -> asyncio.Semaphore:
        sem = self._host_slots.get(address)
        if sem is None:
            sem = self._host_slots[address] = asyncio.Semaphore(self.per_host)
        return sem

    def check_scope(self, address: str, port: int | None = None) -> None:
        if self.guard is None or address in self._in_scope:
            return
        if not self.guard.allows(address):
            raise OutOfScopeError(address, port)
        if len(self._in_scope) >= 4096:  # a small memo: a probe connects to one host repeatedly
            self._in_scope.clear()
        self._in_scope.add(address)

    async def _acquire(self, address: str, port: int) -> None:
        """Scope guard, per-host slot, then the global rate limit; pair with release_slot."""
        self.check_scope(address, port)
        sem = self._slot(address)
        self._host_users[address] = self._host_users.get(address, 0) + 1
        try:
            await sem.acquire()
        except BaseException:
            self._drop_user(address)
            raise
        try:
            if self.limiter is not None:
                await self.limiter.acquire()
        except BaseException:
            self.release_slot(address)
            raise
        self.attempts += 1

    def release_slot(self, address: str) -> None:
        """Give back the per-host slot taken for a connection to `address`."""
        self._host_slots[address].release()
        self._drop_user(address)

    def _drop_user(self, address: str) -> None:
        users = self._host_users[address] - 1
        if users:
            self._host_users[address] = users
        else:  # keep the per-host table bounded when scanning many hosts
            del self._host_users[address]
            self._host_slots.pop(address, None)

    async def _connect(self, address: str, port: int, protocol: str,
                       make: Callable[[], Awaitable[T]]) -> T:
        """Run the connect coroutine under the connect timeout, translating OS errors."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await make()
        except TimeoutError as exc:
            raise ConnectTimeout(address, port, protocol, "connect timed out") from exc
        except OSError as exc:
            if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
                raise ConnectionRefused(address, port, protocol, "connection refused") from exc
            raise ConnectivityError(address, port, protocol, exc.strerror or str(exc)) from exc

    @asynccontextmanager
    async def open(
        self, address: str, port: int, protocol: str = "tcp", *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """Connect to address:port, yielding (reader, writer); closes on exit. With
        `ssl_context`, the TLS handshake is part of the connect (and of its timeout).

        Raises OutOfScopeError before any packet is sent when the address is outside the scope,
        ConnectTimeout / ConnectionRefused / ConnectivityError when the TCP connection fails
        (a failed TLS handshake included).
        """
        await self._acquire(address, port)
        try:
            reader, writer = await self._connect(
                address, port, protocol,
                lambda: asyncio.open_connection(
                    address, port, limit=1 << 20, ssl=ssl_context,
                    server_hostname="" if ssl_context is not None else None,
                    ssl_handshake_timeout=self.connect_timeout if ssl_context else None))
            _nodelay(writer.transport)
            try:
                yield reader, writer
            finally:
                await close_writer(writer)
        finally:
            self.release_slot(address)

    @asynccontextmanager
    async def slot(self, address: str, port: int) -> AsyncIterator[None]:
        """Hold a connection slot (scope guard, per-host cap, rate limit) for a library that
        opens its own socket (smbprotocol, impacket); it must also apply its own timeouts."""
        await self._acquire(address, port)
        try:
            yield
        finally:
            self.release_slot(address)

    async def open_protocol(self, address: str, port: int, factory: Callable[[], P],
                            protocol: str = "tcp") -> P:
        """Connect with an asyncio.Protocol (the sweep fast path). The per-host slot stays
        taken until the caller calls release_slot(address), after the connection is done."""
        await self._acquire(address, port)
        try:
            loop = asyncio.get_running_loop()
            transport, proto = await self._connect(
                address, port, protocol, lambda: loop.create_connection(factory, address, port))
        except BaseException:
            self.release_slot(address)
            raise
        _nodelay(transport)
        return proto


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def close_writer(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    """Close a stream promptly; never wait long on a peer that does not read."""
    try:
        writer.close()
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
