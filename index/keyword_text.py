"""What the keyword index reads of a chunk: its record, and the words it is searched by."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import Stemmer

_WORD = re.compile(r"\w[\w'’.-]*\w|\w", re.UNICODE)
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    said says say also s t
    """.split()
)
_stemmer = Stemmer.Stemmer("english")


_TERMS: dict[str, str] = {}  # a word as found -> its term ("" for none): most words recur
_TERMS_KEPT = 300_000  # about 40 MB; a full memory starts again


def _term(word: str) -> str:
    w = word.replace(".", "").replace("’", "'").removesuffix("'s").lower()
    term = _stemmer.stemWord(w) if w and w not in STOPWORDS else ""
    if len(_TERMS) >= _TERMS_KEPT:
        _TERMS.clear()
    _TERMS[word] = term
    return term


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed words without stopwords; dotted abbreviations lose their dots."""
    known = _TERMS.get
    return [t for w in _WORD.findall(text) if (t := known(w)) or (t is None and (t := _term(w)))]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """What the keyword side keeps of a chunk: its id, text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any]


def metadata_column(records: Sequence[ChunkRecord], key: str) -> list[Any]:
    """Every record's metadata value for `key` (None where it has none), in order: what the
    keyword index's saved columns give without a dict per chunk, read from the records."""
    return [r.metadata.get(key) for r in records]


def keyword_text(record: ChunkRecord) -> str:
    meta = record.metadata
    return f"{meta.get('title', '')}\n{meta.get('source', '')}\n{record.text}"
