"""The ``newsclass`` command: thin wrappers over the worker's functions.

Every option can also be set from the environment (the variable is shown in ``--help``), and every
command's help ends with an example.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.settings import SettingsError, get_settings, redact_url

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

out = Console()
err = Console(stderr=True)
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class ClassifyFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


class StatsFormat(StrEnum):
    table = "table"
    json = "json"


def example(text: str) -> str:
    """Help epilog with an example (shown verbatim)."""
    return "Example:\n\n\b\n  " + text


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def settings_or_exit() -> Any:
    try:
        return get_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


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


# ------------------------------------------------------------------------------- input reading


def iter_payloads(paths: Sequence[Path], jsonl: str | None) -> Iterator[dict]:
    """Payload dicts from files/folders and a JSONL file (or - for standard input)."""
    from worker.ingest import read_article_file

    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _ingestible(p))
        elif path.is_file():
            files = [path]
        else:
            raise fail(f"no such file or folder: {path}")
        for file in files:
            try:
                yield from read_article_file(file)
            except ValueError as exc:
                raise fail(str(exc)) from None
    if jsonl:
        lines: Iterable[str] = sys.stdin if jsonl == "-" else _open_lines(Path(jsonl))
        name = "<stdin>" if jsonl == "-" else jsonl
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise fail(f"{name}:{number}: not JSON: {exc.msg}") from None


def _open_lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        raise fail(f"no such file: {path}")
    with path.open(encoding="utf-8") as fh:
        yield from fh


def _ingestible(path: Path) -> bool:
    return path.suffix.lower() in {".txt", ".html", ".htm", ".json", ".jsonl"}


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


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


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


@app.command(epilog=example("newsclass enqueue articles/ --jsonl more.jsonl --source wire --wait"))
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
) -> None:
    """Send articles to the workers: one ingest job per article."""
    from worker.client import enqueue_articles

    settings = settings_or_exit()
    payloads = list(iter_payloads(paths or [], jsonl))
    if not payloads:
        raise fail("nothing to enqueue: give files, folders or --jsonl")
    with progress_bar() as bar:
        task = bar.add_task("enqueue", total=len(payloads))
        ids = enqueue_articles(payloads, source=source, on_sent=lambda n: bar.advance(task, n))
    err.print(f"enqueued {len(ids)} jobs on {redact_url(settings.broker_url)}", highlight=False)
    if wait:
        report_outcomes(ids, timeout=timeout)
    else:
        for job_id in ids:
            sys.stdout.write(job_id + "\n")


def report_outcomes(ids: Sequence[str], *, timeout: float) -> dict:
    from worker.client import wait_for_jobs

    settings = get_settings()
    with progress_bar() as bar:
        task = bar.add_task("waiting for outcomes", total=len(ids))
        found = wait_for_jobs(
            ids,
            database_url=settings.database_url,
            timeout=timeout,
            on_progress=lambda n: bar.advance(task, n),
        )
    counts: dict[str, int] = {}
    for job in found.values():
        counts[job.status] = counts.get(job.status, 0) + 1
    missing = len(ids) - len(found)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    out.print(f"outcomes: {summary}" + (f", still pending {missing}" if missing else ""))
    for job in found.values():
        if job.status in ("rejected", "failed"):
            out.print(f"  {job.id} {job.status}: {job.reason}", highlight=False)
    if missing:
        raise typer.Exit(1)
    return found


@app.command(epilog=example("newsclass worker --concurrency 2"))
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes (default: one per CPU).", envvar="NEWSCLASS_CONCURRENCY"
        ),
    ] = os.cpu_count() or 1,
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume.", envvar="NEWSCLASS_QUEUES")
    ] = "ingest",
    pool: Annotated[
        str,
        typer.Option(
            help="Celery pool: prefork (CPU work) or threads (fetching).", envvar="NEWSCLASS_POOL"
        ),
    ] = "prefork",
) -> None:
    """Run a Celery worker that ingests, classifies and stores articles."""
    settings = settings_or_exit()
    from worker.celery_app import app as celery_app

    celery_app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--pool={pool}",
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
    ] = ClassifyFormat.table,
) -> None:
    """Classify articles inline: no broker, no database."""
    from classifiers import load_model
    from worker.ingest import Limits, RejectedInput, parse_job
    from worker.pipeline import classify_articles

    settings = settings_or_exit()
    payloads = list(iter_payloads(paths or [], jsonl))
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
    if fmt == ClassifyFormat.json:
        data: Any = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    elif fmt == ClassifyFormat.jsonl:
        for row in results:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        emit(results, "table", ["id", "title", "labels", "scores", "primary"])


def _payload_name(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id") or payload.get("title") or "article")[:80]
    return "article"


def parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: not an ISO 8601 date or time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


ARTICLE_COLUMNS = [
    "id", "title", "url", "source", "published_at", "ingested_at",
    "labels", "scores", "primary", "model_version",
]  # fmt: skip


def article_row(article: Any) -> dict:
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "source": article.source,
        "published_at": iso(article.published_at),
        "ingested_at": iso(article.ingested_at),
        "labels": list(article.labels),
        "scores": dict(article.scores),
        "primary": article.primary_label,
        "model_version": article.model_version,
    }


@app.command(epilog=example("newsclass query --label defence --since 2026-01-01 --format csv"))
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
        str | None, typer.Option(help="Published (else ingested) at or after, ISO 8601.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Published (else ingested) before, ISO 8601.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Only this source.", envvar="NEWSCLASS_QUERY_SOURCE")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Labels given by this model version.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most rows.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Rows to skip.")] = 0,
    fmt: Annotated[
        Format, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """List stored articles with their labels, newest first."""
    from sqlmodel import Session

    from classifiers import LABELS
    from worker.store import ArticleFilter, find_articles, get_engine

    settings = settings_or_exit()
    for name in label or []:
        if name not in LABELS:
            raise fail(f"--label: unknown label {name!r} (one of {', '.join(LABELS)})")
    where = ArticleFilter(
        labels=tuple(label or ()),
        label_mode="all" if all_labels else "any",
        min_score=min_score,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        source=source,
        model_version=model_version,
    )
    with Session(get_engine(settings.database_url)) as session:
        rows = [
            article_row(a)
            for a in find_articles(session=session, where=where, limit=limit, offset=offset)
        ]
    emit(
        rows,
        fmt.value,
        ARTICLE_COLUMNS
        if fmt != Format.table
        else ["id", "title", "source", "published_at", "labels", "scores"],
    )


@app.command(epilog=example("newsclass stats --format json"))
def stats(
    fmt: Annotated[
        StatsFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = StatsFormat.table,
) -> None:
    """Counts: articles, articles per label, job outcomes."""
    from sqlmodel import Session

    from worker.store import count_articles, count_labels, count_outcomes, get_engine

    settings = settings_or_exit()
    with Session(get_engine(settings.database_url)) as session:
        data = {
            "articles": count_articles(session=session),
            "by_label": count_labels(session=session),
            "outcomes": count_outcomes(session=session),
        }
    if fmt == StatsFormat.json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title="newsclass")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("articles", str(data["articles"]))
    for name, n in sorted(data["by_label"].items()):
        table.add_row(f"label {name}", str(n))
    for name, n in data["outcomes"].items():
        table.add_row(f"jobs {name}", str(n))
    out.print(table)


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
        typer.Option(help="stored, duplicate, rejected or failed.", envvar="NEWSCLASS_JOB_STATUS"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows.")] = 50,
    fmt: Annotated[
        Format, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = Format.table,
) -> None:
    """List job outcomes, newest first (with the reason for rejected and failed jobs)."""
    if ctx.invoked_subcommand:
        return
    from sqlmodel import Session

    from worker.store import JOB_STATUSES, find_jobs, get_engine

    if status is not None and status not in JOB_STATUSES:
        raise fail(f"--status: one of {', '.join(JOB_STATUSES)}")
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
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a topic model and save it with skops and a model card."""
    from classifiers import evaluate_model, read_labelled, save_model, train_model

    try:
        records = read_labelled(data)
        dev_records = read_labelled(dev) if dev else None
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    with progress_bar() as bar:
        task = bar.add_task("training", total=None)

        def progress(step: int, total: int, description: str) -> None:
            bar.update(task, completed=step, total=total, description=description)

        model, report = train_model(records, seed=seed, progress=progress)
    card: dict[str, Any] = {"training": report, "data": [str(data)]}
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
        StatsFormat, typer.Option("--format", help="Output format.", envvar="NEWSCLASS_FORMAT")
    ] = StatsFormat.table,
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
    if fmt == StatsFormat.json:
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


def main() -> None:
    level = os.environ.get("NEWSCLASS_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "WARNING")
    app()
