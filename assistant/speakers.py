"""Who said what: the speech verbs, the patterns that attribute words to a speaker, and names."""

from __future__ import annotations

import re
from collections.abc import Iterator

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


# A transcript's speaker labels: "MS. PSAKI:", "THE PRESIDENT:", "Q" (a reporter).
TRANSCRIPT_LABEL = re.compile(
    r"(?m)^[^\S\n]*(?P<label>(?:MR|MS|MRS|DR)\.[^\S\n]+[A-Z][A-Z'’-]+|THE (?:VICE )?PRESIDENT|"
    r"(?:SECRETARY|AMBASSADOR|GENERAL|ADMIRAL|SENATOR|GOVERNOR|ADMINISTRATOR|DIRECTOR|"
    r"DEPUTY SECRETARY|PRIME MINISTER|CHANCELLOR)[^\S\n]+[A-Z][A-Z'’-]+|"
    r"SENIOR ADMINISTRATION OFFICIAL(?:[^\S\n]+\#?\d)?|Q(?=[^\S\n]+[A-Z(]))(?::|[^\S\n]+)"
)


def transcript_label(text: str, position: int) -> str | None:
    """The transcript speaker label in force at `position` (the last one at or before it)."""
    label = None
    for match in TRANSCRIPT_LABEL.finditer(text, 0, min(len(text), position + 60)):
        if match.start() > position + 1:
            break
        label = match.group("label")
    return label


def label_name(label: str) -> str:
    """The speaker a transcript label names: "MS. PSAKI" -> "Psaki"."""
    words = label.replace(".", "").split()
    if words[0] in ("MR", "MS", "MRS", "DR"):
        words = words[1:]
    return " ".join("-".join(part.capitalize() for part in w.split("-")) for w in words)


# Words attributed to someone in a chunk --------------------------------------------------------

_CHUNK_VERBS = f"(?:{speech_verbs('chunk')})"


def speaking_pattern(name: str) -> re.Pattern[str]:
    """Words attributed to `name` (a surname): "Lavrov said", "said Lavrov", "according to
    Lavrov", "Lavrov: ...", or a quotation closed next to the name ('...," Lavrov noted')."""
    who = rf"\b{re.escape(name)}\b"
    return re.compile(
        rf"{who}\s+(?:\w+\s+){{0,2}}?{_CHUNK_VERBS}\b"
        rf"|\b{_CHUNK_VERBS}\s+(?:[A-Z][\w.]*\s+){{0,3}}?{who}"
        rf"|{who}\s*:"
        rf"|[”\"]\s*(?:\w+\s+){{0,3}}?{who}"
    )


# Speakers a question asks about ----------------------------------------------------------------

_NAME_WORD = r"(?:[A-Z][\w’'\-]*\.?|[A-Z]\.)"
_NAME = rf"(?P<name>{_NAME_WORD}(?:\s+(?:de|van|von|bin|al|da|del|la|le)?\s*{_NAME_WORD}){{0,3}})"
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
    return bool(asked and speaker and name_tokens(asked) & name_tokens(speaker))


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
