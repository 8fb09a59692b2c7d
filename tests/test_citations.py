"""Citation markers, streaming-safe text, whole-quote units, and the check of generated answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from assistant.citations import (
    CitationChecker,
    Evidence,
    Numbering,
    SentenceStream,
    SentenceVectors,
    check_stream,
    cited_numbers,
    hold_partial_marker,
    passage_units,
    split_answer_sentences,
    strip_markers,
)

from .conftest import TASS
from .factories import make_passage

if TYPE_CHECKING:
    from index.embedding import Embedder

LAVROV = make_passage(
    '"This will be yet another admission after they told us in response to our reminder of '
    "the verbal pledges in the 1990s not to expand NATO: we did not mean that at all and did "
    'not want to mislead you," Lavrov elaborated. Moscow handed its proposals over on '
    "December 15.",
    chunk_id="tass-0003",
    title="Russia does not see its security guarantee proposals as excessive",
    start=1000,
    source="TASS",
)
WHEAT = make_passage(
    "Wheat prices in Kansas rose by four percent this week after a dry spring. Farmers expect "
    "a smaller harvest than last year.",
    chunk_id="farm-0000",
    title="Kansas wheat prices rise",
    published="2022-02-02",
)
VACCINES = make_passage(
    "The administration has shipped 400 million vaccine doses to other countries. Another "
    "shipment of doses leaves for Africa next week.",
    chunk_id="vax-0001",
    title="Vaccine doses abroad",
    start=250,
    published="2022-02-10",
)


@pytest.fixture(scope="module")
def evidence(embedder: Embedder) -> Evidence:
    return Evidence([LAVROV, WHEAT, VACCINES], SentenceVectors(embedder))


def test_markers_are_read_in_all_their_forms_and_stripped() -> None:
    text = "Talks resumed [2]. Both sides met [1, 3][4] and again [5-7]."
    assert cited_numbers(text) == [2, 1, 3, 4, 5, 6, 7]
    assert strip_markers(text) == "Talks resumed. Both sides met and again."
    assert cited_numbers("a list [x] or [2022 report] is not a marker") == []


@pytest.mark.parametrize(
    ("streamed", "shown", "held"),
    [
        ("NATO [", "NATO ", "["),
        ("NATO [1", "NATO ", "[1"),
        ("NATO [1, 2", "NATO ", "[1, 2"),
        ("NATO [1]", "NATO [1]", ""),
        ("the [word", "the [word", ""),
    ],
)
def test_half_written_markers_are_held_back(streamed: str, shown: str, held: str) -> None:
    assert hold_partial_marker(streamed) == (shown, held)


def test_markers_after_a_full_stop_stay_with_their_sentence() -> None:
    text = "Lavrov spoke on Friday. [1] He cited the OSCE [2][3]. Talks go on."
    assert split_answer_sentences(text) == [
        "Lavrov spoke on Friday. [1]",
        "He cited the OSCE [2][3].",
        "Talks go on.",
    ]
    assert split_answer_sentences("- first point [1]\n- second point [2]") == [
        "first point [1]",
        "second point [2]",
    ]


def test_sentence_stream_never_splits_a_marker_however_the_text_arrives() -> None:
    text = "Lavrov spoke on Friday. [1] He cited the OSCE [12]. Talks go on [2]."
    for size in (1, 2, 3, 5):
        stream = SentenceStream()
        done: list[str] = []
        for i in range(0, len(text), size):
            done += stream.feed(text[i : i + size])
        done += stream.finish()
        assert done == split_answer_sentences(text), size
        assert all(s.count("[") == s.count("]") for s in done)


def test_a_quotation_over_several_sentences_stays_one_unit() -> None:
    body = TASS.read_text()
    start = body.index('"You know, we want')
    end = body.index("Lavrov specified.") + len("Lavrov specified.")
    chunk = make_passage(
        body[start - 200 : end + 100], chunk_id="t-0001", title="t", start=start - 200
    )
    units = passage_units(chunk, 0)
    quote = [u for u in units if u.text.startswith('"You know')]
    assert len(quote) == 1
    assert quote[0].text.endswith("Lavrov specified.")
    assert quote[0].text.count(". ") >= 1  # two sentences, one unit


def test_numbering_is_dense_in_order_of_first_use_with_article_offsets() -> None:
    numbering = Numbering()
    assert numbering.number(WHEAT, 0, 10) == 1
    assert numbering.number(VACCINES, 4, 20) == 2
    assert numbering.number(WHEAT, 0, 10) == 1
    second = numbering.citations[1]
    assert (second.quote_start, second.quote_end) == (254, 270)
    assert second.quote == VACCINES.text[4:20]


def test_check_keeps_supported_citations_and_renumbers_them(evidence: Evidence) -> None:
    checker = CitationChecker(evidence)
    first = checker.check("Farmers in Kansas expect a smaller wheat harvest [2].")
    second = checker.check(
        "Lavrov recalled the verbal pledges of the 1990s not to expand NATO [1]."
    )
    assert first.text == "Farmers in Kansas expect a smaller wheat harvest [1]."
    assert second.text == "Lavrov recalled the verbal pledges of the 1990s not to expand NATO [2]."
    cited = [c.passage.chunk_id for c in checker.numbering.citations]
    assert cited == ["farm-0000", "tass-0003"]
    quote = checker.numbering.citations[1]
    assert "verbal pledges in the 1990s not to expand NATO" in quote.quote
    assert LAVROV.text[quote.quote_start - LAVROV.start : quote.quote_end - LAVROV.start] == (
        quote.quote
    )


def test_check_drops_a_citation_to_a_source_that_does_not_exist(evidence: Evidence) -> None:
    checked = CitationChecker(evidence).check("Wheat prices in Kansas rose by four percent [7].")
    assert "[7]" not in (checked.text or "")
    assert any("no source 7" in note for note in checked.notes)
    # the claim itself is backed by a source, which is cited instead
    assert checked.text == "Wheat prices in Kansas rose by four percent [1]."


def test_check_drops_a_citation_to_an_unrelated_source(evidence: Evidence) -> None:
    checker = CitationChecker(evidence)
    checked = checker.check("Wheat prices in Kansas rose by four percent [1][2].")
    assert checked.text == "Wheat prices in Kansas rose by four percent [1]."
    assert checker.numbering.citations[0].passage.chunk_id == "farm-0000"
    assert any("source 1 does not support" in note for note in checked.notes)


def test_check_removes_a_sentence_no_source_supports(evidence: Evidence) -> None:
    checker = CitationChecker(evidence)
    checked = checker.check("The moon landing was filmed in a studio in Nevada [3].")
    assert checked.text is None
    assert any("removed unsupported sentence" in note for note in checked.notes)
    assert checker.numbering.citations == []


def test_hand_written_llm_answer_keeps_only_what_the_sources_back(evidence: Evidence) -> None:
    llm_output = (
        "Lavrov said the West gave verbal pledges in the 1990s not to expand NATO [1]. "
        "He also said Russia will join NATO next year [3]. "
        "Meanwhile, 400 million vaccine doses were shipped abroad [9]. "
        "Kansas wheat prices rose [2]."
    )
    checker = CitationChecker(evidence)
    pieces = [llm_output[i : i + 7] for i in range(0, len(llm_output), 7)]
    kept = [c.text for c in check_stream(pieces, checker) if c.text]
    assert kept == [
        "Lavrov said the West gave verbal pledges in the 1990s not to expand NATO [1].",
        "Meanwhile, 400 million vaccine doses were shipped abroad [2].",
        "Kansas wheat prices rose [3].",
    ]
    assert [c.passage.chunk_id for c in checker.numbering.citations] == [
        "tass-0003",
        "vax-0001",
        "farm-0000",
    ]
