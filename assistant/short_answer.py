"""The short answer: the few words a question asks for (a date, a number, a name), found as a
verbatim span of a retrieved sentence and scored by how the passages agree on it."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.citations import passage_units
from assistant.retrieve import Passage
from index.articles import MONTH_PATTERN
from index.keyword import STOPWORDS, keyword_tokens

# Short answers are looked for in the best few passages: lower ones add noise, not answers.
ANSWER_PASSAGES = 8
# A mention this close to the question (see find_short_answers) counts fully towards agreement.
AGREEING = 0.3
# An apposition weighted this much describes the name as what the question asks for.
DESCRIBED = 2.0

KINDS = ("date", "number", "amount", "person", "organisation", "place", "title", "choice")

_PERSON_NOUNS = """person individual people man woman men women player quarterback athlete
    executive ceo founder co-founder cofounder politician leader official singer artist actor
    actress coach president minister senator entrepreneur billionaire star celebrity author writer
    journalist figure boxer footballer superstar
    striker pitcher receiver manager chairman chairwoman
    spokesperson spokesman spokeswoman lawyer judge governor mayor investor musician rapper
    director producer host candidate defendant prosecutor witness""".split()
_ORGANISATION_NOUNS = """company companies organisation organization organisations organizations
    entity entities firm firms team teams institution institutions agency agencies group business
    corporation bank exchange startup start-up brand platform network club league government
    party union manufacturer retailer developer studio publisher outlet publication newspaper
    broadcaster website app service giant maker insurer lender fund regulator authority
    department ministry court body""".split()
_PLACE_NOUNS = """country countries city cities state states region place town nation location
    capital province county continent island venue stadium""".split()
_TITLE_NOUNS = """book film movie show series title song album game novel episode documentary
    podcast play product device phone model car vehicle gadget console""".split()
_DATE_NOUNS = "date day year month time week weekday".split()
_AMOUNT_NOUNS = "price amount sum cost value fee fine salary revenue budget".split()

_HEAD = re.compile(
    r"(?:^|[,;:]\s*|\b(?:and|but)\s+)(?:(?:on|in|at|by|for|from|to|during)\s+)?(?P<wh>which|what|who|whom|whose|where|when|how\s+(?:many|much))"
    r"\b(?:\s+(?:is|was|are|were)\s+the\s+(?:name\s+of\s+the\s+)?|\s+(?:kind|type|sort)\s+of\s+|\s+)?"
    r"(?P<noun>[\w.-]+(?:\s+[\w.-]+){0,2})?",
    re.I,
)
_AUXILIARIES = frozenset(
    """did does do is was are were has have had will would can could should may might""".split()
)
_CHOICE = re.compile(r"\b(?P<a>[A-Za-z][\w-]*)\s+or\s+(?P<b>[A-Za-z][\w-]*)\b")
_YES_NO_START = re.compile(
    r"^\W*(?:did|does|do|is|are|was|were|has|have|had|can|could|will)\b", re.I
)


def answer_kind(question: str) -> str:
    """What the question asks for: one of KINDS, or "" (a yes/no question, an explanation)."""
    return _asked(question)[0]


def _asked(question: str) -> tuple[str, str]:
    """The kind of answer asked for, and the noun that names it ("manufacturer" in "Which gun
    manufacturer ...?"; "" when the question word alone says it)."""
    text = " ".join(question.split())
    if _YES_NO_START.match(text):
        return ("choice" if choice_options(text) else ""), ""
    match = _HEAD.search(text)
    if match is None:
        return "", ""
    wh = " ".join(match.group("wh").lower().split())
    heads = re.findall(r"[\w-]+", (match.group("noun") or "").lower())
    # The noun asked about ends where the verb starts: "which company did President Biden ..."
    # asks for a company; "what did President Biden say" asks for no name at all.
    verb = next((i for i, w in enumerate(heads) if w in _AUXILIARIES), len(heads))
    heads = heads[:verb]
    if (
        wh in ("who", "whom", "whose")
        and match.group("noun")
        and "the" not in match.group(0)[: match.start("noun") - match.start()].split()
    ):
        heads = []  # "who hosts APEC": a verb follows, not a kind ("who is the host": a kind)
    by_wh = {"when": "date", "how many": "number", "how much": "amount", "where": "place"}
    if wh in by_wh:
        return by_wh[wh], ""
    for head in heads:  # the first word that names a kind: "which country hosts ..."
        for kind, nouns in (
            ("person", _PERSON_NOUNS),
            ("organisation", _ORGANISATION_NOUNS),
            ("place", _PLACE_NOUNS),
            ("title", _TITLE_NOUNS),
            ("date", _DATE_NOUNS),
            ("amount", _AMOUNT_NOUNS),
        ):
            if head in nouns or head.removesuffix("s") in nouns:
                return kind, head
    if wh in ("who", "whom", "whose"):
        return "person", ""
    return "", ""


def choice_options(question: str) -> tuple[str, str] | None:
    """The two options of an "X or Y?" question ("before or after"), or None."""
    matches = list(_CHOICE.finditer(question))
    if not matches:
        return None
    a, b = matches[-1].group("a"), matches[-1].group("b")
    if a.lower() in STOPWORDS - {"before", "after"} or b.lower() in STOPWORDS - {"before", "after"}:
        return None
    return a, b


@dataclass(frozen=True, slots=True)
class Found:
    """A short answer before numbering: the span [start, end) of a passage's text, inside the
    sentence [sentence_start, sentence_end)."""

    text: str
    passage: Passage
    start: int
    end: int
    sentence_start: int
    sentence_end: int
    kind: str
    score: float = 0.0


@dataclass
class _Group:
    """The mentions of one candidate answer across the passages."""

    mentions: list[tuple[Found, float, bool]] = field(default_factory=list)  # closeness, cited
    forms: dict[str, int] = field(default_factory=dict)  # written forms, counted
    person_like: float = 0.0
    org_like: int = 0
    described: bool = False  # an apposition describes it in the question's words and year


# Candidate spans --------------------------------------------------------------------------------

_NAME_WORD = r"(?:[A-Z][\w’'&.]*(?:-[A-Z0-9][\w’'&.]*)*|[a-z]+[A-Z]\w*)"
# A number may sit inside a name ("Nord Stream 2 AG"), not at its edges.
_NAME = re.compile(
    rf"(?<![\w’'-]){_NAME_WORD}(?:(?:\s+\d{{1,3}})?(?:\s+|\s+(?:of|de|del|van|von|der|la|le|&|the)\s+)"
    rf"{_NAME_WORD})*(?!\w)"
)
# "Russian forces": a people's adjective before a noun, not a name (of a company, a place).
_ADJECTIVE = re.compile(r"(?:ian|ean|ese|ish|ican)$")
_ORG_WORDS = frozenset(
    """inc corp corporation company co group ltd llc plc research games bank reserve
    association commission department ministry university institute foundation agency council
    committee capital partners ventures labs technologies systems network news media records
    studios entertainment motors airlines holdings fund trust league club united city fc party
    court congress senate house administration office service exchange board authority police
    army force times post journal sportsbook sportsbooks cooperation
    organization organisation alliance federation coalition school college hospital church
    nations images""".split()
)
# Words that make a capitalised run a thing or an event, not a person ("Eras Tour").
_THING_WORDS = frozenset(
    """tour stadium arena park street avenue center centre hall award awards prize cup bowl
    championship conference summit festival day week season act bill law war river valley lake
    mountain island
    county state province square bridge airport station museum show series""".split()
)
_NOT_NAMES = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december today yesterday tomorrow tonight
    mr mrs ms dr sir jr sr i ok tv ceo cfo coo cto
    ai nfl nba mlb nhl gdp us uk eu un""".split()
)
_TITLE_BEFORE = re.compile(
    r"(?:\b(?:mr|mrs|ms|dr|sir|ceo|founder|chief|executive|president|chairman|chairwoman|"
    r"co-founder|cofounder|quarterback|coach|star|singer|actor|actress|senator|minister|judge|"
    r"manager|player|receiver|rapper|director|host|governor)\.?|\b(?:he|she)\b[^.]{0,3})\s*$",
    re.I,
)
_PERSON_TITLES = frozenset(
    """president senator governor secretary minister ambassador mr mrs ms dr judge justice
    chancellor congressman congresswoman representative mayor general admiral""".split()
)
_PERSON_AFTER = re.compile(r"^(?:,\s*(?:who|\d{2},)|\s+(?:said|says|told|who|himself|herself)\b)")

_MONTH = rf"(?:{MONTH_PATTERN})\.?"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|{_MONTH},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}"
    # A weekday alone, not one that a date follows ("Friday, January 21, 2022": the date).
    rf"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)(?!,?\s+{_MONTH}\s+\d)"
    r"|(?<=\bin\s)(?:19|20)\d\d|(?<=\bsince\s)(?:19|20)\d\d)\b",
    re.I,
)
_SCALE = r"(?:\s*(?:million|billion|trillion|thousand|hundred|bn|mn|m|k)\b)?"
_AMOUNT = re.compile(
    rf"(?:[$€£¥₹]|\b(?:US|A|C|NZ|HK)\$)\s?\d[\d,]*(?:\.\d+)?{_SCALE}"
    rf"|\b\d[\d,]*(?:\.\d+)?{_SCALE}\s*(?:%|percent\b|per\s+cent\b|dollars\b|euros\b|pounds\b|"
    r"rubles\b|roubles\b|yuan\b|yen\b|rupees\b|cents\b)"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|dozens?|hundreds|thousands|millions"
)
_NUMBER = re.compile(
    rf"\b(?:\d[\d,]*(?:\.\d+)?{_SCALE}|(?:{_NUMBER_WORDS})(?:[\s-](?:{_NUMBER_WORDS}))*)"
    r"(?=\s+[a-z])",
    re.I,
)
_QUOTED_TITLE = re.compile(r"[“\"‘'](?P<title>[A-Z0-9][^“”\"‘’']{1,80}?)[”\"’']")


def _spans(kind: str, text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Candidate spans of `kind` in text[start:end] (offsets in `text`)."""
    piece = text[start:end]
    if kind == "date":
        found = [m.span() for m in _DATE.finditer(piece)]
    elif kind == "amount":
        found = [m.span() for m in _AMOUNT.finditer(piece)]
    elif kind == "number":
        amounts = [m.span() for m in _AMOUNT.finditer(piece)]
        found = [
            m.span()
            for m in _NUMBER.finditer(piece)
            if not any(a <= m.start() < b for a, b in amounts) and not _is_year(m.group())
        ]
    elif kind == "title":
        found = [m.span("title") for m in _QUOTED_TITLE.finditer(piece)]
        found += [s for s in _name_spans(piece) if len(piece[s[0] : s[1]].split()) > 1]
    else:
        found = _name_spans(piece)
    return [(start + a, start + b) for a, b in found]


def _is_year(word: str) -> bool:
    return bool(re.fullmatch(r"(?:19|20)\d\d", word))


def _name_spans(text: str) -> list[tuple[int, int]]:
    """Capitalised runs of words, without sentence-initial function words around them."""
    spans = []
    for match in _NAME.finditer(text):
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", match.group())]
        while words and _weak(match.group()[words[0][0] : words[0][1]]):
            words.pop(0)
        while words and _weak(match.group()[words[-1][0] : words[-1][1]]):
            words.pop()
        if words and text[match.start() + words[-1][1] : match.start() + words[-1][1] + 1] == ":":
            continue  # a transcript's speaker label: "MS. PSAKI:"
        if words:
            a, b = match.start() + words[0][0], match.start() + words[-1][1]
            value = text[a:b]
            for suffix in ("'s", "’s", "'", "’", "."):
                if value.endswith(suffix) and len(value) > len(suffix) + 1:
                    b -= len(suffix)
                    value = text[a:b]
            spans.append((a, b))
    return spans


def _weak(word: str) -> bool:
    lower = word.lower().strip(".,’'")
    return (
        lower in STOPWORDS
        or len(lower) < 2  # "Q", a reporter's label; initials alone name nobody
        or lower.replace(".", "") in _NOT_NAMES
        or lower in ("&", "and", "of")
        or bool(re.fullmatch(r"[qh][1-4]", lower))  # a quarter or half of a year
    )


# Scoring ----------------------------------------------------------------------------------------


def _key(kind: str, value: str) -> str:
    if kind in ("date", "number", "amount"):
        return re.sub(r"[^\w.%$€£]+", " ", value.lower()).strip()
    return " ".join(re.findall(r"\w[\w-]*", value.lower().replace("’s", "").replace("'s", "")))


def find_short_answers(
    question: str,
    passages: Sequence[Passage],
    cited: Sequence[tuple[Passage, int, int]] = (),
    *,
    kind: str | None = None,
    max_passages: int = ANSWER_PASSAGES,
    only_cited: bool = False,
) -> list[Found]:
    """The short answer to `question` from the passages, best first: one, two when the passages
    disagree and both are well supported, or none. `cited`: the answer's sentences (passage and
    span of its text), favoured, or with `only_cited` the only ones searched."""
    asked_kind, noun = _asked(question)
    kind = asked_kind if kind is None else kind
    if kind in ("", "choice"):
        return []
    asked = set(keyword_tokens(question))
    question_words = {w.lower() for w in re.findall(r"[\w-]+", question)}
    outlets = {p.source.lower() for p in passages if p.source}
    years = set(_YEAR.findall(question))
    groups: dict[str, _Group] = defaultdict(_Group)
    # A date or a number belongs to the event of its own clause ("handed over ... on December
    # 15"), more than a name does, which a sentence describes as a whole.
    near_weight = 0.6 if kind in ("date", "number", "amount") else 0.3
    # Words the passages write in lower case: "Yesterday" opening a sentence is one of them.
    common = {w for p in passages[:max_passages] for w in re.findall(r"\b[a-z][a-z]+\b", p.text)}
    seen: set[tuple[str, str, str]] = set()
    for rank, passage in enumerate(passages[:max_passages]):
        cited_spans = [(a, b) for p, a, b in cited if p.chunk_id == passage.chunk_id]
        for unit in passage_units(passage, rank):
            closeness = _closeness(asked, unit.text)
            is_cited = any(a < unit.end and unit.start < b for a, b in cited_spans)
            if only_cited and not is_cited:
                continue
            for a, b in _spans(kind, passage.text, unit.start, unit.end):
                value = passage.text[a:b]
                key = _key(kind, value)
                if not key or _given(key, question_words) or key in outlets:
                    continue
                if kind in _NAMED_KINDS and (
                    _adjective(value, passage.text, b)
                    or (value.lower() in common and _opens(passage.text, unit.start, a))
                ):
                    continue
                clause = _clause(passage.text, a, b, unit.start, unit.end)
                where = (passage.article_id, key, " ".join(clause.split()))
                if where in seen:  # the same words again: overlapping passages, a repeat
                    continue
                seen.add(where)
                group = groups[key]
                found = Found(value, passage, a, b, unit.start, unit.end, kind)
                near = _closeness(asked, clause)
                weight = (closeness + near_weight * near) / (1 + 0.15 * rank)
                if _other_year(years, clause):
                    weight *= 0.3  # "hosts APEC in 2022?" against "will host APEC in 2023"
                described = _described(
                    kind, noun, asked, years, question_words, passage.text, (unit.start, a, b)
                )
                if _partly_given(key, question_words):
                    weight *= 0.5  # "Sandy Hook Elementary School" for "... Sandy Hook ...?"
                weight *= described
                group.described |= described >= DESCRIBED
                group.mentions.append((found, weight, is_cited))
                group.forms[value] = group.forms.get(value, 0) + 1
                if kind in _NAMED_KINDS:
                    person = _person_like(value, passage.text, a, b)
                    if kind == "place" and person < 1.0:
                        person = 0.0  # only a title or "said" tells a person from "New York"
                    group.person_like += person
                    group.org_like += _org_like(value) and not person
    return _ranked(kind, groups)


def _ranked(kind: str, groups: dict[str, _Group]) -> list[Found]:
    """The best candidate, and the second where the passages disagree; none without one."""
    if kind in ("person", "organisation"):
        _merge_short_forms(groups, kind)
    scored = sorted(
        ((_score(kind, g), key) for key, g in groups.items() if g.mentions), reverse=True
    )
    if not scored:
        return []
    best = _pick(groups[scored[0][1]], scored[0][0])
    if len(scored) > 1 and _disagree(kind, scored, groups):
        return [best, _pick(groups[scored[1][1]], scored[1][0])]
    return [best]


_NAMED_KINDS = ("person", "organisation", "place")


def _described(
    kind: str,
    noun: str,
    asked: set[str],
    years: set[str],
    question_words: set[str],
    text: str,
    where: tuple[int, int, int],
) -> float:
    """How surely the words around a name (sentence start, name start, name end) describe it as
    what is asked: an apposition in the question's words and year, or the question's own noun
    right before it ("the gun manufacturer Remington"); 1.0 for neither."""
    start, a, b = where
    described = _apposition_weight(asked, years, text, b) if kind in _NAMED_KINDS else 1.0
    if noun and _named_before(noun, question_words, text, start, a):
        described = max(described, DESCRIBED)
    return described


def _adjective(value: str, text: str, end: int) -> bool:
    """A single word like "Russian" before a lower-case word: describes, names nothing."""
    return (
        " " not in value
        and bool(_ADJECTIVE.search(value))
        and bool(re.match(r"\s+[a-z]", text[end : end + 3]))
    )


def _named_before(
    noun: str, question_words: set[str], text: str, start: int, position: int
) -> bool:
    """Whether the question's own words for what it asks ("gun manufacturer") come right before
    the name: the noun and the word before it ("parent company Alphabet" is not "Which
    company ...?")."""
    before = re.findall(r"[\w-]+", text[max(start, position - 40) : position].lower())
    return (
        len(before) >= 2
        and before[-1].removesuffix("s") == noun.removesuffix("s")
        and before[-2] in question_words
        and before[-2] not in STOPWORDS
    )


def _partly_given(key: str, question_words: set[str]) -> bool:
    """Two of the name's words, or half of them, are the question's: what it asks about, not
    the answer."""
    words = key.split()
    given = sum(w in question_words for w in words)
    return len(words) > 1 and (given >= 2 or 2 * given >= len(words))


def _opens(text: str, start: int, position: int) -> bool:
    """Whether `position` opens the sentence that starts at `start`, or what follows a colon in
    it (quotes and dashes aside)."""
    before = text[start:position].strip(" \n\t\"“‘'—-(")
    return not before or before.endswith(":")


def _clause(text: str, start: int, end: int, lo: int, hi: int) -> str:
    """The words around [start, end) up to the nearest sentence break, at most 60 characters."""
    left = max(text.rfind(". ", lo, start) + 1, lo, start - 60)
    right = text.find(". ", end, hi)
    return text[left : min(right if right >= 0 else hi, end + 60)]


_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


# "Thailand, the 2022 APEC host, Peru, the 2024 APEC host": what a name is, said right after it.
_APPOSITION = re.compile(r",\s+(?:the|a|an)\s+([^,;:.()“”\"]{2,60})")


def _apposition_weight(asked: set[str], years: set[str], text: str, end: int) -> float:
    """More weight to a name that an apposition describes in the question's words (and year),
    less to one whose apposition names another year."""
    match = _APPOSITION.match(text, end)
    if match is None:
        return 1.0
    words = match.group(1)
    named = set(_YEAR.findall(words))
    if years and named:
        return 2.0 if years & named else 0.3
    return 1.0 + _closeness(asked, words)


def _other_year(years: set[str], clause: str) -> bool:
    """The question names a year and the clause names only other years."""
    named = set(_YEAR.findall(clause))
    return bool(years and named and not years & named)


def _closeness(asked: set[str], text: str) -> float:
    """The share of the question's words in the text."""
    if not asked:
        return 0.0
    return len(asked & set(keyword_tokens(text))) / len(asked)


def _given(key: str, question_words: set[str]) -> bool:
    """The question already names it (every word of it is in the question)."""
    words = key.split()
    return all(w in question_words for w in words)


def _person_like(value: str, text: str, start: int, end: int) -> float:
    """How surely a person's name: 1 when introduced by a title ("CEO Sam Altman", "President
    Joseph R. Biden") or followed by "said"; 0.4 for two to four capitalised words without a
    company word; else 0."""
    words = value.split()
    if any(w.lower().strip(".") in _ORG_WORDS | _THING_WORDS for w in words):
        return False
    titled = len(words) > 1 and words[0].lower().strip(".") in _PERSON_TITLES
    if (
        titled
        or _TITLE_BEFORE.search(text[max(0, start - 40) : start])
        or _PERSON_AFTER.match(text[end : end + 20])
    ):
        return 1.0
    shaped = 2 <= len(words) <= 4 and all(
        w[0].isupper() and any(c.islower() for c in w) and not re.search(r"[a-z][A-Z]", w)
        for w in words
    )
    return 0.4 if shaped else 0.0


def _org_like(value: str) -> bool:
    words = value.split()
    return (
        len(words) == 1
        or any(w.lower().strip(".") in _ORG_WORDS for w in words)
        or bool(re.search(r"[a-z][A-Z]|^[A-Z]{2,}$", value))
    )


def _merge_short_forms(groups: dict[str, _Group], kind: str) -> None:
    """Short forms count for the full name the passages give: "Bankman-Fried" for "Sam
    Bankman-Fried" (a person's surname), "Fed" for "Federal Reserve" (a shortened name)."""
    longer = sorted(
        (k for k in groups if len(k.split()) > 1), key=lambda k: -len(groups[k].mentions)
    )
    for key in [k for k in groups if len(k.split()) == 1]:
        target = next((k for k in longer if _short_form(key, k, kind)), None)
        if target is not None and (kind != "person" or groups[target].person_like):
            group = groups.pop(key)
            groups[target].mentions.extend(group.mentions)
            groups[target].person_like += group.person_like
            groups[target].org_like += group.org_like


def _short_form(short: str, full: str, kind: str) -> bool:
    words = full.split()
    if kind == "person":
        return short == words[-1]
    return len(short) >= 3 and (
        (words[0].startswith(short) and words[0] != short) or short == "".join(w[0] for w in words)
    )


def _score(kind: str, group: _Group) -> float:
    """Agreement across articles and outlets, closeness to the question, cited, kind."""
    closeness = max(c for _, c, _ in group.mentions)
    cited = any(is_cited for _, _, is_cited in group.mentions)
    mentions = len(group.mentions)
    # Agreement counts as far as the agreeing mentions bear on the question: a name every
    # article repeats in passing ("the United States") is not thereby the answer.
    articles: dict[str, float] = {}
    sources: dict[str, float] = {}
    for found, weight, _ in group.mentions:
        support = min(1.0, weight / AGREEING)
        articles[found.passage.article_id] = max(articles.get(found.passage.article_id, 0), support)
        sources[found.passage.source] = max(sources.get(found.passage.source, 0), support)
    score = (
        0.25 * sum(articles.values())
        + 0.15 * sum(sources.values())
        + 0.15 * math.log2(1 + mentions)
        + closeness
        + 0.1 * cited
        + 0.5 * group.described
    )
    if kind in _NAMED_KINDS:
        person = min(1.0, 2 * group.person_like / mentions)
        fit = (
            person
            if kind == "person"
            else 1 - person  # a place is no person: "President Joseph R. Biden" for a county
            if kind == "place"
            else (1 - person) * (0.5 + 0.5 * group.org_like / mentions)
        )
        if group.described:
            fit = 1.0  # "Peru, the 2024 APEC host": the text says it is what is asked for
        score *= 0.3 + 0.7 * fit
    return score


def _pick(group: _Group, score: float) -> Found:
    """The mention to show: the fullest written form, in the best placed sentence."""
    longest = max(len(form.split()) for form in group.forms)
    forms = {f for f in group.forms if len(f.split()) == longest}
    form = max(forms, key=lambda f: group.forms[f])
    mentions = [m for m in group.mentions if m[0].text == form] or group.mentions
    found = max(mentions, key=lambda m: (m[2], m[1]))[0]
    return Found(
        found.text,
        found.passage,
        found.start,
        found.end,
        found.sentence_start,
        found.sentence_end,
        found.kind,
        score,
    )


def _disagree(kind: str, scored: Sequence[tuple[float, str]], groups: dict[str, _Group]) -> bool:
    """The two best candidates are both well supported: several articles each, close scores."""
    (first, a), (second, b) = scored[0], scored[1]
    if kind not in ("date", "number", "amount") or second < 0.8 * first:
        return False
    return all(len({m.passage.article_id for m, _, _ in groups[k].mentions}) >= 2 for k in (a, b))
