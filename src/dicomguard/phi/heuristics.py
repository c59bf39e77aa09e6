"""Free-text PHI detectors: where Annex E says "clean" or says nothing, look at the words.

    ident = Identity.from_values(names=["Doe^John"], ids=["PAT12345"])
    found = scan_text("Seen by Dr X for John, call 555-123-4567", ident)
    found & Detector.NAME, found & Detector.PHONE      # a bit set, never the matched text

The detectors answer *whether* a text holds something identifying, as a :class:`Detector` bit
set; they never return the matched text (``find_spans`` does, for ``--show-phi`` only).

What each detector looks for:

- ``NAME``: any component of the patient's name (family, given, middle; split at ``^``, ``=``,
  spaces, commas, hyphens), at least 3 letters, case-insensitive, as a whole word (so "Ann"
  does not match "scanner", nor "CT1" match "1CT1"). Placeholder names (ANONYMOUS, PATIENT,
  TEST, ...) are ignored.
- ``PATIENT_ID``: the patient ID (or another patient ID), at least 4 characters, as a whole
  token (no letter or digit touching it), case-insensitive.
- ``DATE``: calendar dates in the common renderings: 2023-01-15, 2023/01/15, 20230115 (plain
  8 digits with a valid month and day, years 1900-2099), 15.01.2023, 15/01/2023, 01/15/2023,
  15-01-23 (two-digit years only with "/" or "-": "1.4.16" is a version), 15 Jan 2023,
  15-JAN-2023, January 15, 2023, Jan 15 2023.
- ``PHONE``: 7 to 15 digits in at least two groups separated by spaces, dots, dashes or
  parentheses, with a leading "+" country code, an area code in parentheses, a dash, or a
  leading trunk 0 (so "100 200 300" is not a phone number); or a run of 6 or more digits after
  "tel", "phone", "fax", "mobile"; never a date.
- ``EMAIL``: local@domain.tld.
- ``ADDRESS``: a house number followed within four words by a street word (street, st, road,
  avenue, lane, drive, ... and common non-English ones: strasse/straße, rue, via, calle,
  straat, gatan, ...), or a street word ending a word followed by a number ("Hauptstrasse 12").

Speed: the cheap checks come first. Without a digit in the text only NAME and PATIENT_ID can
fire (and EMAIL, which needs an "@"); the regular expressions run only when their trigger
character is present. Identity tokens are matched with ``str.find`` plus a boundary check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag
from hashlib import blake2b

__all__ = [
    "MIN_ID_LENGTH",
    "MIN_NAME_LENGTH",
    "Detector",
    "Identity",
    "find_spans",
    "name_tokens",
    "scan_text",
]

MIN_NAME_LENGTH = 3
MIN_ID_LENGTH = 4


class Detector(IntFlag):
    """What a free-text detector found (a bit set; 0 means nothing)."""

    NAME = 1
    PATIENT_ID = 2
    DATE = 4
    PHONE = 8
    EMAIL = 16
    ADDRESS = 32

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {Detector.NAME: "name", Detector.PATIENT_ID: "patient-id", Detector.DATE: "date",
           Detector.PHONE: "phone", Detector.EMAIL: "email", Detector.ADDRESS: "address"}

#: Name components that identify nobody (placeholders written by anonymisers and test data).
_PLACEHOLDER_NAMES = frozenset({
    "anonymous", "anonymized", "anonymised", "anon", "patient", "unknown", "test", "none",
    "removed", "deidentified", "de-identified", "redacted", "name", "phantom", "mrs", "miss",
    "the", "and", "von", "van", "der", "den", "del", "dela", "prof",
})

_NAME_SPLIT = re.compile(r"[\^=\s,\-]+")


def name_tokens(value: str) -> set[str]:
    """The casefolded components of a person name value usable for matching."""
    tokens: set[str] = set()
    for part in _NAME_SPLIT.split(value.casefold()):
        part = part.strip(".'\"()")
        if len(part) >= MIN_NAME_LENGTH and part not in _PLACEHOLDER_NAMES and not part.isdigit():
            tokens.add(part)
    return tokens


@dataclass(frozen=True, slots=True)
class Identity:
    """The patient's own identifiers, casefolded, to look for elsewhere. Never printed:
    ``repr`` shows counts only."""

    names: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()

    @classmethod
    def from_values(cls, names: Iterable[str] = (), ids: Iterable[str] = ()) -> Identity:
        name_set: set[str] = set()
        for value in names:
            name_set |= name_tokens(value)
        id_set = {v.strip().casefold() for v in ids}
        return cls(frozenset(name_set),
                   frozenset(v for v in id_set if len(v) >= MIN_ID_LENGTH))

    def __repr__(self) -> str:
        return f"Identity(<{len(self.names)} name tokens>, <{len(self.ids)} ids>)"

    def __bool__(self) -> bool:
        return bool(self.names or self.ids)


def _word_at(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands alone: no letter or digit touching it."""
    if start > 0 and text[start - 1].isalnum():
        return False
    return not (end < len(text) and text[end].isalnum())


