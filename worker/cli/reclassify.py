"""``newsclass reclassify``: re-label stored articles with a model, through the queue in batches
(the plan is worker/reclassify.py's; this module selects, sends, waits and reports)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import (
    AllLabelsOption,
    Format,
    ReportFormat,
    article_filter,
    commands,
    err,
    example,
    fail,
    filter_option,
    format_option,
    open_session,
    out,
    progress_bar,
    resend_after_option,
    settings_or_exit,
    time_option,
    timeout_option,
)
from worker.query import MAX_ROWS
from worker.settings import get_settings, redact_url
from worker.store import TimeField


@commands.command(
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
    label: Annotated[list[str] | None, filter_option("label", "NEWSCLASS_RECLASSIFY_LABEL")] = None,
    all_labels: AllLabelsOption = False,
    min_score: Annotated[
        float | None, filter_option("min_score", "NEWSCLASS_RECLASSIFY_MIN_SCORE")
    ] = None,
    since: Annotated[str | None, filter_option("since", "NEWSCLASS_RECLASSIFY_SINCE")] = None,
    until: Annotated[str | None, filter_option("until", "NEWSCLASS_RECLASSIFY_UNTIL")] = None,
    time: Annotated[
        TimeField, time_option("--since and --until", "NEWSCLASS_RECLASSIFY_TIME")
    ] = "published",
    source: Annotated[str | None, filter_option("source", "NEWSCLASS_RECLASSIFY_SOURCE")] = None,
    search: Annotated[str | None, filter_option("search", "NEWSCLASS_RECLASSIFY_SEARCH")] = None,
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
    timeout: Annotated[float, timeout_option("NEWSCLASS_RECLASSIFY_TIMEOUT")] = 600.0,
    resend_after: Annotated[
        float, resend_after_option("NEWSCLASS_RECLASSIFY_RESEND_AFTER")
    ] = 300.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only say which articles would be re-labelled, and by which version; send nothing.",
            envvar="NEWSCLASS_RECLASSIFY_DRY_RUN",
        ),
    ] = False,
    fmt: Annotated[ReportFormat, format_option("Output format of the summary.")] = Format.table,
) -> None:
    """Re-label stored articles with a model, through the queue in batches; earlier versions'
    labels stay queryable (query --model-version V)."""
    from functools import partial

    from classifiers import ModelLoadError, load_model
    from worker.client import enqueue_reclassify
    from worker.reclassify import plan_reclassify
    from worker.store import find_article_versions

    settings = settings_or_exit()
    where = article_filter(
        label, all_labels, min_score, since, until, time, source, search, model_version
    )
    model_path = (model or settings.model_path).expanduser().resolve()
    try:
        version = load_model(model_path).version
    except ModelLoadError as exc:
        raise fail(f"{'--model' if model else 'NEWSCLASS_MODEL_PATH'}: {exc}") from None
    with open_session(settings) as session:
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
