"""Burned-in text redaction (``--redact-burned-in``): OCR finds words, their boxes are filled.

    redacted = redact_bytes(data)     # None: nothing to do (no pixels, not at risk)
    redacted.data, redacted.boxes, redacted.cleaned

Only files at burned-in risk are examined (BurnedInAnnotation YES, or absent for the
modalities and SOP classes that usually burn text in; ``force=True`` examines any file). The
OCR (:mod:`dicomguard.phi.pixel_text`, through :mod:`.adapters`) looks at a sample of frames;
the union of the boxes is filled, with a 2-pixel margin, in every frame with the darkest value
(the largest for MONOCHROME1).

Ultrasound regions (SequenceOfUltrasoundRegions): the clinical image lives inside the regions
and the identifying header text (name, ID, date, institution) outside them, on the screen
capture's border. A box lying entirely inside a region is a clinical annotation (calipers,
measurement labels, speckle that OCR misreads) and is left alone; every box outside or across
a region border is filled.

The redacted pixels are written uncompressed (explicit VR little endian; compressed inputs
are decoded, YCbCr turned into RGB, planar configuration interleaved), because re-encoding
lossy data would lose quality twice. Big-endian inputs are redacted the same way (the output
is little endian). The caller then runs the header de-identification on the result.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .adapters import (
    BURNED_IN_MODALITIES,
    SECONDARY_CAPTURE_SOP_CLASSES,
    OcrUnavailable,
    ocr_text_boxes,
)

__all__ = ["Redacted", "RedactionError", "at_risk", "redact_bytes", "redact_dataset"]

MARGIN = 2


class RedactionError(Exception):
    """The pixels could not be redacted; the message says why (no value from the file)."""


@dataclass(frozen=True, slots=True)
class Redacted:
    data: bytes
    boxes: int
    cleaned: bool


def at_risk(ds: Any) -> bool:
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return True
    if burned == "NO":
        return False
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop = str(ds.get("SOPClassUID", "") or "")
    return modality in BURNED_IN_MODALITIES or sop in SECONDARY_CAPTURE_SOP_CLASSES


def _regions(ds: Any) -> list[tuple[int, int, int, int]]:
    out = []
    for item in ds.get("SequenceOfUltrasoundRegions", None) or []:
        try:
            out.append((int(item.RegionLocationMinX0), int(item.RegionLocationMinY0),
                        int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)))
        except (AttributeError, TypeError, ValueError):
            continue
    return out


def _inside(box: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> bool:
    left, top, width, height = box
    x0, y0, x1, y1 = region
    return left >= x0 and top >= y0 and left + width - 1 <= x1 and top + height - 1 <= y1


def boxes_to_fill(ds: Any, boxes: list[tuple[int, int, int, int]]
                  ) -> list[tuple[int, int, int, int]]:
    regions = _regions(ds)
    return [b for b in boxes if not any(_inside(b, r) for r in regions)]


def redact_dataset(ds: Any, boxes: list[tuple[int, int, int, int]]) -> None:
    """Fill ``boxes`` (left, top, width, height) in every frame of ``ds``, in place; the pixel
    data end up native (uncompressed) and little endian."""
    try:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress(as_rgb=True)
        arr = np.array(ds.pixel_array, copy=True)
    except Exception as exc:  # decoders raise many kinds
        raise RedactionError(f"pixels cannot be decoded ({type(exc).__name__})") from None
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    if frames == 1:
        arr = arr[np.newaxis, ...]
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "MONOCHROME1":
        fill: Any = np.iinfo(arr.dtype).max if arr.dtype.kind in "ui" else arr.max()
        bits = int(ds.get("BitsStored") or 0)
        if arr.dtype.kind == "u" and 0 < bits < arr.dtype.itemsize * 8:
            fill = (1 << bits) - 1
    else:
        fill = arr.min() if arr.dtype.kind in "if" and arr.min() < 0 else 0
    for left, top, width, height in boxes:
        x0, y0 = max(left - MARGIN, 0), max(top - MARGIN, 0)
        x1, y1 = min(left + width + MARGIN, cols), min(top + height + MARGIN, rows)
        if x1 > x0 and y1 > y0:
            arr[:, y0:y1, x0:x1, ...] = fill
    if frames == 1:
        arr = arr[0]
    if samples > 1:
        ds.PlanarConfiguration = 0
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    ds.PixelData = little.tobytes()
    from pydicom.uid import ExplicitVRLittleEndian

    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if ds["PixelData"].VR not in ("OB", "OW"):
        ds["PixelData"].VR = "OW" if arr.dtype.itemsize > 1 else "OB"


def redact_bytes(data: bytes, *, force: bool = False) -> Redacted | None:
    """Redact burned-in text of one file; None when there is nothing to examine."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise RedactionError(f"unreadable by pydicom ({type(exc).__name__})") from None
    if "PixelData" not in ds:
        return None
    if not force and not at_risk(ds):
        return None
    if int(ds.get("BitsAllocated") or 8) == 1:
        raise RedactionError("1-bit pixel data cannot be redacted")
    try:
        found = ocr_text_boxes(ds)
    except OcrUnavailable as exc:
        raise RedactionError(str(exc)) from None
    except Exception as exc:
        raise RedactionError(f"pixels cannot be examined ({type(exc).__name__})") from None
    boxes = boxes_to_fill(ds, found)
    if not boxes:
        return Redacted(data, 0, True)
    big_endian = not getattr(ds, "is_little_endian", True) or (
        ds.file_meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.2")
    redact_dataset(ds, boxes)
    buf = io.BytesIO()
    try:
        if big_endian:
            ds = _to_little_endian(ds)
        ds.save_as(buf, enforce_file_format=False, implicit_vr=False, little_endian=True)
    except Exception as exc:
        raise RedactionError(f"redacted data set cannot be written ({type(exc).__name__})"
                             ) from None
    return Redacted(buf.getvalue(), len(boxes), True)


def _to_little_endian(ds: Any) -> Any:
    """Copy every element into a fresh data set (values decoded), so pydicom writes it LE."""
    from pydicom.dataset import Dataset, FileMetaDataset

    out = Dataset()
    for elem in ds:
        out.add(elem)
    out.file_meta = FileMetaDataset(ds.file_meta)
    return out
