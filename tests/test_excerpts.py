"""Excerpts: an article rebuilt from overlapping chunks, its sentences scored and handed out one
passage budget at a time, with offsets that still point into the article."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pytest

from assistant.engine import Engine
from assistant.excerpts import RUN_SEPARATOR, ArticleText, ExcerptPicker, RecentArticles
from index.keyword import ChunkRecord, keyword_tokens

from .conftest import engine_over
from .factories import make_passage

if TYPE_CHECKING:
    from index.embedding import Embedder

SENTENCES = [
    "The harbour authority met on Monday to review the season.",
    "Cargo volumes fell by a tenth as two shipping lines moved to a rival port.",
    "The authority blamed the dredging delays for the loss.",
    "Fishermen complained about the new mooring fees.",
    "A ferry operator asked for a second terminal.",
    "The mayor said the port would recover by spring.",
]
ARTICLE = " ".join(SENTENCES)


def words(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def chunk(index: int, first: int, last: int) -> ChunkRecord:
    """Sentences first..last of ARTICLE as a chunk, with its offsets."""
    start = ARTICLE.index(SENTENCES[first])
    end = ARTICLE.index(SENTENCES[last]) + len(SENTENCES[last])
    return ChunkRecord(f"c{index}", ARTICLE[start:end], {"start": start, "end": end})


# Three chunks, each repeating the last sentence of the one before (the chunker's overlap).
CHUNKS = [chunk(0, 0, 2), chunk(1, 2, 4), chunk(2, 4, 5)]


def test_an_article_is_rebuilt_from_overlapping_chunks() -> None:
    article = ArticleText.from_chunks([0, 1, 2], CHUNKS, words)
    assert article.text == ARTICLE
    assert [article.text[s.start : s.end] for s in article.sentences] == SENTENCES
    assert article.sentences[2].chunks == (0, 1)  # the overlap sentence is in both chunks
    assert article.sentences[5].chunks == (2,)
    assert [s.tokens for s in article.sentences] == words(SENTENCES)


def test_the_sentence_that_answers_scores_first_and_its_chunk_counts() -> None:
    article = ArticleText.from_chunks([0, 1, 2], CHUNKS, words)
    terms = keyword_tokens("dredging delays")
    idf = dict.fromkeys(terms, 1.0)
    scores = article.scores(terms, idf, np.zeros(3), dense_weight=1.0, neighbour_weight=0.0)
    assert int(np.argmax(scores)) == 2 and scores[2] == pytest.approx(1.0)
    # With no keyword match, the dense score of the chunk holding a sentence decides.
    chunk_dense = np.array([0.1, 0.0, 0.8])  # by chunk row
    dense_only = article.scores([], {}, chunk_dense, dense_weight=1.0, neighbour_weight=0.0)
    assert list(dense_only) == pytest.approx([0.1, 0.1, 0.1, 0.0, 0.8, 0.8])
    # Neighbours lend a share of their score.
    smoothed = article.scores(terms, idf, np.zeros(3), dense_weight=0.0, neighbour_weight=0.5)
    assert smoothed[1] == pytest.approx(0.25) and smoothed[3] == pytest.approx(0.25)
    assert smoothed[0] == 0.0


def test_sentence_keyword_scores_are_bm25_within_the_article() -> None:
    """The article's terms are counted once for all its sentences; each sentence still scores
    exactly BM25 over its own terms, a repeated query term counting again."""
    article = ArticleText.from_chunks([0, 1, 2], CHUNKS, words)
    query = keyword_tokens("authority port port fees Monday unknownword")
    idf = {"author": 1.3, "port": 0.7, "fee": 2.1, "monday": 0.4}
    got = article.scores(query, idf, np.zeros(3), dense_weight=0.0, neighbour_weight=0.0)
    sentence_terms = [keyword_tokens(s) for s in SENTENCES]
    mean = sum(map(len, sentence_terms)) / len(sentence_terms)
    expected = []
    for terms in sentence_terms:
        norm = 1.5 * (1 - 0.75 + 0.75 * len(terms) / mean)
        parts = [(idf.get(t, 0.0), terms.count(t)) for t in query]
        expected.append(sum(weight * tf * 2.5 / (tf + norm) for weight, tf in parts))
    assert max(expected) > 0 and sum(e > 0 for e in expected) >= 3
    assert got.tolist() == pytest.approx([e / max(expected) for e in expected], rel=1e-12)


def test_passages_take_the_best_sentences_within_the_budget_then_the_next_best() -> None:
    article = ArticleText.from_chunks([0, 1, 2], CHUNKS, words)
    scores = np.array([0.1, 0.9, 0.8, 0.0, 0.2, 0.7])
    picker = ExcerptPicker(article, scores, budget=33)
    first = picker.next_runs()
    # Sentences 1 and 2 (adjacent: one run, an exact slice), then 5: 33 words.
    assert [article.text[a:b] for a, b in first] == [
        f"{SENTENCES[1]} {SENTENCES[2]}",
        SENTENCES[5],
    ]
    assert sum(words([article.text[a:b] for a, b in first])) <= 33
    text = picker.text(first)
    assert text == f"{SENTENCES[1]} {SENTENCES[2]}{RUN_SEPARATOR}{SENTENCES[5]}"
    second = picker.next_runs()
    assert [article.text[a:b] for a, b in second] == [
        SENTENCES[0],
        f"{SENTENCES[3]} {SENTENCES[4]}",
    ]
    assert picker.next_runs() == []  # all handed out


def test_a_sentence_longer_than_the_budget_still_comes_alone() -> None:
    article = ArticleText.from_chunks([0, 1, 2], CHUNKS, words)
    picker = ExcerptPicker(article, np.arange(6, dtype=float), budget=3)
    assert [article.text[a:b] for a, b in picker.next_runs()] == [SENTENCES[5]]


def test_a_reply_scores_as_the_reporters_question_it_answers() -> None:
    text = (
        "MS. PSAKI: Good afternoon. The President travels to Ohio on Friday.\n\n"
        "Q What about the dredging contract for the harbour?\n\n"
        "MS. PSAKI: Sure. We signed it this morning. Work starts in May.\n\n"
        "Q And the weather?\n\n"
        "MS. PSAKI: It is sunny."
    )
    record = ChunkRecord("c0", text, {"start": 0, "end": len(text), "title": "Press Briefing"})
    article = ArticleText.from_chunks([0], [record], words)
    assert article.turns  # read as a transcript
    terms = keyword_tokens("dredging contract harbour")
    idf = dict.fromkeys(terms, 1.0)
    scores = article.scores(terms, idf, np.zeros(1), dense_weight=0.0, neighbour_weight=0.0)
    sentences = [article.text[s.start : s.end] for s in article.sentences]
    by_text = dict(zip(sentences, scores.tolist(), strict=True))
    asked = by_text["Q What about the dredging contract for the harbour?"]
    assert by_text["We signed it this morning."] == pytest.approx(0.8 * 0.9 * asked)
    assert by_text["Work starts in May."] == pytest.approx(0.8 * 0.81 * asked)
    assert by_text["MS. PSAKI: It is sunny."] == 0.0  # its question is not on the topic


def test_a_quotation_over_several_sentences_stays_one_unit_of_an_excerpt() -> None:
    text = (
        'The minister spoke on Friday. "The right to choose alliances is sacred. We say that on '
        "condition that it does not worsen anyone's security,\" he said. Talks go on."
    )
    record = ChunkRecord("c0", text, {"start": 0, "end": len(text)})
    article = ArticleText.from_chunks([0], [record], words)
    sentences = [article.text[s.start : s.end] for s in article.sentences]
    assert sentences == [
        "The minister spoke on Friday.",
        '"The right to choose alliances is sacred. We say that on condition that it does not '
        "worsen anyone's security,\" he said.",
        "Talks go on.",
    ]


def test_rebuilt_articles_are_kept_up_to_a_bound_least_recent_out_first() -> None:
    built: list[int] = []

    def get(cache: RecentArticles, article: int) -> ArticleText:
        def build() -> ArticleText:
            built.append(article)
            return ArticleText(f"article {article}", ())

        return cache.get(article, build)

    cache = RecentArticles(size=2)
    assert get(cache, 1).text == "article 1"
    get(cache, 2)
    get(cache, 1)  # a hit: 1 becomes the most recent, nothing is rebuilt
    get(cache, 3)  # over the bound: 2, the least recent, goes
    assert built == [1, 2, 3] and len(cache) == 2
    get(cache, 1)
    get(cache, 2)
    assert built == [1, 2, 3, 2]


def test_passage_offsets_map_back_into_the_article() -> None:
    runs = ((11, 20), (40, 45))
    text = ARTICLE[11:20] + RUN_SEPARATOR + ARTICLE[40:45]
    passage = make_passage(text, start=11, end=45, spans=runs)
    for position, char in enumerate(text):
        if char == "\n":
            continue
        assert ARTICLE[passage.article_offset(position)] == char
    plain = make_passage(ARTICLE[11:20], start=11)
    assert plain.article_offset(3) == 14


# On a real index -------------------------------------------------------------------------------

HARBOUR = [
    "Port Avalon's harbour board published its annual report on Tuesday.",
    "The board said container traffic was steady through the first half of the year.",
    "Its chair, Mira Okafor, thanked dock workers for their patience during repairs.",
    "Repairs to the north quay ran three months late and over budget.",
    "Tourism numbers at the waterfront rose as cruise ships returned.",
    "Okafor said the board would invite bids for a new crane in the autumn.",
    "Local shops reported a busy summer along the promenade.",
    "The board admitted that a cyberattack in March had frozen the booking system for nine days.",
    "Hackers demanded a ransom in bitcoin, which the board refused to pay.",
    "Police are still investigating who was behind the ransomware attack.",
    "The report also noted new rules for anglers on the breakwater.",
    "Fees for private moorings will rise by five percent next year.",
    "The board plans to plant trees along the access road.",
    "A public meeting on the report will be held at the town hall next month.",
]


@pytest.fixture(scope="module")
def harbour_engine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    folder = tmp_path_factory.mktemp("harbour")
    rows = [
        {
            "title": "Harbour board reports a hard year",
            "body": " ".join(HARBOUR),
            "source": "Avalon Gazette",
            "published_at": "2023-10-02",
            "url": "https://news.example/harbour",
        },
        {
            "title": "Bakery wins a prize",
            "body": "A bakery on Mill Street won a national prize for its rye bread.",
            "source": "Avalon Gazette",
            "published_at": "2023-10-03",
            "url": "https://news.example/bakery",
        },
    ]
    # Small chunks, so the article spans several of them.
    return engine_over(folder, rows, embedder, chunk_tokens=60, chunk_overlap=15)


def test_an_excerpt_gathers_the_answering_sentences_from_across_the_article(
    harbour_engine: Engine, embedder: Embedder
) -> None:
    body = " ".join(HARBOUR)
    question = "Did the harbour board pay the ransom after the cyberattack froze its bookings?"
    assert len(harbour_engine.store.keyword.records) > 3  # the article really is cut up
    (top,) = harbour_engine.search(question, k=1)
    assert HARBOUR[7] in top.text and HARBOUR[8] in top.text
    assert embedder.count_tokens([top.text])[0] <= harbour_engine.settings.chunk_tokens + 5
    # Every piece is an exact slice of the article, at the offsets the passage gives.
    spans = top.spans or ((top.start, top.end),)
    assert top.text.split(RUN_SEPARATOR) == [body[a:b] for a, b in spans]


def test_citations_of_an_excerpt_point_into_the_article(harbour_engine: Engine) -> None:
    body = " ".join(HARBOUR)
    answer = harbour_engine.ask("Who demanded a ransom in bitcoin from the harbour board?")
    assert answer.citations
    for citation in answer.citations:
        assert body[citation.quote_start : citation.quote_end] == citation.quote


def test_a_source_card_marks_where_the_excerpt_skips_text() -> None:
    from serving.render import render_card

    runs = ((0, len(SENTENCES[0])), (ARTICLE.index(SENTENCES[2]), len(ARTICLE)))
    text = RUN_SEPARATOR.join(ARTICLE[a:b] for a, b in runs)
    passage = make_passage(text, title="T", source="Gazette", end=len(ARTICLE), spans=runs)
    quote = SENTENCES[2]
    html = render_card(
        ident="x", label="[1]", passage=passage, quote=quote, quote_at=text.index(quote), open_=True
    )
    before, after = html.split('class="na-gap"')
    assert SENTENCES[0] in before and SENTENCES[1] not in html
    assert f'<mark class="na-quote">{quote}</mark>' in after


def test_the_sentence_maps_chunks_keep_give_the_sentences_that_cutting_again_gives(
    small_engine: Engine,
) -> None:
    from index.chunking import read_sentence_map

    view = small_engine.retriever.view()
    records = list(view.records)
    assert records
    for record in records:  # ingest kept a map that fits each chunk
        assert read_sentence_map(record.metadata.get("sentences"), len(record.text))
    bare = [ChunkRecord(r.id, r.text, {**r.metadata, "sentences": ""}) for r in records]
    broken = [ChunkRecord(r.id, r.text, {**r.metadata, "sentences": "9 3 1"}) for r in records]
    counted: list[str] = []

    def count(texts: Sequence[str]) -> list[int]:
        counted.extend(texts)
        return small_engine.embedder.count_tokens(texts)

    articles = {int(a) for a in view.article_of}
    for article in sorted(articles)[:25]:
        rows = view.rows_of(article).tolist()
        kept = ArticleText.from_chunks(rows, records, count)
        counted_with_maps, counted[:] = len(counted), []
        again = ArticleText.from_chunks(rows, bare, count)
        assert kept == again == ArticleText.from_chunks(rows, broken, count)
        # With the maps, only quotations joined over sentences are counted.
        assert counted_with_maps <= sum(
            1
            for s in kept.sentences
            if '"' in kept.text[s.start : s.end] or "“" in kept.text[s.start : s.end]
        )
        counted.clear()


def test_a_sentence_map_that_does_not_fit_its_text_is_not_read() -> None:
    from index.chunking import read_sentence_map, sentence_map, split_sentences

    text = " ".join(SENTENCES)
    kept = sentence_map(text, words)
    spans = [(s.start, s.end, len(text[s.start : s.end].split())) for s in split_sentences(text)]
    assert len(spans) == len(SENTENCES) and read_sentence_map(kept, len(text)) == spans
    assert read_sentence_map(kept, len(text) - 1) is None  # the last sentence runs past it
    for broken in ("", "1 2", "5 3 1", "0 4 x", "0 9 1 5 12 1", None, 7):
        assert read_sentence_map(broken, len(text)) is None


def test_spare_passages_leave_their_articles_unread(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search picks twice the passages it gives, as spares for an article whose sentences
    run out; the spares' articles are not rebuilt while the first picks suffice."""
    from assistant.corpus_view import CorpusView

    read: list[int] = []
    article_text = CorpusView.article_text

    def reading(view: CorpusView, article: int, embedder: object) -> ArticleText:
        read.append(article)
        return article_text(view, article, embedder)  # type: ignore[arg-type]

    monkeypatch.setattr(CorpusView, "article_text", reading)
    view = small_engine.retriever.view()
    for question in ("What did Lavrov say about NATO?", "What sanctions were announced?"):
        read.clear()
        passages = small_engine.search(question, k=3)
        assert len(passages) == 3
        rows = [view.row_of(p.chunk_id) for p in passages]
        assert None not in rows
        assert set(read) == {int(view.article_of[row]) for row in rows if row is not None}
