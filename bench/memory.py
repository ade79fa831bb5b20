"""Memory and the cost of the message checks: the bounds of issue 19, measured.

- ``large_batch``: a worker process fed the largest articles the worker accepts, in batches of
  the default size, with the batch text budget (``NEWSCLASS_MAX_BATCH_CHARS``) and without it
  (set past the whole batch): peak resident memory, articles/s and how often the process was
  recycled past ``NEWSCLASS_WORKER_MAX_MEMORY_PER_CHILD`` (the default, 600,000 KiB).
- ``message_checks``: what reading each message costs, per message, with the checks of
  worker/messages.py (envelope, then task message) and with plain ``json.loads`` as kombu did.
"""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis as redis_lib

from bench.stack import producer, wait_outcomes
from worker.client import enqueue_articles
from worker.embedded import WorkerProcess


class Rss:
    """Peak resident memory of a worker's main process and its pool processes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Rss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        for pid in [self.pid, *_children(self.pid)]:
            kib = _status_kib(pid, "VmHWM")
            if kib:
                self.peaks[pid] = max(self.peaks.get(pid, 0), kib)

    @property
    def peak_mib(self) -> float:
        return round(max(self.peaks.values(), default=0) / 1024, 1)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def long_articles(base: list[dict], *, count: int, chars: int) -> list[dict]:
    """``count`` articles of about ``chars`` characters each, built from the corpus's bodies
    (each a different rotation, so every one has its own content hash)."""
    bodies = [p["body"] for p in base if p.get("body")]
    out = []
    for serial in range(count):
        parts, size, i = [], 0, serial
        while size < chars:
            text = bodies[i % len(bodies)]
            parts.append(text)
            size += len(text) + 2
            i += 1
        body = "\n\n".join(parts)[: chars - 40]
        out.append({"title": f"Long article {serial}", "body": f"{body}\n\nLong copy {serial}."})
    return out


def large_batch(
    payloads: list[dict], *, broker_url: str, database_url: str, max_batch_chars: int
) -> dict[str, Any]:
    """One worker process storing ``payloads``: seconds, articles/s and peak RSS."""
    redis_lib.Redis.from_url(broker_url).flushdb()
    env = {
        "NEWSCLASS_BROKER_URL": broker_url,
        "NEWSCLASS_DATABASE_URL": database_url,
        "NEWSCLASS_LOG_LEVEL": "WARNING",
        "NEWSCLASS_MAX_BATCH_CHARS": str(max_batch_chars),
        # The jobs arrive as one batch; the process recycles past the default memory threshold.
        "NEWSCLASS_BATCH_WAIT": "5",
    }
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    proc = WorkerProcess(env, concurrency=1, log_path=log).start().wait_ready()
    try:
        assert proc.proc is not None
        with Rss(proc.proc.pid) as rss:
            start = time.perf_counter()
            enqueue_articles(payloads, app=producer(broker_url))
            wait_outcomes(database_url, len(payloads), timeout=900)
            elapsed = time.perf_counter() - start
        return {
            "articles": len(payloads),
            "chars_each": len(payloads[0]["body"]),
            "max_batch_chars": max_batch_chars,
            "seconds": round(elapsed, 1),
            "per_s": round(len(payloads) / elapsed, 2),
            "peak_rss_mib": rss.peak_mib,
            # The group's own process and the first worker process are not recycles.
            "recycles": max(0, len(rss.peaks) - 2),
        }
    finally:
        proc.stop()


def message_checks(
    payloads: list[dict], *, broker_url: str, messages: int = 20_000
) -> dict[str, Any]:
    """Microseconds per message to read what the transport takes off Redis: plain ``json.loads``
    of the envelope and the body (what kombu did) against the checked path."""
    from kombu.utils.json import loads as kombu_loads

    from worker.messages import read_envelope, task_message_problem
    from worker.names import INGEST_QUEUE

    client = redis_lib.Redis.from_url(broker_url)
    client.flushdb()
    enqueue_articles(payloads[:messages], app=producer(broker_url))
    items = [item.decode() for item in client.lrange(INGEST_QUEUE, 0, -1)]
    client.flushdb()

    def plain() -> None:
        for item in items:
            message = json.loads(item)
            kombu_loads(base64.b64decode(message["body"]))

    def checked() -> None:
        for item in items:
            message, _ = read_envelope(item, max_inflated=13_000_000)
            assert message is not None
            body = kombu_loads(message["body"])  # decoded from base64 by the check
            task_message_problem(message["headers"], body, max_wait=3600)

    timings = {
        name: _best_of(fn, 5) / len(items) * 1e6
        for name, fn in (("plain", plain), ("checked", checked))
    }
    return {
        "messages": len(items),
        "plain_us": round(timings["plain"], 2),
        "checked_us": round(timings["checked"], 2),
        "added_us": round(timings["checked"] - timings["plain"], 2),
    }


def _best_of(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