def _contains_token(low: str, token: str) -> tuple[int, int] | None:
    find = low.find
    i = find(token)
    n = len(token)
    while i >= 0:
        if _word_at(low, i, i + n):
            return i, i + n
        i = find(token, i + 1)
    return None


_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|"
           r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_D = r"(?:0?[1-9]|[12]\d|3[01])"
_M = r"(?:0?[1-9]|1[0-2])"
_Y4 = r"(?:19|20)\d\d"
_DATE_RE = re.compile(
    r"(?<![\w.])(?:"
    rf"{_Y4}[-/.]{_M}[-/.]{_D}"                               # 2023-01-15, 2023.1.5
    rf"|{_Y4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"         # 20230115
    rf"|{_D}[-/.]{_M}[-/.]{_Y4}|{_D}([-/]){_M}\1\d\d"           # 15.01.2023, 15-01-23
    rf"|{_M}[-/.]{_D}[-/.]{_Y4}|{_M}([-/]){_D}\2\d\d"           # 01/15/2023, 1/15/23
    rf"|{_D}(?:st|nd|rd|th)?[ \-./]*{_MONTHS}\.?[ \-./,]*(?:{_Y4}|\d\d)"  # 15 Jan 2023
    rf"|{_MONTHS}\.?[ \-./]*{_D}(?:st|nd|rd|th)?,?[ \-./]*{_Y4}"  # January 15, 2023
    r")(?![\w])",
    re.IGNORECASE)

_PHONE_RE = re.compile(
    r"(?<![\w.+/-])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d{1,5}(?:[ .\-]\d{2,5}){1,5}"
    r"(?![\w.+/-]\S)")
_PHONE_WORD_RE = re.compile(
    r"(?:tel|phone|fax|mobile|mob|cell|telefon|telephone|t[ée]l[ée]phone)\.?\s*(?:no\.?|nr\.?|"
    r"number|#)?\s*[:.]?\s*(\+?[\d()][\d ()./\-]{5,22}\d)", re.IGNORECASE)

_EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}", re.IGNORECASE)

_STREET_WORDS = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|boulevard|blvd|court|square|terrace|"
    r"crescent|parkway|pkwy|highway|hwy|alley|strasse|straße|str|gasse|weg|allee|platz|rue|"
    r"avenida|calle|via|viale|piazza|straat|laan|gatan|gata|vej|vei|ulica"
)
_ADDRESS_RE = re.compile(
    rf"(?<![\w.])\d{{1,5}}[a-z]?,?\s+(?:[^\W\d_][\w'.\-]*\s+){{0,4}}(?:{_STREET_WORDS})\b"
    r"|(?<![\w.])\d{1,5}[a-z]?,?\s+(?:[^\W\d_][\w'.\-]*\s+){1,4}(?:way|close|place)\b"
    r"|\b(?:via|viale|piazza|calle|avenida|ulica)\s+(?:[^\W\d_][\w'\-]*\s+){1,4}\d{1,5}\b"
    r"|[^\W\d_]{2,}(?:strasse|straße|str\.|gasse|weg|allee|platz|straat|laan|gatan|vej)\s+"
    r"\d{1,5}[a-z]?\b",
    re.IGNORECASE)


