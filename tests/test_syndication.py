"""Syndicated copies: one wire story from several outlets is stored once, with its outlets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from index.syndication import THRESHOLD, copies_of, shingles, signatures_path
from tests.conftest import LiveServer, indexed_engine

WIRE = (
    "Dockworkers at the country's three largest container ports walked off the job on Monday "
    "after talks over automation and wages collapsed late on Sunday night, halting the loading "
    "of ships that carry about a third of the nation's imports. The union said its members "
    "would stay out until the port operators withdrew plans to install automated cranes at two "
    "terminals, which it says would cost more than four thousand jobs over the next decade. "
    "The operators' association said the plans were needed to keep the ports competitive with "
    "rivals abroad and that it had offered a pay rise of eleven percent over three years. "
    "Retailers warned that a strike lasting more than a week would empty shelves of some goods "
    "before the holiday season, and shipping lines began diverting vessels to smaller harbours "
    "along the coast. The transport minister called both sides to a meeting on Tuesday morning "
    "and said the government was ready to appoint a mediator if no agreement was reached. "
    "Economists estimated that each day of the stoppage would cost the economy several hundred "
    "million in delayed shipments, spoiled produce and idle factories waiting for parts. "
    "The last strike at the ports, eleven years ago, lasted nineteen days and ended only when "
    "parliament passed a law ordering the workers back."
)
STORY = {
    "title": "Dockworkers strike at three biggest ports over automation",
    "body": f"By Maria Lopez, Associated Press\n\n{WIRE}",
    "source": "Associated Press",
    "date": "2024-10-07",
    "url": "https://apnews.example/dockworkers-strike",
}
# Another outlet: its own headline, another byline, and a sentence of its own.
COPY_B = {
    "title": "Port strike halts a third of imports",
    "body": (
        f"By Maria Lopez\n\n{WIRE} Local officials in the harbour city said they were watching "
        "the talks closely."
    ),
    "source": "Coastal Herald",
    "date": "2024-10-07",
    "url": "https://coastalherald.example/news/port-strike",
}
COPY_C = {
    "title": "Ports at a standstill as dockworkers walk out",
    "body": f"The Daily Ledger wire desk\n\n{WIRE.replace('Monday', 'Monday morning')}",
    "source": "Daily Ledger",
    "date": "2024-10-08",
    "url": "https://ledger.example/2024/10/08/ports-standstill",
}
# The same topic, another story: must stay an article of its own.
OTHER = {
    "title": "What the port strike means for holiday shopping",
    "body": (
        "Shoppers hoping to buy toys and electronics for the holidays may find fewer choices this "
        "year if the dockworkers' strike drags on, analysts said. Most goods for the season are "
        "already in warehouses, but late orders of popular items could be stuck on ships waiting "
        "offshore. Several large chains said they had moved orders earlier in the autumn to "
        "guard against exactly this kind of disruption, and some were paying for air freight. "
        "Smaller shops, which cannot afford to fly goods in, said they would be hit hardest by "
        "any delay longer than two weeks, and some said they had already raised prices."
    ),
    "source": "Retail Weekly",
    "date": "2024-10-08",
    "url": "https://retailweekly.example/holiday-shopping-strike",
}
FILLER = {
    "title": "City council approves new cycling lanes",
    "body": (
        "The city council voted on Wednesday to build forty kilometres of protected cycling lanes "
        "over the next three years, after a long debate about parking spaces and deliveries. "
        "Supporters said the lanes would make streets safer for children riding to school."
    ),
    "source": "Metro News",
    "date": "2024-10-02",
    "url": "https://metronews.example/cycling-lanes",
}
QUESTION = "Why did the dockworkers go on strike at the ports?"


def _write(folder: Path, name: str, articles: list[dict[str, Any]]) -> Path:
    path = folder / name
    path.write_text(json.dumps(articles))
    return path


@pytest.fixture(scope="module")
def synd(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    """An engine whose archive got the story and one copy in a first run, a second copy later."""
    folder = tmp_path_factory.mktemp("syndication")
    first = _write(folder, "first.json", [STORY, FILLER, COPY_B, OTHER])
    second = _write(folder, "second.json", [COPY_C])
    engine = indexed_engine([], folder / "store", embedder)
    reports = [
        engine.index.ingest([first], progress=False),
        engine.index.ingest([second], progress=False),
    ]
    return {"engine": engine, "reports": reports, "paths": [first, second]}


def _chunk_metadata(engine: Any, source: str) -> list[dict[str, Any]]:
    """The chunks' metadata of the stored article from `source`."""
    _, metas = engine.index.store.iter_metadata()
    return [m for m in metas if m["source"] == source]


