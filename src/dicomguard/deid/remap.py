"""Keyed, consistent replacement values: UIDs, pseudonyms and per-patient date offsets.

Everything is a function of the key (32 random bytes, ``dicomguard keygen``) and the original
value, so the same input gives the same output across files, runs, processes and machines that
share the key, and nobody without the key can go back (HMAC-SHA256 is a PRF).

- UID: ``2.25.`` + the decimal integer of the first 128 bits of HMAC(key, "uid\\0" + uid)
  (PS3.5 B.2: a UUID-derived UID under 2.25, at most 44 characters). Different inputs collide
  only if HMAC-SHA256 truncated to 128 bits collides: about 2^-64 for 2^32 distinct UIDs.
- Pseudonym (patient IDs, names, accession numbers): ``DG`` + 10 characters of base32 of
  HMAC(key, "<kind>\\0" + value), 50 bits: unique in practice for a hospital's patients.
- Date offset of a patient: 1 to 3652 days into the past, from HMAC(key, "date\\0" + patient
  key), the patient key being the original PatientID (or the name when there is no ID). Every
  date and the date part of every date-time of that patient moves by the same number of days,
  so intervals are kept; times of day are kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

__all__ = [
    "KEY_BYTES",
    "KeyError_",
    "Remapper",
    "generate_key_file",
    "load_key",
]

KEY_BYTES = 32
MAX_OFFSET_DAYS = 3652
PSEUDONYM_RE = re.compile(r"^DG[A-Z2-7]{10}$")
_DATE_RE = re.compile(rb"^(\d{4})(\d{2})(\d{2})")


class KeyError_(ValueError):
    """The key file is missing, unreadable or not 32 bytes of hex."""


def generate_key_file(path: Path) -> None:
    """Write 32 random bytes as hex to ``path`` (mode 0600); refuse to overwrite."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def load_key(path: Path) -> bytes:
    """Read a key file written by :func:`generate_key_file`. The key is never shown."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyError_(f"key file {path}: cannot read it ({type(exc).__name__})") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyError_(f"key file {path}: not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise KeyError_(f"key file {path}: expected {KEY_BYTES} bytes, found {len(key)}")
    return key


class Remapper:
    """Keyed replacements with small per-process caches. ``record`` collects old->new pairs
    for the mapping export (PHI: only when the user asked for it)."""

    __slots__ = ("_key", "_offsets", "_pseudo", "_uids", "patid_pairs", "record", "uid_pairs")

    def __init__(self, key: bytes, *, record: bool = False) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("key must be 32 bytes")
        self._key = key
        self._uids: dict[bytes, bytes] = {}
        self._pseudo: dict[tuple[str, str], str] = {}
        self._offsets: dict[str, int] = {}
        self.record = record
        self.uid_pairs: dict[str, str] = {}
        self.patid_pairs: dict[str, str] = {}

    def __repr__(self) -> str:
        return "Remapper(<key>)"

    def _mac(self, kind: str, value: bytes) -> bytes:
        return hmac.new(self._key, kind.encode("ascii") + b"\0" + value, hashlib.sha256).digest()

    def uid(self, uid: bytes) -> bytes:
        """Remap one UID (ASCII bytes without padding)."""
        out = self._uids.get(uid)
        if out is None:
            digest = self._mac("uid", uid)
            out = b"2.25." + str(int.from_bytes(digest[:16], "big")).encode("ascii")
            if len(self._uids) < 200_000:
                self._uids[uid] = out
            if self.record:
                self.uid_pairs[uid.decode("ascii", "replace")] = out.decode("ascii")
        return out

    def uids(self, value: bytes) -> bytes:
        """Remap a (multi-valued) UI value; padding stripped and re-added by the caller."""
        parts = value.rstrip(b"\x00 ").split(b"\\")
        return b"\\".join(self.uid(p.strip(b"\x00 ")) if p.strip(b"\x00 ") else b""
                          for p in parts)

    def pseudonym(self, kind: str, value: str) -> str:
        key = (kind, value)
        out = self._pseudo.get(key)
        if out is None:
            digest = self._mac(kind, value.encode("utf-8"))
            out = "DG" + base64.b32encode(digest[:10]).decode("ascii")[:10]
            if len(self._pseudo) < 200_000:
                self._pseudo[key] = out
        if self.record and kind == "patient-id":
            self.patid_pairs[value] = out
        return out

    def date_offset(self, patient_key: str) -> int:
        """Days to add (negative) to every date of the patient."""
        off = self._offsets.get(patient_key)
        if off is None:
            digest = self._mac("date", patient_key.encode("utf-8"))
            off = -(1 + int.from_bytes(digest[:8], "big") % MAX_OFFSET_DAYS)
            if len(self._offsets) < 100_000:
                self._offsets[patient_key] = off
        return off


def shift_date(value: bytes, days: int, vr: str = "DA") -> bytes | None:
    """Shift the YYYYMMDD start of a DA/DT value by ``days``; None when it is not a date.

    The rest of the value (time of day, fraction, UTC offset of a DT) is kept. Multiple values
    (``A\\B``) and, for DA, ranges (``A-B``) shift each part.
    """
    text = value.rstrip(b"\x00 ")
    if not text:
        return text
    out_parts = []
    for part in text.split(b"\\"):
        pieces = []
        for piece in part.split(b"-") if vr == "DA" and b"-" in part else [part]:
            piece = piece.strip()
            if not piece:
                pieces.append(b"")
                continue
            m = _DATE_RE.match(piece)
            if m is None:
                return None
            try:
                day = dt.date(int(m[1]), int(m[2]), int(m[3]))
                new = day + dt.timedelta(days=days)
            except (ValueError, OverflowError):
                return None
            pieces.append(new.strftime("%Y%m%d").encode("ascii") + piece[8:])
        out_parts.append(b"-".join(pieces))
    return b"\\".join(out_parts)
