"""Adding articles to a running app: POST /api/ingest, and `news-assistant ingest` sending there
when the app holds the embedded store. Real servers, real stores, the real model."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, LiveServer, demo_articles, engine_over, free_port, served_app

TOKEN = "ingest-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def article(word: str, **changes: Any) -> dict[str, Any]:
    """A short article about `word`, found by searching for it."""
    return {
        "title": f"The {word} harbour desalination plant opens",
        "text": (
            f"The {word} harbour desalination plant opened on Monday, the city council said. "
            f"The {word} plant turns sea water into drinking water for forty thousand homes, "
            "and its engineers said it runs on power from the wind farm beside the harbour."
        ),
        "source": "Harbour Gazette",
        "published": "2022-03-07",
        "url": f"https://gazette.example/{word.lower()}-plant",
        **changes,
    }


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    folder = tmp_path_factory.mktemp("ingest-api")
    return engine_over(folder, demo_articles(3), embedder, ingest_token=TOKEN, serve_ui=False)


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[LiveServer]:
    from serving.web import create_app

    with LiveServer(create_app(engine)) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def found(api: httpx.Client, question: str) -> list[str]:
    response = api.post("/api/search", json={"question": question, "k": 3})
    assert response.status_code == 200, response.text
    return [p["title"] for p in response.json()["passages"]]


def test_ingested_articles_are_searchable_and_bad_records_located(api: httpx.Client) -> None:
    bad = article("Wombat", published="next Tuesday-ish")
    response = api.post("/api/ingest", json={"articles": [article("Quokka"), bad]}, headers=AUTH)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["skipped"]) == (1, 1)
    assert report["chunks_written"] >= 1
    assert report["issues"] == [
        {
            "location": "articles[1].published",
            "source": "articles",
            "line": 2,
            "article": 1,
            "field": "published",
            "reason": "cannot read date 'next Tuesday-ish'",
        }
    ]
    assert "The Quokka harbour desalination plant opens" in found(api, "Quokka desalination plant")
    again = api.post("/api/ingest", json={"articles": [article("Quokka")]}, headers=AUTH).json()
    assert (again["added"], again["unchanged"]) == (0, 1)
    assert api.get("/api/health").json()["last_updated"] is not None


def test_files_are_read_as_ingest_reads_them(api: httpx.Client) -> None:
    lines = [json.dumps(article("Numbat")), "{not json", json.dumps({"title": "No body"})]
    data = base64.b64encode("\n".join(lines).encode()).decode()
    body = {"files": [{"name": "/data/feed.jsonl", "content_base64": data, "first_line": 10}]}
    report = api.post("/api/ingest", json=body, headers=AUTH).json()
    assert report["added"] == 1
    assert [issue["location"] for issue in report["issues"]] == [
        "/data/feed.jsonl:11",
        "/data/feed.jsonl:12.body",
    ]
    assert "The Numbat harbour desalination plant opens" in found(api, "Numbat desalination")


def test_a_wrong_or_missing_token_is_refused_before_the_body_is_read(
    api: httpx.Client, engine: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        response = api.post("/api/ingest", json={"articles": "not even a list"}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    # The API token is not the ingest token, and the other endpoints do not take either.
    assert api.post("/api/search", json={"question": "plant"}, headers=AUTH).status_code == 200


def test_without_a_token_set_the_endpoint_is_off(engine: Any) -> None:
    from serving.api import create_api

    app = create_api(engine, engine.settings.with_changes(ingest_token=None))
    with LiveServer(app) as live:
        response = httpx.post(f"{live.url}/api/ingest", json={"urls": []}, headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "ingest_disabled"
    assert "ingest_token" in response.json()["error"]["message"]


def test_bodies_and_fields_keep_the_api_bounds(api: httpx.Client) -> None:
    big = {"articles": [article("Bilby", text="word " * 20_000)]}  # over max_request_bytes
    assert api.post("/api/search", json={"question": "x" * 70_000}).status_code == 413
    wrong = {"Authorization": "Bearer x"}
    assert api.post("/api/ingest", json=big, headers=wrong).status_code == 413
    assert api.post("/api/ingest", json=big, headers=AUTH).json()["added"] == 1
    for body, message in (
        ({"urls": ["/etc/passwd"]}, "is not an http(s) URL"),
        ({}, "nothing to ingest"),
        ({"articles": [{}], "fields": {"bogus": "x"}}, "unknown field"),
        ({"files": [{"name": "a.txt", "content_base64": "%%%"}]}, "not valid base64"),
    ):
        response = api.post("/api/ingest", json=body, headers=AUTH)
        assert response.status_code == 422, response.text
        assert message in response.json()["error"]["message"]


def test_one_ingest_at_a_time_and_searches_never_wait(
    api: httpx.Client, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second ingest while one runs is 409 with Retry-After; search and health answer."""
    index = engine.index
    real = type(index).ingest
    started, release = threading.Event(), threading.Event()

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(60)  # the ingest is under way, as a long one would be
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(index), "ingest", held)
    first: dict[str, Any] = {}
    body = {"articles": [article("Dingo")]}

    def post() -> None:
        first["response"] = api.post("/api/ingest", json=body, headers=AUTH)

    worker = threading.Thread(target=post)
    worker.start()
    try:
        assert started.wait(30)
        second = api.post("/api/ingest", json=body, headers=AUTH)
        assert second.status_code == 409
        assert second.json()["error"]["type"] == "ingest_busy"
        assert second.headers["retry-after"] == "5"
        began = time.monotonic()
        assert api.get("/api/health").status_code == 200
        assert found(api, "Quokka desalination plant")
        assert time.monotonic() - began < 10
    finally:
        release.set()
        worker.join(60)
    assert first["response"].json()["added"] == 1


