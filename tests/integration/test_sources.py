"""Scheduled ingest end to end: a local web site serving feeds and pages, a real Redis, a real
ingest worker, a real thread-pool fetch worker, real beats, and the database (the feed run on
SQLite and PostgreSQL, the others on SQLite)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.articles import make_articles
from tests.conftest import wait_until
from tests.unit.test_sources import LocalSite, Reply, page_html
from worker.celery_app import FETCH_QUEUE, INGEST_QUEUE
from worker.embedded import WorkerProcess
from worker.store import Article, Job, Source, get_engine

pytestmark = pytest.mark.slow
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CHROME = ("navigation link", "cookies", "footer text", "All rights reserved")


def articles(database_url: str) -> list[Article]:
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(Article).order_by(Article.id)))  # type: ignore[arg-type]


def jobs(database_url: str) -> list[Job]:
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(Job)))


def rss(site: LocalSite, items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>{site.url(path)}</link><guid>{site.url(path)}</guid>"
        "<description>Only the teaser of the story.</description></item>"
        for path, title in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>{site.base}/</link><description>news</description>{entries}</channel></rss>"
    ).encode()


def atom(site: LocalSite, items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f"<entry><title>{title}</title><id>tag:wire,2026:{path}</id>"
        f'<link href="{site.url(path)}"/><updated>2026-03-02T09:00:00Z</updated>'
        f'<content type="html">&lt;p&gt;{content}&lt;/p&gt;</content></entry>'
        for path, title, content in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Atom Wire</title><id>urn:atom</id><updated>2026-03-02T09:00:00Z</updated>{entries}"
        "</feed>"
    ).encode()


@pytest.fixture
def fetch_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {
        **stack_env,
        "NEWSCLASS_ALLOW_PRIVATE_URLS": "true",  # the site is on 127.0.0.1
        "NEWSCLASS_BEAT_TICK": "0.5",
        "NEWSCLASS_FETCH_TIMEOUT": "5",
        "NEWSCLASS_SOURCE_MAX_FAILURES": "3",  # paused after 3 failed polls in a row,
        "NEWSCLASS_SOURCE_BACKOFF_MAX": "4",  # having waited 2 s, then 4 s
        "COLUMNS": "300",  # `sources list` tables unfolded
    }


@pytest.fixture
def workers(fetch_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """One prefork ingest worker and one thread-pool fetch worker, as in production (started
    side by side)."""
    procs = [
        WorkerProcess(fetch_env, concurrency=2, queues=INGEST_QUEUE,
                      log_path=tmp_path / "worker-ingest.log"),
        WorkerProcess(fetch_env, concurrency=8, queues=FETCH_QUEUE,
                      log_path=tmp_path / "worker-fetch.log", extra_args=("--pool", "threads")),
    ]  # fmt: skip
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready()
        yield
    finally:
        for proc in procs:
            proc.stop()


def stories(n: int) -> list[list[str]]:
    return [a["body"].split("\n\n") for a in make_articles(n, seed=11)]


def sources_json(newsclass, env: dict[str, str]) -> dict[int, dict]:
    rows = json.loads(newsclass("sources", "list", "--format", "json", env=env).stdout)
    return {row["id"]: row for row in rows}


def source_row(database_url: str, source_id: int) -> Source | None:
    with Session(get_engine(database_url)) as session:
        return session.get(Source, source_id)


@pytest.mark.usefixtures("workers")
def test_feeds_are_polled_once_per_item_and_a_failing_source_is_paused(
    tmp_path: Path, fetch_env, database_url, start_beat, newsclass
) -> None:
    env = fetch_env
    bodies = stories(6)
    with LocalSite() as site:
        for n in range(1, 5):
            site.routes[f"/news/{n}"] = Reply(page_html(f"Story {n}", bodies[n]).encode())
        site.routes["/rss.xml"] = Reply(
            rss(site, [(f"/news/{n}", f"Story {n}") for n in (1, 2, 3)]),
            content_type="application/rss+xml",
            etag='"v1"',
        )
        # An Atom feed whose second page is gone: that article comes from the feed's own text.
        site.routes["/atom/1"] = Reply(page_html("Atom page", bodies[5]).encode())
        site.routes["/atom.xml"] = Reply(
            atom(site, [("/atom/1", "Atom one", "teaser one"),
                        ("/atom/gone", "Atom two", bodies[0][0] + " " + bodies[0][1])]),
            content_type="application/atom+xml",
            last_modified="Mon, 02 Mar 2026 09:00:00 GMT",
        )  # fmt: skip
        site.routes["/broken.xml"] = Reply(b"on fire", status=500, content_type="text/plain")
        add = ("sources", "add", "feed")
        newsclass(*add, site.url("/rss.xml"), "--every", "1", "--name", "wire", env=env)
        newsclass(*add, site.url("/atom.xml"), "--every", "1", env=env)
        newsclass(*add, site.url("/broken.xml"), "--every", "1", env=env)
        start_beat(env)
        start_beat(env)  # a second beat by mistake: nothing is enqueued twice

        wait_until(lambda: len(articles(database_url)) >= 5)
        wait_until(
            lambda: site.not_modified["/rss.xml"] >= 2 and site.not_modified["/atom.xml"] >= 2
        )
        stored = articles(database_url)
        assert len(stored) == 5
        wire = [a for a in stored if a.source == "wire"]
        assert sorted(a.url or "" for a in wire) == sorted(
            site.url(f"/news/{n}") for n in (1, 2, 3)
        )
        for article in wire:
            n = int((article.url or "")[-1])
            assert article.origin == "page" and article.title == f"Story {n}"
            for paragraph in bodies[n][:-1]:
                assert paragraph in article.text
            assert not any(chrome in article.text for chrome in CHROME), article.text
        by_url = {a.url: a for a in stored}
        assert by_url[site.url("/atom/1")].origin == "page"
        fallback = by_url[site.url("/atom/gone")]
        assert fallback.origin == "feed" and fallback.source == "Atom Wire"
        assert fallback.text.startswith(bodies[0][0])

        # A fourth item appears: it alone is fetched and stored on a later poll.
        site.routes["/rss.xml"] = Reply(
            rss(site, [(f"/news/{n}", f"Story {n}") for n in (1, 2, 3, 4)]),
            content_type="application/rss+xml",
            etag='"v2"',
        )
        wait_until(lambda: len(articles(database_url)) == 6)

        # Meanwhile the broken feed was tried three times, ever more slowly, then paused.
        wait_until(lambda: (row := source_row(database_url, 3)) and row.status == "paused")
        feed_polls = site.hits["/rss.xml"]
        time.sleep(3)
        assert site.hits["/broken.xml"] == 3
        assert site.hits["/rss.xml"] > feed_polls  # the others go on
        first, second, third = site.times["/broken.xml"]
        assert 1.5 < second - first < third - second - 1.0  # backed off exponentially
        rows = sources_json(newsclass, env)
        table = newsclass("sources", "list", env=env).stdout

    assert len(articles(database_url)) == 6
    assert [site.hits[f"/news/{n}"] for n in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert site.hits["/atom/1"] == 1 and site.hits["/atom/gone"] == 1
    assert {job.status for job in jobs(database_url)} == {"stored"}
    assert len(jobs(database_url)) == 6
    for healthy in (rows[1], rows[2]):
        assert healthy["status"] == "active" and healthy["failures"] == 0
    assert rows[1]["items_sent"] == 4 and rows[2]["items_sent"] == 2
    broken = rows[3]
    assert broken["status"] == "paused" and broken["failures"] == 3 and broken["last_error_at"]
    assert "HTTP 500" in broken["last_error"]
    assert broken["paused_reason"].startswith("3 failed polls in a row; last: HTTP 500")
    assert "paused: 3 failed polls in a row" in table
    assert not list(tmp_path.glob("celerybeat-schedule*")), "beat must keep no shelve (pickle) file"

    newsclass("sources", "resume", "3", env=env)
    assert sources_json(newsclass, env)[3]["status"] == "active"
    newsclass("sources", "pause", "1", "--reason", "site redesign", env=env)
    assert sources_json(newsclass, env)[1]["paused_reason"] == "site redesign"
    newsclass("sources", "remove", "2", env=env)
    assert sorted(sources_json(newsclass, env)) == [1, 3]


@on_sqlite
@pytest.mark.usefixtures("workers")
def test_a_folder_picks_up_a_dropped_file_once_and_pages_come_by_url(
    tmp_path: Path, fetch_env, database_url, start_beat, newsclass
) -> None:
    keep, move = tmp_path / "keep", tmp_path / "move"
    keep.mkdir()
    move.mkdir()
    newsclass("sources", "add", "folder", str(keep), "--every", "1", env=fetch_env)
    newsclass("sources", "add", "folder", str(move), "--every", "1", "--move-done", env=fetch_env)
    start_beat(fetch_env)
    wait_until(lambda: (row := source_row(database_url, 2)) and row.last_success_at)
    assert articles(database_url) == []

    first, second = make_articles(2, seed=5)
    drop(keep / "one.txt", f"{first['title']}\n\n{first['body']}")
    drop(move / "two.json", json.dumps({**second, "source": None}))
    wait_until(lambda: len(articles(database_url)) == 2)
    wait_until(lambda: (move / "done" / "two.json").is_file())
    time.sleep(2.5)  # more polls

    stored = articles(database_url)
    assert len(stored) == 2 and len(jobs(database_url)) == 2
    assert {a.source for a in stored} == {"keep", "move"}
    assert (keep / "one.txt").is_file() and not (move / "two.json").exists()
    rows = sources_json(newsclass, fetch_env)
    assert {n: rows[n]["items_sent"] for n in rows} == {1: 1, 2: 1}
    assert all(row["last_success_at"] and row["failures"] == 0 for row in rows.values())

    with LocalSite() as site:
        site.routes["/story"] = Reply(page_html("Page story", stories(1)[0]).encode())
        result = newsclass("enqueue", "--url", site.url("/story"), "--source", "web", "--wait",
                           "--timeout", "60", env=fetch_env)  # fmt: skip
    assert "stored 1" in result.stdout
    article = next(a for a in articles(database_url) if a.source == "web")
    assert article.url == site.url("/story") and article.origin == "page"
    assert article.title == "Page story"
    assert not any(chrome in article.text for chrome in CHROME)


def drop(path: Path, text: str) -> None:
    """Write a file the way a producer should: elsewhere, then rename into the folder."""
    temp = path.with_name(f".{path.name}.part")
    temp.write_text(text)
    os.replace(temp, path)


@on_sqlite
def test_a_private_url_is_refused_with_a_recorded_reason(
    stack_env, database_url, start_worker, newsclass
) -> None:
    env = {**stack_env, "NEWSCLASS_ALLOW_PRIVATE_URLS": "false"}
    start_worker(env, concurrency=2, queues=f"{INGEST_QUEUE},{FETCH_QUEUE}",
                 extra_args=("--pool", "threads"))  # fmt: skip
    with LocalSite() as site:
        site.routes["/story"] = Reply(page_html("Private", stories(1)[0]).encode())
        result = newsclass("enqueue", "--url", site.url("/story"), "--wait", "--timeout", "60",
                           env=env)  # fmt: skip
        assert site.hits["/story"] == 0
    assert "rejected 1" in result.stdout
    (job,) = jobs(database_url)
    assert job.status == "rejected"
    assert "loopback" in (job.reason or "") and "NEWSCLASS_ALLOW_PRIVATE_URLS" in (job.reason or "")
    assert articles(database_url) == []
