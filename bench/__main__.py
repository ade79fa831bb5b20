"""``make bench``: newsclass's speed, measured side by side with a naive Celery worker.

Prints a table and writes JSON (``.bench/results.json``):
- the in-process limit: clean + classify + store on batches, in as many processes as the worker
  has, no broker;
- end to end through Redis with a 2-process worker, on SQLite and PostgreSQL: articles/s, and the
  latency from enqueue to stored (median, 95th percentile) at a steady offered load;
- the naive baseline: one task per article, one classify call and one commit per article;
- one worker process against two, two worker instances sharing Redis and PostgreSQL;
- enqueue rate; peak resident memory per worker process; a query by label and date over
  1,000,000 stored rows;
- the cost of checking each message, and the peak memory of a worker fed the longest accepted
  articles, with and without the batch text budget (bench/memory.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, select

from bench.corpus import load_articles
from bench.memory import Rss
from bench.stack import outcomes_count, producer, wait_outcomes
from worker import db
from worker.celery_app import INGEST_QUEUE
from worker.client import enqueue_articles
from worker.embedded import LocalRedis, WorkerProcess
from worker.store import Job, get_engine

console = Console(stderr=True)
POSTGRES_URL = os.environ.get(
    "NEWSCLASS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# ----------------------------------------------------------------------------- databases


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="newsclass-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        db.upgrade(url)
        yield url
        get_engine(url).dispose()


@contextmanager
def postgres_database() -> Iterator[str | None]:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        yield None
        return
    name = f"newsclass_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def job_times(database_url: str) -> dict[str, datetime]:
    with Session(get_engine(database_url)) as session:
        rows = session.exec(select(Job.id, Job.created_at)).all()
    return {job_id: _utc(created) for job_id, created in rows}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- in-process limit


def _in_process_share(args: tuple[list[dict], str, int, int]) -> int:
    from worker.ingest import Limits
    from worker.lifecycle import get_model
    from worker.pipeline import IngestJob, process_batch

    payloads, database_url, batch_size, start = args
    engine = get_engine(database_url)
    model = get_model()
    jobs = [IngestJob(id=f"inproc-{start + i}", payload=p) for i, p in enumerate(payloads)]
    for offset in range(0, len(jobs), batch_size):
        process_batch(
            jobs[offset : offset + batch_size], engine=engine, model=model, limits=Limits()
        )
    return len(jobs)


def bench_in_process(payloads: list[dict], *, processes: int, batch_size: int) -> dict[str, Any]:
    """The project's own functions on batches, in ``processes`` processes, no broker."""
    with sqlite_database() as url:
        shares = [
            (payloads[i::processes], url, batch_size, i * len(payloads)) for i in range(processes)
        ]
        ctx = multiprocessing.get_context("fork")
        # Each process loads the model (and sets the GC up) before the clock starts.
        with ctx.Pool(processes, initializer=_warm) as pool:
            pool.map(time.sleep, [0.2] * processes)  # every process is up
            start = time.perf_counter()
            done = sum(pool.map(_in_process_share, shares))
            elapsed = time.perf_counter() - start
    return {"articles": done, "seconds": round(elapsed, 2), "per_s": round(done / elapsed)}


def _warm() -> None:
    from worker.ingest import warm_up
    from worker.lifecycle import get_model, tune_gc

    get_model()
    warm_up()
    tune_gc()  # as a worker process does once it is ready


# ----------------------------------------------------------------------------- end to end


BACKLOG = "newsclass.bench.backlog"


