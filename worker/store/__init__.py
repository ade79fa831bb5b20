"""Keyword-only data functions over the tables of ``worker.store.models``.

Writes are idempotent: an article is unique by its content hash and a job by its id, so a job that
runs twice (redelivery after a crash) changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, func, select

from worker.store.engine import _insert, get_engine
from worker.store.models import (
    ALL_JOB_STATUSES,
    ARTICLE,
    ARTICLE_LABEL,
    ARTICLE_SORTS,
    JOB,
    JOB_ID_CHARS,
    JOB_STATUSES,
    STATS_BY,
    TIME_FIELDS,
    Article,
    ArticleBase,
    ArticleLabel,
    Job,
    JobStatus,
    SortOrder,
    Source,
    SourceItem,
    SourceKind,
    SourceStatus,
    StatsBy,
    TimeField,
    utcnow,
)

PAYLOAD_EXCERPT_CHARS = 500
_HASHED_ID = "sha256:"


# --------------------------------------------------------------------------------------- writes


@dataclass(frozen=True, slots=True)
class NewArticle:
    """What the pipeline hands the store for one job whose article was accepted."""

    job_id: str
    fields: dict[str, Any]  # Article columns (content_hash, text, labels, scores, ...)
    labels: dict[str, float]  # assigned label -> score


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


def upsert_articles(*, session: Session, items: Sequence[NewArticle]) -> list[JobOutcome]:
    """Insert the articles not yet stored (by content hash); the rest are duplicates.

    Returns one outcome per item, in order. Does not commit: the caller commits the batch with
    its job records in one transaction.
    """
    if not items:
        return []
    hashes = list({item.fields["content_hash"] for item in items})
    existing = dict(
        session.exec(
            select(Article.content_hash, Article.id).where(col(Article.content_hash).in_(hashes))
        ).all()
    )
    first_of_hash: dict[str, NewArticle] = {}
    for item in items:
        first_of_hash.setdefault(item.fields["content_hash"], item)
    to_insert = [item for h, item in first_of_hash.items() if h not in existing]
    if to_insert:
        # One cached statement run as executemany ("insertmanyvalues" batches it, RETURNING
        # included): far cheaper than compiling a multi-row VALUES clause per batch.
        stmt = (
            _insert(session, ARTICLE)
            .on_conflict_do_nothing(index_elements=["content_hash"])
            .returning(ARTICLE.c.id, ARTICLE.c.content_hash)
        )
        rows = session.execute(stmt, [item.fields for item in to_insert]).all()
        inserted = {h: i for i, h in rows}
        label_rows = [
            {
                "article_id": inserted[item.fields["content_hash"]],
                "model_version": item.fields["model_version"],
                "label": label,
                "score": score,
            }
            for item in to_insert
            if item.fields["content_hash"] in inserted
            for label, score in item.labels.items()
        ]
        if label_rows:
            session.execute(_insert(session, ARTICLE_LABEL).on_conflict_do_nothing(), label_rows)
    else:
        inserted = {}
    missing = [h for h in hashes if h not in existing and h not in inserted]
    if missing:  # lost an insert race with another worker: the article is there now
        existing.update(
            session.exec(
                select(Article.content_hash, Article.id).where(
                    col(Article.content_hash).in_(missing)
                )
            ).all()
        )
    outcomes = []
    for item in items:
        h = item.fields["content_hash"]
        stored_here = h in inserted and first_of_hash[h] is item
        outcomes.append(
            JobOutcome(
                job_id=item.job_id,
                status="stored" if stored_here else "duplicate",
                article_id=inserted.get(h) or existing.get(h),
                external_id=item.fields.get("external_id"),
                source=item.fields.get("source"),
            )
        )
    return outcomes


@dataclass(frozen=True, slots=True)
class Relabel:
    """An article's classification under one model version, to become its current one."""

    article_id: int
    fields: dict[str, Any]  # model_version, labels, scores, primary_label, paragraphs, explanation
    labels: dict[str, float]  # assigned label -> score


RELABEL_COLUMNS = (
    "model_version",
    "labels",
    "scores",
    "primary_label",
    "paragraphs",
    "explanation",
)


