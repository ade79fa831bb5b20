"""The one way to send a job: ingest, page fetches, polls, reclassify, retries; and waiting for
their outcomes (the Python side of ``newsclass enqueue`` and ``newsclass reclassify``).

Producers need no worker code: a job is the task name (``newsclass.ingest_article``,
``newsclass.reclassify_articles``) and one JSON object, so any Celery client can do what
``enqueue_articles`` and ``enqueue_reclassify`` do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from celery import signals
from kombu.utils.uuid import uuid
from sqlmodel import Session

from worker.ingest import web_url_problem
from worker.names import FETCH_QUEUE, FETCH_TASK, INGEST_TASK, POLL_TASK, RECLASSIFY_TASK
from worker.store import ArticleVersion, Job, get_article_versions, get_engine, get_jobs

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Producer

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
        payloads = (with_source(p, source) for p in payloads)
    return send_jobs(((None, p) for p in payloads), app=app, queue=queue, on_sent=on_sent)


def send_jobs(
    jobs: Iterable[tuple[str | None, object]],
    *,
    app: Celery | None = None,
    task: str = INGEST_TASK,
    queue: str | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> list[str]:
    """Send (job id or None for a new one, payload) pairs as ``task``; return the job ids in
    order.

    On Redis the messages go out in pipelines of PUBLISH_BATCH commands, one round trip each;
    transports without batches (AMQP) send each message at once.
    """
    app = _celery(app)
    amqp = app.amqp
    # What send_task would work out for every message, worked out once: the route (the queue
    # given, else the task's route or the default queue), the reply address and, when called
    # from a task, the parent and root the jobs descend from. Celery's own message builder and
    # sender then make the very messages send_task makes, for a quarter less of the producer's
    # CPU.
    route = amqp.router.route({"queue": queue} if queue else {}, task, None, None, None)
    lineage: dict[str, Any] = {}
    if (parent := app.current_worker_task) is not None:
        lineage = {
            "root_id": parent.request.root_id or parent.request.id,
            "parent_id": parent.request.id,
        }
    reply_to = app.thread_oid
    sent_event = app.conf.task_send_sent_event
    # orjson writes the body, unless something reads it before or after it is sent (signal
    # receivers see the body Celery would encode: a tuple).
    plain_json = (
        app.conf.task_serializer == "json"
        and not app.conf.task_compression
        and not signals.before_task_publish.receivers
        and not signals.after_task_publish.receivers
    )
    ids: list[str] = []
    with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
        for n, (job_id, payload) in enumerate(jobs):
            job_id = job_id or uuid()
            message = amqp.create_task_message(
                job_id,
                task,
                (payload,),
                {},
                reply_to=reply_to,
                create_sent_event=sent_event,
                argsrepr=describe(payload),
                kwargsrepr="{}",
                **lineage,
            )
            amqp.send_task_message(
                producer,
                task,
                _json_body(message) if plain_json else message,
                **route,
                # Declaring the queue once per pipeline is enough; Celery would bind a copy of
                # the queue object for every message.
                **({} if n % PUBLISH_BATCH == 0 else {"declare": []}),
            )
            ids.append(job_id)
            if on_sent:
                on_sent(1)
    return ids


def with_source(payload: object, source: str | None) -> object:
    """The payload with ``source`` filled in where it has none."""
    if source and isinstance(payload, dict) and not payload.get("source"):
        return {**payload, "source": source}
    return payload


def _celery(app: Celery | None) -> Celery:
    if app is None:
        from worker.celery_app import app as default_app

        return default_app
    return app


def enqueue_pages(
    urls: Sequence[str], *, source: str | None, app: Celery | None = None
) -> list[str]:
    """One ``newsclass.fetch_page`` job per URL, on the fetch queue; return the ids of the ingest
    jobs they lead to. Raises ValueError, sending nothing, if a URL is not http(s) with a host."""
    for page in urls:
        if web_url_problem(page) is not None:
            raise ValueError(f"only http and https URLs are fetched, not {page!r}")
    app = _celery(app)
    ids: list[str] = []
    with app.producer_or_acquire() as producer:
        for page in urls:
            job_id = uuid()
            send_fetch_page({"url": page, "job_id": job_id, "source": source}, app=app,
                            producer=producer)  # fmt: skip
            ids.append(job_id)
    return ids


# The fetch queue's sends: one plain Celery message each (send_task), on the producer given
# (a poll sends many over one connection) or one acquired for it.


def send_fetch_page(
    request: dict[str, Any], *, app: Celery | None = None, producer: Producer | None = None
) -> None:
    """One ``newsclass.fetch_page`` job (``request``: url, job_id, source, hints, fallback)."""
    _celery(app).send_task(FETCH_TASK, args=(request,), queue=FETCH_QUEUE, producer=producer)


def send_poll(
    source_id: int, token: str, *, app: Celery | None = None, producer: Producer | None = None
) -> None:
    """One ``newsclass.poll_source`` job for a source claimed with ``token``."""
    _celery(app).send_task(POLL_TASK, args=(source_id, token), queue=FETCH_QUEUE, producer=producer)


def send_ingest(
    payload: object,
    *,
    job_id: str,
    app: Celery | None = None,
    producer: Producer | None = None,
) -> None:
    """One ``newsclass.ingest_article`` job under ``job_id`` (a source entry's derived id)."""
    _celery(app).send_task(INGEST_TASK, args=(payload,), task_id=job_id, producer=producer)


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def _json_body(message: Any) -> Any:
    """The message with its body already in JSON, written by orjson: a tenth of the time kombu's
    JSON takes for an article. The same JSON as kombu's but for spacing and the characters kombu
    escapes as \\uXXXX; Celery sends it as it is (``content_type`` given). Only for arguments
    that are flat objects of strings, integers, booleans and nulls, as article payloads are:
    anything else (floats, whose NaN orjson would write as null, nested values, dates, lone
    surrogates, integers past 64 bits) is left to kombu, which encodes it its own way."""
    args = message.body[0]
    if not all(type(arg) is dict and set(map(type, arg.values())) <= _FLAT_TYPES for arg in args):
        return message
    try:
        body = orjson.dumps(message.body)
    except TypeError:  # orjson.JSONEncodeError: surrogates, integers past 64 bits, odd keys
        return message
    message.properties.update(content_type="application/json", content_encoding="utf-8")
    return message._replace(body=body)


def describe(payload: object) -> str:
    """What logs and monitors show for a job instead of Celery's repr of the whole article."""
    if isinstance(payload, dict) and ("body" in payload or "text" in payload):
        title = str(payload.get("title") or "")[:60]
        size = sum(len(str(payload.get(k) or "")) for k in ("body", "text"))
        return f"(article {title!r}, {size} chars)"
    if isinstance(payload, dict):
        return f"(object of {len(payload)} fields)"
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
    payloads: Mapping[str, object],
    job_ids: Sequence[str],
    *,
    app: Celery | None = None,
    task: str = INGEST_TASK,
) -> int:
    """Send the given jobs (of ``task``) again under their own ids, from their payloads."""
    jobs = ((job_id, payloads[job_id]) for job_id in job_ids)
    return len(send_jobs(jobs, app=app, task=task))