def bench_end_to_end(
    payloads: list[dict],
    *,
    broker_url: str,
    database_url: str,
    workers: Sequence[int],
    latency_fraction: float | None = None,
    latency_seconds: float = 10.0,
    backlog: bool = False,
) -> dict[str, Any]:
    """Throughput with the queue fed as fast as it goes, then latency at a steady load of
    ``latency_fraction`` of that throughput.

    ``workers`` lists worker instances by their process counts, e.g. [2] or [1, 1]. With
    ``backlog`` the jobs are queued before the clock starts (sent to a side list, then renamed
    into the ingest queue at once): the rate at which the workers drain a backlog, without the
    producer's CPU on the same machine.
    """
    redis_lib.Redis.from_url(broker_url).flushdb()
    env = {
        "NEWSCLASS_BROKER_URL": broker_url,
        "NEWSCLASS_DATABASE_URL": database_url,
        "NEWSCLASS_LOG_LEVEL": "WARNING",
    }
    procs = [
        WorkerProcess(env, concurrency=c, log_path=Path(tempfile.mkstemp(suffix=".log")[1])).start()
        for c in workers
    ]
    try:
        for proc in procs:
            proc.wait_ready()
        monitors = [Rss(proc.proc.pid) for proc in procs if proc.proc]
        for monitor in monitors:
            monitor.__enter__()
        app = producer(broker_url)
        if backlog:
            enqueue_articles(payloads, app=app, queue=BACKLOG)
            start = time.perf_counter()
            redis_lib.Redis.from_url(broker_url).rename(BACKLOG, INGEST_QUEUE)
        else:
            start = time.perf_counter()
            enqueue_articles(payloads, app=app)
        wait_outcomes(database_url, len(payloads), timeout=600)
        elapsed = time.perf_counter() - start
        result: dict[str, Any] = {
            "articles": len(payloads),
            "seconds": round(elapsed, 2),
            "per_s": round(len(payloads) / elapsed),
        }
        if latency_fraction:
            rate = round(latency_fraction * result["per_s"], -1)
            result["latency"] = steady_latency(
                app, database_url, rate=rate, seconds=latency_seconds, base=payloads
            )
        for monitor in monitors:
            monitor.__exit__()
        result["peak_rss_mib"] = max(m.peak_mib for m in monitors)
        return result
    finally:
        for proc in procs:
            proc.stop()


def steady_latency(
    app: Celery, database_url: str, *, rate: float, seconds: float, base: list[dict]
) -> dict[str, Any]:
    """Send ``rate`` articles/s for ``seconds``; latency = outcome committed - sent."""
    n = int(rate * seconds)
    fresh = [{**p, "body": p["body"] + f"\n\nLatency copy {i}."} for i, p in enumerate(base[:n])]
    sent: dict[str, float] = {}
    before = outcomes_count(database_url)
    start = time.time()
    with app.producer_or_acquire() as prod:
        for i, payload in enumerate(fresh):
            due = start + i / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            result = app.send_task("newsclass.ingest_article", args=(payload,), producer=prod)
            sent[result.id] = time.time()
    wait_outcomes(database_url, before + len(fresh), timeout=300)
    done = job_times(database_url)
    latencies = sorted(done[j].timestamp() - t for j, t in sent.items())
    return {
        "offered_per_s": rate,
        "articles": len(latencies),
        "median_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
    }


def bench_enqueue(payloads: list[dict], broker_url: str) -> dict[str, Any]:
    redis_lib.Redis.from_url(broker_url).flushdb()
    start = time.perf_counter()
    enqueue_articles(payloads, app=producer(broker_url))
    elapsed = time.perf_counter() - start
    redis_lib.Redis.from_url(broker_url).flushdb()
    return {
        "articles": len(payloads),
        "seconds": round(elapsed, 2),
        "per_s": round(len(payloads) / elapsed),
    }


def bench_naive(payloads: list[dict], *, broker_url: str, database_url: str) -> dict[str, Any]:
    """One task per article, one predict and one commit per article, 2 processes."""
    redis_lib.Redis.from_url(broker_url).flushdb()
    env = {
        **os.environ,
        "NEWSCLASS_BROKER_URL": broker_url,
        "NEWSCLASS_DATABASE_URL": database_url,
    }
    log_path = Path(tempfile.mkstemp(prefix="newsclass-naive-", suffix=".log")[1])
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.naive", "worker", "-c", "2", "-Q", "naive",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        time.sleep(1)
        app = producer(broker_url)
        with app.producer_or_acquire() as prod:
            warm = app.send_task(
                "bench.naive_ingest",
                args=({"body": "warm up " * 10},),
                queue="naive",
                producer=prod,
            )
        wait_outcomes(database_url, 1, timeout=120)
        del warm
        start = time.perf_counter()
        with app.producer_or_acquire() as prod:
            for payload in payloads:
                app.send_task("bench.naive_ingest", args=(payload,), queue="naive", producer=prod)
        wait_outcomes(database_url, len(payloads) + 1, timeout=900)
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "articles": len(payloads),
        "seconds": round(elapsed, 2),
        "per_s": round(len(payloads) / elapsed),
    }


