"""`news-assistant watch` and the web app's feed watcher, against a real feed server on loopback."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from click.testing import CliRunner

from index.embedding import Embedder
from index.errors import ConfigError
from index.watch import Watcher, feed_list, parse_every, read_opml, updated_text
from tests.conftest import REPO, LiveServer, make_settings

WEB = Path(__file__).parent / "data" / "web"
STORM = "Storm cuts power to 40,000 homes on the coast"
HARBOUR = "Harbour reopens after a week of repairs"
BUDGET = "Council approves sea wall budget"
FERRY = "Ferry timetable changes for the spring"
NIGHT_BUS = "Night buses return to the coast road"
CYCLE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d polled \d+ feeds?: ")
HANG_SECONDS = 3.0  # how long a hanging feed keeps a request waiting; the watcher gives up first


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed; an item with a `link` is read from its page, one without from `body`."""
    parts = []
    for item in items:
        fields = [f"<title>{escape(item['title'])}</title>"]
        if "link" in item:
            fields.append(f"<link>{escape(item['link'])}</link>")
        fields.append(f"<pubDate>{item.get('date', 'Sat, 16 Mar 2024 08:00:00 GMT')}</pubDate>")
        if "body" in item:  # HTML, as feeds send it
            html = "<p>" + item["body"] + "</p>"
            fields.append(f"<description>{escape(html)}</description>")
        parts.append(f"<item>{''.join(fields)}</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title>{''.join(parts)}</channel></rss>"
    ).encode()


FERRY_ITEM = {
    "title": FERRY,
    "body": "From 1 April the morning ferry to the islands leaves at 7.15 instead of 7.45, the "
    "port authority said. Evening sailings are unchanged.",
}
NIGHT_BUS_ITEM = {
    "title": NIGHT_BUS,
    "date": "Sun, 17 Mar 2024 08:00:00 GMT",
    "body": "Night buses on the coast road run again from Monday after the storm damage was "
    "repaired, the transport office said. The last bus leaves the harbour at 1.30.",
}


class FeedSite:
    """Feeds on 127.0.0.1 whose content a test changes between polls, and the article pages of
    tests/data/web. `broken[path]` makes a path answer "500", "garbage" or "hang"; every answer
    has an ETag and honours If-None-Match."""

    def __init__(self) -> None:
        self.feeds: dict[str, bytes] = {}
        self.broken: dict[str, str] = {}
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.started = self.answered = 0  # requests begun, and recorded once answered
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counted = site.broken.get(self.path) != "hang"  # `since` waits for no hang
                with site._lock:
                    site.started += counted
                try:
                    status = site.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    status = 0  # a client that gave up waiting
                with site._lock:
                    site.requests.append((self.path, status))
                    site.answered += counted

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def answer(self, handler: BaseHTTPRequestHandler) -> int:
        path = handler.path
        trouble = self.broken.get(path)
        if trouble == "500":
            return self._send(handler, 500, b"internal error", "text/plain")
        if trouble == "garbage":
            return self._send(handler, 200, b"\x00\xff<rss><<not xml &&", "application/rss+xml")
        if trouble == "hang":
            time.sleep(HANG_SECONDS)
            return self._send(handler, 200, self.feeds.get(path, b""), "application/rss+xml")
        if path in self.feeds:
            feed = self.feeds[path]
            return self._send(handler, 200, feed, "application/rss+xml", conditional=True)
        file = WEB / path.lstrip("/")
        if path == "/" or not file.is_file():
            return self._send(handler, 404, b"not found", "text/plain")
        kind = "text/plain" if file.suffix == ".txt" else "text/html; charset=utf-8"
        data = file.read_bytes().replace(b"{base}", self.base.encode())
        return self._send(handler, 200, data, kind, conditional=True)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        kind: str,
        *,
        conditional: bool = False,
    ) -> int:
        etag = '"' + hashlib.sha1(body).hexdigest()[:12] + '"'
        if conditional and handler.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        if conditional:
            handler.send_header("ETag", etag)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return status

    def since(self, mark: int) -> list[tuple[str, int]]:
        """The requests after the first `mark`, robots.txt left out, once every request begun
        is recorded: a handler records its request after the client already has the answer."""
        deadline = time.monotonic() + 10
        while self.answered < self.started and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            requests = self.requests[mark:]
        return [(path, status) for path, status in requests if path != "/robots.txt"]


