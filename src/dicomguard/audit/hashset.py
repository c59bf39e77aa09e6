"""A set of 64-bit hashes at about 8 bytes a hash, for counting millions of distinct values.

    s = HashSet()
    s.add(h); s.update(other); len(s); h in s; sorted(s)

The audit counts distinct patients, studies, series, institutions and devices (and patients
per folder) through salted 64-bit hashes. A CPython ``set`` of them costs 60-90 bytes an entry
(a 32-byte int object plus the table slots): a million single-image studies would need about
250 MB for three sets, and the per-folder sets as much again.

:class:`HashSet` appends to an ``array('Q')`` (8 bytes an entry, repeats included) and, when
that holds :data:`COMPACT_AT` entries, folds it into a sorted, duplicate-free numpy ``uint64``
array. Memory is 8 bytes a distinct hash plus at most :data:`COMPACT_AT` pending entries, and
never more than 8 bytes per ``add``. numpy is imported only on the first fold, so small
audits and the worker processes (which summarise chunks of 128 files) never load it, and a
worker's summary pickles as a few byte strings, not as thousands of int objects.

``len`` is exact and cheap enough for a progress display: small sets are counted with a
Python set, large ones as the array's length plus the pending hashes not in it (found by
binary search).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["COMPACT_AT", "HashSet"]

#: Pending entries a HashSet appends before it folds them into its sorted array.
COMPACT_AT = 1 << 16
#: Below this many pending entries (and no array yet) ``len`` counts with a Python set.
_SMALL = 4096
_MAX = (1 << 64) - 1


class HashSet:
    """Distinct unsigned 64-bit integers: pending appends plus a sorted array."""

    __slots__ = ("_big", "_buf")

    def __init__(self, items: Iterable[int] = ()) -> None:
        self._buf = array("Q", items)
        self._big: npt.NDArray[np.uint64] | None = None
        if len(self._buf) >= COMPACT_AT:
            self._compact()

    def add(self, item: int) -> None:
        buf = self._buf
        buf.append(item)
        if len(buf) >= COMPACT_AT:
            self._compact()

    def update(self, other: HashSet | Iterable[int]) -> None:
        """Add every hash of ``other`` (a HashSet or any iterable of ints)."""
        if isinstance(other, HashSet):
            self._buf.extend(other._buf)
            if other._big is not None:
                self._fold(other._big)
        else:
            self._buf.extend(array("Q", other))
        if len(self._buf) >= COMPACT_AT:
            self._compact()

    def __ior__(self, other: HashSet | Iterable[int]) -> HashSet:
        self.update(other)
        return self

    def __len__(self) -> int:
        big = self._big
        if big is None:
            if len(self._buf) < _SMALL:
                return len(set(self._buf))
            self._compact()
            return len(self._big) if self._big is not None else 0
        return len(big) + len(self._fresh(big))

    def __bool__(self) -> bool:
        return bool(self._buf) or (self._big is not None and len(self._big) > 0)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int) or not 0 <= item <= _MAX:
            return False
        if item in self._buf:
            return True
        big = self._big
        if big is None:
            return False
        import numpy as np

        i = int(np.searchsorted(big, np.uint64(item)))
        return i < len(big) and int(big[i]) == item

    def __iter__(self) -> Iterator[int]:
        """The hashes, each once (in no promised order)."""
        if self._big is None and len(self._buf) < _SMALL:
            yield from set(self._buf)
            return
        self._compact()
        if self._big is not None:
            yield from (int(v) for v in self._big)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HashSet):
            return len(self) == len(other) and set(self) == set(other)
        if isinstance(other, (set, frozenset)):
            return len(self) == len(other) and set(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like set

    def __repr__(self) -> str:  # the hashes are not shown (salted, but still per-run ids)
        return f"HashSet(<{len(self)} hashes>)"

    # -- pickling (worker processes send their summaries back) ------------------------------
    def __getstate__(self) -> tuple[bytes, bytes | None]:
        big = self._big
        return self._buf.tobytes(), None if big is None else big.tobytes()

    def __setstate__(self, state: tuple[bytes, bytes | None]) -> None:
        buf, big = state
        self._buf = array("Q")
        self._buf.frombytes(buf)
        self._big = None
        if big is not None:
            import numpy as np

            self._big = np.frombuffer(big, dtype=np.uint64).copy()

    # -- the array -------------------------------------------------------------------------
    def _pending(self) -> npt.NDArray[np.uint64]:
        import numpy as np

        return np.unique(np.frombuffer(self._buf, dtype=np.uint64))

    def _fresh(self, big: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """The pending hashes (each once) that are not in the array yet."""
        return _absent(big, self._pending())

    def _fold(self, values: npt.NDArray[np.uint64]) -> None:
        """Merge sorted, duplicate-free ``values`` into the array."""
        import numpy as np

        big = self._big
        if big is None:
            self._big = values.copy()
            return
        new = _absent(big, values)
        if len(new):
            # two sorted runs: the stable sort (a merge sort) joins them in linear time
            merged = np.concatenate((big, new))
            merged.sort(kind="stable")
            self._big = merged

    def _compact(self) -> None:
        if not self._buf:
            return
        values = self._pending()
        self._buf = array("Q")
        self._fold(values)


def _absent(big: npt.NDArray[np.uint64],
            values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The ``values`` not in the sorted array ``big`` (binary search for each)."""
    import numpy as np

    if not len(values):
        return values
    at = np.searchsorted(big, values)
    found = np.zeros(len(values), dtype=bool)
    inside = at < len(big)
    found[inside] = big[at[inside]] == values[inside]
    return values[~found]
