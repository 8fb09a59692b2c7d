"""The web page: a Gradio chat with sources, mounted on the HTTP API by `serving.web` when the
app serves it (Gradio is imported with this module, and only then)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import gradio as gr
from fastapi import FastAPI
from gradio.routes import App as GradioApp
from starlette.routing import Mount

from assistant.engine import Engine
from index.demo import demo_for_collection
from index.errors import NewsAssistantError
from index.watch import updated_text
from serving.api import Collections
from serving.config import AppSettings
from serving.inputs import (
    MAX_QUESTION,
    STATIC_DIR,
    answer_json,
    checked_k,
    checked_question,
    clip_question,
    parse_filters,
    passage_json,
    user_errors,
)
from serving.middleware import GradioGuard
from serving.render import ChatTurn, SearchHits, esc, render_chat, render_sources

log = logging.getLogger(__name__)

DEMO_QUESTIONS = (  # (question, a word the corpus must contain for it to be offered)
    ("What did Lavrov say about NATO expansion?", "Lavrov"),
    ("What sanctions did the United States announce against Russia?", "sanctions"),
    ("What did Jen Psaki say about Ukraine?", "Psaki"),
    ("What did the White House say about free COVID-19 tests?", "COVID"),
)
# The MultiHop-RAG demo (`news-assistant demo --corpus multihop-2023`): each is answered, with
# citations, from its 2023 articles.
MULTIHOP_QUESTIONS = (
    ("What did the FTC allege in its lawsuit against Amazon?", "FTC"),
    ("What are the stomach risks of Ozempic and Wegovy?", "Ozempic"),
    ("What is the Michigan sign-stealing scandal?", "sign-stealing"),
    ("What was Sam Bankman-Fried on trial for?", "Bankman-Fried"),
)
QUESTIONS_BY_COLLECTION = {"multihop-2023": MULTIHOP_QUESTIONS}
MAX_EXAMPLES = 4

# Clicks inside the chat: [n] opens its source card; "Copy" puts the answer on the clipboard.
CHAT_JS = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
APP_CSS = (STATIC_DIR / "app.css").read_text(encoding="utf-8")


def example_questions(
    titles: Sequence[tuple[str, str]],
    texts: Sequence[str],
    questions: Sequence[tuple[str, str]] = DEMO_QUESTIONS,
) -> list[str]:
    """Questions this corpus can answer: the demo's where its articles are, then from titles."""
    found = [q for q, needle in questions if any(needle in t for t in texts)]
    for _, title in titles:
        if len(found) >= MAX_EXAMPLES:
            break
        if title and len(title) < 90:
            found.append(f"What is “{title}” about?")
    return found[:MAX_EXAMPLES]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _updated(engine: Engine) -> str:
    """The header's "updated 5 min ago": when this process last brought the archive up to date."""
    text = updated_text(engine.index.last_updated)
    return f', <span class="na-updated" id="na-updated">{esc(text)}</span>' if text else ""


def _header(engine: Engine, *, examples: bool = True) -> tuple[str, list[str], list[str]]:
    """The corpus line, the outlet choices and (if asked) the example questions."""
    try:
        summary = engine.corpus_summary()
        texts = engine.index.chunk_texts() if examples else []
    except NewsAssistantError as error:
        return f'<p class="na-error">{esc(str(error))}</p>', [], []
    mode = engine.mode
    span = (
        f", {esc(summary.first_date)} to {esc(summary.last_date)}"
        if summary.first_date and summary.last_date
        else ""
    )
    mode_text = (
        "extractive: sentences quoted from the articles"
        if mode == "extractive"
        else f"written by {esc(mode.removeprefix('llm:'))}, with checked citations"
    )
    line = (
        f'<div class="na-header"><h1>News Assistant</h1><p>{_count(summary.articles, "article")} '
        f"from {_count(len(summary.outlets), 'outlet')}{span}{_updated(engine)}. "
        f'Answer mode: <span class="na-mode" id="na-mode">{mode_text}</span></p></div>'
    )
    outlets = [name for name, _ in summary.outlets]
    if not examples:
        return line, outlets, []
    questions = QUESTIONS_BY_COLLECTION.get(engine.settings.collection, DEMO_QUESTIONS)
    return line, outlets, example_questions(summary.titles, texts, questions)


def corpus_picker(names: Sequence[str], chosen: str) -> gr.Radio:
    """The archive picker: shown only when the store holds more than one collection."""
    choices = [(demo.label if (demo := demo_for_collection(n)) else n, n) for n in names]
    return gr.Radio(
        choices=choices,
        value=chosen,
        label="Archive",
        visible=len(choices) > 1,
        elem_id="na-corpus",
    )


