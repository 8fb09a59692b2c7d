"""The front ends' settings (web app, HTTP API), composed with every lower layer's into the one
object users configure: `AppSettings`, read from `NEWS_ASSISTANT_*` variables and the TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from assistant.config import Settings
from index.config import ENV_PREFIX, IndexSettings
from index.watch import DEFAULT_EVERY, parse_every


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
        '"*": any site may call the API, without cookies, and frame nothing; '
        "empty: same origin only.",
    )
    api_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token required on /api, /v1 and /gradio_api (where the UI login "
        "also serves); needs ui_auth or serve_ui = false. Unset: open.",
    )
    ui_auth: str | None = Field(
        None,
        repr=False,
        description="'user:password' login for the web UI and its Gradio endpoints.",
    )
    ingest_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token for POST /api/ingest, and what `ingest` sends to a running "
        "app. Unset: the endpoint answers 403.",
    )
    ingest_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request body /api/ingest reads (with a valid ingest token).",
    )
    app_url: str | None = Field(
        None,
        description="The running app `ingest` sends articles to, e.g. http://app:7860; unset: "
        "the one recorded in storage_dir while it holds an embedded store.",
    )
    serve_ui: bool = Field(
        True, description="Serve the web UI at /; false: only /api, /v1, /docs and /widget.js."
    )
    # Connection limits, applied by serving.server's HTTP protocol (docs/operations.md).
    header_timeout: float = Field(
        10.0, gt=0, le=600, description="Seconds a client has to send a request's head; then 408."
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a request's body has after its head; then 408."
    )
    send_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds a reply may sit unread by the client; then cut."
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=600, description="Seconds an idle connection is kept open between requests."
    )
    max_connections: int = Field(
        500, ge=1, description="Connections served at once; requests on more get 503."
    )
    # Read by `news-assistant watch` and by the web app, which polls them in a thread of its own.
    feeds: list[str] = Field(
        default_factory=list,
        description="RSS/Atom feed URLs to keep the archive current from (`watch`, and the web "
        "app while it runs); empty: none.",
    )
    feeds_opml: Path | None = Field(
        None, description="An OPML file whose outlines' xmlUrl are feeds to watch too."
    )
    feeds_every: str = Field(
        DEFAULT_EVERY, description="How often feeds are polled: e.g. 30s, 15m, 1h."
    )

    @field_validator("feeds_every")
    @classmethod
    def _every(cls, every: str) -> str:
        parse_every(every)
        return every

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if problem := origin_problem(origin):
                raise ValueError(problem)
        return origins


def origin_problem(origin: str) -> str | None:
    """Why `origin` cannot be in `cors_origins`, or None when it can."""
    if origin == "*":
        return None
    if origin.strip().lower() == "null":
        # Sandboxed frames and local files send "null": any site can make a request carry it.
        return (
            "cors_origins: 'null' is the origin of sandboxed frames and local files, which any "
            "site can produce; list the embedding site's origin, e.g. 'https://blog.example.org'"
        )
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        return (
            f"cors_origins: {origin!r} is not an origin; write scheme://host[:port] with no path "
            "or trailing slash, e.g. 'https://blog.example.org', or '*'"
        )
    return None


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
