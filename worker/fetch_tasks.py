"""Tasks of the ``fetch`` queue: the beat's tick, polling one source, fetching one page.

Run them on a worker suited to waiting (``newsclass worker --queues fetch --pool threads
--concurrency 16``) so a slow site never holds up classification. Every article found goes
through the public task ``newsclass.ingest_article`` like any other; nothing here writes articles.

Polls are idempotent: a source is claimed with a lease (one conditional UPDATE), entries and files
already handled are remembered per source, and each article's ingest job id is derived from the
source and the entry, so a poll or a page fetch that runs twice sends the same job twice and the
store keeps one outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from celery import Task
from sqlmodel import Session

from worker.celery_app import app
from worker.client import send_fetch_page, send_ingest, send_poll
from worker.inputs import read_article_file
from worker.names import FETCH_TASK, POLL_TASK, SCHEDULE_TASK
from worker.settings import get_settings
from worker.sources import (
    Fetcher,
    FetchError,
    FetchPolicy,
    feed_hints,
    feed_payload,
    fetch_feed,
    fetch_page,
    move_to_done,
    page_payload,
    scan_folder,
)
from worker.store import (
    JobOutcome,
    JobStatus,
    SeenItem,
    claim_due_sources,
    get_engine,
    get_source,
    mark_seen,
    payload_excerpt,
    record_jobs,
    record_poll_failure,
    record_poll_success,
    seen_keys,
    stored_urls,
    utcnow,
)

log = logging.getLogger("newsclass.fetch")

SCHEDULE_LOCK = "newsclass:schedule-polls"
FETCH_RETRIES = 3
MAX_FILES_PER_POLL = 1000
# Ingest job ids of source entries are uuid5(JOB_NAMESPACE, "source:<id>:<entry key>[:<n>]").
JOB_NAMESPACE = uuid.UUID("5f0c6d0e-8a43-4f7e-9a57-3f1d2c7b9e10")

_settings = get_settings()


@cache
def get_fetcher() -> Fetcher:
    """One HTTP client per process, shared by the pool's threads."""
    return Fetcher(FetchPolicy.from_settings(_settings))


def _engine() -> sa.Engine:
    return get_engine(_settings.database_url)


def job_id_for(source_id: int, key: str, index: int | None = None) -> str:
    suffix = "" if index is None else f":{index}"
    return str(uuid.uuid5(JOB_NAMESPACE, f"source:{source_id}:{key}{suffix}"))


# --------------------------------------------------------------------------------- the tick


@cache
def _redis() -> Any:
    if not _settings.broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    return redis.Redis.from_url(_settings.broker_url, socket_timeout=5)


@contextmanager
def schedule_lock() -> Iterator[bool]:
    """A short Redis lock around one tick: two beats' ticks never claim at the same moment (the
    claim itself is atomic too). Yields whether the lock is held; without Redis, always True."""
    client = _redis()
    if client is None:
        yield True
        return
    lock = client.lock(SCHEDULE_LOCK, timeout=max(30.0, 2 * _settings.beat_tick), blocking=False)
    if not lock.acquire():
        yield False
        return
    try:
        yield True
    finally:
        import redis

        with suppress(redis.exceptions.LockError):  # expired meanwhile: nothing to release
            lock.release()


@app.task(name=SCHEDULE_TASK, ignore_result=True, acks_late=False)
def schedule_polls() -> int:
    """Periodic (from beat): claim each due source and send one poll job for it."""
    with schedule_lock() as held:
        if not held:
            log.info("another scheduler holds the lock; skipping this tick")
            return 0
        now = utcnow()
        token = uuid.uuid4().hex
        with Session(_engine()) as session:
            claimed = claim_due_sources(
                session=session,
                now=now,
                lease_until=now + timedelta(seconds=_settings.poll_lease),
                token=token,
            )
        with app.producer_or_acquire() as producer:
            for source_id in claimed:
                send_poll(source_id, token, app=app, producer=producer)
    if claimed:
        log.info("sent %d poll jobs", len(claimed))
    return len(claimed)


