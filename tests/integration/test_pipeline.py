"""The pipeline end to end: enqueue -> Redis -> real Celery worker -> classify -> store -> query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from celery import Celery
from sqlmodel import Session, select

from tests.articles import make_articles
from tests.conftest import wait_until
from worker.store import Article, ArticleLabel, Job, get_engine

pytestmark = pytest.mark.slow


def jobs_by_status(database_url: str) -> dict[str, int]:
    with Session(get_engine(database_url)) as session:
        counts: dict[str, int] = {}
        for job in session.exec(select(Job)):
            counts[job.status] = counts.get(job.status, 0) + 1
        return counts


def test_jsonl_enqueue_stores_once_then_duplicates(
    tmp_path: Path, stack_env, database_url, start_worker, newsclass
) -> None:
    start_worker(stack_env, concurrency=2)
    articles = make_articles(60)
    jsonl = tmp_path / "articles.jsonl"
    jsonl.write_text("".join(json.dumps(a) + "\n" for a in articles))

    first = newsclass("enqueue", "--jsonl", str(jsonl), "--wait", "--timeout", "120")
    assert "stored 60" in first.stdout

    second = newsclass("enqueue", "--jsonl", str(jsonl), "--wait", "--timeout", "120")
    assert "duplicate 60" in second.stdout

    with Session(get_engine(database_url)) as session:
        stored = session.exec(select(Article)).all()
        assert len(stored) == 60
        assert {a.external_id for a in stored} == {a["id"] for a in articles}
        assert all(a.model_version and set(a.scores) >= {"defence", "trade"} for a in stored)
        label_rows = session.exec(select(ArticleLabel)).all()
        assert {(r.article_id, r.label) for r in label_rows} == {
            (a.id, label) for a in stored for label in a.labels
        }
    assert jobs_by_status(database_url) == {"stored": 60, "duplicate": 60}

    rows = json.loads(
        newsclass("query", "--label", "defence", "--format", "json", "--limit", "100").stdout
    )
    assert rows, "some synthetic defence articles are labelled defence"
    assert all("defence" in row["labels"] for row in rows)
    assert {"id", "title", "url", "source", "published_at", "ingested_at", "labels", "scores",
            "primary", "model_version"} <= set(rows[0])  # fmt: skip
    stats = json.loads(newsclass("stats", "--format", "json").stdout)
    assert stats["articles"] == 60
    assert stats["outcomes"] == {"stored": 60, "duplicate": 60, "rejected": 0, "failed": 0}
    assert stats["by_label"]["defence"] == len(
        json.loads(
            newsclass("query", "--label", "defence", "--format", "json", "--limit", "1000").stdout
        )
    )


def test_any_celery_client_can_send_the_public_task(stack_env, database_url, start_worker) -> None:
    """A bare Celery client with no newsclass code sends the task by name with one JSON object."""
    start_worker(stack_env, concurrency=1)
    client = Celery(broker=stack_env["NEWSCLASS_BROKER_URL"])
    client.conf.task_serializer = "json"
    good = client.send_task(
        "newsclass.ingest_article",
        args=[{"title": "Navy orders frigates", "text": make_articles(1)[0]["body"], "id": "x-1"}],
    )
    bad = client.send_task("newsclass.ingest_article", args=[{"title": "no body"}])
    not_object = client.send_task("newsclass.ingest_article", args=["just a string"])

    def outcomes():
        with Session(get_engine(database_url)) as session:
            jobs = {j.id: j for j in session.exec(select(Job))}
        return jobs if len(jobs) == 3 else None

    jobs = wait_until(outcomes)
    assert jobs[good.id].status == "stored"
    assert jobs[bad.id].status == "rejected" and "body" in (jobs[bad.id].reason or "")
    assert jobs[not_object.id].status == "rejected"


def test_pickle_messages_are_refused_and_the_worker_goes_on(
    stack_env, database_url, start_worker
) -> None:
    proc = start_worker(stack_env, concurrency=1)
    client = Celery(broker=stack_env["NEWSCLASS_BROKER_URL"])
    client.conf.accept_content = ["json", "pickle"]
    pickled = client.send_task(
        "newsclass.ingest_article", args=[{"text": "pickled " * 20}], serializer="pickle"
    )
    after = client.send_task(
        "newsclass.ingest_article", args=[{"text": make_articles(2)[1]["body"]}], serializer="json"
    )
    wait_until(lambda: jobs_by_status(database_url).get("stored") == 1)
    with Session(get_engine(database_url)) as session:
        assert session.get(Job, after.id) is not None
        assert len(session.exec(select(Article)).all()) == 1
        refused = session.get(Job, pickled.id)
        assert refused is not None and refused.status == "rejected"
        assert "JSON" in (refused.reason or "")
    log = proc.log_tail(20000)
    assert "'application/x-python-serialize' is not accepted" in log
