"""Burned-in text in pixel data: find it with Tesseract and tie it to the header's identifiers.

Ultrasound, secondary-capture and screenshot images often carry the patient's name, the date,
the institution or an accession number drawn into the pixels, where no header de-identification
reaches. This module decodes a sample of the frames (see `pixels`), prepares each for OCR, runs
Tesseract and returns word boxes in the frame's own pixel coordinates, so that a de-identifier
can fill exactly those rectangles, and a matcher that says which header identifiers (patient
name, ID, dates, institution ...) reappear in the pixels.

Recognised text is PHI. Nothing here prints or logs it, and `repr()` of a `TextBox` leaves the
text out; the caller holds the result and decides (values are shown upstream only on an explicit
flag). Tesseract reads the frames from a pipe, so no frame is ever written to a temporary file.

Preparation, measured on pydicom's ultrasound examples: grey (luminance), a white top-hat (the
frame minus its grey opening) that keeps thin bright strokes and removes large bright anatomy,
a threshold to black text on white, upscaling of small frames (x2 to x4, text needs ~20 px
height) and a white margin, since Tesseract misses words touching the border. Two top-hats run
on every frame, a strong one (large kernel, high threshold: crisp overlay text) and a weak one
(small kernel, low threshold: dim small text such as a status bar); both are stacked into one
image so Tesseract starts once per frame, and overlapping words keep the more confident reading.
"""

from __future__ import annotations

import calendar
import difflib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from dicomguard.errors import DicomguardError
from dicomguard.phi.pixels import (
    PixelDecodeError,
    frame_count,
    iter_display_frames,
    sample_frame_indices,
)

__all__ = [
    "TESSERACT_MISSING",
    "OcrFailedError",
    "OcrOptions",
    "OcrResult",
    "OcrUnavailableError",
    "TextBox",
    "TextKind",
    "classify_text",
    "detect_burned_in_text",
    "header_identifiers",
    "match_identifiers",
    "ocr_frame",
    "tesseract_unavailable_reason",
]

TESSERACT_MISSING = "ocr: requires tesseract-ocr (apt-get install tesseract-ocr)"


class OcrUnavailableError(DicomguardError):
    """Tesseract (or its language data) is not installed or does not run."""


class OcrFailedError(DicomguardError):
    """Tesseract ran but failed on a frame (timeout, crash)."""


class TextKind(StrEnum):
    """What a piece of recognised text looks like."""

    DATE = "date"
    TIME = "time"
    ID = "id"
    NAME = "name"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TextBox:
    """One recognised word, in the original pixel coordinates of frame `frame` (0-based).

    `text` is PHI: it is left out of `repr()`.
    """

    frame: int
    left: int
    top: int
    width: int
    height: int
    text: str = field(repr=False)
    confidence: float

    @property
    def kind(self) -> TextKind:
        return classify_text(self.text)

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """Knobs of the burned-in text search; the defaults suit ultrasound and screen captures.

    max_frames: frames examined at most per file (all up to it, else first, middle, last and an
        even sample).
    min_confidence: Tesseract word confidence (0-100) below which a word is dropped.
    min_confidence_structured: the same for words that read as a date or a time: a pattern
        that strict is rarely noise, and dates are what matters most ("24-MAY-O2" at 53).
    min_alnum: letters and digits a word needs to count as text (drops "-", "|", "ee" noise).
    timeout: seconds one Tesseract run may take before the frame counts as failed.
    """

    max_frames: int = 10
    min_confidence: float = 60.0
    min_confidence_structured: float = 40.0
    min_alnum: int = 3
    language: str = "eng"
    tesseract_cmd: str = "tesseract"
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class OcrResult:
    """What the burned-in text search found in one file.

    `error` is set when the search could not run to the end (undecodable pixel data, Tesseract
    missing); `boxes` then hold what was found before the failure, and an empty result with an
    error is "unknown", never "no text". `matches` counts, per identifier kind, the boxes that
    show that identifier.
    """

    frames_total: int
    frames_examined: int
    boxes: tuple[TextBox, ...] = ()
    matches: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.boxes)


