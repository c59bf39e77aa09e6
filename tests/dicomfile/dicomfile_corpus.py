"""The bundled test corpus (pydicom and pydicom-data files on disk) and the pydicom oracle.

Files are found by listing the installed packages' folders; nothing is downloaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from dicomguard.dicomfile import Header

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
try:
    import data_store

    DATA_STORE_FILES: Path | None = Path(data_store.__file__).parent / "data"
except ImportError:  # pragma: no cover - pydicom-data is a test dependency
    DATA_STORE_FILES = None


def corpus_files() -> list[Path]:
    roots = [PYDICOM_FILES] + ([DATA_STORE_FILES] if DATA_STORE_FILES else [])
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def corpus_id(path: Path) -> str:
    for label, root in (("pydicom", PYDICOM_FILES), ("pydicom-data", DATA_STORE_FILES)):
        if root is not None and path.is_relative_to(root):
            return f"{label}/{path.relative_to(root).as_posix()}"
    return path.name


Key = tuple[tuple[tuple[int, int], ...], int]


def pydicom_read(path: Path, *, force: bool) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, stop_before_pixels=True, force=force)
        except (InvalidDicomError, EOFError, OSError, ValueError, NotImplementedError):
            return None


def pydicom_elements(ds: Dataset) -> dict[Key, tuple[str | None, bytes | list[object]]]:
    """(path, tag) -> (VR or None, raw value bytes) from pydicom, meta first.

    Elements pydicom has already converted (it converts SpecificCharacterSet and the meta
    group while reading) have no raw bytes left: their value is given as a list (of str or numbers),
    and the test compares our decoded values against it."""
    out: dict[Key, tuple[str | None, bytes | list[object]]] = {}
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _walk(meta, (), out)
    _walk(ds, (), out)
    return out


def _walk(ds: Dataset, path: tuple[tuple[int, int], ...],
          out: dict[Key, tuple[str | None, bytes | list[object]]]) -> None:
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts its raw elements
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement):
            is_sq = elem.VR == "SQ" or (elem.VR is None and elem.value is None
                                         and elem.length == 0xFFFFFFFF)
            if not is_sq and elem.VR is None and not (tag.group & 1):
                is_sq = "SQ" in iter_dictionary_vr(int(tag))
            if not is_sq:
                out[(path, int(tag))] = (elem.VR, elem.value or b"")
                continue
            elem = ds[tag]  # pydicom parses sequences lazily: convert, then walk the items
        if elem.VR == "SQ":
            out[(path, int(tag))] = ("SQ", b"")
            for i, item in enumerate(elem.value):
                _walk(item, (*path, (int(tag), i)), out)
            continue
        value = elem.value
        if isinstance(value, bytes):
            out[(path, int(tag))] = (elem.VR, value)
            continue
        if value is None or value == "":
            values: list[object] = []
        elif isinstance(value, (str, int, float)):
            values = [value]
        else:
            values = list(value)
        out[(path, int(tag))] = (elem.VR, values)


def our_elements(header: Header) -> dict[Key, tuple[str, bytes]]:
    return {(e.path, e.tag): (e.vr, e.value) for e in [*header.meta, *header.elements]}


def iter_dictionary_vr(tag: int) -> Iterator[str]:
    """The unambiguous dictionary VR of a public tag (nothing for private/unknown/ambiguous)."""
    if (tag >> 16) & 1 or tag & 0xFFFF == 0:
        return
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return
    if " or " not in vr:
        yield vr
