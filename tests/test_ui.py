"""The HTML the web UI builds: everything escaped, markers linked, quotes marked."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from assistant.answer import Answer, Citation, ShortAnswer
from assistant.retrieve import Passage
from serving.inputs import parse_filters
from serving.page import MULTIHOP_QUESTIONS, corpus_picker, example_questions
from serving.render import (
    ChatTurn,
    copy_text,
    flowing_paragraphs,
    render_answer_text,
    render_chat,
    render_sources,
)
from tests.factories import make_passage

BODY = 'Intro. Lavrov said "NATO <b>must</b> not expand" on Friday. More text.'


def passage(**changes: Any) -> Passage:
    """The TASS passage, its title carrying markup that must stay text."""
    fields: dict[str, Any] = {
        "title": "Lavrov <img src=x onerror=alert(1)>",
        "source": "TASS",
        "url": "https://tass.com/politics/1395",
        "start": 100,
        **changes,
    }
    return make_passage(BODY, **fields)


def answer(p: Passage | None = None, citations: list[Citation] | None = None) -> Answer:
    p = p or passage()
    quote = "NATO <b>must</b> not expand"
    at = BODY.index(quote)
    citation = Citation(1, p, quote, p.start + at, p.start + at + len(quote))
    return Answer(
        question="What did Lavrov say?",
        text='Lavrov said: "NATO <b>must</b> not expand" [1]. Also [7].',
        citations=[citation] if citations is None else citations,
        refused=False,
        mode="extractive",
    )


def test_known_markers_link_to_their_cards_and_text_is_escaped() -> None:
    html = render_answer_text(answer().text, turn=2, numbers=[1])
    assert '<a class="na-cite" href="#na-src-2-1" data-card="na-src-2-1"' in html
    assert "&lt;b&gt;must&lt;/b&gt;" in html and "<b>" not in html
    assert "[7]" in html and "na-src-2-7" not in html  # an unknown number stays text


def test_the_short_answer_leads_in_its_own_box_and_is_not_said_twice() -> None:
    a = answer()
    start = a.citations[0].quote_start
    a.text = "NATO <b>must</b> not expand [1]. " + a.text
    a.short_answers = [ShortAnswer("NATO <b>must</b> not expand", 1, start, start + 26, "title")]
    html = render_chat([ChatTurn(question="q", answer=a)])
    box = html.index('<p class="na-short"')
    assert "NATO &lt;b&gt;must&lt;/b&gt; not expand" in html[box : box + 200]
    assert 'data-card="na-src-0-1"' in html[box : box + 300]
    shown = html[box : html.index('<div class="na-foot">')]
    # Once in the box, once in Lavrov's quote: the leading sentence is not repeated below it.
    assert shown.count("not expand") == 2
    assert shown.index("</p>") < shown.index("Lavrov said")


def test_no_short_answer_box_when_the_text_does_not_lead_with_it() -> None:
    a = answer()
    a.short_answers = [ShortAnswer("Friday", 1, 0, 6, "date")]
    assert "na-short" not in render_chat([ChatTurn(question="q", answer=a)])


def test_chat_escapes_the_question_and_puts_copy_text_in_an_attribute() -> None:
    turn = ChatTurn(question='<script>alert("q")</script>', answer=answer())
    html = render_chat([turn])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt;" in html
    assert 'data-copy="Lavrov said: &quot;NATO &lt;b&gt;must' in html


def test_source_card_marks_the_quote_in_its_passage() -> None:
    html = render_sources([ChatTurn(question="q", answer=answer())])
    assert 'id="na-src-0-1" open' in html
    assert (
        'Lavrov said &quot;<mark class="na-quote">NATO &lt;b&gt;must&lt;/b&gt; not expand</mark>'
        in html
    )
    assert "Lavrov &lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert 'href="https://tass.com/politics/1395"' in html and 'rel="noopener noreferrer"' in html
    assert "28 Jan 2022" in html


# A body as the demo corpus has them: lines wrapped mid-sentence, paragraphs by a blank line.
WRAPPED = (
    "Lavrov said the talks\nwould go on.\n\n"
    "Later, Lavrov said the talks\nwould go on, and <b>NATO</b>\xa0\n"
    "must not expand.  \n \n\nEnd."
)


def card_body(text: str, quote: str, at: int) -> str:
    """The passage box of the card for a citation of `quote`, found at `at` in `text`."""
    p = make_passage(text, start=500)
    citation = Citation(1, p, quote, p.start + at, p.start + at + len(quote))
    html = render_sources([ChatTurn(question="q", answer=answer(p, [citation]))])
    body = html.split('<div class="na-passage">', 1)[1]
    return body[: body.index("</div>")]


def test_a_card_shows_paragraphs_as_flowing_text() -> None:
    assert flowing_paragraphs(WRAPPED) == (
        "<p>Lavrov said the talks would go on.</p>"
        "<p>Later, Lavrov said the talks would go on, and &lt;b&gt;NATO&lt;/b&gt; "
        "must not expand.</p>"
        "<p>End.</p>"
    )
    assert flowing_paragraphs("  \n\n ") == ""


def test_the_quote_is_marked_where_its_offset_says_across_a_wrapped_line() -> None:
    quote = "Lavrov said the talks\nwould go on"  # twice in the text: the offset picks one
    second = WRAPPED.index(quote, 1)
    body = card_body(WRAPPED, quote, second)
    assert body == (
        "<p>Lavrov said the talks would go on.</p>"
        '<p>Later, <mark class="na-quote">Lavrov said the talks would go on</mark>, and '
        "&lt;b&gt;NATO&lt;/b&gt; must not expand.</p>"
        "<p>End.</p>"
    )
    assert "<br>" not in body and "\n" not in body
    assert body.count("<mark") == 1 and card_body(WRAPPED, quote, 0).index("<mark") == 3


def test_a_quote_across_a_blank_line_is_marked_in_each_paragraph() -> None:
    quote = "go on.\n\nLater"
    body = card_body(WRAPPED, quote, WRAPPED.index(quote))
    assert body.startswith(
        '<p>Lavrov said the talks would <mark class="na-quote">go on.</mark></p>'
        '<p><mark class="na-quote">Later</mark>, Lavrov said'
    )


def test_a_quote_not_in_the_passage_comes_first_then_the_paragraphs() -> None:
    body = card_body(WRAPPED, "words that\nare elsewhere", -1)
    assert body.startswith('<p><mark class="na-quote">words that are elsewhere</mark></p><p>Lavrov')
    assert body.count("<p>") == 4


def test_an_excerpt_keeps_its_gaps_inside_the_flowing_text() -> None:
    text = "Lavrov spoke\non Friday.\n\nHe said NATO\nmust not expand."
    gap = text.index("\n\n")
    spans = ((0, gap), (900, 900 + len(text) - gap - 2))
    p = make_passage(text, start=0, end=spans[1][1], spans=spans)
    at = p.article_offset(text.index("NATO"))
    citation = Citation(1, p, "NATO", at, at + 4)
    body = render_sources([ChatTurn(question="q", answer=answer(p, [citation]))])
    assert (
        '<div class="na-passage"><p>Lavrov spoke on Friday.<span class="na-gap" title="Part of '
        'the article is left out here"> […] </span>He said <mark class="na-quote">NATO</mark> '
        "must not expand.</p></div>"
    ) in body


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "//evil"])
def test_only_http_links_are_clickable(url: str) -> None:
    html = render_sources([ChatTurn(question="q", answer=answer(passage(url=url)))])
    assert f'<span class="na-link">{escape(url)}</span>' in html
    assert "href=" not in html


def test_copy_text_carries_the_citations() -> None:
    text = copy_text(answer())
    assert text.startswith('Lavrov said: "NATO <b>must</b> not expand" [1].')
    assert "[1] Lavrov <img src=x onerror=alert(1)> — TASS, 2022-01-28" in text
    assert "https://tass.com/politics/1395" in text and "“NATO <b>must</b> not expand”" in text


def test_demo_question_comes_first_when_the_corpus_has_it() -> None:
    titles = [("2022-02-01", "A long day"), ("2022-01-01", "Another day")]
    found = example_questions(titles, ["Lavrov said things", "nothing else"])
    assert found[0] == "What did Lavrov say about NATO expansion?"
    assert found[1:] == ["What is “A long day” about?", "What is “Another day” about?"]
    assert example_questions(titles, ["no names here"])[0] == "What is “A long day” about?"


def test_the_archive_picker_shows_only_with_two_collections_and_names_demos() -> None:
    alone = corpus_picker(["news"], "news")
    assert alone.visible is False
    both = corpus_picker(["news", "multihop-2023", "mine"], "multihop-2023")
    assert both.visible is True and both.value == "multihop-2023"
    assert both.choices == [
        ("White House and TASS, Jan–Feb 2022", "news"),
        ("MultiHop-RAG: 49 outlets, Sep–Dec 2023", "multihop-2023"),
        ("mine", "mine"),  # not a demo: its name
    ]


def test_each_demo_archive_offers_its_own_questions() -> None:
    texts = ["The FTC sued Amazon", "Ozempic study", "Lavrov said things"]
    found = example_questions([], texts, MULTIHOP_QUESTIONS)
    assert found == [MULTIHOP_QUESTIONS[0][0], MULTIHOP_QUESTIONS[1][0]]  # Lavrov's is not here


def test_filters_from_the_form() -> None:
    assert parse_filters("", "", []) is None
    assert parse_filters(None, " ", None) is None
    found = parse_filters("2022-01-02", " 28 January 2022 ", ["TASS", ""])
    assert found is not None
    assert (found.date_from, found.date_to, found.outlets) == (
        "2022-01-02",
        "2022-01-28",
        ("TASS",),
    )
    with pytest.raises(ValueError, match="date filter"):
        parse_filters("next tuesday-ish", "", [])


def test_the_api_and_the_command_line_read_filters_the_same_way() -> None:
    from datetime import date

    from click import BadParameter

    from serving.cli import _filters
    from serving.schemas import FilterFields

    fields = FilterFields(date_from=date(2022, 1, 2), outlets=["TASS"])
    assert fields.filters() == parse_filters("2022-01-02", None, ["TASS"])
    assert FilterFields().filters() is None
    assert _filters("2 January 2022", None, ("TASS",)) == fields.filters()
    with pytest.raises(BadParameter, match="date filter"):
        _filters("next tuesday-ish", None, ())
