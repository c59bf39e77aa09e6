"""Free-text detectors: each detector on its renderings, boundaries, false-positive guards,
and a property test: a planted identifier is always found."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomguard.phi.heuristics import Detector, Identity, find_spans, name_tokens, scan_text

IDENT = Identity.from_values(names=["Doe^Johnathan^Q"], ids=["PAT12345"])


@pytest.mark.parametrize(("text", "detector"), [
    ("seen for JOHNATHAN today", Detector.NAME),
    ("Mr doe, follow-up", Detector.NAME),
    ("ref pat12345 prior", Detector.PATIENT_ID),
    ("call +1 (555) 123-4567", Detector.PHONE),
    ("tel: 0123456789", Detector.PHONE),
    ("020 7946 0958", Detector.PHONE),
    ("555-123-4567", Detector.PHONE),
    ("mail a.b@example.org please", Detector.EMAIL),
    ("12 Main Street", Detector.ADDRESS),
    ("lives at 221b Baker St.", Detector.ADDRESS),
    ("Hauptstraße 12", Detector.ADDRESS),
    ("Via Roma 12", Detector.ADDRESS),
    ("15/01/2023", Detector.DATE),
    ("2023-01-15", Detector.DATE),
    ("20230115", Detector.DATE),
    ("15 Jan 2023", Detector.DATE),
    ("15-JAN-2023", Detector.DATE),
    ("January 15, 2023", Detector.DATE),
    ("1/15/23", Detector.DATE),
    ("15.01.2023", Detector.DATE),
])
def test_detectors_fire(text: str, detector: Detector) -> None:
    assert scan_text(text, IDENT) & detector
    assert any(d == detector for d, _ in find_spans(text, IDENT))


@pytest.mark.parametrize("text", [
    "CT HEAD 5 mm", "1.2.840.10008.5.1.4.1.1.2", "512x512", "Series 3 of 120",
    "W 400 L 40", "100 200 300 400", "5 mm CT", "1.4.16", "johnsonville", "PAT123456",
    "kVp 120 mA 250", "0.5 1.25 3.75", "scanner",
])
def test_ordinary_text_is_quiet(text: str) -> None:
    assert scan_text(text, IDENT) == Detector(0)


def test_name_tokens_skip_short_and_placeholders() -> None:
    assert name_tokens("Doe^Al^^Dr") == {"doe"}
    assert name_tokens("ANONYMOUS^PATIENT") == set()
    assert name_tokens("van der Berg^Anna-Lena") == {"berg", "anna", "lena"}


def test_identity_repr_shows_no_value() -> None:
    assert "doe" not in repr(IDENT).lower()
    assert "12345" not in repr(IDENT)


def test_detectors_mask_limits_search() -> None:
    text = "John Doe, 12 Main Street, 555-123-4567"
    assert scan_text(text, IDENT, detectors=int(Detector.NAME)) == Detector.NAME


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)
_filler = st.lists(st.sampled_from(["scan", "of", "the", "left", "knee", "with", "contrast",
                                     "Dr", "note", "ok", "prior", "study"]), max_size=6)


def _date_strings(d: datetime.date) -> list[str]:
    return [d.strftime("%Y-%m-%d"), d.strftime("%Y%m%d"), d.strftime("%d/%m/%Y"),
            d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y"), d.strftime("%d %b %Y"),
            d.strftime("%B %d, %Y"), d.strftime("%d-%b-%Y").upper()]


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, Detector, Identity]:
    family, given_name = draw(_word), draw(_word)
    ident = Identity.from_values(names=[f"{family}^{given_name}"],
                                 ids=[draw(st.from_regex(r"[A-Z]{2}[0-9]{5,8}", fullmatch=True))])
    kind = draw(st.sampled_from(list(Detector)))
    if kind is Detector.NAME:
        value = draw(st.sampled_from([family, given_name])).upper()
        if value.casefold() not in ident.names:  # a placeholder word: nothing to find
            value = next(iter(ident.names)) if ident.names else "x"
            if not ident.names:
                kind = Detector(0)
    elif kind is Detector.PATIENT_ID:
        value = next(iter(ident.ids)).upper()
    elif kind is Detector.DATE:
        d = draw(st.dates(min_value=datetime.date(1920, 1, 1),
                          max_value=datetime.date(2099, 12, 31)))
        value = draw(st.sampled_from(_date_strings(d)))
    elif kind is Detector.PHONE:
        a, b, c = (draw(st.integers(100, 999)), draw(st.integers(100, 999)),
                   draw(st.integers(1000, 9999)))
        value = draw(st.sampled_from([f"+1 ({a}) {b}-{c}", f"{a}-{b}-{c}", f"0{a} {b} {c}",
                                      f"+44 {a} {b} {c}", f"tel {a}{b}{c}"]))
    elif kind is Detector.EMAIL:
        value = f"{draw(_word)}.{draw(_word)}@{draw(_word)}.org"
    else:
        value = (f"{draw(st.integers(1, 9999))} {draw(_word).capitalize()} "
                 f"{draw(st.sampled_from(['Street', 'Road', 'Avenue', 'Lane', 'Blvd']))}")
    before, after = draw(_filler), draw(_filler)
    return " ".join([*before, value, *after]), kind, ident


@settings(max_examples=300, deadline=None)
@given(planted())
def test_planted_identifier_is_always_found(case: tuple[str, Detector, Identity]) -> None:
    text, kind, ident = case
    assert scan_text(text, ident) & kind == kind
