"""The ``newsclass`` command: thin wrappers over the worker's functions.

Every option can also be set from the environment (the variable is shown in ``--help``), and every
command's help ends with an example.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from worker.query import MAX_ID, MAX_ROWS, iso
from worker.settings import SettingsError, get_settings, redact_url
from worker.store import SortOrder, StatsBy, TimeField

app = typer.Typer(
    name="newsclass",
    help="Ingest news articles through Redis and Celery, tag them by topic, and query the results.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Manage the results database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(help="Job outcomes: list, show one.")
app.add_typer(jobs_app, name="jobs")

# Nothing printed is read as rich markup: titles, sources, reasons and payload excerpts come from
# outside, and "[/bold]" in one is text to show, not a tag (styles are given as Text objects).
out = Console(markup=False)
err = Console(stderr=True, markup=False)
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


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


def example(text: str) -> str:
    """Help epilog with an example (shown verbatim)."""
    return "Example:\n\n\b\n  " + text


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_or_exit() -> Any:
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
        out.print_json(json.dumps(rows, default=_json_default, ensure_ascii=False))
    elif fmt == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k), csv=True) for k in columns})
    else:
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        out.print(table)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cell(value: object, *, csv: bool = False) -> str:
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


# ------------------------------------------------------------------------------- commands


@app.command(
    epilog=example(
        "newsclass enqueue articles/ --jsonl more.jsonl --source wire --wait\n"
        "  newsclass enqueue --url https://news.example.org/2026/03/story.html --wait"
    )
)
def enqueue(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Text, HTML, JSON or JSONL files, or folders.")
    ] = None,
    jsonl: Annotated[
        str | None,
        typer.Option(
            help="A JSON-lines file of articles, or - for standard input.",
            envvar="NEWSCLASS_ENQUEUE_JSONL",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Source name for articles that have none.", envvar="NEWSCLASS_SOURCE"),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            help="A web page to fetch, extract and ingest (repeatable; fetched by a fetch worker).",
            envvar="NEWSCLASS_ENQUEUE_URL",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            help="Wait for every job's outcome and report them.", envvar="NEWSCLASS_ENQUEUE_WAIT"
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds --wait waits at most.", envvar="NEWSCLASS_ENQUEUE_TIMEOUT"),
    ] = 600.0,
    resend_after: Annotated[
        float,
        typer.Option(
            help="With --wait: send jobs again (same ids) that have no outcome after this many "
            "seconds, in case the broker lost them (0: never).",
            envvar="NEWSCLASS_ENQUEUE_RESEND_AFTER",
        ),
    ] = 300.0,
) -> None:
    """Send articles to the workers: one ingest job per article."""
    from worker.client import enqueue_articles, enqueue_pages, with_source

    settings = settings_or_exit()
    payloads = [with_source(p, source) for p in read_payloads(paths or [], jsonl)]
    if not payloads and not url:
        raise fail("nothing to enqueue: give files, folders, --jsonl or --url")
    ids: list[str] = []
    if payloads:
        with progress_bar() as bar:
            task = bar.add_task("enqueue", total=len(payloads))
            ids = enqueue_articles(payloads, on_sent=lambda n: bar.advance(task, n))
    sent = dict(zip(ids, payloads, strict=True))
    if url:
        try:
            ids += enqueue_pages(url, source=source)
        except ValueError as exc:
            raise fail(f"--url: {exc}") from None
    err.print(f"enqueued {len(ids)} jobs on {redact_url(settings.broker_url)}", highlight=False)
    if wait:
        report_outcomes(ids, timeout=timeout, resend_payloads=sent, resend_after=resend_after)
    else:
        for job_id in ids:
            sys.stdout.write(job_id + "\n")


def report_outcomes(
    ids: Sequence[str],
    *,
    timeout: float,
    resend_payloads: Mapping[str, object] | None = None,
    resend_after: float = 0.0,
) -> dict:
    """Wait for the jobs' outcomes and print them; jobs in ``resend_payloads`` still without an
    outcome after ``resend_after`` seconds are sent again under the same ids."""
    from functools import partial

    from worker.client import send_again, wait_for_jobs

    settings = get_settings()
    resend = None
    if resend_payloads and resend_after > 0:
        payloads = resend_payloads

        def resend_missing(missing: Sequence[str]) -> None:
            again = [job_id for job_id in missing if job_id in payloads]
            if again:
                err.print(f"no outcome yet for {len(again)} jobs: sending them again")
                send_again(payloads, again)

        resend = resend_missing
    with progress_bar() as bar:
        task = bar.add_task("waiting for outcomes", total=len(ids))
        found = wait_for_jobs(
            ids,
            database_url=settings.database_url,
            timeout=timeout,
            on_progress=partial(bar.advance, task),
            resend=resend,
            resend_after=resend_after or 300.0,
        )
    counts: dict[str, int] = {}
    for job in found.values():
        counts[job.status] = counts.get(job.status, 0) + 1
    missing = len(ids) - len(found)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    out.print(f"outcomes: {summary}" + (f", still pending {missing}" if missing else ""))
    for job in found.values():
        if job.status in ("rejected", "failed"):
            out.print(f"  {job.id} {job.status}: {job.reason}", highlight=False, soft_wrap=True)
    if missing:
        raise typer.Exit(1)
    return found


class Pool(StrEnum):
    processes = "processes"
    prefork = "prefork"
    solo = "solo"
    threads = "threads"


@app.command(
    epilog=example(
        "newsclass worker --concurrency 2                      # ingest: 2 processes\n"
        "  newsclass worker --queues fetch --pool threads --concurrency 32   # fetching"
    )
)
def worker(
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


@app.command(epilog=example("newsclass beat"))
def beat() -> None:
    """Run Celery beat, the scheduler of periodic ingest (run exactly one)."""
    settings = settings_or_exit()
    from worker.celery_app import app as celery_app

    celery_app.start(["beat", f"--loglevel={settings.log_level}"])


@app.command(epilog=example("newsclass classify ../shared/samples/seed-article.txt --format json"))
def classify(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Text, HTML, JSON or JSONL files, or folders.")
    ] = None,
    jsonl: Annotated[
        str | None,
        typer.Option(
            help="A JSON-lines file, or - for standard input.", envvar="NEWSCLASS_CLASSIFY_JSONL"
        ),
    ] = None,
    fmt: Annotated[
        ClassifyFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """Classify articles inline: no broker, no database."""
    from classifiers import load_model
    from worker.ingest import Limits, RejectedInput, parse_job
    from worker.pipeline import classify_articles

    settings = settings_or_exit()
    payloads = read_payloads(paths or [], jsonl)
    if not payloads:
        raise fail("nothing to classify: give files, folders or --jsonl")
    model = load_model(settings.model_path)
    limits = Limits(max_text_chars=settings.max_text_chars)
    results: list[dict] = []
    articles = []
    for payload in payloads:
        try:
            articles.append(parse_job(payload, limits=limits))
        except RejectedInput as exc:
            raise fail(f"{_payload_name(payload)}: {exc.reason}") from None
    for article, prediction in zip(articles, classify_articles(articles, model=model), strict=True):
        results.append(
            {
                "id": article.external_id,
                "title": article.title,
                **prediction.to_dict(),
                "model_version": model.version,
            }
        )
    if fmt == Format.json:
        data: Any = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    elif fmt == Format.jsonl:
        for row in results:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        emit(results, "table", ["id", "title", "labels", "scores", "primary"])


def _fits(row_id: int) -> bool:
    """Whether an id can name a row: one past the id columns' range names none (so it is "no
    article N", as for any other absent id, and never reaches the database)."""
    return 1 <= row_id <= MAX_ID


