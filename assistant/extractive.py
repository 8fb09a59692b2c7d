"""Extractive answers: the retrieved sentences that answer the question, attributed and cited."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from assistant.answer import format_date
from assistant.citations import Evidence, Unit
from assistant.replies import best_reply, cut_off, prompted_by_meaning
from assistant.retrieve import Passage
from assistant.speakers import (
    ReporterQuestions,
    Turn,
    asks_what_was_said,
    attributed_to,
    name_tokens,
    passage_turns,
    same_speaker,
    speaking_pattern,
    strip_titles,
    turn_at,
)
from index.chunking import quote_marks
from index.keyword import keyword_tokens

# Extractive answers score the sentences of the best few passages only: embedding every
# sentence of all top-k passages costs more time than the lower passages give answers.
SENTENCE_PASSAGES = 5
# ... and of those, only the units that cheap signals rank best are embedded.
EMBEDDED_UNITS = 16
# A sentence with at least this many content words, all but a fifth of them in another chosen
# sentence, repeats it.
_MIN_REPEAT_WORDS = 6


def question_topic(question: str, speaker: str) -> str:
    """What a "what did X say about T?" question is about (T), or the question itself."""
    if not speaker:
        return question
    match = _REPLY_TOPIC.search(question) or re.search(
        r"\b(?:about|on|regarding|concerning|of)\s+(?P<topic>.+?)\s*\??$", question
    )
    return match.group("topic") if match else question


# "How did X answer whether ...", "respond to questions about ...": what follows is the topic.
_REPLY_TOPIC = re.compile(
    r"\b(?:respond|react|reply|answer)\s+(?:to\s+)?(?:(?:a\s+)?questions?\s+(?:about|on)\s+)?"
    r"(?P<topic>(?:whether|if|that|the|a|an|his|her|their|questions?)\b.+?)\s*\??$",
    re.I,
)


# Attribution of quotes inside an article: a speaker named by these words is described, not named
# ("the Russian foreign minister said").
_DESCRIPTION_WORDS = frozenset(
    """he she they it diplomat minister secretary spokesman spokeswoman spokesperson official
    officials president leader chief head ambassador envoy source sources adviser advisor
    statement ministry department representative lawmaker senator governor""".split()
)


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a unit quotes, and where the quoted words are (offsets in the passage text)."""

    speaker: str
    quote_start: int
    quote_end: int
    question: bool = False  # a reporter's question in a transcript: never an answer


def attribute(
    unit: Unit,
    passage: Passage,
    *,
    asked: str = "",
    previous: str = "",
    named: bool = False,
    turns: Sequence[Turn] | None = None,
) -> Attribution | None:
    """The speaker of a unit that is a quotation or a transcript speaker's words, if it is one.
    `named`: the person asked about is named in the article (in any of its passages).
    `turns`: the passage's speaker turns (speakers.passage_turns), when already known."""
    text = passage.text
    turn = turn_at(passage_turns(passage) if turns is None else turns, unit.start)
    if turn is not None and unit.end > turn.body:
        start, end = _trim(text, max(unit.start, turn.body), min(unit.end, turn.end))
        if end <= start:
            return None
        return Attribution(turn.speaker, start, end, question=turn.is_question)
    quote = _outer_quote(text, unit.start, unit.end)
    if quote is None:
        return None
    q_start, q_end, before, after = quote
    who = attributed_to(before, after)
    if not who:
        return None
    speaker = _resolve(who, passage, asked=asked, previous=previous, named=named)
    q_end = q_end - 1 if text[q_end - 1] == "," else q_end
    return Attribution(speaker, q_start, q_end) if speaker else None


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _outer_quote(text: str, start: int, end: int) -> tuple[int, int, str, str] | None:
    """The quotation making up most of text[start:end]: its inner span, and the text
    before and after it."""
    depth, first = 0, -1
    for i, opening in quote_marks(text, start, end):
        if opening:
            first = i if depth == 0 and first < 0 else first
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0 and first >= 0:
                if (i - first) < 0.6 * (end - start) - 80:
                    return None  # a few quoted words inside reported speech
                return first + 1, i, text[start:first], text[i + 1 : end]
    return None


