"""Keep the archive current: poll feeds, ingest what is new or changed, back off failing feeds."""

from __future__ import annotations

import logging
import re
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from index.archive import Index
from index.errors import ConfigError
from index.fetch import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, VALIDATORS_FILE, Fetcher
from index.web_pages import allowed_hosts, is_url

log = logging.getLogger(__name__)

DEFAULT_EVERY = "15m"
_UNITS = {"s": 1, "m": 60, "h": 3600}
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$", re.IGNORECASE)
# A failing feed waits 1, 2, 4 ... intervals before its next try, never more than this many.
MAX_BACKOFF_INTERVALS = 16
_NOT_MODIFIED = "(HTTP 304)"


def parse_every(text: str) -> float:
    """Seconds from an interval such as 30s, 15m or 1h; ValueError saying how to write one."""
    match = _EVERY.match(text or "")
    seconds = float(match[1]) * _UNITS[match[2].lower()] if match else 0.0
    if seconds < 1:
        raise ValueError(f"every: {text!r} is not an interval; write e.g. 30s, 15m or 1h")
    return seconds


def read_opml(path: Path) -> list[str]:
    """The feed URLs (the xmlUrl of every outline, at any depth) an OPML file lists."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ConfigError(f"{path}: not a readable OPML file ({error})") from error
    urls = [
        outline.attrib["xmlUrl"].strip()
        for outline in root.iter("outline")
        if outline.attrib.get("xmlUrl", "").strip()
    ]
    if not urls:
        raise ConfigError(f"{path}: no <outline xmlUrl=...> elements, so no feeds to watch")
    return urls


def feed_list(feeds: Iterable[str], opml_files: Iterable[Path] = ()) -> list[str]:
    """`feeds` and the OPML files' feeds, each once, in order; ConfigError for a non-URL."""
    found = [url.strip() for url in feeds]
    for path in opml_files:
        found += read_opml(path)
    for url in found:
        if not is_url(url):
            raise ConfigError(f"feed {url!r}: not an http(s) URL")
    return list(dict.fromkeys(found))


@dataclass
class CycleReport:
    """What one poll of the feeds did."""

    started: datetime
    polled: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    not_modified: int = 0  # answers 304: nothing read, nothing written
    chunks_written: int = 0
    item_problems: int = 0  # items of a feed that answered, whose pages could not be read
    failures: list[tuple[str, str]] = field(default_factory=list)  # (feed, why)
    backing_off: list[tuple[str, float]] = field(default_factory=list)  # (feed, seconds left)

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        """One line for the log: time, feeds polled, what changed, what failed."""
        when = self.started.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        text = (
            f"{when} polled {self.polled} feed{'' if self.polled == 1 else 's'}: "
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.not_modified} not modified (304), {self.chunks_written} chunks written"
        )
        if self.item_problems:
            text += f"; {self.item_problems} item(s) unreadable"
        text += f"; {len(self.failures)} failed"
        if self.failures:
            text += " (" + "; ".join(f"{url}: {why}" for url, why in self.failures) + ")"
        if self.backing_off:
            waits = ", ".join(f"{url} in {_duration(left)}" for url, left in self.backing_off)
            text += f"; backing off: {waits}"
        return text


@dataclass
class _FeedState:
    failures: int = 0
    retry_at: float = 0.0


class _WatchFetcher(Fetcher):
    """A fetcher whose requests give up after `timeout_s`: a hung feed must not stall a cycle."""

    def __init__(
        self, hosts: set[str], timeout_s: float, *, state_file: Path, backoff_s: float
    ) -> None:
        super().__init__(hosts, state_file=state_file, backoff_s=backoff_s)
        self._client.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))


