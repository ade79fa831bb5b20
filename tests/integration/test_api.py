"""The HTTP API over real databases (SQLite and PostgreSQL) and a real Redis.

Reads go through the app served by uvicorn in a thread; POST /jobs and the `newsclass api` command run
as a live server in a subprocess, with the broker the worker would read from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.test_query import BY_KEY, CASES, SPECS, newest_first, seed
from worker.api import create_app
from worker.embedded import free_port
from worker.settings import load_settings


class Served:
    """An app served by uvicorn in a thread on a free port, with an httpx client for it."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def client_for(database_url: str, broker_url: str = "redis://127.0.0.1:1/0", **more: Any) -> Served:
    return Served(
        create_app(load_settings(database_url=database_url, broker_url=broker_url, **more))
    )


def api_params(params: dict[str, Any]) -> dict[str, Any]:
    """build_filter's arguments as the API's query parameters."""
    out = {
        ("label" if k == "labels" else "all" if k == "all_labels" else k): v
        for k, v in params.items()
    }
    if "all" in out:
        out["all"] = str(out["all"]).lower()
    return out


def test_articles_answer_every_filter(database_url: str) -> None:
    ids = {article_id: key for key, article_id in seed(database_url).items()}
    wrong = []
    with client_for(database_url) as client:
        for case in CASES:
            response = client.get(
                "/articles", params={**api_params(case.params), "sort": case.sort}
            )
            assert response.status_code == 200, (case.name, response.text)
            keys = [ids[item["id"]] for item in response.json()["items"]]
            if keys != case.expected:
                wrong.append(f"{case.name}: got {keys}, expected {case.expected}")
    assert not wrong, "\n".join(wrong)


def test_articles_paginate_with_next(database_url: str) -> None:
    seed(database_url)
    with client_for(database_url) as client:
        everything = client.get("/articles", params={"limit": 100}).json()
        assert everything["next"] is None
        seen: list[int] = []
        url: str | None = "/articles?limit=3&label=defence&label=trade"
        pages = 0
        while url:
            page = client.get(url).json()
            assert len(page["items"]) <= 3
            seen += [item["id"] for item in page["items"]]
            url = page["next"]
            pages += 1
        titles = [
            i["title"] for i in everything["items"] if set(i["labels"]) & {"defence", "trade"}
        ]
        assert pages == 2
        by_id = {i["id"]: i["title"] for i in everything["items"]}
        assert [by_id[i] for i in seen] == titles
        assert titles == [
            BY_KEY[k].title for k in newest_first(["navy", "steel", "row", "budget", "duties"])
        ]
        item = everything["items"][0]
        assert set(item) == {"id", "title", "url", "source", "published_at", "ingested_at", "labels",
                             "scores", "primary", "model_version"}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"label": "navy"}, "unknown label 'navy'"),
        ({"since": "last tuesday"}, "since: not an ISO 8601"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since must be before until"),
        ({"min_score": "2"}, "less than or equal to 1"),
        ({"limit": "0"}, "greater than or equal to 1"),
        ({"sort": "random"}, "newest"),
        ({"time": "edited"}, "published"),
    ],
)
def test_bad_query_parameters_are_422_with_a_message(
    tmp_path: Path, params: dict, says: str
) -> None:
    with client_for(f"sqlite:///{tmp_path / 'none.db'}") as client:
        response = client.get("/articles", params=params)
    assert response.status_code == 422
    assert says in response.text