@pytest.fixture
def site() -> Iterator[FeedSite]:
    server = FeedSite()
    server.feeds["/coast.xml"] = rss(
        "Coast Times",
        [
            {"title": "Storm", "link": server.url("/storm.html")},
            {"title": "Harbour", "link": server.url("/harbour.html")},
        ],
    )
    server.feeds["/ferries.xml"] = rss("Port news", [FERRY_ITEM])
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def fresh_engine(storage: Path, embedder: Embedder, **changes: Any) -> Any:
    from assistant.engine import Engine

    return Engine(make_settings(storage, **changes), embedder=embedder)


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def titles(engine: Any) -> set[str]:
    return {article.title for article in engine.index.articles()}


# Intervals, OPML, the header's words: no server needed.


def test_every_accepts_seconds_minutes_and_hours_and_says_how_to_write_one() -> None:
    assert [parse_every(text) for text in ("30s", "15m", "1h", " 2H ")] == [30, 900, 3600, 7200]
    for bad in ("", "15", "15 minutes", "0s", "-5m", "1d"):
        with pytest.raises(ValueError, match=re.escape("write e.g. 30s, 15m or 1h")):
            parse_every(bad)
    with pytest.raises(ValueError, match="feeds_every"):
        make_settings(Path("unused"), feeds_every="soon")