def _resolve(who: str, passage: Passage, *, asked: str, previous: str, named: bool) -> str:
    """A name for the speaker: as written when it is a name; else the person last named; else
    the person asked about when the article names them ("the Russian foreign minister")."""
    who = " ".join(who.split()).strip(" ,")
    words = who.split()
    description = (
        not words
        or words[0].lower() in ("the", "a", "an", "he", "she", "they", "his", "her", "its")
        or words[-1].lower().strip(".,") in _DESCRIPTION_WORDS
        or not words[-1][0].isupper()
    )
    if not description:
        return strip_titles(who)
    if previous:
        return previous
    if asked and (named or names_in(asked, passage)):
        return strip_titles(asked)
    return who[0].upper() + who[1:]


def names_in(who: str, passage: Passage) -> bool:
    return bool(name_tokens(who) & set(_words(passage.text + " " + passage.title)))


def _words(text: str) -> list[str]:
    return [w.lower().removesuffix("'s").removesuffix("’s") for w in re.findall(r"[\w'’]+", text)]


@dataclass
class Candidate:
    """A unit of the evidence with how well it answers the question."""

    row: int  # index into evidence.units
    unit: Unit
    passage: Passage
    relevance: float  # question match alone: what refusal is decided on
    score: float  # relevance with the bonuses used for choosing and ordering
    attribution: Attribution | None
    by_asked: bool
    words: set[str]  # its keyword terms
    vector: np.ndarray | None = None
    topic: float = 0.0  # like relevance, against the question's topic alone (its last vector)
    # The share of the topic's words in the reporter's question this unit replies to, if any.
    prompted: float = 0.0
    dated: bool = False  # from an article of the day(s) the question names
    reports_asked: bool = False  # reports the asked person's words: "Lavrov said Moscow ..."
    topic_words: frozenset[str] = frozenset()  # the topic's words it holds itself

    @property
    def question(self) -> bool:
        """A reporter's question in a transcript: context at most, never an answer."""
        return self.attribution is not None and self.attribution.question