def relabel_articles(*, session: Session, items: Sequence[Relabel]) -> None:
    """Make each item's classification its article's current one: that model version's label
    rows are replaced (so running twice adds nothing), every other version's rows are kept
    (queryable with ``model_version``), and the article row's classification columns are set.

    Does not commit: the caller commits with the job's outcome in one transaction.
    """
    if not items:
        return
    ids_of: dict[str, list[int]] = {}
    for item in items:
        ids_of.setdefault(item.fields["model_version"], []).append(item.article_id)
    for version, ids in ids_of.items():
        session.execute(
            sa.delete(ARTICLE_LABEL).where(
                ARTICLE_LABEL.c.model_version == version, ARTICLE_LABEL.c.article_id.in_(ids)
            )
        )
    label_rows = [
        {
            "article_id": item.article_id,
            "model_version": item.fields["model_version"],
            "label": label,
            "score": score,
        }
        for item in items
        for label, score in item.labels.items()
    ]
    if label_rows:
        session.execute(_insert(session, ARTICLE_LABEL).on_conflict_do_nothing(), label_rows)
    stmt = (
        sa.update(ARTICLE)
        .where(ARTICLE.c.id == sa.bindparam("b_id"))
        .values({c: sa.bindparam(f"b_{c}", type_=ARTICLE.c[c].type) for c in RELABEL_COLUMNS})
    )
    session.execute(
        stmt,
        [
            {"b_id": item.article_id, **{f"b_{c}": item.fields[c] for c in RELABEL_COLUMNS}}
            for item in items
        ],
    )


def record_jobs(*, session: Session, outcomes: Iterable[JobOutcome]) -> None:
    """Record each job's outcome; a job recorded before keeps its first outcome (idempotent),
    except a ``failed`` one, which a replay (``jobs retry``) may turn into another outcome."""
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
        }
        for o in outcomes
    ]
    if rows:
        stmt = _insert(session, JOB)
        replay = ("status", "reason", "article_id", "payload", "attempts", "updated_at")
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={c: stmt.excluded[c] for c in replay},
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


# --------------------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    labels: tuple[str, ...] = ()
    label_mode: Literal["any", "all"] = "any"
    min_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    model_version: str | None = None
    time: TimeField = "published"  # which time since/until and sorting use
    search: str | None = None  # full text of title and text (words, "phrases", OR, -word)


def article_time(time: TimeField = "published") -> Any:
    """The time filters, sorting and stats use: published (else ingested) time, or ingested time.

    Both are indexed (``ix_article_effective_time`` is on the coalesce expression, migration 0003).
    """
    if time == "ingested":
        return col(Article.ingested_at)
    return func.coalesce(col(Article.published_at), col(Article.ingested_at))


def find_articles(
    *,
    session: Session,
    where: ArticleFilter = ArticleFilter(),
    limit: int = 50,
    offset: int = 0,
    sort: SortOrder = "newest",
) -> list[Article]:
    """Articles matching the filter, newest first (published time, else ingested time) unless
    ``sort`` says oldest first, or highest score (of the filtered labels, else of any) first."""
    stmt = select(Article)
    for clause in _filter_clauses(where, dialect=session.get_bind().dialect.name):
        stmt = stmt.where(clause)
    when = article_time(where.time)
    if sort == "oldest":
        order = [when.asc(), col(Article.id).asc()]
    elif sort == "score":
        order = [_best_score(where).desc().nulls_last(), when.desc(), col(Article.id).desc()]
    else:
        order = [when.desc(), col(Article.id).desc()]
    stmt = stmt.order_by(*order).limit(limit).offset(offset)
    return list(session.exec(stmt))


def _best_score(where: ArticleFilter) -> Any:
    version = sa.literal(where.model_version) if where.model_version else Article.model_version
    sub = select(func.max(ArticleLabel.score)).where(
        ArticleLabel.article_id == Article.id, ArticleLabel.model_version == version
    )
    if where.labels:
        sub = sub.where(col(ArticleLabel.label).in_(where.labels))
    return sub.scalar_subquery()


def _utc(value: datetime) -> datetime:
    # SQLite stores the UTC wall clock without an offset: compare in UTC on both databases.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_FTS_TOKEN = re.compile(r'"[^"]*"?|\S+')


def fts5_query(text: str) -> str | None:
    """A web-search-like query (words, "phrases", OR, -word) as a safe FTS5 MATCH expression,
    close to what PostgreSQL's ``websearch_to_tsquery`` makes of the same text; None if empty."""
    parts: list[str] = []
    for chunk in _FTS_TOKEN.findall(text):
        negate = chunk.startswith("-") and len(chunk) > 1
        words = re.findall(r"\w+", chunk)
        if chunk == "OR":
            if parts and parts[-1] not in ("OR", "NOT"):
                parts.append("OR")
            continue
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negate:
            if not parts or parts[-1] in ("OR", "NOT"):
                continue  # FTS5's NOT needs a term before it
            parts.append("NOT")
        parts.append(term)
    while parts and parts[-1] in ("OR", "NOT"):
        parts.pop()
    return " ".join(parts) or None


