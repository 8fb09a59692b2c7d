"""Articles from the web: RSS and Atom feeds (each item's page fetched) and article pages."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from bs4 import BeautifulSoup

from index.articles import Article
from index.documents import declared_charset, main_text, page_values
from index.errors import LoadIssue, LoadNote
from index.fetch import MAX_PER_HOST, Fetched, Fetcher, FetchError
from index.records import BadField, make_article

# Items of one feed are fetched this many at a time (the fetcher still allows two per host).
_FEED_WORKERS = 2 * MAX_PER_HOST
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
_FEED_ROOTS = (b"<rss", b"<feed", b"<rdf:rdf")

Loaded = Article | LoadIssue | LoadNote


def is_url(text: str) -> bool:
    """Whether a command-line argument names a web address rather than a file."""
    return text.strip().lower().startswith(("http://", "https://"))


def allowed_hosts(urls: list[str]) -> set[str]:
    """The servers named by `urls`: the only ones an ingest may send requests to."""
    return {urlsplit(url.strip()).netloc.lower() for url in urls}


class WebAddress(PosixPath):
    """A URL where the loaders take a path: it prints as the URL and knows its fetcher."""

    url: str
    fetcher: Fetcher | None

    def __new__(cls, url: str, fetcher: Fetcher | None = None) -> WebAddress:
        self = super().__new__(cls, "/", urlsplit(url).netloc or "web")
        self.url = url.strip()
        self.fetcher = fetcher
        return self

    def __str__(self) -> str:
        return getattr(self, "url", None) or super().__str__()

    def __repr__(self) -> str:
        return f"WebAddress({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WebAddress):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


def load_url(address: WebAddress) -> Iterator[Loaded]:
    """The articles at `address`: every item of a feed, or the one article of a page."""
    fetcher = address.fetcher
    if fetcher is None:
        yield LoadIssue(address, None, None, "no fetcher for web addresses in this ingest")
        return
    try:
        fetched = fetcher.get(address.url)
    except FetchError as error:
        yield LoadIssue(address, None, None, error.reason)
        return
    if fetched.not_modified:
        yield LoadNote(address, "not changed since the last fetch (HTTP 304); nothing to read")
        return
    if _is_feed(fetched):
        yield from _load_feed(address, fetched, fetcher)
        return
    article = _page_article(address, fetched, {})
    if isinstance(article, Article):
        fetcher.remember(fetched)
    yield article


def _is_feed(fetched: Fetched) -> bool:
    kind = fetched.content_type.split(";")[0].strip().lower()
    start = fetched.content[:2048].lower()
    return kind in _FEED_TYPES or any(root in start for root in _FEED_ROOTS)


def _load_feed(address: WebAddress, fetched: Fetched, fetcher: Fetcher) -> Iterator[Loaded]:
    parsed = feedparser.parse(
        fetched.content, response_headers={"content-type": fetched.content_type}
    )
    if not parsed.entries:
        problem = parsed.get("bozo_exception")
        why = f"not a feed we can read ({problem})" if problem else "a feed with no items"
        yield LoadIssue(address, None, None, why)
        return
    channel = str(parsed.feed.get("title", "")).strip()
    entries = [_entry_fields(entry, channel, fetched.final_url) for entry in parsed.entries]
    with ThreadPoolExecutor(_FEED_WORKERS, thread_name_prefix="feed-item") as pool:
        results = list(pool.map(lambda entry: _load_item(address, entry, fetcher), entries))
    for items in results:
        yield from items
    if not any(isinstance(item, LoadIssue) for items in results for item in items):
        fetcher.remember(fetched)  # a failed item is tried again next time, not skipped by a 304


def _load_item(feed: WebAddress, entry: dict[str, str], fetcher: Fetcher) -> list[Loaded]:
    link = entry.get("url", "")
    if not link:
        # An item with no page of its own: what the feed says is the article.
        return [_from_fields(feed, entry)]
    address = WebAddress(link, fetcher)
    try:
        fetched = fetcher.get(link)
    except FetchError as error:
        return [LoadIssue(address, None, None, f"{error.reason} (an item of {feed})")]
    if fetched.not_modified:
        return [LoadNote(address, "not changed since the last fetch (HTTP 304); nothing to read")]
    article = _page_article(address, fetched, entry)
    if isinstance(article, Article):
        fetcher.remember(fetched)
    return [article]


def _entry_fields(entry: Any, channel: str, feed_url: str) -> dict[str, str]:
    """What a feed item says of its article, by field name."""
    link = urljoin(feed_url, str(entry.get("link", ""))) if entry.get("link") else ""
    fields = {
        "title": str(entry.get("title", "")),
        "author": str(entry.get("author", "")),
        # feedparser offers an Atom entry's id (often a tag: URI) when it has no link.
        "url": link if is_url(link) else "",
        "source": channel,
    }
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp:
        fields["published"] = f"{calendar.timegm(stamp)}"
    content = entry.get("content") or []
    html = content[0].get("value", "") if content else str(entry.get("summary", ""))
    if html:
        body = main_text(f"<html><body><article>{html}</article></body></html>")
        # Many feeds send a plain-text description, or markup too short for the extractor.
        fields["body"] = body or BeautifulSoup(html, "lxml").get_text(" ")
    return {name: value.strip() for name, value in fields.items() if value and value.strip()}


def _page_article(address: WebAddress, fetched: Fetched, entry: dict[str, str]) -> Loaded:
    text = _decode(fetched)
    values = page_values(text)
    url = values.get("url")
    if url is not None and isinstance(url[1], str):
        # A relative canonical link is relative to where the page was found.
        values["url"] = (url[0], urljoin(fetched.final_url, url[1]))
    else:
        values["url"] = ("url", entry.get("url") or fetched.final_url)
    if not str(values.get("body", ("", ""))[1]).strip():
        values.pop("body", None)
    for name, value in entry.items():
        # The feed item's fields fill what the page does not say.
        values.setdefault(name, (f"feed {name}", int(value) if name == "published" else value))
    try:
        return make_article(values, {}, address, 1)
    except BadField as bad:
        return LoadIssue(address, None, bad.field, bad.reason)


def _from_fields(feed: WebAddress, entry: dict[str, str]) -> Loaded:
    values: dict[str, tuple[str, object]] = {
        name: (f"feed {name}", int(value) if name == "published" else value)
        for name, value in entry.items()
    }
    try:
        return make_article(values, {}, feed, 1)
    except BadField as bad:
        return LoadIssue(feed, None, bad.field, bad.reason)


def _decode(fetched: Fetched) -> str:
    """The page's text: by the charset its headers name, else its <meta charset>, else UTF-8."""
    for charset in (fetched.charset, declared_charset(fetched.content)):
        if charset:
            try:
                return fetched.content.decode(charset, "replace")
            except LookupError:
                continue
    return fetched.content.decode("utf-8", "replace")


def web_addresses(arguments: list[Path | str], fetcher: Fetcher) -> list[Path]:
    """The arguments as paths, with each URL a WebAddress bound to `fetcher`."""
    return [
        WebAddress(item, fetcher) if isinstance(item, str) and is_url(item) else Path(item)
        for item in arguments
    ]