def _id_of(engine: Any, source: str) -> str:
    return str(_chunk_metadata(engine, source)[0]["article_id"])


def _outlets(engine: Any) -> set[str]:
    return {a.source for a in engine.index.articles()}


def test_the_copies_are_far_above_the_threshold_and_the_other_story_far_below() -> None:
    story = shingles(str(STORY["body"]))

    def jaccard(other: dict[str, Any]) -> float:
        theirs = shingles(str(other["body"]))
        return len(story & theirs) / len(story | theirs)

    assert jaccard(COPY_B) >= THRESHOLD and jaccard(COPY_C) >= THRESHOLD
    assert jaccard(OTHER) < 0.2


def test_three_outlets_store_the_story_once_with_two_also_published_by(
    synd: dict[str, Any],
) -> None:
    engine = synd["engine"]
    first, second = synd["reports"]
    assert (first.added, first.syndicated) == (3, 1)
    assert "1 syndicated copies merged" in first.summary()
    assert (second.added, second.syndicated, second.chunks_written) == (0, 1, 0)
    assert _outlets(engine) == {"Associated Press", "Metro News", "Retail Weekly"}
    metas = _chunk_metadata(engine, "Associated Press")
    assert metas
    for meta in metas:
        copies = copies_of(meta)
        assert [(c.source, c.title, c.url, c.published) for c in copies] == [
            ("Coastal Herald", COPY_B["title"], COPY_B["url"], "2024-10-07"),
            ("Daily Ledger", COPY_C["title"], COPY_C["url"], "2024-10-08"),
        ]
    assert engine.index.check().ok


def test_a_different_story_on_the_same_topic_is_not_merged(synd: dict[str, Any]) -> None:
    metas = _chunk_metadata(synd["engine"], "Retail Weekly")
    assert metas and all(not copies_of(m) for m in metas)


def test_ingesting_the_same_files_again_changes_nothing(synd: dict[str, Any]) -> None:
    engine = synd["engine"]
    again = engine.index.ingest(synd["paths"], progress=False)
    assert (again.added, again.syndicated, again.chunks_written) == (0, 0, 0)
    assert again.unchanged == 5
    assert len(copies_of(_chunk_metadata(engine, "Associated Press")[0])) == 2


def test_search_returns_the_story_once_with_its_outlets(synd: dict[str, Any]) -> None:
    passages = synd["engine"].search(QUESTION, k=5)
    assert {p.source for p in passages} <= {"Associated Press", "Retail Weekly", "Metro News"}
    story = [p for p in passages if "walked off the job" in p.text]
    assert [p.source for p in story] == ["Associated Press"]
    assert [c["source"] for c in story[0].also_published_by] == ["Coastal Herald", "Daily Ledger"]


def test_the_card_shows_the_outlets_with_safe_links(synd: dict[str, Any]) -> None:
    from serving.render import render_card

    passages = synd["engine"].search(QUESTION, k=5)
    passage = next(p for p in passages if p.source == "Associated Press")
    card = render_card(ident="c1", label="[1]", passage=passage, quote="", quote_at=None, open_=1)
    assert "Also published by: Coastal Herald (" in card
    assert f'href="{COPY_B["url"]}"' in card and f'href="{COPY_C["url"]}"' in card
    hostile = replace(
        passage,
        also_published_by=({"source": "Evil", "title": "x", "url": "javascript:alert(1)"},),
    )
    card = render_card(ident="c1", label="[1]", passage=hostile, quote="", quote_at=None, open_=1)
    assert "Also published by: Evil" in card and "javascript:" not in card


