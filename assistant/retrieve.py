"""Retrieval: keyword and dense scores for the question and for windows of it, weighted by the
outlets, dates and speakers the question names, then a pick of passages that covers every part
of the question, without near-copies."""

from __future__ import annotations

import calendar
import logging
import re
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.corpus_view import CorpusView, Cosines, Filters
from assistant.excerpts import RUN_SEPARATOR, ExcerptPicker
from assistant.query import ParsedQuestion, parse_question
from assistant.speakers import Turn, speaking_pattern
from index.embedding import Embedder
from index.keyword import STOPWORDS, ChunkRecord, keyword_tokens
from index.store import ChunkStore
from index.syndication import public_copies

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with where it comes from and why it ranked."""

    chunk_id: str
    article_id: str
    text: str
    title: str
    source: str
    published: str
    url: str
    author: str
    start: int
    end: int
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    # The article ranges the text is made of, joined by RUN_SEPARATOR; empty: [start, end).
    spans: tuple[tuple[int, int], ...] = ()
    # Syndicated copies of the article, merged into it at ingest: source, title, url, published.
    also_published_by: tuple[dict[str, str], ...] = ()
    # The article's speaker turns that the text overlaps (article offsets), for transcripts.
    turns: tuple[Turn, ...] = ()

    @classmethod
    def from_record(
        cls, record: ChunkRecord, score: float, signals: dict[str, float] | None = None
    ) -> Passage:
        meta = record.metadata
        return cls(
            chunk_id=record.id,
            article_id=str(meta.get("article_id", "")),
            text=record.text,
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            published=str(meta.get("published", "")),
            url=str(meta.get("url", "")),
            author=str(meta.get("author", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            score=score,
            signals=signals or {},
            also_published_by=tuple(public_copies(meta)),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def runs(self) -> list[tuple[int, int, int]]:
        """(article start, article end, where it starts in the text) of each piece of text."""
        out, at = [], 0
        for a, b in self.spans or ((self.start, self.end),):
            out.append((a, b, at))
            at += b - a + len(RUN_SEPARATOR)
        return out

    def article_offset(self, position: int) -> int:
        """Where character `position` of the text sits in the article."""
        for a, b, at in self.runs():
            if position <= at + (b - a):
                return a + position - at
        return self.end

    def text_offset(self, article_position: int) -> int:
        """Where article character `article_position` sits in the text; -1 if it is not in it."""
        for a, b, at in self.runs():
            if a <= article_position <= b:
                return at + article_position - a
        return -1


# Ranking ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """The ranking's stages and weights; each stage can be switched off to measure what it
    brings (bench/retrieval.py)."""

    understand: bool = True  # read outlets, dates and speakers from the question
    strip_metadata: bool = False  # search without the outlet names and dates in the question
    window_words: int = 8  # also search overlapping windows of the question (0: no windows)
    window_step: int = 4
    part_probes: bool = False  # also search each clause found by `split_parts`
    dense_weight: float = 0.25  # of the dense score beside the keyword score (1)
    window_dense: bool = False  # embed the windows too (else keyword scores only for them)
    outlet_boost: float = 1.0
    date_boost: float = 0.3
    speaker_boost: float = 0.5
    coverage_weight: float = 0.5  # of covering every window of the question
    collapse_duplicates: bool = True
    duplicate_similarity: float = 0.97
    excerpts: bool = True  # fill passages with each article's best sentences (else: chunks)
    excerpt_dense: float = 1.5  # weight of the dense score of the chunk around a sentence
    excerpt_neighbours: float = 0.5  # share of the neighbouring sentences' scores
    article_penalty: float = 0.1  # taken off a pick's gain per passage its article already has
    feedback_passages: int = 10  # a question asking for a name also searches with the name
    # that at least half of its first this many passages share (0: off)

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def question_probes(parsed: ParsedQuestion, options: RankingOptions) -> list[str]:
    """What to search for: the question (without outlet names and dates), then overlapping
    windows of it, so that each thing a many-part question asks about gets its own search."""
    main = parsed.topic if options.strip_metadata and parsed.topic else parsed.text
    probes = [main]
    words = main.split()
    size, step = options.window_words, max(1, options.window_step)
    if size and len(words) > size:
        probes += [" ".join(words[i : i + size]) for i in range(0, len(words) - size + step, step)]
    if options.part_probes:
        probes += [part.text for part in parsed.parts]
    return list(dict.fromkeys(probes))


# A capitalised word or a run of them: a name, roughly.
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z]+(?:[ \t]+[A-Z][a-zA-Z]+)*")
_NOT_NAME_WORDS = STOPWORDS | {m.lower() for m in (*calendar.month_name[1:], *calendar.day_name)}


def _starts_sentence(text: str, position: int) -> bool:
    while position and text[position - 1] in " \t":
        position -= 1
    return not position or text[position - 1] in '.!?\n"“”‘’(:'


def shared_names(
    texts: Sequence[str], *, known: str, exclude: Sequence[str], min_texts: int
) -> list[str]:
    """Names found inside a sentence (a capital there is seldom anything else) in at least
    `min_texts` of `texts`, the most widespread first; names in `known` (the question), in
    `exclude` (outlets), months, days and stopwords ("On", "The") are left out."""
    known_lower = known.lower()
    excluded = {e.lower() for e in exclude}
    counts: Counter[str] = Counter()
    for text in texts:
        found: dict[str, None] = {}  # in order of appearance: ties rank the same in every process
        for match in _CAPITALISED.finditer(text):
            words = match.group().split()
            leading = 0  # "On Tuesday Zorblax said": the name is "Zorblax"
            while leading < len(words) - 1 and words[leading].lower() in _NOT_NAME_WORDS:
                leading += 1
            if leading or not _starts_sentence(text, match.start()):
                found[" ".join(words[leading:])] = None
        counts.update(found.keys())
    return [
        name
        for name, count in counts.most_common()
        if count >= min_texts
        and len(name) > 2
        and name.lower() not in known_lower
        and name.lower() not in excluded
        and name.lower() not in _NOT_NAME_WORDS
    ]


@dataclass
class Candidates:
    """The chunks worth ranking for one question, with one score per probe."""

    rows: np.ndarray  # chunk indexes in the view
    keyword: np.ndarray  # (candidates, probes), max-normalised per probe
    dense: np.ndarray  # (candidates, probes), 0 at the median candidate, 1 at the best
    boost: np.ndarray  # (candidates,)
    question: Cosines  # every chunk's cosine with the whole question (the first probe)
    vectors: np.ndarray  # (candidates, dimensions)

    def scores(self, dense_weight: float) -> np.ndarray:
        return (self.keyword + dense_weight * self.dense) * self.boost[:, None]


# A question's probes are searched two at a time: their steps are numpy's on postings of
# thousands of rows, mostly outside the GIL (at 1M chunks, 135 to 124 ms a search, p50).
_KEYWORD = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-probe")
# Question embeddings, beside the keyword search of the same question (see `candidates`).
_EMBEDDING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="embed-question")


class Retriever:
    """Hybrid search over one store: the pipeline both `search` and the assistant use."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: ChunkStore,
        embedder: Embedder,
        options: RankingOptions | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.options = options or RankingOptions()
        self._view = CorpusView.empty()
        self._state: Any = None  # the keyword index state the view was built from
        self._building = False  # a thread is making the view of a newer state
        self._view_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "candidates": settings.candidates,
            "dense_search": settings.dense_search,
            **self.options.describe(),
        }

    def view(self) -> CorpusView:
        """The corpus arrays, in step with the keyword index (and so with Chroma). While one
        thread makes the view of a new state, the others search the one before it: no search
        waits for another's view (only the first, when there is none yet)."""
        self.store.sync_keyword_index()
        keyword = self.store.keyword
        state = keyword.snapshot()
        with self._view_lock:
            if state is self._state or (self._building and self._view.records):
                return self._view
            if self._state is not None and state.state_id == self._state.state_id:
                # Merged or stamped since: the same chunks in the same rows, other segments.
                self._view = replace(
                    self._view,
                    records=state.records,
                    keyword_state=state,
                    _row_finder=keyword.row_finder(state),
                )
                self._state = state
                return self._view
            self._building = True
        view = None
        try:
            view = CorpusView.build(
                state.fingerprint if keyword.loaded else "",
                state.records,
                self.store,
                self._view,
                dense=self.settings.dense_search,
                columns=state.column,
                row_of=keyword.row_finder(state),
                keyword_state=state,
            )
        finally:  # the new view and the end of building in one step: no second build
            with self._view_lock:
                if view is not None:
                    self._view, self._state = view, state
                self._building = False
        return view

    def understand(self, question: str) -> ParsedQuestion:
        """The question's outlets, dates, speakers and parts, read against this corpus."""
        view = self.view()
        if not self.options.understand:
            return ParsedQuestion(text=question)
        return parse_question(question, outlets=view.matcher, reference=view.latest)

    def search(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> list[Passage]:
        """The `k` passages that best answer `question` together."""
        k = k or self.settings.top_k
        view = self.view()
        if not view.records:
            return []
        parsed = self.understand(question)
        allowed = view.mask(filters)
        cosines = None
        fetched: dict[int, np.ndarray] = {}  # chunk vectors, fetched once for every pass
        if self.options.feedback_passages and parsed.asks_for_a_name:
            parsed, cosines = self.with_feedback(
                parsed, view, allowed, filters=filters, vectors=fetched
            )
        probes = question_probes(parsed, self.options)
        found = self.candidates(
            probes, parsed, view, allowed, question=cosines, filters=filters, vectors=fetched
        )
        if found is None:
            return []
        scores = found.scores(self.options.dense_weight)
        # With excerpts, an article's later passages may find its sentences used up: spare picks.
        picks = 2 * k if self.options.excerpts else k
        chosen = self.select(scores, found.rows, view, picks, vectors=found.vectors)
        passages = [
            Passage.from_record(
                view.records[found.rows[j]],
                float(scores[j, 0]),
                {
                    "keyword": round(float(found.keyword[j, 0]), 4),
                    "dense": round(float(found.dense[j, 0]), 4),
                    "boost": round(float(found.boost[j]), 4),
                    "best_probe": round(float(scores[j].max()), 4),
                },
            )
            for j in chosen
        ]
        if self.options.excerpts:
            passages = self.excerpts(
                passages, [int(found.rows[j]) for j in chosen], parsed, view, found.question, k
            )
        return passages[:k]

    def with_feedback(
        self,
        parsed: ParsedQuestion,
        view: CorpusView,
        allowed: np.ndarray,
        *,
        filters: Filters | None = None,
        vectors: dict[int, np.ndarray] | None = None,
    ) -> tuple[ParsedQuestion, Cosines | None]:
        """The question with the name its first passages share added ("Which company ...?" and
        the first passages mostly name Google: search again with "Google"). The articles that
        hold a question's other facts often name the answer without the question's words.
        When no name is added, the question's cosines come back too, for the search to reuse."""
        found = self.candidates(
            [parsed.text], parsed, view, allowed, filters=filters, vectors=vectors
        )
        if found is None:
            return parsed, None
        n = self.options.feedback_passages
        relevance = found.scores(self.options.dense_weight)[:, 0]
        top = found.rows[np.argsort(-relevance, kind="stable")[:n]]
        names = shared_names(
            [view.records[i].text for i in top],
            known=parsed.text,
            exclude=view.outlets,
            min_texts=max(2, n // 2),
        )
        if not names:
            return parsed, found.question
        log.debug("feedback: %r + %r", parsed.text, names[0])
        return self.understand(f"{parsed.text} {names[0]}"), None

    def excerpts(
        self,
        passages: list[Passage],
        rows: list[int],
        parsed: ParsedQuestion,
        view: CorpusView,
        question: Cosines,
        k: int,
    ) -> list[Passage]:
        """The first `k` passages that still have sentences, each refilled with its article's
        best sentences not yet given to an earlier passage: the rest are spares, for when an
        article has nothing left, and their articles are not read unless needed."""
        terms = keyword_tokens(parsed.text)
        idf = self.store.keyword.idf(terms, view.keyword_state)
        articles = list(dict.fromkeys(int(view.article_of[row]) for row in rows[:k]))
        if articles and not view.holds_vectors:  # every chunk they need, in one call
            question.vectors(np.concatenate([view.rows_of(a) for a in articles]))
        pickers: dict[int, ExcerptPicker] = {}
        out: list[Passage] = []
        for passage, row in zip(passages, rows, strict=True):
            if len(out) == k:
                break
            article = int(view.article_of[row])
            picker = pickers.get(article)
            if picker is None:
                picker = pickers[article] = self.excerpt_picker(article, terms, idf, question, view)
            runs = picker.next_runs()
            if runs:
                out.append(
                    replace(
                        passage,
                        text=picker.text(runs),
                        start=runs[0][0],
                        end=runs[-1][1],
                        spans=tuple(runs) if len(runs) > 1 else (),
                        turns=picker.turns(runs),
                    )
                )
        return out

    def candidates(
        self,
        probes: list[str],
        parsed: ParsedQuestion,
        view: CorpusView,
        allowed: np.ndarray,
        *,
        question: Cosines | None = None,
        filters: Filters | None = None,
        vectors: dict[int, np.ndarray] | None = None,
    ) -> Candidates | None:
        """The best chunks of each probe by keyword and by dense score, scored against every
        probe. `question`: the first probe's cosines, when an earlier pass has them; `vectors`:
        the chunk vectors this query has fetched (filled here). Dense search is exact over the
        view's vectors, or Chroma's HNSW index within `filters`."""
        vectors = {} if vectors is None else vectors
        # The question is embedded on a thread of its own while the keyword index is searched
        # (the model and numpy's larger steps let go of the GIL): two cores, half the wait.
        embedding = (
            None if question is not None else _EMBEDDING.submit(self.embedder.embed, probes[:1])
        )
        windows = None
        if self.options.window_dense and len(probes) > 1:
            # The question and its short windows are embedded apart: in one batch every window
            # would be padded to the question's length (4x the time).
            windows = Cosines(view, self.embedder.embed(probes[1:]), vectors)
        # Each probe's best chunks by BM25, from the postings of its rarer terms first (the
        # common ones are walked only where they could still change the top); then the scores
        # of every candidate, looked up. An index that moved on since the view was made gives
        # none this time. Scored in the state the view was made from: its rows are the view's.
        keyword, state = self.store.keyword, view.keyword_state
        in_step = state is not None or len(keyword) == len(view.records)
        pool = self.settings.candidates
        found: set[int] = set()
        for rows in _KEYWORD.map(
            lambda probe: keyword.top_rows(probe, pool, allowed, state), probes if in_step else ()
        ):
            found.update(rows.tolist())
        if embedding is not None:
            question = Cosines(view, embedding.result(), vectors)
        assert question is not None
        for nearest in question.nearest(pool, allowed, filters, [0]):
            found.update(nearest.tolist())
        if windows is not None:
            for nearest in windows.nearest(pool, allowed, filters, range(len(probes) - 1)):
                found.update(nearest.tolist())
        if not found:
            return None
        rows = np.array(sorted(found))
        kw = np.zeros((rows.size, len(probes)), dtype=np.float32)
        for j, probe in enumerate(probes if in_step else ()):
            kw[:, j] = keyword.scores_at(probe, rows, state)
        kw = kw / np.maximum(kw.max(axis=0), 1e-9)
        dn = np.zeros((rows.size, len(probes)), dtype=np.float32)
        dn[:, :1] = question.at(rows)
        if windows is not None:
            dn[:, 1:] = windows.at(rows)
        median = np.median(dn, axis=0)
        dn = np.clip((dn - median) / np.maximum(dn.max(axis=0) - median, 1e-9), 0.0, 1.0)
        boosts = self._boosts(rows, parsed, view)
        return Candidates(rows, kw, dn, boosts, question, question.vectors(rows))

    def excerpt_picker(
        self,
        article: int,
        terms: Sequence[str],
        idf: dict[str, float],
        question: Cosines,
        view: CorpusView,
    ) -> ExcerptPicker:
        """The article's sentences, ranked for the question, to hand out a passage at a time."""
        text = view.article_text(article, self.embedder)
        rows = view.rows_of(article)
        scores = text.scores(
            terms,
            idf,
            dict(zip(rows.tolist(), question.at(rows)[:, 0].tolist(), strict=True)),
            dense_weight=self.options.excerpt_dense,
            neighbour_weight=self.options.excerpt_neighbours,
        )
        return ExcerptPicker(text, scores, self.settings.chunk_tokens)

    def _boosts(self, rows: np.ndarray, parsed: ParsedQuestion, view: CorpusView) -> np.ndarray:
        """Chunks from the outlets and days the question names, or quoting the people it asks
        about, count for more."""
        o = self.options
        boost = np.ones(rows.size)
        if parsed.outlets and o.outlet_boost:
            boost += o.outlet_boost * view.outlet_mask(parsed.outlets)[rows]
        days = [d for d in parsed.dates if d.days <= 31]  # "in 2023" says little
        if days and o.date_boost:
            boost += o.date_boost * view.date_mask(days)[rows]
        if parsed.speakers and o.speaker_boost:
            # Only words attributed to the person count: a chunk that merely names them
            # already scores for the name through the keyword index.
            speaking = [speaking_pattern(s.split()[-1]) for s in parsed.speakers]
            for j, i in enumerate(rows.tolist()):
                if any(p.search(view.records[i].text) for p in speaking):
                    boost[j] += o.speaker_boost
        return boost

    def select(
        self,
        scores: np.ndarray,
        rows: np.ndarray,
        view: CorpusView,
        k: int,
        *,
        vectors: np.ndarray | None = None,
    ) -> list[int]:
        """Greedily pick `k` candidates that are relevant to the whole question and together
        cover each of its windows, a little less keen on an article each time it is picked;
        near-copies (syndicated text) of a pick are passed over. `vectors`: the candidates'
        (else taken from the view's matrix)."""
        if vectors is None:
            vectors = view.matrix[rows]
        o = self.options
        relevance = scores[:, 0]
        windows = scores[:, 1:] if scores.shape[1] > 1 else scores[:, :1]
        covered = np.zeros(windows.shape[1])
        open_ = np.ones(rows.size, dtype=bool)
        articles = view.article_of[rows]
        picked_from = np.zeros(rows.size)  # passages already taken from each candidate's article
        chosen: list[int] = []
        while len(chosen) < k and open_.any():
            gain = relevance + o.coverage_weight * np.maximum(windows - covered, 0.0).sum(axis=1)
            gain = gain - o.article_penalty * picked_from
            gain = np.where(open_, gain, -np.inf)
            best = int(np.argmax(gain))
            chosen.append(best)
            open_[best] = False
            picked_from += articles == articles[best]
            covered = np.maximum(covered, windows[best])
            if o.collapse_duplicates:
                similar = vectors @ vectors[best]
                open_ &= similar < o.duplicate_similarity
        return chosen