# --------------------------------------------------------------------------------------------
# Tesseract


@lru_cache(maxsize=8)
def _probe_tesseract(cmd: str, language: str) -> str | None:
    path = shutil.which(cmd)
    if path is None:
        return TESSERACT_MISSING
    try:
        proc = subprocess.run(
            [path, "--list-langs"], capture_output=True, timeout=30, check=False,
            env=_tesseract_env(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{TESSERACT_MISSING}: {cmd} does not run ({exc})"
    listed = (proc.stdout + proc.stderr).decode("utf-8", "replace").split()
    if language not in listed:
        return (f"ocr: tesseract has no '{language}' language data "
                f"(apt-get install tesseract-ocr-{language})")
    return None


def tesseract_unavailable_reason(options: OcrOptions | None = None) -> str | None:
    """None when Tesseract and its language data are usable, else why not (for reports)."""
    opts = options or OcrOptions()
    return _probe_tesseract(opts.tesseract_cmd, opts.language)


def _tesseract_env() -> dict[str, str]:
    # One thread: Tesseract's OpenMP threads make small images several times slower.
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


@dataclass(frozen=True, slots=True)
class _Word:
    left: int
    top: int
    width: int
    height: int
    confidence: float
    text: str


def _run_tesseract(image: NDArray[np.uint8], options: OcrOptions) -> list[_Word]:
    """Run Tesseract on a black-and-white image sent through stdin; return its words."""
    reason = tesseract_unavailable_reason(options)
    if reason is not None:
        raise OcrUnavailableError(reason)
    buffer = io.BytesIO()
    # A 1-bit PNG: measured fastest for Tesseract to read (a PGM through stdin is ~1.5x slower).
    Image.fromarray(image).convert("1").save(buffer, format="PNG", compress_level=1)
    cmd = [
        shutil.which(options.tesseract_cmd) or options.tesseract_cmd,
        "stdin", "stdout",
        "-l", options.language,
        "--oem", "1",          # LSTM only
        "--psm", "11",         # sparse text: annotations are scattered words, not a page
        "-c", "tessedit_do_invert=0",  # the image is already dark text on white
        "tsv",
    ]
    try:
        proc = subprocess.run(cmd, input=buffer.getvalue(), capture_output=True,
                              timeout=options.timeout, check=False, env=_tesseract_env())
    except subprocess.TimeoutExpired:
        raise OcrFailedError(f"ocr: tesseract took longer than {options.timeout:g} s") from None
    except OSError as exc:
        raise OcrUnavailableError(f"{TESSERACT_MISSING}: {exc}") from exc
    if proc.returncode != 0:
        # Tesseract's stderr names files and options only, never recognised text.
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrFailedError(
            f"ocr: tesseract exited with {proc.returncode}"
            + (f": {detail[-1][:200]}" if detail else "")
        )
    return _parse_tsv(proc.stdout.decode("utf-8", "replace"))


def _parse_tsv(tsv: str) -> list[_Word]:
    words: list[_Word] = []
    for line in tsv.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = "\t".join(cols[11:]).strip()
        if not text:
            continue
        try:
            left, top, width, height = (int(c) for c in cols[6:10])
            conf = float(cols[10])
        except ValueError:
            continue
        words.append(_Word(left, top, width, height, conf, text))
    return words


# --------------------------------------------------------------------------------------------
# Preparation of a frame for OCR


@dataclass(frozen=True, slots=True)
class _Pass:
    kernel: int      # size of the grey opening, in original pixels (odd)
    threshold: int   # top-hat response that counts as text


_PASSES = (_Pass(kernel=11, threshold=120), _Pass(kernel=7, threshold=60))
_MARGIN = 24  # white margin, in upscaled pixels


def _grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    weights = np.array([0.299, 0.587, 0.114])
    lum = image[..., :3].astype(np.float32) @ weights.astype(np.float32)
    return np.clip(np.rint(lum), 0, 255).astype(np.uint8)


def _upscale_factor(rows: int, columns: int) -> int:
    longest = max(rows, columns)
    if longest <= 400:
        return 4
    if longest <= 800:
        return 3
    if longest <= 1300:
        return 2
    return 1


def _rank_filter(image: NDArray[np.uint8], size: int, erode: bool) -> NDArray[np.uint8]:
    """Grey erosion (min) or dilation (max) with a size x size square, edges replicated.

    A square is separable: a 1-D pass along the rows, then one along the columns.
    """
    op = np.minimum if erode else np.maximum
    half = size // 2
    out = image
    for axis in (0, 1):
        padded = np.pad(out, [(half, half) if a == axis else (0, 0) for a in (0, 1)],
                        mode="edge")
        length = out.shape[axis]
        acc = padded.take(range(0, length), axis=axis)
        for shift in range(1, size):
            acc = op(acc, padded.take(range(shift, shift + length), axis=axis))
        out = acc
    return out


def _prepare(grey: NDArray[np.uint8], scale: int) -> list[NDArray[np.uint8]]:
    """One black-on-white image per pass, upscaled by `scale`, with a white margin."""
    images = []
    for p in _PASSES:
        opened = _rank_filter(_rank_filter(grey, p.kernel, erode=True), p.kernel, erode=False)
        tophat = (grey - opened).astype(np.uint8)  # opened <= grey everywhere
        tophat_img = Image.fromarray(tophat)
        if scale > 1:
            tophat_img = tophat_img.resize((grey.shape[1] * scale, grey.shape[0] * scale),
                                           Image.Resampling.BICUBIC)
        ink = np.asarray(tophat_img) >= p.threshold
        binary = np.where(ink, 0, 255).astype(np.uint8)
        images.append(np.pad(binary, _MARGIN, constant_values=255))
    return images


def _overlap(a: TextBox, b: TextBox) -> float:
    """Intersection over the smaller box's area."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min(a.width * a.height, b.width * b.height) or 1
    return (w * h) / smaller


def _plausible(text: str, confidence: float, height: int, rows: int,
               options: OcrOptions) -> bool:
    if confidence < options.min_confidence and not (
        confidence >= options.min_confidence_structured
        and classify_text(text) in (TextKind.DATE, TextKind.TIME)
    ):
        return False
    alnum = [c for c in text if c.isalnum()]
    if len(alnum) < options.min_alnum:
        return False
    if len(set(c.lower() for c in alnum)) == 1 and len(alnum) < 5:
        return False  # "lll", "111": strokes of a ruler or a border
    # Text much taller than a third of the frame is a shape Tesseract took for a letter.
    return 3 <= height <= max(rows // 3, 8)


def ocr_frame(image: NDArray[np.uint8], frame: int = 0,
              options: OcrOptions | None = None) -> list[TextBox]:
    """Find words in one display frame (uint8 grey or RGB); boxes in its own pixel coordinates.

    Raises OcrUnavailableError when Tesseract is missing and OcrFailedError when it fails.
    """
    opts = options or OcrOptions()
    grey = _grey(np.asarray(image, dtype=np.uint8))
    rows, columns = grey.shape[:2]
    if rows < 4 or columns < 4:
        return []
    scale = _upscale_factor(rows, columns)
    prepared = _prepare(grey, scale)
    # Stack the passes vertically: one Tesseract start per frame instead of one per pass.
    offsets = []
    y = 0
    for img in prepared:
        offsets.append(y)
        y += img.shape[0]
    stacked = np.vstack(prepared)
    words = _run_tesseract(stacked, opts)

    found: list[TextBox] = []
    for word in words:
        centre = word.top + word.height / 2
        which = max(i for i, off in enumerate(offsets) if off <= centre)
        top_scaled = word.top - offsets[which] - _MARGIN
        left_scaled = word.left - _MARGIN
        left = max(int(np.floor(left_scaled / scale)), 0)
        top = max(int(np.floor(top_scaled / scale)), 0)
        right = min(int(np.ceil((left_scaled + word.width) / scale)), columns)
        bottom = min(int(np.ceil((top_scaled + word.height) / scale)), rows)
        if right <= left or bottom <= top:
            continue
        if not _plausible(word.text, word.confidence, bottom - top, rows, opts):
            continue
        found.append(TextBox(frame, left, top, right - left, bottom - top,
                             word.text, round(word.confidence, 1)))
    return _dedupe(found)


def _dedupe(boxes: list[TextBox]) -> list[TextBox]:
    """Of boxes that cover the same word (from different passes) keep the most confident."""
    kept: list[TextBox] = []
    for box in sorted(boxes, key=lambda b: -b.confidence):
        if all(_overlap(box, other) < 0.5 for other in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (b.frame, b.top, b.left))


# --------------------------------------------------------------------------------------------
# Classification of recognised text

_MONTHS = [m.lower() for m in calendar.month_abbr[1:]]
_MONTH_NAMES = [m.lower() for m in calendar.month_name[1:]]
_MONTH_RE = "|".join(sorted(set(_MONTHS + _MONTH_NAMES), key=len, reverse=True))
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)"),
    re.compile(rf"(?<![a-z])\d{{1,2}}[-/. ]?({_MONTH_RE})[-/. ,]?\d{{2,4}}(?!\d)"),
    re.compile(rf"(?<![a-z])({_MONTH_RE})[-/. ]?\d{{1,2}},?[-/. ]?\d{{2,4}}(?!\d)"),
    re.compile(r"(?<!\d)(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)"),
)
_TIME_RE = re.compile(r"(?<!\d)([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?(\s*[ap]m)?(?!\d)", re.I)
_ID_RE = re.compile(r"\d{5,}")
_NAME_RE = re.compile(r"^[A-Z][A-Za-z'\-]*(?:[\^, ][A-Z][A-Za-z'\-]*)*[.,]?$")


def _fix_digits(text: str) -> str:
    """Undo OCR's usual letter-for-digit slips inside runs that are mostly digits."""
    table = str.maketrans({"o": "0", "O": "0", "l": "1", "I": "1", "|": "1", "—": "-", "–": "-"})

    def fix(m: re.Match[str]) -> str:
        run = m.group(0)
        digits = sum(c.isdigit() for c in run)
        return run.translate(table) if digits >= len(run) / 2 else run

    return re.sub(r"[0-9oOlI|]+", fix, text.replace("—", "-").replace("–", "-"))


def classify_text(text: str) -> TextKind:
    """Date-like, time-like, id-like (5+ digits), name-like (capitalised words) or other."""
    cleaned = _fix_digits(text.strip())
    lower = cleaned.lower()
    if any(p.search(lower) for p in _DATE_PATTERNS):
        return TextKind.DATE
    if _TIME_RE.search(cleaned):
        return TextKind.TIME
    if _ID_RE.search(cleaned):
        return TextKind.ID
    if _NAME_RE.match(cleaned.strip("*\"'()[]")) and sum(c.isalpha() for c in cleaned) >= 2:
        return TextKind.NAME
    return TextKind.OTHER


# --------------------------------------------------------------------------------------------
# Matching against header identifiers

# Person Name (PN) attributes: matched component by component.
_PN_KEYWORDS = frozenset({
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "ScheduledPerformingPhysicianName", "ResponsiblePerson", "ConsultingPhysicianName",
})
# Header attributes worth looking for in the pixels (used when the caller gives none).
_HEADER_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "StationName", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "StudyTime", "ContentTime", "StudyID",
)
_FUZZY_RATIO = 0.8
_FUZZY_MIN_LEN = 4


def header_identifiers(ds: Dataset) -> dict[str, str]:
    """The identifying header values of `ds` that burned-in text is compared with."""
    found: dict[str, str] = {}
    for keyword in _HEADER_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:  # a malformed element is simply not compared
            continue
        if value is None:
            continue
        if isinstance(value, (list, tuple, MultiValue)):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        if text.strip():
            found[keyword] = text.strip()
    return found


def _tokens(text: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", text.lower())


def _similar(a: str, b: str, ratio: float = _FUZZY_RATIO) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < _FUZZY_MIN_LEN:
        return False
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= ratio


def _date_renderings(value: str) -> set[str]:
    """Ways a DA value YYYYMMDD may be drawn: numeric orders, 2-digit years, month names."""
    m = re.fullmatch(r"\s*(\d{4})-?(\d{2})-?(\d{2})\s*", value)
    if not m:
        return set()
    year, month, day = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return set()
    years = {f"{year:04d}", f"{year % 100:02d}"}
    days = {f"{day:02d}", str(day)}
    months_num = {f"{month:02d}", str(month)}
    months_txt = {_MONTHS[month - 1], _MONTH_NAMES[month - 1]}
    out: set[str] = set()
    for y in years:
        for d in days:
            for mo in months_num:
                for sep in "/-.":
                    out.add(f"{d}{sep}{mo}{sep}{y}")
                    out.add(f"{mo}{sep}{d}{sep}{y}")
                    out.add(f"{y}{sep}{mo}{sep}{d}")
            for mo in months_txt:
                for sep in ("-", " ", "/", ".", ""):
                    out.add(f"{d}{sep}{mo}{sep}{y}")
                out.add(f"{mo} {d} {y}")
                out.add(f"{mo} {d}, {y}")
    out.add(f"{year:04d}{month:02d}{day:02d}")
    return out


def _time_renderings(value: str) -> set[str]:
    """Ways a TM value HHMMSS(.ffffff) may be drawn: HH:MM:SS, H:MM:SS PM, HHMMSS."""
    m = re.fullmatch(r"\s*(\d{2}):?(\d{2})(?::?(\d{2}))?(?:\.\d+)?\s*", value)
    if not m:
        return set()
    hour, minute = int(m.group(1)), int(m.group(2))
    second = int(m.group(3)) if m.group(3) else None
    if hour > 23 or minute > 59:
        return set()
    hours = {f"{hour:02d}", str(hour)}
    twelve = hour % 12 or 12
    suffix = "pm" if hour >= 12 else "am"
    out: set[str] = set()
    for h in hours:
        if second is not None:
            out.add(f"{h}:{minute:02d}:{second:02d}")
        else:
            out.add(f"{h}:{minute:02d}")
    for h in {f"{twelve:02d}", str(twelve)}:
        tail = f":{second:02d}" if second is not None else ""
        out.add(f"{h}:{minute:02d}{tail}")  # the AM/PM often stands in a box of its own
        out.add(f"{h}:{minute:02d}{tail} {suffix}")
        out.add(f"{h}:{minute:02d}{tail}{suffix}")
    if second is not None:
        out.add(f"{hour:02d}{minute:02d}{second:02d}")
    return out


def _lines(boxes: Sequence[TextBox]) -> list[list[int]]:
    """Group box indices into text lines (same frame, same baseline band, left to right)."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i].frame, boxes[i].top, boxes[i].left))
    lines: list[list[int]] = []
    for i in order:
        b = boxes[i]
        centre = b.top + b.height / 2
        for line in lines:
            last = boxes[line[-1]]
            if last.frame != b.frame:
                continue
            if abs((last.top + last.height / 2) - centre) <= max(last.height, b.height) / 2:
                line.append(i)
                break
        else:
            lines.append([i])
    for line in lines:
        line.sort(key=lambda i: boxes[i].left)
    return lines


def _line_text(boxes: Sequence[TextBox], line: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The line's text (words joined by a space, digits slips undone, lower case) and spans."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i in line:
        word = _fix_digits(boxes[i].text).lower()
        parts.append(word)
        spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    return " ".join(parts), spans


def _boxes_in(span: tuple[int, int], line: Sequence[int],
              spans: Sequence[tuple[int, int]]) -> set[int]:
    start, end = span
    return {i for i, (s, e) in zip(line, spans, strict=True) if s < end and e > start}


def _match_renderings(renderings: Iterable[str], boxes: Sequence[TextBox],
                      lines: Sequence[list[int]]) -> set[int]:
    hits: set[int] = set()
    patterns = [
        re.compile(r"(?<![0-9a-z])" + re.escape(r).replace(r"\ ", r"\s*") + r"(?![0-9])")
        for r in sorted(renderings, key=len, reverse=True)
    ]
    # Compact renderings ("20020524", "142825") may sit inside a longer digit run such as
    # "11-05-25-142825"; separators on both sides are enough there.
    for line in lines:
        text, spans = _line_text(boxes, line)
        for pattern in patterns:
            for m in pattern.finditer(text):
                hits |= _boxes_in(m.span(), line, spans)
        # Fuzzy, box by box, for renderings with a month name only ("24-MAV-02"): the digits
        # must agree exactly, since one digit off is another date, not an OCR slip.
        for i in line:
            word = _fix_digits(boxes[i].text).lower().strip(" *+:;,")
            if i in hits or len(word) < 6:
                continue
            digits = re.sub(r"\D", "", word)
            if any(
                not r.isdigit() and re.sub(r"\D", "", r) == digits
                and _similar(word, r, 0.85)
                for r in renderings
            ):
                hits.add(i)
    return hits


def _match_name(value: str, boxes: Sequence[TextBox]) -> set[int]:
    components = {c for c in _tokens(value.replace("^", " ").replace("=", " ")) if len(c) >= 2}
    hits: set[int] = set()
    for i, box in enumerate(boxes):
        for token in _tokens(box.text):
            if any(_similar(token, c) for c in components):
                hits.add(i)
                break
    return hits


def _match_phrase(value: str, boxes: Sequence[TextBox], lines: Sequence[list[int]]) -> set[int]:
    """A free-text or ID value: its words in a row on one line, exactly or fuzzily.

    Exact: the value's letters and digits appear in the line's letters and digits (so "BAPTIST
    MED CTR" matches however OCR split or joined the words). Fuzzy: a run of as many words as
    the value has (one more or one fewer) is similar enough.
    """
    wanted = _tokens(value)
    target = "".join(wanted)
    if len(target) < 3:
        return set()
    hits: set[int] = set()
    n = len(wanted)
    for line in lines:
        # Every token on the line with the box it comes from.
        seq = [(i, t) for i in line for t in _tokens(_fix_digits(boxes[i].text))]
        compact = ""
        owner: list[int] = []
        starts: set[int] = set()
        for i, t in seq:
            starts.add(len(compact))
            compact += t
            owner.extend([i] * len(t))
        ends = {s + len(t) for s, (_, t) in zip(sorted(starts), seq, strict=True)}
        for m in re.finditer(re.escape(target), compact):
            # Whole tokens only: "12345" is not found inside "12345678".
            if m.start() in starts and m.end() in ends:
                hits.update(owner[m.start():m.end()])
        for size in {max(n - 1, 1), n, n + 1}:
            for start in range(len(seq) - size + 1):
                window = seq[start:start + size]
                joined = "".join(t for _, t in window)
                # Same length give or take a slip: a neighbouring word must not ride along.
                if (abs(len(joined) - len(target)) <= max(1, len(target) // 10)
                        and _similar(joined, target)):
                    hits.update(i for i, _ in window)
    return hits


def match_identifiers(boxes: Sequence[TextBox],
                      identifiers: Mapping[str, str | None]) -> dict[str, tuple[int, ...]]:
    """Which header identifiers appear in which boxes.

    `identifiers` maps a kind (a DICOM keyword such as "PatientName", "StudyDate",
    "InstitutionName") to the header value. Returns kind -> indices into `boxes` of the boxes
    showing it, for the kinds found at least once. Comparison is case-insensitive and tolerant:
    person names by component (split on ^ and spaces), dates (DA) and times (TM) in their usual
    renderings (2001-02-03, 03/02/2001, 02/03/2001, 03.02.2001, 03-Feb-2001, 2-digit years,
    2:09:04 PM ...), everything else as a phrase; OCR slips are forgiven by a similarity ratio
    of at least 0.8 on words of four or more characters.
    """
    lines = _lines(boxes)
    found: dict[str, tuple[int, ...]] = {}
    for kind, raw in identifiers.items():
        if raw is None:
            continue
        hits: set[int] = set()
        for value in str(raw).split("\\"):
            value = value.strip()
            if not value:
                continue
            dates = _date_renderings(value) if kind.endswith("Date") or len(value) == 8 else set()
            times = _time_renderings(value) if kind.endswith("Time") else set()
            if kind.endswith("DateTime") and len(value) >= 8:
                dates = _date_renderings(value[:8])
                times = _time_renderings(value[8:14])
            if dates or times:
                hits |= _match_renderings(dates | times, boxes, lines)
                if dates and not value.isdigit():
                    hits |= _match_phrase(value, boxes, lines)
            elif kind in _PN_KEYWORDS or "^" in value:
                hits |= _match_name(value, boxes)
            else:
                hits |= _match_phrase(value, boxes, lines)
        if hits:
            found[kind] = tuple(sorted(hits))
    return found


# --------------------------------------------------------------------------------------------
# One file


def _read(src: str | os.PathLike[str] | BinaryIO | Dataset) -> Dataset:
    if isinstance(src, Dataset):
        return src
    return dcmread(src, force=True)


def detect_burned_in_text(
    src: str | os.PathLike[str] | BinaryIO | Dataset,
    identifiers: Mapping[str, str | None] | None = None,
    options: OcrOptions | None = None,
) -> OcrResult:
    """Look for burned-in text in a DICOM file or dataset; never raises on a bad file.

    `identifiers` are the header values to look for (kind -> value); by default those of the
    dataset itself (`header_identifiers`). Failures come back in `OcrResult.error`: a file that
    is not DICOM, pixel data no installed decoder handles, Tesseract missing.
    """
    opts = options or OcrOptions()
    try:
        ds = _read(src)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        name = Path(str(src)).name if isinstance(src, (str, os.PathLike)) else "stream"
        return OcrResult(0, 0, error=f"read: {name} is not readable as DICOM ({exc})")
    except Exception as exc:  # pydicom raises many kinds on corrupt input
        return OcrResult(0, 0, error=f"read: {type(exc).__name__}: {exc}")

    try:
        total = frame_count(ds)
        indices = sample_frame_indices(total, opts.max_frames)
    except Exception as exc:
        return OcrResult(0, 0, error=f"pixels: {type(exc).__name__}: {exc}")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return OcrResult(0, 0, error="pixels: the dataset has no pixel data")

    reason = tesseract_unavailable_reason(opts)
    if reason is not None:
        return OcrResult(total, 0, error=reason)

    boxes: list[TextBox] = []
    examined = 0
    error: str | None = None
    frames = iter_display_frames(ds, indices)
    while True:
        try:
            item = next(frames, None)
        except PixelDecodeError as exc:
            error = str(exc)
            break
        except Exception as exc:  # one bad file never stops an audit
            error = f"pixels: {type(exc).__name__}: {exc}"
            break
        if item is None:
            break
        index, image = item
        try:
            boxes.extend(ocr_frame(image, index, opts))
        except (OcrUnavailableError, OcrFailedError) as exc:
            error = str(exc)
            break
        examined += 1

    if identifiers is None:
        identifiers = header_identifiers(ds)
    matched = match_identifiers(boxes, identifiers)
    return OcrResult(
        frames_total=total,
        frames_examined=examined,
        boxes=tuple(boxes),
        matches={kind: len(hits) for kind, hits in matched.items()},
        error=error,
    )

