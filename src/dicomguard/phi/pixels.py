"""Decode DICOM pixel frames into 8-bit images a person (or an OCR engine) would see.

pydicom's decoders do the decompression (native, RLE, and, through the installed plugins
pylibjpeg / python-gdcm / pillow, JPEG, JPEG-LS and JPEG 2000); this module adds the display
step: Modality LUT, VOI LUT or window (min/max when neither is present), MONOCHROME1
inversion, palette lookup, YCbCr to RGB, and 16-bit to 8-bit. The output of every frame is a
C-contiguous uint8 array, (rows, columns) for grey or (rows, columns, 3) for RGB.

Decoding never raises anything but `PixelDecodeError`, whose message says why (no decoder for
the transfer syntax, a missing plugin and how to install it, corrupt data), so a caller auditing
a folder of strange files reports the reason and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    convert_color_space,
    get_decoder,
)
from pydicom.uid import UID

from dicomguard.errors import DicomFileError

__all__ = [
    "PixelDecodeError",
    "decode_frame",
    "frame_count",
    "iter_display_frames",
    "sample_frame_indices",
    "to_display",
]

class PixelDecodeError(DicomFileError):
    """The pixel data of a dataset could not be turned into an image; the message says why."""


def frame_count(ds: Dataset) -> int:
    """Number of frames in `ds` (1 when Number of Frames is absent, empty or invalid)."""
    try:
        value = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 1
    return max(value, 1)


def sample_frame_indices(total: int, max_frames: int = 16) -> list[int]:
    """Indices of the frames to examine: all of them up to `max_frames`, else an even sample.

    The sample always holds the first, the middle and the last frame (where burned-in
    annotations change, they usually change at the start or the end of a cine loop) and fills
    the rest of the budget with frames at an even step.
    """
    if total <= 0:
        return []
    if max_frames <= 0:
        raise ValueError("max_frames must be positive")
    if total <= max_frames:
        return list(range(total))
    if max_frames < 3:
        return [0, total - 1][:max_frames]
    step = (total - 1) / (max_frames - 2)
    chosen = {round(step * k) for k in range(max_frames - 1)} | {total // 2}
    return sorted(chosen)


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid))
    # Datasets read without meta (raw preamble-less files): pydicom records how it read them.
    if getattr(ds, "is_little_endian", True) is False:
        return UID("1.2.840.10008.1.2.2")
    if getattr(ds, "is_implicit_VR", False):
        return UID("1.2.840.10008.1.2")
    return UID("1.2.840.10008.1.2.1")


def decode_frame(ds: Dataset, index: int) -> tuple[NDArray[Any], str]:
    """Decode frame `index` of `ds`; return the array and the photometric interpretation of it.

    YCbCr data come back as RGB where pydicom's decoder converts it (it reports so).
    """
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise PixelDecodeError("pixels: the dataset has no pixel data")
    tsyntax = _transfer_syntax(ds)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise PixelDecodeError(
            f"pixels: no decoder for transfer syntax {tsyntax.name} ({tsyntax})"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no decoding plugin installed"
        raise PixelDecodeError(f"pixels: cannot decode {tsyntax.name}: {missing}")
    try:
        arr, meta = decoder.as_array(ds, index=index)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # every plugin raises its own types
        first = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in first[:4]) or type(exc).__name__
        raise PixelDecodeError(
            f"pixels: frame {index} of {tsyntax.name} data could not be decoded: {reason}"
        ) from exc
    photometric = str(meta.get("photometric_interpretation") or
                      ds.get("PhotometricInterpretation") or "MONOCHROME2")
    return arr, photometric.strip().upper()


def _scale_to_uint8(values: NDArray[Any]) -> NDArray[np.uint8]:
    """Stretch `values` linearly so that their minimum is 0 and their maximum 255."""
    finite = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(finite)):
        finite = np.nan_to_num(finite, nan=0.0, posinf=0.0, neginf=0.0)
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if high <= low:
        return np.zeros(finite.shape, dtype=np.uint8)
    scaled = (finite - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _rgb_to_uint8(arr: NDArray[Any], bits_stored: int) -> NDArray[np.uint8]:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return _scale_to_uint8(arr)
    top = int(arr.max()) if arr.size else 0
    # Trust Bits Stored when the data fits it; palettes declared 16-bit but holding 8-bit
    # values (a frequent quirk) do not get darkened to nothing.
    bits = bits_stored if 8 < bits_stored <= 16 and top < (1 << bits_stored) else 16
    if top <= 255:
        return arr.astype(np.uint8)
    shifted = np.right_shift(arr.astype(np.uint32), bits - 8)
    return np.clip(shifted, 0, 255).astype(np.uint8)


def _has_voi(ds: Dataset) -> bool:
    if "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds):
        return True
    # Enhanced multi-frame objects keep the window per frame or shared.
    for key in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = ds.get(key)
        if groups and any("FrameVOILUTSequence" in item for item in groups):
            return True
    return False


def to_display(arr: NDArray[Any], ds: Dataset, photometric: str,
               index: int = 0) -> NDArray[np.uint8]:
    """Turn one decoded frame into uint8 grey (rows, cols) or RGB (rows, cols, 3)."""
    bits_stored = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(arr, ds)
        except (ValueError, KeyError, AttributeError, IndexError) as exc:
            raise PixelDecodeError(f"pixels: palette lookup failed: {exc}") from exc
        return np.ascontiguousarray(_rgb_to_uint8(rgb, 16))
    if arr.ndim == 3:
        if photometric in ("YBR_FULL", "YBR_FULL_422"):
            arr = convert_color_space(arr, photometric, "RGB")
        # RGB (or what the decoder turned into RGB: YBR_ICT / YBR_RCT / JPEG YCbCr).
        return np.ascontiguousarray(_rgb_to_uint8(arr, bits_stored))
    grey: NDArray[Any] = arr
    if arr.dtype != np.uint8 or bits_stored < 8 or _has_voi(ds) or "RescaleSlope" in ds:
        try:
            grey = apply_modality_lut(arr, ds)
            if _has_voi(ds):
                grey = apply_voi_lut(grey, ds, index=index)
        except (ValueError, KeyError, AttributeError, IndexError, TypeError):
            grey = arr  # broken LUT or window: fall back to min/max of the stored values
        grey = _scale_to_uint8(grey)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return np.ascontiguousarray(grey.astype(np.uint8, copy=False))


def iter_display_frames(ds: Dataset,
                        indices: Sequence[int]) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Yield (index, uint8 image) for each of `indices`; raise PixelDecodeError on failure."""
    for index in indices:
        arr, photometric = decode_frame(ds, index)
        yield index, to_display(arr, ds, photometric, index)
