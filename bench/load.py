"""Load on the HTTP API: concurrent clients, latency percentiles, errors, memory; ingest meanwhile.

    python bench/load.py [--clients 16] [--requests 200] [--time-limit 300]
                         [--endpoints search,ask] [--torch-threads 1,2]
                         [--ingest-while-serving] [--out bench/results/load.json]

Serves the demo index with `python app.py` in a subprocess on a free loopback port, once per
torch thread count, and for each endpoint sends `--requests` questions from `--clients` threads
(stopping at `--time-limit` seconds). Before the load it takes single-client latencies as a
baseline. With --ingest-while-serving it also runs the app over a `chroma run` server while
`news-assistant ingest` adds a batch of articles from another process, and counts the errors
the searches in flight meet.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
CHROMA = Path(sys.executable).parent / "chroma"
QUESTIONS = (
    "What did Lavrov say about NATO expansion?",
    "What did the White House say about inflation?",
    "How much money does the infrastructure law give to broadband?",
    "What did the President say about sanctions on Russia?",
    "What help did the United States send to Ukraine?",
    "What did the administration do about gas prices?",
    "Who was nominated to the Supreme Court?",
    "What does the CHIPS Act do for semiconductors?",
    "What did the White House say about COVID-19 boosters?",
    "What was announced about student loan relief?",
    "What did the Inflation Reduction Act change for prescription drugs?",
    "What did the President say about the State of the Union?",
    "What security guarantees did Russia ask for?",
    "How many jobs did the economy add?",
    "What was said about climate and clean energy?",
    "What did the White House announce about baby formula?",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(storage: Path, **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "NEWS_ASSISTANT_CONFIG": os.devnull,
        "NEWS_ASSISTANT_STORAGE_DIR": str(storage),
    }
    env.update({f"NEWS_ASSISTANT_{k.upper()}": v for k, v in settings.items()})
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@contextmanager
def _process(command: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[int]:
    """Run a server until the block ends; yields its pid once `ready` (a URL) answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[1]} exited: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[1]} did not answer at {ready}")
            try:
                if httpx.get(ready, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _app(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "app.py", "--port", str(port), "--quiet", "--no-demo"]
    with _process(command, env, f"{url}/api/health", log) as pid:
        yield url, pid


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def _body(endpoint: str, question: str) -> dict[str, Any]:
    return {"question": question, "k": 8} if endpoint == "search" else {"question": question}


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def drive(
    url: str, endpoint: str, *, clients: int, requests: int, time_limit: float
) -> dict[str, Any]:
    """`requests` questions from `clients` threads, each waiting for its answer before the next."""
    latencies: list[float] = []
    errors: list[str] = []
    issued = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit

    def client() -> None:
        with httpx.Client(base_url=url, timeout=time_limit) as http:
            while True:
                with lock:
                    if issued[0] >= requests or time.monotonic() > deadline:
                        return
                    number = issued[0]
                    issued[0] += 1
                question = QUESTIONS[number % len(QUESTIONS)]
                started = time.perf_counter()
                try:
                    response = http.post(f"/api/{endpoint}", json=_body(endpoint, question))
                    ok = response.status_code == 200 and (
                        endpoint != "search" or bool(response.json()["passages"])
                    )
                    failure = "" if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as error:
                    failure = f"{type(error).__name__}: {error}"
                took = time.perf_counter() - started
                with lock:
                    (errors.append(failure) if failure else latencies.append(took))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": issued[0],
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2) if wall else 0.0,
        "p50_s": round(_percentile(latencies, 0.50), 3),
        "p95_s": round(_percentile(latencies, 0.95), 3),
        "p99_s": round(_percentile(latencies, 0.99), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
    }


def single_client(url: str, endpoint: str, *, count: int) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post(f"/api/{endpoint}", json=_body(endpoint, QUESTIONS[0]))  # warm up
        times = []
        for question in QUESTIONS[:count]:
            started = time.perf_counter()
            http.post(f"/api/{endpoint}", json=_body(endpoint, question)).raise_for_status()
            times.append(time.perf_counter() - started)
    return {"endpoint": endpoint, "requests": count, "median_s": round(median(times), 3)}


def second_writer(storage: Path, work: Path) -> dict[str, Any]:
    """What `ingest` does while the app serves the same embedded folder: it must refuse."""
    started = time.perf_counter()
    done = _cli(_env(storage), "ingest", "-q", str(_batch(work, 1)))
    return {
        "exit": done.returncode,
        "seconds": round(time.perf_counter() - started, 2),
        "message": done.stderr.strip()[-400:],
    }


