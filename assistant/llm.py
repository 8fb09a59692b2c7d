"""The generative path: prompts from prompts/, any OpenAI-compatible server through llama-index."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date
from functools import cache, cached_property
from typing import TYPE_CHECKING

from assistant.answer import REFUSAL, format_date
from assistant.config import Settings
from assistant.retrieve import Passage
from assistant.speakers import Turn, passage_turns
from index.errors import ConfigError, NewsAssistantError
from prompts import prompt_file

if TYPE_CHECKING:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike


@cache
def load_prompt(name: str) -> str:
    """The prompt `name` (prompts/<name>.md), with {placeholders} for str.format."""
    path = prompt_file(name)
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as error:
        raise ConfigError(f"prompt {name!r}: no file {path}") from error


def _attribute(value: str) -> str:
    return " ".join(value.split()).replace('"', "'").replace("<", "‹").replace(">", "›")


def render_sources(passages: Sequence[Passage]) -> str:
    """The passages as numbered <source> blocks; article text cannot close its block."""
    template = load_prompt("source")
    blocks = []
    for number, passage in enumerate(passages, start=1):
        text = " ".join(marked_text(passage).split())
        text = re.sub(r"</?\s*source", lambda m: m.group().replace("<", "‹"), text, flags=re.I)
        blocks.append(
            template.format(
                number=number,
                title=_attribute(passage.title),
                outlet=_attribute(passage.source or "unknown"),
                date=_attribute(format_date(passage.published) or "unknown"),
                text=text,
            )
        )
    return "\n\n".join(blocks)


def marked_text(passage: Passage) -> str:
    """The passage's text with each transcript turn opened by who speaks ("[Jen Psaki, Press
    Secretary]", "[Reporter's question]") in place of its label, so the model knows who said
    what even where an excerpt cut the label."""
    turns = passage_turns(passage)
    if not turns:
        return passage.text
    pieces, at = [], 0
    for turn in turns:
        pieces += [passage.text[at : turn.start], f" [{speaker_mark(turn)}] "]
        at = turn.body
    pieces.append(passage.text[at:])
    return "".join(pieces)


def speaker_mark(turn: Turn) -> str:
    if turn.is_question:
        return "Reporter's question"
    role = turn.role if turn.role and turn.role.lower() not in turn.speaker.lower() else ""
    return f"{turn.speaker}, {role}" if role else turn.speaker


def answer_messages(
    question: str, passages: Sequence[Passage], *, today: date | None = None
) -> list[ChatMessage]:
    """The chat messages that ask the LLM to answer from the numbered passages."""
    from llama_index.core.llms import ChatMessage

    system = load_prompt("answer").format(
        today=format_date((today or date.today()).isoformat()), refusal=REFUSAL
    )
    user = load_prompt("answer-user").format(
        sources=render_sources(passages), question=" ".join(question.split())
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


def condense_messages(question: str, history: Sequence[tuple[str, str]]) -> list[ChatMessage]:
    from llama_index.core.llms import ChatMessage

    turns = "\n".join(
        f"User: {' '.join(user.split())}\nAssistant: {' '.join(reply.split())[:600]}"
        for user, reply in history[-4:]
    )
    prompt = load_prompt("condense").format(history=turns, question=" ".join(question.split()))
    return [ChatMessage(role="user", content=prompt)]


_REFUSAL_WORDS = re.compile(
    r"\b(?:do(?:es)? not|don't|doesn't|cannot|can't|unable to)\s+(?:answer|say|tell)\b|"
    r"\bno information\b|\binsufficient information\b|\bnot (?:mentioned|stated) in the sources\b",
    re.I,
)


def is_refusal(sentence: str) -> bool:
    """Whether a generated sentence is the "cannot answer" sentinel, or says the same."""
    plain = " ".join(re.sub(r"\[[\d,\s-]*\]", "", sentence).split()).strip(" .\"'“”").lower()
    return plain == REFUSAL.rstrip(".").lower() or bool(_REFUSAL_WORDS.search(plain))


class LLMError(NewsAssistantError):
    """The configured LLM server failed or answered nonsense."""


class Generator:
    """An OpenAI-compatible chat model: base URL, model name and key from the settings."""

    def __init__(self, settings: Settings) -> None:
        if not settings.llm_url:
            raise ConfigError("llm_url: no LLM server configured (e.g. http://127.0.0.1:8080/v1)")
        self.settings = settings

    @property
    def mode(self) -> str:
        return f"llm:{self.settings.llm_model}"

    @cached_property
    def llm(self) -> OpenAILike:
        from llama_index.llms.openai_like import OpenAILike

        return OpenAILike(
            model=self.settings.llm_model,
            api_base=self.settings.llm_url,
            api_key=self.settings.llm_api_key or "not-needed",
            is_chat_model=True,
            context_window=32_768,
            max_tokens=self.settings.llm_max_tokens,
            temperature=0.1,
            timeout=self.settings.llm_timeout,
            max_retries=1,
        )

    def stream(self, messages: Sequence[ChatMessage]) -> Iterator[str]:
        """The reply's text as it arrives."""
        try:
            for chunk in self.llm.stream_chat(list(messages)):
                if chunk.delta:
                    yield chunk.delta
        except Exception as error:  # the OpenAI client's errors, from connection to status
            raise LLMError(f"LLM at {self.settings.llm_url} failed: {error}") from error

    def complete(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(self.stream(messages))

    def condense(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """A standalone question, or "" when the reply is not one."""
        reply = self.complete(condense_messages(question, history)).strip()
        reply = re.sub(r"^(?:standalone question|question)\s*:\s*", "", reply, flags=re.I)
        reply = reply.strip().strip('"“”').strip()
        if not reply or "\n" in reply or len(reply) > 300:
            return ""
        return reply
