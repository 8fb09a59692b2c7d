"""Who said what: the speech verbs, the patterns that attribute words to a speaker, and names."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import NamedTuple, Protocol

from index.keyword import keyword_tokens

# Speech verbs ----------------------------------------------------------------------------------

# Every verb (a regex fragment) that tells whose words are given, and the places it counts in.
# The places read it in different grammar and were tuned apart, so each keeps its own verbs:
#   quote      a quotation's attribution in an article: '"...," Lavrov added.' (answers)
#   chunk      a chunk giving someone's words: "Lavrov said", "said Lavrov" (the retrieval boost)
#   named      a question naming the speaker before the verb: "Biden said what about ...?"
#   outlet     after a lower-case outlet name in a question: "what did the verge say"
#   what       "What did X <verb> ...?", "How has X <verb> ...?"
#   did        "Did X <verb> ...?"
#   follow_up  a follow-up asking someone else: "and what did Blinken say?" (assistant/chat.py)
SPEECH_VERBS: dict[str, str] = {
    "said": "quote chunk named outlet what follow_up",
    "says": "quote chunk named outlet",
    "say": "chunk outlet what did follow_up",
    "told": "quote chunk named what follow_up",
    "tells": "chunk",
    "tell": "what did follow_up",
    "added": "quote chunk",
    "adds": "quote",
    "stated": "quote chunk named",
    "state": "what did",
    "argued": "quote chunk named",
    "argue": "what did follow_up",
    "warned": "quote chunk named",
    "warn": "what did follow_up",
    "claimed": "quote chunk named outlet",
    "claims": "named outlet",
    "claim": "outlet what did follow_up",
    "suggested": "quote named outlet",
    "suggests": "outlet",
    "suggest": "outlet what did",
    "wrote": "quote chunk named outlet",
    "writes": "quote outlet",
    "write": "what follow_up",
    "noted": "quote chunk named",
    "explained": "quote chunk named",
    "insisted": "quote chunk named",
    "admitted": "quote named",
    "admit": "did",
    "denied": "named",
    "deny": "did",
    "testified": "named",
    "stressed": "quote chunk",
    "emphasi[sz]ed": "quote chunk",
    "underlined": "quote chunk",
    "highlighted": "quote chunk",
    "elaborated": "quote chunk",
    "pointed out": "quote chunk",
    "recalled": "quote chunk",
    "remarked": "quote chunk",
    "commented": "quote chunk",
    "declared": "quote chunk",
    "announced": "quote chunk",
    "replied": "quote chunk",
    "responded": "quote chunk",
    "urged": "quote chunk",
    "underscored": "quote",
    "specified": "quote",
    "asserted": "quote",
    "concluded": "quote",
    "continued": "quote",
    "observed": "quote",
    "answered": "quote",
    "acknowledged": "quote",
    "vowed": "quote",
    "maintained": "quote",
    "asked": "chunk",
    "according to": "chunk",
    "think": "what follow_up",
    "mean": "what follow_up",
    "describe": "what",
    "reveal": "what",
    # "How did Psaki respond to ...?": a reply is words too.
    "respond": "what did follow_up",
    "react": "what did",
    "reply": "what did",
    "answer": "what did",
    "explain": "what did",
}
SPEECH_VERB_USES = frozenset(("quote", "chunk", "named", "outlet", "what", "did", "follow_up"))


def verbs_for(use: str) -> list[str]:
    """The speech verbs that count in `use` (one of SPEECH_VERB_USES), as regex fragments."""
    if use not in SPEECH_VERB_USES:
        raise ValueError(f"unknown use {use!r}; expected one of {sorted(SPEECH_VERB_USES)}")
    return [verb for verb, uses in SPEECH_VERBS.items() if use in uses.split()]


def speech_verbs(use: str) -> str:
    """The speech verbs that count in `use`, as a regex alternation (without a group)."""
    return "|".join(verbs_for(use))


# Quotations in articles ------------------------------------------------------------------------

# "told" takes up to three words after it: '"...," Lavrov told reporters on Monday.'
_QUOTE_VERBS = "|".join(
    rf"{verb}(?:\s+\w+){{0,3}}" if verb == "told" else verb for verb in verbs_for("quote")
)
_TAIL_WHO_VERB = re.compile(rf"^(?P<who>[^“”\"]{{2,80}}?)\s+(?:{_QUOTE_VERBS})\b[^“”\"]*$")
_TAIL_VERB_WHO = re.compile(rf"^(?:{_QUOTE_VERBS})\s+(?P<who>[^“”\",]{{2,80}}?)(?:,[^“”\"]*)?\.?$")
_LEAD_WHO_VERB = re.compile(
    rf"^(?P<who>[^“”\"]{{2,80}}?)\s+(?:{_QUOTE_VERBS})(?:\s+that)?\s*[,:]?\s*$"
)


def attributed_to(before: str, after: str) -> str:
    """Who the words around a quotation say spoke it, as written: '"...," Lavrov said.' or
    'Lavrov said: "..."'; "" when they name nobody. `before`, `after`: the rest of the sentence
    on either side of the quotation."""
    match = None
    if not before.strip():
        tail = after.strip().lstrip(",").strip()
        match = _TAIL_WHO_VERB.match(tail) or _TAIL_VERB_WHO.match(tail)
    elif not after.strip(" .\n"):
        match = _LEAD_WHO_VERB.match(before.strip())
    return match.group("who") if match else ""


# Transcripts: speaker turns ------------------------------------------------------------------

# The words that make an all-capital label a speaker's title: "CHANCELLOR SCHOLZ", "AMIR AL THANI".
_LABEL_TITLES = (
    "PRESIDENT|VICE PRESIDENT|PRIME MINISTER|CHANCELLOR|SECRETARY|AMBASSADOR|GENERAL|ADMIRAL|"
    "SENATOR|GOVERNOR|MAYOR|ADMINISTRATOR|DIRECTOR|DEPUTY|ATTORNEY|SURGEON|JUDGE|JUSTICE|AMIR|"
    "EMIR|KING|QUEEN|PRINCE|PRINCESS|SHEIKH|ADVISOR|ADVISER|REPRESENTATIVE|CONGRESSMAN|"
    "CONGRESSWOMAN|SPEAKER|LEADER|MINISTER|FOREIGN MINISTER|COMMISSIONER|CHAIR|CHAIRMAN|"
    "CHAIRWOMAN|COMMANDER|COLONEL|CAPTAIN|SHERIFF|CHIEF|POPE|REVEREND|PROFESSOR|COACH"
)
# Labels that name a part, not a person: "MODERATOR", "SENIOR ADMINISTRATION OFFICIAL TWO".
_ROLE_LABEL = (
    r"(?:[A-Z]+[^\S\n])*OFFICIALS?(?:[^\S\n]+(?:ONE|TWO|THREE|FOUR|\#?\d))?|MODERATOR|OPERATOR|"
    r"AIDE|PARTICIPANTS?|AUDIENCE(?:[^\S\n]+MEMBERS?)?|INTERPRETER|INTERVIEWER|REPORTERS?|STAFF|"
    r"NARRATOR|CROWD"
)
_CAPS = r"[A-Z][A-Z'’.\-]*"
_KNOWN_LABEL = (
    rf"(?:MR|MS|MRS|DR|MX)\.?[^\S\n]+{_CAPS}(?:[^\S\n]{_CAPS})?|THE[^\S\n]+(?:VICE[^\S\n]+)?"
    rf"PRESIDENT|THE[^\S\n]+FIRST[^\S\n]+LADY|THE[^\S\n]+SECOND[^\S\n]+GENTLEMAN|"
    rf"(?:{_LABEL_TITLES})(?:[^\S\n]+{_CAPS}){{1,3}}|{_ROLE_LABEL}"
)
# A label opens a line: a known one ("MS. PSAKI:"), a reporter ("Q", colon or not), an
# interview's "Q:"/"A:", or any other all-capital one (counted only inside a transcript).
_LABEL_LINE = re.compile(
    rf"(?m)^[^\S\n]*(?:(?P<known>{_KNOWN_LABEL}):|(?P<q>Q)(?::|[^\S\n]{{2,}}|[^\S\n](?=[^\sa-z]))"
    rf"|(?P<a>A):|(?P<other>{_CAPS}(?:[^\S\n]{_CAPS}){{0,4}}):)[^\S\n]*(?=\S)"
)
# All-capital line openings that are headings, not speakers ("SUBJECT:", "UPDATE:").
_NOT_LABELS = re.compile(
    r"^(?:SUBJECT|TO|FROM|RE|CC|NOTE|EDITOR'?S NOTE|UPDATE|UPDATED|BREAKING|WATCH|READ MORE|"
    r"PHOTOS?|VIDEO|SOURCE|SOURCES|DATE|TIME|LOCATION|WHERE|WHEN|WHAT|WHO|SEC\.?|SECTION|"
    r"ARTICLE|PART|CHAPTER|ANNEX|FACT SHEET|ICYMI|NOTICE|MEMORANDUM.*|.* SENT TO .*|TO .*)$"
)
_INTERPRETED = re.compile(r"\(\s*(?:As|Through an) interpret(?:ed|er)\.?\s*\)\.?[^\S\n]*", re.I)


class Turn(NamedTuple):
    """One speaker's turn in a transcript (offsets in the text it was found in)."""

    start: int  # the label's first character
    end: int  # where the next turn starts, or the end of the text
    label: str  # as written: "MS. PSAKI", "Q"
    is_question: bool  # a reporter's (or interviewer's) words
    speaker: str  # who it is, as the document says: "Jen Psaki", "A reporter"
    role: str  # what the document calls them: "Press Secretary"; "" when it does not say
    body: int  # where the words start: after the label and any "(As interpreted.)"


