"""The web app: a Gradio chat with sources, mounted on the HTTP API, served by uvicorn."""

from __future__ import annotations

import html
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from fastapi import FastAPI

from assistant.answer import Answer, Citation, format_date
from assistant.engine import Engine
from assistant.excerpts import RUN_SEPARATOR
from assistant.retrieve import Passage
from index.errors import ConfigError, NewsAssistantError
from serving.api import create_api
from serving.config import AppSettings, app_settings
from serving.inputs import MAX_QUESTION, STATIC_DIR, clip_question, parse_filters

log = logging.getLogger(__name__)

DEMO_QUESTIONS = (  # (question, a word the corpus must contain for it to be offered)
    ("What did Lavrov say about NATO expansion?", "Lavrov"),
    ("What sanctions did the United States announce against Russia?", "sanctions"),
    ("What did Jen Psaki say about Ukraine?", "Psaki"),
    ("What did the White House say about free COVID-19 tests?", "COVID"),
)
MAX_EXAMPLES = 4
_MARKER = re.compile(r"\[(\d{1,3})\]")

# Clicks inside the chat: [n] opens its source card; "Copy" puts the answer on the clipboard.
CHAT_JS = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
APP_CSS = (STATIC_DIR / "app.css").read_text(encoding="utf-8")


@dataclass
class ChatTurn:
    """One question in the browser and what came back for it so far."""

    question: str
    text: str = ""
    answer: Answer | None = None
    error: str = ""


