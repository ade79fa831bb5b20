"""The HTTP API (FastAPI): read-only queries over the store functions, ``POST /jobs`` for
producers that are not Python (off unless ``NEWSCLASS_API_TOKEN`` is set), and a dashboard at ``/``.

``newsclass api`` runs ``create_app()`` with uvicorn; OpenAPI is at ``/docs``. Every route that
touches the database is a plain ``def``: FastAPI runs it in its thread pool, so a slow database never
blocks the event loop. (No ``from __future__ import annotations``: FastAPI reads the annotations of
routes defined inside ``create_app``, which name its local dependencies.)
"""

import hmac
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlmodel import Session

from worker.dashboard import DASHBOARD_ARTICLES, dashboard_span, render_dashboard
from worker.query import (
    MAX_ID,
    MAX_ROWS,
    article_detail,
    article_row,
    build_filter,
    stats_data,
)
from worker.settings import Settings, get_settings
from worker.store import (
    ArticleFilter,
    find_article_labels,
    find_articles,
    get_article,
    get_engine,
    latest_time,
)

HEALTH_TIMEOUT = 5.0
MAX_JOBS_PER_REQUEST = 1000


class ArticleIn(BaseModel):
    """One article to ingest: the payload of the public task ``newsclass.ingest_article``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Navy orders frigates",
                    "body": "The navy ordered four frigates ...",
                    "source": "wire",
                    "published_at": "2026-01-05T09:30:00Z",
                    "id": "wire-42",
                }
            ]
        },
    )

    body: str | None = Field(None, description="The article: plain text or HTML (or use text).")
    text: str | None = Field(None, description="Same as body; give one of the two.")
    title: str | None = None
    url: str | None = None
    source: str | None = None
    author: str | None = None
    published_at: str | None = Field(None, description="ISO 8601 date or time.")
    id: str | int | None = Field(None, description="Your own id of the article.")


JOBS_BODY: TypeAdapter[ArticleIn | list[ArticleIn]] = TypeAdapter(ArticleIn | list[ArticleIn])
# POST /jobs reads its body itself (the token first): its schema is declared by hand, with the
# models it refers to put in the OpenAPI components (see _with_body_models).
JOBS_SCHEMA = JOBS_BODY.json_schema(ref_template="#/components/schemas/{model}")
JOBS_MODELS = JOBS_SCHEMA.pop("$defs")


class JobsAccepted(BaseModel):
    jobs: list[str] = Field(description="One job id per article, in order (see GET /healthz).")


class ArticlePublic(BaseModel):
    """One stored article as ``GET /articles`` lists it (and ``newsclass query`` prints it)."""

    id: int
    title: str | None
    url: str | None
    source: str | None
    published_at: str | None = Field(description="ISO 8601, UTC")
    ingested_at: str | None = Field(description="ISO 8601, UTC")
    labels: list[str] = Field(description="The assigned labels (none when none applies).")
    scores: dict[str, float] = Field(description="Calibrated score per label, 0 to 1.")
    primary: str | None = Field(description="The assigned label with the highest score.")
    model_version: str | None = Field(description="The model that produced the labels.")


class ParagraphScores(BaseModel):
    index: int = Field(description="Position among the scored paragraphs (0: the title).")
    labels: list[str]
    scores: dict[str, float]
    text: str | None = None


class LabelRecord(BaseModel):
    model_version: str
    label: str
    score: float


class ArticleDetail(ArticlePublic):
    """Everything about one article: ``GET /articles/{id}`` and ``newsclass show``."""

    author: str | None
    external_id: str | None
    dateline: str | None
    agency: str | None
    credits: list[str]
    text: str
    paragraphs: list[ParagraphScores] = Field(description="The per-paragraph breakdown.")
    explanation: dict[str, list[Any]] = Field(description="The terms behind each label.")
    label_history: list[LabelRecord] = Field(
        description="The labels of every model version that tagged the article."
    )


class ArticlePage(BaseModel):
    items: list[ArticlePublic]
    next: str | None = Field(description="Path of the next page, or null on the last one.")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings.database_url``; ``POST /jobs`` sends to ``settings.broker_url``
    with the workers' Celery configuration (made on the first POST)."""
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None

    app = FastAPI(
        title="newsclass",
        summary="News articles tagged by topic: query them, count them, send new ones.",
        version="1",
    )

    def session() -> Iterator[Session]:
        with Session(engine) as s:
            yield s

    Db = Annotated[Session, Depends(session)]

    def article_filter(
        label: Annotated[
            list[str] | None, Query(description="defence, trade or domestic_politics; repeatable.")
        ] = None,
        all_labels: Annotated[
            bool, Query(alias="all", description="With several labels: all of them, not any.")
        ] = False,
        min_score: Annotated[
            float | None, Query(ge=0, le=1, description="Only labels scored at least this.")
        ] = None,
        since: Annotated[str | None, Query(description="At or after, ISO 8601.")] = None,
        until: Annotated[str | None, Query(description="Before, ISO 8601.")] = None,
        time: Annotated[
            Literal["published", "ingested"],
            Query(description="Which time since/until and sorting use (published: else ingested)."),
        ] = "published",
        source: str | None = None,
        search: Annotated[
            str | None, Query(description='Full text: words, "a phrase", OR, -word.')
        ] = None,
        model_version: Annotated[
            str | None, Query(description="Labels given by this model version.")
        ] = None,
    ) -> ArticleFilter:
        try:
            return build_filter(
                labels=label or (),
                all_labels=all_labels,
                min_score=min_score,
                since=since,
                until=until,
                time=time,
                source=source,
                search=search,
                model_version=model_version,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    Filter = Annotated[ArticleFilter, Depends(article_filter)]

    @app.get("/healthz", summary="200 when the database and the broker answer, else 503")
    def healthz() -> JSONResponse:
        checks = {
            "database": _check(_ping_database, engine),
            "broker": _check(_ping_broker, settings.broker_url),
        }
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)

    @app.get("/articles", summary="Stored articles, newest first")
    def list_articles(
        request: Request,
        db: Db,
        where: Filter,
        sort: Literal["newest", "oldest", "score"] = "newest",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_ROWS)] = 0,
    ) -> ArticlePage:
        rows = find_articles(session=db, where=where, limit=limit + 1, offset=offset, sort=sort)
        following = None
        if len(rows) > limit:
            url = request.url.include_query_params(offset=offset + limit, limit=limit)
            following = f"{url.path}?{url.query}"
        items = [ArticlePublic.model_validate(article_row(a)) for a in rows[:limit]]
        return ArticlePage(items=items, next=following)

    @app.get("/articles/{article_id}", summary="One article: text, scores, paragraphs, explanation")
    def one_article(article_id: int, db: Db) -> ArticleDetail:
        # An id past the id column's range names no article: 404, as any other absent id.
        article = (
            get_article(session=db, article_id=article_id) if 1 <= article_id <= MAX_ID else None
        )
        if article is None:
            raise HTTPException(404, f"no article {article_id}")
        detail = article_detail(article, find_article_labels(session=db, article_id=article_id))
        return ArticleDetail.model_validate(detail)

    @app.get("/stats", summary="Counts, as `newsclass stats --format json`")
    def stats(
        db: Db,
        where: Filter,
        by: Annotated[
            Literal["day", "week", "month", "source"] | None,
            Query(description="Also count per label by day, week, month or source."),
        ] = None,
    ) -> dict[str, Any]:
        return stats_data(session=db, by=by, where=where)

    @app.post(
        "/jobs",
        status_code=202,
        summary="Enqueue articles (needs NEWSCLASS_API_TOKEN on the server and as bearer token)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": JOBS_SCHEMA}},
            }
        },
    )
    async def post_jobs(request: Request) -> JobsAccepted:
        # Authorisation before the body is even read: a caller without the token learns nothing.
        if token is None:
            raise HTTPException(
                403, "POST /jobs is off: set NEWSCLASS_API_TOKEN on the server to enable it"
            )
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), token
        ):
            raise HTTPException(
                401, "a valid 'Authorization: Bearer <token>' header is needed",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        payloads = _job_payloads(await request.body(), settings.max_text_chars)
        from starlette.concurrency import run_in_threadpool

        try:
            ids = await run_in_threadpool(_enqueue, payloads, settings.broker_url)
        except Exception as exc:  # the broker is down or refuses: tell the caller, keep running
            raise HTTPException(503, f"the broker did not take the jobs: {exc}") from None
        return JobsAccepted(jobs=ids)

    @app.get(
        "/", response_class=HTMLResponse, summary="Dashboard: topic volume and the latest articles"
    )
    def index(db: Db, label: str | None = None) -> HTMLResponse:
        volume = stats_data(session=db, by="day", where=dashboard_span(latest_time(session=db)))
        try:
            chosen = build_filter(labels=[label] if label else ())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        articles = [
            article_row(a)
            for a in find_articles(session=db, where=chosen, limit=DASHBOARD_ARTICLES)
        ]
        return HTMLResponse(render_dashboard(volume, articles, label=label))

    _with_body_models(app)
    return app


def _with_body_models(app: FastAPI) -> None:
    """Add the POST /jobs body's models to the app's OpenAPI components, where its refs point."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            components = build().setdefault("components", {})
            components.setdefault("schemas", {}).update(JOBS_MODELS)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend the schema


def _job_payloads(raw: bytes, max_text_chars: int) -> list[dict[str, Any]]:
    """The body as payload dicts, or 422 saying what is wrong (the worker's own rules apply)."""
    from worker.ingest import Limits, RejectedInput, parse_job

    try:
        parsed = JOBS_BODY.validate_json(raw)
    except ValidationError as exc:
        raise HTTPException(422, _readable(exc)) from None
    articles = parsed if isinstance(parsed, list) else [parsed]
    if not articles:
        raise HTTPException(422, "the body is an empty list: send one article or a list of them")
    if len(articles) > MAX_JOBS_PER_REQUEST:
        raise HTTPException(
            422, f"{len(articles)} articles in one request; at most {MAX_JOBS_PER_REQUEST}"
        )
    payloads = [a.model_dump(exclude_none=True) for a in articles]
    limits = Limits(max_text_chars=max_text_chars)
    for number, payload in enumerate(payloads):
        try:
            parse_job(payload, limits=limits)
        except RejectedInput as exc:
            where = f"article {number}: " if isinstance(parsed, list) else ""
            raise HTTPException(422, where + exc.reason) from None
    return payloads


def _readable(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return f"the body is not JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    # A union of one object and a list reports both branches: keep the one that matches the shape.
    loc = [str(p) for p in first["loc"] if p not in ("ArticleIn", "list[ArticleIn]")]
    where = ".".join(loc) or "body"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(ArticleIn.model_fields)
        return f"{where}: unknown field; allowed fields are {allowed}"
    if first["type"] in ("model_type", "list_type"):
        return "the body must be one article (a JSON object) or a list of them"
    return f"{where}: {first['msg']}"


def _enqueue(payloads: list[dict[str, Any]], broker_url: str) -> list[str]:
    from worker.client import enqueue_articles

    return enqueue_articles(payloads, app=_producer(broker_url))


@cache
def _producer(broker_url: str) -> Any:
    """The workers' Celery app configuration, sending to this API's broker."""
    from worker.celery_app import make_app

    app = make_app()
    app.conf.broker_url = broker_url
    return app


def _check(probe: Any, target: Any) -> str:
    """ "ok", or why not: the probe's error, or that it did not answer in time."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(probe, target).result(timeout=HEALTH_TIMEOUT)
        return "ok"
    except FutureTimeout:
        return f"no answer in {HEALTH_TIMEOUT:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        pool.shutdown(wait=False)


def _ping_database(engine: sa.Engine) -> None:
    with engine.connect() as conn:  # the schema must be there too, not just a server
        conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()


def _ping_broker(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=HEALTH_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
