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
PUBLISH_BATCH = 500


def enqueue_articles(
    payloads: Iterable[object],
    *,
    app: Celery | None = None,
    source: str | None = None,
    queue: str | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> list[str]:
    """Send one job per article over one broker connection, pipelined; return the job ids in
    order.

    ``source`` fills the field of payloads that have none; ``queue`` overrides the default
    ingest queue; ``on_sent(n)`` reports progress.
    """
    if source:
        payloads = (
            {**p, "source": source} if isinstance(p, dict) and not p.get("source") else p
            for p in payloads
        )
    return send_jobs(((None, p) for p in payloads), app=app, queue=queue, on_sent=on_sent)


def send_jobs(
    jobs: Iterable[tuple[str | None, object]],
    *,
    app: Celery | None = None,
    queue: str | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> list[str]:
    """Send (job id or None for a new one, payload) pairs; return the job ids in order.

    On Redis the messages go out in pipelines of PUBLISH_BATCH commands, one round trip each;
    transports without batches (AMQP) send each message at once.
    """
    if app is None:
        from worker.celery_app import app as default_app

        app = default_app
    ids: list[str] = []
    with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
        for n, (job_id, payload) in enumerate(jobs):
            result = app.send_task(
                INGEST_TASK,
                args=(payload,),
                task_id=job_id,
                producer=producer,
                queue=queue,
                argsrepr=describe(payload),
                # Declaring the queue once per pipeline is enough; Celery would bind a copy of
                # the queue object for every message.
                **({} if n % PUBLISH_BATCH == 0 else {"declare": []}),
            )
            ids.append(result.id)
            if on_sent:
                on_sent(1)
    return ids


def describe(payload: object) -> str:
    """What logs and monitors show for a job instead of Celery's repr of the whole article."""
    if isinstance(payload, dict):
        title = str(payload.get("title") or "")[:60]
        size = sum(len(str(payload.get(k) or "")) for k in ("body", "text"))
        return f"(article {title!r}, {size} chars)"
    return f"({type(payload).__name__})"


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
    sent are sent again under the same ids: a message lost by the broker (a Redis without
    persistence restarted, a queue purged by hand) is then delivered after all, and a copy
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
    return len(send_jobs(((job_id, payloads[job_id]) for job_id in job_ids), app=app))


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resend_failed(jobs: Iterable[Job], *, app: Celery | None = None) -> int:
    """Send failed jobs again from their kept payloads, under their own ids."""
    payloads = {
        job.id: json.loads(job.payload) for job in jobs if job.status == "failed" and job.payload
    }
    return send_again(payloads, list(payloads), app=app)
