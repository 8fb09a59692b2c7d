"""Question understanding without an LLM: outlets, dates, speakers and the parts of a question."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from assistant.speakers import question_speakers, speech_verbs
from index.articles import MONTH_PATTERN, month_number


@dataclass(frozen=True, slots=True)
class DateRange:
    """Days [start, end], both inclusive, and the words of the question that named them."""

    start: date
    end: date
    text: str = ""

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


_YEAR_WORD = re.compile(r"\b(?:19|20)\d\d\b")
_MONTH_WORD = re.compile(rf"\b(?:{MONTH_PATTERN})\b", re.I)


def _years_and_months(text: str) -> tuple[set[str], set[int]]:
    months = {month_number(m.group()) for m in _MONTH_WORD.finditer(text) if m.group()[0].isupper()}
    return set(_YEAR_WORD.findall(text)), {m for m in months if m}


def all_outside(ranges: Sequence[DateRange], first: date, last: date) -> bool:
    """Whether there are date ranges, each named with its year, all clear of [first, last]."""
    # Without a year ("in July", "last year") the range is a guess from the newest article.
    return bool(ranges) and all(
        _YEAR_WORD.search(r.text) and (r.end < first or r.start > last) for r in ranges
    )


def mentions_time(text: str, named: DateRange) -> bool:
    """Whether `text` names a year in `named` and the months its words name ("March 2021")."""
    months = _years_and_months(named.text)[1]
    has_years, has_months = _years_and_months(text)
    in_range = any(named.start.year <= int(y) <= named.end.year for y in has_years)
    return in_range and months <= has_months


@dataclass(frozen=True, slots=True)
class Mention:
    """Characters [start, end) of the question that name something."""

    start: int
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class QueryPart:
    """One part of a question to retrieve for on its own: its words and the outlets it names."""

    text: str
    outlets: tuple[str, ...] = ()
    dates: tuple[DateRange, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedQuestion:
    """What the question says about which articles hold the answer."""

    text: str
    outlets: tuple[str, ...] = ()  # corpus source names, in order of first mention
    dates: tuple[DateRange, ...] = ()
    speakers: tuple[str, ...] = ()
    parts: tuple[QueryPart, ...] = ()
    outlet_mentions: tuple[Mention, ...] = field(default=(), repr=False)
    date_mentions: tuple[Mention, ...] = field(default=(), repr=False)

    @property
    def topic(self) -> str:
        """The question without the outlet names and dates (they describe articles, not text)."""
        return strip_mentions(self.text, (*self.outlet_mentions, *self.date_mentions))

    @property
    def asks_for_a_name(self) -> bool:
        """Whether the answer is a name the question does not give ("Which company ...?", "...,
        who ...?"), rather than a yes or no, or what a named person said."""
        return bool(_ASKS_FOR_A_NAME.search(self.text)) and not self.speakers


_ASKS_FOR_A_NAME = re.compile(r"^\W*(?:who|whom|whose|which|what)\b|,\s*(?:who|which|what)\b", re.I)


def strip_mentions(text: str, mentions: Iterable[Mention]) -> str:
    """`text` with the mentioned spans cut out and spacing tidied."""
    kept, position = [], 0
    for mention in sorted(mentions, key=lambda m: m.start):
        start, end = mention.start, mention.end
        # A quoted name goes with its quotes: "the 'Sporting News' article".
        if start > 0 and end < len(text) and text[start - 1] in _QUOTES and text[end] in _QUOTES:
            start, end = start - 1, end + 1
        if start >= position:
            kept.append(text[position:start])
            position = end
    kept.append(text[position:])
    joined = " ".join(kept)
    joined = re.sub(r"(?:^|(?<=\s))['‘’\"“”]+(?=\s|$)", " ", joined)  # quotes left alone
    joined = re.sub(r"\s+([,.?;:])", r"\1", joined)
    return re.sub(r"\s+", " ", joined).strip()


_QUOTES = "'‘’\"“”"


# Outlets ---------------------------------------------------------------------------------------

_CONNECTORS = {"the", "of", "and", "&", "|", "-", "–", "—", "for", "a", "on", "in"}
_TOKEN = re.compile(r"[^\s'‘’\"“”,;:?!()]+")
_MAX_OUTLET_WORDS = 10


def _key(words: Sequence[str]) -> str:
    """A loose name key: lower-case letters and digits only, no leading 'the', no final 's."""
    joined = "".join(words).lower()
    joined = re.sub(r"[’']s$", "", joined)
    key = re.sub(r"[^a-z0-9]", "", joined)
    return key.removeprefix("the") if len(key) > 6 and key.startswith("the") else key


def _aliases(outlet: str) -> set[str]:
    """Ways a question may name an outlet: the full name, and the name before ' | ' or ' - '."""
    names = {outlet}
    head = re.split(r"\s+[|\-–—:]\s+|:\s+", outlet)[0]
    if head and head != outlet:
        names.add(head)
    keys = {_key(_TOKEN.findall(name)) for name in names}
    return {key for key in keys if len(key) >= 3}


def _name_words(name: str) -> tuple[str, ...]:
    """A name's words in lower case, without a leading "the" or a final 's."""
    words = [re.sub(r"[’']s$", "", w).lower() for w in _TOKEN.findall(name)]
    words = [w for w in words if re.search(r"\w", w)]
    return tuple(words[1:] if len(words) > 1 and words[0] == "the" else words)


def _alias_words(outlet: str) -> list[tuple[str, ...]]:
    """The words of an outlet's names: whole, before a " | " or " - ", without ".com"."""
    head = re.split(r"\s+[|\-–—:]\s+|:\s+", outlet)[0]
    names = {outlet, head, re.sub(r"\.(?:com|net|org|co\.uk)$", "", head, flags=re.I)}
    return [words for words in map(_name_words, names) if words]


def _capitalised(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return not letters or letters[0].isupper()


def _distinctive(outlet: str) -> bool:
    """Names no ordinary word could be mistaken for: 'TechCrunch', 'CBSSports.com', 'BBC'."""
    return any(re.search(r"[a-z][A-Z]|[A-Z]{2}|\d|\.\w", word) for word in _TOKEN.findall(outlet))


# Words next to a name that make it an outlet even in lower case ("what did the verge say").
_CUE_BEFORE = re.compile(r"\b(?:according\s+to|reported\s+by|published\s+(?:by|in)|by)\s*$", re.I)
_CUE_AFTER = re.compile(
    r"^[’']?s?\s*(?:articles?|reports?|reported|reporting|story|stories|piece|coverage"
    rf"|{speech_verbs('outlet')})\b",
    re.I,
)


class OutletMatcher:
    """Finds a corpus's outlet names in questions, forgiving case, spacing and 'the'."""

    def __init__(self, outlets: Iterable[str]) -> None:
        self.outlets = tuple(dict.fromkeys(o for o in outlets if o))
        self._by_key: dict[str, list[str]] = {}
        self._any_case: set[str] = set()
        for outlet in self.outlets:
            for key in _aliases(outlet):
                self._by_key.setdefault(key, []).append(outlet)
                if _distinctive(outlet):
                    self._any_case.add(key)
        self._longest = _MAX_OUTLET_WORDS

    def holds(self, name: str) -> bool:
        """Whether `name`, an outlet a question names, is one of these outlets, a section or
        brand of one ("BBC Sport" beside "BBC News - Technology"), or its initials ("NYT")."""
        words = _name_words(name)
        if not words:
            return False
        key = _key(words)
        for outlet in self.outlets:
            for alias in _alias_words(outlet):
                shorter = min(len(alias), len(words))
                if alias[:shorter] == words[:shorter] or _key(alias) == key:
                    return True
                # One brand, another section: "FOX Business" beside "FOX News - Lifestyle".
                if alias[0] == words[0] and _distinctive(outlet.split()[0]):
                    return True
                if re.fullmatch(r"[A-Z]{2,5}", name) and "".join(w[0] for w in alias) == key:
                    return True
        return False

    def find(self, text: str) -> list[Mention]:
        """Outlet mentions in `text`, longest names first; one mention may name several outlets
        (e.g. "The Independent" names every "The Independent - ..." section)."""
        tokens = list(_TOKEN.finditer(text))
        mentions: list[Mention] = []
        i = 0
        while i < len(tokens):
            found = None
            for j in range(min(len(tokens), i + self._longest), i, -1):
                words = [t.group() for t in tokens[i:j]]
                if words[-1].lower() in _CONNECTORS:
                    continue
                key = _key(words)
                outlets = self._by_key.get(key)
                if not outlets:
                    continue
                # Ordinary words name an outlet only when capitalised ("The Age", not "the age
                # of 16") or next to a cue ("what did the verge say").
                start, end = tokens[i].start(), tokens[j - 1].end()
                if not (
                    key in self._any_case
                    or all(_capitalised(w) for w in words if w.lower() not in _CONNECTORS)
                    or _CUE_BEFORE.search(text[max(0, start - 25) : start])
                    or _CUE_AFTER.match(text[end : end + 20])
                ):
                    continue
                found = (j, outlets)
                break
            if found is None:
                i += 1
                continue
            j, outlets = found
            for outlet in outlets:
                mentions.append(Mention(tokens[i].start(), tokens[j - 1].end(), outlet))
            i = j
        return mentions


# Dates -----------------------------------------------------------------------------------------

_MONTH = rf"(?P<month>{MONTH_PATTERN})\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY_FORMS = (
    rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b",
    rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b",
    r"\b(?P<iso>(?:19|20)\d\d-\d\d-\d\d)\b",
)
_MONTH_FORMS = (
    rf"\b{_MONTH}(?:\s+(?:of\s+)?{_YEAR})\b",
    rf"\b(?:in|during|since|until|before|after)\s+(?:early\s+|late\s+|mid-?)?{_MONTH}(?!\s*\d)\b",
)
_YEAR_FORM = r"\b(?:in|during|since|until|before|after)\s+(?P<year>(?:19|20)\d\d)\b(?![-/])"
_UNITS = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "year": 365}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "few": 3,
    "couple of": 2,
    "several": 5,
}
_COUNT = (
    r"(?P<count>\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|few|couple of|several)"
)
_RELATIVE = (
    (r"\btoday\b", "today"),
    (r"\byesterday\b", "yesterday"),
    (r"\b(?:the\s+)?day\s+before\s+yesterday\b", "day before yesterday"),
    (r"\bthis\s+(?P<unit>week|month|year)\b", "this"),
    (r"\blast\s+(?P<unit>week|month|year)\b", "last"),
    (
        rf"\b(?:in|over|during|within)\s+the\s+(?:past|last)\s+(?:{_COUNT}\s+)?"
        r"(?P<unit>days?|weeks?|fortnight|months?|years?)\b",
        "past",
    ),
    (rf"\b(?:the\s+)?(?:past|last)\s+{_COUNT}\s+(?P<unit>days?|weeks?|months?|years?)\b", "past"),
    (rf"\b{_COUNT}\s+(?P<unit>days?|weeks?|months?|years?)\s+ago\b", "ago"),
)


