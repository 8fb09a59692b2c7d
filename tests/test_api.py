"""The HTTP API over a real server: JSON endpoints, the OpenAI-compatible chat, auth and CORS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, XSS_QUESTION, LiveServer, free_port

DEMO_QUESTION = "What did Lavrov say about NATO expansion?"
CITATION_FIELDS = {
    "number",
    "article_id",
    "chunk_id",
    "title",
    "source",
    "published",
    "url",
    "author",
    "quote",
    "quote_start",
    "quote_end",
    "passage",
    "passage_start",
    "passage_end",
    "passage_spans",
    "quote_offset",
}
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def api(web_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web_server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def guarded_server(web_engine: Any) -> Iterator[LiveServer]:
    """The same engine served with an API token and a UI login."""
    from serving.web import create_app

    settings = web_engine.settings.with_changes(api_token=TOKEN, ui_auth="reader:pass word")
    with LiveServer(create_app(web_engine, settings)) as server:
        yield server


def test_health_reports_the_corpus_and_the_mode(api: httpx.Client) -> None:
    body = api.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["articles"] >= 10 and body["chunks"] > body["articles"]
    assert body["mode"] == "extractive"


def test_search_returns_passages_with_their_articles(api: httpx.Client) -> None:
    response = api.post("/api/search", json={"question": DEMO_QUESTION, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert len(body["passages"]) == 3
    top = body["passages"][0]
    assert top["source"] == "TASS" and "Lavrov" in top["text"]
    assert top["start"] < top["end"] and top["published"] == "2022-01-28"
    assert body["timings"]["total"] > 0


def test_search_filters_by_outlet_and_date(api: httpx.Client) -> None:
    only_tass = api.post(
        "/api/search", json={"question": "security guarantees", "outlets": ["TASS"], "k": 5}
    ).json()
    assert only_tass["passages"] and {p["source"] for p in only_tass["passages"]} == {"TASS"}
    before = api.post(
        "/api/search",
        json={"question": DEMO_QUESTION, "date_to": "2022-01-27", "k": 10},
    ).json()
    assert before["passages"]
    assert all(p["published"] <= "2022-01-27" for p in before["passages"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": "x" * 2001}, "question: String should have at most 2000 characters"),
        ({"question": "   "}, "question"),
        ({"question": "NATO", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"question": "NATO", "k": 51}, "k: Input should be less than or equal to 50"),
        ({"question": "NATO", "date_from": "28/01/2022"}, "date_from"),
        ({"question": "NATO", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_requests_out_of_bounds_get_clear_json_errors(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = api.post("/api/search", json=body)
    assert response.status_code == 422
    assert message in response.json()["error"]["message"]


def test_ask_answers_with_citations_and_every_field(api: httpx.Client) -> None:
    response = api.post("/api/ask", json={"question": DEMO_QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["refused"] and body["mode"] == "extractive"
    assert "[1]" in body["answer"]
    first = body["citations"][0]
    assert set(first) >= CITATION_FIELDS
    assert first["number"] == 1 and first["source"] == "TASS"
    assert first["quote"] and first["quote"] in first["passage"]
    offset = first["quote_offset"]
    assert first["passage"][offset : offset + len(first["quote"])] == first["quote"]
    (span_start, _), *_ = first["passage_spans"]
    assert span_start == first["passage_start"]
    assert body["timings"]["total"] > 0


def test_a_date_question_leads_with_its_short_answer_in_every_front_end(
    api: httpx.Client,
) -> None:
    question = "When did the United States and NATO send their written replies to Russia?"
    body = api.post("/api/ask", json={"question": question}).json()
    short = body["short_answer"]
    assert short is not None and short["kind"] == "date", body["answer"]
    assert "26" in short["text"] and body["answer"].startswith(short["text"])
    cited = next(c for c in body["citations"] if c["number"] == short["citation"])
    assert short["text"] in cited["quote"]
    chat = {"model": "news-assistant", "messages": [{"role": "user", "content": question}]}
    completion = api.post("/v1/chat/completions", json=chat).json()
    assert completion["short_answer"] == short
    assert completion["verdict"] is None


def test_ask_takes_history_and_refuses_what_the_corpus_does_not_hold(api: httpx.Client) -> None:
    body = api.post(
        "/api/ask",
        json={
            "question": "Who won the 1986 football world cup final in Mexico City?",
            "history": [
                {"role": "user", "content": DEMO_QUESTION},
                {"role": "assistant", "content": "Lavrov said NATO promised not to expand. [1]"},
            ],
        },
    ).json()
    assert body["refused"] is True
    assert body["citations"] == []


def test_asking_for_an_llm_that_is_not_configured_is_a_400(api: httpx.Client) -> None:
    response = api.post("/api/ask", json={"question": DEMO_QUESTION, "use_llm": True})
    assert response.status_code == 400
    assert "no LLM configured" in response.json()["error"]["message"]


def test_openai_client_gets_answer_and_citations(web_server: LiveServer) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{web_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["news-assistant"]
    completion = client.chat.completions.create(
        model="news-assistant", messages=[{"role": "user", "content": DEMO_QUESTION}]
    )
    text = completion.choices[0].message.content or ""
    assert "[1]" in text
    citations = completion.model_extra["citations"] if completion.model_extra else []
    assert citations[0]["source"] == "TASS" and set(citations[0]) >= CITATION_FIELDS


def test_openai_client_streams_whole_markers_and_cites_at_the_end(
    web_server: LiveServer,
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{web_server.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="news-assistant",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": DEMO_QUESTION},
        ],
        stream=True,
        extra_body={"filters": {"outlets": ["TASS"]}},
    )
    pieces: list[str] = []
    final: Any = None
    for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            assert not re.search(r"\[\d*$", delta), f"half a marker in {delta!r}"
            pieces.append(delta)
        if chunk.choices and chunk.choices[0].finish_reason == "stop":
            final = chunk
    assert final is not None and len(pieces) >= 1
    text = "".join(pieces)
    assert "[1]" in text
    citations = final.model_extra["citations"]
    assert {c["source"] for c in citations} == {"TASS"}
    assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} == {c["number"] for c in citations}


def test_openai_errors_are_json_the_client_understands(web_server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{web_server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="last message must be"):
        client.chat.completions.create(
            model="news-assistant", messages=[{"role": "assistant", "content": "hello"}]
        )


def test_gradio_client_calls_the_named_endpoints(web_server: LiveServer) -> None:
    from gradio_client import Client

    client = Client(web_server.url, verbose=False, analytics_enabled=False, download_files=False)
    passages = client.predict(DEMO_QUESTION, "", "", [], 2, api_name="/search")
    assert len(passages) == 2 and passages[0]["source"] == "TASS"
    answer = client.predict(DEMO_QUESTION, api_name="/ask")
    assert "[1]" in answer["answer"] and answer["citations"][0]["source"] == "TASS"


def test_docs_are_offline_and_schema_is_complete(api: httpx.Client) -> None:
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "POST /api/ask" in docs.text and "POST /v1/chat/completions" in docs.text
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()
    schema = api.get("/openapi.json").json()
    assert {"/api/ask", "/api/search", "/api/health", "/v1/chat/completions", "/v1/models"} <= set(
        schema["paths"]
    )
    ask = schema["components"]["schemas"]["AskRequest"]["properties"]
    assert ask["question"]["maxLength"] == 2000 and ask["k"]["anyOf"][0]["maximum"] == 50


def test_widget_and_web_component_scripts_are_served(api: httpx.Client) -> None:
    widget = api.get("/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    assert "innerHTML" not in widget.text
    loader = api.get("/gradio.js")
    target = re.search(r'import\("\./(assets/[^"]+\.js)"\)', loader.text)
    assert target, loader.text
    assert api.get(f"/{target.group(1)}").status_code == 200


def test_cors_allows_only_the_configured_origins(api: httpx.Client, embed_origin: str) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = api.options("/api/ask", headers={"Origin": embed_origin, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == embed_origin
    denied = api.options("/api/ask", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in denied.headers
    simple = api.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    # Gradio's own routes follow the same list (Gradio skips its CORS when the app has one).
    config = api.get("/config", headers={"Origin": "http://localhost:9"})
    assert "access-control-allow-origin" not in config.headers
    page = api.get("/")
    assert page.headers["content-security-policy"] == f"frame-ancestors 'self' {embed_origin}"


def test_token_guards_api_and_v1_but_not_public_files(guarded_server: LiveServer) -> None:
    with httpx.Client(base_url=guarded_server.url, timeout=120) as client:
        missing = client.get("/api/health")
        assert missing.status_code == 401
        assert client.head("/api/health").status_code == 401
        assert missing.json()["error"]["type"] == "unauthorized"
        assert client.get("/v1/models").status_code == 401
        wrong = client.post(
            "/api/search", json={"question": "NATO"}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        right = client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200
        assert client.get("/widget.js").status_code == 200
    from openai import OpenAI

    models = OpenAI(base_url=f"{guarded_server.url}/v1", api_key=TOKEN, max_retries=0).models
    assert models.list().data[0].id == "news-assistant"


def test_ui_login_guards_the_ui_and_its_gradio_api(guarded_server: LiveServer) -> None:
    with httpx.Client(base_url=guarded_server.url, timeout=60) as client:
        assert client.get("/gradio_api/info").status_code == 401
        bad = client.post("/login", data={"username": "reader", "password": "wrong"})
        assert bad.status_code == 400
        good = client.post("/login", data={"username": "reader", "password": "pass word"})
        assert good.status_code == 200
        assert client.get("/gradio_api/info").status_code == 200


def test_unreachable_store_is_503_with_a_message(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from assistant.engine import Engine
    from serving.web import create_app
    from tests.conftest import make_settings

    down = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=free_port())
    app = create_app(Engine(down))
    with TestClient(app) as client:
        search = client.post("/api/search", json={"question": "NATO"})
        assert search.status_code == 503
        assert "Chroma" in search.json()["error"]["message"]
        health = client.get("/api/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        # What an uptime monitor sends: HEAD, which must say "down" too.
        head = client.head("/api/health")
        assert head.status_code == 503 and head.content == b""
        chat = {"messages": [{"role": "user", "content": "NATO?"}]}
        assert client.post("/v1/chat/completions", json=chat).status_code == 503
        # Streamed, the headers are gone before the store is asked: the error comes in the stream.
        streamed = client.post("/v1/chat/completions", json={**chat, "stream": True})
        assert streamed.status_code == 200
        events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert '"role": "assistant"' in events[0] and events[-1] == "data: [DONE]"
        assert "Chroma" in events[-2] and '"error"' in events[-2]


@pytest.mark.slow
def test_app_py_starts_and_serves(tmp_path: Any) -> None:
    """`python app.py` in a fresh process over an empty store (demo build off): /api/health."""
    port = free_port()
    env = {
        **os.environ,
        "NEWS_ASSISTANT_STORAGE_DIR": str(tmp_path / "storage"),
        "NEWS_ASSISTANT_CONFIG": os.devnull,
    }
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--no-demo", "--quiet"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            assert health.json() == {
                "status": "ok",
                "articles": 0,
                "chunks": 0,
                "outlets": 0,
                "mode": "extractive",
                "message": "",
                "collections": ["news"],  # an empty store: the default only
                "last_updated": None,
            }
            break
        else:
            pytest.fail("app.py did not answer within 180 s")
    finally:
        process.terminate()
        process.wait(timeout=30)


# The API keeps its word: methods, one error shape, strict types, safe URLs, HEAD.

JSON = {"Content-Type": "application/json"}
ENDPOINTS = ("/api/search", "/api/ask", "/v1/chat/completions")
DEEP = b"[" * 10_000 + b"]" * 10_000
USER_ASKS = [{"role": "user", "content": DEMO_QUESTION}]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The documented error body, {"error": {"type", "message"}}; never FastAPI's {"detail"}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and error["type"] and error["message"], body
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    return error


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/ask", "POST"),
        ("PUT", "/api/search", "POST"),
        ("DELETE", "/v1/chat/completions", "POST"),
        ("POST", "/api/health", "GET, HEAD"),
        ("POST", "/v1/models", "GET, HEAD"),
        ("PATCH", "/widget.js", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    api: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path)
    error = error_of(response, 405)
    assert response.headers["allow"] == allow
    assert error["type"] == "method_not_allowed" and f"use {allow}" in error["message"]


def test_an_unknown_api_path_is_404_in_the_error_shape(api: httpx.Client) -> None:
    for path in ("/api/nothing", "/v1/embeddings"):
        error = error_of(api.post(path, json={"input": "NATO"}), 404)
        assert error["type"] == "not_found" and path in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"question": "caf\xe9 \xff"}', "application/json", 400, "not UTF-8"),
        (b"question=NATO", "application/json", 422, "not valid JSON"),
        (b'{"question": "NATO"', "application/json", 422, "not valid JSON"),
        (b'{"question": "NATO"}', "text/plain", 422, "JSON object"),
        (b'["NATO"]', "application/json", 422, "JSON object"),
        (b'{"question": "NATO", "k": 1e400}', "application/json", 422, "k: "),
        (b'{"question": "NATO", "k": ' + b"7" * 5000 + b"}", "application/json", 400, "digits"),
        (DEEP, "application/json", 400, "nested too deeply"),
        (b'{"question": "NATO", "history": ' + DEEP + b"}", "application/json", 400, "nested"),
    ],
    ids=[
        "not-utf8",
        "not-json",
        "cut-short",
        "text-plain",
        "a-list",
        "k-1e400",
        "5000-digits",
        "10000-nested",
        "nested-in-a-field",
    ],
)
def test_malformed_bodies_get_the_error_shape_not_a_500(
    api: httpx.Client, body: bytes, content_type: str, status: int, message: str
) -> None:
    for path in ENDPOINTS:
        response = api.post(path, content=body, headers={"Content-Type": content_type})
        error = error_of(response, status)
        assert error["type"] == "invalid_request_error"
        assert message in error["message"], (path, error)
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/search", {"question": "NATO", "k": True}, "k: Input should be a valid integer"),
        ("/api/search", {"question": "NATO", "k": "5"}, "k: Input should be a valid integer"),
        ("/api/search", {"question": "NATO", "k": 5.0}, "k: Input should be a valid integer"),
        ("/api/search", {"question": 5}, "question: Input should be a valid string"),
        ("/api/search", {"question": "NATO", "outlets": "TASS"}, "outlets: Input should be"),
        ("/api/search", {"question": "NATO", "date_from": 1643328000}, "date_from: use a date"),
        ("/api/search", {"question": "NATO", "date_to": "28 Jan 2022"}, "date_to: use a date"),
        ("/api/ask", {"question": "NATO", "use_llm": "false"}, "use_llm: Input should be a valid"),
        (
            "/api/ask",
            {"question": "NATO", "history": [{"role": "user", "content": "hi", "name": "x"}]},
            "history.0.name: Extra inputs are not permitted",
        ),
        (
            "/api/ask",
            {"question": "NATO", "history": [{"role": "user", "content": 5}]},
            "history.0.content: Input should be a valid string",
        ),
        (
            "/api/ask",
            {"question": "NATO", "history": [{"role": "system", "content": "hi"}]},
            "history.0.role: Input should be 'user' or 'assistant'",
        ),
        ("/api/ask", {"question": "NATO", "colour": "red"}, "colour: Extra inputs"),
        ("/v1/chat/completions", {"messages": USER_ASKS, "k": True}, "k: Input should be"),
        ("/v1/chat/completions", {"messages": USER_ASKS, "k": "5"}, "k: Input should be"),
        ("/v1/chat/completions", {"messages": USER_ASKS, "stream": "yes"}, "stream: Input"),
        ("/v1/chat/completions", {"messages": USER_ASKS, "use_llm": 0}, "use_llm: Input"),
        (
            "/v1/chat/completions",
            {"messages": USER_ASKS, "filters": {"outlet": ["TASS"]}},
            "filters.outlet: Extra inputs are not permitted",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": 5}]},
            "messages.0.content: send a string or a list of",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is on this picture?"},
                            {"type": "image_url", "image_url": {"url": "http://127.0.0.1/a.png"}},
                        ],
                    }
                ]
            },
            'messages.0.content: send a string or a list of {"type": "text", "text": "..."}',
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            "messages.0.content: send a string or a list of",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content: send a string or a list of",
        ),
    ],
)
def test_types_are_strict(api: httpx.Client, path: str, body: dict[str, Any], message: str) -> None:
    error = error_of(api.post(path, json=body), 422)
    assert message in error["message"], error


def test_chat_takes_content_as_text_parts_and_ignores_sampling_fields(api: httpx.Client) -> None:
    parts = [
        {"type": "text", "text": "What did Lavrov say "},
        {"type": "text", "text": "about NATO expansion?"},
    ]
    body = {"messages": [{"role": "user", "content": parts}], "temperature": 0.2, "top_p": 1}
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert "[1]" in completion["choices"][0]["message"]["content"]
    assert completion["citations"][0]["source"] == "TASS"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.tass.com/politics/1394717", "https://www.tass.com/politics/1394717"),
        (" http://example.org/a?b=1 ", "http://example.org/a?b=1"),
        ("HTTPS://Example.org/", "HTTPS://Example.org/"),
        ("javascript:alert(1)", ""),
        ("JavaScript:alert(1)", ""),
        (" \tjavascript:alert(1)", ""),
        ("java\nscript:alert(1)", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        ("vbscript:msgbox(1)", ""),
        ("file:///etc/passwd", ""),
        ("//evil.example/x", ""),
        ("/relative/path", ""),
        ("http:no-host", ""),
        ("http://[::1", ""),
        ("", ""),
    ],
)
def test_only_absolute_http_urls_are_safe(url: str, expected: str) -> None:
    from serving.inputs import safe_url

    assert safe_url(url) == expected


def _urls(records: list[dict[str, Any]]) -> list[str]:
    return [r["url"] for r in records]


def _hostile(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "Zanzibar" in r["title"]]


def _all_http_or_empty(urls: list[str]) -> bool:
    return all(u == "" or u.startswith(("http://", "https://")) for u in urls)


def test_only_http_urls_leave_the_api(api: httpx.Client, web_server: LiveServer) -> None:
    """The hostile article's `javascript:` URL goes out as "" everywhere; https links stay."""
    from gradio_client import Client

    search = api.post("/api/search", json={"question": XSS_QUESTION, "k": 10}).json()["passages"]
    ask = api.post("/api/ask", json={"question": XSS_QUESTION}).json()
    chat = {"messages": [{"role": "user", "content": XSS_QUESTION}]}
    completion = api.post("/v1/chat/completions", json=chat).json()
    streamed = api.post("/v1/chat/completions", json={**chat, "stream": True}).text
    final = [
        json.loads(line.removeprefix("data: "))
        for line in streamed.splitlines()
        if line.startswith("data: {") and '"finish_reason": "stop"' in line
    ]
    client = Client(web_server.url, verbose=False, analytics_enabled=False, download_files=False)
    gradio_search = client.predict(XSS_QUESTION, "", "", [], 10, api_name="/search")
    gradio_ask = client.predict(XSS_QUESTION, api_name="/ask")
    sent = {
        "/api/search": search,
        "/api/ask citations": ask["citations"],
        "/api/ask passages": ask["passages"],
        "/v1 citations": completion["citations"],
        "/v1 streamed citations": final[0]["citations"],
        "gradio /search": gradio_search,
        "gradio /ask citations": gradio_ask["citations"],
        "gradio /ask passages": gradio_ask["passages"],
    }
    for where, records in sent.items():
        assert _hostile(records), f"{where}: the hostile article is not there"
        assert _urls(_hostile(records)) == [""] * len(_hostile(records)), where
        assert _all_http_or_empty(_urls(records)), where
        assert "javascript:" not in json.dumps(records), where
    # A real link is sent as it is.
    white_house = api.post("/api/search", json={"question": "White House sanctions", "k": 10})
    assert any(u.startswith("https://") for u in _urls(white_house.json()["passages"]))