@dataclass
class SearchHits:
    question: str
    passages: list[Passage] = field(default_factory=list)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _safe_url(url: str) -> str | None:
    """Only http(s) links are clickable; anything else (javascript:, data:) stays text."""
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _paragraphs(escaped: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", escaped) if b.strip()]
    return "".join(f"<p>{b.replace(chr(10), '<br>')}</p>" for b in blocks)


def card_id(turn: int, number: int) -> str:
    return f"na-src-{turn}-{number}"


def render_answer_text(text: str, *, turn: int, numbers: Sequence[int]) -> str:
    """Escaped answer text whose [n] markers link to their source cards."""
    known = set(numbers)

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in known:
            return match.group(0)
        target = card_id(turn, n)
        return (
            f'<a class="na-cite" href="#{target}" data-card="{target}" '
            f'title="Show source {n}">[{n}]</a>'
        )

    return _paragraphs(_MARKER.sub(link, _esc(text)))


def copy_text(answer: Answer) -> str:
    """The answer with its citations as plain text, for the clipboard."""
    lines = [answer.text.strip()]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            p = c.passage
            where = ", ".join(x for x in (p.source, p.published) if x)
            lines.append(f"[{c.number}] {p.title}" + (f" — {where}" if where else ""))
            if p.url:
                lines.append(f"    {p.url}")
            if c.quote:
                lines.append(f"    “{' '.join(c.quote.split())}”")
    return "\n".join(lines)


def render_chat(turns: Sequence[ChatTurn]) -> str:
    if not turns:
        return (
            '<div class="na-chat na-empty"><p>Ask a question about the news. Every claim in '
            "the answer comes with a numbered source you can open and check.</p></div>"
        )
    parts = ['<div class="na-chat">']
    for index, turn in enumerate(turns):
        parts.append(
            f'<div class="na-msg na-user"><div class="na-bubble">{_esc(turn.question)}</div></div>'
        )
        parts.append(_render_reply(index, turn))
    parts.append("</div>")
    return "".join(parts)


def _render_reply(index: int, turn: ChatTurn) -> str:
    classes = "na-msg na-bot"
    if turn.error:
        body = f'<p class="na-error">{_esc(turn.error)}</p>'
        return f'<div class="{classes} na-failed"><div class="na-bubble">{body}</div></div>'
    answer = turn.answer
    if answer is None:
        text = render_answer_text(turn.text, turn=index, numbers=()) if turn.text else ""
        body = text or '<p class="na-wait">Searching the articles…</p>'
        return f'<div class="{classes} na-streaming"><div class="na-bubble">{body}</div></div>'
    numbers = [c.number for c in answer.citations]
    body = render_answer_text(answer.text, turn=index, numbers=numbers)
    if answer.refused:
        classes += " na-refused"
    foot = (
        f'<div class="na-foot"><span class="na-mode" title="How this answer was written">'
        f"{_esc(answer.mode)}</span>"
        f'<button type="button" class="na-copy" data-copy="{_esc(copy_text(answer))}">'
        "Copy answer</button></div>"
    )
    bubble = f'<div class="na-bubble">{body}{foot}</div>'
    return f'<div class="{classes}" data-turn="{index}">{bubble}</div>'


# Where an excerpt skips part of the article: kept the separator's length so offsets hold.
_GAP = "\ue000" * len(RUN_SEPARATOR)
_GAP_HTML = '<span class="na-gap" title="Part of the article is left out here"> […] </span>'


def _gaps_marked(passage: Passage) -> str:
    if not passage.spans:
        return passage.text
    text = passage.text
    for a, b, at in passage.runs()[:-1]:
        gap = at + b - a
        text = text[:gap] + _GAP + text[gap + len(_GAP) :]
    return text


def _highlighted(passage: str, quote: str, start: int | None) -> str:
    """The passage, escaped, with the quote marked where it sits."""
    if quote:
        at = start if start is not None and passage[start : start + len(quote)] == quote else -1
        if at < 0:
            at = passage.find(quote)
        if at >= 0:
            return (
                _esc(passage[:at])
                + f'<mark class="na-quote">{_esc(quote)}</mark>'
                + _esc(passage[at + len(quote) :])
            )
        return f'<mark class="na-quote">{_esc(quote)}</mark><br><br>{_esc(passage)}'
    return _esc(passage)


def render_card(
    *, ident: str, label: str, passage: Passage, quote: str, quote_at: int | None, open_: bool
) -> str:
    meta = " · ".join(
        x
        for x in (
            f'<span class="na-outlet">{_esc(passage.source)}</span>' if passage.source else "",
            (
                f'<time datetime="{_esc(passage.published)}">'
                f"{_esc(format_date(passage.published))}</time>"
            )
            if passage.published
            else "",
            _esc(passage.author) if passage.author else "",
        )
        if x
    )
    url = _safe_url(passage.url)
    if url:
        host = urlsplit(url).netloc
        link = (
            f'<a class="na-link" href="{_esc(url)}" target="_blank" rel="noopener noreferrer">'
            f"Read the original at {_esc(host)} ↗</a>"
        )
    elif passage.url:
        link = f'<span class="na-link">{_esc(passage.url)}</span>'
    else:
        link = ""
    body = (
        _highlighted(_gaps_marked(passage), quote, quote_at)
        .replace(_GAP, _GAP_HTML)
        .replace("\n", "<br>")
    )
    return (
        f'<details class="na-card" id="{ident}"{" open" if open_ else ""}>'
        f'<summary><span class="na-num">{_esc(label)}</span> '
        f'<span class="na-title">{_esc(passage.title or "(untitled)")}</span></summary>'
        f'<div class="na-meta">{meta}</div><p class="na-passage">{body}</p>{link}</details>'
    )


def _citation_card(turn: int, citation: Citation, *, open_: bool) -> str:
    p = citation.passage
    offset = citation.passage_offset
    return render_card(
        ident=card_id(turn, citation.number),
        label=f"[{citation.number}]",
        passage=p,
        quote=citation.quote,
        quote_at=offset if 0 <= offset <= len(p.text) else None,
        open_=open_,
    )


def render_sources(turns: Sequence[ChatTurn], hits: SearchHits | None = None) -> str:
    """Source cards: the newest answer's open, earlier answers' folded; or search hits."""
    parts = ['<div class="na-sources">']
    if hits is not None:
        parts.append(
            f'<h3 class="na-group">Passages for “{_esc(hits.question)}”</h3>'
            if hits.passages
            else f'<p class="na-none">No passages found for “{_esc(hits.question)}”.</p>'
        )
        for rank, p in enumerate(hits.passages, start=1):
            parts.append(
                render_card(
                    ident=f"na-hit-{rank}",
                    label=f"{rank}.",
                    passage=p,
                    quote="",
                    quote_at=None,
                    open_=rank <= 3,
                )
            )
    answered = [(i, t) for i, t in enumerate(turns) if t.answer is not None]
    for position, (index, turn) in enumerate(reversed(answered)):
        assert turn.answer is not None
        if position == 0 and turn.answer.refused:
            closest = turn.answer.closest_articles()
            if closest:
                parts.append('<h3 class="na-group">No answer; the closest articles</h3>')
            parts += [
                render_card(
                    ident=f"na-near-{rank}",
                    label="•",
                    passage=p,
                    quote="",
                    quote_at=None,
                    open_=False,
                )
                for rank, p in enumerate(closest, start=1)
            ]
        if not turn.answer.citations:
            continue
        label = "Sources" if position == 0 else "Earlier"
        parts.append(f'<h3 class="na-group">{label}: “{_esc(turn.question)}”</h3>')
        parts += [_citation_card(index, c, open_=position == 0) for c in turn.answer.citations]
    if len(parts) == 1:
        parts.append('<p class="na-none">Sources of the answer appear here.</p>')
    parts.append("</div>")
    return "".join(parts)


def example_questions(titles: Sequence[tuple[str, str]], texts: Sequence[str]) -> list[str]:
    """Questions this corpus can answer: the demo's where its articles are, then from titles."""
    found = [q for q, needle in DEMO_QUESTIONS if any(needle in t for t in texts)]
    for _, title in titles:
        if len(found) >= MAX_EXAMPLES:
            break
        if title and len(title) < 90:
            found.append(f"What is “{title}” about?")
    return found[:MAX_EXAMPLES]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _header(engine: Engine, *, examples: bool = True) -> tuple[str, list[str], list[str]]:
    """The corpus line, the outlet choices and (if asked) the example questions."""
    try:
        summary = engine.corpus_summary()
        texts = engine.index.chunk_texts() if examples else []
    except NewsAssistantError as error:
        return f'<p class="na-error">{_esc(str(error))}</p>', [], []
    mode = engine.mode
    span = (
        f", {_esc(summary.first_date)} to {_esc(summary.last_date)}"
        if summary.first_date and summary.last_date
        else ""
    )
    mode_text = (
        "extractive: sentences quoted from the articles"
        if mode == "extractive"
        else f"written by {_esc(mode.removeprefix('llm:'))}, with checked citations"
    )
    line = (
        f'<div class="na-header"><h1>News Assistant</h1><p>{_count(summary.articles, "article")} '
        f"from {_count(len(summary.outlets), 'outlet')}{span}. "
        f'Answer mode: <span class="na-mode" id="na-mode">{mode_text}</span></p></div>'
    )
    outlets = [name for name, _ in summary.outlets]
    return line, outlets, example_questions(summary.titles, texts) if examples else []


class PageHandlers:
    """What the page's events and its two API endpoints (`ask`, `search`) run, over one engine.

    Bound methods, not closures: Gradio reads each one's name, signature and type hints."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def respond(
        self,
        question: str,
        turns: list[ChatTurn],
        date_from: str,
        date_to: str,
        chosen: list[str] | None,
        use_llm: bool = True,
    ) -> Iterator[tuple[str, str, list[ChatTurn], str]]:
        question = (question or "").strip()
        if not question:
            yield render_chat(turns), render_sources(turns), turns, ""
            return
        turn = ChatTurn(question=clip_question(question))
        turns = [*turns, turn]
        try:
            filters = parse_filters(date_from, date_to, chosen)
            history = [(t.question, t.answer.text) for t in turns[:-1] if t.answer is not None]
            yield render_chat(turns), render_sources(turns[:-1]), turns, ""
            stream = self.engine.ask_stream(
                turn.question, history=history, filters=filters, use_llm=None if use_llm else False
            )
            for event in stream:
                if event.kind == "delta":
                    turn.text += event.text
                    yield render_chat(turns), render_sources(turns[:-1]), turns, ""
                elif event.answer is not None:
                    turn.answer = event.answer
        except (NewsAssistantError, ValueError) as error:
            turn.error = str(error)
        except Exception:
            log.exception("answering %r failed", question)
            turn.error = "Something went wrong while answering; the server log has the details."
        yield render_chat(turns), render_sources(turns), turns, ""

    def search_only(
        self,
        question: str,
        turns: list[ChatTurn],
        date_from: str,
        date_to: str,
        chosen: list[str] | None,
    ) -> str:
        question = (question or "").strip()
        if not question:
            return render_sources(turns)
        try:
            filters = parse_filters(date_from, date_to, chosen)
            passages = self.engine.search(question, filters=filters)
        except (NewsAssistantError, ValueError) as error:
            return f'<div class="na-sources"><p class="na-error">{_esc(str(error))}</p></div>'
        return render_sources(turns, SearchHits(question, passages))

    def refresh(self) -> tuple[str, Any]:
        """The corpus may have grown since the process started: recount on each page load."""
        line, names, _ = _header(self.engine, examples=False)
        return line, gr.Dropdown(choices=names)

    def clear(self) -> tuple[str, str, list[ChatTurn], str]:
        return render_chat([]), render_sources([]), [], ""

    def api_ask(
        self,
        question: str,
        date_from: str = "",
        date_to: str = "",
        outlets: list[str] | None = None,
        k: int = 0,
    ) -> dict[str, Any]:
        """An answer with citations (the JSON of POST /api/ask)."""
        filters = parse_filters(date_from, date_to, outlets)
        return self.engine.ask(clip_question(question), filters=filters, k=k or None).as_dict()

    def api_search(
        self,
        question: str,
        date_from: str = "",
        date_to: str = "",
        outlets: list[str] | None = None,
        k: int = 0,
    ) -> list[dict[str, Any]]:
        """Passages that best match the question (the JSON of POST /api/search)."""
        filters = parse_filters(date_from, date_to, outlets)
        passages = self.engine.search(clip_question(question), k=k or None, filters=filters)
        return [p.as_dict() for p in passages]


def build_ui(engine: Engine) -> gr.Blocks:
    """The chat page: conversation, sources panel, filters, examples."""
    header, outlets, examples = _header(engine)
    handlers = PageHandlers(engine)

    with gr.Blocks(title="News Assistant", analytics_enabled=False) as blocks:
        turns = gr.State([])
        header_block = gr.HTML(header, elem_id="na-header-block")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = gr.HTML(
                    render_chat([]),
                    elem_id="na-chat",
                    js_on_load=CHAT_JS,
                    autoscroll=True,
                    max_height=640,
                    min_height=360,
                    padding=True,
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask about the news, e.g. who said what, when…",
                        show_label=False,
                        max_length=MAX_QUESTION,
                        scale=5,
                        elem_id="na-question",
                        autofocus=True,
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="na-ask")
                with gr.Row():
                    search = gr.Button("Search passages only", size="sm", elem_id="na-search")
                    clear_button = gr.Button("Clear conversation", size="sm", elem_id="na-clear")
                if examples:
                    gr.Examples(
                        examples=[[q] for q in examples],
                        inputs=[question],
                        label="Try asking",
                        elem_id="na-examples",
                    )
                with gr.Accordion("Filters", open=False, elem_id="na-filters"):
                    with gr.Row():
                        date_from = gr.Textbox(label="From", placeholder="YYYY-MM-DD")
                        date_to = gr.Textbox(label="To", placeholder="YYYY-MM-DD")
                    chosen = gr.Dropdown(
                        choices=outlets, multiselect=True, label="Outlets", value=[]
                    )
                use_llm = gr.Checkbox(
                    value=True,
                    label=f"Write answers with {engine.mode.removeprefix('llm:')}"
                    " (off: quote the articles)",
                    visible=engine.generator is not None,
                    elem_id="na-use-llm",
                )
            with gr.Column(scale=2):
                sources = gr.HTML(
                    render_sources([]), elem_id="na-sources", max_height=760, padding=True
                )
        inputs = [question, turns, date_from, date_to, chosen]
        outputs = [chat, sources, turns, question]
        for trigger in (ask.click, question.submit):
            trigger(
                handlers.respond,
                [*inputs, use_llm],
                outputs,
                api_visibility="private",
                show_progress="hidden",
            )
        search.click(handlers.search_only, inputs, [sources], api_visibility="private")
        clear_button.click(handlers.clear, None, outputs, api_visibility="private")
        blocks.load(handlers.refresh, None, [header_block, chosen], api_visibility="private")
        gr.api(handlers.api_ask, api_name="ask")
        gr.api(handlers.api_search, api_name="search")
    return blocks


def _auth(settings: AppSettings) -> tuple[str, str] | None:
    if not settings.ui_auth:
        return None
    user, sep, password = settings.ui_auth.partition(":")
    if not sep or not user or not password:
        raise ConfigError("ui_auth: use 'user:password'")
    return user, password


SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Liberation Sans", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look in the reader's system fonts: no font is downloaded at all."""
    return gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)