def _payload_name(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id") or payload.get("title") or "article")[:80]
    return "article"


# How the query options are spelled on the command line, for build_filter's messages.
OPTION_NAMES = {
    "label": "--label", "min_score": "--min-score", "since": "--since", "until": "--until",
    "time": "--time", "source": "--source", "search": "--search", "model_version": "--model-version",
}  # fmt: skip


def filter_or_exit(**options: Any) -> Any:
    """The store's filter from the query options of `query` and `reclassify`; a bad value
    exits with a message naming the option."""
    from worker.query import build_filter

    try:
        return build_filter(**options, names=OPTION_NAMES)
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command(
    epilog=example(
        "newsclass query --label defence --label trade --all --since 2026-01-01 --format csv\n"
        "  newsclass query --search 'tariff OR \"trade war\" -soybeans' --sort score --format json"
    )
)
def query(
    label: Annotated[
        list[str] | None,
        typer.Option(help="Only articles with this label (repeatable).", envvar="NEWSCLASS_LABEL"),
    ] = None,
    all_labels: Annotated[
        bool, typer.Option("--all", help="With several --label: articles having all of them.")
    ] = False,
    min_score: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Only labels scored at least this.", envvar="NEWSCLASS_MIN_SCORE"
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="At or after this time (see --time), ISO 8601.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time (see --time), ISO 8601.")
    ] = None,
    time: Annotated[
        TimeField,
        typer.Option(
            help="The time --since, --until and sorting use: published (else ingested), or ingested.",
            envvar="NEWSCLASS_QUERY_TIME",
        ),
    ] = "published",
    source: Annotated[
        str | None, typer.Option(help="Only this source.", envvar="NEWSCLASS_QUERY_SOURCE")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(help='Full text of title and text: words, "a phrase", OR, -word.'),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Labels given by this model version.")
    ] = None,
    sort: Annotated[
        SortOrder,
        typer.Option(
            help="newest or oldest first, or highest score (of the --label labels) first.",
            envvar="NEWSCLASS_QUERY_SORT",
        ),
    ] = "newest",
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most rows.")] = 50,
    offset: Annotated[int, typer.Option(min=0, max=MAX_ROWS, help="Rows to skip.")] = 0,
    fmt: Annotated[
        RowsFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """List stored articles with their labels, newest first."""
    from sqlmodel import Session

    from worker.query import ARTICLE_COLUMNS, TABLE_COLUMNS, article_row
    from worker.store import find_articles, get_engine

    settings = settings_or_exit()
    where = filter_or_exit(
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
    with Session(get_engine(settings.database_url)) as session:
        rows = [
            article_row(a)
            for a in find_articles(
                session=session, where=where, limit=limit, offset=offset, sort=sort
            )
        ]
    emit(rows, fmt.value, ARTICLE_COLUMNS if fmt != Format.table else TABLE_COLUMNS)


@app.command(epilog=example("newsclass show 42 --format json"))
def show(
    article_id: Annotated[int, typer.Argument(help="The article's id (from query).")],
    fmt: Annotated[
        ShowFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_SHOW_FORMAT")
    ] = Format.text,
) -> None:
    """One stored article: text, scores, paragraph breakdown, explanation, model version."""
    from sqlmodel import Session

    from worker.query import article_detail
    from worker.store import find_article_labels, get_article, get_engine

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        article = get_article(session=session, article_id=article_id) if _fits(article_id) else None
        if article is None:
            raise fail(f"no article {article_id}", code=1)
        detail = article_detail(
            article, find_article_labels(session=session, article_id=article_id)
        )
    if fmt == Format.json:
        sys.stdout.write(json.dumps(detail, ensure_ascii=False, indent=2) + "\n")
        return
    out.print(Text.assemble((detail["title"] or "(untitled)", "bold"), f"  #{detail['id']}"))
    for key in ("source", "author", "url", "published_at", "ingested_at", "model_version"):
        if detail[key]:
            out.print(f"{key}: {detail[key]}", highlight=False)
    out.print(f"labels: {_cell(detail['labels']) or 'none'}   scores: {_cell(detail['scores'])}")
    for name, terms in detail["explanation"].items():
        out.print(f"why {name}: {', '.join(terms)}", highlight=False)
    history: dict[str, list[str]] = {}
    for row in detail["label_history"]:
        history.setdefault(row["model_version"], []).append(f"{row['label']}={row['score']:.2f}")
    if set(history) - {detail["model_version"]}:
        for version, labels in history.items():
            current = " (current)" if version == detail["model_version"] else ""
            out.print(f"labels of {version}{current}: {', '.join(labels)}", highlight=False)
    emit(
        [{**p, "text": (p.get("text") or "")[:160]} for p in detail["paragraphs"]],
        "table",
        ["index", "labels", "scores", "text"],
        title="paragraphs",
    )
    out.print(detail["text"], highlight=False)


@app.command(
    epilog=example(
        "newsclass reclassify --model models/mine/model.skops --label trade --since 2026-01-01 "
        "--wait\n"
        "  newsclass reclassify --model-version tfidf-lr-2026.01.05-1a2b3c4d --dry-run\n"
        "  newsclass reclassify --wait   # every article back to the workers' own model"
    )
)
def reclassify(
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model file (skops) to re-label with, at a path the workers can read "
            "(default: NEWSCLASS_MODEL_PATH, the workers' own model).",
            envvar="NEWSCLASS_RECLASSIFY_MODEL",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            help="Only articles with this label (repeatable).", envvar="NEWSCLASS_RECLASSIFY_LABEL"
        ),
    ] = None,
    all_labels: Annotated[
        bool, typer.Option("--all", help="With several --label: articles having all of them.")
    ] = False,
    min_score: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Only labels scored at least this.",
            envvar="NEWSCLASS_RECLASSIFY_MIN_SCORE",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="At or after this time (see --time), ISO 8601.",
            envvar="NEWSCLASS_RECLASSIFY_SINCE",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Before this time (see --time), ISO 8601.", envvar="NEWSCLASS_RECLASSIFY_UNTIL"
        ),
    ] = None,
    time: Annotated[
        TimeField,
        typer.Option(
            help="The time --since and --until use: published (else ingested), or ingested.",
            envvar="NEWSCLASS_RECLASSIFY_TIME",
        ),
    ] = "published",
    source: Annotated[
        str | None, typer.Option(help="Only this source.", envvar="NEWSCLASS_RECLASSIFY_SOURCE")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            help='Full text of title and text: words, "a phrase", OR, -word.',
            envvar="NEWSCLASS_RECLASSIFY_SEARCH",
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(
            help="Only articles whose current labels are this model version's (with --label: "
            "articles this version gave the label).",
            envvar="NEWSCLASS_RECLASSIFY_MODEL_VERSION",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_ROWS,
            help="At most this many articles (by id).",
            envvar="NEWSCLASS_RECLASSIFY_LIMIT",
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            max=10_000,
            help="Articles per job: each job is classified in one call and stored in one "
            "transaction.",
            envvar="NEWSCLASS_RECLASSIFY_BATCH_SIZE",
        ),
    ] = 200,
    wait: Annotated[
        bool,
        typer.Option(
            help="Wait until every article has the new version and print a summary.",
            envvar="NEWSCLASS_RECLASSIFY_WAIT",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds --wait waits at most.", envvar="NEWSCLASS_RECLASSIFY_TIMEOUT"),
    ] = 600.0,
    resend_after: Annotated[
        float,
        typer.Option(
            help="With --wait: send jobs again (same ids) that have no outcome after this many "
            "seconds, in case the broker lost them (0: never).",
            envvar="NEWSCLASS_RECLASSIFY_RESEND_AFTER",
        ),
    ] = 300.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only say which articles would be re-labelled, and by which version; send nothing.",
            envvar="NEWSCLASS_RECLASSIFY_DRY_RUN",
        ),
    ] = False,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", help="Output format of the summary.", envvar="NEWSCLASS_FORMAT"),
    ] = Format.table,
) -> None:
    """Re-label stored articles with a model, through the queue in batches; earlier versions'
    labels stay queryable (query --model-version V)."""
    from functools import partial

    from sqlmodel import Session

    from classifiers import ModelLoadError, load_model
    from worker.client import enqueue_reclassify
    from worker.reclassify import plan_reclassify
    from worker.store import find_article_versions, get_engine

    settings = settings_or_exit()
    where = filter_or_exit(
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
    model_path = (model or settings.model_path).expanduser().resolve()
    try:
        version = load_model(model_path).version
    except ModelLoadError as exc:
        raise fail(f"{'--model' if model else 'NEWSCLASS_MODEL_PATH'}: {exc}") from None
    with Session(get_engine(settings.database_url)) as session:
        selected = find_article_versions(session=session, where=where, limit=limit)
    plan = plan_reclassify(
        selected, model_version=version, model_path=str(model_path), batch_size=batch_size
    )
    todo = plan.todo
    if dry_run or not todo:
        _print_plan(plan.summary(), fmt, dry_run=dry_run)
        return
    requests = [r.payload() for r in plan.requests(model_path=str(model_path) if model else None)]
    with progress_bar() as bar:
        task = bar.add_task("enqueue jobs", total=len(requests))
        sent = enqueue_reclassify(requests, on_sent=partial(bar.advance, task))
    err.print(
        f"enqueued {len(sent)} reclassify jobs for {len(todo)} articles "
        f"({len(selected) - len(todo)} already at {version}) on {redact_url(settings.broker_url)}",
        highlight=False,
    )
    if not wait:
        for job_id in sent:
            sys.stdout.write(job_id + "\n")
        return
    report_reclassified(
        todo,
        sent,
        model_version=version,
        selected=len(selected),
        fmt=fmt,
        timeout=timeout,
        resend_after=resend_after,
    )


def _print_plan(plan: dict, fmt: ReportFormat, *, dry_run: bool) -> None:
    if fmt == Format.json:
        sys.stdout.write(json.dumps({**plan, "dry_run": dry_run}) + "\n")
        return
    if not plan["to_reclassify"]:
        out.print(
            f"nothing to do: {plan['selected']} articles selected, all at {plan['model_version']}",
            highlight=False,
            soft_wrap=True,
        )
        return
    versions = ", ".join(f"{v} ({n})" for v, n in plan["from_versions"].items())
    out.print(
        f"would reclassify {plan['to_reclassify']} of {plan['selected']} articles in "
        f"{plan['jobs']} jobs: {versions} -> {plan['model_version']}",
        highlight=False,
        soft_wrap=True,
    )


def report_reclassified(
    todo: Sequence[Any],
    sent: Mapping[str, object],
    *,
    model_version: str,
    selected: int,
    fmt: ReportFormat,
    timeout: float,
    resend_after: float,
) -> None:
    """Wait until the articles have the new version (or every job has an outcome) and print what
    changed: versions before and after, label changes; exit 1 if some articles did not change."""
    from functools import partial

    from worker.client import RECLASSIFY_TASK, send_again, wait_for_versions
    from worker.reclassify import summarise

    settings = get_settings()

    def resend_missing(missing: Sequence[str]) -> None:
        if missing:
            err.print(f"no outcome yet for {len(missing)} jobs: sending them again")
            send_again(sent, missing, task=RECLASSIFY_TASK)

    with progress_bar() as bar:
        task = bar.add_task("reclassifying", total=len(todo))
        versions, outcomes = wait_for_versions(
            [a.id for a in todo],
            model_version=model_version,
            job_ids=list(sent),
            database_url=settings.database_url,
            timeout=timeout,
            on_progress=partial(bar.advance, task),
            resend=resend_missing if resend_after > 0 else None,
            resend_after=resend_after or 300.0,
        )
    summary = summarise(todo, versions, model_version=model_version, selected=selected)
    rejected = [
        {"job": job.id, "reason": job.reason}
        for job in outcomes.values()
        if job.status == "rejected"
    ]
    summary["rejected_jobs"] = rejected
    if fmt == Format.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        versions_before = ", ".join(f"{v} ({n})" for v, n in summary["from_versions"].items())
        out.print(
            f"reclassified {summary['reclassified']} of {summary['sent']} articles: "
            f"{versions_before} -> {model_version}; labels changed on {summary['labels_changed']}"
            + (f"; {summary['already']} already at it" if summary["already"] else ""),
            highlight=False,
            soft_wrap=True,
        )
        table = Table(title="labels")
        for column in ("label", "before", "after", "gained", "lost"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for name, counts in summary["labels"].items():
            table.add_row(name, *(str(counts[k]) for k in ("before", "after", "gained", "lost")))
        out.print(table)
        for row in rejected:
            out.print(f"  job {row['job']} rejected: {row['reason']}", highlight=False)
    if summary["pending"]:
        err.print(f"{summary['pending']} articles are not at {model_version}", highlight=False)
        raise typer.Exit(1)


@app.command(
    epilog=example(
        "newsclass stats --by week --format csv\n"
        "  newsclass stats --by month --since 2026-01-01 --plot volume.svg"
    )
)
def stats(
    fmt: Annotated[
        StatsFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
    by: Annotated[
        StatsBy | None,
        typer.Option(
            help="Also count articles per label by day, week, month (UTC) or source.",
            envvar="NEWSCLASS_STATS_BY",
        ),
    ] = None,
    time: Annotated[
        TimeField,
        typer.Option(
            help="The time --by and --since/--until use: published (else ingested), or ingested.",
            envvar="NEWSCLASS_STATS_TIME",
        ),
    ] = "published",
    since: Annotated[
        str | None,
        typer.Option(help="Count articles at or after, ISO 8601.", envvar="NEWSCLASS_STATS_SINCE"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Count articles before, ISO 8601.", envvar="NEWSCLASS_STATS_UNTIL"),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Draw the volume per label over time to this .png or .svg (needs matplotlib).",
            envvar="NEWSCLASS_STATS_PLOT",
        ),
    ] = None,
) -> None:
    """Counts: articles, articles per label, job outcomes; with --by, per label over time."""
    from sqlmodel import Session

    from classifiers import LABELS
    from worker.query import build_filter, plot_volume, stats_data
    from worker.store import get_engine

    settings = settings_or_exit()
    if plot is not None and by is None:
        by = "day"
    try:
        where = build_filter(
            since=since,
            until=until,
            time=time,
            names=OPTION_NAMES,
        )
        with Session(get_engine(settings.database_url)) as session:
            data = stats_data(session=session, by=by, where=where)
        if plot is not None:
            err.print(f"wrote {plot_volume(data, plot)}", highlight=False)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data) + "\n")
    elif by is not None:
        emit(data["volume"], fmt.value, [by, "articles", *LABELS], title=f"per {by}")
    elif fmt == Format.csv:
        rows = [{"what": "articles", "count": data["articles"]}]
        rows += [{"what": f"label {k}", "count": v} for k, v in sorted(data["by_label"].items())]
        rows += [{"what": f"jobs {k}", "count": v} for k, v in data["outcomes"].items()]
        emit(rows, "csv", ["what", "count"])
    else:
        table = Table(title="newsclass")
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("articles", str(data["articles"]))
        for name, n in sorted(data["by_label"].items()):
            table.add_row(f"label {name}", str(n))
        for name, n in data["outcomes"].items():
            table.add_row(f"jobs {name}", str(n))
        out.print(table)


@app.command(epilog=example("NEWSCLASS_API_TOKEN=s3cret newsclass api --host 0.0.0.0 --port 8000"))
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
    fmt: Annotated[
        RowsFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """List job outcomes, newest first (with the reason for rejected and failed jobs)."""
    if ctx.invoked_subcommand:
        return
    from sqlmodel import Session

    from worker.store import ALL_JOB_STATUSES, find_jobs, get_engine

    if status is not None and status not in ALL_JOB_STATUSES:
        raise fail(f"--status: one of {', '.join(ALL_JOB_STATUSES)}")
    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
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
    from sqlmodel import Session

    from worker.store import get_engine, get_jobs

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        job = get_jobs(session=session, job_ids=[job_id]).get(job_id)
        if job is None:
            raise fail(f"no job {job_id} (not processed yet, or unknown)", code=1)
        row = job.model_dump()
    sys.stdout.write(json.dumps(row, default=_json_default, ensure_ascii=False, indent=2) + "\n")


@jobs_app.command("retry", epilog=example("newsclass jobs retry --all-failed"))
def jobs_retry(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Ids of failed jobs.")] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Replay every failed job.")
    ] = False,
) -> None:
    """Replay failed jobs from their kept payloads (same job ids, so outcomes are updated)."""
    from sqlmodel import Session

    from worker.client import resend_failed
    from worker.store import find_jobs, get_engine, get_jobs

    if not job_ids and not all_failed:
        raise fail("give job ids or --all-failed")
    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
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


