"""Ingesting feeds and article pages from a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from index.articles import article_id
from index.documents import page_values
from index.embedding import Embedder
from index.errors import LoadIssue
from index.fetch import Fetcher, user_agent
from index.web_pages import WebAddress, load_url
from tests.conftest import indexed_engine

WEB = Path(__file__).parent / "data" / "web"
BOILERPLATE = (
    "COOKIE_BANNER",
    "NAV_NEWS_LINK",
    "ADVERT",
    "RELATED_LINK",
    "NEWSLETTER_BOX",
    "FOOTER_TEXT",
    "TRACKER_SCRIPT",
    "Accept all cookies",
    "Subscribe",
    "By Dana Ray and Li Wen",  # the byline: it is metadata, not text
)
STORM_URL = "https://coast.example/2024/03/02/storm-power-cuts"


class NewsSite:
    """A news site on 127.0.0.1 serving tests/data/web, with a few misbehaving paths.

    /flaky/* answers 500 once, /busy/* 429 (Retry-After: 1) once, /broken.html always 500,
    /slow/* after a pause; every file has an ETag and honours If-None-Match."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], int]] = []  # (path, headers, status)
        self.in_flight = 0
        self.most_in_flight = 0
        self.robots = True  # False: /robots.txt answers 404
        self._lock = threading.Lock()
        self._failed_once: set[str] = set()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site._lock:
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                status = 0
                try:
                    status = site.answer(self)
                finally:  # recorded before it stops counting as in flight (see `paths`)
                    with site._lock:
                        site.requests.append((self.path, dict(self.headers.items()), status))
                        site.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, handler: BaseHTTPRequestHandler) -> int:
        path = handler.path.split("?", 1)[0]
        once = path not in self._failed_once
        if path.startswith("/flaky/") and once:
            self._failed_once.add(path)
            return self._send(handler, 500, b"try again", "text/plain")
        if path.startswith("/busy/") and once:
            self._failed_once.add(path)
            return self._send(handler, 429, b"slow down", "text/plain", {"Retry-After": "1"})
        if path == "/robots.txt" and not self.robots:
            return self._send(handler, 404, b"not found", "text/plain")
        if path == "/broken.html":
            return self._send(handler, 500, b"internal error", "text/plain")
        if path.startswith("/slow/"):
            time.sleep(0.3)  # long enough that a third request would overlap two in flight
        name = path.removeprefix("/flaky").removeprefix("/busy").removeprefix("/slow").lstrip("/")
        if name == "many.xml":
            return self._send(handler, 200, self._many_feed(), "application/rss+xml")
        file = WEB / name
        if not name or not file.is_file():
            return self._send(handler, 404, b"not found", "text/plain")
        data = file.read_bytes().replace(b"{base}", self.base.encode())
        etag = '"' + hashlib.sha1(data).hexdigest()[:12] + '"'
        if handler.headers.get("If-None-Match") == etag:
            return self._send(handler, 304, b"", None, {"ETag": etag})
        kind = {
            ".html": "text/html; charset=utf-8",
            ".xml": "application/rss+xml" if name == "rss.xml" else "application/atom+xml",
            ".txt": "text/plain",
        }[file.suffix]
        return self._send(handler, 200, data, kind, {"ETag": etag})

    def _many_feed(self) -> bytes:
        items = "".join(
            f"<item><title>Item {n}</title><link>{self.base}/slow/{page}?copy={n}</link></item>"
            for n in range(6)
            for page in ["storm.html", "harbour.html", "budget.html"][n % 3 : n % 3 + 1]
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title>{items}'
            "</channel></rss>".encode()
        )

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        kind: str | None,
        headers: dict[str, str] | None = None,
    ) -> int:
        handler.send_response(status)
        if kind:
            handler.send_header("Content-Type", kind)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return status

    def paths(self) -> list[str]:
        """The paths asked for, once no request is in flight (see `settled`)."""
        return [path for path, _, _ in self.settled()]

    def settled(self) -> list[tuple[str, dict[str, str], int]]:
        """The requests, once none is in flight: a handler records its request after the
        client already has the response."""
        deadline = time.monotonic() + 10
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return list(self.requests)


@pytest.fixture
def site() -> Iterator[NewsSite]:
    server = NewsSite()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def fetch_all(site: NewsSite, url: str, tmp_path: Path) -> list[Any]:
    with Fetcher({site.base.removeprefix("http://")}, state_file=tmp_path / "v.json") as fetcher:
        return list(load_url(WebAddress(url, fetcher)))


def test_extraction_keeps_the_article_text_and_none_of_the_boilerplate() -> None:
    values = page_values((WEB / "storm.html").read_text())
    body = values["body"][1]
    assert isinstance(body, str)
    assert body.startswith("A winter storm brought winds of up to 150 km/h")
    assert "“We have never seen the sea come this far into the town,” said Maria Costa" in body
    assert body.endswith("remains in place across the region until Monday.")
    assert body.count("\n\n") == 4  # five paragraphs, kept apart
    for noise in BOILERPLATE:
        assert noise not in body, noise
    assert "Storm cuts power" not in body  # the headline is the title, not the first paragraph


def test_metadata_from_json_ld_before_opengraph_and_meta_tags() -> None:
    values = {k: v[1] for k, v in page_values((WEB / "storm.html").read_text()).items()}
    assert values["title"] == "Storm cuts power to 40,000 homes on the coast"  # not og:title
    assert values["author"] == "Dana Ray, Li Wen"  # not <meta name=author>
    assert values["published"] == "2024-03-01T21:15:00Z"  # not article:published_time
    assert values["source"] == "Coast Times"  # the publisher, not og:site_name
    assert values["url"] == STORM_URL
    assert values["category"] == "Weather"
    # A page without JSON-LD: OpenGraph and meta tags.
    og = {k: v[1] for k, v in page_values((WEB / "harbour.html").read_text()).items()}
    assert (og["title"], og["author"], og["source"], og["published"]) == (
        "Harbour reopens after a week of repairs",
        "Sam Okafor",
        "Coast Times Online",
        "2024-03-08T09:30:00Z",
    )
    assert og["url"] == "https://coast.example/2024/03/08/harbour-reopens"


@pytest.mark.slow
def test_rss_and_atom_items_go_through_the_pipeline_into_chroma(
    site: NewsSite, tmp_path: Path, embedder: Embedder
) -> None:
    engine = indexed_engine(
        [f"{site.base}/rss.xml", f"{site.base}/atom.xml"],  # type: ignore[list-item]
        tmp_path,
        embedder,
    )
    stored = {a.title: a for a in engine.index.articles()}
    assert set(stored) == {
        "Storm cuts power to 40,000 homes on the coast",
        "Harbour reopens after a week of repairs",
        "Council approves sea wall budget",
        "Ferry timetable changes for the spring",  # an Atom entry with no page: its content
    }
    storm = stored["Storm cuts power to 40,000 homes on the coast"]
    # The page's canonical URL is the article's id, not the feed's tracking link.
    assert (storm.id, storm.url) == (article_id(url=STORM_URL, title="", body=""), STORM_URL)
    assert (storm.source, storm.published) == ("Coast Times", "2024-03-01")
    # The Atom entry's relative link was read against the feed; its page has no canonical link.
    budget = stored["Council approves sea wall budget"]
    assert budget.url == "https://coast.example/2024/03/15/sea-wall-budget"
    ferry = stored["Ferry timetable changes for the spring"]
    assert (ferry.source, ferry.published) == ("Coast Times – Politics", "2024-03-16")

    passages = engine.search("Which bakery owner saw the sea come into the town?", k=3)
    assert passages[0].title == storm.title
    assert "Maria Costa" in passages[0].text
    for passage in engine.search("cookie policy newsletter advertisement", k=10):
        for noise in BOILERPLATE:
            assert noise not in passage.text
    # Every request said who it was from.
    agents = {headers.get("User-Agent") for _, headers, _ in site.settled()}
    assert agents == {user_agent()}
    assert user_agent().startswith("NewsAssistant/")


def test_a_plain_text_item_with_no_page_keeps_its_text(
    site: NewsSite, tmp_path: Path, embedder: Embedder
) -> None:
    engine = indexed_engine([f"{site.base}/plain.xml"], tmp_path, embedder)  # type: ignore[list-item]
    (brief,) = engine.index.articles()
    assert brief.title == "Lighthouse keeper retires after forty years"
    passage = engine.search("Who kept the North Point lighthouse?", k=1)[0]
    assert "Tomas Lind" in passage.text


def test_a_url_robots_txt_disallows_is_not_fetched_and_is_reported(
    site: NewsSite, tmp_path: Path
) -> None:
    (issue,) = fetch_all(site, f"{site.base}/private/secret.html", tmp_path)
    assert str(issue.path) == f"{site.base}/private/secret.html"
    assert "robots.txt disallows it" in issue.reason
    assert "/robots.txt" in site.paths()
    assert not any(path.startswith("/private") for path in site.paths())


def test_a_missing_robots_txt_allows_everything(site: NewsSite, tmp_path: Path) -> None:
    site.robots = False
    (article,) = fetch_all(site, f"{site.base}/private/secret.html", tmp_path)
    assert article.title == "PRIVATE page that robots.txt keeps out"
    assert site.paths() == ["/robots.txt", "/private/secret.html"]


def test_a_server_not_named_is_never_asked(site: NewsSite, tmp_path: Path) -> None:
    with Fetcher({"127.0.0.1:1"}) as fetcher:
        (issue,) = list(load_url(WebAddress(f"{site.base}/storm.html", fetcher)))
    assert isinstance(issue, LoadIssue)
    assert "is not a server named on the command line" in issue.reason
    assert site.settled() == []


@pytest.mark.slow
def test_a_failing_page_is_reported_with_url_and_reason_and_the_others_go_in(
    site: NewsSite, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from serving.cli import cli

    args = ["--storage", str(tmp_path), "ingest", "-q", f"{site.base}/broken.html"]
    args += [f"{site.base}/storm.html", str(WEB / "harbour.html")]  # a URL and a file, mixed
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3, result.output
    assert f"skipped {site.base}/broken.html: HTTP 500 Internal Server Error after 4 tries" in (
        result.stderr
    )
    assert "2 added" in result.stdout
    assert site.paths().count("/broken.html") == 4  # retried with backoff, then given up


def test_429_with_retry_after_and_500_are_retried_then_succeed(
    site: NewsSite, tmp_path: Path
) -> None:
    started = time.monotonic()
    (busy,) = fetch_all(site, f"{site.base}/busy/storm.html", tmp_path)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured
    assert busy.title == "Storm cuts power to 40,000 homes on the coast"
    (flaky,) = fetch_all(site, f"{site.base}/flaky/harbour.html", tmp_path)
    assert flaky.title == "Harbour reopens after a week of repairs"
    statuses = [(path, status) for path, _, status in site.settled() if path != "/robots.txt"]
    assert statuses == [
        ("/busy/storm.html", 429),
        ("/busy/storm.html", 200),
        ("/flaky/harbour.html", 500),
        ("/flaky/harbour.html", 200),
    ]


@pytest.mark.slow
def test_a_second_ingest_of_an_unchanged_feed_is_conditional_and_writes_nothing(
    site: NewsSite, tmp_path: Path, embedder: Embedder
) -> None:
    feed = f"{site.base}/rss.xml"
    engine = indexed_engine([feed], tmp_path, embedder)  # type: ignore[list-item]
    chunks = engine.index.count()
    assert chunks > 0
    assert (tmp_path / "web-validators.json").exists()
    first = len(site.settled())

    report = engine.index.ingest([feed], progress=False)
    again = site.settled()[first:]
    assert [(path, status) for path, _, status in again] == [
        ("/robots.txt", 200),
        ("/rss.xml", 304),
    ]
    assert again[1][1]["If-None-Match"].startswith('"')
    assert (report.added, report.updated, report.chunks_written, report.issues) == (0, 0, 0, [])
    assert report.notes == [f"{feed}: not changed since the last fetch (HTTP 304); nothing to read"]
    assert engine.index.count() == chunks


def test_never_more_than_two_requests_at_a_time_to_one_host(site: NewsSite, tmp_path: Path) -> None:
    items = fetch_all(site, f"{site.base}/many.xml", tmp_path)
    assert len([item for item in items if hasattr(item, "title")]) == 6
    assert len([p for p in site.paths() if p.startswith("/slow/")]) == 6
    assert 1 <= site.most_in_flight <= 2
