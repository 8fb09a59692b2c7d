"""A running app adds articles one at a time: each ingest after the first reuses the syndication
signatures its last write left, rather than reading every stored article's again, and still
finds copies of what that write added; a change made elsewhere makes it read them again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.engine import Engine
from index import syndication
from index.embedding import Embedder
from tests.conftest import engine_over, indexed_engine, make_settings
from tests.test_syndication import COPY_B, STORY


def _file(folder: Path, name: str, articles: list[dict[str, Any]]) -> Path:
    path = folder / name
    path.write_text(json.dumps(articles))
    return path


def test_a_second_ingest_reuses_the_signatures_and_finds_the_copy(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_over(tmp_path, [], embedder)
    engine = Engine(make_settings(tmp_path / "store"), embedder=embedder)  # a process starting
    reads: list[int] = []
    original = syndication.SyndicationIndex.for_records.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, path: Path, records: Any, *columns: Any) -> Any:
        reads.append(len(records))
        return original(cls, path, records, *columns)

    monkeypatch.setattr(syndication.SyndicationIndex, "for_records", classmethod(counted))
    first = engine.index.ingest([_file(tmp_path, "a.json", [STORY])], progress=False)
    second = engine.index.ingest([_file(tmp_path, "b.json", [COPY_B])], progress=False)
    assert (first.added, second.syndicated) == (1, 1)
    assert len(reads) == 1  # the second ingest took the first one's signatures

    # Another process writes the same store: this one's signatures are stale, so read again.
    other = indexed_engine([], tmp_path / "store", embedder)
    other.index.delete([str(engine.index.articles()[0].id)])
    before = len(reads)
    third = engine.index.ingest([_file(tmp_path, "c.json", [COPY_B])], progress=False)
    assert len(reads) == before + 1 and third.added == 1  # its original is gone: a story
