"""Scale: synthetic archives of N chunks, written and then served by the real app.

    python bench/scale.py --chunks 8000 80000 --storage /tmp/scale [--out bench/results/scale.json]

For each N, an archive is built in a storage folder (DIR itself for one N, DIR/chunks-N for
several) through the product's write path (`ChunkStore.write` under the incremental keyword
index, vectors given, so nothing is embedded): the MultiHop-RAG articles, replica 0 as shipped
and replicas 1.. under new ids, with a replica word appended to each chunk and their shipped
vectors plus small noise. The folder then serves every `news-assistant` command. Each row then
measures: write throughput; the time to add one article through `Index.ingest` in a fresh
process, and the keyword index's share of it; then the real app (`news-assistant serve
--api-only`, ingest token set) as a subprocess: spawn to first answered /api/ask, its RSS after
the first search, /api/search p50/p95 over MultiHop-RAG dev questions (timed once the app's CPU
has settled: it loads its chunk model after the first answer), and how long one new
article, sent with `news-assistant ingest` (forwarded to the app), takes to be found by
/api/search. After the rows: the log-log growth exponent of each column and 1M extrapolated.
`--with-rows bench/results/scale.json` adds earlier rows (alone, with no --chunks: prints them).

    python bench/scale.py --reuse /tmp/scale/chunks-80000 --storage /tmp/scale-copies \
        --dense exact hnsw --out bench/results/scale-dense.json

compares dense_search modes on archives already built: each is copied under --storage once,
then the app is served over the copy with each mode in turn (start to first answer, RSS after
the first search, search p50/p95, and the share of each question's passages that the first
mode also gives); no article is added.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from statistics import quantiles
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MULTIHOP = REPO / "data" / "multihop-rag"
NOISE = 0.005  # per component; shipped vectors are unit length over 384 dimensions
TOKEN = "scale-bench-token"
BUILD_FILE = "scale-build.json"  # in a built archive: how it was written
COLUMNS = {  # key: (label, unit)
    "write_chunks_per_s": ("write, vectors given", "chunks/s"),
    "keyword_add_s": ("keyword index: add one article", "s"),
    "rss_gb": ("app RSS after first search", "GB"),
    "start_s": ("app start to first answer", "s"),
    "search_p50_ms": ("search p50", "ms"),
    "search_p95_ms": ("search p95", "ms"),
    "new_article_s": ("one new article searchable by the running app", "s"),
    "api_new_article_s": ("the same, sent to /api/ingest", "s"),
    "peak_gb_while_adding": ("peak memory while adding (app + command)", "GB"),
}


# ---------------------------------------------------------------- building (child process)


def _settings(storage: Path) -> Any:
    from index.config import IndexSettings, quiet_offline_environment

    quiet_offline_environment()
    return IndexSettings(storage_dir=storage)


def _originals(settings: Any) -> list[tuple[Any, list[Any], np.ndarray]]:
    """The MultiHop-RAG articles, their chunks as ingest makes them, and their shipped vectors."""
    from index.demo import demo_corpus, shipped_vectors
    from index.embedding import Embedder, text_key
    from index.loaders import load_paths
    from index.pipeline import IngestReport, chunk_article, dedupe, embedding_text

    embedder = Embedder(settings)
    corpus = demo_corpus("multihop-2023")
    cache = shipped_vectors(corpus, embedder)
    if cache is None:
        raise SystemExit(f"no shipped vectors for {embedder.model_id} in {corpus.folder}")
    rng = np.random.default_rng(0)
    out = []
    for article in dedupe(load_paths(list(corpus.files)), IngestReport()):
        chunks = chunk_article(article, embedder=embedder, settings=settings)
        rows = []
        for chunk in chunks:
            vector = cache.get(text_key(embedder.model_id, embedding_text(article, chunk)))
            if vector is None:  # not expected: the shipped vectors cover the corpus
                vector = rng.standard_normal(embedder.dimensions).astype(np.float32)
            rows.append(vector)
        if chunks:
            out.append((article, chunks, np.stack(rows)))
    return out


def _replica(article: Any, chunks: list[Any], replica: int) -> tuple[Any, list[Any]]:
    """Replica 0 is the article as shipped; others get a new id and a word of their own."""
    if replica == 0:
        return article, chunks
    word = f"replica{replica}"
    copy = dataclasses.replace(
        article, id=f"{article.id}-r{replica}", body=f"{article.body} {word}"
    )
    return copy, [dataclasses.replace(c, text=f"{c.text} {word}") for c in chunks]


def _noisy(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = vectors + rng.normal(0.0, NOISE, vectors.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def build(storage: Path, target: int) -> dict[str, Any]:
    """Write about `target` chunks through ChunkStore.write, in the pipeline's write batches."""
    from index.pipeline import article_metadata, chunk_id, chunk_metadata
    from index.store import ChunkStore

    settings = _settings(storage)
    originals = _originals(settings)
    store = ChunkStore(settings)
    store.take_for_writing()
    store.collection  # noqa: B018 - made now, so the keyword index starts in step with it
    store.sync_keyword_index(force=True)
    batch_chunks = settings.embed_batch_size * 8  # as index.pipeline writes
    rng = np.random.default_rng(1)
    batch: dict[str, list[Any]] = {"ids": [], "vectors": [], "documents": [], "metadatas": []}
    written, seconds, replica, articles = 0, 0.0, 0, 0

    def flush() -> None:
        nonlocal seconds
        started = time.perf_counter()
        store.write(
            ids=batch["ids"],
            vectors=np.concatenate(batch["vectors"]),
            documents=batch["documents"],
            metadatas=batch["metadatas"],
        )
        seconds += time.perf_counter() - started
        for values in batch.values():
            values.clear()
        if written // 20_000 > (written - batch_chunks) // 20_000:
            print(f"{written} chunks, {written / seconds:.0f}/s", file=sys.stderr, flush=True)

    with store.incremental_keyword():
        while written < target:
            for original, original_chunks, vectors in originals:
                if written >= target:
                    break
                article, chunks = _replica(original, original_chunks, replica)
                shared = article_metadata(article)
                for chunk in chunks:
                    batch["ids"].append(chunk_id(article, chunk))
                    batch["documents"].append(chunk.text)
                    batch["metadatas"].append(
                        chunk_metadata(article, chunk, len(chunks), shared=shared)
                    )
                batch["vectors"].append(vectors if replica == 0 else _noisy(vectors, rng))
                written += len(chunks)
                articles += 1
                if len(batch["ids"]) >= batch_chunks:
                    flush()
            replica += 1
        if batch["ids"]:
            flush()
    started = time.perf_counter()
    store.keyword.settle()  # what was written is searchable; the last merge may still run
    built = {
        "merge_wait_s": time.perf_counter() - started,
        "chunks": store.count(),
        "articles": articles,
        "replicas": replica,
        "write_seconds": seconds,
        "write_chunks_per_s": written / seconds,
        "keyword_chunks": len(store.keyword.records),
    }
    (storage / BUILD_FILE).write_text(json.dumps(built))
    return {**built, **prepare(storage)}