def rank_candidates(
    question: str,
    evidence: Evidence,
    question_vectors: np.ndarray,
    *,
    speaker: str = "",
    embed_limit: int = EMBEDDED_UNITS,
    days: Sequence[tuple[date, date]] = (),
) -> list[Candidate]:
    """The units of the evidence worth embedding, best answer first.

    Units are first ranked by cheap signals (shared words, the passage's rank, a quote of the
    person asked about); only the best `embed_limit` are embedded and scored by meaning."""
    if not evidence.units:
        return []
    asked_words = set(keyword_tokens(" ".join(name_tokens(speaker)))) if speaker else set()
    surname = strip_titles(speaker).split()[-1] if speaker.split() else ""
    reporting = speaking_pattern(surname) if surname else None  # "Lavrov said Moscow ..."
    wanted = set(keyword_tokens(question)) - asked_words
    # An excerpt may skip the sentence that names the speaker of its quotes; another excerpt of
    # the same article may hold it.
    naming = {p.article_id for p in evidence.passages if speaker and names_in(speaker, p)}
    topic_words = set(keyword_tokens(question_topic(question, speaker))) - asked_words
    drafts: list[tuple[float, Candidate]] = []
    previous_speaker: dict[int, str] = {}
    turns = [passage_turns(p) for p in evidence.passages]
    asked_before = ReporterQuestions(
        [p.text for p in evidence.passages], turns, topic_words or wanted
    )
    for row, unit in enumerate(evidence.units):
        passage = evidence.passages[unit.passage]
        attribution = attribute(
            unit,
            passage,
            asked=speaker,
            previous=previous_speaker.get(unit.passage, ""),
            named=passage.article_id in naming,
            turns=turns[unit.passage],
        )
        if attribution is not None and not attribution.question:
            previous_speaker[unit.passage] = attribution.speaker
        words = evidence.tokens[row]
        overlap = len(wanted & words) / len(wanted) if wanted else 0.0
        reporter = attribution is not None and attribution.question
        # In a briefing, a reply is on the topic of the reporter's question before it, even
        # when it never repeats the topic's words ("So, this disclaimer — it's a positive step").
        prompted = 0.0 if reporter else asked_before.share(unit.passage, unit.start)
        overlap = max(overlap, 0.8 * prompted)
        by_asked = (
            attribution is not None
            and not attribution.question
            and same_speaker(speaker, attribution.speaker)
        )
        # Quotes of the person asked about first; then sentences that at least name them.
        adjust = 0.08 if by_asked else 0.04 if asked_words & words else 0.0
        adjust += 0.03 / (1 + unit.passage)
        dated = bool(days) and _published_within(passage, days)
        if dated:
            adjust += 0.15  # "What did Psaki say on January 18 ...": that day's briefing
        adjust -= _shape_penalty(unit.text, reporter)
        candidate = Candidate(row, unit, passage, overlap, adjust, attribution, by_asked, words)
        candidate.prompted = prompted
        candidate.reports_asked = bool(
            reporting and not reporter and not by_asked and reporting.search(unit.text)
        )
        candidate.dated = dated
        candidate.topic_words = frozenset(topic_words & words)
        drafts.append((overlap + 2 * adjust + 0.1 / (1 + unit.passage), candidate))
    drafts.sort(key=lambda d: -d[0])
    # Every quote of the person asked about is weighed by meaning: it may answer in other words.
    # ... and, asked what someone said, the reporters' questions they reply to.
    shortlist = [
        c
        for i, (_, c) in enumerate(drafts)
        if i < embed_limit or c.by_asked or (speaker and c.question)
    ]
    _weigh_by_meaning(shortlist, evidence, question_vectors)
    if speaker:
        prompted_by_meaning(shortlist, topic_words or wanted)
    return sorted(shortlist, key=lambda c: -c.score)


def _shape_penalty(text: str, reporter: bool) -> float:
    """Less for what answers nothing alone ("Yes, absolutely."), rambles, or asks."""
    n_words = len(text.split())
    penalty = (0.2 if n_words < 5 else 0.1) if n_words < 8 else 0.05 if n_words > 120 else 0.0
    if text.rstrip(' "”’').endswith("?") or reporter:
        penalty += 0.1
    return penalty


def _weigh_by_meaning(
    shortlist: Sequence[Candidate], evidence: Evidence, question_vectors: np.ndarray
) -> None:
    """Relevance and topic by meaning (0.7 of the cosine) beside the shared words (0.3)."""
    vectors = evidence.vectors.embed([c.unit.display() for c in shortlist])
    cosines = vectors @ question_vectors.T
    semantic = cosines.max(axis=1)
    for candidate, vector, similarity, on_topic in zip(
        shortlist, vectors, semantic, cosines[:, -1], strict=True
    ):
        candidate.vector = vector
        candidate.topic = max(0.7 * float(on_topic) + 0.3 * candidate.relevance, candidate.prompted)
        candidate.relevance = 0.7 * float(similarity) + 0.3 * candidate.relevance
        candidate.score = candidate.relevance + candidate.score


