"""Yes/no questions that compare reports ("Did X report ... before Y ...?", "Do both A and B
say ...?"): the evidence side by side, one sentence per outlet named, and a verdict only
where it follows mechanically (two dates compared; each part found or not)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from assistant.citations import passage_units
from assistant.query import Mention
from assistant.retrieve import Passage
from index.keyword import keyword_tokens

_YES_NO = re.compile(r"^\W*(?:did|does|do|is|are|was|were|has|have|had)\b", re.I)
# Words that make a question a judgement of meaning, which no date or word count settles.
_JUDGEMENT = re.compile(
    r"\b(?:consisten\w*|inconsisten\w*|change[sd]?|contradict\w*|agree\w*|disagree\w*|same|"
    r"differ\w*|similar\w*|align\w*|alter\w*|maintain\w*|shift\w*|remain\w*|fail\w*|not|no|"
    r"never|without)\b",
    re.I,
)
_PAST = re.compile(r"^\W*(?:did|was|were|had|has)\b", re.I)
_ORDER = re.compile(r"\b(?P<word>before|after|earlier\s+than|later\s+than)\b", re.I)
_REPORTING = re.compile(
    r"\b(?:report\w*|publish\w*|cover\w*|articles?|mention\w*|discuss\w*|highlight\w*|"
    r"announc\w*|wrote|detail\w*|describ\w*)\b",
    re.I,
)
_DATE_AFTER = re.compile(
    r"^\s*(?:\d|the\s+\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))", re.I
)
_BOTH = re.compile(
    r"^\W*(?:do|does|did)\s+both\b|\bboth\b[^?]*\b(?:report|say|state|mention)", re.I
)
# A part counts as found when a sentence of its outlet holds this share of its words ...
FOUND = 0.6
# ... and as clearly not found when the best sentence of several holds less than this.
NOT_FOUND = 0.15


@dataclass(frozen=True, slots=True)
class Side:
    """The sentence that best stands for one outlet's report: [start, end) of a passage's text."""

    label: str  # the outlet, as the question names it
    passage: Passage
    start: int
    end: int
    overlap: float  # share of its part's words in the sentence
    passages: int  # how many retrieved passages the outlet has


@dataclass(frozen=True, slots=True)
class Comparison:
    """The evidence for each part of the question, side by side, and the verdict if any."""

    sides: tuple[Side, ...]
    verdict: str = ""  # "yes", "no" or ""
    order: str = ""  # for "before or after" questions: "before" or "after" (A against B)


def is_yes_no(question: str) -> bool:
    return bool(_YES_NO.match(question))


def compare(
    question: str, passages: Sequence[Passage], outlet_mentions: Sequence[Mention]
) -> Comparison | None:
    """The side-by-side evidence for a yes/no question naming two or more outlets, or two
    events in order ("Did the President sign S. 2959 before H.R. 1192?"), else None."""
    if not is_yes_no(question):
        return None
    if not outlet_mentions:
        return _events_in_order(question, passages)
    mentions = sorted(outlet_mentions, key=lambda m: m.start)
    used: set[str] = set()
    sides: list[Side] = []
    for i, mention in enumerate(mentions):
        part = question[mention.end : mentions[i + 1].start if i + 1 < len(mentions) else None]
        if len(keyword_tokens(part)) < 2:  # "both A and B say that ...": the claim is shared
            part = question[mentions[-1].end :]
        side = _best_side(mention.value, part, passages, used)
        if side is not None:
            sides.append(side)
            used.add(side.passage.article_id)
    order = _ordered_parts(question, mentions)
    if order is not None:
        first, second, _ = order
        side_b = _best_side(first.value, second, passages, {s.passage.article_id for s in sides})
        if len(sides) == 1 and side_b is not None:
            sides.append(side_b)  # the second report is by the same outlet
    if len(sides) < 2:
        return None
    return Comparison(tuple(sides), *_verdict(question, sides, order))


# What tells one event from another in "Did A ... before B ...?": numbers ("S. 2959", "H.R.
# 1192") and names, not the words both parts share ("the President").
_MARK = re.compile(r"\b(?:[A-Z][\w.'’-]*\s+)*\d[\w.,-]*|\b[A-Z][a-z][\w'’-]*(?:\s+[A-Z][\w'’-]+)*")


def _events_in_order(question: str, passages: Sequence[Passage]) -> Comparison | None:
    """ "Did A ... before B ...?" about two things named in the archive: the article that
    names each, side by side, and the order of their dates."""
    match, opening = _ORDER.search(question), _PAST.match(question)
    if match is None or opening is None or _DATE_AFTER.match(question[match.end() :]):
        return None
    head, tail = question[: match.start()], question[match.end() :]
    marks_a = {m.group().strip() for m in _MARK.finditer(head, opening.end())}
    marks_b = {m.group().strip() for m in _MARK.finditer(tail)}
    marks_a, marks_b = marks_a - marks_b, marks_b - marks_a
    if not marks_a or not marks_b:
        return None
    side_a = _naming_side(sorted(marks_a), head, passages, set())
    used = {side_a.passage.article_id} if side_a else set()
    side_b = _naming_side(sorted(marks_b), tail, passages, used)
    if side_a is None or side_b is None:
        return None
    order = (Mention(match.start(), match.end(), ""), tail, match.group("word").lower())
    return Comparison((side_a, side_b), *_verdict(question, (side_a, side_b), order))


def _naming_side(
    marks: Sequence[str], part: str, passages: Sequence[Passage], used: set[str]
) -> Side | None:
    """The best sentence of the first article (in rank) whose text names every mark."""
    for passage in passages:
        if passage.article_id not in used and all(m in passage.text for m in marks):
            side = _best_side(passage.source, part, [passage], used)
            if side is not None and all(m in passage.text[side.start : side.end] for m in marks):
                return side
    return None


def _best_side(outlet: str, part: str, passages: Sequence[Passage], used: set[str]) -> Side | None:
    """The sentence of the outlet's passages that shares most words with `part`."""
    wanted = set(keyword_tokens(part))
    own = [p for p in passages if p.source.lower() == outlet.lower()]
    best: Side | None = None
    for passage in own:
        if passage.article_id in used:
            continue
        for unit in passage_units(passage, 0):
            words = set(keyword_tokens(unit.text))
            overlap = len(wanted & words) / len(wanted) if wanted else 0.0
            if best is None or overlap > best.overlap:
                best = Side(outlet, passage, unit.start, unit.end, overlap, len(own))
    return best


