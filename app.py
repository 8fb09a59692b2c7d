"""The web app's entry point: `python app.py [--host H] [--port P]` (= `news-assistant serve`).

For several worker processes: `uvicorn --factory app:create --workers 4` (one engine each)."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from assistant.cli import cli
from assistant.engine import Engine
from index.config import Settings


def create() -> FastAPI:
    """The app over the configured store, ready to serve (for `uvicorn --factory`)."""
    from assistant.web import create_app, prepare

    engine = Engine(Settings())  # type: ignore[call-arg]
    prepare(engine, progress=False)
    return create_app(engine)


if __name__ == "__main__":
    cli.main(args=["serve", *sys.argv[1:]], prog_name="app.py")
