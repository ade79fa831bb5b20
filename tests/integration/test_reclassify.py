"""Reclassify: stored articles re-labelled by another model version through the queue, every
earlier version's labels kept and queryable, and running it twice changing nothing.

SQLite and PostgreSQL; the end-to-end test uses a real Redis, a real worker process and a model
trained by ``newsclass train`` on synthetic articles written by the test."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlmodel import Session, select

from classifiers import LABELS, TopicModel, load_model
from tests.articles import make_articles, make_labelled
from tests.conftest import REPO, wait_until
from worker.ingest import Limits
from worker.pipeline import IngestJob, process_batch
from worker.reclassify import ReclassifyRequest, process_reclassify
from worker.store import Article, ArticleFilter, ArticleLabel, Job, find_articles, get_engine

LabelRow = tuple[int, str, str, float]


def label_rows(database_url: str) -> set[LabelRow]:
    with Session(get_engine(database_url)) as session:
        return {
            (r.article_id, r.model_version, r.label, r.score)
            for r in session.exec(select(ArticleLabel))
        }


def articles_now(database_url: str) -> dict[int, Article]:
    with Session(get_engine(database_url)) as session:
        return {int(a.id or 0): a for a in session.exec(select(Article))}


def current_rows_match_articles(database_url: str) -> None:
    """Each article's current labels are exactly its current version's label rows."""
    rows = label_rows(database_url)
    for article_id, article in articles_now(database_url).items():
        mine = {label for a, v, label, _ in rows if a == article_id and v == article.model_version}
        assert mine == set(article.labels), article_id


def all_labels_model(model: TopicModel) -> TopicModel:
    """The same weights under another version, with every label assigned: labels change."""
    other = copy.copy(model)
    other.version = "test-every-label"
    other.thresholds = dict.fromkeys(LABELS, 0.0)
    return other


def test_store_switches_versions_keeps_history_and_is_idempotent(database_url: str) -> None:
    engine = get_engine(database_url)
    model = load_model()
    jobs = [IngestJob(id=f"ingest-{i}", payload=a) for i, a in enumerate(make_articles(12))]
    process_batch(jobs, engine=engine, model=model, limits=Limits(max_text_chars=100_000))
    before = articles_now(database_url)
    old_rows = label_rows(database_url)
    ids = tuple(sorted(before))
    with Session(engine) as session:
        old_defence = [
            a.id
            for a in find_articles(
                session=session,
                where=ArticleFilter(labels=("defence",), model_version=model.version),
            )
        ]
    assert old_defence

    other = all_labels_model(model)
    outcome = process_reclassify("re-1", ReclassifyRequest(ids), engine=engine, model=other)
    assert outcome is not None and outcome.status == "reclassified"
    assert outcome.reason is not None and outcome.reason.startswith("reclassified 12 of 12")
    after = articles_now(database_url)
    for article_id, article in after.items():
        assert article.model_version == other.version
        assert set(article.labels) == set(LABELS)
        assert article.scores == before[article_id].scores  # same weights
        assert article.paragraphs and all(
            set(p["labels"]) == set(LABELS) for p in article.paragraphs
        )
    rows = label_rows(database_url)
    assert old_rows <= rows
    assert len(rows - old_rows) == 12 * len(LABELS)
    current_rows_match_articles(database_url)
    with Session(engine) as session:
        still = find_articles(
            session=session, where=ArticleFilter(labels=("defence",), model_version=model.version)
        )
        assert [a.id for a in still] == old_defence
        assert len(find_articles(session=session, where=ArticleFilter(labels=("trade",)))) == 12

    again = process_reclassify("re-2", ReclassifyRequest(ids), engine=engine, model=other)
    assert again is not None and again.reason is not None
    assert again.reason.startswith("reclassified 0 of 12") and "12 already" in again.reason
    assert process_reclassify("re-1", ReclassifyRequest(ids), engine=engine, model=other) is None
    assert label_rows(database_url) == rows

    back = process_reclassify("re-3", ReclassifyRequest(ids), engine=engine, model=model)
    assert back is not None and back.reason is not None
    assert back.reason.startswith("reclassified 12 of 12")
    for article_id, article in articles_now(database_url).items():
        assert article.model_version == model.version
        assert article.labels == before[article_id].labels
        assert article.paragraphs == before[article_id].paragraphs
        assert article.explanation == before[article_id].explanation
    assert label_rows(database_url) == rows
    current_rows_match_articles(database_url)
    with Session(engine) as session:
        statuses = {j.id: j.status for j in session.exec(select(Job)) if j.id.startswith("re-")}
    assert statuses == {"re-1": "reclassified", "re-2": "reclassified", "re-3": "reclassified"}


def query_ids(newsclass: Any, *args: str) -> list[int]:
    rows = json.loads(newsclass("query", *args, "--format", "json", "--limit", "1000").stdout)
    return sorted(row["id"] for row in rows)


@pytest.fixture(scope="module")
def trained_b(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A second model, trained once by `newsclass train` on synthetic articles: (file, version).

    It also learns from a supplement file, which the card counts apart from the training data.
    """
    out = tmp_path_factory.mktemp("model-b")
    train, supplement = out / "train.jsonl", out / "supplement.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in make_labelled(60, seed=3)))
    supplement.write_text("".join(json.dumps(r) + "\n" for r in make_labelled(20, seed=4)))
    subprocess.run(
        [sys.executable, "-m", "worker", "train", "--data", str(train), "--out", str(out),
         "--supplement", str(supplement)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    card = json.loads((out / "model_card.json").read_text())
    assert card["n_train"] == card["cv"]["n"] == 60
    assert (
        card["data"]["supplement supplement"]["sha256"]
        == sha256(supplement.read_bytes()).hexdigest()
    )
    # `newsclass train` and `make train` (python -m classifiers.train) write the same card.
    shipped = json.loads((REPO / "classifiers/default/model_card.json").read_text())
    assert set(card) - {"dev_views"} == set(shipped) - {"dev_views"}
    assert set(card["libraries"]) == set(shipped["libraries"])
    return out / "model.skops", card["version"]


@pytest.mark.slow
def test_reclassify_with_a_trained_model_through_the_queue(
    tmp_path: Path, stack_env, database_url, start_worker, newsclass, cli, trained_b
) -> None:
    start_worker(stack_env, concurrency=1)
    jsonl = tmp_path / "articles.jsonl"
    jsonl.write_text("".join(json.dumps(a) + "\n" for a in make_articles(12)))
    assert "stored 12" in newsclass("enqueue", "--jsonl", str(jsonl), "--wait").stdout
    model_b, version_b = trained_b

    before = articles_now(database_url)
    old_rows = label_rows(database_url)
    (version_a,) = {a.model_version for a in before.values()}
    assert version_b != version_a
    old_by_label = {
        label: query_ids(cli, "--label", label, "--model-version", version_a) for label in LABELS
    }

    # A model file that cannot be read: a clear error, nothing sent.
    bad = cli("reclassify", "--model", str(tmp_path / "nope" / "model.skops"), code=2)
    assert "--model" in bad.stderr and "does not exist" in bad.stderr

    plan = json.loads(
        cli("reclassify", "--model", str(model_b), "--dry-run", "--format", "json").stdout
    )
    assert plan["dry_run"] and plan["to_reclassify"] == 12 and plan["jobs"] == 1
    assert plan["from_versions"] == {version_a: 12} and plan["model_version"] == version_b
    assert label_rows(database_url) == old_rows

    summary = json.loads(
        newsclass(
            "reclassify", "--model", str(model_b), "--source", "testwire", "--batch-size", "5",
            "--wait", "--format", "json",
        ).stdout
    )  # fmt: skip
    after = articles_now(database_url)
    assert {a.model_version for a in after.values()} == {version_b}
    assert summary["model_version"] == version_b and summary["from_versions"] == {version_a: 12}
    assert summary["reclassified"] == 12 and summary["pending"] == 0
    assert summary["rejected_jobs"] == []
    assert summary["labels_changed"] == sum(
        set(after[i].labels) != set(before[i].labels) for i in before
    )
    for label in LABELS:
        assert summary["labels"][label]["after"] == sum(label in a.labels for a in after.values())
    rows_b = label_rows(database_url)
    assert old_rows <= rows_b and {v for _, v, _, _ in rows_b} == {version_a, version_b}
    current_rows_match_articles(database_url)

    # The earlier version's labels stay queryable; the current ones are version b's.
    for label in LABELS:
        assert (
            query_ids(cli, "--label", label, "--model-version", version_a) == (old_by_label[label])
        )
        assert query_ids(cli, "--label", label) == sorted(
            i for i, a in after.items() if label in a.labels
        )
    assert len(query_ids(cli, "--model-version", version_b)) == 12
    both = next(
        i for i in before if {(v) for a, v, _, _ in rows_b if a == i} == {version_a, version_b}
    )
    detail = json.loads(cli("show", str(both), "--format", "json").stdout)
    assert detail["model_version"] == version_b
    assert {row["model_version"] for row in detail["label_history"]} == {version_a, version_b}
    assert f"labels of {version_a}" in cli("show", str(both)).stdout
    jobs = json.loads(cli("jobs", "--status", "reclassified", "--format", "json").stdout)
    assert len(jobs) == 3

    # Twice is a no-op: the command sends nothing, the task itself changes nothing.
    again = json.loads(
        cli("reclassify", "--model", str(model_b), "--wait", "--format", "json").stdout
    )
    assert again["to_reclassify"] == 0 and again["already"] == 12
    client = Celery(broker=stack_env["NEWSCLASS_BROKER_URL"])
    ids = sorted(before)
    same = client.send_task(
        "newsclass.reclassify_articles",
        args=[{"article_ids": ids, "model_path": str(model_b), "model_version": version_b}],
    )
    # A model path the workers cannot read: the job is rejected with the reason; the worker goes on.
    gone = client.send_task(
        "newsclass.reclassify_articles",
        args=[{"article_ids": ids, "model_path": str(tmp_path / "gone" / "model.skops")}],
    )

    def outcomes() -> dict[str, Job] | None:
        with Session(get_engine(database_url)) as session:
            found = {j.id: j for j in session.exec(select(Job)) if j.id in (same.id, gone.id)}
        return found if len(found) == 2 else None

    found = wait_until(outcomes)
    assert found[same.id].status == "reclassified"
    assert "reclassified 0 of 12" in (found[same.id].reason or "")
    assert found[gone.id].status == "rejected"
    assert "does not exist" in (found[gone.id].reason or "")
    assert label_rows(database_url) == rows_b

    # Back to the workers' own model: the old labels again, no new rows.
    back = newsclass("reclassify", "--wait").stdout
    assert f"reclassified 12 of 12 articles: {version_b} (12) -> {version_a}" in back
    for article_id, article in articles_now(database_url).items():
        assert article.model_version == version_a
        assert article.labels == before[article_id].labels
        assert article.scores == before[article_id].scores
    assert label_rows(database_url) == rows_b
    current_rows_match_articles(database_url)


def test_jobs_retry_sends_each_failed_job_to_its_own_task(broker_url) -> None:
    """A failed reclassify job goes back to the reclassify task, a failed ingest job to ingest."""
    from worker.client import INGEST_TASK, RECLASSIFY_TASK, resend_failed

    app = Celery(broker=broker_url)
    app.conf.task_serializer = "json"
    jobs = [
        Job(id="ingest-1", status="failed", payload=json.dumps({"body": "Ports reopened."})),
        Job(id="relabel-1", status="failed", payload=json.dumps({"article_ids": [1, 2]})),
        Job(id="stored-1", status="stored", payload=None),
    ]
    assert resend_failed(jobs, app=app) == 2
    with app.connection() as conn, conn.SimpleQueue("celery") as queue:
        sent = {}
        for _ in range(2):
            message = queue.get(timeout=5)
            sent[message.headers["id"]] = message.headers["task"]
            message.ack()
    assert sent == {"ingest-1": INGEST_TASK, "relabel-1": RECLASSIFY_TASK}