@lru_cache(maxsize=512)
def transcript_turns(text: str, title: str = "") -> tuple[Turn, ...]:
    """The speaker turns of a transcript, in order; () for an article that is not one.
    Labels are resolved to people where the title or the text says who they are."""
    found = []  # (start, label end, label, kind)
    for m in _LABEL_LINE.finditer(text):
        kind = next(k for k in ("known", "q", "a", "other") if m.group(k))
        label = " ".join(m.group(kind).split())
        if kind == "other" and (_NOT_LABELS.match(label) or not _opens_paragraph(text, m.start())):
            continue
        found.append((m.start(), m.end(), label, kind))
    known = sum(kind in ("known", "q") for *_, kind in found)
    questions = any(kind == "q" for *_, kind in found)
    found = [
        f
        for f in found
        if f[3] in ("known", "q") or (f[3] == "a" and questions) or (f[3] == "other" and known >= 2)
    ]
    turns = []
    names: dict[str, tuple[str, str]] = {}
    for i, (start, body, label, _) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else len(text)
        if interpreted := _INTERPRETED.match(text, body):
            body = interpreted.end()
        if label not in names:
            names[label] = resolve_label(label, title, text)
        speaker, role = names[label]
        turns.append(Turn(start, end, label, label == "Q", speaker, role, min(body, end)))
    if not turns and (author := statement_author(title)):
        return (Turn(0, len(text), "", False, *author, 0),)
    return tuple(turns)