def _search_clause(text: str, dialect: str) -> Any:
    if dialect == "postgresql":
        query = func.websearch_to_tsquery(
            sa.literal_column("'english'::regconfig"), sa.literal(text, sa.Text)
        )
        return sa.literal_column("article.search_vector").op("@@")(query)
    match = fts5_query(text)
    if match is None:
        return sa.false()
    fts = sa.table("article_fts", sa.column("rowid"))
    hits = select(fts.c.rowid).where(
        sa.text("article_fts MATCH :fts_match").bindparams(fts_match=match)
    )
    return col(Article.id).in_(hits)


def _filter_clauses(where: ArticleFilter, *, dialect: str = "sqlite") -> list[Any]:
    clauses: list[Any] = []
    if where.labels:
        version = sa.literal(where.model_version) if where.model_version else Article.model_version

        def has(label: str) -> Any:
            sub = select(ArticleLabel.article_id).where(
                ArticleLabel.article_id == Article.id,
                ArticleLabel.label == label,
                ArticleLabel.model_version == version,
            )
            if where.min_score is not None:
                sub = sub.where(ArticleLabel.score >= where.min_score)
            return sub.correlate(Article).exists()

        checks = [has(label) for label in where.labels]
        clauses.append(sa.and_(*checks) if where.label_mode == "all" else sa.or_(*checks))
    elif where.min_score is not None:
        sub = select(ArticleLabel.article_id).where(
            ArticleLabel.article_id == Article.id,
            ArticleLabel.model_version == Article.model_version,
            ArticleLabel.score >= where.min_score,
        )
        clauses.append(sub.correlate(Article).exists())
    if where.model_version and not where.labels:
        clauses.append(Article.model_version == where.model_version)
    when = article_time(where.time)
    if where.since is not None:
        clauses.append(when >= _utc(where.since))
    if where.until is not None:
        clauses.append(when < _utc(where.until))
    if where.source is not None:
        clauses.append(Article.source == where.source)
    if where.search:
        clauses.append(_search_clause(where.search, dialect))
    return clauses


def get_article(*, session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id)


@dataclass(frozen=True, slots=True)
class ArticleVersion:
    """An article's current model version and labels: what ``reclassify`` selects and reports."""

    id: int
    model_version: str
    labels: tuple[str, ...]