# --- the same patterns, shaped for speed on long texts -----------------------------------------
# Python's re scans a text quickly for a pattern whose first item is a character class (it
# skips to the next character that can start a match), but tries every position of the text
# when the pattern starts with a look-behind, as the date and phone patterns above do (about
# 25-120 ns a character: milliseconds on a 27 KB private XML block). The patterns below match
# exactly what the ones above match, span for span and group for group: the first character is
# consumed by a class; the look-behind moves after it and checks the character before it
# ("(?<![\w.][0-9])" after a digit is "(?<![\w.])" before it); each alternative of the
# original is guarded by what its first character was ("(?<=1)9" continues "19") and they keep
# their order; letters that were matched case-insensitively are listed in both cases (and
# the long s "ſ", which re.IGNORECASE equates with "s"), the rest of a word gets "(?i:...)".
# tests/phi/test_heuristics_fast.py compares each with its original on random texts.

_D_TAIL = r"(?:(?<=0)[1-9]|(?<=[1-9])|(?<=[12])\d|(?<=3)[01])"   # {_D} after its first digit
_M_TAIL = r"(?:(?<=0)[1-9]|(?<=[1-9])|(?<=1)[0-2])"             # {_M} after its first digit
_Y4_TAIL = r"(?:(?<=1)9|(?<=2)0)\d\d"                          # {_Y4} after its first digit
_MONTHS_I = f"(?i:{_MONTHS[3:]}"                                # (?:jan...) -> (?i:jan...)
_MONTHS_TAIL = (r"(?:(?<=[jJ])(?i:an(?:uary)?)|(?<=[fF])(?i:eb(?:ruary)?)|(?<=[mM])(?i:ar(?:ch)?)"
                r"|(?<=[aA])(?i:pr(?:il)?)|(?<=[mM])(?i:ay)|(?<=[jJ])(?i:un(?:e)?)"
                r"|(?<=[jJ])(?i:ul(?:y)?)|(?<=[aA])(?i:ug(?:ust)?)|(?<=[sSſ])(?i:ep(?:t(?:ember)?)?)"
                r"|(?<=[oO])(?i:ct(?:ober)?)|(?<=[nN])(?i:ov(?:ember)?)|(?<=[dD])(?i:ec(?:ember)?))")
_ORD = r"(?i:st|nd|rd|th)"
_DATE_DIGIT_ALTS = (
    rf"{_Y4_TAIL}[-/.]{_M}[-/.]{_D}"
    rf"|{_Y4_TAIL}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    rf"|{_D_TAIL}[-/.]{_M}[-/.]{_Y4}|{_D_TAIL}([-/]){_M}\1\d\d"
    rf"|{_M_TAIL}[-/.]{_D}[-/.]{_Y4}|{_M_TAIL}([-/]){_D}\2\d\d"
    rf"|{_D_TAIL}{_ORD}?[ \-./]*{_MONTHS_I}\.?[ \-./,]*(?:{_Y4}|\d\d)")
_DATE_MONTH_ALT = rf"{_MONTHS_TAIL}\.?[ \-./]*{_D}{_ORD}?,?[ \-./]*{_Y4}"
_MONTH_FIRST = "JjFfMmAaSsſOoNnDd"
#: _DATE_RE, fast: the same matches (used by tests); scan_text uses its two halves below.
_DATE_FAST_RE = re.compile(
    rf"[0-9{_MONTH_FIRST}](?<![\w.][0-9{_MONTH_FIRST}])"
    rf"(?:(?<=[0-9])(?:{_DATE_DIGIT_ALTS})|(?<=[{_MONTH_FIRST}]){_DATE_MONTH_ALT})(?![\w])")
#: The dates of _DATE_RE that start with a digit (all but "January 15, 2023").
_DATE_DIGIT_RE = re.compile(rf"[0-9](?<![\w.][0-9])(?:{_DATE_DIGIT_ALTS})(?![\w])")
#: The dates of _DATE_RE that start with a month name.
_DATE_MONTH_RE = re.compile(
    rf"[{_MONTH_FIRST}](?<![\w.][{_MONTH_FIRST}]){_DATE_MONTH_ALT}(?![\w])")
