"""The edges of the calendar and of integers over the HTTP API, on SQLite and PostgreSQL:
articles stored at the first and last instants Python and the databases hold keep every page
and count answering, and parameters past what a column or a datetime holds are a 422 (or, for an
article id, a 404), never a 500. Requests go to the app in-process (httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import Session

from classifiers import LABELS
from tests.articles import stored_trade_fields
from worker.api import create_app
from worker.query import EARLIEST, LATEST, MAX_ID, MAX_ROWS
from worker.settings import load_settings
from worker.store import NewArticle, get_engine, record_jobs, upsert_articles

DASHBOARD_PAGES = ["/", *(f"/?label={label}" for label in LABELS)]
STATS_PAGES = [
    "/stats",
    *(f"/stats?by={by}" for by in ("day", "week", "month", "source")),
    "/stats?by=day&min_score=0.5",
    "/stats?by=week&label=trade&all=true&min_score=0.1",
    "/stats?min_score=0.5",
]
ARTICLE_PAGES = [
    "/articles",
    "/articles?sort=oldest",
    "/articles?sort=score&label=trade",
    "/articles?until=9999-12-31T23:59:59.999999",
    "/articles?since=0001-01-01",
]


def get_all(database_url: str, paths: Sequence[str]) -> dict[str, httpx.Response]:
    """GET each path from the app over ``database_url`` (no broker needed by these routes)."""
    settings = load_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    app = create_app(settings)

    async def go() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return {path: await client.get(path) for path in paths}

    return asyncio.run(go())


def store_dated(database_url: str, *dates: datetime) -> None:
    """One trade article per date, through the store's own write functions."""
    items = []
    for n, when in enumerate(dates):
        fields = stored_trade_fields(
            n + 1,
            title=f"Article of {when.isoformat()}",
            text=f"Customs duties on the year {when.year}.",
            source="edge",
            published_at=when,
            ingested_at=datetime(2026, 3, 1, tzinfo=UTC),
            external_id=f"edge-{n}",
        )
        items.append(NewArticle(job_id=f"job-{n}", fields=fields, labels={"trade": 0.9}))
    with Session(get_engine(database_url)) as session:
        record_jobs(session=session, outcomes=upsert_articles(session=session, items=items))
        session.commit()


@pytest.mark.parametrize(
    "dates",
    [[LATEST], [EARLIEST], [EARLIEST, LATEST], [datetime(9999, 12, 31, tzinfo=UTC)]],
    ids=["last-instant", "newest-is-year-1", "both-ends", "9999-12-31"],
)
def test_every_page_answers_with_articles_at_the_ends_of_time(
    database_url: str, dates: list[datetime]
) -> None:
    store_dated(database_url, *dates)
    answers = get_all(database_url, DASHBOARD_PAGES + STATS_PAGES + ARTICLE_PAGES)
    failed = {path: r.status_code for path, r in answers.items() if r.status_code != 200}
    assert not failed, failed
    newest = max(dates)
    assert f"Article of {newest.isoformat()}" in answers["/"].text
    assert 'data-label="trade"' in answers["/?label=trade"].text
    assert answers["/stats"].json()["articles"] == len(dates)
    days = [row["day"] for row in answers["/stats?by=day"].json()["volume"]]
    assert days == sorted({d.date().isoformat() for d in dates})
    assert len(answers[ARTICLE_PAGES[-1]].json()["items"]) == len(dates)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/articles?since=9999-12-31T23:00-05:00", "since: outside the years 0001 to 9999"),
        ("/articles?until=0001-01-01T00:00%2B01:00", "until: outside the years 0001 to 9999"),
        ("/stats?by=day&since=9999-12-31T23:59:59-00:01", "since: outside the years"),
        (f"/articles?offset={MAX_ROWS + 1}", "less than or equal to"),
        ("/articles?offset=18446744073709551616", "less than or equal to"),
        ("/articles?source=wire%00", "source: contains a NUL character"),
        ("/articles?search=navy%00ships", "search: contains a NUL character"),
        ("/articles?model_version=v1%00", "model_version: contains a NUL character"),
        ("/stats?by=source&source=%00", "source: contains a NUL character"),
    ],
)
def test_parameters_past_what_the_database_holds_are_422(
    database_url: str, path: str, says: str
) -> None:
    response = get_all(database_url, [path])[path]
    assert response.status_code == 422, response.text
    assert says in response.text


def test_article_ids_past_the_column_are_404(database_url: str) -> None:
    paths = [f"/articles/{n}" for n in (0, -1, MAX_ID, MAX_ID + 1, MAX_ROWS + 1, 2**64)]
    answers = get_all(database_url, [*paths, f"/articles?offset={MAX_ROWS}"])
    assert {path: answers[path].status_code for path in paths} == dict.fromkeys(paths, 404)
    assert f"no article {2**64}" in answers[f"/articles/{2**64}"].text
    assert answers[f"/articles?offset={MAX_ROWS}"].json() == {"items": [], "next": None}