class Watcher:
    """Polls `feeds` into `index`; one feed's failures back off that feed only.

    `every` is the interval between cycles; `timeout_s` and `retry_backoff_s` bound each request
    (the fetcher retries 5xx and network errors); `clock` is monotonic seconds."""

    def __init__(
        self,
        index: Index,
        feeds: Sequence[str],
        *,
        every: float = 900.0,
        timeout_s: float = READ_TIMEOUT_S,
        retry_backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.feeds = list(feeds)
        self.every = every
        self.timeout_s = timeout_s
        self.retry_backoff_s = retry_backoff_s
        self.clock = clock
        self.last_report: CycleReport | None = None
        self._states = {url: _FeedState() for url in self.feeds}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def poll_once(self, stop: threading.Event | None = None) -> CycleReport:
        """Poll each feed not backing off, ingest what changed; stops between feeds on `stop`."""
        report = CycleReport(started=datetime.now(UTC))
        due = []
        for url in self.feeds:
            left = self._states[url].retry_at - self.clock()
            if left > 0:
                report.backing_off.append((url, left))
            else:
                due.append(url)
        # A fetcher per cycle: robots.txt is read again each cycle, so a host that was down (or
        # changed its rules) is judged by what it says now.
        with _WatchFetcher(
            allowed_hosts(self.feeds),
            self.timeout_s,
            state_file=self.index.settings.storage_dir / VALIDATORS_FILE,
            backoff_s=self.retry_backoff_s,
        ) as fetcher:
            for url in due:
                if stop is not None and stop.is_set():
                    break
                self._poll_feed(url, fetcher, report)
        self.last_report = report
        return report

    def _poll_feed(self, url: str, fetcher: Fetcher, report: CycleReport) -> None:
        state = self._states[url]
        report.polled += 1
        try:
            ingested = self.index.ingest([url], progress=False, fetcher=fetcher)
        except Exception as error:  # a broken store or a bug: reported, and the watch goes on
            log.exception("polling %s failed", url)
            self._failed(url, f"{type(error).__name__}: {error}", report)
            return
        report.added += ingested.added
        report.updated += ingested.updated + ingested.repaired
        report.unchanged += ingested.unchanged + ingested.duplicates + ingested.syndicated
        report.chunks_written += ingested.chunks_written
        report.not_modified += sum(_NOT_MODIFIED in note for note in ingested.notes)
        own = [issue.reason for issue in ingested.issues if str(issue.path) == url]
        report.item_problems += len(ingested.issues) - len(own)
        if own:
            self._failed(url, "; ".join(own), report)
        else:
            state.failures, state.retry_at = 0, 0.0

    def _failed(self, url: str, why: str, report: CycleReport) -> None:
        state = self._states[url]
        state.failures += 1
        intervals = min(2 ** (state.failures - 1), MAX_BACKOFF_INTERVALS)
        # The first failure is tried again at the next cycle, each further one after twice as many;
        # half an interval of slack, so that a cycle starting a moment early still counts.
        state.retry_at = self.clock() + intervals * self.every - 0.5 * self.every
        report.failures.append((url, why))

    def run(
        self,
        stop: threading.Event,
        every: float | None = None,
        on_cycle: Callable[[CycleReport], None] | None = None,
    ) -> None:
        """Poll every `every` seconds (default: the watcher's) until `stop` is set."""
        interval = every if every is not None else self.every
        self.every = interval
        while not stop.is_set():
            started = self.clock()
            try:
                report = self.poll_once(stop)
            except Exception:  # the loop outlives any one cycle
                log.exception("a feed poll failed")
            else:
                (on_cycle or _log_cycle)(report)
            stop.wait(max(0.0, interval - (self.clock() - started)))

    def start(self) -> None:
        """Run in a daemon thread (the web app's), until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="feed-watcher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the feed it is on (waits at most `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _log_cycle(report: CycleReport) -> None:
    (log.info if report.ok else log.warning)("feeds: %s", report.line())


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def updated_text(when: float | None, now: float | None = None) -> str:
    """When the archive last took in its feeds, for people: "updated 5 min ago"; "" if never."""
    if when is None:
        return ""
    ago = (time.time() if now is None else now) - when
    if ago < 60:
        return "updated just now"
    if ago < 3600:
        return f"updated {ago // 60:.0f} min ago"
    if ago < 86400:
        return f"updated {ago // 3600:.0f} h ago"
    return "updated " + datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
