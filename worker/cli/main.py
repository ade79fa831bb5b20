"""The ``newsclass`` command: the Typer app, its commands in the order ``--help`` lists them, and
``main()``, which turns a missing database or broker into one line saying what to do.

Each command group lives in its own module (ingest, ops, query, reclassify, model, demo, jobs,
sources); what they share is in common.py.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from worker.cli.common import commands, fail
from worker.cli.demo import demo
from worker.cli.ingest import classify, enqueue
from worker.cli.jobs import jobs_app
from worker.cli.model import evaluate, train
from worker.cli.ops import api, beat, db_app, run_worker
from worker.cli.query import query, show, stats
from worker.cli.reclassify import reclassify
from worker.cli.sources import sources_app
from worker.settings import get_settings, redact_url

app = typer.Typer(
    name="newsclass",
    help="Ingest news articles through Redis and Celery, tag them by topic, and query the results.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

# The top-level commands, in the order `newsclass --help` lists them, then the groups.
_COMMANDS = (
    enqueue, run_worker, beat, classify, query, show, reclassify, stats, api, train, evaluate, demo,
)  # fmt: skip
_declared = {info.callback: info for info in commands.registered_commands}
if set(_declared) != set(_COMMANDS):  # a command declared in a module but not listed here
    raise RuntimeError(f"commands not in _COMMANDS: {set(_declared) - set(_COMMANDS)}")
app.registered_commands = [_declared[command] for command in _COMMANDS]
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sources_app, name="sources")


_NO_SCHEMA = ("no such table", "does not exist", "no such column", "undefinedtable")


def database_error_message(exc: Exception, database_url: str) -> str | None:
    """What to tell the user when a command met a database error; None for other errors."""
    import sqlalchemy.exc as sa_exc

    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    where = redact_url(database_url)
    reason = " ".join((str(exc.orig).strip().splitlines() or [""])[0].split())[:300]
    if any(mark in f"{type(exc.orig).__name__} {reason}".lower() for mark in _NO_SCHEMA):
        return (
            f"the database {where} has no newsclass tables, or older ones ({reason}): "
            "run `newsclass db upgrade`"
        )
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return f"cannot use the database {where}: {reason}"
    return None


def broker_error_message(exc: Exception, broker_url: str) -> str | None:
    """What to tell the user when a command could not reach the broker; None for other errors."""
    from kombu.exceptions import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    reason = " ".join((str(exc).strip().splitlines() or [""])[0].split())[:300]
    return f"cannot reach the broker {redact_url(broker_url)}: {reason} (is it running?)"


def main() -> None:
    level = os.environ.get("NEWSCLASS_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "WARNING")
    try:
        app()
    except Exception as exc:
        # A database or broker that is not there, or a database not migrated, is a user's setup,
        # not a bug: one line that says what to do instead of a traceback.
        message = None
        if type(exc).__module__.startswith("sqlalchemy"):
            message = database_error_message(exc, get_settings().database_url)
        elif type(exc).__module__.startswith("kombu"):
            message = broker_error_message(exc, get_settings().broker_url)
        if message is None:
            raise
        fail(message)
        sys.exit(1)
