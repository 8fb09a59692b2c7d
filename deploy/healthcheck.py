"""Docker health check: exit 0 when URL answers 200 (with the API token when one is set).

python deploy/healthcheck.py http://127.0.0.1:7860/api/health
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main(url: str) -> int:
    request = urllib.request.Request(url)
    token = os.environ.get("NEWS_ASSISTANT_API_TOKEN")
    if token and "/api/" in url and "/api/v2/" not in url:  # /api/health wants the API token
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=8) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status such as 503
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