@pytest.mark.slow
def test_the_api_json_carries_the_outlets(synd: dict[str, Any]) -> None:
    from serving.web import create_app

    engine = synd["engine"]
    with (
        LiveServer(create_app(engine, engine.settings)) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        search = client.post("/api/search", json={"question": QUESTION, "k": 3})
        answer = client.post("/api/ask", json={"question": QUESTION})
    assert search.status_code == 200 and answer.status_code == 200
    top = [p for p in search.json()["passages"] if p["source"] == "Associated Press"]
    assert [c["source"] for c in top[0]["also_published_by"]] == ["Coastal Herald", "Daily Ledger"]
    assert top[0]["also_published_by"][0]["url"] == COPY_B["url"]
    cited = [c for c in answer.json()["citations"] if c["source"] == "Associated Press"]
    assert cited and len(cited[0]["also_published_by"]) == 2


@pytest.fixture
def fresh(tmp_path: Path, embedder: Any) -> Iterator[Any]:
    """An engine over the story and one copy, in a store of its own."""
    first = _write(tmp_path, "first.json", [STORY, COPY_B, FILLER])
    yield indexed_engine([first], tmp_path / "store", embedder)


def test_signatures_are_rebuilt_from_chroma_when_their_file_is_lost(
    fresh: Any, tmp_path: Path
) -> None:
    settings = fresh.index.settings
    path = signatures_path(settings.keyword_dir, settings.collection)
    assert path.exists()
    path.write_bytes(b"not a numpy file")
    report = fresh.index.ingest([_write(tmp_path, "c.json", [COPY_C])], progress=False)
    assert (report.syndicated, report.added) == (1, 0)
    assert len(copies_of(_chunk_metadata(fresh, "Associated Press")[0])) == 2


def test_deleting_a_copy_drops_its_record(fresh: Any) -> None:
    (copy,) = copies_of(_chunk_metadata(fresh, "Associated Press")[0])
    assert fresh.index.delete([copy.id]) == 0  # it has no chunks of its own
    assert all(not copies_of(m) for m in _chunk_metadata(fresh, "Associated Press"))
    assert fresh.index.check().ok


def test_deleting_the_original_lets_a_copy_become_the_story(fresh: Any, tmp_path: Path) -> None:
    assert fresh.index.delete([_id_of(fresh, "Associated Press")]) > 0
    assert _outlets(fresh) == {"Metro News"}
    again = fresh.index.ingest([_write(tmp_path, "b.json", [COPY_B, COPY_C])], progress=False)
    assert (again.added, again.syndicated) == (1, 1)
    assert _outlets(fresh) == {"Coastal Herald", "Metro News"}
    copies = copies_of(_chunk_metadata(fresh, "Coastal Herald")[0])
    assert [c.source for c in copies] == ["Daily Ledger"]
    assert fresh.index.check().ok


def test_saved_signatures_are_read_back_not_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ingest loads the archive's signatures; making them again from every stored article
    cost most of a one-article ingest at 80k chunks."""
    import index.syndication as syndication
    from index.keyword import ChunkRecord

    body = " ".join(f"word{i} harbour ferry schedule" for i in range(60))
    records = [
        ChunkRecord(
            f"a{n}#0", body + f" story{n}", {"article_id": f"a{n}", "article_hash": f"h{n}"}
        )
        for n in range(3)
    ]
    path = tmp_path / "news.minhash.npz"
    first = syndication.SyndicationIndex.for_records(path, records)
    assert path.exists()
    made: list[str] = []
    real = syndication.signature
    monkeypatch.setattr(syndication, "signature", lambda b: made.append(b) or real(b))
    again = syndication.SyndicationIndex.for_records(path, records)
    assert made == []  # every signature came from the file
    assert again.content_hash("a1") == first.content_hash("a1")