# The command line and a real app in another process, over the default embedded store.


@pytest.fixture(scope="module")
def app_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    storage = tmp_path_factory.mktemp("served") / "storage"
    port = free_port()
    env = {
        **os.environ,
        "NEWS_ASSISTANT_STORAGE_DIR": str(storage),
        "NEWS_ASSISTANT_CONFIG": os.devnull,
        "NEWS_ASSISTANT_INGEST_TOKEN": TOKEN,
        "NEWS_ASSISTANT_KEYWORD_SYNC_SECONDS": "0",
    }
    command = [sys.executable, "-m", "serving.cli", "serve", "--api-only", "--no-demo", "-q"]
    with served_app([*command, "--port", str(port)], env):
        yield f"http://127.0.0.1:{port}", storage, env
    assert not (storage / ".news-assistant-app.json").exists()  # removed on exit


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_ingest_sends_to_the_app_that_holds_the_store(
    app_process: tuple[str, Path, dict], tmp_path: Path
) -> None:
    url, storage, env = app_process
    assert json.loads((storage / ".news-assistant-app.json").read_text())["url"] == url
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(article("Platypus")) + "\n" + '{"title": "no body"}\n')
    done = run_cli(env, "ingest", str(feed))
    assert done.returncode == 3, done.stdout + done.stderr  # one bad record
    assert f"the app at {url} holds the store" in done.stderr
    assert f"skipped {feed}:2: field 'body': missing or empty body" in done.stderr
    assert done.stdout.startswith("1 added, 0 updated, 0 unchanged")
    with httpx.Client(base_url=url, timeout=60) as api:
        assert "The Platypus harbour desalination plant opens" in found(api, "Platypus plant")
        # and through the endpoint, into the same running app
        body = {"articles": [article("Echidna")]}
        assert api.post("/api/ingest", json=body, headers=AUTH).json()["added"] == 1
        assert "The Echidna harbour desalination plant opens" in found(api, "Echidna plant")
    again = run_cli(env, "ingest", "--json", str(feed))
    assert json.loads(again.stdout)["unchanged"] == 1


def test_cli_with_a_wrong_token_says_what_to_set(
    app_process: tuple[str, Path, dict], tmp_path: Path
) -> None:
    url, _, env = app_process
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(article("Kiwi")) + "\n")
    done = run_cli(env, "ingest", "--token", "wrong", str(feed))
    assert done.returncode == 1
    assert f"the app at {url} refused the ingest (401)" in done.stderr
    without = {k: v for k, v in env.items() if k != "NEWS_ASSISTANT_INGEST_TOKEN"}
    done = run_cli(without, "ingest", "--app-url", url, str(feed))
    assert "no ingest token was given" in done.stderr
