"""Conversation: follow-up questions turned into standalone ones from the history."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.follow_ups import (
    ELLIPTIC,
    YEAR_SHIFT,
    bound,
    drop_occasion,
    elliptical,
    free_pronoun,
    resolve_things,
    shape,
    shift_year,
    short_answer,
    thing_referents,
)
from assistant.query import asked_speaker
from assistant.speakers import quoted_in_answer, speech_verbs

Turn = tuple[str, str]  # (user question, assistant answer)
_MAX_TURNS = 6  # how far back a follow-up is followed

_PLACES_AND_BODIES = frozenset(
    """nato eu un osce us usa america europe russia ukraine china germany france britain uk
    kyiv kiev moscow washington brussels beijing belarus crimea donbas donbass poland
    kremlin pentagon congress senate white house""".split()
)
_PLACES = frozenset(
    """america europe russia ukraine china germany france britain uk kyiv kiev moscow washington
    brussels beijing belarus crimea donbas donbass poland finland sweden turkey iran israel gaza
    japan india taiwan syria moldova georgia hungary italy spain canada kharkiv kherson mariupol
    odesa odessa""".split()
)
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_TIME = rf"(?:(?:early|mid|late)[\s-]+)?(?:{_MONTHS}(?:\s+\d{{4}})?|\d{{4}})"
_LEAD = re.compile(r"^\s*(?:and|but|also|so|ok(?:ay)?,?|then)\s+", re.I)
_PRONOUNS_PERSON = re.compile(r"\b(he|she|him|her|his|hers)\b", re.I)
_THEY = re.compile(r"\b(they|them|their)\b", re.I)
_PRONOUNS_THING = re.compile(r"\b(?:about|on|regarding|of)\s+(it|that|this|them)\b", re.I)
# "did he mention it?": a thing as the object of any verb but a speech verb ("did he say it?")
_OBJECT_IT = re.compile(
    r"\b(?P<verb>mention(?:ed)?|discuss(?:ed)?|address(?:ed)?|raise[d]?|support(?:ed)?"
    r"|oppose[d]?|critici[sz]e[d]?|condemn(?:ed)?|welcome[d]?|reject(?:ed)?|back(?:ed)?"
    r"|den(?:y|ied)|confirm(?:ed)?)\s+(?:it|that|them)\s*\??$",
    re.I,
)
_NEXT = re.compile(
    r"^\s*(?:and\s+)?(?:then\s+)?what\s+(?:happened|came|comes|followed)\s*"
    r"(?:next|after(?:wards|\s+that)?|then|later)?\s*\??\s*$|^\s*(?:and\s+)?then\s+what"
    r"(?:\s+happened)?\s*\??\s*$",
    re.I,
)
# "and the day after?", "a week later?", "before that?": the same question at another time
_LATER = re.compile(
    r"^\s*(?:and|but|what\s+about|how\s+about)?\s*(?:(?P<span>the\s+(?:next\s+)?(?:day|week|month|year)"
    r"|a\s+(?:day|week|month|year)|(?:two|three|a\s+few)\s+(?:days|weeks|months))\s+"
    r"(?P<dir>after|later|before|earlier)(?:\s+that)?"
    r"|the\s+next\s+(?P<next>day|week|month|year)"
    r"|(?P<bare>before|after)\s+that)\s*\??\s*$",
    re.I,
)
# "When was that?", "Who said it?", "Where?", "Why did he say that?", "Who else?"
_WH_SHORT = re.compile(
    r"^\s*(?:and|but|so)?\s*(?P<wh>when|where|why|who(?:\s+else)?)"
    r"(?:\s+(?:was|is|did)\s+(?:that|it|this)"
    r"|\s+(?:did|does|has)\s+(?:he|she|they)\s+(?:say|said|tell|told)\s+(?:that|it|this|so)"
    r"|\s+(?:said|says|told)\s+(?:that|it|this|so)"
    r"|\s+(?:else\s+)?(?:said|says)\s+(?:that|it|this|so)"
    r")?\s*\??\s*$",
    re.I,
)
_WHAT_ABOUT = re.compile(
    r"^\s*(?:and|but)?\s*(?:what|how)\s+about\s+(?P<x>.+?)\s*\??\s*$|^\s*and\s+(?P<y>[^?]+?)\s*\?\s*$",
    re.I,
)
_A_QUESTION = re.compile(
    r"^(?:what|who|whom|whose|which|when|where|why|how|did|does|do|is|are|was|were|has|have|had"
    r"|can|could|will|would|should)\b",
    re.I,
)
_SAY_ABOUT = re.compile(
    rf"^(?P<head>.*?\b(?:{speech_verbs('follow_up')})\b)"
    r"(?P<about>\s+(?:about|on|regarding|concerning)\s+.+?)?\s*\??\s*$",
    re.I,
)
_TOPIC = re.compile(
    r"\b(?:about|on|regarding|concerning|happened\s+(?:at|in|to|with|during))\s+"
    r"(?P<topic>.+?)\s*\??\s*$",
    re.I,
)
_PREP_PHRASE = re.compile(r"^(?P<prep>in|on|at|during|since|before|after)\s+(?P<what>.+)$", re.I)
_DATE_IN_ANSWER = re.compile(
    r"\b(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4})\b"
)


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation (pronouns, "and ...?", "what next?")."""
    q = question.strip()
    return bool(
        _NEXT.match(q)
        or _LATER.match(q)
        or _WH_SHORT.match(q)
        or _WHAT_ABOUT.match(q)
        or _LEAD.match(q)
        or _PRONOUNS_PERSON.search(q)
        or _PRONOUNS_THING.search(q)
        or _THEY.search(q)
        or ELLIPTIC.match(q)
        or YEAR_SHIFT.search(q)
        or free_pronoun(q)
    )