_PHONE_FAST_RE = re.compile(
    r"[+(\d](?<![\w.+/-][+(\d])"
    r"(?:(?<=\+)\d{1,3}[ .\-]?(?:\(\d{1,5}\)[ .\-]?)?\d{1,5}|(?<=\()\d{1,5}\)[ .\-]?\d{1,5}"
    r"|(?<=\d)\d{0,4})(?:[ .\-]\d{2,5}){1,5}(?![\w.+/-]\S)")
_PHONE_WORD_FAST_RE = re.compile(
    r"[tTpPfFmMcC](?:(?<=[tT])(?i:el)|(?<=[pP])(?i:hone)|(?<=[fF])(?i:ax)|(?<=[mM])(?i:obile)"
    r"|(?<=[mM])(?i:ob)|(?<=[cC])(?i:ell)|(?<=[tT])(?i:elefon)|(?<=[tT])(?i:elephone)"
    r"|(?<=[tT])(?i:[ée]l[ée]phone))\.?\s*(?i:no\.?|nr\.?|number|#)?\s*[:.]?\s*"
    r"(\+?[\d()][\d ()./\-]{5,22}\d)")


def _has_date(text: str, low: str) -> bool:
    """Whether _DATE_RE finds a date in ``text`` (``low``: its casefold), quickly."""
    if _DATE_DIGIT_RE.search(text) is not None:
        return True
    # A month-first date has its month name as a word of its own (an ASCII non-letter or the
    # start before it, one of " .-/" or a digit after it): in an ASCII text that word is in
    # the words of low; otherwise just search.
    if text.isascii() and set(low.translate(_WORDS_TABLE).split()).isdisjoint(_MONTH_WORDS):
        return False
    return _DATE_MONTH_RE.search(text) is not None


#: "way", "close" and "place" need a street name between number and word ("2 way valve").
_STREET_SET = frozenset(_STREET_WORDS.split("|")) | {"way", "close", "place"}
_COMPOUND_HINT = re.compile(r"str(?:asse|aße|\.|aat)|gasse|weg|allee|platz|laan|gatan|vej")
_ADDRESS_LEADS = frozenset({"via", "viale", "piazza", "calle", "avenida", "ulica"})
_MONTH_WORDS = frozenset({
    "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june",
    "jul", "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov",
    "november", "dec", "december"})
_PHONE_WORDS = frozenset({"tel", "phone", "fax", "mobile", "mob", "cell", "telefon",
                          "telephone", "téléphone"})
# every ASCII character that is not a letter becomes a space: words = text.translate().split()
_WORDS_TABLE = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalpha()})
# numeric date shapes (a fast pre-check: the pattern starts with a digit class)
_NUMERIC_DATE_HINT = re.compile(r"\d[-/.]\d{1,2}[-/.]\d|\d{8}")


def _digits(text: str) -> int:
    """How many ASCII digits ``text`` has."""
    if text.isascii():  # bytes.translate deletes in C, without a mapping per character
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, b"0123456789"))
    return len(text) - len(text.translate(_NO_DIGITS))


def _phone(text: str, phone_word: bool = True) -> re.Match[str] | None:
    for m in _PHONE_FAST_RE.finditer(text):  # = _PHONE_RE, quicker on long texts
        s = m.group(0)
        n = _digits(s)
        if not 7 <= n <= 15 or _DATE_RE.fullmatch(s):
            continue
        # lists of numbers ("100 200 300") are not phone numbers: without a "+", "(" or "-"
        # the number must start with a national trunk prefix 0
        if s[0] in "+(" or "-" in s or s[0] == "0":
            return m
    if not phone_word:
        return None
    m2 = _PHONE_WORD_FAST_RE.search(text)  # = _PHONE_WORD_RE
    if m2 is not None and 6 <= _digits(m2.group(1)) <= 15:
        return m2
    return None


_NO_DIGITS = str.maketrans("", "", "0123456789")


