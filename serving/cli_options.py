"""What the command line's commands share: errors turned into messages, exit codes, LLM options."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from assistant.engine import Engine
from index.errors import NewsAssistantError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PARTIAL = 3  # some input records were bad; the good ones went in
EXIT_INCONSISTENT = 4  # `check` found errors that remain


def errors_to_messages(command: F) -> F:
    """Catch the product's errors at the edge and print them without a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NewsAssistantError as error:
            raise click.ClickException(str(error)) from error
        except ValueError as error:  # settings that fail validation
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


def with_llm_settings(engine: Engine, llm_url: str | None, llm_model: str | None) -> Engine:
    """The engine, or a new one when --llm-url / --llm-model change the settings."""
    changes: dict[str, Any] = {}
    if llm_url:
        changes["llm_url"] = llm_url
    if llm_model:
        changes["llm_model"] = llm_model
    return Engine(engine.settings.with_changes(**changes)) if changes else engine


_LLM_OPTIONS = (
    click.option("--llm-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
    click.option("--llm-model", help="Model name to ask the server for."),
    click.option("--no-llm", is_flag=True, help="Answer extractively even if an LLM is set."),
)


def llm_options(command: F) -> F:
    for option in reversed(_LLM_OPTIONS):
        command = option(command)
    return command


_FILTER_OPTIONS = (
    click.option("--from", "date_from", help="Only articles on or after this date."),
    click.option("--to", "date_to", help="Only articles on or before this date."),
    click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable)."),
)


def filter_options(command: F) -> F:
    """--from, --to and --outlet, read by `serving.inputs.parse_filters`."""
    for option in reversed(_FILTER_OPTIONS):
        command = option(command)
    return command
