"""The naive baseline: a straightforward Celery worker, one article per task.

Each task parses one article, classifies it with its own predict call and commits it in its own
transaction, with the same model, broker, database and reliability settings (JSON, late acks) as
newsclass. Run by the benchmark as ``celery -A bench.naive worker``.
"""

from __future__ import annotations

from functools import cache

from celery import Celery
from sqlmodel import Session

from classifiers import TopicModel, load_model, model_text
from worker.ingest import RejectedInput, parse_job
from worker.pipeline import article_fields
from worker.settings import get_settings
from worker.store import JobOutcome, NewArticle, get_engine, record_jobs, upsert_articles

settings = get_settings()
app = Celery("naive", broker=settings.broker_url)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    task_default_queue="naive",
    worker_hijack_root_logger=False,
)


@cache
def model() -> TopicModel:
    return load_model(settings.model_path)


@app.task(name="bench.naive_ingest")
def naive_ingest(payload: dict) -> str:
    job_id = naive_ingest.request.id
    engine = get_engine(settings.database_url)
    with Session(engine) as session, session.begin():
        try:
            article = parse_job(payload)
        except RejectedInput as exc:
            record_jobs(
                session=session,
                outcomes=[JobOutcome(job_id=job_id, status="rejected", reason=exc.reason)],
            )
            return "rejected"
        prediction = model().predict([model_text(article.title or "", article.text)])[0]
        item = NewArticle(
            job_id=job_id,
            fields=article_fields(article, prediction, model().version),
            labels={label: prediction.scores[label] for label in prediction.labels},
        )
        outcomes = upsert_articles(session=session, items=[item])
        record_jobs(session=session, outcomes=outcomes)
    return outcomes[0].status