def scan_text(text: str, identity: Identity | None = None, *,
              detectors: int = 63) -> Detector:
    """Which detectors fire on ``text`` (0 when none). ``identity`` enables NAME/PATIENT_ID;
    ``detectors`` limits the search to these :class:`Detector` bits."""
    if len(text) < 3:
        return _NONE
    found = 0
    low = text.casefold()
    if identity is not None:
        if detectors & 1:
            for token in identity.names:
                if token in low and _contains_token(low, token) is not None:
                    found |= 1
                    break
        if detectors & 2:
            for token in identity.ids:
                if token in low and _contains_token(low, token) is not None:
                    found |= 2
                    break
    if detectors & 60:
        mask = detectors & 60
        key = blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16,
                      person=_PERSON[mask]).digest()
        bits = _PATTERN_CACHE.get(key)
        if bits is None:
            bits = _pattern_bits(text, low, mask)
            if len(_PATTERN_CACHE) >= _CACHE_ENTRIES:
                _PATTERN_CACHE.clear()
            _PATTERN_CACHE[key] = bits
        found |= bits
    return _FLAGS[found]


#: The pattern bits (date, phone, e-mail, address) of texts seen before. They do not depend on
#: the patient (the name and ID bits are always computed), and an archive repeats its texts: a
#: series shares its descriptions, comments and vendor blocks. Keyed by a 128-bit BLAKE2b
#: digest of the text (personalised with the detectors asked), so no text is kept; emptied
#: when it reaches _CACHE_ENTRIES entries (about 2 MB).
_PATTERN_CACHE: dict[bytes, int] = {}
_CACHE_ENTRIES = 20_000
_PERSON = tuple(bytes([mask]) for mask in range(64))


def _pattern_bits(text: str, low: str, detectors: int) -> int:
    """The date (4), phone (8), e-mail (16) and address (32) bits of :func:`scan_text`."""
    found = 0
    if detectors & 16 and "@" in text and _EMAIL_RE.search(text):
        found |= 16
    if not detectors & 44:                                       # DATE | PHONE | ADDRESS
        return found
    digits = _digits(text)
    if digits:
        words: set[str] | None = None
        if detectors & 4 and digits >= 4:
            if _NUMERIC_DATE_HINT.search(text) is not None:
                if _has_date(text, low):  # = _DATE_RE.search(text)
                    found |= 4
            else:
                words = set(low.translate(_WORDS_TABLE).split())
                if not words.isdisjoint(_MONTH_WORDS) and _has_date(text, low):
                    found |= 4
        if detectors & 8 and digits >= 6:
            if words is None:
                words = set(low.translate(_WORDS_TABLE).split())
            if _phone(text, not words.isdisjoint(_PHONE_WORDS)) is not None:
                found |= 8
        if detectors & 32:
            if words is None:
                words = set(low.translate(_WORDS_TABLE).split())
            if (not words.isdisjoint(_STREET_SET) or not words.isdisjoint(_ADDRESS_LEADS)
                    or _COMPOUND_HINT.search(low)) and _ADDRESS_RE.search(text):
                found |= 32
    return found


_NONE = Detector(0)
_FLAGS = tuple(Detector(i) for i in range(64))


def find_spans(text: str, identity: Identity | None = None) -> list[tuple[Detector, str]]:
    """The matched pieces of ``text`` per detector: for ``--show-phi`` displays only."""
    out: list[tuple[Detector, str]] = []
    low = text.casefold()
    if identity is not None:
        for token in sorted(identity.names):
            span = _contains_token(low, token)
            if span is not None:
                out.append((Detector.NAME, text[span[0]:span[1]]))
        for token in sorted(identity.ids):
            span = _contains_token(low, token)
            if span is not None:
                out.append((Detector.PATIENT_ID, text[span[0]:span[1]]))
    for m in _EMAIL_RE.finditer(text):
        out.append((Detector.EMAIL, m.group(0)))
    for m in _DATE_RE.finditer(text):
        out.append((Detector.DATE, m.group(0)))
    phone = _phone(text)
    if phone is not None:
        out.append((Detector.PHONE, phone.group(0).strip()))
    for m in _ADDRESS_RE.finditer(text):
        out.append((Detector.ADDRESS, m.group(0)))
    return out