def test_opml_gives_every_xml_url_once_at_any_depth(tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text((WEB / "feeds.opml").read_text().replace("{base}", "http://news.test"))
    assert read_opml(opml) == [
        "http://news.test/coast.xml",
        "http://news.test/ferries.xml",
        "http://news.test/coast.xml",
    ]
    assert feed_list(["http://other.test/rss"], [opml]) == [
        "http://other.test/rss",
        "http://news.test/coast.xml",
        "http://news.test/ferries.xml",
    ]
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body><outline xmlUrl='x'")
    with pytest.raises(ConfigError, match=re.escape("broken.opml: not a readable OPML file")):
        read_opml(broken)
    empty = tmp_path / "empty.opml"
    empty.write_text("<opml><body><outline text='no feed'/></body></opml>")
    with pytest.raises(ConfigError, match=re.escape("no <outline xmlUrl=...> elements")):
        read_opml(empty)
    with pytest.raises(ConfigError, match="not an http"):
        feed_list(["feeds/local.xml"])


def test_updated_text_says_how_long_ago_in_words() -> None:
    now = 1_700_000_000.0
    assert updated_text(None, now) == ""
    assert updated_text(now - 20, now) == "updated just now"
    assert updated_text(now - 5 * 60 - 10, now) == "updated 5 min ago"
    assert updated_text(now - 3 * 3600, now) == "updated 3 h ago"
    assert updated_text(now - 3 * 86400, now).startswith("updated 2023-11-11 ")


# Polling a real feed server into a real store.


@pytest.mark.slow
def test_a_first_poll_adds_the_items_and_an_unchanged_feed_writes_nothing_then_growth_only_adds(
    site: FeedSite, tmp_path: Path, embedder: Embedder
) -> None:
    engine = fresh_engine(tmp_path, embedder)
    watcher = Watcher(engine.index, [site.url("/coast.xml"), site.url("/ferries.xml")])

    first = watcher.poll_once()
    assert (first.polled, first.added, first.updated, first.failures) == (2, 3, 0, [])
    assert first.chunks_written > 0
    assert titles(engine) == {STORM, HARBOUR, FERRY}
    assert CYCLE_LINE.match(first.line())
    assert "polled 2 feeds: 3 added, 0 updated, 0 unchanged" in first.line()
    assert first.line().endswith("; 0 failed")
    chunks = engine.index.count()

    mark = len(site.requests)
    again = watcher.poll_once()
    assert (again.added, again.updated, again.chunks_written, again.failures) == (0, 0, 0, [])
    assert again.not_modified == 2
    # Two conditional requests, two 304s: no page is fetched, nothing is embedded or written.
    assert site.since(mark) == [("/coast.xml", 304), ("/ferries.xml", 304)]
    assert engine.index.count() == chunks

    site.feeds["/coast.xml"] = rss(
        "Coast Times",
        [
            {"title": "Storm", "link": site.url("/storm.html")},
            {"title": "Harbour", "link": site.url("/harbour.html")},
            {"title": "Budget", "link": site.url("/budget.html")},
        ],
    )
    site.feeds["/ferries.xml"] = rss("Port news", [FERRY_ITEM, NIGHT_BUS_ITEM])
    mark = len(site.requests)
    grown = watcher.poll_once()
    assert (grown.added, grown.updated, grown.failures) == (2, 0, [])
    assert grown.unchanged == 1  # the ferry item, read again from its feed and skipped
    assert grown.not_modified == 2  # the storm and harbour pages
    assert sorted(site.since(mark)) == sorted(
        [
            ("/coast.xml", 200),
            ("/storm.html", 304),
            ("/harbour.html", 304),
            ("/budget.html", 200),
            ("/ferries.xml", 200),
        ]
    )
    assert titles(engine) == {STORM, HARBOUR, FERRY, BUDGET, NIGHT_BUS}
    passages = engine.search("When does the last night bus leave the harbour?", k=3)
    assert passages[0].title == NIGHT_BUS


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trouble", "reason"),
    [("500", "HTTP 500"), ("garbage", "not a feed we can read"), ("hang", "Timeout")],
)
def test_a_failing_feed_is_reported_backed_off_and_recovers_while_the_other_goes_in(
    site: FeedSite, tmp_path: Path, embedder: Embedder, trouble: str, reason: str
) -> None:
    engine = fresh_engine(tmp_path, embedder)
    clock = Clock()
    bad, good = site.url("/coast.xml"), site.url("/ferries.xml")
    site.broken["/coast.xml"] = trouble
    watcher = Watcher(
        engine.index,
        [bad, good],
        every=60,
        timeout_s=0.5,  # the hanging feed's requests give up long before it would answer
        retry_backoff_s=0.05,
        clock=clock,
    )

    first = watcher.poll_once()
    ((url, why),) = first.failures
    assert url == bad and reason in why
    assert f"1 failed ({bad}: " in first.line()
    assert first.added == 1 and titles(engine) == {FERRY}  # the other feed still went in

    # At once again: the failing feed waits (it is not asked); the other is polled as usual.
    mark = len(site.requests)
    waiting = watcher.poll_once()
    assert [url for url, _ in waiting.backing_off] == [bad]
    assert "backing off: " in waiting.line()
    assert site.since(mark) == [("/ferries.xml", 304)]

    if trouble == "500":
        # A second failure in a row: it waits two intervals, not one.
        clock.now += 60
        assert watcher.poll_once().failures[0][0] == bad
        clock.now += 60
        assert [url for url, _ in watcher.poll_once().backing_off] == [bad]
        clock.now += 60

    # The server answers again: at its next turn the feed's items go in, and it is healthy.
    del site.broken["/coast.xml"]
    clock.now += 60
    recovered = watcher.poll_once()
    assert (recovered.failures, recovered.backing_off) == ([], [])
    assert recovered.added == 2
    assert titles(engine) == {FERRY, STORM, HARBOUR}
    clock.now += 60
    assert watcher.poll_once().backing_off == []