def gradio_call(base: str, name: str, *data: Any) -> tuple[str, str]:
    """A Gradio API endpoint called over raw HTTP: the last event's name and the whole stream."""
    with httpx.Client(base_url=base, timeout=120) as http:
        started = http.post(f"/gradio_api/call/{name}", json={"data": list(data)})
        assert started.status_code == 200, started.text
        stream = http.get(f"/gradio_api/call/{name}/{started.json()['event_id']}").text
    events = re.findall(r"^event: (\w+)$", stream, flags=re.MULTILINE)
    assert events, stream
    return events[-1], stream


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("search", (DEMO_QUESTION, "", "", [], 10_000), "k: send a whole number from 1 to 50"),
        ("search", (DEMO_QUESTION, "", "", [], -5), "k: send a whole number from 1 to 50"),
        ("search", (DEMO_QUESTION, "", "", [], 51), "k: send a whole number from 1 to 50"),
        ("search", (DEMO_QUESTION, "", "", [], True), "k: send a whole number from 1 to 50"),
        ("ask", (DEMO_QUESTION, "", "", [], 10_000), "k: send a whole number from 1 to 50"),
        ("ask", ("", "", "", [], 0), "question: the question is empty"),
        ("ask", ("   ", "", "", [], 0), "question: the question is empty"),
        ("search", ("x" * 2001, "", "", [], 0), "shorten it to at most 2000"),
        ("ask", ("x" * 2001, "", "", [], 0), "shorten it to at most 2000"),
        ("ask", (5, "", "", [], 0), "question: send the question as a string"),
        ("search", (DEMO_QUESTION, "next tuesday-ish", "", [], 0), "date filter"),
        ("search", (DEMO_QUESTION, "", "", "TASS", 0), "outlets: send a list of outlet names"),
    ],
)
def test_gradio_endpoints_keep_the_api_bounds(
    web_server: LiveServer, name: str, args: tuple[Any, ...], message: str
) -> None:
    event, stream = gradio_call(web_server.url, name, *args)
    assert event == "error", stream
    assert message in stream
    assert "Traceback" not in stream and "Error(" not in stream


