"""The same worker, unchanged, on RabbitMQ: jobs flow, and a SIGKILLed worker loses nothing.

AMQP acknowledgements are the broker's own: a message delivered to a worker that dies goes back
to its queue the moment the connection drops, with no visibility timeout and no window in which
a message is held by nobody.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from tests.articles import make_articles
from tests.conftest import service_missing
from tests.conftest import wait_until as wait_for
from tests.integration.test_reliability import client, counts, jobs_done
from worker import db
from worker.client import enqueue_articles

AMQP_URL = os.environ.get("NEWSCLASS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
def amqp_queue() -> str:
    """A queue of the test's own on the RabbitMQ server, deleted afterwards."""
    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.connect()
    except Exception as exc:
        service_missing(f"no RabbitMQ at {AMQP_URL}: {exc}")
    name = f"newsclass-test-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(AMQP_URL) as conn:
        conn.default_channel.queue_delete(name)


def test_the_worker_runs_unchanged_on_rabbitmq_and_a_kill_loses_nothing(
    amqp_queue: str, tmp_path: Path, start_worker
) -> None:
    database_url = f"sqlite:///{tmp_path / 'rabbit.db'}"
    db.upgrade(database_url)
    env = {
        "NEWSCLASS_BROKER_URL": AMQP_URL,
        "NEWSCLASS_DATABASE_URL": database_url,
        "NEWSCLASS_BATCH_WAIT": "0.1",
    }
    producer = client(AMQP_URL)
    ids = enqueue_articles(make_articles(3000, seed=13), app=producer, queue=amqp_queue)
    first = start_worker(env, concurrency=2, queues=amqp_queue)
    wait_for(lambda: jobs_done(database_url) >= 300, timeout=60, what="first 300 jobs")
    first.kill()
    assert jobs_done(database_url) < 3000, "the kill came too late to test anything"
    start_worker(env, concurrency=2, queues=amqp_queue)
    wait_for(lambda: jobs_done(database_url) >= 3000, timeout=120, what="all 3000 outcomes")
    time.sleep(1)
    articles, distinct, statuses = counts(database_url)
    assert articles == distinct == 3000
    assert statuses == {"stored": 3000}
    assert len(ids) == 3000