def condense_question(question: str, history: Sequence[Turn]) -> str:
    """A standalone version of `question` by rules; the question itself when it stands alone."""
    question = " ".join(question.split())
    previous = _previous_standalone(history)
    if not previous or not is_follow_up(question):
        return question
    speaker = asked_speaker(previous)
    topic = _topic(previous)
    answer = history[-1][1] if history else ""
    when = _latest_date(answer)
    shifted, whole = shift_year(question, previous)
    if whole:
        return whole
    question = shifted or question

    if _NEXT.match(question):
        about = topic if speaker else _strong_topic(previous)
        if about:
            return f"What happened next regarding {about}" + (f" after {when}?" if when else "?")
        # "What sanctions did the EU impose on Russia?": the same question, after its date
        core, _, anchor = _split_time(_strip_question(previous))
        return f"{core} after {when or anchor}?" if when or anchor else f"{core} later?"

    later = _LATER.match(question)
    if later:
        # "... in January 2022" + "and before that?" -> "... before January 2022"
        core, _, anchor = _split_time(_strip_question(previous))
        return f"{core} {_later_phrase(later, when or anchor)}?"

    wh = _WH_SHORT.match(question)
    if wh and (topic if speaker else _strong_topic(previous)):
        return _wh_question(" ".join(wh.group("wh").lower().split()), speaker, topic)
    # "And when?" after "Where will the summit be held?": the same question, asked with "when"
    ellipsis = "" if speaker and topic else elliptical(question, previous, answer)
    if ellipsis:
        return ellipsis

    rest = _LEAD.sub("", question)
    what_about = _WHAT_ABOUT.match(question)
    # "and what did Psaki say about that?" is a question of its own, not "what about X?"
    if what_about and not (what_about.group("y") and _A_QUESTION.match(rest)):
        other = (what_about.group("x") or what_about.group("y") or "").strip()
        other = re.sub(r"^(?:what\s+did\s+)?(.+?)(?:\s+say)?$", r"\1", other, flags=re.I)
        return _what_about(previous, speaker, topic, other)

    standalone = _resolve_people(
        rest, speaker or _who_answered(previous, answer) or _last_person(history)
    )
    thing, other_thing = thing_referents(rest, previous, answer, topic)
    if thing:
        standalone = _PRONOUNS_THING.sub(
            lambda m: m.group(0)[: -len(m.group(1))] + thing, standalone
        )
        standalone = _OBJECT_IT.sub(lambda m: f"{m.group('verb')} {thing}?", standalone)
        standalone = resolve_things(standalone, thing, other_thing)
    # "and what did Blinken say?" after "What did Lavrov say about NATO?": the same topic
    if topic and asked_speaker(standalone) and not _TOPIC.search(standalone):
        head = _SAY_ABOUT.match(standalone)
        if head:
            standalone = f"{head.group('head')} about {topic}?"
    return _capitalise(standalone)


def _resolve_people(question: str, person: str) -> str:
    """ "he", "they", then "his", "their" for the person the conversation is about; a pronoun
    after a name in its own question ("did Biden say he ...", "the US and NATO ... their
    replies", "did he say it at his ...") is that name's and stays."""
    if not person:
        return question
    text = question

    def person_for(match: re.Match[str]) -> str:
        word = match.group(1)
        if bound(text, match.start()):
            return word
        return f"{person}’s" if word.lower() in ("his", "hers", "their") else person

    text = re.sub(r"\b(he|she|him|her|they)\b", person_for, text, flags=re.I)
    return re.sub(r"\b(his|hers|their)\b", person_for, text, flags=re.I)


def _who_answered(previous: str, answer: str) -> str:
    """The person the last answer named when the previous question asked "who ...?"."""
    found = shape(previous)
    if found and found.wh.lower() in ("who", "whom"):
        return short_answer(answer)
    return ""


def _previous_standalone(history: Sequence[Turn]) -> str:
    """The last question of the history, itself made standalone (it may be a follow-up too)."""
    turns = [(u, a) for u, a in history if u.strip()][-_MAX_TURNS:]
    if not turns:
        return ""
    return condense_question(turns[-1][0], turns[:-1])