def test_gradio_endpoints_take_what_the_api_takes(web_server: LiveServer) -> None:
    event, stream = gradio_call(web_server.url, "search", DEMO_QUESTION, "", "", ["TASS"], 50)
    assert event == "complete", stream
    data = json.loads(stream.rsplit("data: ", 1)[1])
    passages = data[0]
    assert 1 <= len(passages) <= 50 and {p["source"] for p in passages} == {"TASS"}


def test_failures_reach_clients_as_a_short_message(
    api: httpx.Client, web_server: LiveServer, web_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside is logged; callers get a sentence, not the exception or its traceback."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals at /srv/app/engine.py")

    monkeypatch.setattr(web_engine, "search", broken)
    event, stream = gradio_call(web_server.url, "search", DEMO_QUESTION, "", "", [], 0)
    assert event == "error" and "searching failed; the server log has the details" in stream
    assert "secret" not in stream and "RuntimeError" not in stream
    response = api.post("/api/search", json={"question": DEMO_QUESTION})
    error = error_of(response, 500)
    assert error["type"] == "internal_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text


@pytest.mark.parametrize(
    "path",
    ["/api/health", "/v1/models", "/docs", "/openapi.json", "/widget.js", "/embed-example.html"],
)
def test_head_answers_like_get_without_a_body(api: httpx.Client, path: str) -> None:
    get, head = api.get(path), api.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and get.content
    for name in ("content-type", "content-length", "content-security-policy"):
        assert head.headers.get(name) == get.headers.get(name), name


def test_head_on_the_page_and_on_a_post_only_route(api: httpx.Client) -> None:
    page = api.head("/")
    assert page.status_code == 200 and page.content == b""
    assert page.headers["content-type"].startswith("text/html")
    ask = api.head("/api/ask")
    assert ask.status_code == 405 and ask.headers["allow"] == "POST" and ask.content == b""
