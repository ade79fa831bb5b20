"""Sources and their polls: register, list, pause, resume and remove feeds and drop folders;
claim the due ones under a lease; record each poll's success or failure and the items it handled.

Commit rule: each function that writes commits its own short transaction (a poll's bookkeeping must
not wait for, or roll back with, the jobs it sends); the reads do not commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from worker.store.engine import _insert
from worker.store.models import Source, SourceItem, SourceKind, SourceStatus, utcnow


class SourceExists(ValueError):
    """A source of that kind and location is already registered."""


@dataclass(frozen=True, slots=True)
class SeenItem:
    entry_key: str
    ref: str | None = None
    job_id: str | None = None
    note: str | None = None


def add_source(
    *,
    session: Session,
    kind: SourceKind,
    location: str,
    every: int,
    name: str | None = None,
    move_done: bool = False,
) -> Source:
    """Register a source, due at once. Commits. Raises SourceExists for a second registration."""
    found = session.exec(
        select(Source).where(Source.kind == kind, Source.location == location)
    ).first()
    if found is not None:
        raise SourceExists(f"{kind} {location} is already source {found.id}")
    source = Source(kind=kind, location=location, name=name, every=every, move_done=move_done)
    session.add(source)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        raise SourceExists(f"{kind} {location} is already registered") from None
    session.refresh(source)
    return source


def list_sources(*, session: Session) -> list[Source]:
    return list(session.exec(select(Source).order_by(col(Source.id))))


def get_source(*, session: Session, source_id: int) -> Source | None:
    return session.get(Source, source_id)


def set_source_status(
    *, session: Session, source_id: int, status: SourceStatus, reason: str | None = None
) -> Source | None:
    """Pause (with a reason) or resume a source; resuming clears its failures and makes it due.
    Commits. None when there is no such source."""
    source = session.get(Source, source_id)
    if source is None:
        return None
    source.status = status
    if status == "paused":
        source.paused_reason = reason or "paused by hand"
    else:
        source.paused_reason = None
        source.failures = 0
        source.next_poll_at = utcnow()
    session.add(source)
    session.commit()
    session.refresh(source)
    return source


def remove_source(*, session: Session, source_id: int) -> bool:
    """Delete a source and its seen items (stored articles stay). Commits."""
    if session.get(Source, source_id) is None:
        return False
    session.execute(sa.delete(SourceItem).where(col(SourceItem.source_id) == source_id))
    session.execute(sa.delete(Source).where(col(Source.id) == source_id))
    session.commit()
    return True


def claim_due_sources(
    *, session: Session, now: datetime, lease_until: datetime, token: str, limit: int = 500
) -> list[int]:
    """Take the lease of each due source (active, next poll passed, no poll holding it) and
    return their ids. Each claim is one conditional UPDATE, so two schedulers never claim one
    source twice. Commits."""
    candidates = session.exec(
        select(Source.id)
        .where(
            Source.status == "active",
            col(Source.next_poll_at) <= now,
            sa.or_(col(Source.poll_until).is_(None), col(Source.poll_until) < now),
        )
        .order_by(col(Source.next_poll_at))
        .limit(limit)
    ).all()
    claimed: list[int] = []
    for source_id in candidates:
        result = session.execute(
            sa.update(Source)
            .where(
                col(Source.id) == source_id,
                col(Source.status) == "active",
                col(Source.next_poll_at) <= now,
                sa.or_(col(Source.poll_until).is_(None), col(Source.poll_until) < now),
            )
            .values(poll_until=lease_until, poll_token=token)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(int(source_id))  # type: ignore[arg-type]
    session.commit()
    return claimed


def record_poll_success(
    *,
    session: Session,
    source_id: int,
    now: datetime,
    sent: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> None:
    """A poll went through: clear the failures and the lease, schedule the next poll. Commits."""
    source = session.get(Source, source_id)
    if source is None:
        return
    source.failures = 0
    source.last_polled_at = source.last_success_at = now
    source.next_poll_at = now + timedelta(seconds=source.every)
    source.poll_until = source.poll_token = None
    source.items_sent += sent
    if source.kind == "feed":
        source.etag, source.last_modified = etag, last_modified
    session.add(source)
    session.commit()


def record_poll_failure(
    *,
    session: Session,
    source_id: int,
    now: datetime,
    reason: str,
    max_failures: int,
    backoff_max: float,
) -> Source | None:
    """A poll failed: record when and why, wait exponentially longer (every * 2^failures, at
    most ``backoff_max``) and, at ``max_failures`` in a row, pause with the reason. Commits."""
    source = session.get(Source, source_id)
    if source is None:
        return None
    source.failures += 1
    source.last_polled_at = source.last_error_at = now
    source.last_error = reason
    wait = min(float(source.every) * 2.0 ** min(source.failures, 30), backoff_max)
    source.next_poll_at = now + timedelta(seconds=wait)
    source.poll_until = source.poll_token = None
    if source.failures >= max_failures and source.status == "active":
        source.status = "paused"
        source.paused_reason = f"{source.failures} failed polls in a row; last: {reason}"
    session.add(source)
    session.commit()
    session.refresh(source)
    return source


def seen_keys(*, session: Session, source_id: int, keys: Sequence[str]) -> set[str]:
    """The keys among ``keys`` already handled for this source."""
    found: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        found.update(
            session.exec(
                select(SourceItem.entry_key).where(
                    SourceItem.source_id == source_id,
                    col(SourceItem.entry_key).in_(unique[start : start + 500]),
                )
            )
        )
    return found


def mark_seen(*, session: Session, source_id: int, items: Sequence[SeenItem]) -> None:
    """Record items as handled (a second mark of one item is a no-op). Commits."""
    if not items:
        return
    now = utcnow()
    rows = [
        {
            "source_id": source_id,
            "entry_key": item.entry_key,
            "ref": item.ref,
            "job_id": item.job_id,
            "note": item.note,
            "seen_at": now,
        }
        for item in items
    ]
    table = SQLModel.metadata.tables[SourceItem.__tablename__]
    session.execute(_insert(session, table).values(rows).on_conflict_do_nothing())
    session.commit()
