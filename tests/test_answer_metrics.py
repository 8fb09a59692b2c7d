"""Answer, citation and refusal metrics on hand-made cases whose right answers are known,
including MultiHop-RAG's own quirks (its lenient word-overlap rule, null queries, spacing)."""

from __future__ import annotations

import pytest

from evaluation import metrics
from evaluation.questions import GoldEvidence, Question
from evaluation.scoring import score_answer, summarise_answers, without_timings
from evaluation.targets import Prediction

FACT_A = "The central bank raised rates by half a point."
FACT_B = "Shares fell 3% in early trading."
FILLER = "Filler text about nothing in particular."


def test_lenient_rule_is_any_shared_lower_cased_word() -> None:
    assert metrics.lenient_match("Sam Bankman-Fried was convicted.", "Sam Bankman-Fried")
    assert metrics.lenient_match("YES", "Yes")
    # words are split on white space only: punctuation stays attached
    assert not metrics.lenient_match("Yes.", "Yes")
    assert not metrics.lenient_match("Bankman-Fried's trial", "Sam Bankman-Fried")
    # a stop word shared with the gold answer is enough
    assert metrics.lenient_match("the rates went up", "The Verge")
    assert not metrics.lenient_match("Rates went up", "The Verge")
    assert not metrics.lenient_match("", "Yes")


def test_lenient_rule_reads_the_quoted_answer_as_the_script_does() -> None:
    said = 'The answer to the question is "Meta", as the articles say.'
    assert metrics.upstream_answer(said) == "Meta"
    # only "Meta" is compared, so "the" in the sentence around it does not count
    assert not metrics.lenient_match(said, "The Verge")
    assert metrics.lenient_match(said, "Meta")
    # without that phrase the whole text is compared
    assert metrics.upstream_answer('The answer is "Meta"') == 'The answer is "Meta"'


def test_null_queries_expect_insufficient_information() -> None:
    for gold in (
        "Insufficient information.",
        "insufficient information",
        "Insufficient Information",
    ):
        assert metrics.is_no_answer(gold)
    assert not metrics.is_no_answer("Insufficient evidence of fraud")
    assert metrics.lenient_match(metrics.NO_ANSWER, "Insufficient information.")
    # the upstream prompt's own wording is right too: "insufficient" is shared
    assert metrics.lenient_match("Insufficient Information", "Insufficient information.")


