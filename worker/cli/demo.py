"""``newsclass demo``: the embedded stack, end to end, on one machine.

Starts a real Redis (unless ``NEWSCLASS_BROKER_URL`` is set), migrates the database, starts a
worker, enqueues the sample articles, waits for their outcomes, prints what was stored, and stops
what it started.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from classifiers import LABELS
from worker.cli.common import commands, example, read_payloads, settings_or_exit
from worker.cli.ingest import report_outcomes
from worker.settings import get_settings, redact_url

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
console = Console(width=None if Console().is_terminal else 120, markup=False)  # titles are text


@commands.command(epilog=example("make demo   # or: newsclass demo my-articles/"))
def demo(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="More articles to send with the samples.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcomes.")] = 180.0,
) -> None:
    """Run the whole stack locally: a real Redis (started here unless NEWSCLASS_BROKER_URL is set),
    a worker, the sample articles enqueued, and a table of what was stored."""
    settings_or_exit()
    run_demo([SAMPLES_DIR, *(paths or [])], concurrency=concurrency, timeout=timeout)


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """The configured broker, or a local Redis started for the demo."""
    from worker.embedded import LocalRedis

    if os.environ.get("NEWSCLASS_BROKER_URL"):
        yield os.environ["NEWSCLASS_BROKER_URL"]
        return
    with LocalRedis() as redis:
        console.print(f"started a local Redis at {redis.url}", highlight=False)
        yield redis.url


def run_demo(paths: Sequence[Path], *, concurrency: int, timeout: float) -> None:
    from worker import db
    from worker.client import enqueue_articles
    from worker.embedded import WorkerProcess

    with broker() as broker_url:
        os.environ["NEWSCLASS_BROKER_URL"] = broker_url
        get_settings.cache_clear()
        settings = get_settings()
        db.upgrade(settings.database_url)
        console.print(f"database {redact_url(settings.database_url)} is migrated", highlight=False)
        worker = WorkerProcess({"NEWSCLASS_BROKER_URL": broker_url}, concurrency=concurrency)
        worker.start()
        try:
            worker.wait_ready()
            console.print(f"worker ready ({concurrency} processes); log: {worker.log_path}")
            payloads = read_payloads(paths, None)
            ids = enqueue_articles(payloads, source="demo")
            console.print(f"enqueued {len(ids)} articles")
            found = report_outcomes(ids, timeout=timeout)
        finally:
            worker.stop()
    print_results(found, settings.database_url)


def print_results(found: dict, database_url: str) -> None:
    from sqlmodel import Session, col, select

    from worker.store import Article, get_engine

    article_ids = {job.article_id for job in found.values() if job.article_id}
    with Session(get_engine(database_url)) as session:
        articles = session.exec(select(Article).where(col(Article.id).in_(article_ids))).all()
    table = Table(title="stored articles")
    table.add_column("id", justify="right")
    table.add_column("title", overflow="fold", max_width=60)
    table.add_column("labels", overflow="fold")
    for column in LABELS:
        table.add_column(column, justify="right")
    for article in sorted(articles, key=lambda a: a.id or 0):
        scores = article.scores
        table.add_row(
            str(article.id),
            article.title or article.text[:80],
            ", ".join(article.labels) or "-",
            *(f"{scores.get(label, 0.0):.2f}" for label in LABELS),
        )
    console.print(table)
    console.print("query them: newsclass query --label defence | newsclass stats")
