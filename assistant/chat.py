"""Conversation: follow-up questions turned into standalone ones from the history."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.query import asked_speaker
from assistant.speakers import quoted_in_answer, speech_verbs

Turn = tuple[str, str]  # (user question, assistant answer)
_MAX_TURNS = 6  # how far back a follow-up is followed

_PLACES_AND_BODIES = frozenset(
    """nato eu un osce us usa america europe russia ukraine china germany france britain uk
    kyiv kiev moscow washington brussels beijing belarus crimea donbas donbass poland
    kremlin pentagon congress senate white house""".split()
)
_PRONOUNS_PERSON = re.compile(r"\b(he|she|him|her|his|hers)\b", re.I)
_PRONOUNS_THING = re.compile(r"\b(?:about|on|regarding|of)\s+(it|that|this|them)\b", re.I)
_NEXT = re.compile(
    r"^\s*(?:and\s+)?(?:then\s+)?what\s+(?:happened|came|comes|followed)\s*"
    r"(?:next|after(?:wards|\s+that)?|then|later)?\s*\??\s*$|^\s*(?:and\s+)?then\s+what\s*\??\s*$",
    re.I,
)
_WHAT_ABOUT = re.compile(
    r"^\s*(?:and|but)?\s*(?:what|how)\s+about\s+(?P<x>.+?)\s*\??\s*$|^\s*and\s+(?P<y>[^?]+?)\s*\?\s*$",
    re.I,
)
_SAY_ABOUT = re.compile(
    rf"^(?P<head>.*?\b(?:{speech_verbs('follow_up')})\b)"
    r"(?P<about>\s+(?:about|on|regarding|concerning)\s+.+?)?\s*\??\s*$",
    re.I,
)
_TOPIC = re.compile(r"\b(?:about|on|regarding|concerning)\s+(?P<topic>.+?)\s*\??\s*$", re.I)
_DATE_IN_ANSWER = re.compile(
    r"\b(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4})\b"
)


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation (pronouns, "and ...?", "what next?")."""
    q = question.strip()
    return bool(
        _NEXT.match(q)
        or _WHAT_ABOUT.match(q)
        or re.match(r"^\s*(?:and|but|also|so)\b", q, re.I)
        or _PRONOUNS_PERSON.search(q)
        or _PRONOUNS_THING.search(q)
        or re.search(r"\b(?:they|them|their)\b", q, re.I)
    )


def condense_question(question: str, history: Sequence[Turn]) -> str:
    """A standalone version of `question` by rules; the question itself when it stands alone."""
    question = " ".join(question.split())
    previous = _previous_standalone(history)
    if not previous or not is_follow_up(question):
        return question
    speaker = asked_speaker(previous)
    topic = _topic(previous)

    if _NEXT.match(question):
        when = _latest_date(history[-1][1])
        about = topic or _strip_question(previous)
        return f"What happened next regarding {about}" + (f" after {when}?" if when else "?")

    what_about = _WHAT_ABOUT.match(question)
    if what_about:
        other = (what_about.group("x") or what_about.group("y") or "").strip()
        other = re.sub(r"^(?:what\s+did\s+)?(.+?)(?:\s+say)?$", r"\1", other, flags=re.I)
        if speaker and _looks_like_person(other):
            return _replace_speaker(previous, speaker, other)
        if topic:
            return _replace_topic(previous, topic, other)
        return f"{_strip_question(previous)}: what about {other}?"

    new_speaker = asked_speaker(question)
    if new_speaker and topic and not _TOPIC.search(question):
        # "and what did Blinken say?" after "What did Lavrov say about NATO?"
        head = _SAY_ABOUT.match(re.sub(r"^\s*(?:and|but|also|so)\s+", "", question, flags=re.I))
        if head:
            return _capitalise(f"{head.group('head')} about {topic}?")

    standalone = re.sub(r"^\s*(?:and|but|also|so)\s+", "", question, flags=re.I)
    person = speaker or _last_person(history)
    if person:
        standalone = _PRONOUNS_PERSON.sub(lambda m: _person_form(m.group(1), person), standalone)
    if topic:
        standalone = _PRONOUNS_THING.sub(
            lambda m: m.group(0)[: -len(m.group(1))] + topic, standalone
        )
    return _capitalise(standalone)


def _previous_standalone(history: Sequence[Turn]) -> str:
    """The last question of the history, itself made standalone (it may be a follow-up too)."""
    turns = [(u, a) for u, a in history if u.strip()][-_MAX_TURNS:]
    if not turns:
        return ""
    return condense_question(turns[-1][0], turns[:-1])


def _topic(question: str) -> str:
    match = _TOPIC.search(question)
    return match.group("topic").strip() if match else ""


def _strip_question(question: str) -> str:
    return question.strip().rstrip("?").strip()


def _looks_like_person(text: str) -> bool:
    """A name rather than a place or a body: capitalised words, none a place we know."""
    words = text.split()
    if not 1 <= len(words) <= 4 or not all(w[0].isupper() for w in words if w):
        return False
    return not any(w.lower().strip(".,'’") in _PLACES_AND_BODIES for w in words)


def _replace_speaker(question: str, speaker: str, other: str) -> str:
    return question.replace(speaker, other, 1)


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