@app.command(
    epilog=example("newsclass train --data ../shared/data/wikinews/train.jsonl --out models/mine")
)
def train(
    data: Annotated[
        Path, typer.Option(help="Labelled JSONL or CSV.", envvar="NEWSCLASS_TRAIN_DATA")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for model.skops and its card.")
    ] = Path("model"),
    dev: Annotated[
        Path | None, typer.Option(help="Labelled data to report on (never trained on).")
    ] = None,
    supplement: Annotated[
        list[Path] | None,
        typer.Option(
            help="Labelled JSONL or CSV learned from in every CV training fold but never scored "
            "(repeatable)."
        ),
    ] = None,
    unlabeled: Annotated[
        Path | None, typer.Option(help="Unlabelled JSONL or CSV to learn word vectors from.")
    ] = None,
    annotations: Annotated[
        list[Path] | None,
        typer.Option(
            help="JSONL of id + labels for articles of --unlabeled: learned from in every CV "
            "training fold but never scored (repeatable)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed.")] = 0,
) -> None:
    """Train a topic model and save it with skops and a model card."""
    from classifiers import evaluate_model, read_labelled, save_model, train_model
    from classifiers.data import read_supplement, read_unlabeled

    paths, labelled_ids = supplement or [], annotations or []
    try:
        records = read_labelled(data)
        dev_records = read_labelled(dev) if dev else None
        extra = read_supplement(paths, labelled_ids, unlabeled)
        texts = read_unlabeled(unlabeled) if unlabeled else []
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    with progress_bar() as bar:
        task = bar.add_task("training", total=None)

        def progress(step: int, total: int, description: str) -> None:
            bar.update(task, completed=step, total=total, description=description)

        model, report = train_model(
            records, unlabeled=texts, supplement=extra, seed=seed, progress=progress
        )
    card: dict[str, Any] = {
        "training": report,
        "data": [
            str(path) for path in (data, *paths, *labelled_ids, *([unlabeled] if unlabeled else []))
        ],
    }
    if dev_records is not None:
        card["dev"] = evaluate_model(model, dev_records)
    path = save_model(model, out_dir, card=card)
    out.print(f"saved {path} (version {model.version}); use it with NEWSCLASS_MODEL_PATH={path}")


