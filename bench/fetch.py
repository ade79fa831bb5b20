"""Pages fetched and extracted per second, with the real fetch code (``worker.sources``).

A local HTTP server on 127.0.0.1 serves ``pages`` generated article pages (navigation, cookie
banner, footer around four paragraphs), optionally answering each request after ``latency``
seconds like a distant site. The same :class:`~worker.sources.Fetcher` and
:func:`~worker.sources.fetch_page` that the fetch worker runs (URL checks, streaming size cap,
trafilatura extraction) fetch them from ``threads`` threads, as a thread-pool worker would.

    python -m bench.fetch                       # table and JSON on standard output
    python -m bench.fetch --pages 500 --threads 1 16 --latency 0 0.05
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from worker.ingest import html_to_text
from worker.sources import Fetcher, FetchPolicy, fetch_page

MAX_PAGES = 5_000
TEXT = (
    "ministry officials confirmed the budget would rise next year while exporters warned that "
    "tariffs on steel and aluminium could shrink the surplus and the opposition tabled a motion "
    "after the navy ordered two frigates for the northern fleet and parliament debated reform"
)
WORDS = TEXT.split()


def make_page(number: int) -> bytes:
    """One article page of about 4 KB: four paragraphs of text inside the usual page chrome."""
    paragraphs = []
    for p in range(4):
        words = [WORDS[(number * 7 + p * 13 + i) % len(WORDS)] for i in range(60)]
        paragraphs.append(f"<p>{' '.join(words).capitalize()}. Report {number}-{p}.</p>")
    return (
        f"<!doctype html><html><head><title>Story {number} | Bench Times</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/trade">Trade</a></nav>'
        '<div class="cookie-consent">We use cookies. Accept all cookies to continue.</div>'
        f"<main><article><h1>Story {number}</h1>{''.join(paragraphs)}</article></main>"
        "<footer>Copyright Bench Times. All rights reserved.</footer></body></html>"
    ).encode()


@contextmanager
def page_server(pages: int, *, latency: float = 0.0) -> Iterator[str]:
    """Serve /page/0 .. /page/<pages-1> on a free loopback port; yields the base URL."""
    bodies = [make_page(n) for n in range(pages)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body wait for a delayed ACK (40 ms)

        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            try:
                body = bodies[int(self.path.rsplit("/", 1)[-1])]
            except (ValueError, IndexError):
                self.send_error(404)
                return
            if latency:
                time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def measure_fetch(pages: int = 300, *, threads: int = 16, latency: float = 0.0) -> dict[str, Any]:
    """Fetch and extract ``pages`` pages from ``threads`` threads; pages per second and the
    per-page time (median, 95th percentile)."""
    if not 1 <= pages <= MAX_PAGES:
        raise ValueError(f"pages must be between 1 and {MAX_PAGES}")
    with page_server(pages, latency=latency) as base:
        urls = [f"{base}/page/{n}" for n in range(pages)]
        # The test site is on loopback, so private addresses are allowed here (and only here).
        policy = FetchPolicy(timeout=30.0, allow_private=True)
        with Fetcher(policy, max_connections=max(threads, 10)) as fetcher:

            def one(url: str) -> float:
                started = time.perf_counter()
                page = fetch_page(fetcher, url)
                if "Report" not in page.text or "cookies" in page.text:
                    raise AssertionError(f"bad extraction of {url}")
                return time.perf_counter() - started

            fetch_page(fetcher, urls[0])  # warm up: imports, first connection
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                durations = sorted(pool.map(one, urls))
            elapsed = time.perf_counter() - started
    return {
        "pages": pages,
        "threads": threads,
        "latency_s": latency,
        "seconds": round(elapsed, 3),
        "pages_per_s": round(pages / elapsed, 1),
        "page_ms_median": round(1000 * statistics.median(durations), 2),
        "page_ms_p95": round(1000 * durations[int(0.95 * (len(durations) - 1))], 2),
    }


def measure_extract(pages: int = 300) -> dict[str, Any]:
    """Extraction alone (trafilatura, no network): the CPU part of a fetch, one thread."""
    bodies = [make_page(n).decode() for n in range(min(pages, MAX_PAGES))]
    html_to_text(bodies[0])
    started = time.perf_counter()
    for body in bodies:
        html_to_text(body)
    elapsed = time.perf_counter() - started
    return {"pages": len(bodies), "pages_per_s": round(len(bodies) / elapsed, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300, help=f"pages per run (max {MAX_PAGES})")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    args = parser.parse_args(argv)
    runs = [
        measure_fetch(args.pages, threads=threads, latency=latency)
        for latency in args.latency
        for threads in args.threads
    ]
    extract = measure_extract(args.pages)
    print(f"{'latency':>8} {'threads':>7} {'pages/s':>8} {'median ms':>10} {'p95 ms':>8}")
    for run in runs:
        print(
            f"{run['latency_s']:>8g} {run['threads']:>7} {run['pages_per_s']:>8} "
            f"{run['page_ms_median']:>10} {run['page_ms_p95']:>8}"
        )
    print(f"extraction alone (1 thread, no network): {extract['pages_per_s']} pages/s")
    print(json.dumps({"fetch": runs, "extract": extract}))


if __name__ == "__main__":
    main()
