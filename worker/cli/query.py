"""Commands that read what is stored: ``query``, ``show`` and ``stats``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from worker.cli.common import (
    AllLabelsOption,
    Format,
    RowsFormat,
    ShowFormat,
    StatsFormat,
    article_filter,
    cell,
    commands,
    emit,
    err,
    example,
    fail,
    filter_option,
    filter_or_exit,
    fits,
    format_option,
    open_session,
    out,
    settings_or_exit,
    time_option,
)
from worker.query import MAX_ROWS
from worker.store import SortOrder, StatsBy, TimeField


@commands.command(
    epilog=example(
        "newsclass query --label defence --label trade --all --since 2026-01-01 --format csv\n"
        "  newsclass query --search 'tariff OR \"trade war\" -soybeans' --sort score --format json"
    )
)
def query(
    label: Annotated[list[str] | None, filter_option("label", "NEWSCLASS_LABEL")] = None,
    all_labels: AllLabelsOption = False,
    min_score: Annotated[float | None, filter_option("min_score", "NEWSCLASS_MIN_SCORE")] = None,
    since: Annotated[str | None, filter_option("since")] = None,
    until: Annotated[str | None, filter_option("until")] = None,
    time: Annotated[
        TimeField, time_option("--since, --until and sorting", "NEWSCLASS_QUERY_TIME")
    ] = "published",
    source: Annotated[str | None, filter_option("source", "NEWSCLASS_QUERY_SOURCE")] = None,
    search: Annotated[str | None, filter_option("search")] = None,
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
    fmt: Annotated[RowsFormat, format_option()] = Format.table,
) -> None:
    """List stored articles with their labels, newest first."""
    from worker.query import ARTICLE_COLUMNS, TABLE_COLUMNS, article_row
    from worker.store import find_articles

    settings = settings_or_exit()
    where = article_filter(
        label, all_labels, min_score, since, until, time, source, search, model_version
    )
    with open_session(settings) as session:
        found = find_articles(session=session, where=where, limit=limit, offset=offset, sort=sort)
        rows = [article_row(a) for a in found]
    emit(rows, fmt.value, ARTICLE_COLUMNS if fmt != Format.table else TABLE_COLUMNS)


@commands.command(epilog=example("newsclass show 42 --format json"))
def show(
    article_id: Annotated[int, typer.Argument(help="The article's id (from query).")],
    fmt: Annotated[ShowFormat, format_option(envvar="NEWSCLASS_SHOW_FORMAT")] = Format.text,
) -> None:
    """One stored article: text, scores, paragraph breakdown, explanation, model version."""
    from worker.query import article_detail
    from worker.store import find_article_labels, get_article

    with open_session() as session:
        article = get_article(session=session, article_id=article_id) if fits(article_id) else None
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
    out.print(f"labels: {cell(detail['labels']) or 'none'}   scores: {cell(detail['scores'])}")
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


@commands.command(
    epilog=example(
        "newsclass stats --by week --format csv\n"
        "  newsclass stats --by month --since 2026-01-01 --plot volume.svg"
    )
)
def stats(
    fmt: Annotated[StatsFormat, format_option()] = Format.table,
    by: Annotated[
        StatsBy | None,
        typer.Option(
            help="Also count articles per label by day, week, month (UTC) or source.",
            envvar="NEWSCLASS_STATS_BY",
        ),
    ] = None,
    time: Annotated[
        TimeField, time_option("--by and --since/--until", "NEWSCLASS_STATS_TIME")
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
    from classifiers import LABELS
    from worker.query import plot_volume, stats_data

    settings = settings_or_exit()
    if plot is not None and by is None:
        by = "day"
    where = filter_or_exit(since=since, until=until, time=time)
    try:
        with open_session(settings) as session:
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
