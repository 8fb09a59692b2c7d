"""The web app's entry point: `python app.py [--host H] [--port P]` (= `news-assistant serve`).

For several worker processes (one engine each), with the connection limits of the settings:
`uvicorn --factory app:create --http serving.server:GuardedHttpProtocol --workers 4`."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from index.config import quiet_offline_environment


def create() -> FastAPI:
    """The app over the configured store, ready to serve (for `uvicorn --factory`)."""
    quiet_offline_environment()
    from assistant.engine import Engine
    from serving.config import AppSettings
    from serving.web import create_app, prepare

    engine = Engine(AppSettings())
    prepare(engine, progress=False)
    return create_app(engine)


if __name__ == "__main__":
    quiet_offline_environment()
    from serving.cli import cli

    cli.main(args=["serve", *sys.argv[1:]], prog_name="app.py")
