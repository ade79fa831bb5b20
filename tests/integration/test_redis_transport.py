"""newsclass's Redis transport against a real Redis: what kombu's own transport could lose, it
keeps; and it stays compatible with plain kombu producers and kombu's redelivery."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from worker.redis_transport import FETCH_SCRIPT

TRANSPORT = "worker.redis_transport:Transport"
QUEUE = Queue("t", Exchange("t", type="direct"), routing_key="t")
OTHER = Queue("u", Exchange("u", type="direct"), routing_key="u")


@pytest.fixture
def plain(broker_url: str) -> Iterator[Connection]:
    """A producer on kombu's own Redis transport."""
    with Connection(broker_url) as conn:
        yield conn


def ours(broker_url: str, **options: object) -> Connection:
    return Connection(broker_url, transport=TRANSPORT, transport_options=options)


def publish(conn: Connection, bodies: list[object], queue: Queue = QUEUE, **kw: object) -> None:
    with conn.channel() as channel:
        producer = Producer(channel)
        for body in bodies:
            producer.publish(
                body,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=[queue],
                serializer="json",
                **kw,
            )


def drain(conn: Connection, queues: list[Queue], n: int, *, ack: bool, **kw: object) -> list:
    """Take ``n`` messages (acknowledging them or not); return their bodies in order."""
    got: list[Message] = []
    with Consumer(conn, queues, callbacks=[lambda _b, m: got.append(m)], **kw):  # type: ignore[list-item]
        deadline = time.monotonic() + 20
        while len(got) < n and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                continue
        if ack:
            for message in got:
                message.ack()
    return [m.payload for m in got]


def unacked(broker_url: str) -> dict[bytes, bytes]:
    return redis.Redis.from_url(broker_url).hgetall("unacked")


def test_messages_come_in_order_and_acks_clear_the_unacked_records(broker_url, plain) -> None:
    publish(plain, [{"n": i} for i in range(50)])
    with ours(broker_url) as conn:
        assert type(conn.default_channel).__module__ == "worker.redis_transport"
        assert drain(conn, [QUEUE], 50, ack=True) == [{"n": i} for i in range(50)]
        conn.default_channel.qos.flush_acks()  # what the event loop does once per tick
    assert unacked(broker_url) == {}
    assert redis.Redis.from_url(broker_url).llen("t") == 0


def test_a_taken_message_is_always_recorded_as_unacknowledged(broker_url, plain) -> None:
    """The step kombu's transport splits in two (pop, then record) is one script here: run it
    and then "die" without a word, and every taken message is in kombu's unacked records,
    in kombu's format, so kombu's own redelivery hands it out again."""
    publish(plain, [{"n": i} for i in range(5)])
    client = redis.Redis.from_url(broker_url)
    taken = client.eval(FETCH_SCRIPT, 3, "unacked", "unacked_index", "t", 10, repr(time.time()))
    assert len(taken) == 10 and client.llen("t") == 0  # 5 (queue, message) pairs

    records = {tag.decode(): json.loads(raw) for tag, raw in unacked(broker_url).items()}
    assert len(records) == 5
    for message, exchange, routing_key in records.values():
        assert (exchange, routing_key) == ("t", "t")
        assert message["properties"]["delivery_tag"] in records
    assert client.zcard("unacked_index") == 5

    # The visibility timeout passes; a consumer on the same Redis sweeps them back and gets them.
    time.sleep(1.2)
    with ours(broker_url, visibility_timeout=1) as conn:
        conn.default_channel.qos.restore_visible(num=100, interval=1)
        bodies = drain(conn, [QUEUE], 5, ack=True)
    assert sorted(b["n"] for b in bodies) == list(range(5))


def test_unacknowledged_messages_of_a_closed_consumer_go_back(broker_url, plain) -> None:
    publish(plain, [{"n": i} for i in range(3)])
    with ours(broker_url) as conn:
        assert len(drain(conn, [QUEUE], 3, ack=False)) == 3
    # Closing the connection restored them (kombu's restore at shutdown).
    assert unacked(broker_url) == {}
    with ours(broker_url) as conn:
        assert sorted(b["n"] for b in drain(conn, [QUEUE], 3, ack=True)) == [0, 1, 2]


def test_no_ack_consumers_leave_no_records(broker_url, plain) -> None:
    publish(plain, [{"n": i} for i in range(4)])
    with ours(broker_url) as conn:
        assert len(drain(conn, [QUEUE], 4, ack=False, no_ack=True)) == 4
        conn.default_channel.qos.flush_acks()
    assert unacked(broker_url) == {}


def test_a_waiting_consumer_wakes_when_a_message_arrives(broker_url, plain) -> None:
    """The wait (BLMOVE of the list onto itself) takes nothing: the message arrives whole."""
    with ours(broker_url) as conn:
        publish(plain, [{"warm": True}])
        drain(conn, [QUEUE], 1, ack=True)  # the queue is empty now: the consumer waits
        timer = threading.Timer(0.3, publish, args=(plain, [{"late": True}]))
        timer.start()
        try:
            assert drain(conn, [QUEUE], 1, ack=True) == [{"late": True}]
        finally:
            timer.join()


