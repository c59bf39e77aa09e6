"""The de-identifier's only contact points with the PHI inspector, the heuristics and OCR.

Those modules are owned elsewhere and still moving; everything the de-identifier needs from
them goes through the few functions here, so a change there is a change in one place here.
Optional pieces report themselves unavailable with the reason instead of crashing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dicomguard.phi.heuristics import Identity, find_spans

__all__ = [
    "BURNED_IN_MODALITIES",
    "SECONDARY_CAPTURE_SOP_CLASSES",
    "Cleaner",
    "OcrUnavailable",
    "identity_from",
    "inspect_bytes",
    "ocr_text_boxes",
]

try:  # the inspector is the source of truth for "at burned-in risk"
    from dicomguard.phi.inspector import BURNED_IN_MODALITIES, SECONDARY_CAPTURE_SOP_CLASSES
except ImportError:  # pragma: no cover - only while the inspector is being rewritten
    BURNED_IN_MODALITIES = frozenset({"US", "SC", "OT", "XA", "ES"})
    SECONDARY_CAPTURE_SOP_CLASSES = frozenset({
        "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4"})


def identity_from(names: Iterable[str], ids: Iterable[str]) -> Identity:
    return Identity.from_values(names=names, ids=ids)


_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True, slots=True)
class Cleaner:
    """Removes what the heuristics find in a text: the patient's (and staff's) names and IDs,
    and with ``full`` also dates, phone numbers, e-mail and street addresses."""

    identity: Identity

    def clean(self, text: str, *, full: bool) -> str:
        ident = self.identity
        for _ in range(8):  # each round removes at least one span; bounded
            spans = find_spans(text, ident)
            if not full:
                spans = [(d, s) for d, s in spans if d.label in ("name", "patient-id")]
            if not spans:
                break
            # longest first: a phone number goes whole before a name token inside it
            for _det, piece in sorted(spans, key=lambda d_s: -len(d_s[1])):
                if piece:
                    text = re.sub(re.escape(piece), "", text, flags=re.IGNORECASE)
        return _SPACES.sub(" ", text).strip()

    def needs_cleaning(self, text: str, *, full: bool) -> bool:
        spans = find_spans(text, self.identity)
        if not full:
            spans = [(d, s) for d, s in spans if d.label in ("name", "patient-id")]
        return bool(spans)


def inspect_bytes(data: bytes, name: str = "") -> Any:
    """Run the PHI inspector over a file's bytes with values kept *in memory* (for
    verification only: callers report keywords, never the values)."""
    from dicomguard.dicomfile import read_header
    from dicomguard.phi.inspector import inspect

    header = read_header(data)
    return header, inspect(header, detail=True, show_phi=True)


class OcrUnavailable(RuntimeError):
    """OCR of burned-in text cannot run here; the message says why."""


def ocr_text_boxes(ds: Any, *, max_frames: int = 10) -> list[tuple[int, int, int, int]]:
    """Boxes (left, top, width, height), in original pixel coordinates, of the text found in
    a sample of the frames of ``ds`` (every frame up to ``max_frames``; else first, middle,
    last and an even sample), united over the frames: the caller fills them in every frame,
    since burned-in annotations of a cine loop stay where they are.

    Raises OcrUnavailable (tesseract missing) or PixelDecodeError (pixels undecodable).
    """
    from dicomguard.phi import pixel_text
    from dicomguard.phi.pixels import frame_count, iter_display_frames, sample_frame_indices

    opts = pixel_text.OcrOptions(max_frames=max_frames)
    reason = pixel_text.tesseract_unavailable_reason(opts)
    if reason is not None:
        raise OcrUnavailable(reason)
    indices = sample_frame_indices(frame_count(ds), max_frames)
    boxes: set[tuple[int, int, int, int]] = set()
    for index, image in iter_display_frames(ds, indices):
        try:
            found = pixel_text.ocr_frame(image, index, opts)
        except (pixel_text.OcrUnavailableError, pixel_text.OcrFailedError) as exc:
            raise OcrUnavailable(str(exc)) from None
        boxes.update((b.left, b.top, b.width, b.height) for b in found)
    return sorted(boxes)
