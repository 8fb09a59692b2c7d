"""The web app in a real Chromium: the chat with its sources, hostile text, and embedding."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

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


def test_ui_streams_the_demo_answer_and_opens_its_source(
    visit: Visit, web_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    page = visit.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server.url)
    page.goto(web_server.url)
    first_example = page.locator("#na-examples button").first
    expect(first_example).to_have_text(DEMO_QUESTION)
    assert "extractive" in page.locator("#na-mode").inner_text()
    first_example.click()
    expect(page.locator("#na-question textarea")).to_have_value(DEMO_QUESTION)
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
    page.locator("#na-ask").click()
    cite = page.locator("#na-chat a.na-cite", has_text="[1]").first
    cite.wait_for(timeout=ANSWER_TIMEOUT)
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
    with serve_embed_page(web_server, int(urlsplit(embed_origin).port or 0)) as url:
        yield url


@contextlib.contextmanager
def serve_embed_page(web_server: LiveServer, port: int) -> Iterator[str]:
    server = _PageServer(("127.0.0.1", port), _PageHandler)
    server.page = EMBED_PAGE.read_text().replace("http://127.0.0.1:7860", web_server.url).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


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


def test_widget_on_an_origin_not_allowed_gets_no_answer(
    visit: Visit, web_server: LiveServer
) -> None:
    page = visit.page
    with serve_embed_page(web_server, free_port()) as url:
        page.goto(url)
        widget = page.locator("[data-news-assistant]")
        widget.locator(".bubble").click()
        widget.locator("input").fill(DEMO_QUESTION)
        widget.locator("input").press("Enter")
        error = widget.locator(".msg.bot.error")
        error.wait_for(timeout=30_000)
        assert error.inner_text().startswith("Sorry:")
        assert widget.locator("button.cite").count() == 0