_STATEMENT = re.compile(
    r"^(?:Joint )?Statements? (?:by|from) (?P<who>.+?)"
    r"(?:\s+(?:on|On|Marking|Regarding|About|about|in|In|for|For)\b|,|:|$)"
)


def statement_author(title: str) -> tuple[str, str] | None:
    """(speaker, role) of a statement whose title names its author ("Statement by Press
    Secretary Jen Psaki on ..."): the whole text is their words."""
    found = _STATEMENT.match(title.strip())
    if not found:
        return None
    who = found.group("who").strip()
    if " and " in who:
        return who, ""
    words = who.split()
    given = _given_names(words[:-1])
    name = " ".join([*given, words[-1]])
    role = " ".join(words[: len(words) - 1 - len(given)])
    return (name if given else who), role


def _opens_paragraph(text: str, start: int) -> bool:
    """Whether the line at `start` opens a paragraph: first, after a blank line, or after a
    line ending in a hard break (trailing spaces)."""
    if start == 0:
        return True
    previous = text[text.rfind("\n", 0, start - 1) + 1 : start - 1]
    return not previous.strip() or previous[-1:].isspace()


def opens_with_label(text: str) -> bool:
    """Whether `text` starts with a transcript speaker label ("MS. PSAKI:", "Q")."""
    match = _LABEL_LINE.match(text)
    return match is not None and bool(match.group("known") or match.group("q"))


def turn_at(turns: Sequence[Turn], position: int) -> Turn | None:
    """The turn holding `position`, if any."""
    for turn in turns:
        if turn.start <= position < turn.end:
            return turn
        if turn.start > position:
            break
    return None


