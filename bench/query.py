"""How fast a query by label and date answers over many stored articles (issue 5).

``bench_query(database_url, n)`` migrates the (empty) database, bulk-inserts ``n`` synthetic
articles with their label rows (SQLite: executemany in one transaction; PostgreSQL: COPY), then
times ``find_articles`` (the code behind ``newsclass query`` and ``GET /articles``) for a few
label-and-date queries. Not a test: run it by hand.

    python -m bench.query --n 1000000 --database-url sqlite:////tmp/bench.db
    python -m bench.query --n 1000000 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from classifiers import LABELS
from worker import db
from worker.store import ArticleFilter, find_articles, get_engine

SOURCES = tuple(f"source-{i:02d}" for i in range(20))
WORDS = (
    "navy", "frigate", "tariff", "steel", "election", "minister", "parliament", "missile",
    "export", "quota", "border", "troops", "customs", "vote", "coalition", "budget", "harbour",
    "court", "reform", "summit", "treaty", "farmers", "strike",
)  # fmt: skip
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_DAYS = 3 * 365
MODEL_VERSION = "bench-1"
ARTICLE_COLUMNS = (
    "id", "content_hash", "title", "text", "source", "published_at", "ingested_at",
    "labels", "scores", "primary_label", "model_version", "credits", "paragraphs", "explanation",
)  # fmt: skip


def synthetic_rows(n: int, seed: int = 0) -> Iterator[tuple[tuple[Any, ...], list[tuple]]]:
    """(article row, label rows) for ids 1..n; about 30% of articles carry each label."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        published = START + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
        scores = {label: round(rng.random(), 3) for label in LABELS}
        labels = [label for label, score in scores.items() if score >= 0.7]
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        article = (
            i,
            f"{i:064x}",
            f"Article {i}: {words[:40]}",
            f"{words}. Serial {i}.",
            rng.choice(SOURCES),
            published,
            published + timedelta(minutes=rng.randrange(1, 600)),
            json.dumps(labels),
            json.dumps(scores),
            max(labels, key=scores.__getitem__) if labels else None,
            MODEL_VERSION,
            "[]",
            "[]",
            "{}",
        )
        yield article, [(i, MODEL_VERSION, label, scores[label]) for label in labels]


def bulk_insert(database_url: str, n: int, *, batch: int = 50_000) -> float:
    """Insert n synthetic articles fast; return the seconds it took."""
    engine = get_engine(database_url)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            _copy_postgres(cur, n)
            cur.execute("SELECT setval('article_id_seq', %s)", (n,))
        else:
            _executemany_sqlite(cur, n, batch)
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def _copy_postgres(cur: Any, n: int) -> None:
    labels: list[tuple] = []
    with cur.copy(f"COPY article ({', '.join(ARTICLE_COLUMNS)}) FROM STDIN") as copy:
        for article, label_rows in synthetic_rows(n):
            copy.write_row(article)
            labels.extend(label_rows)
    with cur.copy(
        "COPY article_label (article_id, model_version, label, score) FROM STDIN"
    ) as copy:
        for row in labels:
            copy.write_row(row)


def _executemany_sqlite(cur: Any, n: int, batch: int) -> None:
    columns, marks = ", ".join(ARTICLE_COLUMNS), ", ".join("?" * len(ARTICLE_COLUMNS))
    insert_article = f"INSERT INTO article ({columns}) VALUES ({marks})"  # noqa: S608 - constants
    insert_label = (
        "INSERT INTO article_label (article_id, model_version, label, score) VALUES (?, ?, ?, ?)"
    )
    articles: list[tuple] = []
    labels: list[tuple] = []
    for article, label_rows in synthetic_rows(n):
        # SQLAlchemy's SQLite DateTime format: the UTC wall clock, no offset.
        articles.append(
            (*article[:5], _sqlite_time(article[5]), _sqlite_time(article[6]), *article[7:])
        )
        labels.extend(label_rows)
        if len(articles) >= batch:
            cur.executemany(insert_article, articles)
            cur.executemany(insert_label, labels)
            articles, labels = [], []
    cur.executemany(insert_article, articles)
    cur.executemany(insert_label, labels)


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


QUERIES = {
    "label defence, one month, newest 50": ArticleFilter(
        labels=("defence",),
        since=datetime(2024, 6, 1, tzinfo=UTC),
        until=datetime(2024, 7, 1, tzinfo=UTC),
    ),
    "label defence, one year, newest 50": ArticleFilter(
        labels=("defence",),
        since=datetime(2024, 1, 1, tzinfo=UTC),
        until=datetime(2025, 1, 1, tzinfo=UTC),
    ),
    "labels defence+trade (all), one month, newest 50": ArticleFilter(
        labels=("defence", "trade"),
        label_mode="all",
        since=datetime(2024, 6, 1, tzinfo=UTC),
        until=datetime(2024, 7, 1, tzinfo=UTC),
    ),
    "label trade, one month by ingested time, one source": ArticleFilter(
        labels=("trade",),
        time="ingested",
        source="source-07",
        since=datetime(2024, 6, 1, tzinfo=UTC),
        until=datetime(2024, 7, 1, tzinfo=UTC),
    ),
}


def time_queries(database_url: str, *, repeat: int = 5) -> dict[str, dict[str, float]]:
    """Median and best milliseconds of each query in QUERIES (after one warm-up run)."""
    results: dict[str, dict[str, float]] = {}
    with Session(get_engine(database_url)) as session:
        for name, where in QUERIES.items():
            rows = find_articles(session=session, where=where, limit=50)
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                find_articles(session=session, where=where, limit=50)
                times.append((time.perf_counter() - started) * 1000)
            results[name] = {
                "median_ms": round(statistics.median(times), 2),
                "best_ms": round(min(times), 2),
                "rows": len(rows),
            }
    return results


def bench_query(database_url: str, n: int) -> dict[str, Any]:
    """Migrate an empty database, insert n synthetic articles, time the label-and-date queries."""
    db.upgrade(database_url)
    insert_s = bulk_insert(database_url, n)
    return {
        "database": get_engine(database_url).dialect.name,
        "articles": n,
        "insert_seconds": round(insert_s, 1),
        "queries": time_queries(database_url),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an empty database")
    parser.add_argument("--n", type=int, default=1_000_000, help="articles to insert")
    args = parser.parse_args()
    print(json.dumps(bench_query(args.database_url, args.n), indent=2))


if __name__ == "__main__":
    main()
