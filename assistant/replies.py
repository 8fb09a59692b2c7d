"""Transcript replies: which reply of the person asked about answers the question (its
reporter's question on the topic, its best sentences, a reply that names the topic), and the
words of it to quote, as they run on across the excerpts that cut it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from assistant.citations import Unit
from assistant.speakers import Turn

if TYPE_CHECKING:
    from assistant.extractive import Candidate


def prompted_by_meaning(shortlist: Sequence[Candidate], topic: set[str]) -> None:
    """A reply is on the topic as far as the reporter's question before it is, by meaning too
    ("Does the President have a stand on whether athletes should ..." for "athletes speaking
    out"). Turns are matched in article offsets: the question may sit in another excerpt."""
    asked: dict[tuple[str, int], float] = {}
    for c in shortlist:
        found = _article_turn(c) if c.question else None
        if found is not None:
            key = (c.passage.article_id, found[0][found[1]].start)
            words = len(topic & c.words) / len(topic) if topic else 0.0
            asked[key] = max(asked.get(key, 0.0), c.topic, words)
    if not asked:
        return
    # An article's turns as far as any of its passages holds them: a reply's question may sit
    # in another excerpt of the article than the reply.
    known: dict[str, dict[int, Turn]] = {}
    for c in shortlist:
        known.setdefault(c.passage.article_id, {}).update((t.start, t) for t in c.passage.turns)
    held = {a: sorted(turns.values(), key=lambda t: t.start) for a, turns in known.items()}
    for c in shortlist:
        found = _article_turn(c, held[c.passage.article_id]) if c.by_asked else None
        if found is None or found[1] == 0:
            continue
        turns, i = found
        before = turns[i - 1]
        if before.is_question and before.end >= turns[i].start:
            prompt = asked.get((c.passage.article_id, before.start), 0.0)
            c.prompted = max(c.prompted, prompt)
            c.topic = max(c.topic, prompt)


def _article_turn(
    c: Candidate, turns: Sequence[Turn] | None = None
) -> tuple[Sequence[Turn], int] | None:
    """The article's turns near the candidate (its passage's, or `turns`) and the index of the
    one holding it."""
    turns = c.passage.turns if turns is None else turns
    position = c.passage.article_offset(c.unit.start)
    for i, turn in enumerate(turns):
        if turn.start <= position < turn.end:
            return turns, i
    return None


def best_reply(
    candidates: Sequence[Candidate],
    *,
    floor: float = 0.45,
    dated_floor: float = 0.3,
    max_words: int = 110,
) -> list[Candidate]:
    """Asked what someone said on a topic, in a transcript: their reply to the reporter's
    question most on that topic (at least `floor` of it; `dated_floor` on the day the question
    names, which says much of which reply), quoted from its best sentence on (`reply_quote`)."""
    replies: dict[tuple[str, int], list[Candidate]] = {}
    for c in candidates:
        wanted = dated_floor if c.dated else floor
        if c.by_asked and c.prompted >= wanted and c.attribution is not None and not cut_off(c):
            found = _article_turn(c)
            if found is not None:  # a turn may be cut over two excerpts: one reply still
                replies.setdefault((c.passage.article_id, found[0][found[1]].start), []).append(c)
    if not replies:
        return []
    if any(g[0].dated for g in replies.values()):  # "on January 31": that day's replies
        replies = {key: g for key, g in replies.items() if g[0].dated}
    reply = max(replies.values(), key=_reply_value)
    reply = _with_substance(reply, list(replies.values()))
    return [_joined(piece) for piece in reply_quote(reply, max_words)]


def reply_quote(
    reply: Sequence[Candidate], max_words: int, max_pieces: int = 2
) -> list[list[Candidate]]:
    """The reply's words from its best sentence on, in article order, up to `max_words`: in
    pieces of sentences that run on in one passage (one quote a piece), a new piece where the
    excerpts left a sentence out or the next passage takes the reply on."""
    best = max(reply, key=lambda c: c.score)
    ordered: dict[int, Candidate] = {}  # by article offset: a sentence two passages hold, once
    for c in sorted(reply, key=lambda c: c.passage is not best.passage):
        ordered.setdefault(c.passage.article_offset(c.unit.start), c)
    units = [ordered[k] for k in sorted(ordered)]
    first = units.index(best)
    pieces, words = [[units[first]]], len(units[first].unit.text.split())
    for c in units[first + 1 :]:
        if words + len(c.unit.text.split()) > max_words:
            break
        last = pieces[-1][-1]
        gap = c.passage.article_offset(c.unit.start) - last.passage.article_offset(last.unit.end)
        runs_on = (
            c.passage is last.passage and not c.passage.text[last.unit.end : c.unit.start].strip()
        )
        if runs_on and gap <= _RUN_ON:
            pieces[-1].append(c)
        elif len(pieces) < max_pieces:
            pieces.append([c])
        else:
            break
        words += len(c.unit.text.split())
    while len(pieces) > 1 or len(pieces[0]) > 1:
        if len(pieces[-1][-1].unit.text.split()) >= 4:
            break
        pieces[-1].pop()  # "Go ahead.": the floor passed to the next reporter
        if not pieces[-1]:
            pieces.pop()
    return pieces


def cut_off(c: Candidate) -> bool:
    """Words broken off ("I —.", "Does the Defense Department —."): they say nothing."""
    text = c.unit.display().rstrip(' .”"')
    return text.endswith(("—", "–", "-")) or len(text.split()) < 3


_RUN_ON = 3  # characters between two sentences of a reply that run on (spaces, a line break)


def _reply_value(reply: Sequence[Candidate], best: int = 3) -> float:
    """How well a reply answers: its question's share of the topic, how its best few sentences
    score (a reply on the topic says more than one thing about it), and whether it names the
    topic itself (a question on two topics gets a reply on one of them)."""
    scores = sorted((c.score for c in reply), reverse=True)[:best]
    prompted = max(c.prompted for c in reply)
    named = set().union(*(c.topic_words for c in reply))
    return prompted + sum(scores) / len(scores) + 0.3 * min(1.0, len(named) / 2)


_EXCHANGE = 1500  # characters of a transcript within which a follow-up stays on one topic


def _with_substance(
    reply: list[Candidate], replies: Sequence[list[Candidate]], *, min_words: int = 8
) -> list[Candidate]:
    """A reply too short to say anything ("I have seen those reports.") gives way to the same
    speaker's next reply on the topic in that exchange, after the reporter follows up."""
    if sum(len(c.unit.text.split()) for c in reply) >= min_words:
        return reply
    article = reply[0].passage.article_id

    def start(group: Sequence[Candidate]) -> int:
        return min(c.passage.article_offset(c.unit.start) for c in group)

    at = start(reply)
    later = [
        (start(g), g)
        for g in replies
        if g[0].passage.article_id == article and at < start(g) <= at + _EXCHANGE
    ]
    return min(later, key=lambda pair: pair[0])[1] if later else reply


def _joined(units: Sequence[Candidate]) -> Candidate:
    """Consecutive units of one speaker's turn as one candidate (one quote, one citation)."""
    first, last = units[0], units[-1]
    if len(units) == 1 or first.attribution is None or last.attribution is None:
        return first
    text = first.passage.text
    unit = Unit(
        first.unit.passage, first.unit.start, last.unit.end, text[first.unit.start : last.unit.end]
    )
    attribution = replace(first.attribution, quote_end=last.attribution.quote_end)
    return replace(first, unit=unit, attribution=attribution, words=first.words | last.words)
