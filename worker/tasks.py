"""Thin tasks: decode messages, call the pipeline, own the retries.

``newsclass.ingest_article`` is the public task: one JSON object per message, sent by any Celery
client. The worker buffers messages and runs them in batches (celery-batches), acknowledging each
message only after its outcome is committed.

``newsclass.reclassify_articles`` re-labels stored articles (one JSON object: ``article_ids``, and
optionally ``model_path`` and ``model_version``) on the same queue, so the ingest workers run it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from celery import Task
from celery.utils.time import get_exponential_backoff_interval
from celery_batches import Batches, SimpleRequest
from sqlmodel import Session

from classifiers import ModelLoadError
from worker.celery_app import app
from worker.ingest import Limits, RejectedInput
from worker.lifecycle import get_model, get_model_at, maybe_recycle
from worker.names import INGEST_TASK, RECLASSIFY_TASK
from worker.pipeline import IngestJob, process_batch
from worker.reclassify import parse_request, process_reclassify
from worker.settings import get_settings
from worker.store import JobOutcome, get_engine, payload_excerpt, record_jobs

log = logging.getLogger("newsclass.worker")

# Errors that pass by themselves (database down, locked or read-only for a while): retry later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)
_settings = get_settings()


def _engine() -> sa.Engine:
    return get_engine(_settings.database_url)


def _limits() -> Limits:
    return Limits(max_text_chars=_settings.max_text_chars)


def payload_of(request: Any) -> object:
    """The task's one JSON object (also accepted as keyword arguments from lenient clients), from
    a batched request or a task's own request; a :class:`BadCall` for any other shape."""
    args, kwargs = tuple(request.args or ()), dict(request.kwargs or {})
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args and kwargs:
        return kwargs
    return BadCall(list(args), kwargs)