def _strong_topic(question: str) -> str:
    """The topic when the question says it is one ("about X", "what happened at X")."""
    return (
        _topic(question)
        if re.search(r"\b(?:about|regarding|concerning|happened)\b", question, re.I)
        else ""
    )


def _split_time(question: str) -> tuple[str, str, str]:
    """ "How many ... in January 2022" -> ("How many ...", "in", "January 2022")."""
    match = re.search(rf"\s+(?P<prep>in|during|on)\s+(?P<time>{_TIME})$", question, re.I)
    if not match:
        return question, "", ""
    return question[: match.start()], match.group("prep"), match.group("time")


def _topic(question: str) -> str:
    match = _TOPIC.search(question)
    if not match:
        return ""
    # "Russia in March 2022": the date belongs to the question, not to the topic
    topic = drop_occasion(match.group("topic").strip())
    return re.sub(rf"\s+(?:in|on|during|since)\s+{_TIME}$", "", topic, flags=re.I)


def _strip_question(question: str) -> str:
    return question.strip().rstrip("?").strip()


def _later_phrase(match: re.Match[str], when: str) -> str:
    """ "the day after" -> "the day after 28 Jan 2022" when the last answer gives a date."""
    if match.group("next"):
        span, direction = f"the {match.group('next').lower()}", "after"
    elif match.group("bare"):
        span, direction = "", match.group("bare").lower()
    else:
        span = re.sub(r"^the\s+next\s+", "the ", match.group("span").lower())
        direction = {"later": "after", "earlier": "before"}.get(
            match.group("dir").lower(), match.group("dir").lower()
        )
    phrase = f"{span} {direction}".strip()
    if when:
        return f"{phrase} {when}"
    # without a date the phrase itself must stand: "a week later", "before that"
    return (
        f"{phrase} that" if not span else f"{span} {'later' if direction == 'after' else 'earlier'}"
    )


def _wh_question(wh: str, speaker: str, topic: str) -> str:
    """ "When was that?" after "What did Lavrov say about NATO?" -> "When did Lavrov say that
    about NATO?"; needs the previous topic."""
    if wh == "who else":
        return f"Who else spoke about {topic}?"
    if wh == "who":
        return f"Who said that about {topic}?"
    if speaker:
        return f"{wh.capitalize()} did {speaker} say that about {topic}?"
    if wh == "why":
        return f"Why was there news about {topic}?"
    return f"{wh.capitalize()} was there news about {topic}?"


def _what_about(previous: str, speaker: str, topic: str, other: str) -> str:
    """ "What about X?": X as the new speaker, place, time or topic of the previous question."""
    if speaker and _looks_like_person(other):
        return _replace_speaker(previous, speaker, other)
    prep = _PREP_PHRASE.match(other)
    if prep:
        # "and in February?": the new time or place replaces the old one, or is added
        old = re.search(
            rf"\s+{prep.group('prep')}\s+(?:the\s+)?[A-Z0-9][^?]*?(?=\s*\??$)", previous
        )
        if old:
            return previous[: old.start()] + f" {other}" + previous[old.end() :]
        return f"{_strip_question(previous)} {other}?"
    if other.lower() in _PLACES:
        places = [
            m for m in re.finditer(r"\b[A-Z][a-z]+\b", previous) if m.group().lower() in _PLACES
        ]
        if places:
            last = places[-1]
            return previous[: last.start()] + other + previous[last.end() :]
    if topic:
        return _replace_topic(previous, topic, other)
    return f"{_strip_question(previous)}, and {other}?"


def _looks_like_person(text: str) -> bool:
    """A name rather than a place or a body: capitalised words, none a place we know."""
    words = text.split()
    if not 1 <= len(words) <= 4 or not all(w[0].isupper() for w in words if w):
        return False
    return not any(w.lower().strip(".,'’") in _PLACES_AND_BODIES | _PLACES for w in words)


def _replace_speaker(question: str, speaker: str, other: str) -> str:
    # "when he met Scholz" was the previous speaker's occasion, not the new one's
    return drop_occasion(question.replace(speaker, other, 1))


def _replace_topic(question: str, topic: str, other: str) -> str:
    at = question.rfind(topic)
    return question[:at] + other + question[at + len(topic) :]


def _last_person(history: Sequence[Turn]) -> str:
    """The person the last turns were about: a speaker asked about, else one quoted."""
    for user, assistant in reversed(history):
        if speaker := asked_speaker(user) or quoted_in_answer(assistant):
            return speaker
    return ""


def _person_form(pronoun: str, person: str) -> str:
    lower = pronoun.lower()
    return f"{person}’s" if lower in ("his", "hers") else person


def _latest_date(answer: str) -> str:
    """The latest "28 Jan 2022"-style date an answer mentions, as written."""
    from datetime import datetime

    found = [
        (datetime.strptime(" ".join(m.groups()), "%d %b %Y"), m.group())
        for m in _DATE_IN_ANSWER.finditer(answer)
    ]
    return max(found)[1] if found else ""


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
