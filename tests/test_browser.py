"""The web app in a real Chromium: the chat with its sources, hostile text, and embedding."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assistant.engine import Engine
from assistant.excerpts import RUN_SEPARATOR
from assistant.retrieve import Passage
from tests.conftest import XSS_QUESTION, LiveServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_QUESTION = "What did Lavrov say about NATO expansion?"
EMBED_PAGE = Path(__file__).resolve().parent.parent / "serving" / "static" / "embed-example.html"
ANSWER_TIMEOUT = 90_000  # ms; the first answer of a session loads the sentence vectors


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (Debian's; Playwright downloads nothing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """A page in a fresh context, with every request, dialog and page error it caused."""

    page: Any
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_stayed_local(self) -> None:
        outside = [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests left 127.0.0.1: {outside}"

    def assert_no_script_ran(self) -> None:
        assert self.dialogs == []
        assert self.page.evaluate("() => window.__xss") is None
        for frame in self.page.frames:
            assert frame.evaluate("() => window.__xss") is None


@pytest.fixture
def visit(browser: Any) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    found = Visit(page)
    page.on("request", lambda request: found.requests.append(request.url))
    page.on("pageerror", lambda error: found.errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        found.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield found
    context.close()


def ask_in_ui(root: Any, question: str) -> None:
    root.locator("#na-question textarea").fill(question)
    root.locator("#na-ask").click()


def test_a_chip_asks_at_once_and_the_answer_streams_and_opens_its_source(
    visit: Visit, web_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = visit.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server.url)
    page.goto(web_server.url)
    first_example = page.locator("#na-examples button").first
    expect(first_example).to_have_text(DEMO_QUESTION)
    assert "extractive" in page.locator("#na-mode").inner_text()
    # The reply is shown while it is made, then replaced by the answer with linked markers.
    # The streaming state can be brief, so a DOM observer records whether it ever appeared.
    page.evaluate(
        """() => {
            window.__sawStreaming = false;
            new MutationObserver(() => {
                if (document.querySelector('#na-chat .na-streaming')) window.__sawStreaming = true;
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )
    first_example.click()  # and nothing else: the chip asks
    cite = page.locator("#na-chat a.na-cite", has_text="[1]").first
    cite.wait_for(timeout=ANSWER_TIMEOUT)
    expect(page.locator("#na-chat .na-user")).to_have_text([DEMO_QUESTION])
    assert page.evaluate("window.__sawStreaming") is True
    assert page.locator("#na-chat .na-streaming").count() == 0
    answer = page.locator("#na-chat .na-bot .na-bubble p").first.inner_text()
    assert "[1]" in answer

    card = page.locator("#na-src-0-1")
    card.evaluate("card => { card.open = false; }")
    cite.click()
    assert card.evaluate("card => card.open") is True
    assert card.is_visible()
    assert card.locator(".na-outlet").inner_text() == "TASS"
    quote = card.locator("mark.na-quote").inner_text()
    assert len(quote) > 40 and quote[:40] in answer

    page.locator("#na-chat .na-copy").first.click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "[1]" in copied and "TASS" in copied and "Sources:" in copied

    screenshot = os.environ.get("NEWS_ASSISTANT_SCREENSHOT")
    if screenshot:
        page.mouse.move(0, 0)
        page.screenshot(path=screenshot)

    page.locator("#na-clear").click()
    page.locator("#na-chat .na-empty").wait_for()
    visit.assert_stayed_local()
    assert visit.errors == []


def test_a_citation_scrolls_its_passage_box_to_the_quote(
    visit: Visit, web_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = visit.page
    # A narrow sources column, so a quote halfway down a passage sits below the box's fold.
    page.set_viewport_size({"width": 900, "height": 800})
    page.goto(web_server.url)
    ask_in_ui(page, DEMO_QUESTION)
    page.locator("#na-chat a.na-cite").first.wait_for(timeout=ANSWER_TIMEOUT)
    below_fold = page.evaluate(
        """() => [...document.querySelectorAll('#na-sources details.na-card')].filter(card => {
            const box = card.querySelector('.na-passage');
            const mark = box && box.querySelector('mark.na-quote');
            return mark && mark.getBoundingClientRect().top >= box.getBoundingClientRect().bottom;
        }).map(card => card.id)"""
    )
    assert below_fold, "no quote starts below its passage box's fold; the test would prove nothing"
    card = page.locator(f"#{below_fold[0]}")
    card.evaluate("card => { card.open = false; }")

    page.locator(f"#na-chat a.na-cite[data-card='{below_fold[0]}']").first.click()
    expect(card).to_be_in_viewport()
    assert card.evaluate("card => card.open") is True
    seen = card.evaluate(
        """card => {
            const box = card.querySelector('.na-passage');
            const top = box.getBoundingClientRect().top + box.clientTop;
            const bottom = top + box.clientHeight;
            return {
                scrolled: box.scrollTop,
                visible: [...box.querySelectorAll('mark.na-quote')].every(mark => {
                    const r = mark.getBoundingClientRect();
                    return r.height > 0 && r.top >= top - 1 && r.bottom <= bottom + 1;
                }),
            };
        }"""
    )
    assert seen["scrolled"] > 0 and seen["visible"] is True, seen


def expected_paragraphs(passage: Passage) -> list[str]:
    """What a card shows of `passage`: its paragraphs as flowing text, a skipped part as […]."""
    gap = "\0" * len(RUN_SEPARATOR)
    text = passage.text
    for a, b, at in passage.runs()[:-1] if passage.spans else ():
        text = text[: at + b - a] + gap + text[at + b - a + len(gap) :]
    blocks = re.split(r"\n\s*\n", text)
    return [" ".join(b.replace(gap, " […] ").split()) for b in blocks if b.strip()]


def test_source_cards_show_paragraphs_as_flowing_text(
    visit: Visit, web_server: LiveServer, web_engine: Engine
) -> None:
    question = "What sanctions did the United States announce against Russia?"
    citations = web_engine.ask(question).citations
    paragraphs = {c.number: expected_paragraphs(c.passage) for c in citations}
    # The sources must have what is rendered here: a line wrapped mid-paragraph, a blank line.
    assert any(
        "\n" in block.strip() for c in citations for block in re.split(r"\n\s*\n", c.passage.text)
    )
    assert any(len(shown) > 1 for shown in paragraphs.values())

    page = visit.page
    page.goto(web_server.url)
    ask_in_ui(page, question)
    page.locator("#na-chat a.na-cite").first.wait_for(timeout=ANSWER_TIMEOUT)
    for number, expected in paragraphs.items():
        passage = page.locator(f"#na-src-0-{number} .na-passage")
        shown = passage.evaluate("box => [...box.children].map(p => [p.tagName, p.textContent])")
        assert [tag for tag, _ in shown] == ["P"] * len(expected)
        assert [" ".join(text.split()) for _, text in shown] == expected
        assert all("\n" not in text for _, text in shown)
        assert passage.locator("br").count() == 0
        assert passage.locator("mark.na-quote").count() >= 1


def test_a_date_question_shows_its_short_answer_first_in_its_own_box(
    visit: Visit, web_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = visit.page
    page.goto(web_server.url)
    ask_in_ui(page, "When did the United States and NATO send their written replies to Russia?")
    box = page.locator("#na-chat .na-bot .na-short").first
    box.wait_for(timeout=ANSWER_TIMEOUT)
    assert "January 26" in box.inner_text()
    box.locator("a.na-cite").click()  # its [n] opens the source that holds it
    source = page.locator("#na-src-0-1")
    expect(source).to_be_visible()
    assert "January 26" in source.inner_text()


def test_hostile_article_shows_as_inert_text(visit: Visit, web_server: LiveServer) -> None:
    page = visit.page
    page.goto(web_server.url)
    ask_in_ui(page, XSS_QUESTION)
    page.locator("#na-chat a.na-cite").first.wait_for(timeout=ANSWER_TIMEOUT)
    page.locator("#na-chat a.na-cite").first.click()
    chat = page.locator("#na-chat").inner_text()
    sources = page.locator("#na-sources").inner_text()
    assert "<script>window.__xss='script'</script>" in chat + sources
    assert "<img src=x onerror=\"window.__xss='img'\">" in chat + sources
    assert "${window.__xss='template'}" in chat + sources
    assert "<b>Festival</b> Post" in sources
    assert "Zanzibar pineapple festival <img src=x" in sources

    page.locator("#na-question textarea").fill(XSS_QUESTION)
    page.locator("#na-search").click()
    page.locator("#na-hit-1").wait_for()
    assert "<script>window.__xss='script'</script>" in page.locator("#na-hit-1").inner_text()

    assert (
        page.locator("img[src='x'], script:not([src]):not([type])").evaluate_all(
            "nodes => nodes.filter(n => n.closest('#na-chat, #na-sources')).length"
        )
        == 0
    )
    assert page.locator("a[href^='javascript']").count() == 0
    visit.assert_no_script_ran()
    visit.assert_stayed_local()


class _PageServer(ThreadingHTTPServer):
    page: bytes


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        if self.path != "/":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.server.page)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_site(web_server: LiveServer, embed_origin: str) -> Iterator[str]:
    """The documented embedding page, served from `embed_origin` (another port, allowed)."""
    with serve_embed_page(web_server.url, int(urlsplit(embed_origin).port or 0)) as url:
        yield url


@contextlib.contextmanager
def serve_page(page: str, port: int = 0) -> Iterator[str]:
    """`page` at / of a second loopback server: a site on another origin than the app's."""
    server = _PageServer(("127.0.0.1", port), _PageHandler)
    server.page = page.encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def serve_embed_page(app_url: str, port: int) -> contextlib.AbstractContextManager[str]:
    """The documented embedding page, pointing at the app at `app_url`."""
    return serve_page(EMBED_PAGE.read_text().replace("http://127.0.0.1:7860", app_url), port)


def test_iframe_web_component_and_widget_work_from_another_origin(
    visit: Visit, other_site: str
) -> None:
    page = visit.page
    page.set_viewport_size({"width": 1360, "height": 1000})
    page.goto(other_site)

    page.frame_locator("#na-iframe").locator("#na-ask").wait_for(timeout=30_000)

    component = page.locator("gradio-app#na-component")
    ask_in_ui(component, DEMO_QUESTION)
    component.locator("a.na-cite").first.wait_for(timeout=ANSWER_TIMEOUT)
    assert component.locator("#na-src-0-1 .na-outlet").inner_text() == "TASS"

    widget = page.locator("[data-news-assistant]")
    widget.locator(".bubble").click()
    widget.locator("input").fill(DEMO_QUESTION)
    widget.locator("input").press("Enter")
    cite = widget.locator("button.cite", has_text="[1]").first
    cite.wait_for(timeout=ANSWER_TIMEOUT)
    source = widget.locator("ol.sources li[data-number='1']")
    assert "TASS" in source.inner_text()
    cite.click()
    assert "active" in (source.get_attribute("class") or "")

    widget.locator("input").fill(XSS_QUESTION)
    widget.locator("input").press("Enter")
    widget.locator(".msg.bot").nth(1).locator("button.cite").first.wait_for(timeout=ANSWER_TIMEOUT)
    reply = widget.locator(".msg.bot").nth(1).inner_text()
    assert "<script>window.__xss='script'</script>" in reply
    assert "Zanzibar pineapple festival <img src=x" in reply
    assert widget.locator("a[href^='javascript']").count() == 0
    visit.assert_no_script_ran()
    visit.assert_stayed_local()


def widget_error(page: Any) -> str:
    """Ask through the page's widget; the error it shows instead of an answer."""
    widget = page.locator("[data-news-assistant]")
    widget.locator(".bubble").click()
    widget.locator("input").fill(DEMO_QUESTION)
    widget.locator("input").press("Enter")
    error = widget.locator(".msg.bot.error")
    error.wait_for(timeout=30_000)
    assert widget.locator("button.cite").count() == 0
    return str(error.inner_text())


def not_allowed(app_url: str, page_port: int) -> str:
    return (
        f"Sorry: this site is not allowed to ask {app_url}: add http://127.0.0.1:{page_port} "
        "to cors_origins in the app's settings"
    )


def test_widget_on_an_origin_not_allowed_says_to_add_it_to_cors_origins(
    visit: Visit, web_server: LiveServer
) -> None:
    port = free_port()  # not the one origin the app allows
    with serve_embed_page(web_server.url, port) as url:
        visit.page.goto(url)
        assert widget_error(visit.page) == not_allowed(web_server.url, port)


def test_widget_says_to_add_the_page_to_cors_origins_when_the_app_has_none(
    visit: Visit, web_engine: Engine
) -> None:
    from serving.config import app_settings
    from serving.web import create_app

    settings = app_settings(web_engine.settings).with_changes(cors_origins=[])
    port = free_port()
    with (
        LiveServer(create_app(web_engine, settings)) as app,
        serve_embed_page(app.url, port) as url,
    ):
        visit.page.goto(url)
        assert widget_error(visit.page) == not_allowed(app.url, port)


WIDGET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><h1>Another site</h1><script src="{app}/widget.js" defer></script></body></html>
"""


@pytest.mark.parametrize("trouble", ["no token", "store down"])
def test_widget_says_what_to_fix_when_the_app_refuses(
    visit: Visit, web_engine: Engine, embedder: Any, tmp_path: Path, trouble: str
) -> None:
    from serving.api import create_api
    from serving.config import app_settings
    from tests.conftest import make_settings

    port = free_port()
    allowed = [f"http://127.0.0.1:{port}"]
    if trouble == "no token":
        engine = web_engine
        settings = app_settings(engine.settings).with_changes(
            cors_origins=allowed, api_token="widget-test-token"
        )
    else:  # a Chroma server that is not there
        down = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=free_port())
        engine = Engine(down, embedder=embedder)
        settings = app_settings(engine.settings).with_changes(cors_origins=allowed)
    with (
        LiveServer(create_api(engine, settings)) as app,
        serve_page(WIDGET_PAGE.format(app=app.url), port) as url,
    ):
        visit.page.goto(url)
        message = widget_error(visit.page)
    if trouble == "no token":
        assert message == (
            f"Sorry: {app.url} asks for an API token: set data-token on this widget's script "
            "tag to the app's api_token"
        )
        assert "widget-test-token" not in message
    else:
        assert message.startswith(
            f"Sorry: the news archive at {app.url} cannot search right now, its store is down ("
        )
        assert "Chroma" in message  # the app's own message, for whoever runs it
        assert message.endswith(
            "try again in a minute, and if it lasts, check the app's Chroma server"
        )


MULTIHOP_LABEL = "MultiHop-RAG: 49 outlets, Sep–Dec 2023"


@pytest.fixture(scope="module")
def two_archive_server(
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, embedder: Any
) -> Iterator[LiveServer]:
    """The app over a store with the small 2022 corpus and 60 of the 2023 demo's articles."""
    import json

    from news_assistant_data import MULTIHOP_DIR

    from index.demo import DEMO_CORPORA
    from index.embedding import VectorCache
    from serving.web import create_app
    from tests.conftest import indexed_engine

    folder = tmp_path_factory.mktemp("two-archives")
    rows = json.loads((MULTIHOP_DIR / "corpus.json").read_text(encoding="utf-8"))
    subset = [r for r in rows if "FTC" in r["body"]][:20] + rows[:40]  # the chip's answer, more
    (folder / "corpus.json").write_text(json.dumps(subset))
    engine = indexed_engine([small_corpus], folder / "store", embedder, demo_vectors=True)
    multihop = Engine(engine.settings.with_changes(collection="multihop-2023"), embedder=embedder)
    shipped = VectorCache.load(DEMO_CORPORA["multihop-2023"].vectors_path(embedder))
    multihop.index.ingest([folder / "corpus.json"], vector_cache=shipped, progress=False)
    with LiveServer(create_app(engine)) as server:
        yield server


def test_the_archive_picker_switches_the_header_chips_and_answers(
    visit: Visit, two_archive_server: LiveServer, web_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = visit.page
    page.goto(web_server.url)  # one collection: no picker
    expect(page.locator("#na-header-block")).to_contain_text("2022")
    assert not page.locator("#na-corpus").is_visible()

    page.goto(two_archive_server.url)
    picker = page.locator("#na-corpus")
    expect(picker).to_be_visible()
    expect(page.locator("#na-examples button").first).to_have_text(DEMO_QUESTION)
    picker.locator("label", has_text=MULTIHOP_LABEL).click()
    expect(page.locator("#na-header-block")).to_contain_text("2023-12-", timeout=30_000)
    chip = page.locator("#na-examples button").first
    expect(chip).to_have_text("What did the FTC allege in its lawsuit against Amazon?")
    chip.click()
    page.locator("#na-chat a.na-cite", has_text="[1]").first.wait_for(timeout=ANSWER_TIMEOUT)
    card = page.locator("#na-src-0-1")
    assert card.locator("time").get_attribute("datetime", timeout=10_000).startswith("2023-")
    assert "Amazon" in card.inner_text()
    assert visit.errors == []
    visit.assert_stayed_local()