def _published_within(passage: Passage, days: Sequence[tuple[date, date]]) -> bool:
    try:
        published = date.fromisoformat(passage.published[:10])
    except ValueError:
        return False
    return any(first <= published <= last for first, last in days)


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of an extractive answer and the span it cites (offsets in the passage)."""

    text: str  # without its marker
    passage: Passage
    start: int
    end: int


def choose_sentences(
    candidates: Sequence[Candidate],
    *,
    max_sentences: int = 3,
    max_words: int = 160,
    margin: float = 0.12,
    quote_margin: float = 0.35,
    quote_floor: float = 0.35,
) -> list[Candidate]:
    """A few of the best candidates: no repeats or near-repeats, within a word budget. Asked
    what someone said, more of their quotes come in from further below the best (`quote_margin`)
    as long as they still bear on the question (relevance `quote_floor`)."""
    answers = [c for c in candidates if not c.question]
    if not answers:
        return []
    # Asked what someone said: their own words on the question first, others' after.
    own = [c for c in answers if (c.by_asked or c.reports_asked) and c.relevance >= quote_floor]
    if own:
        first = {id(c) for c in own}
        candidates = own + [c for c in candidates if id(c) not in first]
        answers = [c for c in candidates if not c.question]
    best = answers[0].score
    chosen = best_reply(candidates)
    words = sum(len(c.unit.text.split()) for c in chosen)
    for candidate in candidates:
        if len(chosen) >= max_sentences:
            break
        if candidate.question or cut_off(candidate):
            continue
        if chosen and chosen[0].prompted and max(candidate.topic, candidate.prompted) < 0.45:
            continue  # beside the reply to the question on the topic, only words on it too
        if candidate.score < best - margin and not (
            candidate.by_asked
            and candidate.score >= best - quote_margin
            and candidate.relevance >= quote_floor
        ):
            continue
        n_words = len(candidate.unit.text.split())
        if chosen and words + n_words > max_words:
            continue
        if any(_repeats(candidate, other) for other in chosen):
            continue
        chosen.append(candidate)
        words += n_words
    return chosen


def _repeats(a: Candidate, b: Candidate) -> bool:
    """The same article text (overlapping chunks) or nearly the same sentence."""
    if a.passage.article_id == b.passage.article_id:
        a_start, a_end = (
            a.passage.article_offset(a.unit.start),
            a.passage.article_offset(a.unit.end),
        )
        b_start, b_end = (
            b.passage.article_offset(b.unit.start),
            b.passage.article_offset(b.unit.end),
        )
        if a_start < b_end and b_start < a_end:
            return True
    # One says all the other says, with a few words around it ("Well, as I noted, we believe
    # Russia could attack at any point" against "Russia could attack at any point").
    small, large = sorted((a.words, b.words), key=len)
    if len(small) >= _MIN_REPEAT_WORDS and len(small & large) >= 0.8 * len(small):
        return True
    if a.vector is None or b.vector is None:
        return a.unit.display() == b.unit.display()
    return float(a.vector @ b.vector) > 0.9


def order_sentences(chosen: Sequence[Candidate]) -> list[Candidate]:
    """The words of the person asked about first (best first), then the rest by date and place."""
    quotes = [c for c in chosen if c.by_asked or c.reports_asked]
    rest = [c for c in chosen if not (c.by_asked or c.reports_asked)]
    rest.sort(
        key=lambda c: (
            c.passage.published,
            c.passage.article_id,
            c.passage.article_offset(c.unit.start),
        )
    )
    return quotes + rest


def render(candidate: Candidate, *, again: bool = False) -> Sentence:
    """The sentence as the answer shows it: quotations attributed, white space tidied. `again`:
    the sentence before quoted the same person from the same article."""
    passage, unit, attribution = candidate.passage, candidate.unit, candidate.attribution
    if attribution is None:
        text = _tidy(unit.text)
        return Sentence(text, passage, unit.start, unit.end)
    quoted = _tidy(passage.text[attribution.quote_start : attribution.quote_end])
    if quoted and quoted[-1] not in ".!?…":
        quoted = quoted.rstrip(",;:") + "."
    where = ", ".join(x for x in (passage.source, format_date(passage.published)) if x)
    if again:
        said = f"{attribution.speaker} also said"
    else:
        said = f"{attribution.speaker} said ({where})" if where else f"{attribution.speaker} said"
    return Sentence(f"{said}: “{quoted}”", passage, attribution.quote_start, attribution.quote_end)


_STAGE_DIRECTION = re.compile(
    r"\((?:Laughter|Applause|Inaudible|Cross-?talk|Crosstalk|As interpreted)\.?\)\s*", re.I
)


_DATELINE = re.compile(
    r"^\s*[A-Z][A-Z.' -]{1,30},\s+[A-Z][a-z]+\.?\s+\d{1,2}\.?\s*"
    r"(?:/[A-Z][\w-]*/\.?|\([A-Z][\w ]*\)\s*[—–-])\s*"
)


def _tidy(text: str) -> str:
    """White space collapsed, struck-out text and markdown escapes gone, a full stop at the end."""
    text = re.sub(r"<s>.*?</s>\s*", "", text, flags=re.S)
    text = _STAGE_DIRECTION.sub("", text)  # "(Laughter.) Look, I didn't overpromise"
    text = _DATELINE.sub("", text, count=1)  # "MOSCOW, January 28. /TASS/. Moscow does not ..."
    text = re.sub(r"\\([\[\]*_`#])", r"\1", text)
    text = " ".join(text.split())
    return text if not text or text[-1] in '.!?…"”’)' else text + "."


@dataclass
class Draft:
    """An extractive answer before numbering: its sentences and the evidence score."""

    sentences: list[Sentence]
    evidence_score: float
    candidates: list[Candidate]
    # The person a "what did X say about T?" question asks about, when nothing they say in the
    # evidence bears on T: the answer should be a refusal.
    silent_speaker: str = ""


def question_vectors_for(question: str, speaker: str) -> list[str]:
    """The texts a question is compared with: itself, and its topic when it names a speaker."""
    topic = question_topic(question, speaker)
    return [question] if topic == question else [question, topic]


def compose(
    question: str,
    evidence: Evidence,
    question_vectors: np.ndarray,
    *,
    speaker: str = "",
    days: Sequence[tuple[date, date]] = (),
) -> Draft:
    """Choose, order and render the sentences that answer `question`. `days`: the days the
    question names ("on January 18"), whose articles' sentences come first."""
    candidates = rank_candidates(question, evidence, question_vectors, speaker=speaker, days=days)
    # A reporter's question shows that a topic came up, not what anyone answered.
    score = max((c.relevance for c in candidates if not c.question), default=0.0)
    chosen = order_sentences(choose_sentences(candidates))
    return Draft(
        [render(c, again=i > 0 and _same_source(chosen[i - 1], c)) for i, c in enumerate(chosen)],
        score,
        candidates,
        silent_speaker=speaker if _silent(question, candidates, speaker) else "",
    )


