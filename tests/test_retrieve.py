"""The retriever on a tiny hand-made news corpus, in a real Chroma with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from assistant.engine import Engine
from assistant.retrieve import Filters, RankingOptions, Retriever, shared_names

from .conftest import engine_over, indexed_engine, make_settings

if TYPE_CHECKING:
    from index.embedding import Embedder

ACME_VERGE = (
    "Acme Robotics is cutting 200 jobs after a weak quarter. The Verge learned that the "
    "warehouse robot maker will close its Denver office and move hardware work to Austin. "
    "Staff were told in an all-hands meeting on Monday."
)
ACME_TECHCRUNCH = (
    "Acme Robotics will lay off a fifth of its staff, TechCrunch has confirmed. The startup, "
    "which builds warehouse robots, blamed slowing orders from retailers and said the cuts "
    "would save 40 million dollars a year. Investors had pushed for the layoffs since spring."
)
COUNCIL_OCT5 = (
    "The city council approved a 2 billion dollar budget on Thursday after a long night of "
    "debate. Spending on buses rises by 10 percent, while the police budget stays flat."
)
COUNCIL_NOV9 = (
    "The city council budget came under fire again as auditors found a 50 million dollar gap. "
    "Council members traded blame over bus spending at a tense meeting."
)
FLOOD = (
    "Heavy rain sent the Zephyr river over its banks, flooding farms across the valley. "
    "Farmers said the water destroyed most of the wheat harvest and drowned cattle."
)
CONSOLE = (
    "The Quasar game console sold out within minutes of its launch. Resellers listed it at "
    "twice the price, and the maker promised more stock before the holidays."
)
NATO_QUOTE = (
    "Foreign Minister Sergey Lavrov said on Friday that Western countries broke their promise "
    'not to expand NATO eastwards. "We were told the alliance would not move an inch east," '
    "Lavrov told reporters in Moscow."
)
NATO_PLAIN = (
    "NATO expansion has been debated for decades. The alliance grew from 16 members in the "
    "1990s to 31 today, and expansion to the east remains a topic of debate among analysts."
)
NATO_MENTION = (
    "Secretary Blinken proposed a meeting with Foreign Minister Lavrov to discuss NATO expansion "
    "and European security, officials in Washington announced, as NATO allies met in Brussels."
)
SYNDICATED = (
    "A rare white kangaroo was spotted near a country road outside Ballarat, delighting "
    "locals. Wildlife officers said the animal appeared healthy and asked people to keep away."
)
FILLER = [
    ("Wheat prices climb", "Wheat futures rose for a third day as traders weighed the harvest."),
    ("Bus strike ends", "Drivers returned to work after the bus company agreed to a pay rise."),
    ("Robot vacuum review", "The new robot vacuum maps rooms quickly but struggles with rugs."),
    ("Console prices", "Game console prices have risen as chip shortages continue."),
]


def _articles() -> list[dict[str, Any]]:
    rows = [
        ("Acme Robotics cuts 200 jobs", ACME_VERGE, "The Verge", "2023-10-02"),
        ("Acme Robotics to lay off a fifth of staff", ACME_TECHCRUNCH, "TechCrunch", "2023-10-03"),
        ("Council passes budget", COUNCIL_OCT5, "Metro Daily", "2023-10-05"),
        ("Budget gap found", COUNCIL_NOV9, "Metro Daily", "2023-11-09"),
        ("Zephyr river floods farms", FLOOD, "Fortune", "2023-10-10"),
        ("Quasar console sells out", CONSOLE, "Polygon", "2023-10-11"),
        ("Lavrov: the West broke its promise", NATO_QUOTE, "TASS", "2023-10-12"),
        ("Why NATO grew", NATO_PLAIN, "Analysis Weekly", "2023-10-12"),
        ("Blinken offers talks on NATO expansion", NATO_MENTION, "Wire", "2023-10-13"),
        ("White kangaroo spotted", SYNDICATED, "The Age", "2023-10-20"),
        (
            "White kangaroo spotted",
            SYNDICATED + " (AAP)",
            "The Sydney Morning Herald",
            "2023-10-20",
        ),
    ]
    rows += [(title, body, "Wire", "2023-10-15") for title, body in FILLER]
    return [
        {
            "title": title,
            "body": body,
            "source": source,
            "published_at": day,
            "url": f"https://news.example/{i}",
        }
        for i, (title, body, source, day) in enumerate(rows)
    ]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "corpus.json"
    path.write_text(json.dumps(_articles()))
    return path


@pytest.fixture(scope="module")
def tiny_engine(
    tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, embedder: Embedder
) -> Engine:
    return indexed_engine([tiny_corpus], tmp_path_factory.mktemp("tiny-store"), embedder)


def test_the_outlet_named_in_the_question_ranks_first(tiny_engine: Engine) -> None:
    for outlet in ("TechCrunch", "The Verge"):
        top = tiny_engine.search(f"What did {outlet} report about the Acme Robotics layoffs?", k=3)
        assert top[0].source == outlet


def test_the_date_named_in_the_question_ranks_first(tiny_engine: Engine) -> None:
    first = tiny_engine.search("What about the city council budget on October 5, 2023?", k=2)
    assert first[0].published == "2023-10-05"
    later = tiny_engine.search("What about the city council budget in November 2023?", k=2)
    assert later[0].published == "2023-11-09"


def test_every_part_of_a_two_part_question_reaches_the_top(tiny_engine: Engine) -> None:
    question = (
        "Did the Fortune article say that the river flood destroyed the wheat harvest, while "
        "the Polygon article claims that the Quasar console sold out?"
    )
    top = tiny_engine.search(question, k=3)
    assert {"Fortune", "Polygon"} <= {p.source for p in top}


def test_a_chunk_quoting_the_asked_about_speaker_ranks_up(tiny_engine: Engine) -> None:
    top = tiny_engine.search("What did Lavrov say about NATO expansion?", k=3)
    assert top[0].source == "TASS"  # Lavrov speaks; the Wire piece only names him
    boosts = {p.source: p.signals["boost"] for p in top}
    assert boosts["TASS"] > boosts["Wire"] == 1.0


def test_syndicated_copies_are_collapsed(tiny_engine: Engine) -> None:
    top = tiny_engine.search("white kangaroo seen near Ballarat", k=4)
    copies = [p for p in top if "white kangaroo" in p.text]
    assert len(copies) == 1

    plain = Retriever(
        tiny_engine.settings,
        store=tiny_engine.store,
        embedder=tiny_engine.embedder,
        options=RankingOptions(collapse_duplicates=False),
    )
    copies = [
        p
        for p in plain.search("white kangaroo seen near Ballarat", k=4)
        if "white kangaroo" in p.text
    ]
    # The copy was merged at ingest, so even without the query-time collapse (kept for indexes
    # built before) the story comes once, naming the other outlet.
    assert len(copies) == 1
    assert len(copies[0].also_published_by) == 1


def test_explicit_filters_are_hard_limits(tiny_engine: Engine) -> None:
    only = tiny_engine.search(
        "What did TechCrunch report about Acme Robotics?",
        k=5,
        filters=Filters(outlets=("The Verge",)),
    )
    assert only and {p.source for p in only} == {"The Verge"}
    dated = tiny_engine.search(
        "city council budget", k=5, filters=Filters(date_from="2023-11-01", date_to="2023-11-30")
    )
    assert dated and {p.published for p in dated} == {"2023-11-09"}


def test_an_unknown_date_fails_any_date_bound() -> None:
    before = Filters(date_to="2023-10-31")
    assert before.admits({"date_int": 20231001, "source": "X"})
    assert not before.admits({"date_int": 0, "source": "X"})
    assert not before.admits({"date_int": 20231101, "source": "X"})
    assert Filters(outlets=("X",)).admits({"date_int": 0, "source": "X"})
    assert not Filters(outlets=("Y",)).admits({"date_int": 0, "source": "X"})


def test_shared_names_leave_out_the_question_outlets_dates_and_sentence_starts() -> None:
    texts = [
        "Shares of Zorblax fell on Monday. The drone maker cut jobs, Reuters said.",
        "On Tuesday Zorblax said its Hanover stand would open. Reuters confirmed it.",
        "Analysts at Grey Partners expect Zorblax to recover, Reuters said. Shares were quiet.",
        "Kestrel Aero showed a drone in Hanover.",
    ]
    question = "Which drone maker showed a drone in Hanover?"
    found = shared_names(texts, known=question, exclude=["Reuters"], min_texts=3)
    assert found == ["Zorblax"]  # not "Shares" (only ever a sentence start), "Monday", "Reuters"
    assert shared_names(texts, known=question, exclude=[], min_texts=2) == ["Zorblax", "Reuters"]


@pytest.mark.slow
def test_shared_names_tied_in_count_come_in_order_of_appearance_in_every_process() -> None:
    texts = [f"In Oslo, {a} met {b} and Kestrel Aero." for a, b in [("Vela", "Orin")] * 2]
    script = (
        "from assistant.retrieve import shared_names; import sys; "
        f"print(shared_names({texts!r}, known='', exclude=[], min_texts=2))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert runs == {"['Oslo', 'Vela', 'Orin', 'Kestrel Aero']\n"}


LAYOFFS = [
    "Drone maker Zorblax is cutting 300 jobs as orders slow, it told staff on Tuesday.",
    "The drone maker Zorblax will lay off a fifth of its workers after a weak quarter.",
    "Job cuts at Zorblax: the company blamed retailers for ordering fewer drones this year.",
    "Staff at Zorblax learned of the layoffs in an email; the cuts hit its Denver plant.",
    "Investors welcomed the Zorblax layoffs, and its shares rose four percent on the news.",
]
ROUNDUP = (
    "Smart rings reached the shops this week. Zorblax showed a folding delivery drone at the "
    "Hanover fair."
)
RIVALS = [
    f"{maker} showed a folding delivery drone at the Hanover fair, drawing crowds."
    for maker in ("Kestrel Aero", "Nimbus Labs", "Skyward Systems")
]


@pytest.fixture(scope="module")
def feedback_engine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    rows = [(f"Layoffs, part {i}", body, f"Wire {i}") for i, body in enumerate(LAYOFFS)]
    rows += [("Week in gadgets", ROUNDUP, "Gadget Weekly")]
    rows += [(f"Drones at the fair, {i}", body, "Aero") for i, body in enumerate(RIVALS)]
    rows += [(title, body, "Wire") for title, body in FILLER]
    articles = [
        {"title": t, "body": b, "source": o, "published_at": "2023-10-02", "url": f"u{i}"}
        for i, (t, b, o) in enumerate(rows)
    ]
    return engine_over(tmp_path_factory.mktemp("feedback"), articles, embedder)


def test_a_question_asking_for_a_name_searches_again_with_the_name_its_passages_share(
    feedback_engine: Engine,
) -> None:
    question = "Which company, reported to be cutting jobs, also showed a folding drone at a fair?"
    retriever = feedback_engine.retriever
    view = retriever.view()
    parsed = retriever.understand(question)
    assert parsed.asks_for_a_name
    expanded, _ = retriever.with_feedback(parsed, view, view.mask(None))
    assert expanded.text == f"{question} Zorblax"
    ranks = {}
    for passages in (0, 10):
        options = RankingOptions(feedback_passages=passages)
        searcher = Retriever(
            feedback_engine.settings,
            store=feedback_engine.store,
            embedder=feedback_engine.embedder,
            options=options,
        )
        titles = [p.title for p in searcher.search(question, k=10)]
        ranks[passages] = titles.index("Week in gadgets")
    # The roundup names the answer but shares few words with the question; the name lifts it.
    assert ranks[10] < ranks[0], ranks


def test_the_question_is_read_against_the_corpus(tiny_engine: Engine) -> None:
    parsed = tiny_engine.retriever.understand("What did the verge say about Acme last week?")
    assert parsed.outlets == ("The Verge",)
    # "last week" is resolved against the corpus's latest date (Thursday 2023-11-09)
    assert [(d.start.isoformat(), d.end.isoformat()) for d in parsed.dates] == [
        ("2023-10-30", "2023-11-05")
    ]


def test_new_articles_are_searchable_at_once(
    tiny_engine: Engine, tmp_path: Path, embedder: Embedder
) -> None:
    engine = Engine(make_settings(tmp_path / "store"), embedder=embedder)
    feed = tmp_path / "one.json"
    feed.write_text(json.dumps(_articles()[:2]))
    engine.index.ingest([feed], progress=False)
    assert len(engine.search("Acme Robotics", k=5)) == 2
    feed.write_text(json.dumps(_articles()[4:5]))
    engine.index.ingest([feed], progress=False)
    assert engine.search("Zephyr river flood", k=1)[0].source == "Fortune"


def test_eval_retrieval_command_reports_ours_and_the_baseline(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    from serving.cli import cli

    queries = tmp_path / "queries.json"
    queries.write_text(
        json.dumps(
            [
                {
                    "query": "Did the Fortune article say the Zephyr river flood destroyed the "
                    "wheat harvest, while the Polygon article says the Quasar console sold out?",
                    "answer": "Yes",
                    "question_type": "comparison_query",
                    "evidence_list": [
                        {"fact": "flooding farms across the valley", "source": "Fortune"},
                        {"fact": "The Quasar game console sold out", "source": "Polygon"},
                    ],
                },
                {
                    "query": "Who won the chess final?",
                    "answer": "Insufficient information.",
                    "question_type": "null_query",
                    "evidence_list": [],
                },
            ]
        )
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "--storage",
            str(tmp_path / "storage"),
            "eval",
            "retrieval",
            "--corpus",
            str(tiny_corpus),
            "--queries",
            str(queries),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "comparison_query (1 queries)" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ours"]["overall"]["queries"] == 1  # the null query is skipped
    assert summary["ours"]["overall"]["complete@4"] == 1.0
    assert summary["baseline"]["overall"]["queries"] == 1
    rows = (out / "queries-ours.jsonl").read_text().splitlines()
    assert json.loads(rows[0])["fact_ranks"][0] is not None
    # the evaluation index is reused on a second run
    assert len(list((tmp_path / "storage").glob("eval-*"))) == 1


def test_tiktoken_encoding_loads_from_the_bundled_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import tiktoken.registry

    from evaluation.retrieval import bundled_tiktoken_encoding

    # An empty cache elsewhere and no encoding loaded yet: only llama-index's copy can serve,
    # and the network guard fails any download attempt.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, "cl100k_base", raising=False)
    encoding = bundled_tiktoken_encoding()
    assert len(encoding.encode("What did Lavrov say about NATO expansion?")) > 5
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path)
    assert not list(tmp_path.iterdir())