@app.command(
    epilog=example("newsclass evaluate --data ../shared/data/wikinews/dev.jsonl --format json")
)
def evaluate(
    data: Annotated[
        Path, typer.Option(help="Labelled JSONL or CSV.", envvar="NEWSCLASS_EVAL_DATA")
    ],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """Precision, recall and F1 per label, micro and macro F1, of the configured model."""
    from classifiers import evaluate_model, load_model, read_labelled

    settings = settings_or_exit()
    try:
        records = read_labelled(data)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    model = load_model(settings.model_path)
    report = evaluate_model(model, records)
    report["model_version"] = model.version
    if fmt == Format.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    rows = [{"label": k, **v} for k, v in report["per_label"].items()]
    emit(
        rows,
        "table",
        ["label", "precision", "recall", "f1", "support"],
        title=f"{model.version}: n={report['n']}",
    )
    out.print(f"micro F1 {report['micro_f1']:.3f}  macro F1 {report['macro_f1']:.3f}")


@app.command(epilog=example("make demo   # or: newsclass demo my-articles/"))
def demo(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="More articles to send with the samples.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcomes.")] = 180.0,
) -> None:
    """Run the whole stack locally: a real Redis (started here unless NEWSCLASS_BROKER_URL is set),
    a worker, the sample articles enqueued, and a table of what was stored."""
    from worker.demo import run_demo

    settings_or_exit()
    run_demo([SAMPLES_DIR, *(paths or [])], concurrency=concurrency, timeout=timeout)