def _month_range(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _latest_not_after(month: int, day: int, reference: date) -> date | None:
    """The date with this month and day in the reference year, or the year before if later."""
    for year in (reference.year, reference.year - 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= reference + timedelta(days=31):
            return candidate
    return None


def _verb_may(month: str, year: str | None) -> bool:
    """'may' in lower case and without a year is the verb, not the month."""
    return month == "may" and not year


@dataclass(frozen=True, slots=True)
class _DateHit:
    start: int
    end: int
    first: date
    last: date


def _absolute_dates(text: str, reference: date) -> list[_DateHit]:
    hits: list[_DateHit] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for pattern in _DAY_FORMS:
        for m in re.finditer(pattern, text, re.I):
            if not free(*m.span()):
                continue
            groups = m.groupdict()
            try:
                if groups.get("iso"):
                    day = date.fromisoformat(groups["iso"])
                else:
                    month = month_number(groups["month"]) or 0
                    if _verb_may(groups["month"], groups.get("year")):
                        continue
                    if groups.get("year"):
                        day = date(int(groups["year"]), month, int(groups["day"]))
                    else:
                        found = _latest_not_after(month, int(groups["day"]), reference)
                        if found is None:
                            continue
                        day = found
            except ValueError:
                continue
            taken.append(m.span())
            hits.append(_DateHit(m.start(), m.end(), day, day))
    for pattern in _MONTH_FORMS:
        for m in re.finditer(pattern, text, re.I):
            span = m.span("month")[0], m.end()
            if not free(*span):
                continue
            groups = m.groupdict()
            if _verb_may(groups["month"], groups.get("year")):
                continue
            month = month_number(groups["month"]) or 0
            year = int(groups["year"]) if groups.get("year") else reference.year
            if not groups.get("year") and date(year, month, 1) > reference:
                year -= 1
            first, last = _month_range(year, month)
            taken.append(span)
            hits.append(_DateHit(span[0], span[1], first, last))
    for m in re.finditer(_YEAR_FORM, text, re.I):
        if free(*m.span("year")):
            year = int(m.group("year"))
            taken.append(m.span("year"))
            hits.append(
                _DateHit(m.start("year"), m.end("year"), date(year, 1, 1), date(year, 12, 31))
            )
    return sorted(hits, key=lambda h: h.start)


def _relative_dates(text: str, reference: date) -> list[_DateHit]:
    hits: list[_DateHit] = []
    for pattern, kind in _RELATIVE:
        for m in re.finditer(pattern, text, re.I):
            if any(not (m.end() <= h.start or m.start() >= h.end) for h in hits):
                continue
            groups = m.groupdict()
            unit = (groups.get("unit") or "day").lower().rstrip("s")
            count = _NUMBERS.get((groups.get("count") or "one").lower())
            if count is None:
                count = int(groups["count"])
            if kind == "today":
                first = last = reference
            elif kind == "yesterday":
                first = last = reference - timedelta(days=1)
            elif kind == "day before yesterday":
                first = last = reference - timedelta(days=2)
            elif kind == "this":
                first, last = _calendar_unit(reference, unit, 0), reference
            elif kind == "last":
                first = _calendar_unit(reference, unit, 1)
                last = _calendar_unit(reference, unit, 0) - timedelta(days=1)
            elif kind == "past":
                first, last = reference - timedelta(days=_UNITS[unit] * count), reference
            else:  # "N units ago": that day, give or take a little of the unit
                middle = reference - timedelta(days=_UNITS[unit] * count)
                slack = timedelta(days=max(1, _UNITS[unit] // 2) if unit != "day" else 0)
                first, last = middle - slack, min(middle + slack, reference)
            hits.append(_DateHit(m.start(), m.end(), first, last))
    return hits


def _calendar_unit(reference: date, unit: str, back: int) -> date:
    """First day of the week/month/year `back` units before the one holding `reference`."""
    if unit == "week":
        return reference - timedelta(days=reference.weekday() + 7 * back)
    if unit == "month":
        month_index = reference.year * 12 + reference.month - 1 - back
        return date(month_index // 12, month_index % 12 + 1, 1)
    if unit == "year":
        return date(reference.year - back, 1, 1)
    return reference - timedelta(days=back)


_BETWEEN = re.compile(r"\b(?:between|from)\s*$", re.I)
_AND_TO = re.compile(r"^\s*(?:and|to|until|through|-|–)\s*$", re.I)
_BEFORE = re.compile(r"\b(?:before|until|prior\s+to|by)\s*$", re.I)
_AFTER = re.compile(r"\b(?:after|since|from)\s*$", re.I)


def find_dates(text: str, *, reference: date) -> list[tuple[Mention, DateRange]]:
    """Dates and date ranges a question names, absolute or relative to `reference`."""
    hits = sorted(
        _absolute_dates(text, reference) + _relative_dates(text, reference), key=lambda h: h.start
    )
    found: list[tuple[Mention, DateRange]] = []
    i = 0
    while i < len(hits):
        hit = hits[i]
        before = text[max(0, hit.start - 20) : hit.start]
        nxt = hits[i + 1] if i + 1 < len(hits) else None
        if nxt and _BETWEEN.search(before) and _AND_TO.match(text[hit.end : nxt.start]):
            start = hit.start - len(before) + _BETWEEN.search(before).start()  # type: ignore[union-attr]
            first, last = min(hit.first, nxt.first), max(hit.last, nxt.last)
            found.append(
                (Mention(start, nxt.end, ""), DateRange(first, last, text[start : nxt.end]))
            )
            i += 2
            continue
        start, first, last = hit.start, hit.first, hit.last
        if (m := _BEFORE.search(before)) is not None:
            start, first, last = hit.start - len(before) + m.start(), date(1900, 1, 1), hit.first
            last -= timedelta(days=1)
        elif (m := _AFTER.search(before)) is not None and not _BETWEEN.search(before):
            start, first, last = hit.start - len(before) + m.start(), hit.last, date(2999, 12, 31)
            first += timedelta(days=1)
        found.append((Mention(start, hit.end, ""), DateRange(first, last, text[start : hit.end])))
        i += 1
    return found


# Speakers --------------------------------------------------------------------------------------


def find_speakers(text: str, *, exclude: Iterable[Mention] = ()) -> list[Mention]:
    """People whose words the question asks about ("what did X say", "according to X", ...)."""
    blocked = list(exclude)
    found: dict[str, Mention] = {}
    for start, end, name in question_speakers(text):
        if any(not (end <= b.start or start >= b.end) for b in blocked):
            continue
        found.setdefault(name, Mention(start, end, name))
    return sorted(found.values(), key=lambda m: m.start)


def asked_speaker(question: str) -> str:
    """The person a question asks about ("What did Lavrov say about X?" -> "Lavrov"), or ""."""
    speakers = find_speakers(question)
    return speakers[0].value if speakers else ""


# Parts -----------------------------------------------------------------------------------------

_AUX = r"(?:also|then|did|does|do|was|were|is|are|has|have|had|may|might|can|could|will|would)"
_CLAUSE_BREAK = re.compile(
    r",?\s+(?:(?:while|whereas|but|compared\s+(?:to|with)|in\s+contrast\s+to|as\s+opposed\s+to"
    r"|as\s+well\s+as|after|before|and\s+(?:whether|if))\s+"
    rf"|and\s+(?=(?:{_AUX}|the|what|who|which|how)\s))"
    r"|;\s+|,\s+and\s+(?=\w+ed\s)",
    re.I,
)
_MIN_PART_WORDS = 4


def split_parts(
    text: str, outlet_mentions: Sequence[Mention], date_ranges: Sequence[tuple[Mention, DateRange]]
) -> list[QueryPart]:
    """Clauses of a question that each ask for their own evidence, with the outlets and dates
    that each names; a question of one clause gives no parts."""
    spans, begin = [], 0
    for m in _CLAUSE_BREAK.finditer(text):
        spans.append((begin, m.start()))
        begin = m.end()
    spans.append((begin, len(text)))
    parts: list[QueryPart] = []
    for a, b in spans:
        outlets = tuple(dict.fromkeys(m.value for m in outlet_mentions if a <= m.start < b))
        dates = tuple(r for m, r in date_ranges if a <= m.start < b)
        own = [
            Mention(m.start - a, min(m.end, b) - a, m.value)
            for m in (*outlet_mentions, *(m for m, _ in date_ranges))
            if a <= m.start < b
        ]
        words = strip_mentions(text[a:b], own)
        if len(re.findall(r"\w+", words)) < _MIN_PART_WORDS:
            if parts and (outlets or dates):  # a dangling outlet or date belongs to the clause
                last = parts[-1]
                parts[-1] = QueryPart(last.text, last.outlets + outlets, last.dates + dates)
            continue
        parts.append(QueryPart(words, outlets, dates))
    return parts if len(parts) > 1 else []


def parse_question(
    text: str, *, outlets: Iterable[str] | OutletMatcher = (), reference: date | None = None
) -> ParsedQuestion:
    """Read outlets, dates, speakers and parts from a question, with no LLM."""
    matcher = outlets if isinstance(outlets, OutletMatcher) else OutletMatcher(outlets)
    reference = reference or date.today()
    outlet_mentions = matcher.find(text)
    dated = find_dates(text, reference=reference)
    date_mentions = [m for m, _ in dated]
    speakers = find_speakers(text, exclude=outlet_mentions)
    return ParsedQuestion(
        text=text,
        outlets=tuple(dict.fromkeys(m.value for m in outlet_mentions)),
        dates=tuple(r for _, r in dated),
        speakers=tuple(m.value for m in speakers),
        parts=tuple(split_parts(text, outlet_mentions, dated)),
        outlet_mentions=tuple(outlet_mentions),
        date_mentions=tuple(date_mentions),
    )
