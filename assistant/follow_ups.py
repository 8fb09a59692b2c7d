"""Follow-ups read against the shape of the previous question and the short answer it got.

"Where will the summit be held?" / "Los Angeles [1]. ..." then "And when?" is the same question
with its wh-phrase swapped; "What does it change?" after "Which bill ...?" / "S. 2959 [1]." has
"it" standing for the short answer; "the year after" moves the year the previous question named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AUX = r"(?:did|does|do|is|are|was|were|has|have|had|will|would|can|could|should|may|might|must)"
_DETS = frozenset("the a an this that these those its his her their our my your".split())
_SUBJECT_PRONOUNS = frozenset("it that this they he she we you i".split())
_LINKS = frozenset("of and the for de".split())
_WH = re.compile(
    rf"^(?P<wh>who|whom|where|when|why"
    rf"|how\s+(?:many|much)(?:\s+(?!{_AUX}\b)\w+){{0,2}}?(?=\s+{_AUX}\b)|how(?:\s+(?:long|often|far))?"
    rf"|which\s+\w+(?:\s+(?!{_AUX}\b)\w+(?=\s+{_AUX}\b))?"
    rf"|what\s+(?!{_AUX}\b)\w+(?:\s+(?!{_AUX}\b)\w+)?(?=\s+{_AUX}\b)|what)"
    rf"(?:\s+(?P<aux>{_AUX}))?\s+(?P<clause>.+?)\s*\??$",
    re.I,
)
_YES_NO = re.compile(rf"^{_AUX}\s+\S", re.I)
# "Los Angeles [1]. The summit ...": a lead of a few words ending right at its citation
_SHORT_LEAD = re.compile(r"^\s*(?P<short>[^\[\]\n]+?) \[\d+\]\.")
_MAX_SHORT_WORDS = 8
ELLIPTIC = re.compile(
    r"^\s*(?:and|but|so|ok(?:ay)?,?)?\s*(?P<wh>when|where|why|how(?:\s+(?:many|much|long|come))?"
    r"|who(?:m)?(?:\s+else)?|what\s+else|which\s+(?:\w+\s+)?else)"
    r"(?:\s+exactly)?(?:\s+(?:was|is|did)\s+(?:that|it|this))?\s*\??\s*$",
    re.I,
)
_DATE_ONLY = re.compile(
    r"^(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?"
    r"(?:,?\s+\d{4})?|\d{1,2}\s+[a-z]+(?:\s+\d{4})?|\d{4}|(?:mon|tues|wednes|thurs|fri|satur|sun)day)$",
    re.I,
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
YEAR_SHIFT = re.compile(
    r",?\s*\b(?:(?:in\s+)?the\s+(?P<a>following|next|previous|prior)\s+year"
    r"|(?:in\s+)?the\s+year\s+(?P<b>after|before)(?:\s+that)?"
    r"|a\s+year\s+(?P<c>later|earlier|after|before)(?:\s+that)?)\b",
    re.I,
)
_SAID = r"(?:say|says|said|tell|tells|told|mean|means|meant|do)"
_THING_PRONOUN = re.compile(
    r"\b(?:it|them|they)\b(?!['’])|\b(?:that|this)\b(?=\s+(?:will|would|is|was|does|did|has|had"
    r"|can|could|cost|costs|mean|means|change|changes|create|creates)\b|\s*\??\s*$)",
    re.I,
)
# a clause about the previous speaker's own occasion: "when he met X", "at his press conference"
OCCASION = re.compile(
    r",?\s+(?:(?:when|while|after|before|as|during)\s+(?:he|she|they)\b[^?]*"
    r"|(?:at|in|during|on)\s+(?:his|her|their)\s+(?:own\s+)?[^?,]+)(?=\s*\??\s*$)",
    re.I,
)
# nouns for the verbs of amounts: "how much is GM investing in X" -> "GM’s investment in X"
_NOUNS = {
    "invest": "investment",
    "spend": "spending",
    "pay": "payment",
    "provide": "provision",
    "pledge": "pledge",
    "commit": "commitment",
    "send": "shipment",
    "sell": "sale",
    "buy": "purchase",
    "build": "construction",
    "cut": "cut",
    "raise": "increase",
    "lend": "loan",
    "give": "aid",
    "donate": "donation",
    "deploy": "deployment",
    "announce": "announcement",
    "propose": "proposal",
    "allocate": "allocation",
    "request": "request",
}
_IRREGULAR = {
    "sent": "send",
    "spent": "spend",
    "paid": "pay",
    "made": "make",
    "gave": "give",
    "bought": "buy",
    "sold": "sell",
    "lent": "lend",
    "built": "build",
    "took": "take",
    "held": "hold",
    "met": "meet",
    "said": "say",
    "told": "tell",
    "won": "win",
    "lost": "lose",
    "brought": "bring",
    "got": "get",
    "kept": "keep",
    "cut": "cut",
    "put": "put",
    "set": "set",
    "left": "leave",
    "went": "go",
    "came": "come",
    "wrote": "write",
    "chose": "choose",
}
_PAST = {base: past for past, base in _IRREGULAR.items()}


@dataclass(frozen=True)
class Shape:
    """A wh-question taken apart: "Which bill | did | the President sign on ..." ."""

    wh: str  # "where", "which bill", "how much"; "" for a yes/no question
    aux: str  # "will", "did"; "" when the verb follows the wh-phrase ("Which country hosts ...")
    clause: str  # "the President sign on January 21, 2022"
    subject: bool  # the wh-phrase is the subject ("Which country will host APEC?")

    @property
    def entity(self) -> bool:
        """Asks for a person, a thing or a place by name (who, which X, what X)."""
        head = self.wh.lower().split()
        return bool(head) and (
            head[0] in ("who", "whom") or (len(head) > 1 and head[0] in ("which", "what"))
        )

    @property
    def amount(self) -> bool:
        return self.wh.lower().startswith(("how many", "how much"))

    @property
    def counted(self) -> str:
        """ "troops" in "how many troops"."""
        return " ".join(self.wh.split()[2:]) if self.amount else ""

    @property
    def noun(self) -> str:
        return " ".join(self.wh.split()[1:]) if self.entity else ""


def shape(question: str) -> Shape | None:
    text = question.strip().rstrip("?").strip()
    if _YES_NO.match(text):
        return Shape("", "", text, False)
    match = _WH.match(text)
    if not match:
        return None
    aux, clause = match.group("aux") or "", match.group("clause")
    words = clause.split()
    inverted = bool(aux) and bool(words) and _starts_noun_phrase(words)
    return Shape(" ".join(match.group("wh").split()), aux, clause, subject=not inverted)


def short_answer(answer: str) -> str:
    """The short answer an answer leads with ("Los Angeles [1]. ..."), or ""."""
    match = _SHORT_LEAD.match(answer)
    if not match or len(match.group("short").split()) > _MAX_SHORT_WORDS:
        return ""
    return match.group("short").strip()


def elliptical(question: str, previous: str, answer: str) -> str:
    """ "And when?", "Why?", "How many?", "Who else?": the previous question, wh-phrase swapped."""
    match = ELLIPTIC.match(question)
    found = shape(previous)
    if not match or not found:
        return ""
    wh = " ".join(match.group("wh").lower().split())
    short = short_answer(answer) if found.entity else ""
    if "else" in wh:
        return _else(found, short)
    if wh in ("how many", "how much"):
        # "Which countries sent troops?" + "How many?" -> "How many countries sent troops?"
        if found.entity and found.subject and found.noun:
            return _question(f"{wh} {found.noun}", found.aux, found.clause)
        return ""
    if wh == "how come":
        wh = "why"
    return swap_wh(found, wh, short)


def swap_wh(found: Shape, wh: str, short: str) -> str:
    if not found.wh:
        return _question(wh, found.clause[:1].lower() + found.clause[1:], "")
    if found.subject:
        filler = short or (f"the {found.noun}" if found.noun else "")
        if not filler:
            return ""
        if found.aux:
            return _question(wh, found.aux, f"{filler} {found.clause}")
        verb, _, rest = found.clause.partition(" ")
        do = "did" if _base(verb) != verb.lower() and not verb.lower().endswith("s") else "does"
        return _question(wh, do, " ".join(w for w in (filler, _base(verb), rest) if w))
    clause = found.clause
    if short and (found.entity or found.amount):
        clause = _after_verb(clause, short)
    return _question(wh, found.aux, clause)


def _else(found: Shape, short: str) -> str:
    """ "Who else?" after "Who will lead the delegation?" / "Doug Emhoff [1]." """
    if not found.entity:
        return ""
    head = f"{found.wh} other than {short}" if short else f"{found.wh} else"
    return _question(head, found.aux, found.clause)


def thing_referents(follow_up: str, previous: str, answer: str, topic: str) -> tuple[str, str]:
    """What the first free "it/that/them" of a follow-up stands for, and what any further one
    does: the short answer when the previous question asked for a thing by name ("Which bill
    ...?" / "S. 2959 [1].") and the other party of the question; else the topic it was about."""
    found = shape(previous)
    topic = "" if _DATE_ONLY.match(topic) else topic
    if not found or not found.wh:
        return topic, topic
    other = topic or _other_party(found)
    # "it" is never a person; "who hosts it next?" asks the same question of the other party
    if found.wh.lower() in ("who", "whom") or _same_frame(follow_up, found):
        return other, other
    short = short_answer(answer)
    if found.entity:
        return short or _described(found, f"the {found.noun}"), other
    if found.amount and not topic:
        return _nominal(found, short), other
    return other, other


def _other_party(found: Shape) -> str:
    words = found.clause.split()
    if found.subject:
        # "Which country will host APEC in 2023?" -> "APEC"
        return _strip_time(" ".join(words[1:]))
    at = _verb_index(words)
    return " ".join(words[:at]) if at > 0 else ""


def _same_frame(follow_up: str, found: Shape) -> bool:
    """ "Who hosts it?" after "Which country will host APEC?": the same verb, asked again."""
    again = shape(follow_up)
    if not (again and again.entity and again.subject and found.subject):
        return False
    return bool(again.clause and found.clause) and _base(again.clause.split()[0]) == _base(
        found.clause.split()[0]
    )


def shift_year(question: str, previous: str) -> tuple[str, str]:
    """ "the year after" -> "in 2024" when the previous question named 2023: the follow-up so
    changed, or (for "And the year after?" alone) the previous question a year on."""
    match = YEAR_SHIFT.search(question)
    years = _YEAR.findall(previous)
    if not match or not years:
        return "", ""
    word = (match.group("a") or match.group("b") or match.group("c")).lower()
    step = -1 if word in ("previous", "prior", "before", "earlier") else 1
    year = str(int(years[-1]) + step)
    rest = (question[: match.start()] + question[match.end() :]).strip()
    if not re.sub(r"^(?:and|but|so|what\s+about|how\s+about)\b", "", rest, flags=re.I).strip(" ?"):
        # "And the year after?": the previous question, a year on
        at = previous.rfind(years[-1])
        return "", previous[:at] + year + previous[at + 4 :]
    return re.sub(r"\s*\?*$", f" in {year}?", rest, count=1), ""


def free_pronoun(question: str) -> bool:
    """Whether "it", "them", "that" or "this" stands for something outside the question."""
    return any(_free(question, m) for m in _THING_PRONOUN.finditer(question))


def resolve_things(question: str, first: str, other: str) -> str:
    """The free "it", "them", "that" (as a pronoun) of a follow-up replaced: the first by
    `first`, any further one by `other` ("When did it approve them?")."""
    seen: list[str] = []

    def referent(match: re.Match[str]) -> str:
        if not _free(question, match):
            return match.group()
        seen.append(match.group())
        return first if len(seen) == 1 or not other else other

    return _THING_PRONOUN.sub(referent, question)


def bound(question: str, at: int) -> bool:
    """Whether a name comes before position `at` (the question's first word aside): "did Biden
    say he ...", "did Russia say it would ..." (the pronoun is that name's)."""
    words = question[:at].split()[1:]
    return any(w[:1].isupper() and w != "I" for w in words)


def _free(question: str, match: re.Match[str]) -> bool:
    before = question[: match.start()].split()
    if before and re.fullmatch(_SAID, before[-1], re.I):
        return False  # "did he say that?": the statement itself
    if re.match(r"\s+(?:true|possible|likely|clear|known|right|wrong)\b", question[match.end() :]):
        return False  # "is it true that ...": no referent
    # an object ("did Biden sign it?", "replies to them") is never its own clause's subject
    subject = re.match(rf"\s+(?:{_AUX}|'s|’s)\b", question[match.end() :], re.I)
    return not (subject and bound(question, match.start()))


def drop_occasion(question: str) -> str:
    """ "What did Psaki say about X when he met Scholz?" -> "... about X?" """
    return OCCASION.sub("", question)


def _nominal(found: Shape, short: str) -> str:
    """ "How much is GM investing in X" -> "GM’s investment in X" (else "the $7 billion GM is
    investing in X")."""
    if found.counted:
        # "the 3,000 troops the Pentagon is sending to Poland"
        head = short if short.endswith(found.counted) else f"{short} {found.counted}".strip()
        return _described(found, f"the {head}")
    words = found.clause.split()
    at = _verb_index(words)
    if at <= 0:
        return ""
    subject, verb, rest = " ".join(words[:at]), words[at], " ".join(words[at + 1 :])
    base = _base(re.sub(r"ing$", "", verb) if verb.endswith("ing") else verb)
    noun = _NOUNS.get(base) or _NOUNS.get(base + "e")
    if noun:
        owner = subject + ("’" if subject.endswith("s") else "’s")
        return " ".join(w for w in (owner, noun, rest) if w)
    return _described(found, f"the {short}" if short else "the amount")


def _described(found: Shape, head: str) -> str:
    """The thing a question asks for, described by its clause: "the bill the President signed
    on ...", "the country that will host APEC in 2023"."""
    if found.subject:
        return " ".join(
            w
            for w in (head, "who" if head == "the person" else "that", found.aux, found.clause)
            if w
        )
    words = found.clause.split()
    at = _verb_index(words)
    if at <= 0:
        return ""
    subject, verb, rest = " ".join(words[:at]), words[at], " ".join(words[at + 1 :])
    if found.aux.lower() == "did":
        verb = _PAST.get(verb.lower(), _past(verb))
    elif found.aux.lower() not in ("do", "does"):
        verb = f"{found.aux} {verb}"
    return " ".join(w for w in (head, subject, verb, rest) if w)


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ied"
    return verb + "ed"


def _after_verb(clause: str, filler: str) -> str:
    words = clause.split()
    at = _verb_index(words)
    if at < 0:
        return f"{clause} {filler}"
    return " ".join([*words[: at + 1], filler, *words[at + 1 :]])


def _starts_noun_phrase(words: list[str]) -> bool:
    first = words[0]
    return first.lower() in _DETS | _SUBJECT_PRONOUNS or first[:1].isupper() or first[:1].isdigit()


def _verb_index(words: list[str]) -> int:
    """Where the verb of "the President sign on ..." begins (after its subject), or -1."""
    if not words:
        return -1
    if words[0].lower() in _SUBJECT_PRONOUNS:
        return 1 if len(words) > 1 else -1
    i = 1 if words[0].lower() in _DETS else 0
    start = i
    while i < len(words):
        word = words[i]
        if (
            i == start
            or word[:1].isupper()
            or word[:1].isdigit()
            or (word.lower() in _LINKS and any(w[:1].isupper() for w in words[i + 1 : i + 3]))
        ):
            i += 1
        else:
            return i
    return -1


def _base(verb: str) -> str:
    """ "announced" -> "announce", "hosts" -> "host", "signed" -> "sign" (good enough for news)."""
    lower = verb.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    if lower.endswith("ied"):
        return lower[:-3] + "y"
    if lower.endswith("eed"):
        return lower[:-1]
    if lower.endswith("ed"):
        stem = lower[:-2]
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
            return stem[:-1]
        if re.search(r"(?:[cvzgu]|[aeiou]s|at|ur|or|[bptdgk]l)$", stem):
            return stem + "e"
        return stem
    if lower.endswith(("sses", "ches", "shes", "xes")):
        return lower[:-2]
    if lower.endswith("s") and not lower.endswith("ss"):
        return lower[:-1]
    return lower


def _strip_time(text: str) -> str:
    return re.sub(
        r"\s+(?:in|on|during|since|by)\s+(?:\w+\s+)?(?:\d{1,2},?\s+)?(?:19|20)\d{2}$", "", text
    )


def _question(head: str, aux: str, clause: str) -> str:
    text = " ".join(w for w in (head, aux, clause) if w)
    return text[:1].upper() + text[1:] + "?"
