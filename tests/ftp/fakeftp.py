"""A scripted FTP server for the client's corner cases (ABOR reply orders, IIS listings, AUTH
TLS answers, hostile peers). Binds one loopback address; everything runs in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Script:
    banner: bytes = b"220 Fake FTP ready\r\n"
    feat: bytes = b"211-Features:\r\n EPSV\r\n PASV\r\n211 End\r\n"
    auth: bytes = b"500 AUTH not understood\r\n"
    login: bytes = b"230 Logged in\r\n"
    epsv: bool = True
    listing: bytes = b""                      # answer to LIST (MLSD answered 500)
    files: dict[str, bytes] = field(default_factory=dict)
    # After an early close of a RETR: the replies sent for the transfer and for the ABOR.
    abort_replies: bytes = b"426 Connection closed; transfer aborted.\r\n226 ABOR ok\r\n"
    stall_data: bool = False                  # RETR: 150, then nothing on the data conn
    # When set: the reply a server sends by itself when the client resets a transfer's data
    # connection (after `reset_delay` seconds), without waiting for ABOR.
    reset_reply: bytes | None = None
    reset_delay: float = 0.0
    commands: list[str] = field(default_factory=list)


class FakeFtp:
    def __init__(self, address: str, script: Script) -> None:
        self.address = address
        self.script = script
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeFtp:
        self.server = await asyncio.start_server(self._control, self.address, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.wait_closed()

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        s = self.script
        data_server: asyncio.Server | None = None
        data_conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        try:
            writer.write(s.banner)
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("latin-1").strip()
                s.commands.append(text)
                cmd, _, arg = text.partition(" ")
                cmd = cmd.upper()
                if cmd == "FEAT":
                    writer.write(s.feat)
                elif cmd == "AUTH":
                    writer.write(s.auth)
                elif cmd == "USER":
                    writer.write(b"331 Password please\r\n")
                elif cmd == "PASS":
                    writer.write(s.login)
                elif cmd in ("TYPE", "NOOP"):
                    writer.write(b"200 OK\r\n")
                elif cmd == "CWD":
                    writer.write(b"250 OK\r\n")
                elif cmd in ("EPSV", "PASV"):
                    if cmd == "EPSV" and not s.epsv:
                        writer.write(b"500 EPSV not understood\r\n")
                        continue
                    if data_server is not None:
                        data_server.close()
                    loop = asyncio.get_running_loop()
                    data_conn = loop.create_future()

                    def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                               fut: asyncio.Future[tuple[asyncio.StreamReader,
                                                         asyncio.StreamWriter]] = data_conn
                               ) -> None:
                        if not fut.done():
                            fut.set_result((r, w))

                    data_server = await asyncio.start_server(accept, self.address, 0)
                    port = data_server.sockets[0].getsockname()[1]
                    if cmd == "EPSV":
                        writer.write(f"229 Entering Extended Passive Mode (|||{port}|)\r\n"
                                     .encode())
                    else:
                        writer.write(f"227 Entering Passive Mode (10,9,8,7,{port >> 8},"
                                     f"{port & 255})\r\n".encode())
                elif cmd in ("MLSD",):
                    writer.write(b"500 MLSD not understood\r\n")
                elif cmd in ("LIST", "RETR") and data_conn is not None:
                    _, dw = await asyncio.wait_for(data_conn, 5)
                    if cmd == "RETR" and arg not in s.files:
                        writer.write(b"550 No such file\r\n")
                        dw.close()
                        continue
                    writer.write(b"150 Opening data connection\r\n")
                    if s.stall_data and cmd == "RETR":
                        await writer.drain()
                        await asyncio.sleep(60)
                    body = s.listing if cmd == "LIST" else s.files[arg]
                    try:
                        dw.write(body)
                        await asyncio.wait_for(dw.drain(), 2)
                        dw.close()
                        await asyncio.wait_for(dw.wait_closed(), 2)
                        writer.write(b"226 Transfer complete\r\n")
                    except (OSError, TimeoutError):
                        dw.transport.abort()
                        if s.reset_reply is not None:
                            await asyncio.sleep(s.reset_delay)
                            writer.write(s.reset_reply)
                            await writer.drain()
                            continue
                        # the client went away early: it sends ABOR next, then NOOP
                        abor = await reader.readline()
                        s.commands.append(abor.decode().strip())
                        writer.write(s.abort_replies)
                elif cmd == "ABOR":
                    writer.write(b"225 No transfer to ABOR\r\n")
                elif cmd == "QUIT":
                    writer.write(b"221 Bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 Not implemented\r\n")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return
        finally:
            if data_server is not None:
                data_server.close()
            writer.close()
            self._tasks.discard(task)


async def hostile(address: str, behaviour: str) -> asyncio.Server:
    """'garbage' answers random-looking bytes; 'tarpit' accepts and never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if behaviour == "garbage":
                writer.write(b"\x00\x17\xffHELLO garbage \x01\x02\r\n" * 4)
                await writer.drain()
            await asyncio.sleep(30)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, address, 0)
