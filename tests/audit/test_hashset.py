"""HashSet: a set of 64-bit hashes, the same answers as a Python set, at 8 bytes a hash."""

from __future__ import annotations

import pickle
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomguard.audit import hashset
from dicomguard.audit.hashset import HashSet

U64 = st.integers(0, (1 << 64) - 1)
# few distinct values as well as many: duplicates across the set and the array matter
VALUES = st.one_of(U64, st.integers(0, 40), st.sampled_from([0, (1 << 64) - 1, 1 << 63]))


@pytest.fixture(autouse=True)
def _small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashset, "COMPACT_AT", 8)  # the array is used after a few adds
    monkeypatch.setattr(hashset, "_SMALL", 4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "update", "merge"]),
                          st.lists(VALUES, max_size=30)), max_size=12),
       st.lists(VALUES, max_size=10))
def test_same_as_a_python_set(ops: list[tuple[str, list[int]]], probes: list[int]) -> None:
    ours = HashSet()
    ref: set[int] = set()
    for op, values in ops:
        if op == "add":
            for v in values:
                ours.add(v)
        elif op == "update":
            ours.update(values)
        else:
            ours |= HashSet(values)
        ref.update(values)
        assert len(ours) == len(ref)
    assert set(ours) == ref
    assert sorted(ours) == sorted(ref)  # no value twice
    assert ours == ref
    assert bool(ours) == bool(ref)
    for v in probes + list(ref)[:5]:
        assert (v in ours) == (v in ref)
    assert "x" not in ours and -1 not in ours and (1 << 64) not in ours
    copy = pickle.loads(pickle.dumps(ours))
    assert copy == ref and len(copy) == len(ref)


def test_merge_of_two_big_sets() -> None:
    a = HashSet(range(0, 100, 2))
    b = HashSet(range(0, 100, 3))
    b.add(10**19)
    a.update(b)
    assert set(a) == set(range(0, 100, 2)) | set(range(0, 100, 3)) | {10**19}
    assert a._big is not None and b._big is not None


def test_repr_shows_no_hash() -> None:
    s = HashSet([123456789012345])
    assert "123456789012345" not in repr(s) and "1 hashes" in repr(s)


def test_a_million_hashes_take_about_8_bytes_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashset, "COMPACT_AT", 1 << 16)
    rng = random.Random(5)
    n = 1_000_000
    tracemalloc.start()
    try:
        s = HashSet()
        for _ in range(n):
            s.add(rng.getrandbits(64))
        assert len(s) == n
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the array (8 MB) and at most COMPACT_AT pending hashes (0.5 MB); a plain set of a
    # million hashes is ~75 MB
    assert current < 12 * 2**20, current


def test_repeats_cost_no_more_than_8_bytes_each() -> None:
    s = HashSet()
    for i in range(300_000):
        s.add(i % 7)
    assert len(s) == 7 and sorted(s) == list(range(7))
    assert len(s._buf) < hashset.COMPACT_AT


def test_worker_summaries_pickle_as_bytes() -> None:
    s = HashSet(range(5))
    state = s.__getstate__()
    assert isinstance(state[0], bytes) and len(state[0]) == 5 * 8
