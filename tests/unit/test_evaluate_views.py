"""Short views of labelled articles (headline alone, headline + first sentence), measured the same
way as full articles: `classifiers.evaluate.view_text` / `evaluate_views` and the card's table."""

from __future__ import annotations

import pytest

from classifiers import LabelledRecord, TopicModel, load_model, model_text
from classifiers.card import card_markdown
from classifiers.evaluate import VIEWS, evaluate_views, view_text

ARTICLE = LabelledRecord(
    title="Navy buys four frigates",
    text="The navy ordered four frigates on Monday. The order is the largest in decades.\n\nMore.",
    labels=["defence"],
)


def test_each_view_of_an_article() -> None:
    assert view_text(ARTICLE, "full") == model_text(ARTICLE.title, ARTICLE.text)
    assert view_text(ARTICLE, "title") == "Navy buys four frigates"
    lead = view_text(ARTICLE, "lead")
    assert lead == model_text(ARTICLE.title, "The navy ordered four frigates on Monday.")
    with pytest.raises(ValueError, match="unknown view"):
        view_text(ARTICLE, "summary")


def test_articles_without_a_real_title_have_no_short_view() -> None:
    derived = LabelledRecord(text=ARTICLE.text, labels=[], title="x", title_derived=True)
    untitled = LabelledRecord(text=ARTICLE.text, labels=[])
    for record in (derived, untitled):
        assert view_text(record, "title") is None and view_text(record, "lead") is None
        assert view_text(record, "full") is not None


def test_views_are_scored_and_shown_in_the_card() -> None:
    model: TopicModel = load_model()  # the shipped model
    untitled = LabelledRecord(text="The army moved tanks to the border.", labels=["defence"])
    reports = evaluate_views(model, [ARTICLE, untitled])
    assert list(reports) == list(VIEWS)
    assert reports["full"]["n"] == 2 and reports["title"]["n"] == reports["lead"]["n"] == 1
    page = card_markdown({"version": "v", "dev_views": reports})
    assert "## Dev by view" in page and "| title | 1 |" in page


def test_newsclass_evaluate_scores_each_view(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from worker.cli import app

    data = tmp_path / "dev.jsonl"
    rows = [
        {"title": ARTICLE.title, "text": ARTICLE.text, "labels": ["defence"]},
        {
            "title": "x",
            "title_derived": True,
            "text": "Tariffs on steel rise.",
            "labels": ["trade"],
        },
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", "--data", str(data), "--views", "full,title", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["views"]["full"]["n"] == 2 and report["views"]["title"]["n"] == 1
    assert report["model_version"]
    single = json.loads(
        runner.invoke(app, ["evaluate", "--data", str(data), "--format", "json"]).output
    )
    assert single["n"] == 2 and "views" not in single  # the default: the report as before
    bad = runner.invoke(app, ["evaluate", "--data", str(data), "--views", "full,nope"])
    assert bad.exit_code == 2 and "--views" in bad.output
