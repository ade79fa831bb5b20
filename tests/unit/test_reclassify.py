"""Reclassify without services: reading a job's request, the summary of what changed, and the
worker's model cache (one load per file, a clear error for a path that holds no model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from classifiers import ModelLoadError, default_model_path
from worker.ingest import RejectedInput
from worker.reclassify import (
    MAX_ARTICLES_PER_JOB,
    ReclassifyRequest,
    ReclassifyResult,
    parse_request,
    summarise,
)
from worker.store import ArticleVersion


def test_a_request_round_trips_through_its_json_payload() -> None:
    request = ReclassifyRequest((3, 1, 2), model_path="/models/b/model.skops", model_version="b")
    payload = request.payload()
    assert payload == {
        "article_ids": [3, 1, 2],
        "model_path": "/models/b/model.skops",
        "model_version": "b",
    }
    assert parse_request(payload) == request
    assert parse_request({"article_ids": [5, 5, 6]}) == ReclassifyRequest((5, 6))
    assert ReclassifyRequest((1,)).payload() == {"article_ids": [1]}


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("just a string", "one JSON object"),
        ([1, 2], "one JSON object"),
        ({}, "non-empty list"),
        ({"article_ids": []}, "non-empty list"),
        ({"article_ids": "1,2"}, "non-empty list"),
        ({"article_ids": [1, "2"]}, "positive integers"),
        ({"article_ids": [1, True]}, "positive integers"),
        ({"article_ids": [0]}, "positive integers"),
        ({"article_ids": [1.5]}, "positive integers"),
        ({"article_ids": list(range(1, MAX_ARTICLES_PER_JOB + 2))}, "at most"),
        ({"article_ids": [1], "model_path": 7}, "model_path"),
        ({"article_ids": [1], "model_path": "models/b/model.skops"}, "absolute"),
        ({"article_ids": [1], "model_version": ""}, "model_version"),
        ({"article_ids": [1], "model": "/m.skops"}, "unknown field"),
    ],
)
def test_a_bad_request_is_rejected_with_a_reason(payload: object, says: str) -> None:
    with pytest.raises(RejectedInput, match=says):
        parse_request(payload)


def test_the_job_reason_says_what_was_done() -> None:
    result = ReclassifyResult(requested=5, relabelled=3, already=1, missing=1, labels_changed=2)
    assert result.describe("v2") == (
        "reclassified 3 of 5 articles with v2 (2 with other labels than before, "
        "1 already at it, 1 missing)"
    )


def test_summary_counts_versions_and_label_changes() -> None:
    before = [
        ArticleVersion(1, "v1", ("defence",)),
        ArticleVersion(2, "v1", ("trade",)),
        ArticleVersion(3, "v0", ()),
        ArticleVersion(4, "v1", ("trade",)),  # still at v1: pending
        ArticleVersion(5, "v1", ()),  # deleted meanwhile: pending
    ]
    after = {
        1: ArticleVersion(1, "v2", ("defence",)),
        2: ArticleVersion(2, "v2", ("defence", "trade")),
        3: ArticleVersion(3, "v2", ("domestic_politics",)),
        4: ArticleVersion(4, "v1", ("trade",)),
    }
    summary = summarise(before, after, model_version="v2", selected=7)
    assert summary["selected"] == 7 and summary["sent"] == 5 and summary["already"] == 2
    assert summary["from_versions"] == {"v0": 1, "v1": 4}
    assert summary["reclassified"] == 3 and summary["pending"] == 2
    assert summary["labels_changed"] == 2
    assert summary["labels"]["defence"] == {"before": 1, "after": 2, "gained": 1, "lost": 0}
    assert summary["labels"]["trade"] == {"before": 1, "after": 1, "gained": 0, "lost": 0}
    assert summary["labels"]["domestic_politics"] == {
        "before": 0,
        "after": 1,
        "gained": 1,
        "lost": 0,
    }


def test_the_worker_loads_a_model_file_once_and_refuses_a_bad_path(tmp_path: Path) -> None:
    from worker.lifecycle import get_model, get_model_at

    assert get_model_at(None) is get_model()
    assert get_model_at(default_model_path()) is get_model()
    copy = tmp_path / "b" / "model.skops"
    shutil.copytree(default_model_path().parent, copy.parent)
    first = get_model_at(copy)
    assert first is not get_model() and first.version == get_model().version
    assert get_model_at(str(copy)) is first
    with pytest.raises(ModelLoadError, match="does not exist"):
        get_model_at(tmp_path / "nowhere" / "model.skops")
    not_a_model = tmp_path / "notes.skops"
    not_a_model.write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a skops model file"):
        get_model_at(not_a_model)


def test_the_task_records_every_job_and_never_raises(tmp_path: Path, monkeypatch) -> None:
    """The task run in-process (Celery's apply) on a SQLite file: bad requests, a model path
    that holds no model, a model of another version and a database that keeps failing all end
    in a recorded outcome with the reason."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from worker import db, tasks
    from worker.store import get_engine, get_jobs

    url = f"sqlite:///{tmp_path / 'newsclass.db'}"
    db.upgrade(url)
    monkeypatch.setattr(tasks, "_engine", lambda: get_engine(url))
    version = tasks.get_model().version

    def run(job_id: str, *args: object, **kwargs: object) -> tuple[str, str]:
        tasks.reclassify_articles.apply(args=args, kwargs=kwargs, task_id=job_id)
        with Session(get_engine(url)) as session:
            job = get_jobs(session=session, job_ids=[job_id])[job_id]
        return job.status, job.reason or ""

    assert run("not-object", "1,2") == (
        "rejected",
        "reclassify: a reclassify job is one JSON object with article_ids, not str",
    )
    status, reason = run("two-args", {"article_ids": [1]}, {"article_ids": [2]})
    assert status == "rejected" and reason == (
        "reclassify: newsclass.reclassify_articles takes one JSON object as its only argument; "
        "this message carried 2 positional arguments and no keyword arguments"
    )
    status, reason = run("no-model", {"article_ids": [1], "model_path": str(tmp_path / "x.skops")})
    assert status == "rejected" and "cannot use the model" in reason and "does not exist" in reason
    status, reason = run("other-version", {"article_ids": [1], "model_version": "v-elsewhere"})
    assert status == "rejected" and f"is version {version}, not v-elsewhere" in reason
    status, reason = run("lenient", article_ids=[1], model_version=version)
    assert (status, reason) == (
        "reclassified",
        f"reclassified 0 of 1 articles with {version} (0 with other labels than before, 1 missing)",
    )

    def database_down(*_: object, **__: object) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(tasks, "process_reclassify", database_down)
    monkeypatch.setattr(tasks, "backoff", lambda attempts: 0.0)
    status, reason = run("db-down", {"article_ids": [1]})
    assert status == "failed" and "database is locked" in reason  # jobs retry can replay it
    assert reason.startswith(f"reclassify: gave up after {tasks._settings.max_retries + 1} tries")


def test_the_plan_leaves_articles_at_the_version_alone_and_chunks_the_rest() -> None:
    from worker.reclassify import plan_reclassify

    selected = [
        ArticleVersion(1, "v1", ()),
        ArticleVersion(2, "v2", ()),
        ArticleVersion(3, "v0", ()),
        ArticleVersion(4, "v1", ()),
        ArticleVersion(5, "v1", ()),
    ]
    plan = plan_reclassify(selected, model_version="v2", model_path="/m/model.skops", batch_size=2)
    assert [a.id for a in plan.todo] == [1, 3, 4, 5]
    assert plan.summary() == {
        "selected": 5,
        "to_reclassify": 4,
        "already": 1,
        "model_version": "v2",
        "model_path": "/m/model.skops",
        "from_versions": {"v0": 1, "v1": 3},
        "jobs": 2,
    }
    assert [r.payload() for r in plan.requests(model_path=None)] == [
        {"article_ids": [1, 3], "model_version": "v2"},
        {"article_ids": [4, 5], "model_version": "v2"},
    ]
    [first, _] = plan.requests(model_path="/m/model.skops")
    assert first.model_path == "/m/model.skops"


def test_a_plan_with_nothing_to_do_has_no_jobs() -> None:
    from worker.reclassify import plan_reclassify

    plan = plan_reclassify(
        [ArticleVersion(1, "v2", ())], model_version="v2", model_path="m", batch_size=200
    )
    assert plan.todo == ()
    assert plan.summary()["jobs"] == 0
    assert plan.requests(model_path=None) == []
