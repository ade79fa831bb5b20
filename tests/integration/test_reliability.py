"""Nothing lost, nothing doubled: crashes, outages, bad input and poison jobs, with real parts.

Each test runs real `newsclass worker` processes against a real Redis and a real database.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from sqlmodel import Session, func, select

from tests.articles import make_articles
from tests.conftest import wait_until as wait_for
from worker.client import enqueue_articles
from worker.embedded import LocalRedis
from worker.store import Article, Job, get_engine

pytestmark = pytest.mark.slow


def client(broker_url: str) -> Celery:
    """A producer with no newsclass code: JSON, the task sent by name."""
    app = Celery(broker=broker_url)
    app.conf.task_serializer = "json"
    return app


def counts(database_url: str) -> tuple[int, int, dict[str, int]]:
    """(articles, distinct content hashes, jobs per status)."""
    with Session(get_engine(database_url)) as session:
        articles = session.exec(select(func.count()).select_from(Article)).one()
        distinct = session.exec(select(func.count(func.distinct(Article.content_hash)))).one()
        statuses = dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all())
    return articles, distinct, statuses


def jobs_done(database_url: str) -> int:
    return sum(counts(database_url)[2].values())


def test_sigkill_mid_run_loses_nothing_and_stores_nothing_twice(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """5,000 jobs, the whole worker SIGKILLed mid-run, twice, and started again (5 s visibility
    timeout): exactly 5,000 stored, none twice, every job with its outcome.

    Every job a killed process had taken and not yet acknowledged comes back after the visibility
    timeout. The transport takes messages and records them as unacknowledged in one atomic step
    (worker/redis_transport.py), so there is no instant at which a kill loses one. (With 3,000
    the second run sometimes finished before the kill: its first process consumes while the
    second is still starting.)
    """
    total = 5000
    env = {**stack_env, "NEWSCLASS_BROKER_VISIBILITY_TIMEOUT": "5"}
    ids = enqueue_articles(make_articles(total), app=client(broker_url))
    for done_at_kill in (300, 1200):
        worker = start_worker(env, concurrency=2)
        wait_for(
            lambda n=done_at_kill: jobs_done(database_url) >= n,
            timeout=120,
            interval=0.05,
            what=f"first {done_at_kill} jobs",
        )
        worker.kill()  # SIGKILL the process group at once: both worker processes, mid-run
    assert jobs_done(database_url) < total, "the kill came too late to test anything"

    start_worker(env, concurrency=2)
    wait_for(lambda: jobs_done(database_url) >= total, timeout=120, what="all outcomes")
    time.sleep(7)  # past the visibility timeout: late redeliveries show up now
    articles, distinct, statuses = counts(database_url)
    assert articles == distinct == total, "an article was lost or stored twice"
    assert statuses == {"stored": total}
    assert _job_ids(database_url) == set(ids)


BAD_JOBS: list[tuple[object, str]] = [
    ({}, "body"),
    ({"title": "no text at all"}, "body"),
    ({"body": 42}, "body"),
    ({"body": "   \n\t  "}, "no article text"),
    ({"body": "<html><body><nav><a href='/'>Home</a></nav></body></html>"}, "text"),
    ({"body": "\x00\x01\x02\x03" * 50}, "binary"),
    ({"body": "word " * 5000}, "limit"),
    ({"body": "A fine article about ports.", "published_at": "yesterday"}, "published_at"),
    ({"body": "A fine article about ports.", "url": "ftp://example.org/a"}, "url"),
    ({"body": "A fine article about ports.", "title": "T" * 5000}, "title"),
    ({"body": "A fine article about ports.", "colour": "red"}, "colour"),
    ({"body": "A fine article.", "text": "Another one."}, "not both"),
    ("just a string", "object"),
    ([1, 2, 3], "object"),
    (None, "object"),
]


def test_bad_jobs_are_rejected_with_reasons_and_the_worker_goes_on(
    broker_url, database_url, stack_env, start_worker
) -> None:
    start_worker({**stack_env, "NEWSCLASS_MAX_TEXT_CHARS": "10000"}, concurrency=2)
    producer = client(broker_url)
    good = make_articles(len(BAD_JOBS) + 1, seed=11)
    sent_good, sent_bad = [], {}
    for article, (payload, says) in zip(good, [*BAD_JOBS, (None, "")], strict=True):
        sent_good.append(producer.send_task("newsclass.ingest_article", args=[article]).id)
        if payload is not None or says:
            sent_bad[producer.send_task("newsclass.ingest_article", args=[payload]).id] = says
    total = len(sent_good) + len(sent_bad)
    wait_for(lambda: jobs_done(database_url) >= total, timeout=60, what="all outcomes")

    with Session(get_engine(database_url)) as session:
        jobs = {job.id: job for job in session.exec(select(Job))}
    assert all(jobs[i].status == "stored" for i in sent_good)
    for job_id, says in sent_bad.items():
        job = jobs[job_id]
        assert job.status == "rejected", (job_id, job.status)
        assert job.reason and says.lower() in job.reason.lower(), job.reason
        assert job.payload is not None and len(job.payload) <= 500
    # Still consuming after all that.
    last = producer.send_task("newsclass.ingest_article", args=[make_articles(1, seed=99)[0]])
    wait_for(lambda: last.id in _job_ids(database_url), timeout=30, what="a job after the bad ones")


def _job_ids(database_url: str) -> set[str]:
    with Session(get_engine(database_url)) as session:
        return set(session.exec(select(Job.id)))


def _install_poison_trigger(database_url: str) -> None:
    """Make the database refuse articles from source 'poison', every time (a fault that
    retrying cannot cure)."""
    engine = get_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER poison BEFORE INSERT ON article WHEN NEW.source = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'poison article refused'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'poison article refused'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER poison BEFORE INSERT ON article FOR EACH ROW "
                    "WHEN (NEW.source = 'poison') EXECUTE FUNCTION refuse_poison()"
                )
            )


def test_a_poison_job_fails_after_bounded_tries_and_spares_its_batch(
    broker_url, database_url, stack_env, start_worker, newsclass
) -> None:
    _install_poison_trigger(database_url)
    env = {**stack_env, "NEWSCLASS_MAX_RETRIES": "2", "NEWSCLASS_RETRY_BACKOFF_MAX": "1"}
    start_worker(env, concurrency=1)
    articles = make_articles(30, seed=5)
    poison = {**articles[10], "source": "poison"}
    ids = enqueue_articles([*articles[:10], poison, *articles[11:]], app=client(broker_url))
    wait_for(lambda: jobs_done(database_url) >= 30, timeout=60, what="all outcomes")
    with Session(get_engine(database_url)) as session:
        jobs = {job.id: job for job in session.exec(select(Job))}
    failed = jobs[ids[10]]
    assert failed.status == "failed"
    assert failed.attempts == 3 and "poison article refused" in (failed.reason or "")
    assert failed.payload and '"source": "poison"' in failed.payload  # kept whole for replay
    assert all(jobs[i].status == "stored" for i in ids if i != ids[10])

    # Once the cause is fixed, `jobs retry` replays it under the same id.
    with get_engine(database_url).begin() as conn:
        conn.execute(
            sa.text("DROP TRIGGER poison" + (" ON article" if "postgres" in database_url else ""))
        )
    newsclass("jobs", "retry", "--all-failed", env=env)
    wait_for(lambda: counts(database_url)[2].get("failed", 0) == 0, timeout=30, what="the replay")
    assert counts(database_url)[0] == 30


@pytest.mark.postgres
def test_database_outage_retries_until_it_returns(
    broker_url, start_worker, postgres_admin, tmp_path: Path
) -> None:
    from tests.integration.conftest import fresh_postgres_database
    from worker import db

    with fresh_postgres_database(postgres_admin) as database_url:
        db.upgrade(database_url)
        env = {
            "NEWSCLASS_BROKER_URL": broker_url,
            "NEWSCLASS_DATABASE_URL": database_url,
            "NEWSCLASS_BATCH_WAIT": "0.1",
            "NEWSCLASS_RETRY_BACKOFF_MAX": "1",
            "NEWSCLASS_MAX_RETRIES": "100",
        }
        start_worker(env, concurrency=2)
        name = sa.engine.make_url(database_url).database
        get_engine(database_url).dispose()
        with postgres_admin.connect() as conn:  # the database goes away
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
        enqueue_articles(make_articles(200, seed=3), app=client(broker_url))
        time.sleep(4)  # jobs fail and are retried with backoff meanwhile
        with postgres_admin.connect() as conn:  # ... and comes back
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        wait_for(
            lambda: jobs_done(database_url) >= 200, timeout=90, what="all 200 after the outage"
        )
        articles, distinct, statuses = counts(database_url)
        assert articles == distinct == 200 and statuses == {"stored": 200}


def test_a_warm_shutdown_mid_run_hands_every_job_back(
    broker_url, tmp_path: Path, start_worker
) -> None:
    """SIGTERM, as the process group sends when it recycles a worker: the batch in hand finishes
    and is acknowledged, the messages taken but not yet run go back to the queue at once (no
    visibility timeout to wait for), and nothing stays recorded as unacknowledged."""
    database_url = f"sqlite:///{tmp_path / 'warm.db'}"
    from worker import db

    db.upgrade(database_url)
    env = {"NEWSCLASS_BROKER_URL": broker_url, "NEWSCLASS_DATABASE_URL": database_url}
    ids = enqueue_articles(make_articles(1500, seed=12), app=client(broker_url))
    worker = start_worker(env, concurrency=2)
    wait_for(lambda: jobs_done(database_url) >= 300, timeout=60, what="first 300 jobs")
    worker.stop()
    broker = redis_lib.Redis.from_url(broker_url)
    assert broker.hlen("unacked") == 0
    assert jobs_done(database_url) + broker.llen("celery") == 1500

    start_worker(env, concurrency=2)
    wait_for(lambda: jobs_done(database_url) >= 1500, timeout=90, what="all 1,500 outcomes")
    articles, distinct, statuses = counts(database_url)
    assert articles == distinct == 1500 and statuses == {"stored": 1500}
    assert _job_ids(database_url) == set(ids)


def test_redis_restart_mid_run_the_worker_reconnects_and_finishes(
    broker_url, tmp_path: Path, start_worker
) -> None:
    """Redis (with its append-only file, as in production) goes down mid-run and comes back.

    The workers reconnect by themselves, also while Redis is still loading its file, and finish
    the queue: every job is stored, those sent before the outage and those sent after.
    """
    database_url = f"sqlite:///{tmp_path / 'restart.db'}"
    from worker import db

    db.upgrade(database_url)
    data = tmp_path / "redis-data"
    data.mkdir()
    redis = LocalRedis(persist_dir=str(data)).start()
    try:
        env = {
            "NEWSCLASS_BROKER_URL": redis.url,
            "NEWSCLASS_DATABASE_URL": database_url,
            "NEWSCLASS_BROKER_VISIBILITY_TIMEOUT": "5",
            "NEWSCLASS_BATCH_WAIT": "0.1",
        }
        start_worker(env, concurrency=2)
        enqueue_articles(make_articles(1500, seed=9), app=client(redis.url))
        wait_for(lambda: jobs_done(database_url) >= 100, timeout=60, what="first 100 jobs")
        # Ballast, so that loading the file takes a few seconds after the restart (redis-server's
        # key-load-delay slows each key): the workers' reconnects land in that window.
        ballast = redis_lib.Redis(port=redis.port).pipeline(transaction=False)
        for i in range(40_000):
            ballast.set(f"ballast:{i}", "x")
        ballast.execute()
        redis.stop()  # Redis goes down mid-run (its append-only file keeps the queue) ...
        # ... and restarts at once; until it has loaded its file it answers "Redis is loading
        # the dataset in memory", and the workers keep trying.
        slow = ["--key-load-delay", "25"]
        redis = LocalRedis(port=redis.port, persist_dir=str(data), extra_args=slow).start(60)
        later = enqueue_articles(make_articles(200, seed=10), app=client(redis.url))
        wait_for(lambda: jobs_done(database_url) >= 1700, timeout=90, what="the rest after restart")
        time.sleep(6)  # a visibility timeout, for redelivered messages to settle
        articles, distinct, statuses = counts(database_url)
        assert articles == distinct == 1700 and statuses == {"stored": 1700}
        assert set(later) <= _job_ids(database_url)
        assert "loading the dataset" in (tmp_path / "worker-0.log").read_text()
    finally:
        redis.stop()


def test_two_workers_store_each_article_once(
    broker_url, database_url, stack_env, start_worker
) -> None:
    start_worker(stack_env, concurrency=1)
    start_worker(stack_env, concurrency=1)
    articles = make_articles(400, seed=21)
    producer = client(broker_url)
    enqueue_articles(articles, app=producer)
    enqueue_articles(articles, app=producer)  # every article twice, raced by two workers
    wait_for(lambda: jobs_done(database_url) >= 800, timeout=90, what="all 800 outcomes")
    articles_n, distinct, statuses = counts(database_url)
    assert articles_n == distinct == 400
    assert statuses == {"stored": 400, "duplicate": 400}


def test_job_id_lookup(broker_url, database_url, stack_env, start_worker, newsclass) -> None:
    start_worker(stack_env, concurrency=1)
    job_id = enqueue_articles(make_articles(1, seed=4), app=client(broker_url))[0]
    wait_for(lambda: job_id in _job_ids(database_url), timeout=30, what="the job")
    shown = newsclass("jobs", "show", job_id).stdout
    assert job_id in shown and '"stored"' in shown
    missing = newsclass("jobs", "show", str(uuid.uuid4()), check=False)
    assert missing.returncode == 1 and "no job" in missing.stderr


def test_enqueue_wait_sends_again_what_the_broker_lost(
    broker_url, tmp_path: Path, start_worker
) -> None:
    """`enqueue --wait` closes kombu's in-flight gap for its own jobs: the queue is emptied
    behind its back (every message lost), and it sends them again under the same ids."""
    import json
    import os
    import subprocess
    import sys

    import redis as redis_lib

    from worker import db

    database_url = f"sqlite:///{tmp_path / 'resend.db'}"
    db.upgrade(database_url)
    env = {"NEWSCLASS_BROKER_URL": broker_url, "NEWSCLASS_DATABASE_URL": database_url}
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(json.dumps(a) + "\n" for a in make_articles(20, seed=17)))
    enqueue = subprocess.Popen(
        [sys.executable, "-m", "worker", "enqueue", "--jsonl", str(jsonl), "--wait",
         "--timeout", "60", "--resend-after", "3"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    broker = redis_lib.Redis.from_url(broker_url)
    wait_for(lambda: broker.llen("celery") == 20, timeout=30, what="20 messages queued")
    broker.delete("celery")  # the broker "loses" every message
    start_worker(env, concurrency=1)
    out, errors = enqueue.communicate(timeout=90)
    assert enqueue.returncode == 0, errors
    assert "stored 20" in out
    assert "sending them again" in errors
    assert counts(database_url)[:2] == (20, 20)


@contextlib.contextmanager
def read_only(database_url: str, admin: sa.Engine | None) -> Iterator[None]:
    """The database refuses writes for a while: SQLite's files made immutable (root ignores
    permission bits), PostgreSQL's database set read-only for new sessions, existing ones ended."""
    if database_url.startswith("sqlite"):
        path = sa.engine.make_url(database_url).database or ""
        files = [f for f in (path, f"{path}-wal") if Path(f).exists()]  # not -shm: it is mapped
        if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
            pytest.skip("chattr +i does not work on this file system")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)
        return
    assert admin is not None
    name = sa.engine.make_url(database_url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))


def test_a_database_that_recovers_is_used_again_without_a_restart(
    request, broker_url, database_url, stack_env, start_worker
) -> None:
    """Connections opened while the database refused writes stay read-only: after an error a
    reconnect can cure, the worker disposes its pool, so writes resume once the database does."""
    admin = None if database_url.startswith("sqlite") else request.getfixturevalue("postgres_admin")
    env = {**stack_env, "NEWSCLASS_RETRY_BACKOFF_MAX": "1", "NEWSCLASS_MAX_RETRIES": "100"}
    worker = start_worker(env, concurrency=1)
    get_engine(database_url).dispose()
    with read_only(database_url, admin):
        ids = enqueue_articles(make_articles(30, seed=11), app=client(broker_url))
        wait_for(
            lambda: "retrying later" in worker.log_tail(50_000), timeout=30, what="refused writes"
        )
        assert jobs_done(database_url) == 0
    wait_for(lambda: jobs_done(database_url) >= 30, timeout=60, what="all 30 once writable")
    assert counts(database_url)[2] == {"stored": 30}
    assert _job_ids(database_url) == set(ids)