def find_article_versions(
    *, session: Session, where: ArticleFilter = ArticleFilter(), limit: int | None = None
) -> list[ArticleVersion]:
    """Every article matching the filter (as ``find_articles`` reads it), by id, without its
    text: the ids, current versions and labels of the articles to reclassify."""
    stmt = select(Article.id, Article.model_version, Article.labels)
    for clause in _filter_clauses(where, dialect=session.get_bind().dialect.name):
        stmt = stmt.where(clause)
    stmt = stmt.order_by(col(Article.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        ArticleVersion(int(i), v, tuple(labels or ())) for i, v, labels in session.execute(stmt)
    ]


def get_article_versions(
    *, session: Session, article_ids: Sequence[int]
) -> dict[int, ArticleVersion]:
    """The current model version and labels of the given articles (absent ones are left out)."""
    found: dict[int, ArticleVersion] = {}
    unique = list(dict.fromkeys(article_ids))
    for start in range(0, len(unique), 500):
        stmt = select(Article.id, Article.model_version, Article.labels).where(
            col(Article.id).in_(unique[start : start + 500])
        )
        for i, v, labels in session.execute(stmt):
            found[int(i)] = ArticleVersion(int(i), v, tuple(labels or ()))
    return found


def get_articles(*, session: Session, article_ids: Sequence[int]) -> list[Article]:
    """The given articles (absent ones are left out), by id."""
    if not article_ids:
        return []
    stmt = select(Article).where(col(Article.id).in_(list(article_ids))).order_by(col(Article.id))
    return list(session.exec(stmt))


def find_article_labels(*, session: Session, article_id: int) -> list[ArticleLabel]:
    """Every label row of one article, all model versions (newest version last by name)."""
    stmt = (
        select(ArticleLabel)
        .where(ArticleLabel.article_id == article_id)
        .order_by(col(ArticleLabel.model_version), col(ArticleLabel.label))
    )
    return list(session.exec(stmt))


def count_by(
    *,
    session: Session,
    by: StatsBy,
    where: ArticleFilter = ArticleFilter(),
) -> list[dict[str, Any]]:
    """Articles, and articles per label (current model version), per UTC day, week (starting
    Monday), month, or per source, in key order: ``[{"key": "2026-01-05", "articles": 3,
    "defence": 2, ...}]`` (labels with no article are absent). Days are ISO dates."""
    dialect = session.get_bind().dialect.name
    key = _bucket(by, article_time(where.time), dialect).label("key")
    clauses = _filter_clauses(where, dialect=dialect)
    totals = select(key, func.count()).select_from(Article).where(*clauses).group_by(key)
    per_label = (
        select(key, ArticleLabel.label, func.count())
        .select_from(Article)
        .join(ArticleLabel, col(ArticleLabel.article_id) == Article.id)
        .where(ArticleLabel.model_version == Article.model_version, *clauses)
        .group_by(key, ArticleLabel.label)
    )
    rows: dict[Any, dict[str, Any]] = {}
    for k, n in session.execute(totals):
        rows[k] = {"key": k, "articles": n}
    for k, label, n in session.execute(per_label):
        rows.setdefault(k, {"key": k, "articles": 0})[label] = n
    return sorted(rows.values(), key=lambda row: (row["key"] is None, row["key"] or ""))


def _bucket(by: StatsBy, when: Any, dialect: str) -> Any:
    if by == "source":
        return col(Article.source)
    if dialect == "postgresql":
        utc = func.timezone("UTC", when)
        return func.to_char(func.date_trunc(by, utc), "YYYY-MM-DD")
    # SQLite: from the stored text's date part, since date() rounds the last microseconds of
    # 9999-12-31 up to a year it cannot print (NULL).
    day = func.substr(when, 1, 10)
    if by == "week":
        return func.date(day, "weekday 0", "-6 days")
    if by == "month":
        return func.strftime("%Y-%m-01", day)
    return func.date(day)


def count_outcomes(*, session: Session) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(JOB_STATUSES, 0)
    for status, n in session.exec(select(Job.status, func.count()).group_by(Job.status)):
        counts[status] = n
    return counts


def count_labels(*, session: Session) -> dict[str, int]:
    """Articles per assigned label, under each article's current model version."""
    stmt = (
        select(ArticleLabel.label, func.count())
        .join(Article, col(Article.id) == ArticleLabel.article_id)
        .where(ArticleLabel.model_version == Article.model_version)
        .group_by(ArticleLabel.label)
    )
    return {label: n for label, n in session.exec(stmt)}


def count_articles(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(Article)).one()


def latest_time(*, session: Session, time: TimeField = "published") -> datetime | None:
    """The newest article's time (an index lookup), in UTC; None when nothing is stored."""
    when = session.execute(select(func.max(article_time(time)))).scalar()
    if isinstance(when, str):  # SQLite gives a coalesce() of two DATETIME columns back as text
        when = datetime.fromisoformat(when)
    return None if when is None else _utc(when)


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


def stored_urls(*, session: Session, urls: Sequence[str]) -> set[str]:
    """The URLs among ``urls`` (normalised) that a stored article already has."""
    unique = list(dict.fromkeys(urls))
    found: set[str] = set()
    for start in range(0, len(unique), 500):
        found.update(
            url
            for url in session.exec(
                select(Article.url).where(col(Article.url).in_(unique[start : start + 500]))
            )
            if url
        )
    return found


__all__ = [
    "ALL_JOB_STATUSES",
    "ARTICLE",
    "ARTICLE_LABEL",
    "ARTICLE_SORTS",
    "JOB",
    "JOB_ID_CHARS",
    "JOB_STATUSES",
    "PAYLOAD_EXCERPT_CHARS",
    "RELABEL_COLUMNS",
    "STATS_BY",
    "TIME_FIELDS",
    "Article",
    "ArticleBase",
    "ArticleFilter",
    "ArticleLabel",
    "ArticleVersion",
    "Job",
    "JobOutcome",
    "JobStatus",
    "NewArticle",
    "Relabel",
    "SeenItem",
    "SortOrder",
    "Source",
    "SourceExists",
    "SourceItem",
    "SourceKind",
    "SourceStatus",
    "StatsBy",
    "TimeField",
    "add_source",
    "article_time",
    "claim_due_sources",
    "count_articles",
    "count_by",
    "count_labels",
    "count_outcomes",
    "find_article_labels",
    "find_article_versions",
    "find_articles",
    "find_jobs",
    "finished_job_ids",
    "fts5_query",
    "get_article",
    "get_article_versions",
    "get_articles",
    "get_engine",
    "get_jobs",
    "get_source",
    "job_key",
    "latest_time",
    "list_sources",
    "mark_seen",
    "payload_excerpt",
    "record_jobs",
    "record_poll_failure",
    "record_poll_success",
    "relabel_articles",
    "remove_source",
    "seen_keys",
    "set_source_status",
    "storable_text",
    "stored_urls",
    "upsert_articles",
    "utcnow",
]
