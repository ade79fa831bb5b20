"""A message is data until proven otherwise: malformed messages on the wire never stop a worker.

Each test writes raw items onto the Redis list a real `newsclass worker` consumes, the way a
buggy producer in any language could, and checks that every message ends in exactly one recorded
outcome while the good messages around it are stored promptly.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import zlib
from typing import Any

import psutil
import pytest
import redis as redis_lib
from sqlmodel import Session, select

from tests.articles import make_articles
from tests.conftest import wait_until
from worker.names import INGEST_QUEUE, INGEST_TASK
from worker.store import Article, Job, get_engine, job_key

pytestmark = pytest.mark.slow
# What is checked here does not depend on the database: these run on SQLite only. The tests of
# what is stored (ids, excerpts, the last-resort record, a refusal recorded late) run on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def envelope(
    body: bytes,
    *,
    headers: Any = None,
    task_id: str | None = None,
    content_type: str = "application/json",
    body_encoding: str = "base64",
    encode: bool = True,
) -> str:
    """A kombu message as the Redis transport stores it, with a Celery protocol-2 header set."""
    task_id = task_id or str(uuid.uuid4())
    if headers is None:
        headers = {"lang": "py", "task": INGEST_TASK, "id": task_id, "root_id": task_id}
    return json.dumps(
        {
            "body": base64.b64encode(body).decode() if encode else body.decode(),
            "content-encoding": "utf-8",
            "content-type": content_type,
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": INGEST_QUEUE},
                "priority": 0,
                "body_encoding": body_encoding,
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def good_message(payload: dict[str, Any], task_id: str) -> str:
    return envelope(json.dumps([[payload], {}, {}]).encode(), task_id=task_id)


def zlib_bomb(task_id: str, inflated: int = 100 * 1024 * 1024) -> str:
    """About 100 MB of JSON text squeezed into ~100 KB, sent with kombu's zlib header."""
    z = zlib.compressobj(9)
    parts = [z.compress(b'[[{"title": "bomb", "body": "')]
    chunk = b"a" * (1024 * 1024)
    parts += [z.compress(chunk) for _ in range(inflated // len(chunk))]
    parts.append(z.compress(b'"}], {}, {}]') + z.flush())
    headers = {
        "lang": "py",
        "task": INGEST_TASK,
        "id": task_id,
        "compression": "application/x-gzip",
    }
    return envelope(b"".join(parts), headers=headers, task_id=task_id)


def jobs_by_id(database_url: str) -> dict[str, Job]:
    with Session(get_engine(database_url)) as session:
        return {job.id: job for job in session.exec(select(Job))}


def article_count(database_url: str) -> int:
    with Session(get_engine(database_url)) as session:
        return len(session.exec(select(Article.id)).all())


def tree_rss(pid: int) -> int:
    """The largest resident set of the worker group's processes now (bytes)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    sizes = []
    for proc in procs:
        try:
            sizes.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return max(sizes, default=0)


@sqlite_only
def test_six_malformed_messages_among_eighteen_good_ones(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """The issue's case, at the default visibility timeout (one hour): the group stays up, the
    18 good articles are stored within a minute, every bad message has a `rejected` outcome, and
    no worker process passes 1 GB."""
    ids = {name: str(uuid.uuid4()) for name in ("object", "b64", "bomb")}
    bad = [
        envelope(json.dumps({"title": "an object body"}).encode(), task_id=ids["object"]),
        envelope(b"[[{}], {}, {}]", headers=["task", INGEST_TASK]),
        "this item is not JSON {",
        json.dumps(["a", "JSON", "array"]),
        envelope(b"@@ not base64 @@", task_id=ids["b64"], encode=False),
        zlib_bomb(ids["bomb"]),
    ]
    good_ids = [str(uuid.uuid4()) for _ in range(18)]
    good = [good_message(p, i) for p, i in zip(make_articles(18), good_ids, strict=True)]
    client = redis_lib.Redis.from_url(broker_url)
    for index, item in enumerate(good):
        client.lpush(INGEST_QUEUE, item)
        if index % 3 == 2:
            client.lpush(INGEST_QUEUE, bad[index // 3])

    started = time.monotonic()
    worker = start_worker(stack_env, concurrency=2)
    assert worker.proc is not None
    peak = 0

    def settled() -> bool:
        nonlocal peak
        peak = max(peak, tree_rss(worker.proc.pid))  # type: ignore[union-attr]
        return len(jobs_by_id(database_url)) >= 24

    wait_until(settled, timeout=60, interval=0.1, what="24 outcomes")
    elapsed = time.monotonic() - started
    jobs = jobs_by_id(database_url)
    assert worker.proc.poll() is None, worker.log_tail()
    assert all(jobs[i].status == "stored" for i in good_ids), {i: jobs.get(i) for i in good_ids}
    # Each job records its task: the good ones and the refusals that name one.
    assert {jobs[i].task for i in [*good_ids, ids["object"], ids["b64"]]} == {INGEST_TASK}
    assert article_count(database_url) == 18
    for name, job_id in ids.items():
        assert jobs[job_id].status == "rejected", (name, jobs[job_id])
        assert jobs[job_id].reason, name
    anonymous = [j for j in jobs.values() if j.id not in good_ids and j.id not in ids.values()]
    # Headers that are a list, the non-JSON item and the array carry no readable id: each gets
    # one made from its bytes.
    assert len(anonymous) == 3, anonymous
    assert all(j.status == "rejected" and j.payload for j in anonymous)
    assert elapsed < 60
    assert peak < 1024**3, f"a worker process reached {peak / 1024**2:.0f} MiB"
    assert "Unrecoverable error" not in worker.log_tail(100_000)


@sqlite_only
def test_reasons_say_what_was_wrong(broker_url, database_url, stack_env, start_worker) -> None:
    ids = {name: str(uuid.uuid4()) for name in ("object", "b64", "bomb", "eta", "shape")}
    client = redis_lib.Redis.from_url(broker_url)
    bad_eta = {"lang": "py", "task": INGEST_TASK, "id": ids["eta"], "eta": "next tuesday"}
    for item in (
        envelope(json.dumps({"title": "x"}).encode(), task_id=ids["object"]),
        envelope(b"@@", task_id=ids["b64"], encode=False),
        zlib_bomb(ids["bomb"], inflated=64 * 1024 * 1024),
        envelope(b"[[{}], {}, {}]", headers=bad_eta),
        envelope(
            json.dumps([[{"body": "a"}, {"body": "b"}], {}, {}]).encode(), task_id=ids["shape"]
        ),
    ):
        client.lpush(INGEST_QUEUE, item)
    start_worker(stack_env, concurrency=1)
    wait_until(lambda: len(jobs_by_id(database_url)) >= 5, timeout=60, what="5 outcomes")
    jobs = jobs_by_id(database_url)
    reasons = {name: jobs[i].reason or "" for name, i in ids.items()}
    assert "a JSON object, not [args, kwargs, embed]" in reasons["object"], reasons
    assert "base64" in reasons["b64"], reasons
    assert "inflates past" in reasons["bomb"], reasons
    assert "eta" in reasons["eta"].lower(), reasons
    assert "one JSON object" in reasons["shape"] and "2 positional" in reasons["shape"], reasons
    assert all("Error" not in r.split(":")[0] for r in reasons.values()), reasons


def test_a_task_id_of_any_length_or_content_gets_an_outcome(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """Too long for the column, a NUL (which PostgreSQL refuses), a lone surrogate: each job is
    stored under a bounded key, and the outcome keeps the original id."""
    odd_ids = ["x" * 500, "nul\x00id", "surrogate-\udc80", ""]
    client = redis_lib.Redis.from_url(broker_url)
    payloads = make_articles(len(odd_ids))
    for payload, odd in zip(payloads, odd_ids, strict=True):
        body = json.dumps([[payload], {}, {}]).encode()
        headers = {"lang": "py", "task": INGEST_TASK, "id": odd}
        client.lpush(INGEST_QUEUE, envelope(body, headers=headers))
    start_worker(stack_env, concurrency=1)
    wait_until(lambda: len(jobs_by_id(database_url)) >= 4, timeout=60, what="4 outcomes")
    jobs = jobs_by_id(database_url)
    for odd in odd_ids:
        key = job_key(odd)
        assert len(key) <= 64 and key.isprintable()
        assert jobs[key].status == "stored", (odd[:20], jobs[key])
    assert article_count(database_url) == 4


@sqlite_only
def test_unknown_tasks_and_old_protocol_messages(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """A task this worker does not run is rejected with its name; a protocol-1 message (all in
    the body, as Celery 3 sent them) is converted by Celery and stored."""
    unknown, old = str(uuid.uuid4()), str(uuid.uuid4())
    client = redis_lib.Redis.from_url(broker_url)
    client.lpush(
        INGEST_QUEUE,
        envelope(b"[[{}], {}, {}]", headers={"task": "newsclass.no_such_task", "id": unknown}),
        envelope(
            json.dumps(
                {"task": INGEST_TASK, "id": old, "args": make_articles(1), "kwargs": {}}
            ).encode(),
            headers={},
        ),
    )
    start_worker(stack_env, concurrency=1)
    wait_until(lambda: len(jobs_by_id(database_url)) >= 2, timeout=60, what="2 outcomes")
    jobs = jobs_by_id(database_url)
    assert jobs[unknown].status == "rejected"
    assert "unknown task 'newsclass.no_such_task'" in (jobs[unknown].reason or "")
    assert jobs[old].status == "stored", jobs[old]


def test_a_rejected_payload_that_no_encoder_writes_keeps_its_excerpt(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """A lone surrogate (valid JSON, no valid UTF-8) and NUL in a rejected payload: the
    excerpt is stored with those written as escapes."""
    job_id = str(uuid.uuid4())
    payload = {"title": "lone \udc80 surrogate and nul \x00", "no_body": True}
    client = redis_lib.Redis.from_url(broker_url)
    client.lpush(INGEST_QUEUE, envelope(json.dumps([[payload], {}, {}]).encode(), task_id=job_id))
    start_worker(stack_env, concurrency=1)
    wait_until(lambda: job_id in jobs_by_id(database_url), timeout=60, what="the outcome")
    job = jobs_by_id(database_url)[job_id]
    assert job.status == "rejected" and job.payload
    assert "\\udc80" in job.payload and "\\u0000" in job.payload


def _refuse_payloads_marked(database_url: str, mark: str) -> None:
    """Make the job table refuse a row whose payload holds ``mark`` (a fault only the payload
    causes), and the article table refuse articles from source 'poison'."""
    engine = get_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER nopayload BEFORE INSERT ON job WHEN NEW.payload LIKE '%{mark}%' "
                "BEGIN SELECT RAISE(ABORT, 'payload refused'); END"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON article WHEN NEW.source = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poison article refused'); END"
            )
            return
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER nopayload BEFORE INSERT ON job FOR EACH ROW "
            f"WHEN (strpos(NEW.payload, '{mark}') > 0) EXECUTE FUNCTION refuse()"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON article FOR EACH ROW "
            "WHEN (NEW.source = 'poison') EXECUTE FUNCTION refuse()"
        )


def test_a_job_whose_outcome_cannot_be_written_in_full_still_gets_one(
    broker_url, database_url, stack_env, start_worker
) -> None:
    """The last resort: a job that keeps failing and whose payload cannot be kept is recorded
    `failed` by a minimal row (id, status, reason), never acknowledged without an outcome."""
    _refuse_payloads_marked(database_url, "keep-me-not")
    env = {**stack_env, "NEWSCLASS_MAX_RETRIES": "1", "NEWSCLASS_RETRY_BACKOFF_MAX": "1"}
    job_id = str(uuid.uuid4())
    payload = {**make_articles(1)[0], "source": "poison", "title": "keep-me-not"}
    client = redis_lib.Redis.from_url(broker_url)
    client.lpush(INGEST_QUEUE, good_message(payload, job_id))
    start_worker(env, concurrency=1)
    wait_until(lambda: job_id in jobs_by_id(database_url), timeout=60, what="the outcome")
    job = jobs_by_id(database_url)[job_id]
    assert job.status == "failed" and job.payload is None
    assert "the payload could not be kept" in (job.reason or ""), job.reason


def test_a_refusal_the_database_cannot_take_now_is_recorded_when_it_can(
    request, broker_url, database_url, stack_env, start_worker
) -> None:
    """The outcome of a refused message cannot be written while the database refuses writes:
    the message is not acknowledged, returns after the visibility timeout, and is recorded."""
    from tests.integration.test_reliability import read_only

    admin = None if database_url.startswith("sqlite") else request.getfixturevalue("postgres_admin")
    env = {**stack_env, "NEWSCLASS_BROKER_VISIBILITY_TIMEOUT": "5"}
    worker = start_worker(env, concurrency=1)
    job_id = str(uuid.uuid4())
    client = redis_lib.Redis.from_url(broker_url)
    with read_only(database_url, admin):
        client.lpush(INGEST_QUEUE, envelope(b'{"an": "object"}', task_id=job_id))
        wait_until(
            lambda: "it returns later" in worker.log_tail(50_000),
            timeout=30,
            what="a failed record",
        )
    wait_until(lambda: job_id in jobs_by_id(database_url), timeout=30, what="the outcome")
    assert jobs_by_id(database_url)[job_id].status == "rejected"
