"""The Celery app and its configuration, nothing else.

JSON only (a pickle message is refused), late acknowledgement after the database commit, and a
message of a worker that dies mid-job goes back to the queue.
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, urlsplit

from celery import Celery

from worker import redis_transport
from worker.names import FETCH_QUEUE, FETCH_TASKS, INGEST_QUEUE, SCHEDULE_TASK
from worker.settings import get_settings

__all__ = ["FETCH_QUEUE", "INGEST_QUEUE", "app", "make_app"]


def redis_transport_options(
    visibility_timeout: int,
    batch_size: int,
    max_text_chars: int = 2_000_000,
    max_batch_chars: int = 4_000_000,
) -> dict[str, int]:
    """Redis redelivers a message whose worker died once it has been unacknowledged for the
    visibility timeout; kombu looks for such messages only every interval x throttle seconds
    (100 s by default), so sweep a few times per timeout instead. A sweep holds a lock in Redis
    that outlives a worker killed mid-sweep by its expiry (300 s by default): keep that short too,
    or one SIGKILL stops all redelivery for five minutes.

    A worker takes at most one batch of messages per round trip. With more, the batch filled
    first runs at once and the rest wait for the batch timer, which is due by the time the batch
    is stored: with 256 per take and batches of 200, a third of a backlog went through batches of
    56 and 112.

    A compressed message may inflate to the longest accepted text written as JSON escapes (six
    bytes a character) plus 1 MiB for the other fields, and no further. One round trip takes
    at most a batch's text budget of bytes (and always one message), so a run of very large
    messages is not all held in memory at once."""
    return {
        "fetch_limit": batch_size,
        "max_fetch_bytes": max_batch_chars,
        "max_inflated_bytes": 6 * max_text_chars + 1024 * 1024,
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": max(1, min(60, visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": max(5, min(300, visibility_timeout)),
    }


def broker_transport_settings(broker_url: str) -> dict[str, object]:
    """Redis brokers use newsclass's transport (worker/redis_transport.py: no message lost between
    the queue and a worker). Given a transport by name, kombu no longer reads TLS from the
    rediss:// scheme, so say it here, verifying the server's certificate unless the URL says
    otherwise (kombu alone would not verify)."""
    parts = urlsplit(broker_url)
    if parts.scheme not in ("redis", "rediss"):
        return {}
    options: dict[str, object] = {"broker_transport": redis_transport.NAME}
    if parts.scheme == "rediss" and "ssl_cert_reqs" not in parse_qs(parts.query):
        options["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("newsclass", include=["worker.tasks", "worker.fetch_tasks"])
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        event_serializer="json",
        # Acknowledge only after the outcome is committed; a job whose worker dies is redelivered
        # (the store makes the second run a no-op).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=INGEST_QUEUE,
        task_routes={name: {"queue": FETCH_QUEUE} for name in FETCH_TASKS},
        # Beat keeps its schedule in memory: the default PersistentScheduler writes a shelve
        # (pickle) file. One tick task finds the due sources; the sources' state is in the DB.
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule={
            "schedule-polls": {
                "task": SCHEDULE_TASK,
                "schedule": settings.beat_tick,
                # A tick nobody took in time is dropped: the next one does the same work.
                "options": {"queue": FETCH_QUEUE, "expires": max(2 * settings.beat_tick, 5.0)},
            }
        },
        beat_max_loop_interval=max(1.0, min(settings.beat_tick, 60.0)),
        # Unacknowledged messages held by a process: enough to fill one batch and start the next.
        worker_prefetch_multiplier=max(4, 2 * settings.batch_size),
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child or None,
        worker_max_memory_per_child=settings.worker_max_memory_per_child or None,
        worker_send_task_events=False,
        worker_consumer="worker.consumer:GuardedConsumer",
        # After a broker outage keep the full prefetch: Celery would otherwise shrink it to the
        # jobs in flight and grow it back as they are acknowledged, which batched jobs held from
        # the lost connection never are, so the worker would stop taking messages.
        worker_enable_prefetch_count_reduction=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=redis_transport_options(
            settings.broker_visibility_timeout,
            settings.batch_size,
            settings.max_text_chars,
            settings.max_batch_chars,
        ),
        **broker_transport_settings(settings.broker_url),
        broker_pool_limit=10,
        timezone="UTC",
        enable_utc=True,
    )
    return app


app = make_app()