class BadCall:
    """A message that does not carry exactly one JSON object, as it arrived."""

    def __init__(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs

    def reason(self, task: str) -> str:
        keywords = (
            f"keyword arguments {sorted(self.kwargs)}" if self.kwargs else "no keyword arguments"
        )
        return (
            f"{task} takes one JSON object as its only argument; this message "
            f"carried {len(self.args)} positional arguments and {keywords}"
        )

    def as_payload(self) -> dict[str, Any]:
        return {"args": self.args, "kwargs": self.kwargs}


def jobs_of(requests: Sequence[SimpleRequest]) -> list[IngestJob]:
    jobs = []
    for request in requests:
        payload = payload_of(request)
        attempts = 1 + int((request.request_dict or {}).get("retries") or 0)
        if isinstance(payload, BadCall):
            job = IngestJob(
                request.id, payload.as_payload(), attempts, refused=payload.reason(INGEST_TASK)
            )
        else:
            job = IngestJob(request.id, payload, attempts)
        jobs.append(job)
    return jobs


class TextBudgetBatches(Batches):
    """celery-batches' buffer, flushed early once the bodies it holds pass ``max_batch_chars``
    bytes: a run of very large articles is batched a few at a time, so a worker's memory has a
    bound however large the articles a batch may hold."""

    abstract = True
    _buffered_bytes = 0

    def Strategy(self, task: Any, app: Any, consumer: Any) -> Any:
        handle = super().Strategy(task, app, consumer)
        budget = _settings.max_batch_chars

        def task_message_handler(message: Any, *args: Any, **kwargs: Any) -> None:
            handle(message, *args, **kwargs)
            self._buffered_bytes += len(message.body or b"")
            if self._buffered_bytes >= budget:
                self._do_flush()

        return task_message_handler

    def flush(self, requests: Any) -> Any:
        self._buffered_bytes = 0
        return super().flush(requests)


@app.task(
    base=TextBudgetBatches,
    name=INGEST_TASK,
    flush_every=_settings.batch_size,
    flush_interval=_settings.batch_wait,
    acks_late=True,
)
def ingest_article(requests: list[SimpleRequest]) -> None:
    """Public task: ingest one article (a JSON object); the worker runs them in batches."""
    run_jobs(jobs_of(requests))
    maybe_recycle(len(requests))


@app.task(
    bind=True,
    name=RECLASSIFY_TASK,
    acks_late=True,
    ignore_result=True,
    max_retries=_settings.max_retries,  # past it the job is recorded failed, never dropped
)
def reclassify_articles(self: Task, *args: Any, **kwargs: Any) -> None:
    """Public task: re-label stored articles (one JSON object: ``article_ids``, and optionally
    ``model_path`` and ``model_version``). A bad request or a model that cannot be used is a
    rejected job with the reason; the worker goes on."""
    job_id = str(self.request.id)
    attempts = 1 + int(self.request.retries or 0)
    payload = payload_of(self.request)
    try:
        if isinstance(payload, BadCall):
            raise RejectedInput(payload.reason(RECLASSIFY_TASK))
        request = parse_request(payload)
    except RejectedInput as exc:
        record_reclassify_outcome(job_id, payload, exc.reason, attempts=attempts)
        return
    try:
        model = get_model_at(request.model_path)
    except Exception as exc:  # ModelLoadError, or a file that loads but cannot predict
        where = request.model_path or str(_settings.model_path)
        reason = exc.args[0] if isinstance(exc, ModelLoadError) else _short(exc)
        log.error("reclassify job %s: cannot use the model %s: %s", job_id, where, reason)
        record_reclassify_outcome(
            job_id, payload, f"cannot use the model: {reason}", attempts=attempts
        )
        return
    if request.model_version is not None and model.version != request.model_version:
        record_reclassify_outcome(
            job_id,
            payload,
            f"the model {request.model_path or _settings.model_path} is version {model.version}, "
            f"not {request.model_version}",
            attempts=attempts,
        )
        return
    try:
        outcome = process_reclassify(
            job_id, request, engine=_engine(), model=model, attempts=attempts
        )
    except Exception as exc:
        if not is_transient(exc):
            log.exception("reclassify job %s failed", job_id)
            record_reclassify_outcome(job_id, payload, _short(exc), attempts=attempts, failed=True)
            return
        _engine().dispose()
        if attempts <= _settings.max_retries:
            log.warning("reclassify job %s hit an error, retrying later: %s", job_id, _short(exc))
            raise self.retry(countdown=backoff(attempts), exc=exc) from None
        reason = f"gave up after {attempts} tries: {_short(exc)}"
        record_reclassify_outcome(job_id, payload, reason, attempts=attempts, failed=True)
        return
    if outcome is not None:
        log.info("job %s: %s", job_id, outcome.reason)


def record_reclassify_outcome(
    job_id: str, payload: object, reason: str, *, attempts: int, failed: bool = False
) -> None:
    """A bad request or an unusable model is ``rejected``; a job that kept failing is ``failed``
    with its whole payload, so that ``jobs retry`` sends it again to this task."""
    outcome = JobOutcome(
        job_id=job_id,
        status="failed" if failed else "rejected",
        reason=f"reclassify: {reason}",
        payload=json.dumps(payload) if failed else payload_excerpt(_json_able(payload)),
        attempts=attempts,
        task=RECLASSIFY_TASK,
    )
    try:
        with Session(_engine()) as session, session.begin():
            record_jobs(session=session, outcomes=[outcome])
    except Exception:
        log.exception("could not record the outcome of reclassify job %s", job_id)
    log.warning("reclassify job %s %s: %s", job_id, outcome.status, reason)


def _json_able(payload: object) -> object:
    return payload.as_payload() if isinstance(payload, BadCall) else payload


def run_jobs(jobs: list[IngestJob]) -> None:
    """Process a batch, in parts whose texts together stay under ``max_batch_chars`` (so memory
    has a bound whatever the batch holds)."""
    for part in parts_by_size(jobs, max_chars=_settings.max_batch_chars):
        run_part(part)


def parts_by_size(jobs: Sequence[IngestJob], *, max_chars: int) -> list[list[IngestJob]]:
    """Consecutive parts of ``jobs`` whose payload texts add up to at most ``max_chars`` (a job
    larger than that on its own is a part of its own)."""
    parts: list[list[IngestJob]] = [[]]
    size = 0
    for job in jobs:
        job_size = payload_chars(job.payload)
        if parts[-1] and size + job_size > max_chars:
            parts.append([])
            size = 0
        parts[-1].append(job)
        size += job_size
    return [part for part in parts if part]


def payload_chars(payload: object) -> int:
    """How much text a payload carries: its string fields' lengths."""
    if not isinstance(payload, dict):
        return 0
    return sum(len(value) for value in payload.values() if isinstance(value, str))


def run_part(jobs: list[IngestJob]) -> None:
    """When the database is down, retry the jobs later; on any other error, split them in halves
    so one poison job cannot sink the others. After an error a reconnect may cure (read-only,
    disk full, connection lost), the pool is disposed, so the next try uses fresh connections."""
    try:
        outcomes = process_batch(jobs, engine=_engine(), model=get_model(), limits=_limits())
    except Exception as exc:
        transient = is_transient(exc)
        if transient:
            _engine().dispose()
        if (transient and not database_answers()) or len(jobs) == 1:
            log.warning("%d jobs hit an error, retrying later: %s", len(jobs), _short(exc))
            schedule_retries(jobs, exc)
        else:
            mid = len(jobs) // 2
            run_part(jobs[:mid])
            run_part(jobs[mid:])
        return
    counts = Counter(outcome.status for outcome in outcomes)
    log.info("batch of %d: %s", len(jobs), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


# PostgreSQL's SQLSTATEs for faults that pass: connection (08), read-only transaction, out of
# resources (disk full, memory, connections), shutdown or restart, serialization and deadlock.
_TRANSIENT_SQLSTATES = ("08", "25006", "53", "57P", "40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    """Whether a later try, on a fresh connection, may succeed."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES)


def database_answers() -> bool:
    """Whether the database answers a trivial query now: an outage, or one bad job in the batch?"""
    try:
        with _engine().begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


def schedule_retries(jobs: Sequence[IngestJob], exc: BaseException) -> None:
    """Send each job again after an exponential, jittered wait; past the limit, record it failed
    with its full payload so `newsclass jobs retry` can replay it."""
    give_up = [job for job in jobs if job.attempts > _settings.max_retries]
    if give_up:
        record_given_up(give_up, reason=_short(exc))
    for job in jobs:
        if job.attempts <= _settings.max_retries:
            resend(job, countdown=backoff(job.attempts))


def backoff(attempts: int) -> float:
    return (
        float(
            get_exponential_backoff_interval(
                factor=1,
                retries=attempts,
                maximum=int(_settings.retry_backoff_max),
                full_jitter=True,
            )
        )
        or 0.5
    )


def resend(job: IngestJob, *, countdown: float) -> None:
    """The same job (same id, same payload) back on the queue; the current message is then acked."""
    if job.refused is not None and isinstance(job.payload, dict):
        args, kwargs = job.payload["args"], job.payload["kwargs"]
    else:
        args, kwargs = [job.payload], {}
    app.send_task(
        INGEST_TASK,
        args=args,
        kwargs=kwargs,
        task_id=job.id,
        countdown=countdown,
        retries=job.attempts,
    )


def record_given_up(jobs: Sequence[IngestJob], *, reason: str) -> None:
    """Record jobs that ran out of tries as ``failed``, with their payloads for a replay. When that
    cannot be written, a minimal row (id, status, reason) is; when not even that, the jobs go
    back on the queue at the longest wait: a job is never acknowledged without an outcome."""
    try:
        record_failed(jobs, reason=reason, with_payload=True)
        return
    except Exception as exc:
        if is_transient(exc):
            _engine().dispose()
        log.error("cannot record %d failed jobs in full: %s", len(jobs), _short(exc))
        full_error = exc
    try:
        record_failed(
            jobs, reason=f"{reason}; the payload could not be kept: {_short(full_error, 120)}"
        )
        return
    except Exception as exc:
        log.critical("cannot record %d failed jobs at all (%s); sending them again", len(jobs), exc)
    for job in jobs:
        resend(job, countdown=_settings.retry_backoff_max)


def record_failed(jobs: Sequence[IngestJob], *, reason: str, with_payload: bool = False) -> None:
    outcomes = [
        JobOutcome(
            job_id=job.id,
            status="failed",
            reason=f"gave up after {job.attempts} tries: {reason}",
            payload=json.dumps(job.payload, ensure_ascii=False, default=repr)
            if with_payload
            else None,
            attempts=job.attempts,
            task=INGEST_TASK,
        )
        for job in jobs
    ]
    with Session(_engine()) as session, session.begin():
        record_jobs(session=session, outcomes=outcomes)
    log.error("%d jobs failed for good: %s", len(jobs), reason)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