def transcript_label(text: str, position: int) -> str | None:
    """The transcript speaker label in force at `position` (the last one at or before it)."""
    turn = turn_at(transcript_turns(text), position)
    return turn.label if turn else None


def label_name(label: str) -> str:
    """The speaker a transcript label names as written: "MS. PSAKI" -> "Psaki"."""
    words = label.replace(".", "").split()
    if words[0] in ("MR", "MS", "MRS", "DR", "MX"):
        words = words[1:]
    return " ".join("-".join(part.capitalize() for part in w.split("-")) for w in words)


# Words in a name's run that belong to the role: "White House COVID-19 Response Coordinator".
_ROLE_WORDS = frozenset(
    """coordinator counselor counsellor director officer administrator commissioner chair
    chairman chairwoman attorney surgeon general lady gentleman leader speaker representative
    council house white national economic domestic policy response drs""".split()
)
_CAP_WORD = r"[A-Z][\w.'’\-]*"


def resolve_label(label: str, title: str, text: str) -> tuple[str, str]:
    """(speaker, role) for a transcript label, from the title or the text where they say who it
    is: "MS. JEAN-PIERRE" -> ("Karine Jean-Pierre", "Principal Deputy Press Secretary")."""
    if label == "Q":
        return "A reporter", "reporter"
    if label == "A":
        found = re.search(
            rf"(?:[Ii]nterview|Q&A|[Cc]onversation) with ((?:{_CAP_WORD} ?){{1,3}})", title
        )
        return (found.group(1).strip(), "") if found else ("The interviewee", "")
    if re.fullmatch(_ROLE_LABEL, label):
        words = re.sub(r"\s+(?:ONE|TWO|THREE|FOUR|#?\d)$", "", label).lower()
        article = "The" if words in ("moderator", "operator", "interpreter", "narrator") else "A"
        article = "The" if words.endswith("s") else article
        article = "An" if article == "A" and words[0] in "aeiou" else article
        return f"{article} {words}", words
    if label.startswith("THE "):
        role = label.removeprefix("THE ").title()
        lead = rf"(?<!Vice ){role}" if role == "President" else role
        for where in (title, text[:3000]):
            found = re.search(rf"\b{lead} ((?:[A-Z]\. )?[A-Z][\w'’\-]+)", where)
            if found and found.group(1).lower() not in _TITLES:
                return f"{role} {found.group(1)}", role
        return f"The {role}", role
    return _named(label, title, text)


def _named(label: str, title: str, text: str) -> tuple[str, str]:
    """A label with a surname ("MR. SULLIVAN", "CHANCELLOR SCHOLZ") as the document names them:
    the fullest "<role> <given name> <surname>" it writes."""
    written = label_name(label)
    surname = written.split()[-1]
    if surname.lower() in _TITLES:  # "MR. PRESIDENT"
        return written, ""
    best: tuple[str, str] = (written, "")
    known = len(strip_titles(written).split())
    for where in (title, text[:20000]):
        for m in re.finditer(rf"\b(?i:{re.escape(surname)})\b", where):
            if not m.group()[0].isupper() or (m.group().isupper() and len(surname) > 1):
                continue  # a word ("good"), or another label
            before = re.search(rf"((?:{_CAP_WORD}[^\S\n]){{0,6}})$", where[: m.start()])
            words = before.group(1).split() if before else []
            given = _given_names(words)
            name = " ".join([*given, m.group()])
            role = " ".join(words[: len(words) - len(given)])
            role = re.split(r"\b(?:By|And|With|Of|For|From|To)\s+", role)[-1]
            if len(name.split()) > known:
                best, known = (name, role or best[1]), len(name.split())
            elif role and not best[1]:
                best = (best[0], role)
    return best


def _given_names(words: Sequence[str]) -> list[str]:
    """The given name (and middle initials) ending `words`: "Press Secretary Jen" -> ["Jen"]."""
    given: list[str] = []
    for word in reversed(words):
        if re.fullmatch(r"[A-Z]\.", word):
            given.insert(0, word)
            continue
        plain = word.lower().strip(".,")
        if plain not in _TITLES | _ROLE_WORDS and not word.isupper() and not word.endswith("."):
            given.insert(0, word)
        break
    return given if any(not re.fullmatch(r"[A-Z]\.", w) for w in given) else []


