"""The Celery app and its configuration, nothing else.

JSON only (a pickle message is refused), late acknowledgement after the database commit, and a
message of a worker that dies mid-job goes back to the queue.
"""

from __future__ import annotations

from celery import Celery

from worker.settings import get_settings

INGEST_QUEUE = "ingest"
FETCH_QUEUE = "fetch"


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("newsclass", include=["worker.tasks"])
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
        task_routes={"newsclass.poll_*": {"queue": FETCH_QUEUE}},
        # Unacknowledged messages held by a process: enough to fill one batch and start the next.
        worker_prefetch_multiplier=max(4, 2 * settings.batch_size),
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child or None,
        worker_max_memory_per_child=settings.worker_max_memory_per_child or None,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_pool_limit=10,
        timezone="UTC",
        enable_utc=True,
    )
    return app


app = make_app()
