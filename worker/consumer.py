"""Celery's consumer, guarded: every message it takes ends in exactly one recorded outcome.

Before Celery's own strategy sees a message, :class:`GuardedConsumer` checks it
(worker/messages.py). A message that cannot be run (refused by the transport, not JSON, headers
that are not an object, a body that is not ``[args, kwargs, embed]``, an unknown task, a pickle)
becomes a ``rejected`` job with the reason and an excerpt of what arrived, and is acknowledged so
it never returns. Whatever else a message makes Celery raise is caught and recorded the same way:
the worker process does not exit for any message.

An outcome that cannot be written (the database is down) leaves the message unacknowledged: it
returns after the visibility timeout and is recorded then, never acknowledged silently.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed
from sqlmodel import Session
from vine import promise

from worker.messages import (
    REFUSED_HEADER,
    Refusal,
    excerpt,
    refused_job_id,
    task_message_problem,
)
from worker.settings import get_settings
from worker.store import JobOutcome, get_engine, record_jobs

log = logging.getLogger("newsclass.consumer")


def refusal_of(message: Any, known_tasks: Any) -> Refusal | None:
    """Why ``message`` cannot be run, or None when Celery may take it; a refusal names the task
    the message names, where it names one."""
    refusal = _refusal(message, known_tasks)
    if refusal is None or refusal.task is not None:
        return refusal
    headers = message.headers
    task = headers.get("task") if isinstance(headers, dict) else None
    return replace(refusal, task=task if isinstance(task, str) else None)


def _refusal(message: Any, known_tasks: Any) -> Refusal | None:
    headers = message.headers
    if isinstance(headers, dict) and isinstance(headers.get(REFUSED_HEADER), dict):
        refused = headers[REFUSED_HEADER]
        task = refused.get("task")
        return Refusal(
            str(refused.get("reason")),
            str(refused.get("id")),
            str(refused.get("excerpt")),
            task if isinstance(task, str) else None,
        )
    job_id = _job_id(message)
    try:
        body = message.decode()
    except ContentDisallowed:
        return Refusal(
            f"content type {message.content_type!r} is not accepted: newsclass accepts JSON "
            "messages only",
            job_id,
            excerpt(message.body),
        )
    except Exception as exc:  # kombu raises what the decoder raises
        return Refusal(f"the message body is not valid JSON: {exc}", job_id, excerpt(message.body))
    if isinstance(headers, dict) and "task" not in headers and isinstance(body, dict):
        return _protocol_1_problem(body, job_id)
    max_wait = get_settings().broker_visibility_timeout
    problem = task_message_problem(headers, body, max_wait=max_wait)
    if problem is None and headers["task"] not in known_tasks:
        problem = (
            f"unknown task {headers['task']!r}: this worker runs {', '.join(sorted(known_tasks))}"
        )
    return None if problem is None else Refusal(problem, job_id, excerpt(body))


def _protocol_1_problem(body: dict[str, Any], job_id: str) -> Refusal | None:
    """Celery's old message protocol 1 (everything in the body); Celery converts it itself."""
    ok = (
        isinstance(body.get("task"), str)
        and isinstance(body.get("id"), str)
        and isinstance(body.get("args", []), list)
        and isinstance(body.get("kwargs", {}), dict)
    )
    if ok:
        return None
    reason = (
        "the message names no task: neither headers.task (protocol 2) nor body.task (protocol 1)"
    )
    return Refusal(reason, job_id, excerpt(body))


def _job_id(message: Any) -> str:
    headers = message.headers
    if isinstance(headers, dict) and isinstance(headers.get("id"), str):
        return str(headers["id"])
    return refused_job_id(message.body if isinstance(message.body, bytes | str) else b"")


def record_refusal(refusal: Refusal) -> bool:
    """Record a refused message as a rejected job; False when the outcome cannot be written."""
    outcome = JobOutcome(
        job_id=refusal.job_id,
        status="rejected",
        reason=f"message refused: {refusal.reason}",
        payload=refusal.excerpt,
        task=refusal.task,
    )
    engine = get_engine(get_settings().database_url)
    try:
        with Session(engine) as session, session.begin():
            record_jobs(session=session, outcomes=[outcome])
    except Exception as exc:
        engine.dispose()  # the next try opens fresh connections (see tasks.run_part)
        log.error(
            "cannot record refused message %s now (%s): it returns later", refusal.job_id, exc
        )
        return False
    log.warning("message %s refused: %s", refusal.job_id, refusal.reason)
    return True


class GuardedConsumer(Consumer):
    """Celery's consumer with every message checked first; see the module docstring."""

    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)
        connection_errors = tuple(self.connection_errors)

        def on_task_received(message: Any) -> Any:
            refusal = refusal_of(message, self.strategies)
            if refusal is not None:
                return self.refuse(message, refusal)
            try:
                return handle(message)
            except connection_errors:
                raise
            except Exception as exc:
                if message.acknowledged:
                    log.exception("error after message %s was taken", _job_id(message))
                    return None
                reason = f"the message cannot be run: {type(exc).__name__}: {exc}"
                return self.refuse(
                    message, Refusal(reason, _job_id(message), excerpt(message.body))
                )

        return on_task_received

    def refuse(self, message: Any, refusal: Refusal) -> None:
        if record_refusal(refusal):
            message.ack_log_error(log, self.connection_errors)
        else:
            release = getattr(message.channel.qos, "release", None)
            if release is not None:
                release(message.delivery_tag)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """kombu could not build the message (bad encoding or compression): record, then ack."""
        refusal = Refusal(
            f"the message cannot be decoded: {type(exc).__name__}: {exc}",
            _job_id(message),
            excerpt(message.body),
        )
        if record_refusal(refusal):
            super().on_decode_error(message, exc)
