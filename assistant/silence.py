"""When the archive is silent: a question about an outlet it does not hold, or naming someone or
something that appears nowhere in it. Each reason is one plain sentence for the refusal."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.corpus_view import CorpusView
from assistant.extractive import question_topic
from assistant.query import Mention, OutletMatcher, ParsedQuestion
from assistant.retrieve import Retriever
from index.articles import MONTH_PATTERN
from index.keyword import STOPWORDS, KeywordIndex, keyword_tokens

# A word of a name: capitalised ("Reuters", "McInerney", "O'Brien") or lower then upper
# ("iPhone", "eBay"); a possessive 's ends it, as does a full stop.
_CAP = r"(?<![\w.-])(?:[^\W\d_a-z]|[a-z]+[A-Z])(?:[\w&-]|(?![’']s\b)[.'’](?=\w))*"
_JOIN = r"(?:of|de|da|du|del|der|van|von|al|bin|la|le|&)"
NAME = rf"{_CAP}(?:[ \t]+(?:{_JOIN}[ \t]+)?(?:{_CAP}|\d+\b))*"
_NAME_RE = re.compile(NAME)

_DETERMINER = r"\b(?i:a|an|the|another|both|one|each|this|that|their|its)\s+"
_ORDINAL = r"(?i:(?:first|second|third|earlier|later|latest|recent|separate|own|original)\s+)?"
# Words for a piece of journalism: an "article" is an outlet's, a "report" may be anyone's.
_PIECE = r"(?i:articles?|pieces?|stor(?:y|ies)|coverage|columns?|op-eds?|editorials?|podcasts?)"
_REPORT = r"(?i:reports?|reporting)"
_WHO = r"(?i:reporters?|journalists?|columnists?|correspondents?|editors?)"
_THE = r"(?i:the\s+)?"
_POSSESSIVE = r"(?:[’']s?)?"

# (pattern with a `name` group, level): level 2 names an outlet by itself; level 1 beside another
# outlet ("an ESPN article and a Cricbuzz report"); level 0 only a masthead ("The Daily Mail").
_CUES: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern), level)
    for pattern, level in (
        (rf"\b{_PIECE}\s+(?i:published\s+)?(?i:from|by|in)\s+{_THE}(?P<name>{NAME})", 2),
        (rf"\b(?i:another)\s+(?i:one\s+)?(?i:from|by|in)\s+{_THE}(?P<name>{NAME})", 2),
        (
            r"\b(?i:reported|published|covered)\s+(?:\w+ly\s+)?(?i:by|in)\s+(?i:both\s+)?"
            rf"{_THE}(?P<name>{NAME})",
            2,
        ),
        (rf"{_DETERMINER}(?P<name>{NAME}){_POSSESSIVE}\s+{_ORDINAL}(?:{_PIECE}|{_WHO})\b", 2),
        (rf"\b{_REPORT}\s+(?i:from|by|in)\s+{_THE}(?P<name>{NAME})", 1),
        (rf"{_DETERMINER}(?P<name>{NAME}){_POSSESSIVE}\s+{_ORDINAL}{_REPORT}\b", 1),
        (rf"\b(?i:did|does|has|have)\s+{_THE}(?P<name>{NAME})\s+(?i:report|write|publish)", 1),
        (rf"\b{_THE}(?P<name>{NAME})\s+(?i:reported|wrote)\s+(?i:that|on|about)\b", 1),
        (rf"\b(?i:according\s+to|as\s+per)\s+{_THE}(?P<name>{NAME})(?![’']s?\b)", 0),
    )
)
# The last word of many a newspaper's name: a name ending so names an outlet.
_MASTHEAD = re.compile(
    r"\b(?:Times|Post|Journal|Herald|Tribune|Gazette|Telegraph|Chronicle|Observer|Express|Mail"
    r"|Inquirer|Courier|Bulletin|Magazine|News|Today|Daily|Weekly|Insider|Wire)$"
)
# Names that are dates or letters, not people or places ("December 15", "II", "S").
_NOT_NAMES = re.compile(
    rf"^(?:(?:{MONTH_PATTERN}|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    r"|(?:[ivxlcdm]+|[a-z])$)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Silence:
    """Why the archive cannot answer a question: one plain sentence, and what it names."""

    reason: str
    names: tuple[str, ...]


def named_outlets(question: str, matcher: OutletMatcher) -> list[Mention]:
    """Outlets the question asks about articles from, held by the archive or not."""
    held = matcher.find(question)
    strong: list[Mention] = []
    weak: list[Mention] = []
    for pattern, level in _CUES:
        for m in pattern.finditer(question):
            start, end = m.span("name")
            name = _strip_openers(question, start, end)
            if name is None or _NOT_NAMES.match(name.value) or _quoted(question, start, end):
                continue
            if question[max(0, name.start - 4) : name.start] == "The ":  # as the outlet writes it
                name = Mention(name.start - 4, name.end, "The " + name.value)
            if level == 2 or _MASTHEAD.search(name.value):
                strong.append(name)
            elif level == 1:
                weak.append(name)
    found = strong + (weak if strong or held else [])
    return _merge([*held, *found])


def absent_outlets(
    question: str,
    matcher: OutletMatcher,
    authors: set[str],
    mentions: Sequence[Mention] | None = None,
) -> list[str]:
    """Outlets the question names (or of `mentions`, those it names as sources) that the archive
    does not hold (nor an author it holds)."""
    missing = []
    for mention in named_outlets(question, matcher) if mentions is None else mentions:
        name = mention.value
        if matcher.holds(name) or _words(name) in authors or name in missing:
            continue
        missing.append(name)
    return missing


def named_entities(question: str, exclude: Iterable[Mention] = ()) -> list[Mention]:
    """Names in the question (people, companies, places, products), outside `exclude`; a word
    that only opens the question or a clause ("Considering ...", "Did ...") is not a name."""
    blocked = list(exclude)
    found: list[Mention] = []
    for m in _NAME_RE.finditer(question):
        if any(not (m.end() <= b.start or m.start() >= b.end) for b in blocked):
            continue
        name = _strip_openers(question, m.start(), m.end())
        if name is not None and not _NOT_NAMES.match(name.value):
            found.append(name)
    return found


def absent_entities(
    names: Sequence[Mention], keyword: KeywordIndex, article_of: np.ndarray
) -> list[str]:
    """The names no article holds: a word of the name is in none, or none has them all
    (`article_of`: each keyword row's article)."""
    missing = []
    for name in names:
        if _in_one_article(keyword_tokens(name.value), keyword, article_of):
            continue  # as written ("USB-C-to-USB-C")
        # "Capitol-anniversary": the capitalised part names; "Gambian": the archive's "Gambia"
        terms = keyword_tokens(" ".join(_named_parts(name.value)))
        if len(terms) > 1:
            terms = [
                t for t in terms if keyword.chunks_with(t).size or not _spelt_otherwise(t, keyword)
            ]
        if not terms or _in_one_article(terms, keyword, article_of):
            continue
        if len(terms) == 1 and _spelt_otherwise(terms[0], keyword):
            continue
        missing.append(name.value)
    # "Schäfer" after "Ralf-Peter Schäfer" says nothing more.
    return [
        name
        for name in dict.fromkeys(missing)
        if not any(
            name != other and set(_words(name).split()) < set(_words(other).split())
            for other in missing
        )
    ]


def archive_silence(retriever: Retriever, parsed: ParsedQuestion) -> Silence | None:
    """Why the archive is silent on the question (as `retriever.understand` read it), or None
    when it may answer it."""
    return silence_in(parsed, retriever.view(), retriever.store.keyword)


def silence_in(parsed: ParsedQuestion, view: CorpusView, keyword: KeywordIndex) -> Silence | None:
    """Why the archive of `view` and `keyword` is silent on the parsed question, or None."""
    # Asked what someone said, an outlet named after them is what they spoke about ("how did
    # Psaki respond to a New York Times report"), not where to look: a name like any other.
    said_at = min((i for s in parsed.speakers if (i := parsed.text.find(s)) >= 0), default=-1)
    mentioned = named_outlets(parsed.text, view.matcher)
    sources = [m for m in mentioned if said_at < 0 or m.start < said_at]
    outlets = absent_outlets(parsed.text, view.matcher, archive_authors(view), sources)
    if outlets:
        return Silence(f"The archive holds no articles from {_listed(outlets)}.", tuple(outlets))
    held = [m for m in mentioned if m in sources or view.matcher.holds(m.value)]
    skip = [*held, *parsed.date_mentions]
    names = absent_entities(named_entities(parsed.text, skip), keyword, view.article_of)
    if said_at >= 0:  # "What did Fauci say about the monkeypox outbreak?"
        asked = parsed.text[said_at:]
        topic = absent_topic_words(asked, parsed.speakers[0], keyword)
        names += [w for w in topic if w not in names]
    if names:
        return Silence(f"No article in the archive mentions {_listed(names)}.", tuple(names))
    return None


def absent_topic_words(asked: str, speaker: str, keyword: KeywordIndex) -> list[str]:
    """Words of the topic of "what did `speaker` say about T?" (`asked`: from the speaker on)
    that no article holds, in any ending: the person cannot have spoken on it here."""
    topic = question_topic(asked, speaker)
    if topic == asked:  # no topic named: "What did Psaki say?"
        return []
    missing = []
    for word in re.findall(r"[A-Za-z][\w’']*", topic):
        terms = [t for t in keyword_tokens(word) if len(t) >= 5]
        if terms and all(
            not keyword.chunks_with(t).size and not keyword.has_prefix(t[: len(t) - 2])
            for t in terms
        ):
            missing.append(word)
    return missing


def _strip_openers(text: str, start: int, end: int) -> Mention | None:
    """The name in text[start:end] without the capitalised word that opens the question or a
    clause ("Considering", "Did"): such a word is capitalised for its place, not as a name."""
    words = list(re.finditer(r"\S+", text[start:end]))
    opens = start == 0 or re.search(r"(?:^|[.?!:;\"“(]|\n)\s*$", text[:start]) is not None
    while words and (
        words[0].group().lower() in STOPWORDS
        or not words[0].group()[0].isalpha()
        or (opens and not _distinctive(words[0].group()))
    ):
        words.pop(0)
        opens = False
    if not words:
        return None
    a, b = start + words[0].start(), start + words[-1].end()
    return Mention(a, b, text[a:b].rstrip(".,"))


_QUOTED = re.compile(r"(?:^|(?<=[\s(]))(['\"“‘])(?=\S)(.+?)(?<=\S)['\"”’](?=[\s,.?!;:)]|$)")


def _quoted(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is inside quotes: a title ("the 'Rookie of the Year' article")."""
    return any(m.start() < start and end < m.end() for m in _QUOTED.finditer(text))


def _distinctive(word: str) -> bool:
    """A word no sentence start explains: "TomTom", "BBC", "iPhone", "F1"."""
    return bool(re.search(r"[a-z][A-Z]|[A-Z]{2}|\d", word))


def _in_one_article(terms: Sequence[str], keyword: KeywordIndex, article_of: np.ndarray) -> bool:
    """Whether one article holds every term (they may sit in different chunks of it)."""
    articles: np.ndarray | None = None
    for term in dict.fromkeys(terms):
        rows = keyword.chunks_with(term)
        rows = rows[rows < len(article_of)]
        found = np.unique(article_of[rows])
        articles = found if articles is None else np.intersect1d(articles, found, True)
        if not articles.size:
            return False
    return True


def _spelt_otherwise(term: str, keyword: KeywordIndex) -> bool:
    """A long word the archive spells with another ending ("Zelensky", "Zelenskyy"; "Gambian",
    "Gambia")."""
    return len(term) >= 7 and keyword.has_prefix(term[: len(term) - 2])


def _named_parts(name: str) -> list[str]:
    """The parts of a name that name: lower-case parts of a hyphened word are words, not names
    ("Capitol-anniversary")."""
    kept = []
    for word in name.split():
        parts = word.split("-")
        kept.append(
            word
            if not any(p.islower() for p in parts)
            else " ".join(p for p in parts if p and not p.islower())
        )
    return [k for k in kept if k]


def _merge(mentions: Sequence[Mention]) -> list[Mention]:
    """Mentions without overlaps, earlier and longer first."""
    kept: list[Mention] = []
    for m in sorted(mentions, key=lambda m: (m.start, m.start - m.end)):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return kept


def _words(name: str) -> str:
    return " ".join(re.findall(r"\w+", name.lower()))


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_author_cache: dict[str, set[str]] = {}
_author_lock = threading.Lock()


def archive_authors(view: CorpusView) -> set[str]:
    """The corpus's authors' names (lower-case words), read once per state of the corpus."""
    with _author_lock:
        cached = _author_cache.get(view.fingerprint)
    if cached is None:
        cached = set()
        # Each distinct byline once: an article's chunks repeat it (1M chunks, 75k articles).
        for byline in {str(value or "") for value in view.column("author")}:
            for author in re.split(r",|\band\b|&", byline):
                if len(_words(author).split()) > 1:  # a person; "Reuters" credits a wire
                    cached.add(_words(author))
        with _author_lock:
            _author_cache.clear()
            _author_cache[view.fingerprint] = cached
    return cached
