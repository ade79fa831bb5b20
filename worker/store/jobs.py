"""Job outcomes: one row per job, keyed by its task id (``job_key``), written idempotently.

Commit rule: functions take a session and never commit; the caller owns the transaction (a batch's
articles and its job records are committed together).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from worker.store.engine import _insert
from worker.store.models import JOB, JOB_ID_CHARS, JOB_STATUSES, Job, JobStatus, utcnow

PAYLOAD_EXCERPT_CHARS = 500
_HASHED_ID = "sha256:"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job_id: str
    status: JobStatus
    article_id: int | None = None
    reason: str | None = None
    external_id: str | None = None
    source: str | None = None
    payload: str | None = None
    attempts: int = 1
    task: str | None = None  # the task's name (worker/names.py)


def job_key(job_id: str) -> str:
    """The form of a task id the job table holds: the id itself when it fits the column and is
    printable text (a UUID, any sane producer's id); else ``sha256:`` and its hash, so that an id
    of any length or content (NUL, which PostgreSQL refuses; a lone surrogate, which no encoder
    writes) still gets its outcome. Every read and write of the job table goes through it, and
    a key is its own key (``jobs show sha256:...`` finds the job)."""
    if 0 < len(job_id) <= JOB_ID_CHARS and job_id.isprintable():
        return job_id
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()
    return _HASHED_ID + digest[: JOB_ID_CHARS - len(_HASHED_ID)]


def storable_text(text: str | None) -> str | None:
    """``text`` as both databases can hold it: NUL and lone surrogates written as escapes."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def finished_job_ids(*, session: Session, job_ids: Sequence[str]) -> set[str]:
    """Jobs that already have an outcome: a redelivered message for them is a no-op."""
    if not job_ids:
        return set()
    keys = {job_key(job_id): job_id for job_id in job_ids}
    rows = session.exec(select(Job.id).where(col(Job.id).in_(list(keys)), Job.status != "failed"))
    return {keys[key] for key in rows}


def record_jobs(*, session: Session, outcomes: Iterable[JobOutcome]) -> None:
    """Record each job's outcome; a job recorded before keeps its first outcome (idempotent),
    except a ``failed`` one, which a replay (``jobs retry``) may turn into another outcome.
    Each names its task when the caller says (``JobOutcome.task``)."""
    now = utcnow()
    rows = [
        {
            "id": job_key(o.job_id),
            "status": o.status,
            "reason": storable_text(_with_original_id(o.reason, o.job_id)),
            "article_id": o.article_id,
            "external_id": storable_text(o.external_id),
            "source": storable_text(o.source),
            "payload": storable_text(o.payload),
            "attempts": o.attempts,
            "created_at": now,
            "updated_at": now,
            "task": storable_text(o.task),
        }
        for o in outcomes
    ]
    if rows:
        stmt = _insert(session, JOB)
        replay = ("status", "reason", "article_id", "payload", "attempts", "updated_at")
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"],
                # a replay that does not name its task keeps the one recorded
                set_={
                    **{c: stmt.excluded[c] for c in replay},
                    "task": sa.func.coalesce(stmt.excluded.task, JOB.c.task),
                },
                where=JOB.c.status == "failed",
            ),
            rows,
        )


def _with_original_id(reason: str | None, job_id: str) -> str | None:
    """A job stored by its id's hash keeps the original id (escaped, bounded) in its reason."""
    if job_key(job_id) == job_id:
        return reason
    note = f"task id {job_id[:200]!a}{'…' if len(job_id) > 200 else ''} stored by its hash"
    return note if reason is None else f"{reason} ({note})"


def payload_excerpt(payload: object, limit: int = PAYLOAD_EXCERPT_CHARS) -> str:
    """A bounded, JSON-ish rendering of a payload for a rejected job's record."""
    try:
        text = json.dumps(payload, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(payload)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count_outcomes(*, session: Session) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(JOB_STATUSES, 0)
    for status, n in session.exec(select(Job.status, func.count()).group_by(Job.status)):
        counts[status] = n
    return counts


def find_jobs(
    *, session: Session, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[Job]:
    stmt = select(Job)
    if status:
        stmt = stmt.where(Job.status == status)
    stmt = stmt.order_by(col(Job.updated_at).desc(), col(Job.id)).limit(limit).offset(offset)
    return list(session.exec(stmt))


def get_jobs(*, session: Session, job_ids: Sequence[str]) -> dict[str, Job]:
    """The recorded jobs among ``job_ids``, keyed by the ids as given."""
    keys = {job_key(job_id): job_id for job_id in job_ids}
    rows = session.exec(select(Job).where(col(Job.id).in_(list(keys))))
    return {keys[job.id]: job for job in rows}
