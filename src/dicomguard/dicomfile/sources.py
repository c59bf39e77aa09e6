"""Byte sources for the header reader: a file path, bytes, or a prefix of a larger object.

A source answers ``read(offset, size)`` (fewer bytes at the end) and knows its ``size`` when it
can. The reader asks for small pieces from the start (the header prefix) and grows only when an
element needs it, so a source never has to deliver pixel data.

To read a prefix of a remote file (the first N KB fetched over FTP/SMB/HTTP), pass the bytes
with ``total_size`` set to the remote size (or any larger number when unknown): running out of
bytes then reports ``truncated=True`` instead of an error.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

__all__ = ["ByteSource", "BytesSource", "FileSource", "SourceLike", "as_source"]


@runtime_checkable
class ByteSource(Protocol):
    """What the reader needs from a source of bytes."""

    name: str

    @property
    def size(self) -> int | None:
        """Total size in bytes of the object, or None when not known."""
        ...

    @property
    def available(self) -> int | None:
        """How many bytes (from offset 0) this source can deliver, or None when not known."""
        ...

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; fewer (or none) past the end."""
        ...

    def close(self) -> None: ...


class BytesSource:
    """Bytes in memory; ``total_size`` > len(data) marks them as a prefix of a larger object."""

    def __init__(self, data: bytes | bytearray | memoryview, *, total_size: int | None = None,
                 name: str = "<bytes>") -> None:
        self._data = bytes(data)
        self.name = name
        self._total = len(self._data) if total_size is None else max(total_size, len(self._data))

    @property
    def size(self) -> int | None:
        return self._total

    @property
    def available(self) -> int | None:
        return len(self._data)

    def read(self, offset: int, size: int) -> bytes:
        return self._data[offset:offset + size]

    def close(self) -> None:
        return None


class FileSource:
    """A local file, read with positional reads (no pixel data is ever requested)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self._fd = os.open(self.name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            self._size = os.fstat(self._fd).st_size
        except OSError:
            os.close(self._fd)
            raise

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def available(self) -> int | None:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        if offset >= self._size or size <= 0:
            return b""
        return os.pread(self._fd, min(size, self._size - offset), offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()


SourceLike = str | os.PathLike[str] | bytes | bytearray | memoryview | ByteSource


def as_source(source: SourceLike) -> ByteSource:
    """Turn a path, bytes-like object or ByteSource into a ByteSource (files are opened)."""
    cls = type(source)
    if cls is FileSource or cls is BytesSource:  # the common cases, without ABC checks
        return source  # type: ignore[return-value]
    if cls is str:
        return FileSource(source)  # type: ignore[arg-type]
    if isinstance(source, (str, os.PathLike)):
        return FileSource(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return BytesSource(source)
    if isinstance(source, (BytesSource, FileSource, ByteSource)):  # concrete classes first: fast
        return source
    raise TypeError(f"not a byte source: {type(source).__name__}")
