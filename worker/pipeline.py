"""Clean, classify and store a batch of ingest jobs: the work behind the public task.

No Celery here: the task decodes messages into ``IngestJob``s and owns retries; this module
turns jobs into outcomes in one vectorised classify call and one database transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifiers import Prediction, TopicModel, model_text
from worker.ingest import Article, Limits, RejectedInput, parse_job
from worker.names import INGEST_TASK
from worker.store import (
    JobOutcome,
    NewArticle,
    finished_job_ids,
    payload_excerpt,
    record_jobs,
    upsert_articles,
)


@dataclass(frozen=True, slots=True)
class IngestJob:
    """One job of a batch. ``refused`` says why a message that carries no single JSON object
    cannot be a job (its ``payload`` is then ``{"args": ..., "kwargs": ...}`` as it arrived)."""

    id: str
    payload: object
    attempts: int = 1
    refused: str | None = None


def article_fields(article: Article, prediction: Prediction, model_version: str) -> dict:
    """The Article row for a cleaned article and its classification."""
    return {
        "content_hash": article.content_hash,
        "text": article.text,
        "title": article.title,
        "url": article.url,
        "source": article.source,
        "author": article.author,
        "published_at": article.published_at,
        "external_id": article.external_id,
        "dateline": article.dateline,
        "agency": article.agency,
        "origin": article.origin,
        "credits": list(article.credits),
        **classification_fields(prediction, model_version),
    }


def classification_fields(prediction: Prediction, model_version: str) -> dict:
    """The Article columns of a classification, named with the model version that made it
    (ingest stores them with the article; reclassify replaces them)."""
    return {
        "labels": list(prediction.labels),
        "scores": dict(prediction.scores),
        "primary_label": prediction.primary,
        "model_version": model_version,
        "paragraphs": [
            {"index": p.index, "labels": list(p.labels), "scores": dict(p.scores)}
            for p in prediction.paragraphs
        ],
        "explanation": {k: list(v) for k, v in prediction.explanation.items()},
    }


def assigned_labels(prediction: Prediction) -> dict[str, float]:
    """The assigned labels with their scores: the ``article_label`` rows of a classification."""
    return {label: prediction.scores[label] for label in prediction.labels}


def classify_articles(articles: Sequence[Article], *, model: TopicModel) -> list[Prediction]:
    """One vectorised call for the whole batch."""
    if not articles:
        return []
    return model.predict([model_text(a.title or "", a.text) for a in articles])


def process_batch(
    jobs: Sequence[IngestJob], *, engine: Engine, model: TopicModel, limits: Limits
) -> list[JobOutcome]:
    """Turn jobs into recorded outcomes: one classify call, one transaction.

    Jobs that already have an outcome (a redelivered message) are skipped and get none here.
    Database errors propagate: the caller decides whether to retry.
    """
    with Session(engine) as session:
        done = finished_job_ids(session=session, job_ids=[job.id for job in jobs])
    outcomes: list[JobOutcome] = []
    accepted: list[tuple[IngestJob, Article]] = []
    for job in jobs:
        if job.id in done:
            continue
        try:
            if job.refused is not None:
                raise RejectedInput(job.refused)
            accepted.append((job, parse_job(job.payload, limits=limits)))
        except RejectedInput as exc:
            outcomes.append(
                JobOutcome(
                    job_id=job.id,
                    status="rejected",
                    reason=exc.reason,
                    payload=payload_excerpt(job.payload),
                    attempts=job.attempts,
                    task=INGEST_TASK,
                )
            )
    predictions = classify_articles([article for _, article in accepted], model=model)
    items = [
        NewArticle(
            job_id=job.id,
            fields=article_fields(article, prediction, model.version),
            labels=assigned_labels(prediction),
        )
        for (job, article), prediction in zip(accepted, predictions, strict=True)
    ]
    attempts = {job.id: job.attempts for job, _ in accepted}
    with Session(engine) as session, session.begin():
        for outcome in upsert_articles(session=session, items=items):
            outcomes.append(replace(outcome, attempts=attempts[outcome.job_id], task=INGEST_TASK))
        record_jobs(session=session, outcomes=outcomes)
    return outcomes