def serve_and_load(
    args: argparse.Namespace, storage: Path, work: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    runs = []
    refused: dict[str, Any] = {}
    for threads in args.torch_threads:
        env = _env(storage, torch_threads=str(threads))
        with _app(env, work / f"app-{threads}.log") as (url, pid):
            rss_before = _rss_mb(pid)
            refused = refused or second_writer(storage, work)
            for endpoint in args.endpoints:
                alone = single_client(url, endpoint, count=args.baseline)
                for round_ in range(1, args.rounds + 1):
                    loaded = drive(
                        url,
                        endpoint,
                        clients=args.clients,
                        requests=args.requests,
                        time_limit=args.time_limit,
                    )
                    runs.append(
                        {
                            "torch_threads": threads,
                            "round": round_,
                            **loaded,
                            "single_client_median_s": alone["median_s"],
                            "rss_before_mb": round(rss_before, 1),
                            "rss_after_mb": round(_rss_mb(pid), 1),
                        }
                    )
                    _print_run(runs[-1])
    return runs, refused


def _batch(folder: Path, count: int) -> Path:
    """Articles unlike the demo's, so the searches can tell when they have arrived."""
    path = folder / "batch.jsonl"
    rows = [
        {
            "id": f"load-batch-{n}",
            "title": f"Quarry town {n} votes on a new ferry",
            "source": "Bench Gazette",
            "date": "2022-06-01",
            "body": f"Residents of quarry town {n} voted on Sunday to fund a ferry across the "
            f"lake. The ferry will carry {40 + n} cars and start service in autumn. The mayor "
            "said the vote showed the town wanted better links to the mainland.",
        }
        for n in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def ingest_while_serving(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The app over a Chroma server searches while another process ingests into that server."""
    port = _free_port()
    chroma = [str(CHROMA), "run", "--path", str(work / "chroma-db"), "--host", "127.0.0.1"]
    with _process(
        [*chroma, "--port", str(port)],
        {**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        f"http://127.0.0.1:{port}/api/v2/heartbeat",
        work / "chroma.log",
    ):
        served = {"chroma_host": "127.0.0.1", "chroma_port": str(port), "torch_threads": "1"}
        app_env = _env(work / "app-storage", **served)
        demo = _cli(app_env, "demo", "-q")
        if demo.returncode:
            raise RuntimeError(demo.stderr)
        ingest_env = _env(work / "ingest-storage", **served)
        feed = _batch(work, args.ingest_articles)
        with _app(app_env, work / "app-chroma.log") as (url, pid):
            result: dict[str, Any] = {}
            ingest_done = threading.Event()

            def run_ingest() -> None:
                started = time.perf_counter()
                done = _cli(ingest_env, "ingest", "--json", "-q", str(feed))
                result["ingest_seconds"] = round(time.perf_counter() - started, 2)
                result["ingest_exit"] = done.returncode
                result["ingest_report"] = json.loads(done.stdout) if done.stdout else done.stderr
                ingest_done.set()

            writer = threading.Thread(target=run_ingest)
            writer.start()
            during = []
            while not ingest_done.is_set():
                during.append(
                    drive(url, "search", clients=args.clients, requests=64, time_limit=120)
                )
            writer.join()
            deadline = time.monotonic() + 60
            found = False
            while not found and time.monotonic() < deadline:
                time.sleep(1)  # readers look at Chroma every keyword_sync_seconds
                response = httpx.post(
                    f"{url}/api/search",
                    json={"question": "quarry town ferry vote", "k": 3},
                    timeout=120,
                )
                found = any(
                    p["source"] == "Bench Gazette" for p in response.json().get("passages", [])
                )
            result.update(
                {
                    "searches_during_ingest": sum(r["requests"] for r in during),
                    "errors_during_ingest": sum(r["errors"] for r in during),
                    "error_samples": [s for r in during for s in r["error_samples"]][:5],
                    "p95_during_ingest_s": max((r["p95_s"] for r in during), default=None),
                    "new_articles_found_after": found,
                    "rss_mb": round(_rss_mb(pid), 1),
                }
            )
    return result


def _print_run(run: dict[str, Any]) -> None:
    print(
        f"{run['endpoint']:>6} {run['torch_threads']:>7} {run['round']:>5} {run['clients']:>7} "
        f"{run['ok']:>4}/{run['requests']:<4} {run['errors']:>6} {run['throughput_rps']:>7.2f} "
        f"{run['single_client_median_s']:>8.3f} {run['p50_s']:>7.3f} {run['p95_s']:>7.3f} "
        f"{run['p99_s']:>7.3f} {run['rss_before_mb']:>7.0f} {run['rss_after_mb']:>7.0f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="Per endpoint and setting.")
    parser.add_argument("--time-limit", type=float, default=300, help="Seconds per load run.")
    parser.add_argument("--baseline", type=int, default=8, help="Single-client requests.")
    parser.add_argument("--rounds", type=int, default=1, help="Load runs per endpoint (memory).")
    parser.add_argument(
        "--endpoints", type=lambda s: s.split(","), default=["search", "ask"], help="search,ask"
    )
    parser.add_argument(
        "--torch-threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2]
    )
    parser.add_argument("--storage", type=Path, help="A demo index to reuse (built if empty).")
    parser.add_argument("--ingest-while-serving", action="store_true")
    parser.add_argument("--ingest-articles", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        work = Path(tmp)
        storage = args.storage or work / "storage"
        built = _cli(_env(storage), "demo", "-q")
        if built.returncode:
            raise SystemExit(built.stderr)
        print(f"demo index: {built.stdout.strip()}  ({storage})")
        print(
            "endpoint threads round clients   ok/req errors     rps  alone_s   p50_s   p95_s "
            "  p99_s rss0_mb rss1_mb"
        )
        runs, refused = serve_and_load(args, storage, work)
        print(f"a second process ingesting into the served folder: exit {refused['exit']}")
        concurrent = ingest_while_serving(args, work) if args.ingest_while_serving else None
        if concurrent:
            print(
                f"ingest while serving (Chroma server): {concurrent['searches_during_ingest']} "
                f"searches during a {concurrent['ingest_seconds']}s ingest of "
                f"{args.ingest_articles} articles, {concurrent['errors_during_ingest']} errors, "
                f"new articles found after: {concurrent['new_articles_found_after']}"
            )
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "clients": args.clients,
            "requests": args.requests,
            "time_limit_s": args.time_limit,
            "endpoints": args.endpoints,
            "torch_threads": args.torch_threads,
            "rounds": args.rounds,
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        },
        "runs": runs,
        "embedded_second_writer": refused,
        "ingest_while_serving": concurrent,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