# Words attributed to someone in a chunk --------------------------------------------------------

_CHUNK_VERBS = f"(?:{speech_verbs('chunk')})"


def speaking_pattern(name: str) -> re.Pattern[str]:
    """Words attributed to `name` (a surname): "Lavrov said", "said Lavrov", "according to
    Lavrov", "Lavrov: ...", a transcript's "MS. PSAKI:", or a quotation closed next to the name
    ('...," Lavrov noted')."""
    who = rf"\b{re.escape(name)}\b"
    return re.compile(
        rf"{who}\s+(?:\w+\s+){{0,2}}?{_CHUNK_VERBS}\b"
        rf"|\b{_CHUNK_VERBS}\s+(?:[A-Z][\w.]*\s+){{0,3}}?{who}"
        rf"|{who}\s*:|\b{re.escape(name.upper())}:"
        rf"|[”\"]\s*(?:\w+\s+){{0,3}}?{who}"
    )


# Speakers a question asks about ----------------------------------------------------------------

_NAME_WORD = r"(?:[A-Z][\w’'\-]*\.?|[A-Z]\.)"
_NAME = rf"(?P<name>{_NAME_WORD}(?:\s+(?:de|van|von|bin|al|da|del|la|le)?\s*{_NAME_WORD}){{0,3}})"
_OFFICE = (
    r"(?i:(?:vice\s+)?president|press\s+secretary|first\s+lady|secretary\s+of\s+state"
    r"|national\s+security\s+advis[eo]r|prime\s+minister|chancellor|foreign\s+minister)"
)
_QUESTION_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        rf"\b(?i:what|how)\s+(?:did|does|do|has|have|had|will|would)\s+{_NAME}\s+"
        rf"(?:{speech_verbs('what')})",
        rf"\b(?i:according)\s+to\s+{_NAME}",
        rf"\b{_NAME}(?:'s|’s)\s+(?:comments?|remarks?|statements?|words|claims?|quotes?|views?"
        r"|testimony|speech|interview|response|warning)",
        rf"\b{_NAME}\s+(?:{speech_verbs('named')})\b",
        rf"\b(?i:did|does|has)\s+{_NAME}\s+(?:{speech_verbs('did')})",
        # "What did the President say ...": an office names whoever holds it
        rf"\b(?i:what|how)\s+(?:did|does|do|has|have|had|will|would)\s+(?i:the)\s+"
        rf"(?P<name>{_OFFICE})\s+(?:{speech_verbs('what')})",
    )
)
_NOT_SPEAKERS = frozenset(
    """the a an this that it he she they what who which article report reports both each""".split()
)


def question_speakers(text: str) -> Iterator[tuple[int, int, str]]:
    """Where a question names someone whose words it asks about ("what did X say", "according
    to X", "X's remarks", ...): (start, end, name) pattern by pattern, repeats and all."""
    for pattern in _QUESTION_PATTERNS:
        for m in pattern.finditer(text):
            name = m.group("name").strip()
            words = name.split()
            while words and words[0].lower() in _NOT_SPEAKERS:
                words = words[1:]
            if not words or words[-1].lower() in _NOT_SPEAKERS:
                continue
            start = m.start("name") + m.group("name").index(words[0])
            end = start + len(" ".join(words))
            yield start, end, re.sub(r"[’']s$", "", " ".join(words))


# Names -----------------------------------------------------------------------------------------

_TITLES = frozenset(
    """mr mrs ms dr president vice secretary minister foreign prime press chancellor senator
    governor ambassador general admiral spokesman spokeswoman spokesperson deputy chief
    national security adviser advisor state defense the of us u.s. russian american""".split()
)


def name_tokens(who: str) -> set[str]:
    """The words of a name that tell one person from another: no titles, lower-cased."""
    words = {w.strip(".,'’").lower() for w in re.split(r"[\s-]+", who) if w}
    words = {w.removesuffix("'s").removesuffix("’s") for w in words if w}
    significant = {w for w in words if w and w not in _TITLES}
    return significant or {w for w in words if w and w != "the"}