# The topic relevance a sentence of the person asked about needs to count as speaking on the topic.
# On 20 demo-corpus questions of people on topics they address, the lowest best score was 0.39;
# on 15 of people on topics they never address, 13 scored under 0.38 (the rest share a word:
# "Taylor Swift" against the SWIFT banking system).
SPEAKER_TOPIC_FLOOR = 0.38


def _silent(question: str, candidates: Sequence[Candidate], speaker: str) -> bool:
    """A question about what someone said on a topic, and nothing of theirs on it."""
    if not same_speaker(asks_what_was_said(question), speaker):
        return False  # not "What did X say about T?": "What did Lavrov say?" has no topic
    if any(same_speaker(speaker, c.passage.source) for c in candidates):
        return False  # an outlet, whose articles are all its words
    return not speaks_on_topic(candidates, speaker)


def speaks_on_topic(
    candidates: Sequence[Candidate], speaker: str, floor: float = SPEAKER_TOPIC_FLOOR
) -> bool:
    """Whether the person asked about says anything on the question's topic in the evidence:
    their turn or quote, or words reported as theirs ("Psaki said the ..."), scored against the
    topic alone. Evidence that only names them holds none of their words: answering with
    someone else's would not answer what they said."""
    surname = strip_titles(speaker).split()[-1] if speaker.split() else ""
    reported = speaking_pattern(surname) if surname else None
    own = [
        c
        for c in candidates
        if not c.question
        and (c.by_asked or (reported is not None and reported.search(c.unit.text)))
    ]
    return any(c.vector is not None and c.topic >= floor for c in own)


def _same_source(a: Candidate, b: Candidate) -> bool:
    """Both quote the same person from the same article."""
    return (
        a.attribution is not None
        and b.attribution is not None
        and a.attribution.speaker == b.attribution.speaker
        and a.passage.article_id == b.passage.article_id
    )