# --------------------------------------------------------------------------------- one source


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    id: int
    kind: str
    location: str
    name: str | None
    move_done: bool
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class PollResult:
    sent: int
    etag: str | None = None
    last_modified: str | None = None


@app.task(name=POLL_TASK, ignore_result=True)
def poll_source(source_id: int, token: str) -> int:
    """Poll one claimed source; record success, or the failure with backoff (and pause)."""
    with Session(_engine()) as session:
        source = get_source(session=session, source_id=source_id)
        if source is None or source.status != "active" or source.poll_token != token:
            log.info("source %s: stale poll job (removed, paused or claimed again)", source_id)
            return 0
        snapshot = SourceSnapshot(
            id=source_id,
            kind=source.kind,
            location=source.location,
            name=source.name,
            move_done=source.move_done,
            etag=source.etag,
            last_modified=source.last_modified,
        )
    try:
        result = poll_feed(snapshot) if snapshot.kind == "feed" else poll_folder(snapshot)
    except FetchError as exc:
        return _failed(snapshot, exc.reason)
    except sa.exc.SQLAlchemyError:
        raise  # the database is the problem, not the source: the lease expires, a later tick retries
    except Exception as exc:
        log.exception("source %s: poll failed", source_id)
        return _failed(snapshot, f"{type(exc).__name__}: {exc}")
    with Session(_engine()) as session:
        record_poll_success(
            session=session,
            source_id=source_id,
            now=utcnow(),
            sent=result.sent,
            etag=result.etag,
            last_modified=result.last_modified,
        )
    log.info("source %s: %d new items", source_id, result.sent)
    return result.sent


def _failed(source: SourceSnapshot, reason: str) -> int:
    reason = reason if len(reason) <= 500 else reason[:499] + "…"
    with Session(_engine()) as session:
        row = record_poll_failure(
            session=session,
            source_id=source.id,
            now=utcnow(),
            reason=reason,
            max_failures=_settings.source_max_failures,
            backoff_max=_settings.source_backoff_max,
        )
    if row is not None and row.status == "paused":
        log.warning("source %s paused: %s", source.id, row.paused_reason)
    else:
        log.warning("source %s: poll failed (%s); next try at %s", source.id, reason,
                    row.next_poll_at if row else "-")  # fmt: skip
    return 0


def poll_feed(source: SourceSnapshot) -> PollResult:
    """Fetch the feed (conditional GET) and send a page job for each entry not seen before."""
    result = fetch_feed(
        get_fetcher(), source.location, etag=source.etag, last_modified=source.last_modified
    )
    if result.not_modified:
        return PollResult(sent=0, etag=source.etag, last_modified=source.last_modified)
    entries = list({entry.key: entry for entry in result.entries}.values())
    with Session(_engine()) as session:
        seen = seen_keys(session=session, source_id=source.id, keys=[e.key for e in entries])
        new = [entry for entry in entries if entry.key not in seen]
        known = stored_urls(session=session, urls=[e.link for e in new if e.link])
    name = source.name or result.title or urlsplit(source.location).hostname
    items: list[SeenItem] = []
    sent = 0
    with app.producer_or_acquire() as producer:
        for entry in new:
            job_id = job_id_for(source.id, entry.key)
            if entry.link and entry.link in known:
                items.append(SeenItem(entry.key, entry.ref, None, "already stored (same URL)"))
                continue
            fallback = feed_payload(entry, name)
            if entry.link:
                request = {"url": entry.link, "job_id": job_id, "source": name,
                           "hints": feed_hints(entry), "fallback": fallback}  # fmt: skip
                send_fetch_page(request, app=app, producer=producer)
            elif fallback:
                send_ingest(fallback, job_id=job_id, app=app, producer=producer)
            else:
                items.append(SeenItem(entry.key, entry.ref, None, "no link and no text"))
                continue
            items.append(SeenItem(entry.key, entry.ref, job_id, None))
            sent += 1
    with Session(_engine()) as session:
        mark_seen(session=session, source_id=source.id, items=items)
    return PollResult(sent=sent, etag=result.etag, last_modified=result.last_modified)