# ----------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> dict[str, Any]:
    payloads, origin = load_articles(args.articles)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "articles": origin,
    }
    step = _stepper()
    with LocalRedis() as redis:
        step("in-process limit (2 processes, no broker)")
        # Best of two runs: the limit the end-to-end figures are compared with is not lowered
        # by a slow first run (cold caches, the disk flushing earlier writes).
        runs = [bench_in_process(payloads, processes=2, batch_size=200) for _ in range(2)]
        results["in_process"] = max(runs, key=lambda run: run["per_s"])
        step("enqueue rate")
        results["enqueue"] = bench_enqueue(payloads, redis.url)
        step("naive baseline (2 processes)")
        with sqlite_database() as url:
            results["naive_sqlite"] = bench_naive(
                payloads[: args.naive_articles], broker_url=redis.url, database_url=url
            )
        for name, workers in (("e2e_sqlite_1proc", [1]), ("e2e_sqlite", [2])):
            step(f"end to end, SQLite, worker processes {workers}")
            with sqlite_database() as url:
                results[name] = bench_end_to_end(
                    payloads, broker_url=redis.url, database_url=url, workers=workers,
                    latency_fraction=0.5 if name == "e2e_sqlite" else None,
                )  # fmt: skip
        step("backlog drained, SQLite, worker processes [2] (queued before the clock)")
        with sqlite_database() as url:
            results["backlog_sqlite"] = bench_end_to_end(
                payloads, broker_url=redis.url, database_url=url, workers=[2], backlog=True
            )
        for name, workers in (("e2e_postgres", [2]), ("e2e_postgres_2_instances", [1, 1])):
            step(f"end to end, PostgreSQL, worker instances {workers}")
            with postgres_database() as url:
                if url is None:
                    results[name] = {"skipped": f"no PostgreSQL at {POSTGRES_URL}"}
                    continue
                results[name] = bench_end_to_end(
                    payloads, broker_url=redis.url, database_url=url, workers=workers,
                    latency_fraction=0.5 if name == "e2e_postgres" else None,
                )  # fmt: skip
        if args.large_articles:
            run_memory(results, args, payloads, redis.url, step)
    from bench.fetch import measure_fetch

    step("pages fetched and extracted (local site, 50 ms per page, 16 threads)")
    results["fetch"] = measure_fetch(300, threads=16, latency=0.05)
    if args.query_rows:
        from bench.query import bench_query

        step(f"query by label and date over {args.query_rows:,} rows (SQLite)")
        with sqlite_database() as url:
            results["query_sqlite"] = bench_query(url, args.query_rows)
    results["ratios"] = {
        "e2e_sqlite_vs_naive": round(
            results["e2e_sqlite"]["per_s"] / results["naive_sqlite"]["per_s"], 1
        ),
        "e2e_sqlite_vs_in_process": round(
            results["e2e_sqlite"]["per_s"] / results["in_process"]["per_s"], 2
        ),
        "backlog_sqlite_vs_naive": round(
            results["backlog_sqlite"]["per_s"] / results["naive_sqlite"]["per_s"], 1
        ),
        "two_procs_vs_one": round(
            results["e2e_sqlite"]["per_s"] / results["e2e_sqlite_1proc"]["per_s"], 2
        ),
    }
    return results


