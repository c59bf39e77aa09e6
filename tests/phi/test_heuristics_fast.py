"""The fast forms of the free-text patterns match exactly what the originals match.

heuristics._DATE_FAST_RE, _PHONE_FAST_RE and _PHONE_WORD_FAST_RE are rewritten so that Python's
re can skip quickly to where a match can start; they must find the same spans and groups as
_DATE_RE, _PHONE_RE and _PHONE_WORD_RE, and _has_date must answer as _DATE_RE.search does.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomguard.phi import heuristics as h

PAIRS = [(h._DATE_RE, h._DATE_FAST_RE), (h._PHONE_RE, h._PHONE_FAST_RE),
         (h._PHONE_WORD_RE, h._PHONE_WORD_FAST_RE)]

# pieces the patterns are made of (numbers, separators, month names, ordinals, phone words),
# odd characters re treats specially, and plain letters; joined at random
PIECES = st.sampled_from([
    "0", "1", "3", "9", "01", "12", "15", "19", "20", "29", "31", "32", "99", "123", "2023",
    "1999", "2100", "12345", "555", "4567", "0123456", "+", "+44", "(", ")", "(555)",
    "-", "/", ".", " ", "  ", ",", ", ", ":", "#", "\n", "\t", "_", "@", "x", "a", "Z", "é",
    "ſ", "K", "ß", "٣", "\u00a0", "«", "Jan", "january", "JUNE", "Sept", "sep", "ſep", "Dec",
    "MAY", "mar", "march", "Oct", "nov", "aug", "apr", "st", "nd", "rd", "th", "TH", "tel",
    "Tel.", "Phone", "fax", "mobile", "mob", "cell", "telefon", "TÉLÉPHONE", "téléphone",
    "no.", "nr", "number", "on", "at", "seen",
])
NUMBERS = st.sampled_from(["0", "1", "3", "01", "09", "12", "13", "15", "19", "20", "29", "31",
                           "32", "99", "123", "2023", "1999", "2100", "12345", "0123456"])
SEPARATORS = st.sampled_from(["-", "/", ".", " ", "", ", ", " - ", "..", "/ ", ")", "("])
MONTHS = st.sampled_from(["Jan", "january", "JUNE", "Sept", "sep", "ſep", "Dec", "MAY", "mar",
                          "Mar.", "Oct", "nov", "aug", "apr", "Janu", "febx"])
DATEISH = st.tuples(PIECES, st.one_of(NUMBERS, MONTHS), SEPARATORS,
                    st.one_of(NUMBERS, MONTHS), SEPARATORS, NUMBERS,
                    st.sampled_from(["", "st", "nd", "th"]), SEPARATORS, NUMBERS, PIECES)
PHONEISH = st.tuples(PIECES, st.sampled_from(["", "tel ", "Phone: ", "fax no. ", "+", "+44 ",
                                              "(", "(0"]),
                     st.lists(st.tuples(NUMBERS, SEPARATORS), min_size=1, max_size=5), PIECES)
TEXTS = st.one_of(
    st.lists(PIECES, max_size=16).map("".join),
    st.lists(DATEISH.map("".join), min_size=1, max_size=3).map("".join),
    PHONEISH.map(lambda t: t[0] + t[1] + "".join(n + s for n, s in t[2]) + t[3]),
)


def _all(rx: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], tuple[str | None, ...]]]:
    return [(m.span(), m.groups()) for m in rx.finditer(text)]


@settings(max_examples=4000, deadline=None)
@given(TEXTS)
def test_fast_patterns_match_the_originals(text: str) -> None:
    for original, fast in PAIRS:
        assert _all(fast, text) == _all(original, text), original.pattern[:30]
        m1, m2 = original.search(text), fast.search(text)
        assert (m1 and (m1.span(), m1.groups())) == (m2 and (m2.span(), m2.groups()))
    assert h._has_date(text, text.casefold()) == (h._DATE_RE.search(text) is not None)


@pytest.mark.parametrize("text", [
    "15 Jan 2023", "January 15, 2023", "sept 3 2020", "ſep 3 2020", "«jan 15, 2023",
    "x.jan 15 2023", "2023-01-15", "20230115", "1/15/23", "15.01.2023", "15-JAN-2023",
    "3rd of may 2020", "3rd may 2020", "tel: 0123456789", "call +1 (555) 123-4567",
    "020 7946 0958", "TÉLÉPHONE no. (01) 23 45 67", "1.4.16", "100 200 300",
])
def test_fast_patterns_on_known_texts(text: str) -> None:
    for original, fast in PAIRS:
        assert _all(fast, text) == _all(original, text)
    assert h._has_date(text, text.casefold()) == (h._DATE_RE.search(text) is not None)


@settings(max_examples=500, deadline=None)
@given(TEXTS, st.sampled_from([63, 3, 4, 8, 16, 32, 44, 60, 61]))
def test_remembered_pattern_bits_are_the_computed_ones(text: str, detectors: int) -> None:
    ident = h.Identity.from_values(names=["Doe^Jan"], ids=["PAT12345"])
    first = h.scan_text(text, ident, detectors=detectors)
    h._PATTERN_CACHE.clear()
    assert h.scan_text(text, ident, detectors=detectors) == first  # computed afresh
    assert h.scan_text(text, ident, detectors=detectors) == first  # remembered
    if len(text) >= 3:
        assert first & 60 == h._pattern_bits(text, text.casefold(), detectors & 60)
    assert all(isinstance(k, bytes) and len(k) == 16 for k in h._PATTERN_CACHE)  # no text