def create_app(engine: Engine, settings: AppSettings | None = None) -> FastAPI:
    """The HTTP API with the Gradio UI mounted at /, sharing one engine.

    `settings` (default: the engine's) gives the serving knobs: CORS, token, login, queue."""
    settings = settings or app_settings(engine.settings)
    app = create_api(engine, settings)
    blocks = build_ui(engine)
    blocks.queue(default_concurrency_limit=settings.concurrency)
    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=_auth(settings),
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        theme=theme(),
        css=APP_CSS,
    )


def prepare(engine: Engine, *, progress: bool = True) -> None:
    """Load the model and the indexes before the first request; build the demo if empty."""
    if app_settings(engine.settings).demo_on_empty:
        report = engine.index.ensure_demo(progress=progress)
        if report:
            # A closing line under the progress bar, not a warning: logs stay quiet by default.
            if progress:
                print(f"built the demo index: {report.summary()}", file=sys.stderr, flush=True)
            log.info("built the demo index: %s", report.summary())
    engine.embedder.embed_query("warm up")
    engine.index.refresh()


def serve(
    settings: AppSettings, *, host: str = "127.0.0.1", port: int = 7860, progress: bool = True
) -> None:
    """Prepare one engine for the process and serve the app until interrupted."""
    import uvicorn

    engine = Engine(settings)
    prepare(engine, progress=progress)
    app = create_app(engine)
    print(f"News Assistant on http://{host}:{port}  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
