"""Take docs/screenshot.png: the real app over the demo index, answering the demo question.

    .venv/bin/python docs/make_screenshot.py [--storage DIR]

Starts `app.py` (which builds the demo index into an empty store), asks in Debian's Chromium,
opens source [1] and saves the page."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What did Lavrov say about NATO expansion?"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, help="Store to use (default: a new temp dir).")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    args = parser.parse_args()
    storage = args.storage or Path(tempfile.mkdtemp()) / "storage"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NEWS_ASSISTANT_STORAGE_DIR": str(storage)}
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env)
    try:
        for _ in range(1200):
            try:
                httpx.get(f"{url}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "app.py exited"
                time.sleep(0.5)
        shoot(url, args.out)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium
        browser = chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        page.goto(url)
        page.locator("#na-question textarea").fill(QUESTION)
        page.locator("#na-ask").click()
        page.locator("#na-chat a.na-cite").first.wait_for(timeout=180_000)
        page.locator("#na-chat a.na-cite").first.click()
        page.mouse.move(0, 0)
        time.sleep(1.5)  # let the card's highlight fade
        page.screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    main()
