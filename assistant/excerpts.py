"""Excerpts: the sentences of a found article that bear on the question, packed into a passage
no longer than a chunk.

A chunk is a fixed run of an article; the sentence that answers a question is in the chunk that
scores best within its article only about half the time (MultiHop-RAG dev; see
docs/retrieval.md). So retrieval first chooses articles and how many passages each gets (by
chunks, as before), then fills each passage with that article's best sentences: keyword score
of the sentence, the dense score of the chunk around it, and a little of its neighbours'
scores. Adjacent sentences form runs, exact slices of the article; runs are joined by a blank
line and keep their offsets."""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from assistant.speakers import Turn, opens_with_label, transcript_turns
from index.chunking import QUOTE_CHARS, quote_depth_after, read_sentence_map, split_sentences
from index.keyword import ChunkRecord, keyword_tokens
from index.keyword_segments import record_texts

RUN_SEPARATOR = "\n\n"
_K1, _B = 1.5, 0.75  # BM25's usual constants, as in the keyword index
# The longest quotation kept whole, in sentences. Longer ones take more of an excerpt than they
# bring (MultiHop-RAG dev recall@10: 0.783 never joined, 0.779 up to 3, 0.777 up to 6); an
# unclosed quotation mark also stops here.
_MAX_QUOTE_SENTENCES = 3
_QUOTES = re.compile(f"[{QUOTE_CHARS}]")


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int  # offsets in the article
    end: int
    tokens: int  # wordpieces, for the passage budget
    chunks: tuple[int, ...]  # rows (in the corpus view) of the chunks holding it


@dataclass(frozen=True, slots=True, eq=False)
class Terms:
    """The keyword terms of an article's sentences, in arrays for the whole article. A
    MultiHop-RAG article has about 110 sentences: a Counter for each took as long to build as
    the rest of the article, and scoring them one by one was the slowest step of excerpts."""

    vocabulary: dict[str, int]  # a term -> its number in this article
    ids: np.ndarray  # each term found, in order: its number
    sentence: np.ndarray  # each term found: its sentence
    lengths: np.ndarray  # terms a sentence

    @classmethod
    def of(cls, texts: Sequence[str]) -> Terms:
        vocabulary: dict[str, int] = {}
        number = vocabulary.setdefault
        ids: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            found = keyword_tokens(text)
            ids.extend([number(t, len(vocabulary)) for t in found])
            lengths[i] = len(found)
        sentence = np.repeat(np.arange(len(texts)), lengths)
        return cls(vocabulary, np.array(ids, dtype=np.int32), sentence, lengths)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Terms)
            and self.vocabulary == other.vocabulary
            and np.array_equal(self.ids, other.ids)
            and np.array_equal(self.lengths, other.lengths)
        )

    def counts(self, term: str) -> np.ndarray:
        """How often each sentence holds `term`."""
        number = self.vocabulary.get(term)
        if number is None:
            return np.zeros(self.lengths.size, dtype=np.int64)
        return np.bincount(self.sentence[self.ids == number], minlength=self.lengths.size)


