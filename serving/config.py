"""The front ends' settings (web app, HTTP API), composed with every lower layer's into the one
object users configure: `AppSettings`, read from `NEWS_ASSISTANT_*` variables and the TOML file."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from assistant.config import Settings
from index.config import ENV_PREFIX, IndexSettings


class AppSettings(Settings):
    """Every knob of the product: the index's, the assistant's and the serving ones below."""

    demo_on_empty: bool = Field(True, description="The web app builds the demo index if empty.")
    concurrency: int = Field(
        4, ge=1, le=64, description="Answers the web UI computes at once (Gradio's queue)."
    )
    max_request_bytes: int = Field(
        65536, ge=1024, description="Largest request body the HTTP API reads."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Other sites' origins allowed to call the API and frame the app; "
        "empty: same origin only.",
    )
    api_token: str | None = Field(
        None, repr=False, description="Bearer token required on /api and /v1; unset: open."
    )
    ui_auth: str | None = Field(
        None,
        repr=False,
        description="'user:password' login for the web UI and its Gradio endpoints.",
    )


def app_settings(settings: Settings) -> AppSettings:
    """`settings` as the front ends read them: itself when it is already an `AppSettings`, else
    the engine's fields with the serving ones at their configured values."""
    if isinstance(settings, AppSettings):
        return settings
    return AppSettings(**settings.model_dump())


# The layers whose fields `settings_table` lists, lowest first: each row's layer is the first
# class here that has the field.
SETTINGS_LAYERS: tuple[tuple[str, type[IndexSettings]], ...] = (
    ("Index (`index.config.IndexSettings`)", IndexSettings),
    ("Assistant (`assistant.config.Settings`)", Settings),
    ("Serving (`serving.config.AppSettings`)", AppSettings),
)


def _default_text(field: FieldInfo) -> str:
    """A field's default as a user would write it; empty for secrets and for none."""
    if field.repr is False:
        return ""
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(f'"{item}"' for item in value) + "]"
    else:
        text = str(value)
    return f"`{text}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def settings_table() -> str:
    """Every setting as a Markdown table, grouped by the layer that adds it (the README's
    configuration table; `python -m serving.config` prints it)."""
    lines = [
        "| setting | env var | default | what it does |",
        "|---|---|---|---|",
    ]
    seen: set[str] = set()
    for title, cls in SETTINGS_LAYERS:
        lines.append(f"| **{title}** | | | |")
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            env = f"`{ENV_PREFIX}{name.upper()}`"
            description = _cell(field.description or "")
            lines.append(f"| `{name}` | {env} | {_default_text(field)} | {description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