@pytest.mark.slow
def test_watch_once_prints_one_cycle_line_and_exits_3_when_a_feed_failed(
    site: FeedSite, tmp_path: Path
) -> None:
    from serving.cli import cli

    opml = tmp_path / "feeds.opml"
    opml.write_text((WEB / "feeds.opml").read_text().replace("{base}", site.base))
    storage = ["--storage", str(tmp_path / "store")]
    result = CliRunner().invoke(cli, [*storage, "watch", "--once", "--opml", str(opml)])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert CYCLE_LINE.match(line)
    assert "polled 2 feeds: 3 added, 0 updated, 0 unchanged" in line and line.endswith("0 failed")

    site.broken["/broken.xml"] = "500"
    args = [*storage, "watch", "--once", site.url("/broken.xml"), site.url("/ferries.xml")]
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code == 3, failed.output
    (line,) = failed.stdout.splitlines()
    assert "polled 2 feeds: 0 added" in line and "1 not modified (304)" in line
    assert f"1 failed ({site.url('/broken.xml')}: HTTP 500 Internal Server Error" in line

    nothing = CliRunner().invoke(cli, [*storage, "watch", "--once"])
    assert nothing.exit_code == 2
    assert "no feeds to watch: give FEED_URLs, --opml FILE" in nothing.output
    bad_every = CliRunner().invoke(cli, [*storage, "watch", "--every", "soon", site.url("/a")])
    assert bad_every.exit_code == 2 and "write e.g. 30s, 15m or 1h" in bad_every.output


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_watch_polls_until_ctrl_c_or_sigterm_and_stops_cleanly(
    site: FeedSite, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    command = [sys.executable, "-m", "serving.cli", "--storage", str(tmp_path), "watch"]
    command += ["--every", "1h", site.url("/ferries.xml")]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the first cycle is done
        assert CYCLE_LINE.match(line), line
        assert "polled 1 feed: 1 added" in line
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "watching 1 feed(s) every 1h" in err
    assert err.rstrip().endswith("stopped")
    assert "Traceback" not in err and out == ""  # no second cycle: it was waiting, and stopped


@pytest.mark.slow
def test_the_web_app_watches_its_feeds_and_search_and_health_see_the_new_article(
    site: FeedSite, tmp_path: Path, embedder: Embedder
) -> None:
    from serving.config import app_settings
    from serving.page import PageHandlers
    from serving.web import create_app

    engine = fresh_engine(
        tmp_path, embedder, feeds=[site.url("/ferries.xml")], feeds_every="1h", demo_on_empty=False
    )
    settings = app_settings(engine.settings)
    app = create_app(engine, settings)
    assert not any(thread.name == "feed-watcher" for thread in threading.enumerate())
    started = time.time()
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        question = {"question": "What time does the morning ferry to the islands leave?", "k": 3}
        deadline = time.monotonic() + 120  # the first poll runs as the app starts
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            response = http.post("/api/search", json=question)
            if response.status_code == 200:
                found = [p for p in response.json()["passages"] if p["title"] == FERRY]
            if not found:
                time.sleep(0.5)
        assert found, "the watched feed's article never became searchable"
        assert "7.15" in found[0]["text"]
        # The article is searchable as soon as its chunks are written, a moment before the
        # ingest that wrote them returns and stamps the update time.
        health = http.get("/api/health").json()
        while health["last_updated"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
            health = http.get("/api/health").json()
        assert health["status"] == "ok" and health["articles"] == 1
        last = datetime.fromisoformat(health["last_updated"])
        assert last.tzinfo is not None
        assert started - 5 <= last.timestamp() <= datetime.now(UTC).timestamp() + 5
        header, _, _ = PageHandlers(engine).refresh()
        assert 'id="na-updated">updated just now</span>' in header
        assert any(thread.name == "feed-watcher" for thread in threading.enumerate())
    # Shut down with the app: no watcher thread is left polling.
    assert not any(thread.name == "feed-watcher" for thread in threading.enumerate())


@pytest.mark.slow
def test_the_web_app_without_feeds_starts_no_watcher_and_reports_no_update(
    tmp_path: Path, embedder: Embedder
) -> None:
    from serving.config import app_settings
    from serving.web import create_app

    engine = fresh_engine(tmp_path, embedder, demo_on_empty=False)
    app = create_app(engine, app_settings(engine.settings))
    assert getattr(app.state, "watcher", None) is None
    with LiveServer(app) as server:
        health = httpx.get(f"{server.url}/api/health", timeout=30).json()
        assert health["last_updated"] is None
        assert not any(thread.name == "feed-watcher" for thread in threading.enumerate())