class PageHandlers:
    """What the page's events and its two API endpoints (`ask`, `search`) run, over one engine.

    Bound methods, not closures: Gradio reads each one's name, signature and type hints."""

    def __init__(self, engine: Engine, collections: Collections | None = None) -> None:
        self.engine = engine
        self.collections = collections or Collections(engine)

    def _engine(self, corpus: str | None) -> Engine:
        """The engine of the archive picked on this page (the default when none is)."""
        return self.collections.engine(corpus or None)

    def respond(
        self,
        question: str,
        turns: list[ChatTurn],
        date_from: str,
        date_to: str,
        chosen: list[str] | None,
        use_llm: bool = True,
        corpus: str = "",
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
            stream = self._engine(corpus).ask_stream(
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
        corpus: str = "",
    ) -> str:
        question = (question or "").strip()
        if not question:
            return render_sources(turns)
        try:
            filters = parse_filters(date_from, date_to, chosen)
            passages = self._engine(corpus).search(question, filters=filters)
        except (NewsAssistantError, ValueError) as error:
            return f'<div class="na-sources"><p class="na-error">{esc(str(error))}</p></div>'
        return render_sources(turns, SearchHits(question, passages))

    def refresh(self, corpus: str = "") -> tuple[str, Any, Any]:
        """The corpus may have grown, and collections come, since the process started: recount
        on each page load."""
        try:
            engine, names = self._engine(corpus), self.collections.names()
        except (NewsAssistantError, ValueError):
            engine, names = self.engine, self.collections.last_names
        line, outlets, _ = _header(engine, examples=False)
        return line, gr.Dropdown(choices=outlets), corpus_picker(names, engine.settings.collection)

    def switch(self, corpus: str) -> tuple[Any, ...]:
        """Another archive picked: its header, outlets and questions; the conversation restarts."""
        try:
            line, outlets, examples = _header(self._engine(corpus))
        except ValueError as error:  # the collection has gone from the store since
            line, outlets, examples = f'<p class="na-error">{esc(str(error))}</p>', [], []
        chips = gr.Dataset(samples=[[q] for q in examples], visible=bool(examples))
        return line, gr.Dropdown(choices=outlets, value=[], multiselect=True), chips, *self.clear()

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
        # The bounds of POST /api/ask, refused rather than clamped; errors as short messages.
        with user_errors(gr.Error, "answering", print_exception=False):
            question, k_ = checked_question(question), checked_k(k)
            filters = parse_filters(date_from, date_to, outlets)
            return answer_json(self.engine.ask(question, filters=filters, k=k_))

    def api_search(
        self,
        question: str,
        date_from: str = "",
        date_to: str = "",
        outlets: list[str] | None = None,
        k: int = 0,
    ) -> list[dict[str, Any]]:
        """Passages that best match the question (the JSON of POST /api/search)."""
        with user_errors(gr.Error, "searching", print_exception=False):
            question, k_ = checked_question(question), checked_k(k)
            filters = parse_filters(date_from, date_to, outlets)
            return [passage_json(p) for p in self.engine.search(question, k=k_, filters=filters)]


def _question_box() -> tuple[gr.Textbox, gr.Button, gr.Button, gr.Button]:
    """The question box with Ask, and the search and clear buttons under it."""
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
    return question, ask, search, clear_button


def _filter_fields(outlets: list[str]) -> tuple[gr.Textbox, gr.Textbox, gr.Dropdown]:
    """The folded filters: a date range and the outlets."""
    with gr.Accordion("Filters", open=False, elem_id="na-filters"):
        with gr.Row():
            date_from = gr.Textbox(label="From", placeholder="YYYY-MM-DD")
            date_to = gr.Textbox(label="To", placeholder="YYYY-MM-DD")
        chosen = gr.Dropdown(choices=outlets, multiselect=True, label="Outlets", value=[])
    return date_from, date_to, chosen


def build_ui(engine: Engine, collections: Collections | None = None) -> gr.Blocks:
    """The chat page: archive picker, conversation, sources panel, filters, examples."""
    header, outlets, examples = _header(engine)
    handlers = PageHandlers(engine, collections)
    try:
        names = handlers.collections.names()
    except NewsAssistantError:
        names = handlers.collections.last_names

    with gr.Blocks(title="News Assistant", analytics_enabled=False) as blocks:
        turns = gr.State([])
        header_block = gr.HTML(header, elem_id="na-header-block")
        picker = corpus_picker(names, engine.settings.collection)
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
                question, ask, search, clear_button = _question_box()
                # Made even when empty (hidden): another archive's questions may fill it.
                chips = gr.Examples(
                    examples=[[q] for q in examples] or [[""]],
                    inputs=[question],
                    label="Try asking",
                    elem_id="na-examples",
                    visible=bool(examples),
                )
                date_from, date_to, chosen = _filter_fields(outlets)
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
        # A chip asks at once: it fills the box, then the same answer runs as for "Ask".
        triggers = [ask.click, question.submit, chips.load_input_event.then]
        for trigger in triggers:
            trigger(
                handlers.respond,
                [*inputs, use_llm, picker],
                outputs,
                api_visibility="private",
                show_progress="hidden",
            )
        search.click(handlers.search_only, [*inputs, picker], [sources], api_visibility="private")
        clear_button.click(handlers.clear, None, outputs, api_visibility="private")
        picker.input(  # the reader's choice only, not a refresh that re-sets the same value
            handlers.switch,
            [picker],
            [header_block, chosen, chips.dataset, *outputs],
            api_visibility="private",
        )
        blocks.load(
            handlers.refresh, [picker], [header_block, chosen, picker], api_visibility="private"
        )
        gr.api(handlers.api_ask, api_name="ask")
        gr.api(handlers.api_search, api_name="search")
    return blocks


def _mounted_gradio(app: FastAPI) -> GradioApp:
    for route in app.routes:
        if isinstance(route, Mount) and isinstance(route.app, GradioApp):
            return route.app
    raise RuntimeError("no Gradio app is mounted on this app")


SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Liberation Sans", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look in the reader's system fonts: no font is downloaded at all."""
    return gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)


def mount_page(
    app: FastAPI,
    engine: Engine,
    collections: Collections,
    settings: AppSettings,
    *,
    auth: tuple[str, str] | None,
) -> FastAPI:
    """`app` with the page mounted at /, behind `auth` (user, password) when given, and its
    Gradio endpoints guarded as the API is."""
    blocks = build_ui(engine, collections)
    blocks.queue(default_concurrency_limit=settings.concurrency)
    app = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=auth,
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        theme=theme(),
        css=APP_CSS,
    )
    if settings.ui_auth or settings.api_token:
        gradio_app = _mounted_gradio(app)
        gradio_app.add_middleware(GradioGuard, gradio_app=gradio_app, api_token=settings.api_token)
    return app
