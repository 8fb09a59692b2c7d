"""Extractive answers on real demo articles: sentence choice, attribution, citations, refusal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.answer import REFUSAL, Answer, format_date
from assistant.citations import MARKER, Unit, marker_numbers, passage_units
from assistant.extractive import Candidate, _repeats, attribute, question_topic
from assistant.query import asked_speaker
from assistant.retrieve import Filters, Passage
from index.articles import Article
from index.errors import ConfigError
from index.keyword import keyword_tokens
from index.loaders import load_paths

from .conftest import TASS
from .factories import make_passage

if TYPE_CHECKING:
    from assistant.engine import Engine

LAVROV_QUESTION = "What did Lavrov say about NATO expansion?"


@pytest.fixture(scope="module")
def tass_body() -> str:
    (article,) = [a for a in load_paths([TASS]) if isinstance(a, Article)]
    return article.body


@pytest.fixture(scope="module")
def lavrov(small_engine: Engine) -> Answer:
    return small_engine.ask(LAVROV_QUESTION)


def _unit(passage: Passage, containing: str) -> Unit:
    return next(u for u in passage_units(passage, 0) if containing in u.text)


def test_lavrov_question_gets_his_nato_quote_attributed_and_cited_to_tass(
    lavrov: Answer, tass_body: str
) -> None:
    assert not lavrov.refused
    assert lavrov.mode == "extractive"
    assert lavrov.text.startswith("Lavrov said (TASS, 28 Jan 2022): “")
    assert "verbal pledges in the 1990s not to expand NATO" in lavrov.text
    first = lavrov.citations[0]
    assert first.number == 1
    assert first.passage.source == "TASS"
    assert first.passage.published == "2022-01-28"
    # the quoted span is exactly the article's text at the cited offsets
    assert tass_body[first.quote_start : first.quote_end] == first.quote
    assert "verbal pledges in the 1990s not to expand NATO" in first.quote


def test_more_of_the_speakers_quotes_on_the_topic_follow_without_repeating_the_source(
    lavrov: Answer, tass_body: str
) -> None:
    """Asked what someone said, the answer gives a few of their quotes that bear on it; the
    second quote of the same article does not repeat the outlet and date."""
    assert "Lavrov also said: “" in lavrov.text
    assert len(lavrov.citations) >= 2
    for citation in lavrov.citations:
        assert tass_body[citation.quote_start : citation.quote_end] == citation.quote


def test_every_marker_maps_to_a_citation_numbered_densely(lavrov: Answer) -> None:
    used = [n for m in MARKER.finditer(lavrov.text) for n in marker_numbers(m.group(1))]
    assert used, lavrov.text
    assert sorted(set(used)) == list(range(1, len(lavrov.citations) + 1))
    assert list(dict.fromkeys(used)) == sorted(set(used))  # first use in order 1, 2, ...
    for citation in lavrov.citations:
        passage = citation.passage
        offset = citation.passage_offset
        assert passage.text[offset : offset + len(citation.quote)] == citation.quote


def test_answer_sentences_do_not_repeat(small_engine: Engine) -> None:
    answer = small_engine.ask("What did the United States reply to Russia's security proposals?")
    sentences = [s.strip() for s in MARKER.split(answer.text) if len(s.strip()) > 20]
    assert len(sentences) == len(set(sentences))
    spans = [(c.passage.article_id, c.quote_start, c.quote_end) for c in answer.citations]
    for i, (article, start, end) in enumerate(spans):
        for other, o_start, o_end in spans[i + 1 :]:
            assert article != other or end <= o_start or o_end <= start


def test_a_sentence_that_another_chosen_one_says_in_full_is_a_repeat() -> None:
    def candidate(text: str, article: str) -> Candidate:
        passage = make_passage(text, article_id=article)
        unit = passage_units(passage, 0)[0]
        return Candidate(0, unit, passage, 0.5, 0.5, None, False, set(keyword_tokens(unit.text)))

    short = candidate("Russia could at any point launch an attack on Ukraine, we believe.", "a")
    long_ = candidate(
        "Well, I think, as I noted a few minutes ago, we believe we are now at a stage where "
        "Russia could at any point launch an attack on Ukraine.",
        "b",
    )
    other = candidate("Russia moved more troops to the border with Ukraine on Monday.", "c")
    assert _repeats(short, long_) and _repeats(long_, short)
    assert not _repeats(short, other)


def test_question_the_corpus_cannot_answer_is_refused_with_closest_articles(
    small_engine: Engine,
) -> None:
    answer = small_engine.ask("Who won the 2018 World Cup?")
    assert answer.refused
    assert answer.text == f"{REFUSAL} No article in the archive mentions World Cup."
    assert answer.citations == []
    assert answer.evidence_score < small_engine.settings.refusal_threshold
    closest = answer.closest_articles()
    assert closest and len({p.article_id for p in closest}) == len(closest)


def test_stream_gives_whole_sentences_then_one_final_answer(small_engine: Engine) -> None:
    events = list(small_engine.ask_stream(LAVROV_QUESTION))
    assert [e.kind for e in events[:-1]] == ["delta"] * (len(events) - 1)
    assert events[-1].kind == "answer" and events[-1].answer is not None
    final = events[-1].answer
    assert "".join(e.text for e in events[:-1]) == final.text
    for event in events[:-1]:
        assert event.text.count("[") == event.text.count("]")
    assert set(final.timings) >= {"retrieve", "compose", "total"}


def test_refusal_streams_the_refusal_sentence(small_engine: Engine) -> None:
    events = list(small_engine.ask_stream("Who won the 2018 World Cup?"))
    final = events[-1].answer
    assert final is not None and final.refused and final.text.startswith(REFUSAL)
    assert [e.text for e in events if e.kind == "delta"] == [final.text]


def test_filters_reach_retrieval(small_engine: Engine) -> None:
    answer = small_engine.ask("What did Lavrov say?", filters=Filters(outlets=("TASS",)))
    assert answer.citations
    assert {c.passage.source for c in answer.citations} == {"TASS"}
    assert {p.source for p in answer.passages} == {"TASS"}


def test_asking_for_the_llm_without_one_configured_is_an_error(small_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="llm_url"):
        small_engine.ask(LAVROV_QUESTION, use_llm=True)


@pytest.mark.parametrize(
    ("question", "speaker", "topic"),
    [
        (LAVROV_QUESTION, "Lavrov", "NATO expansion"),
        ("What did Secretary Blinken say about the talks in Geneva?", "Secretary Blinken", None),
        ("When did the talks resume?", "", "When did the talks resume?"),
    ],
)
def test_speaker_and_topic_of_a_question(question: str, speaker: str, topic: str | None) -> None:
    assert asked_speaker(question) == speaker
    if topic is not None:
        assert question_topic(question, speaker) == topic


def test_quote_with_attribution_after_it() -> None:
    p = make_passage('"We chose the path of diplomacy for decades," Lavrov pointed out on Friday.')
    found = attribute(_unit(p, "diplomacy"), p)
    assert found is not None
    assert found.speaker == "Lavrov"
    assert (
        p.text[found.quote_start : found.quote_end] == "We chose the path of diplomacy for decades"
    )


def test_quote_with_attribution_before_it_and_full_names_lose_titles() -> None:
    p = make_passage(
        'Russian Foreign Minister Sergey Lavrov said: "No one will strengthen its security."'
    )
    found = attribute(_unit(p, "No one"), p)
    assert found is not None and found.speaker == "Sergey Lavrov"


def test_a_description_of_the_speaker_resolves_to_the_person_asked_about() -> None:
    p = make_passage(
        'Moscow replied on Friday. "We honor all those agreements," the Russian foreign minister '
        "highlighted.",
        title="Lavrov on security guarantees",
    )
    found = attribute(_unit(p, "honor"), p, asked="Lavrov")
    assert found is not None and found.speaker == "Lavrov"
    unknown = attribute(_unit(p, "honor"), p, asked="Blinken")
    assert unknown is not None and unknown.speaker == "The Russian foreign minister"


def test_a_description_resolves_through_another_excerpt_of_the_article_that_names_them() -> None:
    p = make_passage('"We honor all those agreements," the Russian foreign minister highlighted.')
    alone = attribute(_unit(p, "honor"), p, asked="Lavrov")  # the passage never names him
    assert alone is not None and alone.speaker == "The Russian foreign minister"
    found = attribute(_unit(p, "honor"), p, asked="Lavrov", named=True)
    assert found is not None and found.speaker == "Lavrov"


def test_transcript_lines_are_attributed_to_their_speaker_and_reporters_are_not() -> None:
    p = make_passage(
        "Q Is the President worried about inflation?\n\nMS. PSAKI: He is. Prices rose 7 "
        "percent last year, and the President has a plan to lower costs."
    )
    units = passage_units(p, 0)
    reporter = next(u for u in units if "worried" in u.text)
    asked = attribute(reporter, p)
    assert asked is not None and asked.question and asked.speaker == "A reporter"
    answer = next(u for u in units if "Prices rose" in u.text)
    found = attribute(answer, p)
    assert found is not None and found.speaker == "Psaki"
    assert p.text[found.quote_start : found.quote_end].startswith("He is.")


def test_a_few_quoted_words_in_reported_speech_are_not_a_quotation() -> None:
    p = make_passage(
        "The top diplomat said that Moscow's proposals, handed over on December 15, "
        '"may turn out to be excessive" only if an expert starts from the wrong position, and '
        "that the talks would go on through the winter in Geneva and in Brussels."
    )
    assert attribute(_unit(p, "excessive"), p) is None


def test_dates_print_short_and_unknown_ones_as_they_are() -> None:
    assert format_date("2022-01-28") == "28 Jan 2022"
    assert format_date("") == ""
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}", format_date("2023-12-05"))


def test_cli_ask_prints_the_answer_and_numbered_sources(small_engine: Engine) -> None:
    from click.testing import CliRunner

    from serving.cli import cli

    storage = str(small_engine.settings.storage_dir)
    result = CliRunner().invoke(cli, ["--storage", storage, "ask", LAVROV_QUESTION])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Lavrov said (TASS, 28 Jan 2022): “")
    assert "\nSources:\n[1] Russia does not see its security guarantee proposals" in result.output
    assert "verbal pledges in the 1990s not to expand NATO" in result.output.split("Sources:")[1]

    refused = CliRunner().invoke(cli, ["--storage", storage, "ask", "Who won the 2018 World Cup?"])
    why = "No article in the archive mentions World Cup."
    assert refused.output.startswith(f"{REFUSAL} {why}\n\nClosest articles:\n  - ")

    as_json = CliRunner().invoke(
        cli, ["--storage", storage, "ask", "--json", "--outlet", "TASS", LAVROV_QUESTION]
    )
    data = json.loads(as_json.output)
    assert data["citations"][0]["source"] == "TASS"
    assert data["citations"][0]["quote_start"] < data["citations"][0]["quote_end"]


@pytest.mark.parametrize("command", [["ask", "Who is Lavrov?"], ["search", "Lavrov"], ["chat"]])
def test_questions_to_an_empty_index_say_how_to_fill_it(tmp_path: Path, command: list[str]) -> None:
    from click.testing import CliRunner

    from serving.cli import cli

    result = CliRunner().invoke(cli, ["--storage", str(tmp_path), *command], input="Who?\n")
    assert result.exit_code == 1
    assert f"no articles in {tmp_path}" in result.output
    assert "`news-assistant demo`" in result.output
    assert "`news-assistant ingest FILES`" in result.output