def test_priorities_and_a_second_queue_are_served(broker_url, plain) -> None:
    publish(plain, [{"q": "t", "pri": 6}], priority=6)
    publish(plain, [{"q": "u"}], queue=OTHER)
    with ours(broker_url) as conn:
        bodies = drain(conn, [QUEUE, OTHER], 2, ack=True)
    assert sorted(b["q"] for b in bodies) == ["t", "u"]


def test_global_keyprefix_is_refused(broker_url) -> None:
    with (
        ours(broker_url, global_keyprefix="x:") as conn,
        pytest.raises(ValueError, match="global_keyprefix"),
    ):
        conn.default_channel  # noqa: B018


PLAIN = {"title": "Tariffs", "body": "Steel tariffs rose \u00e9 again.", "source": "s"}


@pytest.mark.parametrize(
    "payload",
    [
        PLAIN,
        # not plain JSON: the body is left to kombu's encoder (dates as its tagged objects)
        {"body": "Dated.", "published_at": datetime(2026, 3, 1, tzinfo=UTC)},
        {"body": "Not a number.", "id": float("nan")},  # orjson would write null
        {"body": "Nested.", "tags": ["a", "b"], "id": 2**70, "title": "\ud800"},
    ],
    ids=["plain-json", "kombu-types", "nan", "nested-bigint-surrogate"],
)
def test_bulk_enqueue_sends_what_send_task_sends(broker_url: str, payload: dict) -> None:
    """send_jobs builds messages with Celery's own builder and sender, routing once per call:
    every header is what app.send_task would have sent, and the body is the same JSON (written
    by orjson, so its spacing and escapes may differ)."""
    from celery import Celery

    from worker.client import INGEST_TASK, describe, send_jobs

    app = Celery(broker=broker_url)
    app.conf.task_serializer = "json"
    send_jobs([("bulk-1", payload)], app=app, queue="cmp")
    app.send_task(
        INGEST_TASK,
        args=(payload,),
        task_id="bulk-1",
        queue="cmp",
        argsrepr=describe(payload),
        kwargsrepr="{}",
    )
    client = redis.Redis.from_url(broker_url)
    sent_by_send_task, sent_by_send_jobs = (json.loads(m) for m in client.lrange("cmp", 0, -1))
    for message in (sent_by_send_jobs, sent_by_send_task):
        message["headers"].pop("origin")
        message["properties"].pop("delivery_tag")
        message["body"] = base64.b64decode(message["body"])
    # orjson wrote the article's body (compact, UTF-8); kombu wrote everything else
    assert (b'", "' not in sent_by_send_jobs["body"]) == (payload["body"] == PLAIN["body"])
    for message in (sent_by_send_jobs, sent_by_send_task):
        message["body"] = json.loads(message["body"])
    assert sent_by_send_jobs["body"] == sent_by_send_task["body"]
    if "published_at" in payload:
        assert sent_by_send_jobs["body"][0][0]["published_at"]["__type__"] == "datetime"
    else:
        assert repr(sent_by_send_jobs["body"][0]) == repr([payload])  # repr: NaN != NaN
    assert sent_by_send_jobs["headers"] == sent_by_send_task["headers"]
    assert sent_by_send_jobs["headers"]["task"] == INGEST_TASK
    assert sent_by_send_jobs["properties"]["delivery_info"] == {
        "exchange": "",
        "routing_key": "cmp",
    }
    # send_task also copies argsrepr and kwargsrepr into the properties, where nothing reads them.
    for key in ("argsrepr", "kwargsrepr"):
        sent_by_send_task["properties"].pop(key)
    assert sent_by_send_jobs == sent_by_send_task


def test_publish_signal_receivers_see_the_body_celery_encodes(broker_url: str) -> None:
    """With a before_task_publish receiver connected, bulk enqueue leaves the body to Celery, so
    the receiver sees the (args, kwargs, embed) tuple it expects."""
    from celery import Celery, signals

    from worker.client import send_jobs

    app = Celery(broker=broker_url)
    app.conf.task_serializer = "json"
    seen: list[object] = []

    def receiver(body: object = None, **_: object) -> None:
        seen.append(body)

    signals.before_task_publish.connect(receiver)
    try:
        send_jobs([("signal-1", PLAIN)], app=app, queue="signal")
    finally:
        signals.before_task_publish.disconnect(receiver)
    assert isinstance(seen[0], tuple) and seen[0][0] == (PLAIN,)
    raw = json.loads(redis.Redis.from_url(broker_url).lrange("signal", 0, -1)[0])
    assert b'", "' in base64.b64decode(raw["body"])  # kombu's encoder wrote it
