"""`newsclass query`, `show` and `stats` over a real SQLite and a real PostgreSQL database.

Articles are put in through the store's own write functions (what the pipeline calls), with known
labels, scores, sources and times, so every filter has one right answer.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from worker import db
from worker.query import build_filter
from worker.store import NewArticle, find_articles, get_engine, record_jobs, upsert_articles


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    key: str
    title: str
    text: str
    source: str | None
    published: str | None
    ingested: str
    labels: dict[str, float] = field(default_factory=dict)
    model_version: str = "v1"

    @property
    def when(self) -> datetime:
        return utc(self.published or self.ingested)


SPECS = [
    Spec("navy", "Navy orders four frigates", "The navy ordered four frigates from the shipyard.",
         "wire", "2026-01-05T10:00", "2026-02-01T08:00", {"defence": 0.91}),
    Spec("steel", "Steel tariffs rise", "The government raised the tariff on imported steel.",
         "wire", "2026-01-12T09:00", "2026-02-02T08:00", {"trade": 0.85}),
    Spec("row", "Tariff row hits navy contracts", "A tariff dispute delays frigates for the navy.",
         "blog", "2026-01-20T12:00", "2026-02-03T08:00", {"defence": 0.62, "trade": 0.77}),
    Spec("vote", "Cabinet survives confidence vote", "The cabinet survived a confidence vote.",
         "gazette", "2026-02-10T18:00", "2026-02-10T19:00", {"domestic_politics": 0.88}),
    Spec("comet", "Comet seen over the coast", "Astronomers saw a faint comet on Tuesday.",
         "blog", None, "2026-02-15T07:00"),
    Spec("budget", "Minister defends arms budget", "The minister defended the arms budget in parliament.",
         "gazette", "2026-03-01T11:00", "2026-03-02T08:00",
         {"defence": 0.55, "domestic_politics": 0.71}),
    Spec("duties", "Customs duties cut", "Customs duties on farm goods were cut.",
         "wire", "2026-03-05T06:00", "2026-03-05T07:00", {"trade": 0.95}, "v2"),
]  # fmt: skip
BY_KEY = {spec.key: spec for spec in SPECS}


def newest_first(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: BY_KEY[k].when, reverse=True)


@dataclass(frozen=True)
class Case:
    name: str
    params: dict[str, Any]  # build_filter's arguments (the API's query parameters)
    expected: list[str]  # keys, in the order the query returns them
    sort: str = "newest"


CASES = [
    Case("one label", {"labels": ["defence"]}, newest_first(["navy", "row", "budget"])),
    Case("any of two labels", {"labels": ["defence", "trade"]},
         newest_first(["navy", "steel", "row", "budget", "duties"])),
    Case("all of two labels", {"labels": ["defence", "trade"], "all_labels": True}, ["row"]),
    Case("min score, any label", {"min_score": 0.8}, newest_first(["navy", "steel", "vote", "duties"])),
    Case("label and min score", {"labels": ["defence"], "min_score": 0.6}, newest_first(["navy", "row"])),
    Case("published since/until", {"since": "2026-01-12", "until": "2026-02-11"},
         newest_first(["steel", "row", "vote"])),
    Case("published falls back to ingested", {"since": "2026-02-14"},
         newest_first(["comet", "budget", "duties"])),
    Case("ingested since/until", {"since": "2026-02-03", "until": "2026-02-16", "time": "ingested"},
         ["comet", "vote", "row"]),
    Case("source", {"source": "gazette"}, newest_first(["vote", "budget"])),
    Case("full text", {"search": "frigates"}, newest_first(["navy", "row"])),
    Case("full text is stemmed", {"search": "frigate"}, newest_first(["navy", "row"])),
    Case("full text with exclusion", {"search": "tariff -navy"}, ["steel"]),
    Case("full text phrase", {"search": '"confidence vote"'}, ["vote"]),
    Case("full text OR", {"search": "comet OR customs"}, newest_first(["comet", "duties"])),
    Case("model version", {"model_version": "v2"}, ["duties"]),
    Case("label under a model version", {"labels": ["trade"], "model_version": "v1"},
         newest_first(["steel", "row"])),
    Case("everything combined",
         {"labels": ["defence"], "source": "wire", "since": "2026-01-01", "search": "navy"}, ["navy"]),
    Case("oldest first", {"labels": ["defence"]}, ["navy", "row", "budget"], sort="oldest"),
    Case("highest score first", {"labels": ["defence"]}, ["navy", "row", "budget"], sort="score"),
    Case("score of any label", {"source": "gazette"}, ["vote", "budget"], sort="score"),
]  # fmt: skip


def seed(database_url: str) -> dict[str, int]:
    """Store SPECS through upsert_articles/record_jobs; return key -> article id."""
    items = []
    for n, spec in enumerate(SPECS):
        primary = max(spec.labels, key=spec.labels.__getitem__) if spec.labels else None
        fields = {
            "content_hash": f"{n:064x}",
            "title": spec.title,
            "text": f"{spec.text}\n\nA second paragraph about {spec.key}, long enough to stand alone.",
            "source": spec.source,
            "published_at": utc(spec.published) if spec.published else None,
            "ingested_at": utc(spec.ingested),
            "external_id": spec.key,
            "labels": list(spec.labels),
            "scores": {**dict.fromkeys(("defence", "trade", "domestic_politics"), 0.05), **spec.labels},
            "primary_label": primary,
            "model_version": spec.model_version,
            "credits": [],
            "paragraphs": [
                {"index": 0, "labels": list(spec.labels), "scores": dict(spec.labels)},
                {"index": 1, "labels": [], "scores": {}},
            ],
            "explanation": {label: [spec.key, "word"] for label in spec.labels},
        }  # fmt: skip
        items.append(NewArticle(job_id=f"job-{spec.key}", fields=fields, labels=dict(spec.labels)))
    with Session(get_engine(database_url)) as session:
        outcomes = upsert_articles(session=session, items=items)
        record_jobs(session=session, outcomes=outcomes)
        session.commit()
    assert all(o.status == "stored" for o in outcomes)
    return {spec.key: o.article_id for spec, o in zip(SPECS, outcomes, strict=True)}  # type: ignore[misc]


@pytest.fixture
def seeded(database_url: str) -> dict[str, int]:
    return seed(database_url)


def test_every_filter_finds_what_it_should(database_url: str, seeded: dict[str, int]) -> None:
    ids = {article_id: key for key, article_id in seeded.items()}
    wrong = []
    with Session(get_engine(database_url)) as session:
        for case in CASES:
            where = build_filter(**case.params)
            found = find_articles(session=session, where=where, sort=case.sort)  # type: ignore[arg-type]
            keys = [ids[a.id] for a in found]  # type: ignore[index]
            if keys != case.expected:
                wrong.append(f"{case.name}: got {keys}, expected {case.expected}")
    assert not wrong, "\n".join(wrong)


def test_limit_and_offset_page_through_everything(database_url: str, seeded: dict) -> None:
    with Session(get_engine(database_url)) as session:
        everything = [a.id for a in find_articles(session=session, limit=100)]
        pages = [
            [a.id for a in find_articles(session=session, limit=3, offset=offset)]
            for offset in (0, 3, 6, 9)
        ]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [i for page in pages for i in page] == everything
    assert len(everything) == len(SPECS)


def test_search_index_follows_updates_and_deletes(database_url: str, seeded: dict) -> None:
    """The full-text index is the database's job (FTS5 triggers, a generated tsvector)."""

    def search(text: str) -> list[int | None]:
        with Session(get_engine(database_url)) as session:
            return [a.id for a in find_articles(session=session, where=build_filter(search=text))]

    comet = seeded["comet"]
    with get_engine(database_url).begin() as conn:
        conn.execute(
            sa.text("UPDATE article SET text = 'A meteor shower lit the sky.' WHERE id = :id"),
            {"id": comet},
        )
    assert search("meteor") == [comet]
    assert search("astronomers") == []
    with get_engine(database_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM article_label WHERE article_id = :id"), {"id": comet})
        conn.execute(sa.text("DELETE FROM article WHERE id = :id"), {"id": comet})
    assert search("meteor") == []
    assert search("") == search("   ") != []  # an empty search is no filter
    assert search("!!! ???") == []  # nothing searchable: nothing found, no syntax error


def test_sqlite_search_index_merges_in_large_steps(tmp_path: Path) -> None:
    """Migration 0004: FTS5 merges 16 segments at a time (its default, 4, made merging cost as
    much as indexing). An FTS5 setting: PostgreSQL has none."""
    url = f"sqlite:///{tmp_path}/fts.db"
    db.upgrade(url)
    with get_engine(url).connect() as conn:
        config = dict(conn.execute(sa.text("SELECT k, v FROM article_fts_config")).all())
    get_engine(url).dispose()
    assert config["automerge"] == 16
    assert config["crisismerge"] == 64


def test_query_prints_csv_json_and_jsonl(cli: Callable[..., Any], seeded: dict) -> None:
    out = cli("query", "--label", "defence", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["title"] for r in rows] == [
        BY_KEY[k].title for k in newest_first(["navy", "row", "budget"])
    ]
    assert rows[0].keys() >= {"id", "published_at", "labels", "scores", "primary", "model_version"}
    row = next(r for r in rows if r["title"] == BY_KEY["row"].title)
    assert row["labels"] == "defence;trade"
    assert json.loads(row["scores"])["trade"] == 0.77
    assert row["published_at"] == "2026-01-20T12:00:00+00:00"

    listed = json.loads(cli("query", "--search", "tariff", "--format", "json").stdout)
    assert {r["title"] for r in listed} == {BY_KEY["steel"].title, BY_KEY["row"].title}
    lines = cli("query", "--time", "ingested", "--sort", "oldest", "--limit", "2", "--offset", "1",
                "--format", "jsonl").stdout.splitlines()  # fmt: skip
    assert [json.loads(line)["title"] for line in lines] == [
        BY_KEY["steel"].title,
        BY_KEY["row"].title,
    ]
    table = cli("query", "--source", "wire").stdout
    assert "Navy" in table and "duties" in table and "gazette" not in table

    assert "unknown label 'navy'" in cli("query", "--label", "navy", code=2).output
    assert "not an ISO 8601" in cli("query", "--since", "yesterday", code=2).output


def test_show_prints_one_article(cli: Callable[..., Any], seeded: dict) -> None:
    detail = json.loads(cli("show", str(seeded["row"]), "--format", "json").stdout)
    assert detail["title"] == "Tariff row hits navy contracts"
    assert detail["labels"] == ["defence", "trade"]
    assert detail["scores"]["defence"] == 0.62
    assert detail["model_version"] == "v1"
    assert detail["text"].startswith("A tariff dispute")
    assert [p["index"] for p in detail["paragraphs"]] == [0, 1]
    assert all(p["text"] for p in detail["paragraphs"])
    assert detail["explanation"] == {"defence": ["row", "word"], "trade": ["row", "word"]}
    assert {(r["label"], r["model_version"]) for r in detail["label_history"]} == {
        ("defence", "v1"), ("trade", "v1")
    }  # fmt: skip
    text = cli("show", str(seeded["row"])).stdout
    assert "Tariff row hits navy contracts" in text and "paragraphs" in text and "why trade" in text
    assert "no article 999999" in cli("show", "999999", code=1).output


def test_stats_counts_per_period_and_source(
    cli: Callable[..., Any], seeded: dict, tmp_path: Path
) -> None:
    plain = json.loads(cli("stats", "--format", "json").stdout)
    assert plain["articles"] == len(SPECS)
    assert plain["by_label"] == {"defence": 3, "trade": 3, "domestic_politics": 2}
    assert plain["outcomes"] == {"stored": len(SPECS), "duplicate": 0, "rejected": 0, "failed": 0}

    weekly = json.loads(cli("stats", "--by", "week", "--format", "json").stdout)
    assert weekly["articles"] == len(SPECS) and "by_label" in weekly and "outcomes" in weekly
    assert weekly["volume"] == [
        {"week": "2026-01-05", "articles": 1, "defence": 1, "trade": 0, "domestic_politics": 0},
        {"week": "2026-01-12", "articles": 1, "defence": 0, "trade": 1, "domestic_politics": 0},
        {"week": "2026-01-19", "articles": 1, "defence": 1, "trade": 1, "domestic_politics": 0},
        {"week": "2026-02-09", "articles": 2, "defence": 0, "trade": 0, "domestic_politics": 1},
        {"week": "2026-02-23", "articles": 1, "defence": 1, "trade": 0, "domestic_politics": 1},
        {"week": "2026-03-02", "articles": 1, "defence": 0, "trade": 1, "domestic_politics": 0},
    ]
    monthly = json.loads(
        cli("stats", "--by", "month", "--time", "ingested", "--format", "json").stdout
    )
    assert [(r["month"], r["articles"]) for r in monthly["volume"]] == [
        ("2026-02-01", 5),
        ("2026-03-01", 2),
    ]
    daily = json.loads(
        cli("stats", "--by", "day", "--since", "2026-03-01", "--format", "json").stdout
    )
    assert [r["day"] for r in daily["volume"]] == ["2026-03-01", "2026-03-05"]

    out = cli("stats", "--by", "source", "--format", "csv").stdout
    rows = {r["source"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"blog", "gazette", "wire"}
    assert (rows["wire"]["articles"], rows["wire"]["trade"], rows["wire"]["defence"]) == (
        "3",
        "2",
        "1",
    )
    assert "label defence" in cli("stats", "--format", "csv").stdout
    assert "2026-01-19" in cli("stats", "--by", "week").stdout

    png, svg = tmp_path / "volume.png", tmp_path / "volume.svg"
    cli("stats", "--by", "week", "--plot", str(png))
    cli("stats", "--plot", str(svg), "--format", "json")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5_000
    assert "<svg" in svg.read_text() and "domestic_politics" in svg.read_text()
    assert ".png or .svg" in cli("stats", "--plot", str(tmp_path / "v.gif"), code=2).output


@pytest.mark.parametrize("command", [["query"], ["stats"], ["show", "1"], ["jobs"]])
def test_a_database_without_tables_gets_one_line_saying_what_to_do(
    tmp_path: Path, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path}/never-migrated.db"
    result = subprocess.run(
        [sys.executable, "-m", "worker", *command],
        env={**os.environ, "NEWSCLASS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "newsclass db upgrade" in result.stderr and "no such table" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 4
