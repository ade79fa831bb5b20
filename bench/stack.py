"""What every measurement runs on: a producer with no newsclass code, and counting outcomes."""

from __future__ import annotations

import time

from celery import Celery
from sqlmodel import Session, func, select

from worker.store import Job, get_engine


def producer(broker_url: str) -> Celery:
    """A plain Celery client sending JSON, as any producer would."""
    app = Celery(broker=broker_url)
    app.conf.task_serializer = "json"
    return app


def outcomes_count(database_url: str) -> int:
    with Session(get_engine(database_url)) as session:
        return int(session.exec(select(func.count()).select_from(Job)).one())


def wait_outcomes(database_url: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while outcomes_count(database_url) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{outcomes_count(database_url)} of {n} outcomes in {timeout}s")
        time.sleep(0.1)
