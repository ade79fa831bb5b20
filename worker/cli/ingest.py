"""Commands that take articles in: ``enqueue`` (to the workers) and ``classify`` (inline)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.cli.common import (
    ClassifyFormat,
    Format,
    commands,
    emit,
    err,
    example,
    fail,
    format_option,
    out,
    progress_bar,
    read_payloads,
    resend_after_option,
    settings_or_exit,
    timeout_option,
)
from worker.settings import get_settings, redact_url

PathsArgument = Annotated[
    list[Path] | None, typer.Argument(help="Text, HTML, JSON or JSONL files, or folders.")
]


@commands.command(
    epilog=example(
        "newsclass enqueue articles/ --jsonl more.jsonl --source wire --wait\n"
        "  newsclass enqueue --url https://news.example.org/2026/03/story.html --wait"
    )
)
def enqueue(
    paths: PathsArgument = None,
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
    timeout: Annotated[float, timeout_option("NEWSCLASS_ENQUEUE_TIMEOUT")] = 600.0,
    resend_after: Annotated[float, resend_after_option("NEWSCLASS_ENQUEUE_RESEND_AFTER")] = 300.0,
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


@commands.command(
    epilog=example("newsclass classify ../shared/samples/seed-article.txt --format json")
)
def classify(
    paths: PathsArgument = None,
    jsonl: Annotated[
        str | None,
        typer.Option(
            help="A JSON-lines file, or - for standard input.", envvar="NEWSCLASS_CLASSIFY_JSONL"
        ),
    ] = None,
    fmt: Annotated[ClassifyFormat, format_option()] = Format.table,
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


def _payload_name(payload: object) -> str:
    if isinstance(payload, dict):
        return str(payload.get("id") or payload.get("title") or "article")[:80]
    return "article"
