"""The page's HTML: answer text with linked [n] markers, the chat, and the source cards."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from urllib.parse import urlsplit

from assistant.answer import Answer, Citation, format_date
from assistant.excerpts import RUN_SEPARATOR
from assistant.retrieve import Passage
from serving.inputs import safe_url

_MARKER = re.compile(r"\[(\d{1,3})\]")


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


def esc(text: str) -> str:
    return html.escape(text, quote=True)


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

    return _paragraphs(_MARKER.sub(link, esc(text)))


def _short_lead(answer: Answer) -> str:
    """How the answer's text begins when it leads with its short answer(s), else ""."""
    if not answer.short_answers:
        return ""
    lead = f"{answer.short_answers[0].text} [{answer.short_answers[0].citation}]"
    return lead if answer.text.startswith(lead) else ""


def _without_short_answer(answer: Answer) -> str:
    """The answer's text after its leading short answer sentence (shown in its own box)."""
    lead = _short_lead(answer)
    if not lead:
        return answer.text
    rest = answer.text[len(lead) :]
    return rest[1:].lstrip() if rest.startswith(".") else rest.lstrip()


def _short_answer_box(answer: Answer, turn: int, numbers: Sequence[int]) -> str:
    """The short answer, shown first and prominently, with its [n]."""
    if not _short_lead(answer):
        return ""
    shown = " ".join(f"{s.text} [{s.citation}]" for s in answer.short_answers[:1])
    body = render_answer_text(shown, turn=turn, numbers=numbers)
    body = body.removeprefix("<p>").removesuffix("</p>")
    return f'<p class="na-short" title="The answer in a few words">{body}</p>'


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
            f'<div class="na-msg na-user"><div class="na-bubble">{esc(turn.question)}</div></div>'
        )
        parts.append(_render_reply(index, turn))
    parts.append("</div>")
    return "".join(parts)


def _render_reply(index: int, turn: ChatTurn) -> str:
    classes = "na-msg na-bot"
    if turn.error:
        body = f'<p class="na-error">{esc(turn.error)}</p>'
        return f'<div class="{classes} na-failed"><div class="na-bubble">{body}</div></div>'
    answer = turn.answer
    if answer is None:
        text = render_answer_text(turn.text, turn=index, numbers=()) if turn.text else ""
        body = text or '<p class="na-wait">Searching the articles…</p>'
        return f'<div class="{classes} na-streaming"><div class="na-bubble">{body}</div></div>'
    numbers = [c.number for c in answer.citations]
    body = _short_answer_box(answer, index, numbers) + render_answer_text(
        _without_short_answer(answer), turn=index, numbers=numbers
    )
    if answer.refused:
        classes += " na-refused"
    foot = (
        f'<div class="na-foot"><span class="na-mode" title="How this answer was written">'
        f"{esc(answer.mode)}</span>"
        f'<button type="button" class="na-copy" data-copy="{esc(copy_text(answer))}">'
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


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\s*\n\s*")


def _flowing_piece(text: str) -> str:
    # Sources wrap lines mid-sentence: inside a paragraph a newline is only a space.
    return _LINE_BREAK.sub(" ", esc(text))


def flowing_paragraphs(text: str, marked: tuple[int, int] | None = None) -> str:
    """`text` escaped as <p> paragraphs (a blank line splits them, a newline is a space), with
    the characters `marked` [start, end) of `text` in <mark>, cut at each paragraph's end."""
    parts = []
    bounds = [(m.start(), m.end()) for m in _PARAGRAPH_BREAK.finditer(text)]
    begin = 0
    for end, next_begin in [*bounds, (len(text), len(text))]:
        # Trim by index, not by string: the mark's offsets are into the untrimmed text.
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            cut = sorted({begin, end, *(min(max(x, begin), end) for x in marked or ())})
            html_ = ""
            for a, b in pairwise(cut):
                piece = _flowing_piece(text[a:b])
                inside = marked is not None and marked[0] <= a and b <= marked[1]
                html_ += f'<mark class="na-quote">{piece}</mark>' if inside else piece
            parts.append(f"<p>{html_}</p>")
        begin = next_begin
    return "".join(parts)


def _highlighted(passage: str, quote: str, start: int | None) -> str:
    """The passage, escaped, as paragraphs, with the quote marked where it sits."""
    if quote:
        at = start if start is not None and passage[start : start + len(quote)] == quote else -1
        if at < 0:
            at = passage.find(quote)
        if at >= 0:
            return flowing_paragraphs(passage, (at, at + len(quote)))
        return (
            f'<p><mark class="na-quote">{_flowing_piece(quote.strip())}</mark></p>'
            + flowing_paragraphs(passage)
        )
    return flowing_paragraphs(passage)


def render_card(
    *, ident: str, label: str, passage: Passage, quote: str, quote_at: int | None, open_: bool
) -> str:
    meta = " · ".join(
        x
        for x in (
            f'<span class="na-outlet">{esc(passage.source)}</span>' if passage.source else "",
            (
                f'<time datetime="{esc(passage.published)}">'
                f"{esc(format_date(passage.published))}</time>"
            )
            if passage.published
            else "",
            esc(passage.author) if passage.author else "",
        )
        if x
    )
    url = safe_url(passage.url)  # only http(s) links are clickable; the rest stays text
    if url:
        host = urlsplit(url).netloc
        link = (
            f'<a class="na-link" href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
            f"Read the original at {esc(host)} ↗</a>"
        )
    elif passage.url:
        link = f'<span class="na-link">{esc(passage.url)}</span>'
    else:
        link = ""
    body = _highlighted(_gaps_marked(passage), quote, quote_at).replace(_GAP, _GAP_HTML)
    return (
        f'<details class="na-card" id="{ident}"{" open" if open_ else ""}>'
        f'<summary><span class="na-num">{esc(label)}</span> '
        f'<span class="na-title">{esc(passage.title or "(untitled)")}</span></summary>'
        f'<div class="na-meta">{meta}</div><div class="na-passage">{body}</div>{link}'
        f"{_also_published(passage)}</details>"
    )


def _also_published(passage: Passage) -> str:
    """The card's "Also published by: Outlet (link), ..." line; empty without copies."""
    if not passage.also_published_by:
        return ""
    items = []
    for copy in passage.also_published_by:
        outlet = esc(copy.get("source") or copy.get("title") or "another outlet")
        url = safe_url(copy.get("url", ""))  # only http(s) links are clickable
        title = esc(copy.get("title", ""))
        items.append(
            f'{outlet} (<a href="{esc(url)}" target="_blank" rel="noopener noreferrer" '
            f'title="{title}">link</a>)'
            if url
            else outlet
        )
    return f'<div class="na-also">Also published by: {", ".join(items)}</div>'


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
            f'<h3 class="na-group">Passages for “{esc(hits.question)}”</h3>'
            if hits.passages
            else f'<p class="na-none">No passages found for “{esc(hits.question)}”.</p>'
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
        parts.append(f'<h3 class="na-group">{label}: “{esc(turn.question)}”</h3>')
        parts += [_citation_card(index, c, open_=position == 0) for c in turn.answer.citations]
    if len(parts) == 1:
        parts.append('<p class="na-none">Sources of the answer appear here.</p>')
    parts.append("</div>")
    return "".join(parts)
