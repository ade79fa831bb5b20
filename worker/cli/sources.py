"""The ``sources`` group: feeds and drop folders polled on the beat schedule."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.cli.common import (
    Format,
    ReportFormat,
    emit,
    err,
    example,
    fail,
    fits,
    format_option,
    open_session,
    settings_or_exit,
)
from worker.query import MAX_ID
from worker.store import SourceKind, SourceStatus

sources_app = typer.Typer(
    help="Feeds and drop folders polled on the beat schedule: add, list, pause, resume, remove.",
    no_args_is_help=True,
)
sources_add_app = typer.Typer(
    help="Register a feed or a drop folder (polled from now on by `newsclass beat`).",
    no_args_is_help=True,
    epilog=example("newsclass sources add feed https://news.example.org/rss.xml --every 600"),
)
sources_app.add_typer(sources_add_app, name="add")

SOURCE_COLUMNS = [
    "id", "kind", "name", "location", "every", "status", "next_poll_at", "last_success_at",
    "failures", "last_error_at", "last_error", "paused_reason", "items_sent",
]  # fmt: skip
EveryOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_ID,
        help="Seconds between polls (default: NEWSCLASS_SOURCE_EVERY).",
        envvar="NEWSCLASS_SOURCES_EVERY",
    ),
]


def source_row(source: Any) -> dict:
    return {column: getattr(source, column) for column in SOURCE_COLUMNS}


def _add_source(kind: SourceKind, location: str, every: int | None, **fields: Any) -> None:
    from worker.store import SourceExists, add_source

    settings = settings_or_exit()
    with open_session(settings) as session:
        try:
            added = add_source(
                session=session,
                kind=kind,
                location=location,
                every=every or settings.source_every,
                **fields,
            )
        except SourceExists as exc:
            raise fail(str(exc), code=1) from None
        sys.stdout.write(f"{added.id}\n")
        err.print(f"source {added.id}: {kind} {location}, every {added.every} s", highlight=False)


@sources_add_app.command(
    "feed",
    epilog=example(
        "newsclass sources add feed https://news.example.org/rss.xml --every 600 --name example"
    ),
)
def sources_add_feed(
    url: Annotated[str, typer.Argument(help="The feed's URL (RSS 0.9x/1.0/2.0 or Atom).")],
    every: EveryOption = None,
    name: Annotated[
        str | None,
        typer.Option(help="Source name stored with its articles (default: the feed's title)."),
    ] = None,
) -> None:
    """Add an RSS or Atom feed; each new entry's page is fetched and ingested once."""
    from worker.ingest import normalise_url, web_url_problem

    try:
        location = normalise_url(url)
    except ValueError:
        raise fail(f"not a valid URL: {url!r}") from None
    if web_url_problem(location) is not None:
        raise fail(f"only http and https feeds are polled, not {url!r}")
    _add_source("feed", location, every, name=name)


@sources_add_app.command(
    "folder", epilog=example("newsclass sources add folder /srv/drop --every 30 --move-done")
)
def sources_add_folder(
    path: Annotated[
        Path, typer.Argument(help="A folder where .txt, .html, .json and .jsonl files are dropped.")
    ],
    every: EveryOption = None,
    name: Annotated[
        str | None, typer.Option(help="Source name for its articles (default: the folder's name).")
    ] = None,
    move_done: Annotated[
        bool,
        typer.Option(
            "--move-done",
            help="Move each ingested file to the folder's done/ subfolder (default: leave it).",
            envvar="NEWSCLASS_SOURCES_MOVE_DONE",
        ),
    ] = False,
) -> None:
    """Add a drop folder; each file is ingested once (by path and content)."""
    folder = path.expanduser().resolve()
    if not folder.is_dir():
        raise fail(f"no such folder: {path}")
    _add_source("folder", str(folder), every, name=name, move_done=move_done)


@sources_app.command("list", epilog=example("newsclass sources list --format json"))
def sources_list(
    fmt: Annotated[ReportFormat, format_option()] = Format.table,
) -> None:
    """List the sources with their state: next poll, failures, last error, why paused."""
    from worker.store import list_sources

    with open_session() as session:
        rows = [source_row(source) for source in list_sources(session=session)]
    if fmt == Format.json:
        emit(rows, "json", SOURCE_COLUMNS)
        return
    for row in rows:
        row["state"] = row["status"] + (f": {row['paused_reason']}" if row["paused_reason"] else "")
        row["error"] = row["last_error"] if row["failures"] else None
    emit(rows, "table", ["id", "kind", "name", "location", "every", "state", "next_poll_at",
                         "failures", "error", "items_sent"])  # fmt: skip


def _set_status(source_id: int, status: SourceStatus, reason: str | None = None) -> None:
    from worker.store import set_source_status

    settings = settings_or_exit()
    if not fits(source_id):
        raise fail(f"no source {source_id}", code=1)
    with open_session(settings) as session:
        found = set_source_status(
            session=session,
            source_id=source_id,
            status=status,
            reason=reason,
        )
    if found is None:
        raise fail(f"no source {source_id}", code=1)
    err.print(f"source {source_id} {status}", highlight=False)


@sources_app.command("pause", epilog=example("newsclass sources pause 3 --reason 'site redesign'"))
def sources_pause(
    source_id: Annotated[int, typer.Argument(help="The source's id (see `sources list`).")],
    reason: Annotated[str | None, typer.Option(help="Why, shown in `sources list`.")] = None,
) -> None:
    """Stop polling a source (its state and seen items are kept)."""
    _set_status(source_id, "paused", reason or "paused by hand")


@sources_app.command("resume", epilog=example("newsclass sources resume 3"))
def sources_resume(
    source_id: Annotated[int, typer.Argument(help="The source's id (see `sources list`).")],
) -> None:
    """Poll a paused source again, at once, with its failure count cleared."""
    _set_status(source_id, "active")


@sources_app.command("remove", epilog=example("newsclass sources remove 3"))
def sources_remove(
    source_id: Annotated[int, typer.Argument(help="The source's id (see `sources list`).")],
) -> None:
    """Forget a source and its seen items (its stored articles stay)."""
    from worker.store import remove_source

    with open_session() as session:
        if not fits(source_id) or not remove_source(session=session, source_id=source_id):
            raise fail(f"no source {source_id}", code=1)
    err.print(f"source {source_id} removed", highlight=False)