def run_memory(
    results: dict[str, Any],
    args: argparse.Namespace,
    payloads: list[dict],
    broker_url: str,
    step: Callable[[str], None],
) -> None:
    """Issue 19's bounds: the cost of the message checks, and a batch of the largest articles
    with and without the batch text budget."""
    from bench.memory import large_batch, long_articles, message_checks
    from worker.settings import get_settings

    step("message checks, per message")
    results["message_checks"] = message_checks(payloads, broker_url=broker_url)
    settings = get_settings()
    large = long_articles(payloads, count=args.large_articles, chars=settings.max_text_chars)
    budgets = {"with_budget": settings.max_batch_chars, "without_budget": 10**12}
    results["large_batch"] = {}
    for name, budget in budgets.items():
        step(f"{len(large)} articles of {settings.max_text_chars:,} characters, {name}")
        with sqlite_database() as url:
            results["large_batch"][name] = large_batch(
                large, broker_url=broker_url, database_url=url, max_batch_chars=budget
            )


def _stepper() -> Callable[[str], None]:
    started = time.perf_counter()

    def step(what: str) -> None:
        console.print(f"[{time.perf_counter() - started:6.1f}s] {what} ...", highlight=False)

    return step


def print_table(results: dict[str, Any]) -> None:
    table = Table(
        title=f"newsclass bench ({results['machine']['cpus']} CPUs; {results['articles']})"
    )
    for column in ("measure", "articles/s", "detail"):
        table.add_column(column)
    rows = [
        ("in-process limit, 2 processes", "in_process"),
        ("naive baseline, 2 processes, SQLite", "naive_sqlite"),
        ("end to end, 1 process, SQLite", "e2e_sqlite_1proc"),
        ("end to end, 2 processes, SQLite", "e2e_sqlite"),
        ("backlog drained, 2 processes, SQLite", "backlog_sqlite"),
        ("end to end, 2 processes, PostgreSQL", "e2e_postgres"),
        ("end to end, 2 instances x 1 process, PostgreSQL", "e2e_postgres_2_instances"),
        ("enqueue", "enqueue"),
    ]
    for label, key in rows:
        item = results.get(key) or {}
        detail = []
        if "latency" in item:
            lat = item["latency"]
            detail.append(
                f"latency at {lat['offered_per_s']:.0f}/s: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms"
            )
        if "peak_rss_mib" in item:
            detail.append(f"peak RSS/process {item['peak_rss_mib']} MiB")
        if "skipped" in item:
            detail.append(item["skipped"])
        table.add_row(label, str(item.get("per_s", "-")), "; ".join(detail))
    for key in ("query_sqlite", "query_postgres"):
        if key in results:
            table.add_row(
                f"query by label+date, {key.split('_')[1]}",
                "-",
                json.dumps(results[key].get("queries", results[key]))[:200],
            )
    if "fetch" in results:
        table.add_row(
            "pages fetched + extracted, 16 threads",
            str(results["fetch"].get("pages_per_s", "-")),
            "50 ms per page, local site",
        )
    for name, item in results.get("large_batch", {}).items():
        table.add_row(
            f"{item['articles']} articles of {item['chars_each']:,} chars, 1 process, {name}",
            str(item["per_s"]),
            f"peak RSS {item['peak_rss_mib']} MiB, recycled {item['recycles']} times",
        )
    if "message_checks" in results:
        checks = results["message_checks"]
        table.add_row(
            "reading a message: plain JSON / with the checks",
            "-",
            f"{checks['plain_us']} / {checks['checked_us']} us (+{checks['added_us']} us)",
        )
    for name, value in results["ratios"].items():
        table.add_row(f"ratio {name}", str(value), "")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000, help="articles per end-to-end run")
    parser.add_argument(
        "--naive-articles", type=int, default=3_000, help="articles for the naive baseline"
    )
    parser.add_argument(
        "--query-rows", type=int, default=1_000_000, help="rows for the query benchmark (0: skip)"
    )
    parser.add_argument(
        "--large-articles",
        type=int,
        default=60,
        help="articles of the longest accepted length for the memory run (0: skip)",
    )
    parser.add_argument("--out", type=Path, default=Path(".bench/results.json"))
    args = parser.parse_args()
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    sys.stdout.write(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
