"""Mapping export in the MIDI-B format: ``uid_mapping.csv`` and ``patid_mapping.csv``.

Both have the header ``id_old,id_new`` and one row per original value. They hold the original
identifiers: they are PHI. They are written only when the user passes ``--mapping DIR``, with
mode 0600 (the directory 0700 when created), atomically, and merged with existing files in
that directory (so a resumed run keeps the rows of the earlier one).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PATID_FILE", "UID_FILE", "read_mapping", "write_mappings"]

UID_FILE = "uid_mapping.csv"
PATID_FILE = "patid_mapping.csv"


def read_mapping(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if "id_old" in row and "id_new" in row:
                out[row["id_old"]] = row["id_new"]
    return out


def _write_private(path: Path, rows: Mapping[str, str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id_old", "id_new"])
    for old, new in sorted(rows.items()):
        writer.writerow([old, new])
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, buf.getvalue().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_mappings(directory: Path, uids: Mapping[str, str], patids: Mapping[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, rows in ((UID_FILE, uids), (PATID_FILE, patids)):
        path = directory / name
        merged = read_mapping(path)
        merged.update(rows)
        _write_private(path, merged)