@dataclass(frozen=True, slots=True)
class ArticleText:
    """An article as its chunks give it back: the text they cover, cut into sentences."""

    text: str
    sentences: tuple[Sentence, ...]
    turns: tuple[Turn, ...] = ()  # speaker turns, when the article is a transcript
    terms: Terms = field(default_factory=lambda: Terms.of(()))

    @classmethod
    def from_chunks(
        cls,
        rows: Sequence[int],
        records: Sequence[ChunkRecord],
        count_tokens: Callable[[Sequence[str]], list[int]],
    ) -> ArticleText:
        metas = {i: records[i].metadata for i in rows}
        texts_of = zip(rows, record_texts(records, rows), strict=True)
        placed = sorted((int(metas[i].get("start", 0)), i, text) for i, text in texts_of)
        title = str(metas[placed[0][1]].get("title", "")) if placed else ""
        body = ""  # each chunk written over the ones before it; gaps are spaces
        # start -> (end, chunk rows, wordpieces: -1 where the chunk kept no sentence map)
        found: dict[int, tuple[int, list[int], int]] = {}
        for start, row, text in placed:
            body = body.ljust(start)[:start] + text + body[start + len(text) :]
            kept = read_sentence_map(metas[row].get("sentences"), len(text))
            for a, b, tokens in kept or ((s.start, s.end, -1) for s in split_sentences(text)):
                end, holders, _ = found.setdefault(start + a, (start + b, [], tokens))
                if end == start + b:
                    holders.append(row)
        starts = [start for start, _, _ in placed]
        reach = list(accumulate((start + len(text) for start, _, text in placed), max))
        for start, _, text in placed:
            # Chunks are stored trimmed: a speaker label opening one must open a line again.
            before = bisect_left(starts, start)  # the chunks that start before this one
            covered = before and reach[before - 1] >= start
            if start and not covered and opens_with_label(text):
                body = body[: start - 1] + "\n" + body[start:]
        # start, end, chunk rows, sentences, wordpieces (-1: to count)
        spans: list[tuple[int, int, list[int], int, int]] = []
        depth = 0  # quotations still open after the last span
        for a in sorted(found):
            b, holders, tokens = found[a]
            if spans and a < spans[-1][1]:  # chunk edges cut a sentence differently
                continue
            if depth and spans[-1][3] < _MAX_QUOTE_SENTENCES:
                # A quotation running over several sentences stays one: an excerpt that took
                # only its first sentence would cut the speaker's words from their attribution.
                start, _, rows, count, _ = spans.pop()
                spans.append((start, b, sorted({*rows, *holders}), count + 1, -1))
            else:
                spans.append((a, b, holders, 1, tokens))
                depth = 0
            if _QUOTES.search(body, a, b):  # else the depth stays
                depth = quote_depth_after(body[a:b], depth)
        texts = [body[a:b] for a, b, *_ in spans]
        counts = [span[4] for span in spans]
        uncounted = [i for i, n in enumerate(counts) if n < 0]
        for i, n in zip(uncounted, count_tokens([texts[i] for i in uncounted]), strict=True):
            counts[i] = n
        sentences = tuple(
            Sentence(a, b, tokens, tuple(holders))
            for (a, b, holders, *_), tokens in zip(spans, counts, strict=True)
        )
        return cls(body, sentences, transcript_turns(body, title), Terms.of(texts))

    def scores(
        self,
        query_terms: Sequence[str],
        idf: dict[str, float],
        chunk_dense: np.ndarray | Mapping[int, float],
        *,
        dense_weight: float,
        neighbour_weight: float,
    ) -> np.ndarray:
        """How well each sentence answers: BM25 within the article (max 1), plus the dense
        score of the best chunk holding it (`chunk_dense`, by corpus row: an array or a mapping
        of the article's rows), plus a share of its
        neighbours' scores."""
        if not self.sentences:
            return np.zeros(0)
        lengths = self.terms.lengths
        norm = _K1 * (1 - _B + _B * lengths / max(1.0, int(lengths.sum()) / lengths.size))
        keyword = np.zeros(len(self.sentences))
        for t in query_terms:  # in the question's order, as a sum per sentence would add them
            tf = self.terms.counts(t)
            held = tf > 0
            keyword[held] += idf.get(t, 0.0) * tf[held] * (_K1 + 1) / (tf[held] + norm[held])
        if keyword.max() > 0:
            keyword /= keyword.max()
        dense_of = {c: float(chunk_dense[c]) for s in self.sentences for c in s.chunks}
        dense = np.array(
            [max((dense_of[c] for c in s.chunks), default=0.0) for s in self.sentences]
        )
        score = keyword + dense_weight * dense
        if neighbour_weight:
            around = (np.r_[0.0, score[:-1]] + np.r_[score[1:], 0.0]) / 2
            score = score + neighbour_weight * around
        return self._replies_answer_questions(score) if self.turns else score

    def _replies_answer_questions(
        self, score: np.ndarray, share: float = 0.8, decay: float = 0.9
    ) -> np.ndarray:
        """In a transcript, the reply to a reporter's question on the topic is on it too, though
        it seldom repeats the question's words: each sentence of a reply scores at least
        `share` of its question's best sentence, less `decay` a sentence into the reply."""
        starts = [s.start for s in self.sentences]
        out = score.copy()
        for question, reply in zip(self.turns, self.turns[1:], strict=False):
            if not question.is_question or reply.is_question:
                continue
            asked = score[bisect_left(starts, question.start) : bisect_left(starts, question.end)]
            first, last = bisect_left(starts, reply.start), bisect_left(starts, reply.end)
            if not asked.size or first == last:
                continue
            inherited = share * float(asked.max()) * decay ** np.arange(last - first)
            out[first:last] = np.maximum(out[first:last], inherited)
        return out


class RecentArticles:
    """The articles most recently rebuilt from their chunks, up to `size` of them: a query
    reads a few dozen, and a large archive should not keep every article it ever read."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._texts: OrderedDict[int, ArticleText] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, article: int, build: Callable[[], ArticleText]) -> ArticleText:
        with self._lock:
            text = self._texts.get(article)
            if text is not None:
                self._texts.move_to_end(article)
                return text
        text = build()  # outside the lock: two threads may build one article; both are right
        with self._lock:
            self._texts[article] = text
            self._texts.move_to_end(article)
            while len(self._texts) > self.size:
                self._texts.popitem(last=False)
        return text


class ExcerptPicker:
    """Hands out an article's sentences, best first, one passage's budget at a time, so that
    the second passage of an article holds its next-best sentences."""

    def __init__(self, article: ArticleText, scores: np.ndarray, budget: int) -> None:
        self.article = article
        self.order = [int(i) for i in np.argsort(-scores, kind="stable")]
        self.budget = budget
        self.taken: set[int] = set()

    def next_runs(self) -> list[tuple[int, int]]:
        """Article ranges of the next excerpt, in article order; empty when none is left."""
        picked, total = [], 0
        for i in self.order:
            tokens = self.article.sentences[i].tokens
            if i in self.taken or total + tokens > self.budget:
                continue
            picked.append(i)
            total += tokens
            if total >= self.budget * 0.95:
                break
        if not picked and len(self.taken) < len(self.order):
            # A sentence longer than the whole budget: it stands alone.
            picked = [next(i for i in self.order if i not in self.taken)]
        self.taken.update(picked)
        runs: list[tuple[int, int]] = []
        last = -2
        for i in sorted(picked):
            s = self.article.sentences[i]
            if i == last + 1:
                runs[-1] = (runs[-1][0], s.end)
            else:
                runs.append((s.start, s.end))
            last = i
        return runs

    def turns(self, runs: Sequence[tuple[int, int]]) -> tuple[Turn, ...]:
        """The article's speaker turns that overlap `runs`."""
        return tuple(
            t for t in self.article.turns if any(t.start < b and a < t.end for a, b in runs)
        )

    def text(self, runs: Sequence[tuple[int, int]]) -> str:
        return RUN_SEPARATOR.join(self.article.text[a:b] for a, b in runs)