def poll_folder(source: SourceSnapshot) -> PollResult:
    """Send the files dropped in the folder since the last poll (each file once, by path and
    content); move them to done/ when the source says so."""
    root = Path(source.location)
    files = []
    for found in scan_folder(root, max_bytes=_settings.fetch_max_bytes):
        files.append(found)
        if len(files) >= MAX_FILES_PER_POLL:
            break
    with Session(_engine()) as session:
        seen = seen_keys(session=session, source_id=source.id, keys=[f.key for f in files])
    name = source.name or root.name
    items: list[SeenItem] = []
    sent = 0
    with app.producer_or_acquire() as producer:
        for file in files:
            if file.key in seen:
                continue
            try:
                payloads = read_article_file(file.path)
            except (ValueError, OSError) as exc:
                log.warning("source %s: skipping %s: %s", source.id, file.relative, exc)
                items.append(SeenItem(file.key, file.relative, None, str(exc)[:500]))
                continue
            first = None
            for index, payload in enumerate(payloads):
                job_id = job_id_for(source.id, file.key, index)
                first = first or job_id
                if not payload.get("source"):
                    payload = {**payload, "source": name}
                send_ingest(payload, job_id=job_id, app=app, producer=producer)
                sent += 1
            items.append(SeenItem(file.key, file.relative, first, f"{len(payloads)} articles"))
    with Session(_engine()) as session:
        mark_seen(session=session, source_id=source.id, items=items)
    if source.move_done:
        for file in files:
            try:
                move_to_done(root, file)
            except OSError as exc:
                log.warning("source %s: cannot move %s to done/: %s", source.id, file.relative, exc)
    return PollResult(sent=sent)


# --------------------------------------------------------------------------------- one page


@app.task(name=FETCH_TASK, bind=True, ignore_result=True, max_retries=FETCH_RETRIES)
def fetch_page_task(self: Task, request: dict[str, Any]) -> str | None:
    """Fetch one page, extract its main text and send it to ``newsclass.ingest_article``.

    ``request``: ``url`` (required), ``job_id`` (the ingest job's id), ``source``, ``hints``
    (title, author, published_at, id from a feed) and ``fallback`` (the article from the feed's
    own text, sent with ``origin: feed`` when the page cannot be had). Without a fallback a page
    that cannot be had is recorded as a rejected job (after retries, when the error may pass)."""
    url = str(request.get("url") or "")
    job_id = str(request.get("job_id") or self.request.id)
    fallback = request.get("fallback")
    try:
        page = fetch_page(get_fetcher(), url)
    except FetchError as exc:
        if fallback:
            log.info("%s: using the feed's text (%s)", url, exc.reason)
            send_ingest(fallback, job_id=job_id, app=app)
            return job_id
        if exc.transient and self.request.retries < FETCH_RETRIES:
            raise self.retry(countdown=2.0 * 2**self.request.retries, exc=exc) from None
        _record_unfetched(job_id, request, exc.reason, transient=exc.transient)
        return None
    send_ingest(page_payload(page.text, page.meta, request), job_id=job_id, app=app)
    return job_id


def _record_unfetched(
    job_id: str, request: dict[str, Any], reason: str, *, transient: bool
) -> None:
    # Rejected, not failed: a failed job is replayed into ingest_article, which takes articles.
    status: JobStatus = "rejected"
    tries = f" (after {FETCH_RETRIES + 1} tries)" if transient else ""
    outcome = JobOutcome(
        job_id=job_id,
        status=status,
        reason=f"could not fetch the page{tries}: {reason}",
        source=request.get("source"),
        payload=payload_excerpt(request),
        task=FETCH_TASK,
    )
    with Session(_engine()) as session, session.begin():
        record_jobs(session=session, outcomes=[outcome])
    log.warning("job %s %s: %s", job_id, status, reason)
