"""Commands that run the services: ``worker``, ``beat``, ``api``, and the ``db`` schema group."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from worker.cli.common import commands, err, example, settings_or_exit
from worker.settings import redact_url

db_app = typer.Typer(help="Manage the results database schema.", no_args_is_help=True)


class Pool(StrEnum):
    processes = "processes"
    prefork = "prefork"
    solo = "solo"
    threads = "threads"


@commands.command(
    "worker",
    epilog=example(
        "newsclass worker --concurrency 2                      # ingest: 2 processes\n"
        "  newsclass worker --queues fetch --pool threads --concurrency 32   # fetching"
    ),
)
def run_worker(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes (or threads): default one per CPU.",
            envvar="NEWSCLASS_CONCURRENCY",
        ),
    ] = os.cpu_count() or 1,
    queues: Annotated[
        str,
        typer.Option(
            help="Queues to consume, comma-separated: celery (ingest jobs), fetch (polls, pages).",
            envvar="NEWSCLASS_QUEUES",
        ),
    ] = "celery",
    pool: Annotated[
        Pool,
        typer.Option(
            help="processes: N single-process workers, each receiving and classifying its own "
            "batches (ingest, CPU-bound); threads: one worker with N threads (fetching); "
            "prefork/solo: Celery's own pools.",
            envvar="NEWSCLASS_POOL",
        ),
    ] = Pool.processes,
) -> None:
    """Run Celery workers that ingest, classify and store articles."""
    settings = settings_or_exit()
    if pool == Pool.processes:
        from worker.processes import run_group, solo_worker_argv

        raise typer.Exit(
            run_group(
                concurrency,
                lambda i: solo_worker_argv(i, queues=queues, loglevel=settings.log_level),
                ready_file=settings.ready_file,
            )
        )
    from worker.celery_app import app as celery_app

    celery_app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--pool={pool.value}",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@commands.command(epilog=example("newsclass beat"))
def beat() -> None:
    """Run Celery beat, the scheduler of periodic ingest (run exactly one)."""
    settings = settings_or_exit()
    from worker.celery_app import app as celery_app

    celery_app.start(["beat", f"--loglevel={settings.log_level}"])


@commands.command(
    epilog=example("NEWSCLASS_API_TOKEN=s3cret newsclass api --host 0.0.0.0 --port 8000")
)
def api(
    host: Annotated[
        str, typer.Option(help="Address to listen on.", envvar="NEWSCLASS_API_HOST")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to listen on.", envvar="NEWSCLASS_API_PORT")
    ] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the dashboard at /."""
    import uvicorn

    from worker.api import create_app

    settings = settings_or_exit()
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@db_app.command(
    "upgrade",
    epilog=example(
        "NEWSCLASS_DATABASE_URL=postgresql+psycopg://localhost/news newsclass db upgrade"
    ),
)
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations (creates the tables on a new database)."""
    from worker import db

    settings = settings_or_exit()
    db.upgrade(settings.database_url, revision)
    err.print(
        f"database {redact_url(settings.database_url)} at revision {db.current(settings.database_url)}"
    )


@db_app.command("current", epilog=example("newsclass db current"))
def db_current() -> None:
    """Print the database's migration revision."""
    from worker import db

    settings = settings_or_exit()
    sys.stdout.write(f"{db.current(settings.database_url)}\n")