def test_one_article_and_stats(database_url: str) -> None:
    ids = seed(database_url)
    with client_for(database_url) as client:
        detail = client.get(f"/articles/{ids['budget']}").json()
        assert detail["title"] == "Minister defends arms budget"
        assert detail["labels"] == ["defence", "domestic_politics"]
        assert detail["text"].startswith("The minister defended")
        assert len(detail["paragraphs"]) == 2 and detail["paragraphs"][0]["text"]
        assert detail["explanation"]["defence"] == ["budget", "word"]
        assert detail["model_version"] == "v1"
        missing = client.get("/articles/999999")
        assert missing.status_code == 404 and "no article 999999" in missing.text
        assert client.get("/articles/abc").status_code == 422

        stats = client.get("/stats", params={"by": "month"}).json()
        assert stats["articles"] == len(SPECS)
        assert stats["by_label"] == {"defence": 3, "trade": 3, "domestic_politics": 2}
        assert stats["outcomes"]["stored"] == len(SPECS)
        assert [(r["month"], r["articles"]) for r in stats["volume"]] == [
            ("2026-01-01", 3), ("2026-02-01", 2), ("2026-03-01", 2)
        ]  # fmt: skip
        assert "volume" not in client.get("/stats").json()
        assert client.get("/stats", params={"by": "year"}).status_code == 422


def test_healthz_is_200_when_database_and_broker_answer(database_url: str, broker_url: str) -> None:
    with client_for(database_url, broker_url) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.parametrize("where", ["unwritable sqlite path", "closed postgres port"])
def test_healthz_is_503_when_the_database_is_unreachable(
    where: str, broker_url: str, tmp_path: Path
) -> None:
    if where == "unwritable sqlite path":
        url = f"sqlite:///{tmp_path / 'no-such-dir' / 'newsclass.db'}"
    else:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/newsclass"
    with client_for(url, broker_url) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["broker"] == "ok"
    assert body["database"] != "ok" and "Error" in body["database"]


def test_healthz_is_503_when_the_broker_is_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newsclass.db'}"
    from worker import db

    db.upgrade(url)
    with client_for(url, f"redis://127.0.0.1:{free_port()}/0") as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert "refused" in response.json()["broker"].lower()


@pytest.fixture
def live_api(broker_url: str, tmp_path: Path) -> Iterator[str]:
    """`newsclass api` in a subprocess (SQLite), with a token, on a free port."""
    from worker import db

    database_url = f"sqlite:///{tmp_path / 'newsclass.db'}"
    db.upgrade(database_url)
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    env = {
        **os.environ,
        "NEWSCLASS_DATABASE_URL": database_url,
        "NEWSCLASS_BROKER_URL": broker_url,
        "NEWSCLASS_API_TOKEN": "t0ken-for-tests",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "api", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", proc, tmp_path / "api.log")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited {proc.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the API did not answer in {timeout}s:\n{log.read_text()}")


def test_post_jobs_with_the_token_enqueues_on_the_broker(live_api: str, redis_server: Any) -> None:
    from worker.celery_app import INGEST_QUEUE

    queue = redis.Redis(port=redis_server.port)
    article = {"title": "Navy orders frigates", "body": "The navy ordered four frigates. " * 5}
    assert httpx.get(live_api + "/healthz").json()["status"] == "ok"

    refused = httpx.post(live_api + "/jobs", json=article)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(live_api + "/jobs", json=article, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert queue.llen(INGEST_QUEUE) == 0

    auth = {"Authorization": "Bearer t0ken-for-tests"}
    one = httpx.post(live_api + "/jobs", json=article, headers=auth)
    assert one.status_code == 202, one.text
    many = httpx.post(live_api + "/jobs", json=[article, {**article, "id": 7}], headers=auth)
    assert many.status_code == 202, many.text
    ids = one.json()["jobs"] + many.json()["jobs"]
    assert len(ids) == len(set(ids)) == 3
    assert queue.llen(INGEST_QUEUE) == 3

    bad = httpx.post(live_api + "/jobs", json=[article, {"title": "no text"}], headers=auth)
    assert bad.status_code == 422 and "article 1" in bad.json()["detail"]
    assert queue.llen(INGEST_QUEUE) == 3  # nothing of a rejected request is sent
    docs = httpx.get(live_api + "/openapi.json").json()
    assert {"/healthz", "/articles", "/articles/{article_id}", "/stats", "/jobs"} <= set(
        docs["paths"]
    )
    assert httpx.get(live_api + "/docs").status_code == 200
