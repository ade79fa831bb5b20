"""Send ingest jobs and wait for their outcomes: the Python side of ``newsclass enqueue``.

Producers need no worker code: a job is the task name ``newsclass.ingest_article`` and one JSON
object, so any Celery client can do what ``enqueue_articles`` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlmodel import Session

from worker.store import Job, get_engine, get_jobs

if TYPE_CHECKING:
    from celery import Celery

INGEST_TASK = "newsclass.ingest_article"


def enqueue_articles(
    payloads: Iterable[object],
    *,
    app: Celery | None = None,
    source: str | None = None,
    queue: str | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> list[str]:
    """Send one job per article over one broker connection; return the job ids in order.

    ``source`` fills the field of payloads that have none; ``queue`` overrides the default
    ingest queue; ``on_sent(n)`` reports progress.
    """
    if app is None:
        from worker.celery_app import app as default_app

        app = default_app
    ids: list[str] = []
    with app.producer_or_acquire() as producer:
        for payload in payloads:
            if source and isinstance(payload, dict) and not payload.get("source"):
                payload = {**payload, "source": source}
            result = app.send_task(INGEST_TASK, args=(payload,), producer=producer, queue=queue)
            ids.append(result.id)
            if on_sent:
                on_sent(1)
    return ids


def wait_for_jobs(
    job_ids: Sequence[str],
    *,
    database_url: str,
    timeout: float = 300.0,
    poll: float = 0.25,
    on_progress: Callable[[int], None] | None = None,
    resend: Callable[[Sequence[str]], None] | None = None,
    resend_after: float = 300.0,
) -> dict[str, Job]:
    """Block until every job has a recorded outcome (or the timeout passes); return those found.

    With ``resend``, jobs still without an outcome ``resend_after`` seconds after they were last
    sent are sent again under the same ids: a message lost by the broker (kombu's Redis transport
    can lose one in flight when a worker or Redis dies) is then delivered after all, and a copy
    that arrives twice is a no-op (one outcome per job id, one article per content hash).
    """
    engine = get_engine(database_url)
    pending = set(job_ids)
    found: dict[str, Job] = {}
    deadline = time.monotonic() + timeout
    last_sent = time.monotonic()
    while pending and time.monotonic() < deadline:
        with Session(engine) as session:
            for chunk in _chunks(sorted(pending), 500):
                new = get_jobs(session=session, job_ids=chunk)
                found.update(new)
                pending.difference_update(new)
                if on_progress and new:
                    on_progress(len(new))
        if pending and resend is not None and time.monotonic() - last_sent >= resend_after:
            resend(sorted(pending))
            last_sent = time.monotonic()
        if pending:
            time.sleep(poll)
    return found


def send_again(
    payloads: Mapping[str, object], job_ids: Sequence[str], *, app: Celery | None = None
) -> int:
    """Send the given jobs again under their own ids, from their payloads."""
    if app is None:
        from worker.celery_app import app as default_app

        app = default_app
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            app.send_task(INGEST_TASK, args=(payloads[job_id],), task_id=job_id, producer=producer)
    return len(job_ids)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resend_failed(jobs: Iterable[Job], *, app: Celery | None = None) -> int:
    """Send failed jobs again from their kept payloads, under their own ids."""
    payloads = {
        job.id: json.loads(job.payload) for job in jobs if job.status == "failed" and job.payload
    }
    return send_again(payloads, list(payloads), app=app)
