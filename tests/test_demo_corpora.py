"""The second demo archive (MultiHop-RAG, 2023) beside the default one: CLI, page and API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner, Result

from index.demo import DEFAULT_DEMO, DEMO_CORPORA, demo_corpus
from serving.api import Collections
from serving.config import app_settings
from tests.conftest import LiveServer, indexed_engine

if TYPE_CHECKING:
    from assistant.engine import Engine
    from index.embedding import Embedder

pytestmark = pytest.mark.slow  # builds the 609-article archive once, serves it over uvicorn

MULTIHOP = "multihop-2023"
FTC_QUESTION = "What did the FTC allege in its lawsuit against Amazon?"


@dataclass
class Archives:
    """A store holding two collections: the 2023 demo built by the CLI, and a small 2022 one."""

    storage: Path
    built: Result  # the CLI's `demo --corpus multihop-2023`
    embedded: int  # texts the model embedded while the CLI built it
    news: Engine  # the default collection, the small 2022 corpus


def run_cli(*args: str) -> Result:
    from serving.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def archives(
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, embedder: Embedder
) -> Archives:
    from index.embedding import Embedder

    storage = tmp_path_factory.mktemp("two-archives")
    embedded: list[int] = []
    real_embed = Embedder.embed

    def counting(self: Embedder, texts: Any, *args: Any, **kwargs: Any) -> Any:
        embedded.append(len(texts))
        return real_embed(self, texts, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Embedder, "embed", counting)
        built = run_cli("--storage", str(storage), "demo", "--corpus", MULTIHOP, "-q")
    news = indexed_engine([small_corpus], storage, embedder, demo_vectors=True)
    return Archives(storage, built, sum(embedded), news)


@pytest.fixture(scope="module")
def api(archives: Archives) -> Iterator[httpx.Client]:
    """The real API over the store's default collection, on a loopback port."""
    from serving.api import create_api

    settings = app_settings(archives.news.settings)
    with (
        LiveServer(create_api(archives.news, settings)) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        yield client


def test_the_cli_builds_the_2023_demo_into_its_own_collection_from_shipped_vectors(
    archives: Archives,
) -> None:
    assert archives.built.exit_code == 0, archives.built.output
    assert f"collection {MULTIHOP!r}: 609 added" in archives.built.output
    # Every chunk's vector came from data/multihop-rag/vectors-*.npz: the model embedded nothing.
    assert archives.embedded == 0
    assert archives.news.index.collections() == [MULTIHOP, "news"]
    summary = Collections(archives.news).engine(MULTIHOP).corpus_summary()
    assert (summary.articles, len(summary.outlets)) == (609, 49)
    assert (summary.first_date, summary.last_date) == ("2023-09-26", "2023-12-25")
    assert archives.news.corpus_summary().last_date == "2022-02-28"  # the default is untouched


def test_a_built_demo_is_left_alone_and_an_unknown_corpus_names_the_choices(
    archives: Archives,
) -> None:
    again = run_cli("--storage", str(archives.storage), "demo", "--corpus", MULTIHOP, "-q")
    assert again.exit_code == 0 and "already holds 8051 chunks" in again.output
    unknown = run_cli("--storage", str(archives.storage), "demo", "--corpus", "nope")
    assert unknown.exit_code == 2
    assert "multihop-2023" in unknown.output and "news" in unknown.output
    assert demo_corpus(DEFAULT_DEMO).collection == "news"
    with pytest.raises(ValueError, match="choose one of: news, multihop-2023"):
        demo_corpus("nope")
    assert DEMO_CORPORA[MULTIHOP].files[0].name == "corpus.json"


def test_the_page_follows_the_picked_archive(archives: Archives) -> None:
    from serving.page import MULTIHOP_QUESTIONS, PageHandlers

    handlers = PageHandlers(archives.news)
    line, outlets, picker = handlers.refresh("")
    assert picker.visible is True and picker.value == "news"
    assert [value for _, value in picker.choices] == ["news", MULTIHOP]
    assert "articles from 2 outlets" in line and "2022-" in line

    header, outlets, chips, _chat, _sources, turns, question = handlers.switch(MULTIHOP)
    assert "609 articles from 49 outlets, 2023-09-26 to 2023-12-25" in header
    assert ("Sporting News", "Sporting News") in outlets.choices and outlets.value == []
    assert [row[0] for row in chips.raw_samples] == [q for q, _ in MULTIHOP_QUESTIONS]
    assert turns == [] and question == ""

    news_header, *_ = handlers.switch("news")
    assert "2 outlets" in news_header and "2023" not in news_header


def test_each_2023_example_question_is_answered_from_2023_articles(archives: Archives) -> None:
    from serving.page import MULTIHOP_QUESTIONS

    engine = Collections(archives.news).engine(MULTIHOP)
    for question, needle in MULTIHOP_QUESTIONS:
        answer = engine.ask(question)
        assert not answer.refused and answer.citations, question
        assert all(c.passage.published.startswith("2023-") for c in answer.citations)
        assert any(needle.lower() in c.passage.text.lower() for c in answer.citations), question


def test_the_api_lists_the_collections_and_answers_from_the_one_asked(
    api: httpx.Client,
) -> None:
    health = api.get("/api/health")
    assert health.status_code == 200
    assert health.json()["collections"] == ["news", MULTIHOP]

    answered = api.post("/api/ask", json={"question": FTC_QUESTION, "collection": MULTIHOP})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert not body["refused"] and body["citations"]
    assert all(c["published"].startswith("2023-") for c in body["citations"])
    assert any("Amazon" in c["title"] for c in body["citations"])

    found = api.post("/api/search", json={"question": FTC_QUESTION, "collection": MULTIHOP})
    assert found.status_code == 200
    assert all(p["published"].startswith("2023-") for p in found.json()["passages"])
    default = api.post("/api/search", json={"question": FTC_QUESTION})
    assert all(p["published"].startswith("2022-") for p in default.json()["passages"])


@pytest.mark.parametrize("path", ["/api/ask", "/api/search"])
def test_an_unknown_collection_is_a_422_naming_the_ones_there(api: httpx.Client, path: str) -> None:
    refused = api.post(path, json={"question": FTC_QUESTION, "collection": "nope"})
    assert refused.status_code == 422
    assert refused.json() == {
        "error": {
            "message": "collection: 'nope' is not in the store; choose one of: news, multihop-2023",
            "type": "invalid_request_error",
        }
    }