def same_speaker(asked: str, speaker: str) -> bool:
    if not (asked and speaker):
        return False
    if name_tokens(asked) & name_tokens(speaker):
        return True
    # "the President" is whoever the document calls President ("President Biden"), not the VP.
    office = {w.strip(".,").lower() for w in re.split(r"[\s-]+", asked)} - {"the", ""}
    if office and office <= _TITLES:
        words = {w.strip(".,").lower() for w in re.split(r"[\s-]+", speaker)}
        return office <= words and ("vice" in office) == ("vice" in words)
    return False


def strip_titles(who: str) -> str:
    """ "Russian Foreign Minister Sergey Lavrov" -> "Sergey Lavrov"; "Lavrov" stays."""
    words = who.split()
    names: list[str] = []
    for word in reversed(words):
        if word.lower().strip(".,") in _TITLES or not word[0].isupper():
            break
        names.insert(0, word)
    return " ".join(names) if names else who


# An extractive answer quotes people as "Sergey Lavrov said (TASS, 28 Jan 2022): ...".
_QUOTED_IN_ANSWER = re.compile(r"\b([A-Z][\w’'-]+(?: [A-Z][\w’'-]+)?) said\b")


def quoted_in_answer(answer: str) -> str:
    """The first person an answer quotes ("Lavrov said ..."), or ""."""
    match = _QUOTED_IN_ANSWER.search(answer)
    return match.group(1) if match else ""


class _TurnsHolder(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def turns(self) -> tuple[Turn, ...]: ...

    def runs(self) -> list[tuple[int, int, int]]: ...


def passage_turns(passage: _TurnsHolder) -> tuple[Turn, ...]:
    """The speaker turns of a passage's text, in text offsets: the article's turns when the
    passage carries them (an excerpt may have cut a turn's label), else those its text shows."""
    if not passage.turns:
        return transcript_turns(passage.text, passage.title)
    out = []
    for a, b, at in passage.runs():
        for t in passage.turns:
            if t.start < b and a < t.end:
                out.append(
                    t._replace(
                        start=at + max(t.start, a) - a,
                        end=at + min(t.end, b) - a,
                        body=at + min(max(t.body, a), b) - a,
                    )
                )
    return tuple(out)


# A setting before the question proper: "At the February 11 briefing, how did Sullivan ...".
_SETTING = r"(?:[^,?]{0,80},\s+)?"
_WHAT_SAID_ABOUT = re.compile(
    rf"^\W*{_SETTING}(?:and\s+)?(?:what|how)\s+(?:did|does|do|has|have|had|will|would)\s+(?P<who>.+?)\s+"
    rf"(?:{speech_verbs('what')})\b.*?\b(?:about|on|regarding|concerning)\s+\S",
    re.I,
)


_WHAT_SAID = re.compile(
    rf"^\W*{_SETTING}(?:and\s+)?(?:what|how)\s+(?:did|does|do|has|have|had)\s+\S.{{0,60}}?\s+"
    rf"(?:{speech_verbs('what')})\b",
    re.I,
)


def asks_for_words(question: str) -> bool:
    """ "What did X say ...?", with or without a topic: a question about someone's words."""
    return _WHAT_SAID.match(question) is not None


def asks_what_was_said(question: str) -> str:
    """Who a question of the form "What did X say about T?" asks about, as written; else ""."""
    found = _WHAT_SAID_ABOUT.match(question)
    return found.group("who") if found else ""


class ReporterQuestions:
    """For a unit of a transcript reply: how much of the topic the reporter's question it
    answers (the turn just before the reply's) holds, as a share of the topic's words."""

    def __init__(
        self, texts: Sequence[str], turns: Sequence[Sequence[Turn]], topic: set[str]
    ) -> None:
        self._texts = texts
        self._turns = turns
        self._topic = topic
        self._shares: dict[tuple[int, int], float] = {}

    def share(self, passage: int, position: int) -> float:
        turns = self._turns[passage]
        if not self._topic or not turns:
            return 0.0
        for i, turn in enumerate(turns):
            if turn.start <= position < turn.end:
                if i == 0 or turn.is_question or not turns[i - 1].is_question:
                    return 0.0
                return self._share_of(passage, turns[i - 1])
        return 0.0

    def _share_of(self, passage: int, turn: Turn) -> float:
        key = (passage, turn.start)
        if key not in self._shares:
            text = self._texts[passage][turn.body : turn.end]
            found = self._topic & set(keyword_tokens(text))
            self._shares[key] = len(found) / len(self._topic)
        return self._shares[key]