def enqueue_reclassify(
    payloads: Sequence[dict[str, Any]],
    *,
    app: Celery | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Send one ``newsclass.reclassify_articles`` job per payload (``{"article_ids": [...],
    "model_path": ..., "model_version": ...}``) on the default ingest queue; return the payloads
    by job id. ``on_sent(n)``: n more jobs were sent."""
    ids = send_jobs(((None, p) for p in payloads), app=app, task=RECLASSIFY_TASK, on_sent=on_sent)
    return dict(zip(ids, payloads, strict=True))


def wait_for_versions(
    article_ids: Sequence[int],
    *,
    model_version: str,
    job_ids: Sequence[str],
    database_url: str,
    timeout: float = 600.0,
    poll: float = 0.5,
    on_progress: Callable[[int], None] | None = None,
    resend: Callable[[Sequence[str]], None] | None = None,
    resend_after: float = 300.0,
) -> tuple[dict[int, ArticleVersion], dict[str, Job]]:
    """Block until every article is at ``model_version``, or every job has an outcome (a
    rejected job leaves its articles as they were), or the timeout passes. Returns the articles'
    versions and the jobs' outcomes as last read. ``on_progress(n)``: n more articles reached
    the version; ``resend`` as in ``wait_for_jobs``."""
    engine = get_engine(database_url)
    deadline = time.monotonic() + timeout
    last_sent = time.monotonic()
    versions: dict[int, ArticleVersion] = {}
    pending = list(dict.fromkeys(article_ids))  # not yet seen at the version: read again
    outcomes: dict[str, Job] = {}
    while True:
        # Outcomes first: a job's outcome commits with its articles, so versions read after
        # seeing every outcome are final.
        with Session(engine) as session:
            pending_jobs = [job_id for job_id in job_ids if job_id not in outcomes]
            for chunk in _chunks(pending_jobs, 500):
                outcomes.update(get_jobs(session=session, job_ids=chunk))
        with Session(engine) as session:
            fresh = get_article_versions(session=session, article_ids=pending)
        versions.update(fresh)
        done = {i for i, found in fresh.items() if found.model_version == model_version}
        pending = [i for i in pending if i not in done]
        if on_progress and done:
            on_progress(len(done))
        if not pending or len(outcomes) == len(job_ids) or time.monotonic() >= deadline:
            return versions, outcomes
        if resend is not None and time.monotonic() - last_sent >= resend_after:
            resend(sorted(set(job_ids) - set(outcomes)))
            last_sent = time.monotonic()
        time.sleep(poll)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resend_failed(jobs: Iterable[Job], *, app: Celery | None = None) -> int:
    """Send failed jobs again from their kept payloads, under their own ids, each to the task it
    recorded (a job recorded before the task column: a payload with ``article_ids`` is a
    reclassify job's)."""
    failed = [job for job in jobs if job.status == "failed" and job.payload]
    payloads = {job.id: json.loads(job.payload) for job in failed if job.payload}

    def task_of(job: Job) -> str:
        if job.task:
            return job.task
        payload = payloads[job.id]
        is_reclassify = isinstance(payload, dict) and "article_ids" in payload
        return RECLASSIFY_TASK if is_reclassify else INGEST_TASK

    by_task: dict[str, list[str]] = {}
    for job in failed:
        by_task.setdefault(task_of(job), []).append(job.id)
    return sum(
        send_again(payloads, sorted(ids), app=app, task=task) for task, ids in by_task.items()
    )
