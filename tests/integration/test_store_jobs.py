"""worker/store/jobs.py against both databases: migration 0005 adds the job's task, which
``record_jobs`` writes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from worker import db
from worker.names import INGEST_TASK, RECLASSIFY_TASK
from worker.store import Job, JobOutcome, get_engine, get_jobs, record_jobs, utcnow


def job_columns(database_url: str) -> dict[str, dict]:
    with get_engine(database_url).connect() as conn:
        return {c["name"]: c for c in sa.inspect(conn).get_columns("job")}


def test_migration_0005_adds_a_nullable_task_column_and_keeps_the_jobs(database_url: str) -> None:
    assert db.current(database_url) == "0005"
    assert job_columns(database_url)["task"]["nullable"]
    command.downgrade(db.alembic_config(database_url), "0004")
    assert "task" not in job_columns(database_url)
    with get_engine(database_url).begin() as conn:  # a job recorded by a worker before 0005
        conn.execute(
            sa.text(
                "INSERT INTO job (id, status, attempts, created_at, updated_at)"
                " VALUES ('before', 'stored', 1, :now, :now)"
            ),
            {"now": utcnow()},
        )
    db.upgrade(database_url)
    assert db.current(database_url) == "0005"
    with Session(get_engine(database_url)) as session:
        job = session.get(Job, "before")
        assert job is not None and job.status == "stored" and job.task is None


def test_record_jobs_writes_the_task_and_a_replay_keeps_it(database_url: str) -> None:
    outcomes = [
        JobOutcome(job_id="ingest", status="stored", task=INGEST_TASK),
        JobOutcome(job_id="relabel", status="failed", reason="boom", task=RECLASSIFY_TASK),
        JobOutcome(job_id="unsaid", status="rejected"),
    ]
    with Session(get_engine(database_url)) as session:
        record_jobs(session=session, outcomes=outcomes)
        session.commit()
        # a replay of the failed job that does not name its task keeps the recorded one
        record_jobs(session=session, outcomes=[JobOutcome(job_id="relabel", status="reclassified")])
        session.commit()
    with Session(get_engine(database_url)) as session:
        jobs = get_jobs(session=session, job_ids=["ingest", "relabel", "unsaid"])
        assert {k: (j.status, j.task) for k, j in jobs.items()} == {
            "ingest": ("stored", INGEST_TASK),
            "relabel": ("reclassified", RECLASSIFY_TASK),
            "unsaid": ("rejected", None),
        }
