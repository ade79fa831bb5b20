"""The API's rules that need no services: the token rule for POST /jobs, 422s on bad bodies, the
full-text query translation for SQLite, and the dashboard's drawing and escaping.

Requests go straight to the ASGI app (httpx's ASGI transport); none of them reaches a database or
a broker: each is refused before.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker.api import create_app
from worker.dashboard import _periods, dashboard_span, render_dashboard
from worker.query import EARLIEST, LATEST
from worker.settings import load_settings
from worker.store import fts5_query

TOKEN = "s3cret-token"
ARTICLE = {"title": "Navy orders frigates", "body": "The navy ordered four new frigates. " * 4}


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def make_app(tmp_path: Path, token: str | None = TOKEN) -> Any:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        broker_url="redis://127.0.0.1:1/0",
        api_token=token,
        max_text_chars=5_000,
    )
    return create_app(settings)


def test_post_jobs_is_off_without_a_token(tmp_path: Path) -> None:
    response = call(make_app(tmp_path, token=None), "POST", "/jobs", json=ARTICLE)
    assert response.status_code == 403
    assert "NEWSCLASS_API_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", TOKEN],
    ids=["none", "wrong", "basic", "empty", "longer", "no-scheme"],
)
def test_post_jobs_needs_the_bearer_token(tmp_path: Path, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    # The body is bad too: the token is checked first, so the caller learns nothing about it.
    response = call(make_app(tmp_path), "POST", "/jobs", content=b"{not json", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"42", "one article (a JSON object) or a list of them"),
        (b"[]", "empty list"),
        (json.dumps({**ARTICLE, "summary": "x"}).encode(), "summary: unknown field"),
        (json.dumps({"title": "no text"}).encode(), "no 'body' (or 'text')"),
        (json.dumps({**ARTICLE, "title": 7}).encode(), "title: Input should be a valid string"),
        (json.dumps({"body": "<p></p>"}).encode(), "no readable text"),
        (json.dumps({**ARTICLE, "body": "x " * 3_000}).encode(), "the limit is 5,000"),
        (json.dumps({**ARTICLE, "published_at": "soon"}).encode(), "not an ISO 8601 date"),
        (json.dumps([ARTICLE, {"title": "no text"}]).encode(), "article 1: "),
        (json.dumps([ARTICLE] * 1001).encode(), "at most 1000"),
    ],
    ids=[
        "not-json", "number", "empty-list", "unknown-field", "no-text", "title-type",
        "empty-html", "too-long", "bad-date", "bad-item", "too-many",
    ],
)  # fmt: skip
def test_bad_job_bodies_are_422_with_a_message(tmp_path: Path, body: bytes, says: str) -> None:
    response = call(
        make_app(tmp_path),
        "POST",
        "/jobs",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]


def test_a_good_body_with_the_broker_down_is_503(tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = call(make_app(tmp_path), "POST", "/jobs", json=ARTICLE, headers=headers)
    assert response.status_code == 503
    assert "the broker did not take the jobs" in response.json()["detail"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("frigates", '"frigates"'),
        ("navy frigates", '"navy" "frigates"'),
        ('"trade war" tariffs', '"trade war" "tariffs"'),
        ("steel OR aluminium", '"steel" OR "aluminium"'),
        ("tariff -navy", '"tariff" NOT "navy"'),
        ("-navy tariff", '"tariff"'),  # FTS5's NOT needs a term before it
        ('a "b AND c" NEAR(d) col:e *', '"a" "b AND c" "NEAR d" "col e"'),
        ("OR", None),
        ("!!! ???", None),
        ("", None),
    ],
)
def test_fts5_query_is_safe_and_web_search_like(text: str, match: str | None) -> None:
    assert fts5_query(text) == match


ZERO = {"defence": 0, "trade": 0, "domestic_politics": 0}


def day_rows(*days: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {"day": d, "articles": n, "defence": n, "trade": 0, "domestic_politics": 0} for d, n in days
    ]


def test_dashboard_periods_suit_the_span_and_fill_gaps() -> None:
    by, series = _periods(day_rows(("2026-01-01", 2), ("2026-01-04", 1)))
    assert by == "day"
    assert [(d.isoformat(), c["defence"]) for d, c in series] == [
        ("2026-01-01", 2), ("2026-01-02", 0), ("2026-01-03", 0), ("2026-01-04", 1)
    ]  # fmt: skip
    by, series = _periods(day_rows(("2026-01-01", 2), ("2026-01-04", 1), ("2026-05-20", 3)))
    assert by == "week"
    assert series[0] == (date(2025, 12, 29), {"defence": 3, "trade": 0, "domestic_politics": 0})
    assert all(d.weekday() == 0 for d, _ in series) and len(series) == 21
    by, series = _periods(day_rows(("2023-03-15", 1), ("2026-01-31", 4)))
    assert by == "month" and len(series) == 35 and series[-1][0] == date(2026, 1, 1)
    assert _periods([]) == ("week", [])


def test_dashboard_escapes_what_the_database_holds() -> None:
    stats = {
        "articles": 1,
        "by_label": {"defence": 1},
        "volume": day_rows(("2026-01-05", 1)),
    }
    article = {
        "id": 1,
        "title": "<script>alert('x')</script>",
        "source": '"><img src=x onerror=alert(1)>',
        "published_at": "2026-01-05T10:00:00+00:00",
        "ingested_at": "2026-01-05T10:05:00+00:00",
        "labels": ["defence"],
        "scores": {"defence": 0.9},
    }
    page = render_dashboard(stats, [article], label=None)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    assert '<svg id="volume"' in page and 'data-label="defence"' in page
    assert "no articles yet" in render_dashboard(stats, [], label="trade")


def test_every_ref_in_the_openapi_schema_resolves(tmp_path: Path) -> None:
    schema = make_app(tmp_path).openapi()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [
                r for v in node.values() for r in refs(v)
            ]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    found = refs(schema)
    assert "#/components/schemas/ArticleIn" in found  # POST /jobs' body
    for ref in found:
        node: Any = schema
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # a KeyError names the ref that does not resolve
    body = schema["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert "$defs" not in body["schema"]


def test_dashboard_periods_stop_at_the_ends_of_the_calendar() -> None:
    by, series = _periods(day_rows(("9999-12-30", 1), ("9999-12-31", 2)))
    assert by == "day" and [d.isoformat() for d, _ in series] == ["9999-12-30", "9999-12-31"]
    by, series = _periods(day_rows(("9999-01-01", 1), ("9999-12-31", 2)))
    assert by == "week" and series[-1] == (date(9999, 12, 27), {**ZERO, "defence": 2})
    by, series = _periods(day_rows(("0001-01-01", 1), ("9999-12-31", 2)))
    assert by == "month" and len(series) == 9999 * 12 and series[-1][0] == date(9999, 12, 1)
    assert dashboard_span(None).since is None
    assert dashboard_span(EARLIEST + timedelta(days=3)).since is None  # all of it: 3 days
    assert dashboard_span(LATEST).since == LATEST - timedelta(days=90)


def test_openapi_documents_what_the_article_routes_return(tmp_path: Path) -> None:
    schema = make_app(tmp_path).openapi()
    paths, models = schema["paths"], schema["components"]["schemas"]

    def returned(path: str) -> str:
        content = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        return str(content["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert returned("/articles") == "ArticlePage"
    assert models["ArticlePage"]["properties"]["items"]["items"]["$ref"].endswith("ArticlePublic")
    assert returned("/articles/{article_id}") == "ArticleDetail"
    detail = models["ArticleDetail"]["properties"]
    assert {"labels", "scores", "paragraphs", "explanation", "label_history"} <= set(detail)