def prepare(storage: Path) -> dict[str, Any]:
    """What an archive written by ingest has and one written by `build` lacks: the syndication
    signatures of its articles (an ingest makes them as it goes; made here at once), and the
    keyword index's saved columns (made by the first process that loads an older folder)."""
    from index.pipeline import load_syndication
    from index.store import ChunkStore

    started = time.perf_counter()
    store = ChunkStore(_settings(storage))
    store.sync_keyword_index(force=True)
    load_syndication(store).save()
    return {"prepare_s": time.perf_counter() - started}


def new_article(tag: str, when: str = "2023-12-20") -> dict[str, str]:
    """An article that no replica holds, findable by its word `tag`."""
    body = (
        f"The harbour authority said on Tuesday that {tag} would be the name of its new ferry. "
        "The vessel carries four hundred passengers and enters service in the spring. "
        f"Officials said {tag} was chosen by a vote of local schoolchildren."
    )
    return {
        "id": f"scale-{tag}",
        "title": f"Harbour names new ferry {tag}",
        "body": body,
        "source": "Scale Bench Gazette",
        "published_at": when,
        "url": f"https://example.org/{tag}",
    }


def add_one(storage: Path, tag: str) -> dict[str, Any]:
    """Index.ingest of one new article in a fresh process (its vectors given): the whole
    ingest's time, and the part spent putting it into the keyword index."""
    from index.archive import Index
    from index.articles import Article
    from index.embedding import VectorCache, text_key
    from index.loaders import load_paths
    from index.pipeline import chunk_article, embedding_text

    settings = _settings(storage)
    index = Index(settings)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "new.jsonl"
        path.write_text(json.dumps(new_article(tag)) + "\n", encoding="utf-8")
        article = next(a for a in load_paths([path]) if isinstance(a, Article))
        texts = [
            embedding_text(article, c)
            for c in chunk_article(article, embedder=index.embedder, settings=settings)
        ]
        rng = np.random.default_rng(2)
        vectors = _noisy(rng.standard_normal((len(texts), 384)).astype(np.float32), rng)
        cache = VectorCache.from_pairs(
            {text_key(index.embedder.model_id, t): v for t, v in zip(texts, vectors, strict=True)}
        )
        keyword = index.store.keyword
        apply, spent = keyword.apply, [0.0]

        def timed_apply(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return apply(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        keyword.apply = timed_apply  # type: ignore[method-assign]
        started = time.perf_counter()
        report = index.ingest([path], vector_cache=cache, progress=False)
        seconds = time.perf_counter() - started
    return {"added": report.added, "ingest_s": seconds, "keyword_add_s": spent[0]}


# ---------------------------------------------------------------- the running app


def _post(url: str, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli() -> list[str]:
    return [str(Path(sys.executable).with_name("news-assistant"))]


def _env() -> dict[str, str]:
    return {**os.environ, "NEWS_ASSISTANT_INGEST_TOKEN": TOKEN}


def _rss_gb(pid: int, missing: float | None = None) -> float:
    """A process's RSS and its children's; `missing` when it has exited (else it raises)."""
    import psutil

    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        total += sum(child.memory_info().rss for child in process.children(recursive=True))
    except psutil.NoSuchProcess:
        if missing is None:
            raise
        return missing
    return float(total / 1e9)


def _wait_settled(pid: int, *, limit: float = 60.0) -> float:
    """Seconds until the app's CPU use stays under a fifth of a core for a second: what it
    loads after its first answer (the chunk model of an app that takes articles) is loaded
    before searches are timed."""
    import psutil

    process, started = psutil.Process(pid), time.perf_counter()
    while time.perf_counter() - started < limit and process.cpu_percent(interval=1.0) >= 20:
        pass
    return time.perf_counter() - started


def _wait_first_answer(base: str, app: subprocess.Popen[bytes], question: str) -> float:
    started = time.perf_counter()
    while True:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with {app.returncode} before answering")
        try:
            _post(f"{base}/api/ask", {"question": question, "use_llm": False}, timeout=300)
            return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.perf_counter() - started > 900:
                raise
            time.sleep(0.25)


def _search_latencies(base: str, questions: list[str]) -> tuple[list[float], list[list[str]]]:
    """Each question's /api/search time, and its passages' chunk ids."""
    out, passages = [], []
    for question in questions:
        started = time.perf_counter()
        got = _post(f"{base}/api/search", {"question": question})
        out.append(time.perf_counter() - started)
        passages.append([p["chunk_id"] for p in got["passages"]])
    return out, passages


def _found(base: str, tag: str) -> bool:
    got = _post(f"{base}/api/search", {"question": f"ferry {tag}"})
    return any(tag in p["text"] or tag in p["title"] for p in got["passages"])


def _new_article_via_cli(storage: Path, base: str, tag: str, app_pid: int) -> dict[str, Any]:
    """Send one article with `news-assistant ingest` and poll /api/search until it is found;
    the app's and the command's memory together, at its highest while this goes on."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "new.jsonl"
        path.write_text(json.dumps(new_article(tag)) + "\n", encoding="utf-8")
        started = time.perf_counter()
        command = subprocess.Popen(
            [*_cli(), "--storage", str(storage), "ingest", "--quiet", str(path)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        polls, found_s, peak = 0, None, 0.0
        while found_s is None and time.perf_counter() - started < 1800:
            polls += 1
            peak = max(peak, _rss_gb(app_pid) + _rss_gb(command.pid, missing=0.0))
            if _found(base, tag):
                found_s = time.perf_counter() - started
            else:
                time.sleep(0.2)
        output, _ = command.communicate(timeout=600)
        cli_s = time.perf_counter() - started
    return {
        "new_article_s": found_s,
        "cli_s": cli_s,
        "cli_rc": command.returncode,
        "cli_output": output.decode(errors="replace")[-400:],
        "polls": polls,
        "peak_gb_while_adding": peak,
    }


def _new_article_via_api(base: str, tag: str) -> dict[str, Any]:
    """POST one article to the app's /api/ingest and time it until /api/search finds it."""
    request = urllib.request.Request(
        f"{base}/api/ingest",
        json.dumps({"articles": [new_article(tag)]}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=1800) as response:
        response.read()
    ingest_s = time.perf_counter() - started
    while not _found(base, tag) and time.perf_counter() - started < 1800:
        time.sleep(0.05)
    return {"api_ingest_s": ingest_s, "api_new_article_s": time.perf_counter() - started}


def measure_app(
    storage: Path, questions: list[str], tag: str | None, *, dense: str | None = None
) -> dict[str, Any]:
    """The app over `storage`: spawn to first answer, RSS after the first search, search
    p50/p95; then, with `tag`, one new article sent and timed (else nothing is written to the
    archive but the app's log, and each question's passages come back). `dense`: the
    dense_search setting (default: the settings')."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (storage / "scale-app.log").open("wb")
    env = _env() if dense is None else {**_env(), "NEWS_ASSISTANT_DENSE_SEARCH": dense}
    serve = ["serve", "--api-only", "--no-demo", "-q", "--port", str(port)]
    app = subprocess.Popen(
        [*_cli(), "--storage", str(storage), *serve],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        start_s = _wait_first_answer(base, app, questions[0])
        _post(f"{base}/api/search", {"question": questions[1]})
        settled_s = _wait_settled(app.pid)  # an app that takes articles loads its model now
        rss = _rss_gb(app.pid)
        latencies, passages = _search_latencies(base, questions[2:])
        new: dict[str, Any] = {"passages": passages}
        if tag:
            new = _new_article_via_cli(storage, base, tag, app.pid)
            new.update(_new_article_via_api(base, f"{tag}api"))
        rss_after = _rss_gb(app.pid)
    finally:
        app.terminate()
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
        log.close()
    cuts = quantiles(latencies, n=20)
    return {
        "start_s": start_s,
        "settled_s": settled_s,
        "rss_gb": rss,
        "rss_gb_after_ingest" if tag else "rss_gb_after_searches": rss_after,
        "search_p50_ms": 1000 * cuts[9],
        "search_p95_ms": 1000 * cuts[18],
        "searches": len(latencies),
        **new,
    }


def compare_dense(sources: list[Path], copies: Path, modes: list[str], searches: int) -> list[Any]:
    """`measure_app` with each dense_search mode in turn, on a copy of each built archive
    (made under `copies` once; the original is left as it is), and how many of each question's
    passages every mode shares with the first."""
    import shutil

    from index.config import IndexSettings
    from index.store import ChunkStore

    questions, rows = _questions(searches), []
    for source in sources:
        storage = copies / source.name
        if not storage.exists():
            print(f"copying {source} to {storage} ...", file=sys.stderr, flush=True)
            shutil.copytree(source, storage)
        chunks = ChunkStore(IndexSettings(storage_dir=storage)).count()
        first = None
        for mode in modes:
            print(f"[{chunks}] dense search {mode} ...", file=sys.stderr, flush=True)
            row: dict[str, Any] = {"chunks": chunks, "storage": str(storage), "dense_search": mode}
            row["load_before"] = os.getloadavg()
            row.update(measure_app(storage, questions, None, dense=mode))
            row["load_after"] = os.getloadavg()
            first = first or row["passages"]
            pairs = list(zip(first, row["passages"], strict=True))
            row["same_passages"] = float(
                np.mean([len({*a} & {*b}) / len(a or [0]) for a, b in pairs])
            )
            row["same_first"] = float(np.mean([a[:1] == b[:1] for a, b in pairs]))
            rows.append(row)
    return rows


def dense_table(rows: list[dict[str, Any]]) -> str:
    first = rows[0]["dense_search"] if rows else ""
    lines = [
        "| chunks | dense search | app RSS after first search | app start to first answer "
        f"| search p50 / p95 | passages shared with {first} (first passage) | load avg |",
        "|" + "---|" * 7,
    ]
    for r in rows:
        lines.append(
            f"| {_size(r['chunks'])} ({r['chunks']}) | {r['dense_search']} "
            f"| {_fmt('rss_gb', r['rss_gb'])} | {_fmt('start_s', r['start_s'])} "
            f"| {r['search_p50_ms']:.0f} / {r['search_p95_ms']:.0f} ms "
            f"| {r['same_passages']:.3f} ({r['same_first']:.2f}) "
            f"| {r['load_before'][0]:.1f}, {r['load_after'][0]:.1f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- rows, fit, report


def _child(kind: str, storage: Path, arg: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--storage", str(storage), "--arg", arg],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if out.returncode:
        raise RuntimeError(f"{kind} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _questions(count: int) -> list[str]:
    queries = json.loads((MULTIHOP / "queries-dev.json").read_text(encoding="utf-8"))
    return [str(q["query"]) for q in queries[: count + 2]]


def measure_row(target: int, storage: Path, searches: int) -> dict[str, Any]:
    if storage.exists() and any(storage.iterdir()):
        raise SystemExit(f"{storage} is not empty: give a new folder (nothing is deleted)")
    storage.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"target": target, "storage": str(storage)}
    row["load_before"] = os.getloadavg()
    started = time.perf_counter()
    print(f"[{target}] building in {storage} ...", file=sys.stderr, flush=True)
    row.update(_child("build", storage, str(target)))
    print(f"[{target}] built: {row['write_chunks_per_s']:.0f} chunks/s", file=sys.stderr)
    row.update(_child("add", storage, f"kwadd{target}"))
    print(f"[{target}] one article: {row['keyword_add_s']:.2f} s keyword", file=sys.stderr)
    row.update(measure_app(storage, _questions(searches), f"appnew{target}"))
    row["load_after"] = os.getloadavg()
    row["row_seconds"] = time.perf_counter() - started
    print(f"[{target}] done in {row['row_seconds']:.0f} s", file=sys.stderr, flush=True)
    return row


def measure_built(source: Path, copies: Path, searches: int) -> dict[str, Any]:
    """A row for an archive built earlier (by `--chunks`): copied under `copies` (the original
    is left as it is), prepared (see `prepare`), then measured as `measure_row` measures."""
    import shutil

    storage = copies / source.name
    if storage.exists():
        raise SystemExit(f"{storage} exists: give a new --storage (nothing is deleted)")
    print(f"copying {source} to {storage} ...", file=sys.stderr, flush=True)
    shutil.copytree(source, storage)
    started = time.perf_counter()
    os.sync()  # the copy's writeback would otherwise share the disk with the app measured
    row: dict[str, Any] = {"storage": str(storage), "built": str(source)}
    row["sync_s"] = time.perf_counter() - started
    built = source / BUILD_FILE
    if built.exists():
        row.update(json.loads(built.read_text()))
    row["load_before"] = os.getloadavg()
    started = time.perf_counter()
    row.update(_child("prepare", storage, ""))
    target = row.get("chunks", 0)
    print(f"[{target}] prepared in {row['prepare_s']:.0f} s", file=sys.stderr, flush=True)
    stamp = int(time.time())  # a copy may hold the articles an earlier run added
    row.update(_child("add", storage, f"kwadd{target}t{stamp}"))
    row.update(measure_app(storage, _questions(searches), f"appnew{target}t{stamp}"))
    row["load_after"] = os.getloadavg()
    row["row_seconds"] = time.perf_counter() - started
    return row


def _size(chunks: int) -> str:
    return f"{chunks // 1000}k" if chunks >= 1000 else str(chunks)


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-" if key in ("api_new_article_s", "peak_gb_while_adding") else "not found"
    if key == "write_chunks_per_s":
        return f"{value:.0f} chunks/s"
    if "_gb" in key:
        return f"{value:.2f} GB"
    if key.endswith("_ms"):
        return f"{value:.0f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| chunks | write, vectors given | keyword index: add one article (whole ingest) "
        "| app RSS after first search | app start to first answer | search p50 / p95 "
        "| one new article searchable: command / API | peak memory while adding "
        "| load avg (before, after) |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        load = f"{r['load_before'][0]:.1f}, {r['load_after'][0]:.1f}"
        lines.append(
            f"| {_size(r['chunks'])} ({r['chunks']}) "
            f"| {_fmt('write_chunks_per_s', r['write_chunks_per_s'])} "
            f"| {_fmt('keyword_add_s', r['keyword_add_s'])} ({_fmt('ingest_s', r['ingest_s'])}) "
            f"| {_fmt('rss_gb', r['rss_gb'])} | {_fmt('start_s', r['start_s'])} "
            f"| {r['search_p50_ms']:.0f} / {r['search_p95_ms']:.0f} ms "
            f"| {_fmt('new_article_s', r['new_article_s'])} "
            f"/ {_fmt('api_new_article_s', r.get('api_new_article_s'))} "
            f"| {_fmt('peak_gb_while_adding', r.get('peak_gb_while_adding'))} | {load} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict[str, Any]], to: int = 1_000_000) -> dict[str, dict[str, Any]]:
    """Per column: the log-log slope between each pair of neighbouring sizes, the least-squares
    slope over all, and the value at `to` from the fitted line and from the last pair's slope."""
    out: dict[str, dict[str, Any]] = {}
    rows = sorted(rows, key=lambda r: r["chunks"])
    sizes = [r["chunks"] for r in rows]
    for key in COLUMNS:
        values = [r.get(key) for r in rows]
        if len(rows) < 2 or any(v is None or v <= 0 for v in values):
            continue
        x = np.log(np.array(sizes, dtype=float))
        y = np.log(np.array(values, dtype=float))
        slope, intercept = np.polyfit(x, y, 1)
        pairs = [float((y[i + 1] - y[i]) / (x[i + 1] - x[i])) for i in range(len(x) - 1)]
        out[key] = {
            "exponent": float(slope),
            "pair_exponents": pairs,
            "at_1m": float(math.exp(intercept) * to**slope),
            "at_1m_last_pair": float(values[-1] * (to / sizes[-1]) ** pairs[-1]),
        }
    return out


def growth_table(fit: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| column | exponent, fit over all | exponent, each step | 1M, from the fit "
        "| 1M, from the last step |",
        "|---|---|---|---|---|",
    ]
    for key, (label, _unit) in COLUMNS.items():
        if key in fit:
            got = fit[key]
            steps = ", ".join(f"{e:.2f}" for e in got["pair_exponents"])
            lines.append(
                f"| {label} | {got['exponent']:.2f} | {steps} | {_fmt(key, got['at_1m'])} "
                f"| {_fmt(key, got['at_1m_last_pair'])} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, nargs="*", default=[], help="Sizes to build.")
    parser.add_argument("--storage", type=Path, help="A new or empty folder.")
    parser.add_argument("--searches", type=int, default=50, help="Timed /api/search questions.")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    parser.add_argument(
        "--with-rows", type=Path, help="A scale.json whose rows join these in the table and fit."
    )
    parser.add_argument(
        "--reuse", type=Path, nargs="*", default=[], help="Built archives: compare --dense modes."
    )
    parser.add_argument("--dense", nargs="*", default=["exact", "hnsw"], help="With --reuse.")
    parser.add_argument(
        "--built", type=Path, nargs="*", default=[], help="Archives built earlier: measure them."
    )
    parser.add_argument("--child", choices=["build", "add", "prepare"], help=argparse.SUPPRESS)
    parser.add_argument("--arg", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build":
        print(json.dumps(build(args.storage, int(args.arg))))
        return
    if args.child == "add":
        print(json.dumps(add_one(args.storage, args.arg)))
        return
    if args.child == "prepare":
        print(json.dumps(prepare(args.storage)))
        return
    if (args.chunks or args.reuse or args.built) and not args.storage:
        parser.error("--storage is needed to build (or to copy the archives to)")
    several = len(args.chunks) > 1
    rows = json.loads(args.with_rows.read_text())["rows"] if args.with_rows else []
    commands = json.loads(args.with_rows.read_text())["commands"] if args.with_rows else []
    commands.append(" ".join(["python", "bench/scale.py", *sys.argv[1:]]))
    if args.reuse:
        rows = compare_dense(args.reuse, args.storage, args.dense, args.searches)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"commands": commands, "cores": os.cpu_count(), "rows": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(dense_table(rows))
        return
    jobs = [(t, None) for t in args.chunks] + [(0, b) for b in args.built]
    for target, built in jobs:
        if built is not None:
            rows.append(measure_built(built, args.storage, args.searches))
        else:
            storage = args.storage / f"chunks-{target}" if several else args.storage
            rows.append(measure_row(target, storage, args.searches))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fit = growth(rows)
        result = {"commands": commands, "cores": os.cpu_count(), "rows": rows}
        args.out.write_text(json.dumps({**result, "growth": fit}, indent=2) + "\n")
    rows.sort(key=lambda r: r["chunks"])
    print(table(rows))
    if len(rows) > 1:
        print()
        print(growth_table(growth(rows)))


if __name__ == "__main__":
    main()
