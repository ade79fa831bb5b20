"""What the ``newsclass`` commands share: consoles, errors, settings and the database session,
output formats and rendering, input reading, and the option declarations used by several commands.

Every option can also be set from the environment (the variable is shown in ``--help``), and every
command's help ends with an example.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from worker.query import MAX_ID, iso
from worker.settings import Settings, SettingsError, get_settings, redact_url

if TYPE_CHECKING:
    from sqlmodel import Session

    from worker.store import ArticleFilter

# Nothing printed is read as rich markup: titles, sources, reasons and payload excerpts come from
# outside, and "[/bold]" in one is text to show, not a tag (styles are given as Text objects).
out = Console(markup=False)
err = Console(stderr=True, markup=False)

# The top-level commands, each declared in its group's module; main.py adds them to the app in the
# order `newsclass --help` lists them.
commands = typer.Typer()


# ------------------------------------------------------------------------------- formats


class Format(StrEnum):
    """Every output format; each command takes the ones that fit its output (a Literal of them)."""

    table = "table"
    text = "text"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


RowsFormat = Literal[Format.table, Format.json, Format.jsonl, Format.csv]
ClassifyFormat = Literal[Format.table, Format.json, Format.jsonl]
ReportFormat = Literal[Format.table, Format.json]
StatsFormat = Literal[Format.table, Format.json, Format.csv]
ShowFormat = Literal[Format.text, Format.json]


def format_option(help: str = "Output format.", envvar: str = "NEWSCLASS_FORMAT") -> Any:
    """The ``--format`` option (its choices are the Literal it annotates)."""
    return typer.Option("--format", help=help, envvar=envvar)


# ------------------------------------------------------------------------------- errors, settings


def example(text: str) -> str:
    """Help epilog with an example (shown verbatim)."""
    return "Example:\n\n\b\n  " + text


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None
    problem = url_problem(settings.database_url, settings.broker_url)
    if problem is not None:
        raise fail(problem)
    return settings


def url_problem(database_url: str, broker_url: str) -> str | None:
    """What makes a configured URL unusable before any connection is tried (a port that is not a
    number or out of range, unbalanced brackets, an unknown driver), in one line; else None."""
    from kombu.utils.url import url_to_parts
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(database_url)
        url.get_dialect()
        if url.port is not None and not 0 < url.port < 2**16:
            raise ValueError(f"port {url.port} is not between 1 and 65535")
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        return (
            f"NEWSCLASS_DATABASE_URL={redact_url(database_url)} is not a database URL newsclass "
            f"can use ({exc}): give sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        )
    try:
        url_to_parts(broker_url)
    except ValueError as exc:
        return (
            f"NEWSCLASS_BROKER_URL={redact_url(broker_url)} is not a broker URL newsclass can "
            f"use ({exc}): give redis://HOST:PORT/DB or amqp://USER:PASSWORD@HOST:PORT//"
        )
    return None


@contextmanager
def open_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session on the configured database (the settings are checked first unless given)."""
    from sqlmodel import Session

    from worker.store import get_engine

    settings = settings or settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        yield session


def fits(row_id: int) -> bool:
    """Whether an id can name a row: one past the id columns' range names none (so it is "no
    article N", as for any other absent id, and never reaches the database)."""
    return 1 <= row_id <= MAX_ID


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal and os.environ.get("NEWSCLASS_PROGRESS") != "1",
    )


def timeout_option(envvar: str) -> Any:
    """How long ``--wait`` waits."""
    return typer.Option(help="Seconds --wait waits at most.", envvar=envvar)


def resend_after_option(envvar: str) -> Any:
    """When ``--wait`` sends again the jobs the broker may have lost."""
    return typer.Option(
        help="With --wait: send jobs again (same ids) that have no outcome after this many "
        "seconds, in case the broker lost them (0: never).",
        envvar=envvar,
    )


# ------------------------------------------------------------------------------- input


def read_payloads(paths: Sequence[Path], jsonl: str | None) -> list[object]:
    """Every payload of the files, folders and JSONL stream; an unreadable one exits, naming it."""
    from worker.inputs import InputError, iter_payloads

    try:
        return list(iter_payloads(paths, jsonl))
    except InputError as exc:
        raise fail(str(exc)) from None


# ------------------------------------------------------------------------------- output


def emit(rows: list[dict], fmt: str, columns: Sequence[str], *, title: str | None = None) -> None:
    """Print rows as a table, JSON (a list), JSON lines or CSV."""
    if fmt == "json":
        out.print_json(json.dumps(rows, default=json_default, ensure_ascii=False))
    elif fmt == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row, default=json_default, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: cell(row.get(k), csv=True) for k in columns})
    else:
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(cell(row.get(c)) for c in columns))
        out.print(table)


def json_default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def cell(value: object, *, csv: bool = False) -> str:
    """One value as a table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value) or ""
    if isinstance(value, list):
        return ";".join(map(str, value)) if csv else ", ".join(map(str, value))
    if isinstance(value, dict):
        if csv:
            return json.dumps(value, ensure_ascii=False)
        return " ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
        )
    return str(value)


# ------------------------------------------------------------------------------- article filters
# The filter options of `query` and `reclassify` (and the times of `stats`): help and limits
# declared once here; each command gives its own environment variable.

_FILTER_OPTIONS: dict[str, dict[str, Any]] = {
    "label": {"help": "Only articles with this label (repeatable)."},
    "min_score": {"min": 0.0, "max": 1.0, "help": "Only labels scored at least this."},
    "since": {"help": "At or after this time (see --time), ISO 8601."},
    "until": {"help": "Before this time (see --time), ISO 8601."},
    "source": {"help": "Only this source."},
    "search": {"help": 'Full text of title and text: words, "a phrase", OR, -word.'},
}
TIME_HELP = "The time {uses} use: published (else ingested), or ingested."

AllLabelsOption = Annotated[
    bool, typer.Option("--all", help="With several --label: articles having all of them.")
]


def filter_option(name: str, envvar: str | None = None, **changes: Any) -> Any:
    """The option for filter ``name`` (label, min_score, since, until, source, search), read from
    ``envvar``; ``changes`` override its declaration (help=...)."""
    return typer.Option(**{**_FILTER_OPTIONS[name], **changes}, envvar=envvar)


def time_option(uses: str, envvar: str) -> Any:
    """The ``--time`` option: which time ``uses`` (e.g. "--since and --until") use."""
    return typer.Option(help=TIME_HELP.format(uses=uses), envvar=envvar)


# How the query options are spelled on the command line, for build_filter's messages.
OPTION_NAMES = {
    "label": "--label", "min_score": "--min-score", "since": "--since", "until": "--until",
    "time": "--time", "source": "--source", "search": "--search", "model_version": "--model-version",
}  # fmt: skip


def article_filter(
    label: list[str] | None,
    all_labels: bool,
    min_score: float | None,
    since: str | None,
    until: str | None,
    time: str,
    source: str | None,
    search: str | None,
    model_version: str | None,
) -> ArticleFilter:
    """The filter of the options `query` and `reclassify` share; a bad value exits naming it."""
    return filter_or_exit(
        labels=label or (),
        all_labels=all_labels,
        min_score=min_score,
        since=since,
        until=until,
        time=time,
        source=source,
        search=search,
        model_version=model_version,
    )


def filter_or_exit(**options: Any) -> ArticleFilter:
    """The store's filter from the query options of `query`, `reclassify` and `stats`; a bad
    value exits with a message naming the option."""
    from worker.query import build_filter

    try:
        return build_filter(**options, names=OPTION_NAMES)
    except ValueError as exc:
        raise fail(str(exc)) from None