# ------------------------------------------------------------------------------- sources

sources_app = typer.Typer(
    help="Feeds and drop folders polled on the beat schedule: add, list, pause, resume, remove.",
    no_args_is_help=True,
)
app.add_typer(sources_app, name="sources")
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


def _add_source(kind: str, location: str, every: int | None, **fields: Any) -> None:
    from sqlmodel import Session

    from worker.store import SourceExists, add_source, get_engine

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        try:
            added = add_source(
                session=session,
                kind=kind,  # type: ignore[arg-type]
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
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """List the sources with their state: next poll, failures, last error, why paused."""
    from sqlmodel import Session

    from worker.store import get_engine, list_sources

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        rows = [source_row(source) for source in list_sources(session=session)]
    if fmt == Format.json:
        emit(rows, "json", SOURCE_COLUMNS)
        return
    for row in rows:
        row["state"] = row["status"] + (f": {row['paused_reason']}" if row["paused_reason"] else "")
        row["error"] = row["last_error"] if row["failures"] else None
    emit(rows, "table", ["id", "kind", "name", "location", "every", "state", "next_poll_at",
                         "failures", "error", "items_sent"])  # fmt: skip


def _set_status(source_id: int, status: str, reason: str | None = None) -> None:
    from sqlmodel import Session

    from worker.store import get_engine, set_source_status

    settings = settings_or_exit()
    if not _fits(source_id):
        raise fail(f"no source {source_id}", code=1)
    with Session(get_engine(settings.database_url)) as session:
        found = set_source_status(
            session=session,
            source_id=source_id,
            status=status,  # type: ignore[arg-type]
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
    from sqlmodel import Session

    from worker.store import get_engine, remove_source

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        if not _fits(source_id) or not remove_source(session=session, source_id=source_id):
            raise fail(f"no source {source_id}", code=1)
    err.print(f"source {source_id} removed", highlight=False)


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
