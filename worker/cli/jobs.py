"""The ``jobs`` group: job outcomes listed, one shown, failed ones retried."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from worker.cli.common import (
    Format,
    RowsFormat,
    emit,
    example,
    fail,
    format_option,
    json_default,
    open_session,
    out,
)
from worker.query import MAX_ROWS

jobs_app = typer.Typer(help="Job outcomes: list, show one.")

JOB_COLUMNS = [
    "id",
    "status",
    "reason",
    "article_id",
    "external_id",
    "source",
    "attempts",
    "updated_at",
]


@jobs_app.callback(
    invoke_without_command=True, epilog=example("newsclass jobs --status rejected --format json")
)
def jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(
            help="stored, duplicate, rejected, failed or reclassified.",
            envvar="NEWSCLASS_JOB_STATUS",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_ROWS, help="Most rows.")] = 50,
    fmt: Annotated[RowsFormat, format_option()] = Format.table,
) -> None:
    """List job outcomes, newest first (with the reason for rejected and failed jobs)."""
    if ctx.invoked_subcommand:
        return
    from worker.store import ALL_JOB_STATUSES, find_jobs

    if status is not None and status not in ALL_JOB_STATUSES:
        raise fail(f"--status: one of {', '.join(ALL_JOB_STATUSES)}")
    with open_session() as session:
        rows = [
            {c: getattr(job, c) for c in JOB_COLUMNS}
            for job in find_jobs(session=session, status=status, limit=limit)
        ]
    emit(rows, fmt.value, JOB_COLUMNS)


@jobs_app.command("show", epilog=example("newsclass jobs show 7f1c2a1e-..."))
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job id printed by enqueue.")],
) -> None:
    """Show one job's outcome."""
    from worker.store import get_jobs

    with open_session() as session:
        job = get_jobs(session=session, job_ids=[job_id]).get(job_id)
        if job is None:
            raise fail(f"no job {job_id} (not processed yet, or unknown)", code=1)
        row = job.model_dump()
    sys.stdout.write(json.dumps(row, default=json_default, ensure_ascii=False, indent=2) + "\n")


@jobs_app.command("retry", epilog=example("newsclass jobs retry --all-failed"))
def jobs_retry(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Ids of failed jobs.")] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Replay every failed job.")
    ] = False,
) -> None:
    """Replay failed jobs from their kept payloads (same job ids, so outcomes are updated)."""
    from worker.client import resend_failed
    from worker.store import find_jobs, get_jobs

    if not job_ids and not all_failed:
        raise fail("give job ids or --all-failed")
    with open_session() as session:
        if all_failed:
            jobs = find_jobs(session=session, status="failed", limit=1_000_000)
        else:
            found = get_jobs(session=session, job_ids=job_ids or [])
            missing = sorted(set(job_ids or []) - set(found))
            if missing:
                raise fail(f"no such job: {', '.join(missing)}", code=1)
            jobs = list(found.values())
    not_failed = [job.id for job in jobs if job.status != "failed"]
    if not_failed:
        raise fail(f"only failed jobs can be retried; not failed: {', '.join(not_failed)}")
    sent = resend_failed(jobs)
    out.print(f"re-sent {sent} failed jobs")
