"""The command line at its edges, on SQLite and PostgreSQL: stored text that looks like rich markup
is printed as it is, and dates, integers and URLs past what the databases, Python or a driver hold
get one line saying what is wrong and an exit code of 2 (a bad value) or 1 (nothing found, or a
service down), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from tests.articles import stored_trade_fields
from worker.query import MAX_ID, MAX_ROWS
from worker.settings import get_settings
from worker.store import JobOutcome, NewArticle, get_engine, record_jobs, upsert_articles

BOLD = "[/bold] closes nothing"
LINK = "[link=https://evil.example/]click[/link] here"
REASON = "bad [/] input [bold]x"
SOURCE = "[/]wire"
OSC8 = "\x1b]8;"  # the escape sequence a live terminal link starts with


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """`newsclass ARGS` in-process against the test's database: asserts the exit code and that
    the command exited by itself (no exception escaped, so no traceback)."""
    from worker.cli import app

    monkeypatch.setenv("NEWSCLASS_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "250")  # a wide table: every title on one line
    monkeypatch.delenv("NEWSCLASS_FORMAT", raising=False)
    get_settings.cache_clear()

    def invoke(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"newsclass {' '.join(args)} raised {result.exception!r}:\n{result.output}"
        )
        assert result.exit_code == code, f"newsclass {' '.join(args)}: {result.output}"
        assert "Traceback" not in result.output and OSC8 not in result.output
        return result

    yield invoke
    get_settings.cache_clear()


def store_markup(database_url: str) -> dict[str, int]:
    """Articles titled like markup, and a rejected job whose reason is; title -> article id."""
    items = []
    for n, title in enumerate([BOLD, LINK]):
        fields = stored_trade_fields(
            n + 100,
            title=title,
            text=f"Customs duties {n}. [/] is text too.",
            source=SOURCE,
            external_id=f"markup-{n}",
            explanation={"trade": ["[/]", "duties"]},
        )
        items.append(NewArticle(job_id=f"job-markup-{n}", fields=fields, labels={"trade": 0.9}))
    rejected = JobOutcome(job_id="job-rejected", status="rejected", reason=REASON, source=SOURCE)
    with Session(get_engine(database_url)) as session:
        outcomes = upsert_articles(session=session, items=items)
        record_jobs(session=session, outcomes=[*outcomes, rejected])
        session.commit()
    return {item.fields["title"]: o.article_id for item, o in zip(items, outcomes, strict=True)}  # type: ignore[misc]


def test_stored_text_that_looks_like_markup_is_printed_as_it_is(
    run: Callable[..., Any],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = store_markup(database_url)
    listed = run("query").stdout
    assert BOLD in listed and LINK in listed and SOURCE in listed
    shown = run("show", str(ids[LINK])).stdout
    assert LINK in shown and SOURCE in shown and "why trade: [/], duties" in shown
    assert BOLD in run("show", str(ids[BOLD])).stdout
    jobs = run("jobs").stdout
    assert REASON in jobs and SOURCE in jobs
    assert REASON in run("jobs", "--status", "rejected").stdout

    # enqueue --wait reports outcomes: the job "sent" here is the rejected one already recorded.
    import worker.client

    monkeypatch.setattr(worker.client, "enqueue_articles", lambda *a, **k: ["job-rejected"])
    article = tmp_path / "a.txt"
    article.write_text("Navy orders frigates\n\nThe navy ordered four frigates.")
    waited = run("enqueue", str(article), "--wait", "--timeout", "5").stdout
    assert f"job-rejected rejected: {REASON}" in waited

    assert "unknown label '[/]'" in run("query", "--label", "[/]", code=2).output


LATE = "9999-12-31T23:59-05:00"  # in UTC: year 10000
EARLY = "0001-01-01T00:00+01:00"  # in UTC: year 0


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["query", "--since", LATE], 2, "--since: outside the years 0001 to 9999 in UTC"),
        (["query", "--until", EARLY], 2, "--until: outside the years 0001 to 9999 in UTC"),
        (["stats", "--by", "day", "--since", LATE], 2, "--since: outside the years"),
        (["reclassify", "--until", EARLY, "--dry-run"], 2, "--until: outside the years"),
        (["query", "--source", "wire\x00"], 2, "--source: contains a NUL character"),
        (["query", "--search", "navy\x00"], 2, "--search: contains a NUL character"),
        (["query", "--offset", str(MAX_ROWS + 1)], 2, "Invalid value for '--offset'"),
        (["jobs", "--limit", str(MAX_ROWS + 1)], 2, "Invalid value for '--limit'"),
        (["reclassify", "--limit", str(2**64), "--dry-run"], 2, "Invalid value for '--limit'"),
        (["sources", "add", "folder", ".", "--every", str(MAX_ID + 1)], 2, "'--every'"),
        (["train", "--data", "x.jsonl", "--seed", str(2**32)], 2, "Invalid value for '--seed'"),
        (["show", str(MAX_ID + 1)], 1, f"no article {MAX_ID + 1}"),
        (["show", str(2**64)], 1, f"no article {2**64}"),
        (["sources", "pause", str(MAX_ROWS + 1)], 1, f"no source {MAX_ROWS + 1}"),
        (["sources", "resume", str(2**64)], 1, f"no source {2**64}"),
        (["sources", "remove", str(MAX_ID + 1)], 1, f"no source {MAX_ID + 1}"),
    ],
    ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else None,
)
def test_values_past_what_the_database_holds_get_one_line(
    run: Callable[..., Any], args: list[str], code: int, says: str
) -> None:
    result = run(*args, code=code)
    assert says in result.output
    assert len(result.output.strip().splitlines()) <= 4  # Click's usage error: 4 lines


@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        ("NEWSCLASS_DATABASE_URL", "postgresql+psycopg://u:s3cret@db:notaport/news", "'notaport'"),
        ("NEWSCLASS_DATABASE_URL", "postgresql+psycopg://u:s3cret@[::1/news", "not a database"),
        ("NEWSCLASS_DATABASE_URL", "postgresql+nosuch://u:s3cret@db/news", "nosuch"),
        ("NEWSCLASS_DATABASE_URL", "postgresql+psycopg://u:s3cret@db:99999/news", "port 99999"),
        ("NEWSCLASS_BROKER_URL", "redis://:s3cret@broker:notaport/0", "'notaport'"),
        ("NEWSCLASS_BROKER_URL", "redis://:s3cret@[::1/0", "Invalid IPv6 URL"),
    ],
)
def test_a_malformed_url_gets_one_line_naming_the_variable(
    variable: str, url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.cli import app

    monkeypatch.setenv(variable, url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["query"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"error: {variable}=" in result.output and says in result.output
    assert "s3cret" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_broker_that_does_not_answer_gets_one_line(tmp_path: Path) -> None:
    article = tmp_path / "a.txt"
    article.write_text("Navy orders frigates\n\nThe navy ordered four frigates.")
    env = {
        **os.environ,
        "NEWSCLASS_BROKER_URL": "redis://:s3cret@127.0.0.1:1/0",
        "NEWSCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "worker", "enqueue", str(article)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "cannot reach the broker redis://:***@127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