def test_squad_exact_match_and_token_f1() -> None:
    assert metrics.normalise_answer("The  Verge!") == "verge"
    assert metrics.exact_match("the verge.", ["The Verge"]) == 1.0
    assert metrics.exact_match("Verge news", ["The Verge"]) == 0.0
    # "Bankman-Fried" loses its hyphen: 4 predicted tokens, 2 gold, 2 shared -> P 1/2, R 1
    assert metrics.token_f1("Sam Bankman-Fried was convicted", ["Sam Bankman-Fried"]) == (
        pytest.approx(2 / 3)
    )
    # the best over several gold answers
    assert metrics.token_f1("Google", ["Alphabet", "Google"]) == 1.0
    assert metrics.exact_match("Alphabet Inc", ["Alphabet", "Alphabet Inc."]) == 1.0
    # repeated tokens count as often as both sides have them
    assert metrics.token_f1("no no no", ["no"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    # nothing left after normalising: right only when both are empty
    assert metrics.token_f1("The", ["a"]) == 1.0
    assert metrics.token_f1("", ["Yes"]) == 0.0


def test_citation_markers_are_not_part_of_the_answer() -> None:
    assert metrics.strip_citations("Rates rose. [1] Shares fell. [2, 3] Done [4-5].") == (
        "Rates rose. Shares fell. Done."
    )


def test_a_fact_is_found_whatever_its_spacing() -> None:
    passage = f"{FILLER} The central bank raised\nrates by half   a point. More."
    assert metrics.contains_fact(passage, FACT_A)
    assert metrics.contains_fact("Thecentralbankraisedratesbyhalfapoint.", FACT_A)
    assert not metrics.contains_fact(passage, FACT_B)
    assert not metrics.contains_fact(passage, "  ")


def test_same_article_by_url_title_or_id() -> None:
    def same(**given: str) -> bool:
        fields = {"title": "", "url": "", "article_id": ""}
        gold = {"gold_title": "", "gold_url": "", "gold_id": ""}
        for key, value in given.items():
            (gold if key.startswith("gold_") else fields)[key] = value
        return metrics.same_article(**fields, **gold)

    assert same(url="https://Example.com/a/", gold_url="http://example.com/a")
    assert not same(url="https://example.com/a", gold_url="https://example.com/b")
    assert same(title="Rates  rise\nagain", gold_title="rates rise again")
    assert same(article_id="u123", gold_id="u123")
    assert not same(title="", gold_title="")  # empty fields never match
    assert not same(title="Rates rise", url="https://x.org/1", gold_url="https://x.org/2")


def passage(text: str, *, title: str = "Other", url: str = "") -> dict[str, str]:
    return {"chunk_id": title, "article_id": "", "title": title, "url": url, "text": text}


def citation(number: int, text: str, *, title: str = "Other", url: str = "") -> dict[str, object]:
    return {
        "number": number,
        "article_id": "",
        "title": title,
        "url": url,
        "quote": "",
        "passage": text,
    }


def prediction(
    answer: str,
    *,
    refused: bool = False,
    citations: list[dict[str, object]] | None = None,
    passages: list[dict[str, str]] | None = None,
) -> Prediction:
    return Prediction(
        answer=answer,
        refused=refused,
        mode="extractive",
        citations=citations or [],
        passages=passages or [],
        latency_s=1.0,
        first_token_s=0.5,
    )


TWO_ARTICLES = Question(
    id="q1",
    question="Did rates rise before shares fell?",
    answers=("Yes",),
    question_type="temporal_query",
    evidence=(
        GoldEvidence(fact=FACT_A, title="Bank raises rates", url="https://news.example/rates"),
        GoldEvidence(fact=FACT_B, title="Markets slide", url="https://news.example/markets"),
    ),
)
NULL = Question(
    id="q2",
    question="What did the moon say?",
    answers=("Insufficient information.",),
    question_type="null_query",
)


def test_scores_of_an_answer_with_retrieval_and_citations() -> None:
    passages = [
        passage(FILLER),
        passage(f"{FILLER} The central bank raised rates\nby half a point."),  # rank 2: fact A
        *[passage(FILLER) for _ in range(7)],
        passage(FACT_B),  # rank 10
        passage(FACT_A + " " + FACT_B),  # rank 11: beyond every @10 metric
    ]
    cites = [
        citation(1, f"{FILLER} {FACT_A}"),  # holds a gold fact
        # from a gold article, by its URL, though the passage holds no fact
        citation(2, FILLER, title="Markets slide today", url="https://news.example/markets/"),
        citation(3, FILLER),  # neither
    ]
    scores = score_answer(
        TWO_ARTICLES,
        prediction("Rates rose. [1] Yes, shares fell. [2]", citations=cites, passages=passages),
    )
    assert scores["Hits@4"] == 1.0
    assert scores["MRR@10"] == 0.5
    assert scores["MAP@10"] == pytest.approx((1 / 2 + 1 / 10) / 2)
    assert scores["recall@10"] == 1.0 and scores["complete@10"] == 1.0
    assert scores["citation_precision"] == pytest.approx(2 / 3)
    assert scores["citation_recall"] == 1.0
    # "Yes," keeps its comma in the benchmark's rule; SQuAD's F1 drops it
    assert scores["lenient"] == 0.0
    assert scores["exact_match"] == 0.0
    assert scores["token_f1"] == pytest.approx(2 * (1 / 5) * 1 / (1 / 5 + 1))
    assert scores["refused"] == 0.0


def test_citation_recall_counts_articles_not_facts() -> None:
    same_article = Question(
        id="q3",
        question="What did the bank do?",
        answers=("raised rates",),
        question_type="inference_query",
        evidence=(
            GoldEvidence(fact=FACT_A, title="Bank raises rates"),
            GoldEvidence(fact=FACT_B, title="Bank raises rates"),
            GoldEvidence(fact="The minister resigned.", title="Minister quits"),
        ),
    )
    cited = [citation(1, FACT_B)]
    scores = score_answer(same_article, prediction("Shares fell. [1]", citations=cited))
    assert scores["citation_recall"] == pytest.approx(1 / 2)
    assert scores["citation_precision"] == 1.0
    # no citations: precision undefined, recall 0
    bare = score_answer(same_article, prediction("The bank raised rates."))
    assert bare["citation_precision"] is None and bare["citation_recall"] == 0.0
    assert bare["exact_match"] == 0.0 and bare["lenient"] == 1.0


def test_a_refusal_answers_insufficient_information() -> None:
    refused = prediction("The articles I have do not answer this.", refused=True)
    scores = score_answer(NULL, refused)
    assert scores["lenient"] == 1.0 and scores["exact_match"] == 1.0 and scores["token_f1"] == 1.0
    # null queries have no evidence: retrieval and citations do not apply (upstream skips them)
    assert all(scores[m] is None for m in ("Hits@10", "MRR@10", "MAP@10", "citation_precision"))
    # an answer to a null query is wrong by every rule, unless it happens to share a word
    answered = score_answer(NULL, prediction("The moon said nothing. [1]"))
    assert answered["lenient"] == 0.0 and answered["refused"] == 0.0
    # refusing an answerable question is wrong
    assert score_answer(TWO_ARTICLES, refused)["lenient"] == 0.0


def record(question: Question, pred: Prediction) -> dict[str, object]:
    from evaluation.scoring import question_record

    return question_record(question, pred)


def test_refusal_precision_and_recall() -> None:
    nulls = [Question(f"n{i}", "?", ("Insufficient information.",), "null_query") for i in range(4)]
    rows = [
        record(nulls[0], prediction("", refused=True)),
        record(nulls[1], prediction("", refused=True)),
        record(nulls[2], prediction("", refused=True)),
        record(nulls[3], prediction("An answer.")),
        record(TWO_ARTICLES, prediction("", refused=True)),
        record(Question("q9", "?", ("Yes",), "comparison_query"), prediction("Yes")),
    ]
    summary = summarise_answers(rows)
    refusals = summary["overall"]["refusals"]
    assert refusals["unanswerable"] == 4 and refusals["refused"] == 4
    assert refusals["refused_unanswerable"] == 3
    assert refusals["refused_answerable"] == 1 and refusals["answered_unanswerable"] == 1
    assert refusals["precision"] == pytest.approx(3 / 4)
    assert refusals["recall"] == pytest.approx(3 / 4)
    assert summary["by_type"]["comparison_query"]["refusals"]["precision"] is None
    # lenient: 3 refusals right, 1 answer to a null wrong, 1 refusal wrong, "Yes" right
    assert summary["overall"]["scores"]["lenient"] == pytest.approx(4 / 6)
    # retrieval is averaged only over the one question with facts
    assert summary["overall"]["counts"]["Hits@10"] == 1
    assert "latency_s" not in without_timings(summary)["overall"]
    assert summary["overall"]["latency_s"]["p50"] == 1.0
    assert summary["overall"]["first_token_s"]["p95"] == 0.5


def test_evidence_article_ids_match_by_url_title_or_id() -> None:
    from index.articles import article_id

    no_url = article_id(url="", title="Rates", body="...", given="wire-17")
    with_url = article_id(url="https://news.example/a", title="Markets", body="...", given="a-1")
    assert GoldEvidence(article_id="wire-17").is_article(title="Rates", url="", article_id=no_url)
    assert GoldEvidence(article_id=no_url).is_article(title="Rates", url="", article_id=no_url)
    url = GoldEvidence(article_id="https://news.example/a/")
    assert url.is_article(title="Markets", url="https://news.example/a", article_id=with_url)
    title = GoldEvidence(article_id="markets")
    assert title.is_article(title="Markets", url="https://news.example/a", article_id=with_url)
    # an article with a URL is known by it: the file's own id for it does not match
    given = GoldEvidence(article_id="a-1")
    assert not given.is_article(title="Markets", url="https://news.example/a", article_id=with_url)