def _ordered_parts(question: str, mentions: Sequence[Mention]) -> tuple[Mention, str, str] | None:
    """For "Did A ... before B ...?": A's outlet mention, B's words and "before"/"after"."""
    for match in _ORDER.finditer(question):
        if _DATE_AFTER.match(question[match.end() :]):
            continue  # "before December 5": a date, not another report
        ahead = [m for m in mentions if m.end <= match.start()]
        later = question[match.end() : match.end() + 80]
        reported = _REPORTING.search(later) or any(
            match.end() <= m.start < match.end() + 80 for m in mentions
        )
        if ahead and reported:
            word = (
                "before" if match.group("word").lower() in ("before", "earlier than") else "after"
            )
            return ahead[0], question[match.end() :], word
    return None


def _verdict(
    question: str, sides: Sequence[Side], order: tuple[Mention, str, str] | None
) -> tuple[str, str]:
    """(verdict, order): dates compared for before/after; each part found for "both"."""
    if _JUDGEMENT.search(question):
        return "", ""
    if order is not None and _PAST.match(question):
        first, second = _day(sides[0].passage), _day(sides[1].passage)
        if first is None or second is None or first == second:
            return "", ""
        happened = "before" if first < second else "after"
        if re.search(r"\bbefore\s+or\s+after\b|\bafter\s+or\s+before\b", question, re.I):
            return "", happened
        return ("yes" if happened == order[2] else "no"), ""
    if _BOTH.search(question):
        if all(s.overlap >= FOUND for s in sides):
            return "yes", ""
        if any(s.overlap < NOT_FOUND and s.passages >= 2 for s in sides):
            return "no", ""
    return "", ""


def _day(passage: Passage) -> date | None:
    try:
        return date.fromisoformat(passage.published[:10])
    except ValueError:
        return None
